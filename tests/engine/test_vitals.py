"""The vitals an operator watches are read from the engines' tables: late timers (no worker),
dead messages, open incidents, open and overdue tasks, breached SLA clocks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from engine.clock import ManualClock
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import incidents, outbox
from engine.vitals import Vitals, read_vitals
from tests.flows.test_postal_flow import DELAY as COMPLAINT
from tests.web.auth_kit import POSTAL, new_clock
from web.system import System, boot



@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def vitals(system: System) -> Vitals:
    with read_transaction(system.db) as conn:
        return read_vitals(conn, system.runtime.clock.now())


def test_a_fresh_installation_has_nothing_late_or_waiting(system: System) -> None:
    now = vitals(system)
    assert (now.timers_late, now.incidents_open, now.tasks_open, now.outbox_oldest_pending) == (0, 0, 0, None)
    assert not now.worker_stalled


def test_a_new_complaint_is_one_open_task_and_its_acknowledgement_waits_to_be_sent(system: System,
                                                                                  clock: ManualClock) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    clock.advance(timedelta(seconds=30))
    now = vitals(system)
    assert now.tasks_open == 1 and now.tasks_overdue == 0
    assert now.outbox["pending"] >= 1 and now.outbox_oldest_pending == timedelta(seconds=30)


def test_timers_a_minute_past_due_that_nobody_fired_mean_the_worker_is_stalled(system: System,
                                                                               clock: ManualClock) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    clock.advance(timedelta(days=3))  # the SLA timers came due; no scheduler ticked
    now = vitals(system)
    assert now.worker_stalled and now.timers_late >= 1
    assert now.timers_latest_lateness is not None and now.timers_latest_lateness > timedelta(hours=1)
    assert now.tasks_overdue == 1


def test_timers_fired_on_time_leave_the_worker_healthy(system: System, clock: ManualClock) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    clock.advance(timedelta(days=3))
    while system.runtime.services["timers"].tick():
        pass
    now = vitals(system)
    assert not now.worker_stalled
    assert now.sla_breached_open >= 1  # the first-response target passed while nobody accepted it


def test_dead_messages_and_open_incidents_are_counted(system: System) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    with transaction(system.db) as conn:
        conn.execute(update(outbox).values(status="dead"))
        conn.execute(insert(incidents).values(kind="flow", ref="instance:1", message="stopped",
                                              created_at=system.runtime.clock.now()))
    now = vitals(system)
    assert now.outbox["dead"] >= 1 and now.outbox["pending"] == 0 and now.incidents_open == 1
