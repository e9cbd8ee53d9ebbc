"""A schema error does not hide the other problems of its file.

After an unknown key, a badly formed name or a repeated list entry, a definition is still built
(from the data as its schema describes it), so one run of `docket validate` reports every
problem of the file with its position. A build never crashes on what the schema let through.
"""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent

import pytest

from engine.errors import Diagnostic
from tests.engine.bundle_kit import MINI, diagnostics, problems

FLOW = "flows/ticket_flow.yaml"
FORM = "forms/ticket.yaml"
MINI_FLOW = dedent(MINI[FLOW])
MINI_FORM = dedent(MINI[FORM])


def errors(diags: list[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diags if d.severity == "error"]


def no_crash(diags: list[Diagnostic]) -> bool:
    """No build or check raised: every problem is a diagnostic of its own."""
    return not [d for d in diags if d.code == "build-crashed"]


# ---------------------------------------------------------------- one file, every problem

def test_an_unknown_key_in_a_node_hides_neither_a_misspelt_field_nor_a_misspelt_name(tmp_path: Path) -> None:
    flow = (MINI_FLOW.replace("    type: task\n", "    type: task\n    statu: x\n")
            .replace("fields: [urgency]", "fields: [urgncy]")
            .replace('when: urgency == "high"', 'when: urgncy == "high"'))
    assert problems(tmp_path, {FLOW: flow}) == [
        (FLOW, 10, 5, "unknown key 'statu'"),
        (FLOW, 12, 14, "unknown field 'urgncy'"),
        (FLOW, 17, 15, "unknown name 'urgncy'"),
    ]


def test_an_unknown_key_in_a_field_hides_no_expression_problem_of_the_form(tmp_path: Path) -> None:
    form = (MINI_FORM.replace("    required: true\n", "    requird: true\n")
            .replace('required_if: urgency == "high"', 'required_if: urgency == "hihg"'))
    found = problems(tmp_path, {FORM: form})
    assert found == [(FORM, 7, 5, "unknown key 'requird'"),
                     (FORM, 13, 29, "'hihg' is not an option of 'urgency': the comparison could never hold")]


def test_a_misspelt_next_is_read_as_next_so_its_target_is_still_checked(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("next: route", "nxt: rout")
    assert problems(tmp_path, {FLOW: flow}) == [
        (FLOW, 12, 5, "unknown key 'nxt'"),
        (FLOW, 12, 10, "unknown node 'rout'"),
    ]


def test_a_misspelt_next_does_not_cut_the_graph_into_unreachable_nodes(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("next: route", "nxt: route")
    assert problems(tmp_path, {FLOW: flow}) == [(FLOW, 12, 5, "unknown key 'nxt'")]


def test_an_extra_key_beside_the_key_it_resembles_is_left_out(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("    next: route\n", "    next: route\n    nex: nowhere\n")
    assert problems(tmp_path, {FLOW: flow}) == [(FLOW, 13, 5, "unknown key 'nex'")]


def test_a_misspelt_key_with_a_value_of_the_wrong_type_skips_the_build(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("next: route", "nxt: [route]").replace("fields: [urgency]", "fields: [urgncy]")
    diags = diagnostics(tmp_path, {FLOW: flow})
    assert [d.message for d in errors(diags)] == ["unknown key 'nxt'"] and no_crash(diags)


def test_a_wrong_type_still_skips_the_build(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("fields: [urgency]", "fields: urgency").replace(
        'when: urgency == "high"', 'when: urgncy == "high"')
    diags = diagnostics(tmp_path, {FLOW: flow})
    assert [d.message for d in errors(diags)] == ["expected a list, got the text 'urgency'"]
    assert no_crash(diags)



def test_a_single_name_where_a_list_is_expected_is_told_the_brackets(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {FLOW: MINI_FLOW.replace("fields: [urgency]", "fields: urgency")})
    assert [d.hint for d in errors(diags)] == ["write it in brackets, as a list: [urgency]"]


def test_a_badly_formed_node_name_hides_no_other_problem(tmp_path: Path) -> None:
    flow = MINI_FLOW.replace("  done:", "  Done:").replace("to: done", "to: Done").replace(
        "else: done", "else: Done").replace('when: urgency == "high"', 'when: urgncy == "high"')
    found = problems(tmp_path, {FLOW: flow})
    assert [(line, col) for _, line, col, _ in found] == [(16, 15), (19, 3)]
    assert "unknown name 'urgncy'" in found[0][3] and "'Done' is not a valid name here" in found[1][3]


def test_a_field_without_its_type_is_reported_with_the_key_meant_and_never_built_on(tmp_path: Path) -> None:
    form = MINI_FORM.replace("    type: text\n", "    typ: text\n")
    diags = diagnostics(tmp_path, {FORM: form})
    assert [(d.span.line, d.span.col, d.message, d.hint) for d in errors(diags) if d.span] == [
        (5, 3, "missing required key 'type'", "'typ' is written: did you mean 'type'?")]
    assert no_crash(diags)


def test_a_definition_whose_own_name_is_malformed_is_not_built(tmp_path: Path) -> None:
    form = MINI_FORM.replace("form: ticket", "form: Ticket")
    found = problems(tmp_path, {FORM: form})
    assert found == [(FORM, 1, 7, "the text 'Ticket' is not a valid name")]


def test_an_unknown_key_in_bundle_yaml_still_gives_the_roles_flows_are_checked_against(tmp_path: Path) -> None:
    label = "label: {zh-CN: 小工单, en: Mini tickets}\n"
    bundle = dedent(MINI["bundle.yaml"]).replace(label, label + "colour: blue\n")
    flow = MINI_FLOW.replace("{role: agent}", "{role: agnet}")
    assert problems(tmp_path, {"bundle.yaml": bundle, FLOW: flow}) == [
        ("bundle.yaml", 4, 1, "unknown key 'colour'"),
        (FLOW, 10, 20, "unknown role 'agnet'"),
    ]


# ---------------------------------------------------------------- every kind

DATASET = """\
    dataset: tickets
    form: ticket
    fields:
      urgency: {field: urgency}
    measures:
      tickets: {count: true}
    """

KINDS: dict[str, tuple[dict[str, str], list[tuple[str, int, int, str]]]] = {
    "bundle": ({"bundle.yaml": """\
        bundle: mini
        version: "1"
        colour: blue
        roles:
          agent: {label: Agent, reports_to: boss}
        departments:
          service: {label: Service, parent: head_office}
        """}, [("bundle.yaml", 3, 1, "unknown key 'colour'"),
               ("bundle.yaml", 5, 37, "unknown role 'boss'"),
               ("bundle.yaml", 7, 37, "unknown department 'head_office'")]),
    "list": ({"lists/channel.yaml": """\
        list: channel
        colour: blue
        items:
          - {value: phone, colour: red}
          - {value: phone}
        """}, [("lists/channel.yaml", 2, 1, "unknown key 'colour'"),
               ("lists/channel.yaml", 4, 20, "unknown key 'colour'"),
               # read as the `color:` it misspells, and red is not written as a colour
               ("lists/channel.yaml", 4, 28, "'red' is not a colour: write it as \"#rrggbb\""),
               ("lists/channel.yaml", 5, 13, "duplicate option value 'phone' (first at line 4)")]),
    "form": ({FORM: """\
        form: ticket
        colour: blue
        title: titel
        fields:
          title: {type: text, requird: true, visible_if: amount > "5000"}
          urgency: {type: select, options: urgencies}
          amount: {type: money, required_if: urgncy == "high"}
        """}, [(FORM, 2, 1, "unknown key 'colour'"),
               (FORM, 3, 8, "unknown field 'titel'"),
               (FORM, 5, 23, "unknown key 'requird'"),
               (FORM, 5, 59, "the text '5000' cannot be compared with 'amount', which holds a number: "
                             "the expression would fail when it runs"),
               (FORM, 6, 36, "unknown list 'urgencies'"),
               (FORM, 7, 38, "unknown name 'urgncy'")]),
    "flow": ({FLOW: """\
        flow: ticket_flow
        form: ticket
        colour: blue
        start: begin
        nodes:
          begin: {type: start, next: handle, colour: red}
          handle: {type: task, assign: {role: agnet, colour: red}, fields: [urgncy], next: route}
          route:
            type: decision
            branches:
              - {when: urgency == "hihg", to: done, colour: red}
              - else: don
          done: {type: end}
        """}, [(FLOW, 3, 1, "unknown key 'colour'"),
               (FLOW, 6, 38, "unknown key 'colour'"),
               (FLOW, 7, 39, "unknown role 'agnet'"),
               (FLOW, 7, 46, "unknown key 'colour'"),
               (FLOW, 7, 69, "unknown field 'urgncy'"),
               (FLOW, 11, 27, "'hihg' is not an option of 'urgency': the comparison could never hold"),
               (FLOW, 11, 45, "unknown key 'colour'"),
               (FLOW, 12, 15, "unknown node 'don'")]),
    "ruleset": ({"rules/ticket_rules.yaml": """\
        ruleset: ticket_rules
        form: ticket
        colour: blue
        rules:
          high:
            on: {record.updated: [urgncy]}
            whn: urgency == "hihg"
            do:
              - {action: flag, tag: high, colour: red}
        """}, [("rules/ticket_rules.yaml", 3, 1, "unknown key 'colour'"),
               ("rules/ticket_rules.yaml", 6, 27, "unknown field 'urgncy'"),
               ("rules/ticket_rules.yaml", 7, 5, "unknown key 'whn'"),
               ("rules/ticket_rules.yaml", 7, 21, "'hihg' is not an option of 'urgency': "
                                                  "the comparison could never hold"),
               ("rules/ticket_rules.yaml", 9, 35, "unknown key 'colour'")]),
    "sla": ({"sla/ticket_sla.yaml": """\
        sla: ticket_sla
        form: ticket
        colour: blue
        targets:
          resolution: {stops: {task.completed: handel}, colour: red}
        levels:
          - when: urgency == "hihg"
            resolution: 1 workdays
          - resolution: 2 workdays
        pause: {nodes: [rout]}
        """}, [("sla/ticket_sla.yaml", 3, 1, "unknown key 'colour'"),
               ("sla/ticket_sla.yaml", 5, 40, "unknown node 'handel'"),
               ("sla/ticket_sla.yaml", 5, 49, "unknown key 'colour'"),
               ("sla/ticket_sla.yaml", 7, 22, "'hihg' is not an option of 'urgency': "
                                              "the comparison could never hold"),
               ("sla/ticket_sla.yaml", 10, 17, "unknown node 'rout'")]),
    "decision_table": ({"decisions/ticket_level.yaml": """\
        decision_table: ticket_level
        form: ticket
        colour: blue
        inputs:
          urgency: urgency
          big: amount > "5000"
        outputs: [level]
        rows:
          - {urgency: hihg, level: 1}
          - {level: 2}
        """}, [("decisions/ticket_level.yaml", 3, 1, "unknown key 'colour'"),
               ("decisions/ticket_level.yaml", 6, 17, "the text '5000' cannot be compared with 'amount', "
                                                      "which holds a number: the expression would fail when it runs"),
               ("decisions/ticket_level.yaml", 9, 15, "'hihg' is not an option of the field 'urgency'")]),
    "dataset": ({"reports/tickets.yaml": """\
        dataset: tickets
        form: ticket
        colour: blue
        fields:
          level: {field: urgency, colour: red}
        measures:
          urgent: {rate: level == "hihg"}
          large: {sum: amount, where: amount > "5000"}
          titles: {count_distinct: titel}
        """}, [("reports/tickets.yaml", 3, 1, "unknown key 'colour'"),
               ("reports/tickets.yaml", 5, 27, "unknown key 'colour'"),
               ("reports/tickets.yaml", 7, 27, "'hihg' is not an option of 'level': the comparison could never hold"),
               ("reports/tickets.yaml", 8, 40, "the text '5000' cannot be compared with 'amount', which holds a "
                                               "number: the expression would fail when it runs"),
               ("reports/tickets.yaml", 9, 28, "unknown field 'titel'")]),
    "dashboard": ({"reports/tickets.yaml": DATASET, "dashboards/overview.yaml": """\
        dashboard: overview
        colour: blue
        roles: [agnet]
        widgets:
          total: {chart: kpi, dataset: tickets, measures: [tickts], colour: red}
          by_urgency: {chart: bar, dataset: tickts, dimensions: [urgency], measures: [tickets]}
        """}, [("dashboards/overview.yaml", 2, 1, "unknown key 'colour'"),
               ("dashboards/overview.yaml", 3, 9, "unknown role 'agnet'"),
               ("dashboards/overview.yaml", 5, 52, "unknown measure 'tickts'"),
               ("dashboards/overview.yaml", 5, 61, "unknown key 'colour'"),
               ("dashboards/overview.yaml", 6, 37, "unknown dataset 'tickts'")]),
    "webhook": ({"webhooks/intake.yaml": """\
        webhook: intake
        form: ticket
        secret_env: DOCKET_INTAKE_SECRET
        colour: blue
        values:
          title: $.title
          urgncy: $.urgency
        """}, [("webhooks/intake.yaml", 4, 1, "unknown key 'colour'"),
               ("webhooks/intake.yaml", 7, 3, "unknown field 'urgncy'")]),
    "template": ({"templates/letter.html": "<p>{{ record.title }}</p>\n", "templates/letter.yaml": """\
        template: letter
        form: ticket
        html: letter.html
        colour: blue
        roles: [agnet]
        """}, [("templates/letter.yaml", 4, 1, "unknown key 'colour'"),
               ("templates/letter.yaml", 5, 9, "unknown role 'agnet'")]),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_reports_unknown_keys_with_the_files_other_problems(tmp_path: Path, kind: str) -> None:
    files, expected = KINDS[kind]
    diags = diagnostics(tmp_path, files)
    assert no_crash(diags)
    assert problems(tmp_path, files) == expected
