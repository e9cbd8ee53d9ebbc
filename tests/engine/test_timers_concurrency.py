"""Timers under several processes, crashes and a slow scheduler (RELIABILITY 23, 24, 26; issue 6:
two scheduler processes on one PostgreSQL database with 10,000 due timers)."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.clock import ManualClock
from engine.scheduler import JOB_DEFAULTS, Scheduler
from engine.storage.db import create_engine, read_transaction, transaction
from engine.storage.migrations import upgrade
from engine.storage.tables import timers as T
from engine.timers import Timer, TimerService
from tests.engine.timers_kit import (
    START, bulk_timers, crash_while_firing, fire_counts, fire_log, log_fire, make_runtime,
    scheduler_worker, test_metadata,
)

SPAWN = multiprocessing.get_context("spawn")


def _prepared(url: str) -> Engine:
    db = create_engine(url)
    upgrade(db)
    test_metadata.create_all(db)
    return db


def _run_workers(url: str, root: Path, processes: int, total: int) -> list[tuple[list[str], bool]]:
    barrier = SPAWN.Barrier(processes)
    results = SPAWN.Queue()
    workers = [SPAWN.Process(target=scheduler_worker, args=(url, str(root), barrier, results, total))
               for _ in range(processes)]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(30)
        assert w.exitcode == 0
    return outcomes


def _assert_each_fired_once(db: Engine, total: int) -> None:
    counts = fire_counts(db)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    with read_transaction(db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(fire_log)).scalar_one() == total
        assert conn.execute(sa.select(T.c.status, sa.func.count()).group_by(T.c.status)).all() == [("fired", total)]


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_four_processes_fire_1000_timers_due_in_one_second_exactly_once(
        database: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(f"{database}_url")
    db = _prepared(url)
    bulk_timers(db, 1000, START)
    outcomes = _run_workers(url, tmp_path, 4, 1000)
    _assert_each_fired_once(db, 1000)
    for errors, alive in outcomes:
        assert not [e for e in errors if "locked" in e], errors  # no "database is locked" at ERROR
        assert errors == []
        assert alive  # every scheduler thread still running its job
    db.dispose()


@pytest.mark.postgres
def test_two_scheduler_processes_fire_10000_timers_on_postgresql_exactly_once(
        postgres_url: str, tmp_path: Path) -> None:
    db = _prepared(postgres_url)
    bulk_timers(db, 10_000, START)
    outcomes = _run_workers(postgres_url, tmp_path, 2, 10_000)
    _assert_each_fired_once(db, 10_000)
    assert all(errors == [] and alive for errors, alive in outcomes)
    db.dispose()


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_worker_killed_before_commit_leaves_a_timer_that_fires_once_after_its_lease(
        database: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    url = request.getfixturevalue(f"{database}_url")
    db = _prepared(url)
    bulk_timers(db, 1, START)
    victim = SPAWN.Process(target=crash_while_firing, args=(url, str(tmp_path)))
    victim.start()
    victim.join(60)
    assert victim.exitcode == -9  # SIGKILL inside the firing transaction
    assert fire_counts(db) == {}  # its effect was never committed
    with read_transaction(db) as conn:
        assert conn.execute(sa.select(T.c.status)).scalar_one() == "claimed"
    clock = ManualClock(START + timedelta(seconds=1))
    survivor = TimerService(make_runtime(db, tmp_path / "survivor", clock=clock))
    survivor.on("test", log_fire)
    assert survivor.tick() == 0  # still within the dead worker's lease
    clock.advance(timedelta(minutes=5))
    assert survivor.tick() == 1 and survivor.tick() == 0
    assert list(fire_counts(db).values()) == [1]
    db.dispose()


def test_the_tick_job_never_misfires_overlaps_or_shares_a_store(sqlite_engine: Engine, tmp_path: Path) -> None:
    from apscheduler.jobstores.memory import MemoryJobStore

    upgrade(sqlite_engine)
    runtime = make_runtime(sqlite_engine, tmp_path / "b")
    TimerService(runtime)
    scheduler = Scheduler(runtime)
    assert isinstance(scheduler.scheduler._jobstores["default"], MemoryJobStore)
    assert JOB_DEFAULTS == {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
    scheduler.start()
    try:
        jobs = {job.id: job for job in scheduler.jobs()}
        assert set(jobs) == {"docket-timers", "docket-housekeeping"}  # no outbox service here
        for job in jobs.values():
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
    finally:
        scheduler.shutdown()


def test_a_tick_slower_than_its_interval_is_never_overlapped(sqlite_engine: Engine, tmp_path: Path) -> None:
    upgrade(sqlite_engine)
    test_metadata.create_all(sqlite_engine)
    runtime = make_runtime(sqlite_engine, tmp_path / "b", clock=ManualClock(START))
    timers = TimerService(runtime)
    running = 0
    most = 0
    guard = threading.Lock()
    entered = threading.Event()
    release = threading.Event()

    def slow(conn: Any, timer: Timer) -> None:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        entered.set()
        release.wait(10)  # this tick outlasts many 10 ms intervals
        log_fire(conn, timer)
        with guard:
            running -= 1

    timers.on("test", slow)
    bulk_timers(sqlite_engine, 3, START)
    skipped: list[str] = []
    handler = _Capture(skipped)
    logging.getLogger("apscheduler").addHandler(handler)
    scheduler = Scheduler(runtime, timer_interval=0.01)
    scheduler.start()
    try:
        assert entered.wait(10)
        # While the first tick is blocked, APScheduler keeps trying and is refused.
        deadline = threading.Event()
        while not any("maximum number of running instances" in m for m in skipped):
            assert not deadline.wait(0.02) and len(skipped) < 10_000
        release.set()
        while sum(fire_counts(sqlite_engine).values()) < 3:
            assert not deadline.wait(0.02)
    finally:
        release.set()
        scheduler.shutdown()
        logging.getLogger("apscheduler").removeHandler(handler)
    assert most == 1
    assert fire_counts(sqlite_engine) == {1: 1, 2: 1, 3: 1}


class _Capture(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@pytest.mark.postgres
def test_two_transactions_arming_the_same_timer_at_once_leave_one_timer(postgres_engine: Engine,
                                                                        tmp_path: Path) -> None:
    runtime = make_runtime(postgres_engine, tmp_path / "b")
    timers = TimerService(runtime)
    barrier = threading.Barrier(2)
    ids: list[int] = []

    def arm(minutes: int) -> None:
        with transaction(postgres_engine) as conn:
            barrier.wait(10)
            ids.append(timers.schedule(conn, kind="sla", subject="record:complaint:1", key="red",
                                       due_at=START + timedelta(minutes=minutes)))

    threads = [threading.Thread(target=arm, args=(m,)) for m in (10, 20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ids) == 2 and ids[0] == ids[1]
    with read_transaction(postgres_engine) as conn:
        assert len(timers.pending(conn, subject="record:complaint:1")) == 1


def test_a_cancel_racing_a_firing_timer_waits_and_then_finds_it_fired(db_engine: Engine, tmp_path: Path) -> None:
    """RELIABILITY 30's guarantee from below: a task closed while its SLA timer fires either sees
    the firing committed first (and cancels nothing) or cancels it before it fires; never both."""
    test_metadata.create_all(db_engine)
    runtime = make_runtime(db_engine, tmp_path / "b", clock=ManualClock(START))
    timers = TimerService(runtime)
    inside = threading.Event()
    go_on = threading.Event()

    def slow_escalation(conn: Any, timer: Timer) -> None:
        inside.set()
        go_on.wait(10)
        log_fire(conn, timer)

    timers.on("test", slow_escalation)
    bulk_timers(db_engine, 1, START)
    firing = threading.Thread(target=timers.tick)
    firing.start()
    assert inside.wait(10)
    cancelled: list[int] = []

    def close_task() -> None:
        with transaction(db_engine) as conn:
            cancelled.append(timers.cancel(conn, kind="test", subject="task:0"))

    closing = threading.Thread(target=close_task)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # blocked behind the firing transaction
    go_on.set()
    firing.join(10)
    closing.join(10)
    assert cancelled == [0]
    assert list(fire_counts(db_engine).values()) == [1]
