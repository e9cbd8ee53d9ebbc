"""Prepared inserts: an INSERT compiled once and run on the driver's cursor.

The hot path of intake (a submission: its record row and its history row) spends more time in
SQLAlchemy's per-execution machinery (compiled-cache lookup, parameter processing, result set-up,
event dispatch) than in SQLite itself. A `PreparedInsert` does that work once per table: it
compiles the statement for the connection's dialect, keeps each column's bind processor (so
JSON, UTC timestamps and every other column type convert exactly as through SQLAlchemy), and
runs it on the raw DBAPI cursor of the caller's connection, inside the caller's transaction.
Everything else keeps using SQLAlchemy Core.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from engine.storage import deferred
from engine.storage.tables import history
from engine.storage.types import UTCDateTime

Processor = Callable[[Any], Any] | None
_NOTHING = object()


class _LastTimestamp:
    """A UTCDateTime bind processor that remembers its last conversion.

    One submission stores the same `now` three times (the record's created_at and updated_at,
    its history entry's at), and converting an aware datetime for the driver is the dearest
    bind processing of intake. The conversion is a pure function of an immutable value, so
    the same object gives the same result; the memo holds a reference to its input, so `is`
    cannot be fooled by a recycled id. One memo per dialect is shared by every prepared insert.
    """

    __slots__ = ("process", "last")

    def __init__(self, process: Callable[[Any], Any]):
        self.process = process
        self.last: tuple[Any, Any] = (_NOTHING, None)

    def __call__(self, value: Any) -> Any:
        last = self.last  # one read: another thread may replace the pair, never half of it
        if last[0] is value:
            return last[1]
        out = self.process(value)
        self.last = (value, out)
        return out


_timestamp_memos: dict[str, _LastTimestamp] = {}
_memo_lock = threading.Lock()


def _timestamp_memo(dialect: Dialect, process: Callable[[Any], Any]) -> _LastTimestamp:
    with _memo_lock:
        memo = _timestamp_memos.get(dialect.name)
        if memo is None:
            memo = _timestamp_memos[dialect.name] = _LastTimestamp(process)
        return memo


class _Compiled:
    """The statement text and parameter plan for one dialect."""

    def __init__(self, table: sa.Table, dialect: Dialect, key: str):
        columns = [c for c in table.columns if c.key != key]
        stmt = sa.insert(table)
        self.returning = dialect.name != "sqlite" and dialect.insert_returning
        keys = [c.key for c in columns]
        self.table, self.dialect, self.columns = table, dialect, keys
        self.plain_sql = stmt.compile(dialect=dialect, column_keys=keys).string  # no RETURNING
        self._rows_sql: dict[int, str] = {}
        if self.returning:
            stmt = stmt.returning(table.c[key])
        compiled = stmt.compile(dialect=dialect, column_keys=keys)
        self.sql = compiled.string
        self.names_deferred = deferred.names_deferred(self.sql)
        self.positional = compiled.positional
        by_key = {c.key: c for c in columns}
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        self.plan: list[tuple[str, str, Processor]] = []
        for name in names:
            column = by_key[name]
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None and type(column.type) is UTCDateTime:
                processor = _timestamp_memo(dialect, processor)  # UTCDateTime has no options
            self.plan.append((name, column.key, processor))
        self.keys = tuple(key for _name, key, _proc in self.plan)
        self.processors = tuple((i, proc) for i, (_name, _key, proc) in enumerate(self.plan)
                                if proc is not None)
        self.names = tuple(name for name, _key, _proc in self.plan)
        self.defaults = frozenset(c.key for c in columns if c.server_default is not None or c.default is not None)

    def write(self, cursor: Any, rows: list[Any]) -> None:
        """Insert `rows` (driver-ready parameters of `plain_sql`) in as few driver calls as
        the driver allows: SQLite steps one prepared statement per row (`executemany`), a
        server gets multi-row INSERTs, one round trip per 100 rows (psycopg's `executemany`
        would pipeline: three waits for three rows)."""
        if len(rows) == 1:
            cursor.execute(self.plain_sql, rows[0])
        elif self.positional or self.dialect.name == "sqlite":
            cursor.executemany(self.plain_sql, rows)
        else:
            for start in range(0, len(rows), 100):
                chunk = rows[start:start + 100]
                cursor.execute(self._multi_row_sql(len(chunk)),
                               {f"{name}_{i}": value for i, row in enumerate(chunk) for name, value in row.items()})

    def _multi_row_sql(self, n: int) -> str:
        sql = self._rows_sql.get(n)
        if sql is None:
            if set(self.names) != set(self.columns):
                raise ValueError(f"{self.table.name}: bind names differ from column keys")
            stmt = sa.insert(self.table).values(
                [{key: sa.bindparam(f"{key}_{i}") for key in self.columns} for i in range(n)])
            sql = self._rows_sql[n] = stmt.compile(dialect=self.dialect).string
        return sql


class PreparedInsert:
    """`execute(conn, values)` inserts one row and returns its generated key.

    Columns missing from `values` are stored as NULL, exactly as a Core insert given the same
    keys would, except columns with a default: leaving one of those out falls back to the Core
    statement so the default applies.
    """

    def __init__(self, table: sa.Table, *, key: str = "id"):
        self.table = table
        self.key = key
        self._core = sa.insert(table)
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled(self.table, dialect, self.key)
        return compiled

    def _params(self, compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        get = values.get
        params: Any = [get(key) for key in compiled.keys]
        for i, proc in compiled.processors:  # only the columns with a bind processor
            params[i] = proc(params[i])
        if not compiled.positional:
            params = dict(zip(compiled.names, params))
        return params

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Insert `values` inside the caller's transaction; the new row's key."""
        compiled = self._compiled(conn.dialect)
        if not compiled.defaults.issubset(values.keys()):
            return conn.execute(self._core, dict(values)).inserted_primary_key[0]
        params = self._params(compiled, values)
        if compiled.names_deferred:
            deferred.flush(conn)  # its id comes after the rows kept before it
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, params)
            if compiled.returning:
                return cursor.fetchone()[0]
            return cursor.lastrowid
        finally:
            cursor.close()

    def later(self, conn: Connection, values: Mapping[str, Any]) -> None:
        """Insert `values` when the caller's transaction commits, or before a statement of the
        transaction names the table, batched with the other rows kept so
        (engine/storage/deferred.py). For rows nothing needs the key of, like history."""
        compiled = self._compiled(conn.dialect)
        if not compiled.defaults.issubset(values.keys()):
            raise ValueError(f"a deferred row of {self.table.name} must give every column with a default")
        deferred.append(conn, self.table.name, compiled, self._params(compiled, values))


