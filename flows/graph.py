"""Graph checks of a flow: references, reachability, and that every path ends."""

from __future__ import annotations

from collections import deque
from typing import Any

from engine.kinds import BuildContext
from engine.registry import BUILT_IN
from engine.yamlsource import Document
from flows.nodes.base import NodeType
from flows.spec import NodeSpec


class _UnknownType(NodeType):
    """Stands in for a node whose type is unknown (already reported): its `next` still counts,
    and it is treated as able to end, so one typo does not cascade into graph errors."""

    terminal = True
    needs_next = False


_UNKNOWN = _UnknownType()


def node_type(registry: Any, node: NodeSpec) -> NodeType:
    """The node's registered type, or a lenient stand-in when the type is unknown."""
    return registry.node_types.get(node.type) or _UNKNOWN


def edges(nodes: dict[str, NodeSpec], registry: Any) -> dict[str, list[str]]:
    """node id -> ids it can lead to (only existing nodes)."""
    out: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        ntype = node_type(registry, node)
        out[node_id] = [t for _, t in ntype.targets(node) if t in nodes]
    return out


def _plugin_edges_problem(ntype: NodeType, node: NodeSpec, source: str) -> str | None:
    """What is wrong with a plugin node type's `targets()` for `node`, or None: it raised, or it
    left out the node's `next` (overriding it without `yield from super().targets(node)`), which
    the graph checks would report as the bundle's unreachable or never-ending nodes."""
    try:
        found = [target for _path, target in ntype.targets(node)]
    except Exception as exc:  # noqa: BLE001 - a plugin's bug, reported at the node
        return f"targets() raised {type(exc).__name__}: {exc}"
    if node.next is not None and node.next not in found:
        return ("targets() leaves out this node's 'next', so the flow would seem to stop here: "
                "yield it too (e.g. `yield from super().targets(node)`)")
    return None


def check_graph(nodes: dict[str, NodeSpec], start: str, doc: Document, ctx: BuildContext) -> None:
    """Report dangling references, unreachable nodes and nodes from which no end is reachable."""
    registry = ctx.registry
    dangling = False
    for node_id, node in nodes.items():
        ntype = node_type(registry, node)
        source = registry.node_types.source(node.type) if node.type in registry.node_types else BUILT_IN
        if source != BUILT_IN:
            problem = _plugin_edges_problem(ntype, node, source)
            if problem is not None:
                ctx.error(doc, ("nodes", node_id, "type"), f"node type '{node.type}' (from {source}) {problem}",
                          code="plugin-targets", hint=f"a bug in the plugin {source}, not in this file")
                dangling = True  # its edges are unknown: reachability would only be noise
                continue
        for path, target in ntype.targets(node):
            if target not in nodes:
                ctx.unknown(doc, ("nodes", node_id) + path, "node", target, nodes)
                dangling = True
        if ntype.needs_next and not ntype.terminal and node.next is None:
            ctx.error(doc, ("nodes", node_id), f"node '{node_id}' has no 'next': where does the flow go after it?",
                      code="flow-no-next", at_key=True)
            dangling = True
    if start not in nodes:
        return
    if any(registry.node_types.get(n.type) is None for n in nodes.values()):
        return  # a node of unknown type has unknown edges: reachability would only be noise
    if dangling:
        # One misspelt or forgotten `next` cuts the graph in two: every node behind it would be reported
        # unreachable and every node before it as never ending, burying the one real mistake.
        return
    graph = edges(nodes, registry)
    reached = {start}
    queue = deque([start])
    while queue:
        for target in graph[queue.popleft()]:
            if target not in reached:
                reached.add(target)
                queue.append(target)
    for node_id in nodes:
        if node_id not in reached:
            ctx.error(doc, ("nodes", node_id), f"node '{node_id}' is unreachable from the start '{start}'",
                      code="flow-unreachable", at_key=True)
    reverse: dict[str, list[str]] = {n: [] for n in nodes}
    for source, targets in graph.items():
        for target in targets:
            reverse[target].append(source)
    ending = {n for n, node in nodes.items() if node_type(registry, node).terminal}
    queue = deque(ending)
    while queue:
        for source in reverse[queue.popleft()]:
            if source not in ending:
                ending.add(source)
                queue.append(source)
    if not any(registry.node_types.get(n.type) is not None and registry.node_types.get(n.type).terminal
               for n in nodes.values()) and all(registry.node_types.get(n.type) for n in nodes.values()):
        ctx.error(doc, ("nodes",), "the flow has no end node", code="flow-no-end",
                  hint="add a node with 'type: end'", at_key=True)
        return
    for node_id in sorted(reached - ending, key=list(nodes).index):
        ctx.error(doc, ("nodes", node_id),
                  f"no path from node '{node_id}' reaches an end: records there could never finish",
                  code="flow-never-ends", at_key=True)
