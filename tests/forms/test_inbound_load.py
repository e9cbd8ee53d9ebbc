"""An inbound webhook's constants and defaults are checked against their field when the bundle
loads: a value the form would refuse is an error at its position, not a 422 on the first
delivery from the hotline."""

from __future__ import annotations

from pathlib import Path

from tests.engine.bundle_kit import Problem, diagnostics, problems

CALL_FORM = """\
form: call
fields:
  urgency: {type: select, options: [urgent, important, normal]}
  parcels: {type: integer}
  note: {type: text}
"""


def hook_problems(tmp_path: Path, values: str) -> list[Problem]:
    """The errors of MINI plus a `call` form and webhooks/hotline.yaml with `values` (each line
    indented two spaces, starting on line 5)."""
    hook = "webhook: hotline\nform: call\nsecret_env: DOCKET_HOTLINE_SECRET\nvalues:\n" + values
    return problems(tmp_path, {"forms/call.yaml": CALL_FORM, "webhooks/hotline.yaml": hook})


def test_a_default_that_is_not_an_option_is_an_error_at_the_default(tmp_path: Path) -> None:
    found = hook_problems(tmp_path, "  urgency: {path: $.ticket.urgency, default: norml}\n")
    assert found == [("webhooks/hotline.yaml", 5, 46, "the default 'norml' is not an option of field 'urgency'")]


def test_a_default_that_is_not_an_option_names_the_close_option(tmp_path: Path) -> None:
    hook = ("webhook: hotline\nform: call\nsecret_env: DOCKET_HOTLINE_SECRET\nvalues:\n"
            "  urgency: {path: $.ticket.urgency, default: norml}\n")
    (diag,) = [d for d in diagnostics(tmp_path, {"forms/call.yaml": CALL_FORM, "webhooks/hotline.yaml": hook})
               if d.severity == "error"]
    assert diag.hint == "did you mean 'normal'?"


def test_a_constant_that_is_not_an_option_is_an_error_at_the_value(tmp_path: Path) -> None:
    found = hook_problems(tmp_path, "  urgency: {value: hotline}\n")
    assert found == [("webhooks/hotline.yaml", 5, 20, "the constant 'hotline' is not an option of field 'urgency'")]


def test_a_text_constant_for_an_integer_field_is_an_error(tmp_path: Path) -> None:
    found = hook_problems(tmp_path, "  parcels: {value: many}\n")
    assert found == [("webhooks/hotline.yaml", 5, 20,
                      "the constant 'many' is not valid for field 'parcels': Enter a whole number.")]


def test_a_bare_constant_the_field_refuses_is_an_error_at_it(tmp_path: Path) -> None:
    found = hook_problems(tmp_path, "  parcels: 2.5\n")
    assert found == [("webhooks/hotline.yaml", 5, 12,
                      "the constant 2.5 is not valid for field 'parcels': Enter a whole number.")]


def test_constants_and_defaults_the_fields_accept_load(tmp_path: Path) -> None:
    found = hook_problems(tmp_path, "  urgency: {path: $.u, default: normal}\n  parcels: 3\n"
                                    "  note: {value: from the hotline}\n")
    assert found == []
