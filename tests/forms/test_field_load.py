"""Bad field options are refused when the bundle loads, each at its file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.bundle import validate_bundle
from tests.engine.bundle_kit import Problem, diagnostics, problems, write_bundle
from web.system import build_registry


def bad_form(tmp_path: Path, fields: str, *, public: bool = False) -> list[Problem]:
    """The problems of MINI plus forms/bad.yaml with `fields` (indented four spaces); `public`:
    the form is the public one."""
    return problems(tmp_path, {"forms/bad.yaml": "form: bad\n" + ("public: true\n" if public else "")
                               + "fields:\n" + fields})


def test_a_reference_to_an_unknown_form_is_an_error_at_its_name(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  customer:\n    type: reference\n    form: custmer\n")
    assert found == [("forms/bad.yaml", 5, 11, "unknown form 'custmer'")]


def test_a_reference_may_name_a_form_that_loads_after_it(tmp_path: Path) -> None:
    files = {"forms/aaa.yaml": "form: aaa\nfields:\n  z: {type: reference, form: zzz}\n",
             "forms/zzz.yaml": "form: zzz\nfields:\n  x: {type: text}\n"}
    assert problems(tmp_path, files) == []


def test_a_reference_showing_an_unknown_field_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  t:\n    type: reference\n    form: ticket\n    show: titel\n")
    assert found == [("forms/bad.yaml", 6, 11, "unknown field 'titel'")]


def test_an_invalid_regular_expression_is_an_error_at_the_pattern(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  code:\n    type: text\n    pattern: '[A-Z'\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 14)]
    assert "not a valid regular expression" in found[0][3]



def test_a_repetition_left_open_in_a_pattern_is_an_error_at_the_pattern(tmp_path: Path) -> None:
    # Python reads [0-9]{10 as a digit then the text "{10": every account number was refused.
    found = bad_form(tmp_path, "  code:\n    type: text\n    pattern: '[0-9]{10'\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 14)]
    assert found[0][3].startswith("pattern has a '{' that starts no repetition (at character 6)")


def test_braces_that_repeat_or_are_escaped_or_in_a_class_are_fine(tmp_path: Path) -> None:
    assert bad_form(tmp_path, "  code:\n    type: text\n    pattern: 'SF\\d{12}|\\{x\\}|[{}]|a{2,}'\n") == []


def test_a_pattern_that_nests_repetitions_is_refused(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  code:\n    type: text\n    pattern: '(\\w+\\s?)*'\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 14)]
    assert "exponential" in found[0][3]


def test_an_id_number_pattern_is_checked_like_a_text_pattern(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  code:\n    type: id_number\n    pattern: '(a+)+'\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 14)]


def test_a_custom_id_number_without_a_pattern_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  code:\n    type: id_number\n    kind: custom\n")
    assert found == [("forms/bad.yaml", 5, 11, "kind: custom needs a `pattern`")]


def test_a_subtable_column_of_an_unknown_type_is_an_error_at_its_type(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    columns:\n      number: {type: wybill}\n")
    assert found == [("forms/bad.yaml", 6, 22, "unknown field type 'wybill'")]


def test_a_subtable_column_with_an_unknown_key_is_an_error_at_the_key(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    columns:\n      x: {type: text, lable: X}\n")
    assert found == [("forms/bad.yaml", 6, 23, "unknown key 'lable'")]


def test_a_subtable_inside_a_subtable_is_refused(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    columns:\n      inner:\n        type: subtable\n"
                               "        columns:\n          x: {type: text}\n")
    assert found == [("forms/bad.yaml", 7, 15, "a 'subtable' field cannot be a column of a sub-table")]


@pytest.mark.parametrize("column", ["{type: section}", "{type: auto_number, pattern: 'A{seq:3}'}"])
def test_a_column_that_stores_nothing_or_is_set_by_the_system_is_refused(tmp_path: Path, column: str) -> None:
    found = bad_form(tmp_path, f"  rows:\n    type: subtable\n    columns:\n      x: {column}\n")
    assert [(line, message.endswith("cannot be a column of a sub-table")) for _, line, _, message in found] == [(6, True)]


def test_an_expression_in_a_subtable_column_is_refused_at_its_key(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    columns:\n      x: {type: text, visible_if: 'true'}\n")
    assert found == [("forms/bad.yaml", 6, 23, "'visible_if' is not available in a sub-table column")]


def test_more_minimum_rows_than_maximum_rows_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    min_rows: 5\n    max_rows: 2\n"
                               "    columns:\n      x: {type: text}\n")
    assert found == [("forms/bad.yaml", 5, 15, "min_rows (5) is more than max_rows (2)")]


def test_more_than_two_hundred_rows_cannot_be_allowed(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    max_rows: 500\n    columns:\n      x: {type: text}\n")
    assert [(line, col) for _, line, col, _ in found] == [(5, 15)]


def test_an_auto_number_with_a_bad_pattern_is_an_error_at_the_pattern(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  no:\n    type: auto_number\n    pattern: CP{seq}\n")
    assert found == [("forms/bad.yaml", 5, 14, "{seq:N} needs a width N from 1 to 20")]


def test_a_duration_limit_in_working_time_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  d:\n    type: duration\n    max: 2 workdays\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 10)]


def test_a_user_field_naming_an_unknown_role_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  d:\n    type: user\n    role: agnet\n")
    assert found == [("forms/bad.yaml", 5, 11, "unknown role 'agnet'")]


def test_a_role_field_offering_an_unknown_role_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  r:\n    type: role\n    only: [agent, pilot]\n")
    assert found == [("forms/bad.yaml", 5, 19, "unknown role 'pilot'")]


def test_a_department_field_offering_an_unknown_department_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  d:\n    type: department\n    only: [sales]\n")
    assert found == [("forms/bad.yaml", 5, 12, "unknown department 'sales'")]


def test_a_computed_field_needs_an_expression(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  d:\n    type: computed\n    result: number\n")
    assert found == [("forms/bad.yaml", 3, 3, "missing required key 'expression'")]


def test_a_computed_field_with_two_expressions_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  a: {type: number}\n  d:\n    type: computed\n    expression: a * 2\n    computed: a * 3\n")
    assert found == [("forms/bad.yaml", 6, 17, "write the expression once: `expression` or `computed`")]


def test_a_computed_expression_is_checked_against_the_forms_fields(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  d:\n    type: computed\n    expression: b * 2\n")
    assert found == [("forms/bad.yaml", 5, 17, "unknown name 'b'")]


def test_a_default_that_the_field_would_refuse_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  r:\n    type: rating\n    default: 7\n")
    assert found == [("forms/bad.yaml", 5, 14, "the default 7 is not valid for this field: Choose a rating from 1 to 5.")]


def test_a_default_that_is_not_an_option_names_the_close_option(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  u:\n    type: select\n    options: urgency\n    default: hihg\n")
    assert found == [("forms/bad.yaml", 6, 14, "the default 'hihg' is not an option of this field")]
    (diag,) = [d for d in diagnostics(tmp_path) if d.code == "invalid-default"]
    assert diag.hint == "did you mean 'high'?"


def test_a_default_of_a_field_whose_list_is_unknown_is_not_reported_again(tmp_path: Path) -> None:
    """The unknown list is the one mistake; every default would otherwise be refused too."""
    found = bad_form(tmp_path, "  u:\n    type: select\n    options: urgncy\n    default: high\n")
    assert found == [("forms/bad.yaml", 5, 14, "unknown list 'urgncy'")]


def test_a_time_limit_must_be_written_as_hours_and_minutes(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  t:\n    type: time\n    min: '8 am'\n")
    assert [(f, line, col) for f, line, col, _ in found] == [("forms/bad.yaml", 5, 10)]


def test_a_reference_in_a_subtable_column_is_checked_like_a_field(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  rows:\n    type: subtable\n    columns:\n      t: {type: reference, form: tiket}\n")
    assert found == [("forms/bad.yaml", 6, 34, "unknown form 'tiket'")]


def test_a_computed_field_may_use_the_common_computed_key(tmp_path: Path) -> None:
    assert bad_form(tmp_path, "  a: {type: number}\n  d: {type: computed, computed: a * 2}\n") == []


def test_a_computed_field_reading_one_computed_below_it_is_an_error(tmp_path: Path) -> None:
    """Computed values are worked out top to bottom: 'a' silently got b's value from before the save."""
    found = bad_form(tmp_path, "  a: {type: number, computed: (b or 0) + 1}\n"
                               "  b: {type: number, computed: len(x)}\n  x: {type: text}\n")
    assert found == [("forms/bad.yaml", 3, 31,
                      "the computed field 'a' reads 'b', which is computed after it: it would get the "
                      "value from before the save")]


