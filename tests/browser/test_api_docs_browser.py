"""The API reference (/api/docs) read on a phone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.storage.db import transaction
from tests.browser.conftest import POSTAL, SCREENSHOTS
from tests.browser.test_staff_browser import PASSWORD, serve, sign_in
from web.auth import set_password

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def docs_on_a_phone(browser: Any, tmp_path: Path) -> Iterator[Any]:
    """The signed-in API reference at 390 px, every request body and schema opened."""
    for server in serve(POSTAL, tmp_path / "postal.db"):
        with transaction(server.system.db) as conn:
            set_password(conn, "manager", PASSWORD)
        page = browser.new_page(viewport=PHONE)
        sign_in(page, server, "manager", lang="zh-CN")
        page.goto(f"{server.url}/api/docs?lang=zh-CN")
        page.evaluate("() => document.querySelectorAll('details').forEach(d => { d.open = true; })")
        yield page
        page.close()


def test_the_api_reference_fits_a_phone_with_its_code_blocks_open(docs_on_a_phone: Any) -> None:
    page = docs_on_a_phone
    assert page.locator("pre").count() > 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # A long path in its heading and a request body wider than the screen.
    op = page.locator("article.api-op", has_text="PATCH /api/v1/forms/knowledge_article/records/{id}")
    op.scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "api-docs-phone.png"))


def test_a_wide_code_block_scrolls_inside_itself(docs_on_a_phone: Any) -> None:
    widest = docs_on_a_phone.evaluate("""() => Array.from(document.querySelectorAll('pre'))
        .map(pre => [pre.scrollWidth - pre.clientWidth, getComputedStyle(pre).overflowX])
        .sort((a, b) => b[0] - a[0])[0]""")
    assert widest[0] > 0 and widest[1] == "auto", widest
