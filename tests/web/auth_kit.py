"""Shared set-up for the sign-in, security and admin tests: a booted postal system, a client,
and helpers that sign in through the real pages (CSRF token included)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import transaction
from web.app import create_app
from web.auth import set_password
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
PASSWORD = "correct horse battery staple"
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


class Seconds:
    """A fake monotonic clock for the rate limiters."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_clock() -> ManualClock:
    return ManualClock(START)


def give_password(system, username: str, password: str = PASSWORD) -> None:  # type: ignore[no-untyped-def]
    with transaction(system.db) as conn:
        set_password(conn, username, password)


def postal_with_agent(folder: Path, clock: ManualClock) -> System:
    """The postal bundle on a SQLite file in `folder`, the `agent` account holding PASSWORD."""
    system = boot(POSTAL, db_url=f"sqlite:///{folder / 'docket.db'}", clock=clock)
    give_password(system, "agent")
    return system


def app_client(system: System, monotonic: Seconds | None = None, **headers: str) -> TestClient:
    """A client of the web app that answers server errors as pages (no exception raised)."""
    return TestClient(create_app(system, secret="test-secret", monotonic=monotonic or Seconds()),
                      raise_server_exceptions=False, headers=headers or None)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD, **headers: str):  # type: ignore[no-untyped-def]
    """Open the sign-in page and post the credentials with its token; returns the response."""
    page = client.get("/signin")
    return client.post("/signin", data={"username": username, "password": password,
                                        "csrf_token": csrf_of(page.text)},
                       headers=headers or None, follow_redirects=False)
