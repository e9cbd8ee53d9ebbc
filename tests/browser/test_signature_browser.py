"""A signature field is signed by drawing on the pad, or by typing a name, in a real browser."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer, serving
from tests.engine.bundle_kit import write_bundle

FORM = """\
form: receipt
label: {zh-CN: 签收确认, en: Delivery receipt}
public: true
fields:
  name:
    type: text
    label: {zh-CN: 姓名, en: Name}
    required: true
  signed:
    type: signature
    label: {zh-CN: 签名, en: Signature}
    required: true
"""


@pytest.fixture
def receipt_server(tmp_path: Path) -> Iterator[LiveServer]:
    root = write_bundle(tmp_path / "bundle", {"forms/receipt.yaml": FORM})
    with serving(root, tmp_path) as server:
        yield server


def stored_png(server: LiveServer) -> bytes:
    (record,) = server.system.forms.list("receipt")
    prefix = "data:image/png;base64,"
    assert record["signed"].startswith(prefix)
    return base64.b64decode(record["signed"][len(prefix):])


def open_form(browser: Any, server: LiveServer) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="en-US", has_touch=True)
    page = context.new_page()
    page.goto(f"{server.url}/f/receipt?lang=en")
    page.locator("#f-name").fill("Chen")
    return context, page


def submit(page: Any, server: LiveServer) -> None:
    server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()


def test_a_signature_drawn_on_the_pad_is_stored_as_a_png(browser: Any, receipt_server: LiveServer) -> None:
    context, page = open_form(browser, receipt_server)
    box = page.locator("[data-signature-pad]").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + box["height"] / 2)
    page.mouse.down()
    for step in range(1, 12):
        page.mouse.move(box["x"] + 20 + step * 25, box["y"] + box["height"] / 2 + (-1) ** step * 20)
    page.mouse.up()
    page.screenshot(path=str(SCREENSHOTS / "signature-pad-phone.png"))
    submit(page, receipt_server)
    assert stored_png(receipt_server).startswith(b"\x89PNG\r\n\x1a\n")
    context.close()


def test_typing_a_name_signs_without_a_pointer(browser: Any, receipt_server: LiveServer) -> None:
    context, page = open_form(browser, receipt_server)
    page.get_by_label("Or type your name to sign").fill("陈先生")
    submit(page, receipt_server)
    assert stored_png(receipt_server).startswith(b"\x89PNG\r\n\x1a\n")
    context.close()


def test_an_unsigned_required_signature_is_refused_next_to_the_pad(browser: Any, receipt_server: LiveServer) -> None:
    context, page = open_form(browser, receipt_server)
    page.get_by_label("Or type your name to sign").fill("x")
    page.get_by_role("button", name="Clear signature").click()
    receipt_server.clock.advance(timedelta(seconds=30))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("#form-errors")
    assert page.locator("[data-field=signed] .error").count() == 1
    assert receipt_server.system.forms.count("receipt") == 0
    context.close()
