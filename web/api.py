"""The JSON API under /api/v1: forms and records, tasks, history, definitions.

Who is calling comes from `request.state.principal` (a session cookie, web.auth, or an API
token, web.tokens); anonymous callers may only read and submit public forms. Every answer is
JSON; errors are `{"error": "...", "fields": {...}}` (fields only for validation problems) with
the fitting status, never a stack trace. A record outside the caller's row-level scope
(forms.access.record_scope) is answered 404, exactly like one that does not exist, so ids
cannot be probed (RELIABILITY 47).

Writes by a signed-in browser session must be same-site JSON (`Content-Type:
application/json`, no cross-site `Origin` or `Sec-Fetch-Site`): a page on another site cannot
send that without a CORS preflight Docket never grants, so cookie-authenticated API calls need
no CSRF token. Calls with an API token carry no ambient credentials and are not checked.

`routes(web)` returns the routes; the application mounts them. Handlers read `web.system` at
call time, so a definitions reload is picked up by the next request.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy import String, and_, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.bundle import validate_bundle
from engine.errors import ConflictError, NotFoundError
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.prepared import INSERT_HISTORY
from engine.storage.tables import flow_instances, history, tasks
from forms.access import can_read, record_scope
from forms.json_schema import record_values_schema
from forms.messages import FieldInvalid
from flows.runtime import is_candidate
from web.auth import principal_of, require_principal
from web.inbox import InboxRow, inbox_rows
from web.json_answer import JSONAnswer
from web.offload import offload
from web.record_list import LATENESS
from web.scope import header, state_value
from web.staff import hidden_fields, latest_instance, may_reopen, may_withdraw

if TYPE_CHECKING:
    from forms.compile import CompiledForm
    from web.app import Web

MAX_JSON_BODY = 1024 * 1024
"""Larger API bodies are refused before they are read into memory."""
MAX_ID = 2**63 - 1
MAX_KEY = 100
"""Idempotency keys longer than this are refused."""
MAX_COMMENT = 5000
MAX_COMMENT_FILES = 10
LIST_PARAMS = frozenset({"limit", "offset", "status", "created_from", "created_to", "q", "sla", "lang"})
"""Query parameters of a record list that are not field filters."""
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


# -- who is calling -------------------------------------------------------------------------------
def require(request: Request) -> Principal:
    """The caller, or 401 when nobody is signed in and no token was sent."""
    return require_principal(request)


def require_admin(request: Request) -> Principal:
    """An administrator (403 for anyone else, 401 for nobody)."""
    principal = require_principal(request)
    if not principal.is_admin:
        raise HTTPException(403, "only administrators may do this")
    return principal


def check_same_site(request: Request) -> None:
    """Refuse a state-changing call riding on a browser session from another site (403)."""
    scope = request.scope  # read raw: this runs on every API write (web.scope)
    if scope["method"] not in UNSAFE or principal_of(request) is None:
        return  # a safe method, or anonymous: no credentials to abuse
    if state_value(scope, "auth") == "token":
        return
    if (header(scope, b"sec-fetch-site") or "").lower() == "cross-site":
        raise HTTPException(403, "cross-site requests may not use a signed-in session")
    origin = header(scope, b"origin")
    if origin and origin != "null":
        own = header(scope, b"host") or ""
        if urlsplit(origin).netloc.lower() != own.lower():
            raise HTTPException(403, "cross-site requests may not use a signed-in session")
    elif origin == "null":
        raise HTTPException(403, "cross-site requests may not use a signed-in session")


# -- request bodies and parameters ----------------------------------------------------------------
async def json_body(request: Request) -> Any:
    """The request's JSON body, bounded in size; 415 unless sent as JSON, 400 if malformed."""
    scope = request.scope
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_JSON_BODY:,} bytes")
    kind = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if kind != "application/json" and not kind.endswith("+json"):
        raise HTTPException(415, "send the body as JSON (Content-Type: application/json)")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_JSON_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_JSON_BODY:,} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON") from None


async def json_object(request: Request) -> dict[str, Any]:
    data = await json_body(request)
    if not isinstance(data, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return data


def int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"'{name}' must be a whole number") from None
    return max(low, min(high, value))


