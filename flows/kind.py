"""`flows/*.yaml`: the flow definition kind."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from engine.errors import did_you_mean
from engine.expr import Members, Names
from engine.kinds import CRASHED, BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.yamlsource import Document
from flows.graph import check_graph, renamed_to, unknown_node
from flows.spec import FlowSpec, NodeSpec
from forms.statuses import node_statuses, status_list

COMMON_NODE_SCHEMA: dict[str, Any] = {
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "description": "the node type"},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "next": {"type": "string", "description": "the node that follows"},
    },
}

EXPRESSION_NAMES = frozenset({"user", "record", "query_no", "status", "created_at", "flow"})
"""Besides the form's fields: `flow` holds the instance variables nodes write, e.g.
`flow.assess.outcome == "approved"` after the countersign node `assess`."""


def _check_statuses(raw_nodes: dict[str, Any], form: Any, doc: Document, ctx: BuildContext) -> None:
    """A status outside the form's status list would show to the customer as its bare code in
    the progress lookup (and in the staff's lists): name it in the list or fix the spelling."""
    listed = status_list(form, ctx)
    if listed is None:
        return
    values = listed.values()
    for node_id, raw in raw_nodes.items():
        for where, status in node_statuses(raw):
            if str(status) not in values:
                path = ("nodes", node_id, *where)
                hint = did_you_mean(str(status), values) or (
                    f"add it to lists/ '{listed.name}' or use one of: {', '.join(sorted(values))}")
                ctx.error(doc, path, f"status '{status}' is not in the list '{listed.name}' that names "
                          f"the statuses of form '{form.name}' (its lookup's `statuses`)",
                          code="unknown-status", hint=hint)
    if "withdrawn" not in values:
        # Any running record can be withdrawn by its submitter: the engine then sets this status.
        ctx.warning(doc, ("form",), f"a record of form '{form.name}' becomes 'withdrawn' when its "
                    f"submitter withdraws it, and the list '{listed.name}' that names its statuses has "
                    "no 'withdrawn': the progress lookup would show the bare code",
                    code="unknown-status", hint=f"add withdrawn (已撤回 / Withdrawn) to lists/ '{listed.name}'")


def _flow_scope(form: Any, nodes: Mapping[str, NodeSpec], ctx: BuildContext) -> Names:
    """What the flow's expressions see: the form's fields, `EXPRESSION_NAMES`, and `flow` with
    one member per node, whose `.outcome` holds one of the outcomes the node records. A misspelt
    node or outcome would never match, so the record would silently take the other branch; the
    expression check reports it at the name instead."""
    outcomes = {}
    for node_id, node in nodes.items():
        recorded = getattr(ctx.registry.node_types.get(node.type), "recorded_outcomes", None)
        found = recorded(node) if recorded is not None else None  # a plugin need not derive from NodeType
        if found is not None:
            outcomes[f"flow.{node_id}.outcome"] = found
    return form.expression_names(EXPRESSION_NAMES).with_members("flow", Members("node", frozenset(nodes)), outcomes)


class FlowKind:
    """`flow: name`, `form: form`, `start: node`, `nodes: {id: {type: ...}}`."""

    name = "flow"
    aliases: tuple[str, ...] = ()
    folder = "flows"
    key = "flow"
    order = 20
    dispatch = (Dispatch(("nodes", "*"), "node_types", COMMON_NODE_SCHEMA),)
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["flow", "form", "start", "nodes"],
        "additionalProperties": False,
        "properties": {
            "flow": {"type": "string", "pattern": NAME_PATTERN},
            "form": {"type": "string"},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "start": {"type": "string", "description": "the first node"},
            "start_on_create": {"type": "boolean", "description": "start when a record is created (default true)"},
            "reopen": {"type": "object", "additionalProperties": False,
                       "description": "who may reopen an ended record from its page, and at which steps",
                       "properties": {
                           "roles": {"type": "array", "items": {"type": "string"}, "uniqueItems": True,
                                     "description": "besides administrators"},
                           "at": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
                                  "description": "the steps it may restart at (default: every step a person works)"}}},
            "nodes": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                      "additionalProperties": {"type": "object"}},
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> FlowSpec | None:
        data = doc.data
        forms = ctx.definitions.get("form", {})
        form = forms.get(data["form"])
        if form is None:
            ctx.unknown(doc, ("form",), "form", data["form"], forms)
        raw_nodes = data["nodes"]
        nodes: dict[str, NodeSpec] = {}
        for node_id, raw in raw_nodes.items():
            options = {k: v for k, v in raw.items() if k not in COMMON_NODE_SCHEMA["properties"]}
            nodes[node_id] = NodeSpec(node_id, ctx.registry.node_types.canonical(raw["type"]) or raw["type"],
                                      raw.get("label", node_id), doc.source_map.key(("nodes", node_id)),
                                      MappingProxyType(options), raw.get("next"))
        if data["start"] not in nodes:
            ctx.unknown(doc, ("start",), "node", data["start"], nodes)
        check_graph(nodes, data["start"], doc, ctx)
        scope = _flow_scope(form, nodes, ctx) if form else set(EXPRESSION_NAMES)
        if form is not None:
            _check_statuses(raw_nodes, form, doc, ctx)
        reopen = data.get("reopen") or {}
        for i, role in enumerate(reopen.get("roles", [])):
            if ctx.meta is not None and role not in ctx.meta.roles:
                ctx.unknown(doc, ("reopen", "roles", i), "role", role, ctx.meta.roles)
        for i, node_id in enumerate(reopen.get("at", [])):
            if node_id not in nodes:
                unknown_node(ctx, doc, ("reopen", "at", i), node_id, nodes, renamed_to(nodes, data["start"], ctx.registry))
        compiled_nodes = {}
        for node_id, node in nodes.items():
            # Without its form the nodes are still checked (roles, graph); expressions are not,
            # since their names are the form's fields (scope None skips them).
            ntype = ctx.registry.node_types.get(node.type)
            if ntype is None:  # reported by the schema check; the rest is still checked
                compiled_nodes[node_id] = node
                continue
            compiled = ctx.guarded(
                lambda: ntype.compile(node, data, ctx, doc, ("nodes", node_id), scope if form is not None else None),
                doc, ("nodes", node_id, "type"), f"compiling node '{node_id}' (type '{ntype.name}')",
                source=ctx.registry.node_types.source(node.type))
            if compiled is CRASHED:
                continue  # reported at the node; the flow is not built, its other nodes are still checked
            if compiled is not None and not isinstance(compiled, Mapping):
                source = ctx.registry.node_types.source(node.type)
                ctx.error(doc, ("nodes", node_id, "type"),
                          f"node type '{ntype.name}' (from {source}): compile() returned "
                          f"{type(compiled).__name__}, not a dict of what the run needs",
                          code="plugin-compile", hint=f"a bug in the plugin {source}, not in this file")
                compiled = None
            compiled_nodes[node_id] = NodeSpec(node.id, node.type, node.label, node.span, node.options,
                                               node.next, MappingProxyType(compiled or {}))
        if form is None or len(compiled_nodes) != len(nodes) or any(
                ctx.registry.node_types.get(n.type) is None for n in nodes.values()):
            return None
        return FlowSpec(data["flow"], data["form"], data.get("label", data["flow"]), data["start"],
                        MappingProxyType(compiled_nodes), doc.span(()),
                        bool(data.get("start_on_create", True)),
                        tuple(reopen.get("roles", ())), tuple(reopen.get("at", ())))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        """Checks across flows, e.g. that a subflow node names an existing flow."""
        for name, flow in bundle.all("flow").items():
            doc = ctx.doc("flow", name)
            for node_id, node in flow.nodes.items():
                ntype = ctx.registry.node_types.get(node.type)
                if ntype is not None:
                    ctx.guarded(lambda: ntype.check_bundle(node, flow, bundle, ctx, doc, ("nodes", node_id)),
                                doc, ("nodes", node_id, "type"), f"checking node '{node_id}' (type '{ntype.name}')",
                                source=ctx.registry.node_types.source(node.type))
