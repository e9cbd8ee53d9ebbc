"""Sign-in: passwords (Argon2id), server-side sessions, CSRF, sign-in throttling, audit log.

What the rest of the web layer uses (docs/decisions/0007-sign-in-sessions-csrf.md explains
the choices):

- `principal_of(request)`: the signed-in `Principal` or None, set by `AuthMiddleware`.
- `require_principal(request, roles=...)`: pages redirect to /signin, /api/ answers 401, a
  principal without any of `roles` gets 403.
- `csrf_field(request)`: the hidden input every POST form of a page carries. `AuthMiddleware`
  checks the token of EVERY state-changing request (see `csrf_applies`), so a handler cannot
  forget it; `check_csrf(request, form)` re-checks explicitly where a handler wants to.
- `audit(conn, actor, action, target, detail)`: one dk_audit_log row.

Sessions: the cookie `docket_session` holds a 256-bit random token; the database keeps only its
sha256 (dk_sessions) with an idle and an absolute expiry. Before sign-in the cookie holds an
anonymous value (`a.` + random, never stored) that CSRF tokens of the sign-in form are bound to;
signing in always issues a new token (no fixation), signing out deletes the row.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import parse_qsl, quote, urlsplit

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from markupsafe import Markup, escape
from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from engine.clock import SystemClock
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import audit_log, sessions, users
from engine.switches import switch, switched_on
from forms.access import load_principal
from web.i18n import ui, wait_text
from web.offload import offload
from web.ratelimit import Limit, client_address, network_of, retry_after
from web.scope import header, state_value
from web.settings import positive_env

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger(__name__)

SESSION_COOKIE = "docket_session"
DEVICE_COOKIE = "docket_device"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
ANONYMOUS_PREFIX = "a."
"""Anonymous cookie values start with this; real session tokens (token_urlsafe) never contain '.'."""

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_EXEMPT_PREFIXES = ("/f/", "/track", "/api/v1/webhooks/", "/static/")
"""Anonymous public endpoints with their own protection (signed form ticket, rate limits) and
inbound webhooks (authenticated by their own secret, never by a cookie)."""

MIN_PASSWORD = 12
MAX_PASSWORD = 256
"""ASVS V2.1: at least 12 characters; long passphrases allowed (Argon2 has no 72-byte cut-off)."""

TOUCH_EVERY = timedelta(seconds=60)
"""A session's last_seen_at is written at most this often (not on every request)."""

# Argon2id with the first of OWASP's equivalent configurations (Password Storage Cheat Sheet,
# the ASVS V2.4 reference): 46 MiB, 1 pass, 1 lane. ~75 ms of one core per hash; RFC 9106's
# 64 MiB x 3 x 4 lanes cost 215 ms of CPU, too much for a 2-core server at 9 a.m. (ADR 0007).
HASHER = PasswordHasher(time_cost=1, memory_cost=47104, parallelism=1, hash_len=32, salt_len=16,
                        type=Type.ID)
OWASP_ARGON2ID = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
"""OWASP's Argon2id (memory KiB, passes) configurations of equal strength, p=1."""


# -- passwords ---------------------------------------------------------------------------------

_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


def hash_password(password: str) -> str:
    """The Argon2id hash of `password` (a `$argon2id$v=19$m=47104,t=1,p=1$...` string)."""
    return HASHER.hash(password)


def _dummy() -> str:
    """A hash of a random password, verified when the user is unknown or has no password, so
    the answer takes as long as for a real user (no user enumeration by timing)."""
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = HASHER.hash(secrets.token_urlsafe(24))
        return _dummy_hash


