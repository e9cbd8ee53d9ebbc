"""The HTTP application: a Starlette app over a booted `System`.

This is the walking skeleton of the web issue: health, the record list page and the JSON
submission API. Errors never show a stack trace: they are logged with a correlation id and the
user sees a short message with that id.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any, Callable

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from engine.bundle import Bundle
from engine.errors import ConflictError, IdempotencyKeyReused, NotFoundError, ValidationFailed
from web import lookup, public, uploads
from web.antispam import TicketSigner
from web.i18n import ui
from web.ratelimit import Limit, RateLimiter, client_address, retry_after
from web.security import BodySizeLimit, SecurityHeaders
from web.settings import api_submits_per_minute, embed_origins, secret_key, trusted_proxies
from web.system import System

log = logging.getLogger(__name__)

MAX_JSON_BODY = 1024 * 1024
"""Larger API bodies are refused before they are read into memory."""
MAX_REQUEST_BODY = 2 * 1024 * 1024
"""Any request body (forms, JSON) is cut off at this size while it streams in."""
MAX_UPLOAD_BODY = 110 * 1024 * 1024
"""Uploads may be larger; each field type sets its own, smaller limit."""

def _templates() -> Environment:
    env = Environment(loader=PackageLoader("web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    return env


class Web:
    """What every page handler shares: the system, templates, signer, rate limiter, locale."""

    def __init__(self, system: System, *, secret: str, proxies: tuple[str, ...] = (),
                 monotonic: Callable[[], float] = time.monotonic):
        self.system = system
        self.pages = _templates()
        self.signer = TicketSigner(secret)
        self.limiter = RateLimiter(monotonic)
        self.proxies = proxies
        self.embedders = embed_origins()
        self.api_submits = Limit(api_submits_per_minute(), 60)

    @property
    def bundle(self) -> Bundle:
        return self.system.bundle

    def locale_of(self, request: Request) -> str:
        """`?lang=` if the bundle has it, else the first bundle locale the browser accepts."""
        meta = self.bundle.meta
        wanted = request.query_params.get("lang")
        if wanted in meta.locales:
            return wanted
        accept = request.headers.get("accept-language", "").lower()
        for part in accept.split(","):
            tag = part.split(";")[0].strip()
            for loc in meta.locales:
                if tag and (tag == loc.lower() or tag == loc.lower().split("-")[0]):
                    return loc
        return meta.default_locale

    def limit(self, request: Request, bucket: str, limit: Limit) -> None:
        """Count a request against a limit; 429 with Retry-After when over it."""
        wait = self.limiter.hit(bucket, client_address(request, self.proxies), limit)
        if wait is not None:
            raise HTTPException(429, ui("too_many", self.locale_of(request)),
                                headers={"Retry-After": retry_after(wait)})

    def page(self, request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a page template with the common context (locale, titles, translations)."""
        locale = self.locale_of(request)
        html = self.pages.get_template(template).render(
            locale=locale, locales=self.bundle.meta.locales, bundle_title=self.bundle.meta.title(locale),
            t=lambda key: ui(key, locale), **context)
        return HTMLResponse(html, status_code=status)


def create_app(system: System, *, secret: str | None = None,
               monotonic: Callable[[], float] = time.monotonic) -> Starlette:
    """The Starlette application serving one booted system."""
    web = Web(system, secret=secret or secret_key(), proxies=trusted_proxies(), monotonic=monotonic)
    bundle = system.bundle

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "bundle": bundle.name, "version": bundle.version,
                             "hash": bundle.hash})

    async def submit(request: Request) -> JSONResponse:
        form_name = request.path_params["form"]
        form = system.forms.form(form_name)  # 404 before reading the body
        if not form.spec.public:
            # Signed-in API access arrives with the web issue; until then only public forms.
            raise HTTPException(403, "this form accepts submissions from signed-in users only")
        web.limit(request, "api-submit", web.api_submits)
        data = await _json_body(request)
        if not isinstance(data, dict):
            return JSONResponse({"error": "the body must be a JSON object of field values"}, 400)
        result = system.forms.submit(
            form_name, data, actor=None, locale=web.locale_of(request),
            idempotency_key=request.headers.get("idempotency-key"), channel="api", anonymous=True)
        body = {"id": result.record_id, "form": result.form, "query_no": result.query_no,
                "created": result.created}
        return JSONResponse(body, status_code=201 if result.created else 200)

    async def list_records(request: Request) -> JSONResponse:
        form_name = request.path_params["form"]
        form = system.forms.form(form_name)
        limit = _int_param(request, "limit", 50, 1, 500)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        rows = system.forms.list(form_name, limit=limit, offset=offset)
        items = [{"id": r["id"], "query_no": r["query_no"], "status": r["status"],
                  "created_at": r["created_at"].isoformat(), **form.to_json(r)} for r in rows]
        return JSONResponse({"items": items, "total": system.forms.count(form_name),
                             "limit": limit, "offset": offset})

    async def home(request: Request) -> HTMLResponse:
        locale = web.locale_of(request)
        forms_view = []
        for name, form in system.forms.forms.items():
            columns = list(form.spec.list_fields) or list(form.stored[:5])
            rows = system.forms.list(name, limit=100)
            forms_view.append({
                "name": name, "title": form.spec.text(locale), "total": system.forms.count(name),
                "public": form.spec.public,
                "columns": [(c, form.field(c).text(locale)) for c in columns],
                "rows": [{"query_no": r["query_no"], "status": r["status"], "created_at": r["created_at"],
                          "cells": [form.display(c, r.get(c), locale) for c in columns]} for r in rows],
            })
        return web.page(request, "records.html", forms=forms_view, version=bundle.version,
                        hash=bundle.hash)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationFailed)
        return JSONResponse({"error": "the submission has errors", "fields": exc.errors}, 422)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def on_conflict(request: Request, exc: Exception) -> Response:
        # Reusing an idempotency key for a different body is a client error (IETF draft: 422).
        status = 422 if isinstance(exc, IdempotencyKeyReused) else 409
        return _error(request, status, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = _error(request, exc.status_code, exc.detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def on_crash(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(6)
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        return _error(request, 500, f"something went wrong on our side (reference {ref})")

    routes = [
        Route("/", home),
        Route("/healthz", healthz),
        Route("/api/v1/forms/{form}/records", submit, methods=["POST"]),
        Route("/api/v1/forms/{form}/records", list_records, methods=["GET"]),
        *public.routes(web),
        *uploads.routes(web),
        *lookup.routes(web),
        Mount("/static", StaticFiles(packages=[("web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders),
                    Middleware(BodySizeLimit, default=MAX_REQUEST_BODY, overrides={"/api/v1/uploads": MAX_UPLOAD_BODY})],
        exception_handlers={ValidationFailed: on_validation, NotFoundError: on_not_found,
                            ConflictError: on_conflict, HTTPException: on_http, Exception: on_crash},
    )
    app.state.system = system
    app.state.web = web
    return app


def _error(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status}</h1><p>"
                        f"{_escape(message)}</p>", status_code=status)


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))


async def _json_body(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise HTTPException(413, f"the body is larger than {MAX_JSON_BODY:,} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_JSON_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_JSON_BODY:,} bytes")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise HTTPException(400, "the body is not valid JSON") from None


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"'{name}' must be a whole number") from None
    return max(low, min(high, value))
