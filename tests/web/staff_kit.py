"""A small help-desk bundle of our own for the staff page tests (inbox, records, definitions),
so they do not change whenever the postal flow does; and helpers to sign in and post forms.

Flow `ticket_flow`: triage (a task for the *service* department, editing urgency and area) ->
route (decision) -> approve (an approval by a manager: approve / reject / return to triage,
only for high urgency) -> done; low urgency goes straight to `solve` (a task for agents) -> done.

People: `ann` and `bob` (agents of *service*), `nils` (agent of *north*, another department),
`max` (manager: sees every record), `root` (admin), `carl` (clerk: sees only what he is part of).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any

from starlette.testclient import TestClient

from engine.clock import ManualClock
from web.app import create_app
from web.auth import SESSION_COOKIE, issue_session
from web.system import System, boot

START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # Monday 10:00 in Shanghai

FILES: dict[str, str] = {
    "bundle.yaml": """\
        bundle: helpdesk
        version: "1"
        label: {zh-CN: 服务台, en: Help desk}
        locales: [zh-CN, en]
        default_locale: en
        timezone: Asia/Shanghai
        calendar:
          working_hours: ["09:00-12:00", "13:00-18:00"]
          weekend: [saturday, sunday]
        roles:
          agent: {label: {zh-CN: 客服, en: Agent}, sees: department}
          manager: {label: {zh-CN: 经理, en: Manager}, sees: all}
          clerk: {label: {zh-CN: 文员, en: Clerk}}
          admin: {label: {zh-CN: 管理员, en: Admin}, sees: all, admin: true}
        departments:
          service: {label: {zh-CN: 服务部, en: Service}}
          north: {label: {zh-CN: 北区, en: North}}
        demo_users:
          - {username: ann, name: Ann, roles: [agent], department: service}
          - {username: bob, name: Bob, roles: [agent], department: service}
          - {username: nils, name: Nils, roles: [agent], department: north}
          - {username: max, name: Max, roles: [manager], department: service}
          - {username: carl, name: Carl, roles: [clerk], department: service}
          - {username: root, name: Root, roles: [admin]}
        """,
    "lists/urgency.yaml": """\
        list: urgency
        items:
          - {value: low, label: {zh-CN: 低, en: Low}}
          - {value: high, label: {zh-CN: 高, en: High}}
        """,
    "lists/area.yaml": """\
        list: area
        items:
          - value: hardware
            label: {zh-CN: 硬件, en: Hardware}
            children:
              - {value: printer, label: {zh-CN: 打印机, en: Printer}}
              - {value: laptop, label: {zh-CN: 笔记本, en: Laptop}}
          - {value: software, label: {zh-CN: 软件, en: Software}}
        """,
    "lists/ticket_status.yaml": """\
        list: ticket_status
        items:
          - {value: new, label: {zh-CN: 新建, en: New}}
          - {value: triaged, label: {zh-CN: 已分拣, en: Triaged}}
          - {value: done, label: {zh-CN: 已完成, en: Done}}
        """,
    "forms/ticket.yaml": """\
        form: ticket
        label: {zh-CN: 工单, en: Ticket}
        numbering: HD{seq:4}
        title: subject
        list: [subject, urgency, area]
        lookup: {verify: phone, digits: 4, statuses: ticket_status}
        fields:
          subject:
            type: text
            label: {zh-CN: 主题, en: Subject}
            required: true
            max_length: 200
          phone:
            type: text
            label: {zh-CN: 电话, en: Phone}
          details:
            type: textarea
            label: {zh-CN: 详情, en: Details}
          urgency:
            type: select
            label: {zh-CN: 紧急程度, en: Urgency}
            options: urgency
            staff_only: true
            index: true
          area:
            type: cascade
            label: {zh-CN: 领域, en: Area}
            options: area
            leaf_only: false
            index: true
          internal_note:
            type: textarea
            label: {zh-CN: 内部备注, en: Internal note}
            staff_only: true
          answer:
            type: textarea
            label: {zh-CN: 答复, en: Answer}
          photo:
            type: image
            label: {zh-CN: 照片, en: Photo}
            max_files: 2
        """,
    "flows/ticket_flow.yaml": """\
        flow: ticket_flow
        form: ticket
        label: {zh-CN: 工单处理, en: Ticket handling}
        start: begin
        nodes:
          begin:
            type: start
            next: triage
          triage:
            type: task
            label: {zh-CN: 分拣, en: Triage}
            status: triaged
            assign: {department: service}
            fields: [urgency, area, internal_note]
            next: route
          route:
            type: decision
            label: {zh-CN: 分派, en: Route}
            branches:
              - when: urgency == "high"
                label: {zh-CN: 紧急, en: urgent}
                to: approve
              - else: solve
          approve:
            type: approval
            label: {zh-CN: 经理审批, en: Manager approval}
            assign: {role: manager}
            approve: solve
            reject: rejected
            return_to: [triage]
          solve:
            type: task
            label: {zh-CN: 解决, en: Solve}
            assign: {role: agent}
            fields: [answer]
            next: done
          done:
            type: end
            outcome: solved
            status: done
          rejected:
            type: end
            outcome: rejected
            status: done
        """,
}


def write_bundle(root: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in {**FILES, **(files or {})}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dedent(text), encoding="utf-8")
    return root


def boot_helpdesk(tmp_path: Path, clock: ManualClock | None = None) -> System:
    root = write_bundle(tmp_path / "bundle")
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock or ManualClock(START))


def client_for(system: System, username: str | None = None) -> TestClient:
    """A test client, signed in as `username` (a real session) when given."""
    app = create_app(system, secret="staff-test-secret")
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    if username is not None:
        client.cookies.set(SESSION_COOKIE, issue_session(app.state.web, username))
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def submit(system: System, actor: str | None = "ann", **values: Any) -> int:
    """A ticket created through the form engine (its flow starts at triage); returns its id."""
    data = {"subject": "Printer jams", "phone": "13800001234", **values}
    return system.forms.submit("ticket", data, actor=actor, channel="test").record_id


def png_bytes() -> bytes:
    """A small, real PNG image (a QR code drawn by segno)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make("docket").save(out, kind="png", scale=2)
    return out.getvalue()


def attach_photo(system: System, actor: str = "ann") -> str:
    """Upload a PNG for the ticket's photo field; returns the pending attachment id."""
    import io

    service = system.runtime.services["attachments"]
    stored = service.upload(io.BytesIO(png_bytes()), "tray.png", "image/png", actor=actor,
                            limits=service.limits_for("ticket", "photo"))
    return str(stored["id"])


def open_task(system: System, record_id: int) -> dict[str, Any]:
    tasks = system.flows.open_tasks("ticket", record_id)
    assert len(tasks) == 1, tasks
    return tasks[0]


def post(client: TestClient, url: str, data: dict[str, Any] | None = None, *, page: str | None = None) -> Any:
    """POST a form with the CSRF token of `page` (default: the inbox page)."""
    html = client.get(page or "/inbox").text
    return client.post(url, data={**(data or {}), "csrf_token": csrf_of(html)})
