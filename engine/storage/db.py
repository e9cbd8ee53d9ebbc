"""Database engines and transactions: SQLite by default, PostgreSQL via DOCKET_DATABASE_URL.

SQLite allows one writer at a time. A deferred transaction that reads and then writes cannot
wait for the write lock: SQLite answers SQLITE_BUSY ("database is locked") at once, whatever
`busy_timeout` says, because the other writer may have changed what it read. So every
transaction opened on a Docket SQLite engine starts with `BEGIN IMMEDIATE` (takes the write lock
up front, waiting up to busy_timeout); read-only work can opt out with `read_transaction`.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
import weakref
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Dialect, Engine, Inspector, make_url
from sqlalchemy.pool import QueuePool, StaticPool

from engine.errors import ConflictError
from engine.storage import deferred
from engine.storage.checkpoint import Checkpointer
from engine.storage.memo import reset
from engine.storage.types import json_text

__all__ = ["BUSY_TIMEOUT_MS", "DEFAULT_URL", "checkpointer", "create_engine", "database_url",
           "read_transaction", "savepoint", "single_read", "schema_inspector", "serialize", "transaction",
           "update_versioned"]

DEFAULT_URL = "sqlite:///var/docket.db"
BUSY_TIMEOUT_MS = 10_000
CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a database server to answer a new connection (PostgreSQL)."""
_BEGIN_OPTION = "docket_sqlite_begin"  # execution option: "IMMEDIATE" (default) or "DEFERRED"
_BEGIN_ATTR = "_docket_sqlite_begin"  # where the option rides on a pooled connection's checkout
_GATE_ATTR = "_docket_write_gate"  # a SQLite file engine's dialect: its in-process write gate
_CHECKPOINT_ATTR = "_docket_checkpointer"  # ... and its WAL checkpointer (engine/storage/checkpoint.py)


def database_url(explicit: str | None = None) -> str:
    """The database URL: `explicit`, else env DOCKET_DATABASE_URL, else SQLite in ./var/.

    For a SQLite file the parent directory is created, so a first start just works.
    """
    url = explicit or os.environ.get("DOCKET_DATABASE_URL") or DEFAULT_URL
    parsed = make_url(url)
    if _is_sqlite_file(parsed):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
    return url


def _is_sqlite_file(url: URL) -> bool:
    database = url.database or ""
    return (url.get_backend_name() == "sqlite" and database not in ("", ":memory:")
            and not database.startswith("file:"))


CHECK_DEFERRED_ENV = "DOCKET_CHECK_DEFERRED_READS"
"""Set (the test suite does): a Core statement that would miss a command's deferred history
rows is an error (engine.storage.deferred.check_reads). Off in production: it costs an event."""


