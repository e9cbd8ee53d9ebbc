"""A small bundle with people, managers and a `ticket` form, for the flow tests.

`make(tmp_path, flow_yaml)` boots it with a ManualClock; `Walk` completes tasks by node name.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from engine.clock import ManualClock
from tests.engine.bundle_kit import write_bundle
from web.system import System, boot

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai

BUNDLE = """\
    bundle: kit
    version: "1"
    label: Flow kit
    timezone: Asia/Shanghai
    calendar:
      working_hours: ["09:00-12:00", "13:30-18:00"]
      weekend: [saturday, sunday]
    roles:
      agent: {label: Agent}
      manager: {label: Manager}
      committee: {label: Committee}
      finance: {label: Finance}
      account_manager: {label: Account manager}
    departments:
      service: {label: Service}
      ops: {label: Operations}
      fin: {label: Finance}
    demo_users:
      - {username: ann, roles: [agent], department: service, manager: max}
      - {username: bob, roles: [agent], department: service, manager: max}
      - {username: max, roles: [manager], department: service, manager: queen}
      - {username: queen, roles: [committee], department: service}
      - {username: fin1, roles: [finance], department: fin, manager: max}
      - {username: acct, roles: [account_manager], department: ops}
    """

FORM = """\
    form: ticket
    label: Ticket
    numbering: T{seq:4}
    fields:
      title:
        type: text
        required: true
      urgency:
        type: select
        options: urgency
      amount:
        type: money
      owner:
        type: text
      note:
        type: textarea
      target_id:
        type: integer
    """


def make(tmp_path: Path, flow: str, files: Mapping[str, str | None] | None = None,
         clock: ManualClock | None = None, name: str = "bundle", db_url: str | None = None) -> System:
    root = write_bundle(tmp_path / name, {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                           "flows/ticket_flow.yaml": flow, **(files or {})})
    return boot(root, db_url=db_url or f"sqlite:///{tmp_path / 'docket.db'}", clock=clock or ManualClock(NOW))


def submit(system: System, actor: str = "ann", **values: Any) -> int:
    return system.forms.submit("ticket", {"title": "printer", **values}, actor=actor).record_id


def open_tasks(system: System, record_id: int, form: str = "ticket") -> list[dict[str, Any]]:
    return system.flows.open_tasks(form, record_id)


def task_at(system: System, record_id: int, node: str, form: str = "ticket") -> dict[str, Any]:
    found = [t for t in open_tasks(system, record_id, form) if t["node"] == node]
    assert found, f"no open task at {node}: {[t['node'] for t in open_tasks(system, record_id, form)]}"
    return found[0]


def instance(system: System, record_id: int, form: str = "ticket") -> dict[str, Any]:
    return system.flows.instances(form, record_id)[-1]


def history_of(system: System, record_id: int, kind: str, form: str = "ticket") -> list[dict[str, Any]]:
    return [h for h in system.forms.history(form, record_id) if h["kind"] == kind]
