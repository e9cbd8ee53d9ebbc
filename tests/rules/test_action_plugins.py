"""A third-party action type works in rules and in flow `action` nodes through the registry
contract (engine/actions.py) alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from engine.actions import ActionContext, ActionScope, BaseAction
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document
from rules.actions.common import add_history
from tests.rules.kit import FLOW, errors, history_of, write
from web.system import boot, build_registry

STAMPED: list[tuple[str, int | None, str]] = []


class Stamp(BaseAction):
    name = "stamp"
    description = "Records who ran it (a test plugin)."
    options_schema = {"required": ["text"], "properties": {"text": {"type": "string"}}}
    examples = ("- action: stamp\n  text: customer\n",)

    def compile(self, options: Mapping[str, Any], ctx: BuildContext, doc: Document,
                path: YamlPath, scope: ActionScope) -> Any:
        return ctx.expression(doc, path + ("text",), scope.names)

    def run(self, act: ActionContext, compiled: Any) -> None:
        value = str(act.evaluate(compiled))
        STAMPED.append((act.source, act.record_id, value))
        add_history(act, "stamped", {"text": value})


RULES = """\
    ruleset: stamps
    form: ticket
    rules:
      on_create:
        on: record.created
        do:
          - action: stamp
            text: customer + "!"
    """

STAMP_FLOW = FLOW.replace("      begin: {type: start, next: accept}", """      begin: {type: start, next: stamp_it}
      stamp_it:
        type: action
        do:
          - action: stamp
            text: category
        next: accept""")


def registry() -> Any:
    reg = build_registry(plugins=False)
    reg.actions.add(Stamp(), source="test plugin")
    return reg


def test_a_plugin_action_runs_in_a_rule_and_in_a_flow_node(tmp_path: Path) -> None:
    STAMPED.clear()
    root = write(tmp_path / "bundle", {"rules/stamps.yaml": RULES, "flows/ticket_flow.yaml": STAMP_FLOW})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", registry=registry())
    ticket = system.forms.submit("ticket", {"customer": "ACME", "category": "damage"}, actor="agent").record_id
    assert sorted(STAMPED) == [("flow:ticket_flow.stamp_it", ticket, "damage"),
                               ("rule:stamps.on_create", ticket, "ACME!")]
    assert len(history_of(system, ticket, "stamped")) == 2


def test_without_the_plugin_the_action_is_an_unknown_action_at_its_position(tmp_path: Path) -> None:
    found = errors(tmp_path, {"rules/stamps.yaml": RULES})
    assert found == [("rules/stamps.yaml", 7, 17, "unknown action 'stamp'")]


class Broken(Stamp):
    """A plugin action whose bug is a KeyError: its message alone would read just 'text'."""

    def run(self, act: ActionContext, compiled: Any) -> None:
        raise KeyError("text")


def test_a_plugin_actions_unexpected_error_is_named_with_its_type_in_the_incident(tmp_path: Path) -> None:
    from sqlalchemy import select

    from engine.storage.db import read_transaction
    from engine.storage.tables import incidents

    reg = build_registry(plugins=False)
    reg.actions.add(Broken(), source="test plugin")
    root = write(tmp_path / "bundle", {"rules/stamps.yaml": RULES})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", registry=reg)
    system.forms.submit("ticket", {"customer": "ACME", "category": "damage"}, actor="agent")
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(select(incidents.c.message)).scalars().all()
    assert message.startswith("rule stamps.on_create failed (step 1: stamp, ")
    assert "): KeyError: 'text' (raised in " in message
