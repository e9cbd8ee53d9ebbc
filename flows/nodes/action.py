"""The `action` node: runs actions from `registry.actions` (set fields, create a record, call a
webhook...) when a token arrives, then moves on. Flows know actions only through the registry
contract (engine/actions.py), never the rule engine that registers the built-in ones."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from engine.actions import ActionContext, ActionScope, step_failure
from engine.kinds import BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, item_schema, report_errors, unknown_keys
from engine.storage.db import savepoint
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import NodeType
from flows.spec import NodeSpec

ACTION_ITEM = Dispatch(("do", "*"), "actions", {
    "required": ["action"],
    "properties": {"action": {"type": "string"}, "label": LABEL_SCHEMA},
}, "action")


def compile_action(raw: Any, ctx: BuildContext, doc: Document, path: YamlPath,
                   scope: ActionScope) -> tuple[str, Any] | None:
    """Validate one `- action: ...` item against its type's schema and compile it."""
    if not isinstance(raw, dict) or not isinstance(raw.get("action"), str):
        ctx.error(doc, path, "each step is a mapping with `action: <type>`", code="action")
        return None
    action = ctx.registry.actions.get(raw["action"])
    if action is None:
        hint = ctx.registry.actions.hint(raw["action"]) or (
            "known actions: " + ", ".join(ctx.registry.actions.names()) if len(ctx.registry.actions) else
            "no action types are installed")
        ctx.error(doc, path + ("action",), f"unknown action '{raw['action']}'", code="unknown-type",
                  hint=hint)
        return None
    validator = Draft202012Validator(item_schema(ACTION_ITEM, action))
    errors = list(validator.iter_errors(raw))
    report_errors(errors, doc, path, ctx.diags)
    if errors:
        # Unknown keys only: compile the step without them, so its other problems (a misspelt
        # field, a bad expression) are reported in the same run.
        unknown = {key for error in errors for key, _allowed in unknown_keys(error)}
        if not unknown or any(error.validator != "additionalProperties" for error in errors):
            return None
        raw = {k: v for k, v in raw.items() if k not in unknown}
        if any(True for _ in validator.iter_errors(raw)):
            return None
    options = {k: v for k, v in raw.items() if k not in ("action", "label")}
    return action.name, action.compile(options, ctx, doc, path, scope)


def run_actions(run: Any, steps: tuple[tuple[str, Any], ...]) -> None:
    """Run compiled steps in a savepoint: all of them, or none and an incident on the flow."""
    rt = run.service.rt
    node = run.node
    act = ActionContext(run.conn, rt, run.flow.form, run.instance["record_id"], run.record, run.actor,
                        None, run.names(), f"flow:{run.flow.name}.{node.id}")
    act.names["record"] = act.record
    index, name = 0, ""
    try:
        with savepoint(run.conn):
            for index, (name, compiled) in enumerate(steps):
                rt.bundle.registry.actions.get(name).run(act, compiled)
    except Exception as exc:  # rolled back to the savepoint: no half-applied step
        reason = step_failure(exc, name, rt.bundle.registry.actions.source(name))
        run.incident(f"step {index + 1} ({name}) failed: {reason}")


class Action(NodeType):
    name = "action"
    aliases = ("service_task",)
    description = "Runs actions (set fields, create a record, webhook...) and moves on."
    options_schema = {"required": ["do"], "properties": {
        "do": {"type": "array", "minItems": 1, "items": {"type": "object"},
               "description": "the actions, each `- action: <type>` with its options"},
        "status": {"type": "string", "description": "record status while here"},
    }}
    examples = ("compensate:\n  type: action\n  do:\n    - action: set\n      fields: {level: 2}\n"
                "  next: done\n",)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str] | None) -> dict[str, Any]:
        # A frozenset already (engine.expr.Names) keeps what it knows of each field's options.
        names = scope if isinstance(scope, frozenset) or scope is None else frozenset(scope)
        action_scope = ActionScope(flow["form"], names, "flow")
        steps = []
        for i, raw in enumerate(node.options.get("do", [])):
            compiled = compile_action(raw, ctx, doc, path + ("do", i), action_scope)
            if compiled is not None:
                steps.append(compiled)
        return {"steps": tuple(steps)}

    def enter(self, run: Any) -> None:
        run_actions(run, run.node.compiled["steps"])
        run.move_to(run.node.next)
