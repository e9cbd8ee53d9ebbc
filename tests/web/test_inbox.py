"""The task inbox: whose tasks show, in which order, filtered how, and claiming from it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from tests.web.staff_kit import START, boot_helpdesk, client_for, open_task, post, submit
from web.system import System


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot_helpdesk(tmp_path, clock)


def task_rows(html: str) -> list[str]:
    """The query numbers of the inbox rows, in order."""
    return re.findall(r'<td class="c-no"><a href="/records/ticket/\d+">([^<]+)</a></td>', html)


def test_signed_out_visitors_are_sent_to_sign_in(system: System) -> None:
    response = client_for(system).get("/inbox")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin?next=")


def test_the_home_page_sends_staff_to_their_inbox_and_others_to_sign_in(system: System) -> None:
    assert client_for(system, "ann").get("/").headers["location"] == "/inbox"
    assert client_for(system).get("/").headers["location"] == "/signin"


def test_a_task_offered_to_a_department_shows_to_its_members_only(system: System) -> None:
    submit(system, subject="Printer jams")
    assert task_rows(client_for(system, "ann").get("/inbox").text) == ["HD0001"]
    assert task_rows(client_for(system, "bob").get("/inbox").text) == ["HD0001"]
    assert task_rows(client_for(system, "nils").get("/inbox").text) == []  # department north


def test_a_claimed_task_leaves_the_inbox_of_the_others(system: System) -> None:
    record = submit(system)
    system.flows.claim(open_task(system, record)["id"], "ann")
    assert task_rows(client_for(system, "ann").get("/inbox").text) == ["HD0001"]
    assert task_rows(client_for(system, "bob").get("/inbox").text) == []


def test_tasks_wait_oldest_first_without_sla(system: System, clock: ManualClock) -> None:
    submit(system, subject="first")
    clock.advance(timedelta(hours=1))
    submit(system, subject="second")
    assert task_rows(client_for(system, "ann").get("/inbox").text) == ["HD0001", "HD0002"]


@dataclass
class FakeState:
    policy: str
    target: str
    status: str
    due_at: datetime | None
    remaining_work_seconds: float | None


class FakeSla:
    """Stands in for the rules engine's SLA service (runtime.services["sla"])."""

    def __init__(self, states: dict[int, list[FakeState]]):
        self.states = states

    def states_for(self, conn: Any, form: str, record_ids: list[int]) -> dict[int, list[FakeState]]:
        return {i: self.states[i] for i in record_ids if i in self.states}

    def covers(self, form: str) -> bool:
        return False  # no clocks to count overdue records by


def test_sla_urgency_sorts_before_age_and_shows_as_coloured_chips(system: System, clock: ManualClock) -> None:
    old = submit(system, subject="old but on time")
    clock.advance(timedelta(hours=1))
    urgent = submit(system, subject="new but red")
    system.runtime.services["sla"] = FakeSla({
        old: [FakeState("p", "response", "on_time", None, 9000)],
        urgent: [FakeState("p", "response", "red", START + timedelta(hours=2), 600),
                 FakeState("p", "resolution", "on_time", None, 90000)]})
    html = client_for(system, "ann").get("/inbox?lang=en").text
    assert task_rows(html) == ["HD0002", "HD0001"]
    assert '<span class="sla sla-red"' in html and '<span class="sla sla-green"' in html