def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`; a missing or damaged hash costs the same time."""
    try:
        return HASHER.verify(stored or _dummy(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problems(password: str, locale: str = "en") -> list[str]:
    """What is wrong with a new password (empty when acceptable)."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(ui("password_too_short", locale).format(n=MIN_PASSWORD))
    if len(password) > MAX_PASSWORD:
        problems.append(ui("password_too_long", locale).format(n=MAX_PASSWORD))
    return problems


def set_password(conn: Connection, username: str, password: str, *, temporary: bool = False) -> None:
    """Store a new password for `username` and end all their sessions (ValueError if the
    password is unacceptable, LookupError if there is no such user); `temporary`: the user must
    choose their own at the next sign-in."""
    problems = password_problems(password)
    if problems:
        raise ValueError("; ".join(problems))
    user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if user_id is None:
        raise LookupError(f"no user '{username}'")
    conn.execute(update(users).where(users.c.id == user_id)
                 .values(password_hash=hash_password(password), password_temporary=temporary))
    conn.execute(delete(sessions).where(sessions.c.user_id == user_id))


def authenticate(conn: Connection, username: str, password: str) -> tuple[int | None, str]:
    """(user id, "") for a right password of an active user, else (None, reason). Always
    verifies one Argon2 hash, whatever the reason, so every answer takes the same time."""
    row = conn.execute(select(users.c.id, users.c.password_hash, users.c.is_active)
                       .where(users.c.username == username)).first()
    if row is None:
        verify_password(None, password)
        return None, "unknown user"
    if not verify_password(row.password_hash, password):
        return None, "no password set" if not row.password_hash else "wrong password"
    if not row.is_active:
        return None, "deactivated"
    if HASHER.check_needs_rehash(row.password_hash):  # parameters raised since it was stored
        conn.execute(update(users).where(users.c.id == row.id).values(password_hash=hash_password(password)))
    return int(row.id), ""


# -- audit log ---------------------------------------------------------------------------------

def audit(conn: Connection, actor: str | Principal | None, action: str, target: str | None,
          detail: Mapping[str, Any] | None = None, *, at: datetime | None = None,
          ip: str | None = None) -> None:
    """Record one audit event (dk_audit_log) in the caller's transaction.

    Actions in use: docs/decisions/0007-sign-in-sessions-csrf.md lists them. Pass `at` from
    the runtime clock where one is at hand.
    """
    name = actor.username if isinstance(actor, Principal) else actor
    conn.execute(insert(audit_log).values(at=at or SystemClock().now(), actor=name, action=action,
                                          target=target, detail=dict(detail or {}), ip=ip))


# -- sessions ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SessionPolicy:
    """How long a session lives: `idle` without a request, `absolute` after sign-in."""

    idle: timedelta = timedelta(minutes=30)
    absolute: timedelta = timedelta(hours=12)

    @classmethod
    def from_env(cls) -> "SessionPolicy":
        """$DOCKET_SESSION_IDLE_MINUTES (default 30) and $DOCKET_SESSION_HOURS (default 12):
        ASVS V3.3.2 level 2."""
        return cls(timedelta(minutes=positive_env("DOCKET_SESSION_IDLE_MINUTES", 30)),
                   timedelta(hours=positive_env("DOCKET_SESSION_HOURS", 12)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_session(conn: Connection, user_id: int, now: datetime, policy: SessionPolicy, *,
                   ip: str | None = None, user_agent: str | None = None) -> str:
    """Store a new session for `user_id`; returns the token for the cookie (only its hash is
    kept). Expired sessions of everyone are purged on the way."""
    conn.execute(delete(sessions).where(or_(sessions.c.expires_at <= now,
                                            sessions.c.last_seen_at <= now - policy.idle)))
    token = secrets.token_urlsafe(32)
    conn.execute(insert(sessions).values(id=_digest(token), user_id=user_id, created_at=now,
                                         last_seen_at=now, expires_at=now + policy.absolute,
                                         ip=(ip or "")[:45] or None, user_agent=(user_agent or "")[:255] or None))
    return token


def end_session(conn: Connection, token: str) -> None:
    """Delete the session of `token` (a replayed cookie is then anonymous)."""
    conn.execute(delete(sessions).where(sessions.c.id == _digest(token)))


def end_sessions_of(conn: Connection, user_id: int, *, keep: str | None = None) -> int:
    """Delete every session of a user (deactivation, password change) but the one of `keep`'s
    token (the user changing their own password stays signed in there); returns how many."""
    ended = delete(sessions).where(sessions.c.user_id == user_id)
    if keep:
        ended = ended.where(sessions.c.id != _digest(keep))
    return conn.execute(ended).rowcount or 0


def issue_session(web: "Web", username: str) -> str:
    """Sign `username` in without a password and return the cookie value: for tests and tools
    (`client.cookies.set(SESSION_COOKIE, issue_session(web, "agent"))`), never for requests."""
    now = web.system.runtime.clock.now()
    with transaction(web.system.db) as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
        if user_id is None:
            raise LookupError(f"no user '{username}'")
        return create_session(conn, int(user_id), now, web.auth.policy)


@dataclass(frozen=True)
class _Resolved:
    principal: Principal | None
    valid: bool
    temporary: bool = False
    """The user's password was set by an administrator: they must choose their own first."""


def _resolve(web: "Web", token: str) -> _Resolved:
    """The principal of a session token, ending it if it expired or its user is deactivated."""
    runtime = web.system.runtime
    now = runtime.clock.now()
    policy = web.auth.policy
    key = _digest(token)
    with read_transaction(runtime.db) as conn:
        row = conn.execute(select(sessions.c.user_id, sessions.c.last_seen_at, sessions.c.expires_at,
                                  users.c.username, users.c.password_temporary)
                           .join(users, users.c.id == sessions.c.user_id)
                           .where(sessions.c.id == key)).first()
        if row is None:
            return _Resolved(None, False)
        alive = now < row.expires_at and now - row.last_seen_at < policy.idle
        principal = load_principal(conn, runtime, row.username) if alive else None
    if principal is None:
        with transaction(runtime.db) as conn:
            conn.execute(delete(sessions).where(sessions.c.id == key))
        return _Resolved(None, False)
    if now - row.last_seen_at >= TOUCH_EVERY:
        with transaction(runtime.db) as conn:
            conn.execute(update(sessions).where(sessions.c.id == key).values(last_seen_at=now))
    return _Resolved(principal, True, bool(row.password_temporary))


# -- demo users ------------------------------------------------------------------------------

DEMO_PASSWORD_FILE = Path("var") / "demo_password"


def demo_mode(explicit: bool | None, db_url: str, has_demo_users: bool) -> bool:
    """Whether `docket serve` gives the bundle's demo users a password: `--demo`/`--no-demo`,
    else $DOCKET_DEMO (1/0), else on exactly for the README quick start: the bundle declares
    demo users and the database is the SQLite file under ./var/."""
    if explicit is not None:
        return explicit and has_demo_users
    env = switch("DOCKET_DEMO")
    if env is not None:
        return env and has_demo_users
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if not has_demo_users or url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return False
    var = Path("var").resolve()
    return var in Path(str(url.database)).resolve().parents


def demo_password() -> str:
    """The demo users' password: kept in var/demo_password (created on first use, readable only
    by its owner), so every start prints the same one."""
    if DEMO_PASSWORD_FILE.is_file():
        return DEMO_PASSWORD_FILE.read_text("utf-8").strip()
    DEMO_PASSWORD_FILE.parent.mkdir(parents=True, exist_ok=True)
    password = "demo-" + secrets.token_hex(5)
    fd = os.open(DEMO_PASSWORD_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password)
    return password


def give_demo_passwords(conn: Connection, usernames: list[str], password: str) -> list[str]:
    """Set `password` for those of `usernames` that have none yet; returns whom it was given."""
    given = []
    for username in usernames:
        row = conn.execute(select(users.c.id, users.c.password_hash).where(users.c.username == username)).first()
        if row is not None and not row.password_hash:
            conn.execute(update(users).where(users.c.id == row.id).values(password_hash=hash_password(password)))
            given.append(username)
    return given


# -- request helpers ---------------------------------------------------------------------------

def principal_of(request: Request) -> Principal | None:
    """The signed-in principal of this request (None when anonymous)."""
    return state_value(request.scope, "principal")  # type: ignore[no-any-return]


def require_principal(request: Request, *, roles: tuple[str, ...] = ()) -> Principal:
    """The signed-in principal; otherwise pages redirect to /signin?next=..., /api/ paths get
    401. A principal holding none of `roles` (admins hold all) gets 403. Record pages answer 404
    instead of 403 themselves, so ids of hidden records are not confirmed."""
    principal = principal_of(request)
    if principal is None:
        if request.url.path.startswith("/api/"):
            raise HTTPException(401, "sign in or send an API token (Authorization: Bearer ...)",
                                headers={"WWW-Authenticate": "Bearer"})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        # The sign-in page in the language the link asked for (a notification's ?lang=en).
        lang = request.query_params.get("lang") if request.url.query else None
        asked = f"&lang={quote(lang, safe='')}" if lang else ""
        raise HTTPException(303, "sign in first",
                            headers={"Location": "/signin?next=" + quote(target, safe="") + asked})
    if roles and not principal.has_role(*roles):
        raise HTTPException(403, "you do not have a role that may do this")
    return principal


def require_admin(request: Request) -> Principal:
    """A principal whose role has `admin: true` in bundle.yaml (else 403, or sign-in first)."""
    principal = require_principal(request)
    if not principal.is_admin:
        web = getattr(request.app.state, "web", None) if "app" in request.scope else None
        locale = web.locale_of(request) if web is not None else "en"
        raise HTTPException(403, ui("err_admin_only", locale))
    return principal


def safe_next(target: str | None) -> str:
    """A same-site path to go to after signing in ("/" for anything else: no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return "/"
    return target


def _binding(request: Request, *, create: bool) -> str | None:
    """The value CSRF tokens of this request are bound to: the session token when signed in by
    cookie, else the anonymous cookie (issued now when `create` and there is none)."""
    state = request.state
    token = getattr(state, "session_token", None)
    if token:
        return token
    anonymous = getattr(state, "anonymous_token", None)
    if anonymous:
        return anonymous
    if not create:
        return None
    anonymous = ANONYMOUS_PREFIX + secrets.token_urlsafe(24)
    state.anonymous_token = anonymous
    state.issue_cookie = anonymous  # AuthMiddleware sends it with the response
    return anonymous


def csrf_token(request: Request) -> str:
    """The CSRF token of this request's session (HMAC of the session binding)."""
    binding = _binding(request, create=True)
    assert binding is not None
    return _auth(request).csrf_for(binding)


def csrf_field(request: Request) -> Markup:
    """`<input type="hidden" name="csrf_token" value="...">` for a POST form."""
    return Markup('<input type="hidden" name="%s" value="%s">') % (CSRF_FIELD, escape(csrf_token(request)))


def check_csrf(request: Request, form: Mapping[str, Any] | None = None) -> None:
    """403 unless the request carries this session's CSRF token (header or form field).
    AuthMiddleware already does this for every state-changing request."""
    problem = _auth(request).token_problem(request, _submitted_token(request, form))
    if problem:
        raise HTTPException(403, problem)


def _submitted_token(request: Request, form: Mapping[str, Any] | None) -> str:
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    value = form.get(CSRF_FIELD) if form is not None else None
    return value if isinstance(value, str) else ""


def _auth(request: Request) -> "Auth":
    return request.app.state.web.auth  # type: ignore[no-any-return]


def is_secure(request: Request | Scope) -> bool:
    """Cookies get `Secure` on https, or always with DOCKET_SECURE_COOKIES=1 (behind a
    TLS-terminating proxy that speaks http to Docket)."""
    scheme = request.url.scheme if isinstance(request, Request) else request.get("scheme", "http")
    return scheme in ("https", "wss") or switched_on("DOCKET_SECURE_COOKIES")


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None,
                  path: str = "/") -> str:
    """A Set-Cookie value: HttpOnly, SameSite=Lax, Secure when asked."""
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Lax"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


# -- sign-in throttling ------------------------------------------------------------------------

class FailureWindows:
    """Failed sign-ins counted per key in a sliding window (in memory, per process)."""

    def __init__(self, clock: Callable[[], float], *, max_keys: int = 100_000):
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self._max_keys = max_keys

    def _wait(self, key: str, limit: Limit, now: float) -> float | None:
        window = self._hits.get(key)
        if not window:
            return None
        while window and window[0] <= now - limit.seconds:
            window.popleft()
        if len(window) >= limit.count:
            return max(0.0, window[len(window) - limit.count] + limit.seconds - now)
        return None

    def take(self, keys: list[tuple[str, Limit]]) -> float | None:
        """Count one attempt against every key at once, unless one of them is over its limit:
        then nothing is counted and the seconds to wait come back. Counting BEFORE the slow
        password check means parallel guesses cannot all slip through one free slot."""
        now = self._clock()
        with self._lock:
            waits = [w for key, limit in keys if (w := self._wait(key, limit, now)) is not None]
            if waits:
                return max(waits)
            if len(self._hits) >= self._max_keys:
                self._hits = {k: w for k, w in self._hits.items() if w and w[-1] > now - 3600}
            for key, _ in keys:
                window = self._hits.setdefault(key, deque())
                window.append(now)
                while len(window) > 1000:
                    window.popleft()
            return None

    def clear(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def forget_one(self, key: str) -> None:
        """Take back the newest counted attempt of `key` (it turned out to be the real user)."""
        with self._lock:
            window = self._hits.get(key)
            if window:
                window.pop()


SIGNIN_POSTS_PER_IP = Limit(30, 60)
"""Any sign-in attempts from one client address."""
FAILURES_PER_ACCOUNT_AND_IP = Limit(5, 15 * 60)
"""Wrong passwords for one account from one address (or one trusted browser)."""
FAILURES_PER_ACCOUNT = Limit(20, 15 * 60)
"""Wrong passwords for one account from all addresses without that account's device cookie."""


class SignInThrottle:
    """Who may try a password now (RELIABILITY 44).

    Three limits: all attempts per client address; failures per (account, address); failures
    per account over all addresses. The per-account limit stops a botnet guessing one password
    from many addresses, but it would also lock the real user out, so a browser that signed in
    to the account before (a signed `docket_device` cookie, OWASP "device cookies") is counted
    on its own instead. Unknown accounts are throttled exactly like real ones.
    """

    def __init__(self, clock: Callable[[], float]):
        self.failures = FailureWindows(clock)

    def keys(self, account: str, client: str, device: bool) -> list[tuple[str, Limit]]:
        account = account.strip().lower()
        client = network_of(client)  # an IPv6 client by its /64 (web.ratelimit)
        if device:
            return [(f"device|{account}|{client}", FAILURES_PER_ACCOUNT_AND_IP)]
        return [(f"pair|{account}|{client}", FAILURES_PER_ACCOUNT_AND_IP),
                (f"account|{account}", FAILURES_PER_ACCOUNT)]

    def attempt(self, account: str, client: str, device: bool) -> float | None:
        """Count an attempt as failed in advance; None if it may go ahead, else seconds to wait."""
        return self.failures.take(self.keys(account, client, device))

    def succeeded(self, account: str, client: str, device: bool) -> None:
        """The password was right: this browser's count starts again, and the attempt does not
        count against the account."""
        first, *rest = self.keys(account, client, device)
        self.failures.clear(first[0])
        for key, _ in rest:
            self.failures.forget_one(key)


# -- the per-application state ------------------------------------------------------------------

class Auth:
    """Keys, policy and throttle of one application (`web.auth`)."""

    def __init__(self, secret: str, monotonic: Callable[[], float], policy: SessionPolicy | None = None):
        self._csrf_key = hmac.new(secret.encode(), b"docket.csrf", hashlib.sha256).digest()
        self._device_key = hmac.new(secret.encode(), b"docket.device", hashlib.sha256).digest()
        self.policy = policy or SessionPolicy.from_env()
        self.throttle = SignInThrottle(monotonic)

    def csrf_for(self, binding: str) -> str:
        mac = hmac.new(self._csrf_key, binding.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def token_problem(self, request: Request, submitted: str) -> str | None:
        """Why the CSRF token is not acceptable (None when it is)."""
        binding = _binding(request, create=False)
        if binding is None:
            return "the form has expired (no session cookie); reload the page and try again"
        if not submitted or not hmac.compare_digest(submitted.encode(), self.csrf_for(binding).encode()):
            return "the form has expired or was sent from another site; reload the page and try again"
        return None

    def device_cookie(self, username: str) -> str:
        nonce = secrets.token_urlsafe(9)
        payload = base64.urlsafe_b64encode(username.strip().lower().encode()).rstrip(b"=").decode() + "." + nonce
        return payload + "." + self._device_mac(payload)

    def device_matches(self, cookie: str | None, username: str) -> bool:
        if not cookie or cookie.count(".") != 2:
            return False
        payload, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._device_mac(payload).encode()):
            return False
        encoded = payload.split(".", 1)[0]
        try:
            name = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(name.encode(), username.strip().lower().encode())

    def _device_mac(self, payload: str) -> str:
        mac = hmac.new(self._device_key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:18]).decode()


# -- middleware --------------------------------------------------------------------------------

def csrf_applies(method: str, path: str, *, cookie_session: bool, bearer: bool) -> bool:
    """Whether a request must pass the CSRF checks: every unsafe method, except requests with
    an `Authorization: Bearer` header (API tokens: browsers cannot add it cross-site), anonymous public
    endpoints (CSRF_EXEMPT_PREFIXES), and /api/ requests without a session cookie."""
    if method in SAFE_METHODS or bearer:
        return False
    if path.startswith(CSRF_EXEMPT_PREFIXES):
        return False
    if path.startswith("/api/") and not cookie_session:
        return False
    return True


def origin_problem(headers: Mapping[str, str], host: str) -> str | None:
    """Why the browser's own headers show a cross-site request (None when they do not):
    `Sec-Fetch-Site` other than same-origin/none, or an `Origin` for another host."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a request from another site ({site}) was refused"
    origin = headers.get("origin")
    if origin is not None:
        if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
            return "a request from another site was refused"
    return None


NOT_STORED = (b"cache-control", b"private, no-store")
"""What a signed-in user's answers carry unless they say otherwise (ASVS V8.2.1): a record
page, the inbox or an API answer holds customers' names and phones, and a browser kept them on
disk, shown again by Back after signing out at a shared counter, as could a proxy in between."""


class AuthMiddleware:
    """Sets `request.state.principal` from the session cookie (unless an earlier middleware,
    e.g. the API's bearer tokens, set it), enforces CSRF on state-changing requests, and sends
    the anonymous cookie a page issued for its CSRF token."""

    MAX_BUFFERED = 2 * 1024 * 1024

    def __init__(self, app: ASGIApp, web: "Web"):
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith("/static/"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        # Read from the scope: no Request, no parsed cookie jar on the hot path (web.scope).
        bearer = (header(scope, b"authorization") or "")[:7].lower() == "bearer "
        cookie = _session_cookie(scope)
        state.setdefault("session_token", None)
        state.setdefault("anonymous_token", None)
        if cookie.startswith(ANONYMOUS_PREFIX) and 8 < len(cookie) < 100:
            state["anonymous_token"] = cookie
        elif cookie and not bearer and len(cookie) < 100:
            resolved = await offload.run(_resolve, self.web, cookie)
            if resolved.valid:
                state["session_token"] = cookie
                if state.get("principal") is None:
                    state["principal"] = resolved.principal
                    state["password_temporary"] = resolved.temporary
        state.setdefault("principal", None)
        if state.get("password_temporary") and scope["path"] not in WHILE_TEMPORARY:
            await _choose_password_first(scope, send, self.web)
            return

        if csrf_applies(scope["method"], scope["path"], cookie_session=bool(state["session_token"]), bearer=bearer):
            request = Request(scope)
            host = request.headers.get("host", "")
            problem = origin_problem(request.headers, host)
            if problem is None:
                try:
                    receive, submitted = await self._token_of(request, receive)
                except HTTPException as exc:
                    await _plain(scope, send, exc.status_code, str(exc.detail))
                    return
                problem = self.web.auth.token_problem(request, submitted)
            if problem is not None:
                log.warning("CSRF refused %s %s: %s", scope["method"], scope["path"], problem)
                if _session_ended(scope, cookie, state, request):
                    await _to_sign_in_again(scope, send, request)
                    return
                if state.get("session_token") and _same_site(request):
                    await _stale_form(scope, send, request, self.web.locale_of(request))
                    return
                await _plain(scope, send, 403, problem)
                return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                signed_in = state.get("principal") is not None
                if signed_in or state.get("issue_cookie"):
                    headers = list(message.get("headers", []))
                    if state.get("issue_cookie") and not any(
                            k.lower() == b"set-cookie" and v.startswith(SESSION_COOKIE.encode() + b"=")
                            for k, v in headers):
                        value = cookie_header(SESSION_COOKIE, state["issue_cookie"], secure=is_secure(scope))
                        headers.append((b"set-cookie", value.encode("latin-1")))
                    if signed_in and not any(k.lower() == b"cache-control" for k, _ in headers):
                        headers.append(NOT_STORED)
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _token_of(self, request: Request, receive: Receive) -> tuple[Receive, str]:
        """The submitted CSRF token (header, else the form's field: the body is read here and
        replayed to the handler), and the receive callable the handler must use."""
        sent = request.headers.get(CSRF_HEADER)
        if sent:
            return receive, sent
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if request.url.path.startswith("/api/") or kind not in ("application/x-www-form-urlencoded",
                                                                 "multipart/form-data"):
            return receive, ""  # JSON and other bodies must send the header
        if kind == "multipart/form-data":
            return await self._multipart_token(request, receive)
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPException(400, "the client went away")
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > self.MAX_BUFFERED:
                raise HTTPException(413, f"the form is larger than {self.MAX_BUFFERED:,} bytes")
        data = bytes(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        try:
            pairs = parse_qsl(data.decode("latin-1"), keep_blank_values=True, max_num_fields=1000)
        except ValueError:
            raise HTTPException(400, "the form has too many fields") from None
        token = next((v for k, v in pairs if k == CSRF_FIELD), "")
        return replay, token

    async def _multipart_token(self, request: Request, receive: Receive) -> tuple[Receive, str]:
        """The CSRF token of a multipart form, read from the body's first parts only.

        Every page puts the token first (csrf_field() opens the form), so the files after it
        stream on to the handler, which has its own limits: holding the whole body in memory
        refused any form with a photo from a phone (a few MB) before its handler saw it. The
        chunks read here are replayed to the handler, then the rest comes from the client.
        """
        from python_multipart.exceptions import FormParserError, MultipartParseError
        from python_multipart.multipart import MultipartParser, parse_options_header

        _, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if not boundary:
            return receive, ""  # the handler reports the malformed body
        finder = _TokenPart()
        try:
            parser = MultipartParser(boundary, finder.callbacks)
        except FormParserError:  # the boundary itself is refused (over 256 bytes)
            return receive, ""
        held: list[Message] = []
        seen = 0
        more = True
        while more and finder.token is None and not finder.past_fields:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HTTPException(400, "the client went away")
            held.append(message)
            chunk = message.get("body", b"")
            seen += len(chunk)
            more = message.get("more_body", False)
            try:
                parser.write(chunk)
            except MultipartParseError:
                break  # malformed: the handler says so
            if seen > self.MAX_BUFFERED:
                break  # no token among the first fields: refused as a missing token

        async def replay() -> Message:
            if held:
                return held.pop(0)
            return await receive()

        return replay, finder.token or ""


class _TokenPart:
    """Callbacks for python-multipart's push parser that keep the value of the part named
    CSRF_FIELD (`token`), and note when a file part begins before it, or more parts than a
    page puts before it (`past_fields`)."""

    MAX_TOKEN = 512
    MAX_PARTS = 20
    """Parts looked at for the token: pages send it first, and a body of 100,000 tiny fields
    must not be parsed part by part in Python before it is refused (RELIABILITY 49)."""

    def __init__(self) -> None:
        self.token: str | None = None
        self.past_fields = False
        self._parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._disposition = b""
        self._in_token = False
        self._value = bytearray()
        self.callbacks: dict[str, Any] = {
            "on_part_begin": self._part_begin, "on_header_field": self._field,
            "on_header_value": self._value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.MAX_PARTS:
            self.past_fields = True
        self._disposition = b""
        self._in_token = False
        self._value = bytearray()

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_field).strip().lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)[:1024]
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._disposition)
        if b"filename" in params:
            self.past_fields = True  # the token comes before any file, or not at all
        # A token after a file is not looked for (it would mean holding the file in memory).
        self._in_token = not self.past_fields and params.get(b"name") == CSRF_FIELD.encode()

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_token and len(self._value) <= self.MAX_TOKEN:
            self._value += data[start:end]

    def _part_end(self) -> None:
        if self._in_token and self.token is None:
            self.token = bytes(self._value).decode("utf-8", "replace")
        self._in_token = False


def _session_cookie(scope: Scope) -> str:
    """The session cookie's value ("" without one), as `request.cookies.get(SESSION_COOKIE, "")`
    finds it: every Cookie header parsed in turn, a later one winning."""
    found = ""
    for key, value in scope["headers"]:
        if key == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(SESSION_COOKIE, found)
    return found


def _same_site(request: Request) -> bool:
    """A page's post from this site (not the API): its origin headers show nothing foreign."""
    return (not request.url.path.startswith("/api/")
            and origin_problem(request.headers, request.headers.get("host", "")) is None)


def _session_ended(scope: Scope, cookie: str, state: Mapping[str, Any], request: Request) -> bool:
    """A page's form posted with a session cookie that no longer signs anyone in (idle too long,
    signed out in another tab), from this site: a person whose session ended, not an attack."""
    return (bool(cookie) and not cookie.startswith(ANONYMOUS_PREFIX) and not state.get("session_token")
            and _same_site(request))


def _page_posted_from(request: Request) -> str:
    """The same-site page a form was posted from (its Referer, without the path prefix), "/"
    when the browser did not say or it was another site's."""
    from web.prefix import path_prefix

    referer = urlsplit(request.headers.get("referer", ""))
    here = urlsplit(str(request.url))
    if (referer.scheme, referer.netloc) != (here.scheme, here.netloc):
        return "/"
    path, prefix = referer.path, path_prefix()
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix):]  # the prefix goes back on at the edge (web.prefix)
    return safe_next(path + (f"?{referer.query}" if referer.query else ""))


async def _to_sign_in_again(scope: Scope, send: Send, request: Request) -> None:
    """To the sign-in page and back to the page the form was on: an agent whose session ended
    while writing got a bare English '403 the form has expired (no session cookie)' page with no
    way back. Nothing was done, so no CSRF protection is lost."""
    back = _page_posted_from(request)
    response = RedirectResponse(f"/signin?ended=1&next={quote(back, safe='')}", status_code=303)

    await _answer(response, scope, send)


async def _stale_form(scope: Scope, send: Send, request: Request, locale: str) -> None:
    """A signed-in person's form whose token is no longer theirs (the page was opened before they
    signed in again, in another tab): a page in their language saying nothing was saved, with a
    link back to the page to open it afresh, instead of a bare English 403."""
    from web.prefix import path_prefix

    back = path_prefix() + _page_posted_from(request)
    heading, text, link = ui("error_403", locale), ui("stale_form", locale), ui("error_back", locale)
    response = HTMLResponse(
        f'<!doctype html><html lang="{escape(locale)}"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>403 · {escape(heading)}</title><link rel="stylesheet" href="{escape(path_prefix())}/static/docket.css">'
        f'<main><h1>{escape(heading)}</h1><p id="stale-form">{escape(text)}</p>'
        f'<p><a href="{escape(back)}" id="stale-form-back">{escape(link)}</a></p></main></html>', status_code=403)

    await _answer(response, scope, send)


async def _answer(response: Response, scope: Scope, send: Send) -> None:
    """Send a response from the middleware, which has no request body to give it."""
    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)


WHILE_TEMPORARY = frozenset({"/account", "/account/password", "/signout", "/signin", "/healthz",
                             "/favicon.ico"})
"""What a user whose password an administrator set may open before choosing their own."""


async def _choose_password_first(scope: Scope, send: Send, web: "Web") -> None:
    """A page asked for with a temporary password leads to /account; anything else is refused,
    saying why (an administrator knows that password: nothing is done with it but change it)."""
    request = Request(scope)
    locale = web.locale_of(request)
    if scope["method"] in ("GET", "HEAD") and not scope["path"].startswith("/api/"):
        await _answer(RedirectResponse(f"/account?lang={locale}", status_code=303), scope, send)
        return
    await _plain(scope, send, 403, ui("account_temporary_refused", locale))


async def _plain(scope: Scope, send: Send, status: int, message: str) -> None:
    """A short error answer from the middleware (JSON under /api/, else a small page)."""
    if scope.get("path", "").startswith("/api/"):
        response: Response = JSONResponse({"error": message}, status_code=status)
    else:
        response = HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status}</h1><p>{escape(message)}</p>",
                                status_code=status)

    await _answer(response, scope, send)


# -- pages -------------------------------------------------------------------------------------

def routes(web: "Web") -> list[Route]:
    """/signin (GET form, POST credentials) and /signout (GET confirm, POST sign out)."""

    def client(request: Request) -> str:
        return client_address(request, web.proxies)

    def show(request: Request, *, error: str = "", username: str = "", status: int = 200,
             headers: dict[str, str] | None = None) -> Response:
        response = web.page(request, "signin.html", status=status, error=error, username=username,
                            next=safe_next(request.query_params.get("next")))
        response.headers["cache-control"] = "no-store"
        for key, value in (headers or {}).items():
            response.headers[key] = value
        return response

    async def signin_page(request: Request) -> Response:
        if principal_of(request) is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
        ended = request.query_params.get("ended") == "1"  # sent here by a form posted after the session ended
        return show(request, error=ui("session_ended", web.locale_of(request)) if ended else "")

    async def signin(request: Request) -> Response:
        web.limit(request, "signin", SIGNIN_POSTS_PER_IP)
        form = await request.form(max_files=0, max_fields=20)
        username = str(form.get("username", "")).strip()[:150]
        password = str(form.get("password", ""))
        locale = web.locale_of(request)
        target = safe_next(str(form.get("next", "")) or request.query_params.get("next"))
        if not username or not password:
            return show(request, error=ui("signin_missing", locale), username=username, status=400)
        if len(password) > MAX_PASSWORD:
            password = password[:MAX_PASSWORD + 1]  # still wrong, but bounded work
        address = client(request)
        device = web.auth.device_matches(request.cookies.get(DEVICE_COOKIE), username)
        wait = web.auth.throttle.attempt(username, address, device)
        if wait is not None:
            header = retry_after(wait)
            return show(request, error=ui("signin_throttled", locale).format(wait=wait_text(header, locale)),
                        username=username, status=429, headers={"Retry-After": header})
        runtime = web.system.runtime
        old = getattr(request.state, "session_token", None)

        def check() -> tuple[str | None, str]:
            now = runtime.clock.now()
            with transaction(runtime.db) as conn:
                user_id, reason = authenticate(conn, username, password)
                if user_id is None:
                    audit(conn, username, "signin.failed", username, {"reason": reason}, at=now, ip=address)
                    return None, reason
                if old:
                    end_session(conn, old)  # rotation: the earlier session never comes back
                token = create_session(conn, user_id, now, web.auth.policy, ip=address,
                                       user_agent=request.headers.get("user-agent"))
                audit(conn, username, "signin", username, {}, at=now, ip=address)
                return token, ""

        token, reason = await offload.run(check)
        if token is None:
            log.info("failed sign-in for %r from %s: %s", username, address, reason)
            return show(request, error=ui("signin_failed", locale), username=username, status=401)
        web.auth.throttle.succeeded(username, address, device)
        response = RedirectResponse(target, status_code=303)
        secure = is_secure(request)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, token, secure=secure))
        response.headers.append("set-cookie", cookie_header(
            DEVICE_COOKIE, web.auth.device_cookie(username), secure=secure, max_age=365 * 86400, path="/signin"))
        request.state.issue_cookie = None
        return response

    async def signout_page(request: Request) -> Response:
        # GET never changes state: it shows the button that POSTs.
        if principal_of(request) is None:
            return RedirectResponse("/signin", status_code=303)
        return web.page(request, "signout.html")

    async def signout(request: Request) -> Response:
        token = getattr(request.state, "session_token", None)
        principal = principal_of(request)
        runtime = web.system.runtime

        def end() -> None:
            with transaction(runtime.db) as conn:
                if token:
                    end_session(conn, token)
                if principal is not None:
                    audit(conn, principal, "signout", principal.username, {},
                          at=runtime.clock.now(), ip=client(request))

        await offload.run(end)
        response = RedirectResponse(f"/signin?lang={web.locale_of(request)}", status_code=303)
        fresh = ANONYMOUS_PREFIX + secrets.token_urlsafe(24)
        response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, fresh, secure=is_secure(request)))
        request.state.issue_cookie = None
        return response

    return [
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout_page, methods=["GET"]),
        Route("/signout", signout, methods=["POST"]),
    ]


__all__ = ["ANONYMOUS_PREFIX", "OWASP_ARGON2ID", "Auth", "AuthMiddleware", "CSRF_FIELD", "CSRF_HEADER", "DEVICE_COOKIE",
           "HASHER", "SESSION_COOKIE", "SessionPolicy", "audit", "authenticate", "check_csrf",
           "create_session", "csrf_field", "csrf_token", "end_session", "end_sessions_of",
           "hash_password", "issue_session", "password_problems", "principal_of", "require_admin",
           "require_principal", "safe_next", "set_password", "SignInThrottle", "verify_password"]
