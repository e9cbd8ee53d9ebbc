"""Withdrawing and reopening a record from its page (issue 5, runtime: "withdraw and reopen").

The submitter (or an administrator) withdraws a running record; an administrator, or a role
the flow's `reopen:` names, reopens an ended one at a step the flow allows, saying why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.storage.db import read_transaction
from engine.storage.tables import sla_clocks
from tests.web.api_kit import Api
from tests.web.auth_kit import app_client, csrf_of, give_password, new_clock, postal_with_agent, sign_in
from web.system import System

COMPLAINT = {"customer_name": "华中物流", "contact_name": "刘女士", "contact_phone": "027-88886666",
             "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"}


@pytest.fixture
def system(tmp_path: Path) -> System:
    system = postal_with_agent(tmp_path, new_clock())
    for username in ("accounts", "manager", "admin", "director"):
        give_password(system, username)
    return system


@pytest.fixture
def record_id(system: System) -> int:
    return system.forms.submit("complaint", COMPLAINT, actor="accounts").record_id


def client_of(system: System, username: str) -> TestClient:
    client = app_client(system)
    sign_in(client, username)
    return client


def post(client: TestClient, record_id: int, action: str, **data: str):  # type: ignore[no-untyped-def]
    page = client.get(f"/records/complaint/{record_id}")
    return client.post(f"/records/complaint/{record_id}/{action}", data={**data, "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)


def flow_status(system: System, record_id: int) -> str:
    return str(system.flows.instances("complaint", record_id)[-1]["status"])


def test_the_submitter_withdraws_a_running_record_and_its_tasks_are_cancelled(system: System, record_id: int) -> None:
    accounts = client_of(system, "accounts")
    assert 'id="withdraw"' in accounts.get(f"/records/complaint/{record_id}").text
    answer = post(accounts, record_id, "withdraw", comment="客户已自行解决")
    assert answer.headers["location"] == f"/records/complaint/{record_id}?notice=withdrawn"
    assert flow_status(system, record_id) == "withdrawn"
    assert system.forms.get("complaint", record_id)["status"] == "withdrawn"
    assert system.flows.open_tasks("complaint", record_id) == []
    (entry,) = [h for h in system.forms.history("complaint", record_id) if h["kind"] == "flow.withdrawn"]
    assert entry["actor"] == "accounts" and entry["data"]["comment"] == "客户已自行解决"


def test_someone_who_did_not_submit_the_record_may_not_withdraw_it(system: System, record_id: int) -> None:
    agent = client_of(system, "agent")
    assert 'id="withdraw"' not in agent.get(f"/records/complaint/{record_id}").text
    answer = post(agent, record_id, "withdraw")
    assert answer.headers["location"].endswith("?notice=not_allowed")
    assert flow_status(system, record_id) == "running"


def test_an_administrator_may_withdraw_any_record(system: System, record_id: int) -> None:
    post(client_of(system, "admin"), record_id, "withdraw", comment="重复提交")
    assert flow_status(system, record_id) == "withdrawn"


def test_a_role_the_flow_names_reopens_an_ended_record_at_a_step_it_allows(system: System, record_id: int) -> None:
    system.flows.withdraw("complaint", record_id, actor="accounts")
    manager = client_of(system, "manager")
    page = manager.get(f"/records/complaint/{record_id}").text
    assert 'id="reopen"' in page
    assert all(f'<option value="{node}">' in page for node in ("accept", "propose", "reply"))
    assert '<option value="route">' not in page
    answer = post(manager, record_id, "reopen", at="accept", comment="客户来电：问题仍未解决")
    assert answer.headers["location"] == f"/records/complaint/{record_id}?notice=reopened"
    assert flow_status(system, record_id) == "running"
    assert [t["node"] for t in system.flows.open_tasks("complaint", record_id)] == ["accept"]
    (entry,) = [h for h in system.forms.history("complaint", record_id) if h["kind"] == "flow.reopened"]
    assert entry["actor"] == "manager" and entry["data"]["comment"] == "客户来电：问题仍未解决"


def test_a_role_the_flow_does_not_name_may_not_reopen(system: System, record_id: int) -> None:
    system.flows.withdraw("complaint", record_id, actor="accounts")
    director = client_of(system, "director")  # sees every record; not among the flow's reopen roles
    assert 'id="reopen"' not in director.get(f"/records/complaint/{record_id}").text
    assert post(director, record_id, "reopen", at="accept", comment="x").headers["location"].endswith("?notice=not_allowed")
    assert flow_status(system, record_id) == "withdrawn"


def test_a_reopen_at_a_step_the_flow_does_not_allow_is_refused(system: System, record_id: int) -> None:
    system.flows.withdraw("complaint", record_id, actor="accounts")
    answer = post(client_of(system, "manager"), record_id, "reopen", at="route", comment="x")
    assert answer.headers["location"].endswith("?notice=not_allowed")
    assert flow_status(system, record_id) == "withdrawn"


def test_a_reopen_without_a_reason_is_refused(system: System, record_id: int) -> None:
    system.flows.withdraw("complaint", record_id, actor="accounts")
    assert post(client_of(system, "manager"), record_id, "reopen", at="accept", comment=" ").status_code == 400
    assert flow_status(system, record_id) == "withdrawn"


def test_a_running_record_offers_no_reopen(system: System, record_id: int) -> None:
    manager = client_of(system, "manager")
    assert 'id="reopen"' not in manager.get(f"/records/complaint/{record_id}").text
    assert post(manager, record_id, "reopen", at="accept", comment="x").headers["location"].endswith("?notice=not_allowed")


def clocks(system: System, record_id: int) -> dict[str, str]:
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(sla_clocks.c.target, sla_clocks.c.status)
                            .where(sla_clocks.c.form == "complaint", sla_clocks.c.record_id == record_id)).all()
    return dict(rows)


def test_a_withdrawn_complaints_clocks_wait_and_run_on_when_it_is_reopened(system: System, record_id: int) -> None:
    assert clocks(system, record_id) == {"response": "running", "resolution": "running"}
    post(client_of(system, "accounts"), record_id, "withdraw")
    # never answered, never resolved: no warning, no escalation, and not counted as met (the
    # postal resolution stops at a resolved end only; `withdrawn` is a pause status)
    assert clocks(system, record_id) == {"response": "paused", "resolution": "paused"}
    post(client_of(system, "manager"), record_id, "reopen", at="accept", comment="客户来电")
    assert clocks(system, record_id) == {"response": "running", "resolution": "running"}
    assert "sla.restarted" not in [h["kind"] for h in system.forms.history("complaint", record_id)]  # ran on


# -- the same over the JSON API ---------------------------------------------------------------
def api(system: System, username: str) -> Api:
    return Api(app_client(system), system, username)


def test_the_api_withdraws_for_the_submitter_and_answers_the_record(system: System, record_id: int) -> None:
    answer = api(system, "accounts").post(f"/api/v1/forms/complaint/records/{record_id}/withdraw",
                                          json={"comment": "重复提交"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "withdrawn" and flow_status(system, record_id) == "withdrawn"


def test_the_api_refuses_a_withdrawal_by_someone_else_and_a_second_one(system: System, record_id: int) -> None:
    url = f"/api/v1/forms/complaint/records/{record_id}/withdraw"
    assert api(system, "director").post(url, json={}).status_code == 403
    assert api(system, "accounts").post(url, json={}).status_code == 200
    assert api(system, "accounts").post(url, json={}).status_code == 409


def test_the_api_reopens_at_an_allowed_step_and_names_the_steps_otherwise(system: System, record_id: int) -> None:
    system.flows.withdraw("complaint", record_id, actor="accounts")
    url = f"/api/v1/forms/complaint/records/{record_id}/reopen"
    manager = api(system, "manager")
    wrong = manager.post(url, json={"at": "route", "comment": "客户来电"})
    assert wrong.status_code == 400 and wrong.json()["fields"] == {"at": ["one of: accept, propose, reply"]}
    assert manager.post(url, json={"at": "accept"}).json()["fields"] == {"comment": ["required"]}
    assert api(system, "director").post(url, json={"at": "accept", "comment": "x"}).status_code == 403
    answer = manager.post(url, json={"at": "accept", "comment": "客户来电"})
    assert answer.status_code == 200 and flow_status(system, record_id) == "running"
