"""The flow engine at run time: instances, tokens moving through nodes, tasks and the inbox.

Every command (start, claim, complete) is one transaction: the instance row, its tasks, the
history and the events it publishes commit together or not at all. Node types drive the
movement through a `NodeRun`, the only handle they get on the runtime, so a plugin node type
uses exactly the calls a built-in does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import ConflictError, ExpressionError, NotFoundError
from engine.events import Event
from engine.expr import EvalContext
from engine.runtime import Runtime
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import flow_instances, history, incidents, tasks, users
from flows.spec import FlowSpec, NodeSpec

log = logging.getLogger(__name__)

# Built once and executed with parameters: SQLAlchemy then reuses their compiled form.
_INSERT_HISTORY = insert(history)
_INSERT_TASK = insert(tasks)
_INSERT_INSTANCE = insert(flow_instances)
_SET_CURRENT = (update(flow_instances).where(flow_instances.c.id == bindparam("iid"))
                .values(current=bindparam("current"), version=flow_instances.c.version + 1))
MAX_STEPS_PER_COMMAND = 200
"""A flow that moves through more nodes than this in one command has a loop without a task."""


@dataclass(frozen=True)
class TaskView:
    """An open task as the inbox shows it."""

    id: int
    instance_id: int
    flow: str
    node: str
    label: str
    form: str
    record_id: int
    status: str
    assignee: str | None
    created_at: Any
    version: int


class NodeRun:
    """One token at one node, inside one command's transaction."""

    def __init__(self, service: "FlowService", conn: Connection, instance: Mapping[str, Any],
                 flow: FlowSpec, node: NodeSpec, actor: str | None):
        self.service = service
        self.conn = conn
        self.instance = instance
        self.flow = flow
        self.node = node
        self.actor = actor
        self.moved_to: str | None = None
        self.ended: str | None = None

    @property
    def record(self) -> dict[str, Any]:
        """The record's current values (read inside this transaction)."""
        return self.service.forms.read(self.conn, self.flow.form, self.instance["record_id"])

    def names(self) -> dict[str, Any]:
        """Names an expression in this flow sees: the record's fields and `record` itself."""
        values = self.record
        return {**values, "record": values, "user": {"username": self.actor}}

    def evaluate(self, expression: Any) -> Any:
        """Evaluate a compiled expression over the record; failures raise ExpressionError."""
        return expression.evaluate(self.names(), self.service.eval_context())

    def create_task(self) -> int:
        """Open a task for this node, assigned as the node's `assign` says."""
        assign = self.node.options.get("assign", {})
        assignee = None
        username = assign.get("user")
        if "assignee" in self.node.compiled and self.node.compiled["assignee"] is not None:
            username = self.evaluate(self.node.compiled["assignee"])
        if assign.get("submitter"):
            username = self.record.get("created_by")
        if username:
            assignee = self.service.user_id(self.conn, str(username))
        now = self.service.rt.clock.now()
        task_id = self.conn.execute(_INSERT_TASK, dict(
            instance_id=self.instance["id"], node=self.node.id, form=self.flow.form,
            record_id=self.instance["record_id"], status="claimed" if assignee else "open",
            assignee_user=assignee, candidate_roles=[assign["role"]] if "role" in assign else None,
            candidate_users=[username] if username else None,
            candidate_department=assign.get("department"), created_at=now,
            claimed_at=now if assignee else None,
        )).inserted_primary_key[0]
        self.service.rt.bus.publish(Event("task.created", now, self.flow.form, self.instance["record_id"],
                                          self.actor, {"task_id": task_id, "node": self.node.id}),
                                    self.conn)
        return int(task_id)

    def move_to(self, node_id: str | None) -> None:
        """Leave this node for `node_id` (the caller returns; the service enters the next one)."""
        if node_id is None:
            raise RuntimeError(f"node '{self.node.id}' has no next node")
        self.moved_to = node_id

    def end(self, outcome: str) -> None:
        """End the instance with `outcome`."""
        self.ended = outcome

    def incident(self, message: str) -> None:
        """Stop the token here and leave an incident an admin can see and retry."""
        raise FlowIncident(message)


