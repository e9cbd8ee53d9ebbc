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
    BUSY_TIMEOUT_MS, CHECK_DEFERRED_ENV, create_engine, database_url, read_transaction, savepoint, schema_inspector,
    single_read, transaction, update_versioned,
)
from engine.storage.prepared import PreparedQuery

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


# Savepoints: part of a command that may fail alone ------------------------------------------------

def role_names(engine: Engine) -> list[str]:
    with read_transaction(engine) as conn:
        return sorted(conn.execute(sa.select(t.roles.c.name)).scalars())


def test_a_failed_savepoint_undoes_its_own_writes_and_keeps_the_commands(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        conn.execute(t.roles.insert().values(name="before"))
        with pytest.raises(RuntimeError, match="part failed"), savepoint(conn):
            conn.execute(t.roles.insert().values(name="inside"))
            raise RuntimeError("part failed")
        conn.execute(t.roles.insert().values(name="after"))
    assert role_names(db_engine) == ["after", "before"]


def test_a_database_error_in_a_savepoint_leaves_the_transaction_usable(db_engine: Engine) -> None:
    # PostgreSQL refuses every statement of a transaction after an error, unless the error was
    # rolled back to a savepoint.
    with transaction(db_engine) as conn:
        conn.execute(t.roles.insert().values(name="agent"))
        with pytest.raises(IntegrityError), savepoint(conn):
            conn.execute(t.roles.insert().values(name="agent"))
        conn.execute(t.roles.insert().values(name="clerk"))
    assert role_names(db_engine) == ["agent", "clerk"]


def test_nested_savepoints_roll_back_only_the_inner_part(db_engine: Engine) -> None:
    with transaction(db_engine) as conn, savepoint(conn):
        conn.execute(t.roles.insert().values(name="outer"))
        with pytest.raises(RuntimeError), savepoint(conn):
            conn.execute(t.roles.insert().values(name="inner"))
            raise RuntimeError("inner part failed")
    assert role_names(db_engine) == ["outer"]


def test_a_savepoint_outside_a_transaction_is_refused(db_engine: Engine) -> None:
    with db_engine.connect() as conn, pytest.raises(RuntimeError, match="transaction"):
        with savepoint(conn):
            pass


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


# The lean SQLite transaction (issue 4, submissions/s) --------------------------------------------

def test_sqlite_engine_has_no_connection_events(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # BEGIN IMMEDIATE comes from the dialect and deferred rows are written by transaction():
    # no per-statement event dispatch on the hot path (only the test suite's read check adds one).
    monkeypatch.delenv(CHECK_DEFERRED_ENV, raising=False)
    engine = create_engine(sqlite_url)
    try:
        assert not engine._has_events
        with transaction(engine) as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    finally:
        engine.dispose()


def test_deferred_begin_option_still_applies_per_connection_and_per_engine(sqlite_engine: Engine) -> None:
    other = sqlite3.connect(_sqlite_path(sqlite_engine), timeout=0, isolation_level=None)
    try:
        for conn in (sqlite_engine.connect().execution_options(docket_sqlite_begin="DEFERRED"),
                     sqlite_engine.execution_options(docket_sqlite_begin="DEFERRED").connect()):
            with conn:
                conn.exec_driver_sql("SELECT 1").scalar()  # autobegin: deferred, no write lock
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
        assert not sqlite_engine.dispatch.engine_connect  # the option engine's listener is its own
        # The option ends with its connection's checkout: the next one begins IMMEDIATE again.
        with sqlite_engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_writer_threads_queue_on_the_gate_and_each_commits(sqlite_engine: Engine) -> None:
    errors: list[BaseException] = []
    inside = 0
    most_inside = 0
    guard = threading.Lock()

    def writer(index: int) -> None:
        nonlocal inside, most_inside
        try:
            for j in range(10):
                with transaction(sqlite_engine) as conn:
                    with guard:
                        inside += 1
                        most_inside = max(most_inside, inside)
                    conn.execute(t.roles.insert().values(name=f"r{index}-{j}"))
                    with guard:
                        inside -= 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert most_inside == 1  # one write transaction of this process at a time
    assert time.monotonic() - started < 10  # no 100 ms naps in SQLite's busy handler
    with read_transaction(sqlite_engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.roles)).scalar() == 60


def test_gate_is_released_when_the_transaction_fails(sqlite_engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="injected"):
        with transaction(sqlite_engine) as conn:
            conn.execute(t.roles.insert().values(name="lost"))
            raise RuntimeError("injected")
    done = threading.Event()

    def other_thread() -> None:
        with transaction(sqlite_engine) as conn:
            conn.execute(t.roles.insert().values(name="kept"))
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(5)
    assert done.is_set()
    with read_transaction(sqlite_engine) as conn:
        assert list(conn.execute(sa.select(t.roles.c.name)).scalars()) == ["kept"]


def test_nested_write_transaction_on_one_thread_fails_as_sqlite_says(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The gate lets the same thread through (it would wait for itself): SQLite answers as before.
    import engine.storage.db as db

    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 200)
    engine = create_engine(f"sqlite:///{tmp_path}/n.db")
    try:
        with transaction(engine):
            with pytest.raises(sa.exc.OperationalError, match="database is locked"):
                with transaction(engine):
                    pass
    finally:
        engine.dispose()


def _driver_connection(conn: sa.Connection) -> object:
    return conn.connection.dbapi_connection


def test_write_transactions_of_one_process_share_one_connection(sqlite_engine: Engine) -> None:
    seen = set()

    def writer() -> None:
        with transaction(sqlite_engine) as conn:
            seen.add(id(_driver_connection(conn)))

    writer()
    thread = threading.Thread(target=writer)
    thread.start()
    thread.join(5)
    writer()
    assert len(seen) == 1  # no pool checkout per transaction, whichever thread writes


def test_a_failed_transaction_hands_its_connection_back(sqlite_engine: Engine) -> None:
    with pytest.raises(RuntimeError, match="injected"):
        with transaction(sqlite_engine) as conn:
            failed = conn
            conn.execute(t.roles.insert().values(name="lost"))
            raise RuntimeError("injected")
    with transaction(sqlite_engine) as conn:
        assert conn is not failed and failed.closed
        assert conn.execute(sa.select(sa.func.count()).select_from(t.roles)).scalar() == 0


def test_a_disposed_engine_writes_through_a_connection_of_its_new_pool(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        before = conn
    sqlite_engine.dispose()
    with transaction(sqlite_engine) as conn:
        assert conn is not before
        conn.execute(t.roles.insert().values(name="after-dispose"))
    with read_transaction(sqlite_engine) as conn:
        assert list(conn.execute(sa.select(t.roles.c.name)).scalars()) == ["after-dispose"]


def test_an_option_engine_writes_through_its_own_connection(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        shared = conn
    with transaction(sqlite_engine.execution_options(docket_test_marker=True)) as conn:
        assert conn is not shared
        assert conn.get_execution_options().get("docket_test_marker") is True


_ROLE_NAMES = PreparedQuery(sa.select(t.roles.c.name).order_by(t.roles.c.name))


def test_a_single_read_uses_the_writers_connection_when_no_writer_holds_it(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        conn.execute(t.roles.insert().values(name="fresh"))
        writer = _driver_connection(conn)
    with single_read(sqlite_engine) as conn:
        assert _driver_connection(conn) is writer
        assert [row["name"] for row in _ROLE_NAMES.all(conn)] == ["fresh"]


def test_a_single_read_takes_a_pooled_connection_while_a_writer_holds_the_gate(sqlite_engine: Engine) -> None:
    inside, leave = threading.Event(), threading.Event()
    seen: list[object] = []

    def writer() -> None:
        with transaction(sqlite_engine) as conn:
            seen.append(_driver_connection(conn))
            conn.execute(t.roles.insert().values(name="uncommitted"))
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert inside.wait(5)
        started = time.monotonic()
        with single_read(sqlite_engine) as conn:  # does not wait for the writer
            assert _driver_connection(conn) is not seen[0]
            assert _ROLE_NAMES.all(conn) == []  # the writer's work is not committed yet
        assert time.monotonic() - started < 1
    finally:
        leave.set()
        thread.join(5)


def test_a_single_read_inside_a_transaction_does_not_use_that_transaction(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        conn.execute(t.roles.insert().values(name="pending"))
        with single_read(sqlite_engine) as other:
            assert other is not conn
            assert _ROLE_NAMES.all(other) == []


def test_a_single_read_leaves_no_transaction_open_on_the_shared_connection(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine):
        pass
    with single_read(sqlite_engine) as conn:
        conn.execute(sa.select(t.roles.c.name)).all()  # Core autobegins a transaction here
    other = sqlite3.connect(_sqlite_path(sqlite_engine), timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # nobody holds the write lock
        other.execute("ROLLBACK")
    finally:
        other.close()
    with transaction(sqlite_engine) as conn:
        conn.execute(t.roles.insert().values(name="after"))


def test_a_failed_single_read_hands_the_shared_connection_back(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        shared = conn
    with pytest.raises(RuntimeError, match="injected"):
        with single_read(sqlite_engine) as conn:
            assert conn is shared
            raise RuntimeError("injected")
    assert shared.closed
    with transaction(sqlite_engine) as conn:
        assert conn is not shared


def test_schema_inspector_sees_tables_made_on_another_connection(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine):
        pass  # the shared write connection is checked out from now on
    with read_transaction(sqlite_engine) as conn:  # a pooled connection that has read the schema
        assert not schema_inspector(conn).has_table("elsewhere")
    with transaction(sqlite_engine) as conn:  # the shared write connection, not that one
        conn.exec_driver_sql("CREATE TABLE elsewhere (id INTEGER PRIMARY KEY, name TEXT)")
        conn.exec_driver_sql("CREATE INDEX ix_elsewhere_name ON elsewhere (name)")
    with read_transaction(sqlite_engine) as conn:
        inspector = schema_inspector(conn)
        assert [ix["name"] for ix in inspector.get_indexes("elsewhere")] == ["ix_elsewhere_name"]
        assert [c["name"] for c in inspector.get_columns("elsewhere")] == ["id", "name"]


def test_disposing_an_engine_closes_the_shared_write_connection(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        shared = conn
    sqlite_engine.dispose()
    assert shared.closed  # not left open until the engine is garbage (it may never be)


def test_disposing_inside_a_write_transaction_leaves_it_working(sqlite_engine: Engine) -> None:
    with transaction(sqlite_engine) as conn:
        sqlite_engine.dispose()
        conn.execute(t.roles.insert().values(name="still-here"))
    with read_transaction(sqlite_engine) as conn:
        assert list(conn.execute(sa.select(t.roles.c.name)).scalars()) == ["still-here"]


# Pooled PostgreSQL connections: pinged only after a rest ------------------------------------

def _backend_pid(engine: Engine) -> int:
    with read_transaction(engine) as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar())


def _terminate(postgres_url: str, pid: int) -> None:
    import psycopg

    plain = sa.engine.make_url(postgres_url).set(drivername="postgresql", query={})
    with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def _pings(engine: Engine) -> list[str]:
    pings: list[str] = []
    original = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        pings.append("ping")
        return original(dbapi_connection)

    engine.dialect.do_ping = counted  # type: ignore[method-assign]
    return pings


@pytest.mark.postgres
def test_a_connection_dropped_while_it_rested_is_replaced_before_use(
        postgres_engine: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.storage.db as db

    monkeypatch.setattr(db, "PING_IDLE_AFTER", 0.0)  # every rest is long enough
    first = _backend_pid(postgres_engine)
    _terminate(postgres_url, first)  # a server restart, as this connection sees it
    with transaction(postgres_engine) as conn:
        conn.execute(t.roles.insert().values(name="after-restart"))
    assert _backend_pid(postgres_engine) != first


@pytest.mark.postgres
def test_a_connection_used_a_moment_ago_is_not_pinged(postgres_engine: Engine,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.storage.db as db

    monkeypatch.setattr(db, "PING_IDLE_AFTER", 60.0)
    pings = _pings(postgres_engine)
    for _ in range(5):
        with transaction(postgres_engine) as conn:
            conn.execute(sa.select(sa.func.count()).select_from(t.roles))
    assert pings == []


@pytest.mark.postgres
def test_a_connection_that_rested_is_pinged_once_per_checkout(postgres_engine: Engine,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.storage.db as db

    _backend_pid(postgres_engine)  # one connection in the pool, checked in
    monkeypatch.setattr(db, "PING_IDLE_AFTER", 0.0)
    pings = _pings(postgres_engine)
    for _ in range(3):
        _backend_pid(postgres_engine)
    assert pings == ["ping", "ping", "ping"]
