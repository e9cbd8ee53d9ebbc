"""Printing a record (打印): `GET /records/{form}/{id}/print/{template}.pdf` and `.html`.

The PDF opens in the browser (`?download=1` saves it); the `.html` preview shows the same
template in the page. Both need a signed-in user who may read the record (404 otherwise, so ids
of hidden records are not confirmed) and, when the template lists `roles`, one of them (403).
Fields the user may not see print empty. Every print is written to the audit log.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from engine.errors import NotFoundError
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.templating import TemplateRenderError
from forms.access import can_read
from reports.print.render import PrintService, Printed
from web import auth
from web.i18n import ui
from web.offload import offload
from web.prefix import public_base
from web.staff import hidden_fields
from web.uploads import content_disposition

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger(__name__)

PDF_HEADERS = {
    "x-content-type-options": "nosniff",
    # Not `sandbox` (as uploads have): browsers' PDF viewers refuse to show a sandboxed PDF.
    "content-security-policy": "default-src 'none'; frame-ancestors 'self'",
    "cache-control": "no-store",
    "cross-origin-resource-policy": "same-origin",
}

PREVIEW_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
               "frame-ancestors 'self'; form-action 'none'; base-uri 'none'")
"""The preview runs no script at all; its styles are inline (the template's stylesheets)."""

PAPER_SIDES = {"A3": ("297mm", "420mm"), "A4": ("210mm", "297mm"), "A5": ("148mm", "210mm"),
               "B5": ("176mm", "250mm"), "letter": ("8.5in", "11in"), "legal": ("8.5in", "14in")}
"""(short side, long side) of each paper a print template may name (reports/print/kind.py)."""


def on_paper(html: str, spec: Any) -> str:
    """The preview laid out as a sheet of the template's paper on the screen: the letter's text
    ran across the whole window, flush with its left edge, unlike the PDF it previews. Printing
    the preview keeps the template's own `@page` layout."""
    short, long = PAPER_SIDES.get(spec.paper, PAPER_SIDES["A4"])
    width = long if spec.orientation == "landscape" else short
    sheet = (f"<style>@media screen {{ html {{ background: #e8e8e8; }} body {{ box-sizing: border-box; "
             f"width: {width}; max-width: 100%; margin: 1rem auto; padding: {spec.margin}; background: #fff; "
             "box-shadow: 0 1px 4px rgba(0,0,0,.25); } }"
             # A phone has no room for paper margins: the sheet fills the screen.
             "@media screen and (max-width: 600px) { body { margin: 0; padding: 4mm; } }</style>")
    at = html.lower().find("</head>")
    return html[:at] + sheet + html[at:] if at >= 0 else sheet + html


def routes(web: "Web") -> list[Route]:
    """The PDF and the HTML preview of a record printed with a print template."""
    runtime = web.system.runtime

    def render(request: Request) -> tuple[Printed, PrintService]:
        principal = auth.require_principal(request)
        form = request.path_params["form"]
        record_id = request.path_params["id"]
        service = PrintService.of(runtime)
        spec = service.spec(request.path_params["template"], form)  # PrintError -> 404
        if spec.roles and not principal.has_role(*spec.roles):
            raise HTTPException(403, ui("err_print_role", web.locale_of(request)))
        with read_transaction(runtime.db) as conn:
            if not can_read(conn, runtime, form, record_id, principal):
                raise NotFoundError(f"no {form} record {record_id}")
            try:
                printed = service.render_html(
                    spec.name, form, record_id, web.locale_of(request), conn=conn,
                    base_url=public_base(request), printed_by=principal.display_name or principal.username,
                    hidden=hidden_fields(runtime, form, principal))
            except TemplateRenderError as exc:
                log.warning("print template failed: %s", exc)
                raise HTTPException(500, f"the print template could not be rendered: {exc}") from None
        with transaction(runtime.db) as conn:
            auth.audit(conn, principal, "record.printed", f"{form}:{record_id}",
                       {"template": spec.name}, at=runtime.clock.now())
        return printed, service

    async def pdf(request: Request) -> Response:
        def work() -> tuple[bytes, str]:
            printed, service = render(request)
            return service.to_pdf(printed), printed.filename

        body, filename = await offload.run(work)
        inline = request.query_params.get("download") != "1"
        headers = {**PDF_HEADERS, "content-disposition": content_disposition(filename, inline=inline)}
        return Response(body, media_type="application/pdf", headers=headers)

    async def preview(request: Request) -> Response:
        def work() -> str:
            printed, service = render(request)
            return on_paper(service.preview(printed), printed.spec)

        html = await offload.run(work)
        return HTMLResponse(html, headers={"content-security-policy": PREVIEW_CSP,
                                           "cache-control": "no-store",
                                           "x-content-type-options": "nosniff"})

    base = "/records/{form}/{id:int}/print/{template}"
    return [Route(base + ".pdf", pdf, methods=["GET"]), Route(base + ".html", preview, methods=["GET"])]


def print_links(runtime: Any, form: str, record_id: int, principal: Principal,
                locale: str) -> list[tuple[str, str]]:
    """The record page's print menu: (label, URL of the PDF) for each print template of the
    form the principal may print (its `roles`, admins always); the preview is the same URL
    ending in .html."""
    return [(spec.text(locale), f"/records/{form}/{record_id}/print/{spec.name}.pdf")
            for spec in PrintService.of(runtime).templates_for(form)
            if not spec.roles or principal.has_role(*spec.roles)]

