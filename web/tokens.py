"""API tokens for integrations: `Authorization: Bearer dk_...` acts as the token's user.

- A token is 32 random bytes (`secrets.token_urlsafe`), shown once when created; only its
  sha256 is stored (`dk_api_tokens`), so a leaked database holds no usable token. A plain hash is
  enough because the token has 256 bits of entropy: there is nothing to brute-force.
- Created and revoked from the command line (`docket tokens create USER --name N`,
  `docket tokens revoke ID`, `docket tokens list`) or over the API by the user themselves
  (`POST /api/v1/tokens`) and by admins (`GET /api/v1/tokens` lists everyone's).
- `BearerTokens` (ASGI middleware) turns a valid token into `request.state.principal` with the
  user's current roles and departments, and `request.state.auth = "token"`. A request that
  sends a bearer token which is unknown, revoked, or of a deactivated user is answered 401 at
  once: it never falls back to anonymous, so a broken integration fails loudly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.errors import NotFoundError
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import api_tokens, users
from forms.access import load_principal
from web.offload import offload
from web.scope import header, state_value

if TYPE_CHECKING:
    from web.app import Web

TOKEN_PREFIX = "dk_"
USE_RECORDED_EVERY = timedelta(minutes=10)
"""`last_used_at` is written at most this often per token: no write on every API call."""
MAX_NAME = 100


@dataclass(frozen=True)
class TokenInfo:
    """A token as lists show it (never the secret)."""

    id: int
    username: str
    name: str
    prefix: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "user": self.username, "name": self.name, "prefix": self.prefix,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by,
                "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
                "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
                "active": self.revoked_at is None}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(conn: Connection, username: str, name: str, *, now: datetime,
                 created_by: str | None = None) -> tuple[str, int]:
    """A new token for `username` (inside the caller's transaction): (the secret, its id).

    The secret is returned only here; NotFoundError if the user is unknown or deactivated.
    """
    name = (name or "").strip()
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"a token needs a name of 1 to {MAX_NAME} characters (what uses it)")
    user = conn.execute(select(users.c.id, users.c.is_active).where(users.c.username == username)).first()
    if user is None or not user.is_active:
        raise NotFoundError(f"no active user '{username}'")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(insert(api_tokens).values(
        user_id=user.id, name=name, token_hash=token_hash(secret), prefix=secret[:10],
        created_at=now, created_by=created_by)).inserted_primary_key[0]
    return secret, int(token_id)


def revoke_token(conn: Connection, token_id: int, *, now: datetime, owner: str | None = None) -> TokenInfo:
    """Revoke a token (idempotent); `owner` given: only a token of that user (else NotFoundError)."""
    info = token_info(conn, token_id)
    if info is None or (owner is not None and info.username != owner):
        raise NotFoundError(f"no token {token_id}")
    if info.revoked_at is None:
        conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=now))
    return token_info(conn, token_id)  # type: ignore[return-value]


def _infos(conn: Connection, *conditions: Any) -> list[TokenInfo]:
    rows = conn.execute(
        select(api_tokens, users.c.username).join(users, users.c.id == api_tokens.c.user_id)
        .where(*conditions).order_by(api_tokens.c.id)).mappings()
    return [TokenInfo(r["id"], r["username"], r["name"], r["prefix"], r["created_at"], r["created_by"],
                      r["last_used_at"], r["revoked_at"]) for r in rows]


def token_info(conn: Connection, token_id: int) -> TokenInfo | None:
    found = _infos(conn, api_tokens.c.id == token_id)
    return found[0] if found else None


def list_tokens(conn: Connection, username: str | None = None) -> list[TokenInfo]:
    """Every token (of `username` if given), oldest first, revoked ones included."""
    return _infos(conn, *([users.c.username == username] if username else []))


def principal_for_token(web: "Web", token: str) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown, revoked, user deactivated)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    system = web.system  # read at call time: a definitions reload replaces it
    digest = token_hash(token)
    with read_transaction(system.db) as conn:
        row = conn.execute(
            select(api_tokens.c.id, api_tokens.c.token_hash, api_tokens.c.last_used_at, users.c.username)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.token_hash == digest, api_tokens.c.revoked_at.is_(None))).first()
        # The index finds the row; the constant-time compare keeps the check itself timing-safe.
        if row is None or not hmac.compare_digest(row.token_hash, digest):
            return None
        principal = load_principal(conn, system.runtime, row.username)
    if principal is None:
        return None
    now = system.runtime.clock.now()
    if row.last_used_at is None or now - row.last_used_at >= USE_RECORDED_EVERY:
        with transaction(system.db) as conn:
            conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
    return principal


METRICS_PATH = "/metrics"
"""Prometheus sends the operator's metrics token (web.metrics), not an API token: it is
checked there."""


class BearerTokens:
    """Sets `request.state.principal` from `Authorization: Bearer <token>` (pure ASGI).

    Placed inside the session middleware, so a token wins over a cookie sent alongside it.
    """

    def __init__(self, app: ASGIApp, *, web: "Web"):
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = header(scope, b"authorization")
        if sent is None or scope["path"] == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        scheme, _, credentials = sent.partition(" ")
        if scheme.lower() != "bearer":
            await self.app(scope, receive, send)
            return
        principal = await offload.run(principal_for_token, self.web, credentials.strip())
        if principal is None:
            await _unauthorized(send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["auth"] = "token"
        await self.app(scope, receive, send)


def _revoke(web: "Web", principal: Principal, token_id: int, owner: str | None) -> Any:
    """Revoke a token and audit it, in one transaction (run off the event loop: it writes)."""
    from web.auth import audit  # web.auth imports this module

    now = web.system.runtime.clock.now()
    with transaction(web.system.db) as conn:
        info = revoke_token(conn, token_id, now=now, owner=owner)
        audit(conn, principal, "token.revoked", f"token:{token_id}", {"user": info.username}, at=now)
    return info


def routes(web: "Web") -> list[Route]:
    """`/api/v1/tokens`: list (own; admins: everyone's, `?user=` to narrow), create your own,
    revoke (yours; admins: anyone's). Creating answers the secret once, and takes a signed-in
    session: a token may list and revoke, not create."""
    from web.api import check_same_site, json_object, path_id, require
    from web.auth import audit

    async def list_(request: Request) -> Response:
        principal = require(request)
        wanted = request.query_params.get("user")
        if not principal.is_admin:
            wanted = principal.username
        with read_transaction(web.system.db) as conn:
            items = list_tokens(conn, wanted or None)
        return JSONResponse({"items": [i.to_json() for i in items]})

    async def create(request: Request) -> Response:
        principal = require(request)
        check_same_site(request)
        if state_value(request.scope, "auth") == "token":
            # A leaked token must not mint others that outlive its revocation.
            return JSONResponse({"error": "a token cannot create tokens: sign in to create one, "
                                          "or use `docket tokens create`"}, 403)
        body = await json_object(request)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
            return JSONResponse({"error": "the token needs a name", "fields": {
                "name": [f"1 to {MAX_NAME} characters saying what uses the token"]}}, 400)
        now = web.system.runtime.clock.now()

        def store() -> tuple[str, Any]:
            with transaction(web.system.db) as conn:
                secret, token_id = create_token(conn, principal.username, name, now=now,
                                                created_by=principal.username)
                info = token_info(conn, token_id)
                audit(conn, principal, "token.created", f"token:{token_id}",
                      {"user": principal.username, "name": name.strip()}, at=now)
            return secret, info

        # Off the event loop: a write transaction may wait for the database's write lock.
        secret, info = await offload.run(store)
        assert info is not None
        return JSONResponse({**info.to_json(), "token": secret}, status_code=201)

    async def revoke(request: Request) -> Response:
        principal = require(request)
        check_same_site(request)
        token_id = path_id(request, "token")
        owner = None if principal.is_admin else principal.username
        info = await offload.run(_revoke, web, principal, token_id, owner)
        return JSONResponse(info.to_json())

    async def admin_page(request: Request) -> Response:
        """Every token, for administrators, with a revoke button each."""
        from zoneinfo import ZoneInfo

        from web.auth import require_admin

        require_admin(request)
        zone = ZoneInfo(web.bundle.meta.timezone)
        with read_transaction(web.system.db) as conn:
            items = list_tokens(conn)
        revoked = request.query_params.get("revoked", "")
        from web.admin import SECTIONS  # the administration tabs, this page among them

        return web.page(request, "admin_tokens.html", tokens=items, revoked=revoked if revoked.isdigit() else "",
                        section="tokens", sections=SECTIONS,
                        when=lambda at: at.astimezone(zone).strftime("%Y-%m-%d %H:%M"))

    async def admin_revoke(request: Request) -> Response:
        from web.auth import require_admin

        principal = require_admin(request)
        token_id = path_id(request, "token")
        await offload.run(_revoke, web, principal, token_id, None)
        return RedirectResponse(f"/admin/tokens?lang={web.locale_of(request)}&revoked={token_id}", status_code=303)

    return [Route("/api/v1/tokens", list_, methods=["GET"]),
            Route("/api/v1/tokens", create, methods=["POST"]),
            Route("/api/v1/tokens/{id}", revoke, methods=["DELETE"]),
            Route("/admin/tokens", admin_page, methods=["GET"]),
            Route("/admin/tokens/{id}/revoke", admin_revoke, methods=["POST"])]


async def _unauthorized(send: Send) -> None:
    body = b'{"error": "the API token is unknown, revoked, or its user is deactivated"}'
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b'Bearer error="invalid_token"')]})
    await send({"type": "http.response.body", "body": body})


__all__ = ["BearerTokens", "TOKEN_PREFIX", "TokenInfo", "create_token", "list_tokens",
           "principal_for_token", "revoke_token", "routes", "token_hash", "token_info"]
