"""Every field type's own examples load, and the reference shows each type with its example."""

from __future__ import annotations

from pathlib import Path
from textwrap import indent

import pytest

from tests.engine.bundle_kit import problems
from web.system import build_registry

FORMS_MD = Path(__file__).resolve().parents[2] / "docs" / "reference" / "forms.md"
TYPES = list(build_registry(plugins=False).field_types)

EXAMPLE_LISTS = {
    "lists/complaint_category.yaml": """\
        list: complaint_category
        items:
          - value: delivery
            children: [{value: delivery_late}, {value: delivery_lost}]
        """,
    "lists/region.yaml": "list: region\nitems: [{value: east}, {value: north}]\n",
    "bundle.yaml": """\
        bundle: examples
        version: "1"
        roles: {agent: {label: Agent}, supervisor: {label: Supervisor}}
        departments: {service: {label: Service}}
        """,
}


def test_the_examples_of_every_type_load_together_in_one_form(tmp_path: Path) -> None:
    fields = "".join(indent(example, "  ") for field_type in TYPES for example in field_type.examples)
    assert problems(tmp_path, {**EXAMPLE_LISTS, "forms/examples.yaml": "form: examples\nfields:\n" + fields}) == []


DOCUMENTED_HERE = [t for t in TYPES if not getattr(t, "holds_attachments", False)]  # uploads: their own section


@pytest.mark.parametrize("field_type", DOCUMENTED_HERE, ids=[t.name for t in DOCUMENTED_HERE])
def test_the_reference_shows_each_type_with_its_first_example(field_type: object) -> None:
    text = FORMS_MD.read_text("utf-8")
    heading = text.find(f"### `{field_type.name}`")  # type: ignore[attr-defined]
    assert heading != -1
    assert f"```yaml\n{field_type.examples[0]}```" in text[heading:]  # type: ignore[attr-defined]
