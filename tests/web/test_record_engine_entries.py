"""The record page shows what the rules and SLA engines did in the reader's language, with the
analyst's labels (a rule's label, an SLA target's), never their internal names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.clock import ManualClock
from tests.web.auth_kit import POSTAL, new_clock
from tests.web.staff_kit import client_for
from web.system import System, boot

COMPLAINT = {
    "customer_name": "华南物流客户", "contact_name": "黄小姐", "contact_phone": "020-88886666",
    "occurred_at": "2026-11-20T09:15", "category": "delivery_late", "description": "派送延误两天",
}


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def record_page(system: System, lang: str) -> str:
    record_id = system.forms.submit("complaint", COMPLAINT, actor="agent", channel="test").record_id
    page = client_for(system, "agent").get(f"/records/complaint/{record_id}?lang={lang}")
    assert page.status_code == 200
    return page.text


def timeline(html: str) -> str:
    """The text of the history list, tags stripped."""
    found = re.search(r'<ol class="activity">(.*?)</ol>', html, re.S)
    assert found, "the page has no timeline"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", found.group(1)))


def test_engine_entries_read_in_chinese_on_a_chinese_page(system: System) -> None:
    text = timeline(record_page(system, "zh-CN"))
    assert "系统 · 触发规则 · 受理短信（含查询编号）" in text
    assert "系统 · 时限开始计时 · 首次响应" in text
    for internal in ("rule.fired", "sla.started", "notified", "complaint_rules.", "system"):
        assert internal not in text, internal


def test_engine_entries_read_in_english_on_an_english_page(system: System) -> None:
    text = timeline(record_page(system, "en"))
    assert "System · rule applied · Acknowledgement with the query number" in text
    assert "System · SLA clock started · First response" in text


def test_the_sla_chips_name_the_policy_and_target_by_their_labels(system: System) -> None:
    html = record_page(system, "zh-CN")
    chips = re.search(r'<ul class="sla-list"[^>]*>(.*?)</ul>', html, re.S)
    assert chips, "the page lists no SLA"
    assert "投诉处理时限 · 首次响应" in chips.group(1) and "投诉处理时限 · 办结" in chips.group(1)
    assert "complaint_sla" not in chips.group(1)


def derived_compensation(system: System) -> tuple[int, int]:
    """A complaint and the compensation form a rule created from it, as the history records it."""
    from engine.storage.db import transaction
    from engine.storage.tables import history

    complaint = system.forms.submit("complaint", COMPLAINT, actor="agent", channel="test").record_id
    compensation = system.forms.submit("compensation", {
        "complaint_no": "TS1", "customer_name": "华南物流客户", "amount": "300"}, actor=None, channel="test")
    with transaction(system.db) as conn:
        conn.execute(history.insert().values(
            form="complaint", record_id=complaint, kind="record.derived", actor="system",
            at=system.runtime.clock.now(),
            data={"by": "rule:complaint_rules.compensation_form", "form": "compensation",
                  "record_id": compensation.record_id, "query_no": compensation.query_no}))
    return complaint, compensation.record_id


def test_the_linked_record_a_rule_created_opens_from_the_timeline(system: System) -> None:
    complaint, compensation = derived_compensation(system)
    html = client_for(system, "admin").get(f"/records/complaint/{complaint}?lang=en").text
    assert re.search(rf'created a linked record · <a href="/records/compensation/{compensation}">Compensation PC\d+</a>', html)


def test_a_linked_record_the_reader_may_not_open_is_named_without_a_link(system: System) -> None:
    complaint, compensation = derived_compensation(system)
    html = client_for(system, "agent").get(f"/records/complaint/{complaint}?lang=en").text
    assert re.search(r"created a linked record · PC\d+</p>", html)
    assert f'href="/records/compensation/{compensation}"' not in html


def proposed_compensation(system: System) -> tuple[int, int]:
    """A complaint whose proposed compensation made the postal rule create a compensation form."""
    from tests.flows.test_postal_flow import DELAY, accept

    case = accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "300", "basis": "条款"})
    (compensation,) = system.forms.list("compensation")
    return case.id, int(compensation["id"])


def test_a_record_a_rule_created_links_back_to_the_record_it_came_from(system: System) -> None:
    complaint, compensation = proposed_compensation(system)
    query_no = system.forms.get("complaint", complaint)["query_no"]
    html = client_for(system, "admin").get(f"/records/compensation/{compensation}?lang=en").text
    link = f'<a href="/records/complaint/{complaint}">Key-account complaint {query_no}</a>'
    assert re.search(r'<dd id="record-linked">' + re.escape(link), html)
    assert f"created the record from · {link}" in html


def test_the_summary_lists_the_records_a_rule_created_from_this_one(system: System) -> None:
    complaint, compensation = proposed_compensation(system)
    html = client_for(system, "admin").get(f"/records/complaint/{complaint}?lang=zh-CN").text
    assert re.search(rf'<dd id="record-linked"><a href="/records/compensation/{compensation}">赔偿单 PC\d+</a>', html)


def test_a_record_created_by_hand_lists_no_linked_records(system: System) -> None:
    assert 'id="record-linked"' not in record_page(system, "en")
