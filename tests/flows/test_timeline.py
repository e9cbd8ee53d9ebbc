"""A record's timeline: steps with who and what, dwell time in wall and working time, where it is."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from flows.history import record_timeline
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
    "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误",
}
FRIDAY_5PM_SHANGHAI = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(FRIDAY_5PM_SHANGHAI)


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def timeline(system: System, record_id: int):  # type: ignore[no-untyped-def]
    with read_transaction(system.db) as conn:
        return record_timeline(conn, "complaint", record_id, now=system.runtime.clock.now(),
                               calendar=system.bundle.meta.calendar)


def test_a_new_record_waits_at_accept_for_the_agents(system: System) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT).record_id
    line = timeline(system, record_id)
    assert line.current == ("accept",) and line.candidates == ("agent",) and line.assignees == ()
    assert [s.node for s in line.steps] == ["received", "accept"] and line.steps[-1].open


def test_dwell_time_over_a_weekend_counts_only_working_hours(system: System, clock: ManualClock) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT).record_id
    clock.advance(timedelta(days=2, hours=17))  # Monday 10:00 in Shanghai
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"}, comment="已联系客户")
    accept = next(s for s in timeline(system, record_id).steps if s.node == "accept")
    assert accept.wall == timedelta(days=2, hours=17)
    assert accept.work == timedelta(hours=2)  # Friday 17:00-18:00 and Monday 09:00-10:00
    assert (accept.completed_by, accept.comment) == ("agent", "已联系客户")
    assert accept.changes == {}  # urgency was already "normal" (its default)


def test_the_age_of_an_open_record_keeps_growing_in_working_time(system: System, clock: ManualClock) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT).record_id
    clock.advance(timedelta(days=3))  # Monday 17:00
    line = timeline(system, record_id)
    assert line.age_wall == timedelta(days=3)
    assert line.age_work == timedelta(hours=1) + timedelta(hours=6, minutes=30)  # Fri 17-18, Mon 9-12, 13:30-17


def test_a_finished_record_has_no_current_node_and_closed_steps(system: System, clock: ManualClock) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT).record_id
    steps = [("accept", "agent", {"urgency": "normal"}), ("marketing_review", "marketing", {}),
             ("operations_review", "operations", {}), ("propose", "agent", {"compensation": "0"}),
             ("reply", "agent", {"resolution": "已补发"}),
             ("confirm", "agent", {"customer_confirmed": True, "satisfaction": 5})]
    for node, user, values in steps:
        clock.advance(timedelta(hours=1))
        (task,) = [t for t in system.flows.open_tasks("complaint", record_id) if t["node"] == node]
        system.flows.complete(task["id"], user, values=values)
    line = timeline(system, record_id)
    assert line.current == () and all(not s.open for s in line.steps)
    dwell = line.dwell()
    assert dwell["reply"][0] == timedelta(hours=1)
    assert dwell["operations_review"][0] == timedelta(hours=2)  # opened with marketing's, done an hour later


def test_a_join_is_one_stay_from_the_first_branch_to_arrive_until_it_goes_on(system: System, clock: ManualClock) -> None:
    record_id = system.forms.submit("complaint", COMPLAINT).record_id
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"})
    for node, user in (("marketing_review", "marketing"), ("operations_review", "operations")):
        clock.advance(timedelta(hours=1))
        (task,) = [t for t in system.flows.open_tasks("complaint", record_id) if t["node"] == node]
        system.flows.complete(task["id"], user, values={})
    joins = [s for s in timeline(system, record_id).steps if s.node == "assessed"]
    assert len(joins) == 1
    # The fees question answers 'no' at once; the join waits two hours, until operations is done.
    assert joins[0].wall == timedelta(hours=2) and not joins[0].open
