"""Record tables: one typed table per form (`rec_<form>`), migrated additively from the definition.

The form engine derives a `RecordTableSpec` from each form's fields; `record_table` turns it into
a SQLAlchemy `Table` with Docket's fixed system columns in front. At start-up,
`plan_migration` compares the live database with the spec, and `apply_additive` performs the safe
part of the plan: creating a missing table, adding new columns (always nullable, so existing rows
stay valid) and new indexes. Everything that could lose data or fail on existing rows (a column
that vanished from the form, a changed type, a changed NOT NULL or UNIQUE) is only *listed* in
`MigrationPlan.destructive`: it needs an explicit, reviewed migration. Nothing is ever dropped.

Type comparison is Alembic's own (`compare_type`), which knows each dialect's reflection quirks
(PostgreSQL reports FLOAT as DOUBLE PRECISION, SQLite has no time zone flag, ...).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Union

import sqlalchemy as sa
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeEngine

from engine.storage.db import read_transaction, schema_inspector, serialize, transaction
from engine.storage.types import UTCDateTime

__all__ = ["ARCHIVE_PREFIX", "SYSTEM_COLUMNS", "TABLE_PREFIX", "ColumnSpec", "ExplicitChange", "MigrationPlan",
           "RecordTableSpec", "column_type_problem",
           "apply_additive", "plan_migration", "record_table", "table_name"]

log = logging.getLogger(__name__)

TABLE_PREFIX = "rec_"
SYSTEM_COLUMNS = ("id", "query_no", "status", "created_at", "updated_at", "created_by", "version",
                  "bundle_hash")
"""The columns every record table has, in this order, before the form's own fields."""

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_IDENTIFIER = 63  # PostgreSQL truncates longer identifiers silently; SQLite has no limit
_SPEC_INFO_KEY = "docket_record_spec"

TypeLike = Union[TypeEngine[Any], type[TypeEngine[Any]], Callable[[], TypeEngine[Any]]]


def _check_name(what: str, name: str, limit: int = _MAX_IDENTIFIER) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r} must be lower-case letters, digits and _, starting "
                         "with a letter")
    if len(name) > limit:
        raise ValueError(f"{what} {name!r} is longer than {limit} characters")


def _to_type(value: TypeLike) -> TypeEngine[Any]:
    if isinstance(value, TypeEngine):
        return value
    if isinstance(value, type) and issubclass(value, TypeEngine):
        return value()
    if callable(value):
        made = value()
        if isinstance(made, TypeEngine):
            return made
    raise TypeError(f"column type must be a SQLAlchemy type, a type class or a factory, "
                    f"got {value!r}")


def column_type_problem(value: Any) -> str | None:
    """Why `value` cannot be the type of a column (what a field type's `column_type` returned),
    or None when it can: the form checks report a plugin's mistake at load with this, rather
    than the first start failing with a traceback."""
    try:
        _to_type(value)
    except Exception as exc:  # noqa: BLE001 - a factory may raise anything: that is the problem
        return str(exc) if isinstance(exc, TypeError) else f"{type(exc).__name__}: {exc}"
    return None


@dataclass(frozen=True)
class ColumnSpec:
    """One field's column: `ColumnSpec("amount", Numeric(18, 2), index=True)`.

    `type` may be a type instance, a type class (`sa.Text`) or a factory returning an instance;
    it is normalised to an instance. Two specs are equal when their types render the same
    (`repr`), so a spec rebuilt from the same YAML is equal and hashes the same.
    """

    name: str
    type: TypeLike = field(compare=False)
    nullable: bool = True
    unique: bool = False
    index: bool = False
    type_key: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_name("column", self.name)
        if self.name in SYSTEM_COLUMNS:
            raise ValueError(f"column {self.name!r} is a system column of every record table; "
                             "choose another field name")
        instance = _to_type(self.type)
        object.__setattr__(self, "type", instance)
        object.__setattr__(self, "type_key", repr(instance))


