"""An SLA clock's verdict (met, missed, none while undecided) is announced as `sla.verdict`
each time it changes, in the transaction that decides it: reports keep it as a fact of the
record (reports/facts.py). Missed is known as soon as a running clock's breach is recorded;
a paused clock has none, as the record page shows no red for it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from engine.events import Event
from engine.storage.db import transaction
from tests.rules.kit import SHANGHAI, SLA, advance_to, clock, complete, make, submit
from web.system import System

FILES = {"sla/ticket_sla.yaml": SLA}


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)


def announced(system: System) -> list[tuple[str, str | None, str | None]]:
    """(target, verdict, was) of every `sla.verdict` published from now on, in order."""
    seen: list[tuple[str, str | None, str | None]] = []

    def note(event: Event, _conn: object) -> None:
        seen.append((event.data["target"], event.data["verdict"], event.data["was"]))

    system.runtime.bus.subscribe("sla.verdict", note)
    return seen


def test_a_target_stopped_within_its_working_time_is_met(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    seen = announced(system)
    ticket = submit(system)
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    assert seen == [("response", "met", None)]


def test_a_target_stopped_after_its_working_time_is_missed(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    seen = announced(system)
    ticket = submit(system)
    clock(system).set(at(24, 10))  # one working day and an hour: the response had 8 working hours
    complete(system, ticket, "accept")
    assert seen == [("response", "missed", None)]


def test_a_running_target_is_missed_when_its_breach_is_recorded_and_stays_so_when_it_stops(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    seen = announced(system)
    ticket = submit(system)
    advance_to(system, at(23, 17, 59))
    assert seen == []  # in time: undecided
    advance_to(system, at(23, 18))
    assert seen == [("response", "missed", None)]
    complete(system, ticket, "accept")
    assert seen == [("response", "missed", None)]  # nothing new to say


def test_a_clock_paused_after_its_breach_has_no_verdict_until_it_runs_again(tmp_path: Path) -> None:
    system = make(tmp_path, FILES, start=at(23, 9))
    seen = announced(system)
    ticket = submit(system, urgency="urgent")  # resolve within 1 working day
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    advance_to(system, at(24, 9, 30))  # past the resolution's due time: breached
    complete(system, ticket, "solve")  # now waiting for the customer: paused
    complete(system, ticket, "confirm", {"note": "more"})  # back to work
    assert [s for s in seen if s[0] == "resolution"] == [
        ("resolution", "missed", None), ("resolution", None, "missed"), ("resolution", "missed", None)]


def test_a_restarted_target_is_undecided_until_it_stops_again(tmp_path: Path) -> None:
    restarting = SLA.replace("stops: flow.ended}", "stops: flow.ended, restarts: flow.reopened}")
    system = make(tmp_path, {"sla/ticket_sla.yaml": restarting})
    seen = announced(system)
    ticket = submit(system)
    system.flows.withdraw("ticket", ticket, actor="agent")
    system.flows.reopen("ticket", ticket, at="accept", actor="agent")
    assert [s for s in seen if s[0] == "resolution"] == [("resolution", "met", None), ("resolution", None, "met")]


def test_a_longer_target_takes_back_a_missed_verdict(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    seen = announced(system)
    ticket = submit(system, urgency="urgent")  # respond within 1 working hour
    advance_to(system, at(23, 10, 30))
    assert ("response", "missed", None) in seen
    with transaction(system.db) as conn:  # not urgent after all: 8 working hours to respond
        system.forms.update_fields(conn, "ticket", ticket, {"urgency": "normal"}, actor="agent")
    assert seen[-1] == ("response", None, "missed")
