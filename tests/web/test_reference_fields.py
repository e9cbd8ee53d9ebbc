"""A `reference` field on the record page reads as the record it names (its query number and
title, or the field `show` names) and links to it, for readers who may open that record."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.clock import ManualClock
from tests.web.staff_kit import START, client_for, csrf_of, submit, write_bundle
from web.system import System, boot

VISIT = {"forms/visit.yaml": """\
    form: visit
    label: {zh-CN: 上门, en: Visit}
    list: [ticket]
    fields:
      ticket: {type: reference, form: ticket, label: {zh-CN: 工单, en: Ticket}}
      by_phone: {type: reference, form: ticket, show: phone, label: {zh-CN: 来电, en: Call}}
    """}


@pytest.fixture
def system(tmp_path: Path) -> System:
    root = write_bundle(tmp_path / "bundle", VISIT)
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(START))


def visit_to(system: System, ticket: int, actor: str) -> int:
    return system.forms.submit("visit", {"ticket": ticket, "by_phone": ticket}, actor=actor,
                               channel="test").record_id


def test_a_reference_reads_as_the_query_number_and_title_of_the_record_and_links_to_it(system: System) -> None:
    ticket = submit(system, subject="Printer jams")
    html = client_for(system, "root").get(f"/records/visit/{visit_to(system, ticket, 'root')}?lang=en").text
    assert f'<a href="/records/ticket/{ticket}">HD0001 · Printer jams</a>' in html


def test_a_reference_with_show_reads_as_that_field(system: System) -> None:
    ticket = submit(system, subject="Printer jams", phone="13800001234")
    html = client_for(system, "root").get(f"/records/visit/{visit_to(system, ticket, 'root')}?lang=en").text
    assert f'<a href="/records/ticket/{ticket}">HD0001 · 13800001234</a>' in html


def test_a_reference_to_a_record_the_reader_may_not_open_reads_as_its_id_only(system: System) -> None:
    ticket = submit(system, subject="Printer jams")  # ann's, in the service department
    visit = visit_to(system, ticket, "nils")           # nils (north) may open his visit, not the ticket
    page = client_for(system, "nils").get(f"/records/visit/{visit}?lang=en")
    assert page.status_code == 200
    assert f"#{ticket}" in page.text
    assert "Printer jams" not in page.text and f'href="/records/ticket/{ticket}"' not in page.text


def new_visit_page(system: System, username: str) -> str:
    page = client_for(system, username).get("/records/visit/new?lang=en")
    assert page.status_code == 200
    return page.text


def test_a_new_record_offers_the_records_a_reference_may_name_by_their_words(system: System) -> None:
    ticket = submit(system, subject="Printer jams")
    assert f'<option value="{ticket}">HD0001 · Printer jams</option>' in new_visit_page(system, "root")


def test_a_reference_offers_only_the_records_the_user_may_read(system: System) -> None:
    submit(system, subject="Printer jams")  # ann's, in the service department
    mine = submit(system, actor="nils", subject="Scanner offline")
    html = new_visit_page(system, "nils")
    assert f'<option value="{mine}">HD0002 · Scanner offline</option>' in html
    assert "Printer jams" not in html


def test_the_record_chosen_for_a_reference_is_stored_and_linked(system: System) -> None:
    ticket = submit(system, subject="Printer jams")
    client = client_for(system, "root")
    html = client.get("/records/visit/new").text
    key = re.search(r'name="_key" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    created = client.post("/records/visit/new", data={"ticket": str(ticket), "_key": key, "csrf_token": csrf_of(html)})
    assert created.status_code == 303
    record = client.get(created.headers["location"] + "&lang=en").text
    assert f'<a href="/records/ticket/{ticket}">HD0001 · Printer jams</a>' in record


def test_the_record_list_shows_a_reference_by_its_words_to_those_who_may_read_it(system: System) -> None:
    ticket = submit(system, subject="Printer jams")
    visit_to(system, ticket, "nils")
    assert "HD0001 · Printer jams" in client_for(system, "root").get("/records/visit?lang=en").text
    theirs = client_for(system, "nils").get("/records/visit?lang=en").text
    assert f"#{ticket}" in theirs and "Printer jams" not in theirs
