"""A step's `due:` (or else its `timeout:`) gives each task it opens a due time, counted in the
bundle calendar's working time: what the inbox shows and the step measures judge. Every visit
of the step opens a task with a fresh due time; claiming and reassigning keep it. Nothing fires
at a due time (warnings and escalation are the SLA's)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine.clock import ManualClock
from engine.schema import export_schema
from engine.storage.db import read_transaction
from flows.kind import FlowKind
from tests.engine.bundle_kit import diagnostics, problems
from tests.flows.kit import BUNDLE, FORM, NOW, instance, make, open_tasks, submit, task_at
from tests.flows.test_timeout import FLOW as TIMEOUT_FLOW, timeout_timers
from web.system import build_registry

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: handle
      handle:
        type: task
        assign: {role: agent}
        due: 4 workhours
        next: review
      review:
        type: approval
        assign: {user: max}
        due: 1 workdays
        approve: done
        reject: done
        return_to: [handle]
      done:
        type: end
    """


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in November 2026 as Shanghai reads it (UTC+8), in UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone(timedelta(hours=8))).astimezone(timezone.utc)


def due_of(system, record_id: int, node: str):  # type: ignore[no-untyped-def]
    return task_at(system, record_id, node)["due_at"]


def test_a_task_is_due_its_steps_working_time_after_it_opens(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)  # Monday 10:00: two working hours before lunch, two after it
    record_id = submit(system)
    assert due_of(system, record_id, "handle") == shanghai(23, 15, 30)


def test_a_due_in_wall_time_runs_through_the_evening(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW.replace("due: 4 workhours", "due: 2h"),
                  clock=ManualClock(shanghai(23, 17)))
    record_id = submit(system)
    assert due_of(system, record_id, "handle") == shanghai(23, 19)


def test_a_step_with_a_timeout_and_no_due_is_due_when_the_server_acts(tmp_path: Path) -> None:
    system = make(tmp_path, TIMEOUT_FLOW)
    record_id = submit(system)
    (timer,) = timeout_timers(system, record_id)
    assert due_of(system, record_id, "confirm") == timer.due_at == shanghai(25, 10)


def test_a_due_beside_a_timeout_is_the_steps_own(tmp_path: Path) -> None:
    system = make(tmp_path, TIMEOUT_FLOW.replace("        timeout:", "        due: 1 workhours\n        timeout:"))
    record_id = submit(system)
    assert due_of(system, record_id, "confirm") == shanghai(23, 11)


def test_a_step_with_neither_due_nor_timeout_has_no_due_time(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW.replace("        due: 4 workhours\n", ""))
    record_id = submit(system)
    assert due_of(system, record_id, "handle") is None


