"""A dataset field `sla: <target>` reads the state of each record's SLA clock (running, paused,
met, missed), so a dashboard counts what met its service level in working time, as the SLA
itself measured it, rather than approximating it in calendar hours."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.clock import ManualClock
from engine.identity import Principal
from engine.storage.db import read_transaction
from reports.query import Filters, run_widget
from tests.engine.bundle_kit import problems
from tests.flows.kit import BUNDLE, FORM, NOW, make, submit, task_at
from web.system import System

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin: {type: start, next: handle}
      handle:
        type: task
        assign: {role: agent}
        next: done
      done: {type: end}
    """
SLA = """\
    sla: ticket_sla
    form: ticket
    counting: business
    targets:
      resolution:
        label: Resolution
        stops: {task.completed: handle}
    levels:
      - label: Normal
        resolution: 1 workdays
    """
DATASET = """\
    dataset: tickets
    form: ticket
    fields:
      on_time: {sla: resolution, label: {zh-CN: 按时, en: On time}}
    measures:
      tickets: {count: true}
      on_time_rate:
        rate: on_time == "met"
        of: on_time in ("met", "missed")
    """
BOARD = """\
    dashboard: board
    widgets:
      rate: {chart: kpi, dataset: tickets, measures: [on_time_rate]}
      by_state: {chart: bar, dataset: tickets, dimensions: [on_time], measures: [tickets]}
    """
FILES = {"sla/ticket_sla.yaml": SLA, "reports/tickets.yaml": DATASET, "dashboards/board.yaml": BOARD}


@pytest.fixture
def system(tmp_path: Path) -> System:
    """Three tickets on Monday 10:00: one handled at once (met), one on Wednesday (missed, the
    day is counted in working time), one still open."""
    clock = ManualClock(NOW)
    booted = make(tmp_path, FLOW, FILES, clock=clock)
    met, missed, _running = (submit(booted) for _ in range(3))
    done = lambda record: booted.flows.complete(task_at(booted, record, "handle")["id"], "ann")  # noqa: E731
    for record in (met, missed):
        booted.flows.claim(task_at(booted, record, "handle")["id"], "ann")
    done(met)
    clock.advance(timedelta(days=2))
    done(missed)
    return booted


def rows(system: System, widget: str) -> list[dict[str, Any]]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("board")
    with read_transaction(system.db) as conn:
        return run_widget(conn, system.runtime, reports.dataset("tickets"), board.widgets[widget], Filters(),
                          Principal.system()).rows


def test_a_rate_over_an_sla_field_counts_what_met_its_target(system: System) -> None:
    assert rows(system, "rate")[0]["on_time_rate"] == 0.5  # the open ticket is neither


def test_records_group_by_the_state_of_their_clock(system: System) -> None:
    assert {r["on_time"]: r["tickets"] for r in rows(system, "by_state")} == {"met": 1, "missed": 1, "running": 1}


def test_an_sla_field_naming_a_target_the_policy_lacks_is_an_error_at_it(tmp_path: Path) -> None:
    dataset = DATASET.replace("sla: resolution", "sla: resolve")
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM, "flows/ticket_flow.yaml": FLOW,
                                **FILES, "reports/tickets.yaml": dataset})
    assert [(f, line, m) for f, line, _, m in found] == [("reports/tickets.yaml", 4, "unknown SLA target 'resolve'")]


def test_a_literal_compared_with_an_sla_field_must_be_a_state(tmp_path: Path) -> None:
    dataset = DATASET.replace('rate: on_time == "met"', 'rate: on_time == "mett"')
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM, "flows/ticket_flow.yaml": FLOW,
                                **FILES, "reports/tickets.yaml": dataset})
    assert [m for *_, m in found] == ["'mett' is not an option of 'on_time': the comparison could never hold"]
