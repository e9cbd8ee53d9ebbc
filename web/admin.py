"""Admin pages: users, roles, departments, definitions reload, incidents and outbox, audit log.

Only principals whose role has `admin: true` in bundle.yaml see them (403 for others, sign-in
for anonymous visitors). Every change to a user is written to the audit log in the same
transaction as the change. Roles and departments are defined in the bundle, so their pages are
read-only lists with their members.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.errors import ConflictError, NotFoundError, format_diagnostic
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import audit_log, flow_instances, tasks, user_roles, users
from engine.types import label_text
from engine.vitals import Vitals, read_vitals
from web.auth import audit, end_sessions_of, hash_password, password_problems, require_admin
from web.offload import offload
from web.ratelimit import client_address
from flows.version_move import on_earlier_versions
from web.reload import check_scenarios, has_errors, reload_definitions
from forms.access import _json_has
from web.flow_diagram import node_label
from web.i18n import ui
from web.staff import duration_text, people_with

if TYPE_CHECKING:
    from web.app import Web

USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,149}")
AUDIT_PAGE = 100
SECTIONS = ("users", "roles", "departments", "reload", "incidents", "audit_log", "tokens")
"""The administration pages' tabs (the API tokens page is web/tokens.py's)."""


def _roles_of(conn: Connection) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for user_id, role in conn.execute(select(user_roles.c.user_id, user_roles.c.role).order_by(user_roles.c.role)):
        found.setdefault(int(user_id), []).append(role)
    return found


def _user_rows(conn: Connection) -> list[dict[str, Any]]:
    roles = _roles_of(conn)
    rows = conn.execute(select(users).order_by(users.c.username)).mappings().all()
    return [{**dict(r), "roles": roles.get(int(r["id"]), []), "has_password": bool(r["password_hash"])}
            for r in rows]


def routes(web: "Web") -> list[Route]:
    """The /admin pages."""

    def meta():  # type: ignore[no-untyped-def]
        return web.system.bundle.meta

    def lang(request: Request) -> str:
        return web.locale_of(request)

    def page(request: Request, template: str, *, section: str, status: int = 200, **context: Any) -> Response:
        locale = lang(request)
        response = web.page(request, template, status=status, section=section, sections=SECTIONS,
                            bundle_roles=list(meta().roles), bundle_departments=list(meta().departments.items()),
                            role_label=lambda name: label_text(getattr(meta().roles.get(name), "label", None),
                                                               locale, name),
                            department_label=lambda code: label_text(
                                getattr(meta().departments.get(code), "label", None), locale, code or ""),
                            **context)
        response.headers["cache-control"] = "no-store"
        return response

    def back(request: Request, path: str, **params: str) -> RedirectResponse:
        query = urlencode({"lang": lang(request), **params})
        return RedirectResponse(f"{quote(path)}?{query}", status_code=303)

    def address(request: Request) -> str:
        return client_address(request, web.proxies)

    # -- overview, roles, departments -----------------------------------------------------------

    async def overview(request: Request) -> Response:
        require_admin(request)

        def read() -> Vitals:
            with read_transaction(web.system.db) as conn:
                return read_vitals(conn, web.system.runtime.clock.now())

        vitals = await offload.run(read)
        return page(request, "admin.html", section="", vitals=vitals,
                    took=lambda d: duration_text(d, lang(request)))

    async def roles_page(request: Request) -> Response:
        require_admin(request)
        with read_transaction(web.system.db) as conn:
            people = _user_rows(conn)
        listing = [{"name": r.name, "sees": getattr(r, "sees", None) or "involved", "admin": bool(getattr(r, "admin", False)),
                    "reports_to": getattr(r, "reports_to", None),
                    "members": [u for u in people if r.name in u["roles"]]} for r in meta().roles.values()]
        return page(request, "admin_roles.html", section="roles", roles=listing)

    async def departments_page(request: Request) -> Response:
        require_admin(request)
        with read_transaction(web.system.db) as conn:
            people = _user_rows(conn)
        listing = [{"code": d.code, "parent": d.parent, "members": [u for u in people if u["department"] == d.code]}
                   for d in meta().departments.values()]
        return page(request, "admin_departments.html", section="departments", departments=listing)

    # -- users ----------------------------------------------------------------------------------

    def user_form(request: Request, posted: Any) -> tuple[dict[str, Any], dict[str, str]]:
        """The submitted user fields and the errors by field."""
        values = {k: str(posted.get(k, "")).strip() for k in ("username", "display_name", "email", "phone", "department")}
        values["roles"] = [str(r) for r in posted.getlist("roles")]
        errors: dict[str, str] = {}
        if values["department"] and values["department"] not in meta().departments:
            errors["department"] = f"unknown department '{values['department']}'"
        unknown = [r for r in values["roles"] if r not in meta().roles]
        if unknown:
            errors["roles"] = "unknown role(s): " + ", ".join(unknown)
        if len(values["display_name"]) > 200:
            errors["display_name"] = "at most 200 characters"
        if values["email"] and ("@" not in values["email"] or len(values["email"]) > 255):
            errors["email"] = "not an e-mail address"
        if len(values["phone"]) > 50:
            errors["phone"] = "at most 50 characters"
        return values, errors

    async def users_page(request: Request) -> Response:
        require_admin(request)
        with read_transaction(web.system.db) as conn:
            people = _user_rows(conn)
        return page(request, "admin_users.html", section="users", users=people, values={"roles": []}, errors={},
                    saved=request.query_params.get("saved"))

    async def create_user(request: Request) -> Response:
        admin = require_admin(request)
        posted = await request.form(max_files=0, max_fields=200)
        values, errors = user_form(request, posted)
        password = str(posted.get("password", ""))
        if not USERNAME.fullmatch(values["username"]):
            errors["username"] = "letters, digits and . _ @ - only (at most 150)"
        if password:
            problems = password_problems(password, lang(request))
            if problems:
                errors["password"] = " ".join(problems)
        now = web.system.runtime.clock.now()

        def store() -> None:
            with transaction(web.system.db) as conn:
                if conn.execute(select(users.c.id).where(users.c.username == values["username"])).first():
                    errors["username"] = f"'{values['username']}' is taken"
                if errors:
                    return
                user_id = conn.execute(insert(users).values(
                    username=values["username"], display_name=values["display_name"] or None,
                    email=values["email"] or None, phone=values["phone"] or None,
                    department=values["department"] or None, created_at=now,
                    password_hash=hash_password(password) if password else None,
                    password_temporary=bool(password))).inserted_primary_key[0]
                for role in values["roles"]:
                    conn.execute(insert(user_roles).values(user_id=user_id, role=role))
                audit(conn, admin, "user.created", values["username"],
                      {"roles": values["roles"], "department": values["department"] or None,
                       "password": bool(password)}, at=now, ip=address(request))

        await offload.run(store)
        if errors:
            with read_transaction(web.system.db) as conn:
                people = _user_rows(conn)
            return page(request, "admin_users.html", section="users", users=people, values=values, errors=errors,
                        status=422)
        return back(request, f"/admin/users/{values['username']}", saved="1")

    def load_user(conn: Connection, username: str) -> dict[str, Any]:
        row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
        if row is None:
            raise HTTPException(404, f"no user '{username}'")
        roles = [r[0] for r in conn.execute(select(user_roles.c.role).where(user_roles.c.user_id == row["id"])
                                            .order_by(user_roles.c.role))]
        return {**dict(row), "roles": roles, "has_password": bool(row["password_hash"])}

    def user_page(request: Request, user: dict[str, Any], *, errors: dict[str, str] | None = None,
                  status: int = 200) -> Response:
        locale = lang(request)
        with read_transaction(web.system.db) as conn:
            work = [{**task, "label": label} for task, label in _labelled(conn, web, waiting_for(conn, user), locale)]
            others = [(u, name) for u, name in people_with(conn) if u != user["username"]]
        handed = request.query_params.get("handed", "")
        return page(request, "admin_user.html", section="users", user=user, errors=errors or {}, status=status,
                    saved=request.query_params.get("saved"), work=work, others=others,
                    handed=int(handed) if handed.isdigit() else None,
                    handed_to=request.query_params.get("to", ""))

    async def show_user(request: Request) -> Response:
        require_admin(request)
        with read_transaction(web.system.db) as conn:
            user = load_user(conn, request.path_params["username"])
        return user_page(request, user)

    async def hand_over(request: Request) -> Response:
        """Give every task that waits for this user alone to another (someone on leave, or gone):
        each is reassigned as a supervisor would, with the history saying by whom and why."""
        admin = require_admin(request)
        posted = await request.form(max_files=0, max_fields=20)
        username = request.path_params["username"]
        to = str(posted.get("to", "")).strip()
        with read_transaction(web.system.db) as conn:
            user = load_user(conn, username)
            wanted = [u for u, _name in people_with(conn, named=[to])] if to and to != username else []
            task_ids = [int(t["id"]) for t in waiting_for(conn, user)]
        if not wanted:
            return user_page(request, user, errors={"to": ui("handover_pick", lang(request))}, status=422)

        def hand() -> int:
            moved = 0
            for task_id in task_ids:
                try:  # one command per task: one finished meanwhile is left as it is
                    web.system.flows.reassign(task_id, to, by=admin.username,
                                              comment=ui("handover_comment", meta().default_locale).format(name=username))
                except ConflictError:
                    continue
                moved += 1
            with transaction(web.system.db) as conn:
                audit(conn, admin, "user.work_handed_over", username, {"to": to, "tasks": moved},
                      at=web.system.runtime.clock.now(), ip=address(request))
            return moved

        moved = await offload.run(hand)
        return back(request, f"/admin/users/{username}", handed=str(moved), to=to)

    async def update_user(request: Request) -> Response:
        admin = require_admin(request)
        posted = await request.form(max_files=0, max_fields=200)
        values, errors = user_form(request, posted)
        username = request.path_params["username"]
        now = web.system.runtime.clock.now()
        if errors:
            with read_transaction(web.system.db) as conn:
                user = {**load_user(conn, username), **{k: v for k, v in values.items() if k != "username"}}
            return user_page(request, user, errors=errors, status=422)

        def store() -> None:
            with transaction(web.system.db) as conn:
                user = load_user(conn, username)
                new = {"display_name": values["display_name"] or None, "email": values["email"] or None,
                       "phone": values["phone"] or None, "department": values["department"] or None}
                changes: dict[str, Any] = {k: [user[k], v] for k, v in new.items() if user[k] != v}
                if sorted(values["roles"]) != sorted(user["roles"]):
                    changes["roles"] = [user["roles"], sorted(values["roles"])]
                    conn.execute(delete(user_roles).where(user_roles.c.user_id == user["id"]))
                    for role in sorted(set(values["roles"])):
                        conn.execute(insert(user_roles).values(user_id=user["id"], role=role))
                if not changes:
                    return
                conn.execute(update(users).where(users.c.id == user["id"]).values(**new))
                action = "user.permissions" if {"roles", "department"} & set(changes) else "user.updated"
                audit(conn, admin, action, username, {"changes": changes}, at=now, ip=address(request))

        await offload.run(store)
        return back(request, f"/admin/users/{username}", saved="1")

    async def set_user_password(request: Request) -> Response:
        admin = require_admin(request)
        posted = await request.form(max_files=0, max_fields=20)
        username = request.path_params["username"]
        password = str(posted.get("password", ""))
        problems = password_problems(password, lang(request))
        if problems:
            with read_transaction(web.system.db) as conn:
                user = load_user(conn, username)
            return user_page(request, user, errors={"password": " ".join(problems)}, status=422)
        now = web.system.runtime.clock.now()

        def store() -> None:
            hashed = hash_password(password)
            with transaction(web.system.db) as conn:
                user = load_user(conn, username)
                # The administrator knows it: the user chooses their own at the next sign-in.
                conn.execute(update(users).where(users.c.id == user["id"])
                             .values(password_hash=hashed, password_temporary=True))
                ended = end_sessions_of(conn, int(user["id"]))
                audit(conn, admin, "user.password", username, {"sessions_ended": ended}, at=now, ip=address(request))

        await offload.run(store)
        return back(request, f"/admin/users/{username}", saved="1")

    async def set_active(request: Request) -> Response:
        admin = require_admin(request)
        posted = await request.form(max_files=0, max_fields=20)
        username = request.path_params["username"]
        active = str(posted.get("active", "")) == "1"
        if not active and username == admin.username:
            raise HTTPException(400, "you cannot deactivate yourself; ask another administrator")
        now = web.system.runtime.clock.now()

        def store() -> None:
            with transaction(web.system.db) as conn:
                user = load_user(conn, username)
                if bool(user["is_active"]) == active:
                    return
                conn.execute(update(users).where(users.c.id == user["id"]).values(is_active=active))
                ended = 0 if active else end_sessions_of(conn, int(user["id"]))
                audit(conn, admin, "user.activated" if active else "user.deactivated", username,
                      {"sessions_ended": ended}, at=now, ip=address(request))

        await offload.run(store)
        return back(request, f"/admin/users/{username}", saved="1")

    # -- reload ---------------------------------------------------------------------------------

    async def reload_view(request: Request, **values: Any) -> Response:
        """The reload page, with the running version and the work still on earlier ones."""
        earlier = await offload.run(on_earlier_versions, web.system.flows)
        return page(request, "admin_reload.html", section="reload", bundle=web.system.bundle,
                    earlier=earlier, **values)

    async def reload_page(request: Request) -> Response:
        require_admin(request)
        return await reload_view(request, result=None, diagnostics=[])

    async def reload(request: Request) -> Response:
        admin = require_admin(request)
        diagnostics = await offload.run(reload_definitions, web, actor=admin, ip=address(request))
        failed = has_errors(diagnostics)
        return await reload_view(request, result="failed" if failed else "ok",
                                 diagnostics=[format_diagnostic(d) for d in diagnostics],
                                 status=422 if failed else 200)

    async def run_scenarios_page(request: Request) -> Response:
        require_admin(request)
        bundle = web.system.bundle
        checked = await offload.run(check_scenarios, bundle.root, bundle.registry)
        return await reload_view(request, result=None, diagnostics=[format_diagnostic(d) for d in checked.diagnostics],
                                 scenarios=checked, status=200 if checked.passed else 422)

    # -- incidents and outbox ---------------------------------------------------------------------

    async def incidents_page(request: Request) -> Response:
        require_admin(request)
        services = web.system.runtime.services
        timers = services.get("timers")
        outbox = services.get("outbox")
        from engine.storage.tables import incidents as incident_table

        with read_transaction(web.system.db) as conn:
            timer_incidents = timers.incidents(conn) if timers is not None and hasattr(timers, "incidents") else None
            dead = outbox.dead_letters(conn) if outbox is not None and hasattr(outbox, "dead_letters") else None
            open_incidents = conn.execute(select(incident_table).where(incident_table.c.resolved_at.is_(None))
                                          .order_by(incident_table.c.id.desc()).limit(200)).mappings().all()
        return page(request, "admin_incidents.html", section="incidents", timer_incidents=timer_incidents,
                    dead_letters=dead, incidents=open_incidents, saved=request.query_params.get("saved"))

    async def retry(request: Request) -> Response:
        admin = require_admin(request)
        kind = request.path_params["kind"]
        item = int(request.path_params["id"])
        now = web.system.runtime.clock.now()
        if kind == "flow":
            return await retry_flow(request, admin, item)
        service = web.system.runtime.services.get("timers" if kind == "timer" else "outbox")
        if kind not in ("timer", "outbox") or service is None:
            raise HTTPException(404, "nothing to retry here")

        def run() -> bool:
            with transaction(web.system.db) as conn:
                done = bool(service.retry(item, conn))
                if done:
                    audit(conn, admin, f"{kind}.retry", f"{kind}:{item}", {}, at=now, ip=address(request))
                return done

        done = await offload.run(run)
        return back(request, "/admin/incidents", saved="1" if done else "0")

    async def retry_flow(request: Request, admin: Any, instance_id: int) -> Response:
        """A flow stopped by an incident enters its node again (FlowService.retry_incident)."""
        def run() -> str | None:
            try:
                status = web.system.flows.retry_incident(instance_id, actor=admin.username)
            except (ConflictError, NotFoundError):
                return None  # retried or mended meanwhile: the page shows where things stand
            with transaction(web.system.db) as conn:
                audit(conn, admin, "flow.retry", f"instance:{instance_id}", {"status": status},
                      at=web.system.runtime.clock.now(), ip=address(request))
            return status

        status = await offload.run(run)
        return back(request, "/admin/incidents", saved="0" if status is None else
                    "1" if status != "incident" else "again")

    # -- audit log -----------------------------------------------------------------------------

    async def audit_page(request: Request) -> Response:
        require_admin(request)
        params = request.query_params
        actor = params.get("actor", "").strip()
        action = params.get("action", "").strip()
        zone = ZoneInfo(meta().timezone)
        start, end = _day(params.get("from"), zone), _day(params.get("to"), zone)
        before = params.get("before", "")
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(AUDIT_PAGE + 1)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if action:
            query = query.where(or_(audit_log.c.action == action, audit_log.c.action.like(
                action.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".%", escape="\\")))
        if start is not None:
            query = query.where(audit_log.c.at >= start)
        if end is not None:
            query = query.where(audit_log.c.at < end + timedelta(days=1))
        if before.isascii() and before.isdigit() and len(before) <= 18:
            query = query.where(audit_log.c.id < int(before))
        with read_transaction(web.system.db) as conn:
            rows = conn.execute(query).mappings().all()
            actions = [r[0] for r in conn.execute(select(audit_log.c.action).distinct().order_by(audit_log.c.action))]
        more = len(rows) > AUDIT_PAGE
        rows = rows[:AUDIT_PAGE]
        forms = web.system.forms.forms
        entries = [{**dict(r), "local": r["at"].astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    "target_url": audit_target_url(r["target"], forms), "detail_text": audit_detail_text(r["detail"])}
                   for r in rows]
        older = None
        if more:
            keep = [(k, v) for k, v in params.multi_items() if k != "before"]
            older = "/admin/audit?" + urlencode([*keep, ("before", str(rows[-1]["id"]))])
        return page(request, "admin_audit.html", section="audit_log", entries=entries, actions=actions,
                    filters={"actor": actor, "action": action, "from": params.get("from", ""),
                             "to": params.get("to", "")}, older=older)

    return [
        Route("/admin", overview, methods=["GET"]),
        Route("/admin/users", users_page, methods=["GET"]),
        Route("/admin/users", create_user, methods=["POST"]),
        Route("/admin/users/{username}", show_user, methods=["GET"]),
        Route("/admin/users/{username}", update_user, methods=["POST"]),
        Route("/admin/users/{username}/password", set_user_password, methods=["POST"]),
        Route("/admin/users/{username}/active", set_active, methods=["POST"]),
        Route("/admin/users/{username}/handover", hand_over, methods=["POST"]),
        Route("/admin/roles", roles_page, methods=["GET"]),
        Route("/admin/departments", departments_page, methods=["GET"]),
        Route("/admin/reload", reload_page, methods=["GET"]),
        Route("/admin/reload", reload, methods=["POST"]),
        Route("/admin/scenarios", run_scenarios_page, methods=["POST"]),
        Route("/admin/incidents", incidents_page, methods=["GET"]),
        Route("/admin/incidents/{kind}/{id:int}/retry", retry, methods=["POST"]),
        Route("/admin/audit", audit_page, methods=["GET"]),
    ]


def audit_target_url(target: str | None, forms: Any) -> str | None:
    """The page of an audit entry's target, when it is a record ("complaint:41") or a form's list
    ("form:complaint", an export): the administrator reading "printed complaint:41" opens it."""
    kind, _, key = (target or "").partition(":")
    if kind == "form" and key in forms:
        return f"/records/{quote(key)}"
    if kind in forms and key.isascii() and key.isdigit():
        return f"/records/{quote(kind)}/{key}"
    return None


def audit_detail_text(detail: Any) -> str:
    """An audit entry's detail as "key: value" pairs (it was shown as raw JSON, braces and quotes);
    empty values are left out, a nested value reads as compact JSON."""
    if not isinstance(detail, dict):
        return "" if detail in (None, "", [], {}) else str(detail)
    parts = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        parts.append(f"{key}: {text}")
    return " · ".join(parts)


def _day(raw: str | None, zone: ZoneInfo) -> datetime | None:
    """The start of a YYYY-MM-DD day in the bundle's time zone (None if absent or invalid)."""
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), time(0), tzinfo=zone)
    except ValueError:
        raise HTTPException(400, f"'{raw}' is not a date (YYYY-MM-DD)") from None


