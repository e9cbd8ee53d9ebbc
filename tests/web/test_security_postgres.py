"""RELIABILITY 54 on PostgreSQL: a value holding the NUL character (U+0000), which PostgreSQL
cannot store in text, is the client's mistake (400, or 422 at the field of a form), never a 500
and a logged traceback. SQLite stores it, so only PostgreSQL shows the difference where no field
checks the value first."""

from __future__ import annotations

import logging

import pytest
from starlette.testclient import TestClient

from web.system import System, boot

from tests.web.auth_kit import POSTAL, app_client, give_password, new_clock, sign_in

pytestmark = pytest.mark.postgres

COMPLAINT = {
    "customer_name": "华东电子\u0000商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}


@pytest.fixture
def system(postgres_url: str) -> System:
    booted = boot(POSTAL, db_url=postgres_url, clock=new_clock())
    give_password(booted, "agent")
    return booted


@pytest.fixture
def client(system: System) -> TestClient:
    return app_client(system)


def test_an_anonymous_submission_holding_a_nul_is_refused_at_its_field(client: TestClient,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.post("/api/v1/forms/complaint/records", json=COMPLAINT)
    assert response.status_code == 422 and "U+0000" in response.json()["fields"]["customer_name"][0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_user_name_holding_a_nul_is_400_on_sign_in(client: TestClient) -> None:
    assert sign_in(client, "ag\u0000ent").status_code == 400


def test_a_search_holding_a_nul_is_400(client: TestClient) -> None:
    assert sign_in(client, "agent").status_code == 303
    assert client.get("/records/complaint?q=a%00b").status_code == 400
    assert client.get("/api/v1/forms/complaint/records?q=a%00b").status_code == 400
