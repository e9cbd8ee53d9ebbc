"""Benchmark: form validation and submission (issue 4 point 8, PERFORMANCE.md section 3).

One run reports:
1. validation alone, records/s: Docket's compiled form vs the peer, jsonschema's
   Draft202012Validator built once and reused (`list(iter_errors(r))`, format checker on), on
   the same 22-field workload (bench/workloads/complaint20), 1,000 valid and 1,000 invalid
   records with exactly 3 errors each (bad phone, negative amount, missing description);
2. validated-and-stored submissions/s through the Python API on SQLite (one transaction each);
3. the same over HTTP: uvicorn with one worker, 8 client threads with keep-alive, and (when
   Debian's wrk is installed) wrk with 8 connections, a C client that takes far less CPU.
4. XLSX import rows/s of the same form: validated and stored, and read and validated only.
5. the floor under (2): raw sqlite3 storing the same rows in the same tables, one transaction
   each, with no validation and no Python objects per row.
Goals: >= 100,000 validations/s and >= 10x jsonschema; >= 5,000/s in-process; >= 1,000/s HTTP.

Run: .venv/bin/python bench/bench_forms.py [--records N] [--submits N] [--http N] [--xlsx N] [--wrk-seconds S]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from contextlib import contextmanager
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jsonschema import Draft202012Validator  # noqa: E402

from engine.clock import ManualClock  # noqa: E402
from engine.errors import ValidationFailed  # noqa: E402
from web.system import boot  # noqa: E402

WORKLOAD = ROOT / "bench" / "workloads" / "complaint20"
REGIONS = [f"r{i:02d}" for i in range(30)]

PEER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_name", "contact_name", "contact_phone", "waybill", "order_no", "description",
                 "address", "channel", "category", "priority", "region", "resolution", "amount",
                 "weight_kg", "pieces", "satisfaction", "key_account", "email", "ship_date", "occurred_at"],
    "properties": {
        "customer_name": {"type": "string", "minLength": 2, "maxLength": 100},
        "contact_name": {"type": "string", "maxLength": 50},
        "contact_phone": {"type": "string", "pattern": r"^1[3-9]\d{9}$"},
        "waybill": {"type": "string", "pattern": r"^[A-Z]{2}\d{9}[A-Z]{2}$"},
        "order_no": {"type": "string", "pattern": r"^ORD-\d{6,10}$"},
        "description": {"type": "string", "minLength": 5, "maxLength": 2000},
        "expected": {"type": "string", "maxLength": 1000},
        "address": {"type": "string", "maxLength": 200},
        "remark": {"type": "string", "maxLength": 200},
        "channel": {"enum": ["phone", "email", "web", "visit", "api"]},
        "category": {"enum": ["pickup", "transport", "delivery", "billing", "service", "delay", "damage", "loss"]},
        "priority": {"enum": ["urgent", "important", "normal"]},
        "region": {"enum": REGIONS},
        "resolution": {"enum": ["pending", "refund", "resend", "compensate", "explain"]},
        "amount": {"type": "number", "minimum": 0, "maximum": 100000},
        "weight_kg": {"type": "number", "minimum": 0, "maximum": 1000},
        "pieces": {"type": "integer", "minimum": 1, "maximum": 999},
        "satisfaction": {"type": "integer", "minimum": 1, "maximum": 5},
        "key_account": {"type": "boolean"},
        "email": {"type": "string", "format": "email"},
        "ship_date": {"type": "string", "format": "date"},
        "occurred_at": {"type": "string", "format": "date-time"},
    },
}


def records(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`n` valid records and `n` invalid ones with exactly three errors each."""
    rnd = random.Random(seed)
    valid = []
    for i in range(n):
        day = date(2026, 1, 1) + timedelta(days=rnd.randrange(300))
        valid.append({
            "customer_name": f"客户{i:05d}有限公司", "contact_name": f"联系人{i}",
            "contact_phone": f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}",
            "waybill": f"EA{rnd.randrange(10**9):09d}CN", "order_no": f"ORD-{rnd.randrange(10**8):08d}",
            "description": "货物在运输途中破损，需要赔偿" * rnd.randint(1, 3), "expected": "尽快处理",
            "address": "上海市浦东新区世纪大道100号", "remark": "",
            "channel": rnd.choice(["phone", "email", "web", "visit", "api"]),
            "category": rnd.choice(["pickup", "transport", "delivery", "billing", "service", "delay", "damage", "loss"]),
            "priority": rnd.choice(["urgent", "important", "normal"]), "region": rnd.choice(REGIONS),
            "resolution": rnd.choice(["pending", "refund", "resend", "compensate", "explain"]),
            "amount": round(rnd.uniform(0, 5000), 2), "weight_kg": round(rnd.uniform(0.1, 50), 1),
            "pieces": rnd.randint(1, 20), "satisfaction": rnd.randint(1, 5), "key_account": rnd.random() < 0.5,
            "email": f"user{i}@example.com", "ship_date": day.isoformat(),
            "occurred_at": f"{day.isoformat()}T{rnd.randrange(24):02d}:{rnd.randrange(60):02d}:00+08:00",
        })
    invalid = []
    for record in valid:
        bad = dict(record, contact_phone="12345", amount=-5)
        del bad["description"]
        invalid.append(bad)
    return valid, invalid