def test_a_computed_field_reading_one_computed_above_it_is_valid(tmp_path: Path) -> None:
    assert bad_form(tmp_path, "  x: {type: text}\n  b: {type: number, computed: len(x)}\n"
                              "  a: {type: number, computed: b + 1}\n") == []


def test_computed_fields_computed_from_each_other_are_one_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  a: {type: number, computed: (b or 0) + 1}\n"
                               "  b: {type: number, computed: (a or 0) + 1}\n")
    assert found == [("forms/bad.yaml", 3, 31, "the computed fields 'a' and 'b' are computed from each "
                                                "other, so neither can be worked out")]


def test_a_computed_field_reading_itself_is_an_error(tmp_path: Path) -> None:
    found = bad_form(tmp_path, "  n:\n    type: computed\n    expression: (n or 0) + 1\n")
    assert found == [("forms/bad.yaml", 5, 17, "the computed field 'n' reads its own value")]


def choices(tmp_path: Path, field: str, files: dict[str, str] | None = None) -> list[str]:
    """The values a field of forms/bad.yaml offers, once the bundle has loaded."""
    root = write_bundle(tmp_path, {**(files or {}), "forms/bad.yaml": "form: bad\nfields:\n" + field})
    bundle, diags = validate_bundle(root, build_registry(plugins=False))
    assert bundle is not None, diags
    spec = next(iter(bundle.get("form", "bad").fields.values()))
    return [option.value for _, option, _ in spec.choices.walk()]


