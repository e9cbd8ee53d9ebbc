"""The bundle loader: every malformed definition is reported at its file:line:col, all at once."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from engine.bundle import display_path, load_bundle, validate_bundle
from engine.errors import DefinitionError, Diagnostics, format_diagnostic, plural
from engine.kinds import BuildContext
from engine.yamlsource import load_yaml
from tests.engine.bundle_kit import MINI, diagnostics, problems, write_bundle
from web.system import build_registry


def only(found: list[tuple[str, int, int, str]], file: str | None = None) -> tuple[str, int, int, str]:
    """The single problem found (in `file`, when given: other files may suffer from the defect)."""
    if file is not None:
        found = [p for p in found if p[0] == file]
    assert len(found) == 1, found
    return found[0]


def test_the_mini_bundle_is_valid(tmp_path: Path) -> None:
    assert problems(tmp_path) == []


def test_a_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    found = only(problems(tmp_path, {"forms/ticket.yaml": """\
        form: ticket
        fields:
          title: {type: text}
          title: {type: textarea}
        """}), "forms/ticket.yaml")
    assert found[:3] == ("forms/ticket.yaml", 4, 3)
    assert "duplicate key 'title'" in found[3] and "line 3" in found[3]


def test_a_wrong_indent_is_a_positioned_syntax_error(tmp_path: Path) -> None:
    file, line, col, message = only(problems(tmp_path, {"forms/ticket.yaml": """\
        form: ticket
        fields:
          title:
            type: text
           required: true
        """}))
    assert (file, line) == ("forms/ticket.yaml", 5)
    assert col >= 1 and "indent" in message.lower() or "expected" in message.lower()



def syntax_hint(tmp_path: Path, form: str) -> tuple[int, int, str | None]:
    """(line, col, hint) of the one YAML syntax error of forms/ticket.yaml written as `form`."""
    (found,) = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.code == "yaml-syntax"]
    assert found.span is not None
    return found.span.line, found.span.col, found.hint


def test_a_key_out_of_line_is_told_the_columns_of_it_and_the_line_above(tmp_path: Path) -> None:
    # "keys of one mapping must start in the same column" left the analyst to find which.
    line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type: text\n   required: true\n")
    assert line == 5 and hint is not None
    assert "line 5 starts in column 4, line 4 above it in column 5" in hint


def test_a_key_pushed_in_under_a_key_with_a_value_is_told_the_column_to_start_in(tmp_path: Path) -> None:
    # "check the indentation of this line against the line above, or quote a value containing
    # ': '" gave two guesses and no column.
    line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type: text\n      required: true\n")
    assert line == 5
    assert hint == ("line 5 starts in column 7, further in than line 4 above it (column 5), where 'type' "
                    "already has its value: start it in column 5, like the keys beside it")


def test_a_key_left_out_of_the_empty_key_above_it_is_told_both_ways_to_fix_it(tmp_path: Path) -> None:
    # `title:` then `type: text` in its column: the line to move is `type`, not the one after it.
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n  type: text\n    required: true\n")
    assert hint is not None and hint.endswith(
        "; or, if 'type' belongs under 'title:' (line 3), indent line 4 as far as line 5")


def test_a_value_holding_a_colon_is_told_to_be_quoted(tmp_path: Path) -> None:
    line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type: text\n    label: Closed: no reply\n")
    assert line == 5 and hint is not None and hint.startswith("a value holding ': ' must be quoted")


def test_a_chinese_colon_after_a_key_is_named_on_its_line(tmp_path: Path) -> None:
    # YAML reports the line after it, and an indentation hint misled.
    line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title：\n    type: text\n")
    assert line == 4 and hint is not None and hint.startswith("line 3 has a Chinese colon '：'")


def test_a_chinese_colon_after_a_key_inside_braces_is_named_on_its_line(tmp_path: Path) -> None:
    # Option lists are written one `- {value: x, label: y}` per line; the hint blamed a bracket.
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title: {type: text, label： {en: Title}}\n")
    assert hint is not None and hint.startswith("line 3 has a Chinese colon '：'")


def test_a_full_width_space_in_the_indentation_is_named_on_its_line(tmp_path: Path) -> None:
    # A Chinese input method types the ideographic space '\u3000', which looks like two spaces: the
    # hint said to check the indentation, or to quote a value holding ': ', of the line after it.
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type: text\n"
                                              "\u3000  required: true\n  body: {type: textarea}\n")
    assert hint is not None and hint.startswith("line 5 has a full-width space '\u3000'")


def test_a_full_width_space_after_a_colon_is_named_on_its_line(tmp_path: Path) -> None:
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type:\u3000text\n"
                                              "    required: true\n")
    assert hint is not None and hint.startswith("line 4 has a full-width space '\u3000'")


def test_a_comparison_starting_a_value_is_told_to_be_quoted(tmp_path: Path) -> None:
    # A decision cell `amount: > 5000` is YAML's folded-text sign: "cannot start any token", no hint.
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title: {type: text, help: > 5000}\n")
    assert hint == "a value starting with '>' must be in quotes: \"> 5000\" ('>' means something else in YAML)"


def test_a_comparison_starting_a_block_value_is_told_to_be_quoted(tmp_path: Path) -> None:
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type: text\n    help: > 5000\n")
    assert hint is not None and hint.startswith("a value starting with '>' must be in quotes: \"> 5000\"")


def test_a_chinese_colon_inside_a_value_is_not_taken_for_a_key(tmp_path: Path) -> None:
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nlabel: {en: 注意：x, zh-CN: a\nfields:\n  title: {type: text}\n")
    assert hint is not None and "Chinese colon" not in hint


def test_a_chinese_colon_before_a_plain_value_inside_braces_is_named_at_the_key(tmp_path: Path) -> None:
    # `{type: text, label： 标题}` is valid YAML: one key 'label： 标题', which read as a misspelt key.
    (found,) = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": (
        "form: ticket\nfields:\n  title: {type: text, label： 标题}\n")}) if d.severity == "error"]
    assert found.message == "unknown key 'label： 标题'"
    assert found.hint is not None and found.hint.startswith("a Chinese colon '：' joined 'label' to its value")


def test_a_value_holding_a_colon_inside_braces_is_told_to_be_quoted(tmp_path: Path) -> None:
    line, col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title: {type: text, label: {en: Closed: no reply}}\n")
    assert (line, col) == (3, 41)
    assert hint is not None and hint.startswith("a value holding ': ' must be quoted")


def test_a_key_without_a_space_after_its_colon_is_named_on_its_line(tmp_path: Path) -> None:
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nfields:\n  title:\n    type:text\n    required: true\n")
    assert hint == "line 4: put a space after 'type:' (YAML reads 'type:text' as one word)"


def test_a_quote_left_open_is_reported_where_it_opens(tmp_path: Path) -> None:
    # Not at the end of the file, where YAML noticed it.
    line, col, hint = syntax_hint(tmp_path, 'form: ticket\nfields:\n  title:\n    type: text\n'
                                            '    pattern: "[0-9]{10}\n  body: {type: textarea}\n')
    assert (line, col) == (5, 14) and hint is not None and hint.startswith("the quote opened here is not closed")


def test_a_bracket_left_open_names_the_line_it_opens_on(tmp_path: Path) -> None:
    _line, _col, hint = syntax_hint(tmp_path, "form: ticket\nlist: [title, body\nfields:\n  title: {type: text}\n")
    assert hint is not None and hint.startswith("the bracket opened on line 2 (column 7) is not closed")


def test_tab_indentation_is_reported_with_a_hint(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": "form: ticket\nfields:\n\ttitle: {type: text}\n"})
    errors = [d for d in diags if d.severity == "error"]
    assert len(errors) == 1
    assert errors[0].span is not None and errors[0].span.line == 3
    assert "tab" in (errors[0].message + (errors[0].hint or "")).lower()


def test_an_unknown_field_type_suggests_the_nearest(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": """\
        form: ticket
        fields:
          title:
            type: txt
        """})
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (4, 11)
    assert "unknown field type 'txt'" in error.message
    assert error.hint is not None and "text" in error.hint


def test_a_misspelt_key_is_reported_at_the_key_with_did_you_mean(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": """\
        form: ticket
        fields:
          title:
            type: text
            requird: true
        """})
    (error,) = [d for d in diags if d.severity == "error" and d.span is not None
                and d.span.file.endswith("forms/ticket.yaml")]  # (the flow names fields this form lacks)
    assert error.span is not None and (error.span.line, error.span.col) == (5, 5)
    assert "unknown key 'requird'" in error.message
    assert error.hint is not None and "required" in error.hint


def test_a_missing_required_key_is_reported_on_its_mapping(tmp_path: Path) -> None:
    file, line, col, message = only(problems(tmp_path, {"forms/ticket.yaml": "form: ticket\nlabel: T\n"}))
    assert (file, line, col) == ("forms/ticket.yaml", 1, 1)
    assert "'fields'" in message


def test_an_unknown_node_type_is_reported_at_its_type(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("type: task", "type: tusk")
    diags = diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow})
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (9, 11)
    assert "unknown node type 'tusk'" in error.message
    assert error.hint is not None and "task" in error.hint


def test_a_dangling_next_names_the_missing_node(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("next: route", "next: rout")
    diags = diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow})
    errors = [d for d in diags if d.severity == "error"]
    dangling = [d for d in errors if "'rout'" in d.message]
    assert len(dangling) == 1
    assert dangling[0].span is not None and (dangling[0].span.line, dangling[0].span.col) == (12, 11)
    assert dangling[0].hint is not None and "route" in dangling[0].hint


def test_an_unknown_field_in_an_expression_points_inside_the_expression(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace('required_if: urgency == "high"',
                                             'required_if: urgncy == "high"')
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": form})
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (13, 18)
    assert "urgncy" in error.message
    assert error.hint is not None and "urgency" in error.hint


def test_an_expression_in_a_flow_sees_the_forms_fields(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace('when: urgency == "high"', 'when: priority == "high"')
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line, col) == ("flows/ticket_flow.yaml", 16, 15)
    assert "priority" in message


def test_a_flow_ordering_a_field_that_may_be_empty_is_warned_at_the_field(tmp_path: Path) -> None:
    # It loaded clean; a ticket without an amount then stopped at the decision with an incident.
    flow = MINI["flows/ticket_flow.yaml"].replace('when: urgency == "high"', "when: amount > 5000")
    (warning,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "warning"]
    assert warning.span is not None and warning.span.file.endswith("flows/ticket_flow.yaml")
    assert (warning.span.line, warning.span.col) == (16, 15)
    assert warning.message == ("'amount' may be empty when this runs: comparing an empty value with '>' "
                               "fails, and the record stops with an incident")
    assert problems(tmp_path, {"flows/ticket_flow.yaml": flow.replace("amount > 5000", "(amount or 0) > 5000")}) == []


def test_a_form_condition_on_a_field_that_may_be_empty_is_not_warned(tmp_path: Path) -> None:
    # A form's own conditions fall back when they fail (visible, not required): no incident.
    form = MINI["forms/ticket.yaml"].replace('required_if: urgency == "high"', "required_if: amount > 5000")
    assert [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.severity == "warning"] == []


def test_a_sandbox_escape_in_a_flow_condition_is_refused_at_load_with_file_line_col(tmp_path: Path) -> None:
    """RELIABILITY 1 at the bundle level: the escape is named in the file at its line and column,
    and the bundle does not load, so the condition is never evaluated."""
    flow = MINI["flows/ticket_flow.yaml"].replace(
        'when: urgency == "high"', 'when: ().__class__.__bases__[0].__subclasses__() == urgency')
    found = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert [(f, l, c) for f, l, c, _ in found] == [
        ("flows/ticket_flow.yaml", 16, 18), ("flows/ticket_flow.yaml", 16, 28),
        ("flows/ticket_flow.yaml", 16, 41)]
    assert "__class__" in found[0][3]
    with pytest.raises(DefinitionError):
        load_bundle(tmp_path, build_registry(plugins=False))


def test_a_decision_without_else_is_refused(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("              - else: done\n", "")
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line) == ("flows/ticket_flow.yaml", 16)  # at the branches
    assert "no 'else'" in message


def test_an_unreachable_node_is_reported(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].rstrip() + "\n          orphan:\n            type: end\n"
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line, col) == ("flows/ticket_flow.yaml", 21, 3)
    assert "unreachable" in message or "cannot be reached" in message


def test_an_unknown_role_in_an_assignment_is_reported(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", "{role: agnet}")
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line, col) == ("flows/ticket_flow.yaml", 10, 20)
    assert "unknown role 'agnet'" in message


def test_an_unknown_option_list_is_reported(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("options: urgency", "options: urgencies")
    file, line, col, message = only(problems(tmp_path, {"forms/ticket.yaml": form}))
    assert (file, line, col) == ("forms/ticket.yaml", 10, 14)
    assert "unknown list 'urgencies'" in message


def test_a_task_field_that_the_form_lacks_is_reported(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("fields: [urgency]", "fields: [urgency, severity]")
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line, col) == ("flows/ticket_flow.yaml", 11, 23)
    assert "unknown field 'severity'" in message


def test_a_flow_over_an_unknown_form_is_reported(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("form: ticket", "form: tickets")
    found = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert ("flows/ticket_flow.yaml", 2, 7, "unknown form 'tickets'") in found


def test_a_number_where_text_is_expected_suggests_quoting(tmp_path: Path) -> None:
    bundle = MINI["bundle.yaml"].replace('version: "1"', "version: 1.10")
    diags = diagnostics(tmp_path, {"bundle.yaml": bundle})
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (2, 10)
    assert "expected text" in error.message
    assert error.hint is not None and "quote" in error.hint


def only_error(tmp_path: Path, files: dict[str, str]) -> Any:
    (error,) = [d for d in diagnostics(tmp_path, files) if d.severity == "error"]
    return error


def test_a_condition_written_as_required_is_told_to_write_required_if(tmp_path: Path) -> None:
    # "expected true or false, got the text 'urgency == \"high\"'" said what, not how.
    form = MINI["forms/ticket.yaml"].replace('required_if: urgency == "high"', 'required: urgency == "high"')
    error = only_error(tmp_path, {"forms/ticket.yaml": form})
    assert error.message == "expected true or false, got the text 'urgency == \"high\"'"
    assert error.hint == 'required takes true or false; for a condition write required_if: urgency == "high"'


def test_a_number_in_quotes_where_a_number_is_expected_is_told_to_drop_them(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("type: money", "type: rating\n            max: \"10\"")
    error = only_error(tmp_path, {"forms/ticket.yaml": form})
    assert error.message == "expected a whole number, got the text '10'"
    assert error.hint == "write 10 without quotes: in quotes it is text"


def test_too_many_entries_are_told_the_limit_and_the_count(tmp_path: Path) -> None:
    # "[...] is too long" said neither how many are allowed nor how many were written.
    flow = MINI["flows/ticket_flow.yaml"].replace(
        "assign: {role: agent}",
        "assign: {role: agent}\n            escalation: [{level: 2}, {level: 3}, {level: 2}, {level: 3}]")
    error = only_error(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert error.message == "'escalation' takes at most 3 entries; 4 are written"


def test_an_option_of_a_list_written_as_a_bare_word_is_told_how_an_item_is_written(tmp_path: Path) -> None:
    # Inline options take `[phone, email]`; an item of lists/ written so had no hint.
    lst = MINI["lists/urgency.yaml"].replace("- {value: high, label: {zh-CN: 高, en: High}}", "- high")
    error = only_error(tmp_path, {"lists/urgency.yaml": lst})
    assert error.message == "expected a mapping (key: value lines), got the text 'high'"
    assert error.hint == "write - {value: high}"


def test_a_value_that_may_take_two_forms_is_told_the_problem_in_the_form_written(tmp_path: Path) -> None:
    # `due:` takes a duration or a list of {when, after}: a list missing `after` was told
    # "expected text, got a list".
    flow = MINI["flows/ticket_flow.yaml"].replace(
        "fields: [urgency]", "fields: [urgency]\n            due: [{when: urgency == \"high\"}]")
    error = only_error(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert error.message == "missing required key 'after'"
    assert error.yaml_path == ("nodes", "handle", "due", 0)


def test_a_yaml11_boolean_word_in_a_text_option_suggests_quoting(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("label: Ticket", "label: NO")
    found = problems(tmp_path, {"forms/ticket.yaml": form})
    assert found == []  # kept as the text "NO", never False


def test_yaml11_lookalikes_stay_text(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"lists/slots.yaml": """\
        list: slots
        items:
          - {value: NO}
          - {value: on}
          - {value: 12:30}
          - {value: 0755}
          - {value: 0571-8888}
          - {value: 2024-01-02}
        """})
    bundle = load_bundle(tmp_path, build_registry(plugins=False))
    values = [o.value for o in bundle.get("list", "slots").options]
    assert values == ["NO", "on", "12:30", "0755", "0571-8888", "2024-01-02"]


def test_a_float_option_value_is_reported_with_a_hint_to_quote(tmp_path: Path) -> None:
    found = problems(tmp_path, {"lists/codes.yaml": "list: codes\nitems:\n  - {value: 1e3}\n"})
    assert [(f, l, c) for f, l, c, _ in found] == [("lists/codes.yaml", 3, 13)]
    diags = diagnostics(tmp_path)
    assert any(d.hint and "quotes" in d.hint for d in diags)


def test_yes_where_a_boolean_is_expected_suggests_true(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("required: true", "required: yes")
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": form})
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (7, 15)
    assert error.hint is not None and "true" in error.hint


def test_a_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    found = problems(tmp_path, {"lists/evil.yaml": f"""\
        list: evil
        items:
          - value: !!python/object/apply:os.system ['touch {marker}']
        """})
    assert [(f, l, c) for f, l, c, _ in found] == [("lists/evil.yaml", 3, 12)]
    assert "tag" in found[0][3]
    assert not marker.exists()


def alias_bomb() -> str:
    """A list file whose items expand to 9**9 (387 million) leaves through eight levels of aliases."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        refs = ", ".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\nlist: bomb\nitems: *a8\n"