__all__ = ["routes"]


def waiting_for(conn: Connection, user: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The open tasks that wait for this user alone: held by them, or offered to them by name and
    to no role or department (nobody else may claim those). A user deactivated while holding
    them would leave those complaints stuck, unseen in everyone else's inbox."""
    rows = conn.execute(
        select(tasks.c.id, tasks.c.form, tasks.c.record_id, tasks.c.node, tasks.c.status,
               tasks.c.candidate_users, tasks.c.candidate_roles, tasks.c.candidate_department,
               flow_instances.c.flow)
        .join(flow_instances, flow_instances.c.id == tasks.c.instance_id)
        .where(tasks.c.status.in_(("open", "claimed")),
               or_(tasks.c.assignee_user == user["id"],
                   and_(tasks.c.status == "open", _json_has(tasks.c.candidate_users, user["username"]))))
        .order_by(tasks.c.id)).mappings().all()
    return [dict(r) for r in rows
            if r["status"] == "claimed" or (list(r["candidate_users"] or []) == [user["username"]]
                                            and not r["candidate_roles"] and not r["candidate_department"])]


def _labelled(conn: Connection, web: "Web", work: list[dict[str, Any]],
              locale: str) -> list[tuple[dict[str, Any], str]]:
    """Each task with the words of its record and step: 'TS2026... · 华南物流 · Accept'."""
    forms = web.system.forms
    words: dict[str, dict[int, str]] = {}
    for form in {t["form"] for t in work if t["form"] in forms.forms}:
        ids = [t["record_id"] for t in work if t["form"] == form]
        words[form] = dict(forms.choices(conn, form, locale, where=forms.tables[form].c.id.in_(ids), limit=None))
    out = []
    for task in work:
        record = words.get(task["form"], {}).get(task["record_id"], f"#{task['record_id']}")
        out.append((task, f"{record} · {node_label(web.system.flows.flows.get(task['flow']), task['node'], locale)}"))
    return out