def test_a_role_field_offers_the_roles_of_bundle_yaml(tmp_path: Path) -> None:
    assert choices(tmp_path, "  r: {type: role}\n") == ["agent"]


def test_a_department_field_offers_only_the_departments_it_lists(tmp_path: Path) -> None:
    files = {"bundle.yaml": "bundle: b\nversion: '1'\nroles: {agent: {}}\ndepartments:\n"
                            "  service: {}\n  hotline: {parent: service}\n  finance: {}\n"}
    assert choices(tmp_path, "  d: {type: department, only: [service]}\n", files) == ["service", "hotline"]


def test_field_types_say_what_kind_of_value_they_hold() -> None:
    kinds = {t.name: t.value_kind for t in build_registry(plugins=False).field_types}
    assert {n for n, k in kinds.items() if k == "number"} == {"number", "integer", "money", "percent", "rating"}
    assert {"text", "textarea", "phone", "select", "cascade", "role", "user", "auto_number"} <= {
        n for n, k in kinds.items() if k == "text"}
    assert (kinds["date"], kinds["datetime"], kinds["boolean"]) == ("date", "datetime", "boolean")
    assert kinds["time"] == "time" and kinds["multiselect"] is None and kinds["computed"] is None


def test_a_plugin_field_type_that_says_it_holds_numbers_is_checked_like_one(tmp_path: Path) -> None:
    from forms.fields.base import FieldType

    class Points(FieldType):
        name = "points"
        value_kind = "number"

    registry = build_registry(plugins=False)
    registry.field_types.add(Points())
    write_bundle(tmp_path, {"forms/bad.yaml": "form: bad\nfields:\n  s: {type: points}\n"
                                              "  t: {type: text, visible_if: s > '3'}\n"})
    _bundle, diags = validate_bundle(tmp_path, registry)
    assert [(d.span.line, d.span.col, d.code) for d in diags if d.span] == [(4, 35, "expr-type-mismatch")]


def test_a_date_and_time_field_compared_with_text_is_a_load_error_at_the_text(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"forms/visit.yaml": "form: visit\nfields:\n  occurred_at: {type: datetime}\n"
                                                "  note: {type: text, visible_if: occurred_at > '2026-01-31'}\n"})
    _bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    (diag,) = [d for d in diags if d.code == "expr-type-mismatch"]
    assert (diag.span.file.endswith("visit.yaml"), diag.span.line, diag.span.col) == (True, 4, 48)
    assert diag.hint == "compare days: date(occurred_at) > date(\"2026-01-31\"), or the instant with now() - 2d"


