"""Deployment settings read from the environment, with safe defaults for a single server."""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

SECRET_FILE = Path("var") / "secret_key"


def secret_key() -> str:
    """The key that signs cookies and form tickets: $DOCKET_SECRET_KEY, else a random key kept
    in var/secret_key (created on first start, readable only by its owner), so restarts keep
    sessions and forms valid."""
    from_env = os.environ.get("DOCKET_SECRET_KEY")
    if from_env:
        return from_env
    if SECRET_FILE.is_file():
        kept = SECRET_FILE.read_text("utf-8").strip()
        if kept:
            return kept
        # An empty file (the disk filled up, or the machine stopped, as it was first written):
        # signing with an empty key would let anyone forge a session. Nothing valid was ever
        # signed with it worth keeping, so a new key takes its place.
    SECRET_FILE.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Written whole beside it first, then put in place: the file is never seen half written.
    fd, partial = tempfile.mkstemp(dir=SECRET_FILE.parent, prefix=".secret_key-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: readable by its owner only
            out.write(key)
            out.flush()
            os.fsync(out.fileno())
        if SECRET_FILE.is_file():
            os.replace(partial, SECRET_FILE)
        else:
            try:
                os.link(partial, SECRET_FILE)
            except FileExistsError:  # another process starting at the same moment wrote one first
                return SECRET_FILE.read_text("utf-8").strip() or key
    finally:
        Path(partial).unlink(missing_ok=True)
    return key


def trusted_proxies() -> tuple[str, ...]:
    """Addresses whose X-Forwarded-For is believed ($DOCKET_TRUSTED_PROXIES, comma separated)."""
    raw = os.environ.get("DOCKET_TRUSTED_PROXIES", "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def embed_origins() -> tuple[str, ...]:
    """Sites allowed to show public forms in an iframe ($DOCKET_EMBED_ORIGINS, comma or space
    separated, e.g. `https://www.example-post.cn`); the application's own origin always may.
    What the form leads to may be framed by them too: a refused post, the acknowledgement, the
    progress lookup, and the error pages of these."""
    raw = os.environ.get("DOCKET_EMBED_ORIGINS", "")
    return tuple(o for o in raw.replace(",", " ").split() if o.startswith(("https://", "http://")))


def positive_env(name: str, default: int) -> int:
    """The whole number above 0 in $`name`, else `default` (`docket serve` warns about a value
    it cannot read: cli.settings_problems). ASCII digits only: '²' passes str.isdigit, not int."""
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and int(raw) > 0 else default


def api_submits_per_minute() -> int:
    """Anonymous API submissions allowed per client per minute ($DOCKET_API_SUBMITS_PER_MINUTE,
    default 60); integrations that send more use API tokens."""
    return positive_env("DOCKET_API_SUBMITS_PER_MINUTE", 60)


def pending_uploads_cap() -> int:
    """Bytes that uploads no record holds yet may fill before anonymous ones are refused
    ($DOCKET_MAX_PENDING_UPLOADS_MB, default 2048): anyone may upload, and without a cap a few
    clients could fill the disk the database lives on (ADR 0004)."""
    return positive_env("DOCKET_MAX_PENDING_UPLOADS_MB", 2048) * 1024 * 1024


def metrics_token() -> str | None:
    """The bearer token Prometheus sends to read `/metrics` ($DOCKET_METRICS_TOKEN); without it
    the address answers 404, so nothing about the server is told to anyone who asks."""
    token = os.environ.get("DOCKET_METRICS_TOKEN", "").strip()
    return token or None
