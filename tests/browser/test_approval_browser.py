"""A finance director approves a large compensation in a real browser (postal flow: above 5000
yuan the director decides); the complaint moves on to the reply to the customer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer
from tests.browser.test_staff_browser import POSTAL, give_password, serve, sign_in
from tests.flows.test_postal_flow import DAMAGE, accept


@pytest.fixture
def postal(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve(POSTAL, tmp_path / "postal.db")


def test_the_finance_director_approves_a_large_compensation(browser: Any, postal: LiveServer) -> None:
    system = postal.system
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "6800", "basis": "保价条款 5.1"})
    assert case.open() == ["director_approval"]
    give_password(postal, "director")

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    sign_in(page, postal, "director", lang="en")
    task_id = case.task("director_approval")["id"]
    row = page.locator(f"tr[data-task='{task_id}']")
    assert row.count() == 1, page.inner_text("main")[:2000]
    page.goto(f"{postal.url}/records/complaint/{case.id}?lang=en")
    assert "¥6,800.00" in page.inner_text("main")
    with page.expect_navigation():
        page.get_by_role("button", name="Claim").first.click()
    page.screenshot(path=str(SCREENSHOTS / "approval.png"))
    with page.expect_navigation():
        page.locator("button.outcome-approve").click()
    assert case.open() == ["reply"] and case.status == "awaiting_reply"
    (approved,) = [h for h in case.history("task.completed") if h["node"] == "director_approval"]
    assert approved["actor"] == "director"
    context.close()
