"""Escalation levels 1-3 (分级响应): `FlowService.escalate` and a node's `escalation:` levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConflictError
from engine.events import Event
from engine.storage.db import transaction
from tests.engine.bundle_kit import problems
from tests.flows.kit import BUNDLE, FORM, history_of, make, submit, task_at

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: handle
      handle:
        type: task
        assign: {role: agent, strategy: round_robin}
        fields: [note]
        escalation:
          - level: 2
            label: {zh-CN: 部门经理, en: Department manager}
            assign: {manager_of: "assignee_of: handle"}
            keep_assignees: true
            cc: {expression: owner}
          - level: 3
            assign: {role: committee}
            when: (amount or 0) > 50000
        next: done
      done:
        type: end
    """


def escalate(system, task_id: int, level: int, actor: str | None = "system") -> None:  # type: ignore[no-untyped-def]
    with transaction(system.db) as conn:
        system.flows.escalate(conn, task_id, level, actor)


def test_level_2_adds_the_assignees_manager_and_copies_the_owner(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    seen: list[Event] = []
    system.runtime.bus.subscribe("task.escalated", lambda event, conn: seen.append(event))
    record_id = submit(system, owner="acct")
    task = task_at(system, record_id, "handle")
    assert task["escalation_level"] == 0
    escalate(system, task["id"], 2)
    task = task_at(system, record_id, "handle")
    assert task["escalation_level"] == 2 and task["status"] == "claimed"
    assert task["candidate_users"] == ["ann", "max"]  # ann keeps it, her manager max joins
    assert [t.id for t in system.flows.inbox("max")] == [task["id"]]
    assert system.flows.inbox("max")[0].escalation_level == 2
    (entry,) = history_of(system, record_id, "task.escalated")
    assert entry["data"] == {"task_id": task["id"], "level": 2, "from_level": 0, "reason": "system",
                             "assignee": "max", "roles": None, "keep": True}
    (copied,) = history_of(system, record_id, "task.copied")
    assert copied["data"]["to"] == ["acct"]
    assert [(e.data["level"], e.data["node"]) for e in seen] == [(2, "handle")]


def test_level_3_replaces_the_assignees_with_the_committee(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    task = task_at(system, record_id, "handle")
    escalate(system, task["id"], 3, actor="max")
    task = task_at(system, record_id, "handle")
    assert (task["status"], task["assignee_user"], task["candidate_roles"]) == ("open", None, ["committee"])
    assert [t.id for t in system.flows.inbox("queen", roles=["committee"])] == [task["id"]]
    assert system.flows.inbox("ann", roles=["agent"]) == []
    (entry,) = history_of(system, record_id, "task.escalated")
    assert (entry["actor"], entry["data"]["reason"]) == ("max", "manual")


def test_a_level_without_an_entry_is_still_recorded_on_the_task(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    task = task_at(system, record_id, "handle")
    system.flows.escalate_task(task["id"], 1, by="ann")
    task = task_at(system, record_id, "handle")
    assert task["escalation_level"] == 1 and task["candidate_users"] == ["ann"]
    assert history_of(system, record_id, "task.escalated")[0]["data"]["level"] == 1


def test_escalating_to_the_same_or_a_lower_level_changes_nothing(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    task = task_at(system, record_id, "handle")
    escalate(system, task["id"], 2)
    escalate(system, task["id"], 2)
    escalate(system, task["id"], 1)
    assert len(history_of(system, record_id, "task.escalated")) == 1


def test_a_completed_task_is_never_escalated(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    task = task_at(system, record_id, "handle")
    system.flows.complete(task["id"], "ann")
    escalate(system, task["id"], 3)
    assert history_of(system, record_id, "task.escalated") == []


def test_a_level_outside_1_to_3_is_refused(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    task = task_at(system, submit(system), "handle")
    with pytest.raises(ValueError, match="1, 2 or 3"):
        escalate(system, task["id"], 4)


def test_a_condition_escalates_the_task_as_it_opens(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system, amount="80000")
    task = task_at(system, record_id, "handle")
    assert task["escalation_level"] == 3 and task["candidate_roles"] == ["committee"]
    assert history_of(system, record_id, "task.escalated")[0]["data"]["reason"] == "condition"
    assert task_at(system, submit(system, amount="100"), "handle")["escalation_level"] == 0


def test_a_manager_that_cannot_be_found_is_a_clear_conflict(tmp_path: Path) -> None:
    flow = FLOW.replace('manager_of: "assignee_of: handle"', "manager_of: owner")
    system = make(tmp_path, flow)
    task = task_at(system, submit(system, owner="queen"), "handle")  # queen has no manager
    with pytest.raises(ConflictError, match="queen has no manager"):
        escalate(system, task["id"], 2)


def test_escalation_levels_are_checked_at_load(tmp_path: Path) -> None:
    broken = FLOW.replace("level: 3", "level: 2").replace("{role: committee}", "{role: comittee}")
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": broken})
    messages = {m for _f, _l, _c, m in found}
    assert "escalation level 2 is defined twice" in messages
    broken = FLOW.replace('"assignee_of: handle"', '"assignee_of: handel"')
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": broken})
    assert ("flows/ticket_flow.yaml", 15, 30, "unknown node 'handel'") in found