def rate(fn: Callable[[], None], items: int, repeat: int = 5) -> float:
    """Median items/s over `repeat` runs of `fn` (which processes `items` items)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(items / (time.perf_counter() - start))
    return statistics.median(runs)


def bench_validation(n: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        system = boot(WORKLOAD, db_url=f"sqlite:///{tmp}/v.db", clock=ManualClock(datetime(2026, 11, 23, tzinfo=timezone.utc)))
        form = system.forms.form("complaint20")
        system.db.dispose()
    valid, invalid = records(n)
    for r in invalid[:3]:
        try:
            form.validate(r)
        except ValidationFailed as exc:
            assert len(exc.errors) == 3, exc.errors
    peer = Draft202012Validator(PEER_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert all(len(list(peer.iter_errors(r))) == 3 for r in invalid[:3])

    def docket_valid() -> None:
        for r in valid:
            form.validate(r)

    def docket_invalid() -> None:
        for r in invalid:
            try:
                form.validate(r)
            except ValidationFailed:
                pass

    def peer_valid() -> None:
        for r in valid:
            list(peer.iter_errors(r))

    def peer_invalid() -> None:
        for r in invalid:
            list(peer.iter_errors(r))

    return [("Docket compiled form", rate(docket_valid, n), rate(docket_invalid, n)),
            ("peer: jsonschema Draft202012Validator reused", rate(peer_valid, n), rate(peer_invalid, n))]


def bench_submit(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        system = boot(WORKLOAD, db_url=f"sqlite:///{tmp}/s.db", clock=ManualClock(datetime(2026, 11, 23, tzinfo=timezone.utc)))
        valid, _ = records(n, seed=11)
        start = time.perf_counter()
        for r in valid:
            system.forms.submit("complaint20", r)
        elapsed = time.perf_counter() - start
        assert system.forms.count("complaint20") == n
        system.db.dispose()
        return n / elapsed


def bench_sqlite_floor(n: int) -> tuple[float, float]:
    """The floor under in-process submissions: raw sqlite3 storing the same rows, one
    transaction each (BEGIN IMMEDIATE, the record INSERT, the history INSERT, COMMIT), into the
    same tables and indexes that Docket made, WAL with synchronous=NORMAL. No validation, no
    SQLAlchemy, no Python objects per row: only SQLite's own work. Returns (submissions/s with
    a PASSIVE checkpoint every 200 commits on the committing thread, as SQLite's automatic
    checkpoint would; submissions/s with that checkpoint on a second thread, as Docket does)."""
    import sqlite3

    with tempfile.TemporaryDirectory() as tmp:
        system = boot(WORKLOAD, db_url=f"sqlite:///{tmp}/s.db", clock=ManualClock(datetime(2026, 11, 23, tzinfo=timezone.utc)))
        valid, _ = records(1, seed=11)
        system.forms.submit("complaint20", valid[0])
        system.db.dispose()
        source = sqlite3.connect(f"{tmp}/s.db")
        schema = [sql for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('rec_complaint20', 'dk_history') AND sql IS NOT NULL")]
        columns = [c[1] for c in source.execute("PRAGMA table_info(rec_complaint20)")][1:]
        row = list(source.execute(f"SELECT {', '.join(columns)} FROM rec_complaint20").fetchone())
        entry = source.execute("SELECT form, kind, node, actor, at, data FROM dk_history").fetchone()
        source.close()
        insert_record = (f"INSERT INTO rec_complaint20 ({', '.join(columns)}) "
                         f"VALUES ({', '.join('?' * len(columns))})")
        insert_entry = ("INSERT INTO dk_history (instance_id, form, record_id, kind, node, actor, at, data) "
                        "VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)")
        number = columns.index("query_no")

        def run(name: str, threaded: bool) -> float:
            path = f"{tmp}/{name}.db"
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "wal_autocheckpoint=0"):
                db.execute(f"PRAGMA {pragma}")
            for sql in schema:
                db.execute(sql)
            wake = threading.Event()
            stop = False

            def checkpoints() -> None:
                own = sqlite3.connect(path, isolation_level=None)
                while True:
                    wake.wait()
                    wake.clear()
                    if stop:
                        break
                    own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                own.close()

            thread = threading.Thread(target=checkpoints, daemon=True)
            if threaded:
                thread.start()
            start = time.perf_counter()
            for i in range(n):
                db.execute("BEGIN IMMEDIATE")
                row[number] = f"Q{i}"
                record_id = db.execute(insert_record, row).lastrowid
                db.execute(insert_entry, (entry[0], record_id, *entry[1:]))
                db.execute("COMMIT")
                if i % 200 == 199:
                    if threaded:
                        wake.set()
                    else:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            elapsed = time.perf_counter() - start
            stop = True
            wake.set()
            if threaded:
                thread.join()
            db.close()
            return n / elapsed

        return run("inline", False), run("threaded", True)


def bench_xlsx_import(n: int) -> tuple[float, float]:
    """XLSX import rows/s of the bench form: (validate + store in one transaction, read +
    validate only: the same file with one bad row more, so the batch stores nothing)."""
    import io

    import openpyxl

    from forms.exchange import export_records, import_records

    clock = ManualClock(datetime(2026, 11, 23, tzinfo=timezone.utc))
    with tempfile.TemporaryDirectory() as tmp:
        source = boot(WORKLOAD, db_url=f"sqlite:///{tmp}/a.db", clock=clock)
        valid, _ = records(n, seed=19)
        for r in valid:
            source.forms.submit("complaint20", r)
        sheet = io.BytesIO()
        assert export_records(source.forms, "complaint20", "xlsx", sheet) == n
        book = openpyxl.load_workbook(io.BytesIO(sheet.getvalue()))
        book.active.append(["x"] * book.active.max_column)
        broken = io.BytesIO()
        book.save(broken)
        target = boot(WORKLOAD, db_url=f"sqlite:///{tmp}/b.db", clock=clock)
        start = time.perf_counter()
        report = import_records(target.forms, "complaint20", "xlsx", io.BytesIO(sheet.getvalue()))
        stored = time.perf_counter() - start
        assert report.ok and report.stored == n, report.lines()[:3]
        start = time.perf_counter()
        report = import_records(target.forms, "complaint20", "xlsx", io.BytesIO(broken.getvalue()))
        checked = time.perf_counter() - start
        assert report.stored == 0 and report.error_count > 0
        for system in (source, target):
            system.db.dispose()
        return n / stored, (n + 1) / checked


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(tmp: str) -> Iterator[str]:
    """`docket serve` (uvicorn, one worker) on a public copy of the bench form; yields its URL."""
    import httpx2 as httpx  # the HTTP client the test extra installs (Starlette 1.x test client)

    port = _free_port()
    bundle = Path(tmp) / "bundle"
    subprocess.run(["cp", "-r", str(WORKLOAD), str(bundle)], check=True)
    form_file = bundle / "forms" / "complaint20.yaml"
    form_file.write_text(form_file.read_text().replace("form: complaint20\n", "form: complaint20\npublic: true\n"))
    env = {**os.environ, "DOCKET_SECRET_KEY": "bench", "DOCKET_API_SUBMITS_PER_MINUTE": "100000000"}
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "cli.py"), "serve", str(bundle), "--db", f"sqlite:///{tmp}/h.db",
         "--port", str(port), "--log-level", "warning"],
        cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def bench_http(n: int, threads: int = 8) -> float:
    """Submissions/s from 8 Python client threads (httpx, keep-alive)."""
    import httpx2 as httpx

    with tempfile.TemporaryDirectory() as tmp, served(tmp) as url:
        valid, _ = records(n, seed=13)
        chunks = [valid[i::threads] for i in range(threads)]
        errors: list[str] = []

        def worker(chunk: list[dict[str, Any]], index: int) -> None:
            with httpx.Client(base_url=url) as client:
                for r in chunk:
                    response = client.post("/api/v1/forms/complaint20/records", json=r)
                    if response.status_code != 201:
                        errors.append(f"{response.status_code} {response.text[:100]}")

        start = time.perf_counter()
        pool = [threading.Thread(target=worker, args=(c, i)) for i, c in enumerate(chunks)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            print(f"HTTP errors: {len(errors)}; first: {errors[0]}")
        return (n - len(errors)) / elapsed


def bench_http_wrk(seconds: int, connections: int = 8) -> tuple[float, int, int] | None:
    """Submissions/s from wrk (a C load generator: the client no longer competes with the
    server for the 2 cores as 8 Python threads do). Every request POSTs one valid record; the
    records stored are counted afterwards. None when wrk is not installed."""
    import json
    import re
    import shutil

    if shutil.which("wrk") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        (valid,), _ = records(1, seed=17)
        body = json.dumps(valid, default=str)
        script = Path(tmp) / "post.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        with served(tmp) as url:
            out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script),
                                  f"{url}/api/v1/forms/complaint20/records"],
                                 check=True, capture_output=True, text=True).stdout
        rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
        failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        import sqlite3

        with sqlite3.connect(Path(tmp) / "h.db") as db:
            stored = db.execute("SELECT count(*) FROM rec_complaint20").fetchone()[0]
        return rate, int(failed.group(1)) if failed else 0, stored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--submits", type=int, default=3000)
    parser.add_argument("--http", type=int, default=2000)
    parser.add_argument("--xlsx", type=int, default=2000, help="rows of the XLSX import run (0 skips it)")
    parser.add_argument("--wrk-seconds", type=int, default=10, help="0 skips the wrk run (needs Debian's wrk)")
    args = parser.parse_args()
    print(f"machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs\n")
    rows = bench_validation(args.records)
    print("| validator | valid rec/s | invalid (3 errors) rec/s |")
    print("| --- | ---: | ---: |")
    for name, ok, bad in rows:
        print(f"| {name} | {ok:,.0f} | {bad:,.0f} |")
    print(f"\nratio Docket / jsonschema: valid {rows[0][1] / rows[1][1]:.1f}x, invalid {rows[0][2] / rows[1][2]:.1f}x\n")
    print(f"submissions through the Python API on SQLite: {bench_submit(args.submits):,.0f}/s "
          f"({args.submits} records, one transaction each)")
    inline, threaded = bench_sqlite_floor(args.submits)
    print(f"floor: raw sqlite3 storing the same rows, one transaction each: {inline:,.0f}/s with checkpoints "
          f"on the committing thread, {threaded:,.0f}/s with them on a second thread (as Docket)")
    print(f"submissions over HTTP (uvicorn, 1 worker, 8 client threads): {bench_http(args.http):,.0f}/s")
    if args.xlsx:
        stored, checked = bench_xlsx_import(args.xlsx)
        print(f"XLSX import ({args.xlsx} rows): {stored:,.0f} rows/s validated and stored (one transaction), "
              f"{checked:,.0f} rows/s read and validated (a batch refused by one bad row)")
    wrk = bench_http_wrk(args.wrk_seconds) if args.wrk_seconds else None
    if wrk is not None:
        rate, failed, stored = wrk
        print(f"submissions over HTTP (uvicorn, 1 worker, wrk 2 threads x 8 connections, {args.wrk_seconds} s): "
              f"{rate:,.0f}/s, {failed} failed, {stored:,} records stored")


if __name__ == "__main__":
    main()
