"""The flow engine at run time: instances, tokens moving through nodes, tasks and the inbox.

Every command (start, claim, complete) is one transaction: the instance row, its tasks, the
history and the events it publishes commit together or not at all. Node types drive the
movement through a `NodeRun`, the only handle they get on the runtime, so a plugin node type
uses exactly the calls a built-in does.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection

from engine.bundle import load_bundle_files
from engine.directory import bundle_files
from engine.errors import ConflictError, ExpressionError, NotFoundError
from engine.events import Event
from engine.expr import EvalContext
from engine.runtime import Runtime
from engine.storage.db import read_transaction, transaction, update_versioned
from engine.storage.tables import flow_instances, history, incidents, tasks, user_roles, users
from flows.spec import FlowSpec, NodeSpec

log = logging.getLogger(__name__)

# Built once and executed with parameters: SQLAlchemy then reuses their compiled form.
_INSERT_HISTORY = insert(history)
_INSERT_TASK = insert(tasks)
_INSERT_INSTANCE = insert(flow_instances)
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
    """One token at one node, inside one command's transaction.

    A node type says where the token goes next by calling exactly one of `move_to` (the token
    moves on), `fork` (one token per branch), `consume` (this branch ends here, the instance
    goes on), `end` (the branch ends with an outcome; the instance ends with its last token), or
    nothing (the token waits here for a task, a timer or an event).
    """

    def __init__(self, service: "FlowService", conn: Connection, instance: dict[str, Any],
                 flow: FlowSpec, node: NodeSpec, actor: str | None):
        self.service = service
        self.conn = conn
        self.instance = instance
        self.flow = flow
        self.node = node
        self.actor = actor
        self.moved_to: str | None = None
        self.forked: list[str] | None = None
        self.consumed = False
        self.ended: str | None = None
        self.comment: str | None = None
        """The comment of the task being completed (in `on_task_completed`)."""
        self.return_to: str | None = None
        """The node the completing user chose to send the record back to, if any."""

    @property
    def variables(self) -> dict[str, Any]:
        """The instance's variables (JSON), saved with the instance at the end of the command."""
        return self.instance["variables"]  # type: ignore[no-any-return]

    @property
    def record(self) -> dict[str, Any]:
        """The record's current values (read inside this transaction)."""
        return self.service.forms.read(self.conn, self.flow.form, self.instance["record_id"])

    def names(self) -> dict[str, Any]:
        """Names an expression in this flow sees: the record's fields, `record` itself, the
        acting `user`, and `flow`: the instance variables (e.g. `flow.assess.outcome`)."""
        values = self.record
        return {**values, "record": values, "user": {"username": self.actor}, "flow": self.variables}

    def evaluate(self, expression: Any) -> Any:
        """Evaluate a compiled expression over the record; failures raise ExpressionError."""
        return expression.evaluate(self.names(), self.service.eval_context())

    def history(self, kind: str, data: Mapping[str, Any] | None = None) -> None:
        """Add an entry to the record's history, at this node."""
        self.conn.execute(_INSERT_HISTORY, {
            "instance_id": self.instance["id"], "form": self.flow.form,
            "record_id": self.instance["record_id"], "kind": kind, "node": self.node.id,
            "actor": self.actor, "at": self.service.rt.clock.now(),
            "data": dict(data) if data is not None else None})

    def create_task(self, assign: Mapping[str, Any] | None = None) -> int:
        """Open a task for this node, assigned as `assign` (default: the node's `assign`) says.

        Keys: `user`, `role`, `department`, `submitter`, and `candidates` (usernames who may
        claim it); the compiled `assignee` expression applies to the node's own `assign` only.
        """
        own = assign is None
        assign = self.node.options.get("assign", {}) if assign is None else assign
        assignee = None
        username = assign.get("user")
        if own and self.node.compiled.get("assignee") is not None:
            username = self.evaluate(self.node.compiled["assignee"])
        if assign.get("submitter"):
            username = self.record.get("created_by")
        if not username and assign.get("strategy") in ("round_robin", "least_loaded"):
            username = self.pick(assign)
        if username:
            assignee = self.service.user_id(self.conn, str(username))
        candidates = [str(username)] if username else list(assign.get("candidates") or []) or None
        now = self.service.rt.clock.now()
        task_id = self.conn.execute(_INSERT_TASK, dict(
            instance_id=self.instance["id"], node=self.node.id, form=self.flow.form,
            record_id=self.instance["record_id"], status="claimed" if assignee else "open",
            assignee_user=assignee, candidate_roles=[assign["role"]] if "role" in assign else None,
            candidate_users=candidates,
            candidate_department=assign.get("department"), created_at=now,
            claimed_at=now if assignee else None,
        )).inserted_primary_key[0]
        self.service.rt.bus.publish(Event("task.created", now, self.flow.form, self.instance["record_id"],
                                          self.actor, {"task_id": task_id, "node": self.node.id}),
                                    self.conn)
        cc = assign.get("cc")
        if cc:
            watchers = sorted({*cc.get("users", []), *(u for r in cc.get("roles", []) for u in self.users_with_role(r))})
            self.history("task.copied", {"task_id": int(task_id), "to": watchers})
            self.service.rt.bus.publish(Event("task.copied", now, self.flow.form, self.instance["record_id"],
                                              self.actor, {"task_id": task_id, "node": self.node.id,
                                                           "to": watchers}), self.conn)
        return int(task_id)

    def pick(self, assign: Mapping[str, Any]) -> str | None:
        """One person of the role or department, by the `strategy` of `assign`.

        `least_loaded`: whoever has the fewest open tasks now (ties: alphabetical).
        `round_robin`: the one after whoever got this node's previous task, in name order.
        None when nobody holds the role (the task then stays open for claiming).
        """
        if "role" in assign:
            pool = self.users_with_role(assign["role"])
        elif "department" in assign:
            pool = self.users_in_department(assign["department"])
        else:
            return None
        if not pool:
            return None
        if assign.get("strategy") == "least_loaded":
            rows = self.conn.execute(
                select(users.c.username, func.count(tasks.c.id))
                .join(tasks, tasks.c.assignee_user == users.c.id)
                .where(users.c.username.in_(pool), tasks.c.status.in_(("open", "claimed")))
                .group_by(users.c.username)).all()
            load = {name: count for name, count in rows}
            return min(pool, key=lambda name: (load.get(name, 0), name))
        last = self.conn.execute(
            select(users.c.username).join(tasks, tasks.c.assignee_user == users.c.id)
            .join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
            .where(flow_instances.c.flow == self.flow.name, tasks.c.node == self.node.id,
                   users.c.username.in_(pool))
            .order_by(tasks.c.id.desc()).limit(1)).scalar()
        if last is None:
            return pool[0]
        return pool[(pool.index(last) + 1) % len(pool)]

    def cancel_open_tasks(self) -> int:
        """Cancel this node's open tasks in this instance (e.g. once a countersign is decided)."""
        result = self.conn.execute(
            update(tasks).where(tasks.c.instance_id == self.instance["id"], tasks.c.node == self.node.id,
                                tasks.c.status.in_(("open", "claimed")))
            .values(status="cancelled", completed_at=self.service.rt.clock.now(),
                    version=tasks.c.version + 1))
        return int(result.rowcount)

    def users_with_role(self, role: str) -> list[str]:
        """Usernames of the active users holding `role`, in a stable order."""
        rows = self.conn.execute(
            select(users.c.username).join(user_roles, users.c.id == user_roles.c.user_id)
            .where(user_roles.c.role == role, users.c.is_active.is_(True)).order_by(users.c.username))
        return [r[0] for r in rows]

    def users_in_department(self, department: str) -> list[str]:
        """Usernames of the active users of `department`, in a stable order."""
        rows = self.conn.execute(select(users.c.username).where(
            users.c.department == department, users.c.is_active.is_(True)).order_by(users.c.username))
        return [r[0] for r in rows]

    def move_to(self, node_id: str | None) -> None:
        """Leave this node for `node_id` (the caller returns; the service enters the next one)."""
        if node_id is None:
            raise RuntimeError(f"node '{self.node.id}' has no next node")
        self.moved_to = node_id

    def fork(self, node_ids: Iterable[str]) -> None:
        """Replace this token with one token per node of `node_ids` (a parallel split)."""
        self.forked = list(node_ids)

    def consume(self) -> None:
        """End this token here without ending the instance (e.g. a branch waiting at a join)."""
        self.consumed = True

    def end(self, outcome: str) -> None:
        """End this token with `outcome`; the instance ends when its last token ends."""
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
        self._versions: dict[str, dict[str, FlowSpec]] = {}
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
        instance_id = int(conn.execute(_INSERT_INSTANCE, dict(
            flow=flow.name, form=flow.form, record_id=record_id, bundle_hash=self.rt.bundle.hash,
            status="running", current=[flow.start], variables={}, started_at=now, version=1,
        )).inserted_primary_key[0])
        conn.execute(_INSERT_HISTORY, dict(
            instance_id=instance_id, form=flow.form, record_id=record_id, kind="flow.started",
            node=flow.start, actor=actor, at=now, data={"flow": flow.name}))
        state = {"id": instance_id, "flow": flow.name, "form": flow.form, "record_id": record_id,
                 "status": "running", "current": [flow.start], "variables": {}, "outcome": None,
                 "ended_at": None, "version": 1}
        self._run(conn, state, flow, [flow.start], actor)
        self._save(conn, state)
        return instance_id

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

    def release(self, task_id: int, username: str) -> None:
        """Give back a claimed task so others of the role may claim it."""
        with transaction(self.rt.db) as conn:
            task = self._task(conn, task_id)
            if task["status"] != "claimed" or task["assignee_user"] != self.user_id(conn, username):
                raise ConflictError(f"task {task_id} is not held by {username}")
            self._update_task(conn, task, status="open", assignee_user=None, claimed_at=None)
            self._task_history(conn, task, "task.released", username, {})

    def reassign(self, task_id: int, to_user: str, *, by: str, comment: str | None = None,
                 delegate: bool = False) -> None:
        """Hand an open or claimed task to someone else (`delegate`: on the holder's behalf)."""
        with transaction(self.rt.db) as conn:
            task = self._task(conn, task_id)
            if task["status"] not in ("open", "claimed"):
                raise ConflictError(f"task {task_id} is already {task['status']}")
            target = self.user_id(conn, to_user)
            if target is None:
                raise NotFoundError(f"no user '{to_user}'")
            self._update_task(conn, task, status="claimed", assignee_user=target,
                              claimed_at=self.rt.clock.now())
            kind = "task.delegated" if delegate else "task.reassigned"
            self._task_history(conn, task, kind, by, {"to": to_user, "comment": comment})
            self.rt.bus.publish(Event(kind, self.rt.clock.now(), task["form"], task["record_id"], by,
                                      {"task_id": task_id, "node": task["node"], "to": to_user}), conn)

    def _task_history(self, conn: Connection, task: Mapping[str, Any], kind: str, actor: str | None,
                      data: Mapping[str, Any]) -> None:
        conn.execute(_INSERT_HISTORY, {
            "instance_id": task["instance_id"], "form": task["form"], "record_id": task["record_id"],
            "kind": kind, "node": task["node"], "actor": actor, "at": self.rt.clock.now(),
            "data": {"task_id": task["id"], **data}})

    def complete(self, task_id: int, username: str | None, *, values: Mapping[str, Any] | None = None,
                 outcome: str | None = None, comment: str | None = None,
                 expected_version: int | None = None, locale: str = "en",
                 return_to: str | None = None) -> None:
        """Finish a task: write the node's fields, record history, move the token on.

        Two people completing one task at once: the first wins, the second gets ConflictError.
        The instance row is read locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the
        write lock) and written back with its version checked, so tokens of parallel branches
        completing at once never lose each other's update. `return_to` picks the node an
        approval's `return` outcome sends the record back to.
        """
        with transaction(self.rt.db) as conn:
            task = self._task(conn, task_id)
            if task["status"] not in ("open", "claimed"):
                raise ConflictError(f"task {task_id} is already {task['status']}")
            state = self._load(conn, task["instance_id"])
            if state["status"] != "running":
                raise ConflictError(f"the flow of task {task_id} is {state['status']}")
            flow = self._flow(state)
            node = flow.nodes[task["node"]]
            ntype = self.rt.bundle.registry.node_types.get(node.type)
            ntype.check_completion(node, outcome, comment, return_to)
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
                instance_id=state["id"], form=flow.form, record_id=task["record_id"],
                kind="task.completed", node=node.id, actor=username, at=now,
                data={"task_id": task_id, "outcome": outcome, "comment": comment, "changes": diff}))
            self.rt.bus.publish(Event("task.completed", now, flow.form, task["record_id"], username,
                                      {"task_id": task_id, "node": node.id, "outcome": outcome}), conn)
            run = NodeRun(self, conn, state, flow, node, username)
            run.comment, run.return_to = comment, return_to
            ntype.on_task_completed(run, task, outcome)
            pending: list[str] = []
            self._apply(conn, state, run, pending, username)
            self._run(conn, state, flow, pending, username)
            self._save(conn, state)

    def reopen(self, form: str, record_id: int, *, at: str, actor: str | None = None,
               comment: str | None = None) -> int:
        """Start the record's ended flow instance again at node `at`; returns the instance id.

        The instance keeps its variables and history; a `flow.reopened` entry records who
        reopened it, where, and the outcome it had.
        """
        with transaction(self.rt.db) as conn:
            instance_id = conn.execute(
                select(flow_instances.c.id).where(flow_instances.c.form == form,
                                                  flow_instances.c.record_id == record_id)
                .order_by(flow_instances.c.id.desc()).limit(1)).scalar()
            if instance_id is None:
                raise NotFoundError(f"{form} {record_id} has no flow to reopen")
            state = self._load(conn, instance_id)
            if state["status"] not in ("completed", "withdrawn"):
                raise ConflictError(f"the flow of {form} {record_id} is {state['status']}, not ended")
            flow = self._flow(state)
            if at not in flow.nodes:
                raise NotFoundError(f"flow '{flow.name}' has no node '{at}'")
            now = self.rt.clock.now()
            previous = state["outcome"]
            state.update(status="running", outcome=None, ended_at=None, current=[at])
            conn.execute(_INSERT_HISTORY, dict(
                instance_id=state["id"], form=form, record_id=record_id, kind="flow.reopened",
                node=at, actor=actor, at=now, data={"previous_outcome": previous, "comment": comment}))
            self.rt.bus.publish(Event("flow.reopened", now, form, record_id, actor,
                                      {"flow": flow.name, "node": at}), conn)
            self._run(conn, state, flow, [at], actor)
            self._save(conn, state)
            return int(state["id"])

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
    def _run(self, conn: Connection, state: dict[str, Any], flow: FlowSpec, pending: list[str],
             actor: str | None) -> None:
        """Enter each node of `pending` (each holds a token already) until every token waits."""
        steps = 0
        while pending and state["status"] == "running":
            node_id = pending.pop(0)
            node = flow.nodes[node_id]
            steps += 1
            if steps > MAX_STEPS_PER_COMMAND:
                self._incident(conn, state, node,
                               f"the flow passed {MAX_STEPS_PER_COMMAND} nodes without waiting: a loop?")
                return
            conn.execute(_INSERT_HISTORY, {
                "instance_id": state["id"], "form": flow.form, "record_id": state["record_id"],
                "kind": "flow.entered", "node": node_id, "actor": actor, "at": self.rt.clock.now(),
                "data": None})
            status = node.options.get("status")
            if status:
                self.forms.update_fields(conn, flow.form, state["record_id"], {}, actor=actor,
                                         status=status)
            run = NodeRun(self, conn, state, flow, node, actor)
            try:
                self.rt.bundle.registry.node_types.get(node.type).enter(run)
            except (FlowIncident, ExpressionError) as exc:
                self._incident(conn, state, node, str(exc))
                return
            self._apply(conn, state, run, pending, actor)

    def _apply(self, conn: Connection, state: dict[str, Any], run: NodeRun, pending: list[str],
               actor: str | None) -> None:
        """Move the token at `run.node` as the node type asked; new tokens join `pending`."""
        current: list[str] = state["current"]
        node_id = run.node.id
        if run.forked is not None:
            new = run.forked
        elif run.moved_to is not None:
            new = [run.moved_to]
        elif run.ended is not None or run.consumed:
            new = []
        else:
            return  # the token waits here
        if node_id in current:
            i = current.index(node_id)
            current[i:i + 1] = new
        else:
            current.extend(new)
        pending.extend(new)
        if run.ended is not None and not current:
            self._end(conn, state, run.ended, actor)

    def _end(self, conn: Connection, state: dict[str, Any], outcome: str, actor: str | None) -> None:
        now = self.rt.clock.now()
        state.update(status="completed", outcome=outcome, ended_at=now, current=[])
        conn.execute(insert(history).values(
            instance_id=state["id"], form=state["form"], record_id=state["record_id"],
            kind="flow.ended", actor=actor, at=now, data={"outcome": outcome}))
        self.rt.bus.publish(Event("flow.ended", now, state["form"], state["record_id"], actor,
                                  {"flow": state["flow"], "outcome": outcome}), conn)

    def _incident(self, conn: Connection, state: dict[str, Any], node: NodeSpec, message: str) -> None:
        log.warning("flow incident on %s %s at %s: %s", state["form"], state["record_id"],
                    node.id, message)
        now = self.rt.clock.now()
        state["status"] = "incident"
        conn.execute(insert(incidents).values(kind="flow", ref=f"instance:{state['id']}",
                                              message=f"{node.id}: {message}", created_at=now))
        conn.execute(insert(history).values(
            instance_id=state["id"], form=state["form"], record_id=state["record_id"],
            kind="incident", node=node.id, actor="system", at=now, data={"message": message}))

    def _load(self, conn: Connection, instance_id: int) -> dict[str, Any]:
        """The instance row, locked for this transaction, as a mutable state for `_save`."""
        row = conn.execute(select(flow_instances).where(flow_instances.c.id == instance_id)
                           .with_for_update()).mappings().first()
        if row is None:
            raise NotFoundError(f"no flow instance {instance_id}")
        state = dict(row)
        state["current"] = list(row["current"] or [])
        state["variables"] = copy.deepcopy(row["variables"] or {})
        return state

    def _save(self, conn: Connection, state: dict[str, Any]) -> None:
        """Write the state back once per command; a version that moved meanwhile is a conflict."""
        state["version"] = update_versioned(conn, flow_instances, state["id"], state["version"], {
            "status": state["status"], "current": state["current"], "variables": state["variables"],
            "outcome": state["outcome"], "ended_at": state["ended_at"]})

    def _flow(self, instance: Mapping[str, Any]) -> FlowSpec:
        """The definition an instance runs on: the bundle version it started on (pinned)."""
        version = instance.get("bundle_hash")
        flows = self.flows if version in (None, self.rt.bundle.hash) else self._flows_of(version)
        flow = flows.get(instance["flow"])
        if flow is None:
            raise NotFoundError(f"flow '{instance['flow']}' is not in bundle version {version}")
        return flow

    def _flows_of(self, version: str) -> Mapping[str, FlowSpec]:
        """The flows of an earlier bundle version, rebuilt once from its recorded files."""
        cached = self._versions.get(version)
        if cached is None:
            with read_transaction(self.rt.db) as conn:
                files = bundle_files(conn, version)
            if files is None:
                raise NotFoundError(f"bundle version {version} was recorded without its files; "
                                    "migrate its running instances to the current version")
            cached = self._versions[version] = dict(load_bundle_files(files, self.rt.bundle.registry).all("flow"))
        return cached

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
