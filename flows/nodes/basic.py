"""The basic node types: start, task, decision, end."""

from __future__ import annotations

from typing import Any, Iterator

from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import (ASSIGN_SCHEMA, DUE_SCHEMA, ESCALATION_SCHEMA, HIDDEN_FIELDS_SCHEMA,
                              SHOW_FIELDS_SCHEMA, TIMEOUT_SCHEMA, NodeType, check_people_and_fields,
                              compile_assign, compile_due, compile_escalation, compile_timeout,
                              timeout_target, warn_due_after_timeout)
from flows.spec import NodeSpec

class Start(NodeType):
    name = "start"
    description = "Where the flow begins; moves on at once."
    examples = ("begin:\n  type: start\n  next: accept\n",)

    def enter(self, run: Any) -> None:
        run.move_to(run.node.next)


def check_customer_step(node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document, path: YamlPath) -> None:
    """A step the customer answers from the progress lookup must ask for something, on a form
    customers can look up."""
    where = path + ("customer",)
    form = ctx.definitions.get("form", {}).get(flow["form"])
    if not node.options.get("fields"):
        ctx.error(doc, where, "a step the customer answers needs `fields`: what the customer fills in",
                  code="customer-step")
    if form is None:
        return
    if not getattr(form, "lookup", None) or not getattr(form, "numbering", None):
        ctx.error(doc, where, f"customers reach this step through the progress lookup, but form "
                              f"'{flow['form']}' has no `lookup` (with a query number)", code="customer-step")
    asked = [form.fields[name] for name in node.options.get("fields", []) if name in form.fields]
    if asked and not any(spec.required or spec.required_if is not None for spec in asked):
        # Staff see the record when they complete a step; a customer may just press the button.
        ctx.warning(doc, where, "the customer may answer this step empty: none of its fields is required",
                    code="customer-step", hint=f"make one required while the record waits here, e.g. "
                                               f"required_if: status == \"...\" on '{asked[0].name}'")


class Task(NodeType):
    name = "task"
    aliases = ("user_task",)
    description = "A person fills in the fields allowed at this step, then the flow moves on."
    options_schema = {"properties": {
        "assign": ASSIGN_SCHEMA,
        "fields": {"type": "array", "items": {"type": "string"},
                   "description": "form fields this step may edit"},
        "hidden_fields": HIDDEN_FIELDS_SCHEMA,
        "show": SHOW_FIELDS_SCHEMA,
        "outcomes": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}},
        "instructions": LABEL_SCHEMA,
        "status": {"type": "string", "description": "record status while at this step"},
        "escalation": ESCALATION_SCHEMA,
        "due": DUE_SCHEMA,
        "timeout": TIMEOUT_SCHEMA,
        "customer": {
            "description": "the customer may also answer this step (its fields) on the progress lookup "
                           "page, after giving the query number and the digits it asks for",
            "anyOf": [{"const": True},
                      {"type": "object", "additionalProperties": False,
                       "properties": {"prompt": LABEL_SCHEMA}}]},
    }}
    examples = ("accept:\n  type: task\n  label: {zh-CN: 受理, en: Accept}\n  assign: {role: agent}\n"
                "  fields: [urgency, category]\n  due: 2 workhours\n  next: done\n",
                "confirm:\n  type: task\n  label: {zh-CN: 客户确认, en: Customer confirmation}\n"
                "  assign: {role: agent}\n  fields: [customer_confirmed, satisfaction]\n"
                "  customer: {prompt: {zh-CN: 请确认是否已解决并评分。, en: Is it resolved? Please rate it.}}\n"
                "  next: done\n")

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        check_people_and_fields(node, flow, ctx, doc, path)
        if node.options.get("customer") is not None:
            check_customer_step(node, flow, ctx, doc, path)
        assign = node.options.get("assign") or {}
        if not set(assign) - {"cc", "strategy"}:
            # Forgotten `assign:`: no inbox offers the task, and the record waits at it.
            ctx.warning(doc, path + (("assign",) if "assign" in node.options else ("type",)),
                        f"the {node.type} '{node.id}' is offered to no one: no inbox shows it, and "
                        "records wait at it", code="task-no-assignee",
                        hint="say who works on it: assign: {role: ...} (or user:, department:, "
                             "expression:, submitter: true)")
        compiled: dict[str, Any] = {
            "assign": compile_assign(node.options.get("assign", {}), flow, ctx, doc, path + ("assign",), scope),
        }
        if node.options.get("escalation"):
            compiled["escalation"] = compile_escalation(node, flow, ctx, doc, path, scope)
        timeout = compile_timeout(node, ctx, doc, path)
        if timeout is not None:
            compiled["timeout"] = timeout
        due = compile_due(node, ctx, doc, path, scope)
        if due is not None:
            compiled["due"] = due
            if timeout is not None:
                warn_due_after_timeout(due, timeout[0], ctx, doc, path)
        return compiled

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        yield from super().targets(node)
        yield from timeout_target(node)

    def enter(self, run: Any) -> None:
        run.create_task()
        timeout = run.node.compiled.get("timeout")
        if timeout is not None:
            run.schedule_timeout(*timeout)

    def on_task_completed(self, run: Any, task: Any, outcome: str | None) -> None:
        # `flow.<node>` tells later nodes what happened here (e.g. `"manager_review" in flow`).
        run.variables[run.node.id] = {"outcome": outcome, "by": run.actor}
        run.move_to(run.node.next)


