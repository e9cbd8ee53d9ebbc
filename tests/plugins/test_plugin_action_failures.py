"""A plugin action that raises an unexpected exception leaves an incident that says whose bug it
is and where it was raised, in a rule and in a flow's `action` node alike, with the traceback in
the log; an `ActionError` keeps its plain reason (docs/plugins.md, "When a plugin is broken")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.actions import ActionContext, ActionError, BaseAction
from engine.storage.db import read_transaction
from engine.storage.tables import incidents
from tests.rules.kit import FLOW, write
from web.system import System, boot, build_registry

SOURCE = "acme-docket"
THIS_FILE = Path(__file__).name

RULES = """\
    ruleset: posts
    form: ticket
    rules:
      on_create:
        on: record.created
        do:
          - action: wecom_post
    """

POST_FLOW = FLOW.replace("      begin: {type: start, next: accept}", """      begin: {type: start, next: post_it}
      post_it:
        type: action
        do:
          - action: wecom_post
        next: accept""")


class WecomPost(BaseAction):
    name = "wecom_post"

    def __init__(self, error: Exception) -> None:
        self.error = error

    def run(self, act: ActionContext, compiled: Any) -> None:
        raise self.error


def booted(tmp_path: Path, files: dict[str, str], error: Exception) -> System:
    registry = build_registry(plugins=False)
    registry.actions.add(WecomPost(error), source=SOURCE)
    root = write(tmp_path / "bundle", files)
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", registry=registry)


def incident_after_a_submission(system: System) -> str:
    system.forms.submit("ticket", {"customer": "ACME", "category": "damage"}, actor="agent")
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(select(incidents.c.message)).scalars().all()
    return str(message)


def test_a_rules_plugin_action_bug_is_named_as_the_plugins_with_its_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    system = booted(tmp_path, {"rules/posts.yaml": RULES}, KeyError("webhook_key"))
    message = incident_after_a_submission(system)
    assert message.startswith("rule posts.on_create failed (step 1: wecom_post, ")
    assert f"): KeyError: 'webhook_key' (raised in {Path(__file__)}:" in message
    assert message.endswith(": a bug in the plugin acme-docket")
    assert "KeyError: 'webhook_key'" in caplog.text and "Traceback" in caplog.text


def test_a_flow_action_nodes_plugin_action_bug_reads_with_its_type_and_plugin(tmp_path: Path) -> None:
    """It read 'post_it: step 1 (wecom_post) failed: 'webhook_key'': a bare key, nobody's bug."""
    system = booted(tmp_path, {"flows/ticket_flow.yaml": POST_FLOW}, KeyError("webhook_key"))
    message = incident_after_a_submission(system)
    assert message.startswith("post_it: step 1 (wecom_post) failed: KeyError: 'webhook_key' (raised in ")
    assert message.endswith(": a bug in the plugin acme-docket")


def test_an_action_error_keeps_its_plain_reason(tmp_path: Path) -> None:
    system = booted(tmp_path, {"rules/posts.yaml": RULES}, ActionError("the group robot is not set up"))
    message = incident_after_a_submission(system)
    assert message.endswith("): the group robot is not set up")
