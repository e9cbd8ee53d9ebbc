"""SLA clocks in working time, with the injected clock: targets, weekend, holidays, swapped
working days, yellow then red, pause and resume, urgency changes, repeated escalation."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.bundle import validate_bundle
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import sla_clocks
from tests.rules.kit import (SHANGHAI, SLA, advance_to, clock, complete, errors, history_of,
                             local, make, states, submit, write)
from web.system import build_registry

FILES = {"sla/ticket_sla.yaml": SLA}


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def due_times(system, record_id: int) -> dict[str, datetime]:
    return {target: local(due) for target, (_status, due, _left) in states(system, record_id).items()}


def test_a_normal_ticket_gets_one_workday_to_respond_and_two_to_resolve(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    assert due_times(system, ticket) == {"response": at(23, 18), "resolution": at(24, 18)}
    assert states(system, ticket)["response"][0] == "on_time"


def test_the_clock_skips_the_weekend(tmp_path: Path) -> None:
    system = make(tmp_path, FILES, start=at(27, 17))  # Friday 17:00
    ticket = submit(system)
    # 1 h on Friday, then Monday: response 8 h -> Monday 17:00; resolution 16 h -> Tuesday 17:00.
    assert due_times(system, ticket) == {"response": at(30, 17), "resolution": at(1, 17, month=12)}


def test_the_clock_skips_a_public_holiday(tmp_path: Path) -> None:
    system = make(tmp_path, FILES, start=at(30, 17, month=9))  # the eve of National Day
    ticket = submit(system)
    # 1 h on 30 September, 1-7 October are holidays (and a weekend), work resumes on the 8th.
    assert due_times(system, ticket) == {"response": at(8, 17, month=10),
                                         "resolution": at(9, 17, month=10)}


def test_the_clock_counts_a_swapped_working_saturday(tmp_path: Path) -> None:
    system = make(tmp_path, FILES, start=at(9, 17, month=10))  # Friday 9 October 17:00
    ticket = submit(system)
    # Saturday 10 October is a working day (调休); Sunday the 11th is not.
    assert due_times(system, ticket) == {"response": at(10, 17, month=10),
                                         "resolution": at(12, 17, month=10)}


@pytest.mark.parametrize("server_tz", ["UTC", "America/Los_Angeles", "Asia/Kolkata"])
def test_due_times_do_not_depend_on_the_server_time_zone(tmp_path: Path, server_tz: str) -> None:
    """RELIABILITY 34: '2 workdays' across a weekend, a holiday and a swapped working day are the
    same instants whatever TZ the server runs in, and stored in UTC."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = server_tz
    time.tzset()
    try:
        system = make(tmp_path, FILES, start=at(30, 17, month=9))
        ticket = submit(system)
        with read_transaction(system.db) as conn:
            stored = conn.execute(select(sla_clocks.c.target, sla_clocks.c.due_at)
                                  .where(sla_clocks.c.record_id == ticket)).all()
            raw = conn.exec_driver_sql("SELECT due_at FROM dk_sla_clocks ORDER BY id").scalars().all()
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()
    assert dict(stored) == {"response": datetime(2026, 10, 8, 9, 0, tzinfo=timezone.utc),
                            "resolution": datetime(2026, 10, 9, 9, 0, tzinfo=timezone.utc)}
    assert all(str(value).startswith(("2026-10-08 09:00:00", "2026-10-09 09:00:00")) for value in raw)