def test_an_alias_bomb_is_refused_before_schema_validation(tmp_path: Path) -> None:
    bomb = alias_bomb()
    found = problems(tmp_path, {"lists/bomb.yaml": bomb})
    assert len(found) == 1 and found[0][0] == "lists/bomb.yaml"
    assert "expands to more than" in found[0][3]


def test_an_alias_bomb_is_refused_within_100_ms_in_bounded_memory() -> None:
    """RELIABILITY 19: the loader counts what aliases expand to while it builds the data, so the
    refusal costs about as much as reading the small file (CPU time of this thread, so the
    machine's other work does not count)."""
    diags = Diagnostics()
    tracemalloc.start()
    started = time.thread_time()
    try:
        document = load_yaml(alias_bomb(), "lists/bomb.yaml", diags)
        elapsed = time.thread_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert document is None
    assert diags.errors and "expands to more than" in diags.errors[0].message
    assert elapsed < 0.1 and peak < 10 * 1024 * 1024


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    deep = "list: deep\nitems: " + "[" * 100_000 + "]" * 100_000 + "\n"
    found = problems(tmp_path, {"lists/deep.yaml": deep})
    assert len(found) == 1 and found[0][:2] == ("lists/deep.yaml", 2)
    assert "deep" in found[0][3] or "nest" in found[0][3]


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "lists" / "big.yaml"
    big.parent.mkdir(parents=True)
    with big.open("wb") as out:
        out.truncate(50 * 1024 * 1024)  # sparse: 50 MB on paper, nothing on disk
    found = problems(tmp_path)
    assert [(f, l, c) for f, l, c, _ in found] == [("lists/big.yaml", 1, 1)]
    assert "bytes" in found[0][3]


