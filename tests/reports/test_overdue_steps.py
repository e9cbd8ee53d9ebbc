"""Overdue steps on the operations dashboard agree with the inbox: a task is overdue when it
is open past its own due time or past its record's running SLA deadline."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.identity import Principal
from web.system import System, boot

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
MONDAY_9 = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)  # 09:00 in Shanghai
DELAY = {"customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
         "occurred_at": "2026-02-27T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"}


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(MONDAY_9))


def open_and_overdue(system: System) -> tuple[int, int]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("operations")
    (row,) = reports.run(board, board.widgets["backlog"], {}, Principal.system()).rows
    return row["backlog"], row["overdue"]


def test_a_step_within_its_records_sla_is_not_overdue(system: System) -> None:
    system.forms.submit("complaint", DELAY, actor="accounts")
    assert open_and_overdue(system) == (1, 0)


def test_a_step_past_its_records_sla_deadline_is_overdue(system: System) -> None:
    system.forms.submit("complaint", DELAY, actor="accounts")
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(days=3))  # a normal complaint's first response is due in one working day
    assert open_and_overdue(system) == (1, 1)


def test_a_step_of_a_record_whose_clock_stopped_in_time_is_not_overdue(system: System) -> None:
    record_id = system.forms.submit("complaint", DELAY, actor="accounts").record_id
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"})  # responded: response met
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(hours=2))
    assert open_and_overdue(system) == (2, 0)
