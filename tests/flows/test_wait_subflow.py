"""wait (time, business duration, event), subflow, manager_of assignment, withdraw, comments."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import ConflictError, ValidationFailed
from engine.storage.db import read_transaction
from tests.engine.bundle_kit import problems
from tests.flows.kit import BUNDLE, FORM, NOW, history_of, instance, make, open_tasks, submit, task_at

WAIT = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: pause
      pause:
        type: wait
        {WAIT}
        status: waiting
        next: handle
      handle:
        type: task
        assign: {manager_of: submitter}
        next: done
      done:
        type: end
    """


def waiting(tmp_path: Path, how: str, clock: ManualClock | None = None):  # type: ignore[no-untyped-def]
    return make(tmp_path, WAIT.replace("{WAIT}", how), clock=clock)


def timers(system):  # type: ignore[no-untyped-def]
    return system.runtime.services["timers"]


def test_a_wait_for_two_workdays_counts_the_calendar(tmp_path: Path) -> None:
    friday_5pm = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # 17:00 in Shanghai
    clock = ManualClock(friday_5pm)
    system = waiting(tmp_path, "for: 2 workdays", clock)
    record_id = submit(system)
    assert instance(system, record_id)["current"] == ["pause"]
    assert system.forms.get("ticket", record_id)["status"] == "waiting"
    with read_transaction(system.db) as conn:
        (timer,) = timers(system).pending(conn, subject=f"instance:{instance(system, record_id)['id']}")
    # Friday 17-18 (1h), Monday, Tuesday 09:00-17:00 (6.5h): due Tuesday 17:00 Shanghai.
    assert timer.due_at == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    assert timers(system).tick(now=timer.due_at - timedelta(minutes=1)) == 0
    clock.set(timer.due_at) if hasattr(clock, "set") else clock.advance(timer.due_at - clock.now())
    assert timers(system).tick() == 1
    assert instance(system, record_id)["current"] == ["handle"]
    (resumed,) = history_of(system, record_id, "wait.resumed")
    assert resumed["data"]["by"] == "timer"


def test_a_wait_until_a_time_expression(tmp_path: Path) -> None:
    system = waiting(tmp_path, "until: created_at + 3h")
    record_id = submit(system)
    assert timers(system).tick(now=NOW + timedelta(hours=2)) == 0
    assert timers(system).tick(now=NOW + timedelta(hours=3)) == 1
    assert task_at(system, record_id, "handle")["candidate_users"] == ["max"]  # ann's manager


def test_a_wait_whose_time_has_passed_goes_on_at_once(tmp_path: Path) -> None:
    system = waiting(tmp_path, "until: created_at - 1h")
    record_id = submit(system)
    assert instance(system, record_id)["current"] == ["handle"]


def test_a_wait_for_an_event_moves_on_when_it_is_signalled_for_the_same_record(tmp_path: Path) -> None:
    system = waiting(tmp_path, "event: customer.replied")
    first, second = submit(system), submit(system)
    system.flows.signal("ticket", second, "customer.other")
    system.flows.signal("ticket", second, "customer.replied", actor="portal")
    assert instance(system, first)["current"] == ["pause"]
    assert instance(system, second)["current"] == ["handle"]
    (resumed,) = history_of(system, second, "wait.resumed")
    assert resumed["data"] == {"by": "event", "event": "customer.replied"} and resumed["actor"] == "portal"


def test_a_stale_wait_timer_does_nothing_once_the_record_is_withdrawn(tmp_path: Path) -> None:
    system = waiting(tmp_path, "for: 1h")
    record_id = submit(system)
    system.flows.withdraw("ticket", record_id, actor="ann", comment="solved by phone")
    with read_transaction(system.db) as conn:
        assert timers(system).pending(conn) == []
    assert timers(system).tick(now=NOW + timedelta(hours=2)) == 0
    done = instance(system, record_id)
    assert (done["status"], done["outcome"]) == ("withdrawn", "withdrawn")


def test_wait_options_are_checked_at_load(tmp_path: Path) -> None:
    files = {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM}
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml": WAIT.replace("{WAIT}", "for: 2 fortnights")})
    assert any(m.startswith("'2 fortnights' is not a duration") for _f, _l, _c, m in found)
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml": WAIT.replace("{WAIT}", "instructions: later")})
    assert ("flows/ticket_flow.yaml", 8, 3,
            "a wait node needs exactly one of 'until', 'for' or 'event'") in found


