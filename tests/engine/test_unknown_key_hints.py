"""An unknown key's hint says what the key it suggests takes, when the value written is of another
kind: `roles: [a, b]` on a countersign is not a misspelt `role: a`."""

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