class _CompiledQuery:
    """A statement's text, its parameter plan and its result columns for one dialect."""

    def __init__(self, stmt: sa.sql.ClauseElement, dialect: Dialect):
        compiled = stmt.compile(dialect=dialect)
        self.sql = compiled.string
        self.names_deferred = deferred.names_deferred(self.sql)
        self.positional = compiled.positional
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        # (bind name, caller's key or None for a constant, constant value, bind processor)
        self.plan: list[tuple[str, str | None, Any, Processor]] = []
        for name in names:
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"prepared statements cannot expand IN lists ({name}); "
                                 "write the values out as literals or ORs")
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if bind.required or (bind.value is None and bind.callable is None):
                self.plan.append((name, bind.key, None, processor))
            else:
                value = bind.effective_value
                self.plan.append((name, None, value if processor is None else processor(value), None))
        self.columns = [(c[0], c[3]) for c in compiled._result_columns]
        self.dialect = dialect
        self.processors: list[Processor] | None = None

    def params(self, values: Mapping[str, Any]) -> Any:
        if self.positional:
            return [const if key is None else values[key] if proc is None else proc(values[key])
                    for _name, key, const, proc in self.plan]
        return {name: const if key is None else values[key] if proc is None else proc(values[key])
                for name, key, const, proc in self.plan}

    def result_processors(self, description: Any) -> list[Processor]:
        """Each column's result processor, decided once from the driver's first description
        (some drivers' processors depend on the column's type code)."""
        if self.processors is None:
            self.processors = [
                type_.dialect_impl(self.dialect).result_processor(self.dialect, description[i][1])
                for i, (_key, type_) in enumerate(self.columns)]
        return self.processors


class PreparedQuery:
    """Any Core statement (SELECT, UPDATE, DELETE, INSERT) compiled once per dialect and run on
    the raw DBAPI cursor of the caller's connection, inside the caller's transaction.

    Parameters are the statement's `bindparam(key)`s, given by key; literal values written in
    the statement are bound as constants. Bind and result processors are the column types'
    own, so values convert exactly as through SQLAlchemy (JSON, UTC timestamps, booleans).
    Rows come back as plain dicts keyed by column name. The statement must not expand IN
    lists (write `a == x OR a == y`); FOR UPDATE and RETURNING compile as usual.
    """

    def __init__(self, stmt: sa.sql.ClauseElement):
        self.stmt = stmt
        self._by_dialect: dict[str, _CompiledQuery] = {}

    def _compiled(self, dialect: Dialect) -> _CompiledQuery:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _CompiledQuery(self.stmt, dialect)
        return compiled

    def _run(self, conn: Connection, values: Mapping[str, Any], fetch: bool) -> tuple[int, list[dict[str, Any]]]:
        compiled = self._compiled(conn.dialect)
        if compiled.names_deferred:
            deferred.flush(conn)  # a read sees the rows the command kept
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, compiled.params(values))
            if not fetch:
                return cursor.rowcount, []
            raw = cursor.fetchall()
            if not raw:
                return cursor.rowcount, []
            processors = compiled.result_processors(cursor.description)
            keys = [key for key, _type in compiled.columns]
            rows = [{key: value if proc is None else proc(value)
                     for key, proc, value in zip(keys, processors, row)} for row in raw]
            return cursor.rowcount, rows
        finally:
            cursor.close()

    def all(self, conn: Connection, values: Mapping[str, Any] = {}) -> list[dict[str, Any]]:
        """Every row the statement returns, as dicts."""
        return self._run(conn, values, True)[1]

    def first(self, conn: Connection, values: Mapping[str, Any] = {}) -> dict[str, Any] | None:
        """The first row, or None."""
        rows = self._run(conn, values, True)[1]
        return rows[0] if rows else None

    def scalar(self, conn: Connection, values: Mapping[str, Any] = {}) -> Any:
        """The first column of the first row, or None."""
        row = self.first(conn, values)
        return None if row is None else next(iter(row.values()))

    def execute(self, conn: Connection, values: Mapping[str, Any] = {}) -> int:
        """Run a statement that returns no rows; the number of rows it touched."""
        return self._run(conn, values, False)[0]

    def executemany(self, conn: Connection, seq: list[Mapping[str, Any]]) -> None:
        """Run a row-less statement once per parameter set, in one driver call."""
        if not seq:
            return
        compiled = self._compiled(conn.dialect)
        if compiled.names_deferred:
            deferred.flush(conn)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.executemany(compiled.sql, [compiled.params(values) for values in seq])
        finally:
            cursor.close()


INSERT_HISTORY = PreparedInsert(history)
"""THE insert of a record's timeline row (dk_history): most of them `later`, with the command's
other rows (engine/storage/deferred.py)."""
