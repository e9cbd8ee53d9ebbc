"""Docket served under a path of a shared host: DOCKET_PUBLIC_URL=http://testserver/docket.

Every page is crawled through its links as a browser would follow them; each address a page
names (links, forms, scripts, stylesheets), each redirect and each cookie must stay under
/docket, and every page reached must answer. A proxy may pass the prefix on or strip it.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from starlette.testclient import TestClient

from engine.site import PUBLIC_URL_ENV
from tests.web.auth_kit import Seconds, csrf_of, give_password, new_clock, postal_with_agent
from web.app import create_app
from web.system import System

SITE = "http://testserver"
PREFIX = "/docket"
ADDRESS = re.compile(r'\s(href|src|action|formaction|data-query)="([^"]*)"')
SKIPPED = (".pdf", ".png", ".xlsx", ".csv", ".svg")
"""Links to files, not pages (charts, exports, letters): their addresses are checked, but
rendering them would only make the crawl slow."""


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    monkeypatch.setenv(PUBLIC_URL_ENV, SITE + PREFIX)
    system = postal_with_agent(tmp_path, new_clock())
    give_password(system, "admin")
    for customer in ("华中物流", "江南电商"):
        system.forms.submit("complaint", {
            "customer_name": customer, "contact_name": "刘女士", "contact_phone": "027-88886666",
            "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late",
            "description": "延误三天"}, actor="accounts")
    return system


def client_of(system: System) -> TestClient:
    return TestClient(create_app(system, secret="test-secret", monotonic=Seconds()),
                      base_url=SITE + PREFIX, raise_server_exceptions=False)


def signed_in(system: System, username: str) -> TestClient:
    client = client_of(system)
    page = client.get("/signin")
    answer = client.post("/signin", data={"username": username, "password": "correct horse battery staple",
                                          "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return client


def addresses(html: str) -> list[tuple[str, str]]:
    """(attribute, address) of every address a page names."""
    return [(name, value.replace("&amp;", "&")) for name, value in ADDRESS.findall(html)]


def crawl(client: TestClient, start: str, limit: int = 120) -> dict[str, int]:
    """Follow every same-site link (href) from `start` (a path under the prefix), at most
    `limit` pages; assert that each address named on the way stays under the prefix. Returns the
    status of each page reached."""
    seen: dict[str, int] = {}
    queue = deque([start])
    while queue and len(seen) < limit:
        path = queue.popleft()
        if path in seen:
            continue
        answer = client.get(SITE + path, follow_redirects=False)
        seen[path] = answer.status_code
        if answer.is_redirect:
            location = answer.headers["location"]
            assert location.startswith(PREFIX + "/") or location.startswith(SITE + PREFIX + "/"), (path, location)
            queue.append(urlsplit(urljoin(SITE + path, location))._replace(scheme="", netloc="").geturl())
            continue
        if "text/html" not in answer.headers.get("content-type", ""):
            continue
        for attribute, address in addresses(answer.text):
            if not address or address.startswith(("#", "?", "mailto:", "tel:", "data:")):
                continue
            if address.startswith(("http://", "https://")):
                assert not address.startswith(SITE) or address.startswith(SITE + PREFIX + "/"), (path, address)
                continue
            assert address == PREFIX or address.startswith(PREFIX + "/"), f"{path} names {address}"
            target = urljoin(SITE + path, address)[len(SITE):].split("#")[0]
            if (attribute == "href" and target not in seen and not target.startswith(PREFIX + "/signout")
                    and not target.split("?")[0].endswith(SKIPPED)):
                queue.append(target)
    return seen


def test_every_page_an_administrator_reaches_links_under_the_prefix(system: System) -> None:
    seen = crawl(signed_in(system, "admin"), PREFIX + "/inbox")
    assert {p for p, status in seen.items() if status >= 400} == set()
    reached = {urlsplit(p).path for p in seen}
    for page in ("/records/complaint/1", "/dashboards", "/definitions", "/admin/users", "/api/docs"):
        assert PREFIX + page in reached, f"the crawl never reached {page}"


def test_the_inbox_and_task_pages_of_an_agent_link_under_the_prefix(system: System) -> None:
    client = signed_in(system, "agent")
    inbox = client.get("/inbox")
    assert f'href="{PREFIX}/records/complaint/1' in inbox.text
    seen = crawl(client, PREFIX + "/inbox", limit=40)
    assert {p for p, status in seen.items() if status >= 400} == set()


def test_the_customer_pages_link_under_the_prefix(system: System) -> None:
    query_no = system.forms.get("complaint", 1)["query_no"]
    client = client_of(system)
    seen = crawl(client, PREFIX + "/f/complaint", limit=20)
    seen |= crawl(client, f"{PREFIX}/f/complaint/submitted/{query_no}?lang=zh-CN", limit=20)
    assert any(p.startswith(PREFIX + "/track?") for p in seen), "the submitted page links to the lookup"
    assert {p for p, status in seen.items() if status >= 400} == set()


def test_signing_in_redirects_and_sets_its_cookie_under_the_prefix(system: System) -> None:
    client = client_of(system)
    page = client.get("/signin")
    answer = client.post("/signin", data={"username": "agent", "password": "correct horse battery staple",
                                          "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert answer.headers["location"].startswith(PREFIX + "/")
    cookies = answer.headers.get_list("set-cookie")
    assert cookies and all(f"Path={PREFIX}" in c for c in cookies), cookies


def test_a_page_asked_for_without_signing_in_sends_to_the_sign_in_page_under_the_prefix(system: System) -> None:
    answer = client_of(system).get("/records/complaint/1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == PREFIX + "/signin?next=%2Frecords%2Fcomplaint%2F1"


def test_a_proxy_that_strips_the_prefix_reaches_the_same_pages(system: System) -> None:
    stripped = TestClient(create_app(system, secret="test-secret", monotonic=Seconds()), base_url=SITE)
    page = stripped.get("/f/complaint")
    assert page.status_code == 200
    assert f'action="{PREFIX}/f/complaint' in page.text
    assert stripped.get("/healthz").json()["status"] == "ok"


def test_the_api_names_its_links_and_server_under_the_prefix(system: System) -> None:
    client = client_of(system)
    forms = client.get("/api/v1/forms").json()["items"]
    assert forms and all(f["href"].startswith(PREFIX + "/api/v1/forms/") for f in forms)
    assert client.get("/api/v1/openapi.json").json()["servers"] == [{"url": PREFIX}]


def test_the_share_address_of_a_public_form_is_the_public_one(system: System) -> None:
    share = signed_in(system, "admin").get("/f/complaint/share")
    assert f'href="{SITE}{PREFIX}/f/complaint"' in share.text
    assert 'id="address-guessed"' not in share.text  # the configured address needs no warning


def test_an_error_page_links_its_style_and_way_back_under_the_prefix(system: System) -> None:
    missing = signed_in(system, "admin").get("/records/complaint/999")
    assert missing.status_code == 404
    assert f'href="{PREFIX}/static/docket.css"' in missing.text and f'href="{PREFIX}/?lang=' in missing.text
