"""`docket validate` reports a flow's structural mistakes as errors with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main
from tests.engine.bundle_kit import MINI, diagnostics, problems, write_bundle

GOOD = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin:
        type: start
        next: split
      split:
        type: parallel
        branches: [a, b]
      a:
        type: task
        assign: {role: agent}
        next: joined
      b:
        type: task
        assign: {role: agent}
        next: joined
      joined:
        type: join
        split: split
        next: route
      route:
        type: decision
        branches:
          - when: urgency == "high"
            to: done
          - else: done
      done:
        type: end
    """.rstrip(" ")


def errors(tmp_path: Path, flow: str) -> list[tuple[str, int, int, str]]:
    return problems(tmp_path, {"flows/ticket_flow.yaml": flow})


def test_the_good_flow_has_no_errors(tmp_path: Path) -> None:
    assert errors(tmp_path, GOOD) == []


def test_a_mistake_in_an_anchored_block_is_one_error_at_its_text(tmp_path: Path) -> None:
    # b reuses a's assignment through an alias: the unknown role is written once, on line 13.
    flow = (GOOD.replace("        assign: {role: agent}\n        next: joined\n      b:",
                         "        assign: &who {role: agnet}\n        next: joined\n      b:", 1)
            .replace("      b:\n        type: task\n        assign: {role: agent}", "      b:\n        type: task\n        assign: *who"))
    assert [p[:3] + (p[3][:20],) for p in errors(tmp_path, flow)] == [("flows/ticket_flow.yaml", 13, 25, "unknown role 'agnet'")]


def test_a_bare_word_for_an_assignment_is_told_the_role_it_means(tmp_path: Path) -> None:
    flow = GOOD.replace("      a:\n        type: task\n        assign: {role: agent}", "      a:\n        type: task\n        assign: agent")
    (found,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert found.hint == "write assign: {role: agent}"


def test_an_unreachable_node_is_an_error_at_its_key(tmp_path: Path) -> None:
    flow = GOOD + "      orphan:\n        type: task\n        assign: {role: agent}\n        next: done\n"
    assert ("flows/ticket_flow.yaml", 31, 3, "node 'orphan' is unreachable from the start 'begin'") \
        in errors(tmp_path, flow)


def test_a_path_that_never_ends_is_an_error_at_each_node_on_it(tmp_path: Path) -> None:
    flow = GOOD.replace("          - else: done", "          - else: loop") + (
        "      loop:\n        type: task\n        assign: {role: agent}\n        next: again\n"
        "      again:\n        type: task\n        assign: {role: agent}\n        next: loop\n")
    found = errors(tmp_path, flow)
    assert ("flows/ticket_flow.yaml", 31, 3,
            "no path from node 'loop' reaches an end: records there could never finish") in found
    assert ("flows/ticket_flow.yaml", 35, 3,
            "no path from node 'again' reaches an end: records there could never finish") in found



def test_a_task_offered_to_no_one_is_a_warning_at_it(tmp_path: Path) -> None:
    # A forgotten `assign:` loaded cleanly, and every record waited at a task no inbox showed.
    flow = GOOD.replace("      a:\n        type: task\n        assign: {role: agent}\n", "      a:\n        type: task\n")
    found = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.code == "task-no-assignee"]
    assert [(d.span.line, d.span.col, d.message) for d in found if d.span] == [
        (12, 11, "the task 'a' is offered to no one: no inbox shows it, and records wait at it")]


def test_a_join_without_its_split_is_an_error_at_split(tmp_path: Path) -> None:
    flow = GOOD.replace("        split: split", "        split: spilt")
    found = errors(tmp_path, flow)
    assert ("flows/ticket_flow.yaml", 21, 12, "unknown node 'spilt'") in found


def test_a_join_naming_a_node_that_is_not_a_split_is_an_error(tmp_path: Path) -> None:
    flow = GOOD.replace("        split: split", "        split: a")
    assert ("flows/ticket_flow.yaml", 21, 12, "join 'joined' must name a parallel split; 'a' is a task node") \
        in errors(tmp_path, flow)


def test_a_misspelt_next_is_the_only_error_reported(tmp_path: Path) -> None:
    flow = GOOD.replace("        next: route", "        next: rout")
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 22, 11, "unknown node 'rout'")]