def test_yellow_when_a_fifth_of_the_time_is_left_then_red_when_overdue(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    # 8 working hours to respond; 20% left after 6.4 h: 09:00-12:00 and 13:00-16:24.
    advance_to(system, at(23, 16, 23))
    assert states(system, ticket)["response"][0] == "on_time"
    assert history_of(system, ticket, "sla.warning") == []
    advance_to(system, at(23, 16, 24))
    assert states(system, ticket)["response"][0] == "yellow"
    (warning,) = history_of(system, ticket, "sla.warning")
    assert warning["data"]["target"] == "response"
    advance_to(system, at(23, 18))
    assert states(system, ticket)["response"][0] == "red"
    (breach,) = history_of(system, ticket, "sla.breached")
    assert breach["data"]["target"] == "response"
    advance_to(system, at(24, 10))
    assert len(history_of(system, ticket, "sla.breached")) == 1  # fired once, not every tick


def test_responding_in_time_meets_the_target_and_cancels_its_timers(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    assert states(system, ticket)["response"][0] == "met"
    advance_to(system, at(24, 9))
    assert [h["data"]["target"] for h in history_of(system, ticket, "sla.warning")] == []
    assert states(system, ticket)["response"][0] == "met"


def test_the_clock_pauses_while_waiting_for_the_customer_and_resumes(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    clock(system).set(at(23, 11))
    complete(system, ticket, "solve")  # now awaiting the customer's reply: 2 h used
    status, _due, left = states(system, ticket)["resolution"]
    assert (status, left) == ("paused", 14 * 3600)
    advance_to(system, at(25, 9))  # two days later: nothing counted, nothing fired
    assert states(system, ticket)["resolution"][0] == "paused"
    assert states(system, ticket)["resolution"][2] == 14 * 3600
    assert history_of(system, ticket, "sla.warning") == []
    complete(system, ticket, "confirm", {"note": "more"})  # back to work on Wednesday 09:00
    status, due, left = states(system, ticket)["resolution"]
    assert status == "on_time" and left == 14 * 3600
    assert local(due) == at(26, 16)  # 14 working hours from Wednesday 09:00


def test_raising_the_urgency_recomputes_the_targets(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    clock(system).set(at(23, 9, 30))
    forms = system.forms
    with transaction(system.db) as conn:
        forms.update_fields(conn, "ticket", ticket, {"urgency": "urgent"}, actor="agent")
    # Urgent: respond within 1 working hour, resolve within 1 workday; 30 minutes are used.
    assert due_times(system, ticket) == {"response": at(23, 10), "resolution": at(23, 18)}
    assert [h["data"]["target"] for h in history_of(system, ticket, "sla.retargeted")] == [
        "response", "resolution"]
    advance_to(system, at(23, 10))
    assert states(system, ticket)["response"][0] == "red"


def test_an_urgent_ticket_escalates_every_two_hours_up_the_chain(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system, urgency="urgent")
    advance_to(system, at(23, 10, 59))
    assert history_of(system, ticket, "sla.escalated") == []
    advance_to(system, at(23, 11))
    advance_to(system, at(23, 13, 59))  # 12:00-13:00 is lunch: the next is 14:00
    assert [h["data"]["role"] for h in history_of(system, ticket, "sla.escalated")] == ["supervisor"]
    advance_to(system, at(23, 14))
    assert [h["data"]["role"] for h in history_of(system, ticket, "sla.escalated")] == [
        "supervisor", "manager"]
    advance_to(system, at(24, 18))  # the chain ends at the manager
    assert len(history_of(system, ticket, "sla.escalated")) == 2
    levels = [h["data"]["level"] for h in history_of(system, ticket, "task.escalated")]
    assert levels == [1, 2]


def test_a_status_update_restarts_the_escalation_interval(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system, urgency="urgent")
    clock(system).set(at(23, 10, 30))
    complete(system, ticket, "accept")
    advance_to(system, at(23, 13, 29))
    assert history_of(system, ticket, "sla.escalated") == []
    advance_to(system, at(23, 13, 30))
    assert len(history_of(system, ticket, "sla.escalated")) == 1


def test_a_normal_ticket_is_not_escalated(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    advance_to(system, at(25, 18))
    assert history_of(system, ticket, "sla.escalated") == []


def test_escalations_missed_while_nothing_ran_are_coalesced(tmp_path: Path) -> None:
    """RELIABILITY 25: after six hours down, one catch-up escalation, then every two hours."""
    system = make(tmp_path, FILES)
    ticket = submit(system, urgency="urgent")
    advance_to(system, at(24, 9))  # nothing ticked since Monday 09:00 (due 11:00, 14:00, ...)
    assert [h["data"]["level"] for h in history_of(system, ticket, "sla.escalated")] == [1]
    advance_to(system, at(24, 10, 59))
    assert len(history_of(system, ticket, "sla.escalated")) == 1
    advance_to(system, at(24, 11))
    assert [h["data"]["level"] for h in history_of(system, ticket, "sla.escalated")] == [1, 2]


def test_a_target_can_start_when_the_token_enters_a_node(tmp_path: Path) -> None:
    solving = SLA.replace("resolution: {label: {zh-CN: 解决, en: Resolution}, stops: flow.ended}",
                          "resolution: {label: {zh-CN: 解决, en: Resolution}, stops: flow.ended}\n"
                          "      solving: {label: {zh-CN: 处理, en: Solving}, starts: {flow.entered: solve},"
                          " stops: {task.completed: solve}}")
    solving = solving.replace("resolution: 1 workdays\n", "resolution: 1 workdays\n        solving: 4 workhours\n")
    solving = solving.replace("resolution: 2 workdays\n", "resolution: 2 workdays\n        solving: 1 workdays\n")
    assert "solving: 1 workdays" in solving
    system = make(tmp_path, {"sla/ticket_sla.yaml": solving})
    ticket = submit(system)
    assert "solving" not in states(system, ticket)
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    assert states(system, ticket)["solving"][0] == "on_time"
    assert due_times(system, ticket)["solving"] == at(24, 10)
    complete(system, ticket, "solve")
    assert states(system, ticket)["solving"][0] == "met"


def test_a_target_that_restarts_on_reopening_counts_afresh_from_the_reopening(tmp_path: Path) -> None:
    restarting = SLA.replace("stops: flow.ended}", "stops: flow.ended, restarts: flow.reopened}")
    system = make(tmp_path, {"sla/ticket_sla.yaml": restarting})
    ticket = submit(system)
    system.flows.withdraw("ticket", ticket, actor="agent")
    assert states(system, ticket)["resolution"][0] == "met"
    clock(system).set(at(25, 9))  # Wednesday 09:00
    system.flows.reopen("ticket", ticket, at="accept", actor="agent")
    status, due, _left = states(system, ticket)["resolution"]
    assert (status, local(due)) == ("on_time", at(26, 18))  # two working days from the reopening
    assert [h["data"]["target"] for h in history_of(system, ticket, "sla.restarted")] == ["resolution"]


def test_a_target_without_restarts_stays_stopped_when_the_record_is_reopened(tmp_path: Path) -> None:
    system = make(tmp_path, FILES)
    ticket = submit(system)
    system.flows.withdraw("ticket", ticket, actor="agent")
    system.flows.reopen("ticket", ticket, at="accept", actor="agent")
    assert states(system, ticket)["resolution"][0] == "met"


def test_restarts_naming_an_event_a_clock_cannot_follow_is_a_load_error_at_it(tmp_path: Path) -> None:
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": SLA.replace(
        "stops: flow.ended}", "stops: flow.ended, restarts: flow.reopend}")})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.message == "unknown event 'flow.reopend'" and error.hint == "did you mean 'flow.reopened'?"
    assert (Path(error.span.file).name, error.span.line) == ("ticket_sla.yaml", 6)


def test_a_pause_status_that_no_step_sets_is_a_load_error_at_it(tmp_path: Path) -> None:
    """A misspelt status never matches, so the clock silently never paused."""
    found = errors(tmp_path, {"sla/ticket_sla.yaml": SLA.replace("[awaiting_reply]", "[awaiting_replay]")})
    assert found == [("sla/ticket_sla.yaml", 16, 20, "unknown status 'awaiting_replay': no record of form 'ticket' ever has it")]


def test_a_yellow_share_written_without_percent_is_told_to_add_it(tmp_path: Path) -> None:
    # "must be between 0% and 100%" for a 20 the analyst meant as 20%.
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": SLA.replace("yellow_at: 20%", "yellow_at: 20")})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.message == "the yellow share must be between 0% and 100%: 20 without % is 2000%"
    assert error.hint == "write 20% (or 0.2)"


def test_a_yellow_share_with_the_chinese_percent_sign_is_told_to_type_the_english_one(tmp_path: Path) -> None:
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": SLA.replace("yellow_at: 20%", "yellow_at: 20％")})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.hint is not None and error.hint.startswith("'％' is Chinese punctuation: write % instead")


def test_a_level_added_after_the_default_is_told_to_move_the_default_last(tmp_path: Path) -> None:
    # A customs level appended after the catch-all level: the error came with a warning that
    # "every level has a condition", which contradicted it, and no word of the fix.
    sla = SLA.replace("        resolution: 2 workdays\n    pause:", "        resolution: 2 workdays\n"
                      "      - when: category == \"billing\"\n        response: 2 workhours\n"
                      "        resolution: 5 workdays\n    pause:")
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": sla})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    assert [(d.severity, d.message, d.hint) for d in diags] == [
        ("error", "only the last level may leave out `when` (it matches every record)",
         "move it to the end: levels are tried in order, so the ones after it would never apply")]


def test_calendar_days_in_a_business_counted_level_are_warned_of_as_working_hours(tmp_path: Path) -> None:
    # `resolution: 2 days` counted 48 working hours (six working days), silently.
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": SLA.replace(
        "      - response: 1 workdays\n        resolution: 2 workdays",
        "      - response: 1 workdays\n        resolution: 2 days")})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (warning,) = [d for d in diags if d.code == "sla-calendar-days"]
    assert warning.severity == "warning" and warning.span is not None
    assert (Path(warning.span.file).name, warning.span.line) == ("ticket_sla.yaml", 15)
    assert warning.message.startswith("'2 days' is counted in working time here (counting: business): 48 working hours")
    assert warning.hint == "write '2 workdays' for working days, or `counting: wall` for calendar days"


