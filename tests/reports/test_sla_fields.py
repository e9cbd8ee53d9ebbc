"""A dataset field `sla: <target>` reads the verdict of each record's SLA target (met, missed;
none while undecided), a fact kept in the transaction that decides it, so a dashboard counts
what met its service level in working time as the SLA itself judged it, and a rollup keeps
the count (ADR 0012, session 17)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.identity import Principal
from engine.storage.db import read_transaction
from engine.storage.tables import report_verdicts
from tests.rules.kit import SHANGHAI, SLA, advance_to, clock, complete, errors, make, states, statements, submit
from web.system import System

DATASET = """\
    dataset: tickets
    form: ticket
    fields:
      created: {field: created_at}
      category: {field: category}
      responded: {sla: response, label: {zh-CN: 响应时限, en: Response deadline}}
    measures:
      tickets: {count: true}
      on_time_rate:
        rate: responded == "met"
        of: responded != None
    rollups:
      daily: {date: created}
      by_category: {date: created, dimensions: [category]}
      by_verdict: {date: created, dimensions: [responded]}
    """
BOARD = """\
    dashboard: board
    widgets:
      rate: {chart: kpi, dataset: tickets, measures: [on_time_rate]}
      by_verdict: {chart: bar, dataset: tickets, dimensions: [responded], measures: [tickets]}
      by_category: {chart: bar, dataset: tickets, dimensions: [category], measures: [on_time_rate]}
    """
FILES = {"sla/ticket_sla.yaml": SLA, "reports/tickets.yaml": DATASET, "dashboards/board.yaml": BOARD}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture
def system(tmp_path: Path) -> System:
    """Three tickets on Monday 09:00, eight working hours each to respond: one accepted at
    10:00 (met), one on Tuesday at 10:00 (missed), one still waiting (in time until 18:00)."""
    booted = make(tmp_path, FILES)
    met, missed, _waiting = (submit(booted, category=c) for c in ("delivery", "delivery", "billing"))
    clock(booted).set(at(23, 10))
    complete(booted, met, "accept")
    clock(booted).set(at(24, 10))
    complete(booted, missed, "accept")
    clock(booted).set(at(23, 17))  # back on Monday: the third is still in time
    return booted


def run(system: System, widget: str, *, rollups: bool = True) -> tuple[list[dict[str, Any]], str | None]:
    """The widget's rows and the rollup that answered (None: the records); `rollups=False`
    reads the records."""
    reports = system.runtime.services["reports"]
    board = reports.dashboard("board")
    keeper = None if rollups else system.runtime.services.pop("rollups")
    try:
        result = reports.run(board, board.widgets[widget], {}, Principal.system())
    finally:
        if keeper is not None:
            system.runtime.services["rollups"] = keeper
    return result.rows, result.source


def by_verdict(system: System, *, rollups: bool = True) -> dict[Any, int]:
    return {r["responded"]: r["tickets"] for r in run(system, "by_verdict", rollups=rollups)[0]}


def test_a_target_met_in_working_time_counts_as_on_time_and_a_missed_one_does_not(system: System) -> None:
    assert run(system, "rate", rollups=False)[0] == [{"on_time_rate": 0.5}]  # the waiting one is undecided


def test_records_group_by_their_verdict_an_undecided_one_by_none(system: System) -> None:
    assert by_verdict(system, rollups=False) == {"met": 1, "missed": 1, None: 1}


def test_a_waiting_record_is_missed_once_its_deadline_passes_as_its_page_turns_red(system: System) -> None:
    waiting = 3
    advance_to(system, at(23, 18))
    assert states(system, waiting)["response"][0] == "red"
    assert by_verdict(system, rollups=False) == {"met": 1, "missed": 2}


def test_the_verdict_is_read_from_the_kept_fact_not_from_the_clocks(system: System) -> None:
    with statements(system) as seen:
        run(system, "by_verdict", rollups=False)
    assert [s for s in seen if "dk_report_verdicts" in s]
    assert not [s for s in seen if "dk_sla_clocks" in s]


def test_a_rollup_answers_a_rate_over_the_verdict_as_the_records_do(system: System) -> None:
    for widget in ("rate", "by_category"):
        rows, source = run(system, widget)
        assert source is not None, widget
        assert rows == run(system, widget, rollups=False)[0], widget


def test_a_rollup_groups_by_the_verdict_and_follows_it_as_it_is_decided(system: System) -> None:
    assert run(system, "by_verdict")[1] == "by_verdict"
    assert by_verdict(system) == {"met": 1, "missed": 1, None: 1}
    advance_to(system, at(23, 18))  # the breach timer decides the waiting ticket: missed
    assert by_verdict(system) == by_verdict(system, rollups=False) == {"met": 1, "missed": 2}
    assert run(system, "rate")[0] == [{"on_time_rate": pytest.approx(1 / 3)}]


def test_the_fact_is_none_while_a_target_is_undecided(system: System) -> None:
    with read_transaction(system.db) as conn:
        kept = dict(conn.execute(sa.select(report_verdicts.c.record_id, report_verdicts.c.verdict)
                                 .where(report_verdicts.c.target == "response")).all())
    assert kept == {1: "met", 2: "missed"}  # the third never had a verdict to keep


def test_an_sla_field_naming_a_target_the_policy_lacks_is_an_error_at_it(tmp_path: Path) -> None:
    dataset = DATASET.replace("sla: response", "sla: respond")
    found = errors(tmp_path, {**FILES, "reports/tickets.yaml": dataset})
    assert [(f, line, m) for f, line, _, m in found] == [("reports/tickets.yaml", 6, "unknown SLA target 'respond'")]


def test_a_literal_compared_with_an_sla_field_must_be_a_verdict(tmp_path: Path) -> None:
    dataset = DATASET.replace('rate: responded == "met"', 'rate: responded == "running"')
    found = errors(tmp_path, {**FILES, "reports/tickets.yaml": dataset})
    assert [m for *_, m in found] == ["'running' is not an option of 'responded': the comparison could never hold"]


def test_an_sla_field_naming_a_target_two_policies_share_is_an_error_at_it(tmp_path: Path) -> None:
    second = SLA.replace("sla: ticket_sla", "sla: vip_sla")
    found = errors(tmp_path, {**FILES, "sla/vip_sla.yaml": second})
    assert [(f, line, m.split(":")[0]) for f, line, _, m in found] == [
        ("reports/tickets.yaml", 6, "the SLA policies ticket_sla, vip_sla of form 'ticket' both have a target 'response'")]