def test_a_forgotten_next_is_the_only_error_reported(tmp_path: Path) -> None:
    # A step left without `next:` gave one error per node before it (never ends) and after it
    # (unreachable): 25 lines for the postal flow, with the one real mistake among them.
    flow = GOOD.replace("        split: split\n        next: route\n", "        split: split\n")
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 19, 3,
                                       "node 'joined' has no 'next': where does the flow go after it?")]


def test_the_old_name_of_a_renamed_step_is_told_the_new_one(tmp_path: Path) -> None:
    # Renaming `route` to `triage_route` left its references with a list of twelve known nodes.
    flow = GOOD.replace("      route:\n", "      triage_route:\n")
    found = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert [(d.message, d.hint) for d in found] == [
        ("unknown node 'route'", "was it renamed 'triage_route'? No step leads to 'triage_route': write triage_route here")]


def test_a_join_whose_split_has_a_misspelt_type_reports_only_the_type(tmp_path: Path) -> None:
    flow = GOOD.replace("        type: parallel", "        type: paralel")
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 9, 11, "unknown node type 'paralel'")]


def test_a_branch_comparing_a_field_with_a_value_that_is_not_an_option_is_an_error(tmp_path: Path) -> None:
    flow = GOOD.replace('urgency == "high"', 'urgency == "hihg"')
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 26, 26,
                                       "'hihg' is not an option of 'urgency': the comparison could never hold")]


