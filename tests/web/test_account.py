"""A signed-in user's own page: who they are to Docket, and changing their own password (with
the current one), which signs out every other browser of theirs and keeps this one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.db import read_transaction
from engine.storage.tables import audit_log
from tests.web.auth_kit import PASSWORD, app_client, csrf_of, new_clock, postal_with_agent, sign_in
from web.system import System

NEW = "a much longer passphrase 2026"


@pytest.fixture
def system(tmp_path: Path) -> System:
    return postal_with_agent(tmp_path, new_clock())


@pytest.fixture
def agent(system: System) -> TestClient:
    client = app_client(system)
    assert sign_in(client, "agent").status_code == 303
    return client


def change(client: TestClient, current: str, new: str = NEW, again: str | None = None):  # type: ignore[no-untyped-def]
    page = client.get("/account?lang=en").text
    return client.post("/account/password?lang=en", data={
        "current": current, "password": new, "again": new if again is None else again,
        "csrf_token": csrf_of(page)}, follow_redirects=False)


def test_the_account_page_says_who_the_user_is(agent: TestClient) -> None:
    html = agent.get("/account?lang=zh-CN").text
    assert "我的账户" in html and "王客服" in html and "(agent)" in html and 'id="change-password"' in html


def test_the_name_in_the_header_opens_the_account_page(agent: TestClient) -> None:
    assert '<a href="/account?lang=en" id="user-name"' in agent.get("/inbox?lang=en").text


def test_a_changed_password_signs_in_and_the_old_one_no_longer_does(system: System, agent: TestClient) -> None:
    answer = change(agent, PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/account?lang=en&saved=1"
    assert "Your password is changed." in agent.get(answer.headers["location"]).text  # still signed in here
    assert sign_in(app_client(system), "agent", NEW).status_code == 303
    assert sign_in(app_client(system), "agent", PASSWORD).status_code == 401


def test_a_change_signs_out_every_other_browser(system: System, agent: TestClient) -> None:
    other = app_client(system)
    sign_in(other, "agent")
    change(agent, PASSWORD)
    assert other.get("/inbox", follow_redirects=False).status_code in (302, 303)


def test_a_wrong_current_password_changes_nothing_and_is_audited(system: System, agent: TestClient) -> None:
    answer = change(agent, "not my password at all")
    assert answer.status_code == 422 and "This is not your current password." in answer.text
    assert sign_in(app_client(system), "agent", PASSWORD).status_code == 303
    with read_transaction(system.db) as conn:
        actions = list(conn.execute(select(audit_log.c.action).where(audit_log.c.actor == "agent")).scalars())
    assert "user.password.failed" in actions and "user.password" not in actions


@pytest.mark.parametrize(("new", "again", "message"), [
    ("short", None, "at least 12 characters"),
    (NEW, NEW + "!", "The two new passwords differ"),
    (PASSWORD, None, "The new password is the current one"),
])
def test_an_unacceptable_new_password_is_refused_with_the_reason(system: System, agent: TestClient,
                                                                   new: str, again: str | None, message: str) -> None:
    answer = change(agent, PASSWORD, new, again)
    assert answer.status_code == 422 and message in answer.text
    assert sign_in(app_client(system), "agent", PASSWORD).status_code == 303


def test_guessing_the_current_password_is_throttled_like_signing_in(agent: TestClient) -> None:
    answers = [change(agent, f"wrong guess number {n}").status_code for n in range(6)]
    assert answers[:5] == [422] * 5 and answers[5] == 429


def test_the_account_page_needs_a_signed_in_user(system: System) -> None:
    answer = app_client(system).get("/account", follow_redirects=False)
    assert answer.status_code in (302, 303, 401)


def reset_by_admin(system: System, username: str = "agent", password: str = "handed over 2026-12") -> str:
    from tests.web.staff_kit import client_for, post

    answer = post(client_for(system, "admin"), f"/admin/users/{username}/password", {"password": password},
                  page=f"/admin/users/{username}")
    assert answer.status_code == 303
    return password


def test_a_password_an_administrator_set_leads_every_page_to_choosing_ones_own(system: System) -> None:
    given = reset_by_admin(system)
    client = app_client(system)
    assert sign_in(client, "agent", given).status_code == 303
    inbox = client.get("/inbox?lang=en", follow_redirects=False)
    assert inbox.status_code == 303 and inbox.headers["location"] == "/account?lang=en"
    assert 'id="choose-password"' in client.get("/account?lang=en").text


def test_with_a_temporary_password_nothing_but_changing_it_is_accepted(system: System) -> None:
    given = reset_by_admin(system)
    client = app_client(system)
    sign_in(client, "agent", given)
    csrf = csrf_of(client.get("/account").text)
    answer = client.post("/records/complaint/1/comment?lang=en", data={"text": "x", "csrf_token": csrf})
    assert answer.status_code == 403 and "choose your own on My account (/account) first" in answer.text


def test_choosing_ones_own_password_opens_the_pages_again(system: System) -> None:
    given = reset_by_admin(system)
    client = app_client(system)
    sign_in(client, "agent", given)
    assert change(client, given).status_code == 303
    assert client.get("/inbox", follow_redirects=False).status_code == 200


def test_a_password_set_from_the_command_line_is_the_users_own(system: System, agent: TestClient) -> None:
    assert agent.get("/inbox", follow_redirects=False).status_code == 200  # postal_with_agent: auth.set_password
