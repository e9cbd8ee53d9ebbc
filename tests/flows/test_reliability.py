"""RELIABILITY 28, 29 and 31: concurrent completion, five countersigning departments at once,
and a failure after the state change but before commit leaving nothing half-written."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from sqlalchemy import func, select

from engine.errors import ConflictError
from engine.storage.db import read_transaction
from engine.storage.tables import flow_instances, history, outbox, tasks, timers
from flows.runtime import FlowService
from tests.flows.kit import FORM, NOW, history_of, instance, make, open_tasks, submit, task_at

DEPARTMENTS = ["d1", "d2", "d3", "d4", "d5"]
FIVE = """\
    bundle: five
    version: "1"
    label: Five departments
    roles:
      agent: {label: Agent}
    departments:
""" + "".join(f"      {d}: {{label: {d}}}\n" for d in DEPARTMENTS) + """\
    demo_users:
      - {username: ann, roles: [agent]}
""" + "".join(f"      - {{username: u{d}, roles: [agent], department: {d}}}\n" for d in DEPARTMENTS)

COUNTERSIGN = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: sign
      sign:
        type: countersign
        assign: {departments: [d1, d2, d3, d4, d5]}
        complete_when: all
        next: after
      after:
        type: task
        assign: {user: ann}
        next: pause
      pause:
        type: wait
        for: 1h
        next: close
      close:
        type: task
        assign: {user: ann}
        next: done
      done:
        type: end
    """


def run_at_once(calls: list[Callable[[], None]]) -> list[BaseException]:
    """Run the calls in threads released together; the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], None]) -> None:
        try:
            barrier.wait()
            call()
        except BaseException as exc:  # noqa: BLE001 - collected for the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def five(tmp_path: Path, db_url: str | None = None):  # type: ignore[no-untyped-def]
    return make(tmp_path, COUNTERSIGN, {"bundle.yaml": FIVE, "forms/ticket.yaml": FORM}, db_url=db_url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The concurrency tests run on SQLite and on PostgreSQL (row locks, not a file lock)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'docket.db'}"
    return str(request.getfixturevalue("postgres_url"))


# -- 28 ----------------------------------------------------------------------------------------
def test_two_users_completing_one_task_at_once_give_one_winner_and_a_clear_conflict(tmp_path: Path,
                                                                                    db_url: str) -> None:
    system = five(tmp_path, db_url)
    record_id = submit(system)
    task = open_tasks(system, record_id)[0]
    errors = run_at_once([lambda: system.flows.complete(task["id"], "ud1", outcome="approve"),
                          lambda: system.flows.complete(task["id"], "ann", outcome="reject")])
    assert len(errors) == 1 and isinstance(errors[0], ConflictError)
    assert str(errors[0]) in (f"task {task['id']} is already completed",
                              f"task {task['id']} was changed by someone else; reload and try again")
    completions = [h for h in history_of(system, record_id, "task.completed") if h["data"]["task_id"] == task["id"]]
    assert len(completions) == 1


# -- 29 ----------------------------------------------------------------------------------------
def test_five_departments_countersigning_at_once_decide_once_and_lose_no_vote(tmp_path: Path,
                                                                              db_url: str) -> None:
    system = five(tmp_path, db_url)
    record_id = submit(system)
    open_ = open_tasks(system, record_id)
    assert [t["candidate_department"] for t in open_] == DEPARTMENTS
    errors = run_at_once([
        (lambda t=t, d=d: system.flows.complete(t["id"], f"u{d}", outcome="approve"))
        for t, d in zip(open_, DEPARTMENTS)])
    assert errors == []
    state = instance(system, record_id)
    assert state["variables"]["sign"] == {"approved": 5, "rejected": 0, "total": 5, "needed": 5,
                                          "outcome": "approved"}
    assert state["current"] == ["after"]
    assert len(history_of(system, record_id, "countersign.decided")) == 1
    assert [t["node"] for t in open_tasks(system, record_id)] == ["after"]


# -- 31 ----------------------------------------------------------------------------------------
def counts(system) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with read_transaction(system.db) as conn:
        return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in (("instances", flow_instances), ("tasks", tasks), ("history", history),
                                    ("timers", timers), ("outbox", outbox))} | {
            "records": system.forms.count("ticket")}


def snapshot(system) -> Any:  # type: ignore[no-untyped-def]
    with read_transaction(system.db) as conn:
        return ([dict(r) for r in conn.execute(select(flow_instances).order_by(flow_instances.c.id)).mappings()],
                [dict(r) for r in conn.execute(select(tasks).order_by(tasks.c.id)).mappings()],
                [dict(r) for r in conn.execute(select(timers).order_by(timers.c.id)).mappings()])


class Injected(RuntimeError):
    """The failure a test injects."""


@pytest.fixture
def failing_save(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Arm a failure in the instance write, the last thing before commit, after every other
    write of the command (record, tasks, history, timers, outbox, events) has happened."""
    def arm() -> None:
        def broken(self: FlowService, conn: Any, state: Any) -> None:
            raise Injected("injected failure just before commit")
        monkeypatch.setattr(FlowService, "_save", broken)
    return arm


def queue_a_message_on_every_task(system) -> None:  # type: ignore[no-untyped-def]
    out = system.runtime.services["outbox"]
    system.runtime.bus.subscribe("task.created", lambda event, conn: out.enqueue(
        conn, channel="log", to="ann", subject="new task", body=str(event.data["task_id"])))


def test_a_failure_before_commit_in_submit_writes_nothing(tmp_path: Path, failing_save: Callable[[], None]) -> None:
    system = five(tmp_path)
    queue_a_message_on_every_task(system)
    before = counts(system)
    failing_save()
    with pytest.raises(Injected):
        submit(system)
    assert counts(system) == before


def test_a_failure_before_commit_in_complete_writes_nothing(tmp_path: Path, failing_save: Callable[[], None]) -> None:
    system = five(tmp_path)
    queue_a_message_on_every_task(system)
    record_id = submit(system)
    for task, dep in zip(open_tasks(system, record_id)[:4], DEPARTMENTS):
        system.flows.complete(task["id"], f"u{dep}", outcome="approve")
    last = open_tasks(system, record_id)[0]
    before, state = counts(system), snapshot(system)
    failing_save()  # the last vote would decide the countersign, open `after` and queue a message
    with pytest.raises(Injected):
        system.flows.complete(last["id"], "ud5", outcome="approve")
    assert counts(system) == before and snapshot(system) == state


def test_a_failure_before_commit_in_a_fired_timer_writes_nothing(tmp_path: Path,
                                                                 failing_save: Callable[[], None]) -> None:
    system = five(tmp_path)
    queue_a_message_on_every_task(system)
    record_id = submit(system)
    for task, dep in zip(open_tasks(system, record_id), DEPARTMENTS):
        system.flows.complete(task["id"], f"u{dep}", outcome="approve")
    system.flows.complete(task_at(system, record_id, "after")["id"], "ann")
    assert instance(system, record_id)["current"] == ["pause"]
    before = counts(system)
    instances_before, tasks_before, _ = snapshot(system)
    failing_save()
    service = system.runtime.services["timers"]
    assert service.tick(now=NOW + timedelta(hours=2)) == 0  # the handler failed: rolled back
    # Only the timer's own attempt count is recorded (apart from the firing, so it can retry).
    assert counts(system) == before
    assert snapshot(system)[:2] == (instances_before, tasks_before)
    with read_transaction(system.db) as conn:
        (timer,) = service.pending(conn)
    assert timer.attempts == 1  # kept for a retry, not lost
