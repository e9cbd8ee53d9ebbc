"""What a node type may do with a token: `NodeRun`, the only handle node types get on the flow
engine, built-in and plugin alike (docs/plugins.md), and `FlowIncident`, how one stops a token.

A `NodeRun` lives for one node entry or task completion inside one command's transaction: what
it writes (tasks, history, timers, records) commits or rolls back with the command.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from engine.errors import NotFoundError
from engine.events import Event
from engine.storage.prepared import INSERT_HISTORY, PreparedInsert, PreparedQuery
from engine.storage.tables import flow_instances, tasks, user_roles, users
from flows.spec import FlowSpec, NodeSpec

if TYPE_CHECKING:
    from flows.runtime import FlowService

WAIT_TIMER = "flow.wait"
TIMEOUT_TIMER = "flow.timeout"
"""A step's `timeout:` (subject `instance:<id>`, key the node): nobody completed it in time."""
"""The timer kind of `wait` nodes (TimerService, engine/timers.py)."""
PARENT_KEY = "_parent"
"""The variable of a subflow's instance naming its parent: {instance_id, node}."""

_INSERT_TASK = PreparedInsert(tasks)
_DONE_BY, _HELD_BY = users.alias("done"), users.alias("held")
_ASSIGNEE_OF = PreparedQuery(  # who completed, or else holds, the latest task of a node
    select(_DONE_BY.c.username.label("done_by"), _HELD_BY.c.username.label("held_by"))
    .select_from(tasks.outerjoin(_DONE_BY, _DONE_BY.c.id == tasks.c.completed_by)
                 .outerjoin(_HELD_BY, _HELD_BY.c.id == tasks.c.assignee_user))
    .where(tasks.c.instance_id == bindparam("instance_id"), tasks.c.node == bindparam("node"),
           tasks.c.status != "cancelled")
    .order_by(tasks.c.id.desc()).limit(1))
