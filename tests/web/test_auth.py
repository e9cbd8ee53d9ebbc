"""Sign-in and sessions: Argon2id passwords, rotation, sign-out, expiry (RELIABILITY 42, 43)."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import audit_log, sessions, users
from web.auth import (OWASP_ARGON2ID, SESSION_COOKIE, authenticate, hash_password, issue_session, safe_next,
                      set_password, verify_password)
from web.system import System

from tests.web.auth_kit import (PASSWORD, app_client, csrf_of, give_password, new_clock, postal_with_agent,
                                sign_in)


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return postal_with_agent(tmp_path, clock)


@pytest.fixture
def client(system: System) -> TestClient:
    return app_client(system)


def stored_hash(system: System, username: str) -> str:
    with read_transaction(system.db) as conn:
        return str(conn.execute(select(users.c.password_hash).where(users.c.username == username)).scalar())


def session_count(system: System) -> int:
    with read_transaction(system.db) as conn:
        return len(conn.execute(select(sessions.c.id)).all())


# -- passwords (43) ----------------------------------------------------------------------------

def test_the_stored_hash_is_argon2id_with_at_least_an_owasp_configuration(system: System) -> None:
    stored = stored_hash(system, "agent")
    assert stored.startswith("$argon2id$v=19$")
    params = {k: int(v) for k, v in (p.split("=") for p in stored.split("$")[3].split(","))}
    assert params["p"] >= 1
    assert any(params["m"] >= memory and params["t"] >= passes for memory, passes in OWASP_ARGON2ID)


def test_a_100_character_password_verifies_exactly() -> None:
    password = "p" * 99 + "!"
    stored = hash_password(password)
    assert verify_password(stored, password)
    assert not verify_password(stored, "p" * 99 + "?")
    assert not verify_password(stored, "p" * 99)


def test_a_73_byte_utf8_password_is_not_cut_at_72_bytes() -> None:
    password = "密" * 24 + "a"  # 72 bytes of CJK, then the 73rd byte
    assert len(password.encode()) == 73
    stored = hash_password(password)
    assert verify_password(stored, password)
    assert not verify_password(stored, "密" * 24 + "b")


def test_a_user_without_a_password_cannot_sign_in(system: System) -> None:
    with transaction(system.db) as conn:
        assert authenticate(conn, "supervisor", "") == (None, "no password set")
        assert authenticate(conn, "supervisor", PASSWORD) == (None, "no password set")


def test_short_passwords_are_refused(system: System) -> None:
    with transaction(system.db) as conn, pytest.raises(ValueError, match="at least 12"):
        set_password(conn, "agent", "short")


def _median_seconds(runs: dict[str, Callable[[], None]], rounds: int = 9) -> dict[str, float]:
    """The median time of each run, taking turns round by round: a machine that slows down
    meanwhile (other processes, a CI neighbour) slows every run alike instead of the last one."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(times) for name, times in samples.items()}


def test_unknown_and_known_users_take_the_same_time_to_refuse(system: System) -> None:
    def attempt(username: str) -> Callable[[], None]:
        def run() -> None:
            with transaction(system.db) as conn:
                assert authenticate(conn, username, "a wrong password!")[0] is None
        return run

    attempt("nobody-warmup")()
    median = _median_seconds({"known": attempt("agent"), "unknown": attempt("no-such-user"),
                              "passwordless": attempt("supervisor")})
    # Each pays one Argon2 verification (~0.1 s); without the dummy hash the unknown user would
    # answer in well under a millisecond.
    assert 0.6 < median["unknown"] / median["known"] < 1.6
    assert 0.6 < median["passwordless"] / median["known"] < 1.6


# -- sign-in over HTTP -------------------------------------------------------------------------

def test_signing_in_lands_on_the_next_page_as_the_user(client: TestClient) -> None:
    page = client.get("/signin?next=/signout%3Flang%3Den")
    assert page.status_code == 200 and 'name="csrf_token"' in page.text
    response = client.post("/signin", data={"username": "agent", "password": PASSWORD, "next": "/signout?lang=en",
                                            "csrf_token": csrf_of(page.text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signout?lang=en"
    home = client.get("/signout?lang=en")
    assert 'id="user-name"' in home.text and "王客服" in home.text


def test_a_wrong_password_shows_one_message_for_every_reason(client: TestClient) -> None:
    wrong = sign_in(client, "agent", "not the password at all")
    unknown = sign_in(client, "ghost", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "The username or password is not right." in wrong.text or "用户名或密码不正确" in wrong.text
    assert wrong.text.replace("agent", "ghost") == unknown.text.replace("agent", "ghost")


def test_signing_in_is_audited_and_so_are_failures(client: TestClient, system: System) -> None:
    sign_in(client, "agent", "not the password at all")
    sign_in(client, "agent")
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.detail)
                            .order_by(audit_log.c.id)).all()
    assert [(r.actor, r.action) for r in rows] == [("agent", "signin.failed"), ("agent", "signin")]
    assert rows[0].detail == {"reason": "wrong password"}


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example",
                                    "javascript:alert(1)", "", None])
