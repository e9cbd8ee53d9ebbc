"""Lifecycle facts are kept with as few statements as they need: a task completion after the
first response reads the facts row and writes nothing; a new record's row is written once."""

from __future__ import annotations

from typing import Any

import pytest

from engine.events import Event
from engine.storage.db import transaction
from tests.reports.report_kit import build, facts
from tests.rules.kit import statements
from web.system import System


@pytest.fixture
def kit(tmp_path: Any) -> System:
    system, _ = build(tmp_path)
    return system


def _completed(system: System, record_id: int) -> None:
    with transaction(system.db) as conn:
        system.runtime.bus.publish(Event("task.completed", system.runtime.clock.now(), "ticket", record_id,
                                         "sam", {"task_id": 0, "node": "handle", "outcome": None}), conn)


def _of_facts(seen: list[str]) -> list[str]:
    """The statements on the facts table itself (cell refreshes join it too)."""
    own = ("SELECT dk_report_facts.", "UPDATE dk_report_facts ", "INSERT INTO dk_report_facts ")
    return [s.split(" ", 1)[0] for s in seen if s.startswith(own)]


def test_a_completion_after_the_first_response_reads_the_facts_once_and_writes_nothing(kit: System) -> None:
    before = facts(kit)
    with statements(kit) as seen:
        _completed(kit, 1)  # the first ticket was answered after 1 h
    assert _of_facts(seen) == ["SELECT"]
    assert not [s for s in seen if "dk_report_rollups" in s]  # no cell changed
    assert facts(kit) == before


def test_the_first_response_is_recorded_once(kit: System) -> None:
    assert facts(kit)[4].first_response_at is None  # the fifth ticket was never answered
    _completed(kit, 5)
    answered = facts(kit)[4].first_response_at
    assert answered is not None
    _completed(kit, 5)
    assert facts(kit)[4].first_response_at == answered


def test_a_new_record_writes_its_facts_row_in_one_statement(kit: System) -> None:
    with statements(kit) as seen:
        kit.forms.submit("ticket", {"customer": "Dora", "region": "east", "category": "late"}, actor="intake")
    assert _of_facts(seen) == ["INSERT"]
    assert facts(kit)[-1].is_repeat == 0
