"""Database engines and transactions: SQLite by default, PostgreSQL via DOCKET_DATABASE_URL.

SQLite allows one writer at a time. A deferred transaction that reads and then writes cannot
wait for the write lock: SQLite answers SQLITE_BUSY ("database is locked") at once, whatever
`busy_timeout` says, because the other writer may have changed what it read. So every
transaction opened on a Docket SQLite engine starts with `BEGIN IMMEDIATE` (takes the write lock
up front, waiting up to busy_timeout); read-only work can opt out with `read_transaction`.
"""

from __future__ import annotations

import os
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from engine.errors import ConflictError

__all__ = ["BUSY_TIMEOUT_MS", "DEFAULT_URL", "create_engine", "database_url",
           "read_transaction", "serialize", "transaction", "update_versioned"]

DEFAULT_URL = "sqlite:///var/docket.db"
BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "docket_sqlite_begin"  # execution option: "IMMEDIATE" (default) or "DEFERRED"


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


def create_engine(url: str, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine configured for Docket (pragmas and BEGIN IMMEDIATE on SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return sa.create_engine(parsed, **kwargs)
    if not _is_sqlite_file(parsed):
        # In-memory: every connection must be the same one, or each would see an empty database.
        kwargs.setdefault("poolclass", StaticPool)
        kwargs.setdefault("connect_args", {"check_same_thread": False})
    engine = sa.create_engine(parsed, **kwargs)
    event.listen(engine, "connect", _on_sqlite_connect)
    event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from pysqlite (it would BEGIN lazily, deferred, and not
    # before SELECTs); SQLAlchemy's "begin" event emits our own BEGIN instead (SQLAlchemy SQLite
    # dialect docs, "Enabling Non-Legacy SQLite Transactional Modes").
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # foreign_keys and busy_timeout are per connection; journal_mode=WAL persists in the file
        # but is cheap to assert. synchronous=NORMAL is crash-safe in WAL mode.
        # busy_timeout first: switching a fresh file to WAL needs a lock another process may hold.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
    # Straight to the driver: this runs once per transaction, and SQLAlchemy's execution
    # machinery costs more than SQLite's BEGIN itself.
    conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
        "BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """THE way a command opens a write transaction: commit on success, roll back on error.

    On SQLite the transaction holds the write lock from its first statement (BEGIN IMMEDIATE),
    so read-then-write commands queue on busy_timeout instead of failing.
    """
    with engine.begin() as conn:
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction (deferred BEGIN on SQLite): a consistent snapshot that never
    waits for or blocks writers. Writing inside it may fail with "database is locked"."""
    with engine.connect() as conn:
        conn.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        with conn.begin():
            yield conn


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
