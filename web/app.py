"""The HTTP application: a Starlette app over a booted `System`.

This is the walking skeleton of the web issue: health, the record list page and the JSON
submission API. Errors never show a stack trace: they are logged with a correlation id and the
user sees a short message with that id.
"""

from __future__ import annotations

import errno
import logging
import secrets
import time
from contextlib import suppress
from typing import Any, Callable

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.convertors import IntegerConvertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from engine.bundle import Bundle
from engine.errors import ConflictError, IdempotencyKeyReused, NotFoundError, ValidationFailed
from engine.registry import plugin_in_traceback
from web import lookup, public, uploads
from web import account, admin, auth
from web import api, openapi, tokens, webhooks
from web import definitions_pages, inbox, records_pages
from web import dashboards, metrics, printing
from web.antispam import TicketSigner
from web.forms_body import CloseForms
from web.i18n import ui, wait_text
from web.json_answer import JSONAnswer
from web.offload import offload
from web.prefix import PathPrefix, path_prefix
from web.ratelimit import Limit, RateLimiter, client_address, retry_after
from web.scope import header
from web.security import SECURITY_HEADERS, BodySizeLimit, BodyTooLarge, SecurityHeaders, let_embedders_frame
from web.settings import api_submits_per_minute, embed_origins, pending_uploads_cap, secret_key, trusted_proxies
from web.system import System
from web.upload_room import UploadRoom

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 2 * 1024 * 1024
"""Any request body (forms, JSON) is cut off at this size while it streams in."""
MAX_UPLOAD_BODY = 110 * 1024 * 1024
"""Uploads may be larger; each field type sets its own, smaller limit."""
PAGES_WITH_FILES = {"/f/": public.MAX_FORM_BYTES, "/records/": records_pages.MAX_STEP_BYTES,
                    "/track/answer": lookup.MAX_ANSWER_BYTES}
"""Pages whose forms carry files (multipart): their handlers read up to these sizes, so the
2 MB default would refuse one photo from a phone camera before the handler could say which."""

class DatabaseId(IntegerConvertor):
    """`{name:int}` in a route: at most 18 digits, so every number it takes fits the 64-bit id
    columns. Starlette's own took any length, and SQLite refused a longer one with OverflowError:
    a 500 on a record page, its print or an incident's retry for anyone who typed one."""

    regex = "[0-9]{1,18}"


# Before any route is built: every `{...:int}` of the application is a database id. A longer
# number then matches no route, which is answered 404 like any unknown page.
register_url_convertor("int", DatabaseId())

LANG_COOKIE = "docket_lang"
"""The language a user picked with `?lang=`: most links inside the pages do not repeat it."""