def test_invalid_utf8_is_reported_at_its_line(tmp_path: Path) -> None:
    found = problems(tmp_path, {"lists/bad.yaml": b"list: bad\nitems:\n  - {value: caf\xe9}\n"})
    assert len(found) == 1 and found[0][:2] == ("lists/bad.yaml", 3)
    assert "UTF-8" in found[0][3]


def test_several_documents_in_one_file_are_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, {"lists/two.yaml": "list: a\nitems: [{value: x}]\n---\nlist: b\nitems: [{value: y}]\n"})
    assert len(found) == 1 and found[0][:2] == ("lists/two.yaml", 3)


def test_a_merge_key_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, {"lists/merge.yaml": """\
        base: &base {value: x}
        list: merge
        items:
          - <<: *base
        """})
    assert any(f == "lists/merge.yaml" and l == 4 and "merge" in m for f, l, _, m in found)


def test_the_same_form_name_in_two_files_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, {"forms/ticket_copy.yaml": MINI["forms/ticket.yaml"]})
    assert len(found) == 1
    file, line, col, message = found[0]
    assert (line, col) == (1, 7) and file in ("forms/ticket.yaml", "forms/ticket_copy.yaml")
    assert "already defined" in message


def test_a_bad_numbering_pattern_is_reported(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("T{seq:4}", "T{sequence:4}")
    file, line, col, message = only(problems(tmp_path, {"forms/ticket.yaml": form}))
    assert (file, line, col) == ("forms/ticket.yaml", 3, 12)
    assert "unknown numbering token" in message


def test_a_duplicate_option_value_in_a_list_names_the_first(tmp_path: Path) -> None:
    found = problems(tmp_path, {"lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: low}
          - {value: low}
          - {value: high}
        """})
    assert [(f, l, c) for f, l, c, _ in found] == [("lists/urgency.yaml", 4, 13)]
    assert "line 3" in found[0][3]


def test_an_unknown_role_in_bundle_yaml_is_reported(tmp_path: Path) -> None:
    bundle = MINI["bundle.yaml"].rstrip() + "\n        demo_users:\n          - {username: a, roles: [agnt]}\n"
    file, line, col, message = only(problems(tmp_path, {"bundle.yaml": bundle}))
    assert (file, line) == ("bundle.yaml", 9)
    assert "unknown role 'agnt'" in message


def test_a_missing_bundle_yaml_is_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, {"bundle.yaml": None})
    assert [(f, l, c) for f, l, c, _ in found] == [("bundle.yaml", 1, 1)]


def test_a_bundle_folder_that_does_not_exist_is_reported_as_missing(tmp_path: Path) -> None:
    _bundle, diags = validate_bundle(tmp_path / "nowhere", build_registry(plugins=False))
    assert [d.message for d in diags] == [f"the folder '{display_path(tmp_path / 'nowhere')}' does not exist"]


def test_a_missing_bundle_folder_suggests_a_bundle_with_a_close_name(tmp_path: Path) -> None:
    write_bundle(tmp_path / "postal_complaints", {})
    _bundle, (diag,) = validate_bundle(tmp_path / "postal_complaint", build_registry(plugins=False))
    assert diag.hint == "did you mean 'postal_complaints'?"


def test_a_file_given_as_the_bundle_is_reported_as_not_a_folder(tmp_path: Path) -> None:
    write_bundle(tmp_path, {})
    _bundle, diags = validate_bundle(tmp_path / "bundle.yaml", build_registry(plugins=False))
    assert [d.message for d in diags] == [f"'{display_path(tmp_path / 'bundle.yaml')}' is a file, not a bundle folder"]



def test_a_folder_of_bundles_given_as_the_bundle_names_the_bundles_in_it(tmp_path: Path) -> None:
    # `docket validate definitions` said only that there was no bundle.yaml.
    write_bundle(tmp_path / "meter_disputes", {})
    (diag,) = validate_bundle(tmp_path, build_registry(plugins=False))[1]
    assert diag.message.startswith("no bundle.yaml")
    assert diag.hint == f"the bundles in this folder: {display_path(tmp_path / 'meter_disputes')}"


def test_every_problem_of_every_file_is_reported_in_one_run(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("type: text", "type: txt")
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", "{role: agnet}")
    lists = "list: urgency\nitems:\n  - {value: low}\n  - {value: low}\n"
    found = problems(tmp_path, {"forms/ticket.yaml": form, "flows/ticket_flow.yaml": flow,
                                "lists/urgency.yaml": lists})
    assert sorted({f for f, *_ in found}) == ["flows/ticket_flow.yaml", "forms/ticket.yaml",
                                              "lists/urgency.yaml"]


def test_an_unknown_folder_is_a_warning_not_an_error(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {"form/ticket.yaml": MINI["forms/ticket.yaml"]})
    assert [d.severity for d in diags] == ["warning"]
    assert "form" in diags[0].message and diags[0].hint and "forms" in diags[0].hint


def test_a_misspelt_definition_folder_suggests_the_right_one(tmp_path: Path) -> None:
    (diag,) = diagnostics(tmp_path, {"form/ticket.yaml": MINI["forms/ticket.yaml"]})
    assert diag.hint == "did you mean 'forms/'?"


def test_the_hint_of_an_unknown_name_lists_statuses_not_statuss(tmp_path: Path) -> None:
    doc = load_yaml("status: opn\n", "x.yaml", Diagnostics())
    assert doc is not None
    ctx = BuildContext(build_registry(plugins=False), Diagnostics())
    ctx.unknown(doc, ("status",), "status", "zzz", ["open", "closed"])
    (diag,) = ctx.diags
    assert diag.hint == "known statuses: closed, open"


@pytest.mark.parametrize("noun, plural_form", [
    ("field", "fields"), ("status", "statuses"), ("policy", "policies"), ("key", "keys"),
    ("template file", "template files"), ("dimension or measure", "dimensions or measures"),
])
def test_hints_name_what_they_list_in_the_plural(noun: str, plural_form: str) -> None:
    assert plural(noun) == plural_form


def test_load_bundle_raises_with_every_diagnostic(tmp_path: Path) -> None:
    write_bundle(tmp_path, {"forms/ticket.yaml": "form: ticket\nfields:\n  a: {type: txt}\n  b: {type: nmber}\n"})
    with pytest.raises(DefinitionError) as info:
        load_bundle(tmp_path, build_registry(plugins=False))
    assert len(info.value.diagnostics) == 2


def test_diagnostics_print_as_file_line_col(tmp_path: Path) -> None:
    diags = diagnostics(tmp_path, {"forms/ticket.yaml": "form: ticket\nfields:\n  a: {type: txt}\n"})
    text = format_diagnostic([d for d in diags if d.severity == "error"][0])
    assert text.split(": error: ")[0].endswith("forms/ticket.yaml:3:13")


def test_the_bundle_hash_changes_with_any_file(tmp_path: Path) -> None:
    write_bundle(tmp_path, {})
    registry = build_registry(plugins=False)
    first, _ = validate_bundle(tmp_path, registry)
    (tmp_path / "lists" / "urgency.yaml").write_text(
        (tmp_path / "lists" / "urgency.yaml").read_text() + "# a comment\n")
    second, _ = validate_bundle(tmp_path, registry)
    assert first is not None and second is not None and first.hash != second.hash


def test_an_unknown_role_among_the_watchers_is_reported(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", "{role: agent, cc: {roles: [agnet]}}")
    file, line, col, message = only(problems(tmp_path, {"flows/ticket_flow.yaml": flow}))
    assert (file, line) == ("flows/ticket_flow.yaml", 10) and "unknown role 'agnet'" in message


def label_warnings(tmp_path: Path, label: str) -> list[str]:
    """The label warnings of the mini bundle whose low urgency has `label`."""
    found = diagnostics(tmp_path, {"lists/urgency.yaml": f"""\
        list: urgency
        items:
          - {{value: low, label: {label}}}
          - {{value: high, label: {{zh-CN: 高, en: High}}}}
        """})
    return [format_diagnostic(d) for d in found if d.code.startswith("label-")]


def test_a_misspelt_language_in_a_label_is_a_warning_with_the_right_spelling(tmp_path: Path) -> None:
    (warning,) = label_warnings(tmp_path, "{zh_CN: 低, en: Low}")
    assert warning.split("/")[-1].startswith("urgency.yaml:3:26: warning: 'zh_CN' is not one of "
                                             "the bundle's languages: this text is shown to no one")
    assert "did you mean 'zh-CN'?" in warning


def test_a_label_missing_one_of_the_bundles_languages_is_a_warning(tmp_path: Path) -> None:
    (warning,) = label_warnings(tmp_path, "{zh-CN: 低}")
    assert "warning: this label has no en text: those readers see another language" in warning


def test_a_plain_chinese_label_in_a_bundle_with_english_is_a_warning_with_the_map_to_write(tmp_path: Path) -> None:
    # `label: 低` is the simplest to write and English readers saw it untranslated, unwarned.
    (warning,) = label_warnings(tmp_path, "低")
    assert "warning: this label is in Chinese only: en readers see it as it is" in warning
    assert "hint: write {zh-CN: 低, en: ...}" in warning


def test_a_field_named_label_is_not_taken_for_a_label(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, {"rules/tags.yaml": """\
        ruleset: tags
        form: ticket
        rules:
          one:
            on: record.created
            do:
              - {action: set, fields: {label: 加急}}
        """})
    assert [d.code for d in found if d.code.startswith("label-")] == []


def test_a_plain_text_label_and_a_complete_one_say_nothing(tmp_path: Path) -> None:
    assert label_warnings(tmp_path, "Low") == []
    assert label_warnings(tmp_path, "{zh-CN: 低, en: Low}") == []


# ---------------------------------------------------------------- a form's own expressions

def form_problems(tmp_path: Path, fields: str) -> list[tuple[str, int, int, str]]:
    """The problems of forms/claim.yaml with `fields` (indented two spaces) and MINI."""
    return problems(tmp_path, {"forms/claim.yaml": "form: claim\nfields:\n" + fields})


def test_a_forms_condition_is_checked_against_the_options_of_a_field_written_after_it(tmp_path: Path) -> None:
    found = form_problems(tmp_path, '  note: {type: text, visible_if: level == "hihg"}\n'
                                    "  level: {type: select, options: urgency}\n")
    assert found == [("forms/claim.yaml", 3, 43,
                      "'hihg' is not an option of 'level': the comparison could never hold")]


def test_a_computed_value_comparing_a_money_field_with_text_is_an_error(tmp_path: Path) -> None:
    found = form_problems(tmp_path, "  amount: {type: money}\n"
                                    "  large: {type: boolean, computed: 'amount > \"5000\"'}\n")
    assert found == [("forms/claim.yaml", 4, 46, "the text '5000' cannot be compared with 'amount', "
                      "which holds a number: the expression would fail when it runs")]


def test_a_forms_condition_looking_for_a_value_in_a_multiselect_is_checked_against_its_options(
        tmp_path: Path) -> None:
    found = form_problems(tmp_path, "  levels: {type: multiselect, options: urgency}\n"
                                    "  reason: {type: text, required_if: '\"hihg\" in levels'}\n")
    assert found == [("forms/claim.yaml", 4, 38,
                      "'hihg' is not an option of 'levels': the comparison could never hold")]


def test_a_comma_in_an_unquoted_label_text_is_explained_at_the_stray_entry(tmp_path: Path) -> None:
    found = diagnostics(tmp_path, {"lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: low, label: {zh-CN: 低, en: Low, not urgent}}
          - {value: high, label: {zh-CN: 高, en: High}}
        """})
    (error,) = [d for d in found if d.severity == "error"]
    text = format_diagnostic(error)
    assert "urgency.yaml:3:45: error: the label's 'not urgent' has no text: inside {...} a comma starts a new entry" in text
    assert 'hint: put the text in quotes: en: "Low, not urgent"' in text


def test_a_label_quoted_with_chinese_quotation_marks_is_told_to_use_straight_ones(tmp_path: Path) -> None:
    # YAML reads “ as text: the comma still split the label, and the hint kept the “ in the fix.
    found = diagnostics(tmp_path, {"lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: low, label: {zh-CN: 低, en: “Low, not urgent”}}
          - {value: high, label: {zh-CN: 高, en: High}}
        """})
    (error,) = [d for d in found if d.severity == "error"]
    assert error.hint == ("'“' is a Chinese quotation mark, which YAML reads as text: "
                          "quote with \" (switch the input method to English punctuation): en: \"Low, not urgent\"")


def test_a_number_written_with_thousands_separators_is_told_the_number_meant(tmp_path: Path) -> None:
    # "expected a number, got the text '10,000,000'" left the analyst to guess what was wrong.
    found = diagnostics(tmp_path, {"forms/ticket.yaml": "form: ticket\nfields:\n  amount:\n    type: money\n"
                                                        "    max: 10,000,000\n"})
    (error,) = [d for d in found if d.severity == "error" and d.span and d.span.file.endswith("ticket.yaml")]
    assert error.span is not None and (error.span.line, error.span.col) == (5, 10)
    assert error.hint == "write 10000000 without the thousands separator"


def test_names_joined_by_a_chinese_comma_are_told_to_use_a_comma(tmp_path: Path) -> None:
    # `list: [title，urgency]` was one unknown field 'title，urgency', with "did you mean 'title'?".
    form = MINI["forms/ticket.yaml"].replace("label: Ticket", "label: Ticket\n        list: [title，urgency]")
    (error,) = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.severity == "error"]
    assert error.message == "unknown field 'title，urgency'"
    assert error.hint == "'，' is Chinese punctuation: write , instead (switch the input method to English punctuation)"


def test_a_default_written_as_an_options_label_is_told_its_value(tmp_path: Path) -> None:
    form = MINI["forms/ticket.yaml"].replace("options: urgency", "options: urgency\n            default: 高")
    (error,) = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.severity == "error"]
    assert error.hint == "'高' is the label of an option of 'urgency': write its value, \"high\""


def test_a_fields_key_indented_too_little_is_told_which_entry_it_belongs_to(tmp_path: Path) -> None:
    # Two spaces short, `required: true` became a field of its own: "expected a mapping, got
    # the text 'true'" did not say that the indentation was the mistake.
    form = "form: ticket\nfields:\n  title:\n    type: text\n  required: true\n  urgency: {type: select, options: urgency}\n"
    (error,) = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.severity == "error"
                and d.span and d.span.file.endswith("ticket.yaml")]
    assert error.hint == ("'required' is read as an entry of its own, beside 'title': if it belongs to 'title', "
                          "indent it as far as the keys of 'title'")


def test_a_key_with_nothing_indented_under_it_is_told_to_indent_what_belongs_to_it(tmp_path: Path) -> None:
    form = "form: ticket\nlookup:\nverify: phone\nfields:\n  title: {type: text}\n"
    found = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.code == "schema-type"]
    assert [d.hint for d in found] == ["nothing is indented under 'lookup:': indent the lines that belong to it "
                                       "further than 'lookup'"]


def test_a_scalar_for_a_mapping_among_mixed_keys_gets_no_indentation_hint(tmp_path: Path) -> None:
    form = "form: ticket\nlabel: {en: Ticket}\nlookup: phone\nfields:\n  title: {type: text}\n"
    found = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.code == "schema-type"]
    assert len(found) == 1 and (found[0].hint is None or "indent" not in found[0].hint)


def test_an_invisible_character_in_a_name_is_named_with_where_it_is(tmp_path: Path) -> None:
    # 'confirm\u200b' printed like 'confirm': "unknown node 'confirm', did you mean 'confirm'?"
    flow = MINI["flows/ticket_flow.yaml"].replace("next: route", "next: route\u200b", 1)
    (error,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "error"]
    assert error.hint == ("it holds a zero-width space (U+200B) after 'route', pasted from a document or a chat: "
                          "delete it, or type an ordinary space")


def test_a_non_breaking_space_in_the_indentation_is_named(tmp_path: Path) -> None:
    form = "form: ticket\nfields:\n  title: {type: text}\n  \u00a0\u00a0body: {type: text}\n"
    found = [d for d in diagnostics(tmp_path, {"forms/ticket.yaml": form}) if d.code == "schema-pattern"]
    assert [d.hint for d in found] == ["it holds a non-breaking space (U+00A0) at its start, pasted from a document "
                                       "or a chat: delete it, or type an ordinary space"]
