"""docs/reference/rules.md stays true: every action and function has a row, and every action
example (the page's and each action type's own `examples`) loads in the reference's example
bundle (tests/test_docs.py), given the channel and the knowledge-base form they name."""

from __future__ import annotations

import re
from pathlib import Path
from textwrap import indent

import pytest

from engine.bundle import validate_bundle
from engine.errors import format_diagnostic
from tests.test_docs import examples
from web.system import build_registry

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "rules.md"
ACTION_BLOCK = re.compile(r"```yaml\n(- action: .*?)```", re.S)
EXTRA = {
    "forms/kb_article.yaml": "form: kb_article\nfields:\n  topic: {type: text}\n  headline: {type: text}\n",
}
CHANNELS = "\nchannels:\n  erp_hook: {type: webhook, url: \"https://erp.example.com/hook\"}\n"


def load_with(tmp_path: Path, steps: str) -> list[str]:
    files = {**examples(), **EXTRA}
    if "erp_hook:" not in files["bundle.yaml"]:  # bundle.md's example may name it already
        files["bundle.yaml"] += CHANNELS
    files["rules/examples.yaml"] = ("ruleset: examples\nform: ticket\nrules:\n  all:\n"
                                    "    on: record.created\n    do:\n" + indent(steps, "      "))
    for rel, body in files.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(body, encoding="utf-8")
    _bundle, diags = validate_bundle(tmp_path, build_registry(plugins=False))
    return [format_diagnostic(d) for d in diags if d.severity == "error"]


def test_every_action_and_function_is_documented() -> None:
    text = PAGE.read_text("utf-8")
    registry = build_registry(plugins=False)
    assert [a for a in registry.actions.names() if f"| `{a}`" not in text] == []
    assert [f for f in ("count_records", "decide") if f"`{f}(" not in text] == []


def test_the_action_examples_of_the_page_load(tmp_path: Path) -> None:
    blocks = ACTION_BLOCK.findall(PAGE.read_text("utf-8"))
    assert len(blocks) >= 2  # the table's examples and the answer of another system
    for i, block in enumerate(blocks):
        assert load_with(tmp_path / str(i), block) == [], block


@pytest.mark.parametrize("name", build_registry(plugins=False).actions.names())
def test_each_action_type_s_own_examples_load(tmp_path: Path, name: str) -> None:
    action = build_registry(plugins=False).actions.get(name)
    assert action.examples, f"{name} has no example"
    for i, example in enumerate(action.examples):
        assert load_with(tmp_path / str(i), example) == [], example