@pytest.mark.parametrize(("result", "condition"), [
    ("money", "estimate > '3000'"), ("number", "estimate == 'high'"), ("text", "estimate == 5"),
    ("date", "estimate > '2026-01-31'"), ("boolean", "estimate == 'yes'"),
])
def test_a_computed_field_is_checked_as_the_kind_its_result_says(tmp_path: Path, result: str, condition: str) -> None:
    write_bundle(tmp_path, {"forms/claim.yaml": "form: claim\nfields:\n  amount: {type: money}\n"
                                                f"  estimate: {{type: computed, expression: amount, result: {result}}}\n"
                                                f"  note: {{type: text, visible_if: \"{condition}\"}}\n"})
    _bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    assert [(d.span.line, d.code) for d in diags if d.span and d.severity == "error"] == [(5, "expr-type-mismatch")]


def test_a_computed_field_without_a_result_holds_a_number(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"forms/claim.yaml": "form: claim\nfields:\n  amount: {type: money}\n"
                                                "  estimate: {type: computed, expression: amount * 0.3}\n"
                                                "  note: {type: text, visible_if: estimate > 100}\n"})
    _bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    assert [d for d in diags if d.severity == "error"] == []


def test_a_required_staff_only_field_on_a_public_form_is_an_error_at_required(tmp_path: Path) -> None:
    found = bad_form(tmp_path, public=True, fields="  name: {type: text}\n  grade:\n    type: text\n    staff_only: true\n"
                                  "    required: true\n")
    assert found == [("forms/bad.yaml", 8, 15, "'grade' is required but staff_only on a public form: "
                                               "anonymous submitters cannot fill it in, so every public "
                                               "submission would be refused")]


def test_a_required_staff_only_field_with_a_default_on_a_public_form_is_valid(tmp_path: Path) -> None:
    assert bad_form(tmp_path, public=True, fields="  grade:\n    type: text\n    staff_only: true\n    required: true\n"
                                 "    default: normal\n") == []


def test_a_required_staff_only_field_on_a_staff_form_is_valid(tmp_path: Path) -> None:
    assert bad_form(tmp_path, "  grade: {type: text, staff_only: true, required: true}\n") == []


def test_a_misspelt_autocomplete_token_is_an_error_at_it_with_the_token_meant(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, {"forms/bad.yaml": "form: bad\nfields:\n  company:\n    type: text\n"
                                                     "    autocomplete: organisation\n"})
    (error,) = [d for d in found if d.severity == "error"]
    assert (error.span.line, error.span.col) == (5, 19)  # type: ignore[union-attr]
    assert error.hint is not None and "organization" in error.hint


def test_a_whole_number_field_asks_a_phone_for_the_digit_keypad(tmp_path: Path) -> None:
    """`decimal` showed a keypad with a decimal point for a count that cannot have one."""
    from forms.render import form_view
    from tests.engine.bundle_kit import MINI
    from web.system import boot

    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": MINI["forms/ticket.yaml"].rstrip()
                                              + "\n          boxes: {type: integer}\n"})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}")
    widgets = {w.name: w for section in form_view(system.forms.form("ticket"), "en") for w in section.widgets}
    assert (widgets["boxes"].attrs["inputmode"], widgets["amount"].attrs["inputmode"]) == ("numeric", "decimal")


@pytest.mark.parametrize("name", ["from", "if", "true", "null"])
def test_a_field_named_like_a_word_of_the_expression_language_is_refused(tmp_path: Path, name: str) -> None:
    # `from: {type: text}` (a shipment's origin) loaded, and every condition naming it was a
    # bare "syntax error"; `true` and `null` read as the constants, never the field.
    found = bad_form(tmp_path, f"  {name}:\n    type: text\n")
    assert found == [("forms/bad.yaml", 3, 3, f"'{name}' is a word of the expression language, so no "
                      "condition could name this field; choose another field name")]
