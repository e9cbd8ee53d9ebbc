"""The task inbox (待办): a signed-in user's open tasks, most urgent first, with claim and release.

Rows are the user's own tasks plus those offered to one of their roles, to them by name or to
their department, limited to records they may see (forms.access.record_scope). With the rules
engine's `sla` service present, each row carries its record's worst SLA state as a coloured
chip and the list sorts by it (missed, red, yellow, on time), then by how long the task has
waited; without it, by waiting time alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.errors import ConflictError
from engine.identity import Principal
from engine.storage.db import read_transaction
from engine.storage.tables import flow_instances, history, tasks, users
from engine.types import clip
from forms.access import _json_has, can_read, record_scope
from web import auth
from web.flow_diagram import node_text
from web.forms_body import read_form
from web.offload import offload
from web.record_list import overdue_counts
from web.record_view import SentBack, sent_back_to
from web.staff import (SlaChip, display_names, duration_text, field_text, hidden_fields, holds, inbox_condition, local_time,
                       may_claim, latest_instance, names_for, safe_next, scoped_ids, sla_states, worst_sla)

if TYPE_CHECKING:
    from web.app import Web

PAGE_SIZE = 50
MAX_ROWS = 5000
"""Open tasks read per inbox view; a user with more has a staffing problem, not a paging one."""
NOTICES = ("claimed", "released", "conflict", "completed", "not_yours")
"""Messages a redirect may ask the page to show (by key: no text travels in the URL)."""


@dataclass
class InboxRow:
    """One task as the inbox shows it."""

    task_id: int
    version: int
    flow: str
    node: str
    node_label: str
    form: str
    form_title: str
    record_id: int
    query_no: str
    title: str
    mine: bool
    status: str
    """open (anyone offered it may claim it) or claimed (`holder` has it)."""
    holder: str | None
    """The holder's user name (the API's `assignee`)."""
    created_at: datetime
    waited: timedelta
    escalation: int
    sla: SlaChip | None = None
    customer_may_answer: bool = False
    """The customer may answer this step on the progress lookup (a task with `customer:`)."""
    holder_name: str | None = None
    """The holder as people read it (their display name)."""
    shown: list[tuple[str, str]] | None = None
    """(label, text) of the first filled-in fields the step's `show:` names: what the task is
    about at a glance (the amount to approve), under the title."""
    due_at: datetime | None = None
    """When the task is due, as its step's `due:` (or `timeout:`) set it; None: no due time.
    The step's own deadline, beside the record's SLA chip."""
    step_overdue: bool = False
    """Past `due_at` now: shown in red."""

    @property
    def url(self) -> str:
        return f"/records/{self.form}/{self.record_id}"


@dataclass
class CopiedRow:
    """A running record a task was copied (抄送) to the user for: what the inbox lists."""

    url: str
    query_no: str
    title: str
    step: str
    at: datetime


COPIED_SHOWN = 10
"""The newest copies the inbox lists (the records stay readable from the record list)."""


def copied_rows(web: "Web", principal: Principal, locale: str) -> list[CopiedRow]:
    """The records whose tasks were copied to the principal and whose flow still runs, newest
    copy first, at most COPIED_SHOWN (read through the partial index of copies, migration 0009)."""
    system = web.system
    out: list[CopiedRow] = []
    seen: set[tuple[str, int]] = set()
    hidden: dict[str, set[str]] = {}  # per form, looked up once
    with read_transaction(system.db) as conn:
        copies = conn.execute(
            select(history.c.form, history.c.record_id, history.c.node, history.c.at)
            .where(history.c.kind == "task.copied", _json_has(history.c.data, principal.username))
            .order_by(history.c.id.desc()).limit(COPIED_SHOWN * 5)).mappings().all()
        for copy in copies:
            key = (copy["form"], int(copy["record_id"]))
            if key in seen or len(out) >= COPIED_SHOWN or copy["form"] not in system.forms.forms:
                continue
            seen.add(key)
            instance = latest_instance(conn, *key)
            if instance is None or instance["status"] != "running" or not can_read(conn, system.runtime, *key, principal):
                continue
            form = system.forms.form(copy["form"])
            record = system.forms.read(conn, *key)
            title_field = form.spec.title_field
            if title_field and form.name not in hidden:
                hidden[form.name] = hidden_fields(system.runtime, form.name, principal)
            title = (form.display(title_field, record.get(title_field), locale)
                     if title_field and title_field not in hidden[form.name] else "")
            flow = system.flows.flows.get(instance["flow"])
            node = flow.nodes.get(copy["node"]) if flow and copy["node"] else None
            out.append(CopiedRow(url=f"/records/{key[0]}/{key[1]}", query_no=record["query_no"] or f"#{key[1]}",
                                 title=clip(title, 60), step=node_text(node, locale) if node else "", at=copy["at"]))
    return out


def sent_back_of(web: "Web", rows: list[InboxRow]) -> dict[int, SentBack]:
    """Task id -> the rejection or return that brought its record back to its step, for `rows`
    (one page): the agent saw the returned compensation proposal as any other new task. One
    query per form, through the history's (form, record_id) index."""
    by_form: dict[str, set[int]] = {}
    for row in rows:
        by_form.setdefault(row.form, set()).add(row.record_id)
    out: dict[int, SentBack] = {}
    with read_transaction(web.system.db) as conn:
        names = display_names(conn)
        for form, ids in by_form.items():
            entries: dict[int, list[Any]] = {}
            for entry in conn.execute(
                    select(history.c.record_id, history.c.kind, history.c.node, history.c.actor, history.c.data)
                    .where(history.c.form == form, history.c.record_id.in_(sorted(ids)),
                           history.c.kind.in_(("task.completed", "flow.entered")))
                    .order_by(history.c.id)).mappings():
                entries.setdefault(int(entry["record_id"]), []).append(entry)
            returns = {record_id: sent_back_to(found, names) for record_id, found in entries.items()}
            for row in rows:
                back = returns.get(row.record_id, {}).get(row.node) if row.form == form else None
                if back is not None:
                    out[row.task_id] = back
    return out


