"""`countersign` (会签): one task per assignee; all, any, or "N of M" of them must approve."""

from __future__ import annotations

import re
from typing import Any

from engine.errors import ConflictError
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA
from engine.types import YamlPath
from engine.yamlsource import Document
from flows.nodes.base import DUE_SCHEMA, SHOW_FIELDS_SCHEMA, NodeType, check_people_and_fields, compile_due
from flows.spec import NodeSpec

N_OF_M = re.compile(r"^([1-9][0-9]*) of ([1-9][0-9]*)$")


class Countersign(NodeType):
    name = "countersign"
    description = ("One task per assignee (users, a role's users, or departments); decided once "
                   "`complete_when` (all | any | \"N of M\") approvals are in, or can no longer be; "
                   "open tasks are then cancelled and `flow.<node>` holds the outcome.")
    options_schema = {"required": ["assign"], "properties": {
        "assign": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                   "description": ("`users: [..]` one task per user, `role: r` one per holder of that role, "
                                   "`departments: [..]` one per department (for people of several roles, "
                                   "list their departments)"),
                   "properties": {
                       "users": {"type": "array", "minItems": 1, "uniqueItems": True,
                                 "items": {"type": "string"}},
                       "role": {"type": "string"},
                       "departments": {"type": "array", "minItems": 1, "uniqueItems": True,
                                       "items": {"type": "string"}},
                   }},
        "complete_when": {"type": "string", "pattern": r"^(all|any|[1-9][0-9]* of [1-9][0-9]*)$",
                          "description": "all (default), any, or \"N of M\" approvals"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "show": SHOW_FIELDS_SCHEMA,
        "instructions": LABEL_SCHEMA,
        "status": {"type": "string", "description": "record status while at this step"},
        "due": DUE_SCHEMA,
    }}
    examples = ("assess:\n  type: countersign\n  assign: {departments: [marketing, operations, finance]}\n"
                "  complete_when: 2 of 3\n  due: 1 workdays\n  next: decide\n",)

    def compile(self, node: NodeSpec, flow: Any, ctx: BuildContext, doc: Document,
                path: YamlPath, scope: set[str]) -> dict[str, Any]:
        check_people_and_fields(node, flow, ctx, doc, path)
        assign = node.options.get("assign", {})
        rule = str(node.options.get("complete_when", "all"))
        compiled: dict[str, Any] = {"need": rule}
        due = compile_due(node, ctx, doc, path, scope)
        if due is not None:
            compiled["due"] = due  # every assignee's task is due at the same time
        match = N_OF_M.match(rule)
        if match:
            n, m = int(match[1]), int(match[2])
            listed = len(assign.get("users") or assign.get("departments") or []) or None
            if n > m:
                ctx.error(doc, path + ("complete_when",), f"'{rule}': N cannot be more than M",
                          code="countersign")
            elif listed is not None and listed != m:
                ctx.error(doc, path + ("complete_when",),
                          f"'{rule}' but {listed} assignees are listed", code="countersign")
            compiled["need"] = n
        return compiled

    def enter(self, run: Any) -> None:
        assign = run.node.options["assign"]
        if "departments" in assign:
            tasks = [{"department": dep, "candidates": run.users_in_department(dep)}
                     for dep in assign["departments"]]
        else:
            people = assign.get("users") or run.users_with_role(assign["role"])
            tasks = [{"user": username} for username in people]
        total = len(tasks)
        need = run.node.compiled["need"]
        need = total if need == "all" else 1 if need == "any" else need
        if total == 0 or need > total:
            run.incident(f"{need} approvals are needed but only {total} can countersign")
        for task in tasks:
            run.create_task(task)
        run.variables[run.node.id] = {"approved": 0, "rejected": 0, "total": total, "needed": need,
                                      "outcome": None}

    def recorded_outcomes(self, node: NodeSpec) -> frozenset[str]:
        return frozenset({"approved", "rejected"})

    def check_completion(self, node: NodeSpec, outcome: str | None, comment: str | None,
                         return_to: str | None) -> None:
        if outcome not in ("approve", "reject"):
            raise ConflictError("choose one of: approve, reject")

    def on_task_completed(self, run: Any, task: Any, outcome: str | None) -> None:
        tally = dict(run.variables[run.node.id])
        tally["approved" if outcome == "approve" else "rejected"] += 1
        if tally["approved"] >= tally["needed"]:
            tally["outcome"] = "approved"
        elif tally["rejected"] > tally["total"] - tally["needed"]:
            tally["outcome"] = "rejected"
        run.variables[run.node.id] = tally
        if tally["outcome"] is None:
            return  # the token waits for more votes
        cancelled = run.cancel_open_tasks()
        run.history("countersign.decided", {**tally, "cancelled": cancelled})
        run.move_to(run.node.next)
