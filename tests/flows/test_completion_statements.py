"""Completing a task reads it once: the version-checked write of the completion shows whether
anything touched the task meanwhile, and only then is it read again (and completed as it is).
A completion that changes the record and ends its flow refreshes each report cell once."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from engine.storage.db import read_transaction
from engine.storage.tables import report_rollups, tasks
from tests.rules.kit import history_of, make, statements, submit, task_at
from web.system import System

ESCALATING_RULES = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      escalate_on_note:
        on: {record.updated: [note]}
        when: note == "call the boss"
        do:
          - action: escalate
            level: 1
    """


def _at_confirm(system: System) -> tuple[int, int]:
    ticket = submit(system)
    for node in ("accept", "solve"):
        system.flows.complete(task_at(system, ticket, node), "agent")
    return ticket, task_at(system, ticket, "confirm")


def test_completing_a_task_with_values_reads_the_task_once(tmp_path: Path) -> None:
    system = make(tmp_path)
    ticket, task_id = _at_confirm(system)
    with statements(system) as seen:
        system.flows.complete(task_id, "agent", values={"note": "done"})
    assert sum(1 for s in seen if s.startswith("SELECT") and re.search(r"\sFROM dk_tasks\b", s)) == 1
    assert history_of(system, ticket, "task.completed")[-1]["data"]["changes"] == {"note": [None, "done"]}


def test_a_task_a_rule_escalates_during_its_completion_is_completed_as_it_is_now(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": ESCALATING_RULES})
    ticket, task_id = _at_confirm(system)
    system.flows.complete(task_id, "agent", values={"note": "call the boss"})
    kinds = [h["kind"] for h in history_of(system, ticket) if h["kind"].startswith("task.")]
    assert kinds[-2:] == ["task.escalated", "task.completed"]
    (task,) = [row for row in _tasks(system, ticket) if row["id"] == task_id]
    assert (task["status"], task["escalation_level"], task["version"]) == ("completed", 1, 3)


def _tasks(system: System, ticket: int) -> list[dict[str, object]]:
    with read_transaction(system.db) as conn:
        return [dict(r) for r in conn.execute(select(tasks).where(tasks.c.record_id == ticket)).mappings()]


DATASET = """\
    dataset: tickets
    form: ticket
    fields:
      created: {field: created_at}
      category: {field: category}
    measures:
      tickets: {count: true}
      noted: {count: true, where: note != None}
    rollups:
      daily: {date: created}
      by_category: {date: created, dimensions: [category]}
    """


def test_a_completion_that_changes_the_record_and_ends_the_flow_refreshes_each_cell_once(
        tmp_path: Path) -> None:
    system = make(tmp_path, {"reports/tickets.yaml": DATASET})
    ticket, task_id = _at_confirm(system)
    with statements(system) as seen:
        # record.updated (the note is measured), then flow.ended (the closure is a fact).
        system.flows.complete(task_id, "agent", values={"note": "done"})
    assert len([s for s in seen if s.startswith("SELECT 'tickets.")]) == 2  # one per rollup
    assert [h["kind"] for h in history_of(system, ticket)][-1] == "flow.ended"
    with read_transaction(system.db) as conn:
        cells = {r.rollup: (r.n, r.v2) for r in conn.execute(select(report_rollups))}
    assert cells == {"tickets.daily": (1, 1), "tickets.by_category": (1, 1)}  # one ticket, noted
