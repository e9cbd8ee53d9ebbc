"""Load-time behaviour: positions, names, functions, arity, literals and duration placeholders."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from engine.durations import Duration
from engine.errors import ExpressionError
from engine.expr import BUILTINS, Function, Members, Scope
from engine.expr import check_expression
from engine.expr.context import Options
from engine.registry import Kind, Registry, RegistryError
from engine.types import Span
from tests.engine.test_expr_support import compile_, diagnose, fresh_functions, run, where


@pytest.fixture
def functions() -> Kind[Any]:
    return fresh_functions()


# ---------------------------------------------------------------- positions


def test_syntax_errors_are_positioned_in_characters(functions: Kind[Any]) -> None:
    (diag,) = diagnose("'工作日' + )", functions)
    assert (diag.span.line, diag.span.col, diag.code) == (1, 9, "expr-syntax")


def test_syntax_error_at_the_end_points_after_the_last_character(functions: Kind[Any]) -> None:
    (diag,) = diagnose("amount >", functions)
    assert (diag.span.line, diag.span.col) == (1, 9)


def test_problems_on_a_later_line_keep_their_line(functions: Kind[Any]) -> None:
    assert where(diagnose("amount > 1 and\n  amout < 5", functions)) == [(2, 3, "expr-unknown-name")]


def test_every_problem_is_reported_in_order(functions: Kind[Any]) -> None:
    assert where(diagnose("foo(amout) + x.__dict__", functions)) == [
        (1, 1, "expr-unknown-function"), (1, 5, "expr-unknown-name"), (1, 16, "expr-forbidden")]


def test_compile_error_span_is_moved_into_the_file(functions: Kind[Any]) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_("amount + amout", functions, span=Span("forms/claim.yaml", 10, 5))
    assert info.value.span == Span("forms/claim.yaml", 10, 14)
    assert info.value.message == "unknown name 'amout' (did you mean 'amount'?)"


def test_check_spans_are_relative_to_the_text_but_name_the_file(functions: Kind[Any]) -> None:
    (diag,) = diagnose("amout", functions)
    assert diag.span == Span("<expr>", 1, 1)
    from engine.expr import check_expression
    (diag,) = check_expression("1 + amout", scope=Scope(frozenset({"amount"})),
                               functions=functions, span=Span("flows/a.yaml", 7, 3))
    assert diag.span == Span("flows/a.yaml", 1, 5)


def test_crlf_line_breaks_count_as_one(functions: Kind[Any]) -> None:
    assert where(diagnose("amount >\r\n  amout", functions)) == [(2, 3, "expr-unknown-name")]


def test_invalid_escape_sequences_are_syntax_errors(functions: Kind[Any]) -> None:
    (diag,) = diagnose("s == '\\d'", functions)
    assert diag.code == "expr-syntax" and "escape" in diag.message


@pytest.mark.parametrize("source", ["", "   ", "x = 1", "import os", "a; b", "x\x00"])
def test_non_expressions_are_syntax_errors(functions: Kind[Any], source: str) -> None:
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-syntax"


def test_a_single_equals_sign_is_hinted_as_a_comparison(functions: Kind[Any]) -> None:
    """`status = "open"` is the commonest slip; "invalid syntax" alone did not say what to write."""
    (diag,) = diagnose('status = "open"', functions)
    assert diag.code == "expr-syntax" and diag.hint is not None and diag.hint.startswith("to compare, write ==")


def test_and_or_written_as_symbols_are_hinted_as_words(functions: Kind[Any]) -> None:
    (diag,) = diagnose("amount > 1 && urgent", functions)
    assert diag.hint is not None and diag.hint.startswith("write `and` and `or`")



@pytest.mark.parametrize("source, hint", [
    ("amount > 1 AND urgent", "write and, or, not in lower case"),
    ("amount <> 1", "write != for 'not equal'"),
    ("amount => 1", "write >= and <="),
    ("category like 'fee%'", "there is no LIKE: write 'fee' in category"),
])
def test_spreadsheet_and_sql_habits_are_hinted_with_what_to_write(functions: Kind[Any], source: str, hint: str) -> None:
    # "expressions use Python syntax" alone left an analyst used to Excel or SQL guessing.
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-syntax" and diag.hint is not None and diag.hint.startswith(hint)


@pytest.mark.parametrize("source, hint", [
    ("amount > 2万", "write the number in full, 20000, not 2万"),
    ("amount > 1.5万", "write the number in full, 15000, not 1.5万"),
    ("amount > 20000元", "write the amount as a bare number, 20000, not 20000元"),
    ("amount > ￥20000", "write the amount as a bare number, 20000, not ￥20000"),
])
def test_an_amount_written_as_people_say_it_is_told_the_bare_number(functions: Kind[Any], source: str, hint: str) -> None:
    # "syntax error: invalid syntax" and "expressions use Python syntax" for 2万 or 20000元.
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-syntax" and diag.hint is not None and diag.hint.startswith(hint)


@pytest.mark.parametrize("source, hint", [("IF(amount > 1, 1, 2)", "write a choice as: value_if_true if condition"),
                                          ("ISNULL(amount)", "write is_empty(x)")])
def test_spreadsheet_functions_are_told_what_docket_writes(functions: Kind[Any], source: str, hint: str) -> None:
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-unknown-function" and diag.hint is not None and diag.hint.startswith(hint)


def test_a_contains_method_is_told_to_write_in(functions: Kind[Any]) -> None:
    (diag,) = diagnose("note.contains('x')", functions)
    assert diag.hint == "to look for text inside a field, write 'text' in field"


@pytest.mark.parametrize("source, ascii", [('urgent == “yes”', '"'), ("amount ＞ 1", ">"),
                                           ('urgent in （"a", "b"）', "(")])
def test_chinese_punctuation_is_hinted_as_the_ascii_meant(functions: Kind[Any], source: str, ascii: str) -> None:
    # A Chinese input method types “ ” （ ） ＞: the hint said only "expressions use Python syntax".
    (diag,) = diagnose(source, functions)
    assert diag.hint is not None and diag.hint.startswith("'") and f"write {ascii} instead" in diag.hint


def test_a_number_with_a_thousands_separator_is_an_error_at_the_number(functions: Kind[Any]) -> None:
    """`amount > 5,000` loaded as the tuple (amount > 5, 0): always true, so every record took the
    branch. It is an error at the number, with the number meant."""
    (diag,) = diagnose("amount > 5,000", functions)
    assert (diag.span.line, diag.span.col, diag.code) == (1, 10, "expr-syntax")
    assert "'5,000' is read as 2 numbers" in diag.message
    assert diag.hint is not None and diag.hint.startswith("write 5000 without the thousands separator")


def test_a_thousands_separator_inside_a_call_is_an_error_too(functions: Kind[Any]) -> None:
    assert where(diagnose("max(amount, 1,250,000)", functions)) == [(1, 13, "expr-syntax")]


@pytest.mark.parametrize("source", ["amount in (1, 200)", "amount in (1,20)", "x == '5,000'", "amount > 5000"])
def test_commas_between_values_and_inside_text_are_not_thousands_separators(functions: Kind[Any], source: str) -> None:
    assert not [d for d in diagnose(source, functions) if "thousands" in (d.hint or "")]


@pytest.mark.parametrize("source, col", [("due > 2026/12/01", 7), ("due > 2026-12-1", 7), ("x == 1 or due < 2026/1/5", 17)])
def test_a_bare_date_is_an_error_with_the_date_function_meant(functions: Kind[Any], source: str, col: int) -> None:
    # `2026/12/1` loaded as a division (a number compared with a date when it ran), and
    # `2026-12-01` was refused with Python's words about octal literals.
    (diag,) = diagnose(source, functions)
    assert (diag.span.col, diag.code) == (col, "expr-syntax") and "is read as arithmetic, not a date" in diag.message
    assert diag.hint is not None and diag.hint.startswith('write a date as date("20')


def test_a_date_in_quotes_is_not_a_bare_date(functions: Kind[Any]) -> None:
    assert diagnose('date(due) > date("2026-12-01")', functions) == []


def test_a_non_breaking_space_pasted_into_an_expression_is_named(functions: Kind[Any]) -> None:
    # Python's "invalid non-printable character U+00A0" came with "expressions use Python syntax".
    (diag,) = diagnose("amount\u00a0> 1", functions)
    assert diag.hint == ("this is a non-breaking space (U+00A0), pasted from a document or a chat: "
                         "type an ordinary space, or delete it")


# ---------------------------------------------------------------- names and functions


def test_unknown_name_gets_a_did_you_mean_hint(functions: Kind[Any]) -> None:
    (diag,) = diagnose("categroy == 'refund'", functions)
    assert (diag.code, diag.hint) == ("expr-unknown-name", "did you mean 'category'?")


def test_unknown_name_without_a_close_match_lists_known_names(functions: Kind[Any]) -> None:
    (diag,) = diagnose("zzz", functions, scope=Scope(frozenset({"amount", "user"})))
    assert diag.hint == "known names: amount, user"


def test_unknown_function_gets_a_did_you_mean_hint(functions: Kind[Any]) -> None:
    (diag,) = diagnose("lenght(tags)", functions)
    assert (diag.code, diag.message, diag.hint) == (
        "expr-unknown-function", "unknown function 'lenght'", "did you mean 'len'?")


def test_calling_a_field_says_it_is_a_field(functions: Kind[Any]) -> None:
    (diag,) = diagnose("amount()", functions)
    assert diag.message == "'amount' is a field, not a function"


def test_a_bare_function_name_says_to_call_it(functions: Kind[Any]) -> None:
    (diag,) = diagnose("now > due", functions)
    assert diag.message == "'now' is a function: call it as now(...)"


@pytest.mark.parametrize(("source", "message"), [
    ("round(1, 2, 3)", "function 'round' takes 1 to 2 arguments, got 3"),
    ("now(1)", "function 'now' takes no arguments, got 1"),
    ("len()", "function 'len' takes 1 argument, got 0"),
    ("coalesce()", "function 'coalesce' takes at least 1 argument, got 0"),
    ("s.lower(1)", "method '.lower()' takes no arguments, got 1"),
])
def test_arity_is_checked_at_load(functions: Kind[Any], source: str, message: str) -> None:
    (diag,) = diagnose(source, functions)
    assert (diag.code, diag.message) == ("expr-arity", message)


def test_names_and_functions_used_are_recorded(functions: Kind[Any]) -> None:
    expr = compile_("len(tags) > 2 and record.amount > max(1, x) and 24h > 0h", functions)
    assert expr.names_used == frozenset({"tags", "record", "x"})
    assert expr.functions_used == frozenset({"len", "max"})


def test_a_plugin_function_registers_and_is_callable(functions: Kind[Any]) -> None:
    functions.add(Function("double", lambda v: v * 2, 1, 1, "Twice the value.", aliases=("twice",)),
                  source="plugin x")
    assert run("double(21) + twice(1)", functions) == 44


def test_builtins_have_descriptions_and_examples_and_cannot_be_registered_twice() -> None:
    registry = Registry()
    from engine.expr import register
    register(registry)
    assert {f.name for f in BUILTINS} <= set(registry.functions.names())
    assert all(f.description and f.examples for f in BUILTINS)
    with pytest.raises(RegistryError):
        register(registry)


# ---------------------------------------------------------------- literals


def test_lowercase_yaml_constants_are_constants(functions: Kind[Any]) -> None:
    assert run("[true, false, null]", functions) == [True, False, None]
    assert run("flag == true and note == null", functions, {"flag": True}) is True
    assert compile_("true or null", functions).names_used == frozenset()


@pytest.mark.parametrize(("source", "value"), [
    ("24h", timedelta(hours=24)),
    ("30m", timedelta(minutes=30)),
    ("1.5 hours", timedelta(hours=1.5)),
    ("2 workdays", Duration(2.0, "workdays")),
    ("2 工作日", Duration(2.0, "workdays")),
])
def test_duration_literals_evaluate_to_their_values(functions: Kind[Any], source: str, value: Any) -> None:
    assert run(source, functions) == value


def test_duration_literals_keep_the_columns_of_what_follows(functions: Kind[Any]) -> None:
    assert where(diagnose("24h + amout", functions)) == [(1, 7, "expr-unknown-name")]
    assert where(diagnose("2 workdays + amout", functions)) == [(1, 14, "expr-unknown-name")]
    assert where(diagnose("2 工作日 + 金额x", functions)) == [(1, 9, "expr-unknown-name")]


def test_duration_like_text_inside_strings_and_names_is_left_alone(functions: Kind[Any]) -> None:
    assert run("'2h' + s", functions, {"s": " 30m"}) == "2h 30m"
    assert where(diagnose("x2h", functions)) == [(1, 1, "expr-unknown-name")]


# ---------------------------------------------------------------- literals against option values

URGENCY = Scope(frozenset({"urgency", "amount"}), {"urgency": frozenset({"normal", "urgent", "2"})})


def _options_problems(source: str, functions: Kind[Any]) -> list[tuple[int, int, str, str | None]]:
    from engine.expr import check_expression
    return [(d.span.line, d.span.col, d.message, d.hint)
            for d in check_expression(source, scope=URGENCY, functions=functions)]


def test_a_misspelt_option_compared_with_a_choice_field_is_a_load_error(functions: Kind[Any]) -> None:
    assert _options_problems('urgency == "urgnt"', functions) == [
        (1, 12, "'urgnt' is not an option of 'urgency': the comparison could never hold",
         "did you mean 'urgent'?")]


def test_an_option_written_in_another_case_is_told_the_option_meant(functions: Kind[Any]) -> None:
    # 'URGENT' and 'urgent' share no letter for difflib: the hint listed the options instead.
    (found,) = _options_problems('urgency == "URGENT"', functions)
    assert found[3] == "did you mean 'urgent'?"


def test_every_unknown_option_of_an_in_list_is_reported_at_its_position(functions: Kind[Any]) -> None:
    assert [(line, col) for line, col, *_ in _options_problems(
        'urgency in ("normal", "hi", "urgent", "lo")', functions)] == [(1, 23), (1, 39)]


def test_a_number_compared_with_a_text_option_is_told_to_quote_it(functions: Kind[Any]) -> None:
    (found,) = _options_problems("urgency != 2", functions)
    assert found[2:] == ("2 is not an option of 'urgency': the comparison could never hold",
                         'options are text: write "2"')


def test_known_options_null_and_other_fields_are_not_checked(functions: Kind[Any]) -> None:
    source = 'urgency == "urgent" or "normal" == urgency or urgency in (None, "2") or amount == "x"'
    assert _options_problems(source, functions) == []


def test_names_carry_option_values_into_a_scope_and_drop_them_when_combined() -> None:
    from engine.expr import Names
    names = Names({"urgency"}, {"urgency": frozenset({"urgent"})})
    assert names == frozenset({"urgency"}) and dict(names.choices) == {"urgency": frozenset({"urgent"})}
    assert not hasattr(names | {"user"}, "choices")


# ---------------------------------------------------------------- literals against what fields hold

FIELDS = Scope(
    frozenset({"urgency", "level", "tags", "satisfaction", "compensation", "name", "due", "record", "user"}),
    {"urgency": frozenset({"normal", "urgent"}), "level": frozenset({"1", "2", "3"})},
    multi_choices={"tags": frozenset({"late", "lost", "2"})},
    kinds={"urgency": "text", "level": "text", "satisfaction": "number", "compensation": "number",
           "name": "text"})
"""Choice fields (urgency, level), a multi-choice field (tags), number fields (satisfaction,
compensation), a text field (name) and a field whose kind is not known (due)."""
TEMPORAL = Scope(frozenset({"occurred_at", "visit_day", "fees", "pickup", "record"}),
                 kinds={"occurred_at": "datetime", "visit_day": "date", "fees": "boolean", "pickup": "time"})
"""A date-and-time field, a date field, a yes/no field and a time-of-day field."""


def _temporal_problems(source: str, functions: Kind[Any]) -> list[tuple[int, str, str, str | None]]:
    from engine.expr import check_expression
    return [(d.span.col, d.code, d.message, d.hint)
            for d in check_expression(source, scope=TEMPORAL, functions=functions)]


def _field_problems(source: str, functions: Kind[Any]) -> list[tuple[int, int, str, str, str | None]]:
    from engine.expr import check_expression
    return [(d.span.line, d.span.col, d.code, d.message, d.hint)
            for d in check_expression(source, scope=FIELDS, functions=functions)]


def test_record_dot_field_is_checked_against_the_fields_options(functions: Kind[Any]) -> None:
    assert _field_problems('record.urgency == "urgnt"', functions) == [
        (1, 19, "expr-unknown-option", "'urgnt' is not an option of 'urgency': the comparison could never hold",
         "did you mean 'urgent'?")]


def test_record_subscript_field_is_checked_against_the_fields_options(functions: Kind[Any]) -> None:
    assert [(line, col, code) for line, col, code, *_ in _field_problems(
        'record["urgency"] != "urgnt"', functions)] == [(1, 22, "expr-unknown-option")]


def test_a_literal_looked_for_in_a_multi_choice_field_must_be_one_of_its_options(functions: Kind[Any]) -> None:
    assert _field_problems('"lots" in tags or "late" in tags', functions) == [
        (1, 1, "expr-unknown-option", "'lots' is not an option of 'tags': the comparison could never hold",
         "did you mean 'lost'?")]


def test_a_number_looked_for_in_a_multi_choice_field_is_told_to_quote_it(functions: Kind[Any]) -> None:
    (found,) = _field_problems("2 not in record.tags", functions)
    assert found[2] == "expr-unknown-option" and found[4] == 'options are text: write "2"'


FLOW = Scope(frozenset({"flow"}), {"flow.review.outcome": frozenset({"approved", "rejected"})},
             members={"flow": Members("node", frozenset({"review", "route"}))})


def _flow_problems(source: str, functions: Kind[Any]) -> list[tuple[int, int, str, str, str | None]]:
    from engine.expr import check_expression
    return [(d.span.line, d.span.col, d.code, d.message, d.hint)
            for d in check_expression(source, scope=FLOW, functions=functions)]


def test_an_attribute_outside_a_names_members_is_an_unknown_name_at_the_attribute(functions: Kind[Any]) -> None:
    assert _flow_problems('flow.reveiw.outcome == "approved"', functions) == [
        (1, 6, "expr-unknown-name", "unknown node 'reveiw' in flow.reveiw", "did you mean 'review'?")]


def test_an_unknown_member_with_no_close_match_is_told_the_members(functions: Kind[Any]) -> None:
    (found,) = _flow_problems('flow.approvl.outcome == "approved"', functions)
    assert found[4] == "nodes: review, route"


def test_a_dotted_path_with_options_is_checked_like_a_choice_field(functions: Kind[Any]) -> None:
    assert _flow_problems('flow.review.outcome in ("approved", "aproved")', functions) == [
        (1, 37, "expr-unknown-option", "'aproved' is not an option of 'flow.review.outcome': the comparison "
         "could never hold", "did you mean 'approved'?")]


def test_a_member_without_known_options_compares_with_anything(functions: Kind[Any]) -> None:
    assert _flow_problems('flow.route.outcome == "x" and flow.review.by == "li"', functions) == []


def test_text_compared_with_a_number_field_is_told_to_drop_the_quotes(functions: Kind[Any]) -> None:
    assert _field_problems('satisfaction == "5"', functions) == [
        (1, 17, "expr-type-mismatch",
         "the text '5' is never equal to 'satisfaction', which holds a number: the comparison could never hold",
         "write 5 without quotes")]


def test_ordering_a_number_field_with_a_fallback_against_text_would_fail_when_it_runs(functions: Kind[Any]) -> None:
    assert _field_problems('(compensation or 0) > "3000"', functions) == [
        (1, 23, "expr-type-mismatch",
         "the text '3000' cannot be compared with 'compensation', which holds a number: "
         "the expression would fail when it runs", "write 3000 without quotes")]


def test_coalesce_with_a_number_fallback_keeps_the_fields_kind(functions: Kind[Any]) -> None:
    assert [(col, code) for _, col, code, *_ in _field_problems(
        'coalesce(record.compensation, 0) >= "10"', functions)] == [(37, "expr-type-mismatch")]


def test_text_that_is_not_a_number_gets_a_hint_to_compare_with_a_number(functions: Kind[Any]) -> None:
    (found,) = _field_problems('satisfaction in ("high", 5)', functions)
    assert found[:3] == (1, 18, "expr-type-mismatch") and "compare it with a number" in (found[4] or "")


def test_a_number_compared_with_a_text_field_is_told_to_quote_it(functions: Kind[Any]) -> None:
    assert _field_problems("name == -5", functions) == [
        (1, 9, "expr-type-mismatch",
         "the number -5 is never equal to 'name', which holds text: the comparison could never hold",
         "write \"-5\" in quotes: 'name' holds text")]


def test_a_text_field_compared_with_empty_text_is_told_an_empty_field_is_null(functions: Kind[Any]) -> None:
    # `required_if: name != ""` made the field required on every record: an empty field is null.
    assert _field_problems('name != ""', functions) == [
        (1, 9, "expr-empty-text", 'an empty field holds null, not "": the comparison holds for every record',
         "write name for 'has a value'")]


def test_a_text_field_equal_to_empty_text_is_told_to_write_not(functions: Kind[Any]) -> None:
    (found,) = _field_problems('record.name == ""', functions)
    assert found[2:] == ("expr-empty-text", 'an empty field holds null, not "": the comparison never holds',
                         "write not name for 'is empty'")


def test_a_text_field_with_a_fallback_may_be_compared_with_empty_text(functions: Kind[Any]) -> None:
    assert _field_problems('(name or "") != "" and name != null', functions) == []


LABELLED = Scope(frozenset({"urgency"}), {"urgency": Options({"normal", "urgent"}, {"紧急": ("urgent",), "普通": ("normal",)})})
"""A choice field whose options carry their labels, as a form's do."""