@dataclass(frozen=True)
class RecordTableSpec:
    """A form's record table: its name and its field columns, in form order."""

    form: str
    columns: tuple[ColumnSpec, ...] = ()

    def __post_init__(self) -> None:
        _check_name("form", self.form, _MAX_IDENTIFIER - len(TABLE_PREFIX))
        object.__setattr__(self, "columns", tuple(self.columns))
        seen: set[str] = set()
        for column in self.columns:
            if column.name in seen:
                raise ValueError(f"form {self.form!r} has two columns named {column.name!r}")
            seen.add(column.name)

    @property
    def table_name(self) -> str:
        return table_name(self.form)


def table_name(form: str) -> str:
    """The record table of a form: `rec_<form>`."""
    return f"{TABLE_PREFIX}{form}"


def _index_name(prefix: str, table: str, column: str) -> str:
    name = f"{prefix}_{table}_{column}"
    if len(name) <= _MAX_IDENTIFIER:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:_MAX_IDENTIFIER - 9]}_{digest}"


def _system_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("query_no", sa.String(64), nullable=True),
        sa.Column("status", sa.String(50), nullable=False, server_default="new"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(150), nullable=True),
        # Optimistic lock, see engine.storage.db.update_versioned.
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("bundle_hash", sa.String(64), nullable=True),
    ]


def _build_table(spec: RecordTableSpec, metadata: sa.MetaData) -> sa.Table:
    name = spec.table_name
    indexes = [
        sa.Index(_index_name("uq", name, "query_no"), "query_no", unique=True),
        sa.Index(_index_name("ix", name, "status"), "status"),
        sa.Index(_index_name("ix", name, "created_at"), "created_at"),
    ]
    columns = []
    for col in spec.columns:
        columns.append(sa.Column(col.name, col.type, nullable=col.nullable))
        # Uniqueness is a unique *index*, not a constraint: SQLite cannot add a constraint to an
        # existing table, but CREATE UNIQUE INDEX works on both databases.
        if col.unique:
            indexes.append(sa.Index(_index_name("uq", name, col.name), col.name, unique=True))
        elif col.index:
            indexes.append(sa.Index(_index_name("ix", name, col.name), col.name))
    return sa.Table(
        name, metadata, *_system_columns(), *columns, *indexes,
        info={_SPEC_INFO_KEY: spec},
        sqlite_autoincrement=True,  # never reuse the id of a deleted record (history keeps it)
    )


@lru_cache(maxsize=1024)
def _standalone_table(spec: RecordTableSpec) -> sa.Table:
    return _build_table(spec, sa.MetaData())


def record_table(spec: RecordTableSpec, metadata: sa.MetaData | None = None) -> sa.Table:
    """The `rec_<form>` table for `spec`: system columns, then the spec's columns.

    The same spec gives the same `Table` object: per `metadata` when one is given, else from a
    process-wide cache (each such table has its own MetaData, so two versions of a form can be
    planned side by side). A metadata that already holds the form's table built from a
    *different* spec is an error, not a silent redefinition.
    """
    if metadata is None:
        return _standalone_table(spec)
    existing = metadata.tables.get(spec.table_name)
    if existing is not None:
        if existing.info.get(_SPEC_INFO_KEY) == spec:
            return existing
        raise ValueError(f"metadata already holds {spec.table_name} built from a different "
                         "definition; use a new MetaData for a new bundle version")
    return _build_table(spec, metadata)


ARCHIVE_PREFIX = "_removed_"
"""Columns renamed out of the way by `docket migrate` keep their data under this prefix."""


@dataclass(frozen=True)
class ExplicitChange:
    """One change of a plan that only an explicit `docket migrate` applies.

    `kind`: `retype` (the form declares another column type), `removed` (the column is no
    longer in the form), `add_unique`, `drop_unique`, `not_null` (report only).
    """

    kind: str
    column: str
    text: str