def create_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine configured for Docket (pragmas and BEGIN IMMEDIATE on SQLite)."""
    engine = _create_engine(url, **kwargs)
    if os.environ.get(CHECK_DEFERRED_ENV):
        deferred.check_reads(engine)
    return engine


def _create_engine(url: str, **kwargs: Any) -> Engine:
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", json_text)
    if parsed.get_backend_name() != "sqlite":
        if "connect_timeout" not in parsed.query:
            # libpq waits for an unreachable server as long as the kernel retries (about two
            # minutes when a firewall drops the packets): a start that seems to hang, and each
            # request held as long. The URL's own ?connect_timeout= wins.
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S, **kwargs.get("connect_args", {})}
        engine = sa.create_engine(parsed, **kwargs)
        if not kwargs.get("pool_pre_ping"):
            dialect = engine.dialect

            def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
                _ping_if_idle(dialect, dbapi_connection, record)

            event.listen(engine, "checkin", _note_checkin)
            event.listen(engine, "checkout", ping_if_idle)
        return engine
    if not _is_sqlite_file(parsed):
        # In-memory: every connection must be the same one, or each would see an empty database.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    else:
        kwargs.setdefault("poolclass", _FilePool)
    engine = sa.create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)  # a pool event: once per new connection
    _emit_begin_from_dialect(engine.dialect)
    if _is_sqlite_file(parsed):
        gate = _WriteGate(engine)
        setattr(engine.dialect, _GATE_ATTR, gate)
        setattr(engine.dialect, _CHECKPOINT_ATTR, Checkpointer(
            str(parsed.database), busy_timeout_ms=BUSY_TIMEOUT_MS, exclusive=gate.held))
        event.listen(engine, "connect", _no_autocheckpoint)  # a pool event too
    return engine


PING_IDLE_AFTER = 1.0
"""Seconds a pooled server connection may rest before its next checkout pings it."""
_CHECKED_IN = "docket_checked_in"


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    if record is not None:
        record.info[_CHECKED_IN] = time.monotonic()


def _ping_if_idle(dialect: Dialect, dbapi_connection: Any, record: Any) -> None:
    """Ping a pooled server connection before use when it rested more than PING_IDLE_AFTER.

    A connection the server dropped while it rested (a restart, an idle timeout) is found here
    and replaced: DisconnectionError makes the pool connect anew, up to three times. One used
    within the last second is not pinged: SQLAlchemy's `pool_pre_ping` costs a round trip per
    checkout (5 of the 39 of a 3-step flow instance on PostgreSQL), and a server restart in that
    second fails the transactions running then anyway, after which the pool starts over
    (connection pools such as HikariCP skip the check within 500 ms for the same reason). A
    new connection (no check-in yet) needs no ping.
    """
    rested_since = record.info.get(_CHECKED_IN)
    if rested_since is None or time.monotonic() - rested_since < PING_IDLE_AFTER:
        return
    try:
        dialect.do_ping(dbapi_connection)
    except Exception as exc:  # any failure: the pool tries a new connection
        raise sa.exc.DisconnectionError(f"a pooled connection failed its ping: {exc}") from exc


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    # Checkpoints run off the committing thread (engine/storage/checkpoint.py).
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


def checkpointer(engine: Engine) -> Checkpointer | None:
    """The WAL checkpointer of a SQLite file engine (None for PostgreSQL and memory)."""
    return getattr(engine.dialect, _CHECKPOINT_ATTR, None)


def _emit_begin_from_dialect(dialect: Any) -> None:
    """Make this engine's dialect emit `BEGIN IMMEDIATE` (or `BEGIN DEFERRED`) itself.

    SQLAlchemy's documented recipe is a "begin" connection event, but any connection event on
    an engine switches on event dispatch for every connect, begin, commit and statement of
    every connection, which cost more than SQLite's own BEGIN and COMMIT on the intake path.
    The dialect's `do_begin` hook is where a driver's BEGIN belongs anyway; it sees the pooled
    DBAPI connection only, so the begin mode travels on that checkout (see
    `_sqlite_begin_option`), set from the `docket_sqlite_begin` execution option. (A Connection
    that reconnects after an invalidation begins IMMEDIATE again: the safe mode.)
    """
    set_connection_options = dialect.set_connection_execution_options
    set_engine_options = dialect.set_engine_execution_options

    def do_begin(dbapi_connection: Any) -> None:
        mode = getattr(dbapi_connection, _BEGIN_ATTR, "IMMEDIATE")
        dbapi_connection.dbapi_connection.execute(
            "BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")

    def set_connection_execution_options(connection: Connection, opts: Mapping[str, Any]) -> None:
        set_connection_options(connection, opts)
        if _BEGIN_OPTION in opts:
            _sqlite_begin_option(connection, opts[_BEGIN_OPTION])

    def set_engine_execution_options(engine: Engine, opts: Mapping[str, Any]) -> None:
        set_engine_options(engine, opts)
        if _BEGIN_OPTION in opts:
            mode = opts[_BEGIN_OPTION]
            # An engine-level option (engine.execution_options(...)) applies to each
            # connection of that option engine: a listener on it alone, not on the base engine.
            event.listen(engine, "engine_connect", lambda conn: _sqlite_begin_option(conn, mode))

    # Instance attributes: this engine's dialect only (each create_engine builds its own).
    dialect.do_begin = do_begin
    dialect.set_connection_execution_options = set_connection_execution_options
    dialect.set_engine_execution_options = set_engine_execution_options


def _sqlite_begin_option(connection: Connection, mode: str) -> None:
    # The pooled connection proxy lives for one checkout, so the mode ends with it, like the
    # Connection it belongs to.
    setattr(connection.connection, _BEGIN_ATTR, mode)


class _WriteGate:
    """One write transaction at a time per SQLite file within this process, on one connection.

    SQLite allows one writer anyway; without this, threads of one process (the web server's
    thread pool) queue inside SQLite's busy handler, which sleeps in steps of up to 100 ms and
    so leaves the database idle long after the lock was released. Waiting here instead wakes
    the next writer as soon as the previous one commits. Other processes are still held off by
    BEGIN IMMEDIATE and busy_timeout, as before.

    Since writers take turns anyway, they share one parked connection (`parked`): checking a
    connection out of the pool and back in (with its reset) cost more than SQLite's own BEGIN
    and COMMIT on the intake path. Only the gate's owner uses it, so it is never used by two
    threads at once; a transaction that fails hands it back to the pool (`unpark`), so no state
    of a failed transaction outlives it.
    """

    def __init__(self, engine: Engine) -> None:
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._priority: threading.Event | None = None  # set while `held()` waits for its turn
        self._engine = weakref.ref(engine)  # the dialect holds the gate: no cycle through it
        self._parked: Connection | None = None
        self._parked_from: tuple[int, Any] = (0, None)  # (process id, pool) it was checked out of

    def acquire(self, *, first: bool = False) -> bool:
        """Wait for the gate (at most busy_timeout); False when not taken: a transaction this
        thread already holds (SQLite then answers as it always did) or a timeout (SQLite's
        own busy_timeout then applies). `first`: the caller is `held()`, which others let in
        first."""
        me = threading.get_ident()
        if self._owner == me:
            return False
        priority = self._priority
        if priority is not None and not first:  # let a waiting `held()` in first (see there)
            priority.wait(BUSY_TIMEOUT_MS / 1000)
        if not self._lock.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            return False
        self._owner = me
        return True

    def try_acquire(self) -> bool:
        """Take the gate only if it is free now (never waits); False otherwise, also when this
        thread holds it already or a `held()` is waiting for its turn."""
        me = threading.get_ident()
        if self._owner == me or self._priority is not None:
            return False
        if not self._lock.acquire(blocking=False):
            return False
        self._owner = me
        return True

    def release(self) -> None:
        self._owner = None
        self._lock.release()

    @contextmanager
    def held(self) -> Iterator[bool]:
        """Hold the gate for work that must not run beside this process's writers (the WAL
        checkpoint that lets the WAL start over); yields False when it was not taken.

        Writers arriving meanwhile wait until it has had its turn: a lock does not queue its
        waiters, and a thread committing in a tight loop takes it back before a waiting
        thread wakes, so without this the checkpoint could wait out the whole busy timeout.
        """
        done = threading.Event()
        self._priority = done
        try:
            taken = self.acquire(first=True)
        finally:
            self._priority = None
            done.set()
        try:
            yield taken
        finally:
            if taken:
                self.release()

    def parked(self, engine: Engine) -> Connection | None:
        """The shared write connection for the gate's owner, or None when `engine` is not the
        engine it belongs to (an option engine has its own options: it checks out its own)."""
        if engine is not self._engine():
            return None
        conn = self._parked
        origin = (os.getpid(), engine.pool)
        if conn is not None and (conn.closed or conn.invalidated or self._parked_from != origin):
            # Invalidated, or the pool was replaced (engine.dispose()), or this is a forked
            # child holding its parent's connection: never reuse it. A parent's connection is
            # dropped, not closed, since closing would roll back the parent's work.
            if self._parked_from[0] == origin[0]:
                conn.close()
            conn = self._parked = None
        if conn is None:
            conn = self._parked = engine.connect()
            self._parked_from = origin
        return conn

    def release_parked(self, pool: Any) -> None:
        """Close the shared connection if it came from `pool` (being disposed), waiting for a
        transaction using it to end; left alone when this thread is inside one."""
        if self._parked is None or self._parked_from[1] is not pool:
            return
        if self.acquire():
            try:
                if self._parked_from[1] is pool:
                    self.unpark()
            finally:
                self.release()

    def unpark(self) -> None:
        """Hand the shared connection back to the pool (after a failed transaction)."""
        conn, self._parked = self._parked, None
        if conn is not None and self._parked_from[0] == os.getpid():
            conn.close()


class _FilePool(QueuePool):
    """The pool of a SQLite file engine: `engine.dispose()` also closes the writers' shared
    connection (`_WriteGate.parked`) once no transaction uses it, which a pool does not do for a
    connection checked out of it."""

    def dispose(self) -> None:
        gate: _WriteGate | None = getattr(self._dialect, _GATE_ATTR, None)
        if gate is not None:
            gate.release_parked(self)
        super().dispose()


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite (it would BEGIN lazily, deferred, and not
    # before SELECTs); the dialect's do_begin emits our own BEGIN instead (SQLAlchemy SQLite
    # dialect docs, "Enabling Non-Legacy SQLite Transactional Modes", there with an event).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # foreign_keys and busy_timeout are per connection; journal_mode=WAL persists in the file
        # but is cheap to assert. synchronous=NORMAL is crash-safe in WAL mode.
        # busy_timeout first: switching a fresh file to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _first_touch(cursor, "PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # A WAL that grew past this (a long reader held it) is cut back when it starts over.
        cursor.execute(f"PRAGMA journal_size_limit={Checkpointer.JOURNAL_SIZE_LIMIT}")
    finally:
        cursor.close()


def _first_touch(cursor: Any, sql: str) -> None:
    """Run a connection's first statement that reads the file, retrying "database is locked".

    Opening a WAL database can meet locks SQLite does not wait for with its busy handler: the
    shared-memory lock while another process's last connection checkpoints and removes the WAL,
    or WAL recovery by another process (sqlite3_busy_handler: SQLite may return SQLITE_BUSY at
    once where waiting could deadlock). Seen once in CI as 4 processes booted on one new file.
    Retried every 10 ms up to busy_timeout, then raised.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """THE way a command opens a write transaction: commit on success, roll back on error.

    On SQLite the transaction holds the write lock from its first statement (BEGIN IMMEDIATE),
    so read-then-write commands queue on busy_timeout instead of failing; threads of this
    process queue on the file's write gate first (`_WriteGate`).
    """
    gate: _WriteGate | None = getattr(engine.dialect, _GATE_ATTR, None)
    held = gate is not None and gate.acquire()
    try:
        parked = gate.parked(engine) if held else None  # type: ignore[union-attr]
        if parked is not None:
            try:
                with parked.begin():
                    deferred.begin(parked)
                    try:
                        yield parked
                        deferred.flush(parked)  # the history rows the command kept for its end
                    finally:
                        deferred.discard(parked)  # nothing of the transaction outlives it
            except BaseException:
                gate.unpark()  # type: ignore[union-attr]
                raise
        else:
            # What engine.begin() does, without its extra generator layer.
            with engine.connect() as conn, conn.begin():
                deferred.begin(conn)
                try:
                    yield conn
                    deferred.flush(conn)
                finally:
                    deferred.discard(conn)
    finally:
        if held:
            gate.release()  # type: ignore[union-attr]
    # Committed (an error would have left above). After the gate: an inline checkpoint, when
    # one is due, does not hold up this process's next writer.
    wal: Checkpointer | None = getattr(engine.dialect, _CHECKPOINT_ATTR, None)
    if wal is not None:
        wal.committed()