def test_calendar_days_in_a_wall_counted_level_are_not_warned_of(tmp_path: Path) -> None:
    root = write(tmp_path / "bundle", {"sla/ticket_sla.yaml": SLA.replace(
        "yellow_at: 20%", "yellow_at: 20%\ncounting: wall").replace("resolution: 2 workdays", "resolution: 2 days")})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    assert [d for d in diags if d.code == "sla-calendar-days"] == []


def test_the_clock_pauses_while_the_flow_waits_at_a_pause_node(tmp_path: Path) -> None:
    system = make(tmp_path, {**FILES, "sla/ticket_sla.yaml": SLA.replace("pause: {statuses: [awaiting_reply]}",
                                                                         "pause: {nodes: [confirm]}")})
    ticket = submit(system)
    clock(system).set(at(23, 10))
    complete(system, ticket, "accept")
    clock(system).set(at(23, 11))
    complete(system, ticket, "solve")  # the flow now waits at confirm: 2 h used
    status, _due, left = states(system, ticket)["resolution"]
    assert (status, left) == ("paused", 14 * 3600)


def test_the_clock_pauses_at_a_pause_node_that_creates_no_task(tmp_path: Path) -> None:
    """A wait step publishes only its entry, which the clocks skipped unless a target named it."""
    from tests.rules.kit import FLOW

    cooling = FLOW.replace("      confirm:\n        type: task\n        assign: {user: agent}\n        fields: [note]\n"
                           "        status: awaiting_reply\n", "      confirm:\n        type: wait\n        for: 5 days\n")
    system = make(tmp_path, {**FILES, "flows/ticket_flow.yaml": cooling,
                             "sla/ticket_sla.yaml": SLA.replace("pause: {statuses: [awaiting_reply]}",
                                                                "pause: {nodes: [confirm]}")})
    ticket = submit(system)
    clock(system).set(at(23, 11))
    complete(system, ticket, "accept")
    complete(system, ticket, "solve")  # the flow now waits at confirm, with no task: 2 h used
    status, _due, left = states(system, ticket)["resolution"]
    assert (status, left) == ("paused", 14 * 3600)


