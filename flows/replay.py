"""Record a scenario's command log and replay it (RELIABILITY 33, Temporal-style replay).

A `Recorder` runs commands against a system whose clock is a `ManualClock` and logs each one
with its time and what it led to (the record's current nodes, open tasks, flow status). `replay`
runs the log on another system (a fresh database, the same or a new bundle): same bundle, same
clock -> the same state and history (query numbers drawn at random are logged with their
command and given out again); a bundle that takes the scenario elsewhere (a removed or
renamed node, a changed condition) raises `ReplayDivergence` naming the first command that
went differently, instead of silently producing another history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import select

from engine.clock import ManualClock
from engine.errors import DocketError
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import flow_instances, history, tasks
from forms.numbering import drawing

__all__ = ["Recorder", "ReplayDivergence", "replay", "observe", "digest"]


class ReplayDivergence(DocketError):
    """The replayed scenario went differently from the recorded one."""


def observe(system: Any, form: str, record_id: int) -> dict[str, Any]:
    """What a command led to for one record: its flows' status and nodes, its open tasks."""
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(flow_instances.c.flow, flow_instances.c.status, flow_instances.c.current,
                                   flow_instances.c.outcome)
                            .where(flow_instances.c.form == form, flow_instances.c.record_id == record_id)
                            .order_by(flow_instances.c.id)).all()
        open_ = conn.execute(select(tasks.c.node).where(
            tasks.c.form == form, tasks.c.record_id == record_id,
            tasks.c.status.in_(("open", "claimed"))).order_by(tasks.c.id)).scalars().all()
    return {"flows": [[f, s, list(c or []), o] for f, s, c, o in rows], "open_tasks": list(open_)}


def digest(system: Any) -> dict[str, Any]:
    """The whole flow state and history, for comparing two runs (bundle hashes left out)."""
    with read_transaction(system.db) as conn:
        def rows(table: Any, drop: tuple[str, ...] = ()) -> list[dict[str, Any]]:
            return [{k: v for k, v in r.items() if k not in drop}
                    for r in conn.execute(select(table).order_by(table.c.id)).mappings()]
        return {"instances": rows(flow_instances, ("bundle_hash",)), "tasks": rows(tasks),
                "history": rows(history)}


@dataclass
class _Context:
    system: Any
    clock: ManualClock


class Recorder:
    """Runs commands on `system` and keeps the log; `log` is plain JSON-able data."""

    def __init__(self, system: Any):
        if not isinstance(system.runtime.clock, ManualClock):
            raise TypeError("recording a scenario needs a ManualClock, so it can be replayed")
        self.system = system
        self.log: list[dict[str, Any]] = []

    def dumps(self) -> str:
        return json.dumps(self.log, ensure_ascii=False, indent=1)

    def _run(self, op: str, args: dict[str, Any]) -> Any:
        entry: dict[str, Any] = {"op": op, "at": self.system.runtime.clock.now().isoformat(), "args": args}
        with drawing() as draws:
            result, form, record_id = _apply(self.system, op, args)
        if draws.made:  # query numbers drawn at random: the replay gives out the same ones
            entry["numbers"] = draws.made
        entry["expect"] = observe(self.system, form, record_id)
        if op == "submit":
            entry["expect"]["record_id"] = result
        self.log.append(entry)
        return result

    def advance(self, **delta: float) -> None:
        from datetime import timedelta
        self.system.runtime.clock.advance(timedelta(**delta))

    def submit(self, form: str, values: Mapping[str, Any], *, actor: str | None = None) -> int:
        return int(self._run("submit", {"form": form, "values": dict(values), "actor": actor}))

    def claim(self, task_id: int, user: str) -> None:
        self._run("claim", {"task_id": task_id, "node": _node_of(self.system, task_id), "user": user})

    def complete(self, task_id: int, user: str | None, **kwargs: Any) -> None:
        self._run("complete", {"task_id": task_id, "node": _node_of(self.system, task_id), "user": user,
                               **kwargs})

    def reassign(self, task_id: int, to: str, *, by: str) -> None:
        self._run("reassign", {"task_id": task_id, "node": _node_of(self.system, task_id), "to": to, "by": by})

    def escalate(self, task_id: int, level: int, *, actor: str | None = "system") -> None:
        self._run("escalate", {"task_id": task_id, "node": _node_of(self.system, task_id), "level": level,
                               "actor": actor})

    def reopen(self, form: str, record_id: int, *, at: str, actor: str | None = None) -> None:
        self._run("reopen", {"form": form, "record_id": record_id, "at": at, "actor": actor})

    def withdraw(self, form: str, record_id: int, *, actor: str) -> None:
        self._run("withdraw", {"form": form, "record_id": record_id, "actor": actor})

    def tick(self, form: str, record_id: int) -> int:
        """Fire the timers due now (the record is the one whose state is checked afterwards)."""
        return int(self._run("tick", {"form": form, "record_id": record_id}))