TREE = Scope(frozenset({"category"}), {"category": Options(
    {"billing", "fee_invoice", "fee_overcharge", "transport", "late"},
    groups={"billing": ("fee_invoice", "fee_overcharge"), "transport": ("late",)})})
"""A cascade field: records hold the last level of its tree."""


def test_a_group_of_a_tree_compared_with_its_field_is_told_the_values_under_it(functions: Kind[Any]) -> None:
    # `category == "billing"` loaded and never held: a record's category is "fee_invoice".
    (diag,) = diagnose('category == "billing"', functions, scope=TREE)
    assert diag.code == "expr-unknown-option" and diag.message.startswith("'billing' is a group of 'category'")
    assert diag.hint == 'write category in ("fee_invoice", "fee_overcharge")'


def test_a_group_with_one_value_under_it_is_told_a_one_item_tuple(functions: Kind[Any]) -> None:
    (diag,) = diagnose('category in ("transport", "fee_invoice")', functions, scope=TREE)
    assert (diag.span.col, diag.hint) == (14, 'write category in ("late",)')


def test_an_options_label_compared_with_its_field_is_told_the_value(functions: Kind[Any]) -> None:
    # Analysts read the labels on the form: "options: normal, urgent" left them to match them up.
    (diag,) = diagnose('urgency == "紧急"', functions, scope=LABELLED)
    assert diag.code == "expr-unknown-option"
    assert diag.hint == "'紧急' is the label of an option of 'urgency': write its value, \"urgent\""


