"""A step's `timeout:`: when nobody has completed it in time (a customer who never answers),
its task is cancelled and the flow goes on to the step named, at the time the durable timer
fires; a step completed in time leaves nothing behind."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from flows.node_run import TIMEOUT_TIMER
from tests.engine.bundle_kit import problems
from tests.flows.kit import BUNDLE, FORM, NOW, history_of, instance, make, open_tasks, submit, task_at

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: confirm
      confirm:
        type: task
        assign: {role: agent}
        timeout: {after: 2 workdays, to: closed_unanswered}
        next: done
      closed_unanswered:
        type: end
        label: Closed unanswered
        outcome: withdrawn
      done:
        type: end
    """


def timers(system):  # type: ignore[no-untyped-def]
    return system.runtime.services["timers"]


def timeout_timers(system, record_id: int) -> list:  # type: ignore[no-untyped-def]
    with read_transaction(system.db) as conn:
        return timers(system).pending(conn, subject=f"instance:{instance(system, record_id)['id']}",
                                      kind=TIMEOUT_TIMER)


def test_a_step_nobody_completes_in_time_goes_on_to_its_timeout_step(tmp_path: Path) -> None:
    clock = ManualClock(NOW)  # Monday 10:00 in Shanghai
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    (timer,) = timeout_timers(system, record_id)
    assert timer.due_at == datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # two working days: Wednesday 10:00
    assert timers(system).tick(now=timer.due_at - timedelta(minutes=1)) == 0
    clock.set(timer.due_at)
    assert timers(system).tick() == 1
    assert instance(system, record_id)["status"] == "completed" and open_tasks(system, record_id) == []
    (timed_out,) = history_of(system, record_id, "task.timed_out")
    assert timed_out["node"] == "confirm" and timed_out["data"] == {"after": "2 workdays", "to": "closed_unanswered"}


def test_a_step_completed_in_time_cancels_its_timeout(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW)
    record_id = submit(system)
    system.flows.claim(task_at(system, record_id, "confirm")["id"], "ann")
    system.flows.complete(task_at(system, record_id, "confirm")["id"], "ann")
    assert timeout_timers(system, record_id) == []
    assert history_of(system, record_id, "task.timed_out") == []


def test_a_timeout_that_fires_after_the_step_was_done_changes_nothing(tmp_path: Path) -> None:
    # A timer already being fired when the step completes: the handler finds the token gone.
    clock = ManualClock(NOW)
    system = make(tmp_path, FLOW, clock=clock)
    record_id = submit(system)
    (timer,) = timeout_timers(system, record_id)
    system.flows.claim(task_at(system, record_id, "confirm")["id"], "ann")
    system.flows.complete(task_at(system, record_id, "confirm")["id"], "ann")
    ended = instance(system, record_id)
    clock.set(timer.due_at + timedelta(days=1))
    timers(system).tick()
    assert instance(system, record_id) == ended and history_of(system, record_id, "task.timed_out") == []


def test_a_timeout_naming_a_step_the_flow_lacks_is_an_error_at_it(tmp_path: Path) -> None:
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": FLOW.replace("to: closed_unanswered", "to: closed")})
    assert [(f, line, m) for f, line, _, m in found if "closed" in m][:1] == [
        ("flows/ticket_flow.yaml", 11, "unknown node 'closed'")]


def test_a_timeout_with_a_misspelt_duration_is_an_error_at_it(tmp_path: Path) -> None:
    found = problems(tmp_path, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                "flows/ticket_flow.yaml": FLOW.replace("after: 2 workdays", "after: 2 wrokdays")})
    assert [(f, line) for f, line, *_ in found] == [("flows/ticket_flow.yaml", 11)]


def test_the_record_page_says_when_the_step_gives_up_and_where_the_record_goes(tmp_path: Path) -> None:
    from tests.web.staff_kit import client_for

    system = make(tmp_path, FLOW)
    record_id = submit(system)
    page = client_for(system, "ann").get(f"/records/ticket/{record_id}?lang=en").text
    assert ('<p class="help task-timeout">If nobody completes this step by 2026-11-25 10:00, the record goes on '
            'to “Closed unanswered”.</p>') in page


def test_a_customer_answering_a_step_with_a_timeout_is_told_by_when(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from web.app import create_app

    flow = FLOW.replace("        assign: {role: agent}\n", "        assign: {role: agent}\n        fields: [note]\n"
                        "        customer: true\n")
    form = FORM.replace("numbering: T{seq:4}", "numbering: T{seq:4}\n    lookup: {verify: owner, digits: 4}")
    system = make(tmp_path, flow, {"forms/ticket.yaml": form})
    record_id = submit(system, owner="13812345678")
    query_no = system.forms.get("ticket", record_id)["query_no"]
    client = TestClient(create_app(system, secret="t"))
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678"}).text
    assert '<p class="help" id="answer-by">Please answer by 2026-11-25 10:00.</p>' in page


def test_the_flow_diagram_labels_the_timeout_edge(tmp_path: Path) -> None:
    from web.flow_diagram import layout

    system = make(tmp_path, FLOW)
    edges = {(e.source, e.target): e.label for e in layout(system.bundle.all("flow")["ticket_flow"],
                                                           system.bundle.registry, "zh-CN").edges}
    assert edges[("confirm", "closed_unanswered")] == "逾期未办" and edges[("confirm", "done")] == ""


def test_an_approval_nobody_decides_in_time_goes_on_to_its_timeout_step(tmp_path: Path) -> None:
    flow = FLOW.replace("""      confirm:
        type: task
        assign: {role: agent}
        timeout: {after: 2 workdays, to: closed_unanswered}
        next: done""", """      confirm:
        type: approval
        assign: {role: manager}
        timeout: {after: 3d, to: closed_unanswered}
        approve: done
        reject: closed_unanswered""")
    clock = ManualClock(NOW)
    system = make(tmp_path, flow, clock=clock)
    record_id = submit(system)
    clock.advance(timedelta(days=3))
    assert timers(system).tick() >= 1
    assert open_tasks(system, record_id) == [] and history_of(system, record_id, "task.timed_out")
