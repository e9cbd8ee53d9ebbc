"""The Incidents page offers Retry on a flow stopped by an incident, as it does for timers and
messages: the administrator mends the cause, presses it, and the record moves on."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import audit_log
from tests.engine.bundle_kit import MINI, write_bundle
from tests.flows.test_expression_incident import FAILING_ROUTE
from tests.web.staff_kit import client_for, post
from web.system import System, boot

WITH_ADMIN = MINI["bundle.yaml"].replace('''        roles:
          agent: {label: {zh-CN: 客服, en: Agent}}''', '''        roles:
          agent: {label: {zh-CN: 客服, en: Agent}}
          admin: {label: Admin, sees: all, admin: true}
        demo_users:
          - {username: root, roles: [admin]}''')


@pytest.fixture
def system(tmp_path: Path) -> System:
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": WITH_ADMIN, "flows/ticket_flow.yaml": FAILING_ROUTE})
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))


def stopped_ticket(system: System) -> tuple[int, int]:
    record = system.forms.submit("ticket", {"title": "printer", "amount": "0"}, actor="root").record_id
    (instance,) = system.flows.instances("ticket", record)
    assert instance["status"] == "incident"
    return record, int(instance["id"])


def test_a_flow_incident_has_a_retry_button(system: System) -> None:
    _record, instance_id = stopped_ticket(system)
    html = client_for(system, "root").get("/admin/incidents?lang=en").text
    assert f'action="/admin/incidents/flow/{instance_id}/retry?lang=en"' in html


def test_retrying_after_the_cause_is_mended_moves_the_record_on_and_is_audited(system: System) -> None:
    record, instance_id = stopped_ticket(system)
    with transaction(system.db) as conn:
        system.forms.update_fields(conn, "ticket", record, {"amount": 10}, actor="root")
    answer = post(client_for(system, "root"), f"/admin/incidents/flow/{instance_id}/retry?lang=en",
                  page="/admin/incidents")
    assert answer.status_code == 303 and "saved=1" in answer.headers["location"]
    assert system.flows.instances("ticket", record)[0]["status"] == "completed"
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.target, audit_log.c.detail)
                            .where(audit_log.c.action == "flow.retry")).all()
    assert rows == [("flow.retry", f"instance:{instance_id}", {"status": "completed"})]


def test_a_retry_that_fails_again_says_so(system: System) -> None:
    _record, instance_id = stopped_ticket(system)
    client = client_for(system, "root")
    answer = post(client, f"/admin/incidents/flow/{instance_id}/retry?lang=en", page="/admin/incidents")
    assert "saved=again" in answer.headers["location"]
    assert 'id="retry-again"' in client.get(answer.headers["location"]).text