def inbox_rows(web: "Web", principal: Principal, locale: str) -> list[InboxRow]:
    """Every open task of the principal's inbox, sorted: SLA urgency (when known), then age.

    One query per form joins the tasks to their records, with the row-level scope in the same
    WHERE, so a task on a record the user may not see never leaves the database.
    """
    system = web.system
    runtime = system.runtime
    now = runtime.clock.now()
    holder = users.alias("holder")
    # An alias: the row-level scope's own EXISTS over dk_tasks must not correlate with it.
    task = tasks.alias("task")
    labels: dict[tuple[str, str], str] = {}
    customer_steps: set[tuple[str, str]] = set()
    out: list[InboxRow] = []
    with read_transaction(system.db) as conn:
        for form_name, form in system.forms.forms.items():
            table = system.forms.tables[form_name]
            title_field = form.spec.title_field if form.spec.title_field and form.spec.title_field in table.c else None
            title_column = table.c[title_field] if title_field else table.c.query_no
            shown = _shown_fields(system, form_name, form, hidden_fields(runtime, form_name, principal))
            query = (select(task.c.id, task.c.version, task.c.node, task.c.record_id,
                            task.c.assignee_user, task.c.status, task.c.created_at, task.c.escalation_level,
                            flow_instances.c.flow, holder.c.username, table.c.query_no, title_column,
                            holder.c.display_name, task.c.due_at,
                            *(table.c[name] for name in sorted({n for names in shown.values() for n in names})))
                     .select_from(task.join(flow_instances, flow_instances.c.id == task.c.instance_id)
                                  .join(table, table.c.id == task.c.record_id)
                                  .outerjoin(holder, holder.c.id == task.c.assignee_user))
                     .where(task.c.form == form_name, inbox_condition(principal, task))
                     .order_by(task.c.created_at, task.c.id).limit(MAX_ROWS))
            scope = record_scope(runtime, form_name, principal, table)
            if scope is not None:
                query = query.where(scope)
            rows = conn.execute(query).all()
            if not rows:
                continue
            form_title = form.spec.text(locale)
            # A `user` field the steps show reads as the person's name, as on the record page.
            names = names_for(conn, form, {n for fields in shown.values() for n in fields})
            chips = {int(k): worst_sla(v) for k, v in
                     sla_states(runtime, conn, form_name, sorted({int(r[3]) for r in rows})).items()}
            for row in rows:
                (task_id, version, node_id, record_id, assignee, status, created_at, level, flow_name,
                 holder_name, query_no, title, holder_display, due_at) = row[:14]
                key = (flow_name, node_id)
                if key not in labels:
                    flow = system.flows.flows.get(flow_name)
                    node = flow.nodes.get(node_id) if flow else None
                    labels[key] = node_text(node, locale) if node else node_id
                    if node is not None and node.options.get("customer") is not None:
                        customer_steps.add(key)
                out.append(InboxRow(
                    task_id=int(task_id), version=int(version), flow=flow_name, node=node_id,
                    node_label=labels[key], form=form_name, form_title=form_title,
                    record_id=int(record_id), query_no=query_no or "",
                    title=form.display(title_field, title, locale) if title_field and title is not None else "",
                    mine=principal.user_id is not None and assignee == principal.user_id,
                    status=status, holder=holder_name, holder_name=holder_display or holder_name,
                    created_at=created_at,
                    waited=max(now - created_at, timedelta(0)), escalation=int(level or 0),
                    sla=chips.get(int(record_id)), customer_may_answer=key in customer_steps,
                    shown=_shown_texts(form, shown.get(key, ()), row._mapping, table, locale, names),
                    due_at=due_at, step_overdue=due_at is not None and due_at < now))
    out.sort(key=_urgency)
    return out