def _node_of(system: Any, task_id: int) -> str:
    with read_transaction(system.db) as conn:
        node = conn.execute(select(tasks.c.node).where(tasks.c.id == task_id)).scalar()
    if node is None:
        raise ReplayDivergence(f"there is no task {task_id}")
    return str(node)


def _task_record(system: Any, task_id: int) -> tuple[str, int]:
    with read_transaction(system.db) as conn:
        row = conn.execute(select(tasks.c.form, tasks.c.record_id).where(tasks.c.id == task_id)).first()
    if row is None:
        raise ReplayDivergence(f"there is no task {task_id}")
    return str(row[0]), int(row[1])


def _apply(system: Any, op: str, args: Mapping[str, Any]) -> tuple[Any, str, int]:
    """Run one logged command; (its result, the form and record to observe)."""
    flows = system.flows
    if op == "submit":
        record_id = system.forms.submit(args["form"], args["values"], actor=args["actor"]).record_id
        return record_id, args["form"], record_id
    if op in ("reopen", "withdraw"):
        if op == "reopen":
            flows.reopen(args["form"], args["record_id"], at=args["at"], actor=args["actor"])
        else:
            flows.withdraw(args["form"], args["record_id"], actor=args["actor"])
        return None, args["form"], args["record_id"]
    if op == "tick":
        fired = system.runtime.services["timers"].tick()
        return fired, args["form"], args["record_id"]
    task_id = int(args["task_id"])
    form, record_id = _task_record(system, task_id)
    node = _node_of(system, task_id)
    if node != args["node"]:
        raise ReplayDivergence(f"task {task_id} is at node '{node}', the log says '{args['node']}'")
    if op == "claim":
        flows.claim(task_id, args["user"])
    elif op == "complete":
        extra = {k: v for k, v in args.items() if k not in ("task_id", "node", "user")}
        flows.complete(task_id, args["user"], **extra)
    elif op == "reassign":
        flows.reassign(task_id, args["to"], by=args["by"])
    elif op == "escalate":
        with transaction(system.db) as conn:
            flows.escalate(conn, task_id, int(args["level"]), args["actor"])
    else:
        raise ReplayDivergence(f"unknown command '{op}' in the log")
    return None, form, record_id


def replay(system: Any, log: list[Mapping[str, Any]] | str) -> None:
    """Run a recorded log on `system` (a ManualClock, a fresh database); ReplayDivergence at
    the first command whose outcome differs from the recorded one."""
    entries = json.loads(log) if isinstance(log, str) else log
    clock = system.runtime.clock
    if not isinstance(clock, ManualClock):
        raise TypeError("replay needs a ManualClock")
    for i, entry in enumerate(entries, 1):
        clock.set(datetime.fromisoformat(entry["at"]))
        where = f"command {i} ({entry['op']} {_describe(entry['args'])})"
        try:
            with drawing(entry.get("numbers")):
                result, form, record_id = _apply(system, entry["op"], entry["args"])
        except ReplayDivergence as exc:
            raise ReplayDivergence(f"{where}: {exc}") from None
        except DocketError as exc:
            raise ReplayDivergence(f"{where} failed on replay: {exc}") from exc
        expect = dict(entry["expect"])
        if "record_id" in expect and expect.pop("record_id") != result:
            raise ReplayDivergence(f"{where} created record {result}, the log says {entry['expect']['record_id']}")
        got = observe(system, form, record_id)
        if got != expect:
            raise ReplayDivergence(f"{where} diverged: the log expects {expect}, the replay gave {got}")


def _describe(args: Mapping[str, Any]) -> str:
    keys = ("form", "task_id", "node", "user", "to", "level", "at")
    return ", ".join(f"{k}={args[k]}" for k in keys if args.get(k) is not None)
