"""A step may put the fields its people decide on before them, read-only (`show`), checked at load."""

from __future__ import annotations

from pathlib import Path

from tests.engine.bundle_kit import MINI, diagnostics, problems

FLOW = MINI["flows/ticket_flow.yaml"]


def test_a_step_may_show_fields_it_does_not_let_its_people_edit(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]", "fields: [urgency]\n            show: [amount, title]")
    assert problems(tmp_path, {"flows/ticket_flow.yaml": flow}) == []


def test_an_unknown_shown_field_is_reported_where_it_is_written(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]", "fields: [urgency]\n            show: [amont]")
    ((file, line, col, message),) = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert (file, line, col) == ("flows/ticket_flow.yaml", 12, 12) and "unknown field 'amont'" in message


def test_a_field_both_shown_and_hidden_at_one_step_is_an_error(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]",
                        "fields: [urgency]\n            show: [amount]\n            hidden_fields: [amount]")
    ((file, line, col, message),) = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert (file, line) == ("flows/ticket_flow.yaml", 12) and message == "field 'amount' is both shown and hidden at this step"


def test_a_shown_field_the_step_also_edits_is_a_warning(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]", "fields: [urgency]\n            show: [amount, urgency]")
    (warning,) = [d for d in diagnostics(tmp_path, {"flows/ticket_flow.yaml": flow}) if d.severity == "warning"]
    assert warning.span is not None and (warning.span.line, warning.span.col) == (12, 20)
    assert warning.message.startswith("field 'urgency' is in `fields` too")
