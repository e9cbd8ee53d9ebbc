"""Security headers on every response; public forms may be framed by configured sites."""

from __future__ import annotations

from typing import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.switches import switched_on

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


def embeddable_csp(origins: tuple[str, ...]) -> str:
    """The CSP of a page that may be framed by the application itself and `origins`."""
    directives = [d.strip() for d in SECURITY_HEADERS["content-security-policy"].split(";")
                  if d.strip() and not d.strip().startswith("frame-ancestors")]
    return "; ".join([*directives, "frame-ancestors " + " ".join(("'self'", *origins))])


def let_embedders_frame(response: Response, origins: tuple[str, ...]) -> Response:
    """Let the configured sites (`origins`) frame `response`, a page the embedded public form
    leads to (a refused post, the acknowledgement, the lookup, their error pages): a page the
    browser refuses to frame shows the customer an error where the answer should be. With no
    site configured the page keeps `frame-ancestors 'none'`."""
    if origins:
        response.headers["content-security-policy"] = embeddable_csp(origins)
    return response


_ENCODED_HEADERS = tuple((key.encode(), value.encode()) for key, value in SECURITY_HEADERS.items())
"""SECURITY_HEADERS as the raw pairs an ASGI response carries (encoded once, not per response)."""

HSTS = (b"strict-transport-security", b"max-age=31536000")
"""Sent with every answer that reaches the browser over https: for a year the browser then
goes to this host over https only, so a network in between (a café's Wi-Fi) cannot serve the
sign-in page over http on a later visit. Not `includeSubDomains`: the company's other hosts
may still serve http."""


def served_over_https(scope: Scope) -> bool:
    """True when the browser reached this request over https: the scheme (uvicorn takes
    X-Forwarded-Proto from a proxy it trusts), or DOCKET_SECURE_COOKIES=1, the operator's word
    that a TLS-terminating proxy speaks http to Docket (as web.auth.is_secure reads it)."""
    return scope.get("scheme") in ("https", "wss") or switched_on("DOCKET_SECURE_COOKIES")


class SecurityHeaders:
    """Adds the security headers to every response (pure ASGI: streaming stays streaming)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        https = served_over_https(scope)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = set()
                csp = b""
                for key, value in headers:
                    present.add(key.lower())
                    if key == b"content-security-policy":
                        csp = value  # the last one, as dict(headers) would keep
                embeddable = b"frame-ancestors" in csp and b"frame-ancestors 'none'" not in csp
                for key, value in _ENCODED_HEADERS:
                    # An embeddable page names its framers in CSP; X-Frame-Options cannot.
                    if key not in present and not (embeddable and key == b"x-frame-options"):
                        headers.append((key, value))
                if https and HSTS[0] not in present:
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    """A request body over its limit (413); `limit` is that limit in bytes, so a page can say it."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than {limit:,} bytes")
        self.limit = limit


Refusal = Callable[[Scope, int], Awaitable[Response]]
"""Builds the 413 answer for a request (its scope) over `limit` bytes."""


class BodySizeLimit:
    """Refuses request bodies larger than a limit while they stream in (413), whether or not
    a Content-Length was sent, so no handler ever buffers an oversized body.

    `overrides` maps path prefixes to their own limits (uploads need more than forms).
    `multipart` does the same for multipart/form-data bodies only: a page whose form carries
    files (the public form, a record's step or comment) may post a few phone photos, while a
    url-encoded body to the same address keeps the default limit. Each handler still checks its
    own, usually smaller limit (web.forms_body.read_form). `refusal` builds the answer to a
    body declared too large (default: a JSON error), so a person gets a page, not JSON.
    """

    def __init__(self, app: ASGIApp, *, default: int, overrides: dict[str, int] | None = None,
                 multipart: dict[str, int] | None = None, refusal: Refusal | None = None):
        self.app = app
        self.default = default
        self.overrides = sorted((overrides or {}).items(), key=lambda kv: -len(kv[0]))
        self.multipart = sorted((multipart or {}).items(), key=lambda kv: -len(kv[0]))
        self.refusal = refusal

    def limit_for(self, path: str, content_type: bytes = b"") -> int:
        """The body limit of a request to `path` with this Content-Type."""
        if content_type.lower().startswith(b"multipart/form-data"):
            for prefix, limit in self.multipart:
                if path.startswith(prefix):
                    return limit
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", [])
        content_type = next((value for key, value in headers if key == b"content-type"), b"")
        limit = self.limit_for(scope.get("path", ""), content_type)
        for key, value in headers:
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                if self.refusal is not None:
                    response = await self.refusal(scope, limit)
                    response.headers["connection"] = "close"
                    await response(scope, receive, send)
                else:
                    await _too_large(send, limit)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


async def _too_large(send: Send, limit: int) -> None:
    body = f'{{"error": "the request body is larger than {limit:,} bytes"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
