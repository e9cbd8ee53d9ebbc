"""A condition that fails while a flow runs puts the instance into an incident; nothing crashes."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import incidents
from tests.engine.bundle_kit import MINI, write_bundle
from web.app import create_app
from web.system import boot

FAILING_ROUTE = MINI["flows/ticket_flow.yaml"].replace(
    '''    handle:
            type: task
            assign: {role: agent}
            fields: [urgency]
            next: route''', '''    handle:
            type: start
            next: route''').replace('when: urgency == "high"', 'when: 100 / amount > 1')


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    public_form = MINI["forms/ticket.yaml"].replace("label: Ticket", "label: Ticket\n        public: true")
    root = write_bundle(tmp_path / "bundle", {"flows/ticket_flow.yaml": FAILING_ROUTE,
                                              "forms/ticket.yaml": public_form})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    app = create_app(system, secret="test-secret")
    app.state.system = system
    return TestClient(app, raise_server_exceptions=False)


def test_a_division_by_zero_in_a_decision_is_an_incident_not_a_500(client: TestClient) -> None:
    response = client.post("/api/v1/forms/ticket/records", json={"title": "printer", "amount": "0"})
    assert response.status_code == 201
    system = client.app.state.system  # type: ignore[attr-defined]
    (instance,) = system.flows.instances("ticket", response.json()["id"])
    assert instance["status"] == "incident" and instance["current"] == ["route"]
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(select(incidents.c.message)).scalars()
    assert message.startswith("route: ")
    assert "100 / amount > 1" in message and "ticket_flow.yaml:14:15:" in message


def test_the_same_condition_with_a_value_moves_on(client: TestClient) -> None:
    response = client.post("/api/v1/forms/ticket/records", json={"title": "printer", "amount": "10"})
    system = client.app.state.system  # type: ignore[attr-defined]
    (instance,) = system.flows.instances("ticket", response.json()["id"])
    assert (instance["status"], instance["outcome"]) == ("completed", "completed")


@pytest.mark.parametrize(("condition", "reason"), [
    ("title != null and {'printer':1}[title + '-x'] > 0", "no key 'printer-x'"),
    ("title + 1 > 0", "cannot add text and a number"),
])
def test_a_missing_key_or_text_plus_number_in_a_decision_is_an_incident_at_its_position(
        tmp_path: Path, condition: str, reason: str) -> None:
    """RELIABILITY 7: whatever the condition fails on, the answer is a 201, the instance waits
    at the decision in an incident naming the condition and its file:line:col, and the record
    stays as submitted (the failed move is rolled back, not half done)."""
    public_form = MINI["forms/ticket.yaml"].replace("label: Ticket", "label: Ticket\n        public: true")
    flow = FAILING_ROUTE.replace("when: 100 / amount > 1", f"when: {condition}")
    root = write_bundle(tmp_path / "bundle", {"flows/ticket_flow.yaml": flow, "forms/ticket.yaml": public_form})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    client = TestClient(create_app(system, secret="test-secret"), raise_server_exceptions=False)
    response = client.post("/api/v1/forms/ticket/records", json={"title": "printer", "amount": "10"})
    assert response.status_code == 201
    (instance,) = system.flows.instances("ticket", response.json()["id"])
    assert (instance["status"], instance["current"]) == ("incident", ["route"])
    assert system.flows.open_tasks("ticket", response.json()["id"]) == []
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(select(incidents.c.message)).scalars()
    assert reason in message and condition in message and "ticket_flow.yaml:14:15:" in message
