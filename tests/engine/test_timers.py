"""Durable timers (engine/timers.py): scheduling, firing, retries and incidents, on SQLite and
PostgreSQL, with a ManualClock (RELIABILITY 25, 27)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.backoff import RetryPolicy
from engine.clock import ManualClock
from engine.runtime import Runtime
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import timers as T
from engine.timers import Timer, TimerError, TimerService, next_occurrence
from tests.engine.timers_kit import START, fire_counts, fire_log, log_fire, make_runtime, test_metadata

MINUTE = timedelta(minutes=1)


@pytest.fixture
def runtime(db_engine: Engine, tmp_path: Path) -> Runtime:
    test_metadata.create_all(db_engine)
    return make_runtime(db_engine, tmp_path / "bundle")


@pytest.fixture
def clock(runtime: Runtime) -> ManualClock:
    assert isinstance(runtime.clock, ManualClock)
    return runtime.clock


@pytest.fixture
def timers(runtime: Runtime) -> TimerService:
    service = TimerService(runtime, policy=RetryPolicy(max_attempts=3, base_delay=MINUTE))
    service.on("test", log_fire)
    return service


def schedule(runtime: Runtime, timers: TimerService, **kwargs: Any) -> int:
    kwargs.setdefault("kind", "test")
    kwargs.setdefault("subject", "task:1")
    kwargs.setdefault("due_at", START + 5 * MINUTE)
    with transaction(runtime.db) as conn:
        return timers.schedule(conn, **kwargs)


def statuses(runtime: Runtime) -> dict[int, str]:
    with read_transaction(runtime.db) as conn:
        return dict(conn.execute(sa.select(T.c.id, T.c.status)).all())


# -- scheduling -------------------------------------------------------------------------------------

def test_the_service_is_registered_for_every_engine(runtime: Runtime, timers: TimerService) -> None:
    assert runtime.services["timers"] is timers


def test_a_timer_fires_when_due_and_not_before(runtime: Runtime, timers: TimerService,
                                               clock: ManualClock) -> None:
    timer_id = schedule(runtime, timers)
    clock.advance(4 * MINUTE)
    assert timers.tick() == 0
    clock.advance(MINUTE)
    assert timers.tick() == 1
    assert timers.tick() == 0
    assert fire_counts(runtime.db) == {timer_id: 1}
    assert statuses(runtime) == {timer_id: "fired"}


def test_advance_fires_each_timer_at_its_own_due_time(runtime: Runtime, timers: TimerService,
                                                      clock: ManualClock) -> None:
    seen: list[tuple[str, object]] = []
    timers.on("probe", lambda conn, timer: seen.append((timer.key, clock.now())))
    for minutes in (30, 10, 20):
        schedule(runtime, timers, kind="probe", key=f"at-{minutes}", due_at=START + minutes * MINUTE)
    schedule(runtime, timers, kind="probe", key="later", due_at=START + 90 * MINUTE)
    assert timers.advance(clock, START + timedelta(hours=1)) == 3
    assert seen == [("at-10", START + 10 * MINUTE), ("at-20", START + 20 * MINUTE),
                    ("at-30", START + 30 * MINUTE)]
    assert clock.now() == START + timedelta(hours=1)


def test_the_handler_sees_kind_subject_key_and_payload(runtime: Runtime, timers: TimerService) -> None:
    seen: list[Timer] = []
    timers.on("probe", lambda conn, timer: seen.append(timer))
    schedule(runtime, timers, kind="probe", subject="instance:7", key="wait-1", payload={"node": "wait"})
    timers.tick(now=START + timedelta(hours=1))
    [timer] = seen
    assert (timer.kind, timer.subject, timer.key, timer.payload) == ("probe", "instance:7", "wait-1", {"node": "wait"})
    assert timer.due_at == START + 5 * MINUTE and timer.attempts == 0


def test_scheduling_the_same_kind_subject_and_key_re_arms_the_timer(runtime: Runtime, timers: TimerService) -> None:
    first = schedule(runtime, timers, key="red", payload={"v": 1})
    second = schedule(runtime, timers, key="red", due_at=START + 30 * MINUTE, payload={"v": 2})
    other_key = schedule(runtime, timers, key="yellow")
    assert first == second != other_key
    with read_transaction(runtime.db) as conn:
        [yellow, red] = timers.pending(conn, subject="task:1")
    assert (yellow.key, red.key) == ("yellow", "red")  # soonest first
    assert red.due_at == START + 30 * MINUTE and red.payload == {"v": 2}


def test_a_fired_timer_can_be_scheduled_again(runtime: Runtime, timers: TimerService) -> None:
    first = schedule(runtime, timers)
    timers.tick(now=START + timedelta(hours=1))
    second = schedule(runtime, timers, due_at=START + timedelta(hours=2))
    assert second != first
    assert statuses(runtime) == {first: "fired", second: "pending"}


def test_cancel_removes_open_timers_of_a_subject(runtime: Runtime, timers: TimerService) -> None:
    schedule(runtime, timers, key="yellow")
    schedule(runtime, timers, key="red")
    keep = schedule(runtime, timers, subject="task:2")
    with transaction(runtime.db) as conn:
        assert timers.cancel(conn, kind="test", subject="task:1", key="red") == 1
        assert [t.key for t in timers.pending(conn, subject="task:1")] == ["yellow"]
        assert timers.cancel(conn, kind="test", subject="task:1") == 1
    assert timers.tick(now=START + timedelta(hours=1)) == 1
    assert fire_counts(runtime.db) == {keep: 1}


def test_a_rolled_back_schedule_leaves_no_timer(runtime: Runtime, timers: TimerService) -> None:
    with pytest.raises(RuntimeError):
        with transaction(runtime.db) as conn:
            timers.schedule(conn, kind="test", subject="task:1", due_at=START)
            raise RuntimeError("the command failed after arming its timer")
    assert statuses(runtime) == {}


@pytest.mark.parametrize("bad, message", [
    ({"kind": ""}, "kind must not be empty"),
    ({"subject": "x" * 300}, "subject is 300 characters long"),
    ({"due_at": START.replace(tzinfo=None)}, "must be timezone-aware"),
    ({"payload": {"when": START}}, "not JSON data"),
])
def test_bad_timers_are_refused_with_a_clear_error(runtime: Runtime, timers: TimerService,
                                                   bad: dict[str, Any], message: str) -> None:
    with pytest.raises(TimerError, match=message):
        schedule(runtime, timers, **bad)


def test_due_times_are_stored_in_utc(runtime: Runtime, timers: TimerService) -> None:
    from zoneinfo import ZoneInfo

    local = (START + timedelta(hours=3)).astimezone(ZoneInfo("Asia/Shanghai"))
    schedule(runtime, timers, due_at=local)
    with read_transaction(runtime.db) as conn:
        [timer] = timers.pending(conn)
    assert timer.due_at == START + timedelta(hours=3) and timer.due_at.utcoffset() == timedelta(0)


# -- failures, retries, incidents (RELIABILITY 27) -------------------------------------------------

class Flaky:
    """A handler that writes an effect and then fails while `broken` is set."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def __call__(self, conn: Any, timer: Timer) -> None:
        self.calls += 1
        log_fire(conn, timer)
        if self.broken:
            raise ConnectionError("the ERP is down")


