"""WAL checkpoints run off the committing thread, and the WAL stays bounded when they cannot."""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.storage.checkpoint import Checkpointer
from engine.storage.db import checkpointer, create_engine, transaction


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = create_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    with transaction(eng) as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
    yield eng
    eng.dispose()


def write(eng: Engine, n: int) -> None:
    for i in range(n):
        with transaction(eng) as conn:
            conn.execute(sa.text("INSERT INTO t (body) VALUES (:b)"), {"b": "x" * 3000 + str(i)})


def test_connections_to_a_file_leave_checkpoints_to_docket(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0


def test_a_background_thread_copies_the_wal_into_the_database_file(engine: Engine, tmp_path: Path) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after = 5, 10_000
    before = (tmp_path / "wal.db").stat().st_size
    write(engine, 12)
    assert wal.wait_idle()
    assert wal.background_runs >= 1 and wal.inline_runs == 0
    assert (tmp_path / "wal.db").stat().st_size > before + 5 * 3000  # the rows' pages reached the file


def test_the_committer_checkpoints_itself_when_none_finished_for_too_long(engine: Engine) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after = 10_000, 3  # the thread is never asked
    write(engine, 3)
    assert wal.inline_runs == 1 and wal.background_runs == 0


def test_without_a_thread_the_checkpoint_runs_inline(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    wal = checkpointer(engine)
    assert wal is not None
    wal.every = 2
    write(engine, 4)
    assert wal.inline_runs == 2


def test_a_failing_checkpoint_is_logged_and_the_commit_stands(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal = Checkpointer(str(tmp_path / "missing" / "x.db"), busy_timeout_ms=100, every=1, inline_after=1)
    with caplog.at_level(logging.WARNING, logger="engine.storage.checkpoint"):
        wal.committed()
    assert "WAL checkpoint" in caplog.text and wal.inline_runs == 0


def test_memory_databases_and_postgresql_have_no_checkpointer() -> None:
    assert checkpointer(create_engine("sqlite://")) is None


def test_opening_retries_a_lock_that_sqlite_does_not_wait_for() -> None:
    from engine.storage import db

    class Flaky:
        calls = 0

        def execute(self, sql: str) -> None:
            Flaky.calls += 1
            if Flaky.calls < 3:
                raise sqlite3.OperationalError("database is locked")

    db._first_touch(Flaky(), "PRAGMA journal_mode=WAL")
    assert Flaky.calls == 3


def test_opening_gives_up_on_other_errors_at_once() -> None:
    from engine.storage import db

    class Broken:
        def execute(self, sql: str) -> None:
            raise sqlite3.OperationalError("disk I/O error")

    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        db._first_touch(Broken(), "PRAGMA journal_mode=WAL")
