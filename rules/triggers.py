"""`on:` of a rule (and `starts:`/`stops:` of an SLA target): which events start it.

Written as one event, a mapping of one event to its filter, or a list of either:

    on: record.created
    on: {record.updated: [urgency, amount_claimed]}   # any of these fields changed
    on: {flow.entered: resolve}                       # a node id (or a list)
    on: {schedule: "0 9 * * mon-fri"}                 # cron, in the bundle's time zone
    on: [record.created, {record.updated: [amount_claimed]}]
"""

from __future__ import annotations

from typing import Any

from engine.kinds import BuildContext
from engine.registry import BUILT_IN
from engine.types import YamlPath
from engine.yamlsource import Document
from rules.spec import Trigger

EVENTS: dict[str, str] = {
    "record.created": "",
    "record.updated": "field",
    "task.created": "node",
    "task.completed": "node",
    "task.escalated": "node",
    "flow.entered": "node",
    "flow.ended": "outcome",
    "flow.reopened": "node",
    "sla.warning": "target",
    "sla.breached": "target",
    "sla.escalated": "target",
    "schedule": "cron",
}
"""Event name -> what its filter names."""

TRIGGER_SCHEMA: dict[str, Any] = {
    "description": "an event, {event: filter}, or a list of them",
    "anyOf": [
        {"type": "string"},
        {"type": "object", "minProperties": 1, "maxProperties": 1},
        {"type": "array", "minItems": 1, "items": {"anyOf": [
            {"type": "string"}, {"type": "object", "minProperties": 1, "maxProperties": 1}]}},
    ],
}


def parse_triggers(raw: Any, ctx: BuildContext, doc: Document, path: YamlPath, *,
                   form: Any, node_ids: set[str] | None, allowed: tuple[str, ...] = tuple(EVENTS)) -> tuple[Trigger, ...]:
    """The triggers written at `path`; unknown events, fields and nodes are reported."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, item in enumerate(items):
        ipath = path + (i,) if isinstance(raw, list) else path
        if isinstance(item, str):
            name, only, fpath = item, None, ipath
        elif isinstance(item, dict) and len(item) == 1:
            (name, only), = item.items()
            fpath = ipath + (name,)
        else:
            ctx.error(doc, ipath, "write an event name, or one event with its filter", code="trigger")
            continue
        if name not in allowed:
            ctx.unknown(doc, ipath, "event", name, allowed, code="unknown-event")
            continue
        what = EVENTS[name]
        if name == "schedule":
            cron = _cron(only, ctx, doc, fpath)
            if cron is not None:
                out.append(Trigger("schedule", frozenset(), cron, doc.source_map.value(ipath)))
            continue
        values: list[Any] = [] if only is None else only if isinstance(only, list) else [only]
        if only is not None and not what:
            ctx.error(doc, fpath, f"'{name}' takes no filter", code="trigger")
        for j, value in enumerate(values):
            vpath = fpath + (j,) if isinstance(only, list) else fpath
            if not isinstance(value, str):
                ctx.error(doc, vpath, f"expected a {what} name", code="trigger")
            elif what == "field" and form is not None and value == "status" and "status" not in form.fields:
                # "Tell the customer at each status" is the natural way to write it; the status is
                # set by the steps a token enters, which publish no record.updated.
                ctx.error(doc, vpath, "the status is not a field: the flow sets it as a record enters a "
                          "step with `status:`", code="unknown-reference", hint=_status_hint(ctx, form.name))
            elif what == "field" and form is not None and value not in form.fields:
                ctx.unknown(doc, vpath, "field", value, form.fields)
            elif what == "node" and node_ids is not None and value not in node_ids:
                ctx.unknown(doc, vpath, "node", value, node_ids)
            elif what in ("target", "outcome") and form is not None:
                # A misspelt target or outcome never matches: the rule would silently never run.
                known = sla_targets(ctx, form.name) if what == "target" else flow_outcomes(ctx, form.name)
                if known is not None and value not in known:
                    ctx.unknown(doc, vpath, "SLA target" if what == "target" else "outcome", value, known)
        out.append(Trigger(name, frozenset(str(v) for v in values), None, doc.source_map.value(ipath)))
    return tuple(out)


def _status_hint(ctx: BuildContext, form: str) -> str:
    """What to react to instead of a status change: the steps of the form's flows that set one."""
    nodes = sorted({node.id for flow in ctx.definitions.get("flow", {}).values() if flow.form == form
                    for node in flow.nodes.values() if node.options.get("status")})
    if not nodes:
        return "react to the steps that set it: on: {flow.entered: [step, ...]}"
    return f"react to the steps that set it: on: {{flow.entered: [{', '.join(nodes)}]}}"


def _cron(value: Any, ctx: BuildContext, doc: Document, path: YamlPath) -> str | None:
    if not isinstance(value, str):
        ctx.error(doc, path, "write the schedule as a cron line, e.g. \"0 9 * * mon-fri\"",
                  code="cron")
        return None
    try:
        from apscheduler.triggers.cron import CronTrigger

        CronTrigger.from_crontab(value, timezone="UTC")
    except (ValueError, TypeError) as exc:
        ctx.error(doc, path, f"'{value}' is not a valid cron line: {exc}", code="cron",
                  hint="five fields: minute hour day month weekday, e.g. \"0 9 * * mon-fri\"")
        return None
    return value


def flow_nodes(ctx: BuildContext, form: str | None) -> set[str] | None:
    """Every node id of the flows over `form` (None when a flow failed to load)."""
    if "flow" in ctx.incomplete:
        return None
    return {node for flow in ctx.definitions.get("flow", {}).values() if flow.form == form
            for node in flow.nodes}


def sla_targets(ctx: BuildContext, form: str) -> set[str] | None:
    """Every target of the SLA policies over `form` (None when an SLA policy failed to load)."""
    if "sla" in ctx.incomplete:
        return None
    return {target for policy in ctx.definitions.get("sla", {}).values() if policy.form == form
            for target in policy.targets}


def flow_outcomes(ctx: BuildContext, form: str) -> set[str] | None:
    """Every outcome a flow over `form` can end with: its end nodes' (`completed` by default)
    and `withdrawn`. None when it is not known: a flow failed to load, or a plugin's node type
    (which may end a flow its own way) is used."""
    if "flow" in ctx.incomplete:
        return None
    found = {"withdrawn"}
    for flow in ctx.definitions.get("flow", {}).values():
        if flow.form != form:
            continue
        for node in flow.nodes.values():
            if node.type not in ctx.registry.node_types or ctx.registry.node_types.source(node.type) != BUILT_IN:
                return None
            if ctx.registry.node_types.get(node.type).name == "end":
                found.add(str(node.options.get("outcome", "completed")))
    return found