def test_a_failing_timer_is_retried_with_backoff_then_becomes_an_incident(
        runtime: Runtime, timers: TimerService, clock: ManualClock) -> None:
    flaky = Flaky()
    timers.on("flaky", flaky)
    bad = schedule(runtime, timers, kind="flaky", due_at=START)
    assert timers.tick() == 0 and flaky.calls == 1
    clock.advance(MINUTE - timedelta(seconds=1))  # backoff: 1 min after the first failure
    assert timers.tick() == 0 and flaky.calls == 1
    clock.advance(timedelta(seconds=1))
    timers.tick()
    assert flaky.calls == 2
    clock.advance(2 * MINUTE)  # then 2 min
    timers.tick()
    assert flaky.calls == 3
    clock.advance(timedelta(days=1))
    timers.tick()
    assert flaky.calls == 3  # 3 attempts used up: parked, not retried
    [incident] = timers.incidents()
    assert (incident.id, incident.status, incident.attempts) == (bad, "incident", 3)
    assert incident.last_error == "ConnectionError: the ERP is down"
    assert fire_counts(runtime.db) == {}  # each failed attempt's effects rolled back


def test_other_timers_keep_firing_while_one_fails(runtime: Runtime, timers: TimerService) -> None:
    timers.on("flaky", Flaky())
    schedule(runtime, timers, kind="flaky", due_at=START)
    good = [schedule(runtime, timers, subject=f"task:{i}", due_at=START) for i in range(3)]
    assert timers.tick(now=START) == 3
    assert fire_counts(runtime.db) == {i: 1 for i in good}


