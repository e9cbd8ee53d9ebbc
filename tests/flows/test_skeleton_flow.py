"""The postal flow's start and its basic commands: a new complaint starts it, tasks move it on.

Every path of the flow is walked in test_postal_flow.py."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import ConflictError
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华北制造集团", "contact_name": "刘女士", "contact_phone": "010-66668888",
    "occurred_at": "2026-11-21T09:00:00+08:00", "category": "damage_goods",
    "description": "设备运输途中破损", "amount_claimed": "8000", "region": "north",
}


@pytest.fixture
def system(tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def submit(system: System) -> int:
    return system.forms.submit("complaint", COMPLAINT, actor="accounts").record_id


def test_a_new_complaint_starts_its_flow_at_the_accept_task(system: System) -> None:
    record_id = submit(system)
    (instance,) = system.flows.instances("complaint", record_id)
    assert instance["status"] == "running" and instance["current"] == ["accept"]
    assert instance["bundle_hash"] == system.bundle.hash
    assert [t["node"] for t in system.flows.open_tasks("complaint", record_id)] == ["accept"]


def test_the_accept_task_is_in_every_agents_inbox(system: System) -> None:
    record_id = submit(system)
    inbox = system.flows.inbox("agent", roles=["agent"])
    assert [(t.record_id, t.node, t.status) for t in inbox] == [(record_id, "accept", "open")]
    assert system.flows.inbox("finance", roles=["finance"]) == []


def test_an_urgent_complaint_goes_to_the_exception_team(system: System) -> None:
    record_id = submit(system)
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.claim(task["id"], "agent")
    system.flows.complete(task["id"], "agent", values={"urgency": "urgent"})
    (next_task,) = system.flows.open_tasks("complaint", record_id)
    assert next_task["node"] == "exception_handling"
    assert system.forms.get("complaint", record_id)["status"] == "in_progress"


def test_a_normal_complaint_goes_to_the_departments_assessment(system: System) -> None:
    record_id = submit(system)
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"})
    nodes = sorted(t["node"] for t in system.flows.open_tasks("complaint", record_id))
    assert nodes == ["finance_review", "marketing_review", "operations_review"]  # 8000 claimed
    (instance,) = system.flows.instances("complaint", record_id)
    assert sorted(instance["current"]) == nodes


def test_a_task_may_only_edit_its_own_fields(system: System) -> None:
    from engine.errors import ValidationFailed

    record_id = submit(system)
    (task,) = system.flows.open_tasks("complaint", record_id)
    with pytest.raises(ValidationFailed) as info:
        system.flows.complete(task["id"], "agent", values={"resolution": "too early"})
    assert "resolution" in info.value.errors
    assert system.flows.open_tasks("complaint", record_id)[0]["status"] == "open"


def test_completing_a_task_twice_is_a_conflict(system: System) -> None:
    record_id = submit(system)
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"})
    with pytest.raises(ConflictError):
        system.flows.complete(task["id"], "agent", values={"urgency": "urgent"})


def test_the_history_records_each_step(system: System) -> None:
    record_id = submit(system)
    (task,) = system.flows.open_tasks("complaint", record_id)
    system.flows.complete(task["id"], "agent", values={"urgency": "normal"}, comment="已核实")
    kinds = [(h["kind"], h["node"]) for h in system.forms.history("complaint", record_id)
             if h["kind"].startswith(("record.created", "flow.", "task.completed"))]  # rules add their own
    assert kinds == [("record.created", None), ("flow.started", "received"), ("flow.entered", "received"),
                     ("flow.entered", "accept"), ("task.completed", "accept"), ("flow.entered", "route"),
                     ("flow.entered", "assess"), ("flow.entered", "marketing_review"),
                     ("flow.entered", "operations_review"), ("flow.entered", "fees_check"),
                     ("flow.entered", "finance_review")]


def test_a_failure_inside_the_flow_start_stores_no_record(system: System) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("injected failure after the record insert")

    system.flows.start = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        submit(system)
    assert system.forms.count("complaint") == 0
