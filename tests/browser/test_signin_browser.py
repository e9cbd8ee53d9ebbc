"""Signing in and out in a real browser: the user sees their name, switches the language (the
labels change, the page stays), and signs out (the name is gone and the session with it)."""

from __future__ import annotations

from typing import Any

from engine.storage.db import transaction
from tests.browser.conftest import SCREENSHOTS, LiveServer
from web.auth import set_password

PASSWORD = "correct horse battery staple"


def test_a_user_signs_in_switches_language_and_signs_out(browser: Any, live_server: LiveServer) -> None:
    with transaction(live_server.system.db) as conn:
        set_password(conn, "agent", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{live_server.url}/signin")
    assert page.locator("label[for=f-username]").inner_text() == "用户名"
    page.fill("#f-username", "agent")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "signin.png"), full_page=True)
    page.fill("#f-password", "not the password")
    page.click("#sign-in")
    assert "用户名或密码不正确" in page.locator("#signin-error").inner_text()

    page.fill("#f-password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#user-name")
    assert page.locator("#user-name").inner_text() == "王客服"
    assert page.locator("#sign-out").inner_text() == "退出登录"
    signed_in_at = page.url.split("?")[0]

    page.click("#lang-en")
    page.wait_for_selector("html[lang=en]")
    assert page.locator("#sign-out").inner_text() == "Sign out"
    assert page.url.split("?")[0] == signed_in_at  # the same page, in English
    assert "lang=en" in page.url

    page.click("#sign-out")
    page.wait_for_selector("#f-username")
    assert page.locator("#user-name").count() == 0
    assert page.locator("label[for=f-username]").inner_text() == "Username"  # still English
    page.goto(f"{live_server.url}/signout")  # a signed-out browser is sent to sign in again
    assert "/signin" in page.url
    assert dialogs == []
    context.close()
