"""A flow drawn as SVG on the server: nodes in layers, edges with their labels, current nodes lit.

No JavaScript library and no layout engine: a flow has tens of nodes, so a small layered
(Sugiyama-style) layout does. Back edges (an approval returning the record, a loop) are found
by a depth-first walk from the start and drawn as curves down the right side so the rest of the
graph reads top to bottom; nodes are put in layers by their longest path from the start, and
each layer is ordered by the mean position of its parents a few times to reduce crossings.

Every text that reaches the SVG (labels written by analysts) is escaped; colours are SVG
presentation attributes, never `style`, so the page's CSP (no inline style) holds and the same
SVG looks right served on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from markupsafe import Markup, escape

from engine.types import label_text
from flows.graph import node_type
from flows.spec import FlowSpec, NodeSpec

NODE_W = 168
NODE_H = 46
GAP_X = 44
GAP_Y = 62
MARGIN = 24
FONT = 13
DUMMY_W = 16
BACK_LANE = 12
MAX_LABEL_UNITS = 22.0
"""Labels longer than this (in half-width character units) are cut with an ellipsis."""

SHAPES = {"start": "terminal", "end": "terminal", "decision": "diamond", "parallel": "bar",
          "join": "bar"}
"""Canonical node type -> shape; every other type (task, approval, plugins) is a box."""

EDGE_WORDS: dict[str, Mapping[str, str]] = {
    "approve": {"en": "approve", "zh-CN": "同意"},
    "reject": {"en": "reject", "zh-CN": "驳回"},
    "return": {"en": "return", "zh-CN": "退回"},
    "else": {"en": "otherwise", "zh-CN": "否则"},
    "timeout": {"en": "not done in time", "zh-CN": "逾期未办"},
    "start": {"en": "Start", "zh-CN": "开始"},
    "end": {"en": "End", "zh-CN": "结束"},
}


def node_text(node: NodeSpec, locale: str) -> str:
    """A node's label; an unlabelled start or end node reads "Start" / "End" in the locale."""
    if node.label and node.label != node.id:
        return label_text(node.label, locale, node.id)
    if node.type in ("start", "end"):
        return label_text(EDGE_WORDS[node.type], locale)
    return node.id


def node_label(flow: Any, node_id: str, locale: str) -> str:
    """The label of `flow`'s node `node_id` (node_text); the id itself for a node the flow (or
    a missing flow, None) does not have: history written by an earlier version names it."""
    if flow is not None and node_id in flow.nodes:
        return node_text(flow.nodes[node_id], locale)
    return node_id


@dataclass
class Edge:
    source: str
    target: str
    label: str = ""
    back: bool = False
    via: list[str] = field(default_factory=list)
    """Virtual points (ids starting with ~) a long forward edge passes through, one per layer."""
    lane: int = 0
    """For a back edge: which lane right of the drawing it runs down (1 = nearest)."""


@dataclass
class Layout:
    """Where each node sits (its centre) and the drawing's size."""

    positions: dict[str, tuple[float, float]]
    layers: list[list[str]]
    edges: list[Edge]
    width: float
    height: float
    shapes: dict[str, str] = field(default_factory=dict)
    content_right: float = 0.0


def flow_edges(flow: FlowSpec, registry: Any, locale: str = "en") -> list[Edge]:
    """Every edge of the flow with the words an analyst would read on it."""
    out: list[Edge] = []
    for node_id, node in flow.nodes.items():
        ntype = node_type(registry, node)
        for path, target in ntype.targets(node):
            if target not in flow.nodes:
                continue
            out.append(Edge(node_id, target, _edge_label(node, path, locale, ntype)))
    return out


