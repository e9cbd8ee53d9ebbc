"""RELIABILITY 33: a recorded command log replayed on a fresh database with a fake clock gives
identical state and history; replayed against an incompatible bundle it fails loudly."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from flows.replay import Recorder, ReplayDivergence, digest, replay
from tests.flows.kit import make
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
DAMAGE = {
    "customer_name": "华北制造集团", "contact_name": "刘女士", "contact_phone": "010-66668888",
    "occurred_at": "2026-11-21T09:00:00+08:00", "category": "damage_goods", "description": "设备破损",
    "amount_claimed": "4000", "account_manager": "accounts",
}


def postal(tmp_path: Path, name: str, root: Path = POSTAL) -> System:
    (tmp_path / name).mkdir()
    return boot(root, db_url=f"sqlite:///{tmp_path / name / 'docket.db'}", clock=ManualClock(START))


def open_task(system: System, record_id: int, node: str) -> int:
    (task,) = [t for t in system.flows.open_tasks("complaint", record_id) if t["node"] == node]
    return int(task["id"])


def record_scenario(system: System) -> Recorder:
    """A complaint through urgent damage handling (a level-2 case), a rejected proposal, an
    escalation, a dissatisfied customer and the quality committee, to closure and a reopening;
    a second one reassigned and withdrawn."""
    rec = Recorder(system)
    record_id = rec.submit("complaint", DAMAGE, actor="accounts")
    steps = [
        ("claim", "accept", "agent", {}),
        ("complete", "accept", "agent", {"values": {"urgency": "urgent"}, "comment": "已核实"}),
        ("complete", "exception_handling", "operations", {"values": {"operations_finding": "装卸"}}),
        ("complete", "marketing_review", "marketing", {}),
        ("complete", "finance_review", "finance", {}),
        ("complete", "operations_review", "operations", {}),
        ("complete", "manager_review", "manager", {"values": {"review_opinion": "先赔付"}}),
        ("complete", "propose", "agent", {"values": {"compensation": "9000"}}),
        ("complete", "director_approval", "director", {"outcome": "reject", "comment": "过高"}),
        ("escalate", "propose", None, {"level": 2}),
        ("complete", "propose", "agent", {"values": {"compensation": "4500"}}),
        ("complete", "reply", "agent", {"values": {"resolution": "赔付 4500 元"}}),
        ("complete", "confirm", "agent", {"values": {"customer_confirmed": True, "satisfaction": 2}}),
        ("complete", "committee_review", "quality", {"values": {"review_opinion": "加赔"}}),
        ("complete", "propose", "agent", {"values": {"compensation": "5000"}}),
        ("complete", "reply", "agent", {"values": {"resolution": "赔付 5000 元"}}),
        ("complete", "confirm", "agent", {"values": {"customer_confirmed": True, "satisfaction": 5}}),
    ]
    for op, node, user, extra in steps:
        rec.advance(hours=3)
        task_id = open_task(system, record_id, node)
        if op == "claim":
            rec.claim(task_id, user)
        elif op == "escalate":
            rec.escalate(task_id, extra["level"])
        else:
            rec.complete(task_id, user, **extra)
    rec.reopen("complaint", record_id, at="propose", actor="agent")
    other = rec.submit("complaint", {**DAMAGE, "category": "delivery_late"}, actor="accounts")
    rec.reassign(open_task(system, other, "accept"), "supervisor", by="agent")
    rec.withdraw("complaint", other, actor="accounts")
    return rec


def test_replaying_the_log_on_a_fresh_database_gives_identical_state_and_history(tmp_path: Path) -> None:
    original = postal(tmp_path, "original")
    rec = record_scenario(original)
    assert original.flows.instances("complaint", 1)[-1]["current"] == ["propose"]
    again = postal(tmp_path, "replayed")
    replay(again, rec.dumps())  # through JSON, as a stored log would be
    assert digest(again) == digest(original)
    assert [again.forms.get("complaint", i)["status"] for i in (1, 2)] == ["in_progress", "withdrawn"]


def test_replaying_against_a_bundle_with_another_approval_limit_fails_at_the_first_difference(tmp_path: Path) -> None:
    rec = record_scenario(postal(tmp_path, "original"))
    changed = tmp_path / "changed_bundle"
    shutil.copytree(POSTAL, changed)
    flow = changed / "flows" / "complaint_handling.yaml"
    flow.write_text(flow.read_text("utf-8").replace("(compensation or 0) > 5000", "(compensation or 0) > 10000"),
                    "utf-8")
    with pytest.raises(ReplayDivergence, match=r"command 9 \(complete .*node=propose.*\) diverged") as info:
        replay(postal(tmp_path, "replayed", changed), rec.log)
    assert "director_approval" in str(info.value) and "'reply'" in str(info.value)


def test_replaying_against_a_bundle_that_routes_differently_fails_loudly(tmp_path: Path) -> None:
    rec = record_scenario(postal(tmp_path, "original"))
    changed = tmp_path / "changed_bundle"
    shutil.copytree(POSTAL, changed)
    flow = changed / "flows" / "complaint_handling.yaml"
    flow.write_text(flow.read_text("utf-8").replace('when: urgency == "urgent" and', 'when: urgency == "normal" and'), "utf-8")
    with pytest.raises(ReplayDivergence, match="command 3 "):
        replay(postal(tmp_path, "replayed", changed), rec.log)


WAIT_FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: pause
      pause:
        type: wait
        for: 1 workdays
        next: handle
      handle:
        type: task
        assign: {role: agent}
        next: done
      done:
        type: end
    """


def test_a_replayed_timer_fires_at_the_same_fake_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    original = make(tmp_path / "a", WAIT_FLOW)
    rec = Recorder(original)
    record_id = rec.submit("ticket", {"title": "printer"}, actor="ann")
    rec.advance(hours=4)
    assert rec.tick("ticket", record_id) == 0
    rec.advance(days=1)
    assert rec.tick("ticket", record_id) == 1
    (task,) = original.flows.open_tasks("ticket", record_id)
    rec.complete(task["id"], "ann")
    (tmp_path / "b").mkdir()
    again = make(tmp_path / "b", WAIT_FLOW)
    replay(again, rec.log)
    assert digest(again) == digest(original)
    assert timedelta(0) < again.runtime.clock.now() - START
