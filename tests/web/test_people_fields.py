"""A `user` field on staff pages names people, not user names: a step offers the people the
field may name (its `role`) by their names, and the record page and its timeline show them so.
Changed amounts on the timeline read as money, as the fields above them do."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import users
from tests.flows.test_postal_flow import DELAY, POSTAL, Case, accept
from tests.web.auth_kit import app_client, give_password, sign_in
from web.system import System, boot


@pytest.fixture
def system(tmp_path: Path) -> System:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    for name in ("agent", "admin"):
        give_password(system, name)
    return system


def display_name(system: System, username: str) -> str:
    with read_transaction(system.db) as conn:
        return str(conn.execute(select(users.c.display_name).where(users.c.username == username)).scalar_one())


def page_of(system: System, username: str, url: str) -> str:
    client = app_client(system)
    sign_in(client, username)
    return client.get(url).text


def test_a_step_offers_the_people_a_user_field_may_name_by_their_names(system: System) -> None:
    case = Case(system, DELAY)
    system.flows.claim(case.task("accept")["id"], "agent")
    html = page_of(system, "agent", f"/records/complaint/{case.id}?lang=zh-CN")
    (picker,) = re.findall(r'<select id="f-account_manager".*?</select>', html, re.S)
    offered = re.findall(r'<option value="([^"]*)"', picker)
    assert offered == ["", "accounts"]  # the account managers only (the field's role)
    assert f'<option value="accounts">{display_name(system, "accounts")}</option>' in picker


def test_a_person_no_longer_offered_stays_chosen(system: System) -> None:
    case = Case(system, {**DELAY, "account_manager": "accounts"})
    with system.db.begin() as conn:
        conn.execute(users.update().where(users.c.username == "accounts").values(is_active=False))
    system.flows.claim(case.task("accept")["id"], "agent")
    html = page_of(system, "agent", f"/records/complaint/{case.id}")
    (picker,) = re.findall(r'<select id="f-account_manager".*?</select>', html, re.S)
    assert '<option value="accounts" selected>accounts</option>' in picker


def test_the_record_page_shows_a_user_field_by_the_persons_name(system: System) -> None:
    case = accept(system, DELAY, account_manager="accounts")
    html = page_of(system, "admin", f"/records/complaint/{case.id}")
    name = display_name(system, "accounts")
    assert name != "accounts" and re.search(rf"<dd[^>]*>{re.escape(name)}</dd>", html)


def test_a_changed_amount_reads_as_money_on_the_timeline(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "2000", "basis": "条款"})
    html = page_of(system, "admin", f"/records/complaint/{case.id}")
    assert "¥2,000.00" in html and "→ 2000.00" not in html and ">2000.00<" not in html


def list_account_manager(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the complaint list show the account manager (the postal list does not)."""
    from dataclasses import replace

    form = system.forms.form("complaint")
    monkeypatch.setitem(system.forms.forms, "complaint",
                        replace(form, spec=replace(form.spec, list_fields=("customer_name", "account_manager"))))


def test_the_record_list_shows_a_user_field_by_the_persons_name(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    list_account_manager(system, monkeypatch)
    Case(system, {**DELAY, "account_manager": "accounts"})
    html = page_of(system, "admin", "/records/complaint?lang=zh-CN")
    name = display_name(system, "accounts")
    assert name != "accounts" and re.search(rf"<td[^>]*>{re.escape(name)}</td>", html)
    assert not re.search(r"<td[^>]*>accounts</td>", html)


def test_the_record_list_search_finds_a_user_field_by_the_persons_name(system: System) -> None:
    mine = Case(system, {**DELAY, "account_manager": "accounts"})
    Case(system, {**DELAY, "customer_name": "西南物流"})
    name = display_name(system, "accounts")
    html = page_of(system, "admin", f"/records/complaint?lang=zh-CN&q={name}")
    shown = set(re.findall(r'href="/records/complaint/(\d+)"', html))
    assert shown == {str(mine.id)}


def test_the_export_keeps_the_user_name_of_a_user_field(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    list_account_manager(system, monkeypatch)
    Case(system, {**DELAY, "account_manager": "accounts"})
    client = app_client(system)
    sign_in(client, "admin")
    # A file is read back by machines (import, other systems): they need the stable user name.
    assert "accounts" in client.get("/records/complaint/export.csv").content.decode("utf-8-sig")


def test_the_inbox_shows_a_user_field_a_step_puts_first_by_the_persons_name(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    flow = system.flows.flows["complaint_handling"]
    nodes = dict(flow.nodes)
    nodes["accept"] = replace(nodes["accept"], options={**nodes["accept"].options, "show": ["account_manager"]})
    monkeypatch.setitem(system.flows.flows, "complaint_handling", replace(flow, nodes=nodes))
    Case(system, {**DELAY, "account_manager": "accounts"})
    html = page_of(system, "agent", "/inbox?lang=zh-CN")
    (shown,) = re.findall(r'<small class="task-shown">(.*?)</small>', html)
    assert shown == f"专属客户经理 <strong>{display_name(system, 'accounts')}</strong>"


def test_the_record_page_names_its_creator_and_reads_an_engine_status(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "条款"})
    (compensation,) = system.forms.list("compensation")  # created by a rule: no status list, status 'new'
    rule_made = page_of(system, "admin", f"/records/compensation/{compensation['id']}?lang=zh-CN")
    assert '<span class="badge" id="record-status">新建</span>' in rule_made
    assert re.search(r"\d{2}:\d{2} · 系统</dd>", rule_made)
    complaint = page_of(system, "admin", f"/records/complaint/{case.id}?lang=zh-CN")
    assert re.search(rf"\d{{2}}:\d{{2}} · {re.escape(display_name(system, 'accounts'))}</dd>", complaint)
