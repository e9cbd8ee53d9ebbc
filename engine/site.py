"""Where people reach this Docket: the public address an operator gives in DOCKET_PUBLIC_URL.

Printed letters put it in their QR codes, scheduled reports link to their dashboard with it, and
staff group messages (WeCom, DingTalk) link to the record with it, so a manager reading the group on a phone opens the task, signs in if need be,
and approves there ("approving from the IM tool", REQUIREMENTS section 2).
"""

from __future__ import annotations

import os
import re
from urllib.parse import quote

PUBLIC_URL_ENV = "DOCKET_PUBLIC_URL"
LOOKUP_PATH = "/track"
"""The customers' progress lookup (web/lookup.py)."""
_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9._~\-/%]*)?")
"""An address safe to put in a Markdown link and a message: no spaces, brackets or quotes."""


def configured_public_url() -> str | None:
    """$DOCKET_PUBLIC_URL without its trailing `/`, or None when it is not set or is not a plain
    http(s) address (a link to nowhere is worse than none)."""
    value = os.environ.get(PUBLIC_URL_ENV, "").strip().rstrip("/")
    return value if _URL.fullmatch(value) else None


def record_url(base_url: str | None, form: str, record_id: int) -> str:
    """The staff page of one record at `base_url` (the path alone without)."""
    return f"{(base_url or '').rstrip('/')}/records/{form}/{int(record_id)}"


def dashboard_url(base_url: str | None, dashboard: str) -> str:
    """A dashboard's page at `base_url` (the path alone without)."""
    return f"{(base_url or '').rstrip('/')}/dashboards/{quote(dashboard, safe='')}"


def lookup_url(base_url: str | None, query_no: str | None) -> str:
    """The public progress lookup of one query number at `base_url` (the path alone without)."""
    url = (base_url or "").rstrip("/") + LOOKUP_PATH
    return f"{url}?query_no={quote(query_no)}" if query_no else url


__all__ = ["LOOKUP_PATH", "PUBLIC_URL_ENV", "configured_public_url", "dashboard_url", "lookup_url",
           "record_url"]