SHOWN_IN_INBOX = 2
"""Filled-in fields of a step's `show:` the inbox puts under a task's title (the page shows all)."""


def _shown_fields(system: Any, form_name: str, form: Any, hidden: set[str]) -> dict[tuple[str, str], list[str]]:
    """(flow, node) -> the stored, visible fields its `show:` names (no files), for `form_name`'s flows."""
    out: dict[tuple[str, str], list[str]] = {}
    for flow in system.flows.flows.values():
        if flow.form != form_name:
            continue
        for node_id, node in flow.nodes.items():
            names = [n for n in node.options.get("show", ()) if n in form.stored and n not in hidden
                     and not getattr(form.types[n], "holds_attachments", False)]
            if names:
                out[(flow.name, node_id)] = names
    return out


def _shown_texts(form: Any, fields: Any, row: Any, table: Any, locale: str,
                 people: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, text) of the first `SHOWN_IN_INBOX` of `fields` that hold something (a user by
    their name from `people`)."""
    out: list[tuple[str, str]] = []
    for name in fields:
        text = field_text(form, name, form.types[name].from_db(row[table.c[name]], form.field(name)), locale, people)
        if text:
            out.append((form.spec.fields[name].text(locale), _short(text)))
        if len(out) == SHOWN_IN_INBOX:
            break
    return out


def _short(text: str, limit: int = 40) -> str:
    """One line of at most `limit` characters (a basis written as a paragraph is cut with …)."""
    return clip(" ".join(text.split()), limit)


def _urgency(row: InboxRow) -> tuple[Any, ...]:
    from web.staff import SLA_ORDER

    if row.sla is None:
        return (9, 0.0, row.created_at, row.task_id)
    remaining = row.sla.remaining_work_seconds
    return (SLA_ORDER.get(row.sla.status, 9), remaining if remaining is not None else 1e18,
            row.created_at, row.task_id)


def filter_rows(rows: list[InboxRow], *, node: str = "", status: str = "", text: str = "") -> list[InboxRow]:
    """Rows at `node` ("flow:node" or a node id), `status` mine/claimable, matching `text` in
    the query number or the record's title."""
    out = rows
    if node:
        out = [r for r in out if node in (r.node, f"{r.flow}:{r.node}")]
    if status == "mine":
        out = [r for r in out if r.mine]
    elif status == "claimable":
        out = [r for r in out if not r.mine]
    needle = text.strip().casefold()
    if needle:
        out = [r for r in out if needle in r.query_no.casefold() or needle in r.title.casefold()]
    return out


def node_counts(rows: list[InboxRow]) -> list[dict[str, Any]]:
    """How many tasks wait at each node, in order of first appearance."""
    counts: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r.flow}:{r.node}"
        entry = counts.setdefault(key, {"key": key, "label": r.node_label, "count": 0, "red": 0})
        entry["count"] += 1
        if r.sla is not None and r.sla.colour == "red":
            entry["red"] += 1
    return list(counts.values())