# -- withdraw ----------------------------------------------------------------------------------
def test_only_the_submitter_may_withdraw_and_it_cancels_the_open_tasks(tmp_path: Path) -> None:
    system = waiting(tmp_path, "for: 0m")
    record_id = submit(system, actor="bob")
    with pytest.raises(ConflictError, match="only the submitter"):
        system.flows.withdraw("ticket", record_id, actor="ann")
    system.flows.withdraw("ticket", record_id, actor="bob")
    assert open_tasks(system, record_id) == []
    assert system.forms.get("ticket", record_id)["status"] == "withdrawn"
    assert [h["kind"] for h in system.forms.history("ticket", record_id)][-2:] == ["flow.withdrawn", "flow.ended"]
    with pytest.raises(ConflictError, match="no running flow"):
        system.flows.withdraw("ticket", record_id, actor="bob")


# -- comments and attachments -----------------------------------------------------------------
def test_a_comment_with_a_file_is_kept_at_the_current_step(tmp_path: Path) -> None:
    system = waiting(tmp_path, "for: 0m")
    record_id = submit(system)
    service = system.runtime.services["attachments"]
    uploaded = service.upload(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "report.pdf", actor="max",
                              limits=service.limits_for())
    task = task_at(system, record_id, "handle")
    system.flows.comment("ticket", record_id, actor="max", text="called the customer",
                         attachments=[uploaded["id"]], task_id=task["id"])
    (entry,) = history_of(system, record_id, "comment.added")
    assert (entry["node"], entry["actor"], entry["data"]["text"]) == ("handle", "max", "called the customer")
    assert [a["name"] for a in entry["data"]["attachments"]] == ["report.pdf"]
    with pytest.raises(ValidationFailed):
        system.flows.comment("ticket", record_id, actor="max", text="  ")


def test_completing_a_task_keeps_its_files_in_the_history(tmp_path: Path) -> None:
    system = waiting(tmp_path, "for: 0m")
    record_id = submit(system)
    service = system.runtime.services["attachments"]
    uploaded = service.upload(io.BytesIO(b"%PDF-1.4\n%%EOF\n"), "survey.pdf", actor="max",
                              limits=service.limits_for())
    system.flows.complete(task_at(system, record_id, "handle")["id"], "max", attachments=[uploaded["id"]])
    (entry,) = [h for h in history_of(system, record_id, "task.completed") if h["node"] == "handle"]
    assert entry["data"]["attachments"][0]["id"] == uploaded["id"]


# -- manager_of and expression assignment -------------------------------------------------------
def test_manager_of_an_expression_and_of_a_nodes_assignee(tmp_path: Path) -> None:
    flow = WAIT.replace("{WAIT}", "for: 0m").replace(
        "assign: {manager_of: submitter}\n        next: done",
        "assign: {expression: owner}\n        next: review\n      review:\n        type: task\n"
        "        assign: {manager_of: \"assignee_of: handle\"}\n        next: done")
    system = make(tmp_path, flow)
    record_id = submit(system, owner="fin1")
    handle = task_at(system, record_id, "handle")
    assert handle["candidate_users"] == ["fin1"]
    system.flows.complete(handle["id"], "fin1")
    assert task_at(system, record_id, "review")["candidate_users"] == ["max"]


def test_a_person_without_a_manager_leaves_an_incident(tmp_path: Path) -> None:
    system = waiting(tmp_path, "for: 0m")
    record_id = submit(system, actor="queen")
    assert instance(system, record_id)["status"] == "incident"
    (entry,) = history_of(system, record_id, "incident")
    assert "queen has no manager" in entry["data"]["message"]


