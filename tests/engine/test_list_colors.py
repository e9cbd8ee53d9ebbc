"""An option's `color:` is checked when the bundle loads: only "#rrggbb" (or "#rgb") is a colour,
anything else is an error at the colour with a hint that gives the colour meant."""

from __future__ import annotations

from pathlib import Path

from tests.engine.bundle_kit import diagnostics, problems

LIST = "list: urgency\nitems:\n  - {value: low, color: %s}\n  - {value: high}\n"


def color_errors(tmp_path: Path, color: str) -> list[tuple[int, int, str, str | None]]:
    return [(d.span.line, d.span.col, d.message, d.hint) for d in diagnostics(tmp_path, {"lists/urgency.yaml": LIST % color})
            if d.severity == "error" and d.span is not None]


def test_a_hex_colour_in_quotes_is_accepted(tmp_path: Path) -> None:
    assert problems(tmp_path, {"lists/urgency.yaml": LIST % '"#1a7f37"'}) == []


def test_a_short_hex_colour_is_accepted(tmp_path: Path) -> None:
    assert problems(tmp_path, {"lists/urgency.yaml": LIST % '"#0a0"'}) == []


def test_a_colour_word_is_an_error_at_the_colour_giving_its_hex(tmp_path: Path) -> None:
    assert color_errors(tmp_path, "red") == [
        (3, 25, "'red' is not a colour: write it as \"#rrggbb\"", 'write it as "#d1242f" (red)')]


def test_a_hex_colour_without_its_hash_suggests_the_hash(tmp_path: Path) -> None:
    ((_line, _col, _message, hint),) = color_errors(tmp_path, '"d1242f"')
    assert hint == 'did you mean "#d1242f"?'


def test_an_unquoted_hex_colour_is_explained_as_a_yaml_comment(tmp_path: Path) -> None:
    text = "list: urgency\nitems:\n  - value: low\n    color: #d1242f\n  - {value: high}\n"
    (diag,) = [d for d in diagnostics(tmp_path, {"lists/urgency.yaml": text}) if d.severity == "error"]
    assert (diag.message, diag.span.line if diag.span else None) == ("the colour is empty", 4)
    assert diag.hint is not None and "# starts a YAML comment" in diag.hint


def test_a_css_expression_is_not_a_colour(tmp_path: Path) -> None:
    ((_line, _col, message, _hint),) = color_errors(tmp_path, '"red; background: url(x)"')
    assert message.startswith("'red; background: url(x)' is not a colour")


def test_an_inline_option_colour_of_a_form_field_is_checked_too(tmp_path: Path) -> None:
    form = "form: bad\nfields:\n  u:\n    type: select\n    options:\n      - {value: a, color: rouge}\n"
    found = problems(tmp_path, {"forms/bad.yaml": form})
    assert found == [("forms/bad.yaml", 6, 27, "'rouge' is not a colour: write it as \"#rrggbb\"")]
