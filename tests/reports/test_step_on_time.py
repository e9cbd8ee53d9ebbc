"""The operations dashboard's step measures read each task's own due time (its step's `due:`
in the postal flow: accepting is due two working hours after the complaint arrives): a step
completed after it is late, one completed by then on time, and one still open past it is
overdue, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from engine.clock import ManualClock
from engine.identity import Principal
from web.system import System, boot

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
MONDAY_9 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai: accepting is due at 11:00
DELAY = {"customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
         "occurred_at": "2026-02-27T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"}


def postal(tmp_path: Path, db_url: str | None = None) -> tuple[System, ManualClock]:
    clock = ManualClock(MONDAY_9)
    return boot(POSTAL, db_url=db_url or f"sqlite:///{tmp_path / 'docket.db'}", clock=clock), clock


def step_measures(system: System) -> dict[str, Any]:
    """Completed steps, the share of them done by their due time, and overdue open steps."""
    reports = system.runtime.services["reports"]
    board = reports.dashboard("operations")
    widget = replace(board.widgets["backlog"], measures=("done", "step_on_time_rate", "overdue"))
    (row,) = reports.run(board, widget, {}, Principal.system()).rows
    return dict(row)


def submit(system: System) -> int:
    return system.forms.submit("complaint", DELAY, actor="accounts").record_id


def accept(system: System, record_id: int) -> None:
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"})


def accept_after(system: System, clock: ManualClock, delay: timedelta) -> None:
    """A complaint arrives now; the agent accepts it `delay` later."""
    record_id = submit(system)
    clock.advance(delay)
    accept(system, record_id)


def test_a_step_completed_after_its_due_time_is_counted_late(tmp_path: Path) -> None:
    system, clock = postal(tmp_path)
    accept_after(system, clock, timedelta(hours=3))  # 12:00: an hour late
    assert step_measures(system) == {"done": 1, "step_on_time_rate": 0.0, "overdue": 0}


def test_a_step_completed_by_its_due_time_is_counted_on_time(tmp_path: Path) -> None:
    system, clock = postal(tmp_path)
    accept_after(system, clock, timedelta(hours=1, minutes=59))
    assert step_measures(system) == {"done": 1, "step_on_time_rate": 1.0, "overdue": 0}


def test_a_step_open_past_its_due_time_is_overdue_within_its_records_sla(tmp_path: Path) -> None:
    system, clock = postal(tmp_path)
    submit(system)
    clock.advance(timedelta(hours=3))  # the first response may take a working day; accepting, two hours
    assert step_measures(system) == {"done": 0, "step_on_time_rate": None, "overdue": 1}


@pytest.mark.postgres
def test_late_on_time_and_overdue_steps_are_counted_alike_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    system, clock = postal(tmp_path, postgres_url)
    try:
        late, in_time = submit(system), submit(system)
        submit(system)  # still waiting to be accepted at 12:00: overdue
        clock.advance(timedelta(hours=1))
        accept(system, in_time)
        clock.advance(timedelta(hours=2))  # 12:00: an hour past accepting's due time
        accept(system, late)
        assert step_measures(system) == {"done": 2, "step_on_time_rate": 0.5, "overdue": 1}
    finally:
        system.db.dispose()