def test_an_unquoted_label_is_told_the_value(functions: Kind[Any]) -> None:
    (diag,) = diagnose("urgency == 普通", functions, scope=LABELLED)
    assert (diag.code, diag.hint) == ("expr-unknown-name", "'普通' is the label of an option of 'urgency': write its value, \"normal\"")


def test_an_unquoted_option_value_is_told_to_go_in_quotes_not_a_field_like_it(functions: Kind[Any]) -> None:
    # "did you mean 'urgency'?" for `urgency == urgent` led to `urgency == urgency`: always true.
    (diag,) = diagnose("urgency == urgent", functions, scope=LABELLED)
    assert (diag.code, diag.hint) == ("expr-unknown-name", "'urgent' is an option of 'urgency': text goes in quotes, \"urgent\"")


@pytest.mark.parametrize("source", ['urgency in ("urgent")', 'urgency not in "urgent"'])
def test_a_choice_field_in_one_text_in_brackets_is_told_it_is_no_list(functions: Kind[Any], source: str) -> None:
    # ("urgent") is the text "urgent": `in` tested for a part of it, and an empty urgency failed.
    (diag,) = diagnose(source, functions, scope=LABELLED)
    assert diag.code == "expr-in-text"
    assert diag.hint == 'write urgency == "urgent", or a list of one: urgency in ("urgent",)'


