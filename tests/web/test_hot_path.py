"""The per-request shortcuts of the API submission path answer exactly what the Starlette calls
they replace answer: raw scope reads (web.scope), the session cookie, client addresses, the
JSON answer's bytes, the security headers, route order, and the thread hop (web.offload)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
import time
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.testclient import TestClient

from web.auth import SESSION_COOKIE, _session_cookie, principal_of
from web.json_answer import JSONAnswer
from web.offload import Offload
from web.ratelimit import client_address
from web.scope import header, state_value
from web.security import SecurityHeaders
from web.system import System

from tests.web.api_kit import COMPLAINT, RECORDS, watch_submissions, client, system  # noqa: F401 - fixtures


def scope_with(headers: list[tuple[bytes, bytes]], **extra: Any) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/x", "headers": headers, "query_string": b"", **extra}


# -- raw scope reads -----------------------------------------------------------------------------

HEADERS = [(b"host", b"example.org"), (b"x-twice", b"first"), (b"x-twice", b"second"),
           (b"x-latin", "café".encode("latin-1")), (b"x-empty", b"")]


@pytest.mark.parametrize("name", ["host", "x-twice", "x-latin", "x-empty", "origin", "authorization"])
def test_header_answers_what_request_headers_get_answers(name: str) -> None:
    scope = scope_with(list(HEADERS))
    assert header(scope, name.encode()) == Request(scope).headers.get(name)


def test_state_value_answers_what_getattr_on_request_state_answers() -> None:
    scope = scope_with([], state={"principal": "p", "auth": "token"})
    request = Request(scope)
    for key in ("principal", "auth", "missing"):
        assert state_value(scope, key) == getattr(request.state, key, None)
    assert state_value(scope_with([]), "principal") is None  # no state at all
    assert principal_of(Request(scope)) == "p"


@pytest.mark.parametrize("cookies", [
    [],
    [b"other=1"],
    [f"{SESSION_COOKIE}=a.abcdefghij".encode()],
    [f"x=1; {SESSION_COOKIE}=tok; y=2".encode()],
    [f"{SESSION_COOKIE}=first".encode(), b"other=2", f"{SESSION_COOKIE}=second".encode()],
    [f"{SESSION_COOKIE}=first".encode(), b"unrelated=3"],
    [f'{SESSION_COOKIE}="quoted\\073value"'.encode()],
])
def test_the_session_cookie_is_read_as_request_cookies_reads_it(cookies: list[bytes]) -> None:
    scope = scope_with([(b"cookie", c) for c in cookies])
    assert _session_cookie(scope) == Request(scope).cookies.get(SESSION_COOKIE, "")


def test_client_address_takes_any_collection_of_proxies() -> None:
    forwarded = scope_with([(b"x-forwarded-for", b"203.0.113.9, 10.0.0.2")], client=("10.0.0.1", 5000))
    request = Request(forwarded)
    for proxies in (("10.0.0.1", "10.0.0.2"), frozenset({"10.0.0.1", "10.0.0.2"}), ["10.0.0.1", "10.0.0.2"]):
        assert client_address(request, proxies) == "203.0.113.9"
    assert client_address(request, ()) == "10.0.0.1"
    assert client_address(request, frozenset()) == "10.0.0.1"
    assert client_address(Request(scope_with([]))) == "unknown"  # no peer in the scope


# -- answers -------------------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    {"id": 1, "form": "complaint", "query_no": "TS-1", "created": True},
    {"error": "中文 and \u2028 and \"quotes\"", "fields": {"a": ["x", "y"]}},
    [1, 2.5, None, False, "😀"],
])
def test_json_answer_sends_the_bytes_json_response_sends(content: Any) -> None:
    ours, theirs = JSONAnswer(content, 201, headers={"Location": "/x"}), JSONResponse(content, 201, headers={"Location": "/x"})
    assert ours.body == theirs.body
    assert ours.raw_headers == theirs.raw_headers


def test_json_answer_refuses_what_json_response_refuses() -> None:
    for bad in (float("nan"), {"x": float("inf")}):
        with pytest.raises(ValueError):
            JSONResponse(bad)
        with pytest.raises(ValueError):
            JSONAnswer(bad)


def sent_headers(response_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers SecurityHeaders sends for a response that starts with `response_headers`."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": response_headers})

    out: list[Any] = []

    async def send(message: Any) -> None:
        out.append(message)

    asyncio.run(SecurityHeaders(app)(scope_with([]), None, send))  # type: ignore[arg-type]
    return list(out[0]["headers"])


def test_security_headers_are_added_once_and_frame_rules_kept() -> None:
    added = dict(sent_headers([]))
    assert added[b"x-frame-options"] == b"DENY" and b"frame-ancestors 'none'" in added[b"content-security-policy"]
    assert added[b"x-content-type-options"] == b"nosniff" and added[b"referrer-policy"] == b"same-origin"
    # A header the response set itself is kept, whatever its case.
    own = sent_headers([(b"Referrer-Policy", b"no-referrer")])
    assert [v for k, v in own if k.lower() == b"referrer-policy"] == [b"no-referrer"]
    # An embeddable page (frame-ancestors naming its framers) gets no X-Frame-Options.
    embeddable = sent_headers([(b"content-security-policy", b"default-src 'self'; frame-ancestors 'self' https://a.example")])
    assert b"x-frame-options" not in dict(embeddable)
    # The last CSP header decides, as before.
    twice = sent_headers([(b"content-security-policy", b"frame-ancestors https://a.example"),
                          (b"content-security-policy", b"frame-ancestors 'none'")])
    assert dict(twice)[b"x-frame-options"] == b"DENY"


# -- over HTTP -----------------------------------------------------------------------------------

def test_a_submission_is_answered_as_before(client: TestClient) -> None:
    response = client.post(RECORDS, json=COMPLAINT)
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "form", "query_no", "created"} and body["created"] is True
    assert response.headers["location"] == f"{RECORDS}/{body['id']}"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-type"] == "application/json"


def test_a_submission_route_still_answers_405_with_the_methods_of_its_path(client: TestClient) -> None:
    response = client.put(RECORDS, json=COMPLAINT)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"  # the first route of the path, as before the reorder
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin"


def test_the_locale_comes_from_lang_or_accept_language(client: TestClient) -> None:
    bad = {**COMPLAINT, "contact_phone": "12"}
    english = client.post(RECORDS + "?lang=en", json=bad, headers={"accept-language": "zh-CN"}).json()
    chinese = client.post(RECORDS, json=bad, headers={"accept-language": "zh-CN,en;q=0.5"}).json()
    assert english["fields"]["contact_phone"] != chinese["fields"]["contact_phone"]
    assert client.post(RECORDS, json=bad).json()["fields"] == client.post(RECORDS + "?x=1", json=bad).json()["fields"]


# -- the thread hop ------------------------------------------------------------------------------

def test_offload_runs_off_the_loop_thread_and_returns_the_result() -> None:
    pool = Offload(4, name="test-offload")

    def add(a: int, *, b: int) -> tuple[int, int]:
        return a + b, threading.get_ident()

    async def main() -> tuple[int, int]:
        return await pool.run(add, 2, b=3)

    result, thread = asyncio.run(main())
    assert result == 5 and thread != threading.get_ident()


def test_offload_raises_the_calls_own_exception() -> None:
    pool = Offload(2, name="test-offload")

    class Refused(Exception):
        pass

    def fail() -> None:
        raise Refused("no")

    def stop() -> None:
        raise StopIteration

    async def main() -> None:
        with pytest.raises(Refused, match="no"):
            await pool.run(fail)
        with pytest.raises(RuntimeError, match="StopIteration"):
            await pool.run(stop)
        assert await pool.run(lambda: "still serving") == "still serving"

    asyncio.run(main())


def test_offload_copies_the_callers_context_variables() -> None:
    pool = Offload(2, name="test-offload")
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    def read_and_set() -> str:
        seen = var.get()
        var.set("changed in the thread")
        return seen

    async def main() -> tuple[str, str]:
        var.set("caller's")
        seen = await pool.run(read_and_set)
        return seen, var.get()

    assert asyncio.run(main()) == ("caller's", "caller's")


def test_offload_runs_at_most_max_workers_calls_at_once_and_serves_every_call() -> None:
    pool = Offload(3, name="test-offload")
    running = 0
    most = 0
    lock = threading.Lock()

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1
        return i

    async def main() -> list[int]:
        return list(await asyncio.gather(*(pool.run(work, i) for i in range(30))))

    assert asyncio.run(main()) == list(range(30))
    assert most == 3 and pool._started == 3


def test_offload_starts_a_thread_only_when_none_is_idle() -> None:
    pool = Offload(10, name="test-offload")

    async def main() -> None:
        for _ in range(20):  # one at a time: the first thread serves them all
            await pool.run(time.sleep, 0.001)

    asyncio.run(main())
    assert pool._started == 1


def test_offload_serves_loops_one_after_another() -> None:
    pool = Offload(2, name="test-offload")

    async def main(i: int) -> int:
        return await pool.run(lambda: i * 2)

    assert [asyncio.run(main(i)) for i in range(3)] == [0, 2, 4]


def test_a_cancelled_caller_does_not_break_the_pool() -> None:
    pool = Offload(1, name="test-offload")
    release = threading.Event()

    async def main() -> str:
        task = asyncio.ensure_future(pool.run(release.wait, 5))
        await asyncio.sleep(0.01)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await pool.run(lambda: "next")

    assert asyncio.run(main()) == "next"


def test_submissions_answer_through_the_pool_while_others_run(client: TestClient, system: System) -> None:
    """Several submissions at once (threads of the test client) are all stored and answered."""
    results: list[int] = []

    def post(i: int) -> None:
        results.append(client.post(RECORDS, json={**COMPLAINT, "contact_name": f"客户{i}"}).status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [201] * 8
    assert system.forms.count("complaint") == 8


def test_json_body_limits_are_unchanged(client: TestClient) -> None:
    assert client.post(RECORDS, content=b"{}", headers={"content-type": "text/plain"}).status_code == 415
    assert client.post(RECORDS, content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    assert client.post(RECORDS, content=b"[]", headers={"content-type": "application/json"}).status_code == 400
    big = json.dumps({**COMPLAINT, "description": "x" * (1024 * 1024)})
    assert client.post(RECORDS, content=big, headers={"content-type": "application/json"}).status_code == 413
    assert client.post(RECORDS, json=COMPLAINT, headers={"idempotency-key": "k" * 101}).status_code == 400



def test_an_api_submission_runs_off_the_event_loop_thread(client: TestClient, system: System,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    on_loop = watch_submissions(system, monkeypatch)
    assert client.post(RECORDS, json=COMPLAINT).status_code == 201
    assert client.post(RECORDS, json={**COMPLAINT, "contact_phone": "1"}).status_code == 422
    assert on_loop == [False, False]


def test_the_authorization_header_is_read_as_before(client: TestClient, system: System) -> None:
    from tests.web.api_kit import token_for

    token = token_for(system, "agent")
    assert client.get(RECORDS, headers={"authorization": f"bearer {token}"}).status_code == 200  # any case
    assert client.get(RECORDS, headers={"authorization": f"BEARER  {token} "}).status_code == 200
    assert client.get(RECORDS, headers={"authorization": "Bearer dk_unknown"}).status_code == 401
    # Another scheme is not a token: the caller is anonymous (401 on a list, 201 on a public submission).
    assert client.get(RECORDS, headers={"authorization": "Basic YWdlbnQ6eA=="}).status_code == 401
    assert client.post(RECORDS, json=COMPLAINT, headers={"authorization": "Basic YWdlbnQ6eA=="}).status_code == 201
    # A token sent by a client that answers in latin-1 bytes is refused, not a crash.
    odd = client.get(RECORDS, headers=[(b"authorization", "Bearer dk_café".encode("latin-1"))])
    assert odd.status_code == 401
