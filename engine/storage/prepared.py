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

from typing import Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

Processor = Callable[[Any], Any] | None


class _Compiled:
    """The statement text and parameter plan for one dialect."""

    def __init__(self, table: sa.Table, dialect: Dialect, key: str):
        columns = [c for c in table.columns if c.key != key]
        stmt = sa.insert(table)
        self.returning = dialect.name != "sqlite" and dialect.insert_returning
        if self.returning:
            stmt = stmt.returning(table.c[key])
        compiled = stmt.compile(dialect=dialect, column_keys=[c.key for c in columns])
        self.sql = compiled.string
        self.positional = compiled.positional
        by_key = {c.key: c for c in columns}
        names = list(compiled.positiontup or []) if compiled.positional else list(compiled.binds)
        self.plan: list[tuple[str, str, Processor]] = []
        for name in names:
            column = by_key[name]
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            self.plan.append((name, column.key, processor))
        self.defaults = frozenset(c.key for c in columns if c.server_default is not None or c.default is not None)


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

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Insert `values` inside the caller's transaction; the new row's key."""
        compiled = self._compiled(conn.dialect)
        if not compiled.defaults.issubset(values.keys()):
            return conn.execute(self._core, dict(values)).inserted_primary_key[0]
        if compiled.positional:
            params: Any = [values.get(key) if proc is None else proc(values.get(key))
                           for _name, key, proc in compiled.plan]
        else:
            params = {name: values.get(key) if proc is None else proc(values.get(key))
                      for name, key, proc in compiled.plan}
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(compiled.sql, params)
            if compiled.returning:
                return cursor.fetchone()[0]
            return cursor.lastrowid
        finally:
            cursor.close()