def test_a_branch_comparing_a_field_with_an_options_label_is_told_its_value(tmp_path: Path) -> None:
    flow = GOOD.replace('urgency == "high"', 'urgency == "高"')
    (found,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert found.hint == "'高' is the label of an option of 'urgency': write its value, \"high\""


def test_a_role_not_yet_declared_is_told_where_roles_are_declared(tmp_path: Path) -> None:
    # A new team's role, forgotten in bundle.yaml, was told "did you mean 'exception_team'?".
    flow = GOOD.replace("      b:\n        type: task\n        assign: {role: agent}", "      b:\n        type: task\n"
                        "        assign: {role: customs_team}")
    (found,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert found.message == "unknown role 'customs_team'"
    assert found.hint is not None and found.hint.endswith(
        "if 'customs_team' is a new role, declare it under roles: in bundle.yaml")


def test_a_misspelt_role_is_told_only_the_role_meant(tmp_path: Path) -> None:
    flow = GOOD.replace("      b:\n        type: task\n        assign: {role: agent}", "      b:\n        type: task\n"
                        "        assign: {role: agnet}")
    (found,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert found.hint == "did you mean 'agent'?"


def test_a_branch_added_after_else_is_told_to_move_above_it(tmp_path: Path) -> None:
    flow = GOOD.replace("          - else: done\n", "          - else: done\n          - when: urgency == \"low\"\n"
                        "            to: done\n")
    (found,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert found.message == "'else' must be the last branch"
    assert found.hint is not None and found.hint.startswith("move the branches after it above it")


def rule_problems(tmp_path: Path, condition: str) -> list[tuple[str, int, int, str]]:
    """The problems of a ruleset whose one rule has `condition` (on line 6, from column 19)."""
    rules = f"""\
        ruleset: ticket_rules
        form: ticket
        rules:
          check:
            on: record.created
            when: {condition}
            do:
              - {{action: flag, tag: checked}}
        """
    return problems(tmp_path, {"rules/ticket_rules.yaml": rules})


def test_a_rule_condition_comparing_a_field_with_a_number_for_a_text_option_is_an_error(tmp_path: Path) -> None:
    assert rule_problems(tmp_path, 'urgency in ("high", 2)') == [
        ("rules/ticket_rules.yaml", 6, 31, "2 is not an option of 'urgency': the comparison could never hold")]


ACTION_STEP = GOOD.replace("""      route:
        type: decision""", """      route:
        type: action
        do:
          - {action: set, fields: {title: x}, colour: red}
          - {action: set, compute: {title: 'str(urgency == "hihg")'}}
        next: choose
      choose:
        type: decision""")


def test_an_unknown_key_in_an_action_step_does_not_hide_its_other_problems(tmp_path: Path) -> None:
    flow = ACTION_STEP.replace("fields: {title: x}, colour: red", "fields: {titel: x}, colour: red")
    found = [message for _file, _line, _col, message in errors(tmp_path, flow)]
    assert any("colour" in message for message in found)
    assert any("titel" in message for message in found)


def test_an_action_steps_expression_is_checked_against_the_fields_options(tmp_path: Path) -> None:
    found = [message for _file, _line, _col, message in errors(tmp_path, ACTION_STEP)]
    assert "'hihg' is not an option of 'urgency': the comparison could never hold" in found


def test_a_decision_without_else_is_an_error_at_its_branches(tmp_path: Path) -> None:
    flow = GOOD.replace("          - else: done\n", "          - when: urgency == \"low\"\n            to: done\n")
    found = errors(tmp_path, flow)
    assert ("flows/ticket_flow.yaml", 26, 7,
            "decision has no 'else' branch: a record matching no condition would be stuck") in found


@pytest.mark.parametrize("defect, message", [
    ("      orphan:\n        type: end\n", "node 'orphan' is unreachable"),
])
def test_the_command_line_prints_the_position(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              defect: str, message: str) -> None:
    root = write_bundle(tmp_path / "b", {"flows/ticket_flow.yaml": GOOD + defect})
    assert main(["validate", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"ticket_flow.yaml:31:3: error: {message}" in err


def test_a_branch_reading_a_field_through_record_is_checked_against_its_options(tmp_path: Path) -> None:
    flow = GOOD.replace('urgency == "high"', 'record.urgency == "hihg"')
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 26, 33,
                                       "'hihg' is not an option of 'urgency': the comparison could never hold")]



def test_a_branch_reading_the_outcome_of_a_node_the_flow_lacks_is_an_error_at_the_name(tmp_path: Path) -> None:
    # flow.<misspelt node> is always empty: the record silently took the other branch.
    flow = GOOD.replace('urgency == "high"', 'flow.aa.outcome == "done"')
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 26, 20, "unknown node 'aa' in flow.aa")]


def test_any_expression_of_a_flow_naming_a_node_it_lacks_is_an_error(tmp_path: Path) -> None:
    # Not only branch conditions: an assignment reading flow.<misspelt node> would be empty too.
    flow = GOOD.replace("      a:\n        type: task\n        assign: {role: agent}\n",
                        "      a:\n        type: task\n        assign: {expression: flow.begn.by}\n")
    assert [m for *_, m in errors(tmp_path, flow)] == ["unknown node 'begn' in flow.begn"]


def test_a_branch_comparing_a_steps_outcome_with_one_it_never_records_is_an_error_at_it(tmp_path: Path) -> None:
    flow = GOOD.replace("      a:\n        type: task\n", "      a:\n        type: task\n        outcomes: [fixed, not_fixed]\n")
    flow = flow.replace('urgency == "high"', 'flow.a.outcome == "fixd"')
    assert errors(tmp_path, flow) == [("flows/ticket_flow.yaml", 27, 33,
                                       "'fixd' is not an option of 'flow.a.outcome': the comparison could never hold")]


def test_an_approvals_outcomes_are_those_it_records_not_the_buttons(tmp_path: Path) -> None:
    # The approver presses approve; flow.<node>.outcome holds approved.
    flow = GOOD.replace("      a:\n        type: task\n", "      a:\n        type: approval\n        approve: joined\n        reject: joined\n")
    flow = flow.replace("        next: joined\n      b:", "      b:")
    assert errors(tmp_path, flow.replace('urgency == "high"', 'flow.a.outcome == "approved"')) == []
    assert [m for *_, m in errors(tmp_path, flow.replace('urgency == "high"', 'flow.a.outcome == "approve"'))] == [
        "'approve' is not an option of 'flow.a.outcome': the comparison could never hold"]


def test_a_branch_comparing_a_money_field_with_text_is_an_error_with_the_fix(tmp_path: Path) -> None:
    flow = GOOD.replace('urgency == "high"', '(amount or 0) > "3000"')
    found = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert [(f, line, col) for f, line, col, _ in found] == [("flows/ticket_flow.yaml", 26, 31)]
    assert "the text '3000' cannot be compared with 'amount', which holds a number" in found[0][3]


def test_a_rule_condition_comparing_a_number_field_with_text_is_an_error(tmp_path: Path) -> None:
    assert rule_problems(tmp_path, 'amount == "5000"') == [
        ("rules/ticket_rules.yaml", 6, 21, "the text '5000' is never equal to 'amount', which holds a number: "
                                           "the comparison could never hold")]


def test_reopen_naming_an_unknown_role_or_step_is_an_error_at_each(tmp_path: Path) -> None:
    flow = GOOD.replace("start: begin\n", "start: begin\n    reopen:\n      roles: [agent, superviser]\n      at: [a, c]\n")
    found = errors(tmp_path, flow)
    assert [e[:3] for e in found] == [("flows/ticket_flow.yaml", 5, 18), ("flows/ticket_flow.yaml", 6, 11)]
    assert found[0][3].startswith("unknown role 'superviser'") and found[1][3].startswith("unknown node 'c'")


STATUS_LIST = """\
    list: ticket_status
    items:
      - {value: new, label: 已受理}
      - {value: in_progress, label: 处理中}
    """


def test_a_status_outside_the_forms_status_list_is_an_error_at_it(tmp_path: Path) -> None:
    """The progress lookup would show the customer the bare code of a status it cannot name."""
    form = MINI["forms/ticket.yaml"].replace("numbering: T{seq:4}\n",
                                             "numbering: T{seq:4}\n        lookup: {verify: title, statuses: ticket_status}\n")
    flow = GOOD.replace("        type: task\n        assign: {role: agent}\n        next: joined\n      b:",
                        "        type: task\n        status: in_progres\n        assign: {role: agent}\n"
                        "        next: joined\n      b:")
    found = problems(tmp_path, {"forms/ticket.yaml": form, "lists/ticket_status.yaml": STATUS_LIST,
                                "flows/ticket_flow.yaml": flow})
    assert found == [("flows/ticket_flow.yaml", 13, 13,
                      "status 'in_progres' is not in the list 'ticket_status' that names the statuses "
                      "of form 'ticket' (its lookup's `statuses`)")]


def test_a_status_list_without_withdrawn_is_a_warning_at_the_flows_form(tmp_path: Path) -> None:
    """Any submitter may withdraw a running record: the lookup would show 'withdrawn' bare."""
    form = MINI["forms/ticket.yaml"].replace("numbering: T{seq:4}\n",
                                             "numbering: T{seq:4}\n        lookup: {verify: title, statuses: ticket_status}\n")
    found = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form, "lists/ticket_status.yaml": STATUS_LIST,
                                               "flows/ticket_flow.yaml": GOOD}) if d.code == "unknown-status"]
    assert [(d.severity, d.span.line, d.span.col) for d in found] == [("warning", 2, 7)]  # type: ignore[union-attr]
    assert "no 'withdrawn'" in found[0].message and "ticket_status" in (found[0].hint or "")
    with_it = STATUS_LIST + "      - {value: withdrawn, label: 已撤回}\n"
    assert [d for d in diagnostics(tmp_path / "2", {"forms/ticket.yaml": form, "lists/ticket_status.yaml": with_it,
                                                    "flows/ticket_flow.yaml": GOOD}) if d.code == "unknown-status"] == []