def test_next_never_leaves_the_site(target: str | None) -> None:
    assert safe_next(target) == "/"


def test_next_keeps_a_local_path() -> None:
    assert safe_next("/records/complaint/4?lang=en") == "/records/complaint/4?lang=en"


# -- sessions (42) -----------------------------------------------------------------------------

def test_signing_in_rotates_the_cookie_and_the_old_one_stays_anonymous(client: TestClient) -> None:
    client.get("/signin")
    before = client.cookies.get(SESSION_COOKIE)
    assert before and before.startswith("a.")
    assert sign_in(client, "agent").status_code == 303
    after = client.cookies.get(SESSION_COOKIE)
    assert after and after != before and not after.startswith("a.")
    replay = TestClient(client.app, cookies={SESSION_COOKIE: before})
    assert 'id="user-name"' not in replay.get("/signout").text


def test_a_planted_session_id_is_never_adopted(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "attacker-chosen-value", domain="testserver.local")
    sign_in(client, "agent")
    assert client.cookies.get(SESSION_COOKIE) != "attacker-chosen-value"


def test_signing_in_again_ends_the_previous_session(client: TestClient, system: System) -> None:
    sign_in(client, "agent")
    first = client.cookies.get(SESSION_COOKIE)
    sign_in(client, "agent")
    assert client.cookies.get(SESSION_COOKIE) != first
    assert session_count(system) == 1


def test_after_sign_out_a_replayed_cookie_is_rejected(client: TestClient, system: System) -> None:
    sign_in(client, "agent")
    cookie = client.cookies.get(SESSION_COOKIE)
    home = client.get("/signout")
    out = client.post("/signout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert session_count(system) == 0
    replay = TestClient(client.app, cookies={SESSION_COOKIE: cookie})
    assert 'id="user-name"' not in replay.get("/signout").text
    assert replay.get("/signout", follow_redirects=False).headers["location"] == "/signin"


def test_get_on_signout_does_not_sign_out(client: TestClient, system: System) -> None:
    sign_in(client, "agent")
    page = client.get("/signout")
    assert page.status_code == 200 and session_count(system) == 1


def test_a_session_ends_after_the_idle_timeout(client: TestClient, clock: ManualClock) -> None:
    sign_in(client, "agent")
    clock.advance(timedelta(minutes=29))
    assert 'id="user-name"' in client.get("/signout").text
    clock.advance(timedelta(minutes=29))  # active 29 minutes ago: still alive
    assert 'id="user-name"' in client.get("/signout").text
    clock.advance(timedelta(minutes=31))
    assert 'id="user-name"' not in client.get("/signout").text


def test_a_session_ends_at_the_absolute_limit_however_busy(client: TestClient, clock: ManualClock) -> None:
    sign_in(client, "agent")
    for _ in range(12 * 4 - 1):
        clock.advance(timedelta(minutes=15))
        assert 'id="user-name"' in client.get("/signout").text
    clock.advance(timedelta(minutes=15))
    assert 'id="user-name"' not in client.get("/signout").text


def test_a_deactivated_user_is_anonymous_at_once(client: TestClient, system: System) -> None:
    sign_in(client, "agent")
    with transaction(system.db) as conn:
        conn.execute(update(users).where(users.c.username == "agent").values(is_active=False))
    assert 'id="user-name"' not in client.get("/signout").text
    assert sign_in(client, "agent").status_code == 401


def test_a_password_change_ends_the_users_sessions(client: TestClient, system: System) -> None:
    sign_in(client, "agent")
    give_password(system, "agent", "another long passphrase")
    assert 'id="user-name"' not in client.get("/signout").text


def test_issue_session_signs_a_test_client_in_without_a_password(client: TestClient) -> None:
    web = client.app.state.web  # type: ignore[attr-defined]
    client.cookies.set(SESSION_COOKIE, issue_session(web, "supervisor"), domain="testserver.local")
    assert "李主管" in client.get("/signout").text


def test_the_api_answers_401_not_a_redirect_for_anonymous_callers(client: TestClient) -> None:
    from starlette.requests import Request

    from web.auth import require_principal

    request = Request({"type": "http", "method": "GET", "path": "/api/v1/tasks", "headers": [],
                       "query_string": b"", "state": {"principal": None}})
    with pytest.raises(Exception) as raised:
        require_principal(request)
    assert getattr(raised.value, "status_code", None) == 401
