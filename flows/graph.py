"""Graph checks of a flow: references, reachability, and that every path ends."""

from __future__ import annotations

from collections import deque
from typing import Any

from engine.errors import did_you_mean
from engine.kinds import BuildContext
from engine.registry import BUILT_IN
from engine.types import YamlPath
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


def unknown_node(ctx: BuildContext, doc: Document, path: YamlPath, target: str, nodes: dict[str, NodeSpec],
                 renamed: str | None) -> None:
    """Report a reference to a node the flow lacks: with the node meant when it is misspelt, or
    with the node nothing leads to (`renamed`) when a step was renamed and this is its old name."""
    if renamed is not None and did_you_mean(target, nodes) is None:
        ctx.error(doc, path, f"unknown node '{target}'", code="unknown-reference",
                  hint=f"was it renamed '{renamed}'? No step leads to '{renamed}': write {renamed} here")
    else:
        ctx.unknown(doc, path, "node", target, nodes)


def renamed_to(nodes: dict[str, NodeSpec], start: str, registry: Any) -> str | None:
    """The one node nothing leads to, besides the start: after a step is renamed, the name the
    references to its old name mean (the hint for each), or None."""
    led_to = {target for node in nodes.values() for _, target in _targets(registry, node)}
    orphans = [n for n in nodes if n not in led_to and n != start]
    return orphans[0] if len(orphans) == 1 else None


def _targets(registry: Any, node: NodeSpec) -> list[tuple[Any, str]]:
    try:
        return list(node_type(registry, node).targets(node))
    except Exception:  # noqa: BLE001 - a plugin's bug, reported by check_graph at the node
        return []


def check_graph(nodes: dict[str, NodeSpec], start: str, doc: Document, ctx: BuildContext) -> None:
    """Report dangling references, unreachable nodes and nodes from which no end is reachable."""
    registry = ctx.registry
    dangling = False
    renamed = renamed_to(nodes, start, registry)
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
                unknown_node(ctx, doc, ("nodes", node_id) + path, target, nodes, renamed)
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
