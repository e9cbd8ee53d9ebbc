"""CSRF, sign-in throttling, forwarded addresses, headers, cookie flags and error pages
(RELIABILITY 41, 44, 46, 54, 55)."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import transaction
from web.app import create_app
from web.auth import DEVICE_COOKIE, SESSION_COOKIE, require_principal
from web.system import System

from tests.web.auth_kit import (PASSWORD, Seconds, app_client, csrf_of, new_clock, postal_with_agent,
                                sign_in)

COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return postal_with_agent(tmp_path, clock)


@pytest.fixture
def client(system: System, seconds: Seconds) -> TestClient:
    return app_client(system, seconds)


def signed_in(client: TestClient) -> str:
    """Sign the client in as agent; returns a CSRF token of the session."""
    assert sign_in(client, "agent").status_code == 303
    return csrf_of(client.get("/signout").text)


def is_signed_in(client: TestClient) -> bool:
    return 'id="user-name"' in client.get("/signout").text


# -- CSRF (41) ---------------------------------------------------------------------------------

def test_a_post_without_the_token_is_refused(client: TestClient) -> None:
    signed_in(client)
    response = client.post("/signout", data={}, follow_redirects=False)
    assert response.status_code == 403
    assert is_signed_in(client)


def test_sign_in_itself_needs_the_token(client: TestClient) -> None:
    client.get("/signin")
    response = client.post("/signin", data={"username": "agent", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 403 and not is_signed_in(client)


def test_a_token_from_another_session_is_refused(client: TestClient, system: System, seconds: Seconds) -> None:
    other = TestClient(client.app)
    foreign_token = signed_in(other)
    signed_in(client)
    response = client.post("/signout", data={"csrf_token": foreign_token}, follow_redirects=False)
    assert response.status_code == 403 and is_signed_in(client)


def test_a_foreign_origin_is_refused_even_with_the_token(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/signout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"},
                           follow_redirects=False)
    assert response.status_code == 403 and is_signed_in(client)


def test_an_opaque_origin_is_refused(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/signout", data={"csrf_token": token}, headers={"Origin": "null"},
                           follow_redirects=False)
    assert response.status_code == 403


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_sec_fetch_site_from_elsewhere_is_refused(client: TestClient, site: str) -> None:
    token = signed_in(client)
    response = client.post("/signout", data={"csrf_token": token}, headers={"Sec-Fetch-Site": site},
                           follow_redirects=False)
    assert response.status_code == 403 and is_signed_in(client)


def test_a_same_origin_post_with_the_token_goes_through(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/signout", data={"csrf_token": token},
                           headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"},
                           follow_redirects=False)
    assert response.status_code == 303 and not is_signed_in(client)


def test_a_multipart_post_carries_the_token_in_its_fields(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/signout", data={"csrf_token": token}, files={"note": ("n.txt", b"x", "text/plain")},
                           follow_redirects=False)
    assert response.status_code == 303 and not is_signed_in(client)


def test_a_multipart_post_whose_token_comes_only_after_a_file_is_refused(client: TestClient) -> None:
    token = signed_in(client)
    boundary = "t" * 16
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="note"; filename="n.txt"\r\n\r\nx\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
            f"--{boundary}--\r\n").encode()
    response = client.post("/signout", content=body, follow_redirects=False,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 403 and is_signed_in(client)


def test_a_multipart_post_with_a_boundary_the_parser_refuses_is_refused_not_a_crash(client: TestClient) -> None:
    # The CSRF check reads a multipart body's first parts: python-multipart refused the boundary
    # in its constructor, and any page's POST answered 500, the sign-in page's to anyone.
    response = client.post("/signin", content=b"--x--\r\n",
                           headers={"content-type": "multipart/form-data; boundary=" + "a" * 300})
    assert response.status_code == 403


def test_the_api_with_a_session_cookie_needs_the_header(client: TestClient) -> None:
    token = signed_in(client)
    refused = client.post("/api/v1/forms/complaint/records", json=COMPLAINT)
    assert refused.status_code == 403 and "error" in refused.json()
    accepted = client.post("/api/v1/forms/complaint/records", json=COMPLAINT, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 201


def test_the_api_with_a_bearer_token_is_not_subject_to_csrf(client: TestClient) -> None:
    signed_in(client)
    response = client.post("/api/v1/forms/complaint/records", json=COMPLAINT,
                           headers={"Authorization": "Bearer integration-token"})
    assert response.status_code != 403


def test_the_public_form_keeps_working_for_a_signed_in_browser(client: TestClient, clock: ManualClock) -> None:
    signed_in(client)
    page = client.get("/f/complaint")
    ticket = re.search(r'name="_ticket" value="([^"]+)"', page.text)
    assert ticket
    clock.advance(timedelta(seconds=10))
    data = {**COMPLAINT, "occurred_at": "2026-11-20T10:30", "_ticket": ticket.group(1), "website": ""}
    response = client.post("/f/complaint", data=data, follow_redirects=False)
    assert response.status_code == 303


def test_get_requests_never_change_state(client: TestClient, system: System) -> None:
    signed_in(client)
    for path in ("/signout", "/signin", "/admin/users", "/admin/reload"):
        client.get(path)
    assert is_signed_in(client)


# -- sign-in throttling (44) and forwarded addresses (46) -------------------------------------

@pytest.fixture
def behind_proxy(monkeypatch: pytest.MonkeyPatch, system: System, seconds: Seconds) -> TestClient:
    """The TestClient peer is a trusted proxy, so X-Forwarded-For names the client."""
    monkeypatch.setenv("DOCKET_TRUSTED_PROXIES", "testclient")
    return TestClient(create_app(system, secret="test-secret", monotonic=seconds), raise_server_exceptions=False)


def attack(client: TestClient, addresses: list[str]) -> list[int]:
    token = csrf_of(client.get("/signin").text)
    statuses = []
    for address in addresses:
        response = client.post("/signin", data={"username": "agent", "password": "guess-guess-guess",
                                                "csrf_token": token},
                               headers={"X-Forwarded-For": address}, follow_redirects=False)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) >= 1
        statuses.append(response.status_code)
    return statuses


def test_guessing_one_account_from_many_addresses_is_throttled(behind_proxy: TestClient) -> None:
    statuses = attack(behind_proxy, [f"203.0.113.{i}" for i in range(100)])
    assert statuses.count(401) == 20 and statuses.count(429) == 80


def test_guessing_from_one_address_is_throttled(behind_proxy: TestClient) -> None:
    statuses = attack(behind_proxy, ["198.51.100.7"] * 100)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


def test_the_real_user_signs_in_from_their_browser_during_an_attack(behind_proxy: TestClient) -> None:
    real = TestClient(behind_proxy.app, raise_server_exceptions=False)
    assert sign_in(real, "agent", **{"X-Forwarded-For": "192.0.2.10"}).status_code == 303
    assert real.cookies.get(DEVICE_COOKIE)
    attack(behind_proxy, [f"203.0.113.{i}" for i in range(100)])
    attack(behind_proxy, ["198.51.100.7"] * 100)
    assert sign_in(real, "agent", **{"X-Forwarded-For": "192.0.2.10"}).status_code == 303


def test_a_new_browser_of_the_real_user_is_not_blocked_by_a_single_address_attack(behind_proxy: TestClient) -> None:
    attack(behind_proxy, ["198.51.100.7"] * 100)
    fresh = TestClient(behind_proxy.app, raise_server_exceptions=False)
    assert sign_in(fresh, "agent", **{"X-Forwarded-For": "192.0.2.99"}).status_code == 303


def test_unknown_accounts_are_throttled_like_real_ones(behind_proxy: TestClient) -> None:
    token = csrf_of(behind_proxy.get("/signin").text)
    statuses = [behind_proxy.post("/signin", data={"username": "ghost", "password": "guess-guess-guess",
                                                   "csrf_token": token},
                                  headers={"X-Forwarded-For": "198.51.100.8"}).status_code for _ in range(7)]
    assert statuses == [401] * 5 + [429] * 2


def test_the_throttle_lifts_after_its_window(behind_proxy: TestClient, seconds: Seconds) -> None:
    attack(behind_proxy, ["198.51.100.7"] * 6)
    seconds.now += 15 * 60 + 1
    assert attack(behind_proxy, ["198.51.100.7"]) == [401]


def test_guessing_from_many_addresses_of_one_ipv6_network_is_throttled_as_from_one(
        behind_proxy: TestClient) -> None:
    # A phone line or a cloud machine gets a whole /64: 2^64 addresses, a fresh budget each.
    statuses = attack(behind_proxy, [f"2001:db8:5:7::{i:x}" for i in range(1, 101)])
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}


def test_public_budgets_count_an_ipv6_network_as_one_client(behind_proxy: TestClient) -> None:
    def look(address: str, n: int) -> int:
        return behind_proxy.post("/track?lang=en", data={"query_no": f"TS20261123{n:05d}", "verify": "1234"},
                                 headers={"X-Forwarded-For": address}).status_code

    assert [look(f"2001:db8:5:7:{i:x}::1", i) for i in range(1, 22)] == [200] * 20 + [429]
    assert look("2001:db8:5:8::1", 99) == 200  # the next /64 is another client
    assert look("::ffff:198.51.100.7", 98) == look("198.51.100.7", 97) == 200


def test_a_forged_forwarded_for_from_a_non_proxy_does_not_reset_the_counter(client: TestClient) -> None:
    token = csrf_of(client.get("/signin").text)
    statuses = [client.post("/signin", data={"username": f"user{i}", "password": "guess-guess-guess",
                                             "csrf_token": token},
                            headers={"X-Forwarded-For": f"10.9.{i}.1"}).status_code for i in range(31)]
    assert statuses[-1] == 429 and statuses[:30].count(429) == 0


# -- headers and cookies (55) ------------------------------------------------------------------

PATHS = ["/", "/signin", "/track", "/healthz", "/static/docket.css", "/no-such-page",
         "/api/v1/forms/complaint/records", "/admin", "/admin/users"]


@pytest.mark.parametrize("path", PATHS)
def test_every_response_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    csp = response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp and "script-src 'self'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"]


def test_the_embeddable_form_may_be_framed_only_by_configured_sites(
        monkeypatch: pytest.MonkeyPatch, system: System) -> None:
    monkeypatch.setenv("DOCKET_EMBED_ORIGINS", "https://www.example-post.cn")
    client = TestClient(create_app(system, secret="test-secret"))
    csp = client.get("/f/complaint").headers["content-security-policy"]
    assert "frame-ancestors 'self' https://www.example-post.cn" in csp
    assert "x-frame-options" not in client.get("/f/complaint").headers


def _session_cookie_header(response: Response) -> str:
    found = [v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE + "=")]
    assert found, "no session cookie was set"
    return found[0]


def test_the_session_cookie_is_httponly_lax_and_secure_over_https(system: System) -> None:
    client = TestClient(create_app(system, secret="test-secret"), base_url="https://testserver")
    header = _session_cookie_header(sign_in(client, "agent"))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header


def test_secure_cookies_can_be_forced_behind_a_tls_proxy(monkeypatch: pytest.MonkeyPatch, system: System) -> None:
    monkeypatch.setenv("DOCKET_SECURE_COOKIES", "1")
    client = TestClient(create_app(system, secret="test-secret"))
    assert "Secure" in _session_cookie_header(client.get("/signin"))


def test_answers_over_https_tell_the_browser_to_keep_to_https(system: System) -> None:
    client = TestClient(create_app(system, secret="test-secret"), base_url="https://testserver")
    for path in ("/signin", "/f/complaint", "/api/v1/forms", "/no-such-page"):
        assert client.get(path).headers["strict-transport-security"] == "max-age=31536000"


def test_answers_behind_a_tls_proxy_tell_the_browser_to_keep_to_https(monkeypatch: pytest.MonkeyPatch,
                                                                      system: System) -> None:
    monkeypatch.setenv("DOCKET_SECURE_COOKIES", "1")
    client = TestClient(create_app(system, secret="test-secret"))
    assert client.get("/signin").headers["strict-transport-security"] == "max-age=31536000"


def test_plain_http_answers_carry_no_hsts(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/signin").headers


def test_plain_http_cookies_are_still_httponly_and_lax(client: TestClient) -> None:
    header = _session_cookie_header(sign_in(client, "agent"))
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" not in header


@pytest.mark.parametrize("path", ["/inbox", "/records/complaint", "/dashboards", "/api/v1/tasks",
                                  "/api/v1/forms/complaint/records"])
def test_a_signed_in_users_pages_are_not_stored_by_the_browser(client: TestClient, path: str) -> None:
    # Customers' names and phones stayed in the browser's cache, shown again by Back after
    # signing out at a shared counter.
    signed_in(client)
    assert client.get(path).headers["cache-control"] == "private, no-store"


def test_a_signed_in_answer_that_says_how_to_cache_keeps_its_own(client: TestClient) -> None:
    signed_in(client)
    assert client.get("/static/docket.css").headers.get("cache-control") != "private, no-store"
    assert client.get("/f/complaint/qr.svg").headers["cache-control"] == "public, max-age=3600"


def test_anonymous_public_pages_say_nothing_about_caching(client: TestClient) -> None:
    assert "cache-control" not in client.get("/f/complaint").headers


def test_the_sign_in_page_is_not_cached(client: TestClient) -> None:
    assert client.get("/signin").headers["cache-control"] == "no-store"


# -- errors (54) -------------------------------------------------------------------------------

def test_a_crash_in_a_signed_in_page_shows_a_reference_and_logs_the_traceback(
        system: System, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(system, secret="test-secret")

    async def broken(request: Request) -> Response:
        require_principal(request)
        raise RuntimeError("database exploded: secret detail")

    app.router.routes.insert(0, Route("/broken", broken))
    client = TestClient(app, raise_server_exceptions=False)
    sign_in(client, "agent")
    with caplog.at_level(logging.ERROR):
        response = client.get("/broken")
    assert response.status_code == 500
    assert "secret detail" not in response.text and "Traceback" not in response.text
    reference = re.search(r"(?:reference|参考编号) ([0-9a-f]{12})", response.text)
    assert reference, response.text
    logged = [r for r in caplog.records if reference.group(1) in r.getMessage()]
    assert logged and logged[0].exc_info and "database exploded" in str(logged[0].exc_info[1])
    assert response.headers["content-security-policy"]


def test_anonymous_visitors_of_a_signed_in_page_are_sent_to_sign_in(system: System) -> None:
    app = create_app(system, secret="test-secret")

    async def private(request: Request) -> Response:
        require_principal(request)
        return Response("secret")

    app.router.routes.insert(0, Route("/private", private))
    response = TestClient(app).get("/private?x=1", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/signin?next=%2Fprivate%3Fx%3D1"


def test_attempts_are_counted_before_the_password_check_so_parallel_guesses_cannot_slip_through() -> None:
    from web.auth import SignInThrottle

    seconds = Seconds()
    throttle = SignInThrottle(seconds)
    in_flight = [throttle.attempt("agent", "198.51.100.7", False) for _ in range(6)]  # none finished yet
    assert in_flight[:5] == [None] * 5 and in_flight[5] is not None and in_flight[5] > 0


def test_a_right_password_does_not_count_against_the_account() -> None:
    from web.auth import SignInThrottle

    throttle = SignInThrottle(Seconds())
    for i in range(40):
        assert throttle.attempt("agent", f"192.0.2.{i}", False) is None
        throttle.succeeded("agent", f"192.0.2.{i}", False)


def test_a_throttled_sign_in_says_how_long_to_wait(behind_proxy: TestClient) -> None:
    token = csrf_of(behind_proxy.get("/signin?lang=en").text)
    answers = [behind_proxy.post("/signin?lang=en", data={"username": "ghost", "password": "guess-guess-guess",
                                                          "csrf_token": token},
                                 headers={"X-Forwarded-For": "198.51.100.9"}) for _ in range(6)]
    wait = int(answers[-1].headers["retry-after"])
    assert answers[-1].status_code == 429 and wait > 60
    assert f"Too many failed sign-ins: try again in {-(-wait // 60)} minutes." in answers[-1].text


# -- errors (54) -------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/records/complaint/{n}", "/records/complaint/{n}/print/reply_letter.pdf",
                                  "/records/complaint/{n}/files/abc"])
def test_an_id_longer_than_the_database_holds_is_not_found(client: TestClient, path: str) -> None:
    signed_in(client)
    response = client.get(path.format(n="9" * 30), follow_redirects=False)
    assert response.status_code == 404


def test_an_incident_id_longer_than_the_database_holds_is_not_found(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post(f"/admin/incidents/timer/{'9' * 30}/retry", data={"csrf_token": token},
                           follow_redirects=False)
    assert response.status_code == 404


@pytest.mark.parametrize("path", ["/inbox?page=²", "/records/complaint?page=①", "/records/complaint/export.csv?page=²"])
def test_a_page_number_in_digits_that_are_not_ascii_is_the_first_page(client: TestClient, path: str) -> None:
    # str.isdigit() takes ² and ①, which int() refuses: the page answered 500.
    signed_in(client)
    assert client.get(path).status_code == 200


def test_a_task_number_in_digits_that_are_not_ascii_is_not_found(client: TestClient) -> None:
    token = signed_in(client)
    response = client.post("/tasks/²/claim", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 404


@pytest.mark.parametrize("before", ["²", "9" * 30])
def test_an_audit_page_cursor_that_is_no_id_shows_the_newest_entries(client: TestClient, before: str) -> None:
    from web.auth import issue_session

    client.cookies.set(SESSION_COOKIE, issue_session(client.app.state.web, "admin"))
    assert client.get("/admin/audit", params={"before": before}).status_code == 200


def test_a_form_posted_after_the_session_ended_leads_to_sign_in_and_back_to_its_page(
        client: TestClient, system: System) -> None:
    from web.auth import end_sessions_of

    token = signed_in(client)
    with transaction(system.db) as conn:
        end_sessions_of(conn, user_id(conn, "agent"))  # idle too long, or signed out in another tab
    response = client.post("/signout", data={"csrf_token": token}, follow_redirects=False,
                           headers={"Referer": "http://testserver/records/complaint/7?lang=zh-CN"})
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?ended=1&next=%2Frecords%2Fcomplaint%2F7%3Flang%3Dzh-CN"
    page = client.get(response.headers["location"] + "&lang=zh-CN").text
    assert "登录已失效，刚才提交的内容未保存。请重新登录后再提交一次。" in page
    assert 'name="next" value="/records/complaint/7?lang=zh-CN"' in page


def test_a_post_whose_ended_session_came_from_another_site_goes_back_to_the_start(
        client: TestClient, system: System) -> None:
    from web.auth import end_sessions_of

    token = signed_in(client)
    with transaction(system.db) as conn:
        end_sessions_of(conn, user_id(conn, "agent"))
    response = client.post("/signout", data={"csrf_token": token}, follow_redirects=False,
                           headers={"Referer": "https://evil.example/records/complaint/7"})
    assert response.headers["location"] == "/signin?ended=1&next=%2F"


def user_id(conn, username: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from engine.storage.tables import users

    return int(conn.execute(select(users.c.id).where(users.c.username == username)).scalar_one())



def test_a_form_of_a_page_opened_before_signing_in_again_says_so_and_leads_back(client: TestClient) -> None:
    old_token = signed_in(client)
    client.cookies.delete(SESSION_COOKIE)
    signed_in(client)  # signed in again (in another tab): the first page's token is not this session's
    response = client.post("/signout?lang=zh-CN", data={"csrf_token": old_token}, follow_redirects=False,
                           headers={"Referer": "http://testserver/records/complaint/7"})
    assert response.status_code == 403 and is_signed_in(client)
    assert '<p id="stale-form">此页面是在您重新登录之前打开的，刚才提交的内容未保存。请重新打开页面后再提交一次。</p>' in response.text
    assert '<a href="/records/complaint/7" id="stale-form-back">' in response.text