@dataclass(frozen=True)
class MigrationPlan:
    """What it takes to bring one record table in line with its spec.

    `create_table`, `add_columns` and `add_indexes` are applied by `apply_additive`;
    `destructive` lists, in words, the changes that are never applied automatically.
    """

    spec: RecordTableSpec
    create_table: bool = False
    add_columns: list[str] = field(default_factory=list)
    add_indexes: list[str] = field(default_factory=list)
    destructive: list[str] = field(default_factory=list)
    explicit: list[ExplicitChange] = field(default_factory=list)
    """`destructive` as structured changes, for `docket migrate`."""

    @property
    def table_name(self) -> str:
        return self.spec.table_name

    @property
    def is_empty(self) -> bool:
        """The database matches the spec: nothing to apply and nothing to report."""
        return not (self.create_table or self.add_columns or self.add_indexes or self.destructive)

    @property
    def is_additive_only(self) -> bool:
        """Everything in the plan can be applied automatically (maybe nothing at all)."""
        return not self.destructive

    @property
    def has_additive(self) -> bool:
        """`apply_additive` has something to do."""
        return bool(self.create_table or self.add_columns or self.add_indexes)

    def describe(self) -> str:
        """The plan in words, one change per line, for logs and `docket migrate`."""
        name = self.table_name
        if self.is_empty:
            return f"{name}: up to date"
        lines = self.additive_lines() + [f"{name}: NOT APPLIED: {d}" for d in self.destructive]
        return "\n".join(lines)

    def additive_lines(self) -> list[str]:
        """The changes `apply_additive` makes, one line each (what the start-up log shows)."""
        name = self.table_name
        lines = []
        if self.create_table:
            table = record_table(self.spec)
            lines.append(f"{name}: create table ({', '.join(c.name for c in table.columns)})")
        lines += [f"{name}: add column {c} (nullable)" for c in self.add_columns]
        lines += [f"{name}: add index {i}" for i in self.add_indexes]
        return lines


_EXPLICIT = "run an explicit migration (`docket migrate`, which shows its plan first)"


def plan_migration(bind: Engine | Connection, spec: RecordTableSpec) -> MigrationPlan:
    """Compare the live table of `spec` (if any) with the spec; changes nothing."""
    if isinstance(bind, Connection):
        return _plan(bind, spec)
    with read_transaction(bind) as conn:  # reading only: never waits for the write lock
        return _plan(conn, spec)


def _plan(conn: Connection, spec: RecordTableSpec) -> MigrationPlan:
    table = record_table(spec)
    name = table.name
    inspector = schema_inspector(conn)
    if not inspector.has_table(name):
        return MigrationPlan(spec, create_table=True)

    impl = MigrationContext.configure(conn).impl
    dialect = conn.dialect
    live_columns = {c["name"]: c for c in inspector.get_columns(name)}
    add_columns: list[str] = []
    explicit: list[ExplicitChange] = []

    def needs(kind: str, column_name: str, text: str) -> None:
        explicit.append(ExplicitChange(kind, column_name, text))

    for column in table.columns:
        live = live_columns.get(column.name)
        wanted = column.type.compile(dialect=dialect)
        if live is None:
            add_columns.append(column.name)
            if not column.nullable and column.server_default is None:
                needs("not_null", column.name, f"column {column.name} is declared NOT NULL but is added as "
                                               f"nullable (existing rows have no value); to enforce it {_EXPLICIT}")
            continue
        if impl.compare_type(sa.Column(column.name, live["type"]), column):
            needs("retype", column.name,
                f"column {column.name} is {live['type']} in the database but the form now "
                f"declares {wanted}; the column and its data are left unchanged. To convert "
                f"the stored values {_EXPLICIT}")
        if not column.primary_key and bool(live["nullable"]) != column.nullable:
            if column.nullable:
                needs("not_null", column.name, f"column {column.name} is NOT NULL in the database but the "
                                               f"form allows it to be empty; to relax it {_EXPLICIT}")
            else:
                needs("not_null", column.name, f"column {column.name} allows empty values in the database "
                                               f"but is declared NOT NULL; to enforce it {_EXPLICIT}")
    for column_name in live_columns:
        if column_name not in table.columns and not column_name.startswith(ARCHIVE_PREFIX):
            needs("removed", column_name,
                f"column {column_name} is no longer in the form; it is kept with its data "
                f"(new records leave it empty). To drop or rename it {_EXPLICIT}")

    indexed, unique = _live_single_column_indexes(inspector, name)
    add_indexes: list[str] = []
    adding = set(add_columns)
    for index in table.indexes:
        (column,) = index.columns
        if index.unique:
            if column.name in unique:
                continue
            if column.name in adding:  # a new column is empty: a unique index cannot fail
                add_indexes.append(str(index.name))
            else:
                needs("add_unique", column.name,
                    f"column {column.name} is declared unique but the database does not enforce "
                    f"it; existing rows may hold duplicates. To add the unique index {_EXPLICIT}")
        elif column.name not in indexed:
            add_indexes.append(str(index.name))
    declared_unique = {next(iter(i.columns)).name for i in table.indexes if i.unique}
    declared_unique |= {c.name for c in table.primary_key.columns}
    for column_name in sorted(unique - declared_unique):
        if column_name in table.columns:
            needs("drop_unique", column_name,
                f"column {column_name} is no longer declared unique but the database still "
                f"enforces it; to drop the unique index {_EXPLICIT}")
    return MigrationPlan(spec, add_columns=add_columns, add_indexes=add_indexes,
                         destructive=[c.text for c in explicit], explicit=explicit)


