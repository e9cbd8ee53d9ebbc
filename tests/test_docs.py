"""The reference in docs/reference stays true: its examples load, and it covers every built-in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.bundle import validate_bundle
from engine.errors import format_diagnostic
from web.system import build_registry

DOCS = Path(__file__).resolve().parent.parent / "docs" / "reference"
EXAMPLE = re.compile(r"```(?:yaml\n# file: (?P<file>\S+)|html\n\{# file: (?P<html>\S+) #\}"
                     r"|css\n/\* file: (?P<css>\S+) \*/)\n(?P<body>.*?)```", re.S)
"""`# file:` starts a YAML example; templates use `{# file: ... #}` (HTML) or `/* file: ... */` (CSS)."""


def examples() -> dict[str, str]:
    """Every `# file:` example of the reference, by the bundle path it claims."""
    found: dict[str, str] = {}
    for page in sorted(DOCS.glob("*.md")):
        for match in EXAMPLE.finditer(page.read_text("utf-8")):
            file = match["file"] or match["html"] or match["css"]
            assert file not in found, f"{page.name}: {file} is shown twice"
            found[file] = match["body"]
    return found


def test_the_reference_has_examples_of_every_definition_kind() -> None:
    folders = {path.split("/")[0] for path in examples() if "/" in path}
    assert {"lists", "forms", "flows"} <= folders
    assert "bundle.yaml" in examples()


def test_the_reference_examples_form_a_valid_bundle(tmp_path: Path) -> None:
    for rel, body in examples().items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    assert diags == [], "\n".join(format_diagnostic(d) for d in diags)
    assert bundle is not None


@pytest.mark.parametrize("kind, page", [("field_types", "forms.md"), ("node_types", "flows.md")])
def test_every_built_in_type_is_documented(kind: str, page: str) -> None:
    text = (DOCS / page).read_text("utf-8")
    registry = build_registry(plugins=False)
    missing = [name for name in getattr(registry, kind).names() if f"| `{name}` |" not in text]
    assert missing == [], f"{page} lacks a row for: {', '.join(missing)}"


def test_every_built_in_function_is_documented() -> None:
    text = (DOCS / "expressions.md").read_text("utf-8")
    missing = [name for name in build_registry(plugins=False).functions.names() if f"`{name}(" not in text]
    assert missing == [], f"expressions.md lacks: {', '.join(missing)}"


def test_every_key_of_a_form_is_documented() -> None:
    from forms.kind import FormKind

    # The section of its own: `lookup` appeared on the page only as an alias of a field type.
    text = (DOCS / "forms.md").read_text("utf-8").split("## Keys of a form", 1)[-1].split("\n## ", 1)[0]
    missing = [key for key in FormKind.options_schema["properties"] if f"`{key}`" not in text]
    assert missing == [], f"forms.md lacks: {', '.join(missing)}"


def test_every_key_of_a_role_is_documented() -> None:
    from engine.bundle_meta import BUNDLE_SCHEMA

    text = (DOCS / "bundle.md").read_text("utf-8")
    keys = BUNDLE_SCHEMA["properties"]["roles"]["additionalProperties"]["properties"]
    missing = [key for key in keys if f"`{key}`" not in text]
    assert missing == [], f"bundle.md lacks: {', '.join(missing)}"