def path_id(request: Request, what: str = "item") -> int:
    """The numeric `{id}` of the path; anything else (or out of range) is simply not found."""
    raw = request.path_params["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise HTTPException(404, f"no such {what}")
    return int(raw)


def bad_request(message: str, fields: Mapping[str, list[str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if fields:
        body["fields"] = dict(fields)
    return JSONAnswer(body, status_code=400)


class BadRequest(Exception):
    """A 400 answer with per-field problems (a filter that does not parse)."""

    def __init__(self, message: str, fields: Mapping[str, list[str]] | None = None):
        super().__init__(message)
        self.message = message
        self.fields = dict(fields or {})


# -- answers ------------------------------------------------------------------------------------
def iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime, date, time)) else value


def text_problems(body: Mapping[str, Any], allowed: set[str], required: tuple[str, ...]) -> dict[str, list[str]]:
    """What is wrong with a body of short texts: unknown keys, missing or non-text values."""
    problems: dict[str, list[str]] = {k: ["unknown key"] for k in sorted(set(body) - allowed)}
    for key in sorted(allowed):
        value = body.get(key)
        if value is None:
            if key in required:
                problems[key] = ["required"]
        elif not isinstance(value, str):
            problems[key] = ["must be text"]
        elif len(value) > MAX_COMMENT:
            problems[key] = [f"at most {MAX_COMMENT} characters"]
        elif key in required and not value.strip():
            problems[key] = ["required"]
    return problems


def record_json(form: "CompiledForm", row: Mapping[str, Any], hidden: Collection[str] = ()) -> dict[str, Any]:
    """A record as the API gives it: system columns, and the field values under `values`
    (without the `hidden` fields: those a step keeps from the caller, web.staff.hidden_fields)."""
    values = form.to_json(row)
    return {"id": int(row["id"]), "form": form.name, "query_no": row["query_no"], "status": row["status"],
            "version": int(row["version"]), "created_at": iso(row["created_at"]),
            "updated_at": iso(row["updated_at"]), "created_by": row["created_by"],
            "values": {k: v for k, v in values.items() if k not in hidden} if hidden else values}


HISTORY_VALUE_KEYS = ("fields", "changes", "values")
"""Keys of a history entry's data that map field names to values (a record's creation, a step's
or an action's changes)."""


def without_hidden(data: Any, hidden: Collection[str]) -> Any:
    """A history entry's data without the values of `hidden` fields."""
    if not hidden or not isinstance(data, Mapping):
        return data
    return {key: ({k: v for k, v in value.items() if k not in hidden}
                  if key in HISTORY_VALUE_KEYS and isinstance(value, Mapping) else value)
            for key, value in data.items()}


def etag(version: int) -> str:
    return f'"{version}"'


def task_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": int(row["id"]), "flow": row["flow"], "node": row["node"], "label": row.get("label", row["node"]),
            "form": row["form"], "record_id": int(row["record_id"]), "status": row["status"],
            "assignee": row.get("assignee"), "created_at": iso(row["created_at"]),
            "version": int(row["version"]), "escalation_level": int(row.get("escalation_level") or 0),
            "due_at": iso(row.get("due_at"))}


def inbox_item(row: InboxRow) -> dict[str, Any]:
    """One task of the caller's inbox: the task, and its record as the inbox page shows it."""
    return {**task_json({"id": row.task_id, "flow": row.flow, "node": row.node, "label": row.node_label,
                         "form": row.form, "record_id": row.record_id, "status": row.status,
                         "assignee": row.holder, "created_at": row.created_at, "version": row.version,
                         "escalation_level": row.escalation, "due_at": row.due_at}),
            "query_no": row.query_no or None, "title": row.title,
            "sla": None if row.sla is None else {"status": row.sla.status, "due_at": iso(row.sla.due_at)},
            "shown": [{"label": label, "text": text} for label, text in row.shown or ()],
            "customer_may_answer": row.customer_may_answer}


def field_json(form: "CompiledForm", name: str, locale: str) -> dict[str, Any]:
    """One field as a client builds its input: type, label, whether required, its options."""
    spec, ftype = form.spec.fields[name], form.types[name]
    item: dict[str, Any] = {"name": name, "type": spec.type, "label": spec.text(locale),
                            "required": spec.required, "staff_only": spec.staff_only,
                            "read_only": bool(ftype.read_only or spec.computed is not None)}
    if spec.choices is not None:
        item["options"] = [{"value": o.value, "label": o.text(locale),
                            "parent": parents[-1] if parents else None}
                           for _, o, parents in spec.choices.walk()]
    return item


def form_json(form: "CompiledForm", locale: str, *, anonymous: bool) -> dict[str, Any]:
    """What a client needs to build a form: fields with labels and options, and the JSON Schema."""
    fields = [field_json(form, name, locale) for name, spec in form.spec.fields.items()
              if name in form.stored and not (anonymous and spec.staff_only)]
    only = form.public_fields if anonymous else None
    return {"name": form.name, "label": form.spec.text(locale), "public": form.spec.public,
            "numbered": bool(form.spec.numbering), "fields": fields,
            "schema": record_values_schema(form, only=only, for_input=True)}


# -- filters of record lists ----------------------------------------------------------------------
def _instant(raw: str, name: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (the whole day in the bundle's zone) or an ISO date-time."""
    text = raw.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time(0), tzinfo=zone)
            return start + timedelta(days=1) if end else start
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"'{name}' must be a date (YYYY-MM-DD) or an ISO 8601 date-time") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def list_filters(web: "Web", request: Request, form: "CompiledForm", table: Any,
                 locale: str, hidden: Collection[str] = ()) -> list[ColumnElement[bool]]:
    """Conditions from a list's query string: field=value (repeat for any of several), status,
    created_from / created_to (dates or date-times), q (text search), sla (at_risk or overdue,
    for a form with SLA clocks). A `hidden` field is neither filtered by nor searched: either
    would tell its value by what is found."""
    params = request.query_params
    zone = ZoneInfo(web.bundle.meta.timezone)
    conditions: list[ColumnElement[bool]] = []
    problems: dict[str, list[str]] = {}
    for name in dict.fromkeys(params.keys()):
        if name in LIST_PARAMS:
            continue
        if name not in form.stored or name in hidden:
            problems.setdefault(name, []).append("no such field to filter by")
            continue
        column = table.c[name]
        if not isinstance(column.type, (String, *_COMPARABLE)):
            problems.setdefault(name, []).append("this field cannot be filtered by value")
            continue
        ftype, spec = form.types[name], form.field(name)
        wanted = []
        for raw in params.getlist(name):
            try:
                wanted.append(ftype.parse(raw, spec))
            except FieldInvalid as exc:
                for key, text in exc.messages(name, locale).items():
                    problems.setdefault(key, []).append(text)
            except (ValueError, TypeError, ArithmeticError):
                problems.setdefault(name, []).append("not a valid value for this field")
        if wanted:
            conditions.append(column.in_(wanted) if len(wanted) > 1 else column == wanted[0])
    if problems:
        raise BadRequest("the list filters have errors", problems)
    statuses = params.getlist("status")
    if statuses:
        conditions.append(table.c.status.in_(statuses))
    if params.get("created_from"):
        conditions.append(table.c.created_at >= _instant(params["created_from"], "created_from", zone, end=False))
    if params.get("created_to"):
        conditions.append(table.c.created_at < _instant(params["created_to"], "created_to", zone, end=True))
    lateness = params.get("sla")
    if lateness is not None:
        sla = web.system.runtime.services.get("sla")
        if sla is None or not sla.covers(form.name):
            raise BadRequest(f"records of '{form.name}' keep no SLA clocks to filter by")
        if lateness not in LATENESS:
            raise BadRequest(f"'sla' is one of: {', '.join(LATENESS)}")
        conditions.append(table.c.id.in_(sla.late_records(form.name, lateness, web.system.runtime.clock.now())))
    q = (params.get("q") or "").strip()
    if q:
        if len(q) > 200:
            raise BadRequest("'q' is at most 200 characters")
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        texts = [table.c.query_no] + [table.c[n] for n in form.stored
                                      if isinstance(table.c[n].type, String) and n not in hidden]
        conditions.append(or_(*(c.ilike(pattern, escape="\\") for c in texts)))
    return conditions


def _comparable() -> tuple[type, ...]:
    from sqlalchemy import BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, Time

    return (BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, Time)


_COMPARABLE = _comparable()


# -- permissions on records and tasks -------------------------------------------------------------
def editable_fields(conn: Connection, web: "Web", form: "CompiledForm", record_id: int,
                    principal: Principal) -> set[str]:
    """The fields `principal` may change on a record they can read: every field for admins and
    holders of one of the form's `editors` roles; the fields of the step they hold otherwise."""
    settable = {n for n in form.stored if not form.types[n].read_only and form.field(n).computed is None}
    if principal.is_admin or any(role in principal.roles for role in form.spec.editors):
        return settable
    if principal.user_id is None:
        return set()
    rows = conn.execute(
        select(tasks.c.node, flow_instances.c.flow).join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
        .where(tasks.c.form == form.name, tasks.c.record_id == record_id, tasks.c.status == "claimed",
               tasks.c.assignee_user == principal.user_id)).all()
    flows = web.system.flows.flows
    out: set[str] = set()
    for node_id, flow_name in rows:
        flow = flows.get(flow_name)
        node = flow.nodes.get(node_id) if flow else None
        if node is not None:
            out.update(n for n in node.options.get("fields", []) if n in settable)
    return out


def may_work_on(task: Mapping[str, Any], principal: Principal) -> bool:
    """True if the task is the principal's, or open (or escalated) to them as a candidate."""
    if principal.user_id is not None and task["assignee_user"] == principal.user_id:
        return True
    if task["status"] != "open" and not task["escalation_level"]:
        return False
    return is_candidate(task, principal)  # by role, name or department, as the pages decide


# -- the routes ------------------------------------------------------------------------------------
def routes(web: "Web") -> list[Route]:
    """The /api/v1 routes (forms, records, tasks, definitions, reports when available)."""

    def locale(request: Request) -> str:
        return web.locale_of(request)

    def forms() -> Any:
        return web.system.forms

    async def list_forms(request: Request) -> Response:
        principal = principal_of(request)
        loc = locale(request)
        items = [{"name": name, "label": form.spec.text(loc), "public": form.spec.public,
                  "href": f"{web.root}/api/v1/forms/{name}"}
                 for name, form in forms().forms.items() if principal is not None or form.spec.public]
        return JSONAnswer({"items": items})

    async def describe_form(request: Request) -> Response:
        form = forms().form(request.path_params["form"])
        principal = principal_of(request)
        if principal is None and not form.spec.public:
            require(request)
        return JSONAnswer(form_json(form, locale(request), anonymous=principal is None))

    async def submit(request: Request) -> Response:
        service = forms()
        form = service.form(request.path_params["form"])  # 404 before reading the body
        principal = principal_of(request)
        if principal is None:
            if not form.spec.public:
                require(request)
            web.limit(request, "api-submit", web.api_submits)
        check_same_site(request)
        data = await json_body(request)
        if not isinstance(data, dict):
            return JSONAnswer({"error": "the body must be a JSON object of field values"}, 400)
        key = header(request.scope, b"idempotency-key")
        if key is not None and not 0 < len(key) <= MAX_KEY:
            raise HTTPException(400, f"Idempotency-Key must be 1 to {MAX_KEY} characters")
        scoped = f"api:{principal.username if principal else '-'}:{key}" if key else None
        result = await offload.run(
            service.submit, form.name, data, actor=principal.username if principal else None,
            locale=locale(request), idempotency_key=scoped, channel="api", anonymous=principal is None)
        body = {"id": result.record_id, "form": result.form, "query_no": result.query_no,
                "created": result.created}
        return JSONAnswer(body, status_code=201 if result.created else 200,
                          headers={"Location": f"/api/v1/forms/{form.name}/records/{result.record_id}"})

    async def list_records(request: Request) -> Response:
        principal = require(request)
        service = forms()
        form = service.form(request.path_params["form"])
        limit = int_param(request, "limit", 50, 1, 500)
        offset = int_param(request, "offset", 0, 0, 10**9)
        table = service.tables[form.name]
        hidden = hidden_fields(web.system.runtime, form.name, principal)
        try:
            conditions = list_filters(web, request, form, table, locale(request), hidden)
        except BadRequest as exc:
            return bad_request(exc.message, exc.fields)
        scope = record_scope(web.system.runtime, form.name, principal, table)
        if scope is not None:
            conditions.append(scope)
        where = and_(*conditions) if conditions else None

        def load() -> tuple[list[dict[str, Any]], int]:
            return (service.list(form.name, limit=limit, offset=offset, where=where),
                    service.count(form.name, where=where))

        rows, total = await offload.run(load)
        return JSONAnswer({"items": [record_json(form, r, hidden) for r in rows], "total": total,
                           "limit": limit, "offset": offset})

    def readable(conn: Connection, form: "CompiledForm", record_id: int, principal: Principal) -> dict[str, Any]:
        if not can_read(conn, web.system.runtime, form.name, record_id, principal):
            raise NotFoundError(f"no {form.name} record {record_id}")
        return forms().read(conn, form.name, record_id)  # type: ignore[no-any-return]

    async def get_record(request: Request) -> Response:
        principal = require(request)
        form = forms().form(request.path_params["form"])
        record_id = path_id(request, "record")

        def load() -> dict[str, Any]:
            with read_transaction(web.system.db) as conn:
                return readable(conn, form, record_id, principal)

        row = await offload.run(load)
        hidden = hidden_fields(web.system.runtime, form.name, principal)
        return JSONAnswer(record_json(form, row, hidden), headers={"ETag": etag(row["version"])})

    async def patch_record(request: Request) -> Response:
        principal = require(request)
        check_same_site(request)
        service = forms()
        form = service.form(request.path_params["form"])
        record_id = path_id(request, "record")
        body = await json_object(request)
        values = body.get("values")
        if not isinstance(values, dict):
            return bad_request("send the changed fields as {\"values\": {field: value, ...}}")
        unknown = set(body) - {"values", "version"}
        if unknown:
            return bad_request(f"unknown key(s): {', '.join(sorted(unknown))}")
        expected = _expected_version(request, body)
        loc = locale(request)

        def change() -> dict[str, Any]:
            with transaction(web.system.db) as conn:
                existing = readable(conn, form, record_id, principal)
                editable = editable_fields(conn, web, form, record_id, principal)
                if not editable:
                    raise HTTPException(403, "you may not change this record")
                if existing["version"] != expected:
                    raise ConflictError(f"the record is at version {existing['version']}, not {expected}: "
                                        "someone changed it; reload it and try again")
                clean = form.validate(values, locale=loc, existing=existing, editable=editable,
                                      ctx=service.eval_context(),
                                      extra_names={"user": {"username": principal.username}})
                diff = service.update_fields(conn, form.name, record_id, form.edited(clean, editable),
                                             actor=principal.username,
                                             expected_version=expected, locale=loc)
                if diff:
                    INSERT_HISTORY.later(conn, dict(
                        instance_id=None, form=form.name, record_id=record_id, kind="record.updated",
                        node=None, actor=principal.username, at=web.system.runtime.clock.now(),
                        data={"changes": diff, "channel": "api"}))
                return service.read(conn, form.name, record_id)  # type: ignore[no-any-return]

        row = await offload.run(change)
        hidden = hidden_fields(web.system.runtime, form.name, principal)
        return JSONAnswer(record_json(form, row, hidden), headers={"ETag": etag(row["version"])})

    async def record_history(request: Request) -> Response:
        principal = require(request)
        form = forms().form(request.path_params["form"])
        record_id = path_id(request, "record")

        def load() -> dict[str, Any]:
            from flows.history import record_timeline

            runtime = web.system.runtime
            with read_transaction(web.system.db) as conn:
                record = readable(conn, form, record_id, principal)
                rows = conn.execute(select(history).where(history.c.form == form.name,
                                                          history.c.record_id == record_id)
                                    .order_by(history.c.id)).mappings().all()
                timeline = record_timeline(conn, form.name, record_id, now=runtime.clock.now(),
                                           calendar=runtime.bundle.meta.calendar,
                                           created_at=record["created_at"])
            hidden = hidden_fields(runtime, form.name, principal)
            entries = [{"id": r["id"], "kind": r["kind"], "node": r["node"], "actor": r["actor"],
                        "at": iso(r["at"]), "data": without_hidden(r["data"], hidden)} for r in rows]
            steps = [{"node": s.node, "instance_id": s.instance_id, "entered_at": iso(s.entered_at),
                      "left_at": iso(s.left_at), "wall_seconds": int(s.wall.total_seconds()),
                      "work_seconds": int(s.work.total_seconds()), "completed_by": s.completed_by,
                      "outcome": s.outcome, "comment": s.comment, "changes": {k: v for k, v in s.changes.items() if k not in hidden}}
                     for s in timeline.steps]
            return {"entries": entries, "timeline": {
                "steps": steps, "current": list(timeline.current), "assignees": list(timeline.assignees),
                "candidates": list(timeline.candidates),
                "age_wall_seconds": int(timeline.age_wall.total_seconds()),
                "age_work_seconds": int(timeline.age_work.total_seconds())}}

        return JSONAnswer(await offload.run(load))

    async def inbox(request: Request) -> Response:
        principal = require(request)
        # The inbox page's rows: the same tasks (within the caller's row-level scope), in the
        # same order (SLA urgency, then age), with what the page shows of each.
        rows = await offload.run(inbox_rows, web, principal, locale(request))
        return JSONAnswer({"items": [inbox_item(row) for row in rows]})

    def task_for(conn: Connection, task_id: int, principal: Principal) -> Mapping[str, Any]:
        """The task row if the principal may work on it; 404 if they may not even see its record."""
        row = conn.execute(select(tasks, flow_instances.c.flow)
                           .join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
                           .where(tasks.c.id == task_id)).mappings().first()
        if row is None or not can_read(conn, web.system.runtime, row["form"], row["record_id"], principal):
            raise NotFoundError(f"no task {task_id}")
        if not may_work_on(row, principal):
            raise HTTPException(403, f"task {task_id} is not yours to work on")
        return row

    def task_answer(task_id: int, loc: str) -> dict[str, Any]:
        """The task as claim and complete answer it, its step named in the caller's language (as
        the inbox names it)."""
        with read_transaction(web.system.db) as conn:
            row = conn.execute(select(tasks, flow_instances.c.flow)
                               .join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
                               .where(tasks.c.id == task_id)).mappings().one()
        flow = web.system.flows.flows.get(row["flow"])
        node = flow.nodes.get(row["node"]) if flow else None
        return task_json({**row, "label": node.text(loc) if node else row["node"],
                          "assignee": None})

    async def claim(request: Request) -> Response:
        principal = require(request)
        check_same_site(request)
        task_id = path_id(request, "task")

        def run() -> dict[str, Any]:
            with read_transaction(web.system.db) as conn:
                task_for(conn, task_id, principal)
            web.system.flows.claim(task_id, principal.username)
            return task_answer(task_id, locale(request))

        return JSONAnswer(await offload.run(run))

    async def complete(request: Request) -> Response:
        principal = require(request)
        check_same_site(request)
        task_id = path_id(request, "task")
        body = await json_object(request)
        unknown = set(body) - {"values", "outcome", "comment", "version", "return_to"}
        if unknown:
            return bad_request(f"unknown key(s): {', '.join(sorted(unknown))}")
        problems: dict[str, list[str]] = {}
        values = body.get("values")
        values = {} if values is None else values
        if not isinstance(values, dict):
            problems["values"] = ["must be an object of field values"]
        for key in ("outcome", "comment", "return_to"):
            if body.get(key) is not None and not isinstance(body[key], str):
                problems[key] = ["must be text"]
        if isinstance(body.get("comment"), str) and len(body["comment"]) > MAX_COMMENT:
            problems["comment"] = [f"at most {MAX_COMMENT} characters"]
        version = body.get("version")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                    or not 0 <= version <= MAX_ID):
            problems["version"] = ["must be the task's version number"]
        if problems:
            return bad_request("the completion has errors", problems)

        def run() -> dict[str, Any]:
            with read_transaction(web.system.db) as conn:
                task_for(conn, task_id, principal)
            web.system.flows.complete(task_id, principal.username, values=values or None,
                                      outcome=body.get("outcome"), comment=body.get("comment"),
                                      expected_version=version, locale=locale(request),
                                      return_to=body.get("return_to"))
            return task_answer(task_id, locale(request))

        return JSONAnswer(await offload.run(run))

    def record_and_flow(form: "CompiledForm", record_id: int,
                        principal: Principal) -> tuple[dict[str, Any], dict[str, Any], Any]:
        """The record (404 if the caller may not read it), its latest flow instance and that
        flow's definition (409 when no flow ever ran on it)."""
        with read_transaction(web.system.db) as conn:
            record = readable(conn, form, record_id, principal)
            instance = latest_instance(conn, form.name, record_id)
        if instance is None:
            raise ConflictError(f"{form.name} {record_id} has no flow")
        return record, instance, web.system.flows.flows.get(instance["flow"])

    def record_now(form: "CompiledForm", record_id: int, principal: Principal) -> Response:
        with read_transaction(web.system.db) as conn:
            row = forms().read(conn, form.name, record_id)
        hidden = hidden_fields(web.system.runtime, form.name, principal)
        return JSONAnswer(record_json(form, row, hidden), headers={"ETag": etag(row["version"])})

    async def record_command(request: Request) -> tuple[Principal, "CompiledForm", int, dict[str, Any]]:
        """Who asks (signed in, same site), the form and record id of the path, and the JSON body
        of a command on one record (comment, withdraw, reopen)."""
        principal = require(request)
        check_same_site(request)
        form = forms().form(request.path_params["form"])
        return principal, form, path_id(request, "record"), await json_object(request)

    async def withdraw_record(request: Request) -> Response:
        principal, form, record_id, body = await record_command(request)
        problems = text_problems(body, {"comment"}, ())
        if problems:
            return bad_request("the withdrawal has errors", problems)

        def run() -> Response:
            record, instance, _flow = record_and_flow(form, record_id, principal)
            if instance["status"] not in ("running", "incident"):
                raise ConflictError(f"{form.name} {record_id} has no running flow to withdraw")
            if not may_withdraw(record, instance["status"], principal):
                raise HTTPException(403, "only the record's submitter or an administrator may withdraw it")
            web.system.flows.withdraw(form.name, record_id, actor=principal.username,
                                      comment=body.get("comment"), override=principal.is_admin)
            return record_now(form, record_id, principal)

        return await offload.run(run)

    async def reopen_record(request: Request) -> Response:
        principal, form, record_id, body = await record_command(request)
        problems = text_problems(body, {"at", "comment"}, ("at", "comment"))
        if problems:
            return bad_request("the reopening has errors", problems)

        def run() -> Response:
            _record, instance, flow = record_and_flow(form, record_id, principal)
            if instance["status"] not in ("completed", "withdrawn"):
                raise ConflictError(f"the flow of {form.name} {record_id} is {instance['status']}, not ended")
            if not may_reopen(flow, instance["status"], principal):
                raise HTTPException(403, "only an administrator or a role the flow's reopen: names may reopen it")
            steps = flow.reopen_steps()
            if body["at"] not in steps:
                return bad_request("the reopening has errors", {"at": [f"one of: {', '.join(steps)}"]})
            web.system.flows.reopen(form.name, record_id, at=body["at"], actor=principal.username,
                                    comment=body["comment"].strip())
            return record_now(form, record_id, principal)

        return await offload.run(run)

    async def comment_record(request: Request) -> Response:
        """A comment and/or files (uploaded first, named by id) on the record's trail at its
        current step, for whoever may read the record."""
        principal, form, record_id, body = await record_command(request)
        problems = text_problems({k: v for k, v in body.items() if k != "attachments"}, {"text"}, ())
        files = body.get("attachments")
        files = [] if files is None else files
        if not isinstance(files, list) or len(files) > MAX_COMMENT_FILES or not all(isinstance(f, str) for f in files):
            problems["attachments"] = [f"a list of at most {MAX_COMMENT_FILES} upload ids"]
        if problems:
            return bad_request("the comment has errors", problems)

        def run() -> dict[str, Any]:
            with read_transaction(web.system.db) as conn:
                readable(conn, form, record_id, principal)
            entry = web.system.flows.comment(form.name, record_id, actor=principal.username,
                                              text=body.get("text") or "", attachments=files, locale=locale(request))
            return {"id": entry}

        return JSONAnswer(await offload.run(run), status_code=201)

    async def validate_definitions(request: Request) -> Response:
        require_admin(request)
        check_same_site(request)
        bundle = web.system.bundle
        checked, diagnostics = await offload.run(validate_bundle, bundle.root, bundle.registry)
        return JSONAnswer({"valid": checked is not None, "running_hash": bundle.hash,
                           "hash": checked.hash if checked is not None else None,
                           "diagnostics": [d.to_json() for d in diagnostics]})

    async def reload_definitions(request: Request) -> Response:
        principal = require_admin(request)
        check_same_site(request)
        from web import reload as reloading

        before = web.system.bundle.hash
        diagnostics = await offload.run(_call_reload, reloading.reload_definitions, web, principal)
        errors = [d for d in diagnostics if getattr(d, "severity", "error") == "error"]
        return JSONAnswer({"reloaded": not errors, "previous_hash": before, "hash": web.system.bundle.hash,
                           "diagnostics": [d.to_json() for d in diagnostics]},
                          status_code=422 if errors else 200)

    found = [
        # Submissions first: the router tries routes in order, ~2 us each, and this is the
        # busiest one. No route before it matches its path, so no match changes.
        Route("/api/v1/forms/{form}/records", submit, methods=["POST"]),
        Route("/api/v1/forms", list_forms, methods=["GET"]),
        Route("/api/v1/forms/{form}", describe_form, methods=["GET"]),
        Route("/api/v1/forms/{form}/records", list_records, methods=["GET"]),
        Route("/api/v1/forms/{form}/records/{id}", get_record, methods=["GET"]),
        Route("/api/v1/forms/{form}/records/{id}", patch_record, methods=["PATCH"]),
        Route("/api/v1/forms/{form}/records/{id}/history", record_history, methods=["GET"]),
        Route("/api/v1/forms/{form}/records/{id}/comments", comment_record, methods=["POST"]),
        Route("/api/v1/forms/{form}/records/{id}/withdraw", withdraw_record, methods=["POST"]),
        Route("/api/v1/forms/{form}/records/{id}/reopen", reopen_record, methods=["POST"]),
        Route("/api/v1/tasks", inbox, methods=["GET"]),
        Route("/api/v1/tasks/{id}/claim", claim, methods=["POST"]),
        Route("/api/v1/tasks/{id}/complete", complete, methods=["POST"]),
        Route("/api/v1/definitions/validate", validate_definitions, methods=["POST"]),
    ]
    if has_reload():
        found.append(Route("/api/v1/definitions/reload", reload_definitions, methods=["POST"]))
    if "reports" in web.system.runtime.services:
        found.extend(report_routes(web))
    return found


