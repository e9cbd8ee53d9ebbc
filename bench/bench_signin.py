"""Sign-in costs: one Argon2id hash/verification, a full sign-in over HTTP, a request with a
session cookie, and the RELIABILITY 44 attack (100 guesses at one account from 100 addresses).

    .venv/bin/python bench/bench_signin.py [--runs 15]

In-process (Starlette TestClient), SQLite in a temporary folder; results go to bench/RESULTS.md
by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from starlette.testclient import TestClient  # noqa: E402

from engine.clock import ManualClock  # noqa: E402
from engine.storage.db import transaction  # noqa: E402
from web.app import create_app  # noqa: E402
from web.auth import hash_password, set_password, verify_password  # noqa: E402
from web.system import boot  # noqa: E402

PASSWORD = "correct horse battery staple"


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def show(name: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"| {name} | {statistics.median(ordered):.1f} ms | {ordered[0]:.1f} ms | {p99:.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    stored = hash_password(PASSWORD)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DOCKET_TRUSTED_PROXIES"] = "testclient"
        clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
        system = boot(ROOT / "definitions" / "postal_complaints", db_url=f"sqlite:///{tmp}/docket.db", clock=clock)
        with transaction(system.db) as conn:
            set_password(conn, "agent", PASSWORD)
        app = create_app(system, secret="bench")
        client = TestClient(app)

        def sign_in() -> None:
            # The token of the page the browser is on (it changes with every sign-in).
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signout").text).group(1)  # type: ignore[union-attr]
            response = client.post("/signin", data={"username": "agent", "password": PASSWORD, "csrf_token": token},
                                   headers={"X-Forwarded-For": "192.0.2.1"}, follow_redirects=False)
            assert response.status_code == 303, response.status_code

        print("| what | median | best | p99 |\n| --- | ---: | ---: | ---: |")
        show("Argon2id hash (m=46 MiB, t=1, p=1)", timed(lambda: hash_password(PASSWORD), args.runs))
        show("Argon2id verify", timed(lambda: verify_password(stored, PASSWORD), args.runs))
        show("sign-in: GET the form + POST (verify, session row, audit row)", timed(sign_in, args.runs))
        show("GET /signout with a session cookie (lookup + principal)", timed(lambda: client.get("/signout"), args.runs * 4))

        attacker = TestClient(app)
        token = re.search(r'name="csrf_token" value="([^"]+)"', attacker.get("/signin").text).group(1)  # type: ignore[union-attr]
        started = time.perf_counter()
        statuses = [attacker.post("/signin", data={"username": "agent", "password": f"guess-{i:04d}-xxxxx",
                                                   "csrf_token": token},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(100)]
        elapsed = time.perf_counter() - started
        print(f"\n100 guesses from 100 addresses: {statuses.count(401)} verified (401), "
              f"{statuses.count(429)} throttled (429) in {elapsed:.1f} s")
        sign_in()
        print("the real user (device cookie) still signs in: yes")
        system.db.dispose()


if __name__ == "__main__":
    main()
