"""Approval, parallel split and join, countersign, several tokens, and reopen, on small bundles."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.errors import ConflictError, ValidationFailed
from engine.storage.db import read_transaction
from engine.storage.tables import history, tasks
from tests.engine.bundle_kit import problems, write_bundle
from web.system import System, boot

BUNDLE = """\
    bundle: nodes
    version: "1"
    label: Node types
    roles:
      agent: {label: Agent}
      reviewer: {label: Reviewer}
      director: {label: Director}
    departments:
      service: {label: Service}
      ops: {label: Operations}
      fin: {label: Finance}
    demo_users:
      - {username: agent, roles: [agent], department: service}
      - {username: r1, roles: [reviewer], department: service}
      - {username: r2, roles: [reviewer], department: ops}
      - {username: r3, roles: [reviewer], department: fin}
      - {username: boss, roles: [director], department: fin}
    """

COUNTERSIGN = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: assess
      assess:
        type: countersign
        assign: {ASSIGN}
        complete_when: {RULE}
        next: route
      route:
        type: decision
        branches:
          - when: flow.assess.outcome == "approved"
            to: accepted
          - else: refused
      accepted:
        type: end
        outcome: approved
      refused:
        type: end
        outcome: rejected
    """

APPROVAL = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: handle
      handle:
        type: task
        assign: {role: agent}
        fields: [urgency]
        next: sign
      sign:
        type: approval
        assign: {user: boss}
        approve: accepted
        reject: refused
        return_to: [handle]
      accepted:
        type: end
        outcome: approved
      refused:
        type: end
        outcome: rejected
    """

BRANCHES = ["b1", "b2", "b3", "b4", "b5"]
PARALLEL = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: split
      split:
        type: parallel
        branches: [b1, b2, b3, b4, b5]
      joined:
        type: join
        split: split
        next: after
      after:
        type: task
        assign: {user: agent}
        next: done
      done:
        type: end
    """.rstrip(" ") + "".join(f"""\
      {b}:
        type: task
        assign: {{user: r1}}
        next: joined
    """.rstrip(" ") for b in BRANCHES)


def make(tmp_path: Path, flow: str) -> System:
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": BUNDLE, "flows/ticket_flow.yaml": flow})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def submit(system: System) -> int:
    return system.forms.submit("ticket", {"title": "printer"}, actor="agent").record_id


def open_tasks(system: System, record_id: int) -> list[dict[str, Any]]:
    return system.flows.open_tasks("ticket", record_id)


def instance(system: System, record_id: int) -> dict[str, Any]:
    (found,) = system.flows.instances("ticket", record_id)
    return found


def history_of(system: System, record_id: int, kind: str) -> list[dict[str, Any]]:
    return [h for h in system.forms.history("ticket", record_id) if h["kind"] == kind]


def countersign(tmp_path: Path, assign: str, rule: str) -> System:
    return make(tmp_path, COUNTERSIGN.replace("{ASSIGN}", assign).replace("{RULE}", rule))