def test_the_json_inbox_lists_the_pages_tasks_in_its_order_with_what_it_shows(
        system: System, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    _show_at_triage(system, monkeypatch, "details")
    old = submit(system, subject="old but on time", details="Tray 2")
    clock.advance(timedelta(hours=1))
    urgent = submit(system, subject="new but red")
    system.runtime.services["sla"] = FakeSla({
        old: [FakeState("p", "response", "on_time", None, 9000)],
        urgent: [FakeState("p", "response", "red", START + timedelta(hours=2), 600)]})
    items = client_for(system, "ann").get("/api/v1/tasks?lang=en").json()["items"]
    assert [(i["query_no"], i["title"], i["sla"]["status"]) for i in items] == [
        ("HD0002", "new but red", "red"), ("HD0001", "old but on time", "on_time")]
    assert items[1]["shown"] == [{"label": "Details", "text": "Tray 2"}] and items[0]["shown"] == []
    assert (items[0]["label"], items[0]["status"], items[0]["assignee"]) == ("Triage", "open", None)


def test_without_an_sla_service_no_sla_column_shows(system: System) -> None:
    system.runtime.services.pop("sla", None)
    submit(system)
    html = client_for(system, "ann").get("/inbox?lang=en").text
    assert ">SLA</th>" not in html and task_rows(html) == ["HD0001"]


def _show_at_triage(system: System, monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    from dataclasses import replace

    flow = system.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    nodes["triage"] = replace(nodes["triage"], options={**nodes["triage"].options, "show": list(names)})
    monkeypatch.setitem(system.flows.flows, "ticket_flow", replace(flow, nodes=nodes))


def test_a_task_shows_the_first_filled_in_fields_its_step_puts_before_its_people(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    _show_at_triage(system, monkeypatch, "area", "details", "subject")
    submit(system, subject="Printer jams", details="Paper stuck in tray 2 " * 5)
    html = client_for(system, "ann").get("/inbox?lang=en").text
    (shown,) = re.findall(r'<small class="task-shown">(.*?)</small>', html)
    # The first two filled in (the area is empty; the record page has them all), each one short line.
    assert shown == ("Details <strong>Paper stuck in tray 2 Paper stuck in tr…</strong> · "
                     "Subject <strong>Printer jams</strong>")


def test_a_field_hidden_from_the_reader_stays_out_of_the_inbox(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    _show_at_triage(system, monkeypatch, "internal_note")
    flow = system.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    nodes["solve"] = replace(nodes["solve"], options={**nodes["solve"].options, "hidden_fields": ["internal_note"]})
    monkeypatch.setitem(system.flows.flows, "ticket_flow", replace(flow, nodes=nodes))
    submit(system, internal_note="margin 12%")
    html = client_for(system, "ann").get("/inbox?lang=en").text  # ann works at solve: kept from her
    assert task_rows(html) == ["HD0001"] and "margin 12%" not in html and "task-shown" not in html


def test_counts_per_step_link_to_a_filter_by_that_step(system: System) -> None:
    submit(system)
    submit(system)
    html = client_for(system, "ann").get("/inbox?lang=en").text
    assert re.search(r'href="/inbox\?node=ticket_flow%3Atriage">Triage <span class="count">2</span>', html)


def test_filtering_by_step_status_and_text(system: System) -> None:
    first = submit(system, subject="Printer jams")
    submit(system, subject="Laptop broken")
    system.flows.claim(open_task(system, first)["id"], "ann")
    client = client_for(system, "ann")
    assert task_rows(client.get("/inbox?q=laptop").text) == ["HD0002"]
    assert task_rows(client.get("/inbox?q=HD0001").text) == ["HD0001"]
    assert task_rows(client.get("/inbox?status=mine").text) == ["HD0001"]
    assert task_rows(client.get("/inbox?status=claimable").text) == ["HD0002"]
    assert task_rows(client.get("/inbox?node=ticket_flow:solve").text) == []


def test_claiming_from_the_inbox_makes_the_task_yours(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    client = client_for(system, "bob")
    response = post(client, f"/tasks/{task['id']}/claim", {"next": f"/records/ticket/{record}"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/records/ticket/{record}?notice=claimed"
    assert open_task(system, record)["status"] == "claimed"
    assert "<strong>You</strong>" in client.get("/inbox?lang=en").text


def test_claiming_a_task_someone_else_took_says_so(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    system.flows.claim(task["id"], "ann")
    response = post(client_for(system, "bob"), f"/tasks/{task['id']}/claim", {"next": "/inbox"})
    assert response.headers["location"] == "/inbox?notice=conflict"
    assert open_task(system, record)["assignee_user"] is not None
    page = client_for(system, "bob").get("/inbox?notice=conflict&lang=en").text
    assert "Someone else was quicker" in page


def test_a_task_outside_your_scope_cannot_be_claimed_and_is_not_found(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    response = post(client_for(system, "nils"), f"/tasks/{task['id']}/claim")
    assert response.status_code == 404
    assert open_task(system, record)["status"] == "open"


def test_claiming_without_the_csrf_token_is_refused(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    response = client_for(system, "ann").post(f"/tasks/{task['id']}/claim", data={})
    assert response.status_code == 403
    assert open_task(system, record)["status"] == "open"


def test_an_offsite_next_address_is_not_followed(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    response = post(client_for(system, "ann"), f"/tasks/{task['id']}/claim", {"next": "//evil.example/x"})
    assert response.headers["location"].startswith(f"/records/ticket/{record}")


def test_releasing_gives_the_task_back_to_the_department(system: System) -> None:
    record = submit(system)
    task = open_task(system, record)
    system.flows.claim(task["id"], "ann")
    response = post(client_for(system, "ann"), f"/tasks/{task['id']}/release", {"next": "/inbox"})
    assert response.headers["location"] == "/inbox?notice=released"
    assert task_rows(client_for(system, "bob").get("/inbox").text) == ["HD0001"]


def test_the_inbox_pages_fifty_rows_at_a_time(system: System) -> None:
    for i in range(51):
        submit(system, subject=f"ticket {i}")
    client: TestClient = client_for(system, "ann")
    assert len(task_rows(client.get("/inbox").text)) == 50
    assert task_rows(client.get("/inbox?page=2").text) == ["HD0051"]


def test_an_escalated_task_names_its_holder_by_name(system: System) -> None:
    from engine.storage.tables import tasks

    record = submit(system)
    system.flows.claim(open_task(system, record)["id"], "bob")
    with system.db.begin() as conn:  # escalated while bob holds it: it shows in ann's inbox too
        conn.execute(tasks.update().where(tasks.c.record_id == record).values(escalation_level=1))
    html = client_for(system, "ann").get("/inbox?lang=en").text
    assert re.search(r'<td class="c-holder"[^>]*>Bob</td>', html)


def test_an_escalated_task_someone_holds_is_opened_not_claimed(system: System) -> None:
    from engine.storage.tables import tasks

    record = submit(system)
    task = open_task(system, record)
    system.flows.claim(task["id"], "bob")
    with system.db.begin() as conn:  # escalated while bob holds it: it shows in ann's inbox too
        conn.execute(tasks.update().where(tasks.c.record_id == record).values(escalation_level=1))
    html = client_for(system, "ann").get("/inbox?lang=zh-CN").text
    action = html.split('<td class="c-act">')[1].split("</td>")[0]
    assert f'href="/records/ticket/{record}#task-{task["id"]}">查看</a>' in action and "/claim" not in action


def returned_to_triage(system: System, comment: str = "Which printer?") -> int:
    """A high-urgency ticket triaged by Ann, then returned to triage by Max; its id."""
    record = submit(system)
    system.flows.claim(open_task(system, record)["id"], "ann")
    system.flows.complete(open_task(system, record)["id"], "ann", values={"urgency": "high"})
    system.flows.claim(open_task(system, record)["id"], "max")
    system.flows.complete(open_task(system, record)["id"], "max", outcome="return", comment=comment,
                          return_to="triage")
    return record


def test_a_task_sent_back_to_its_step_is_marked_so_in_the_inbox_with_who_and_why(system: System) -> None:
    returned_to_triage(system)
    html = client_for(system, "ann").get("/inbox?lang=en").text
    badge = re.search(r'<span class="badge badge-sent-back" title="([^"]*)">sent back</span>', html)
    assert badge and badge.group(1) == "Sent back to this step by Max (Return): Which printer?"


def test_a_new_task_carries_no_sent_back_mark(system: System) -> None:
    submit(system)
    assert "badge-sent-back" not in client_for(system, "ann").get("/inbox?lang=en").text
