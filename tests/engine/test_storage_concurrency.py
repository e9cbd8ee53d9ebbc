"""RELIABILITY 57 (sized for CI): concurrent read-then-write commands on one SQLite file.

8 processes x 200 commands; each command reads a counter, writes counter+1 and inserts an effect
row in one `transaction()`. With BEGIN IMMEDIATE and busy_timeout none fails with "database is
locked" and no update is lost. The full benchmark, with latencies and the plain-SQLAlchemy peer,
is bench/bench_sqlite_writers.py.
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from engine.storage import tables as t
from engine.storage.db import create_engine, read_transaction, transaction

PROCESSES = 8
COMMANDS = 200
COUNTER = "test:counter"


def _command(engine: Engine, worker: int, n: int) -> None:
    with transaction(engine) as conn:
        value = conn.execute(sa.select(t.sequences.c.value)
                             .where(t.sequences.c.name == COUNTER)).scalar_one()
        conn.execute(t.sequences.update().where(t.sequences.c.name == COUNTER)
                     .values(value=value + 1))
        conn.execute(t.history.insert().values(
            form="counter", record_id=value + 1, kind="incremented", actor=f"w{worker}",
            at=datetime.now(timezone.utc), data={"n": n}))


def _worker(url: str, worker: int, commands: int, start: Any, results: Any) -> None:
    engine = create_engine(url)
    locked = other = 0
    latencies: list[float] = []
    start.wait(timeout=60)
    for n in range(commands):
        began = time.perf_counter()
        try:
            _command(engine, worker, n)
        except OperationalError as exc:
            if "database is locked" in str(exc):
                locked += 1
            else:
                other += 1
        latencies.append(time.perf_counter() - began)
    engine.dispose()
    results.put((worker, locked, other, latencies))


def test_concurrent_read_then_write_commands_never_fail_or_lose_updates(
        sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        conn.execute(t.sequences.insert().values(name=COUNTER, value=0))
    url = sqlite_engine.url.render_as_string(hide_password=False)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, w, COMMANDS, start, results), daemon=True)
             for w in range(PROCESSES)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0

    assert sum(o[1] for o in outcomes) == 0, "database is locked"
    assert sum(o[2] for o in outcomes) == 0
    total = PROCESSES * COMMANDS
    with read_transaction(sqlite_engine) as conn:
        counter = conn.execute(sa.select(t.sequences.c.value)
                               .where(t.sequences.c.name == COUNTER)).scalar_one()
        effects = conn.execute(sa.select(t.history.c.record_id)).scalars().all()
    assert counter == total
    assert len(effects) == total
    assert sorted(effects) == list(range(1, total + 1))  # every increment seen exactly once
    latencies = sorted(x for o in outcomes for x in o[3])
    p95 = latencies[int(0.95 * (len(latencies) - 1))]
    print(f"\n{total} commands, p95 latency {p95 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms")
