"""Staff pages of records: the list (search, filters, paging, export), a new record, the detail
page with its timeline and the current task's actions, comments and files.

Every route needs a signed-in principal (web.auth) and applies row-level access
(forms.access.record_scope): a record the user may not see is a 404, whether asked for by id,
through one of its files or in an export. Every POST checks the CSRF token.
"""

from __future__ import annotations

import secrets
import tempfile
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy import select
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from engine.errors import ConflictError, IdempotencyKeyReused, NotFoundError, ValidationFailed
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import attachments, flow_instances, tasks
from forms.access import can_read
from forms.attachments.limits import DEFAULT_LIMITS
from forms.exchange import export_records
from forms.render import form_view, parse_form_post
from web import auth
from web.form_files import files_budget, mark_file_limits, read_kept_files, store_files, store_uploads
from web.required_marks import mark_required_live
from web.forms_body import read_form
from web.i18n import ui
from web.offload import offload
from web.printing import print_links
from web.record_list import ListQuery, list_page
from web.record_view import build_record_page, outcomes_of
from web.staff import (duration_text, hidden_fields, holds, latest_instance, local_time, may_reassign, may_reopen,
                       may_withdraw, people_for, people_picker, record_picker, safe_next, status_labeller)
from web.uploads import FILE_HEADERS, content_disposition

if TYPE_CHECKING:
    from web.app import Web

MAX_COMMENT = 5000
MAX_STEP_FILES = 10
MAX_STEP_BYTES = 60 * 1024 * 1024
NOTICES = ("claimed", "released", "conflict", "completed", "sent_back", "not_yours", "commented", "reassigned",
           "created", "withdrawn", "reopened", "not_allowed")