def remember_language(request: Request, response: Response, locales: Any) -> None:
    """Keep a `?lang=` choice in a cookie, so the next page (a link without `?lang=`, the
    redirect after sign-in) stays in that language."""
    wanted = request.query_params.get("lang") if request.scope.get("query_string") else None
    if wanted in locales and request.cookies.get(LANG_COOKIE) != wanted:
        response.headers.append("set-cookie", auth.cookie_header(
            LANG_COOKIE, wanted, secure=auth.is_secure(request), max_age=365 * 24 * 3600))


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("web", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["filesize"] = file_size
    env.globals["language_name"] = language_name
    return env


def language_name(locale: str) -> str:
    """A language as its own speakers name it, for the links that switch to it: a Chinese
    reader looks for 中文 on an English page, not 'Chinese'."""
    return {"zh-CN": "中文", "en": "English"}.get(locale, locale)


def file_size(size: int) -> str:
    """A file's size in symbols read alike in every language (Jinja's `filesizeformat` writes
    the English word "Bytes" on Chinese pages): 150 B, 12.3 KB, 4.5 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


class Web:
    """What every page handler shares: the system, templates, signer, rate limiter, locale."""

    def __init__(self, system: System, *, secret: str, proxies: tuple[str, ...] = (),
                 monotonic: Callable[[], float] = time.monotonic):
        self.system = system
        self.pages = _templates()
        self.signer = TicketSigner(secret)
        self.limiter = RateLimiter(monotonic)
        self.proxies = frozenset(proxies)  # looked up per rate-limited request (client_address)
        self.embedders = embed_origins()
        self.api_submits = Limit(api_submits_per_minute(), 60)
        self.auth = auth.Auth(secret, monotonic)  # sessions, CSRF keys, sign-in throttle
        self.step_pass = lookup.StepPass(secret)  # the customer's answer to their step on /track
        self.upload_room = UploadRoom(self, pending_uploads_cap(), monotonic)  # anonymous uploads' cap
        self.root = path_prefix()  # "/docket" when served under a path of a shared host (web.prefix)
        self.pages.globals["root"] = self.root

    @property
    def bundle(self) -> Bundle:
        return self.system.bundle

    def locale_of(self, request: Request) -> str:
        """`?lang=` if the bundle has it, else the language the user last chose (a cookie),
        else the first bundle locale the browser accepts."""
        meta = self.bundle.meta
        # Read raw: this runs on every API submission, most without a query string (web.scope).
        wanted = request.query_params.get("lang") if request.scope.get("query_string") else None
        if wanted in meta.locales:
            return wanted
        chosen = request.cookies.get(LANG_COOKIE) if header(request.scope, b"cookie") else None
        if chosen in meta.locales:
            return chosen
        accept = (header(request.scope, b"accept-language") or "").lower()
        for part in accept.split(","):
            tag = part.split(";")[0].strip()
            if not tag:
                continue
            # The locale itself, else one of its language: "en-GB" or "en-US" alone (Safari's
            # header) reads English, "zh" or "zh-TW" the Chinese the bundle has.
            exact = [loc for loc in meta.locales if tag == loc.lower()]
            same = [loc for loc in meta.locales if tag.split("-")[0] == loc.lower().split("-")[0]]
            if exact or same:
                return (exact or same)[0]
        return meta.default_locale

    def limit(self, request: Request, bucket: str, limit: Limit) -> None:
        """Count a request against a limit; 429 with Retry-After when over it."""
        wait = self.limiter.hit(bucket, client_address(request, self.proxies), limit)
        if wait is not None:
            # The page (or the API's error) says how long, in the reader's words, as the header does.
            header = retry_after(wait)
            raise HTTPException(429, ui("too_many", self.locale_of(request)).format(
                wait=wait_text(header, self.locale_of(request))), headers={"Retry-After": header})

    def page(self, request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        """Render a page template with the common context (locale, titles, translations)."""
        locale = self.locale_of(request)
        common = dict(
            locale=locale, locales=self.bundle.meta.locales, bundle_title=self.bundle.meta.title(locale),
            t=lambda key: ui(key, locale), principal=auth.principal_of(request),
            csrf_field=lambda: auth.csrf_field(request), csrf_token=lambda: auth.csrf_token(request),
            lang_url=lambda loc: lang_url(request, loc), path=request.url.path)
        html = self.pages.get_template(template).render({**common, **context})  # a page may override
        response = HTMLResponse(html, status_code=status)
        remember_language(request, response, self.bundle.meta.locales)
        return response


def create_app(system: System, *, secret: str | None = None,
               monotonic: Callable[[], float] = time.monotonic) -> Starlette:
    """The Starlette application serving one booted system."""
    web = Web(system, secret=secret or secret_key(), proxies=trusted_proxies(), monotonic=monotonic)

    health = {"refused": None}  # the last refusal logged: a check every few seconds logs it once

    async def healthz(request: Request) -> JSONResponse:
        running = web.system.bundle  # after a definitions reload, the new version
        about = {"bundle": running.name, "version": running.version, "hash": running.hash}
        # A load balancer must stop sending traffic to a server whose database is gone: ask it.
        refused = await offload.run(database_refused, web.system.db)
        if refused != health["refused"]:
            health["refused"] = refused
            if refused is not None:
                log.warning("health check: %s", refused)
            else:
                log.warning("health check: the database answers again")
        if refused is not None:
            # The reason stays in the log: it can name internal hosts, and anyone may ask.
            return JSONAnswer({"status": "unavailable", **about}, status_code=503)
        return JSONAnswer({"status": "ok", **about})

    async def favicon(request: Request) -> Response:
        # Browsers ask for /favicon.ico on every page whatever the page links; a 404 each time
        # fills the console and the access log.
        return RedirectResponse("/static/favicon.svg", status_code=301)

    async def home(request: Request) -> Response:
        # Staff start at their inbox; everyone else at sign-in (the public form and the
        # progress lookup have their own addresses).
        target = "/inbox" if auth.principal_of(request) is not None else "/signin"
        return RedirectResponse(target, status_code=303)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationFailed)
        return JSONAnswer({"error": "the submission has errors", "fields": exc.errors}, 422)

    async def on_not_found(request: Request, exc: Exception) -> Response:
        return _error(request, 404, str(exc))

    async def on_conflict(request: Request, exc: Exception) -> Response:
        # Reusing an idempotency key for a different body is a client error (IETF draft: 422).
        status = 422 if isinstance(exc, IdempotencyKeyReused) else 409
        return _error(request, status, str(exc))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if isinstance(exc, BodyTooLarge):
            return _body_refused(request, exc.limit)
        response = _error(request, exc.status_code, exc.detail)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def on_crash(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(6)
        plugin = plugin_in_traceback(exc)
        refusal = server_refusal(exc) if plugin is None else None
        if holds_nul(exc):
            # The client's doing, not a bug: PostgreSQL stores no U+0000 in text, and a typed
            # value, a search or a user name may carry one from anywhere (SQLite stores it).
            log.warning("refused %s %s: a value holds the NUL character", request.method, request.url.path)
            response = _error(request, 400, "a value sent holds the NUL character (U+0000), which cannot "
                                            "be stored; remove it and send again")
        elif refusal is not None:
            # Not a bug: the disk is full, the database server is down or busy. One line the
            # operator can act on; the traceback (with the SQL) only at debug.
            log.error("error %s on %s %s: %s", ref, request.method, request.url.path, refusal)
            log.debug("error %s: the refusal", ref, exc_info=exc)
            response = _error(request, 503, _own_words(request, "error_refused", ref=ref))
        else:
            log.exception("unhandled error %s on %s %s%s", ref, request.method, request.url.path,
                          f": a bug in the plugin {plugin}" if plugin else "")
            response = _error(request, 500, _own_words(request, "error_crash", ref=ref))
        with suppress(AttributeError):  # an exception without a __dict__ is logged twice, no worse
            setattr(exc, ANSWERED, True)
        # This answer comes from outside the middleware stack: add the security headers here.
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    async def body_refused(scope: Scope, limit: int) -> Response:
        return _body_refused(Request(scope), limit)

    routes = [
        *api.routes(web),  # first: it holds the busiest route (API submissions); paths do not overlap
        Route("/", home),
        Route("/healthz", healthz),
        Route("/favicon.ico", favicon),
        *openapi.routes(web),
        *tokens.routes(web),
        *webhooks.routes(web),
        *public.routes(web),
        *uploads.routes(web),
        *lookup.routes(web),
        *auth.routes(web),
        *admin.routes(web),
        *inbox.routes(web),
        *records_pages.routes(web),
        *dashboards.routes(web),
        *definitions_pages.routes(web),
        *printing.routes(web),
        *metrics.routes(web),
        *account.routes(web),
        Mount("/static", StaticFiles(packages=[("web", "static")]), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(PathPrefix, prefix=web.root),  # first: everything inside sees the app's own paths
                    Middleware(SecurityHeaders),
                    Middleware(BodySizeLimit, default=MAX_REQUEST_BODY, overrides={"/api/v1/uploads": MAX_UPLOAD_BODY},
                               multipart=PAGES_WITH_FILES, refusal=body_refused),
                    Middleware(tokens.BearerTokens, web=web),
                    Middleware(auth.AuthMiddleware, web=web),
                    Middleware(CloseForms)],  # last: it shares the router's scope, where read_form notes forms
        exception_handlers={ValidationFailed: on_validation, NotFoundError: on_not_found,
                            ConflictError: on_conflict, HTTPException: on_http, Exception: on_crash},
    )
    app.state.system = system
    app.state.web = web
    return app


ANSWERED = "docket_answered"
"""Set on an exception the application logged and answered (a 500 or 503 with a reference).
Starlette raises it again after answering so that the server may log it; `docket serve` does
not let uvicorn log it a second time (cli.py, `_logged_once`)."""


DISK_REFUSALS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})
"""What the operating system answers when the server's disk, not Docket, is at fault."""


def server_refusal(exc: BaseException) -> str | None:
    """What refused, in one line, when `exc` is the server's storage refusing to work: the
    database (a full disk, a read-only file, a server down or too busy), with its own reason, or
    the disk under the uploaded files; None for anything else. Never the SQL or its parameters:
    they can hold personal data."""
    from engine.storage.refusal import database_refusal

    reason = database_refusal(exc)  # a standby that only reads, a lost privilege too: not only OperationalError
    if reason is not None:
        return f"the database refused: {reason}"
    if isinstance(exc, OSError) and exc.errno in DISK_REFUSALS:
        return f"the disk refused: {exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return None


def database_refused(db: Any) -> str | None:
    """Why the database does not answer a trivial query just now (one line, `server_refusal`'s
    words), or None when it does."""
    from sqlalchemy import text

    from engine.storage.db import read_transaction

    try:
        with read_transaction(db) as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means the server cannot serve
        return server_refusal(exc) or f"the database check failed: {type(exc).__name__}"
    return None


def holds_nul(exc: BaseException) -> bool:
    """True when the database refused a value for holding the NUL character: PostgreSQL's text
    columns and parameters cannot (psycopg refuses to send one), nor can jsonb (SQLSTATE 22P05).
    Raised through SQLAlchemy (its `orig`) or straight from a prepared statement (psycopg's own)."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, what SQLAlchemy wrapped, and their causes: never a long chain
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) == "22P05" or "NUL (0x00)" in str(seen):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


ERROR_WORDS = {400: "error_400", 403: "error_403", 404: "error_404", 409: "error_409", 413: "error_413",
               429: "error_429"}

PUBLIC_PAGES = ("/f/", "/track")
"""Pages a customer reaches without signing in: the start page (staff sign-in) is no way back."""


def _own_words(request: Request, key: str, **params: Any) -> str:
    """One of Docket's own error sentences (not an engine's detail) in the reader's language; the
    API's clients read English."""
    web = getattr(request.app.state, "web", None) if "app" in request.scope else None
    locale = "en" if web is None or request.url.path.startswith("/api/") else web.locale_of(request)
    return ui(key, locale).format(**params)


