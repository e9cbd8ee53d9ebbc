"""Who may hand a task to someone else: its holder, administrators, those who see every
record, and the roles its role reports to (bundle.yaml `reports_to`): a supervisor moves the
agents' work when one of them is away."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.storage.db import read_transaction
from forms.access import load_principal
from tests.web.api_kit import COMPLAINT
from tests.web.auth_kit import POSTAL, new_clock
from web.staff import may_reassign
from web.system import System, boot


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=new_clock())


def may(system: System, username: str, task: dict) -> bool:
    with read_transaction(system.db) as conn:
        principal = load_principal(conn, system.runtime, username)
    assert principal is not None
    return may_reassign(system.runtime, task, principal)


def accept_task(system: System) -> dict:
    record_id = system.forms.submit("complaint", dict(COMPLAINT), actor=None).record_id
    (task,) = system.flows.open_tasks("complaint", record_id)
    return task


def test_the_supervisor_the_agents_report_to_may_reassign_their_task(system: System) -> None:
    assert may(system, "supervisor", accept_task(system))


def test_the_supervisor_may_reassign_a_task_an_agent_holds(system: System) -> None:
    task = accept_task(system)
    system.flows.claim(task["id"], "agent")
    (held,) = system.flows.open_tasks("complaint", task["record_id"])
    assert held["status"] == "claimed" and may(system, "supervisor", held)


def test_a_colleague_of_another_department_may_not_reassign_it(system: System) -> None:
    assert not may(system, "marketing", accept_task(system))


def test_an_agent_who_does_not_hold_it_may_not_reassign_it(system: System) -> None:
    assert not may(system, "agent", accept_task(system))