def routes(web: "Web") -> list[Route]:
    """The inbox page and the claim / release commands."""

    async def inbox(request: Request) -> Response:
        principal = auth.require_principal(request)
        locale = web.locale_of(request)
        params = request.query_params
        node, status, text = params.get("node", ""), params.get("status", ""), params.get("q", "")[:100]
        rows = await offload.run(inbox_rows, web, principal, locale)
        copied = await offload.run(copied_rows, web, principal, locale)
        overdue = await offload.run(overdue_counts, web, principal)
        shown = filter_rows(rows, node=node, status=status, text=text)
        page = _page_number(params.get("page"))
        pages = max((len(shown) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
        page = min(page, pages)
        zone = web.bundle.meta.timezone
        notice = params.get("notice")
        filters = {k: v for k, v in (("node", node), ("status", status), ("q", text)) if v}
        rows_shown = shown[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
        sent_back = await offload.run(sent_back_of, web, rows_shown)
        return web.page(
            request, "inbox.html", rows=rows_shown, sent_back=sent_back,
            total=len(rows), matching=len(shown), counts=node_counts(rows), node=node, shown_status=status,
            q=text, page=page, pages=pages, has_sla="sla" in web.system.runtime.services,
            notice=notice if notice in NOTICES else None, here=str(request.url.path) + _query(filters),
            page_url=lambda n: "/inbox" + _query({**filters, "page": str(n)}),
            when=lambda at: local_time(at, zone), waited=lambda d: duration_text(d, locale), copied=copied,
            overdue=[(web.system.forms.form(name).spec.text(locale), url, n) for name, url, n in overdue])

    async def command(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = await read_form(request, max_fields=10)
        auth.check_csrf(request, form)
        task_id = _task_id(request)
        action = request.path_params["action"]
        task = await offload.run(_visible_task, web, task_id, principal)
        back = safe_next(form.get("next"), f"/records/{task['form']}/{task['record_id']}")
        try:
            if action == "claim":
                if not may_claim(task, principal) and not holds(task, principal):
                    return _redirect(back, "conflict" if task["status"] == "claimed" else "not_yours")
                await offload.run(web.system.flows.claim, task_id, principal.username)
            elif action == "release":
                if not holds(task, principal):
                    return _redirect(back, "not_yours")
                await offload.run(web.system.flows.release, task_id, principal.username)
            else:
                raise HTTPException(404, "no such task command")
        except ConflictError:
            return _redirect(back, "conflict")
        return _redirect(back, "claimed" if action == "claim" else "released")

    return [
        Route("/inbox", inbox, methods=["GET"]),
        Route("/tasks/{task_id}/{action}", command, methods=["POST"]),
    ]


def _visible_task(web: "Web", task_id: int, principal: Principal) -> dict[str, Any]:
    """The task, if its record is one the principal may see; 404 otherwise (never 403: the
    answer must not tell which task ids exist)."""
    with read_transaction(web.system.db) as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id)).mappings().first()
        if row is None or row["form"] not in web.system.forms.forms or not scoped_ids(
                web.system.runtime, conn, row["form"], principal, [row["record_id"]]):
            raise HTTPException(404, "no such task")
        return dict(row)


def _task_id(request: Request) -> int:
    raw = request.path_params["task_id"]
    if not (str(raw).isascii() and str(raw).isdigit()) or len(str(raw)) > 12:
        raise HTTPException(404, "no such task")
    return int(raw)


def _page_number(raw: str | None) -> int:
    return int(raw) if raw and raw.isascii() and raw.isdigit() and 0 < len(raw) < 7 and int(raw) > 0 else 1


def _query(params: dict[str, str]) -> str:
    return "?" + urlencode(params) if params else ""


def _redirect(target: str, notice: str) -> RedirectResponse:
    """303 to `target` (a local path) with `notice` set, the fragment kept at the end."""
    path, _, fragment = target.partition("#")
    base, _, query = path.partition("?")
    params = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "notice"]
    params.append(("notice", notice))
    return RedirectResponse(f"{base}?{urlencode(params)}" + (f"#{fragment}" if fragment else ""),
                            status_code=303)


__all__ = ["InboxRow", "filter_rows", "inbox_rows", "node_counts", "routes"]
