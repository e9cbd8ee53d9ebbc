"""A rule's savepoint: opened only for a rule that fires on SQLite, before the condition on
PostgreSQL (where a failed read would otherwise abort the whole command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.storage.db import transaction
from tests.rules.kit import make, submit
from web.system import System

RULES = """\
    ruleset: ticket_rules
    form: ticket
    label: {zh-CN: 工单规则, en: Ticket rules}
    rules:
      big_claim:
        on: record.created
        when: amount > 5000
        do:
          - action: set
            fields: {level: 2}
    """

BROKEN = """\
    ruleset: ticket_rules
    form: ticket
    label: {zh-CN: 工单规则, en: Ticket rules}
    rules:
      odd_count:
        on: record.created
        when: amount / 0 > 1
        do:
          - action: set
            fields: {level: 2}
    """

BROKEN_READ = """\
    ruleset: ticket_rules
    form: ticket
    label: {zh-CN: 工单规则, en: Ticket rules}
    rules:
      odd_count:
        on: record.created
        when: count_records("ticket", 30d, "amount", "not a number") > 0
        do:
          - action: set
            fields: {level: 2}
    """


def _statements_of_a_submission(system: System, **values: object) -> list[str]:
    with transaction(system.db) as conn:
        driver = conn.connection.dbapi_connection  # the connection every writer of this process shares
    seen: list[str] = []
    driver.set_trace_callback(seen.append)
    try:
        submit(system, **values)
    finally:
        driver.set_trace_callback(None)
    return seen


def test_a_rule_that_does_not_fire_opens_no_savepoint(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    statements = _statements_of_a_submission(system, amount="100")
    assert not [s for s in statements if s.startswith("SAVEPOINT")]


def test_a_rule_that_fires_runs_its_actions_in_a_savepoint(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    statements = _statements_of_a_submission(system, amount="9000")
    assert [s for s in statements if s.startswith("SAVEPOINT")]


def _a_failed_condition_leaves_an_incident_and_the_record(system: System) -> None:
    ticket = submit(system, amount="100")
    assert system.forms.get("ticket", ticket)["level"] != 2
    (incident,) = system.runtime.services["rules"].incidents_of("ticket", ticket)
    assert "odd_count" in incident["message"]


def test_a_condition_that_fails_leaves_an_incident_and_the_record(tmp_path: Path) -> None:
    _a_failed_condition_leaves_an_incident_and_the_record(make(tmp_path, {"rules/ticket_rules.yaml": BROKEN}))


@pytest.mark.postgres
def test_a_condition_whose_read_fails_on_postgresql_leaves_an_incident_and_the_record(
        tmp_path: Path, postgres_url: str) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": BROKEN_READ}, db_url=postgres_url)
    _a_failed_condition_leaves_an_incident_and_the_record(system)
