"""An administrator retries a flow stopped by an incident once its cause is mended: the node is
entered again and the instance runs on, or stops with a new incident; the old one is resolved."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.errors import ConflictError
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import incidents
from tests.flows.test_expression_incident import client  # noqa: F401 - the fixture
from web.system import System


def stopped(client: TestClient) -> tuple[System, int, int]:  # noqa: F811
    """A ticket whose decision divided by its amount, 0: the instance stands at an incident."""
    record = client.post("/api/v1/forms/ticket/records", json={"title": "printer", "amount": "0"}).json()["id"]
    system = client.app.state.system  # type: ignore[attr-defined]
    (instance,) = system.flows.instances("ticket", record)
    assert instance["status"] == "incident"
    return system, record, int(instance["id"])


def open_incidents(system: System) -> list[str]:
    with read_transaction(system.db) as conn:
        return list(conn.execute(select(incidents.c.ref).where(incidents.c.resolved_at.is_(None))).scalars())


def test_a_retry_after_the_cause_is_mended_runs_the_flow_on(client: TestClient) -> None:  # noqa: F811
    system, record, instance_id = stopped(client)
    with transaction(system.db) as conn:
        system.forms.update_fields(conn, "ticket", record, {"amount": 10}, actor="max")
    assert system.flows.retry_incident(instance_id, actor="root") == "completed"
    (instance,) = system.flows.instances("ticket", record)
    assert (instance["status"], instance["outcome"]) == ("completed", "completed")
    assert open_incidents(system) == []
    (retried,) = [h for h in system.forms.history("ticket", record) if h["kind"] == "flow.retried"]
    assert (retried["actor"], retried["node"]) == ("root", "route")


def test_a_retry_that_fails_again_stops_at_a_new_incident(client: TestClient) -> None:  # noqa: F811
    system, record, instance_id = stopped(client)
    assert system.flows.retry_incident(instance_id, actor="root") == "incident"
    assert open_incidents(system) == [f"instance:{instance_id}"]
    with read_transaction(system.db) as conn:
        assert conn.execute(select(incidents.c.id).where(incidents.c.resolved_at.is_not(None))).scalar()


def test_a_running_instance_is_not_retried(client: TestClient) -> None:  # noqa: F811
    record = client.post("/api/v1/forms/ticket/records", json={"title": "printer", "amount": "10"}).json()["id"]
    system = client.app.state.system  # type: ignore[attr-defined]
    (instance,) = system.flows.instances("ticket", record)
    with pytest.raises(ConflictError):
        system.flows.retry_incident(int(instance["id"]), actor="root")
