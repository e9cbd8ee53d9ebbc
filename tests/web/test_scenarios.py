"""Scenario tests (`docket test`): an analyst's stories run on scratch databases, and every
failure comes back as file:line:col at the step or expectation that failed."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from cli import main
from engine.bundle import content_hash
from engine.errors import format_diagnostic
from web.scenarios import ScenarioResult, run_scenarios

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
SUBMIT = """\
scenario: {zh-CN: 测试, en: A test}
start: 2026-03-02T09:00:00
steps:
  - submit: complaint
    by: accounts
    values:
      customer_name: 华中物流客户
      contact_name: 刘女士
      contact_phone: 027-88886666
      occurred_at: 2026-02-27T09:00:00+08:00
      category: delivery_late
      description: 延误三天
"""


def run(tmp_path: Path, steps: str) -> ScenarioResult:
    """Run the postal complaint submission followed by `steps` (YAML list items)."""
    path = tmp_path / "story.yaml"
    path.write_text(SUBMIT + textwrap.indent(textwrap.dedent(steps), "  "), encoding="utf-8")
    (result,) = run_scenarios(POSTAL, [path], db_folder=tmp_path)
    return result


def problem(result: ScenarioResult) -> str:
    (only,) = result.problems
    return format_diagnostic(only)


def test_the_postal_bundle_scenarios_all_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(POSTAL)]) == 0
    out = capsys.readouterr().out
    count = len(list((POSTAL / "scenarios").glob("*.yaml")))
    assert f"{count} passed ({count} scenarios)" in out and "FAIL" not in out


def test_a_scenario_that_holds_passes_and_counts_its_steps(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - expect: {at: accept, status: accepted, flow: running}
      - complete: accept
        by: agent
        values: {urgency: normal}
      - expect: {at: [marketing_review, operations_review]}
    """)
    assert result.passed and result.steps_run == 4


def test_a_wrong_expectation_is_reported_at_the_expected_value(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - expect: {at: propose}
    """)
    assert problem(result).startswith(f"{tmp_path / 'story.yaml'}:13:18: error: step 2 (expect): "
                                      "expected open steps [propose], found [accept]")



def test_every_wrong_expectation_of_a_step_is_reported_at_its_own_value(tmp_path: Path) -> None:
    # Only the first was: fixing it and running again found the next one.
    result = run(tmp_path, """\
      - expect: {at: propose, status: accepted, flow: completed}
    """)
    assert [(d.span.line, d.span.col, d.message) for d in result.problems] == [
        (13, 18, "step 2 (expect): expected open steps [propose], found [accept]"),
        (13, 51, "step 2 (expect): expected the flow to be completed, it is running")]



def test_message_text_holds_when_a_message_on_the_channel_says_it(tmp_path: Path) -> None:
    # The acknowledgement SMS the postal rules send on submission, by what the customer reads.
    assert run(tmp_path, """\
      - expect: {message_text: {sms: 您的投诉已受理}}
    """).passed


def test_message_text_no_message_holds_fails_showing_the_last_message(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - expect: {message_text: {sms: 已办结}}
    """)
    (found,) = result.problems
    assert found.message == "step 2 (expect): no sms message holds '已办结'"
    assert found.hint is not None and found.hint.startswith("the last one reads: 【邮政大客户服务】")


def test_a_wrong_message_count_shows_what_was_queued(tmp_path: Path) -> None:
    # "found 1" alone left the analyst to guess which rule or warning had sent it.
    result = run(tmp_path, """\
      - expect: {messages: {sms: 2}}
    """)
    (found,) = result.problems
    assert found.message == "step 2 (expect): expected 2 sms message(s) queued, found 1"
    assert found.hint is not None and found.hint.startswith("queued: 1 x 【邮政大客户服务】")