def _error(request: Request, status: int, message: str) -> Response:
    accept = request.headers.get("accept", "")
    if request.url.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept):
        # The API, and a page's script fetching JSON (a dashboard's widget): an answer it can read.
        return JSONAnswer({"error": message}, status_code=status)
    # The detail is the engine's (often English) text: a heading in the reader's language says
    # what happened, and a link leads back instead of leaving a dead end.
    web = getattr(request.app.state, "web", None) if "app" in request.scope else None
    locale = web.locale_of(request) if web is not None else "en"
    root = _escape(web.root) if web is not None else ""
    heading = ui(ERROR_WORDS.get(status, "error_500" if status >= 500 else "error_400"), locale)
    path = request.url.path
    if path.startswith(PUBLIC_PAGES) and status in (400, 413, 429, 500, 503):
        # A customer refused on the public form or the lookup (or failed by the server, to try
        # again) goes back to that page.
        back, back_text = f"{root}{_escape(path)}?lang={_escape(locale)}", ui("error_back", locale)
    elif path.startswith(PUBLIC_PAGES) and status == 404:
        # A customer's dead link or QR code: the progress lookup, always there, not the staff sign-in.
        back, back_text = f"{root}/track?lang={_escape(locale)}", ui("lookup_title", locale)
    else:
        back, back_text = f"{root}/?lang={_escape(locale)}", ui("error_home", locale)
    response = HTMLResponse(f'<!doctype html><html lang="{_escape(locale)}"><meta charset="utf-8">'
                            '<meta name="viewport" content="width=device-width, initial-scale=1">'
                            f'<title>{status} · {_escape(heading)}</title><link rel="stylesheet" href="{root}/static/docket.css">'
                            f'<main><h1>{_escape(heading)}</h1><p>{_escape(message)}</p>'
                            f'<p><a href="{back}" id="error-home">{_escape(back_text)}</a></p>'
                            '</main></html>', status_code=status)
    if path.startswith(PUBLIC_PAGES) and web is not None:
        let_embedders_frame(response, web.embedders)  # shown where the public page was, framed too
    return response


def _body_refused(request: Request, limit: int) -> Response:
    """The answer to a body over `limit` bytes: the API's JSON error, or a page in the reader's
    language saying what to do (a browser posting a form with big photos gets here)."""
    if request.url.path.startswith("/api/") or "app" not in request.scope:
        return _error(request, 413, f"the request body is larger than {limit:,} bytes")
    locale = request.app.state.web.locale_of(request)
    return _error(request, 413, ui("body_too_large", locale).format(mb=f"{limit / (1024 * 1024):g}"))


def lang_url(request: Request, locale: str) -> str:
    """This page's address in another language (other query parameters kept)."""
    from urllib.parse import urlencode

    params = [(k, v) for k, v in request.query_params.multi_items() if k != "lang"]
    return request.url.path + "?" + urlencode([*params, ("lang", locale)])


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
