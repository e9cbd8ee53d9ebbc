"""`docket validate` checks the bundle's scenario files without running them: their shape, and
every name they use (forms, flow steps, users, channels, fields), each at its file:line:col."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cli import main
from engine.bundle import content_hash, validate_bundle
from tests.engine.bundle_kit import Problem
from web.scenario_check import check_scenarios
from web.system import build_registry

STARTER = Path(__file__).resolve().parents[2] / "definitions" / "starter"
SUBMIT = """\
scenario: {zh-CN: 测试, en: A test}
steps:
  - submit: request
    values: {subject: 购买打印纸, requester: 李明, phone: 13912345678, amount: 300}
"""


def starter_with(tmp_path: Path, steps: str, *, head: str = SUBMIT) -> Path:
    """A copy of the starter bundle whose only scenario is `head` followed by `steps`."""
    bundle = tmp_path / "starter"
    shutil.copytree(STARTER, bundle)
    shutil.rmtree(bundle / "scenarios")
    (bundle / "scenarios").mkdir()
    (bundle / "scenarios" / "story.yaml").write_text(head + steps, "utf-8")
    return bundle


def scenario_problems(tmp_path: Path, steps: str, *, head: str = SUBMIT) -> list[Problem]:
    """The errors of the scenario as (file in the bundle, line, col, message)."""
    bundle = starter_with(tmp_path, steps, head=head)
    registry = build_registry(plugins=False)
    loaded, _ = validate_bundle(bundle, registry)
    assert loaded is not None
    found = []
    for d in check_scenarios(bundle, loaded, registry):
        assert d.span is not None, d.message
        found.append((Path(d.span.file).resolve().relative_to(bundle.resolve()).as_posix(),
                      d.span.line, d.span.col, d.message))
    return found


def test_the_starter_and_postal_scenarios_have_no_problems() -> None:
    for root in (STARTER, STARTER.parent / "postal_complaints"):
        registry = build_registry(plugins=False)
        bundle, _ = validate_bundle(root, registry)
        assert check_scenarios(root, bundle, registry) == []


def test_a_misspelt_form_in_submit_is_an_error_at_the_form(tmp_path: Path) -> None:
    head = "scenario: A test\nsteps:\n  - submit: requst\n"
    assert scenario_problems(tmp_path, "", head=head) == [("scenarios/story.yaml", 3, 13, "unknown form 'requst'")]


def test_a_misspelt_form_in_follow_is_an_error_at_the_form(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - follow: requests\n")
    assert found == [("scenarios/story.yaml", 5, 13, "unknown form 'requests'")]


def test_a_step_the_records_flow_does_not_have_is_an_error_at_the_step_name(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - complete: reveiw\n    by: officer\n")
    assert found == [("scenarios/story.yaml", 5, 15, "unknown node 'reveiw'")]


@pytest.mark.parametrize("action", ["claim", "reassign", "reopen", "answer"])
def test_every_step_that_names_a_flow_step_is_checked(tmp_path: Path, action: str) -> None:
    found = scenario_problems(tmp_path, f"  - {action}: nowhere\n")
    assert [message for *_, message in found] == ["unknown node 'nowhere'"]


def test_a_user_who_is_not_a_demo_user_is_an_error_at_by(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - complete: review\n    by: oficer\n    outcome: approve\n")
    assert found == [("scenarios/story.yaml", 6, 9, "unknown user 'oficer'")]


def test_the_user_a_task_is_reassigned_to_is_checked(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - reassign: review\n    by: officer\n    to: manger\n")
    assert found == [("scenarios/story.yaml", 7, 9, "unknown user 'manger'")]


def test_a_channel_that_is_not_configured_is_an_error_at_reply(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - reply: erp\n    with: {ok: true}\n")
    assert found == [("scenarios/story.yaml", 5, 12, "unknown channel 'erp'")]


def test_a_channel_counted_in_messages_is_checked(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - expect: {messages: {sms: 1}}\n")
    assert found == [("scenarios/story.yaml", 5, 25, "unknown channel 'sms'")]



def test_a_channel_whose_message_text_is_expected_is_checked(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - expect: {message_text: {sms: 已批准}}\n")
    assert [message for *_, message in found] == ["unknown channel 'sms'"]


def test_a_submitted_value_for_a_field_the_form_lacks_is_an_error_at_the_field(tmp_path: Path) -> None:
    head = "scenario: A test\nsteps:\n  - submit: request\n    values: {subject: 纸, amont: 300}\n"
    assert scenario_problems(tmp_path, "", head=head) == [("scenarios/story.yaml", 4, 26, "unknown field 'amont'")]


def test_an_expected_field_the_form_lacks_is_an_error_at_the_field(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - expect: {fields: {amout: 300}}\n")
    assert found == [("scenarios/story.yaml", 5, 23, "unknown field 'amout'")]



def test_an_expected_status_no_record_can_have_is_an_error_at_it(tmp_path: Path) -> None:
    # The starter's statuses are its request_status list: 'closed' is none of them, so the
    # scenario could only fail, and only when run.
    found = scenario_problems(tmp_path, "  - expect: {status: closed}\n")
    assert found == [("scenarios/story.yaml", 5, 22, "unknown status 'closed'")]




def test_an_expected_outcome_no_flow_of_the_form_ends_with_is_an_error_at_it(tmp_path: Path) -> None:
    # The starter's flow ends approved or rejected: 'declined' (its status) is not an outcome.
    found = scenario_problems(tmp_path, "  - expect: {outcome: declined}\n")
    assert found == [("scenarios/story.yaml", 5, 23, "unknown outcome 'declined'")]


def test_an_expected_sla_target_the_form_lacks_is_an_error_at_it(tmp_path: Path) -> None:
    # It passed validate and failed only when run ("no SLA clock 'reveiw' runs on this record").
    found = scenario_problems(tmp_path, "  - expect: {sla: {reveiw: met}}\n")
    assert found == [("scenarios/story.yaml", 5, 20, "unknown SLA target 'reveiw'")]



def test_a_step_completed_without_by_is_a_warning_at_the_step(tmp_path: Path) -> None:
    # It ran as no one, so a task offered to a role no demo user holds still passed.
    found = scenario_problems(tmp_path, "  - complete: review\n    outcome: approve\n")
    assert found == [("scenarios/story.yaml", 5, 15, "without `by`, no one's right to work on the task is checked")]


def test_a_completed_steps_values_are_checked_against_the_form(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - complete: review\n    by: officer\n    outcome: approve\n"
                                        "    values: {note: ok}\n")
    assert [message for *_, message in found] == ["unknown field 'note'"]


def test_a_value_that_is_not_an_option_is_an_error_at_the_value_with_the_value_meant(tmp_path: Path) -> None:
    # `priority: 高` (the label the form shows) ran, and the step was refused with "Choose one of
    # the listed options", pointed at the step.
    bundle = starter_with(tmp_path, "  - complete: review\n    by: officer\n    outcome: approve\n"
                                    "    values: {priority: 高}\n")
    registry = build_registry(plugins=False)
    (diag,) = check_scenarios(bundle, validate_bundle(bundle, registry)[0], registry)
    assert diag.span is not None and (diag.span.line, diag.span.col) == (8, 24)
    assert diag.message == "'高' is not an option of 'priority'"
    assert diag.hint == "'高' is the label of an option of 'priority': write its value, \"high\""


def test_a_group_of_a_category_tree_submitted_is_an_error_with_the_values_under_it(tmp_path: Path) -> None:
    postal = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
    bundle = tmp_path / "postal"
    shutil.copytree(postal, bundle)
    story = (bundle / "scenarios" / "customer_is_told_of_a_delay.yaml")
    text = story.read_text("utf-8")
    assert text.count("category: delivery_late") == 1
    story.write_text(text.replace("category: delivery_late", "category: delivery_delay"), "utf-8")
    registry = build_registry(plugins=False)
    (diag,) = check_scenarios(bundle, validate_bundle(bundle, registry)[0], registry)
    assert diag.message == "'delivery_delay' is a group of 'category': a record holds a value of the last level"
    assert diag.hint == "one of: delivery_late"


def test_a_wrong_option_in_a_step_that_must_fail_is_left_to_the_run(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - complete: review\n    by: officer\n    outcome: approve\n"
                                        "    values: {priority: urgent}\n    fails: priority\n")
    assert found == []


def test_a_misspelt_name_comes_with_a_did_you_mean_hint(tmp_path: Path) -> None:
    bundle = starter_with(tmp_path, "  - complete: reveiw\n    by: officer\n")
    registry = build_registry(plugins=False)
    (diag,) = check_scenarios(bundle, validate_bundle(bundle, registry)[0], registry)
    assert diag.hint == "did you mean 'review'?"


def test_a_step_before_any_record_is_an_error(tmp_path: Path) -> None:
    head = "scenario: A test\nsteps:\n  - complete: review\n    by: officer\n"
    found = scenario_problems(tmp_path, "", head=head)
    assert [message for *_, message in found] == ["there is no record yet: begin the scenario with a `submit` step"]


def test_the_names_after_an_unknown_form_are_not_reported_again(tmp_path: Path) -> None:
    head = "scenario: A test\nsteps:\n  - submit: requst\n    values: {subject: 纸}\n"
    found = scenario_problems(tmp_path, "  - complete: review\n    by: officer\n", head=head)
    assert [message for *_, message in found] == ["unknown form 'requst'"]


def test_a_scenario_whose_shape_is_wrong_is_a_positioned_error(tmp_path: Path) -> None:
    found = scenario_problems(tmp_path, "  - expect: {at: review, staus: in_review}\n")
    assert [(line, message.startswith("unknown key 'staus'")) for _f, line, _c, message in found] == [(5, True)]


def test_docket_validate_fails_on_a_scenario_problem_and_prints_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = starter_with(tmp_path, "  - complete: reveiw\n    by: officer\n")
    assert main(["validate", str(bundle)]) == 1
    err = capsys.readouterr().err
    assert "story.yaml:5:15: error: unknown node 'reveiw'" in err and "1 error(s)" in err


def test_docket_validate_runs_nothing(tmp_path: Path) -> None:
    """A scenario whose expectation would fail when run is still valid: validate only reads it."""
    bundle = starter_with(tmp_path, "  - expect: {status: approved}\n")
    assert main(["validate", str(bundle)]) == 0
    assert not list(bundle.rglob("*.db"))


def test_scenarios_stay_out_of_the_bundle_version(tmp_path: Path) -> None:
    bundle = starter_with(tmp_path, "")
    before = content_hash(bundle)
    (bundle / "scenarios" / "story.yaml").write_text(SUBMIT + "  - expect: {status: new}\n", "utf-8")
    assert content_hash(bundle) == before


def test_an_outcome_the_approval_does_not_take_is_an_error_at_the_outcome(tmp_path: Path) -> None:
    """`outcome: approved` validated, and the scenario failed only when run: "choose one of..."."""
    steps = "  - complete: review\n    by: officer\n    outcome: approved\n"
    (problem,) = scenario_problems(tmp_path, steps)
    assert problem == ("scenarios/story.yaml", 7, 14, "step 'review' cannot be completed with outcome 'approved'")


def test_completing_an_approval_without_an_outcome_is_an_error_at_the_step(tmp_path: Path) -> None:
    steps = "  - complete: review\n    by: officer\n"
    (problem,) = scenario_problems(tmp_path, steps)
    assert problem == ("scenarios/story.yaml", 5, 15, "step 'review' cannot be completed with no outcome")


def test_an_outcome_the_approval_takes_is_accepted(tmp_path: Path) -> None:
    steps = "  - complete: review\n    by: officer\n    outcome: reject\n"
    assert scenario_problems(tmp_path, steps) == []
