"""A step the customer answers from the progress lookup (`customer:` on a task), and the path of
statuses a record went through, read from the history and the definitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.identity import CUSTOMER_ACTOR
from tests.engine.bundle_kit import MINI, write_bundle
from tests.flows.test_postal_flow import DELAY, Case, accept, system  # noqa: F401 (fixture)
from engine.bundle import validate_bundle
from web.system import System, build_registry


def at_confirmation(system: System) -> Case:
    case = accept(system, DELAY).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2"})
    case.do("reply", "agent", {"resolution": "已赔付并致歉"})
    return case


def test_the_confirmation_is_the_step_the_customer_may_answer(system: System) -> None:
    case = at_confirmation(system)
    found = system.flows.customer_step("complaint", case.id)
    assert found is not None
    task, node = found
    assert task["node"] == node.id == "confirm" and "prompt" in node.options["customer"]


def test_no_step_is_offered_to_the_customer_while_staff_work_on_the_case(system: System) -> None:
    case = accept(system, DELAY)
    assert system.flows.customer_step("complaint", case.id) is None


def test_the_customer_answering_moves_the_flow_on_and_is_recorded_as_the_customer(system: System) -> None:
    case = at_confirmation(system)
    task, _node = system.flows.customer_step("complaint", case.id)  # type: ignore[misc]
    system.flows.complete(task["id"], CUSTOMER_ACTOR, values={"customer_confirmed": True, "satisfaction": 4})
    assert case.status == "resolved" and system.flows.customer_step("complaint", case.id) is None
    (done,) = [h for h in case.history("task.completed") if h["node"] == "confirm"]
    assert done["actor"] == CUSTOMER_ACTOR and done["data"]["changes"]["satisfaction"] == [None, 4]


def test_the_status_path_lists_each_change_once_in_order(system: System) -> None:
    case = at_confirmation(system)
    case.do("confirm", "agent", {"customer_confirmed": True, "satisfaction": 5})
    assert [status for _at, status in system.flows.status_path("complaint", case.id)] == [
        "accepted", "in_progress", "awaiting_reply", "awaiting_confirmation", "resolved"]


def test_the_status_path_includes_an_escalation_and_a_withdrawal(system: System) -> None:
    case = Case(system, DELAY)
    system.flows.escalate_task(case.task("accept")["id"], 2, by="supervisor")
    system.flows.withdraw("complaint", case.id, actor="accounts")
    path = [status for _at, status in system.flows.status_path("complaint", case.id)]
    assert path[-2:] == ["escalated", "withdrawn"]


# -- load checks -------------------------------------------------------------------------------
FLOW = """flow: ask
form: enquiry
start: begin
nodes:
  begin: {type: start, next: answer}
  answer:
    type: task
    assign: {role: agent}
    fields: [FIELDS]
    customer: CUSTOMER
    next: done
  done: {type: end, outcome: resolved}
"""
ENQUIRY = """form: enquiry
numbering: "TK{random:6}"
LOOKUP
fields:
  phone: {type: phone, label: Phone}
  rating: {type: rating, label: Rating, max: 5, required: true}
  remark: {type: textarea, label: Remark}
  photo: {type: image, label: Photo}
"""


def problems(tmp_path: Path, fields: str = "rating", customer: str = "true",
             lookup: str = "lookup: {verify: phone, digits: 4}") -> list[str]:
    bundle = write_bundle(tmp_path / "b", {
        **MINI, "forms/enquiry.yaml": ENQUIRY.replace("LOOKUP", lookup),
        "flows/ask.yaml": FLOW.replace("FIELDS", fields).replace("CUSTOMER", customer)})
    _loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    return [f"{d.span.line}: {d.message}" for d in diags]


def test_a_customer_step_on_a_form_with_a_lookup_loads(tmp_path: Path) -> None:
    assert problems(tmp_path) == []
    assert problems(tmp_path, customer="{prompt: {zh-CN: 请评分, en: Please rate}}") == []


def test_a_customer_step_without_fields_is_a_load_error(tmp_path: Path) -> None:
    assert any("needs `fields`" in p for p in problems(tmp_path, fields=""))


def test_a_customer_step_on_a_form_customers_cannot_look_up_is_a_load_error(tmp_path: Path) -> None:
    assert problems(tmp_path, lookup="") == [
        "10: customers reach this step through the progress lookup, but form 'enquiry' has no `lookup` "
        "(with a query number)"]


def test_a_customer_step_that_could_be_answered_empty_is_a_warning(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", {
        **MINI, "forms/enquiry.yaml": ENQUIRY.replace("LOOKUP", "lookup: {verify: phone, digits: 4}"),
        "flows/ask.yaml": FLOW.replace("FIELDS", "remark, photo").replace("CUSTOMER", "true")})
    loaded, diags = validate_bundle(bundle, build_registry(plugins=False))
    assert loaded is not None
    assert [(d.severity, d.span.line, d.message) for d in diags] == [
        ("warning", 10, "the customer may answer this step empty: none of its fields is required")]


def test_a_customer_step_may_ask_for_photos(tmp_path: Path) -> None:
    assert problems(tmp_path, fields="rating, photo") == []


@pytest.mark.parametrize("customer", ["false", "{prompt: 5}", "{question: x}"])
def test_a_customer_option_that_is_not_true_or_a_prompt_is_a_load_error(tmp_path: Path, customer: str) -> None:
    assert problems(tmp_path, customer=customer)
