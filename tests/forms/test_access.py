"""Row-level access: each role sees all records, its department's, or those it is involved in."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.identity import Principal
from engine.storage.db import read_transaction
from forms.access import can_read, load_principal, record_scope, scope_of
from tests.engine.bundle_kit import MINI, write_bundle
from web.system import System, boot

BUNDLE = """\
bundle: access
version: "1"
label: Access
roles:
  agent: {label: Agent, sees: department}
  clerk: {label: Clerk}
  boss: {label: Boss, sees: all}
  root: {label: Root, admin: true}
departments:
  service: {label: Service}
  ops: {label: Operations}
  ops_team: {label: Ops team, parent: ops}
demo_users:
  - {username: sam, roles: [agent], department: service}
  - {username: oli, roles: [agent], department: ops}
  - {username: tia, roles: [agent], department: ops_team}
  - {username: cleo, roles: [clerk]}
  - {username: carl, roles: [clerk]}
  - {username: bea, roles: [boss]}
  - {username: ada, roles: [root]}
"""

FLOW = MINI["flows/ticket_flow.yaml"].replace("assign: {role: agent}", "assign: {department: DEPT}")


def system_for(tmp_path: Path, department: str = "ops_team", cc: str | None = None) -> System:
    flow = FLOW.replace("DEPT", department)
    if cc:
        flow = flow.replace(f"{{department: {department}}}", f"{{department: {department}, cc: {{users: [{cc}]}}}}")
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": BUNDLE, "flows/ticket_flow.yaml": flow})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def who(system: System, username: str) -> Principal:
    with read_transaction(system.db) as conn:
        principal = load_principal(conn, system.runtime, username)
    assert principal is not None
    return principal


def readable(system: System, username: str, record_id: int) -> bool:
    with read_transaction(system.db) as conn:
        return can_read(conn, system.runtime, "ticket", record_id, who(system, username))


def test_a_role_that_sees_all_has_no_condition(tmp_path: Path) -> None:
    system = system_for(tmp_path)
    table = system.forms.tables["ticket"]
    assert record_scope(system.runtime, "ticket", who(system, "bea"), table) is None


def test_an_admin_role_makes_its_holders_admins_who_see_all(tmp_path: Path) -> None:
    system = system_for(tmp_path)
    ada = who(system, "ada")
    assert ada.is_admin and scope_of(system.runtime, ada) == "all"


def test_an_agent_does_not_see_a_record_only_another_department_works_on(tmp_path: Path) -> None:
    system = system_for(tmp_path, department="ops_team")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    assert not readable(system, "sam", record_id)


def test_an_agent_sees_a_record_offered_to_their_department(tmp_path: Path) -> None:
    system = system_for(tmp_path, department="ops_team")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    assert readable(system, "tia", record_id)


def test_a_parent_department_sees_what_its_sub_departments_work_on(tmp_path: Path) -> None:
    system = system_for(tmp_path, department="ops_team")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    assert readable(system, "oli", record_id)
    assert who(system, "oli").departments == frozenset({"ops", "ops_team"})


def test_a_sub_department_does_not_see_its_parents_work(tmp_path: Path) -> None:
    system = system_for(tmp_path, department="ops")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    assert readable(system, "oli", record_id) and not readable(system, "tia", record_id)


def test_by_default_users_see_what_they_submitted_and_nothing_else(tmp_path: Path) -> None:
    system = system_for(tmp_path)
    mine = system.forms.submit("ticket", {"title": "mine"}, actor="cleo").record_id
    theirs = system.forms.submit("ticket", {"title": "theirs"}, actor="carl").record_id
    assert readable(system, "cleo", mine) and not readable(system, "cleo", theirs)


def test_a_user_copied_on_a_task_sees_the_record(tmp_path: Path) -> None:
    system = system_for(tmp_path, cc="cleo")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    assert readable(system, "cleo", record_id)


def test_a_user_who_completed_a_task_keeps_seeing_the_record(tmp_path: Path) -> None:
    system = system_for(tmp_path, department="service")
    record_id = system.forms.submit("ticket", {"title": "late parcel"}, actor="carl").record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    system.flows.claim(task["id"], "sam")
    system.flows.complete(task["id"], "sam", values={"urgency": "low"})
    assert readable(system, "sam", record_id)


def test_lists_and_counts_apply_the_scope_in_the_database(tmp_path: Path) -> None:
    system = system_for(tmp_path)
    system.forms.submit("ticket", {"title": "mine"}, actor="cleo")
    system.forms.submit("ticket", {"title": "theirs"}, actor="carl")
    table = system.forms.tables["ticket"]
    scope = record_scope(system.runtime, "ticket", who(system, "cleo"), table)
    assert [r["title"] for r in system.forms.list("ticket", where=scope)] == ["mine"]
    assert system.forms.count("ticket", where=scope) == 1 and system.forms.count("ticket") == 2


def test_a_deactivated_or_unknown_user_has_no_principal(tmp_path: Path) -> None:
    system = system_for(tmp_path)
    with read_transaction(system.db) as conn:
        assert load_principal(conn, system.runtime, "nobody") is None


@pytest.mark.parametrize("word", ["a_b", "50%"])
def test_wildcards_in_names_match_only_themselves(tmp_path: Path, word: str) -> None:
    from forms.access import _json_has
    from sqlalchemy import literal, select

    system = system_for(tmp_path)
    with read_transaction(system.db) as conn:
        assert conn.execute(select(_json_has(literal('["a_b", "50%"]'), word))).scalar()
        assert not conn.execute(select(_json_has(literal('["axb", "500"]'), word))).scalar()
