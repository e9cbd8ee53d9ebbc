"""Benchmark (issue 6): the cost of one timer tick with 1,000,000 open timers and 100 due.

Goal: under 50 ms. A tick claims the due timers (one short transaction, through the
(status, due_at) index) and fires them (one transaction per group of 50, a trivial handler), so
its cost should depend on the 100 due, not on the million open. The million rows are inserted
with executemany in chunks; between measured ticks 100 timers far in the future are moved to be
due again, so every tick finds exactly 100.

Also reported: the claim alone, a tick with nothing due, and the same tick on a table of only
100 timers (the baseline a tick would cost if open timers were free).

Run: .venv/bin/python bench/bench_timers.py [--open 1000000] [--due 100] [--ticks 7]
     [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]   (skipped if unreachable)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from engine.bundle import load_bundle  # noqa: E402
from engine.channels import register as register_channels  # noqa: E402
from engine.clock import ManualClock  # noqa: E402
from engine.registry import Registry  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.storage.db import create_engine, transaction  # noqa: E402
from engine.storage.migrations import upgrade  # noqa: E402
from engine.storage.tables import timers as T  # noqa: E402
from engine.timers import TimerService  # noqa: E402

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _runtime(db: sa.Engine, folder: Path) -> Runtime:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bundle.yaml").write_text('bundle: bench\nversion: "1"\nlabel: Bench\n', encoding="utf-8")
    registry = Registry()
    register_channels(registry)
    return Runtime(load_bundle(folder, registry), db, ManualClock(NOW))


_FILL_SQL = {
    # Rows generated inside the database (one statement): a million rows in seconds.
    "sqlite": """
        WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x + 1 < :count)
        INSERT INTO dk_timers (kind, subject, key, due_at, payload, status, attempts, open_key, created_at)
        SELECT 'sla.warning', 'record:complaint:' || x, 'yellow',
               datetime('2026-03-02 10:00:00', '+' || (x * 30) || ' seconds') || '.000000',
               '{}', 'pending', 0, 'bench:' || x, '2026-03-02 09:00:00.000000' FROM n
    """,
    "postgresql": """
        INSERT INTO dk_timers (kind, subject, key, due_at, payload, status, attempts, open_key, created_at)
        SELECT 'sla.warning', 'record:complaint:' || x, 'yellow',
               timestamptz '2026-03-02 10:00:00+00' + x * interval '30 seconds',
               '{}'::json, 'pending', 0, 'bench:' || x, timestamptz '2026-03-02 09:00:00+00'
        FROM generate_series(0, :count - 1) AS x
    """,
}


def _fill(db: sa.Engine, count: int) -> float:
    """`count` pending timers due from 1 hour after NOW on, 30 s apart; returns seconds taken."""
    started = time.perf_counter()
    with transaction(db) as conn:
        conn.execute(sa.text(_FILL_SQL[conn.dialect.name]), {"count": count})
    with db.connect() as conn:
        conn.exec_driver_sql("ANALYZE dk_timers" if conn.dialect.name == "postgresql" else "ANALYZE")
        conn.commit()
    return time.perf_counter() - started


def _make_due(db: sa.Engine, due: int, round_no: int) -> None:
    """Move `due` of the farthest-future pending timers to be due now (not timed)."""
    with transaction(db) as conn:
        ids = conn.execute(sa.select(T.c.id).where(T.c.status == "pending")
                           .order_by(T.c.due_at.desc()).limit(due)).scalars().all()
        conn.execute(T.update().where(T.c.id.in_(ids))
                     .values(due_at=NOW - timedelta(seconds=round_no + 1)))


CPU: dict[str, list[float]] = {}
"""Process CPU time of the last measurement (ms): the machine is shared, so wall time includes
waiting for a core; CPU time is what the tick itself costs this process (for SQLite, the
database work too; PostgreSQL's own work happens in the server)."""


def _timed(runs: int, prepare: Callable[[int], None], act: Callable[[], Any]) -> tuple[list[float], list[Any]]:
    times, results, cpu = [], [], []
    for i in range(runs):
        prepare(i)
        started, cpu_started = time.perf_counter(), time.process_time()
        results.append(act())
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    CPU["last"] = cpu
    return times, results


def measure(url: str, label: str, open_count: int, due: int, ticks: int) -> list[tuple[str, str, str]]:
    db = create_engine(url)
    upgrade(db)
    folder = Path(tempfile.mkdtemp(prefix="bench-timers-"))
    runtime = _runtime(db, folder / "bundle")
    fired: list[int] = []
    service = TimerService(runtime)
    service.on("sla.warning", lambda conn, timer: fired.append(timer.id))
    rows = []

    # Baseline: only the due timers exist.
    base_times, _ = _timed(ticks, lambda i: _fill_small(db, due, i), lambda: service.tick(limit=500))
    with transaction(db) as conn:
        conn.execute(T.delete())
    fill_seconds = _fill(db, open_count)
    rows.append((label, f"insert {open_count:,} open timers (one INSERT ... SELECT)",
                 f"{fill_seconds:.1f} s"))
    rows.append((label, f"tick, {due} due, table of {due} timers (baseline)", _ms(base_times)))

    empty_times, counts = _timed(ticks, lambda i: None, lambda: service.tick(limit=500))
    assert counts == [0] * ticks
    rows.append((label, f"tick, nothing due, {open_count:,} open", _ms(empty_times)))

    claim_times, claimed = _timed(ticks, lambda i: _make_due(db, due, 1000 + i),
                                  lambda: service._claim(runtime.clock.now(), 500))
    assert [len(c) for c in claimed] == [due] * ticks
    for batch in claimed:  # fire what was claimed so the next rounds start clean
        service._fire_group(batch, runtime.clock.now())
    rows.append((label, f"claim only, {due} due, {open_count:,} open", _ms(claim_times)))

    tick_times, counts = _timed(ticks, lambda i: _make_due(db, due, 2000 + i),
                                lambda: service.tick(limit=500))
    assert counts == [due] * ticks, counts
    rows.append((label, f"**tick: claim + fire {due} due, {open_count:,} open**", _ms(tick_times)))
    db.dispose()
    return rows


def _fill_small(db: sa.Engine, due: int, round_no: int) -> None:
    rows = [{"kind": "sla.warning", "subject": f"record:small:{round_no}:{i}", "key": "", "due_at": NOW,
             "payload": {}, "status": "pending", "attempts": 0, "created_at": NOW,
             "open_key": uuid.uuid4().hex} for i in range(due)]
    with transaction(db) as conn:
        conn.execute(T.insert(), rows)


def _ms(times: list[float]) -> str:
    cpu = CPU.get("last") or [0.0]
    return (f"median {statistics.median(times):.1f} ms (min {min(times):.1f}, max {max(times):.1f}); "
            f"CPU {statistics.median(cpu):.1f} ms")


def _postgres(url: str) -> str | None:
    import psycopg
    from sqlalchemy.engine import make_url

    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"bench_timers_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(libpq, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except Exception as exc:  # noqa: BLE001
        print(f"PostgreSQL skipped: {exc}".strip())
        return None
    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _drop(url: str) -> None:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    schema = parsed.query["options"].split("=", 1)[1]
    libpq = parsed.difference_update_query(["options"]).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=7)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        rows += measure(f"sqlite:///{folder}/timers.db", "SQLite", args.open, args.due, args.ticks)
    pg = _postgres(args.postgres) if args.postgres else None
    if pg:
        try:
            rows += measure(pg, "PostgreSQL", args.open, args.due, args.ticks)
        finally:
            _drop(pg)
    print("| database | what | wall time (CPU of this process) |\n| --- | --- | ---: |")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")


if __name__ == "__main__":
    main()