def _edge_label(node: NodeSpec, path: tuple[Any, ...], locale: str, ntype: Any = None) -> str:
    """The node type's own word for the edge (a plugin's `edge_labels`), a decision branch's
    label (or its condition), approval's approve/reject/return, a step's timeout."""
    own = getattr(ntype, "edge_labels", None) or {}
    if path and isinstance(own, Mapping) and path[0] in own:
        return label_text(own[path[0]], locale, "")
    if not path or path == ("next",):
        return ""
    if path[0] == "branches" and len(path) >= 3 and isinstance(path[1], int):
        branches = node.options.get("branches") or []
        branch = branches[path[1]] if path[1] < len(branches) else {}
        if isinstance(branch, Mapping):
            if branch.get("label") is not None:
                return label_text(branch["label"], locale, "")
            if path[2] == "else":
                return label_text(EDGE_WORDS["else"], locale)
            if isinstance(branch.get("when"), str):
                return str(branch["when"])
        return ""
    key = str(path[0])
    if key == "return_to":
        key = "return"
    if key in EDGE_WORDS:
        return label_text(EDGE_WORDS[key], locale)
    return ""


def layout(flow: FlowSpec, registry: Any, locale: str = "en") -> Layout:
    """Layers, order within layers and coordinates of every node of `flow`."""
    nodes = list(flow.nodes)
    edges = flow_edges(flow, registry, locale)
    outgoing: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        outgoing[e.source].append(e.target)
    back = _back_edges(flow.start if flow.start in flow.nodes else nodes[0], nodes, outgoing)
    for e in edges:
        e.back = (e.source, e.target) in back or e.source == e.target
    forward = {n: [t for t in outgoing[n] if (n, t) not in back and t != n] for n in nodes}
    layer_of = _longest_path_layers(nodes, forward, flow.start)
    depth = max(layer_of.values(), default=0) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for n in nodes:  # definition order is the first guess of the order within a layer
        layers[layer_of[n]].append(n)
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for e in edges:
        if e.back:
            continue
        # A forward edge across several layers passes through a virtual point in each layer
        # between, so it takes a slot there and is routed around the nodes, not through them.
        chain = [e.source]
        for k in range(layer_of[e.source] + 1, layer_of[e.target]):
            dummy = f"~{len(parents)}"
            parents[dummy] = [chain[-1]]
            layers[k].append(dummy)
            chain.append(dummy)
        e.via = chain[1:]
        parents[e.target].append(chain[-1])
    _order_layers(layers, parents)
    spans = [sum(_slot(n) for n in layer) + GAP_X * (len(layer) - 1) for layer in layers]
    content = max(spans, default=NODE_W)
    lanes = _back_lanes(edges, layer_of)
    width = MARGIN * 2 + content + (GAP_X + BACK_LANE * max(lanes, default=0) if lanes else 0)
    positions: dict[str, tuple[float, float]] = {}
    for i, layer in enumerate(layers):
        x = MARGIN + (content - spans[i]) / 2
        for n in layer:
            positions[n] = (x + _slot(n) / 2, MARGIN + NODE_H / 2 + i * (NODE_H + GAP_Y))
            x += _slot(n) + GAP_X
    height = MARGIN * 2 + depth * NODE_H + (depth - 1) * GAP_Y
    registry_shapes = {}
    for n, node in flow.nodes.items():
        canonical = registry.node_types.canonical(node.type) if registry is not None else node.type
        registry_shapes[n] = SHAPES.get(canonical or node.type, "box")
    layout_ = Layout(positions, layers, edges, width, height, registry_shapes)
    layout_.content_right = MARGIN + content
    return layout_


def _slot(node_id: str) -> float:
    """Width a layer gives an element: a node, or a virtual point of a long edge."""
    return DUMMY_W if node_id.startswith("~") else NODE_W


def _back_lanes(edges: list[Edge], layer_of: Mapping[str, int]) -> list[int]:
    """Give each back edge its own lane right of the drawing, shorter spans nearer the nodes."""
    back = sorted((e for e in edges if e.back), key=lambda e: abs(layer_of[e.source] - layer_of[e.target]))
    for i, e in enumerate(back, 1):
        e.lane = i
    return [e.lane for e in back]




