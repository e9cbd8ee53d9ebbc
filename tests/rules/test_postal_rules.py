"""The postal bundle's rules and SLA (REQUIREMENTS section 3) on the real definitions."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import outbox
from tests.flows.test_postal_flow import accept
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
SHANGHAI = timezone(timedelta(hours=8))
MONDAY_10AM = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

DELAY = {"customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "13912345678",
         "occurred_at": "2026-11-19T09:00:00+08:00", "category": "transport_late",
         "description": "延误三天", "account_manager": "accounts"}


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(MONDAY_10AM))


def submit(system: System, **values: Any) -> int:
    return system.forms.submit("complaint", {**DELAY, **values}, actor="agent").record_id


def sent(system: System) -> list[dict[str, Any]]:
    with read_transaction(system.db) as conn:
        return [dict(r) for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]


def record(system: System, record_id: int) -> dict[str, Any]:
    return system.forms.get("complaint", record_id)


def tick_until(system: System, when: datetime) -> None:
    system.runtime.clock.set(when)  # type: ignore[attr-defined]
    while system.runtime.services["timers"].tick():
        pass


def test_the_customer_gets_an_acknowledgement_with_the_query_number(system: System) -> None:
    complaint = submit(system)
    query_no = record(system, complaint)["query_no"]
    (ack,) = [m for m in sent(system) if m["recipient"] == "13912345678"]
    assert query_no in ack["body"] and "已受理" in ack["body"]


def test_a_claim_over_5000_is_raised_to_level_2(system: System) -> None:
    small = submit(system, amount_claimed="800", category="damage_goods")
    big = submit(system, amount_claimed="8000", category="damage_goods")
    assert record(system, small)["response_level"] == "1"
    assert record(system, big)["response_level"] == "2"
    assert any("已升级为 2 级" in m["subject"] for m in sent(system))


def test_a_message_shows_a_choice_by_its_label_not_its_stored_value(system: System) -> None:
    submit(system, amount_claimed="8000", category="damage_goods", urgency="important")
    (raised,) = [m["body"] for m in sent(system) if "已升级" in m["subject"]]
    assert "紧急程度 重要。" in raised and "important" not in raised


def test_the_third_complaint_in_30_days_flags_the_customer_and_raises_the_level(system: System) -> None:
    rules = system.runtime.services["rules"]
    first = submit(system)
    system.runtime.clock.advance(timedelta(days=3))  # type: ignore[attr-defined]
    second = submit(system)
    third = submit(system)
    assert rules.tags("complaint", second) == []
    assert rules.tags("complaint", third) == ["repeat_customer"]
    assert (record(system, first)["response_level"], record(system, third)["response_level"]) == ("1", "2")


def test_five_complaints_of_one_category_in_two_hours_open_a_defect_analysis(system: System) -> None:
    for _ in range(5):
        submit(system, customer_name="客户" + str(_))
        system.runtime.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    (analysis,) = system.forms.list("defect_analysis")
    assert any(m["subject"].endswith("Batch of complaints: 运输 / 时效延误 / 运输超时") for m in sent(system))
    assert analysis["category"] == "transport_late" and analysis["complaints"] == 5
    (task,) = system.flows.open_tasks("defect_analysis", analysis["id"])
    assert task["node"] == "analyse" and task["candidate_roles"] == ["quality_committee"]


def test_a_defect_analysis_sends_the_improvement_to_its_owner_and_judges_its_effect_30_days_on(
        system: System) -> None:
    for i in range(5):
        submit(system, customer_name=f"客户{i}")
        system.runtime.clock.advance(timedelta(minutes=20))  # type: ignore[attr-defined]
    (analysis,) = system.forms.list("defect_analysis")
    flows = system.flows
    (task,) = flows.open_tasks("defect_analysis", analysis["id"])
    flows.complete(task["id"], "quality", values={"root_cause": "中转站分拣延误", "improvement": "增加夜班分拣",
                                                  "owner_department": "operations"})
    (task,) = flows.open_tasks("defect_analysis", analysis["id"])
    assert (task["node"], task["candidate_department"]) == ("implement", "operations")
    assert system.forms.get("defect_analysis", analysis["id"])["complaints_before"] == 5
    flows.complete(task["id"], "operations", values={"implementation": "夜班分拣已于本周上线"})
    assert flows.open_tasks("defect_analysis", analysis["id"]) == []  # watching for 30 days
    done = system.runtime.clock.now()
    tick_until(system, done + timedelta(days=3))
    submit(system, customer_name="客户9")  # one more of the category in the 30 days after
    tick_until(system, done + timedelta(days=30, minutes=1))
    (task,) = flows.open_tasks("defect_analysis", analysis["id"])
    assert task["node"] == "effect_review"
    assert system.forms.get("defect_analysis", analysis["id"])["complaints_after"] == 1
    flows.complete(task["id"], "quality", values={"effect": "effective", "effect_note": "同类投诉明显下降"})
    assert flows.instances("defect_analysis", analysis["id"])[-1]["outcome"] == "analysed"


def test_an_urgent_complaint_turns_yellow_then_red_and_reminds_handler_and_superior(system: System) -> None:
    complaint = submit(system, urgency="urgent")
    sla = system.runtime.services["sla"]
    # Urgent: respond within 1 working hour; yellow with 12 minutes left (10:48).
    tick_until(system, datetime(2026, 11, 23, 10, 48, tzinfo=SHANGHAI))
    with read_transaction(system.db) as conn:
        response = next(s for s in sla.state_of(conn, "complaint", complaint) if s.target == "response")
    assert response.status == "yellow"
    reminders = [m for m in sent(system) if "黄色预警" in m["subject"]]
    assert reminders and {"agent", "supervisor"} <= set(", ".join(m["recipient"] for m in reminders).split(", "))
    tick_until(system, datetime(2026, 11, 23, 11, 0, tzinfo=SHANGHAI))
    assert any("红色预警" in m["subject"] for m in sent(system))
    assert "overdue" in system.runtime.services["rules"].tags("complaint", complaint)


def test_a_warning_names_the_target_in_words_and_the_deadline_in_local_time(system: System) -> None:
    submit(system, urgency="urgent")
    tick_until(system, datetime(2026, 11, 23, 10, 48, tzinfo=SHANGHAI))
    (yellow,) = {m["body"] for m in sent(system) if "黄色预警" in m["subject"]}
    # Urgent: respond within 1 working hour of 10:00 Shanghai time (02:00 UTC).
    assert "首次响应时限剩余不足 20%，11月23日 11:00 截止" in yellow
    assert "response" not in yellow and "+00:00" not in yellow


def test_an_urgent_complaint_without_updates_escalates_to_supervisor_then_manager(system: System) -> None:
    submit(system, urgency="urgent")
    tick_until(system, datetime(2026, 11, 23, 12, 0, tzinfo=SHANGHAI))
    tick_until(system, datetime(2026, 11, 23, 15, 30, tzinfo=SHANGHAI))  # lunch 12:00-13:30
    escalations = [m for m in sent(system) if "已升级 / escalated" in m["subject"]]
    assert [m["recipient"] for m in escalations] == ["supervisor", "manager"]


def test_the_team_group_gets_the_morning_backlog_with_its_chart(system: System) -> None:
    submit(system)
    tick_until(system, datetime(2026, 11, 24, 8, 31, tzinfo=SHANGHAI))
    (report,) = [m for m in sent(system) if m["payload"]["data"].get("dashboard") == "operations"]
    assert report["channel"] == "ops_wecom" and report["subject"] == "运营处理看板 2026-11-24"
    (chart,) = [a for a in report["payload"]["data"]["attachments"] if a["name"].endswith("backlog_by_department.png")]
    assert chart["content_type"] == "image/png"


def test_knowledge_base_articles_are_recommended_by_category(system: System) -> None:
    system.forms.submit("knowledge_article", {"category": "transport_late", "problem": "中转滞留",
                                              "solution": "联系中转场加急"}, actor="agent")
    complaint = submit(system)
    (entry,) = [h for h in system.forms.history("complaint", complaint) if h["kind"] == "kb.recommended"]
    assert [e["title"] for e in entry["data"]["entries"]] == ["中转滞留"]


def test_every_rule_sla_and_table_of_the_postal_bundle_has_a_bilingual_label(system: System) -> None:
    bundle = system.bundle
    labels = [r.label for rs in bundle.all("ruleset").values() for r in rs.rules.values()]
    labels += [rs.label for rs in bundle.all("ruleset").values()]
    for policy in bundle.all("sla").values():
        labels += [policy.label, *(t.label for t in policy.targets.values())]
    labels += [t.label for t in bundle.all("decision_table").values()]
    assert labels and all(isinstance(x, dict) and {"zh-CN", "en"} <= set(x) for x in labels), labels


def test_every_rule_condition_gives_the_same_result_for_the_same_inputs_and_clock(system: System) -> None:
    """RELIABILITY 10 for the rules: aggregates read the database, decide() the tables."""
    from engine.expr import EvalContext

    complaint = submit(system, amount_claimed="8000")
    rules = system.runtime.services["rules"]
    sla = system.runtime.services["sla"]
    conditions = [r.when for r in rules.rules.values() if r.when is not None]
    conditions += [lv.when for p in sla.policies.values() for lv in p.levels if lv.when is not None]
    ctx = EvalContext(now=system.runtime.clock.now(), calendar=system.bundle.meta.calendar,
                      services=system.runtime.services)
    record = system.forms.get("complaint", complaint)
    names = {**record, "record": record, "tags": ["repeat_customer"], "event": {"name": "x"}}
    first = [c.evaluate(names, ctx) for c in conditions]
    assert [c.evaluate(names, ctx) for c in conditions] == first
    assert len(conditions) >= 6


def test_a_withdrawn_complaint_tells_the_customer_so_and_not_that_it_was_resolved(system: System) -> None:
    record_id = submit(system)
    system.flows.withdraw("complaint", record_id, actor="agent")  # who submitted it
    bodies = [m["body"] for m in sent(system)]
    assert any("已撤回" in b for b in bodies)
    assert not any("已解决" in b for b in bodies)


def test_a_complaint_reopened_and_resolved_again_tells_the_customer_again(system: System) -> None:
    case = accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "300", "basis": "条款"})
    case.finish()
    system.flows.reopen("complaint", case.id, at="reply", actor="manager", comment="客户来电：未收到赔付")
    case.finish()
    resolved = [m for m in sent(system) if "已解决" in m["body"]]
    assert len(resolved) == 2


def expressions_of(value: Any, seen: set[int] | None = None) -> list[Any]:
    """Every compiled expression reachable from `value` (specs, mappings, sequences), in a
    stable order: the walk follows field and key order, which loading fixes."""
    from dataclasses import fields, is_dataclass

    from engine.expr import Expression

    seen = set() if seen is None else seen
    if id(value) in seen or isinstance(value, (str, bytes, int, float, type(None))):
        return []
    seen.add(id(value))
    if isinstance(value, Expression):
        return [value]
    if is_dataclass(value) and not isinstance(value, type):
        children: list[Any] = [getattr(value, f.name) for f in fields(value)]
    elif isinstance(value, dict) or hasattr(value, "items") and hasattr(value, "keys"):
        children = list(value.values())
    elif isinstance(value, (list, tuple, frozenset, set)):
        children = list(value) if not isinstance(value, (set, frozenset)) else sorted(value, key=repr)
    else:
        return []
    return [e for child in children for e in expressions_of(child, seen)]


def test_every_expression_of_the_postal_bundle_gives_the_same_result_on_a_second_system(
        tmp_path: Path) -> None:
    """RELIABILITY 10: two systems booted from the postal bundle with the same injected clock give
    the same value (or the same failure) for every expression of every definition, over the same
    complaint in the same database. Simulation and replay depend on it."""
    from engine.errors import ExpressionError
    from engine.expr import EvalContext

    def outcomes(system: System, names: dict[str, Any]) -> list[tuple[str, str]]:
        ctx = EvalContext(now=system.runtime.clock.now(), calendar=system.bundle.meta.calendar,
                          services=system.runtime.services)
        found = []
        for kind in sorted(system.bundle.definitions):
            for expr in expressions_of(dict(system.bundle.all(kind))):
                try:
                    found.append((expr.source, repr(expr.evaluate(names, ctx))))
                except ExpressionError as error:
                    found.append((expr.source, f"error: {error.message}"))
        return found

    first, second = (boot(POSTAL, db_url=f"sqlite:///{tmp_path / f'{n}.db'}", clock=ManualClock(MONDAY_10AM))
                     for n in ("first", "second"))
    complaint = record(first, submit(first, amount_claimed="8000"))
    submit(second, amount_claimed="8000")  # the same database content: aggregates read it
    names = {**complaint, "record": complaint, "tags": ["repeat_customer"], "event": {"name": "x"}}
    results = outcomes(first, names)
    assert len(results) >= 30 and sum(not r.startswith("error") for _, r in results) >= 20
    assert outcomes(second, names) == results