def test_text_in_a_text_field_is_still_a_part_of_it(functions: Kind[Any]) -> None:
    assert diagnose('"海关" in title', functions, scope=OPTIONAL) == []


def test_unquoted_chinese_text_is_told_to_go_in_quotes(functions: Kind[Any]) -> None:
    (diag,) = diagnose("urgency == 加急", functions, scope=LABELLED)
    assert diag.hint == 'text goes in quotes: "加急"'


def test_ordering_a_choice_field_against_a_number_would_fail_when_it_runs(functions: Kind[Any]) -> None:
    (found,) = _field_problems("level >= 2", functions)
    assert found[:3] == (1, 10, "expr-type-mismatch") and "cannot be compared with 'level'" in found[3]


def test_a_number_for_a_text_option_is_reported_once_as_not_an_option(functions: Kind[Any]) -> None:
    assert [code for _, _, code, *_ in _field_problems("level == 2", functions)] == ["expr-unknown-option"]


def test_a_datetime_field_ordered_against_text_is_told_to_compare_days(functions: Kind[Any]) -> None:
    assert _temporal_problems('occurred_at > "2026-01-31"', functions) == [
        (15, "expr-type-mismatch",
         "the text '2026-01-31' cannot be compared with 'occurred_at', which holds a date and time: "
         "the expression would fail when it runs",
         'compare days: date(occurred_at) > date("2026-01-31"), or the instant with now() - 2d')]