def test_retrying_an_incident_after_the_fix_fires_it_once(runtime: Runtime, timers: TimerService,
                                                          clock: ManualClock) -> None:
    flaky = Flaky()
    timers.on("flaky", flaky)
    bad = schedule(runtime, timers, kind="flaky", due_at=START)
    for _ in range(3):
        timers.tick()
        clock.advance(timedelta(hours=1))
    assert [t.id for t in timers.incidents()] == [bad]
    flaky.broken = False
    assert timers.retry(bad) is True
    assert timers.retry(bad) is False  # already back in the queue
    assert timers.tick() == 1 and timers.tick() == 0
    assert fire_counts(runtime.db) == {bad: 1}
    assert timers.incidents() == []


def test_a_timer_without_a_handler_becomes_an_incident_naming_its_kind(
        runtime: Runtime, timers: TimerService, clock: ManualClock) -> None:
    schedule(runtime, timers, kind="nobody", due_at=START)
    for _ in range(3):
        timers.tick()
        clock.advance(timedelta(hours=1))
    [incident] = timers.incidents()
    assert "no handler is registered for timer kind 'nobody'" in (incident.last_error or "")


def test_a_handler_per_kind_may_have_its_own_retry_policy(runtime: Runtime, timers: TimerService) -> None:
    timers.on("once", Flaky(), policy=RetryPolicy(max_attempts=1))
    schedule(runtime, timers, kind="once", due_at=START)
    timers.tick(now=START)
    assert [t.status for t in timers.incidents()] == ["incident"]


def test_a_kind_has_one_handler(timers: TimerService) -> None:
    with pytest.raises(TimerError, match="already registered"):
        timers.on("test", log_fire)


# -- leases and downtime (RELIABILITY 23, 25) -------------------------------------------------------

def test_a_claim_abandoned_before_commit_fires_once_after_its_lease(runtime: Runtime, timers: TimerService,
                                                                   clock: ManualClock) -> None:
    timer_id = schedule(runtime, timers, due_at=START)
    crashed = TimerService(runtime, worker="crashed", lease=timedelta(minutes=5))
    assert [t.id for t in crashed._claim(START, 10)] == [timer_id]  # claimed, then the process dies
    assert timers.tick() == 0  # the lease still protects the claim
    clock.advance(timedelta(minutes=5))
    assert timers.tick() == 1 and timers.tick() == 0
    assert fire_counts(runtime.db) == {timer_id: 1}


def test_a_worker_whose_lease_expired_does_not_fire_a_timer_taken_over(runtime: Runtime, timers: TimerService,
                                                                        clock: ManualClock) -> None:
    timer_id = schedule(runtime, timers, due_at=START)
    slow = TimerService(runtime, worker="slow", lease=timedelta(minutes=5))
    slow.on("test", log_fire)
    [claimed] = slow._claim(START, 10)
    clock.advance(timedelta(minutes=6))
    assert timers.tick() == 1  # lease expired: another worker takes over and fires
    assert slow._fire(claimed, clock.now()) is False  # the slow one's guarded update finds it gone
    assert fire_counts(runtime.db) == {timer_id: 1}


def test_timers_overdue_after_downtime_fire_once_on_restart(runtime: Runtime, timers: TimerService,
                                                            clock: ManualClock) -> None:
    ids = [schedule(runtime, timers, subject=f"task:{i}", due_at=START + i * MINUTE) for i in range(5)]
    clock.advance(timedelta(hours=6))  # every process was stopped; nothing ticked
    restarted = TimerService(runtime)
    restarted.on("test", log_fire)
    assert restarted.tick() == 5 and restarted.tick() == 0
    assert fire_counts(runtime.db) == {i: 1 for i in ids}


