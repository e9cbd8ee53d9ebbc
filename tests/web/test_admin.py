"""Admin pages: users, roles, departments, reload, incidents and outbox, audit log."""

from __future__ import annotations

import logging

import shutil
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import audit_log, timers
from forms.access import load_principal
from web.app import create_app
from web.auth import SESSION_COOKIE, issue_session
from web.system import System, boot

from tests.web.auth_kit import PASSWORD, POSTAL, Seconds, csrf_of, new_clock, sign_in


@pytest.fixture
def clock() -> ManualClock:
    return new_clock()


@pytest.fixture
def bundle_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bundle"
    shutil.copytree(POSTAL, target)
    return target


@pytest.fixture
def system(tmp_path: Path, bundle_dir: Path, clock: ManualClock) -> System:
    return boot(bundle_dir, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


@pytest.fixture
def app(system: System):  # type: ignore[no-untyped-def]
    return create_app(system, secret="test-secret", monotonic=Seconds())


def as_user(app, username: str) -> TestClient:  # type: ignore[no-untyped-def]
    client = TestClient(app, raise_server_exceptions=False)
    client.cookies.set(SESSION_COOKIE, issue_session(app.state.web, username), domain="testserver.local")
    return client


@pytest.fixture
def admin(app) -> TestClient:  # type: ignore[no-untyped-def]
    return as_user(app, "admin")


def post(client: TestClient, path: str, data: dict | None = None, page: str | None = None):  # type: ignore[no-untyped-def]
    """POST a form of `page` (default: the same path) with the page's CSRF token."""
    token = csrf_of(client.get(page or path).text)
    return client.post(path, data={**(data or {}), "csrf_token": token}, follow_redirects=False)


def audit_rows(system: System, action: str | None = None) -> list:  # type: ignore[type-arg]
    query = select(audit_log).order_by(audit_log.c.id)
    if action:
        query = query.where(audit_log.c.action == action)
    with read_transaction(system.db) as conn:
        return list(conn.execute(query).mappings())


def principal(system: System, username: str):  # type: ignore[no-untyped-def]
    with read_transaction(system.db) as conn:
        return load_principal(conn, system.runtime, username)


# -- who may enter -----------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/admin", "/admin/users", "/admin/users/agent", "/admin/roles",
                                  "/admin/departments", "/admin/reload", "/admin/incidents", "/admin/audit"])
def test_only_administrators_open_admin_pages(app, path: str) -> None:  # type: ignore[no-untyped-def]
    assert TestClient(app).get(path, follow_redirects=False).status_code == 303
    assert as_user(app, "manager").get(path).status_code == 403
    assert as_user(app, "admin").get(path).status_code == 200


def test_a_non_admin_is_told_in_their_language_that_the_page_is_for_administrators(app) -> None:  # type: ignore[no-untyped-def]
    page = as_user(app, "manager").get("/admin/users?lang=zh-CN")
    assert page.status_code == 403 and "只有管理员可以打开此页面。" in page.text


def test_a_non_admin_cannot_post_admin_changes(app, system: System) -> None:  # type: ignore[no-untyped-def]
    agent = as_user(app, "agent")
    response = post(agent, "/admin/users/agent", {"roles": ["admin"]}, page="/signout")
    assert response.status_code == 403
    assert not principal(system, "agent").is_admin


def test_the_admin_link_shows_only_for_admins(app) -> None:  # type: ignore[no-untyped-def]
    assert 'id="nav-admin"' in as_user(app, "admin").get("/signout").text
    assert 'id="nav-admin"' not in as_user(app, "agent").get("/signout").text


# -- users -------------------------------------------------------------------------------------

def test_the_user_list_shows_each_user_with_roles_and_department(admin: TestClient) -> None:
    page = admin.get("/admin/users?lang=en").text
    assert "operations" in page and "Exception team, Operations officer" in page
    assert "Customer service centre" in page


