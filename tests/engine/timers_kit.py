"""Shared set-up for the timer, outbox and channel tests: a minimal bundle, a runtime on a
migrated database and a ManualClock."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.bundle import load_bundle
from engine.clock import ManualClock
from engine.registry import Registry
from engine.runtime import Runtime
from engine.storage.db import create_engine, read_transaction, transaction
from engine.storage.tables import timers as timer_table

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)

BUNDLE_YAML = """\
    bundle: kit
    version: "1"
    label: Timer kit
    """


def write_bundle(root: Path, extra: str = "") -> Path:
    """A bundle folder with only bundle.yaml (plus `extra` YAML appended to it)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "bundle.yaml").write_text(dedent(BUNDLE_YAML) + dedent(extra), encoding="utf-8")
    return root


def kit_registry() -> Registry:
    """The built-in channel types only: enough for a bundle of just bundle.yaml, and light to
    import in the spawned worker processes."""
    from engine.channels import register

    registry = Registry()
    register(registry)
    return registry


def make_runtime(db: Engine, root: Path, *, extra: str = "", registry: Registry | None = None,
                 clock: ManualClock | None = None) -> Runtime:
    """A Runtime over `db` (already migrated) with a ManualClock at START."""
    bundle = load_bundle(write_bundle(root, extra), registry or kit_registry())
    return Runtime(bundle, db, clock or ManualClock(START))


# -- a fire log: what the test handlers write, counted to prove "exactly once" -----------------

test_metadata = sa.MetaData()
fire_log = sa.Table(
    "t_fire_log", test_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("timer_id", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(100), nullable=False),
)


def log_fire(conn: Any, timer: Any) -> None:
    """A handler with a visible effect in the firing transaction."""
    conn.execute(fire_log.insert().values(timer_id=timer.id, worker=str(os.getpid())))


def fire_counts(db: Engine) -> dict[int, int]:
    """How many times each timer's handler committed."""
    with read_transaction(db) as conn:
        rows = conn.execute(sa.select(fire_log.c.timer_id, sa.func.count()).group_by(fire_log.c.timer_id))
        return {int(t): int(n) for t, n in rows}


def bulk_timers(db: Engine, count: int, due: datetime, *, kind: str = "test") -> None:
    """Insert `count` pending timers due at `due` in one executemany (fast set-up)."""
    rows = [{"kind": kind, "subject": f"task:{i}", "key": "", "due_at": due, "payload": {},
             "status": "pending", "attempts": 0,
             "open_key": hashlib.sha256(json.dumps([kind, f"task:{i}", ""]).encode()).hexdigest(),
             "created_at": due} for i in range(count)]
    with transaction(db) as conn:
        conn.execute(timer_table.insert(), rows)


class ErrorRecords(logging.Handler):
    """Collects log records at ERROR and above (RELIABILITY 24: no 'database is locked' there)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def scheduler_worker(url: str, root: str, barrier: Any, results: Any, total: int) -> None:
    """A separate process: a real Scheduler ticking every 20 ms until every timer has fired.

    Reports (errors logged at ERROR, scheduler still running, its job still scheduled).
    """
    import os as _os

    from engine.scheduler import Scheduler
    from engine.timers import TimerService

    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    db = create_engine(url)
    runtime = make_runtime(db, Path(root) / f"b{_os.getpid()}", clock=ManualClock(START + timedelta(seconds=1)))
    TimerService(runtime).on("test", log_fire)
    # Small claims, so the processes really compete for the same rows.
    scheduler = Scheduler(runtime, timer_interval=0.02, batch=50)
    barrier.wait(60)
    scheduler.start()
    done = threading.Event()
    while not done.wait(0.05):
        with read_transaction(db) as conn:
            left = conn.execute(sa.select(sa.func.count()).select_from(timer_table)
                                .where(timer_table.c.status != "fired")).scalar_one()
        if left == 0:
            done.set()
    alive = scheduler.running and bool(scheduler.jobs())
    scheduler.shutdown()
    db.dispose()
    results.put((errors.records, alive))


def crash_while_firing(url: str, root: str) -> None:
    """A separate process that claims a due timer, writes its effect, and is killed (SIGKILL)
    inside the firing transaction, before the commit (RELIABILITY 23)."""
    import signal

    from engine.timers import TimerService

    db = create_engine(url)
    runtime = make_runtime(db, Path(root) / "crash", clock=ManualClock(START + timedelta(seconds=1)))

    def die(conn: Any, timer: Any) -> None:
        log_fire(conn, timer)
        os.kill(os.getpid(), signal.SIGKILL)

    TimerService(runtime, lease=timedelta(minutes=5)).on("test", die)
    runtime.services["timers"].tick()
