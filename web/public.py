"""Public pages: a form anyone may fill in (no sign-in), and its acknowledgement.

Public endpoints are rate-limited per client and protected by the anti-spam ticket; a retried
post of the same page returns the first record (the ticket's key is the idempotency key).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.errors import NotFoundError, ValidationFailed
from engine.types import label_text
from forms.render import form_view, parse_form_post
from web.antispam import HONEYPOT, TICKET, Expired, SpamSuspected, Unreadable
from web.form_files import files_budget, mark_file_limits, read_kept_files, store_files
from web.required_marks import mark_required_live
from web.forms_body import read_form
from web.i18n import ui
from web.lookup import verify_field_label
from web.offload import offload
from engine.site import configured_public_url
from web.prefix import public_base
from web.ratelimit import Limit
from web.security import embeddable_csp, let_embedders_frame

if TYPE_CHECKING:
    from web.app import Web

FORM_VIEWS = Limit(120, 60)
FORM_POSTS = Limit(10, 60)
MAX_FORM_FIELDS = 500
MAX_FORM_FILES = 10
MAX_FORM_BYTES = 20 * 1024 * 1024
QUERY_NO = re.compile(r"[A-Za-z0-9-]{0,64}")


def routes(web: "Web") -> list[Route]:
    """The public routes of the application."""

    def public_form(request: Request):  # type: ignore[no-untyped-def]
        """The public form the path names; 404 in the customer's words for any other name (a
        form that is not public reads the same as none, so its existence is not told)."""
        try:
            form = web.system.forms.form(request.path_params["form"])
        except NotFoundError:
            form = None
        if form is None or not form.spec.public:
            # Reached from a mistyped or outdated link or QR code: not the engine's English.
            raise HTTPException(404, ui("form_not_found", web.locale_of(request)))
        return form

    def render(request: Request, form, *, values=None, errors=None, status: int = 200,  # type: ignore[no-untyped-def]
               notice: str = "") -> HTMLResponse:
        locale = web.locale_of(request)
        now = web.system.runtime.clock.now()
        ticket = web.signer.issue(form.name, now)
        sections = form_view(form, locale, values=values, errors=errors, only=form.public_fields)
        mark_file_limits(web, form, sections)
        mark_not_future(form, sections, now)
        mark_required_live(form, sections)
        shown = {widget.name for section in sections for widget in section.widgets}
        response = web.page(request, "form_fill.html", status=status,
                            form_title=form.spec.text(locale),
                            form_description=label_text(form.spec.description, locale, "") if form.spec.description else "",
                            sections=sections, max_files_bytes=files_budget(MAX_FORM_BYTES),
                            has_errors=bool(errors), unshown_errors=unshown_errors(form, errors, shown, locale),
                            notice=notice, ticket=ticket, wizard=form.spec.wizard,
                            lookup=f"/track?lang={locale}" if form.spec.lookup and form.spec.numbering else "",
                            action=f"/f/{form.name}?lang={locale}")
        # Framed by a customer's site, every answer to the form stays in the frame: a refused
        # post and the acknowledgement too, not only the first page (the browser blocked them).
        return let_embedders_frame(response, web.embedders)

    async def show(request: Request) -> Response:
        web.limit(request, "form-view", FORM_VIEWS)
        response = render(request, public_form(request))
        response.headers["content-security-policy"] = embeddable_csp(web.embedders)
        return response

    def form_url(request: Request, form_name: str) -> str:
        return public_base(request) + f"/f/{form_name}"

    async def share(request: Request) -> Response:
        """The embed snippet and QR codes of a public form, for staff to copy."""
        form = public_form(request)
        url = form_url(request, form.name)
        locale = web.locale_of(request)
        snippet = (f'<iframe src="{url}?lang={locale}" title="{form.spec.text(locale)}" '
                   'width="100%" height="900" style="border:0" loading="lazy"></iframe>')
        # Without a configured address the link is the one this browser used, perhaps an office
        # address customers cannot reach: say so before it is printed on a poster.
        return web.page(request, "form_share.html", form_title=form.spec.text(locale), url=url,
                        snippet=snippet, qr_svg=f"/f/{form.name}/qr.svg", qr_png=f"/f/{form.name}/qr.png",
                        address_guessed=not configured_public_url())

    async def qr(request: Request) -> Response:
        form = public_form(request)
        kind = request.path_params["kind"]
        if kind not in ("svg", "png"):
            raise HTTPException(404, "QR codes come as .svg or .png")
        return Response(qr_code(form_url(request, form.name), kind),
                        media_type="image/svg+xml" if kind == "svg" else "image/png",
                        headers={"cache-control": "public, max-age=3600"})

    async def again(request: Request, form: Any, data: dict[str, Any], *, status: int,
                    errors: Any = None, notice: str = "") -> HTMLResponse:
        """The form shown again after a refused post: what was typed, and the files already
        stored listed to be sent again (web.form_files), so nothing has to be entered twice."""
        values = await offload.run(read_kept_files, web, form, data)
        return render(request, form, values=values, errors=errors, status=status, notice=notice)

    async def post(request: Request) -> Response:
        web.limit(request, "form-post", FORM_POSTS)
        form = public_form(request)
        locale = web.locale_of(request)
        posted = await read_form(request, max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS,
                                 max_body=MAX_FORM_BYTES)
        try:
            ticket = web.signer.check(form.name, str(posted.get(TICKET, "")), web.system.runtime.clock.now(),
                                      str(posted.get(HONEYPOT, "")))
        except SpamSuspected as exc:
            if not exc.human:
                raise HTTPException(400, ui("form_refused", locale)) from None
            # A person sent it too soon or from a stale page: show what they typed again, with
            # a fresh ticket, rather than a bare refusal that loses the whole form. Their files
            # are stored too (anyone may upload: POST /api/v1/uploads), so none is lost.
            data = parse_form_post(form, posted, only=form.public_fields)
            file_errors = await store_files(web, form, posted, data, locale, only=form.public_fields,
                                             anonymous=True)
            return await again(request, form, data, errors=file_errors or None,
                               notice=_refusal_notice(exc), status=400)
        data = parse_form_post(form, posted, only=form.public_fields)
        file_errors = await store_files(web, form, posted, data, locale, only=form.public_fields,
                                         anonymous=True)
        if file_errors:
            # Report every other mistake too, so one refused file does not hide them.
            errors = {**_field_errors(web, form, data, locale), **file_errors}
            return await again(request, form, data, errors=errors, status=422)
        try:
            # Off the event loop: the submission may wait on the database's write lock.
            result = await offload.run(web.system.forms.submit, form.name, data, actor=None, locale=locale,
                                       idempotency_key=f"public:{ticket.key}", channel="web",
                                       anonymous=True)
        except ValidationFailed as exc:
            return await again(request, form, data, errors=exc.errors, status=422)
        # A form without numbering has no query number to show: its acknowledgement says thank you.
        number = f"/{result.query_no}" if result.query_no else ""
        target = f"/f/{form.name}/submitted{number}?lang={locale}"
        return RedirectResponse(target, status_code=303)

    async def submitted(request: Request) -> Response:
        form = public_form(request)
        query_no = request.path_params.get("query_no", "")
        if not QUERY_NO.fullmatch(query_no):
            raise HTTPException(404, ui("query_no_not_found", web.locale_of(request)))
        locale = web.locale_of(request)
        # The lookup link carries the number, so the customer only types the phone digits.
        digits = int(form.spec.lookup.get("digits", 4)) if form.spec.lookup else 4
        response = web.page(request, "form_submitted.html", query_no=query_no, digits=digits,
                            verify_field=verify_field_label([form.spec] if form.spec.lookup else [], locale),
                            track=f"/track?{urlencode({'lang': locale, 'query_no': query_no})}",
                            again=f"/f/{form.name}?lang={locale}")
        return let_embedders_frame(response, web.embedders)

    return [
        Route("/f/{form}", show, methods=["GET"]),
        Route("/f/{form}", post, methods=["POST"]),
        Route("/f/{form}/submitted/{query_no}", submitted, methods=["GET"]),
        Route("/f/{form}/submitted", submitted, methods=["GET"]),
        Route("/f/{form}/share", share, methods=["GET"]),
        Route("/f/{form}/qr.{kind}", qr, methods=["GET"]),
    ]


def qr_code(url: str, kind: str) -> bytes:
    """A QR code of `url` as SVG or PNG (segno: pure Python, no image library needed)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind=kind, scale=8 if kind == "png" else 4, border=2,
                                    **({"title": url} if kind == "svg" else {}))
    return out.getvalue()


