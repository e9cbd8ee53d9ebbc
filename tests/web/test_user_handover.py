"""An administrator hands over the tasks that wait for one user alone (held by them) to another,
before that user goes on leave or is deactivated: nobody else would see those tasks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from engine.storage.db import read_transaction
from engine.storage.tables import audit_log, users
from tests.web.staff_kit import boot_helpdesk, client_for, open_task, post, submit
from web.system import System


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot_helpdesk(tmp_path)


def holder(system: System, record: int) -> str | None:
    task = open_task(system, record)
    with read_transaction(system.db) as conn:
        return conn.execute(select(users.c.username).where(users.c.id == task["assignee_user"])).scalar()


def held_by_ann(system: System, subject: str) -> int:
    record = submit(system, subject=subject)
    system.flows.claim(open_task(system, record)["id"], "ann")
    return record


def test_the_user_page_lists_the_tasks_they_hold(system: System) -> None:
    record = held_by_ann(system, "Printer jams")
    submit(system, subject="Nobody's yet")  # open to the whole department: not ann's alone
    html = client_for(system, "root").get("/admin/users/ann?lang=en").text
    assert f'<a href="/records/ticket/{record}">HD0001 · Printer jams · Triage</a>' in html
    assert "Nobody&#39;s yet" not in html and 'id="deactivate-warning"' in html


def test_handing_over_gives_every_held_task_to_the_person_chosen(system: System) -> None:
    first, second = held_by_ann(system, "Printer jams"), held_by_ann(system, "Laptop slow")
    root = client_for(system, "root")
    answer = post(root, "/admin/users/ann/handover?lang=en", {"to": "bob"}, page="/admin/users/ann")
    assert answer.status_code == 303
    for record in (first, second):
        assert open_task(system, record)["status"] == "claimed" and holder(system, record) == "bob"
        (entry,) = [h for h in system.forms.history("ticket", record) if h["kind"] == "task.reassigned"]
        assert (entry["actor"], entry["data"]["to"], entry["data"]["comment"]) == ("root", "bob", "handed over from ann")
    page = root.get(answer.headers["location"]).text
    assert "2 tasks handed over to bob." in page and 'id="user-no-work"' in page


def test_the_handover_is_written_to_the_audit_log(system: System) -> None:
    held_by_ann(system, "Printer jams")
    post(client_for(system, "root"), "/admin/users/ann/handover", {"to": "bob"}, page="/admin/users/ann")
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.target, audit_log.c.detail)
                            .where(audit_log.c.action == "user.work_handed_over")).all()
    assert rows == [("root", "ann", {"to": "bob", "tasks": 1})]


@pytest.mark.parametrize("to", ["", "ann", "nobody"])
def test_a_handover_to_no_one_else_active_is_refused_and_moves_nothing(system: System, to: str) -> None:
    record = held_by_ann(system, "Printer jams")
    answer = post(client_for(system, "root"), "/admin/users/ann/handover?lang=en", {"to": to}, page="/admin/users/ann")
    assert answer.status_code == 422 and "Choose an active user other than this one." in answer.text
    assert holder(system, record) == "ann"


def test_only_an_administrator_may_hand_over(system: System) -> None:
    held_by_ann(system, "Printer jams")
    answer = post(client_for(system, "max"), "/admin/users/ann/handover", {"to": "bob"}, page="/inbox")
    assert answer.status_code == 403
