"""`/account`: the signed-in user's own page: who they are to Docket, and their password.

An administrator gives a new colleague a first password (`/admin/users`); the colleague then
changes it here, knowing the current one. A change ends every other session of theirs (a
stolen cookie stops working) and keeps the one it was made from. A wrong current password
counts against the same limits as a failed sign-in (per address), so this form is no way
around them, and is written to the audit log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from engine.storage.db import read_transaction, transaction
from engine.identity import Principal
from engine.storage.tables import users
from engine.types import label_text
from web.auth import (MAX_PASSWORD, SIGNIN_POSTS_PER_IP, audit, end_sessions_of, hash_password,
                      password_problems, require_principal, verify_password)
from web.i18n import ui, wait_text
from web.offload import offload
from web.ratelimit import client_address, retry_after

if TYPE_CHECKING:
    from web.app import Web


def routes(web: "Web") -> list[Route]:
    """The account page and its password form."""

    def signed_in(request: Request) -> Principal:
        principal = require_principal(request)
        if getattr(request.state, "auth", None) == "token" or principal.user_id is None:
            # An API token acts for its user; it does not change their password.
            raise HTTPException(403, ui("account_session_only", web.locale_of(request)))
        return principal

    def show(request: Request, *, errors: dict[str, str] | None = None, status: int = 200) -> Response:
        principal = signed_in(request)
        locale = web.locale_of(request)
        meta = web.bundle.meta
        with read_transaction(web.system.db) as conn:
            row = conn.execute(select(users.c.email, users.c.phone).where(users.c.id == principal.user_id)).first()
        roles = [label_text(getattr(meta.roles.get(r), "label", None), locale, r) for r in sorted(principal.roles)]
        department = meta.departments.get(principal.department or "")
        response = web.page(request, "account.html", status=status, errors=errors or {},
                            roles=roles, email=row.email if row else None, phone=row.phone if row else None,
                            department=label_text(department.label, locale, department.code) if department else "",
                            saved=request.query_params.get("saved") == "1",
                            temporary=bool(getattr(request.state, "password_temporary", False)))
        response.headers["cache-control"] = "no-store"
        return response

    async def account(request: Request) -> Response:
        return show(request)

    async def change_password(request: Request) -> Response:
        principal = signed_in(request)
        web.limit(request, "signin", SIGNIN_POSTS_PER_IP)
        posted = await request.form(max_files=0, max_fields=20)
        locale = web.locale_of(request)
        current = str(posted.get("current", ""))[:MAX_PASSWORD + 1]
        new, again = str(posted.get("password", "")), str(posted.get("again", ""))
        errors: dict[str, str] = {}
        problems = password_problems(new, locale)
        if problems:
            errors["password"] = " ".join(problems)
        elif new != again:
            errors["again"] = ui("account_passwords_differ", locale)
        elif new == current:
            errors["password"] = ui("account_password_same", locale)
        token = getattr(request.state, "session_token", None)
        address = client_address(request, web.proxies)
        runtime = web.system.runtime
        # Counted as a sign-in from a known browser: a stolen session cannot guess on and on.
        wait = web.auth.throttle.attempt(principal.username, address, True)
        if wait is not None:
            header = retry_after(wait)
            response = show(request, errors={"current": ui("signin_throttled", locale).format(
                wait=wait_text(header, locale))}, status=429)
            response.headers["retry-after"] = header
            return response

        def store() -> bool:
            now = runtime.clock.now()
            with transaction(runtime.db) as conn:
                stored = conn.execute(select(users.c.password_hash).where(users.c.id == principal.user_id)).scalar()
                if not verify_password(stored, current):  # verified even when the new one is refused: same time
                    audit(conn, principal, "user.password.failed", principal.username, {"reason": "wrong password"},
                          at=now, ip=address)
                    return False
                if errors:
                    return True
                conn.execute(update(users).where(users.c.id == principal.user_id)
                             .values(password_hash=hash_password(new), password_temporary=False))
                ended = end_sessions_of(conn, principal.user_id, keep=token)
                audit(conn, principal, "user.password", principal.username,
                      {"by": "self", "other_sessions_ended": ended}, at=now, ip=address)
                return True

        if not await offload.run(store):
            errors = {"current": ui("account_current_wrong", locale)}
        else:
            web.auth.throttle.succeeded(principal.username, address, True)
        if errors:
            return show(request, errors=errors, status=422)
        return RedirectResponse(f"/account?lang={locale}&saved=1", status_code=303)

    return [Route("/account", account, methods=["GET"]),
            Route("/account/password", change_password, methods=["POST"])]