def test_a_date_field_compared_with_text_is_told_to_write_date(functions: Kind[Any]) -> None:
    assert _temporal_problems('record.visit_day == "2026-02-01"', functions) == [
        (21, "expr-type-mismatch",
         "the text '2026-02-01' is never equal to 'visit_day', which holds a date: the comparison "
         "could never hold", 'write date("2026-02-01")')]


def test_a_date_field_ordered_against_a_number_is_told_to_count_days(functions: Kind[Any]) -> None:
    (found,) = _temporal_problems("visit_day > 3", functions)
    assert found[1] == "expr-type-mismatch" and found[3] == "to count days, write days_between(visit_day, today()) > 3"


def test_a_datetime_field_against_today_is_never_equal_and_cannot_be_ordered(functions: Kind[Any]) -> None:
    assert _temporal_problems("occurred_at < today()", functions) == [
        (15, "expr-type-mismatch",
         "today() gives a date, but 'occurred_at' holds a date and time: they are never equal and "
         "cannot be ordered", "compare days: date(occurred_at) with today(), or the instant with now()")]


def test_a_date_field_against_now_is_reported_at_the_call(functions: Kind[Any]) -> None:
    (found,) = _temporal_problems("now() >= visit_day", functions)
    assert found[:2] == (1, "expr-type-mismatch") and "now() gives a date and time" in found[2]


