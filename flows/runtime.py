"""The flow engine at run time: instances, tokens moving through nodes, tasks and the inbox.

Every command (start, claim, complete) is one transaction: the instance row, its tasks, the
history and the events it publishes commit together or not at all. Node types drive the
movement through a `NodeRun` (flows/node_run.py), the only handle they get on the runtime, so a
plugin node type uses exactly the calls a built-in does.
"""

from __future__ import annotations

import copy
import logging
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator, Mapping

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from engine.bundle import load_bundle_files
from engine.directory import bundle_files
from engine.errors import ConflictError, ExpressionError, NotFoundError, ValidationFailed
from engine.registry import BUILT_IN
from engine.events import Event
from engine.expr import EvalContext
from engine.identity import Principal
from engine.runtime import Runtime
from engine.storage.db import read_transaction, savepoint, single_read, transaction
from engine.storage.prepared import INSERT_HISTORY, PreparedInsert, PreparedQuery
from engine.storage.tables import flow_instances, history, incidents, tasks, users
from flows.history import STATUS_KINDS, status_path
from flows.node_run import PARENT_KEY, TIMEOUT_TIMER, WAIT_TIMER, FlowIncident, NodeRun
from flows.spec import FlowSpec, NodeSpec
from forms.access import load_principal

log = logging.getLogger(__name__)

# The hot statements of every command, compiled once per dialect and run on the driver's cursor
# (engine/storage/prepared.py): SQLAlchemy's per-execution work (coercion, cache keys, context
# and result set-up) cost several times what SQLite spends on these one-row statements.
_INSERT_INSTANCE = PreparedInsert(flow_instances)
_SELECT_TASK = PreparedQuery(select(tasks).where(tasks.c.id == bindparam("task_id")))
_SELECT_USER_ID = PreparedQuery(select(users.c.id).where(users.c.username == bindparam("username")))
_SAVE_INSTANCE = PreparedQuery(  # the one write of an instance per command, version-checked
    update(flow_instances)
    .where(flow_instances.c.id == bindparam("b_id"), flow_instances.c.version == bindparam("b_version"))
    .values(status=bindparam("b_status"), current=bindparam("b_current", type_=flow_instances.c.current.type),
            variables=bindparam("b_variables", type_=flow_instances.c.variables.type),
            outcome=bindparam("b_outcome"), ended_at=bindparam("b_ended_at", type_=flow_instances.c.ended_at.type),
            version=bindparam("b_new")))
_SAVE_RUNNING = PreparedQuery(  # the same while the instance runs on: status, outcome and end stay
    # Left out of the SET, not written with their old values: SQLite rewrites the entry of every
    # index on a column an UPDATE sets, changed or not (one more page written per commit).
    update(flow_instances)
    .where(flow_instances.c.id == bindparam("b_id"), flow_instances.c.version == bindparam("b_version"))
    .values(current=bindparam("b_current", type_=flow_instances.c.current.type),
            variables=bindparam("b_variables", type_=flow_instances.c.variables.type),
            version=bindparam("b_new")))
_LOAD_INSTANCE = PreparedQuery(
    select(flow_instances).where(flow_instances.c.id == bindparam("instance_id")).with_for_update())
_RUNNING_NODES = PreparedQuery(select(flow_instances.c.id, flow_instances.c.current).where(
    flow_instances.c.form == bindparam("form"), flow_instances.c.record_id == bindparam("record_id"),
    flow_instances.c.status == "running"))
_ACTIVE = "docket_active_instances"
"""conn.info key: the instances the connection's command is moving, by id, with their state."""
_OPEN = or_(tasks.c.status == "open", tasks.c.status == "claimed")  # no IN list: prepared statements bind each
_TASK_AND_INSTANCE = PreparedQuery(
    # A completion's two reads in one (task, and its instance locked: FOR UPDATE OF the instance
    # only, as _LOAD_INSTANCE locks it; SQLite's BEGIN IMMEDIATE already holds the write lock).
    select(*[c.label(f"t_{c.key}") for c in tasks.c], *[c.label(f"i_{c.key}") for c in flow_instances.c])
    .select_from(tasks.join(flow_instances, flow_instances.c.id == tasks.c.instance_id))
    .where(tasks.c.id == bindparam("task_id")).with_for_update(of=flow_instances))
_OPEN_TASKS = PreparedQuery(
    select(tasks).where(tasks.c.form == bindparam("form"), tasks.c.record_id == bindparam("record_id"), _OPEN)
    .order_by(tasks.c.id))
_INSTANCES = PreparedQuery(
    select(flow_instances).where(flow_instances.c.form == bindparam("form"),
                                 flow_instances.c.record_id == bindparam("record_id"))
    .order_by(flow_instances.c.id))
_UPDATE_TASK: dict[tuple[str, ...], PreparedQuery] = {}
"""Version-checked task updates, one prepared statement per set of columns written."""
_STORED_STATUS = "_stored_status"
"""The key of an instance's state holding the status its row has now (`_save` leaves an
unchanged status out of its UPDATE)."""
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
    escalation_level: int = 0


