"""RELIABILITY 47 on the postal bundle, across pages and API: a user of another department asking
for a complaint by id gets 404 everywhere (page, API record, history, export, list), while the
department handling it sees it. The per-area tests (test_record_pages, test_api) cover the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from web.app import create_app
from web.auth import SESSION_COOKIE, issue_session
from web.system import System, boot

from tests.web.auth_kit import POSTAL, Seconds, new_clock

COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


@pytest.fixture
def app(system: System):  # type: ignore[no-untyped-def]
    return create_app(system, secret="test-secret", monotonic=Seconds())


def as_user(app, username: str) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, issue_session(app.state.web, username), domain="testserver.local")
    return client


@pytest.fixture
def complaint(app) -> dict:  # type: ignore[no-untyped-def, type-arg]
    created = TestClient(app).post("/api/v1/forms/complaint/records", json=COMPLAINT)
    assert created.status_code == 201
    return created.json()  # type: ignore[no-any-return]


def test_another_department_gets_404_for_the_complaint_everywhere(app, complaint: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    marketing = as_user(app, "marketing")
    record_id, query_no = complaint["id"], complaint["query_no"]
    assert marketing.get(f"/records/complaint/{record_id}").status_code == 404
    assert marketing.get(f"/api/v1/forms/complaint/records/{record_id}").status_code == 404
    assert marketing.get(f"/api/v1/forms/complaint/records/{record_id}/history").status_code == 404
    assert query_no not in marketing.get("/records/complaint").text
    assert query_no not in marketing.get("/records/complaint/export.csv").text
    listed = marketing.get("/api/v1/forms/complaint/records").json()
    assert all(item["id"] != record_id for item in listed["items"])


def test_the_handling_department_and_managers_see_it(app, complaint: dict) -> None:  # type: ignore[no-untyped-def, type-arg]
    for username in ("agent", "manager"):
        client = as_user(app, username)
        assert client.get(f"/records/complaint/{complaint['id']}").status_code == 200
        assert complaint["query_no"] in client.get("/records/complaint/export.csv").text