def unshown_errors(form: Any, errors: Any, shown: set[str], locale: str) -> list[tuple[str, str]]:
    """(label, message) of each mistake in a field the page does not show: a required staff-only
    field refuses every anonymous post (an analyst's slip), and a list of nothing to correct would
    leave the customer with no way on, or even no word to tell the company."""
    out = []
    for key, texts in (errors or {}).items():
        name = re.split(r"[\[.]", key, maxsplit=1)[0]
        if name not in shown:
            spec = form.spec.fields.get(name)
            out.extend((spec.text(locale) if spec is not None else key, text) for text in texts)
    return out


def mark_not_future(form: Any, sections: Any, instant: datetime) -> None:
    """Give each date and time input of a `not_future` field the latest value it takes (`max`:
    `instant` in the field's time zone), so a phone's picker does not offer tomorrow. The field
    checks it again on the server, against the same clock (forms.fields.temporal)."""
    for section in sections:
        for widget in section.widgets:
            spec = form.spec.fields[widget.name]
            if widget.kind in ("date", "datetime-local") and spec.opt("not_future"):
                now = instant.astimezone(ZoneInfo(spec.timezone))
                widget.attrs["max"] = now.strftime("%Y-%m-%d" if widget.kind == "date" else "%Y-%m-%dT%H:%M")


def _refusal_notice(exc: SpamSuspected) -> str:
    """The UI catalogue key of the message for a ticket refused for a reason a person may cause."""
    if isinstance(exc, Unreadable):
        return "form_stale"
    return "form_expired" if isinstance(exc, Expired) else "form_too_quick"


def _field_errors(web: "Web", form: Any, data: dict[str, Any], locale: str) -> dict[str, list[str]]:
    """The validator's errors for `data` (empty when it passes), without storing anything."""
    try:
        # As `forms.submit` checks an anonymous submission (public fields only).
        form.validate(data, locale=locale, ctx=web.system.forms.eval_context() if form.needs_context else None,
                      editable=form.public_fields, extra_names={"user": {"username": None}})
    except ValidationFailed as exc:
        return dict(exc.errors)
    return {}