def test_a_command_refused_without_fails_is_a_failure_that_says_why(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: accept
        by: agent
        values: {urgency: "very"}
    """)
    assert "step 2 (complete accept by agent): refused: urgency:" in problem(result)


ASSESSED = """\
- complete: accept
  by: agent
  values: {urgency: normal}
- complete: marketing_review
  by: marketing
  values: {marketing_assessment: 影响续约}
- complete: operations_review
  by: operations
  values: {operations_finding: 中转延误}
"""
"""Steps that bring the scenario's delay complaint to the compensation proposal."""


def test_a_field_expectation_compares_numbers_as_numbers(tmp_path: Path) -> None:
    result = run(tmp_path, ASSESSED + textwrap.dedent("""\
      - complete: propose
        by: agent
        values: {compensation: 300}
      - expect: {fields: {compensation: 300.00, urgency: normal}}
      - expect: {fields: {compensation: 301}}
    """))
    assert result.steps_run == 6
    assert "expected compensation = 301, found '300.00'" in problem(result)


def test_a_user_who_may_not_work_on_a_task_is_refused(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: accept
        by: finance
    """)
    assert "'finance' may not work on the task at 'accept' (it is offered to: role agent)" in problem(result)


def test_fails_passes_when_the_command_is_refused_as_the_scenario_says(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: accept
        by: agent
        values: {urgency: "very"}
        fails: urgency
      - expect: {at: accept}
    """)
    assert result.passed


def test_fails_on_a_command_that_is_accepted_is_a_failure_at_fails(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: accept
        by: agent
        values: {urgency: normal}
        fails: not allowed
    """)
    assert ":16:12: error: step 2 (complete accept by agent): was accepted, but the scenario expects it " \
           "to be refused" in problem(result)


def test_a_step_at_a_node_without_an_open_task_names_the_open_ones(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: propose
        by: agent
    """)
    assert "step 2 (complete propose by agent): no open task at 'propose'; open: [accept]" in problem(result)


def test_a_wait_fires_the_timers_that_come_due_on_the_way(tmp_path: Path) -> None:
    # Normal urgency: respond within 1 working day (7.5 h). At 16:30 on the first day 6 working
    # hours are gone (lunch 12:00-13:30 does not count): yellow; the next morning it is red.
    result = run(tmp_path, """\
      - wait: 7.5h
      - expect: {sla: {response: yellow}, history: [sla.warning]}
      - wait: 1d
      - expect: {sla: {response: red}, history: [sla.breached]}
    """)
    assert result.passed, problem(result)


def test_a_wait_in_working_time_skips_nights(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - wait: 1 workdays
      - expect: {sla: {response: red}}
    """)
    assert result.passed, problem(result)


def test_a_step_that_does_two_things_is_refused_at_load(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - complete: accept
        note: 两件事
    """)
    assert result.steps_run == 0
    assert ":13:5: error: a step does one thing: it has complete, note" in problem(result)


def test_an_option_that_does_not_go_with_its_action_is_refused_at_load(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - wait: 2h
        by: agent
    """)
    assert ":14:5: error: 'by' does not go with 'wait'" in problem(result)


def test_a_wait_that_is_not_a_duration_is_refused_at_load(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - wait: soon
    """)
    assert ":13:11: error: 'soon' is not a duration" in problem(result)


def test_an_unknown_expectation_is_a_schema_error_with_its_position(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - expect: {stauts: accepted}
    """)
    assert ":13:" in problem(result) and "stauts" in problem(result)


def test_follow_without_a_record_of_the_form_says_so_at_the_step(tmp_path: Path) -> None:
    result = run(tmp_path, "- follow: defect_analysis\n")
    assert "no defect_analysis record was created" in problem(result)


def test_follow_of_an_unknown_form_names_the_forms(tmp_path: Path) -> None:
    result = run(tmp_path, "- follow: defect\n")
    assert "there is no form 'defect'" in problem(result) and "defect_analysis" in (result.problems[0].hint or "")


def test_each_scenario_runs_on_its_own_database(tmp_path: Path) -> None:
    story = tmp_path / "story.yaml"
    story.write_text(SUBMIT + "  - expect: {messages: {sms: 1}}\n", encoding="utf-8")
    first, second = run_scenarios(POSTAL, [story, story], db_folder=tmp_path)
    assert first.passed and second.passed, (first.problems, second.problems)


def test_the_bundle_is_loaded_once_for_every_scenario_file(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import web.scenarios
    import web.system

    loads: list[Path] = []
    real = web.scenarios.load_bundle

    def counted(root: Path, registry: object) -> object:
        loads.append(Path(root))
        return real(root, registry)  # type: ignore[arg-type]

    monkeypatch.setattr(web.scenarios, "load_bundle", counted)
    monkeypatch.setattr(web.system, "load_bundle", counted)
    story = tmp_path / "story.yaml"
    story.write_text(SUBMIT, encoding="utf-8")
    results = run_scenarios(POSTAL, [story, story, story], db_folder=tmp_path)
    assert [r.passed for r in results] == [True, True, True] and loads == [POSTAL]


def test_scenario_files_do_not_change_the_bundle_version(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    before = content_hash(bundle)
    (bundle / "scenarios" / "another.yaml").write_text(SUBMIT, encoding="utf-8")
    assert content_hash(bundle) == before


def test_a_bundle_without_scenarios_says_where_to_write_them(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle, ignore=shutil.ignore_patterns("scenarios"))
    assert main(["test", str(bundle)]) == 1
    assert f"no scenarios: write them in {bundle / 'scenarios'}/*.yaml" in capsys.readouterr().err




def test_scenarios_in_a_misnamed_folder_are_told_to_move(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(POSTAL, bundle)
    (bundle / "scenarios").rename(bundle / "scenario")
    assert main(["test", str(bundle)]) == 1
    assert "hint: rename the folder 'scenario' to scenarios/" in capsys.readouterr().err


def test_a_bundle_folder_that_does_not_exist_is_said_to_be_so(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    # A typo in the folder was told to write scenarios in it.
    assert main(["test", str(tmp_path / "meter_dispute")]) == 1
    err = capsys.readouterr().err
    assert f"the folder '{tmp_path / 'meter_dispute'}' does not exist" in err and "no scenarios" not in err


def test_a_fault_inside_docket_is_reported_at_the_step_not_raised(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.runtime import FlowService

    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(FlowService, "complete", broken)
    result = run(tmp_path, """\
      - complete: accept
        by: agent
    """)
    assert "step 2 (complete accept by agent): Docket failed inside (KeyError: 'boom')" in problem(result)


def test_docket_schema_writes_the_scenario_schema_for_editors(tmp_path: Path) -> None:
    import json

    assert main(["schema", "--out", str(tmp_path)]) == 0
    schema = json.loads((tmp_path / "scenario.schema.json").read_text("utf-8"))
    assert schema["title"] == "Docket scenario" and "expect" in schema["properties"]["steps"]["items"]["properties"]


REPLY_READY = ASSESSED + """\
- complete: propose
  by: agent
  values: {compensation: 300, basis: 延误赔付条款 3.2}
- follow: compensation
"""


def test_reply_plays_the_other_system_answering_the_records_message(tmp_path: Path) -> None:
    result = run(tmp_path, REPLY_READY + textwrap.dedent("""\
      - reply: erp
        with: {voucher_no: FI-2026-000318}
      - expect: {fields: {erp_voucher_no: FI-2026-000318}, history: [webhook.answered]}
    """))
    assert result.passed, [format_diagnostic(p) for p in result.problems]


def test_an_answer_the_form_refuses_shows_on_the_trail_in_a_scenario(tmp_path: Path) -> None:
    result = run(tmp_path, REPLY_READY + textwrap.dedent("""\
      - reply: erp
        with: {voucher_no: "FI-2026-000318-and-far-too-long-for-the-field"}
      - expect: {fields: {erp_voucher_no: null}, history: [webhook.answer_refused]}
    """))
    assert result.passed, [format_diagnostic(p) for p in result.problems]


def test_reply_without_a_message_waiting_for_an_answer_says_so_at_the_step(tmp_path: Path) -> None:
    result = run(tmp_path, """\
      - reply: erp
        with: {voucher_no: FI-1}
    """)
    assert problem(result).startswith(f"{tmp_path / 'story.yaml'}:13:12: error: step 2 (reply erp): "
                                      "no message on channel 'erp' about this complaint waits for an answer")


def test_a_scenario_file_may_be_named_as_it_lies_in_the_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(POSTAL), "scenarios/delay_closed_by_the_frontline.yaml"]) == 0
    assert main(["test", str(POSTAL), "delay_closed_by_the_frontline.yaml"]) == 0
    assert main(["test", str(POSTAL), "delay_closed_by_the_frontline"]) == 0
    assert capsys.readouterr().out.count("1 passed (1 scenarios)") == 3


def test_a_scenario_name_that_is_not_there_is_told_the_nearest_and_the_list(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", str(POSTAL), "delay_closed_by_frontline"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no scenario 'delay_closed_by_frontline'; did you mean 'delay_closed_by_the_frontline'?")
    assert "customer_is_told_of_a_delay" in err


def test_at_names_a_countersign_once_however_many_of_its_tasks_are_open(tmp_path: Path) -> None:
    # A countersign holds one open task per person; `at` asks which steps are open, so listing
    # the step once (as the reference says) must hold, not `[panel, panel]`.
    from tests.flows.kit import BUNDLE, FORM
    from tests.engine.bundle_kit import write_bundle

    root = write_bundle(tmp_path / "bundle", {
        "bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
        "flows/ticket_flow.yaml": """\
            flow: ticket_flow
            form: ticket
            start: begin
            nodes:
              begin: {type: start, next: panel}
              panel:
                type: countersign
                assign: {departments: [service, fin]}
                next: done
              done: {type: end}
            """,
        "scenarios/panel.yaml": """\
            scenario: {zh-CN: 会签, en: Countersign}
            steps:
              - submit: ticket
                by: ann
                values: {title: printer}
              - expect: {at: panel}
            """})
    (result,) = run_scenarios(root, db_folder=tmp_path / "dbs")
    assert result.passed, [format_diagnostic(p) for p in result.problems]