class FlowIncident(Exception):
    """A node cannot go on (a failing condition, nobody to assign): the instance waits for help."""


class FlowService:
    """Starts flows on new records and moves their tokens; answers inbox queries."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.forms = rt.services["forms"]
        self.flows: dict[str, FlowSpec] = dict(rt.bundle.all("flow"))
        rt.services["flows"] = self
        rt.bus.subscribe("record.created", self._on_record_created)

    def eval_context(self) -> EvalContext:
        return EvalContext(now=self.rt.clock.now(), calendar=self.rt.bundle.meta.calendar,
                           services=self.rt.services)

    def flows_for(self, form: str) -> list[FlowSpec]:
        return [f for f in self.flows.values() if f.form == form and f.start_on_create]

    # -- commands ---------------------------------------------------------------------------
    def _on_record_created(self, event: Event, conn: Connection) -> None:
        for flow in self.flows_for(event.form or ""):
            self.start(conn, flow, int(event.record_id or 0), actor=event.actor)

    def start(self, conn: Connection, flow: FlowSpec, record_id: int, *, actor: str | None) -> int:
        """Start `flow` on a record inside the caller's transaction; returns the instance id."""
        now = self.rt.clock.now()
        instance_id = conn.execute(_INSERT_INSTANCE, dict(
            flow=flow.name, form=flow.form, record_id=record_id, bundle_hash=self.rt.bundle.hash,
            status="running", current=[flow.start], variables={}, started_at=now,
        )).inserted_primary_key[0]
        conn.execute(_INSERT_HISTORY, dict(
            instance_id=instance_id, form=flow.form, record_id=record_id, kind="flow.started",
            node=flow.start, actor=actor, at=now, data={"flow": flow.name}))
        self._advance(conn, int(instance_id), flow.start, actor)
        return int(instance_id)

    def claim(self, task_id: int, username: str) -> None:
        """Take an open task; a task someone else holds is a ConflictError."""
        with transaction(self.rt.db) as conn:
            task = self._task(conn, task_id)
            user_id = self.user_id(conn, username)
            if task["status"] == "claimed" and task["assignee_user"] == user_id:
                return
            if task["status"] != "open":
                raise ConflictError(f"task {task_id} is already {task['status']}")
            self._update_task(conn, task, status="claimed", assignee_user=user_id,
                              claimed_at=self.rt.clock.now())

    def complete(self, task_id: int, username: str | None, *, values: Mapping[str, Any] | None = None,
                 outcome: str | None = None, comment: str | None = None,
                 expected_version: int | None = None, locale: str = "en") -> None:
        """Finish a task: write the node's fields, record history, move the token on.

        Two people completing one task at once: the first wins, the second gets ConflictError.
        """
        with transaction(self.rt.db) as conn:
            task = self._task(conn, task_id)
            if task["status"] not in ("open", "claimed"):
                raise ConflictError(f"task {task_id} is already {task['status']}")
            instance = self._instance(conn, task["instance_id"])
            flow = self._flow(instance)
            node = flow.nodes[task["node"]]
            outcomes = node.options.get("outcomes")
            if outcomes and outcome not in outcomes:
                raise ConflictError(f"choose one of: {', '.join(outcomes)}")
            diff: dict[str, Any] = {}
            if values:
                form = self.forms.form(flow.form)
                existing = self.forms.read(conn, flow.form, task["record_id"])
                editable = set(node.options.get("fields", []))
                clean = form.validate(values, locale=locale, existing=existing, editable=editable,
                                      ctx=self.eval_context(),
                                      extra_names={"user": {"username": username}})
                diff = self.forms.update_fields(conn, flow.form, task["record_id"],
                                                {k: clean[k] for k in editable if k in clean},
                                                actor=username)
            now = self.rt.clock.now()
            self._update_task(conn, task, expected_version=expected_version, status="completed",
                              outcome=outcome, comment=comment, completed_at=now,
                              completed_by=self.user_id(conn, username) if username else None)
            conn.execute(insert(history).values(
                instance_id=instance["id"], form=flow.form, record_id=task["record_id"],
                kind="task.completed", node=node.id, actor=username, at=now,
                data={"task_id": task_id, "outcome": outcome, "comment": comment, "changes": diff}))
            self.rt.bus.publish(Event("task.completed", now, flow.form, task["record_id"], username,
                                      {"task_id": task_id, "node": node.id, "outcome": outcome}), conn)
            run = NodeRun(self, conn, instance, flow, node, username)
            self.rt.bundle.registry.node_types.get(node.type).on_task_completed(run, task, outcome)
            self._follow(conn, instance, run, username)

    # -- queries ----------------------------------------------------------------------------
    def inbox(self, username: str, roles: Iterable[str] = ()) -> list[TaskView]:
        """Open tasks of a user: assigned to them, or open to one of their roles (claimable)."""
        roles = list(roles)
        with read_transaction(self.rt.db) as conn:
            user_id = self.user_id(conn, username)
            rows = conn.execute(
                select(tasks, flow_instances.c.flow).join(flow_instances)
                .where(tasks.c.status.in_(("open", "claimed")))
                .order_by(tasks.c.created_at, tasks.c.id)).mappings().all()
        out = []
        for row in rows:
            claimable = row["status"] == "open" and (
                any(r in roles for r in row["candidate_roles"] or [])
                or username in (row["candidate_users"] or []))
            if (user_id is not None and row["assignee_user"] == user_id) or claimable:
                flow = self.flows.get(row["flow"])
                node = flow.nodes.get(row["node"]) if flow else None
                out.append(TaskView(row["id"], row["instance_id"], row["flow"], row["node"],
                                    node.text() if node else row["node"], row["form"],
                                    row["record_id"], row["status"],
                                    username if row["assignee_user"] == user_id else None,
                                    row["created_at"], row["version"]))
        return out

    def open_tasks(self, form: str, record_id: int) -> list[dict[str, Any]]:
        """The record's open tasks."""
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(select(tasks).where(
                tasks.c.form == form, tasks.c.record_id == record_id,
                tasks.c.status.in_(("open", "claimed"))).order_by(tasks.c.id)).mappings()
            return [dict(r) for r in rows]

    def instances(self, form: str, record_id: int) -> list[dict[str, Any]]:
        """The record's flow instances, oldest first."""
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(select(flow_instances).where(
                flow_instances.c.form == form, flow_instances.c.record_id == record_id)
                .order_by(flow_instances.c.id)).mappings()
            return [dict(r) for r in rows]

    def user_id(self, conn: Connection, username: str) -> int | None:
        return conn.execute(select(users.c.id).where(users.c.username == username)).scalar()

    # -- internals --------------------------------------------------------------------------
    def _advance(self, conn: Connection, instance_id: int, node_id: str, actor: str | None) -> None:
        instance = dict(self._instance(conn, instance_id))
        flow = self._flow(instance)
        for _ in range(MAX_STEPS_PER_COMMAND):
            node = flow.nodes[node_id]
            self._set_current(conn, instance, [node_id])
            # The row changed only as written: keep the copy in step instead of reading it back.
            instance.update(current=[node_id], version=instance["version"] + 1)
            conn.execute(_INSERT_HISTORY, {
                "instance_id": instance_id, "form": flow.form, "record_id": instance["record_id"],
                "kind": "flow.entered", "node": node_id, "actor": actor, "at": self.rt.clock.now(),
                "data": None})
            status = node.options.get("status")
            if status:
                self.forms.update_fields(conn, flow.form, instance["record_id"], {}, actor=actor,
                                         status=status)
            run = NodeRun(self, conn, instance, flow, node, actor)
            try:
                self.rt.bundle.registry.node_types.get(node.type).enter(run)
            except (FlowIncident, ExpressionError) as exc:
                self._incident(conn, instance, node, str(exc))
                return
            if run.ended is not None:
                self._end(conn, instance, run.ended, actor)
                return
            if run.moved_to is None:
                return  # waiting (a task, a timer, an event)
            node_id = run.moved_to
        self._incident(conn, instance, flow.nodes[node_id],
                       f"the flow passed {MAX_STEPS_PER_COMMAND} nodes without waiting: a loop?")

    def _follow(self, conn: Connection, instance: Mapping[str, Any], run: NodeRun,
                actor: str | None) -> None:
        if run.ended is not None:
            self._end(conn, instance, run.ended, actor)
        elif run.moved_to is not None:
            self._advance(conn, instance["id"], run.moved_to, actor)

    def _end(self, conn: Connection, instance: Mapping[str, Any], outcome: str, actor: str | None) -> None:
        now = self.rt.clock.now()
        conn.execute(update(flow_instances).where(flow_instances.c.id == instance["id"])
                     .values(status="completed", outcome=outcome, ended_at=now, current=[],
                             version=flow_instances.c.version + 1))
        conn.execute(insert(history).values(
            instance_id=instance["id"], form=instance["form"], record_id=instance["record_id"],
            kind="flow.ended", actor=actor, at=now, data={"outcome": outcome}))
        self.rt.bus.publish(Event("flow.ended", now, instance["form"], instance["record_id"], actor,
                                  {"flow": instance["flow"], "outcome": outcome}), conn)

    def _incident(self, conn: Connection, instance: Mapping[str, Any], node: NodeSpec, message: str) -> None:
        log.warning("flow incident on %s %s at %s: %s", instance["form"], instance["record_id"],
                    node.id, message)
        now = self.rt.clock.now()
        conn.execute(update(flow_instances).where(flow_instances.c.id == instance["id"])
                     .values(status="incident", version=flow_instances.c.version + 1))
        conn.execute(insert(incidents).values(kind="flow", ref=f"instance:{instance['id']}",
                                              message=f"{node.id}: {message}", created_at=now))
        conn.execute(insert(history).values(
            instance_id=instance["id"], form=instance["form"], record_id=instance["record_id"],
            kind="incident", node=node.id, actor="system", at=now, data={"message": message}))

    def _set_current(self, conn: Connection, instance: Mapping[str, Any], current: list[str]) -> None:
        conn.execute(_SET_CURRENT, {"iid": instance["id"], "current": current})

    def _flow(self, instance: Mapping[str, Any]) -> FlowSpec:
        flow = self.flows.get(instance["flow"])
        if flow is None:
            raise NotFoundError(f"flow '{instance['flow']}' is not in the loaded bundle")
        return flow

    @staticmethod
    def _instance(conn: Connection, instance_id: int) -> Mapping[str, Any]:
        row = conn.execute(select(flow_instances).where(flow_instances.c.id == instance_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no flow instance {instance_id}")
        return row

    @staticmethod
    def _task(conn: Connection, task_id: int) -> Mapping[str, Any]:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    @staticmethod
    def _update_task(conn: Connection, task: Mapping[str, Any], *, expected_version: int | None = None,
                     **values: Any) -> None:
        version = task["version"] if expected_version is None else expected_version
        result = conn.execute(update(tasks).where(and_(tasks.c.id == task["id"], tasks.c.version == version))
                              .values(**values, version=version + 1))
        if result.rowcount != 1:
            raise ConflictError(f"task {task['id']} was changed by someone else; reload and try again")


__all__ = ["FlowService", "FlowIncident", "NodeRun", "TaskView"]