def _live_single_column_indexes(inspector: sa.Inspector, name: str) -> tuple[set[str], set[str]]:
    """Columns with an index of their own, and those among them that are unique."""
    indexed: set[str] = set()
    unique: set[str] = set()
    for index in inspector.get_indexes(name):
        columns = index.get("column_names") or []
        if len(columns) == 1 and columns[0] is not None:
            indexed.add(columns[0])
            if index.get("unique"):
                unique.add(columns[0])
    for constraint in inspector.get_unique_constraints(name):
        columns = constraint.get("column_names") or []
        if len(columns) == 1:
            indexed.add(columns[0])
            unique.add(columns[0])
    pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
    if len(pk) == 1:
        indexed.add(pk[0])
        unique.add(pk[0])
    return indexed, unique


def apply_additive(bind: Engine, plan: MigrationPlan) -> MigrationPlan:
    """Create the table, add columns and indexes: the additive part of `plan`, in one transaction.

    Never drops or alters anything; `plan.destructive` is logged as a warning and left for an
    explicit migration. The plan is re-made under the write lock (SQLite: BEGIN IMMEDIATE;
    PostgreSQL: an advisory lock per table), so several processes starting at once apply it
    exactly once. Returns the plan that was actually applied.
    """
    for change in plan.destructive:
        log.warning("%s: not applied: %s", plan.table_name, change)
    if not plan.has_additive:
        return plan
    table = record_table(plan.spec)
    with transaction(bind) as conn:
        serialize(conn, table.name)
        fresh = _plan(conn, plan.spec)
        if fresh.create_table:
            table.create(conn)
        else:
            operations = Operations(MigrationContext.configure(conn))
            for column_name in fresh.add_columns:
                column = table.c[column_name]
                # New columns are nullable, so rows already there stay valid; a NOT NULL
                # column with a server default (status, version) can keep its constraint.
                default = column.server_default
                keep_not_null = not column.nullable and isinstance(default, sa.DefaultClause)
                operations.add_column(table.name, sa.Column(
                    column.name, column.type, nullable=not keep_not_null,
                    server_default=default.arg if keep_not_null else None))  # type: ignore[union-attr]
            for index in table.indexes:
                if index.name in fresh.add_indexes:
                    index.create(conn)
    # One record per change, and the destructive ones only in the warnings above: a log line
    # that runs on over several lines reaches the journal as lines without time or level.
    for line in fresh.additive_lines():
        log.info("%s", line)
    return fresh