def test_a_yes_no_field_compared_with_text_is_told_to_write_true(functions: Kind[Any]) -> None:
    assert _temporal_problems('fees == "yes"', functions) == [
        (9, "expr-type-mismatch",
         "the text 'yes' is never equal to 'fees', which holds yes or no: the comparison could never hold",
         "write fees == true, or just fees (not fees for no)")]


def test_a_time_of_day_compared_with_text_is_told_to_write_time(functions: Kind[Any]) -> None:
    assert _temporal_problems('pickup > "08:30"', functions) == [
        (10, "expr-type-mismatch",
         "the text '08:30' cannot be compared with 'pickup', which holds a time of day: the expression "
         "would fail when it runs", 'write time("08:30"), e.g. pickup >= time("08:30")')]


def test_a_time_of_day_compared_with_an_hour_is_told_to_write_that_time(functions: Kind[Any]) -> None:
    (found,) = _temporal_problems("pickup >= 9", functions)
    assert found[1] == "expr-type-mismatch" and found[3] == 'write time("09:00"), e.g. pickup >= time("09:00")'


def test_a_time_of_day_compared_with_time_is_not_reported_and_holds_as_written(functions: Kind[Any]) -> None:
    from datetime import datetime, time, timezone

    from engine.expr import compile_expression
    from engine.expr.context import EvalContext

    source = 'pickup >= time("08:30")'
    assert _temporal_problems(source, functions) == []
    expression = compile_expression(source, scope=TEMPORAL, functions=functions)
    now = EvalContext(now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert [expression.evaluate({"pickup": t}, now) for t in (time(8, 29), time(8, 30))] == [False, True]


def test_a_date_and_time_compared_with_a_time_of_day_is_told_to_take_its_time(functions: Kind[Any]) -> None:
    assert _temporal_problems('occurred_at >= time("18:00")', functions) == [
        (16, "expr-type-mismatch",
         "time() gives a time of day, but 'occurred_at' holds a date and time: they are never equal and "
         "cannot be ordered", "compare the time of day: time(occurred_at) with time(...)")]


def test_a_time_of_day_compared_with_today_is_reported(functions: Kind[Any]) -> None:
    (found,) = _temporal_problems("pickup < today()", functions)
    assert found[1] == "expr-type-mismatch" and 'pickup >= time("08:30")' in found[3]


@pytest.mark.parametrize(("source", "column", "hint"), [
    ('date("2026-13-01")', 6, "is not a date (write it like 2026-01-31)"),
    ('time("25:00")', 6, 'is not a time of day (write it like "08:30")'),
    ('duration("2 dayz") > 1d', 10, "is not a duration"),
])
def test_text_a_date_time_or_duration_function_cannot_read_is_a_load_error(
        functions: Kind[Any], source: str, column: int, hint: str) -> None:
    (found,) = _temporal_problems(source, functions)
    assert found[:2] == (column, "expr-bad-literal") and hint in found[3]


def test_the_hour_and_minute_of_a_time_of_day_can_be_compared(functions: Kind[Any]) -> None:
    from datetime import datetime, time, timezone

    from engine.expr import compile_expression
    from engine.expr.context import EvalContext

    source = "pickup.hour * 60 + pickup.minute >= 510"
    assert _temporal_problems(source, functions) == []
    expression = compile_expression(source, scope=TEMPORAL, functions=functions)
    now = EvalContext(now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert [expression.evaluate({"pickup": t}, now) for t in (time(8, 29), time(8, 30))] == [False, True]


@pytest.mark.parametrize("source", [
    "occurred_at > now() - 2d", "occurred_at <= now()", "date(occurred_at) == today()",
    'visit_day >= date("2026-01-31")', "visit_day < today()", "days_between(occurred_at, now()) > 3",
    "fees == true", "fees == 1", "not fees", "occurred_at == null", "visit_day == occurred_at",
])
def test_dates_compared_as_dates_and_yes_no_with_true_are_not_reported(functions: Kind[Any], source: str) -> None:
    assert _temporal_problems(source, functions) == []


def test_what_the_date_checks_report_fails_or_never_holds_when_it_runs(functions: Kind[Any]) -> None:
    from datetime import date, datetime, timezone

    from engine.expr import compile_expression
    from engine.expr.context import EvalContext

    names = {"occurred_at": datetime(2026, 2, 1, 9, tzinfo=timezone.utc), "visit_day": date(2026, 2, 1),
             "fees": True, "record": {}}
    ctx = EvalContext(now=datetime(2026, 2, 3, 9, tzinfo=timezone.utc))
    relaxed = Scope(TEMPORAL.names)  # the same names without the kinds: compiles, then runs
    for source in ('occurred_at > "2026-01-31"', "occurred_at < today()", "visit_day > 3"):
        with pytest.raises(ExpressionError):
            compile_expression(source, scope=relaxed, functions=functions).evaluate(names, ctx)
    for source in ('record.visit_day == "2026-02-01"', 'fees == "yes"', "date(occurred_at) == occurred_at"):
        assert compile_expression(source, scope=relaxed, functions=functions).evaluate(
            {**names, "record": {"visit_day": names["visit_day"]}}, ctx) is False


@pytest.mark.parametrize("source", [
    "satisfaction == null", "satisfaction == None", "name == null",        # null
    "satisfaction == compensation", "name == user", "name == due",          # names
    "satisfaction == len(name)", 'str(satisfaction) == "5"',                # calls
    'due == "2024-01-01"', "due == 5",                                      # a field of unknown kind
    "(compensation or name) > '3'",                                         # fallback of another kind
    'satisfaction >= 3 and compensation > -1.5 and name != "x"',            # the right kinds
    "satisfaction == True", '"late" in name', 'tags == "lots"',             # not what is checked
])
def test_nulls_names_calls_and_fields_of_unknown_kind_are_not_checked(functions: Kind[Any], source: str) -> None:
    assert _field_problems(source, functions) == []


# ---------------------------------------------------------------- fields that may be empty

OPTIONAL = Scope(frozenset({"amount", "urgency", "title"}), kinds={"amount": "number", "title": "text"},
                 optional=frozenset({"amount", "title"}))
"""A form's names where `amount` and `title` may be empty (flows and rules see such a scope)."""


def warnings_of(source: str, functions: Kind[Any]) -> list[tuple[int, str, str | None]]:
    found = check_expression(source, scope=OPTIONAL, functions=functions, warnings=True)
    assert all(d.severity == "warning" for d in found), found
    return [(d.span.col, d.code, d.hint) for d in found if d.span is not None]


def test_ordering_a_field_that_may_be_empty_warns_with_the_fallback_to_write(functions: Kind[Any]) -> None:
    # `compensation > 5000` loaded clean and stopped every record without a compensation with
    # an incident ("cannot compare nothing (an empty value) with a number").
    assert warnings_of("amount > 5000", functions) == [
        (1, "expr-may-be-empty", "give it a fallback, (amount or 0), or test it first: amount and ...")]


def test_arithmetic_on_a_field_that_may_be_empty_warns(functions: Kind[Any]) -> None:
    assert [code for _, code, _ in warnings_of("amount * 2 == 10", functions)] == ["expr-may-be-empty"]


@pytest.mark.parametrize("source", [
    "(amount or 0) > 5000", "coalesce(amount, 0) > 5000", "amount and amount > 5000",
    "amount != None and amount > 5000", "not amount or amount > 5000", "amount > 5000 if amount else false",
    "not is_empty(amount) and amount > 5000", "amount == 5000", "urgency == 'high'",
])
def test_a_field_with_a_fallback_or_tested_first_does_not_warn(functions: Kind[Any], source: str) -> None:
    assert warnings_of(source, functions) == []


def test_the_warning_is_not_a_problem_of_the_expression(functions: Kind[Any]) -> None:
    # It loads: only callers that ask for warnings see it.
    assert check_expression("amount > 5000", scope=OPTIONAL, functions=functions) == []
