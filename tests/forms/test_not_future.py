"""`not_future` date and time fields refuse what is later than now by the runtime's clock (a
scenario's or simulation's), not the machine's: a test dated in the past, or a simulation run
ahead of today, sees the same answers as a live server on that day."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock, check_instant, checking_at
from engine.errors import ValidationFailed
from tests.web.api_kit import COMPLAINT, POSTAL, START
from web.system import System, boot


def boot_at(tmp_path: Path, now: datetime) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(now))


def test_a_time_after_the_runtimes_now_is_refused_though_the_machines_day_is_later(tmp_path: Path) -> None:
    system = boot_at(tmp_path, START)  # 2026-11-23 10:00 in Shanghai
    with pytest.raises(ValidationFailed) as refused:
        system.forms.submit("complaint", {**COMPLAINT, "occurred_at": "2026-11-23T11:00:00+08:00"})
    assert refused.value.errors == {"occurred_at": ["The date cannot be in the future."]}


def test_a_time_before_the_runtimes_now_is_taken_though_the_machines_day_is_earlier(tmp_path: Path) -> None:
    system = boot_at(tmp_path, datetime(2031, 3, 1, tzinfo=timezone.utc))
    done = system.forms.submit("complaint", {**COMPLAINT, "occurred_at": "2031-02-28T09:00:00+08:00"})
    assert done.record_id


def test_a_step_filling_the_field_checks_it_against_the_runtimes_now(tmp_path: Path) -> None:
    system = boot_at(tmp_path, START)
    form = system.forms.form("complaint")
    existing = {**COMPLAINT}
    with pytest.raises(ValidationFailed):
        form.validate({"occurred_at": "2026-11-23T11:00:00+08:00"}, existing=existing,
                      editable={"occurred_at"}, ctx=system.forms.eval_context())
    clean = form.validate({"occurred_at": "2026-11-23T09:00:00+08:00"}, existing=existing,
                          editable={"occurred_at"}, ctx=system.forms.eval_context())
    assert clean["occurred_at"] == START - timedelta(hours=1)


def test_outside_any_check_the_instant_is_the_machines() -> None:
    assert abs(check_instant() - datetime.now(timezone.utc)) < timedelta(minutes=1)
    with checking_at(START):
        assert check_instant() == START
    assert check_instant() != START