def test_an_admin_creates_a_user_who_can_then_sign_in(admin: TestClient, app, system: System) -> None:  # type: ignore[no-untyped-def]
    response = post(admin, "/admin/users", {"username": "liu.agent", "display_name": "刘客服",
                                            "department": "service", "roles": ["agent"], "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/users/liu.agent")
    created = principal(system, "liu.agent")
    assert created is not None and created.roles == {"agent"} and created.department == "service"
    assert sign_in(TestClient(app), "liu.agent").status_code == 303
    [row] = audit_rows(system, "user.created")
    assert (row["actor"], row["target"]) == ("admin", "liu.agent")
    assert row["detail"] == {"roles": ["agent"], "department": "service", "password": True}


@pytest.mark.parametrize("field, data, message", [
    ("username", {"username": "has space"}, "letters, digits"),
    ("username", {"username": "agent"}, "is taken"),
    ("roles", {"username": "x1", "roles": ["emperor"]}, "unknown role(s): emperor"),
    ("department", {"username": "x2", "department": "moon"}, "unknown department"),
    ("password", {"username": "x3", "password": "short"}, "at least 12"),
])
def test_a_bad_new_user_is_refused_with_the_error_next_to_its_field(
        admin: TestClient, system: System, field: str, data: dict, message: str) -> None:  # type: ignore[type-arg]
    response = post(admin, "/admin/users?lang=en", data, page="/admin/users?lang=en")
    assert response.status_code == 422
    assert f'id="u-{field}' in response.text and message in response.text
    assert audit_rows(system, "user.created") == []


def test_changing_roles_and_department_is_audited_as_a_permission_change(admin: TestClient, system: System) -> None:
    response = post(admin, "/admin/users/agent", {"display_name": "王客服", "department": "marketing",
                                                  "roles": ["agent", "supervisor"]})
    assert response.status_code == 303
    changed = principal(system, "agent")
    assert changed.roles == {"agent", "supervisor"} and changed.department == "marketing"
    [row] = audit_rows(system, "user.permissions")
    assert row["detail"]["changes"]["roles"] == [["agent"], ["agent", "supervisor"]]
    assert row["detail"]["changes"]["department"] == ["service", "marketing"]


def test_saving_without_changes_writes_no_audit_entry(admin: TestClient, system: System) -> None:
    post(admin, "/admin/users/agent", {"display_name": "王客服", "department": "service", "roles": ["agent"]})
    assert audit_rows(system, "user.permissions") == [] and audit_rows(system, "user.updated") == []


def test_deactivating_a_user_ends_their_sessions_and_sign_in(admin: TestClient, app, system: System) -> None:  # type: ignore[no-untyped-def]
    agent = as_user(app, "agent")
    assert agent.get("/signout", follow_redirects=False).status_code == 200
    assert post(admin, "/admin/users/agent/active", {"active": "0"}, page="/admin/users/agent").status_code == 303
    assert agent.get("/signout", follow_redirects=False).status_code == 303
    assert principal(system, "agent") is None
    [row] = audit_rows(system, "user.deactivated")
    assert row["detail"] == {"sessions_ended": 1}
    post(admin, "/admin/users/agent/active", {"active": "1"}, page="/admin/users/agent")
    assert principal(system, "agent") is not None


def test_an_admin_cannot_deactivate_themselves(admin: TestClient, system: System) -> None:
    response = post(admin, "/admin/users/admin/active", {"active": "0"}, page="/admin/users/admin")
    assert response.status_code == 400 and principal(system, "admin") is not None


def test_an_admins_own_page_says_they_cannot_deactivate_themselves_instead_of_offering_it(
        admin: TestClient) -> None:
    own = admin.get("/admin/users/admin?lang=zh-CN").text
    assert 'id="set-active"' not in own and "不能停用自己的账号，请由其他管理员操作。" in own
    assert 'id="set-active"' in admin.get("/admin/users/agent?lang=zh-CN").text


def test_an_admin_sets_a_password_and_it_is_audited_without_the_password(
        admin: TestClient, app, system: System) -> None:  # type: ignore[no-untyped-def]
    response = post(admin, "/admin/users/finance/password", {"password": "a new long passphrase"},
                    page="/admin/users/finance")
    assert response.status_code == 303
    assert sign_in(TestClient(app), "finance", "a new long passphrase").status_code == 303
    [row] = audit_rows(system, "user.password")
    assert "passphrase" not in str(row["detail"])


def test_a_short_password_is_refused_next_to_the_field(admin: TestClient) -> None:
    response = post(admin, "/admin/users/finance/password?lang=en", {"password": "short"},
                    page="/admin/users/finance?lang=en")
    assert response.status_code == 422 and 'id="u-password-error"' in response.text


def test_an_unknown_user_is_404(admin: TestClient) -> None:
    assert admin.get("/admin/users/nobody").status_code == 404


# -- roles and departments ----------------------------------------------------------------------

def test_roles_are_listed_from_the_bundle_with_their_members(admin: TestClient) -> None:
    page = admin.get("/admin/roles?lang=en").text
    row = page.split("<code>finance_director</code>")[1].split("</tr>")[0]
    assert "Finance director" in page and "郑总监" in row and "every record" in row


def test_what_a_role_sees_is_said_in_words_not_its_code(admin: TestClient) -> None:
    page = admin.get("/admin/roles?lang=zh-CN").text
    row = page.split("<code>agent</code>")[1].split("</tr>")[0]
    assert "<td>本部门记录</td>" in row and "department" not in row


def test_departments_show_their_parent_and_members(admin: TestClient) -> None:
    page = admin.get("/admin/departments?lang=en").text
    row = page.split("<code>exception_team</code>")[1].split("</tr>")[0]
    assert "Operations" in row and "周运营" in row


# -- reload -------------------------------------------------------------------------------------

def test_a_reload_with_errors_shows_them_and_keeps_the_running_version(
        admin: TestClient, app, system: System, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    running = app.state.web.system.bundle.hash
    (bundle_dir / "forms" / "broken.yaml").write_text("form: broken\nlabel: Broken\nfields:\n  - name: [\n", "utf-8")
    response = post(admin, "/admin/reload?lang=en", page="/admin/reload?lang=en")
    assert response.status_code == 422 and 'id="reload-failed"' in response.text
    assert "forms/broken.yaml:5:1: error: YAML syntax error" in response.text
    assert app.state.web.system.bundle.hash == running
    [row] = audit_rows(system, "definitions.reload")
    assert row["detail"]["ok"] is False and row["detail"]["errors"] >= 1


def test_a_refused_reload_is_written_in_the_server_log_with_its_first_error(
        admin: TestClient, bundle_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (bundle_dir / "forms" / "broken.yaml").write_text("form: broken\nlabel: Broken\nfields:\n  - name: [\n", "utf-8")
    with caplog.at_level(logging.WARNING, logger="web.reload"):
        post(admin, "/admin/reload?lang=en", page="/admin/reload?lang=en")
    (line,) = [r.getMessage() for r in caplog.records if r.name == "web.reload"]
    assert line.startswith("definitions not reloaded:") and "forms/broken.yaml:5:1: error: YAML syntax error" in line


def test_a_valid_reload_switches_to_the_new_version(admin: TestClient, app, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    old = app.state.web.system
    manifest = bundle_dir / "bundle.yaml"
    manifest.write_text(manifest.read_text("utf-8").replace('version: "0.1"', 'version: "0.2"'), "utf-8")
    response = post(admin, "/admin/reload?lang=en", page="/admin/reload?lang=en")
    assert response.status_code == 200 and 'id="reload-ok"' in response.text
    new = app.state.web.system
    assert new is not old and new.bundle.version == "0.2" and new.bundle.hash != old.bundle.hash
    assert new.db.url == old.db.url
    assert 'id="running-version">postal_complaints 0.2' in admin.get("/admin/reload").text
    assert admin.get("/healthz").json()["version"] == "0.2"


def test_the_reload_page_counts_the_work_still_on_earlier_versions_and_names_the_command(
        admin: TestClient, app, system: System, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.web.api_kit import COMPLAINT

    system.forms.submit("complaint", dict(COMPLAINT), actor="agent")
    assert 'id="earlier-versions"' not in admin.get("/admin/reload?lang=en").text
    old = system.bundle.hash
    manifest = bundle_dir / "bundle.yaml"
    manifest.write_text(manifest.read_text("utf-8").replace('version: "0.1"', 'version: "0.2"'), "utf-8")
    page = post(admin, "/admin/reload?lang=en", page="/admin/reload?lang=en").text
    assert f"complaint_handling, version {old[:12]}: 1 running" in page
    assert "<code>docket instances migrate</code>" in page


def test_a_reload_shows_a_scenario_files_misspelt_step_and_keeps_the_running_version(
        admin: TestClient, app, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    story = bundle_dir / "scenarios" / "delay_closed_by_the_frontline.yaml"
    story.write_text(story.read_text("utf-8").replace("  - complete: accept\n", "  - complete: acept\n"), "utf-8")
    running = app.state.web.system.bundle.hash
    response = post(admin, "/admin/reload?lang=en", page="/admin/reload?lang=en")
    assert response.status_code == 422 and 'id="reload-failed"' in response.text
    assert "scenarios/delay_closed_by_the_frontline.yaml:22:15: error: unknown node &#39;acept&#39;" in response.text
    assert app.state.web.system.bundle.hash == running


def test_the_folders_scenarios_run_from_the_reload_page_without_touching_the_server(
        admin: TestClient, app, system: System, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    before = system.forms.count("complaint")
    response = post(admin, "/admin/scenarios?lang=en", page="/admin/reload?lang=en")
    assert response.status_code == 200 and 'id="scenario-results"' in response.text
    count = len(list((bundle_dir / "scenarios").glob("*.yaml")))
    assert f"{count} of {count} scenarios passed." in response.text
    assert system.forms.count("complaint") == before  # scratch databases only


def test_a_failing_scenario_is_shown_with_its_position_before_any_reload(
        admin: TestClient, app, bundle_dir: Path) -> None:  # type: ignore[no-untyped-def]
    story = bundle_dir / "scenarios" / "delay_closed_by_the_frontline.yaml"
    story.write_text(story.read_text("utf-8").replace("expect: {at: accept, status: accepted",
                                                      "expect: {at: propose, status: accepted"), "utf-8")
    running = app.state.web.system.bundle.hash
    response = post(admin, "/admin/scenarios?lang=zh-CN", page="/admin/reload?lang=zh-CN")
    count = len(list((bundle_dir / "scenarios").glob("*.yaml")))
    assert response.status_code == 422 and f"{count} 个场景中 {count - 1} 个通过。" in response.text
    assert ("scenarios/delay_closed_by_the_frontline.yaml:18:18: error: step 2 (expect): "
            "expected open steps [propose], found [accept]") in response.text
    assert app.state.web.system.bundle.hash == running


# -- incidents and outbox ------------------------------------------------------------------------

def test_the_incidents_page_names_its_timers_in_the_readers_language(admin: TestClient) -> None:
    assert "<h2>执行失败的定时任务</h2>" in admin.get("/admin/incidents?lang=zh-CN").text


def test_a_timer_incident_is_listed_and_retried(admin: TestClient, system: System, clock: ManualClock) -> None:
    service = system.runtime.services["timers"]
    with transaction(system.db) as conn:
        timer_id = service.schedule(conn, kind="test.kind", subject="record:complaint:1",
                                    due_at=clock.now() + timedelta(hours=1))
        conn.execute(sa.update(timers).where(timers.c.id == timer_id)
                     .values(status="incident", last_error="boom: the handler failed", attempts=5))
    page = admin.get("/admin/incidents").text
    assert "boom: the handler failed" in page
    response = post(admin, f"/admin/incidents/timer/{timer_id}/retry", page="/admin/incidents")
    assert response.status_code == 303 and "saved=1" in response.headers["location"]
    with read_transaction(system.db) as conn:
        assert conn.execute(select(timers.c.status).where(timers.c.id == timer_id)).scalar() == "pending"
    assert [r["target"] for r in audit_rows(system, "timer.retry")] == [f"timer:{timer_id}"]


def test_a_dead_letter_is_listed_with_its_error_and_retried(admin: TestClient, system: System) -> None:
    """RELIABILITY 38: a message the relay gave up on is visible to the admin with the reason,
    and one retry queues it again under the same message id."""
    from engine.storage.tables import outbox as outbox_table

    service = system.runtime.services["outbox"]
    with transaction(system.db) as conn:
        message_id = service.enqueue(conn, channel="log", to=["ops@example.com"], subject="TS-0001 overdue",
                                     body="The complaint is overdue.")
        conn.execute(sa.update(outbox_table).where(outbox_table.c.id == message_id)
                     .values(status="dead", attempts=5, last_error="SMTP rejected the credentials: 535"))
    page = admin.get("/admin/incidents").text
    assert "SMTP rejected the credentials: 535" in page and "TS-0001 overdue" in page
    response = post(admin, f"/admin/incidents/outbox/{message_id}/retry", page="/admin/incidents")
    assert response.status_code == 303 and "saved=1" in response.headers["location"]
    assert service.dead_letters() == []
    assert [r["target"] for r in audit_rows(system, "outbox.retry")] == [f"outbox:{message_id}"]


# -- audit log -------------------------------------------------------------------------------------

def test_the_audit_log_filters_by_actor_action_and_date(admin: TestClient, app, system: System,
                                                         clock: ManualClock) -> None:  # type: ignore[no-untyped-def]
    sign_in(TestClient(app), "agent", "wrong password!!")
    clock.advance(timedelta(days=2))
    admin = as_user(app, "admin")  # the earlier session has idled out
    post(admin, "/admin/users/finance/password", {"password": "a new long passphrase"}, page="/admin/users/finance")
    everything = admin.get("/admin/audit").text
    assert "signin.failed" in everything and "user.password" in everything
    by_action = admin.get("/admin/audit?action=signin").text.split("<tbody>")[1]
    assert "signin.failed" in by_action and "user.password" not in by_action
    by_actor = admin.get("/admin/audit?actor=admin").text.split("<tbody>")[1]
    assert "user.password" in by_actor and "signin.failed" not in by_actor
    later = admin.get("/admin/audit?from=2026-11-24").text.split("<tbody>")[1]
    assert "user.password" in later and "signin.failed" not in later
    assert admin.get("/admin/audit?from=yesterday").status_code == 400


def test_the_audit_log_names_its_actions_in_the_readers_language(app) -> None:  # type: ignore[no-untyped-def]
    admin = as_user(app, "admin")
    post(admin, "/admin/users/finance/password", {"password": "a new long passphrase"}, page="/admin/users/finance")
    rows = admin.get("/admin/audit?lang=zh-CN").text.split("<tbody>")[1]
    assert '<td title="user.password">设置密码</td>' in rows
    assert '<option value="user.password">设置密码</option>' in admin.get("/admin/audit?lang=zh-CN").text


def test_the_audit_log_reads_an_entrys_detail_as_words_not_json(app) -> None:  # type: ignore[no-untyped-def]
    sign_in(TestClient(app), "agent", "wrong password!!")
    rows = as_user(app, "admin").get("/admin/audit?action=signin.failed").text.split("<tbody>")[1]
    assert '<td class="audit-detail">reason: no password set</td>' in rows
    assert "{&#34;" not in rows and '{"' not in rows


def test_the_audit_log_links_a_printed_record_to_its_page(app, system: System) -> None:  # type: ignore[no-untyped-def]
    with transaction(system.db) as conn:
        conn.execute(audit_log.insert().values(at=system.runtime.clock.now(), actor="agent",
                                               action="record.printed", target="complaint:7",
                                               detail={"template": "reply_letter"}))
    rows = as_user(app, "admin").get("/admin/audit").text.split("<tbody>")[1]
    assert '<a href="/records/complaint/7">complaint:7</a>' in rows
    assert '<td class="audit-detail">template: reply_letter</td>' in rows


def test_the_api_tokens_page_is_one_of_the_administration_tabs(admin: TestClient) -> None:
    overview = admin.get("/admin?lang=zh-CN").text
    assert '<a href="/admin/tokens?lang=zh-CN" id="admin-tokens">API 令牌</a>' in overview
    tokens = admin.get("/admin/tokens?lang=zh-CN").text
    assert 'id="admin-tokens" aria-current="page">API 令牌</a>' in tokens and 'id="admin-users"' in tokens


def test_the_scenario_button_says_it_is_running_once_pressed(admin: TestClient) -> None:
    page = admin.get("/admin/reload?lang=zh-CN").text
    assert ('<button type="submit" id="run-scenarios" class="secondary" data-once '
            'data-busy="正在运行测试场景…（需要几秒钟）">运行测试场景</button>') in page
    assert '<script src="/static/staff.js" defer></script>' in page

