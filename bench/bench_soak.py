"""Soak: concurrent public submissions while dashboards run over a large table (RELIABILITY 58).

One run, on a SQLite file with the postal bundle:
1. seeds ROWS complaints straight into the record table (copies of one real submission spread
   over two years, regions and customers varied, with their report facts) and rebuilds the
   report rollups, so the overview dashboard covers a large table;
2. starts `docket serve` (uvicorn, one worker) in its own process, as in production;
3. for SECONDS, CLIENTS threads POST complaints to the public API (`/api/v1/forms/complaint/
   records`, keep-alive; each submission starts the complaint flow) while another process's
   connection runs every widget of the overview dashboard back to back, and the `-wal` file's
   size is sampled every 50 ms;
4. stops the server and checks: no 5xx and no dropped connection; every acknowledged
   submission stored, nothing else; the WAL file stayed bounded; the dashboard read from the
   rollups kept under load equals the dashboard after rebuilding every rollup from the records.

Run: .venv/bin/python bench/bench_soak.py [--clients 200] [--seconds 60] [--rows 100000]
The test suite runs a small one (tests/web/test_soak.py).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.identity import Principal  # noqa: E402
from engine.storage.db import transaction  # noqa: E402
from web.system import System, boot  # noqa: E402

BUNDLE = ROOT / "definitions" / "postal_complaints"
FORM = "complaint"
DASHBOARD = "overview"
COMPLAINT = {
    "customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
    "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天，客户要求说明原因",
}
CUSTOMERS = [f"大客户{i:02d}" for i in range(60)]


@dataclass
class SoakResult:
    """What one soak run saw."""

    seconds: float
    clients: int
    seeded: int
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    """Requests that got no HTTP answer (connection refused, reset, timed out)."""
    drop_reasons: Counter[str] = field(default_factory=Counter)
    """Why they got none: the exception's type and message, e.g. RemoteDisconnected."""
    resent: int = 0
    """Requests sent again on a new connection because the server had closed the kept-alive one
    while it rested (uvicorn closes one idle for 5 s): the write failed, so the server never read
    the request. Happens when this process stalls, e.g. a busy host pausing the VM."""
    stored: int = 0
    """Records in the table after the run."""
    report_runs: int = 0
    report_ms: list[float] = field(default_factory=list)
    wal_max: int = 0
    wal_final: int = 0
    mismatches: list[str] = field(default_factory=list)
    """Widgets whose maintained result differs from the one rebuilt from the records."""
    server_errors: str = ""

    @property
    def accepted(self) -> int:
        return self.statuses.get(201, 0)

    @property
    def failed(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500) + self.dropped


def seed(system: System, rows: int, now: datetime) -> int:
    """`rows` complaints in the record table: one real submission (through the form and flow
    engines) and copies of its row spread over two years; returns the number of records."""
    system.forms.submit(FORM, COMPLAINT, actor="accounts")
    form = system.forms.form(FORM)
    regions = sorted(form.field("region").choices.values())
    path = system.db.url.database
    system.db.dispose()
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    template = dict(con.execute(f"SELECT * FROM rec_{FORM} ORDER BY id LIMIT 1").fetchone())
    del template["id"]
    columns = list(template)
    rnd = random.Random(58)
    batch = []
    for n in range(rows - 1):
        at = now - timedelta(days=rnd.uniform(0, 730))
        row = dict(template, query_no=f"SEED{n:07d}", customer_name=rnd.choice(CUSTOMERS),
                   region=rnd.choice(regions), created_at=at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                   updated_at=at.strftime("%Y-%m-%d %H:%M:%S.%f"))
        batch.append(tuple(row[c] for c in columns))
    with con:
        con.executemany(f"INSERT INTO rec_{FORM} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", batch)
        con.execute("INSERT INTO dk_report_facts (form, record_id, is_repeat) "
                    f"SELECT '{FORM}', id, 0 FROM rec_{FORM} WHERE id NOT IN "
                    f"(SELECT record_id FROM dk_report_facts WHERE form = '{FORM}')")
    con.execute("ANALYZE")
    con.close()
    return rows


def rebuild_rollups(system: System) -> None:
    with transaction(system.db) as conn:
        system.runtime.services["reports"].rollups.rebuild_all(conn)


def dashboard(system: System) -> dict[str, Any]:
    """Every widget of the overview, rounded so that sums added in another order compare equal."""
    reports = system.runtime.services["reports"]
    board = reports.dashboard(DASHBOARD)
    return {name: _rounded(reports.run(board, widget, {}, Principal.system()).rows)
            for name, widget in board.widgets.items()}


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    return value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited at start: " + (server.stderr.read().decode()[-2000:] if server.stderr else ""))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz")


