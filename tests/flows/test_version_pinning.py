"""A running instance keeps the flow definition it started on after a new version is deployed."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from engine.clock import ManualClock
from tests.engine.bundle_kit import MINI, write_bundle
from web.system import System, boot

V2_FLOW = MINI["flows/ticket_flow.yaml"].replace("next: handle", "next: work").replace(
    "          handle:\n", "          work:\n")


def start(root: Path, db: Path, files: dict[str, str]) -> System:
    write_bundle(root, files)
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{db}", clock=clock)


def test_an_instance_finishes_on_the_version_it_started_on(tmp_path: Path) -> None:
    db = tmp_path / "docket.db"
    v1 = start(tmp_path / "v1", db, {})
    old = v1.forms.submit("ticket", {"title": "printer"}).record_id
    (old_task,) = v1.flows.open_tasks("ticket", old)
    assert old_task["node"] == "handle"

    v2 = start(tmp_path / "v2", db, {"flows/ticket_flow.yaml": V2_FLOW})
    assert v2.bundle.hash != v1.bundle.hash and "handle" not in v2.bundle.get("flow", "ticket_flow").nodes
    v2.flows.complete(old_task["id"], "agent", values={"urgency": "low"})
    (instance,) = v2.flows.instances("ticket", old)
    assert (instance["status"], instance["bundle_hash"]) == ("completed", v1.bundle.hash)


def test_new_records_start_on_the_new_version(tmp_path: Path) -> None:
    db = tmp_path / "docket.db"
    start(tmp_path / "v1", db, {})
    v2 = start(tmp_path / "v2", db, {"flows/ticket_flow.yaml": V2_FLOW})
    new = v2.forms.submit("ticket", {"title": "scanner"}).record_id
    (task,) = v2.flows.open_tasks("ticket", new)
    assert task["node"] == "work"
