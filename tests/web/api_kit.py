"""Shared set-up of the API tests: a booted postal system, a client, API tokens per user.

The `system` and `client` fixtures are imported by the test modules that use them as they are.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.db import transaction
from web.app import create_app
from web.system import System, boot
from web.tokens import create_token

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
COMPLAINT: dict[str, Any] = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "十票快件超时三天", "region": "east",
}
RECORDS = "/api/v1/forms/complaint/records"


def boot_postal(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(START))


def client_of(system: System) -> TestClient:
    return TestClient(create_app(system, secret="test-secret"), raise_server_exceptions=False)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot_postal(tmp_path)


@pytest.fixture
def client(system: System) -> TestClient:
    return client_of(system)


def watch_submissions(system: System, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, for each `system.forms.submit` call from now on, whether it ran on an event loop
    thread (True) or off it (False)."""
    submit = system.forms.submit
    on_loop: list[bool] = []

    def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return submit(*args, **kwargs)

    monkeypatch.setattr(system.forms, "submit", watched)
    return on_loop


def token_for(system: System, username: str, name: str = "tests") -> str:
    with transaction(system.db) as conn:
        secret, _ = create_token(conn, username, name, now=system.runtime.clock.now())
    return secret


def bearer(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


class Api:
    """A client acting as one user through their API token."""

    def __init__(self, client: TestClient, system: System, username: str):
        self.client = client
        self.username = username
        self.headers = bearer(token_for(system, username))

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, url: str, **kw: Any) -> Any:
        return self.client.post(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def patch(self, url: str, **kw: Any) -> Any:
        return self.client.patch(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def delete(self, url: str, **kw: Any) -> Any:
        return self.client.delete(url, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def submit(self, **values: Any) -> dict[str, Any]:
        response = self.post(RECORDS, json={**COMPLAINT, **values})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]