KEY_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def routes(web: "Web") -> list[Route]:
    """Routes of the record pages."""
    system = web.system

    def staff_form(request: Request) -> Any:
        try:
            return system.forms.form(request.path_params["form"])
        except NotFoundError:
            raise HTTPException(404, ui("err_no_form", web.locale_of(request))) from None

    def readable(principal: Principal, form: str, record_id: int, locale: str = "en") -> None:
        """404 unless the record exists and the principal may see it (never a 403: ids stay secret),
        said in the reader's language (a Chinese page read "no such record" under its heading)."""
        with read_transaction(system.db) as conn:
            if not can_read(conn, system.runtime, form, record_id, principal):
                raise HTTPException(404, ui("err_no_record", locale))

    async def index(request: Request) -> Response:
        principal = auth.require_principal(request)
        locale = web.locale_of(request)
        forms = [{"name": n, "title": f.spec.text(locale)} for n, f in system.forms.forms.items()]
        if len(forms) == 1:
            return RedirectResponse(f"/records/{forms[0]['name']}", status_code=303)
        return web.page(request, "records.html", forms=forms, principal=principal)

    async def listing(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        locale = web.locale_of(request)
        query = ListQuery.from_params(system, form, principal, request.query_params, locale)
        view = await offload.run(list_page, web, form, principal, query, locale)
        return web.page(request, "record_list.html", **view)

    async def export(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        fmt = request.path_params["fmt"]
        if fmt not in ("csv", "xlsx"):
            raise HTTPException(404, "exports come as .csv or .xlsx")
        locale = web.locale_of(request)
        query = ListQuery.from_params(system, form, principal, request.query_params, locale)
        hidden = hidden_fields(system.runtime, form.name, principal)
        fields = [n for n in form.stored if n not in hidden]
        out = tempfile.TemporaryFile()

        def run() -> int:
            # People read the export: its status column in words, as the list shows it.
            count = export_records(system.forms, form.name, fmt, out, locale=locale, fields=fields,
                                   where=query.condition(),
                                   status_text=status_labeller(system.bundle, form, locale))
            with transaction(system.db) as conn:
                auth.audit(conn, principal.username, "export", f"form:{form.name}",
                           {"format": fmt, "rows": count, "filters": query.params()},
                           at=system.runtime.clock.now())
            return count

        try:
            await offload.run(run)
        except BaseException:
            out.close()
            raise
        out.seek(0)
        # The office's time, as on every page (in UTC, an export made at 09:30 in Shanghai was
        # named for the evening before).
        stamp = local_time(system.runtime.clock.now(), web.bundle.meta.timezone).replace("-", "").replace(
            ":", "").replace(" ", "-")
        media = ("text/csv; charset=utf-8" if fmt == "csv" else
                 "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

        def chunks() -> Any:
            try:
                while block := out.read(64 * 1024):
                    yield block
            finally:
                out.close()

        return StreamingResponse(chunks(), media_type=media, headers={
            "content-disposition": content_disposition(f"{form.name}-{stamp}.{fmt}"),
            "cache-control": "private, no-store", "x-content-type-options": "nosniff"})

    # -- new record ----------------------------------------------------------------------------
    def render_new(request: Request, form: Any, *, values: Any = None, errors: Any = None,
                   key: str | None = None, status: int = 200, form_error: str = "") -> Response:
        locale = web.locale_of(request)
        with read_transaction(web.system.db) as conn:
            sections = form_view(form, locale, values=values, errors=errors, people=people_picker(conn),
                                 records=record_picker(conn, web.system.runtime,
                                                       auth.require_principal(request), locale))
        mark_file_limits(web, form, sections)
        mark_required_live(form, sections)
        return web.page(request, "record_new.html", status=status, form_name=form.name,
                        form_title=form.spec.text(locale), has_errors=bool(errors), form_error=form_error,
                        sections=sections, max_files_bytes=files_budget(MAX_STEP_BYTES),
                        key=key or secrets.token_urlsafe(18), action=f"/records/{form.name}/new")

    async def render_new_again(request: Request, form: Any, data: dict[str, Any], **kw: Any) -> Response:
        """The new-record page after a refused post, with the files already stored kept."""
        values = await offload.run(read_kept_files, web, form, data)
        return render_new(request, form, values=values, **kw)

    async def new(request: Request) -> Response:
        auth.require_principal(request)
        return render_new(request, staff_form(request))

    async def create(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        posted = await read_form(request, max_files=MAX_STEP_FILES, max_body=MAX_STEP_BYTES)
        auth.check_csrf(request, posted)
        locale = web.locale_of(request)
        key = str(posted.get("_key", ""))
        if not (16 <= len(key) <= 64 and set(key) <= KEY_CHARS):
            raise HTTPException(400, ui("err_page_out_of_date", locale))
        data = parse_form_post(form, posted)
        file_errors = await store_files(web, form, posted, data, locale)
        if file_errors:
            return await render_new_again(request, form, data, errors=file_errors, key=key, status=422)
        try:
            # The key is rendered into the page: a double click or a retried post of the same
            # page finds the first record instead of making a second one.
            result = await offload.run(lambda: system.forms.submit(
                form.name, data, actor=principal.username, locale=locale,
                idempotency_key=f"staff:{principal.username}:{key}", channel="web"))
        except ValidationFailed as exc:
            return await render_new_again(request, form, data, errors=exc.errors, key=key, status=422)
        except IdempotencyKeyReused:
            return await render_new_again(request, form, data, key=None, status=409,
                                          form_error=web_text(web, request, "resubmitted"))
        return RedirectResponse(f"/records/{form.name}/{result.record_id}?notice=created", status_code=303)

    # -- one record ----------------------------------------------------------------------------
    def render_record(request: Request, principal: Principal, form: Any, record_id: int, *,
                      posted: dict[int, dict[str, Any]] | None = None, status: int = 200,
                      notice: str | None = None, comment_error: str = "", comment_text: str = "",
                      alert: str = "") -> Response:
        locale = web.locale_of(request)
        view = build_record_page(web, form.name, record_id, principal, locale, posted=posted)
        zone = web.bundle.meta.timezone
        wanted = notice or request.query_params.get("notice")
        here = f"/records/{form.name}/{record_id}"
        # A refused post (a step's or a comment's errors) answers at the post's address: the page
        # names its own (staff.js shows it, so a reload reads the record instead of sending the
        # form again), and its language links open the record, not the POST-only address.
        return web.page(request, "record.html", status=status, page=view, form_title=form.spec.text(locale),
                        notice=wanted if wanted in NOTICES else None, here=here, page_address=here,
                        lang_url=lambda loc: f"{here}?{urlencode({'lang': loc})}",
                        when=lambda at: local_time(at, zone), took=lambda d: duration_text(d, locale),
                        has_sla="sla" in system.runtime.services, status_label=status_labeller(system.bundle, form, locale),
                        comment_error=comment_error, comment_text=comment_text, alert=alert,
                        # The step form and the comment box check chosen files as the public form does.
                        max_files_bytes=files_budget(MAX_STEP_BYTES), comment_file_bytes=DEFAULT_LIMITS.max_bytes,
                        prints=print_links(system.runtime, form.name, record_id, principal, locale))

    async def detail(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        record_id = request.path_params["record_id"]
        await offload.run(readable, principal, form.name, record_id, web.locale_of(request))
        return await offload.run(render_record, request, principal, form, record_id)

    async def comment(request: Request) -> Response:
        """A comment, files or both on the record's trail at its current step
        (FlowService.comment); the files are stored first and linked with the comment."""
        principal, form, record_id, posted = await record_command(request, max_files=MAX_STEP_FILES,
                                                                  max_body=MAX_STEP_BYTES)
        locale = web.locale_of(request)
        text = typed_text(posted.get("comment"))
        files = [f for f in posted.getlist("files") if isinstance(f, UploadFile) and f.filename]

        def again(message: str) -> Response:
            return render_record(request, principal, form, record_id, status=422, comment_error=message,
                                 comment_text=text[:MAX_COMMENT])

        if (not text and not files) or len(text) > MAX_COMMENT:
            return await offload.run(again, web_text(web, request, "comment_long" if text else "comment_empty"))
        ids, refused = await store_uploads(web, files, DEFAULT_LIMITS, locale)
        if refused:
            return await offload.run(again, "; ".join(refused))
        try:
            await offload.run(lambda: system.flows.comment(form.name, record_id, actor=principal.username,
                                                           text=text, attachments=ids, locale=locale))
        except ValidationFailed as exc:
            return await offload.run(again, "; ".join(m for ms in exc.errors.values() for m in ms))
        return RedirectResponse(f"/records/{form.name}/{record_id}?notice=commented#comment-saved", status_code=303)

    async def withdraw(request: Request) -> Response:
        """The submitter (or an administrator) takes the record back: its flow ends withdrawn."""
        principal, form, record_id, posted = await record_command(request)
        here = f"/records/{form.name}/{record_id}"
        record, instance = await offload.run(_record_and_flow, web, form.name, record_id)
        if instance is None or not may_withdraw(record, instance["status"], principal):
            return RedirectResponse(f"{here}?notice=not_allowed", status_code=303)
        note = typed_text(posted.get("comment"))[:MAX_COMMENT] or None
        try:
            await offload.run(lambda: system.flows.withdraw(form.name, record_id, actor=principal.username,
                                                            comment=note, override=principal.is_admin))
        except (ConflictError, NotFoundError):
            return RedirectResponse(f"{here}?notice=not_allowed", status_code=303)
        return RedirectResponse(f"{here}?notice=withdrawn", status_code=303)

    async def reopen(request: Request) -> Response:
        """An administrator, or a role the flow's `reopen:` names, starts an ended record again
        at one of the steps it allows, saying why."""
        principal, form, record_id, posted = await record_command(request)
        here = f"/records/{form.name}/{record_id}"
        _record, instance = await offload.run(_record_and_flow, web, form.name, record_id)
        flow = system.flows.flows.get(instance["flow"]) if instance else None
        at = str(posted.get("at", ""))
        note = typed_text(posted.get("comment"))[:MAX_COMMENT]
        if flow is None or not may_reopen(flow, instance["status"], principal) or at not in flow.reopen_steps():
            return RedirectResponse(f"{here}?notice=not_allowed", status_code=303)
        if not note:
            raise HTTPException(400, "say why the record is reopened")
        try:
            await offload.run(lambda: system.flows.reopen(form.name, record_id, at=at, actor=principal.username,
                                                          comment=note))
        except (ConflictError, NotFoundError):
            return RedirectResponse(f"{here}?notice=not_allowed", status_code=303)
        return RedirectResponse(f"{here}?notice=reopened", status_code=303)

    async def record_command(request: Request, **limits: int) -> tuple[Principal, Any, int, Any]:
        """Who asks, the form, the record (which they may read) and the posted form, its CSRF
        token checked (`limits`: read_form's file limits)."""
        principal = auth.require_principal(request)
        form = staff_form(request)
        record_id = request.path_params["record_id"]
        posted = await read_form(request, max_fields=10, **limits)
        auth.check_csrf(request, posted)
        await offload.run(readable, principal, form.name, record_id, web.locale_of(request))
        return principal, form, record_id, posted

    async def task_command(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        record_id, task_id = request.path_params["record_id"], request.path_params["task_id"]
        action = request.path_params["action"]
        posted = await read_form(request, max_files=MAX_STEP_FILES, max_body=MAX_STEP_BYTES)
        auth.check_csrf(request, posted)
        await offload.run(readable, principal, form.name, record_id, web.locale_of(request))
        task = await offload.run(_task_of, web, task_id, form.name, record_id)
        locale = web.locale_of(request)
        here = f"/records/{form.name}/{record_id}"
        if action == "complete":
            return await complete(request, principal, form, record_id, task, posted, locale)
        if action == "reassign":
            return await reassign(request, principal, form, record_id, task, posted)
        raise HTTPException(404, f"no task command '{action}' (complete or reassign); claim at {here}")

    async def complete(request: Request, principal: Principal, form: Any, record_id: int,
                       task: dict[str, Any], posted: Any, locale: str) -> Response:
        flow = system.flows.flows.get(_flow_of(web, task))
        node = flow.nodes.get(task["node"]) if flow else None
        hidden = hidden_fields(system.runtime, form.name, principal)
        editable = [f for f in (node.options.get("fields", []) if node else []) if f not in hidden]
        values = parse_form_post(form, posted, only=editable) if editable else {}
        comment = typed_text(posted.get("comment"))[:MAX_COMMENT] or None
        outcome = str(posted.get("outcome", "")) or None
        return_to = str(posted.get("return_to", "")) or None
        kept = {"values": values, "comment": comment or ""}
        if not holds(task, principal):
            return await offload.run(lambda: render_record(
                request, principal, form, record_id, status=409, posted={task["id"]: kept},
                alert=web_text(web, request, "not_yours_long")))
        file_errors = await store_files(web, form, posted, values, locale, only=editable)
        if file_errors:
            kept["errors"] = file_errors
            return await offload.run(lambda: render_record(
                request, principal, form, record_id, status=422, posted={task["id"]: kept}))
        if node is not None and not comment and outcome in {o.value for o in outcomes_of(node) if o.needs_comment}:
            # Said here in the reader's language: the engine's own refusal is an English sentence.
            kept["errors"] = {"comment": [comment_required_text(web, request, outcome)]}
            return await offload.run(lambda: render_record(
                request, principal, form, record_id, status=422, posted={task["id"]: kept}))
        version = str(posted.get("version", ""))
        try:
            await offload.run(lambda: system.flows.complete(
                task["id"], principal.username, values=values or None, outcome=outcome, comment=comment,
                expected_version=int(version) if version.isascii() and version.isdigit() else None, locale=locale,
                return_to=return_to))
        except ValidationFailed as exc:
            kept["errors"] = exc.errors
            return await offload.run(lambda: render_record(
                request, principal, form, record_id, status=422, posted={task["id"]: kept}))
        except (ConflictError, NotFoundError) as exc:
            # Someone else completed or changed the task first, or the outcome is not one this
            # step takes: say so on the page, never as a stack trace. The engine's detail is an
            # English sentence: a page in another language keeps to its own words.
            message = web_text(web, request, "conflict_long")
            if locale == "en":
                message = f"{message} ({exc})"
            return await offload.run(lambda: render_record(
                request, principal, form, record_id, status=409, posted={task["id"]: kept}, alert=message))
        # A rejection or a return sends the record back: "moved on to the next step" would mislead.
        done = "sent_back" if outcome in ("reject", "return") else "completed"
        return RedirectResponse(f"/records/{form.name}/{record_id}?notice={done}", status_code=303)

    async def reassign(request: Request, principal: Principal, form: Any, record_id: int,
                       task: dict[str, Any], posted: Any) -> Response:
        here = f"/records/{form.name}/{record_id}"
        if not may_reassign(system.runtime, task, principal):
            return RedirectResponse(f"{here}?notice=not_yours", status_code=303)
        target = str(posted.get("to", ""))
        with read_transaction(system.db) as conn:
            allowed = {u for u, _ in people_for(conn, task)}
        if target not in allowed:
            raise HTTPException(400, "choose someone this task may be handed to")
        note = typed_text(posted.get("comment"))[:MAX_COMMENT] or None
        try:
            await offload.run(lambda: system.flows.reassign(
                task["id"], target, by=principal.username, comment=note, delegate=holds(task, principal)))
        except (ConflictError, NotFoundError):
            return RedirectResponse(f"{here}?notice=conflict", status_code=303)
        return RedirectResponse(safe_next(posted.get("next"), f"{here}?notice=reassigned"), status_code=303)

    async def file(request: Request) -> Response:
        principal = auth.require_principal(request)
        form = staff_form(request)
        record_id = request.path_params["record_id"]
        await offload.run(readable, principal, form.name, record_id, web.locale_of(request))
        token = request.path_params["token"]
        with read_transaction(system.db) as conn:
            row = conn.execute(select(attachments).where(
                attachments.c.id == token, attachments.c.form == form.name,
                attachments.c.record_id == record_id, attachments.c.status == "linked")).mappings().first()
        if row is None or row["field"] in hidden_fields(system.runtime, form.name, principal):
            raise HTTPException(404, "no such file")
        store = system.runtime.services["attachments"].store
        if not await offload.run(store.verify, row["sha256"], int(row["size"])):
            raise HTTPException(500, "this file is damaged on the server; the administrator has been told")
        from forms.attachments.kinds import INLINE_TYPES
        from forms.attachments.service import type_of_media

        inline = request.query_params.get("inline") == "1" and type_of_media(row["media_type"]) in INLINE_TYPES
        headers = {**FILE_HEADERS, "content-disposition": content_disposition(row["original_name"], inline=inline)}
        return FileResponse(store.path_of(row["sha256"]), media_type=row["media_type"], headers=headers)

    return [
        Route("/records", index, methods=["GET"]),
        Route("/records/{form}", listing, methods=["GET"]),
        Route("/records/{form}/export.{fmt}", export, methods=["GET"]),
        Route("/records/{form}/new", new, methods=["GET"]),
        Route("/records/{form}/new", create, methods=["POST"]),
        Route("/records/{form}/{record_id:int}", detail, methods=["GET"]),
        Route("/records/{form}/{record_id:int}/comment", comment, methods=["POST"]),
        Route("/records/{form}/{record_id:int}/withdraw", withdraw, methods=["POST"]),
        Route("/records/{form}/{record_id:int}/reopen", reopen, methods=["POST"]),
        Route("/records/{form}/{record_id:int}/tasks/{task_id:int}/{action}", task_command, methods=["POST"]),
        Route("/records/{form}/{record_id:int}/files/{token}", file, methods=["GET"]),
    ]




def _task_of(web: "Web", task_id: int, form: str, record_id: int) -> dict[str, Any]:
    with read_transaction(web.system.db) as conn:
        row = conn.execute(select(tasks).where(tasks.c.id == task_id, tasks.c.form == form,
                                               tasks.c.record_id == record_id)).mappings().first()
    if row is None:
        raise HTTPException(404, "no such task")
    return dict(row)


def _record_and_flow(web: "Web", form: str, record_id: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The record and its latest flow instance (None: no flow ever ran on it)."""
    with read_transaction(web.system.db) as conn:
        return web.system.forms.read(conn, form, record_id), latest_instance(conn, form, record_id)


def _flow_of(web: "Web", task: dict[str, Any]) -> str:
    with read_transaction(web.system.db) as conn:
        return str(conn.execute(select(flow_instances.c.flow).where(
            flow_instances.c.id == task["instance_id"])).scalar())


def comment_required_text(web: "Web", request: Request, outcome: str) -> str:
    """"Write a comment to reject" in the reader's language (an analyst's own outcome by its name)."""
    key = f"outcome_{outcome}"
    label = web_text(web, request, key)
    return web_text(web, request, "comment_required_to").format(outcome=outcome if label == key else label)


def typed_text(value: Any) -> str:
    """What a person typed into a box, as they saw it: a browser sends each line break as CRLF
    but counts it as one character (maxlength), so a comment the box let through was refused as
    too long, or its end cut off."""
    return str(value or "").replace("\r\n", "\n").strip()


def web_text(web: "Web", request: Request, key: str) -> str:
    from web.i18n import ui

    return ui(key, web.locale_of(request))


__all__ = ["routes"]
