"""RELIABILITY 50 (server side): markup typed into every text field, a comment and a step's
fields comes back escaped on the inbox, the record list, the record page and its timeline.
The browser half (no dialog fires) is in tests/browser/test_staff_browser.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.staff_kit import boot_helpdesk, client_for, open_task, post, submit
from web.system import System

PAYLOADS = ("<img src=x onerror=alert(1)>", "<svg onload=alert(2)>", '"><script>alert(3)</script>')
RAW = ("<img src=x", "<svg onload", "<script>alert")


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot_helpdesk(tmp_path)


def hostile_record(system: System) -> int:
    record = submit(system, subject=PAYLOADS[0] + PAYLOADS[1], phone=PAYLOADS[2],
                    details=" ".join(PAYLOADS), answer=PAYLOADS[1], internal_note=PAYLOADS[0])
    task = open_task(system, record)
    system.flows.claim(task["id"], "ann")
    system.flows.complete(task["id"], "ann", values={"urgency": "low", "internal_note": PAYLOADS[1]},
                          comment=PAYLOADS[2])
    return record


def assert_escaped(html: str) -> None:
    for raw in RAW:
        assert raw not in html, f"unescaped {raw!r} in the page"


def test_the_inbox_escapes_what_customers_typed(system: System) -> None:
    hostile_record(system)
    html = client_for(system, "bob").get("/inbox").text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert_escaped(html)


def test_the_record_page_and_its_timeline_escape_every_field_and_comment(system: System) -> None:
    record = hostile_record(system)
    page = f"/records/ticket/{record}"
    client = client_for(system, "ann")
    post(client, f"{page}/comment", {"comment": PAYLOADS[0]}, page=page)
    html = client.get(page).text
    assert html.count("&lt;svg onload=alert(2)&gt;") >= 3  # subject, answer, the step's diff
    assert_escaped(html)


def test_the_record_list_escapes_its_cells(system: System) -> None:
    hostile_record(system)
    html = client_for(system, "max").get("/records/ticket").text
    assert "&lt;img src=x" in html
    assert_escaped(html)


def test_a_hostile_search_text_is_escaped_in_the_filter_box(system: System) -> None:
    html = client_for(system, "max").get("/records/ticket", params={"q": PAYLOADS[2]}).text
    assert_escaped(html)
    html = client_for(system, "ann").get("/inbox", params={"q": PAYLOADS[0], "node": PAYLOADS[1]}).text
    assert_escaped(html)


def test_template_and_code_lookalikes_typed_by_a_customer_are_shown_verbatim(system: System) -> None:
    """RELIABILITY 9: text that looks like a template or code is data: the record page and its
    list show it as typed (HTML-escaped), never its value (49) or its effect."""
    typed = "{{7*7}} ${7*7} __import__('os').system('id')"
    record = submit(system, subject=typed, details=typed)
    shown = typed.replace("'", "&#39;")
    for page in (f"/records/ticket/{record}", "/records/ticket"):
        html = client_for(system, "max").get(page).text
        assert shown in html, page
        assert "49 $" not in html and "{{7*7}}" in html
