"""`/metrics` tells Prometheus the server's vitals, only when the operator set a token, and
only to a request that carries it."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from engine.clock import ManualClock
from tests.flows.test_postal_flow import DELAY as COMPLAINT
from tests.web.auth_kit import POSTAL, new_clock
from web import metrics
from web.app import create_app
from web.system import System, boot

TOKEN = "prom-3f9a1c"


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def client(system: System, monkeypatch: pytest.MonkeyPatch, token: str | None = TOKEN) -> TestClient:
    if token is None:
        monkeypatch.delenv("DOCKET_METRICS_TOKEN", raising=False)
    else:
        monkeypatch.setenv("DOCKET_METRICS_TOKEN", token)
    return TestClient(create_app(system, secret="metrics-test"), raise_server_exceptions=False)


def scrape(system: System, monkeypatch: pytest.MonkeyPatch) -> str:
    answer = client(system, monkeypatch).get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return answer.text


def sample(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert found, f"{name} is not in the scrape"
    return float(found.group(1))


def test_without_a_token_set_the_address_is_not_there(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client(system, monkeypatch, token=None).get("/metrics").status_code == 404


@pytest.mark.parametrize("sent", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_a_request_without_the_token_is_refused(system: System, monkeypatch: pytest.MonkeyPatch,
                                                 sent: str | None) -> None:
    answer = client(system, monkeypatch).get("/metrics", headers={"authorization": sent} if sent else {})
    assert answer.status_code == 401 and "docket_" not in answer.text


def test_the_scrape_names_the_bundle_and_says_the_database_answers(system: System,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    text = scrape(system, monkeypatch)
    assert sample(text, "docket_up") == 1 and sample(text, "docket_database_up") == 1
    assert f'docket_bundle_info{{bundle="postal_complaints",version="{system.bundle.version}"' in text
    assert "# TYPE docket_timers_late gauge" in text


def test_timers_nobody_fired_show_as_late(system: System, monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    clock.advance(timedelta(days=3))
    text = scrape(system, monkeypatch)
    assert sample(text, "docket_timers_late") >= 1 and sample(text, "docket_timers_lateness_seconds") > 3600
    assert sample(text, "docket_tasks_open") == 1 and sample(text, "docket_tasks_overdue") == 1
    assert sample(text, 'docket_outbox_messages{status="pending"}') >= 1


def test_a_database_that_does_not_answer_is_reported_not_raised(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(metrics, "read_vitals", refuse)
    text = scrape(system, monkeypatch)
    assert sample(text, "docket_database_up") == 0 and "docket_tasks_open" not in text


def admin_page(system: System) -> str:
    from tests.web.staff_kit import client_for

    page = client_for(system, "admin").get("/admin?lang=en")
    assert page.status_code == 200
    return page.text


def test_the_admin_overview_says_all_is_well_when_nothing_is_late(system: System) -> None:
    html = admin_page(system)
    assert 'id="health-ok"' in html and 'id="health-problems"' not in html


def test_the_admin_overview_warns_when_timers_are_late(system: System, clock: ManualClock) -> None:
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    clock.advance(timedelta(days=3))
    html = admin_page(system)
    assert re.search(r'id="health-problems">.*timers are \d+d \d+h past due.*is the scheduler running', html, re.S)
    assert re.search(r'id="health-tasks">1 <small>\(1 past', html)
