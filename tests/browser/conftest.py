"""Browser tests: Debian's Chromium driven by Playwright against a live Docket server.

The server runs in a thread of the test process on a free port, over a fresh SQLite file and a
ManualClock the test can move (the public form's anti-spam check wants a few seconds between
rendering and posting). Chromium is /usr/bin/chromium (`apt-get install chromium`); a
Playwright browser download is never used. Without Chromium the tests are skipped, saying so.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.clock import ManualClock
from web.app import create_app
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


class LiveServer:
    def __init__(self, system: System, clock: ManualClock, url: str):
        self.system = system
        self.clock = clock
        self.url = url


@contextmanager
def serving(bundle: Path, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server over `bundle` on a fresh SQLite file in `tmp_path`, for one test."""
    import uvicorn

    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    system = boot(bundle, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(system, secret="browser-test"), host="127.0.0.1", port=port,
                            log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield LiveServer(system, clock, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(10)
        system.db.dispose()


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The postal bundle served live."""
    with serving(POSTAL, tmp_path) as server:
        yield server
