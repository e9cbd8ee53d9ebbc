"""`docket worker`: a process that only ticks timers and delivers the outbox, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import sqlalchemy as sa

from engine.clock import SystemClock
from engine.outbox import Outbox
from engine.runtime import Runtime
from engine.storage.db import create_engine, read_transaction, transaction
from engine.storage.tables import outbox as O
from tests.engine.timers_kit import kit_registry, write_bundle
from web.system import boot

ROOT = Path(__file__).resolve().parents[2]


def test_boot_provides_timers_and_outbox_to_every_engine(tmp_path: Path) -> None:
    system = boot(write_bundle(tmp_path / "b"), db_url=f"sqlite:///{tmp_path / 'd.db'}")
    services = system.runtime.services
    assert {"timers", "outbox", "forms", "flows"} <= set(services)
    assert list(services).index("timers") < list(services).index("flows")
    system.db.dispose()


def test_a_worker_process_delivers_queued_messages_and_stops_on_sigterm(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b")
    url = f"sqlite:///{tmp_path / 'd.db'}"
    worker = subprocess.Popen([sys.executable, "cli.py", "worker", str(bundle), "--db", url,
                               "--interval", "0.2", "--log-level", "warning"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        banner = worker.stdout.readline() if worker.stdout else ""
        assert "Docket worker: firing timers and sending messages" in banner
        db = create_engine(url)
        from engine.bundle import load_bundle

        outbox = Outbox(Runtime(load_bundle(bundle, kit_registry()), db, SystemClock()))
        with transaction(db) as conn:
            outbox.enqueue(conn, channel="log", to="ops@example.com", subject="hello", body="from a test")
        waited = threading.Event()
        status = None
        for _ in range(300):  # up to 30 s on a busy machine; normally well under a second
            with read_transaction(db) as conn:
                status = conn.execute(sa.select(O.c.status)).scalar_one()
            if status == "sent" or waited.wait(0.1):
                break
        assert status == "sent"
        db.dispose()
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