# -- countersign -------------------------------------------------------------------------------
def test_countersign_all_by_role_needs_every_reviewer(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{role: reviewer}", "all")
    record_id = submit(system)
    open_ = open_tasks(system, record_id)
    assert sorted(system.flows.inbox(u)[0].node for u in ("r1", "r2", "r3")) == ["assess"] * 3
    assert len(open_) == 3 and instance(system, record_id)["current"] == ["assess"]
    for task in open_[:2]:
        system.flows.complete(task["id"], None, outcome="approve")
    assert instance(system, record_id)["status"] == "running"
    assert instance(system, record_id)["variables"]["assess"]["approved"] == 2
    system.flows.complete(open_[2]["id"], None, outcome="approve")
    done = instance(system, record_id)
    assert (done["status"], done["outcome"]) == ("completed", "approved")
    assert done["variables"]["assess"] == {"approved": 3, "rejected": 0, "total": 3, "needed": 3,
                                           "outcome": "approved"}


def test_countersign_all_is_rejected_by_one_rejection_and_cancels_the_rest(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{users: [r1, r2, r3]}", "all")
    record_id = submit(system)
    first, *rest = open_tasks(system, record_id)
    system.flows.complete(first["id"], "r1", outcome="reject", comment="not ours")
    done = instance(system, record_id)
    assert (done["status"], done["outcome"]) == ("completed", "rejected")
    assert open_tasks(system, record_id) == []
    with read_transaction(system.db) as conn:
        statuses = conn.execute(select(tasks.c.status).where(tasks.c.id.in_([t["id"] for t in rest])))
        assert set(statuses.scalars()) == {"cancelled"}
    with pytest.raises(ConflictError):
        system.flows.complete(rest[0]["id"], "r2", outcome="approve")


def test_countersign_any_is_approved_by_the_first_approval(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{users: [r1, r2, r3]}", "any")
    record_id = submit(system)
    first, second, third = open_tasks(system, record_id)
    system.flows.complete(first["id"], "r1", outcome="reject")
    system.flows.complete(second["id"], "r2", outcome="approve")
    done = instance(system, record_id)
    assert (done["status"], done["outcome"]) == ("completed", "approved")
    assert done["variables"]["assess"]["rejected"] == 1
    (decided,) = history_of(system, record_id, "countersign.decided")
    assert decided["data"]["cancelled"] == 1


def test_countersign_two_of_three_departments(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{departments: [service, ops, fin]}", '"2 of 3"')
    record_id = submit(system)
    open_ = open_tasks(system, record_id)
    assert [t["candidate_department"] for t in open_] == ["service", "ops", "fin"]
    assert [t.node for t in system.flows.inbox("r2")] == ["assess"]  # claimable by ops staff
    system.flows.claim(open_[1]["id"], "r2")
    system.flows.complete(open_[1]["id"], "r2", outcome="approve")
    system.flows.complete(open_[2]["id"], "r3", outcome="reject")
    assert instance(system, record_id)["status"] == "running"
    system.flows.complete(open_[0]["id"], "r1", outcome="approve")
    assert instance(system, record_id)["outcome"] == "approved"


def test_countersign_two_of_three_is_rejected_once_two_approvals_are_impossible(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{users: [r1, r2, r3]}", '"2 of 3"')
    record_id = submit(system)
    first, second, _third = open_tasks(system, record_id)
    system.flows.complete(first["id"], "r1", outcome="reject")
    system.flows.complete(second["id"], "r2", outcome="reject")
    assert instance(system, record_id)["outcome"] == "rejected"


def test_a_countersign_task_takes_approve_or_reject_only(tmp_path: Path) -> None:
    system = countersign(tmp_path, "{users: [r1, r2]}", "all")
    task = open_tasks(system, submit(system))[0]
    with pytest.raises(ConflictError):
        system.flows.complete(task["id"], "r1", outcome="maybe")


# -- approval ----------------------------------------------------------------------------------
def handled(system: System) -> tuple[int, dict[str, Any]]:
    record_id = submit(system)
    (task,) = open_tasks(system, record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "low"})
    (sign,) = open_tasks(system, record_id)
    assert sign["node"] == "sign"
    return record_id, sign


def test_approval_approve(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id, sign = handled(system)
    system.flows.complete(sign["id"], "boss", outcome="approve")
    done = instance(system, record_id)
    assert (done["status"], done["outcome"]) == ("completed", "approved")
    assert done["variables"]["sign"] == {"outcome": "approved", "comment": None, "by": "boss"}


def test_approval_reject_needs_a_comment_and_keeps_it(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id, sign = handled(system)
    with pytest.raises(ValidationFailed) as info:
        system.flows.complete(sign["id"], "boss", outcome="reject")
    assert "comment" in info.value.errors
    assert instance(system, record_id)["status"] == "running"
    system.flows.complete(sign["id"], "boss", outcome="reject", comment="amount too high")
    assert instance(system, record_id)["outcome"] == "rejected"
    (entry,) = [h for h in history_of(system, record_id, "task.completed") if h["node"] == "sign"]
    assert (entry["data"]["outcome"], entry["data"]["comment"]) == ("reject", "amount too high")


def test_approval_returns_to_an_earlier_node(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id, sign = handled(system)
    with pytest.raises(ValidationFailed):
        system.flows.complete(sign["id"], "boss", outcome="return", comment="check", return_to="sign")
    system.flows.complete(sign["id"], "boss", outcome="return", comment="check the urgency")
    (again,) = open_tasks(system, record_id)
    assert again["node"] == "handle" and instance(system, record_id)["current"] == ["handle"]
    (returned,) = history_of(system, record_id, "flow.returned")
    assert returned["data"] == {"to": "handle", "comment": "check the urgency"}
    assert instance(system, record_id)["variables"]["sign"]["outcome"] == "returned"
    system.flows.complete(again["id"], "agent", values={"urgency": "low"})
    (sign2,) = open_tasks(system, record_id)
    system.flows.complete(sign2["id"], "boss", outcome="approve")
    assert instance(system, record_id)["outcome"] == "approved"


def test_an_approval_outcome_must_be_approve_reject_or_return(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    _record_id, sign = handled(system)
    with pytest.raises(ConflictError):
        system.flows.complete(sign["id"], "boss", outcome="done")


def test_a_step_without_outcomes_refuses_an_outcome_and_writes_nothing(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id = submit(system)
    (task,) = open_tasks(system, record_id)
    with pytest.raises(ConflictError, match="has no outcomes"):
        system.flows.complete(task["id"], "agent", values={"urgency": "low"}, outcome="approve")
    assert open_tasks(system, record_id) == [task] and system.forms.get("ticket", record_id)["urgency"] != "low"


def test_only_an_approval_returns_the_record_to_an_earlier_step(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id = submit(system)
    (task,) = open_tasks(system, record_id)
    with pytest.raises(ConflictError, match="only an approval"):
        system.flows.complete(task["id"], "agent", values={"urgency": "low"}, return_to="begin")
    assert open_tasks(system, record_id) == [task]


# -- reopen ------------------------------------------------------------------------------------
def test_reopen_starts_an_ended_flow_again_at_a_named_node(tmp_path: Path) -> None:
    system = make(tmp_path, APPROVAL)
    record_id, sign = handled(system)
    with pytest.raises(ConflictError):
        system.flows.reopen("ticket", record_id, at="handle", actor="agent")
    system.flows.complete(sign["id"], "boss", outcome="reject", comment="no")
    system.flows.reopen("ticket", record_id, at="handle", actor="agent", comment="customer called")
    again = instance(system, record_id)
    assert (again["status"], again["outcome"], again["current"]) == ("running", None, ["handle"])
    (reopened,) = history_of(system, record_id, "flow.reopened")
    assert reopened["node"] == "handle" and reopened["actor"] == "agent"
    assert reopened["data"] == {"previous_outcome": "rejected", "comment": "customer called"}
    (task,) = open_tasks(system, record_id)
    assert task["node"] == "handle"


# -- parallel split and join -------------------------------------------------------------------
def test_a_split_starts_one_token_per_branch(tmp_path: Path) -> None:
    system = make(tmp_path, PARALLEL)
    record_id = submit(system)
    assert instance(system, record_id)["current"] == BRANCHES
    open_ = open_tasks(system, record_id)
    assert [t["node"] for t in open_] == BRANCHES
    system.flows.complete(open_[2]["id"], "r1")
    state = instance(system, record_id)
    assert state["current"] == ["b1", "b2", "b4", "b5"]
    assert state["variables"]["joined"] == {"arrived": 1, "expected": 5, "fired": 0}


def test_five_branches_completing_at_once_fire_the_join_once(tmp_path: Path) -> None:
    system = make(tmp_path, PARALLEL)
    record_id = submit(system)
    open_ = open_tasks(system, record_id)
    barrier = threading.Barrier(len(open_))
    errors: list[BaseException] = []

    def finish(task_id: int) -> None:
        try:
            barrier.wait()
            system.flows.complete(task_id, "r1")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(t["id"],)) for t in open_]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    state = instance(system, record_id)
    assert state["current"] == ["after"]
    assert state["variables"]["joined"] == {"arrived": 0, "expected": 5, "fired": 1}
    (after,) = open_tasks(system, record_id)
    assert after["node"] == "after"
    with read_transaction(system.db) as conn:
        entered = conn.execute(select(history.c.node).where(
            history.c.record_id == record_id, history.c.kind == "flow.entered")).scalars().all()
    assert entered.count("joined") == 5 and entered.count("after") == 1
    system.flows.complete(after["id"], "agent")
    assert instance(system, record_id)["status"] == "completed"


# -- load-time checks --------------------------------------------------------------------------
def test_a_join_must_name_a_parallel_split(tmp_path: Path) -> None:
    broken = PARALLEL.replace("split: split", "split: b1")
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "flows/ticket_flow.yaml": broken})
    assert ("flows/ticket_flow.yaml", 13, 12,
            "join 'joined' must name a parallel split; 'b1' is a task node") in found


def test_approval_targets_and_countersign_counts_are_checked(tmp_path: Path) -> None:
    broken = APPROVAL.replace("return_to: [handle]", "return_to: [handel]")
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "flows/ticket_flow.yaml": broken})
    assert ("flows/ticket_flow.yaml", 18, 17, "unknown node 'handel'") in found
    broken = COUNTERSIGN.replace("{ASSIGN}", "{users: [r1, r2]}").replace("{RULE}", '"2 of 3"')
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "flows/ticket_flow.yaml": broken})
    assert ("flows/ticket_flow.yaml", 11, 20, "'2 of 3' but 2 assignees are listed") in found


def test_a_stale_instance_write_is_a_conflict_not_a_lost_update(tmp_path: Path) -> None:
    from engine.storage.db import transaction

    system = make(tmp_path, PARALLEL)
    record_id = submit(system)
    with transaction(system.db) as conn:
        stale = system.flows._load(conn, instance(system, record_id)["id"])
    system.flows.complete(open_tasks(system, record_id)[0]["id"], "r1")
    stale["variables"]["joined"] = {"arrived": 4, "expected": 5, "fired": 0}
    with pytest.raises(ConflictError), transaction(system.db) as conn:
        system.flows._save(conn, stale)
    assert instance(system, record_id)["variables"]["joined"]["arrived"] == 1