def required_at_handle(tmp_path: Path, fields: str) -> list:
    """Warnings of MINI whose amount is required while a ticket is 'handling', the status its
    step `handle` sets, where that step lets its person fill in `fields`."""
    form = MINI["forms/ticket.yaml"].replace('required_if: urgency == "high"', 'required_if: status == "handling"')
    flow = MINI["flows/ticket_flow.yaml"].replace("fields: [urgency]", f"status: handling\n            fields: {fields}")
    found = diagnostics(tmp_path, {"forms/ticket.yaml": form, "flows/ticket_flow.yaml": flow})
    return [d for d in found if d.severity == "warning"]


def test_a_field_required_at_a_step_that_cannot_fill_it_is_warned(tmp_path: Path) -> None:
    # Every completion of the step was refused with "amount: This field is required": it loaded
    # clean, and the first record reaching the step was stuck there.
    (warning,) = required_at_handle(tmp_path, "[urgency]")
    assert warning.code == "required-not-editable" and warning.span is not None
    assert (warning.span.line, warning.span.col) == (12, 13)  # at the fields it lacks
    assert warning.message.startswith("field 'amount' is required while the record's status is 'handling'")
    assert warning.hint == "add it to the step's fields: [urgency, amount]"


def test_a_field_required_at_a_step_that_fills_it_is_not_warned(tmp_path: Path) -> None:
    assert required_at_handle(tmp_path, "[urgency, amount]") == []