def test_an_approvals_task_is_due_its_own_time_after_it_opens(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    clock.set(shanghai(23, 16))
    system.flows.complete(task_at(system, record_id, "handle")["id"], "ann")
    # 16:00-18:00 on Monday, then 5.5 working hours on Tuesday: 9:00-12:00, 13:30-16:00.
    assert due_of(system, record_id, "review") == shanghai(24, 16)


def test_a_step_returned_to_opens_its_task_with_a_fresh_due_time(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    system.flows.complete(task_at(system, record_id, "handle")["id"], "ann")
    clock.set(shanghai(24, 9))
    system.flows.complete(task_at(system, record_id, "review")["id"], "max", outcome="return",
                          comment="the photos are missing", return_to="handle")
    assert due_of(system, record_id, "handle") == shanghai(24, 14, 30)


def test_a_reopened_step_opens_its_task_with_a_fresh_due_time(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    system.flows.complete(task_at(system, record_id, "handle")["id"], "ann")
    system.flows.complete(task_at(system, record_id, "review")["id"], "max", outcome="approve")
    clock.set(shanghai(25, 10))
    system.flows.reopen("ticket", record_id, at="handle", actor="max", comment="the customer called back")
    assert due_of(system, record_id, "handle") == shanghai(25, 15, 30)


def test_claiming_a_task_keeps_its_due_time(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    clock.advance(timedelta(hours=1))
    system.flows.claim(task_at(system, record_id, "handle")["id"], "ann")
    assert due_of(system, record_id, "handle") == shanghai(23, 15, 30)


def test_reassigning_a_task_keeps_its_due_time(tmp_path: Path) -> None:
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    clock.advance(timedelta(hours=1))
    system.flows.reassign(task_at(system, record_id, "handle")["id"], "bob", by="max")
    assert due_of(system, record_id, "handle") == shanghai(23, 15, 30)


def test_escalating_a_task_keeps_its_due_time(tmp_path: Path) -> None:
    flow = FLOW.replace("        due: 4 workhours\n", "        due: 4 workhours\n        escalation:\n"
                        "          - level: 2\n            assign: {user: max}\n            keep_assignees: true\n")
    clock = ManualClock(NOW)
    system = make(tmp_path, flow, clock=clock)
    record_id = submit(system)
    clock.advance(timedelta(hours=1))
    system.flows.escalate_task(task_at(system, record_id, "handle")["id"], 2, by="max")
    assert task_at(system, record_id, "handle")["escalation_level"] == 2
    assert due_of(system, record_id, "handle") == shanghai(23, 15, 30)


def test_a_due_time_arms_no_timer(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    with read_transaction(system.db) as conn:
        subject = f"instance:{instance(system, record_id)['id']}"
        assert system.runtime.services["timers"].pending(conn, subject=subject) == []


def test_every_task_of_a_countersign_is_due_at_the_same_time(tmp_path: Path) -> None:
    flow = FLOW.replace("""      handle:
        type: task
        assign: {role: agent}
        due: 4 workhours
""", """      handle:
        type: countersign
        assign: {users: [ann, bob]}
        due: 2 workhours
""")
    system = make(tmp_path, flow)
    record_id = submit(system)
    assert [t["due_at"] for t in open_tasks(system, record_id)] == [shanghai(23, 12)] * 2


BY_URGENCY = FLOW.replace("        due: 4 workhours\n", "        due:\n          - when: urgency == \"high\"\n"
                          "            after: 1 workhours\n          - after: 4 workhours\n")


def test_the_first_due_time_whose_condition_holds_applies(tmp_path: Path) -> None:
    """One fixed time per step could not follow the record's urgency, as the SLA's levels do."""
    system = make(tmp_path, BY_URGENCY)  # Monday 10:00
    urgent, routine = submit(system, urgency="high"), submit(system, urgency="low")
    assert due_of(system, urgent, "handle") == shanghai(23, 11)
    assert due_of(system, routine, "handle") == shanghai(23, 15, 30)


def test_when_no_due_condition_holds_a_step_with_a_timeout_is_due_at_the_timeout(tmp_path: Path) -> None:
    flow = TIMEOUT_FLOW.replace("        timeout:", "        due:\n          - when: urgency == \"high\"\n"
                                "            after: 1 workhours\n        timeout:")
    system = make(tmp_path, flow)
    record_id = submit(system, urgency="low")
    (timer,) = timeout_timers(system, record_id)
    assert task_at(system, record_id, "confirm")["due_at"] == timer.due_at


def test_a_due_time_without_when_before_others_is_an_error(tmp_path: Path) -> None:
    flow = FLOW.replace("        due: 4 workhours\n", "        due:\n          - after: 4 workhours\n"
                        "          - when: urgency == \"high\"\n            after: 1 workhours\n")
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM, "flows/ticket_flow.yaml": flow})
    assert found == [("flows/ticket_flow.yaml", 12, 9, "a due time without `when` applies to every record: "
                      "the ones after it never do")]


def test_a_due_condition_naming_no_field_is_an_error_at_it(tmp_path: Path) -> None:
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": BY_URGENCY.replace("urgency ==", "urgncy ==")})
    assert [(line, message) for _, line, _, message in found] == [(12, "unknown name 'urgncy'")]


def test_a_misspelt_due_is_an_error_at_it_with_a_hint(tmp_path: Path) -> None:
    files = {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
             "flows/ticket_flow.yaml": FLOW.replace("due: 4 workhours", "due: 4 wrokhours")}
    (found,) = [d for d in diagnostics(tmp_path, files) if d.code == "due"]
    assert (found.span.line, found.span.col) == (11, 10)
    assert found.message.startswith("'4 wrokhours' is not a duration (did you mean '4 workhours'?)")
    assert found.hint == "how long the step's task may take once it opens, e.g. due: 4 workhours"


def test_a_due_of_zero_is_an_error_at_it(tmp_path: Path) -> None:
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": FLOW.replace("due: 1 workdays", "due: 0h")})
    assert found == [("flows/ticket_flow.yaml", 16, 10, "a due time must be longer than zero")]


def test_the_editor_schema_offers_due_on_every_node_type_that_opens_tasks() -> None:
    schema = export_schema(FlowKind(), build_registry(plugins=False))
    branches = schema["properties"]["nodes"]["additionalProperties"]["allOf"]
    offering = {b["if"]["properties"]["type"]["enum"][0] for b in branches
                if "due" in b["then"].get("properties", {})}
    assert offering == {"task", "approval", "countersign"}


def test_a_due_time_later_than_the_steps_timeout_is_a_warning(tmp_path: Path) -> None:
    """It would never be reached: the timeout moves the record on first."""
    flow = TIMEOUT_FLOW.replace("        timeout:", "        due: 3 workdays\n        timeout:")
    found = [d for d in diagnostics(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                               "flows/ticket_flow.yaml": flow}) if d.code == "due-after-timeout"]
    assert [d.message for d in found] == ["the step is due 3 workdays after it opens, later than its timeout "
                                          "(2 workdays) moves the record on: that due time is never reached"]


def test_a_due_time_within_the_timeout_is_no_warning(tmp_path: Path) -> None:
    flow = TIMEOUT_FLOW.replace("        timeout:", "        due: 12 workhours\n        timeout:")
    assert [d for d in diagnostics(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                              "flows/ticket_flow.yaml": flow}) if d.code == "due-after-timeout"] == []
