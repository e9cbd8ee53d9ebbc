"""Decision tables: hit policies, cells, load checks (overlaps under unique, gaps under
complete) with positions, and use from rules, expressions and flow conditions."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.bundle import load_bundle, validate_bundle
from engine.storage.db import transaction
from tests.rules.kit import FLOW, FORM, errors, make, submit, write
from web.system import build_registry

LEVEL = """\
    decision_table: ticket_level
    form: ticket
    label: {zh-CN: 分级, en: Level}
    hit_policy: {POLICY}
    inputs:
      urgency: urgency
      amount: amount
    outputs: [level, team]
    rows:
      - {urgency: urgent, amount: "> 5000", level: 3, team: committee}
      - {urgency: [urgent, important], level: 2, team: manager}
      - {amount: "[1000..5000]", level: 2, team: manager}
      - {level: 1, team: agent}
    """


def table(tmp_path: Path, text: str, name: str = "ticket_level") -> Any:
    root = write(tmp_path / "bundle", {f"decisions/{name}.yaml": text})
    return load_bundle(root, build_registry(plugins=False)).get("decision_table", name)


def test_first_hit_takes_the_first_matching_row(tmp_path: Path) -> None:
    level = table(tmp_path, LEVEL.replace("{POLICY}", "first"))
    assert level.decide({"urgency": "urgent", "amount": Decimal("8000")}) == {"level": 3, "team": "committee"}
    assert level.decide({"urgency": "urgent", "amount": Decimal("10")})["level"] == 2
    assert level.decide({"urgency": "normal", "amount": 1000})["level"] == 2  # closed bound
    assert level.decide({"urgency": "normal", "amount": 5000.5})["level"] == 1
    assert level.decide({"urgency": None, "amount": None})["level"] == 1


def test_collect_gives_every_matching_row_in_order(tmp_path: Path) -> None:
    level = table(tmp_path, LEVEL.replace("{POLICY}", "collect"))
    found = level.decide({"urgency": "urgent", "amount": 3000})
    assert [row["team"] for row in found] == ["manager", "manager", "agent"]
    assert level.decide({"urgency": "normal", "amount": None}) == [{"level": 1, "team": "agent"}]


def test_priority_takes_the_highest_listed_output(tmp_path: Path) -> None:
    text = """\
        decision_table: route
        hit_policy: priority
        inputs: {amount: amount, vip: vip}
        outputs:
          team: {values: [director, manager, agent]}
        rows:
          - {amount: "< 100", team: agent}
          - {vip: true, team: manager}
          - {amount: ">= 5000", team: director}
        """
    route = table(tmp_path, text, "route")
    assert route.decide({"amount": 50, "vip": True}) == "manager"
    assert route.decide({"amount": 9000, "vip": True}) == "director"
    assert route.decide({"amount": 50, "vip": False}) == "agent"
    assert route.decide({"amount": 500, "vip": False}) is None


def test_unique_tables_must_not_overlap(tmp_path: Path) -> None:
    found = errors(tmp_path, {"decisions/ticket_level.yaml": LEVEL.replace("{POLICY}", "unique")})
    assert ("decisions/ticket_level.yaml", 11, 5,
            "rows 1 and 2 overlap, but the hit policy is unique: both match urgency 'urgent', "
            "amount > 5000") in found
    assert any(m.startswith("rows 2 and 3 overlap") for *_pos, m in found)


def test_a_unique_table_without_overlaps_loads_and_decides(tmp_path: Path) -> None:
    text = """\
        decision_table: band
        form: ticket
        hit_policy: unique
        complete: true
        inputs: {amount: amount}
        outputs: [band]
        rows:
          - {amount: "< 1000", band: small}
          - {amount: "[1000..5000)", band: medium}
          - {amount: ">= 5000", band: large}
          - {amount: null, band: none}
        """
    band = table(tmp_path, text, "band")
    assert [band.decide({"amount": v}) for v in (999.99, 1000, 4999, 5000, None)] == [
        "small", "medium", "medium", "large", "none"]


def test_complete_tables_report_their_gaps(tmp_path: Path) -> None:
    text = """\
        decision_table: band
        form: ticket
        complete: true
        inputs: {urgency: urgency, amount: amount}
        outputs: [band]
        rows:
          - {urgency: [urgent, important], band: high}
          - {urgency: normal, amount: "< 1000", band: low}
          - {urgency: normal, amount: "> 1000", band: medium}
        """
    found = errors(tmp_path, {"decisions/band.yaml": text})
    assert found == [("decisions/band.yaml", 3, 11,
                      "no row matches urgency 'normal', amount = 1000, but the table says it is complete")]


def test_cells_and_columns_are_checked_with_positions(tmp_path: Path) -> None:
    text = """\
        decision_table: bad
        form: ticket
        inputs: {urgency: urgency, amount: amount}
        outputs: [level]
        rows:
          - {urgency: urgnt, level: 1}
          - {amount: "[5000..1000]", level: 2}
          - {amount: "> lots", level: 2}
          - {amout: 5, level: 3}
          - {urgency: urgent}
        """
    assert errors(tmp_path, {"decisions/bad.yaml": text}) == [
        ("decisions/bad.yaml", 6, 15, "'urgnt' is not an option of the field 'urgency'"),
        ("decisions/bad.yaml", 7, 14, "the range '[5000..1000]' is empty: its start is after its end"),
        ("decisions/bad.yaml", 8, 14, "'>' compares numbers; 'lots' is not a number"),
        ("decisions/bad.yaml", 9, 6, "'amout' is neither an input nor an output"),
        ("decisions/bad.yaml", 10, 5, "row 5 gives no value for the output 'level'"),
    ]


def test_a_threshold_written_with_a_thousands_separator_is_told_the_number_meant(tmp_path: Path) -> None:
    text = LEVEL.replace("{POLICY}", "first").replace('amount: "> 5000"', 'amount: "> 5,000"')
    assert errors(tmp_path, {"decisions/ticket_level.yaml": text}) == [
        ("decisions/ticket_level.yaml", 10, 31,
         "'>' compares numbers; '5,000' is not a number: write 5000 without the thousands separator")]


def test_a_threshold_written_as_people_say_it_is_told_the_number_meant(tmp_path: Path) -> None:
    text = LEVEL.replace("{POLICY}", "first").replace('amount: "> 5000"', 'amount: "> 5千"')
    assert errors(tmp_path, {"decisions/ticket_level.yaml": text}) == [
        ("decisions/ticket_level.yaml", 10, 31,
         "'>' compares numbers; '5千' is not a number: write the number in full, 5000, not 5千: only digits are read")]


def test_literal_cells_must_be_options_of_the_field(tmp_path: Path) -> None:
    text = """\
        decision_table: bad
        form: ticket
        inputs: {urgency: urgency}
        outputs: [level]
        rows:
          - {urgency: urgnt, level: 1}
        """
    assert errors(tmp_path, {"decisions/bad.yaml": text}) == [
        ("decisions/bad.yaml", 6, 15, "'urgnt' is not an option of the field 'urgency'")]


def test_a_cell_holding_an_options_label_is_told_its_value(tmp_path: Path) -> None:
    # The analyst wrote the label they read on the form (紧急); the error named no value.
    files = {"lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: urgent, label: {zh-CN: 紧急, en: Urgent}}
          - {value: normal, label: {zh-CN: 普通, en: Normal}}
        """,
             "forms/ticket.yaml": FORM.replace("options: [urgent, important, normal]", "options: urgency"),
             "decisions/bad.yaml": """\
        decision_table: bad
        form: ticket
        inputs: {urgency: urgency}
        outputs: [level]
        rows:
          - {urgency: 紧急, level: 1}
        """}
    root = write(tmp_path / "bundle", files)
    (found,) = [d for d in validate_bundle(root, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.hint == "'紧急' is the label of an option of 'urgency': write its value, \"urgent\""


def test_a_cell_naming_a_group_of_the_category_tree_is_told_the_values_under_it(tmp_path: Path) -> None:
    # `category: [transport_damage]` loaded, and the row never matched: records hold damage_goods.
    postal = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
    bundle = tmp_path / "postal"
    shutil.copytree(postal, bundle)
    table_file = bundle / "decisions" / "complaint_grade.yaml"
    text = table_file.read_text("utf-8")
    old = "category: [damage_goods, damage_package, loss_whole, loss_partial]"
    assert text.count(old) == 1
    table_file.write_text(text.replace(old, "category: [transport_damage, loss_whole]"), "utf-8")
    (found,) = [d for d in validate_bundle(bundle, build_registry(plugins=False))[1] if d.severity == "error"]
    assert found.message.startswith("'transport_damage' is a group of 'category'")
    assert found.hint == "write the values under it: [damage_package, damage_goods]"


def test_an_output_named_like_a_choice_field_must_give_one_of_its_options(tmp_path: Path) -> None:
    text = """\
        decision_table: bad
        form: ticket
        inputs: {amount: amount}
        outputs: [urgency]
        rows:
          - {amount: "> 5000", urgency: urgnt}
          - {urgency: normal}
        """
    assert errors(tmp_path, {"decisions/bad.yaml": text}) == [
        ("decisions/bad.yaml", 6, 33, "'urgnt' is not an option of the field 'urgency'")]


RULES = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      grade:
        on: [record.created, {record.updated: [urgency, amount]}]
        do:
          - action: decide
            table: ticket_level
      note_it:
        on: record.created
        when: decide("ticket_level", record)["team"] == "committee"
        do:
          - action: set
            fields: {note: for the committee}
    """

ROUTED_FLOW = FLOW.replace("""      begin: {type: start, next: accept}""", """      begin: {type: start, next: route}
      route:
        type: decision
        branches:
          - when: decide("ticket_level", record)["level"] >= 3
            to: done
          - else: accept""")


def test_rules_and_flows_use_a_table(tmp_path: Path) -> None:
    system = make(tmp_path, {"decisions/ticket_level.yaml": LEVEL.replace("{POLICY}", "first"),
                             "rules/ticket_rules.yaml": RULES, "flows/ticket_flow.yaml": ROUTED_FLOW})
    big = submit(system, urgency="urgent", amount="9000")
    small = submit(system, amount="50")
    assert {k: system.forms.get("ticket", big)[k] for k in ("level", "team", "note")} == {
        "level": 3, "team": "committee", "note": "for the committee"}
    assert system.flows.instances("ticket", big)[0]["status"] == "completed"  # routed past the tasks
    assert system.forms.get("ticket", small)["level"] == 1
    with transaction(system.db) as conn:
        system.forms.update_fields(conn, "ticket", small, {"urgency": "important"}, actor="agent")
    assert system.forms.get("ticket", small)["team"] == "manager"


ROWS = st.lists(st.fixed_dictionaries({
    "urgency": st.sampled_from(["-", "urgent", "normal", ["urgent", "important"], "!= normal"]),
    "amount": st.sampled_from(["-", "> 100", "<= 100", "[10..500)", "(10..500]", 100, "!= 100"]),
}), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(rows=ROWS, urgency=st.sampled_from(["urgent", "important", "normal", None, "other"]),
       amount=st.sampled_from([None, 0, 10, 10.5, 100, Decimal("100.01"), 500, 501, "x"]))
def test_compiled_matching_agrees_with_reading_the_rows_one_by_one(tmp_path_factory: Any, rows: list[dict[str, Any]],
                                                                   urgency: Any, amount: Any) -> None:
    import json

    from rules.decisions import parse_cell

    body = "\n".join(f"  - {{urgency: {json.dumps(r['urgency'])}, amount: {json.dumps(r['amount'])}, "
                     f"n: {i}}}" for i, r in enumerate(rows))
    text = ("decision_table: t\nhit_policy: collect\ninputs: {urgency: urgency, amount: amount}\n"
            f"outputs: [n]\nrows:\n{body}\n")
    tmp = tmp_path_factory.mktemp("dt")
    compiled = table(tmp, text, "t")
    expected = [i for i, r in enumerate(rows)
                if parse_cell(r["urgency"]).matches(urgency) and parse_cell(r["amount"]).matches(amount)]
    assert compiled.decide({"urgency": urgency, "amount": amount}) == expected


def test_a_list_value_matches_only_rows_that_accept_anything(tmp_path: Path) -> None:
    first = table(tmp_path / "a", LEVEL.replace("{POLICY}", "first"))
    collect = table(tmp_path / "b", LEVEL.replace("{POLICY}", "collect"))
    assert first.decide({"urgency": ["urgent"], "amount": 3000})["level"] == 2  # the range row
    assert [r["level"] for r in collect.decide({"urgency": ["urgent"], "amount": 3000})] == [2, 1]
