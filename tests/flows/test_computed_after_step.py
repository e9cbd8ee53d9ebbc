"""A computed field follows the fields a step changes: a decision after the step reads the new value."""

from __future__ import annotations

from pathlib import Path

from tests.flows.kit import FORM, make, open_tasks, submit, task_at

COMPUTED_FORM = FORM.rstrip(" ") + """\
      doubled:
        type: computed
        expression: (target_id or 0) * 2
        result: number
    """

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: revise
      revise:
        type: task
        assign: {role: agent}
        fields: [target_id]
        next: route
      route:
        type: decision
        branches:
          - when: doubled > 10
            to: big
          - else: small
      big:
        type: task
        assign: {role: manager}
        next: done
      small:
        type: task
        assign: {role: agent}
        next: done
      done:
        type: end
    """


def test_a_computed_field_is_recomputed_when_a_step_changes_what_it_reads(tmp_path: Path) -> None:
    system = make(tmp_path, FLOW, {"forms/ticket.yaml": COMPUTED_FORM})
    record_id = submit(system, target_id=10)
    assert system.forms.get("ticket", record_id)["doubled"] == 20
    system.flows.complete(task_at(system, record_id, "revise")["id"], "ann", values={"target_id": 3})
    assert system.forms.get("ticket", record_id)["doubled"] == 6
    assert [t["node"] for t in open_tasks(system, record_id)] == ["small"]