def test_a_recurring_timer_coalesces_occurrences_missed_during_downtime(
        runtime: Runtime, timers: TimerService, clock: ManualClock) -> None:
    """Policy: an escalation every 2 h re-arms at the next occurrence after now, so 6 h of
    downtime give one catch-up firing, not three back to back."""
    every = timedelta(hours=2)
    fired_at: list[Any] = []

    def escalate(conn: Any, timer: Timer) -> None:
        fired_at.append(clock.now())
        first = START + every
        timers.schedule(conn, kind="escalate", subject=timer.subject,
                        due_at=next_occurrence(first, every, clock.now()))

    timers.on("escalate", escalate)
    schedule(runtime, timers, kind="escalate", due_at=START + every)
    clock.advance(timedelta(hours=6, minutes=30))  # down across the 2 h, 4 h and 6 h occurrences
    assert timers.tick() == 1 and timers.tick() == 0
    with read_transaction(runtime.db) as conn:
        [armed] = timers.pending(conn, kind="escalate")
    assert armed.due_at == START + timedelta(hours=8)
    clock.set(START + timedelta(hours=8))
    assert timers.tick() == 1
    assert fired_at == [START + timedelta(hours=6, minutes=30), START + timedelta(hours=8)]


def test_next_occurrence_is_on_the_grid_and_strictly_after() -> None:
    every = timedelta(hours=2)
    assert next_occurrence(START, every, START) == START + every
    assert next_occurrence(START, every, START + timedelta(hours=5)) == START + timedelta(hours=6)
    assert next_occurrence(START, every, START - timedelta(days=1)) == START + every
    with pytest.raises(ValueError):
        next_occurrence(START, timedelta(0), START)


# -- a tick's work is proportional to what is due --------------------------------------------------

def test_a_tick_claims_at_most_its_limit(runtime: Runtime, timers: TimerService) -> None:
    from tests.engine.timers_kit import bulk_timers

    bulk_timers(runtime.db, 30, START)
    assert timers.tick_batch(now=START, limit=10) == (10, 10)
    assert timers.tick(now=START, limit=100) == 20


def test_the_claim_queries_use_the_status_indexes(sqlite_engine: Engine) -> None:
    from engine.storage.migrations import upgrade

    upgrade(sqlite_engine)
    with read_transaction(sqlite_engine) as conn:
        plans = [" ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
                 for sql in (
                     "SELECT id FROM dk_timers WHERE status = 'pending' AND due_at <= '2026-01-01' "
                     "ORDER BY due_at LIMIT 500",
                     "SELECT id FROM dk_timers WHERE status IN ('claimed', 'failed') AND "
                     "lease_until <= '2026-01-01' ORDER BY lease_until LIMIT 500")]
    assert "ix_dk_timers_status_due_at" in plans[0]
    assert "ix_dk_timers_status_lease_until" in plans[1]
    assert "TEMP B-TREE" not in plans[0]  # ordered by the index itself: no sort of open timers


def test_purge_removes_old_fired_timers_only(runtime: Runtime, timers: TimerService, clock: ManualClock) -> None:
    old = schedule(runtime, timers, due_at=START)
    timers.tick()
    clock.advance(timedelta(days=31))
    pending = schedule(runtime, timers, subject="task:2", due_at=clock.now() + MINUTE)
    assert timers.purge_fired(older_than=timedelta(days=30)) == 1
    assert statuses(runtime) == {pending: "pending"}
    assert old not in statuses(runtime)
    with read_transaction(runtime.db) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(fire_log)).scalar_one() == 1


def test_hourly_housekeeping_purges_old_fired_timers_and_sent_messages(
        runtime: Runtime, timers: TimerService, clock: ManualClock) -> None:
    from engine.outbox import Outbox
    from engine.scheduler import Scheduler

    outbox = Outbox(runtime, parallel=1)
    schedule(runtime, timers, due_at=START)
    with transaction(runtime.db) as conn:
        outbox.enqueue(conn, channel="log", to="a@example.com", subject="s", body="b")
    timers.tick()
    outbox.deliver()
    scheduler = Scheduler(runtime)
    assert scheduler.housekeeping() == 0  # fresh: kept
    clock.advance(timedelta(days=31))
    assert scheduler.housekeeping() == 2
