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
from engine.storage.db import CHECK_DEFERRED_ENV, checkpointer, create_engine, transaction


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    # The engine as production makes it: the suite's deferred-read check is a statement event,
    # which changes the timing between writers and the checkpoint thread these tests measure.
    monkeypatch.delenv(CHECK_DEFERRED_ENV, raising=False)
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


def test_a_checkpoint_failing_again_and_again_is_one_warning_not_one_a_second(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # On a full disk the server logged "WAL checkpoint of ... failed" every second.
    wal = Checkpointer(str(tmp_path / "missing" / "x.db"), busy_timeout_ms=100, every=1, inline_after=1)
    with caplog.at_level(logging.WARNING, logger="engine.storage.checkpoint"):
        for _ in range(20):
            wal.committed()
    (record,) = caplog.records
    assert record.getMessage().startswith(f"WAL checkpoint of {tmp_path / 'missing' / 'x.db'} stopped by the database")


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


def wal_frames(path: Path) -> int:
    """Frames in the WAL now (a PASSIVE checkpoint reports them and copies what it can)."""
    own = sqlite3.connect(path, isolation_level=None)
    try:
        return int(own.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
    finally:
        own.close()


def test_a_long_wal_is_finished_with_the_writers_held_off_so_it_starts_over(engine: Engine, tmp_path: Path) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after, wal.restart_frames = 10_000, 10_000, 10
    write(engine, 30)
    assert wal_frames(tmp_path / "wal.db") > 10
    assert wal._checkpoint(inline=False, restart=True)
    assert wal.restarts == 1
    write(engine, 1)  # the next commit starts the WAL from its beginning
    assert wal_frames(tmp_path / "wal.db") < 10


def test_the_wal_file_stays_bounded_under_sustained_writes(engine: Engine, tmp_path: Path) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after, wal.restart_frames = 5, 10_000, 40
    write(engine, 3000)
    assert wal.wait_idle()
    assert wal.restarts >= 1
    # Without the restarts every frame of the run stays in the file: at least one page (and
    # its 24-byte frame header) per commit of a 3 KB row. With them, the file holds what is
    # committed while one checkpoint runs: a few hundred frames on a fast machine, where the
    # woken thread waits milliseconds for the GIL; enough commits make that a small part.
    assert (tmp_path / "wal.db-wal").stat().st_size < 3000 * (4096 + 24) / 2


def test_connections_cut_a_restarted_wal_back_to_a_limit(engine: Engine) -> None:
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == Checkpointer.JOURNAL_SIZE_LIMIT


def test_a_checkpoint_is_asked_for_after_an_interval_of_few_large_commits(engine: Engine) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after = 10_000, 10_000
    write(engine, 1)
    assert wal.wait_idle() and wal.background_runs == 0
    wal._asked_at -= Checkpointer.INTERVAL  # as if the interval went by since the last request
    write(engine, 1)
    assert wal.wait_idle() and wal.background_runs == 1


def test_a_restart_gives_up_on_a_reader_that_outlasts_its_wait(engine: Engine, tmp_path: Path) -> None:
    wal = checkpointer(engine)
    assert wal is not None
    wal.every, wal.inline_after, wal.restart_frames = 10_000, 10_000, 1
    wal.RESTART_WAIT_MS = 50
    reader = sqlite3.connect(tmp_path / "wal.db", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()  # holds its snapshot on the WAL
    write(engine, 5)
    try:
        assert wal._checkpoint(inline=False, restart=True)  # finished, without the restart
        assert wal.restarts == 0
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert wal._checkpoint(inline=False, restart=True) and wal.restarts == 1


def test_a_disposed_engine_nobody_holds_is_freed_and_its_checkpoint_thread_ends(tmp_path: Path) -> None:
    import gc
    import weakref

    eng = create_engine(f"sqlite:///{tmp_path / 'scratch.db'}")  # as a scenario's scratch database
    wal = checkpointer(eng)
    assert wal is not None
    wal.every = 1
    with transaction(eng) as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
    assert wal.wait_idle()
    thread = wal._thread
    assert thread is not None and thread.is_alive()
    gone = weakref.ref(eng)
    eng.dispose()
    del eng, wal, conn
    gc.collect()
    assert gone() is None  # the thread held it: one engine, its caches and a thread per scratch run
    thread.join(timeout=5)
    assert not thread.is_alive()
