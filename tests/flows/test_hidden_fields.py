"""A step may hide fields from the people who work at it (`hidden_fields`), checked at load."""

from __future__ import annotations

from pathlib import Path

from tests.engine.bundle_kit import MINI, problems

FLOW = MINI["flows/ticket_flow.yaml"]


def test_a_step_may_name_fields_its_people_do_not_see(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]", "fields: [urgency]\n            hidden_fields: [amount]")
    assert problems(tmp_path, {"flows/ticket_flow.yaml": flow}) == []


def test_an_unknown_hidden_field_is_reported_where_it_is_written(tmp_path: Path) -> None:
    flow = FLOW.replace("fields: [urgency]", "fields: [urgency]\n            hidden_fields: [amont]")
    ((file, line, col, message),) = problems(tmp_path, {"flows/ticket_flow.yaml": flow})
    assert (file, line) == ("flows/ticket_flow.yaml", 12) and "unknown field 'amont'" in message
