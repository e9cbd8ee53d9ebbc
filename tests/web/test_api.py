"""The JSON API /api/v1: forms, records, tasks, history, definitions, as each kind of caller."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import history
from engine.bundle import validate_bundle
from tests.web.api_kit import COMPLAINT, POSTAL, RECORDS, START, Api, boot_postal, client_of, client, system  # noqa: F401 - fixtures
from web.system import System, boot, build_registry


@pytest.fixture
def admin(client: TestClient, system: System) -> Api:
    return Api(client, system, "admin")


@pytest.fixture
def agent(client: TestClient, system: System) -> Api:
    return Api(client, system, "agent")


@pytest.fixture
def accounts(client: TestClient, system: System) -> Api:
    """An account manager: sees only the complaints they are involved in."""
    return Api(client, system, "accounts")


# -- forms ----------------------------------------------------------------------------------------
def test_anyone_may_describe_a_public_form_without_its_staff_only_fields(client: TestClient) -> None:
    body = client.get("/api/v1/forms/complaint?lang=en").json()
    names = {f["name"] for f in body["fields"]}
    assert {"customer_name", "category"} <= names and "urgency" not in names
    assert "urgency" not in body["schema"]["properties"]
    category = next(f for f in body["fields"] if f["name"] == "category")
    assert {"value": "transport_late", "label": "Late in transit", "parent": "transport_delay"} in category["options"]


def test_a_signed_in_caller_sees_every_field_of_the_form(agent: Api) -> None:
    body = agent.get("/api/v1/forms/complaint").json()
    assert "urgency" in {f["name"] for f in body["fields"]}
    assert "urgent" in body["schema"]["properties"]["urgency"]["anyOf"][0]["enum"]


def test_anonymous_callers_list_only_public_forms(client: TestClient, agent: Api) -> None:
    assert [f["name"] for f in client.get("/api/v1/forms").json()["items"]] == ["complaint"]
    assert agent.get("/api/v1/forms").status_code == 200


# -- submitting -----------------------------------------------------------------------------------
def test_an_anonymous_submitter_may_not_set_staff_only_fields(client: TestClient) -> None:
    response = client.post(RECORDS, json={**COMPLAINT, "urgency": "urgent"})
    assert response.status_code == 422
    assert list(response.json()["fields"]) == ["urgency"]


def test_a_token_holder_submits_with_staff_only_fields_as_themselves(agent: Api, system: System) -> None:
    created = agent.submit(urgency="urgent", channel="hotline")
    record = system.forms.get("complaint", created["id"])
    assert (record["urgency"], record["channel"], record["created_by"]) == ("urgent", "hotline", "agent")


def test_a_submission_answers_where_the_record_is(agent: Api) -> None:
    response = agent.post(RECORDS, json=COMPLAINT)
    assert response.headers["location"] == f"{RECORDS}/{response.json()['id']}"


def test_idempotency_keys_belong_to_their_caller(agent: Api, accounts: Api, system: System) -> None:
    key = {"Idempotency-Key": "call-7"}
    first = agent.post(RECORDS, json=COMPLAINT, headers=key)
    other = accounts.post(RECORDS, json=COMPLAINT, headers=key)
    again = agent.post(RECORDS, json=COMPLAINT, headers=key)
    assert (first.status_code, other.status_code, again.status_code) == (201, 201, 200)
    assert first.json()["id"] != other.json()["id"] and again.json()["id"] == first.json()["id"]


def test_a_body_that_is_not_sent_as_json_is_refused(agent: Api) -> None:
    response = agent.post(RECORDS, content=b'{"a": 1}', headers={"content-type": "text/plain"})
    assert response.status_code == 415 and "JSON" in response.json()["error"]


# -- reading and listing ----------------------------------------------------------------------------
def test_nobody_lists_records_without_signing_in(client: TestClient) -> None:
    response = client.get(RECORDS)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_a_record_reads_back_with_its_version_as_etag(agent: Api) -> None:
    created = agent.submit()
    response = agent.get(f"{RECORDS}/{created['id']}")
    body = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"'
    assert body["query_no"] == created["query_no"] and body["values"]["customer_name"] == COMPLAINT["customer_name"]


def test_records_outside_the_callers_scope_are_not_found(agent: Api, accounts: Api) -> None:
    created = agent.submit()
    assert accounts.get(f"{RECORDS}/{created['id']}").status_code == 404
    assert accounts.get(f"{RECORDS}/{created['id']}/history").status_code == 404
    assert accounts.get(RECORDS).json()["total"] == 0
    assert agent.get(RECORDS).json()["total"] == 1


def test_an_unknown_record_and_an_absurd_id_are_both_404(agent: Api) -> None:
    assert agent.get(f"{RECORDS}/999").status_code == 404
    assert agent.get(f"{RECORDS}/99999999999999999999999").json() == {"error": "no such record"}


def test_the_list_filters_by_field_status_date_and_text(agent: Api, system: System) -> None:
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    agent.submit(category="damage_goods", customer_name="甲公司", amount_claimed="100")
    clock.advance(timedelta(days=2))
    agent.submit(customer_name="乙物流")
    assert agent.get(f"{RECORDS}?category=damage_goods").json()["total"] == 1
    assert agent.get(f"{RECORDS}?category=damage_goods&category=transport_late").json()["total"] == 2
    assert agent.get(f"{RECORDS}?q=乙物").json()["items"][0]["values"]["customer_name"] == "乙物流"
    assert agent.get(f"{RECORDS}?created_from=2026-11-24").json()["total"] == 1
    assert agent.get(f"{RECORDS}?created_to=2026-11-23").json()["total"] == 1
    assert agent.get(f"{RECORDS}?status=accepted").json()["total"] == 2
    page = agent.get(f"{RECORDS}?limit=1&offset=1").json()
    assert (page["total"], len(page["items"]), page["items"][0]["values"]["customer_name"]) == (2, 1, "甲公司")


def test_a_filter_that_does_not_parse_is_a_400_naming_the_field(agent: Api) -> None:
    response = agent.get(f"{RECORDS}?category=nonsense&bogus=1&created_from=yesterday")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"category", "bogus"}
    assert agent.get(f"{RECORDS}?created_from=yesterday").status_code == 400


def test_text_search_treats_wildcards_literally(agent: Api) -> None:
    agent.submit(customer_name="100% 物流")
    agent.submit(customer_name="其他")
    assert agent.get(f"{RECORDS}?q=%25").json()["total"] == 1


# -- changing records -------------------------------------------------------------------------------
def test_a_change_needs_the_version_it_is_based_on(admin: Api) -> None:
    created = admin.submit()
    response = admin.patch(f"{RECORDS}/{created['id']}", json={"values": {"urgency": "urgent"}})
    assert response.status_code == 428


def test_an_administrator_changes_a_field_and_the_history_records_it(admin: Api, system: System) -> None:
    created = admin.submit()
    etag = admin.get(f"{RECORDS}/{created['id']}").headers["etag"]
    response = admin.patch(f"{RECORDS}/{created['id']}", json={"values": {"urgency": "urgent"}},
                           headers={"If-Match": etag})
    assert response.status_code == 200 and response.json()["values"]["urgency"] == "urgent"
    assert response.headers["etag"] != etag
    with read_transaction(system.db) as conn:
        kinds = [r.kind for r in conn.execute(history.select().where(history.c.record_id == created["id"]))]
    assert "record.updated" in kinds


def test_a_stale_version_is_a_conflict_and_changes_nothing(admin: Api, system: System) -> None:
    created = admin.submit()
    version = admin.get(f"{RECORDS}/{created['id']}").json()["version"]
    url = f"{RECORDS}/{created['id']}"
    assert admin.patch(url, json={"values": {"urgency": "urgent"}, "version": version}).status_code == 200
    stale = admin.patch(url, json={"values": {"urgency": "normal"}, "version": version})
    assert stale.status_code == 409 and "reload" in stale.json()["error"]
    assert system.forms.get("complaint", created["id"])["urgency"] == "urgent"


def test_a_reader_without_an_editing_role_or_task_may_not_change_a_record(agent: Api) -> None:
    created = agent.submit()
    response = agent.patch(f"{RECORDS}/{created['id']}", json={"values": {"urgency": "urgent"}, "version": 2})
    assert response.status_code == 403


def test_the_assignee_of_the_current_step_changes_only_that_steps_fields(agent: Api) -> None:
    created = agent.submit()
    task = agent.get("/api/v1/tasks").json()["items"][0]
    assert agent.post(f"/api/v1/tasks/{task['id']}/claim").status_code == 200
    url = f"{RECORDS}/{created['id']}"
    version = agent.get(url).json()["version"]
    refused = agent.patch(url, json={"values": {"description": "changed"}, "version": version})
    assert refused.status_code == 422 and list(refused.json()["fields"]) == ["description"]
    allowed = agent.patch(url, json={"values": {"urgency": "urgent"}, "version": version})
    assert allowed.status_code == 200 and allowed.json()["values"]["urgency"] == "urgent"


def test_holders_of_an_editor_role_named_by_the_form_may_change_any_field(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    form = bundle / "forms" / "complaint.yaml"
    form.write_text(form.read_text("utf-8").replace("wizard: true\n", "wizard: true\neditors: [supervisor]\n"),
                    "utf-8")
    system = boot(bundle, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(START))
    client = client_of(system)
    agent, supervisor = Api(client, system, "agent"), Api(client, system, "supervisor")
    created = agent.submit()
    agent.post(f"/api/v1/tasks/{agent.get('/api/v1/tasks').json()['items'][0]['id']}/claim")
    url = f"{RECORDS}/{created['id']}"
    version = supervisor.get(url).json()["version"]  # sees it: an agent of the department holds it
    response = supervisor.patch(url, json={"values": {"description": "补充：共十二票"}, "version": version})
    assert response.status_code == 200 and response.json()["values"]["description"] == "补充：共十二票"


def test_an_editor_role_the_bundle_does_not_define_is_a_load_error(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    form = bundle / "forms" / "complaint.yaml"
    form.write_text(form.read_text("utf-8").replace("wizard: true\n", "wizard: true\neditors: [supervsior]\n"),
                    "utf-8")
    _, diagnostics = validate_bundle(bundle, build_registry(plugins=False))
    assert [(d.code, d.hint) for d in diagnostics] == [("unknown-reference", "did you mean 'supervisor'?")]


# -- tasks --------------------------------------------------------------------------------------------
def test_the_inbox_claim_and_complete_move_the_record_on(agent: Api, system: System) -> None:
    created = agent.submit()
    inbox = agent.get("/api/v1/tasks").json()["items"]
    assert [(t["node"], t["status"], t["record_id"]) for t in inbox] == [("accept", "open", created["id"])]
    claimed = agent.post(f"/api/v1/tasks/{inbox[0]['id']}/claim").json()
    assert claimed["status"] == "claimed"
    done = agent.post(f"/api/v1/tasks/{inbox[0]['id']}/complete",
                      json={"values": {"urgency": "urgent"}, "comment": "客户已确认"})
    assert done.status_code == 200 and done.json()["status"] == "completed"
    assert system.forms.get("complaint", created["id"])["urgency"] == "urgent"


def test_a_claimed_or_completed_task_is_labelled_in_the_callers_language(agent: Api) -> None:
    agent.submit()
    (task,) = agent.get("/api/v1/tasks?lang=zh-CN").json()["items"]
    claimed = agent.post(f"/api/v1/tasks/{task['id']}/claim?lang=zh-CN").json()
    assert claimed["label"] == task["label"] == "受理"
    done = agent.post(f"/api/v1/tasks/{task['id']}/complete?lang=en", json={"values": {"urgency": "urgent"}})
    assert done.json()["label"] == "Accept"


def test_an_outcome_on_a_step_without_outcomes_is_a_conflict(agent: Api) -> None:
    agent.submit()
    (task,) = agent.get("/api/v1/tasks").json()["items"]
    response = agent.post(f"/api/v1/tasks/{task['id']}/complete", json={"values": {"urgency": "urgent"},
                                                                         "outcome": "approve"})
    assert response.status_code == 409 and "has no outcomes" in response.json()["error"]


def test_a_task_says_when_its_step_is_due(agent: Api, system: System) -> None:
    created = agent.submit()
    (task,) = agent.get("/api/v1/tasks").json()["items"]
    (stored,) = system.flows.open_tasks("complaint", created["id"])
    assert stored["due_at"] is not None and task["due_at"] == stored["due_at"].isoformat()
    assert agent.post(f"/api/v1/tasks/{task['id']}/claim").json()["due_at"] == task["due_at"]


def test_a_task_of_another_role_cannot_be_claimed_or_completed(agent: Api, accounts: Api, client: TestClient,
                                                               system: System) -> None:
    agent.submit(account_manager="accounts")
    task_id = agent.get("/api/v1/tasks").json()["items"][0]["id"]
    manager = Api(client, system, "marketing")
    assert manager.post(f"/api/v1/tasks/{task_id}/claim").status_code == 404  # cannot even see it
    assert manager.post(f"/api/v1/tasks/{task_id}/complete", json={}).status_code == 404


def test_a_claimed_task_is_not_someone_elses_to_complete(agent: Api, client: TestClient, system: System) -> None:
    agent.submit()
    task_id = agent.get("/api/v1/tasks").json()["items"][0]["id"]
    agent.post(f"/api/v1/tasks/{task_id}/claim")
    supervisor = Api(client, system, "supervisor")
    response = supervisor.post(f"/api/v1/tasks/{task_id}/complete", json={})
    assert response.status_code in (403, 404)


def test_a_completion_with_a_stale_task_version_is_a_conflict(agent: Api) -> None:
    agent.submit()
    task = agent.get("/api/v1/tasks").json()["items"][0]
    agent.post(f"/api/v1/tasks/{task['id']}/claim")
    response = agent.post(f"/api/v1/tasks/{task['id']}/complete", json={"version": task["version"]})
    assert response.status_code == 409


def test_a_completion_with_malformed_parts_names_them(agent: Api) -> None:
    agent.submit()
    task_id = agent.get("/api/v1/tasks").json()["items"][0]["id"]
    response = agent.post(f"/api/v1/tasks/{task_id}/complete",
                          json={"values": [], "comment": 5, "version": "x", "extra": 1})
    assert response.status_code == 400
    response = agent.post(f"/api/v1/tasks/{task_id}/complete", json={"values": [], "comment": 5, "version": "x"})
    assert set(response.json()["fields"]) == {"values", "comment", "version"}


# -- history ------------------------------------------------------------------------------------------
def test_the_history_gives_entries_and_the_timeline_with_dwell_times(agent: Api, system: System) -> None:
    created = agent.submit()
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(hours=3))
    body = agent.get(f"{RECORDS}/{created['id']}/history").json()
    assert body["entries"][0]["kind"] == "record.created"
    assert body["timeline"]["current"] == ["accept"]
    step = body["timeline"]["steps"][-1]
    assert step["node"] == "accept" and step["left_at"] is None and step["wall_seconds"] == 3 * 3600


# -- definitions ----------------------------------------------------------------------------------------
def test_an_administrator_validates_the_running_definitions_again(admin: Api, system: System) -> None:
    body = admin.post("/api/v1/definitions/validate").json()
    assert body["valid"] is True and body["hash"] == system.bundle.hash == body["running_hash"]


def test_only_administrators_validate_or_reload_definitions(agent: Api, client: TestClient) -> None:
    assert agent.post("/api/v1/definitions/validate").status_code == 403
    assert agent.post("/api/v1/definitions/reload").status_code == 403
    assert client.post("/api/v1/definitions/validate").status_code == 401


# -- errors -------------------------------------------------------------------------------------------
def test_errors_are_json_without_internals(agent: Api, system: System) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    system.forms.list = explode  # type: ignore[method-assign]
    response = agent.get(RECORDS)
    assert response.status_code == 500
    assert "reference" in response.json()["error"] and "secret internals" not in response.text


# -- reports ------------------------------------------------------------------------------------------
def test_report_rows_apply_the_callers_row_level_scope(agent: Api, accounts: Api, admin: Api) -> None:
    agent.submit()
    agent.submit()
    widget = next(w["href"] for d in admin.get("/api/v1/reports").json()["items"] for w in d["widgets"]
                  if w["href"].endswith("/operations/backlog"))
    assert admin.get(widget).json()["rows"] == [[2, 0]]
    assert accounts.get(widget).json()["rows"] == [[0, 0]]
    assert admin.get(f"{widget}/records").json()["total"] == 2
    assert accounts.get(f"{widget}/records").json()["total"] == 0


def test_an_unknown_report_widget_is_404_and_a_bad_filter_400(admin: Api) -> None:
    assert admin.get("/api/v1/reports/operations/nope").status_code == 404
    assert admin.get("/api/v1/reports/nope/backlog").status_code == 404
    response = admin.get("/api/v1/reports/operations/backlog?period_from=not-a-date")
    assert response.status_code == 400 and "date" in response.json()["error"]


# -- rate limits ----------------------------------------------------------------------------------
def test_anonymous_submissions_are_rate_limited_but_token_holders_are_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_API_SUBMITS_PER_MINUTE", "3")
    system = boot_postal(tmp_path)
    client = client_of(system)
    answers = [client.post(RECORDS, json=COMPLAINT).status_code for _ in range(4)]
    assert answers == [201, 201, 201, 429]
    limited = client.post(RECORDS, json=COMPLAINT)
    assert int(limited.headers["retry-after"]) > 0 and "error" in limited.json()
    staff = Api(client, system, "agent")
    assert [staff.post(RECORDS, json=COMPLAINT).status_code for _ in range(4)] == [201] * 4


def test_an_administrator_reloads_definitions_and_a_broken_folder_keeps_the_running_version(
        tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    system = boot(bundle, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(START))
    client = client_of(system)
    admin = Api(client, system, "admin")
    running = system.bundle.hash
    form = bundle / "forms" / "complaint.yaml"
    original = form.read_text("utf-8")
    form.write_text(original.replace("required: true\n", "requird: true\n", 1), "utf-8")
    broken = admin.post("/api/v1/definitions/reload")
    assert broken.status_code == 422 and broken.json()["reloaded"] is False
    assert broken.json()["hash"] == running
    assert any((d["file"] or "").endswith("complaint.yaml") for d in broken.json()["diagnostics"])
    form.write_text(original + "# reviewed by the quality team\n", "utf-8")
    reloaded = admin.post("/api/v1/definitions/reload")
    assert reloaded.status_code == 200 and reloaded.json()["hash"] != running
    assert admin.get("/api/v1/openapi.json").json()["info"]["version"].endswith(f"({reloaded.json()['hash']})")


def test_a_task_offered_to_a_department_may_be_worked_on_by_its_members_through_the_api() -> None:
    from engine.identity import Principal
    from web.api import may_work_on

    task = {"assignee_user": None, "status": "open", "escalation_level": 0, "candidate_roles": ["manager"],
            "candidate_users": None, "candidate_department": "exception_team"}
    member = Principal("ops", frozenset({"operations"}), frozenset({"exception_team"}), user_id=7)
    outsider = Principal("mkt", frozenset({"marketing"}), frozenset({"marketing"}), user_id=8)
    assert may_work_on(task, member) and not may_work_on(task, outsider)
