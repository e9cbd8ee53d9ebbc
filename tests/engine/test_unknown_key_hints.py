"""Schema errors in an analyst's words: an unknown key's hint says what the key it suggests takes
when the value is of another kind (`roles: [a, b]` on a countersign is no misspelt `role: a`), and
a value outside a described pattern is told what is expected, not the regular expression."""

from __future__ import annotations

from pathlib import Path

from tests.engine.bundle_kit import MINI, diagnostics

FLOW = MINI["flows/ticket_flow.yaml"]


def countersign_assigned(assign: str) -> dict[str, str]:
    """MINI with its `handle` task turned into a countersign assigned by `assign`."""
    return {"flows/ticket_flow.yaml": FLOW.replace("type: task\n            assign: {role: agent}",
                                                   f"type: countersign\n            assign: {assign}")}


def test_a_list_under_a_key_that_suggests_one_taking_text_is_told_what_that_key_takes(tmp_path: Path) -> None:
    (error,) = [d for d in diagnostics(tmp_path, countersign_assigned("{roles: [agent, manager]}"))
                if d.severity == "error"]
    assert error.message == "unknown key 'roles'"
    assert error.hint == ("did you mean 'role'? It takes text, not a list; here: `users: [..]` one task per "
                          "user, `role: r` one per holder of that role, `departments: [..]` one per department "
                          "(for people of several roles, list their departments)")


def test_a_misspelt_key_whose_value_fits_the_suggestion_gets_the_plain_hint(tmp_path: Path) -> None:
    (error,) = [d for d in diagnostics(tmp_path, countersign_assigned("{rol: agent}"))
                if d.severity == "error"]
    assert (error.message, error.hint) == ("unknown key 'rol'", "did you mean 'role'?")


def test_a_value_outside_a_described_pattern_is_told_what_to_write_not_the_pattern(tmp_path: Path) -> None:
    # It said: does not match the pattern ^(all|any|[1-9][0-9]* of [1-9][0-9]*)$
    files = countersign_assigned("{departments: [service]}")
    files["flows/ticket_flow.yaml"] = files["flows/ticket_flow.yaml"].replace(
        "assign: {departments: [service]}", "assign: {departments: [service]}\n            complete_when: both")
    (error,) = [d for d in diagnostics(tmp_path, files) if d.severity == "error"]
    assert (error.message, error.hint) == ("the text 'both' is not a value this key takes",
                                           'expected: all (default), any, or "N of M" approvals')