def _back_edges(start: str, nodes: list[str], outgoing: Mapping[str, list[str]]) -> set[tuple[str, str]]:
    """Edges that close a cycle in a depth-first walk from the start (then from any node left)."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    back: set[tuple[str, str]] = set()
    for root in [start] + nodes:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, i = stack[-1]
            targets = outgoing.get(node, [])
            if i < len(targets):
                stack[-1] = (node, i + 1)
                target = targets[i]
                if state.get(target) == 1:
                    back.add((node, target))
                elif target not in state:
                    state[target] = 1
                    stack.append((target, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def _longest_path_layers(nodes: list[str], forward: Mapping[str, list[str]], start: str) -> dict[str, int]:
    """Layer of each node: the longest forward path to it (a topological pass; acyclic now)."""
    indegree = {n: 0 for n in nodes}
    for targets in forward.values():
        for t in targets:
            indegree[t] += 1
    layer = {n: 0 for n in nodes}
    ready = [n for n in nodes if indegree[n] == 0]
    ready.sort(key=lambda n: (n != start, nodes.index(n)))
    while ready:
        n = ready.pop(0)
        for t in forward[n]:
            layer[t] = max(layer[t], layer[n] + 1)
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(t)
    return layer


def _order_layers(layers: list[list[str]], parents: Mapping[str, list[str]], sweeps: int = 4) -> None:
    """Barycentre ordering: each node moves towards the mean position of its parents."""
    for _ in range(sweeps):
        for i in range(1, len(layers)):
            above = {n: k for k, n in enumerate(layers[i - 1])}
            placed = {n: k for k, n in enumerate(layers[i])}

            def key(n: str) -> float:
                ps = [above[p] for p in parents[n] if p in above]
                return sum(ps) / len(ps) if ps else float(placed[n])

            layers[i].sort(key=key)


def _units(ch: str) -> float:
    return 2.0 if ord(ch) > 0x2E80 else 1.0


def fit(text: str, limit: float = MAX_LABEL_UNITS) -> str:
    """`text` cut to `limit` half-width units (a CJK character counts two), with an ellipsis."""
    total = 0.0
    for i, ch in enumerate(text):
        total += _units(ch)
        if total > limit:
            return text[:max(i - 1, 1)] + "…"
    return text


def _text_width(text: str) -> float:
    return sum(_units(ch) for ch in text) * FONT * 0.55


def render_svg(flow: FlowSpec, registry: Any, locale: str = "en", *, current: Iterable[str] = (),
               visited: Iterable[str] = (), title: str | None = None) -> Markup:
    """The flow as an `<svg>` element; `current` nodes are highlighted, `visited` ones tinted."""
    lay = layout(flow, registry, locale)
    now = set(current)
    seen = set(visited)
    name = title or label_text(flow.label, locale, flow.name)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="flow-diagram" role="img" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" width="{lay.width:.0f}" height="{lay.height:.0f}" '
        f'aria-label="{escape(name)}" font-family="system-ui, \'Noto Sans CJK SC\', sans-serif" '
        f'font-size="{FONT}">',
        f"<title>{escape(name)}</title>",
        '<defs><marker id="fd-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/>'
        '</marker></defs>',
    ]
    for edge in lay.edges:
        parts.append(_edge_svg(edge, lay))
    for node_id, node in flow.nodes.items():
        parts.append(_node_svg(node, lay, locale, node_id in now, node_id in seen))
    parts.append("</svg>")
    return Markup("".join(parts))


def _edge_svg(edge: Edge, lay: Layout) -> str:
    (x1, y1), (x2, y2) = lay.positions[edge.source], lay.positions[edge.target]
    cls = "fd-edge fd-back" if edge.back else "fd-edge"
    dash = ' stroke-dasharray="5 4"' if edge.back else ""
    if edge.back:
        # Out of the source's right side, along its own lane right of the drawing, into the
        # target's right side.
        sx, tx = x1 + NODE_W / 2, x2 + NODE_W / 2
        bend = lay.content_right + GAP_X / 2 + BACK_LANE * edge.lane
        path = (f"M{sx:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y1:.1f} {bend:.1f},{(y1 + y2) / 2:.1f} "
                f"S{bend:.1f},{y2:.1f} {tx:.1f},{y2:.1f}")
        lx, ly = bend - 4, (y1 + y2) / 2
    else:
        points = [(x1, y1 + NODE_H / 2)]
        for dummy in edge.via:
            dx, dy = lay.positions[dummy]
            points += [(dx, dy - NODE_H / 2), (dx, dy + NODE_H / 2)]
        points.append((x2, y2 - NODE_H / 2))
        parts = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for (ax, ay), (bx, by) in zip(points, points[1:]):
            if abs(ax - bx) < 1:
                parts.append(f"L{bx:.1f},{by:.1f}")
            else:
                mid = (ay + by) / 2
                parts.append(f"C{ax:.1f},{mid:.1f} {bx:.1f},{mid:.1f} {bx:.1f},{by:.1f}")
        path = " ".join(parts)
        (ax, ay), (bx, by) = points[0], points[1]
        lx, ly = (ax + bx) / 2, (ay + by) / 2
    out = [f'<g class="{cls}" data-from="{escape(edge.source)}" data-to="{escape(edge.target)}">',
           f'<path d="{path}" fill="none" stroke="#57606a" stroke-width="1.4"{dash} '
           'marker-end="url(#fd-arrow)"/>']
    if edge.label:
        text = fit(edge.label, 18)
        w = _text_width(text) + 10
        out.append(f'<rect x="{lx - w / 2:.1f}" y="{ly - 9:.1f}" width="{w:.1f}" height="18" rx="3" '
                   'fill="#ffffff" fill-opacity="0.92"/>')
        out.append(f'<text x="{lx:.1f}" y="{ly + 4:.1f}" text-anchor="middle" font-size="11" '
                   f'fill="#57606a">{escape(text)}</text>')
    out.append("</g>")
    return "".join(out)


def _node_svg(node: NodeSpec, lay: Layout, locale: str, current: bool, visited: bool) -> str:
    x, y = lay.positions[node.id]
    shape = lay.shapes.get(node.id, "box")
    fill, stroke, width = "#ffffff", "#8c959f", "1.4"
    if visited:
        fill = "#eef6f1"
    if current:
        fill, stroke, width = "#fff4d6", "#bf8700", "3"
    classes = ["fd-node", f"fd-{shape}"] + (["fd-current"] if current else []) + (["fd-visited"] if visited and not current else [])
    label = node_text(node, locale)
    marked = ' aria-current="step"' if current else ""
    out = [f'<g class="{" ".join(classes)}" data-node="{escape(node.id)}"{marked}>',
           f"<title>{escape(label)} ({escape(node.id)}: {escape(node.type)})</title>"]
    left, top = x - NODE_W / 2, y - NODE_H / 2
    if shape == "diamond":
        hw, hh = NODE_W / 2, NODE_H / 2
        out.append(f'<polygon points="{x:.1f},{y - hh:.1f} {x + hw:.1f},{y:.1f} {x:.1f},{y + hh:.1f} '
                   f'{x - hw:.1f},{y:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>')
    elif shape == "terminal":
        out.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{NODE_W}" height="{NODE_H}" '
                   f'rx="{NODE_H / 2:.0f}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>')
    elif shape == "bar":
        out.append(f'<rect x="{left:.1f}" y="{y - 12:.1f}" width="{NODE_W}" height="24" rx="4" '
                   f'fill="{"#fff4d6" if current else "#d0d7de"}" stroke="{stroke}" stroke-width="{width}"/>')
    else:
        out.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
                   f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>')
    weight = ' font-weight="600"' if current else ""
    out.append(f'<text x="{x:.1f}" y="{y + 4.5:.1f}" text-anchor="middle" fill="#1b1f24"{weight}>'
               f"{escape(fit(label))}</text>")
    out.append("</g>")
    return "".join(out)


__all__ = ["Edge", "Layout", "flow_edges", "fit", "layout", "node_text", "render_svg"]
