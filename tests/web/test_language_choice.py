"""The language a user picks stays picked: links inside the pages and the redirect after sign-in
do not repeat `?lang=`, so the choice is remembered rather than re-read from the browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from web.system import System

from tests.web.auth_kit import PASSWORD, app_client, csrf_of, new_clock, postal_with_agent

CHINESE_BROWSER = {"accept-language": "zh-CN,zh;q=0.9"}


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return postal_with_agent(tmp_path, clock)


@pytest.fixture
def client(system: System) -> TestClient:
    return app_client(system, **CHINESE_BROWSER)


def test_english_chosen_at_sign_in_stays_for_the_inbox(client: TestClient) -> None:
    page = client.get("/signin?lang=en")
    inbox = client.post("/signin?lang=en", data={"username": "agent", "password": PASSWORD,
                                                 "csrf_token": csrf_of(page.text)})
    assert inbox.url.path == "/inbox"
    assert '<html lang="en">' in inbox.text and "Inbox" in inbox.text


def test_a_link_without_lang_keeps_the_language_last_chosen(client: TestClient) -> None:
    assert '<html lang="en">' in client.get("/track?lang=en").text
    assert '<html lang="en">' in client.get("/f/complaint").text


def test_choosing_again_switches_back(client: TestClient) -> None:
    client.get("/track?lang=en")
    client.get("/track?lang=zh-CN")
    assert '<html lang="zh-CN">' in client.get("/f/complaint").text


def test_without_a_choice_the_browser_language_is_used(client: TestClient) -> None:
    assert '<html lang="zh-CN">' in client.get("/f/complaint").text
    english = client.get("/f/complaint", headers={"accept-language": "en-US,en;q=0.8"})
    assert '<html lang="en">' in english.text


def test_a_browser_asking_for_a_regional_english_only_gets_english(system: System) -> None:
    # Safari and Playwright send "en-GB" or "en-US" alone: an English reader was shown the
    # sign-in page and the public form in Chinese, the bundle's default.
    for accepted in ("en-GB", "en-US", "fr-FR,en-AU;q=0.5"):
        page = app_client(system, **{"accept-language": accepted}).get("/f/complaint")
        assert '<html lang="en">' in page.text, accepted


def test_a_regional_chinese_gets_the_chinese_the_bundle_has(system: System) -> None:
    page = app_client(system, **{"accept-language": "zh-TW,en;q=0.5"}).get("/f/complaint")
    assert '<html lang="zh-CN">' in page.text


def test_an_unknown_language_in_the_cookie_is_ignored(client: TestClient) -> None:
    client.cookies.set("docket_lang", "fr")
    assert '<html lang="zh-CN">' in client.get("/f/complaint").text


def test_a_signed_out_link_in_english_asks_to_sign_in_in_english(client: TestClient) -> None:
    # A notification's link ends in ?lang=en: the sign-in page it led to was in the browser's
    # Chinese, and the page after it only then in English.
    sent = client.get("/records/complaint?lang=en", follow_redirects=False)
    assert sent.status_code == 303
    signin = client.get(sent.headers["location"])
    assert '<html lang="en">' in signin.text