def test_yellow_red_and_escalation_timers_due_while_every_process_was_stopped_fire_once_on_restart(
        tmp_path: Path) -> None:
    """RELIABILITY 25: nothing ran from Monday 09:00 to Tuesday 10:00 (16 hours after the last
    target came due). The restarted system fires every overdue warning and breach exactly once,
    none is dropped as missed, and the escalations missed meanwhile coalesce into one."""
    stopped = make(tmp_path, FILES)
    normal, urgent = submit(stopped), submit(stopped, urgency="urgent")
    stopped.db.dispose()  # every process stops; no tick runs while the targets come due

    restarted = make(tmp_path, FILES, start=at(24, 10))
    advance_to(restarted, at(24, 10))

    def fired(ticket: int, kind: str) -> list[str]:
        return sorted(h["data"]["target"] for h in history_of(restarted, ticket, kind))

    assert fired(normal, "sla.warning") == fired(normal, "sla.breached") == ["response"]
    assert fired(urgent, "sla.warning") == fired(urgent, "sla.breached") == ["resolution", "response"]
    assert [h["data"]["level"] for h in history_of(restarted, urgent, "sla.escalated")] == [1]
    assert history_of(restarted, normal, "sla.escalated") == []
    assert advance_to(restarted, at(24, 10, 30)) == 0  # nothing left over to fire twice