def run_soak(folder: Path, *, clients: int, seconds: float, rows: int) -> SoakResult:
    """One soak run in `folder` (a new database); see the module docstring."""
    db_path = folder / "soak.db"
    url = f"sqlite:///{db_path}"
    now = datetime.now(timezone.utc)
    system = boot(BUNDLE, db_url=url)
    seeded = seed(system, rows, now)
    reader = boot(BUNDLE, db_url=url)  # the dashboards' process stands in for a second process
    rebuild_rollups(reader)
    result = SoakResult(seconds=seconds, clients=clients, seeded=seeded)

    port = _free_port()
    env = {**os.environ, "DOCKET_SECRET_KEY": "soak", "DOCKET_API_SUBMITS_PER_MINUTE": "100000000"}
    errors_file = (folder / "server.err").open("wb")
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", str(BUNDLE), "--db", url, "--port", str(port),
         "--log-level", "warning"], cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=errors_file)
    stop = threading.Event()
    lock = threading.Lock()
    body = json.dumps(COMPLAINT, ensure_ascii=False).encode()
    try:
        _wait_ready(port, server)

        def post(conn: http.client.HTTPConnection) -> None:
            conn.request("POST", f"/api/v1/forms/{FORM}/records", body, {"Content-Type": "application/json"})

        def client() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            seen: Counter[int] = Counter()
            dropped = 0
            reasons: Counter[str] = Counter()
            resent = 0
            while not stop.is_set():
                try:
                    try:
                        post(conn)
                    except (BrokenPipeError, ConnectionResetError):
                        # What an HTTP client does on a kept-alive connection the server closed
                        # (urllib3, browsers): a request whose sending failed was never read, so
                        # it is sent once more, on a new connection; a second failure is a drop.
                        resent += 1
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                        post(conn)
                    response = conn.getresponse()
                    response.read()
                    seen[response.status] += 1
                except (OSError, http.client.HTTPException) as exc:
                    dropped += 1
                    reasons[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.close()
            with lock:
                result.statuses.update(seen)
                result.dropped += dropped
                result.drop_reasons.update(reasons)
                result.resent += resent

        def reports() -> None:
            while not stop.is_set():
                start = time.perf_counter()
                dashboard(reader)
                result.report_ms.append((time.perf_counter() - start) * 1000)
                result.report_runs += 1

        wal = Path(f"{db_path}-wal")

        def sample() -> None:
            while not stop.wait(0.05):
                try:
                    result.wal_max = max(result.wal_max, wal.stat().st_size)
                except FileNotFoundError:
                    pass

        threads = [threading.Thread(target=client) for _ in range(clients)]
        threads += [threading.Thread(target=reports), threading.Thread(target=sample)]
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join()
    finally:
        server.send_signal(signal.SIGINT)  # uvicorn's orderly shutdown
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        errors_file.close()
    result.server_errors = (folder / "server.err").read_text(errors="replace")
    wal = Path(f"{db_path}-wal")
    result.wal_final = wal.stat().st_size if wal.exists() else 0

    reader.db.dispose()
    after = boot(BUNDLE, db_url=url)
    kept = dashboard(after)
    rebuild_rollups(after)
    rebuilt = dashboard(after)
    result.mismatches = [name for name in kept if kept[name] != rebuilt[name]]
    with after.db.connect() as conn:
        result.stored = int(conn.exec_driver_sql(f"SELECT count(*) FROM rec_{FORM}").scalar() or 0)
    after.db.dispose()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    with tempfile.TemporaryDirectory() as tmp:
        r = run_soak(Path(tmp), clients=args.clients, seconds=args.seconds, rows=args.rows)
    mb = 1024 * 1024
    print(f"{r.clients} clients x {r.seconds:.0f} s over {r.seeded:,} seeded complaints")
    print(f"answers: {dict(sorted(r.statuses.items()))}, no answer: {r.dropped}"
          f"{' ' + str(dict(r.drop_reasons)) if r.drop_reasons else ''}, sent again on a new connection "
          f"after the server closed a resting one: {r.resent}; accepted {r.accepted / r.seconds:.1f}/s")
    print(f"stored: {r.stored:,} = seeded {r.seeded:,} + accepted {r.accepted:,}: {r.stored == r.seeded + r.accepted}")
    print(f"dashboard runs: {r.report_runs}, median {statistics.median(r.report_ms or [0]):.0f} ms, "
          f"max {max(r.report_ms or [0]):.0f} ms")
    print(f"WAL: at most {r.wal_max / mb:.1f} MB during the run, {r.wal_final / mb:.1f} MB after")
    print(f"dashboard kept under load == rebuilt from the records: {not r.mismatches} {r.mismatches or ''}")
    problems = [line for line in r.server_errors.splitlines() if "Traceback" in line or "ERROR" in line]
    if problems:
        print("server errors:\n" + "\n".join(problems[-20:]))
    ok = r.failed == 0 and r.stored == r.seeded + r.accepted and not r.mismatches
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
