"""The inbox shows when each task's step is due (its `due:`), beside the record's SLA chip,
and marks a task past that time overdue in red, in both languages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import ManualClock
from tests.web.staff_kit import FILES, START, client_for, submit, write_bundle
from web.system import System, boot

TRIAGE_DUE = FILES["flows/ticket_flow.yaml"].replace(
    "            status: triaged\n", "            status: triaged\n            due: 2 workhours\n")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)  # Monday 10:00 in Shanghai: triage is due at 12:00


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    root = write_bundle(tmp_path / "bundle", {"flows/ticket_flow.yaml": TRIAGE_DUE})
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def step_due(html: str) -> list[str]:
    """The text of each row's step due time, tags stripped."""
    return [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r'<small class="step-due[^"]*">(.*?)</small>', html)]


def test_a_task_shows_when_its_step_is_due(system: System) -> None:
    submit(system)
    assert step_due(client_for(system, "ann").get("/inbox?lang=en").text) == ["Step due 2026-11-23 12:00"]
    assert step_due(client_for(system, "ann").get("/inbox?lang=zh-CN").text) == ["本环节截止 2026-11-23 12:00"]


def test_a_task_past_its_steps_due_time_is_marked_overdue_in_red(system: System, clock: ManualClock) -> None:
    submit(system)
    clock.advance(timedelta(hours=3))
    html = client_for(system, "ann").get("/inbox?lang=en").text
    assert '<span class="step-overdue sla sla-red">Step overdue</span>' in html
    assert step_due(html) == ["Step overdue · due 2026-11-23 12:00"]
    assert "本环节已超时" in client_for(system, "ann").get("/inbox?lang=zh-CN").text


def test_a_task_whose_step_has_no_due_time_shows_none(tmp_path: Path, clock: ManualClock) -> None:
    system = boot(write_bundle(tmp_path / "bundle"), db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    submit(system)
    assert step_due(client_for(system, "ann").get("/inbox?lang=en").text) == []