class Decision(NodeType):
    name = "decision"
    aliases = ("gateway", "exclusive")
    description = "Takes the first branch whose condition holds; `else` when none does."
    needs_next = False
    options_schema = {"required": ["branches"], "properties": {
        "branches": {"type": "array", "minItems": 1, "items": {
            "type": "object", "additionalProperties": False,
            "properties": {"when": {"type": ["string", "boolean"]}, "to": {"type": "string"},
                           "else": {"type": "string"}, "label": LABEL_SCHEMA},
        }},
    }}
    examples = ("route:\n  type: decision\n  branches:\n    - when: urgency == \"urgent\"\n"
                "      to: exception_team\n    - else: handle\n",)

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        for i, branch in enumerate(node.options.get("branches", [])):
            for key in ("to", "else"):
                if key in branch:
                    yield ("branches", i, key), branch[key]

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        branches = node.options.get("branches", [])
        conditions = []
        for i, branch in enumerate(branches):
            bpath = path + ("branches", i)
            if "else" in branch:
                if "when" in branch or "to" in branch:
                    ctx.error(doc, bpath, "an else branch has only 'else: node'", code="decision")
                if i != len(branches) - 1:
                    ctx.error(doc, bpath + ("else",), "'else' must be the last branch", code="decision",
                              hint="move the branches after it above it: branches are tried in order, "
                                   "and else takes every record that reaches it")
                conditions.append((None, branch["else"]))
                continue
            if "when" not in branch or "to" not in branch:
                ctx.error(doc, bpath, "a branch needs 'when: condition' and 'to: node'", code="decision")
                continue
            conditions.append((ctx.expression(doc, bpath + ("when",), scope), branch["to"]))
        if not any(cond is None for cond, _ in conditions):
            ctx.error(doc, path + ("branches",),
                      "decision has no 'else' branch: a record matching no condition would be stuck",
                      code="decision-no-else", hint="add '- else: <node>' as the last branch")
        return {"branches": tuple(conditions)}

    def enter(self, run: Any) -> None:
        for condition, target in run.node.compiled["branches"]:
            if condition is None or run.evaluate(condition):
                run.move_to(target)
                return
        run.incident("no branch of the decision matched")


class End(NodeType):
    name = "end"
    description = "Ends the flow with an outcome (resolved, rejected, withdrawn...)."
    terminal = True
    needs_next = False
    options_schema = {"properties": {"outcome": {"type": "string", "pattern": NAME_PATTERN},
                                     "status": {"type": "string"}}}
    examples = ("closed:\n  type: end\n  outcome: resolved\n",)

    def targets(self, node: NodeSpec) -> Iterator[tuple[YamlPath, str]]:
        return iter(())

    def enter(self, run: Any) -> None:
        run.end(run.node.options.get("outcome", "completed"))
