"""`rules/*.yaml`: the rule-set definition kind (event-condition-action rules over one form)."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType
from typing import Any

from engine.actions import ActionScope
from engine.durations import parse_duration
from engine.kinds import CRASHED, BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.yamlsource import Document
from rules.exprs import compile_expr, scope_of
from rules.spec import CompiledAction, RetryPolicy, RuleSetSpec, RuleSpec
from rules.triggers import TRIGGER_SCHEMA, flow_nodes, parse_triggers

COMMON_ACTION_SCHEMA: dict[str, Any] = {
    "required": ["action"],
    "properties": {
        "action": {"type": "string", "description": "the action type"},
        "label": LABEL_SCHEMA,
    },
}

RULE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["on", "do"],
    "additionalProperties": False,
    "properties": {
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "on": TRIGGER_SCHEMA,
        "when": {"type": ["string", "boolean"], "description": "a condition over the record"},
        "do": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "enabled": {"type": "boolean"},
        "retry": {"type": "object", "additionalProperties": False, "properties": {
            "attempts": {"type": "integer", "minimum": 0, "maximum": 20},
            "delay": {"type": "string", "description": "first retry delay, e.g. 5m; doubles each time"},
        }},
    },
}


class RuleSetKind:
    """`ruleset: name`, `form: form`, `rules: {name: {on, when, do}}`."""

    name = "ruleset"
    aliases: tuple[str, ...] = ()
    folder = "rules"
    key = "ruleset"
    order = 40
    dispatch = (Dispatch(("rules", "*", "do", "*"), "actions", COMMON_ACTION_SCHEMA, "action"),)
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["ruleset", "rules"],
        "additionalProperties": False,
        "properties": {
            "ruleset": {"type": "string", "pattern": NAME_PATTERN},
            "form": {"type": "string", "description": "the form whose records the rules watch"},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "rules": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                      "additionalProperties": RULE_SCHEMA},
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> RuleSetSpec | None:
        data = doc.data
        forms = ctx.definitions.get("form", {})
        form_name = data.get("form")
        form = forms.get(form_name) if form_name else None
        if form_name and form is None:
            ctx.unknown(doc, ("form",), "form", form_name, forms)
        names = scope_of(ctx, form_name) if (form is not None or not form_name) else None
        nodes = flow_nodes(ctx, form_name)
        rules: dict[str, RuleSpec] = {}
        ok = True
        for rule_name, raw in data["rules"].items():
            path = ("rules", rule_name)
            before = len(ctx.diags.errors)
            triggers = parse_triggers(raw["on"], ctx, doc, path + ("on",), form=form, node_ids=nodes)
            if not form_name:
                for trig in triggers:
                    if trig.event != "schedule":
                        ctx.error(doc, path + ("on",), f"'{trig.event}' needs the rule set's `form:`",
                                  code="trigger", hint="rules without a form run on a schedule only")
            when = None
            if "when" in raw:
                when = compile_expr(ctx, doc, path + ("when",), names)
            scope = ActionScope(form_name, names, "rule")
            actions = compile_actions(raw["do"], ctx, doc, path + ("do",), scope)
            retry = _retry(raw.get("retry"), ctx, doc, path + ("retry",))
            if len(ctx.diags.errors) != before:
                ok = False
                continue
            rules[rule_name] = RuleSpec(
                data["ruleset"], rule_name, raw.get("label", rule_name), form_name, triggers, when,
                actions, retry, doc.source_map.key(path), bool(raw.get("enabled", True)))
        if not ok or (form_name and form is None):
            return None
        return RuleSetSpec(data["ruleset"], form_name, data.get("label", data["ruleset"]),
                           MappingProxyType(rules), doc.span(()))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


def compile_actions(items: list[Any], ctx: BuildContext, doc: Document, path: tuple[Any, ...],
                    scope: ActionScope) -> tuple[CompiledAction, ...]:
    """Compile each `- action: ...` step at `path` through its registered action type."""
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or not isinstance(raw.get("action"), str):
            continue  # reported by the schema check
        action = ctx.registry.actions.get(raw["action"])
        if action is None:
            continue  # unknown action: reported by the schema check with a hint
        if scope.form is None and getattr(action, "needs_record", True):
            ctx.error(doc, path + (i, "action"), f"the '{action.name}' action needs a record",
                      code="action-needs-record", hint="only rules over a form's records can use it")
            continue
        options = {k: v for k, v in raw.items() if k not in COMMON_ACTION_SCHEMA["properties"]}
        compiled = ctx.guarded(lambda: action.compile(options, ctx, doc, path + (i,), scope),
                               doc, path + (i, "action"), f"compiling the '{action.name}' action",
                               source=ctx.registry.actions.source(action.name))
        if compiled is CRASHED:
            continue  # reported at the step; the rule's other steps are still checked
        out.append(CompiledAction(action.name, compiled, doc.source_map.value(path + (i,)), i))
    return tuple(out)


def _retry(raw: Any, ctx: BuildContext, doc: Document, path: tuple[Any, ...]) -> RetryPolicy:
    if not raw:
        return RetryPolicy()
    delay = timedelta(minutes=5)
    if "delay" in raw:
        try:
            delay = parse_duration(str(raw["delay"])).to_timedelta()
        except ValueError as exc:
            ctx.error(doc, path + ("delay",), str(exc), code="duration")
    return RetryPolicy(int(raw.get("attempts", 3)), delay)
