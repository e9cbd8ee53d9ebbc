"""Rows written when the command commits: history rows batched into one statement per table.

A command appends history rows as it goes (a postal complaint's command writes six or seven:
node entries, the task completion, each rule that fired, each message queued), and nothing
reads them back before it ends. Written one by one, each costs a driver call on SQLite and a
round trip to the server on PostgreSQL. In a command's transaction (engine.storage.db.transaction)
a deferred row is kept on the connection instead, and written with the other kept rows of its
table in one `executemany` (one multi-row INSERT on PostgreSQL):

- when the command's block ends, just before the commit; a failure there rolls the whole
  command back, as any failed write does;
- before a prepared statement (engine/storage/prepared.py) that names one of `TABLES` runs in
  the same transaction, so a read sees every row the command appended and a row inserted at once
  gets an id after theirs (ids keep the order rows were appended in);
- when code calls `flush` before a Core (non-prepared) statement of the same transaction that
  names the table. None does while a command runs today (the history rows written or read
  during a command go through prepared statements), and the test suite turns a Core statement
  that would miss kept rows into an error (`check_reads`).

No SQLAlchemy event is used: any connection event makes every statement of the engine take
SQLAlchemy's slower, dispatching path (~9 us per transaction measured, bench/RESULTS.md).
A savepoint rolled back (engine.storage.db.savepoint) drops the rows appended inside it; a
command that fails drops them all. Outside a command's transaction a row is written at once.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

__all__ = ["TABLES", "Batch", "append", "begin", "check_reads", "discard", "drop_since", "flush", "mark",
           "names_deferred"]

TABLES = frozenset({"dk_history"})
"""The tables whose rows may be deferred: a prepared statement that names one of them writes
the kept rows first (decided once, when it is compiled)."""

_KEY = "docket_deferred_rows"
"""conn.info key: (the command's transaction, [(table, batch, parameters), ...])."""


def begin(conn: Connection) -> None:
    """Keep the deferred rows of the connection's current transaction until `flush`."""
    conn.info[_KEY] = (conn.get_transaction(), [])


class Batch(Protocol):
    """A prepared INSERT that writes many rows at once (engine.storage.prepared)."""

    def write(self, cursor: Any, rows: list[Any]) -> None: ...


def append(conn: Connection, table: str, batch: Batch, parameters: Any) -> None:
    """Keep one row of `table` (one of `TABLES`; driver-ready `parameters` that `batch` writes)
    until the command commits or something reads the table; outside a command's transaction,
    write it now."""
    if table not in TABLES:
        raise ValueError(f"rows of {table} are not deferred: add it to engine.storage.deferred.TABLES")
    kept = conn.info.get(_KEY)
    if kept is None or kept[0] is not conn.get_transaction() or kept[0] is None:
        _run(conn, [(batch, [parameters])])
        return
    kept[1].append((table, batch, parameters))


def flush(conn: Connection) -> None:
    """Write every kept row now, in the order they were kept, one batch per statement."""
    kept = conn.info.get(_KEY)
    if kept is None or not kept[1]:
        return
    rows = kept[1]
    if kept[0] is not conn.get_transaction():
        del conn.info[_KEY]  # rows of a transaction that ended: never written
        return
    conn.info[_KEY] = (kept[0], [])
    batches: dict[Batch, list[Any]] = {}
    for _table, batch, parameters in rows:
        batches.setdefault(batch, []).append(parameters)
    _run(conn, list(batches.items()))


def _run(conn: Connection, batches: list[tuple[Batch, list[Any]]]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for batch, rows in batches:
            batch.write(cursor, rows)
    finally:
        cursor.close()


def names_deferred(sql: str) -> bool:
    """Whether statement `sql` names a table whose rows may be deferred (`TABLES`)."""
    return any(table in sql for table in TABLES)


def discard(conn: Connection) -> None:
    """Forget every kept row and the transaction they belonged to: the command ended (after
    `flush`, or failed and its transaction is rolled back)."""
    conn.info.pop(_KEY, None)


def mark(conn: Connection) -> tuple[list[Any] | None, int]:
    """Where a savepoint begins: the kept rows as they are now (for `drop_since`)."""
    kept = conn.info.get(_KEY)
    return (None, 0) if kept is None else (kept[1], len(kept[1]))


def drop_since(conn: Connection, position: tuple[list[Any] | None, int]) -> None:
    """The savepoint that began at `mark`'s `position` was rolled back: forget the rows kept
    since, and keep again the rows kept before it that a flush inside it wrote (the rollback
    undid that write too)."""
    rows, length = position
    kept = conn.info.get(_KEY)
    if rows is None or kept is None or kept[0] is not conn.get_transaction():
        return
    if kept[1] is rows:
        del rows[length:]
    else:  # flushed meanwhile: `flush` left the list it wrote as it was
        conn.info[_KEY] = (kept[0], rows[:length])


class DeferredRowsUnseen(AssertionError):
    """A Core statement named a table with kept rows without calling `flush` first."""


def check_reads(engine: Engine) -> None:
    """For tests: make a Core statement that names a table with kept rows, run in the same
    transaction without `flush` first, an error (it would not see the command's own rows)."""
    def check(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        kept = conn.info.get(_KEY)
        if kept is None or not kept[1] or kept[0] is not conn.get_transaction():
            return
        unseen = sorted({table for table, _batch, _parameters in kept[1] if table in statement})
        if unseen:
            raise DeferredRowsUnseen(f"a statement names {', '.join(unseen)} while rows of the "
                                     f"command wait for the commit; call engine.storage.deferred."
                                     f"flush(conn) first: {statement[:200]}")

    event.listen(engine, "before_cursor_execute", check)
