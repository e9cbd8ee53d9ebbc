"""Benchmark (RELIABILITY 57): concurrent read-then-write commands on one SQLite file.

N processes (spawned) x M commands; each command, in one transaction, reads a counter row,
writes counter+1 and inserts an effect row (`dk_sequences` and `dk_history`, as a real command
touches state and history). Failed commands are counted, not retried. Three set-ups, each on a
fresh file, in the same run:

- docket:   engine.storage.db.create_engine: WAL, busy_timeout=10 s, BEGIN IMMEDIATE.
- deferred: the same pragmas but a deferred BEGIN (the SQLAlchemy recipe with plain `BEGIN`):
            WAL + busy_timeout alone; the read-then-write upgrade gets SQLITE_BUSY at once.
- plain:    `sqlalchemy.create_engine(url)` defaults: rollback journal, pysqlite's 5 s timeout,
            pysqlite's own implicit BEGIN (issued before the UPDATE, after the read).

Reported per set-up: commands that failed with "database is locked", lost updates (committed
commands whose increment was overwritten: successes - final counter), effects present, wall time,
throughput, and p50/p95/p99/max latency of the successful commands (lock waits included).

Run: .venv/bin/python bench/bench_sqlite_writers.py [--processes 8] [--commands 200]
     [--modes docket,deferred,plain]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402

from engine.storage import tables as t  # noqa: E402
from engine.storage.db import create_engine  # noqa: E402
from engine.storage.migrations import upgrade  # noqa: E402

COUNTER = "bench:counter"
MODES = ("docket", "deferred", "plain")


def make_engine(mode: str, url: str) -> Engine:
    if mode == "docket":
        return create_engine(url)
    if mode == "deferred":
        return create_engine(url).execution_options(docket_sqlite_begin="DEFERRED")
    if mode == "plain":
        return sa.create_engine(url)
    raise ValueError(mode)


def command(engine: Engine, worker: int, n: int) -> None:
    with engine.begin() as conn:
        value = conn.execute(sa.select(t.sequences.c.value)
                             .where(t.sequences.c.name == COUNTER)).scalar_one()
        conn.execute(t.sequences.update().where(t.sequences.c.name == COUNTER)
                     .values(value=value + 1))
        conn.execute(t.history.insert().values(
            form="bench", record_id=value + 1, kind="incremented", actor=f"w{worker}",
            at=datetime.now(timezone.utc), data={"n": n}))


def worker(mode: str, url: str, index: int, commands: int, start: Any, results: Any) -> None:
    engine = make_engine(mode, url)
    locked = other = 0
    latencies: list[float] = []
    start.wait(timeout=120)
    for n in range(commands):
        began = time.perf_counter()
        try:
            command(engine, index, n)
        except OperationalError as exc:
            if "database is locked" in str(exc):
                locked += 1
            else:
                other += 1
            continue
        latencies.append(time.perf_counter() - began)
    engine.dispose()
    results.put((locked, other, latencies))


def prepare(mode: str, path: Path) -> str:
    url = f"sqlite:///{path}"
    if mode == "plain":
        engine = sa.create_engine(url)
        t.metadata.create_all(engine)
    else:
        engine = create_engine(url)
        upgrade(engine)
    with engine.begin() as conn:
        conn.execute(t.sequences.insert().values(name=COUNTER, value=0))
    engine.dispose()
    return url


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def run(mode: str, processes: int, commands: int, directory: Path) -> dict[str, Any]:
    path = directory / f"{mode}.db"
    url = prepare(mode, path)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(mode, url, i, commands, start, results), daemon=True)
             for i in range(processes)]
    for proc in procs:
        proc.start()
    start.wait(timeout=120)  # every process imported and connected: start the clock
    began = time.perf_counter()
    outcomes = [results.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - began
    for proc in procs:
        proc.join(30)
    with sqlite3.connect(path) as db:
        counter = db.execute("SELECT value FROM dk_sequences WHERE name = ?", (COUNTER,)).fetchone()[0]
        effects = db.execute("SELECT count(*) FROM dk_history").fetchone()[0]
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    latencies = sorted(x for o in outcomes for x in o[2])
    return {
        "mode": mode, "journal": journal, "commands": processes * commands,
        "ok": len(latencies), "locked": sum(o[0] for o in outcomes),
        "other": sum(o[1] for o in outcomes), "counter": counter, "effects": effects,
        "lost": len(latencies) - counter, "wall": wall,
        "throughput": len(latencies) / wall if wall else float("nan"),
        "p50": percentile(latencies, 0.50), "p95": percentile(latencies, 0.95),
        "p99": percentile(latencies, 0.99),
        "max": latencies[-1] if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in MODES:
            parser.error(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")

    print(f"SQLite {sqlite3.sqlite_version}, SQLAlchemy {sa.__version__}, Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs; {args.processes} processes x "
          f"{args.commands} read-then-write commands")
    header = (f"{'mode':9} {'journal':8} {'ok':>6} {'locked':>6} {'lost':>5} {'effects':>7} "
              f"{'counter':>7} {'wall s':>7} {'cmd/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>8}")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="docket-bench-") as tmp:
        for mode in modes:
            r = run(mode, args.processes, args.commands, Path(tmp))
            print(f"{r['mode']:9} {r['journal']:8} {r['ok']:6d} {r['locked']:6d} {r['lost']:5d} "
                  f"{r['effects']:7d} {r['counter']:7d} {r['wall']:7.2f} {r['throughput']:7.0f} "
                  f"{r['p50'] * 1000:7.1f} {r['p95'] * 1000:7.1f} {r['p99'] * 1000:7.1f} {r['max'] * 1000:8.1f}"
                  + (f"  ({r['other']} other errors)" if r["other"] else ""))


if __name__ == "__main__":
    main()
