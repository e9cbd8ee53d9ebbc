"""The walking skeleton over HTTP: health, submission API, record list page."""

from __future__ import annotations

import logging
import re

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from web.app import create_app
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}


@pytest.fixture
def system(tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


@pytest.fixture
def client(system: System) -> TestClient:
    return TestClient(create_app(system, secret="test-secret"), raise_server_exceptions=False)


def test_healthz_names_the_bundle_and_its_hash(client: TestClient, system: System) -> None:
    body = client.get("/healthz").json()
    assert body == {"status": "ok", "bundle": "postal_complaints", "version": system.bundle.version,
                    "hash": system.bundle.hash}


QUERY_NO = re.compile(r"TS20261123[2-9A-HJ-NP-Z]{6}")
"""The postal bundle's numbers: the day, then six characters drawn at random (RELIABILITY 45)."""


def test_posting_a_complaint_returns_its_query_number(client: TestClient) -> None:
    response = client.post("/api/v1/forms/complaint/records", json=COMPLAINT)
    assert response.status_code == 201
    assert QUERY_NO.fullmatch(response.json()["query_no"])


def test_query_numbers_of_one_day_share_its_date_and_differ(client: TestClient) -> None:
    numbers = [client.post("/api/v1/forms/complaint/records", json=COMPLAINT).json()["query_no"]
               for _ in range(3)]
    assert all(QUERY_NO.fullmatch(number) for number in numbers) and len(set(numbers)) == 3


def test_a_retried_post_with_the_same_key_creates_one_record(client: TestClient, system: System) -> None:
    headers = {"Idempotency-Key": "c0ffee-1"}
    first = client.post("/api/v1/forms/complaint/records", json=COMPLAINT, headers=headers)
    again = client.post("/api/v1/forms/complaint/records", json=COMPLAINT, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["query_no"] == again.json()["query_no"]
    assert system.forms.count("complaint") == 1


def test_the_same_key_with_a_different_body_is_refused_with_422(client: TestClient) -> None:
    headers = {"Idempotency-Key": "c0ffee-2"}
    client.post("/api/v1/forms/complaint/records", json=COMPLAINT, headers=headers)
    other = client.post("/api/v1/forms/complaint/records", json={**COMPLAINT, "region": "north"},
                        headers=headers)
    assert other.status_code == 422
    assert "different submission" in other.json()["error"]


def test_an_invalid_complaint_gets_every_field_error_and_stores_nothing(client: TestClient, system: System) -> None:
    response = client.post("/api/v1/forms/complaint/records", json={"contact_phone": "12345"})
    assert response.status_code == 422
    assert {"customer_name", "contact_phone", "category", "description"} <= set(response.json()["fields"])
    assert system.forms.count("complaint") == 0


def test_error_messages_follow_the_requested_language(client: TestClient) -> None:
    response = client.post("/api/v1/forms/complaint/records?lang=zh-CN", json={})
    assert response.status_code == 422
    assert any("\u4e00" <= ch <= "\u9fff" for ch in response.json()["fields"]["customer_name"][0])


def test_an_unknown_form_is_404(client: TestClient) -> None:
    assert client.post("/api/v1/forms/nope/records", json={}).status_code == 404


def test_a_body_that_is_not_json_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/forms/complaint/records", content=b"{oops",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_an_oversized_body_is_refused(client: TestClient) -> None:
    response = client.post("/api/v1/forms/complaint/records", content=b"x" * (2 * 1024 * 1024))
    assert response.status_code == 413


def signed_in(client: TestClient, username: str = "admin") -> TestClient:
    """The client with a session of `username` (the record pages are for staff)."""
    from web.auth import SESSION_COOKIE, issue_session

    client.cookies.set(SESSION_COOKIE, issue_session(client.app.state.web, username))  # type: ignore[attr-defined]
    return client


def test_the_record_list_page_shows_submitted_complaints(client: TestClient) -> None:
    query_no = client.post("/api/v1/forms/complaint/records", json=COMPLAINT).json()["query_no"]
    page = signed_in(client).get("/records/complaint?lang=zh-CN")
    assert page.status_code == 200
    assert query_no in page.text and "华东电子商务有限公司" in page.text
    assert "运输超时" in page.text  # the category's label, not its stored value


def test_customer_text_is_escaped_on_the_page(client: TestClient) -> None:
    client.post("/api/v1/forms/complaint/records",
                json={**COMPLAINT, "customer_name": "<script>alert(1)</script>"})
    page = signed_in(client).get("/records/complaint")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;" in page.text


def test_responses_carry_security_headers(client: TestClient) -> None:
    headers = client.get("/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def crashed_record_list(system: System, lang: str) -> Any:
    """The record list's answer in `lang` when reading the records raises."""
    app = create_app(system, secret="test-secret")

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    system.forms.list = explode  # type: ignore[method-assign]
    return signed_in(TestClient(app, raise_server_exceptions=False)).get(f"/records/complaint?lang={lang}")


def test_a_crash_shows_a_reference_not_a_stack_trace(system: System) -> None:
    response = crashed_record_list(system, "en")
    assert response.status_code == 500
    assert "reference" in response.text and "secret internals" not in response.text


def test_a_crash_on_a_chinese_page_is_explained_in_chinese(system: System) -> None:
    response = crashed_record_list(system, "zh-CN")
    assert response.status_code == 500
    assert "<p>系统内部出错（参考编号 " in response.text and "went wrong" not in response.text


def test_a_database_that_refuses_is_a_503_and_one_log_line_with_its_reason(
        system: System, caplog: pytest.LogCaptureFixture) -> None:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    app = create_app(system, secret="test-secret")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OperationalError("INSERT INTO rec_complaint (contact_phone) VALUES (?)", ("13800000000",),
                               sqlite3.OperationalError("database or disk is full"))

    system.forms.list = disk_full  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="web.app"):
        response = signed_in(TestClient(app, raise_server_exceptions=False)).get("/records/complaint?lang=en")
    assert response.status_code == 503 and "reference" in response.text
    (record,) = caplog.records
    assert record.getMessage().endswith("on GET /records/complaint: the database refused: database or disk is full")
    assert record.exc_info is None and "13800000000" not in caplog.text


def test_a_disk_that_is_full_under_the_files_is_a_503_and_one_log_line_naming_it(
        system: System, caplog: pytest.LogCaptureFixture) -> None:
    import errno
    import os

    app = create_app(system, secret="test-secret")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/srv/docket/files/tmp/upload-1")

    system.forms.list = disk_full  # type: ignore[method-assign]
    with caplog.at_level("ERROR", logger="web.app"):
        response = signed_in(TestClient(app, raise_server_exceptions=False)).get("/records/complaint")
    assert response.status_code == 503
    (record,) = caplog.records
    assert record.getMessage().endswith(
        "on GET /records/complaint: the disk refused: No space left on device: /srv/docket/files/tmp/upload-1")
    assert record.exc_info is None


def test_a_missing_page_says_so_in_the_readers_language_with_a_way_back(client: TestClient) -> None:
    # Not a customer page: a dead link to one leads to the progress lookup (tests/web/test_public_form.py).
    zh = client.get("/no-such-page?lang=zh-CN")
    assert zh.status_code == 404
    assert '<html lang="zh-CN">' in zh.text and "<h1>页面不存在</h1>" in zh.text
    assert 'href="/?lang=zh-CN" id="error-home">返回首页' in zh.text
    en = client.get("/no-such-page?lang=en")
    assert "<h1>Page not found</h1>" in en.text and "Back to the start page" in en.text



def test_the_favicon_browsers_ask_for_is_the_bundled_icon(client: TestClient) -> None:
    moved = client.get("/favicon.ico", follow_redirects=False)
    assert moved.status_code == 301 and moved.headers["location"] == "/static/favicon.svg"
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_healthz_is_503_when_the_database_cannot_be_reached_and_logs_the_reason_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # It answered ok without asking the database: a load balancer kept sending traffic to a
    # server whose database was gone.
    folder = tmp_path / "data"
    folder.mkdir()
    system = boot(POSTAL, db_url=f"sqlite:///{folder / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    client = TestClient(create_app(system, secret="test-secret"), raise_server_exceptions=False)
    assert client.get("/healthz").json()["status"] == "ok"
    system.db.dispose()
    folder.rename(tmp_path / "moved")  # the disk holding the database was unmounted
    with caplog.at_level(logging.WARNING, logger="web.app"):
        answers = [client.get("/healthz") for _ in range(3)]
    assert [a.status_code for a in answers] == [503] * 3
    assert answers[0].json()["status"] == "unavailable" and "reason" not in answers[0].json()  # anyone may ask
    (logged,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("health check")]
    assert logged.startswith("health check: the database refused: unable to open database file")