_PERSON = users.alias("person")
_MANAGER_OF = PreparedQuery(
    select(users.c.username).join(_PERSON, _PERSON.c.manager_id == users.c.id)
    .where(_PERSON.c.username == bindparam("username"), users.c.is_active.is_(True)))


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
        self._record: dict[str, Any] | None = None

    @property
    def variables(self) -> dict[str, Any]:
        """The instance's variables (JSON), saved with the instance at the end of the command."""
        return self.instance["variables"]  # type: ignore[no-any-return]

    @property
    def record(self) -> dict[str, Any]:
        """The record's current values (read inside this transaction, once per node entry;
        publishing an event forgets them, since a rule may have changed the record)."""
        if self._record is None:
            self._record = self.service.forms.read(self.conn, self.flow.form, self.instance["record_id"])
        return self._record

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
        INSERT_HISTORY.later(self.conn, {
            "instance_id": self.instance["id"], "form": self.flow.form,
            "record_id": self.instance["record_id"], "kind": kind, "node": self.node.id,
            "actor": self.actor, "at": self.service.rt.clock.now(),
            "data": dict(data) if data is not None else None})

    def create_task(self, assign: Mapping[str, Any] | None = None,
                    compiled: Mapping[str, Any] | None = None) -> int:
        """Open a task for this node, assigned as `assign` (default: the node's `assign`) says.

        Keys: `user`, `role`, `department`, `department_from`, `expression`, `submitter`,
        `assignee_of`, `manager_of`, `strategy`, `cc`, and `candidates` (usernames who may claim it).
        `compiled` holds the compiled expressions of `assign` (default: the node's own).
        The task is due when `task_due` says: each visit of the step (a return, a reopening)
        opens a task with a fresh due time; claiming, reassigning and escalating keep it.
        """
        own = assign is None
        if own:
            assign = self.node.options.get("assign", {})
            compiled = self.node.compiled.get("assign", {})
        assert assign is not None
        target = self.resolve(assign, compiled or {})
        if not (target["user"] or target["roles"] or target["candidates"] or target["department"]):
            # A task offered to nobody waits unseen in no one's inbox: stop here, visibly.
            self.incident("nobody to assign: the record has no submitter among the users (a customer sent "
                          "it on the public form)" if assign.get("submitter")
                          else "nobody to assign: the step's assign names no one for this record")
        now = self.service.rt.clock.now()
        assignee = self.service.user_id(self.conn, target["user"]) if target["user"] else None
        task_id = int(_INSERT_TASK.execute(self.conn, dict(
            instance_id=self.instance["id"], node=self.node.id, form=self.flow.form,
            record_id=self.instance["record_id"], status="claimed" if assignee else "open",
            assignee_user=assignee, candidate_roles=target["roles"], candidate_users=target["candidates"],
            candidate_department=target["department"], created_at=now,
            claimed_at=now if assignee else None, due_at=self.task_due(),
            escalation_level=0, version=1,  # the columns' server defaults, given so the insert is prepared
        )))
        self.service.rt.bus.publish(Event("task.created", now, self.flow.form, self.instance["record_id"],
                                          self.actor, {"task_id": task_id, "node": self.node.id}),
                                    self.conn)
        self._record = None
        if assign.get("cc"):
            self.copy(task_id, assign["cc"], (compiled or {}).get("cc"))
        if own:
            # Graded response decided by the record itself (e.g. a major dispute goes straight to
            # the quality committee): the highest level whose `when` holds applies at once.
            levels = self.node.compiled.get("escalation") or {}
            due = [level for level, entry in sorted(levels.items()) if self._holds(entry.get("when"))]
            if due:
                task = self.service._task(self.conn, task_id)
                self.service._escalate(self, task, due[-1], reason="condition")
        return task_id

    def task_due(self) -> datetime | None:
        """When a task this node opens now is due: the first of its compiled `due` whose
        condition holds for the record, after now; else (none, or none holds), for a step with a
        `timeout:`, the time the server acts on it; else None (no due time: the step measures
        count it on time)."""
        compiled = self.node.compiled
        amount = next((after for when, after in compiled.get("due") or () if when is None or self._holds(when)),
                      (compiled.get("timeout") or (None,))[0])
        return None if amount is None else self.due_after(amount)

    def _holds(self, condition: Any) -> bool:
        """A `when:` that is absent (None), a boolean, or a compiled expression."""
        if condition is None or isinstance(condition, bool):
            return bool(condition)
        return bool(self.evaluate(condition))

    def resolve(self, assign: Mapping[str, Any], compiled: Mapping[str, Any]) -> dict[str, Any]:
        """Who `assign` names: {"user": username or None, "roles", "candidates", "department"}.

        A named person (user, expression, submitter, assignee_of, manager_of, or one picked by
        the strategy) gets the task; otherwise it is open to the role, department or candidates.
        An expression giving nothing (e.g. an empty account-manager field) falls back to them.
        """
        username = assign.get("user")
        if compiled.get("expression") is not None:
            username = self.evaluate(compiled["expression"]) or username
        if assign.get("submitter"):
            username = self.record.get("created_by")
            # With a role beside it, the submitter takes the task only as one of the role (首问负责
            # 制: the agent who took the call keeps the case); others' records go to the role.
            if username and "role" in assign and username not in self.users_with_role(assign["role"]):
                username = None
        if assign.get("assignee_of"):
            username = self.assignee_of(assign["assignee_of"]) or username
        if compiled.get("manager_of") is not None:
            subject = self.subject_of(compiled["manager_of"])
            manager = self.manager_of(subject) if subject else None
            if manager is None and not ("role" in assign or "department" in assign
                                        or "department_from" in assign):
                self.incident(f"nobody to assign: {subject or 'the person'} has no manager in bundle.yaml"
                              if subject else f"nobody to assign: no {assign['manager_of']} to ask the manager of")
            username = manager or username
        department = assign.get("department")
        if compiled.get("department_from") is not None:
            named = self.evaluate(compiled["department_from"])
            if named and str(named) in self.service.rt.bundle.meta.departments:
                department = str(named)
            elif not (username or department or "role" in assign):
                what = f"'{named}' is not a department of bundle.yaml" if named else "it names no department"
                self.incident(f"nobody to assign: {what} ({compiled['department_from'].source})")
        if not username and assign.get("strategy") in ("round_robin", "least_loaded"):
            username = self.pick(assign, department)
        candidates = [str(username)] if username else list(assign.get("candidates") or []) or None
        return {"user": str(username) if username else None,
                "roles": [assign["role"]] if "role" in assign else None,
                "candidates": candidates, "department": department}

    def subject_of(self, what: tuple[Any, ...]) -> str | None:
        """The person a `manager_of` names: the submitter, a node's assignee, or an expression."""
        if what[0] == "submitter":
            return self.record.get("created_by")  # type: ignore[no-any-return]
        if what[0] == "assignee_of":
            return self.assignee_of(what[1])
        value = self.evaluate(what[1])
        return str(value) if value else None

    def assignee_of(self, node_id: str) -> str | None:
        """Who completed (or else holds) the latest task of `node_id` in this instance."""
        row = _ASSIGNEE_OF.first(self.conn, {"instance_id": self.instance["id"], "node": node_id})
        if row is None:
            return None
        return row["done_by"] or row["held_by"]  # type: ignore[no-any-return]

    def manager_of(self, username: str) -> str | None:
        """The manager (bundle.yaml `manager`) of `username`, if the account has one and is active."""
        return _MANAGER_OF.scalar(self.conn, {"username": username})  # type: ignore[no-any-return]

    def copy(self, task_id: int, cc: Mapping[str, Any], expression: Any = None) -> list[str]:
        """Tell watchers (抄送) about a task: history `task.copied` and the event of that name."""
        named: list[Any] = []
        if expression is not None:
            value = self.evaluate(expression)
            named = list(value) if isinstance(value, (list, tuple)) else [value]
        watchers = sorted({*cc.get("users", []), *(str(v) for v in named if v),
                           *(u for r in cc.get("roles", []) for u in self.users_with_role(r))})
        if not watchers:
            return []
        self.history("task.copied", {"task_id": int(task_id), "to": watchers})
        self.service.rt.bus.publish(Event("task.copied", self.service.rt.clock.now(), self.flow.form,
                                          self.instance["record_id"], self.actor,
                                          {"task_id": task_id, "node": self.node.id, "to": watchers}),
                                    self.conn)
        return watchers

    def pick(self, assign: Mapping[str, Any], department: str | None = None) -> str | None:
        """One person of the role or department (`department`, default the one `assign` names),
        by the `strategy` of `assign`.

        `least_loaded`: whoever has the fewest open tasks now (ties: alphabetical).
        `round_robin`: the one after whoever got this node's previous task, in name order.
        None when nobody holds the role (the task then stays open for claiming).
        """
        department = department or assign.get("department")
        if "role" in assign:
            pool = self.users_with_role(assign["role"])
        elif department:
            pool = self.users_in_department(department)
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

    @property
    def now(self) -> Any:
        return self.service.rt.clock.now()

    def schedule_wait(self, due_at: Any) -> None:
        """Arm the durable timer that moves this token on at `due_at` (re-armed if one exists)."""
        timers = self.service.rt.services.get("timers")
        if timers is None:
            self.incident("timers are not running: a wait node needs the timer service")
        timers.schedule(self.conn, kind=WAIT_TIMER, subject=f"instance:{self.instance['id']}",
                        key=self.node.id, due_at=due_at,
                        payload={"instance_id": self.instance["id"], "node": self.node.id,
                                 "due_at": due_at.isoformat()})

    def due_after(self, amount: Any) -> Any:
        """The instant `amount` (a Duration: wall time, or working time in the bundle's calendar)
        after now; an incident for working time without a calendar."""
        try:
            return amount.after(self.now, self.service.rt.bundle.meta.calendar)
        except ValueError as exc:
            self.incident(str(exc))

    def schedule_timeout(self, amount: Any, to: str) -> None:
        """Arm the durable timer that moves the token from this step to `to` when nobody has
        completed it `amount` after now (re-armed on each visit)."""
        timers = self.service.rt.services.get("timers")
        if timers is None:
            self.incident("timers are not running: a step with a timeout needs the timer service")
        due = self.due_after(amount)
        timers.schedule(self.conn, kind=TIMEOUT_TIMER, subject=f"instance:{self.instance['id']}",
                        key=self.node.id, due_at=due,
                        payload={"instance_id": self.instance["id"], "node": self.node.id, "to": to,
                                 "after": str(amount), "due_at": due.isoformat()})

    def create_record(self, form: str, values: Mapping[str, Any], *, starting: str | None = None) -> int:
        """Validate and store a new record of `form` in this command's transaction; returns its id.

        `starting`: a flow the caller starts itself, so the record's creation does not start it."""
        forms = self.service.forms
        clean = forms.form(form).validate(dict(values), ctx=self.service.eval_context(),
                                          extra_names={"user": {"username": self.actor}})
        previous = self.conn.info.get("docket_subflow_start")
        self.conn.info["docket_subflow_start"] = starting
        try:
            return int(forms.insert_validated(self.conn, form, clean, actor=self.actor).record_id)
        finally:
            self.conn.info["docket_subflow_start"] = previous

    def start_child(self, flow: FlowSpec, record_id: int) -> dict[str, Any]:
        """Start `flow` on a record as this node's subflow (same bundle version); its state."""
        try:
            self.service.forms.read(self.conn, flow.form, record_id)
        except NotFoundError:
            self.incident(f"no {flow.form} record {record_id} to run '{flow.name}' on")
        return self.service._start(self.conn, flow, record_id, actor=self.actor,
                                   bundle_hash=self.instance.get("bundle_hash"),
                                   variables={PARENT_KEY: {"instance_id": self.instance["id"],
                                                           "node": self.node.id}})

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


__all__ = ["FlowIncident", "NodeRun", "PARENT_KEY", "TIMEOUT_TIMER", "WAIT_TIMER"]
