"""A plugin node type that fails while a token enters its node leaves an incident naming the
plugin, and the command that got there (here the submission of the record) still commits:
nothing a customer sent is lost to a plugin's bug (docs/plugins.md, "When a plugin is broken")."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.clock import ManualClock
from engine.expr import Function
from engine.storage.db import read_transaction
from engine.storage.tables import incidents, tasks
from tests.plugins.conftest import BUNDLE
from web.system import System, boot, build_registry

SOURCE = "acme-docket"


class Audit:
    """`random_audit` as a plugin would write it; each test breaks `enter` its own way."""

    name = "random_audit"
    aliases: tuple[str, ...] = ()
    description = "a broken spot check"
    options_schema = {"properties": {"audit": {"type": "string"}, "share": {"type": "number"}}}
    examples: tuple[str, ...] = ()

    def __init__(self, enter: Any):
        self._enter = enter

    def targets(self, node: Any) -> Any:
        yield ("audit",), node.options["audit"]
        yield ("next",), node.next

    def compile(self, node: Any, flow: Any, ctx: Any, doc: Any, path: Any, scope: Any) -> dict[str, Any]:
        return {}

    def enter(self, run: Any) -> None:
        self._enter(run)

    def on_task_completed(self, run: Any, task: Any, outcome: Any) -> None:
        pass


def bundle_with(enter: Any, tmp_path: Path, **methods: Any) -> tuple[Path, Any]:
    """(the test bundle copied to tmp_path, a registry whose `random_audit` is `Audit` with
    `enter` and `methods`, registered by a plugin)."""
    from flows.nodes.base import NodeType

    registry = build_registry(plugins=False)
    registry.node_types.add(type("BrokenAudit", (Audit, NodeType), methods)(enter), source=SOURCE)
    registry.functions.add(Function("mask_phone", lambda phone: phone, 1, 1), source=SOURCE)  # the form uses it
    root = tmp_path / "bundle"
    shutil.copytree(BUNDLE, root)
    return root, registry


def system_with(enter: Any, tmp_path: Path) -> System:
    root, registry = bundle_with(enter, tmp_path)
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock, registry=registry)


def submit(system: System) -> int:
    return system.forms.submit("refund", {"customer": "customer 1", "phone": "13812345678",
                                          "amount": "120.00"}, actor="agent").record_id


def flow_incidents(system: System) -> list[str]:
    with read_transaction(system.db) as conn:
        return [row.message for row in conn.execute(sa.select(incidents.c.message).where(incidents.c.kind == "flow"))]


def open_task_count(system: System) -> int:
    with read_transaction(system.db) as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(tasks)
                                .where(tasks.c.status.in_(("open", "claimed")))).scalar_one())


def test_a_plugin_node_that_raises_leaves_an_incident_naming_the_plugin_and_keeps_the_record(tmp_path: Path) -> None:
    def enter(run: Any) -> None:
        raise KeyError("share")

    system = system_with(enter, tmp_path)
    record_id = submit(system)
    assert system.forms.get("refund", record_id)["customer"] == "customer 1"
    assert flow_incidents(system) == [
        "spot_check: node type 'random_audit' (plugin acme-docket) failed: KeyError: 'share'"]


def test_what_a_failing_plugin_node_wrote_before_it_raised_is_undone(tmp_path: Path) -> None:
    def enter(run: Any) -> None:
        run.create_task({"role": "auditor"})  # then fails: no half-done step is left behind
        raise RuntimeError("lost the audit list")

    system = system_with(enter, tmp_path)
    submit(system)
    assert open_task_count(system) == 0
    assert flow_incidents(system) == [
        "spot_check: node type 'random_audit' (plugin acme-docket) failed: RuntimeError: lost the audit list"]


def test_a_plugin_node_moving_the_token_to_a_node_the_flow_lacks_is_an_incident(tmp_path: Path) -> None:
    def enter(run: Any) -> None:
        run.move_to("nowhere")

    system = system_with(enter, tmp_path)
    submit(system)
    assert flow_incidents(system) == [
        "spot_check: node type 'random_audit' (plugin acme-docket) moved the token to 'nowhere', "
        "not a node of flow 'refund_flow'"]


def test_a_plugin_nodes_incident_when_its_task_is_completed_keeps_the_completion(tmp_path: Path) -> None:
    """run.incident in on_task_completed used to escape complete() as an exception: the whole
    completion rolled back, the person could never finish the task, and no incident was left."""
    def enter(run: Any) -> None:
        run.create_task({"role": "auditor"})

    def on_task_completed(self: Any, run: Any, task: Any, outcome: Any) -> None:
        run.history("audit.filed", {"by": run.actor})   # undone with the failed step
        run.incident("the audit list is gone")

    root, registry = bundle_with(enter, tmp_path, on_task_completed=on_task_completed)
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock, registry=registry)
    record_id = submit(system)
    (task,) = system.flows.open_tasks("refund", record_id)
    system.flows.complete(task["id"], None)
    assert open_task_count(system) == 0
    assert flow_incidents(system) == ["spot_check: the audit list is gone"]
    from engine.storage.tables import history

    with read_transaction(system.db) as conn:
        kinds = set(conn.execute(sa.select(history.c.kind).where(history.c.record_id == record_id)).scalars())
    assert {"task.completed", "incident"} <= kinds and "audit.filed" not in kinds


# -- targets(): the node's edges, read by the graph checks at load time -----------------------

def load_errors(targets: Any, tmp_path: Path) -> list[str]:
    """The error lines of the test bundle with `random_audit` a plugin type whose `targets` is
    `targets`."""
    from engine.bundle import validate_bundle
    from engine.errors import format_diagnostic

    root, registry = bundle_with(lambda run: None, tmp_path, targets=lambda self, node: targets(node))
    _, diagnostics = validate_bundle(root, registry)
    return [format_diagnostic(d).replace(str(root) + "/", "") for d in diagnostics if d.severity == "error"]


def test_a_plugin_node_type_whose_targets_leave_out_next_is_named_at_the_node_not_as_unreachable_nodes(
        tmp_path: Path) -> None:
    found = load_errors(lambda node: iter([(("audit",), node.options["audit"])]), tmp_path)
    assert len(found) == 1, found
    assert found[0].startswith("flows/refund_flow.yaml:9:11: error: node type 'random_audit' (from acme-docket) "
                               "targets() leaves out this node's 'next'")
    assert "hint: a bug in the plugin acme-docket, not in this file" in found[0]


def test_a_plugin_node_type_whose_targets_raise_is_named_at_the_node(tmp_path: Path) -> None:
    def targets(node: Any) -> Any:
        raise KeyError("audit")

    (found,) = load_errors(targets, tmp_path)
    assert found.startswith("flows/refund_flow.yaml:9:11: error: node type 'random_audit' (from acme-docket) "
                            "targets() raised KeyError: 'audit'")