# -- subflow -----------------------------------------------------------------------------------
PARENT = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: survey
      survey:
        type: subflow
        flow: site_survey
        {MODE}
        next: decide
      decide:
        type: decision
        branches:
          - when: flow.survey.outcome == "liable"
            to: pay
          - else: done
      pay:
        type: task
        assign: {role: finance}
        next: done
      done:
        type: end
    """
SURVEY_FORM = """\
    form: survey
    label: Site survey
    fields:
      ticket_title:
        type: text
        required: true
      amount:
        type: money
    """
CHILD = """\
    flow: site_survey
    form: {FORM}
    start: begin
    start_on_create: {AUTO}
    nodes:
      begin:
        type: start
        next: inspect
      inspect:
        type: task
        assign: {role: agent}
        outcomes: [liable, not_liable]
        next: verdict
      verdict:
        type: decision
        branches:
          - when: flow.inspect.outcome == "liable"
            to: liable
          - else: not_liable
      liable:
        type: end
        outcome: liable
      not_liable:
        type: end
        outcome: not_liable
    """


def with_subflow(tmp_path: Path, mode: str, form: str = "survey", auto: str = "false"):  # type: ignore[no-untyped-def]
    return make(tmp_path, PARENT.replace("{MODE}", mode), {
        "forms/survey.yaml": SURVEY_FORM,
        "flows/site_survey.yaml": CHILD.replace("{FORM}", form).replace("{AUTO}", auto)})


def test_a_subflow_on_a_new_record_is_filled_from_the_parent_and_its_outcome_routes(tmp_path: Path) -> None:
    system = with_subflow(tmp_path, "fill: {ticket_title: title, amount: amount}", auto="true")
    record_id = submit(system, amount="120")
    parent = instance(system, record_id)
    assert parent["current"] == ["survey"]
    child_ref = parent["variables"]["survey"]
    survey = system.forms.get("survey", child_ref["record_id"])
    assert (survey["ticket_title"], str(survey["amount"])) == ("printer", "120.00")
    assert len(system.flows.instances("survey", child_ref["record_id"])) == 1  # started once
    inspect = task_at(system, child_ref["record_id"], "inspect", form="survey")
    system.flows.complete(inspect["id"], "ann", outcome="liable")
    parent = instance(system, record_id)
    assert parent["variables"]["survey"]["outcome"] == "liable" and parent["current"] == ["pay"]
    assert [h["data"]["outcome"] for h in history_of(system, record_id, "subflow.ended")] == ["liable"]


def test_a_subflow_on_the_same_record(tmp_path: Path) -> None:
    system = with_subflow(tmp_path, "record: same", form="ticket")
    record_id = submit(system)
    first, child = system.flows.instances("ticket", record_id)
    assert child["variables"]["_parent"] == {"instance_id": first["id"], "node": "survey"}
    system.flows.complete(task_at(system, record_id, "inspect")["id"], "ann", outcome="not_liable")
    first = system.flows.instances("ticket", record_id)[0]
    assert (first["status"], first["variables"]["survey"]["outcome"]) == ("completed", "not_liable")


def test_a_subflow_on_a_related_record(tmp_path: Path) -> None:
    system = with_subflow(tmp_path, "record_id: target_id")
    survey_id = system.forms.submit("survey", {"ticket_title": "earlier"}).record_id
    record_id = submit(system, target_id=survey_id)
    assert instance(system, record_id)["variables"]["survey"]["record_id"] == survey_id
    assert task_at(system, survey_id, "inspect", form="survey")


def test_a_new_subflow_record_that_is_invalid_is_an_incident(tmp_path: Path) -> None:
    # The required title is filled from the ticket's note, which this ticket leaves empty.
    system = with_subflow(tmp_path, "fill: {amount: amount, ticket_title: note}")
    record_id = submit(system)
    assert instance(system, record_id)["status"] == "incident"
    assert "ticket_title" in history_of(system, record_id, "incident")[0]["data"]["message"]


def test_a_new_subflow_record_without_a_field_its_form_requires_is_a_load_error(tmp_path: Path) -> None:
    # It loaded, and every ticket reaching the step stopped with an incident.
    files = {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM, "forms/survey.yaml": SURVEY_FORM,
             "flows/site_survey.yaml": CHILD.replace("{FORM}", "survey").replace("{AUTO}", "false")}
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml": PARENT.replace("{MODE}", "fill: {amount: amount}")})
    assert found == [("flows/ticket_flow.yaml", 11, 5, "a new 'survey' record needs 'ticket_title' (required on "
                      "its form), and this gives no value for it: every record it makes would be refused")]


def test_subflow_references_are_checked_at_load(tmp_path: Path) -> None:
    files = {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM, "forms/survey.yaml": SURVEY_FORM,
             "flows/site_survey.yaml": CHILD.replace("{FORM}", "survey").replace("{AUTO}", "false")}
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml":
                                PARENT.replace("{MODE}", "fill: {titel: title}").replace("flow: site_survey", "flow: site_survy")})
    assert ("flows/ticket_flow.yaml", 10, 11, "unknown flow 'site_survy'") in found
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml": PARENT.replace("{MODE}", "fill: {titel: title}")})
    assert ("flows/ticket_flow.yaml", 11, 19, "unknown field 'titel'") in found
    found = problems(tmp_path, {**files, "flows/ticket_flow.yaml": PARENT.replace("{MODE}", "record: same")})
    assert any("runs on survey records" in m for _f, _l, _c, m in found)
