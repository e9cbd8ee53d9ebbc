"""A small help-desk bundle for rule, decision-table and SLA tests, booted on a ManualClock.

Calendar (Asia/Shanghai): 09:00-12:00 and 13:00-18:00 on weekdays (8 working hours a day);
2026-10-01..07 are holidays and Saturday 2026-10-10 is a swapped working day.
Monday 2026-11-23 09:00 local is 01:00 UTC.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any, Iterator, Mapping

from sqlalchemy import event, select

from engine.bundle import validate_bundle
from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import history, outbox, tasks
from web.system import System, boot, build_registry

SHANGHAI = timezone(timedelta(hours=8))
MONDAY_9AM = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)

BUNDLE = """\
    bundle: desk
    version: "1"
    label: {zh-CN: 服务台, en: Help desk}
    timezone: Asia/Shanghai
    calendar:
      working_hours: ["09:00-12:00", "13:00-18:00"]
      weekend: [saturday, sunday]
      holidays: ["2026-10-01..2026-10-07"]
      workdays: ["2026-10-10"]
    roles:
      agent: {label: {zh-CN: 客服, en: Agent}, reports_to: supervisor}
      supervisor: {label: {zh-CN: 主管, en: Supervisor}, reports_to: manager}
      manager: {label: {zh-CN: 经理, en: Manager}}
      quality: {label: {zh-CN: 质量, en: Quality}}
    departments:
      service: {label: Service}
    demo_users:
      - {username: agent, roles: [agent], department: service, manager: boss}
      - {username: boss, roles: [supervisor], department: service, manager: chief}
      - {username: chief, roles: [manager], department: service}
      - {username: qa, roles: [quality], department: service}
    """

FORM = """\
    form: ticket
    label: {zh-CN: 工单, en: Ticket}
    numbering: T{seq:4}
    fields:
      customer: {type: text, required: true, index: true}
      category:
        type: select
        index: true
        options: [delivery, damage, billing]
      urgency:
        type: select
        options: [urgent, important, normal]
        default: normal
      amount: {type: money, currency: CNY}
      level: {type: integer}
      team: {type: text}
      note: {type: textarea}
      phone: {type: phone}
    """

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin: {type: start, next: accept}
      accept:
        type: task
        assign: {user: agent}
        status: accepted
        next: solve
      solve:
        type: task
        assign: {user: agent}
        status: in_progress
        next: confirm
      confirm:
        type: task
        assign: {user: agent}
        fields: [note]
        status: awaiting_reply
        next: replied
      replied:
        type: decision
        branches:
          - when: note == "more"
            to: solve
          - else: done
      done: {type: end, status: resolved}
    """

SLA = """\
    sla: ticket_sla
    form: ticket
    yellow_at: 20%
    targets:
      response: {label: {zh-CN: 响应, en: Response}, stops: {task.completed: accept}}
      resolution: {label: {zh-CN: 解决, en: Resolution}, stops: flow.ended}
    levels:
      - when: urgency == "urgent"
        response: 1 workhours
        resolution: 1 workdays
      - when: urgency == "important"
        response: 4 workhours
        resolution: 2 workdays
      - response: 1 workdays
        resolution: 2 workdays
    pause: {statuses: [awaiting_reply]}
    escalation:
      when: urgency == "urgent"
      every: 2h
      chain: [supervisor, manager]
    """


def write(root: Path, files: Mapping[str, str | None]) -> Path:
    merged: dict[str, str | None] = {"bundle.yaml": BUNDLE, "forms/ticket.yaml": FORM,
                                     "flows/ticket_flow.yaml": FLOW, **files}
    for rel, text in merged.items():
        if text is None:
            continue
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    return root


def make(tmp_path: Path, files: Mapping[str, str | None] = {}, *,
         start: datetime = MONDAY_9AM, db_url: str | None = None) -> System:
    root = write(tmp_path / "bundle", files)
    clock = ManualClock(start)
    return boot(root, db_url=db_url or f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def errors(tmp_path: Path, files: Mapping[str, str | None]) -> list[tuple[str, int, int, str]]:
    """(file relative to the bundle, line, col, message) of every load error."""
    root = write(tmp_path / "bundle", files)
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    out = []
    for d in diags:
        if d.severity == "error":
            assert d.span is not None, d.message
            rel = Path(d.span.file).resolve().relative_to(root.resolve()).as_posix()
            out.append((rel, d.span.line, d.span.col, d.message))
    return out


def clock(system: System) -> ManualClock:
    return system.runtime.clock  # type: ignore[return-value]


def submit(system: System, **values: Any) -> int:
    data = {"customer": "ACME", "category": "delivery", **values}
    return system.forms.submit("ticket", data, actor="agent").record_id


def advance_to(system: System, when: datetime) -> int:
    """Move the clock to `when` and fire every due timer; returns how many fired."""
    clock(system).set(when)
    timers = system.runtime.services["timers"]
    fired = 0
    while True:
        count = timers.tick()
        fired += count
        if count == 0:
            return fired


def history_of(system: System, record_id: int, kind: str | None = None) -> list[dict[str, Any]]:
    with read_transaction(system.db) as conn:
        query = select(history).where(history.c.form == "ticket", history.c.record_id == record_id)
        if kind:
            query = query.where(history.c.kind == kind)
        return [dict(r) for r in conn.execute(query.order_by(history.c.id)).mappings()]


def messages(system: System) -> list[dict[str, Any]]:
    with read_transaction(system.db) as conn:
        return [dict(r) for r in conn.execute(select(outbox).order_by(outbox.c.id)).mappings()]


def task_at(system: System, record_id: int, node: str) -> int:
    with read_transaction(system.db) as conn:
        return int(conn.execute(select(tasks.c.id).where(
            tasks.c.record_id == record_id, tasks.c.node == node,
            tasks.c.status.in_(("open", "claimed")))).scalar_one())


def complete(system: System, record_id: int, node: str, values: Mapping[str, Any] | None = None) -> None:
    system.flows.complete(task_at(system, record_id, node), "agent", values=dict(values or {}))


def states(system: System, record_id: int) -> dict[str, tuple[str, Any, int]]:
    sla = system.runtime.services["sla"]
    with read_transaction(system.db) as conn:
        return {s.target: (s.status, s.due_at, s.remaining_work_seconds)
                for s in sla.state_of(conn, "ticket", record_id)}


def local(value: datetime) -> datetime:
    return value.astimezone(SHANGHAI)


@contextmanager
def statements(system: System) -> Iterator[list[str]]:
    """Every SQL statement the system sends to SQLite inside the block, as the driver runs it
    (prepared statements on the raw cursor included). The pool starts over on entry and on
    exit, so every connection of the block, and none after it, reports to the list."""
    seen: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(seen.append)

    system.db.dispose()
    event.listen(system.db, "connect", trace)
    try:
        yield seen
    finally:
        event.remove(system.db, "connect", trace)
        system.db.dispose()
