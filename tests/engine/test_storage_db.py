"""Engines and transactions: SQLite pragmas, BEGIN IMMEDIATE, rollback, optimistic locking."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from engine.errors import ConflictError
from engine.storage import tables as t
from engine.storage.db import (
    BUSY_TIMEOUT_MS, create_engine, database_url, read_transaction, transaction, update_versioned,
)

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc)


def _sqlite_path(engine: Engine) -> str:
    return str(engine.url.database)


def _new_instance(conn: sa.Connection) -> int:
    conn.execute(t.bundle_versions.insert().values(
        hash="h1", name="b", loaded_at=NOW, source={}))
    return int(conn.execute(t.flow_instances.insert().values(
        flow="f", form="complaint", record_id=1, bundle_hash="h1", status="running",
        current=["accept"], variables={}, started_at=NOW)).inserted_primary_key[0])


# RELIABILITY 59 -------------------------------------------------------------------------------

def test_every_pooled_sqlite_connection_has_wal_foreign_keys_and_busy_timeout(
        sqlite_engine: Engine) -> None:
    seen = set()
    with ExitStack() as stack:
        for _ in range(5):  # held open together, so the pool has to make five connections
            conn = stack.enter_context(sqlite_engine.connect())
            conn.execution_options(docket_sqlite_begin="DEFERRED")
            seen.add(id(conn.connection.dbapi_connection))
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert len(seen) == 5
    assert BUSY_TIMEOUT_MS >= 5000


def test_foreign_key_violation_raises_integrity_error(sqlite_engine: Engine) -> None:
    with pytest.raises(IntegrityError, match="FOREIGN KEY"):
        with transaction(sqlite_engine) as conn:
            conn.execute(t.user_roles.insert().values(user_id=999, role="agent"))


@pytest.mark.postgres
def test_foreign_key_violation_raises_integrity_error_on_postgres(postgres_engine: Engine) -> None:
    with pytest.raises(IntegrityError, match="foreign key"):
        with transaction(postgres_engine) as conn:
            conn.execute(t.user_roles.insert().values(user_id=999, role="agent"))


# BEGIN IMMEDIATE ------------------------------------------------------------------------------

def test_sqlite_transaction_holds_the_write_lock_from_its_start(sqlite_engine: Engine) -> None:
    other = sqlite3.connect(_sqlite_path(sqlite_engine), timeout=0, isolation_level=None)
    try:
        with transaction(sqlite_engine):
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released at commit
        other.execute("ROLLBACK")
    finally:
        other.close()


def test_read_transaction_does_not_wait_for_a_writer(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as writer:
        writer.execute(t.roles.insert().values(name="agent"))
        started = time.monotonic()
        with read_transaction(sqlite_engine) as reader:
            assert reader.execute(sa.select(sa.func.count()).select_from(t.roles)).scalar() == 0
        assert time.monotonic() - started < 1.0


def test_second_writer_waits_for_the_first_instead_of_failing(sqlite_engine: Engine) -> None:
    released = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with transaction(sqlite_engine) as conn:  # waits on busy_timeout for the lock
                n = conn.execute(sa.select(sa.func.count()).select_from(t.roles)).scalar()
                conn.execute(t.roles.insert().values(name=f"r{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        released.set()

    with transaction(sqlite_engine) as conn:
        conn.execute(t.roles.insert().values(name="first"))
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        assert not released.is_set()
    thread.join(10)
    assert errors == []
    with read_transaction(sqlite_engine) as conn:
        assert sorted(conn.execute(sa.select(t.roles.c.name)).scalars()) == ["first", "r1"]


# RELIABILITY 31 at the storage level ------------------------------------------------------------

def test_exception_inside_transaction_leaves_nothing_written(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="injected"):
        with transaction(db_engine) as conn:
            instance_id = _new_instance(conn)
            conn.execute(t.history.insert().values(
                instance_id=instance_id, form="complaint", record_id=1, kind="submitted", at=NOW))
            conn.execute(t.timers.insert().values(
                kind="sla", key="sla:1:red", due_at=NOW, payload={}, status="pending"))
            conn.execute(t.outbox.insert().values(
                channel="sms", recipient="13800000000", idempotency_key="k1", status="pending",
                created_at=NOW))
            raise RuntimeError("injected failure before commit")
    with read_transaction(db_engine) as conn:
        for table in (t.bundle_versions, t.flow_instances, t.history, t.timers, t.outbox):
            assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 0, table


def test_transaction_commits_when_the_block_succeeds(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        conn.execute(t.roles.insert().values(name="agent"))
    with read_transaction(db_engine) as conn:
        assert conn.execute(sa.select(t.roles.c.name)).scalars().all() == ["agent"]


# Optimistic locking ---------------------------------------------------------------------------

def test_update_versioned_returns_the_next_version(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        instance_id = _new_instance(conn)
    with transaction(db_engine) as conn:
        assert update_versioned(conn, t.flow_instances, instance_id, 1, {"status": "completed"}) == 2
    with read_transaction(db_engine) as conn:
        row = conn.execute(sa.select(t.flow_instances)).one()
    assert (row.status, row.version) == ("completed", 2)


def test_update_versioned_with_a_stale_version_raises_conflict(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        instance_id = _new_instance(conn)
    with transaction(db_engine) as conn:  # the winner
        update_versioned(conn, t.flow_instances, instance_id, 1, {"status": "completed"})
    with pytest.raises(ConflictError, match="changed by someone else"):
        with transaction(db_engine) as conn:  # the loser still holds version 1
            update_versioned(conn, t.flow_instances, instance_id, 1, {"status": "withdrawn"})
    with read_transaction(db_engine) as conn:
        row = conn.execute(sa.select(t.flow_instances)).one()
    assert (row.status, row.version) == ("completed", 2)


def test_update_versioned_on_a_deleted_row_raises_conflict(db_engine: Engine) -> None:
    with pytest.raises(ConflictError):
        with transaction(db_engine) as conn:
            update_versioned(conn, t.flow_instances, 12345, 1, {"status": "completed"})


# URLs and engines -----------------------------------------------------------------------------

def test_database_url_prefers_explicit_then_environment(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKET_DATABASE_URL", f"sqlite:///{tmp_path}/env/docket.db")
    assert database_url("sqlite:///:memory:") == "sqlite:///:memory:"
    assert database_url() == f"sqlite:///{tmp_path}/env/docket.db"


def test_database_url_creates_the_directory_of_a_sqlite_file(tmp_path: Path) -> None:
    url = database_url(f"sqlite:///{tmp_path}/a/b/docket.db")
    assert (tmp_path / "a" / "b").is_dir()
    engine = create_engine(url)
    with transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE x (a INTEGER)")
    engine.dispose()
    assert (tmp_path / "a" / "b" / "docket.db").is_file()


def test_in_memory_sqlite_engine_is_one_shared_database() -> None:
    engine = create_engine("sqlite://")
    with transaction(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE x (a INTEGER)")
        conn.exec_driver_sql("INSERT INTO x VALUES (1)")
    with read_transaction(engine) as conn:
        assert conn.exec_driver_sql("SELECT a FROM x").scalar() == 1
    engine.dispose()
