"""A record's path through its flow: the steps it went through, how long each took, where it is.

Everything here is read from `dk_history` (the append-only trail every command writes) and
`dk_tasks`, so it needs no extra bookkeeping and stays true for instances started on older
bundle versions. Dwell time is given twice: wall-clock time, and working time counted in the
bundle's business calendar (working hours, weekends, holidays, swapped working days), which is
what SLAs and the "time per step" KPI are about.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine.storage.tables import flow_instances, history, tasks, users

__all__ = ["STATUS_KINDS", "Step", "Timeline", "record_timeline", "status_path", "steps_from_history"]


@dataclass(frozen=True)
class Step:
    """One stay of a token at a node."""

    instance_id: int
    node: str
    entered_at: datetime
    left_at: datetime | None
    wall: timedelta
    work: timedelta
    completed_by: str | None = None
    outcome: str | None = None
    comment: str | None = None
    changes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.left_at is None


@dataclass(frozen=True)
class Timeline:
    """Where a record stands: its steps, current nodes and assignees, and its age."""

    steps: tuple[Step, ...]
    current: tuple[str, ...]
    assignees: tuple[str, ...]
    candidates: tuple[str, ...]
    """Roles or users who may claim an open, unassigned task."""
    age_wall: timedelta
    age_work: timedelta

    def dwell(self) -> dict[str, tuple[timedelta, timedelta]]:
        """Total (wall, working) time per node, over every stay."""
        out: dict[str, tuple[timedelta, timedelta]] = {}
        for step in self.steps:
            wall, work = out.get(step.node, (timedelta(0), timedelta(0)))
            out[step.node] = (wall + step.wall, work + step.work)
        return out


STATUS_KINDS = ("flow.entered", "task.escalated", "flow.withdrawn")
"""The history entries at which a flow may set the record's status."""


def status_path(rows: Iterable[Mapping[str, Any]], flow_of: Callable[[int], Any]) -> list[tuple[datetime, str]]:
    """When the flows changed the record's status, and to what, from history rows (oldest first)
    and the definition each instance runs on (`flow_of(instance_id)`, None if unknown): entering
    a node with `status`, an escalation level with one, a withdrawal. Read from the definitions,
    so it holds for instances started before it was written and costs the writes nothing."""
    path: list[tuple[datetime, str]] = []
    for row in rows:
        status: str | None = None
        if row["kind"] == "flow.withdrawn":
            status = "withdrawn"
        else:
            flow = flow_of(row["instance_id"]) if row["instance_id"] is not None else None
            node = flow.nodes.get(row["node"]) if flow is not None and row["node"] else None
            if node is not None and row["kind"] == "flow.entered":
                status = node.options.get("status")
            elif node is not None and row["kind"] == "task.escalated":
                level = (row["data"] or {}).get("level")
                status = next((entry.get("status") for entry in node.options.get("escalation") or []
                               if entry.get("level") == level), None)
        if status and (not path or path[-1][1] != status):
            path.append((row["at"], status))
    return path


def steps_from_history(rows: Iterable[Mapping[str, Any]], now: datetime, calendar: Any) -> list[Step]:
    """Turn history rows (oldest first) into steps: a stay at a node lasts from `flow.entered`
    until the instance enters another node on that path, ends, or (still open) until `now`."""
    open_steps: dict[tuple[int, str], dict[str, Any]] = {}
    order: list[dict[str, Any]] = []
    last_open: dict[int, list[tuple[int, str]]] = {}

    def close(key: tuple[int, str], at: datetime) -> None:
        step = open_steps.pop(key, None)
        if step is not None and step["left_at"] is None:
            step["left_at"] = at

    for row in rows:
        instance, kind, node, at = row["instance_id"], row["kind"], row["node"], row["at"]
        if instance is None:
            continue
        data = row.get("data") or {}
        if kind == "flow.entered" and node:
            # Entering a node ends the stay of the step that handed the token on. With a single
            # token that is the previous open node; parallel branches hand on from their own node.
            source = data.get("from") if isinstance(data, Mapping) else None
            pending = last_open.setdefault(instance, [])
            if source is not None:
                close((instance, source), at)
            elif pending:
                close(pending[-1], at)
            if (instance, node) in open_steps:
                continue  # a join entered by another branch: its stay goes on until it fires
            step = {"instance_id": instance, "node": node, "entered_at": at, "left_at": None,
                    "completed_by": None, "outcome": None, "comment": None, "changes": {}}
            open_steps[(instance, node)] = step
            pending.append((instance, node))
            order.append(step)
        elif kind == "task.completed" and node:
            step = open_steps.get((instance, node))
            if step is not None:
                step.update(completed_by=row["actor"], outcome=data.get("outcome"),
                            comment=data.get("comment"), changes=data.get("changes") or {})
        elif kind == "flow.ended":
            for key in list(open_steps):
                if key[0] == instance:
                    close(key, at)
    steps = []
    for raw in order:
        end = raw["left_at"] or now
        wall = max(end - raw["entered_at"], timedelta(0))
        work = calendar.work_time_between(raw["entered_at"], end) if calendar is not None else wall
        steps.append(Step(raw["instance_id"], raw["node"], raw["entered_at"], raw["left_at"], wall,
                          max(work, timedelta(0)), raw["completed_by"], raw["outcome"], raw["comment"],
                          raw["changes"]))
    return steps


def record_timeline(conn: Connection, form: str, record_id: int, *, now: datetime, calendar: Any,
                    created_at: datetime | None = None) -> Timeline:
    """The timeline of one record, read inside the caller's (read) transaction."""
    rows = conn.execute(select(history).where(history.c.form == form, history.c.record_id == record_id)
                        .order_by(history.c.id)).mappings().all()
    steps = steps_from_history(rows, now, calendar)
    instances = conn.execute(select(flow_instances.c.current, flow_instances.c.status)
                             .where(flow_instances.c.form == form, flow_instances.c.record_id == record_id)
                             ).all()
    current = tuple(node for cur, status in instances if status in ("running", "incident") for node in cur or [])
    open_tasks = conn.execute(
        select(tasks.c.candidate_roles, tasks.c.candidate_users, users.c.username)
        .select_from(tasks.outerjoin(users, users.c.id == tasks.c.assignee_user))
        .where(tasks.c.form == form, tasks.c.record_id == record_id, tasks.c.status.in_(("open", "claimed")))
    ).all()
    assignees = tuple(sorted({u for _, _, u in open_tasks if u}))
    candidates = tuple(sorted({c for roles, people, u in open_tasks if not u
                               for c in [*(roles or []), *(people or [])]}))
    start = created_at or (rows[0]["at"] if rows else now)
    age_wall = max(now - start, timedelta(0))
    age_work = calendar.work_time_between(start, now) if calendar is not None else age_wall
    return Timeline(tuple(steps), current, assignees, candidates, age_wall, max(age_work, timedelta(0)))