class FlowService:
    """Starts flows on new records and moves their tokens; answers inbox queries."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.forms = rt.services["forms"]
        self.flows: dict[str, FlowSpec] = dict(rt.bundle.all("flow"))
        self._versions: dict[str, dict[str, FlowSpec]] = {}
        self._user_ids: dict[str, int] = {}
        rt.services["flows"] = self
        rt.bus.subscribe("record.created", self._on_record_created)
        timers = rt.services.get("timers")
        if timers is not None:
            timers.on(WAIT_TIMER, self._on_wait_timer)
            timers.on(TIMEOUT_TIMER, self._on_timeout_timer)
        for name in sorted({str(n.options["event"]) for f in self.flows.values() for n in f.nodes.values()
                            if n.type == "wait" and n.options.get("event")}):
            rt.bus.subscribe(name, self._on_event)

    def eval_context(self) -> EvalContext:
        return EvalContext(now=self.rt.clock.now(), calendar=self.rt.bundle.meta.calendar,
                           services=self.rt.services)

    def flows_for(self, form: str) -> list[FlowSpec]:
        return [f for f in self.flows.values() if f.form == form and f.start_on_create]

    # -- commands ---------------------------------------------------------------------------
    def _on_record_created(self, event: Event, conn: Connection) -> None:
        starting = conn.info.get("docket_subflow_start")  # a subflow node starts its own flow
        for flow in self.flows_for(event.form or ""):
            if flow.name != starting:
                self.start(conn, flow, int(event.record_id or 0), actor=event.actor)

    def start(self, conn: Connection, flow: FlowSpec, record_id: int, *, actor: str | None) -> int:
        """Start `flow` on a record inside the caller's transaction; returns the instance id."""
        return int(self._start(conn, flow, record_id, actor=actor)["id"])

    def _start(self, conn: Connection, flow: FlowSpec, record_id: int, *, actor: str | None,
               bundle_hash: str | None = None, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Start an instance (on `bundle_hash`, default the current version); returns its state."""
        now = self.rt.clock.now()
        variables = dict(variables or {})
        instance_id = int(_INSERT_INSTANCE.execute(conn, dict(
            flow=flow.name, form=flow.form, record_id=record_id,
            bundle_hash=bundle_hash or self.rt.bundle.hash, status="running", current=[flow.start],
            variables=variables, started_at=now, version=1,
        )))
        INSERT_HISTORY.later(conn, dict(
            instance_id=instance_id, form=flow.form, record_id=record_id, kind="flow.started",
            node=flow.start, actor=actor, at=now, data={"flow": flow.name}))
        state = {"id": instance_id, "flow": flow.name, "form": flow.form, "record_id": record_id,
                 "status": "running", "current": [flow.start], "variables": variables, "outcome": None,
                 "ended_at": None, "version": 1, "bundle_hash": bundle_hash or self.rt.bundle.hash,
                 _STORED_STATUS: "running"}
        with self._active(conn, state):
            self._run(conn, state, flow, [flow.start], actor)
            self._save(conn, state)
        return state

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

    def escalate(self, conn: Connection, task_id: int, level: int, actor: str | None) -> None:
        """Raise an open task to escalation `level` (1-3) inside the caller's transaction.

        Applies the node's `escalation:` entry for that level (a new `assign`, keeping or
        replacing the assignees; `cc` watchers; a record `status`), writes `task.escalated` to
        the history and publishes the event of that name. A task that is no longer open, or is
        already at this level or higher, is left alone: an SLA timer firing as the task is
        completed must never escalate a finished step (RELIABILITY 30).
        """
        if level not in (1, 2, 3):
            raise ValueError(f"escalation level must be 1, 2 or 3, not {level!r}")
        task = self._task(conn, task_id)
        if task["status"] not in ("open", "claimed") or level <= task["escalation_level"]:
            return
        state = self._load(conn, task["instance_id"])  # serializes with a completion of the task
        if state["status"] != "running":
            return
        flow = self._flow(state)
        run = NodeRun(self, conn, state, flow, flow.nodes[task["node"]], actor)
        try:
            self._escalate(run, task, level, reason="manual" if actor not in (None, "system") else "system")
        except FlowIncident as exc:
            raise ConflictError(f"task {task_id} cannot be escalated to level {level}: {exc}") from exc

    def escalate_task(self, task_id: int, level: int, *, by: str | None) -> None:
        """`escalate` in a transaction of its own (for a person raising a task by hand)."""
        with transaction(self.rt.db) as conn:
            self.escalate(conn, task_id, level, by)

    def _escalate(self, run: NodeRun, task: Mapping[str, Any], level: int, *, reason: str) -> None:
        conn = run.conn
        entry = (run.node.compiled.get("escalation") or {}).get(level) or {}
        values: dict[str, Any] = {"escalation_level": level}
        data: dict[str, Any] = {"task_id": int(task["id"]), "level": level,
                                "from_level": int(task["escalation_level"]), "reason": reason}
        if entry.get("assign"):
            target = run.resolve(entry["assign"], entry.get("compiled") or {})
            new_user = self.user_id(conn, target["user"]) if target["user"] else None
            if entry.get("keep"):
                # The holder keeps the task; the new people may take it too (they see it in
                # their inbox because it is escalated, even while it is claimed).
                # A named person replaces the fallback role (`manager_of: ..., role: manager`).
                values["candidate_roles"] = _merged(task["candidate_roles"],
                                                    None if target["user"] else target["roles"])
                values["candidate_users"] = _merged(task["candidate_users"], target["candidates"])
            else:
                values.update(status="claimed" if new_user else "open", assignee_user=new_user,
                              candidate_roles=target["roles"], candidate_users=target["candidates"],
                              candidate_department=target["department"],
                              claimed_at=self.rt.clock.now() if new_user else None)
            data.update(assignee=target["user"], roles=target["roles"], keep=bool(entry.get("keep")))
        self._update_task(conn, task, **values)
        run.history("task.escalated", data)
        if entry.get("cc"):
            run.copy(int(task["id"]), entry["cc"], (entry.get("cc_compiled") or {}).get("cc"))
        if entry.get("status"):
            self.forms.update_fields(conn, run.flow.form, run.instance["record_id"], {},
                                     actor=run.actor, status=entry["status"])
        self.rt.bus.publish(Event("task.escalated", self.rt.clock.now(), run.flow.form,
                                  run.instance["record_id"], run.actor,
                                  {"task_id": int(task["id"]), "node": run.node.id, "level": level,
                                   "from_level": data["from_level"]}), conn)

    def _task_history(self, conn: Connection, task: Mapping[str, Any], kind: str, actor: str | None,
                      data: Mapping[str, Any]) -> None:
        INSERT_HISTORY.later(conn, {
            "instance_id": task["instance_id"], "form": task["form"], "record_id": task["record_id"],
            "kind": kind, "node": task["node"], "actor": actor, "at": self.rt.clock.now(),
            "data": {"task_id": task["id"], **data}})

    def complete(self, task_id: int, username: str | None, *, values: Mapping[str, Any] | None = None,
                 outcome: str | None = None, comment: str | None = None,
                 expected_version: int | None = None, locale: str = "en",
                 return_to: str | None = None, attachments: Iterable[str] = ()) -> None:
        """Finish a task: write the node's fields, record history, move the token on.

        Two people completing one task at once: the first wins, the second gets ConflictError.
        The instance row is read locked (FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the
        write lock) and written back with its version checked, so tokens of parallel branches
        completing at once never lose each other's update. `return_to` picks the node an
        approval's `return` outcome sends the record back to; `attachments` are ids of uploaded
        files kept with this step in the history.
        """
        with transaction(self.rt.db) as conn, self._cells_once(conn):
            # The task and its instance (locked) in one read.
            row = _TASK_AND_INSTANCE.first(conn, {"task_id": task_id})
            if row is None:
                raise NotFoundError(f"no task {task_id}")
            task = {key[2:]: value for key, value in row.items() if key[0] == "t"}
            if task["status"] not in ("open", "claimed"):
                raise ConflictError(f"task {task_id} is already {task['status']}")
            state = _state({key[2:]: value for key, value in row.items() if key[0] == "i"})
            if conn.dialect.name != "sqlite":
                # Read again under the instance lock: a completion that committed while this one
                # waited for the lock is seen here, not overwritten (FOR UPDATE re-reads only
                # the locked instance row, not the task's). SQLite's BEGIN IMMEDIATE took the
                # database's write lock before the first read.
                task = self._task(conn, task_id)
                if task["status"] not in ("open", "claimed"):
                    raise ConflictError(f"task {task_id} is already {task['status']}")
            if state["status"] != "running":
                raise ConflictError(f"the flow of task {task_id} is {state['status']}")
            with self._active(conn, state):
                self._complete(conn, task, state, username, values=values, outcome=outcome,
                               comment=comment, expected_version=expected_version, locale=locale,
                               return_to=return_to, attachments=list(attachments))

    def _complete(self, conn: Connection, task: Mapping[str, Any], state: dict[str, Any],
                  username: str | None, *, values: Mapping[str, Any] | None, outcome: str | None,
                  comment: str | None, expected_version: int | None, locale: str,
                  return_to: str | None, attachments: list[str]) -> None:
        flow = self._flow(state)
        node = flow.nodes[task["node"]]
        ntype = self.rt.bundle.registry.node_types.get(node.type)
        ntype.check_completion(node, outcome, comment, return_to)
        if expected_version is not None and expected_version != task["version"]:
            raise ConflictError(f"task {task['id']} was changed by someone else; reload and try again")
        diff: dict[str, Any] = {}
        if values:
            form = self.forms.form(flow.form)
            existing = self.forms.read(conn, flow.form, task["record_id"])
            editable = set(node.options.get("fields", []))
            clean = form.validate(values, locale=locale, existing=existing, editable=editable,
                                  ctx=self.eval_context(),
                                  extra_names={"user": {"username": username}})
            diff = self.forms.update_fields(conn, flow.form, task["record_id"], form.edited(clean, editable),
                                            actor=username, locale=locale)
        now = self.rt.clock.now()
        completion = dict(status="completed", outcome=outcome, comment=comment, completed_at=now,
                          completed_by=self.user_id(conn, username) if username else None)
        if not self._try_update_task(conn, task, task["version"], completion):
            if not diff:
                raise ConflictError(f"task {task['id']} was changed by someone else; reload and try again")
            # A rule reacting to the change touched the task (e.g. escalated it) in this same
            # transaction: every task write moves its version, so the version-checked write above
            # found out without reading the task again. Complete the task as it is now. (No
            # change published no `record.updated`, so nothing else ran.)
            task = self._task(conn, task["id"])
            if task["status"] not in ("open", "claimed"):
                raise ConflictError(f"task {task['id']} was {task['status']} while it was being completed")
            self._update_task(conn, task, **completion)
        data: dict[str, Any] = {"task_id": task["id"], "outcome": outcome, "comment": comment,
                                "changes": diff}
        if attachments:
            data["attachments"] = self._link_files(conn, flow.form, task["record_id"], attachments, locale)
        INSERT_HISTORY.later(conn, dict(
            instance_id=state["id"], form=flow.form, record_id=task["record_id"],
            kind="task.completed", node=node.id, actor=username, at=now, data=data))
        self.rt.bus.publish(Event("task.completed", now, flow.form, task["record_id"], username,
                                  {"task_id": task["id"], "node": node.id, "outcome": outcome}), conn)
        run = NodeRun(self, conn, state, flow, node, username)
        run.comment, run.return_to = comment, return_to
        try:
            if self.rt.bundle.registry.node_types.source(node.type) == BUILT_IN:
                ntype.on_task_completed(run, task, outcome)
            else:  # what a plugin's step wrote before it stopped is undone, the completion kept
                with savepoint(conn):
                    ntype.on_task_completed(run, task, outcome)
        except (FlowIncident, ExpressionError) as exc:
            # The person's work is done and kept; the flow stops here for an administrator.
            self._incident(conn, state, node, str(exc))
            self._save(conn, state)
            return
        if node.compiled.get("timeout") is not None and run.moved_to is not None:
            # Done in time: the step's timeout has nothing left to do.
            self.rt.services["timers"].cancel(conn, kind=TIMEOUT_TIMER, subject=f"instance:{state['id']}",
                                              key=node.id)
        pending: list[Any] = []
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
            INSERT_HISTORY.later(conn, dict(
                instance_id=state["id"], form=form, record_id=record_id, kind="flow.reopened",
                node=at, actor=actor, at=now, data={"previous_outcome": previous, "comment": comment}))
            self.rt.bus.publish(Event("flow.reopened", now, form, record_id, actor,
                                      {"flow": flow.name, "node": at}), conn)
            with self._active(conn, state):
                self._run(conn, state, flow, [at], actor)
                self._save(conn, state)
            return int(state["id"])

    def retry_incident(self, instance_id: int, *, actor: str) -> str:
        """Enter again the node where an instance stopped with an incident, once its cause is
        mended (a plugin fixed and redeployed, a service that was down answering again, a field
        filled in): the instance runs on from there, or stops with a new incident. The old one
        is marked resolved; a `flow.retried` entry says who retried, where. Returns the
        instance's status afterwards. ConflictError for an instance not stopped by an incident.
        """
        with transaction(self.rt.db) as conn:
            state = self._load(conn, instance_id)
            if state["status"] != "incident":
                raise ConflictError(f"flow instance {instance_id} is {state['status']}, not stopped by an incident")
            node_id = conn.execute(select(history.c.node).where(history.c.instance_id == instance_id,
                                                                history.c.kind == "incident")
                                   .order_by(history.c.id.desc()).limit(1)).scalar()
            flow = self._flow(state)
            if node_id not in flow.nodes:
                raise ConflictError(f"flow instance {instance_id} stopped at no node of its flow; withdraw and "
                                    "reopen the record instead")
            now = self.rt.clock.now()
            conn.execute(update(incidents).where(incidents.c.ref == f"instance:{instance_id}",
                                                 incidents.c.resolved_at.is_(None)).values(resolved_at=now))
            state["status"] = "running"
            if node_id not in state["current"]:
                state["current"].append(node_id)
            INSERT_HISTORY.later(conn, dict(
                instance_id=instance_id, form=state["form"], record_id=state["record_id"], kind="flow.retried",
                node=node_id, actor=actor, at=now, data={}))
            with self._active(conn, state):
                self._run(conn, state, flow, [node_id], actor)
                self._save(conn, state)
            return str(state["status"])

    def withdraw(self, form: str, record_id: int, *, actor: str, comment: str | None = None,
                 override: bool = False) -> int:
        """The submitter takes the record back: its running flow ends with outcome `withdrawn`.

        Open tasks are cancelled and pending wait timers dropped, in one transaction. Only the
        user who created the record may withdraw it, unless `override` (an administrator).
        Returns the instance id.
        """
        with transaction(self.rt.db) as conn:
            record = self.forms.read(conn, form, record_id)
            if not override and record.get("created_by") != actor:
                raise ConflictError(f"only the submitter ({record.get('created_by') or 'unknown'}) "
                                    f"may withdraw {form} {record_id}")
            instance_id = conn.execute(
                select(flow_instances.c.id).where(flow_instances.c.form == form,
                                                  flow_instances.c.record_id == record_id,
                                                  flow_instances.c.status.in_(("running", "incident")))
                .order_by(flow_instances.c.id.desc()).limit(1)).scalar()
            if instance_id is None:
                raise ConflictError(f"{form} {record_id} has no running flow to withdraw")
            state = self._load(conn, instance_id)
            now = self.rt.clock.now()
            INSERT_HISTORY.later(conn, dict(
                instance_id=state["id"], form=form, record_id=record_id, kind="flow.withdrawn",
                node=None, actor=actor, at=now, data={"comment": comment, "at": list(state["current"])}))
            self._cancel_waiting(conn, state)
            # The record's status first: what the end's event sets off (SLA clocks pausing on a
            # `withdrawn` status, messages) sees the record as withdrawn.
            self.forms.update_fields(conn, form, record_id, {}, actor=actor, status="withdrawn")
            self._end(conn, state, "withdrawn", actor, status="withdrawn")
            self._save(conn, state)
            return int(state["id"])

    def comment(self, form: str, record_id: int, *, actor: str | None, text: str = "",
                attachments: Iterable[str] = (), task_id: int | None = None,
                locale: str = "en") -> int:
        """Add a comment and/or files to a record's trail, at a task's step or the current one.

        Returns the history entry's id. `attachments` are ids of files uploaded beforehand.
        """
        text = (text or "").strip()
        files = list(attachments)
        if not text and not files:
            raise ValidationFailed({"comment": ["write a comment or attach a file"]})
        with transaction(self.rt.db) as conn:
            self.forms.read(conn, form, record_id)  # NotFoundError for an unknown record
            node, instance_id = None, None
            if task_id is not None:
                task = self._task(conn, task_id)
                if (task["form"], task["record_id"]) != (form, record_id):
                    raise ConflictError(f"task {task_id} belongs to another record")
                node, instance_id = task["node"], task["instance_id"]
            else:
                row = conn.execute(select(flow_instances.c.id, flow_instances.c.current).where(
                    flow_instances.c.form == form, flow_instances.c.record_id == record_id)
                    .order_by(flow_instances.c.id.desc()).limit(1)).first()
                if row is not None:
                    instance_id, node = row[0], (row[1] or [None])[0]
            data: dict[str, Any] = {"text": text, "task_id": task_id}
            if files:
                data["attachments"] = self._link_files(conn, form, record_id, files, locale)
            now = self.rt.clock.now()
            entry = int(INSERT_HISTORY.execute(conn, dict(
                instance_id=instance_id, form=form, record_id=record_id, kind="comment.added",
                node=node, actor=actor, at=now, data=data)))
            self.rt.bus.publish(Event("comment.added", now, form, record_id, actor,
                                      {"node": node, "task_id": task_id, "history_id": entry}), conn)
            return entry

    def signal(self, form: str, record_id: int, event: str, *, actor: str | None = None,
               data: Mapping[str, Any] | None = None) -> None:
        """Publish `event` for a record in a transaction of its own, e.g. `customer.replied`
        from a web hook; `wait` nodes waiting for that event on the record move on."""
        with transaction(self.rt.db) as conn:
            self.forms.read(conn, form, record_id)
            self.rt.bus.publish(Event(event, self.rt.clock.now(), form, record_id, actor, dict(data or {})),
                                conn)

    def _link_files(self, conn: Connection, form: str, record_id: int, ids: list[str],
                    locale: str) -> list[dict[str, Any]]:
        service = self.rt.services.get("attachments")
        if service is None:
            raise ConflictError("file uploads are not enabled")
        return service.link(conn, ids, form, record_id, "_history", locale=locale)  # type: ignore[no-any-return]

    def _cells_once(self, conn: Connection) -> AbstractContextManager[None]:
        """Report cells (reports/rollups.py) that the command's events touch more than once, as
        a completion that changes the record and ends its flow does, are recomputed once, as
        the command ends."""
        keeper = self.rt.services.get("rollups")
        if keeper is None or not keeper.by_form:  # a bundle without rollups: nothing to defer
            return nullcontext()
        return keeper.deferred(conn)  # type: ignore[no-any-return]

    # -- resuming waiting tokens ------------------------------------------------------------
    @contextmanager
    def _active(self, conn: Connection, state: dict[str, Any]) -> Iterator[None]:
        """Mark an instance as being moved by this connection's command: an event it publishes
        must not resume it again from the database, and what the event's subscribers ask of it
        (`current_nodes`) is answered from memory, where its state lives until saved."""
        active: dict[int, dict[str, Any]] = conn.info.setdefault(_ACTIVE, {})
        fresh = state["id"] not in active
        active[state["id"]] = state
        try:
            yield
        finally:
            if fresh:
                active.pop(state["id"], None)

    def current_nodes(self, conn: Connection, form: str, record_id: int) -> set[str]:
        """The steps where the record's running instances stand, as this transaction sees them:
        an instance the command is moving is written once at the command's end, so its row
        still names the step it left while the events of the step it entered are published."""
        moving = [state for state in conn.info.get(_ACTIVE, {}).values()
                  if state["form"] == form and state["record_id"] == record_id]
        nodes = {node for state in moving if state["status"] == "running" for node in state["current"]}
        ids = {state["id"] for state in moving}
        for row in _RUNNING_NODES.all(conn, {"form": form, "record_id": record_id}):
            if row["id"] not in ids:
                nodes.update(row["current"] or ())
        return nodes

    def _advance(self, conn: Connection, instance_id: int, node_id: str, actor: str | None,
                 act: Callable[[NodeRun], None]) -> bool:
        """Move a token waiting at `node_id` (a wait or subflow node): `act` says where to.

        False (and nothing written) when the token is no longer there: a stale timer or event.
        """
        if instance_id in conn.info.get(_ACTIVE, {}):
            return False
        state = self._load(conn, instance_id)
        if state["status"] != "running" or node_id not in state["current"]:
            return False
        flow = self._flow(state)
        with self._active(conn, state):
            run = NodeRun(self, conn, state, flow, flow.nodes[node_id], actor)
            act(run)
            pending: list[Any] = []
            self._apply(conn, state, run, pending, actor)
            self._run(conn, state, flow, pending, actor)
            self._save(conn, state)
        return True

    def _on_wait_timer(self, conn: Connection, timer: Any) -> None:
        """The `flow.wait` timer came due: the token at its wait node moves on."""
        payload = timer.payload or {}

        def resume(run: NodeRun) -> None:
            run.history("wait.resumed", {"by": "timer", "due_at": payload.get("due_at")})
            run.move_to(run.node.next)

        self._advance(conn, int(payload["instance_id"]), str(payload["node"]), "system", resume)

    def _on_timeout_timer(self, conn: Connection, timer: Any) -> None:
        """A step's `timeout:` came due with nobody having completed it: its open tasks are
        cancelled and the token goes on to the timeout's target. A step completed meanwhile has
        moved its token on, and the timer then finds nothing to do."""
        payload = timer.payload or {}
        instance_id, node_id = int(payload["instance_id"]), str(payload["node"])

        def expire(run: NodeRun) -> None:
            run.cancel_open_tasks()
            run.history("task.timed_out", {"after": payload.get("after"), "to": payload.get("to")})
            run.move_to(str(payload["to"]))

        self._advance(conn, instance_id, node_id, "system", expire)

    def _on_event(self, event: Event, conn: Connection) -> None:
        """An event a `wait` node names was published for a record: its waiting tokens move on."""
        if not event.form or event.record_id is None:
            return
        rows = conn.execute(select(flow_instances.c.id, flow_instances.c.current, flow_instances.c.flow,
                                   flow_instances.c.bundle_hash)
                            .where(flow_instances.c.form == event.form,
                                   flow_instances.c.record_id == event.record_id,
                                   flow_instances.c.status == "running")).all()
        for instance_id, current, flow_name, version in rows:
            flow = self._flow({"flow": flow_name, "bundle_hash": version})
            for node_id in current or []:
                node = flow.nodes.get(node_id)
                if node is None or node.type != "wait" or node.options.get("event") != event.name:
                    continue

                def resume(run: NodeRun) -> None:
                    run.history("wait.resumed", {"by": "event", "event": event.name})
                    run.move_to(run.node.next)

                self._advance(conn, int(instance_id), node_id, event.actor, resume)

    def _cancel_waiting(self, conn: Connection, state: dict[str, Any]) -> None:
        """Cancel an ending instance's open tasks and pending wait and timeout timers."""
        conn.execute(update(tasks).where(tasks.c.instance_id == state["id"],
                                         tasks.c.status.in_(("open", "claimed")))
                     .values(status="cancelled", completed_at=self.rt.clock.now(),
                             version=tasks.c.version + 1))
        timers = self.rt.services.get("timers")
        if timers is not None:
            timers.cancel(conn, kind=WAIT_TIMER, subject=f"instance:{state['id']}")
            timers.cancel(conn, kind=TIMEOUT_TIMER, subject=f"instance:{state['id']}")

    # -- queries ----------------------------------------------------------------------------
    def inbox(self, username: str, roles: Iterable[str] = ()) -> list[TaskView]:
        """Open tasks of a user: assigned to them, or open to one of their roles or to their
        department (claimable)."""
        roles = list(roles)
        with read_transaction(self.rt.db) as conn:
            user_id = self.user_id(conn, username)
            principal = load_principal(conn, self.rt, username)
            rows = conn.execute(
                select(tasks, flow_instances.c.flow).join(flow_instances)
                .where(tasks.c.status.in_(("open", "claimed")))
                .order_by(tasks.c.created_at, tasks.c.id)).mappings().all()
        # The roles asked about, with the user's own departments (none for an unknown user).
        asking = replace(principal or Principal(username), roles=frozenset(roles))
        out = []
        for row in rows:
            # Candidates see an open task (to claim it) and an escalated one (they were added to
            # it, e.g. the department manager at level 2, while its holder keeps it).
            claimable = (row["status"] == "open" or row["escalation_level"] > 0) and is_candidate(row, asking)
            if (user_id is not None and row["assignee_user"] == user_id) or claimable:
                flow = self.flows.get(row["flow"])
                node = flow.nodes.get(row["node"]) if flow else None
                out.append(TaskView(row["id"], row["instance_id"], row["flow"], row["node"],
                                    node.text() if node else row["node"], row["form"],
                                    row["record_id"], row["status"],
                                    username if row["assignee_user"] == user_id else None,
                                    row["created_at"], row["version"], row["escalation_level"]))
        return out

    def open_tasks(self, form: str, record_id: int) -> list[dict[str, Any]]:
        """The record's open tasks."""
        # An inbox client asks this before every completion: one statement, on the connection
        # whose cache holds what the last completion wrote when it is free.
        with single_read(self.rt.db) as conn:
            return _OPEN_TASKS.all(conn, {"form": form, "record_id": record_id})

    def instances(self, form: str, record_id: int) -> list[dict[str, Any]]:
        """The record's flow instances, oldest first."""
        with single_read(self.rt.db) as conn:
            return _INSTANCES.all(conn, {"form": form, "record_id": record_id})

    def status_path(self, form: str, record_id: int) -> list[tuple[Any, str]]:
        """When the record's flows changed its status, and to what (oldest first)."""
        instances = {int(i["id"]): i for i in self.instances(form, record_id)}
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(select(history.c.instance_id, history.c.kind, history.c.node, history.c.at,
                                       history.c.data)
                                .where(history.c.form == form, history.c.record_id == record_id,
                                       history.c.kind.in_(STATUS_KINDS))
                                .order_by(history.c.id)).mappings().all()

        def flow_of(instance_id: int) -> FlowSpec | None:
            instance = instances.get(instance_id)
            try:
                return self._flow(instance) if instance is not None else None
            except NotFoundError:  # a version recorded without its files: its statuses are unknown
                return None

        return status_path(rows, flow_of)

    def timeout_of(self, conn: Connection, instance_id: int, node_id: str) -> tuple[datetime, str] | None:
        """(when, the step it goes on to) of the armed `timeout:` of the token at `node_id`, or
        None: what the pages show is the time the server will act on."""
        timers = self.rt.services.get("timers")
        if timers is None:
            return None
        for timer in timers.pending(conn, subject=f"instance:{instance_id}", kind=TIMEOUT_TIMER):
            if timer.key == node_id:
                return timer.due_at, str((timer.payload or {}).get("to", ""))
        return None

    def customer_step(self, form: str, record_id: int) -> tuple[dict[str, Any], NodeSpec] | None:
        """The record's open task that its customer may answer from the progress lookup (a task
        node with `customer:`), with its node; None when there is none."""
        instances: dict[int, dict[str, Any]] | None = None
        for task in self.open_tasks(form, record_id):
            if instances is None:
                instances = {int(i["id"]): i for i in self.instances(form, record_id)}
            instance = instances.get(int(task["instance_id"]))
            if instance is None:
                continue
            node = self._flow(instance).nodes.get(task["node"])
            if node is not None and node.options.get("customer") is not None:
                return dict(task), node
        return None

    def user_id(self, conn: Connection, username: str) -> int | None:
        """The id of an account (ids never change, so known ones are remembered)."""
        known = self._user_ids.get(username)
        if known is None:
            known = _SELECT_USER_ID.scalar(conn, {"username": username})
            if known is not None:
                self._user_ids[username] = known
        return known

    # -- internals --------------------------------------------------------------------------
    def _run(self, conn: Connection, state: dict[str, Any], flow: FlowSpec,
             pending: list[tuple[str, str | None]] | list[str], actor: str | None) -> None:
        """Enter each node of `pending` (each holds a token already) until every token waits.

        Items are node ids, or (node id, the node the token came from): `flow.entered` records
        where it came from, so the timeline closes the right stay when branches run in parallel.
        """
        steps = 0
        while pending and state["status"] == "running":
            item = pending.pop(0)
            node_id, source = item if isinstance(item, tuple) else (item, None)
            node = flow.nodes[node_id]
            steps += 1
            if steps > MAX_STEPS_PER_COMMAND:
                self._incident(conn, state, node,
                               f"the flow passed {MAX_STEPS_PER_COMMAND} nodes without waiting: a loop?")
                return
            INSERT_HISTORY.later(conn, {
                "instance_id": state["id"], "form": flow.form, "record_id": state["record_id"],
                "kind": "flow.entered", "node": node_id, "actor": actor, "at": self.rt.clock.now(),
                "data": {"from": source} if source else None})
            status = node.options.get("status")
            if status:
                self.forms.update_fields(conn, flow.form, state["record_id"], {}, actor=actor,
                                         status=status)
            # Before the node does its work: a rule `on: {flow.entered: node}` may set fields a
            # decision there reads, and an SLA target may start or stop as the token arrives.
            self.rt.bus.publish(Event("flow.entered", self.rt.clock.now(), flow.form, state["record_id"], actor,
                                      {"flow": flow.name, "node": node_id, "from": source}), conn)
            run = NodeRun(self, conn, state, flow, node, actor)
            node_types = self.rt.bundle.registry.node_types
            try:
                source = node_types.source(node.type)
                if source == BUILT_IN:
                    node_types.get(node.type).enter(run)
                else:
                    self._enter_plugin_node(run, source)
            except (FlowIncident, ExpressionError) as exc:
                self._incident(conn, state, node, str(exc))
                return
            self._apply(conn, state, run, pending, actor)

    def _enter_plugin_node(self, run: NodeRun, source: str) -> None:
        """A plugin's node type enters `run.node` in a savepoint: whatever it raises, or a node
        it moves the token to that the flow does not have, is an incident naming the plugin
        (the command, e.g. a customer's submission, still commits), not a failed command."""
        node, flow = run.node, run.flow
        what = f"node type '{node.type}' (plugin {source})"
        try:
            with savepoint(run.conn):
                self.rt.bundle.registry.node_types.get(node.type).enter(run)
        except (FlowIncident, ExpressionError):
            raise
        except Exception as exc:
            log.exception("%s failed entering node %s of flow %s", what, node.id, flow.name)
            raise FlowIncident(f"{what} failed: {type(exc).__name__}: {exc}") from exc
        targets = run.forked if run.forked is not None else [run.moved_to] if run.moved_to is not None else []
        unknown = [target for target in targets if target not in flow.nodes]
        if unknown:
            raise FlowIncident(f"{what} moved the token to {', '.join(map(repr, unknown))}, "
                               f"not a node of flow '{flow.name}'")

    def _apply(self, conn: Connection, state: dict[str, Any], run: NodeRun, pending: list[Any],
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
        pending.extend((target, node_id) for target in new)
        if run.ended is not None and not current:
            self._end(conn, state, run.ended, actor)

    def _end(self, conn: Connection, state: dict[str, Any], outcome: str, actor: str | None,
             *, status: str = "completed") -> None:
        now = self.rt.clock.now()
        state.update(status=status, outcome=outcome, ended_at=now, current=[])
        INSERT_HISTORY.later(conn, dict(
            instance_id=state["id"], form=state["form"], record_id=state["record_id"],
            kind="flow.ended", node=None, actor=actor, at=now, data={"outcome": outcome}))
        self.rt.bus.publish(Event("flow.ended", now, state["form"], state["record_id"], actor,
                                  {"flow": state["flow"], "outcome": outcome}), conn)
        parent = state["variables"].get(PARENT_KEY)
        if parent:
            # A subflow ended: its parent's token moves on, unless the parent is the very command
            # that started it (its subflow node then sees the outcome directly).
            def resume(run: NodeRun) -> None:
                run.variables[run.node.id] = {**run.variables.get(run.node.id, {}), "outcome": outcome}
                run.history("subflow.ended", {"instance_id": state["id"], "outcome": outcome})
                run.move_to(run.node.next)

            self._advance(conn, int(parent["instance_id"]), str(parent["node"]), actor, resume)

    def _incident(self, conn: Connection, state: dict[str, Any], node: NodeSpec, message: str) -> None:
        log.warning("flow incident on %s %s at %s: %s", state["form"], state["record_id"],
                    node.id, message)
        now = self.rt.clock.now()
        state["status"] = "incident"
        conn.execute(insert(incidents).values(kind="flow", ref=f"instance:{state['id']}",
                                              message=f"{node.id}: {message}", created_at=now))
        INSERT_HISTORY.later(conn, dict(
            instance_id=state["id"], form=state["form"], record_id=state["record_id"],
            kind="incident", node=node.id, actor="system", at=now, data={"message": message}))

    def _load(self, conn: Connection, instance_id: int) -> dict[str, Any]:
        """The instance row, locked for this transaction, as a mutable state for `_save`."""
        row = _LOAD_INSTANCE.first(conn, {"instance_id": instance_id})
        if row is None:
            raise NotFoundError(f"no flow instance {instance_id}")
        return _state(row)

    def _save(self, conn: Connection, state: dict[str, Any]) -> None:
        """Write the state back once per command; a version that moved meanwhile is a conflict."""
        params = {"b_id": state["id"], "b_version": state["version"], "b_new": state["version"] + 1,
                  "b_current": state["current"], "b_variables": state["variables"]}
        if state["status"] == "running" and state[_STORED_STATUS] == "running":
            rowcount = _SAVE_RUNNING.execute(conn, params)  # outcome and end are None while running
        else:
            rowcount = _SAVE_INSTANCE.execute(conn, {
                **params, "b_status": state["status"], "b_outcome": state["outcome"],
                "b_ended_at": state["ended_at"]})
        if rowcount != 1:
            raise ConflictError(f"{flow_instances.name} {state['id']} was changed by someone else "
                                f"(expected version {state['version']}); reload and try again")
        state["version"] += 1
        state[_STORED_STATUS] = state["status"]

    def _flow(self, instance: Mapping[str, Any]) -> FlowSpec:
        """The definition an instance runs on: the bundle version it started on (pinned)."""
        version = instance.get("bundle_hash")
        flows = self.flows if version in (None, self.rt.bundle.hash) else self._flows_of(version)
        flow = flows.get(instance["flow"])
        if flow is None:
            raise NotFoundError(f"flow '{instance['flow']}' is not in bundle version {version}")
        return flow

    def flow_named(self, name: str, instance: Mapping[str, Any]) -> FlowSpec:
        """Flow `name` of the bundle version `instance` runs on."""
        return self._flow({"flow": name, "bundle_hash": instance.get("bundle_hash")})

    def _flows_of(self, version: str) -> Mapping[str, FlowSpec]:
        """The flows of an earlier bundle version, rebuilt once from its recorded files."""
        cached = self._versions.get(version)
        if cached is None:
            with read_transaction(self.rt.db) as conn:
                files = bundle_files(conn, version)
            if files is None:
                raise NotFoundError(f"bundle version {version} was recorded without its files; "
                                    "move its running instances to the current version with "
                                    "`docket instances migrate`")
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
        row = _SELECT_TASK.first(conn, {"task_id": task_id})
        if row is None:
            raise NotFoundError(f"no task {task_id}")
        return row

    @staticmethod
    def _update_task(conn: Connection, task: Mapping[str, Any], *, expected_version: int | None = None,
                     **values: Any) -> None:
        version = task["version"] if expected_version is None else expected_version
        if not FlowService._try_update_task(conn, task, version, values):
            raise ConflictError(f"task {task['id']} was changed by someone else; reload and try again")

    @staticmethod
    def _try_update_task(conn: Connection, task: Mapping[str, Any], version: int,
                         values: Mapping[str, Any]) -> bool:
        """Write `values` to the task if it is still at `version` (moving it on); False if not.

        Every write of a task moves its version (these updates, cancellations, the `assign`
        action), so a task read earlier in the transaction is known to be current when this
        succeeds."""
        columns = tuple(sorted(values))
        stmt = _UPDATE_TASK.get(columns)
        if stmt is None:
            stmt = _UPDATE_TASK[columns] = PreparedQuery(
                update(tasks).where(tasks.c.id == bindparam("b_id"), tasks.c.version == bindparam("b_version"))
                .values({**{c: bindparam(f"v_{c}", type_=tasks.c[c].type) for c in columns},
                         "version": bindparam("b_new")}))
        params = {f"v_{c}": values[c] for c in columns}
        params.update(b_id=task["id"], b_version=version, b_new=version + 1)
        return stmt.execute(conn, params) == 1


def is_candidate(task: Mapping[str, Any], principal: Principal) -> bool:
    """True if the task is offered to the principal: by name, by one of their roles, or to their
    department (or one above it). The one rule of the inbox, the pages and the API."""
    return (principal.username in (task.get("candidate_users") or [])
            or any(r in principal.roles for r in task.get("candidate_roles") or [])
            or (task.get("candidate_department") is not None
                and task["candidate_department"] in principal.departments))


def _state(row: Mapping[str, Any]) -> dict[str, Any]:
    """An instance row as the mutable state a command works on and `_save` writes back."""
    state = dict(row)
    state[_STORED_STATUS] = row["status"]
    state["current"] = list(row["current"] or [])
    state["variables"] = copy.deepcopy(row["variables"] or {})
    return state


def _merged(old: list[str] | None, new: list[str] | None) -> list[str] | None:
    """Two candidate lists as one, in order, without repeats (None when both are empty)."""
    out = list(dict.fromkeys([*(old or []), *(new or [])]))
    return out or None


__all__ = ["FlowService", "TaskView", "is_candidate"]
