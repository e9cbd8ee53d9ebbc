"""Serving Docket under a path of a shared host (`https://oa.example-post.cn/docket/`).

The path is the one of DOCKET_PUBLIC_URL: the address people use says where Docket lives, so
there is nothing else to set. Inside, every route, page and check works with the application's
own paths (`/inbox`); the prefix comes off a request on its way in and goes back on at the
edges on the way out: the pages' links (templates write `{{ root }}/inbox`), and here, for
every response, redirects (`Location`) and cookies (`Path`). A request may arrive with the
prefix (a proxy that passes the path on as it is) or without it (one that strips it), so
either proxy set-up works, and a health check straight to the port still finds /healthz.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.site import configured_public_url

_COOKIE_PATH = re.compile(rb"(;\s*[Pp]ath=)(/[^;]*)")


def path_prefix() -> str:
    """The path of DOCKET_PUBLIC_URL without its trailing `/` (`/docket`), or "" when Docket
    has a host name of its own (or no public address is set)."""
    url = configured_public_url()
    return urlsplit(url).path.rstrip("/") if url else ""


def public_base(request: Request) -> str:
    """Where people reach this Docket, for links that leave the site (QR codes, embed
    snippets): DOCKET_PUBLIC_URL (with the prefix, if any) when set, else the address this
    request came to (there is no prefix without a public address)."""
    return configured_public_url() or str(request.base_url).rstrip("/")


class PathPrefix:
    """ASGI middleware: the application's paths inside, `prefix` + path outside."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app = app
        self.prefix = prefix
        self._bytes = prefix.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.prefix or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == self.prefix or path.startswith(self.prefix + "/"):
            scope = dict(scope)
            scope["path"] = path[len(self.prefix):] or "/"
            raw = scope.get("raw_path")
            if isinstance(raw, bytes) and raw.startswith(self._bytes):
                scope["raw_path"] = raw[len(self._bytes):] or b"/"

        async def send_outside(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, self._outside(k, v)) for k, v in message.get("headers", ())]}
            await send(message)

        await self.app(scope, receive, send_outside)

    def _outside(self, name: bytes, value: bytes) -> bytes:
        """A response header as the browser must see it under the prefix."""
        if name == b"location" and value.startswith(b"/") and not value.startswith(b"//"):
            return self._bytes + value
        if name == b"set-cookie":
            return _COOKIE_PATH.sub(self._cookie_path, value, count=1)
        return value

    def _cookie_path(self, match: Any) -> bytes:
        path = match.group(2)
        return match.group(1) + self._bytes + (b"" if path == b"/" else path)


__all__ = ["PathPrefix", "path_prefix", "public_base"]
