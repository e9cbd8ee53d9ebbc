"""The flow engine: node types, the flow definition kind, instances and tasks."""

from __future__ import annotations

from engine.registry import Registry
from flows.kind import FlowKind
from flows.nodes.action import Action
from flows.nodes.approval import Approval
from flows.nodes.basic import Decision, End, Start, Task
from flows.nodes.countersign import Countersign
from flows.nodes.notify import Notify
from flows.nodes.parallel import Join, Parallel
from flows.nodes.subflow import Subflow
from flows.nodes.wait import Wait

BUILT_IN_NODE_TYPES = (Start, Task, Decision, End, Approval, Parallel, Join, Countersign, Wait, Subflow,
                      Action, Notify)


def register(registry: Registry) -> None:
    """Register the flow definition kind and the built-in node types."""
    registry.definition_kinds.add(FlowKind())
    for node_type in BUILT_IN_NODE_TYPES:
        registry.node_types.add(node_type())
