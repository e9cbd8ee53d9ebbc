"""The public form in an iframe: shown on a site listed in DOCKET_EMBED_ORIGINS, refused by the
browser on any other (CSP frame-ancestors; RELIABILITY 56)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.browser.conftest import POSTAL, LiveServer, serving


class Site:
    """A stand-in for a customer's web site: one page that frames `form_url` (set once the
    Docket server runs; the site's own address must be known before, to configure it)."""

    def __init__(self) -> None:
        self.form_url = "about:blank"
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                page = (f'<!doctype html><title>Partner</title>'
                        f'<iframe src="{site.form_url}" width="600" height="800"></iframe>').encode()
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def framing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, Site, LiveServer]]:
    """A site allowed to frame the form, one that is not, and the Docket server."""
    allowed, other = Site(), Site()
    monkeypatch.setenv("DOCKET_EMBED_ORIGINS", allowed.url)
    with serving(POSTAL, tmp_path) as server:
        allowed.form_url = other.form_url = f"{server.url}/f/complaint?lang=en"
        yield allowed, other, server
    allowed.close()
    other.close()


@pytest.fixture
def sites(framing: tuple[Site, Site, LiveServer]) -> tuple[Site, Site]:
    return framing[0], framing[1]


def framed_form_count(browser: Any, site: Site) -> int:
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.url)
    page.wait_for_timeout(1500)
    frame = page.frames[1] if len(page.frames) > 1 else None
    count = frame.locator("form[data-live]").count() if frame is not None else 0
    context.close()
    return count


def test_the_form_shows_inside_an_allowed_site_and_not_inside_another(
        browser: Any, sites: tuple[Site, Site]) -> None:
    allowed, other = sites
    assert framed_form_count(browser, other) == 0
    assert framed_form_count(browser, allowed) == 1


def test_a_customer_sends_the_form_inside_the_allowed_site_and_reads_the_query_number_there(
        browser: Any, framing: tuple[Site, Site, LiveServer]) -> None:
    # The first page was framed, the acknowledgement was not: the browser showed a refusal where
    # the query number should have been.
    from datetime import timedelta

    allowed, _other, server = framing
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(allowed.url)
    form = page.frame_locator("iframe")
    form.get_by_label("Key-account name").fill("ACME")
    form.get_by_label("Contact person").fill("Chen")
    form.get_by_label("Contact phone").fill("13812345678")
    form.get_by_role("button", name="Next").click()
    form.get_by_label("When it happened").fill("2026-11-20T10:30")
    form.get_by_label("Category").select_option("delivery_late")
    form.get_by_label("What happened").fill("Late by two days")
    server.clock.advance(timedelta(seconds=30))
    form.get_by_role("button", name="Submit").click()
    assert form.locator("#query-no").inner_text(timeout=5000).startswith("TS")
    context.close()
