"""The SLA service does its work with as few statements as it can: a record's clocks are read
once per command, and an escalation timer that is known not to be armed is not deleted again.
What the clocks and timers hold stays exactly what it was."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.events import Event
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import timers
from tests.rules.kit import SLA, clock, complete, make, statements, submit, task_at
from web.system import System

FILES = {"sla/ticket_sla.yaml": SLA}


def escalation_timers(system: System, record_id: int) -> int:
    with read_transaction(system.db) as conn:
        return len(conn.execute(select(timers.c.id).where(
            timers.c.kind == "sla.escalate", timers.c.subject == f"record:ticket:{record_id}",
            timers.c.open_key.is_not(None))).all())


def escalation_deletes(seen: list[str]) -> list[str]:
    return [s for s in seen if s.startswith("DELETE FROM dk_timers") and "'sla.escalate'" in s]


def test_a_normal_ticket_deletes_no_escalation_timer_it_never_armed(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)  # escalation applies to urgent tickets only
    with statements(system) as seen:
        complete(system, ticket, "accept")
        complete(system, ticket, "solve")
    assert escalation_deletes(seen) == []
    assert escalation_timers(system, ticket) == 0


def test_the_clocks_of_a_ticket_are_read_once_per_command(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    task_id = task_at(system, ticket, "accept")
    with statements(system) as seen:
        # task.completed stops the response clock, flow.entered and task.created follow: one read.
        system.flows.complete(task_id, "agent")
    assert sum(1 for s in seen if s.startswith("SELECT") and "FROM dk_sla_clocks" in s) == 1


def test_an_urgent_ticket_keeps_its_escalation_timer_until_it_is_no_longer_urgent(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system, urgency="urgent")
    assert escalation_timers(system, ticket) == 1
    complete(system, ticket, "accept")
    assert escalation_timers(system, ticket) == 1
    for urgency, armed in (("normal", 0), ("urgent", 1), ("important", 0)):
        with transaction(system.db) as conn:
            system.forms.update_fields(conn, "ticket", ticket, {"urgency": urgency}, actor="agent")
        assert escalation_timers(system, ticket) == armed, urgency


def test_a_command_that_makes_a_ticket_urgent_and_back_leaves_no_escalation_timer(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    with transaction(system.db) as conn:  # armed, then cancelled, in one transaction
        system.forms.update_fields(conn, "ticket", ticket, {"urgency": "urgent"}, actor="agent")
        system.forms.update_fields(conn, "ticket", ticket, {"urgency": "normal"}, actor="agent")
    assert escalation_timers(system, ticket) == 0


def test_what_a_rolled_back_savepoint_did_to_a_clock_is_not_believed_after_it(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    sla = system.runtime.services["sla"]

    def statuses(conn: object) -> dict[str, str]:
        return {c["target"]: c["status"] for c in sla._clocks(conn, "ticket", ticket)}

    with transaction(system.db) as conn:
        assert statuses(conn) == {"response": "running", "resolution": "running"}
        savepoint = conn.begin_nested()
        system.runtime.bus.publish(Event("flow.ended", clock(system).now(), "ticket", ticket, "agent",
                                         {"flow": "ticket_flow", "outcome": "done"}), conn)
        assert statuses(conn)["resolution"] == "met"
        savepoint.rollback()
        assert statuses(conn) == {"response": "running", "resolution": "running"}
    assert {c["target"]: c["status"] for c in sla.clocks("ticket", ticket)} == {
        "response": "running", "resolution": "running"}
