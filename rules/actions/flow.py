"""Actions on the record's flow: assign its open tasks, escalate them, start another flow."""

from __future__ import annotations

from typing import Any, Mapping

from sqlalchemy import select, update

from engine.actions import ActionContext, ActionError, ActionScope, BaseAction
from engine.events import Event
from engine.kinds import BuildContext
from engine.storage.tables import tasks, users
from engine.types import YamlPath
from engine.yamlsource import Document
from rules.actions.common import add_history, open_tasks
from rules.exprs import compile_expr
from rules.triggers import flow_nodes


def _check_node(options: Mapping[str, Any], ctx: BuildContext, doc: Document, path: YamlPath,
                scope: ActionScope) -> None:
    if "node" in options:
        nodes = flow_nodes(ctx, scope.form)
        if nodes is not None and options["node"] not in nodes:
            ctx.unknown(doc, path + ("node",), "node", options["node"], nodes)


class Assign(BaseAction):
    name = "assign"
    aliases = ("reassign",)
    description = ("Hands the record's open tasks (or those at `node`) to a user (an expression "
                   "giving a username) or to a role, whose members may then claim them.")
    options_schema = {"properties": {
        "user": {"type": "string", "description": "an expression giving a username"},
        "role": {"type": "string"},
        "node": {"type": "string", "description": "only the tasks at this node"},
    }}
    examples = ("- action: assign\n  role: supervisor\n", "- action: assign\n  user: \"'alice'\"\n")

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        if ("user" in options) == ("role" in options):
            ctx.error(doc, path, "assign needs exactly one of `user` or `role`", code="action")
        if "role" in options and ctx.meta is not None and options["role"] not in ctx.meta.roles:
            ctx.unknown(doc, path + ("role",), "role", options["role"], ctx.meta.roles)
        _check_node(options, ctx, doc, path, scope)
        user = compile_expr(ctx, doc, path + ("user",), scope.names) if "user" in options else None
        return {"user": user, "role": options.get("role"), "node": options.get("node")}

    def run(self, act: ActionContext, compiled: Any) -> None:
        now = act.runtime.clock.now()
        values: dict[str, Any]
        if compiled["user"] is not None:
            username = act.evaluate(compiled["user"])
            if not username:
                raise ActionError("the assignee expression gave no username")
            user_id = act.conn.execute(select(users.c.id).where(users.c.username == str(username))).scalar()
            if user_id is None:
                raise ActionError(f"no user '{username}' to assign the task to")
            values = {"status": "claimed", "assignee_user": user_id, "claimed_at": now,
                      "candidate_users": [str(username)]}
            to = {"user": str(username)}
        else:
            values = {"status": "open", "assignee_user": None, "claimed_at": None,
                      "candidate_roles": [compiled["role"]], "candidate_users": None}
            to = {"role": compiled["role"]}
        for task in open_tasks(act, compiled["node"]):
            act.conn.execute(update(tasks).where(tasks.c.id == task["id"])
                             .values(**values, version=tasks.c.version + 1))
            add_history(act, "task.reassigned", {"task_id": task["id"], "node": task["node"], **to})
            act.runtime.bus.publish(Event("task.reassigned", now, act.form, act.record_id, act.actor,
                                          {"task_id": task["id"], "node": task["node"], **to}), act.conn)


class Escalate(BaseAction):
    name = "escalate"
    description = ("Escalates the record's open tasks (or those at `node`) to a level (1-3) of "
                   "their node's `escalation:`, through the flow engine.")
    options_schema = {"properties": {
        "level": {"type": ["integer", "string"], "description": "1-3, or an expression"},
        "node": {"type": "string"},
    }}
    examples = ("- action: escalate\n  level: 2\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        _check_node(options, ctx, doc, path, scope)
        level = options.get("level", 1)
        if isinstance(level, str):
            level = compile_expr(ctx, doc, path + ("level",), scope.names)
        elif not 1 <= level <= 3:
            ctx.error(doc, path + ("level",), "escalation levels are 1, 2 and 3", code="action")
        return {"level": level, "node": options.get("node")}

    def run(self, act: ActionContext, compiled: Any) -> None:
        flows = act.service("flows")
        if not hasattr(flows, "escalate"):
            raise ActionError("this flow engine cannot escalate tasks")
        level = act.evaluate(compiled["level"])
        if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 3:
            raise ActionError(f"escalation level must be 1, 2 or 3, got {level!r}")
        for task in open_tasks(act, compiled["node"]):
            if (task.get("escalation_level") or 0) >= level:
                continue  # already there: escalating again would repeat the notices
            flows.escalate(act.conn, task["id"], level, act.actor)


class StartFlow(BaseAction):
    name = "start_flow"
    description = "Starts a flow (one with `start_on_create: false`) on the record."
    options_schema = {"required": ["flow"], "properties": {"flow": {"type": "string"}}}
    examples = ("- action: start_flow\n  flow: ticket_escalation\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        flows = ctx.definitions.get("flow", {})
        flow = flows.get(options["flow"])
        if flow is None:
            if "flow" not in ctx.incomplete:
                ctx.unknown(doc, path + ("flow",), "flow", options["flow"], flows)
        elif flow.form != scope.form:
            ctx.error(doc, path + ("flow",), f"flow '{flow.name}' runs on '{flow.form}' records, "
                      f"not on '{scope.form}'", code="action")
        return {"flow": options["flow"]}

    def run(self, act: ActionContext, compiled: Any) -> None:
        service = act.service("flows")
        flow = service.flows.get(compiled["flow"])
        if flow is None:
            raise ActionError(f"no flow '{compiled['flow']}'")
        instance = service.start(act.conn, flow, act.record_id, actor=act.actor)
        add_history(act, "flow.started_by_rule", {"flow": flow.name, "instance_id": instance})
