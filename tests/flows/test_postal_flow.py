"""Every path of the postal complaint flow (REQUIREMENTS section 2), with the record's status."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.storage.db import transaction
from engine.storage.tables import outbox
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
DELAY = {
    "customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
    "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天",
}
DAMAGE = {**DELAY, "category": "damage_goods", "description": "设备破损", "amount_claimed": "4000",
          "account_manager": "accounts"}
"""Level 1 as submitted: the bundle's rules raise the response level above 5000 claimed, for an
urgent damage, and above 50000 (level 3); see rules/complaint_rules.yaml."""


@pytest.fixture
def system(tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


class Case:
    """One complaint walked through the flow by node name."""

    def __init__(self, system: System, values: dict[str, Any], actor: str = "accounts"):
        self.system = system
        self.id = system.forms.submit("complaint", values, actor=actor).record_id

    def open(self) -> list[str]:
        return sorted(t["node"] for t in self.system.flows.open_tasks("complaint", self.id))

    def task(self, node: str) -> dict[str, Any]:
        found = [t for t in self.system.flows.open_tasks("complaint", self.id) if t["node"] == node]
        assert found, f"no open task at {node}; open: {self.open()}"
        return found[0]

    def do(self, node: str, user: str, values: dict[str, Any] | None = None, **kwargs: Any) -> "Case":
        self.system.flows.complete(self.task(node)["id"], user, values=values, **kwargs)
        return self

    @property
    def status(self) -> str:
        return str(self.system.forms.get("complaint", self.id)["status"])

    @property
    def instance(self) -> dict[str, Any]:
        return self.system.flows.instances("complaint", self.id)[-1]

    def history(self, kind: str) -> list[dict[str, Any]]:
        return [h for h in self.system.forms.history("complaint", self.id) if h["kind"] == kind]

    def assess(self, *, finance: bool) -> "Case":
        expected = ["marketing_review", "operations_review"] + (["finance_review"] if finance else [])
        assert self.open() == sorted(expected) and self.status == "in_progress"
        self.do("marketing_review", "marketing", {"marketing_assessment": "大客户续约风险高"})
        self.do("operations_review", "operations", {"operations_finding": "中转装卸不规范"})
        if finance:
            self.do("finance_review", "finance", {"finance_assessment": "保价 10000 元"})
        return self

    def finish(self, satisfaction: int = 5) -> "Case":
        self.do("reply", "agent", {"resolution": "已赔付并致歉"})
        assert self.status == "awaiting_confirmation"
        return self.do("confirm", "agent", {"customer_confirmed": True, "satisfaction": satisfaction})


def accept(system: System, values: dict[str, Any], **fields: Any) -> Case:
    case = Case(system, values)
    assert case.open() == ["accept"] and case.status in ("accepted", "escalated")
    system.flows.claim(case.task("accept")["id"], "agent")
    return case.do("accept", "agent", {"urgency": "normal", **fields})


def test_a_plain_delay_goes_through_marketing_and_operations_and_the_frontline_decides(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    assert case.open() == ["propose"] and case.task("propose")["candidate_users"] == ["agent"]
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2"})
    assert case.open() == ["reply"] and case.status == "awaiting_reply"
    case.finish()
    assert (case.instance["status"], case.instance["outcome"], case.status) == ("completed", "resolved", "resolved")


def test_urgent_damage_goes_to_the_exception_team_copied_to_the_account_manager(system: System) -> None:
    case = accept(system, DAMAGE, urgency="urgent")
    task = case.task("exception_handling")
    assert case.open() == ["exception_handling"] and task["candidate_users"] == ["operations"]
    (copied,) = case.history("task.copied")
    assert copied["data"]["to"] == ["accounts"]
    case.do("exception_handling", "operations", {"operations_finding": "外包装受潮"})
    case.assess(finance=True)  # a claimed amount brings finance in
    assert case.instance["variables"]["assessed"]["fired"] == 1
    # An urgent damage is a level-2 case (the bundle's auto_grade rule): the manager reviews it.
    assert case.open() == ["manager_review"]


def test_a_fee_dispute_brings_finance_in_without_a_claimed_amount(system: System) -> None:
    accept(system, {**DELAY, "category": "fee_overcharge"}).assess(finance=True)


def test_above_5000_the_finance_director_approves(system: System) -> None:
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "6000"})
    assert case.open() == ["director_approval"] and case.status == "awaiting_approval"
    case.do("director_approval", "director", outcome="approve")
    assert case.open() == ["reply"]
    case.finish()
    assert case.instance["variables"]["director_approval"]["outcome"] == "approved"


def test_the_finance_director_is_asked_in_the_wecom_group_with_a_link_to_approve(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_PUBLIC_URL", "https://complaints.example.cn")
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "6000", "basis": "保价条款 4.1"})
    with transaction(system.db) as conn:
        (asked,) = [m for m in conn.execute(select(outbox)).mappings() if m["channel"] == "ops_wecom"
                    and "待审批" in m["subject"]]
    assert asked["recipient"] == "director"
    assert "赔偿 ¥6,000.00" in asked["subject"] and "保价条款 4.1" in asked["body"]
    assert asked["payload"]["data"]["link"] == f"https://complaints.example.cn/records/complaint/{case.id}"


def test_the_reply_sms_quotes_the_result_without_doubling_its_full_stop(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300"})
    case.do("reply", "agent", {"resolution": "已核实并按延误条款赔付。"})
    with transaction(system.db) as conn:
        (reply,) = [m["body"] for m in conn.execute(select(outbox)).mappings() if "已答复" in m["body"]]
    assert "请确认处理结果：已核实并按延误条款赔付。" in reply and "。。" not in reply


def test_a_decided_compensation_goes_to_finances_erp_as_one_webhook(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2"})
    with transaction(system.db) as conn:
        (sent,) = [m for m in conn.execute(select(outbox)).mappings() if m["channel"] == "erp"]
    (compensation,) = system.forms.list("compensation")
    data = sent["payload"]["data"]
    assert (data["form"], data["query_no"]) == ("compensation", compensation["query_no"]) and data["fields"] == {
        "complaint_no": system.forms.get("complaint", case.id)["query_no"], "customer_name": "华中物流客户",
        "amount": "300.00", "basis": "延误赔付条款 3.2"}


def test_the_voucher_number_finances_erp_answers_with_goes_on_the_compensation(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2"})
    outbox = system.runtime.services["outbox"]
    # The ERP is not on this machine: its channel answers as the ERP would, the rest is real.
    monkeypatch.setattr(outbox, "send_now", lambda message: {"voucher_no": "FI-2026-000318"}
                        if message.channel == "erp" else None)
    outbox.deliver()
    (compensation,) = system.forms.list("compensation")
    assert compensation["erp_voucher_no"] == "FI-2026-000318"


def test_exactly_5000_is_within_the_frontline_limit(system: System) -> None:
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "5000"})
    assert case.open() == ["reply"]


def test_a_rejection_sends_the_proposal_back_to_the_agent(system: System) -> None:
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "9000"})
    case.do("director_approval", "director", outcome="reject", comment="超出保价金额")
    assert case.open() == ["propose"] and case.task("propose")["candidate_users"] == ["agent"]
    case.do("propose", "agent", {"compensation": "4800"})
    assert case.open() == ["reply"]


def test_the_director_may_return_the_case_to_a_new_assessment(system: System) -> None:
    case = accept(system, DAMAGE).assess(finance=True)
    case.do("propose", "agent", {"compensation": "9000"})
    case.do("director_approval", "director", outcome="return", comment="请重新核定", return_to="assess")
    case.assess(finance=True)
    assert case.instance["variables"]["assessed"]["fired"] == 2
    assert case.open() == ["propose"]


def test_level_2_sends_the_case_to_the_agents_department_manager(system: System) -> None:
    case = accept(system, DELAY, response_level="2").assess(finance=False)
    assert case.open() == ["manager_review"] and case.status == "escalated"
    assert case.task("manager_review")["candidate_users"] == ["manager"]  # the agent's manager
    case.do("manager_review", "manager", {"review_opinion": "同意一线方案"})
    assert case.open() == ["propose"]


def test_the_manager_may_raise_the_case_to_the_quality_committee(system: System) -> None:
    case = accept(system, DELAY, response_level="2").assess(finance=False)
    case.do("manager_review", "manager", {"response_level": "3", "review_opinion": "重大争议"})
    assert case.open() == ["committee_review"]
    assert case.task("committee_review")["candidate_roles"] == ["quality_committee"]
    case.do("committee_review", "quality", {"review_opinion": "全额赔付"})
    assert case.open() == ["propose"]


def test_a_major_dispute_goes_straight_to_level_3(system: System) -> None:
    case = accept(system, {**DAMAGE, "amount_claimed": "80000"}).assess(finance=True)
    assert case.open() == ["committee_review"] and case.status == "escalated"
    assert system.forms.get("complaint", case.id)["response_level"] == "3"


def test_a_dissatisfied_customer_reopens_the_case_at_level_2_then_level_3(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "100"}).finish(satisfaction=1)
    assert case.open() == ["manager_review"] and case.instance["status"] == "running"
    case.do("manager_review", "manager", {"review_opinion": "补偿不足"})
    case.do("propose", "agent", {"compensation": "600"}).finish(satisfaction=2)
    assert case.open() == ["committee_review"]
    case.do("committee_review", "quality", {"review_opinion": "加倍赔付"})
    case.do("propose", "agent", {"compensation": "1200"}).finish(satisfaction=4)
    assert case.instance["outcome"] == "resolved"


def test_a_customer_who_does_not_confirm_is_not_closed_whatever_the_rating(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "0"})
    case.do("reply", "agent", {"resolution": "已解释"})
    case.do("confirm", "agent", {"customer_confirmed": False, "satisfaction": 5})
    assert case.open() == ["manager_review"]


def test_a_closed_case_can_be_reopened_at_the_proposal(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "0"}).finish()
    system.flows.reopen("complaint", case.id, at="propose", actor="agent", comment="客户来电不满")
    assert case.open() == ["propose"] and case.status == "in_progress"
    assert case.task("propose")["candidate_users"] == ["agent"]


def test_the_accept_task_can_be_reassigned_and_the_new_owner_keeps_the_case(system: System) -> None:
    case = Case(system, DELAY)
    system.flows.reassign(case.task("accept")["id"], "supervisor", by="agent", comment="休假")
    case.do("accept", "supervisor", {"urgency": "normal"}).assess(finance=False)
    assert case.task("propose")["candidate_users"] == ["supervisor"]


def test_escalating_a_step_adds_the_department_manager_then_the_committee(system: System) -> None:
    case = Case(system, DELAY)
    system.flows.claim(case.task("accept")["id"], "agent")
    task_id = case.task("accept")["id"]
    with transaction(system.db) as conn:
        system.flows.escalate(conn, task_id, 2, "system")
    task = case.task("accept")
    assert (task["status"], task["candidate_users"], case.status) == ("claimed", ["manager"], "escalated")
    assert [t.id for t in system.flows.inbox("manager", roles=["manager"])] == [task_id]
    with transaction(system.db) as conn:
        system.flows.escalate(conn, task_id, 3, "system")
    assert case.task("accept")["candidate_roles"] == ["agent", "quality_committee"]
    assert [t.id for t in system.flows.inbox("quality", roles=["quality_committee"])] == [task_id]
    assert [h["data"]["level"] for h in case.history("task.escalated")] == [2, 3]


def test_the_submitter_may_withdraw_the_complaint(system: System) -> None:
    case = accept(system, DELAY)
    system.flows.withdraw("complaint", case.id, actor="accounts", comment="客户已自行解决")
    assert case.open() == [] and case.status == "withdrawn"
    assert (case.instance["status"], case.instance["outcome"]) == ("withdrawn", "withdrawn")
