"""`sla/*.yaml`: service-level policies (response and resolution targets, warnings, escalation).

    sla: complaint_sla
    form: complaint
    counting: business          # the bundle calendar (default); wall: around the clock
    yellow_at: 20%              # yellow when this share of the target time is left
    targets:
      response: {label: 首次响应, stops: {task.completed: accept}}
      resolution: {label: 办结, stops: flow.ended, restarts: flow.reopened}
    levels:                     # the first level whose `when` holds sets the targets
      - when: urgency == "urgent"
        response: 1 workhours
        resolution: 1 workdays
      - response: 1 workdays    # no `when`: every other record
        resolution: 2 workdays
    pause: {statuses: [awaiting_reply]}
    escalation: {when: 'urgency == "urgent"', every: 2h, chain: [supervisor, manager]}
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from engine.durations import Duration, as_value, parse_duration
from engine.errors import did_you_mean, wide_punctuation_hint
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import YamlPath
from engine.yamlsource import Document
from forms.statuses import ENGINE_STATUSES, record_statuses
from rules.exprs import compile_expr, scope_of
from rules.spec import SlaEscalation, SlaLevel, SlaPolicy, SlaTarget, Trigger
from rules.triggers import TRIGGER_SCHEMA, flow_nodes, parse_triggers

CLOCK_EVENTS = ("record.created", "record.updated", "task.created", "task.completed",
                "flow.entered", "flow.ended", "flow.reopened")

SLA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sla", "form", "targets", "levels"],
    "additionalProperties": False,
    "properties": {
        "sla": {"type": "string", "pattern": NAME_PATTERN},
        "form": {"type": "string"},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "counting": {"enum": ["business", "wall"]},
        "yellow_at": {"type": ["string", "number"], "description": "share of time left, e.g. 20%"},
        "targets": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {"type": "object", "additionalProperties": False,
                                             "required": ["stops"], "properties": {
                                                 "label": LABEL_SCHEMA, "starts": TRIGGER_SCHEMA,
                                                 "stops": TRIGGER_SCHEMA, "restarts": TRIGGER_SCHEMA}}},
        "levels": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "pause": {"type": "object", "additionalProperties": False, "properties": {
            "statuses": {"type": "array", "items": {"type": "string"}},
            "nodes": {"type": "array", "items": {"type": "string"}}}},
        "escalation": {"type": "object", "additionalProperties": False, "required": ["every", "chain"],
                       "properties": {
                           "when": {"type": ["string", "boolean"]},
                           "every": {"type": "string", "description": "e.g. 2h: without a status update"},
                           "chain": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                     "description": "roles, one step up each time"}}},
    },
}


class SlaPolicyKind:
    """The SLA policy definition kind (folder `sla/`)."""

    name = "sla"
    aliases: tuple[str, ...] = ()
    folder = "sla"
    key = "sla"
    order = 35
    dispatch: tuple[Any, ...] = ()
    options_schema = SLA_SCHEMA

    def build(self, doc: Document, ctx: BuildContext) -> SlaPolicy | None:
        data = doc.data
        before = len(ctx.diags.errors)
        forms = ctx.definitions.get("form", {})
        form = forms.get(data["form"])
        if form is None:
            ctx.unknown(doc, ("form",), "form", data["form"], forms)
            return None
        names = scope_of(ctx, data["form"])
        nodes = flow_nodes(ctx, data["form"])
        share = _share(data.get("yellow_at", "20%"), ctx, doc)
        targets = {}
        for tname, raw in data["targets"].items():
            tpath = ("targets", tname)
            starts = (parse_triggers(raw["starts"], ctx, doc, tpath + ("starts",), form=form,
                                     node_ids=nodes, allowed=CLOCK_EVENTS)
                      if "starts" in raw else (Trigger("record.created"),))
            stops = parse_triggers(raw["stops"], ctx, doc, tpath + ("stops",), form=form,
                                   node_ids=nodes, allowed=CLOCK_EVENTS)
            restarts = (parse_triggers(raw["restarts"], ctx, doc, tpath + ("restarts",), form=form,
                                       node_ids=nodes, allowed=CLOCK_EVENTS) if "restarts" in raw else ())
            targets[tname] = SlaTarget(tname, raw.get("label", tname), starts, stops, restarts)
        levels = []
        level_names: set[str] = set()
        for i, raw in enumerate(data["levels"]):
            lpath = ("levels", i)
            if not isinstance(raw, dict):
                ctx.error(doc, lpath, "a level is a mapping: when, then one duration per target",
                          code="sla")
                continue
            when = None
            if "when" in raw:
                when = compile_expr(ctx, doc, lpath + ("when",), names)
                if when is not None:
                    level_names |= set(when.names_used)
            elif i != len(data["levels"]) - 1:
                ctx.error(doc, lpath, "only the last level may leave out `when` (it matches "
                          "every record)", code="sla", hint="move it to the end: levels are tried in order, "
                          "so the ones after it would never apply")
            durations = {}
            for key, value in raw.items():
                if key in ("when", "label"):
                    continue
                if key not in targets:
                    ctx.unknown(doc, lpath + (key,), "target", key, targets)
                    continue
                try:
                    durations[key] = as_value(parse_duration(str(value)))
                except ValueError as exc:
                    ctx.error(doc, lpath + (key,), str(exc), code="duration")
                    continue
                if data.get("counting", "business") == "business":
                    _warn_calendar_days(ctx, doc, lpath + (key,), parse_duration(str(value)))
            for tname in targets:
                if tname not in raw:
                    ctx.error(doc, lpath, f"the level gives no time for the target '{tname}'",
                              code="sla")
            levels.append(SlaLevel(when, MappingProxyType(durations), doc.source_map.value(lpath)))
        if all(isinstance(level, dict) and "when" in level for level in data["levels"]):
            ctx.warning(doc, ("levels",), "every level has a condition: a record matching none has "
                        "no SLA", code="sla-no-default")
        pause = data.get("pause", {})
        statuses = record_statuses(form, ctx)
        for i, status in enumerate(pause.get("statuses", [])):
            # A status no record can have would never pause the clock, silently.
            known = (statuses or set()) | ENGINE_STATUSES
            if statuses is not None and status not in known:
                ctx.error(doc, ("pause", "statuses", i), f"unknown status '{status}': no record of "
                          f"form '{form.name}' ever has it",
                          code="unknown-status", hint=did_you_mean(str(status), known)
                          or f"known statuses: {', '.join(sorted(known))}")
        for i, node in enumerate(pause.get("nodes", [])):
            if nodes is not None and node not in nodes:
                ctx.unknown(doc, ("pause", "nodes", i), "node", node, nodes)
        escalation = None
        raw_esc = data.get("escalation")
        if raw_esc:
            meta = ctx.meta
            for i, role in enumerate(raw_esc["chain"]):
                if meta is not None and role not in meta.roles:
                    ctx.unknown(doc, ("escalation", "chain", i), "role", role, meta.roles)
            every = None
            try:
                every = as_value(parse_duration(raw_esc["every"]))
            except ValueError as exc:
                ctx.error(doc, ("escalation", "every"), str(exc), code="duration")
            when = compile_expr(ctx, doc, ("escalation", "when"), names) if "when" in raw_esc else None
            escalation = SlaEscalation(when, every, tuple(raw_esc["chain"]))
        if len(ctx.diags.errors) != before:
            return None
        return SlaPolicy(
            data["sla"], data["form"], data.get("label", data["sla"]), data.get("counting", "business"),
            share, MappingProxyType(targets), tuple(levels), frozenset(pause.get("statuses", ())),
            frozenset(pause.get("nodes", ())), escalation, doc.span(()), frozenset(level_names))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


def _warn_calendar_days(ctx: BuildContext, doc: Document, path: YamlPath, amount: Duration) -> None:
    """`5 days` in a business-counted SLA is 120 working hours (some 16 working days), not the
    5 working days an analyst writing a service level means: say so, and what to write."""
    if amount.unit not in ("days", "weeks"):
        return  # hours are working hours by design (`24h` is 24 working hours)
    calendar = getattr(ctx.meta, "calendar", None)
    if calendar is None:
        return  # without a calendar every hour is a working hour: 5 days are 5 days
    hours = amount.to_timedelta().total_seconds() / 3600
    day = calendar.workday_length.total_seconds() / 3600
    number = f"{amount.amount:g}"
    ctx.warning(doc, path, f"'{amount}' is counted in working time here (counting: business): "
                           f"{hours:g} working hours, about {hours / day:.3g} working days",
                code="sla-calendar-days",
                hint=f"write '{number} workdays' for working days, or `counting: wall` for calendar days")


def _share(raw: Any, ctx: BuildContext, doc: Document) -> float:
    try:
        if isinstance(raw, str) and raw.strip().endswith("%"):
            value = float(raw.strip()[:-1]) / 100
        else:
            value = float(raw)
    except ValueError:
        ctx.error(doc, ("yellow_at",), f"'{raw}' is not a share: write e.g. 20%", code="sla",
                  hint=wide_punctuation_hint(str(raw)))
        return 0.2
    if not 0 <= value < 1:
        # `yellow_at: 20` means 20%, read as 20 times the target: say what to write.
        plain = not (isinstance(raw, str) and raw.strip().endswith("%")) and 1 <= value < 100
        ctx.error(doc, ("yellow_at",), "the yellow share must be between 0% and 100%"
                  + (f": {raw} without % is {value:.0%}" if plain else ""), code="sla",
                  hint=f"write {raw}% (or {value / 100:g})" if plain else None)
        return 0.2
    return value