@contextmanager
def single_read(engine: Engine) -> Iterator[Connection]:
    """THE way to run one read statement outside a transaction (one statement sees one
    consistent state by itself).

    On a SQLite file it runs on the writers' shared connection when no writer holds it: that
    connection's page cache already holds what the last commands wrote, where a pooled
    connection re-reads every page another connection changed (a record's open tasks read
    after a write: 39 us there, 79-88 us on a pooled connection, bench/RESULTS.md session 9).
    It never waits for the gate: with a writer busy, inside the caller's own transaction, or
    on PostgreSQL, a pooled connection serves it. Keep it to one prepared statement
    (engine/storage/prepared.py, which runs on the driver's cursor): the gate is held while the
    block runs, and a Core `conn.execute` would begin a transaction, rolled back at the end.
    """
    gate: _WriteGate | None = getattr(engine.dialect, _GATE_ATTR, None)
    if gate is not None and gate.try_acquire():
        try:
            parked = gate.parked(engine)
            if parked is not None:
                try:
                    yield parked
                    if parked.in_transaction():
                        parked.rollback()
                except BaseException:
                    gate.unpark()  # nothing of a failed read outlives it
                    raise
                return
        finally:
            gate.release()
    with engine.connect() as conn:
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (deferred BEGIN on SQLite): a consistent snapshot that never
    waits for or blocks writers. Writing inside it may fail with "database is locked"."""
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn


_SAVEPOINT_NAMES = itertools.count(1)


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """THE way part of a command may fail alone: a SAVEPOINT in the command's transaction, rolled
    back to (and released) when the block raises, released when it ends.

    Rule runs, action steps, imported rows and timer handlers each run in one. SQLAlchemy's
    `begin_nested()` did the same, but it compiles a new SAVEPOINT and RELEASE clause each time:
    with the postal rules' seven savepoints per complaint, that was a quarter of their cost. The
    statements go to the driver's cursor, as the prepared statements do (engine/storage/prepared.py):
    nothing SQLAlchemy tracks changes, since the block ends where it began. A rollback starts
    the transaction's memos over (engine/storage/memo.py).
    """
    if not conn.in_transaction():
        raise RuntimeError("a savepoint needs the command's transaction (engine.storage.db.transaction)")
    name = f"dk_sp_{next(_SAVEPOINT_NAMES)}"
    _driver_run(conn, f"SAVEPOINT {name}")
    kept = deferred.mark(conn)
    try:
        yield
    except BaseException:
        _driver_run(conn, f"ROLLBACK TO SAVEPOINT {name}")
        _driver_run(conn, f"RELEASE SAVEPOINT {name}")
        reset(conn)  # values read or kept inside may be what the rollback undid
        deferred.drop_since(conn, kept)  # and the rows it appended for later are not written
        raise
    _driver_run(conn, f"RELEASE SAVEPOINT {name}")


def _driver_run(conn: Connection, sql: str) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
    finally:
        cursor.close()


def schema_inspector(conn: Connection) -> Inspector:
    """THE way to ask what tables, columns and indexes exist now (SQLAlchemy's inspector).

    SQLite answers PRAGMA table_info / index_list from the connection's cached schema and
    re-reads it only when a statement reads the database file: after DDL on another connection
    (this process's shared write connection, or another process) a pooled connection would
    describe the schema as it was. One read of sqlite_master makes SQLite check its schema
    cookie and reload what changed.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return sa.inspect(conn)


def serialize(conn: Connection, name: str) -> None:
    """Hold a lock named `name` until the transaction ends, so processes doing the same
    start-up work (migrations, syncing the bundle) take turns.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: nothing to do, the write
    transaction already holds the database's only write lock (BEGIN IMMEDIATE).
    """
    if conn.dialect.name == "postgresql":
        key = zlib.crc32(f"docket:{name}".encode())
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def update_versioned(
    conn: Connection, table: sa.Table, row_id: Any, expected_version: int,
    values: Mapping[str, Any], *, id_column: str = "id",
) -> int:
    """Update one row if its `version` is still `expected_version`; return the new version.

    Raises ConflictError when another command changed (or deleted) the row first: optimistic
    locking, so the loser of a race gets a clear conflict instead of a lost update.
    """
    new_version = expected_version + 1
    result = conn.execute(
        table.update()
        .where(table.c[id_column] == row_id, table.c.version == expected_version)
        .values({**values, "version": new_version})
    )
    if result.rowcount != 1:
        raise ConflictError(
            f"{table.name} {row_id} was changed by someone else (expected version "
            f"{expected_version}); reload and try again"
        )
    return new_version