def report_routes(web: "Web") -> list[Route]:
    """`/api/v1/reports`: the dashboards' widgets as rows, and the records behind a point, for
    the caller (the report service applies the row-level scope and the dashboards' roles)."""
    from reports.query import ReportRequestError
    from reports.sql import NotTranslatable

    def service() -> Any:
        return web.system.runtime.services["reports"]

    def params(request: Request) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key not in ("lang", "limit", "offset"):
                out.setdefault(key, []).append(value)
        return out

    def opened(request: Request) -> tuple[Principal, Any, Any]:
        principal = require(request)
        reports = service()
        dashboard = reports.dashboards.get(request.path_params["dashboard"])
        widget = dashboard.widgets.get(request.path_params["widget"]) if dashboard is not None else None
        if widget is None:
            raise HTTPException(404, "no such dashboard widget")
        if not reports.may_open(dashboard, principal):
            raise HTTPException(403, "you do not have a role that may open this dashboard")
        return principal, dashboard, widget

    async def index(request: Request) -> Response:
        principal = require(request)
        loc = web.locale_of(request)
        items = [{"dashboard": d.name, "title": d.text(loc),
                  "widgets": [{"name": w.name, "title": w.text(loc), "href": f"{web.root}/api/v1/reports/{d.name}/{w.name}"}
                              for w in d.widgets.values()]}
                 for d in service().visible(principal)]
        return JSONAnswer({"items": items})

    async def rows(request: Request) -> Response:
        principal, dashboard, widget = opened(request)
        try:
            body = await offload.run(service().widget_json, dashboard, widget, params(request), principal,
                                           web.locale_of(request))
        except (ReportRequestError, NotTranslatable) as exc:
            return bad_request(str(exc))
        return JSONAnswer({"dashboard": dashboard.name, "widget": widget.name, "title": body["title"],
                           "columns": body["columns"], "rows": body["rows"], "totals": body["totals"],
                           "truncated": body["truncated"]})

    async def records(request: Request) -> Response:
        principal, dashboard, widget = opened(request)
        limit = int_param(request, "limit", 100, 1, 500)
        offset = int_param(request, "offset", 0, 0, 10**9)
        try:
            total, found = await offload.run(service().drill, dashboard, widget, params(request), principal,
                                                   limit=limit, offset=offset)
        except (ReportRequestError, NotTranslatable) as exc:
            return bad_request(str(exc))
        return JSONAnswer({"total": total, "limit": limit, "offset": offset,
                           "items": [{"id": int(r["id"]), "query_no": r.get("query_no"), "status": r.get("status"),
                                      "created_at": iso(r.get("created_at"))} for r in found]})

    return [Route("/api/v1/reports", index, methods=["GET"]),
            Route("/api/v1/reports/{dashboard}/{widget}", rows, methods=["GET"]),
            Route("/api/v1/reports/{dashboard}/{widget}/records", records, methods=["GET"])]


def has_reload() -> bool:
    """True when web/reload.py (definitions reload) is part of this installation."""
    return importlib.util.find_spec("web.reload") is not None


def _call_reload(reload: Callable[..., Any], web: "Web", principal: Principal) -> list[Any]:
    import inspect

    params = inspect.signature(reload).parameters
    if "actor" in params:
        return list(reload(web, actor=principal.username))
    return list(reload(web))


def _expected_version(request: Request, body: Mapping[str, Any]) -> int:
    """The version the client last read: If-Match ("3" or W/"3") or the body's `version`."""
    header = request.headers.get("if-match")
    if header is not None:
        text = header.strip().removeprefix("W/").strip('"')
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise HTTPException(400, "If-Match must be the ETag of the record, e.g. \"3\"")
        return int(text)
    version = body.get("version")
    if version is None:
        raise HTTPException(428, "send the version you changed (If-Match header or \"version\"), "
                                 "so a concurrent change is not overwritten")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= MAX_ID:
        raise HTTPException(400, "'version' must be the record's version number")
    return version


__all__ = ["check_same_site", "editable_fields", "json_body", "json_object", "may_work_on",
           "principal_of", "record_json", "require", "require_admin", "routes"]
