"""Maintained aggregates (`rollups:` of a dataset): dashboards read cells, not every record.

A rollup keeps, per local day of `created_at` (or per calendar month, `grain: month`) and per
value of up to three form fields, the
additive parts of the dataset's measures: row counts, sums and non-empty counts (for sum and
avg), numerators and denominators (for rates). A widget whose dimensions, filters and measures
all fit a rollup, for a user who sees every record, is answered from it: a trend over two years
reads 730 cells instead of a million rows (ADR 0012 has the measurements). Anything else (a
distinct count, a median, a text filter, a row-level scope, a `where`) reads the records.

Cells are recomputed from their records, never incremented, in the transaction of the event
that changed one of them: `record.created`, `record.updated` (the old cell from the change's
old values, then the new one), and the lifecycle facts (first response, closure, reopening, an
SLA target's verdict: so a rollup may group by an `sla:` field and rate over it).
Inside `deferred` (a flow command: a task completion that changes the record and closes it)
the events only note the cells they touch, and each is recomputed once as the block ends, still
in the transaction. So a committed cell is always exactly what a scan would give. A rollup whose
definition changed is rebuilt at start-up; `rebuild` does it on demand (after a bulk load).

Month cells (`grain: month`, stored under the month's first day) answer widgets whose period is
unbounded or made of whole months (a period ending today counts: the current month holds
nothing later); any other period falls back to day cells or the records. A month cell is the sum
of its days' cells when a day rollup of the same dataset groups by at least the same fields,
otherwise it is recomputed from the month's records through an index on (its fields, created_at)
that the keeper creates. Likewise a day cell is the sum of the cells of a day rollup that groups
by more fields (the day's total from its region cells): only the finest rollups count records.
"""

from __future__ import annotations

import ast
import calendar
import hashlib
import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo
from typing import Any, Iterator, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.identity import Principal
from engine.runtime import Runtime
from engine.storage.db import schema_inspector, serialize
from engine.storage.prepared import PreparedQuery
from engine.storage.tables import report_rollup_state, report_rollups, report_verdicts
from forms.access import record_scope
from reports.facts import verdict_key
from reports.spec import DatasetField, DatasetSpec, MeasureSpec, RollupSpec, WidgetSpec
from reports.sql import local_day_bounds

MAX_PARTS = 24
TIME_DEPENDENT = frozenset({"age_hours"})
_DEFERRED = "docket_rollup_cells"
"""conn.info key of the cells noted inside `deferred`: (the transaction, {cell: what refreshes it})."""


@dataclass(frozen=True)
class Part:
    """One stored column: `kind` count | sum | nonempty | hit | base, of measure `measure`."""

    measure: str
    kind: str
    column: str


def parts_of(dataset: DatasetSpec) -> dict[str, list[Part]]:
    """measure name -> its stored parts (additive measures only, at most MAX_PARTS columns)."""
    out: dict[str, list[Part]] = {}
    used = 0
    for m in dataset.measures.values():
        kinds = {"count": ["count"], "sum": ["sum", "nonempty"], "avg": ["sum", "nonempty"],
                 "rate": ["hit", "base"]}.get(m.agg)
        if kinds is None or used + len(kinds) > MAX_PARTS or _reads_the_clock(m):
            continue
        out[m.name] = [Part(m.name, k, f"v{used + i + 1}") for i, k in enumerate(kinds)]
        used += len(kinds)
    return out


class _Statement:
    """A cell statement run prepared on the driver (it runs several times per event), or through
    SQLAlchemy when it cannot be prepared: a measure condition with an IN list expands its
    parameters per execution."""

    def __init__(self, stmt: Any):
        self.stmt = stmt
        self.prepared: PreparedQuery | None = PreparedQuery(stmt)

    def first(self, conn: Connection, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if self.prepared is not None:
            try:
                return self.prepared.first(conn, params)
            except ValueError:  # raised while compiling, before anything ran
                self.prepared = None
        return conn.execute(self.stmt, dict(params)).mappings().first()


def _reads_the_clock(measure: MeasureSpec) -> bool:
    """A measure over `age_hours` changes as time passes, not as records change: no cell can
    hold it, so it is always computed from the records."""
    return _reads(measure, TIME_DEPENDENT)


def _key(spec: DatasetField) -> str:
    """What a cell's key or a change names a dataset field by: the record column, or for an
    `sla:` field its verdict (reports.facts.verdict_key), a maintained fact like closure."""
    return verdict_key(spec.column) if spec.origin == "sla" else spec.column


_KEPT = ("record", "sla")
"""The origins of the fields a rollup can group by: kept in the transaction that changes them."""


def _reads(measure: MeasureSpec, names: Any) -> bool:
    """Whether the measure's value, `where` or `of` reads one of `names`."""
    return any(isinstance(n, ast.Name) and n.id in names
               for parsed in (measure.value, measure.where, measure.of) if parsed is not None
               for n in ast.walk(parsed[0]))


def rollup_id(dataset: DatasetSpec, rollup: RollupSpec) -> str:
    return f"{dataset.name}.{rollup.name}"


def signature(dataset: DatasetSpec, rollup: RollupSpec) -> str:
    """Changes when anything the rollup's cells depend on changes."""
    parts = {name: [p.kind for p in ps] for name, ps in parts_of(dataset).items()}
    measures = {m.name: [m.agg, repr(m.value), repr(m.where), repr(m.of)] for m in dataset.measures.values()}
    fields = [_key(dataset.fields[d]) for d in rollup.dimensions]
    shape: list[Any] = [dataset.form, repr(dataset.where), fields, parts, measures]
    if rollup.grain != "day":  # day rollups keep the signature they had before grains existed
        shape.append(rollup.grain)
    text = json.dumps(shape, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class RollupKeeper:
    """Builds rollups, keeps their cells current, and answers widgets from them."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.by_form: dict[str, list[tuple[DatasetSpec, RollupSpec]]] = {}
        self._relevant: dict[str, frozenset[str]] = {}
        # Statements that refresh one cell, built once with bind parameters: building the grouped
        # select (a CASE per measure part) per event cost more than running it.
        self._statements: dict[Any, Any] = {}
        # Rollup id -> the day rollup its cells are summed from (None: from the records),
        # decided once: every refresh asks.
        self._sources: dict[str, RollupSpec | None] = {}
        for dataset in runtime.bundle.all("dataset").values():
            for rollup in dataset.rollups:
                self.by_form.setdefault(dataset.form, []).append((dataset, rollup))
        for dataset in runtime.bundle.all("dataset").values():
            for rollup in dataset.rollups:
                self._sources[rollup_id(dataset, rollup)] = self._summed_from(dataset, rollup)

    def _summed_from(self, dataset: DatasetSpec, rollup: RollupSpec) -> RollupSpec | None:
        """The day rollup whose cells add up to this rollup's, or None (its cells are counted
        from the records): one of the same dataset and date that groups by more fields (any
        more, for a month rollup), the one with the fewest fields (the fewest cells to add).

        A day cell with no fields holds every record of its day; counting it from the records
        cost a scan of the whole day at each change (half the postal flow's time once 800
        complaints shared a day), while its finer cells, by category say, are a handful to add.
        Cells are matched by their stored text keys: a rollup's fields are text (checked when
        the bundle loads, reports/kind.py), whose values are the same text in Python and SQL."""
        more = 0 if rollup.grain == "month" else 1  # a day rollup never sums itself, nor an equal
        candidates = [r for r in dataset.rollups if r is not rollup and r.grain == "day" and _finer(r, rollup)
                      and len(r.dimensions) >= len(rollup.dimensions) + more]
        return min(candidates, key=lambda r: len(r.dimensions), default=None)

    # -- building --------------------------------------------------------------------------------
    def _grouped(self, dataset: DatasetSpec, rollup: RollupSpec, conditions: Sequence[Any] = (),
                 *, one_cell: bool = False, q: Any = None) -> Any:
        """The select of a rollup's cells from the records, grouped by cell; or, `one_cell`,
        of the one cell that `conditions` pick, without grouping: its day is the bind parameter
        `cell_day`, and each key is the same on every row read (the conditions fix it). Grouping
        by the day label made SQLite compute it and sort every row of the cell, a third of a
        refresh. `q` is the DatasetQuery the conditions were written over (its joins)."""
        if q is None:
            q = self._dataset_query(dataset)
        if one_cell:
            day = sa.bindparam("cell_day", type_=sa.String)
        else:
            day = _day_expr(q)
            if rollup.grain == "month":
                day = _month_start(day)
        keys = [sa.func.coalesce(sa.cast(self._column(q, dataset, d), sa.String), "") for d in rollup.dimensions]
        if one_cell:  # an aggregate, so the select needs no GROUP BY (PostgreSQL insists)
            keys = [sa.func.min(key) for key in keys]
        keys += [sa.literal("")] * (3 - len(keys))
        parts = []
        for name, ps in parts_of(dataset).items():
            parts += [self._part(q, dataset.measures[name], p).label(p.column) for p in ps]
        where = [q.condition(dataset.where)] if dataset.where is not None else []
        select = sa.select(sa.literal(rollup_id(dataset, rollup)).label("rollup"), day.label("day"),
                           *[k.label(f"k{i + 1}") for i, k in enumerate(keys)],
                           sa.func.count().label("n"), *parts).select_from(q.from_clause())
        select = select.where(*where, *conditions) if (where or conditions) else select
        if one_cell:
            return select, q
        return select.group_by(sa.literal_column("day"), sa.literal_column("k1"), sa.literal_column("k2"),
                               sa.literal_column("k3")), q

    def _dataset_query(self, dataset: DatasetSpec) -> Any:
        from reports.query import DatasetQuery

        return DatasetQuery(self.rt, dataset, Principal.system())

    @staticmethod
    def _column(q: Any, dataset: DatasetSpec, name: str) -> Any:
        """The column a rollup groups by for dataset field `name` (as stored, no tree level)."""
        spec = dataset.fields[name]
        return q.verdict(spec.column) if spec.origin == "sla" else q.record.c[spec.column]

    def _part(self, q: Any, m: MeasureSpec, part: Part) -> Any:
        where = q.condition(m.where) if m.where is not None else None
        if part.kind == "count":
            return sa.func.count(sa.case((where, 1), else_=sa.null())) if where is not None else sa.func.count()
        value = q.condition(m.value) if m.value is not None else None
        if part.kind in ("sum", "nonempty"):
            kept = sa.case((where, value), else_=sa.null()) if where is not None else value
            return sa.func.sum(kept) if part.kind == "sum" else sa.func.count(kept)
        of = q.condition(m.of) if m.of is not None else None
        conds = [c for c in (where, of) if c is not None]
        base = sa.and_(*conds) if conds else sa.true()
        if part.kind == "base":
            return sa.func.count(sa.case((base, 1), else_=sa.null()))
        return sa.func.count(sa.case((sa.and_(base, value), 1), else_=sa.null()))

    def rebuild(self, conn: Connection, dataset: DatasetSpec, rollup: RollupSpec) -> int:
        """Recompute every cell of a rollup from the records (one grouped scan)."""
        rid = rollup_id(dataset, rollup)
        conn.execute(report_rollups.delete().where(report_rollups.c.rollup == rid))
        select, _ = self._grouped(dataset, rollup)
        columns = ["rollup", "day", "k1", "k2", "k3", "n", *[p.column for ps in parts_of(dataset).values() for p in ps]]
        result = conn.execute(report_rollups.insert().from_select(columns, select))
        self._stamp(conn, dataset, rollup)
        return int(result.rowcount or 0)

    def rebuild_from(self, conn: Connection, dataset: DatasetSpec, rollup: RollupSpec, finer: RollupSpec) -> int:
        """Recompute a rollup by adding up the cells of a finer one of the same dataset (whose
        dimensions include all of this one's): exact, since every stored part is additive, and
        it reads thousands of cells instead of every record."""
        rid = rollup_id(dataset, rollup)
        conn.execute(report_rollups.delete().where(report_rollups.c.rollup == rid))
        cells = report_rollups.alias("finer")
        slots = {d: cells.c[f"k{i + 1}"] for i, d in enumerate(finer.dimensions)}
        keys = [slots[d] for d in rollup.dimensions] + [sa.literal("")] * (3 - len(rollup.dimensions))
        part_columns = [p.column for ps in parts_of(dataset).values() for p in ps]
        day = _month_start(cells.c.day) if rollup.grain != finer.grain else cells.c.day
        select = (sa.select(sa.literal(rid), day.label("day"), *keys, sa.func.sum(cells.c.n),
                            *[sa.func.sum(cells.c[c]) for c in part_columns])
                  .where(cells.c.rollup == rollup_id(dataset, finer))
                  # by the expression: SQLite resolves a bare `day` to the finer cell's column
                  .group_by(day, *[slots[d] for d in rollup.dimensions]))
        result = conn.execute(report_rollups.insert().from_select(
            ["rollup", "day", "k1", "k2", "k3", "n", *part_columns], select))
        self._stamp(conn, dataset, rollup)
        return int(result.rowcount or 0)

    def _lock(self, conn: Connection, rids: Sequence[str]) -> None:
        """Hold the locks of the rollups' datasets until commit, always in name order: two
        transactions that touch one cell (or rebuild while another writes) take turns instead of
        colliding on the cell's key, and the fixed order means they never deadlock (PostgreSQL;
        SQLite's write transaction is already exclusive). One lock per dataset, not per rollup:
        a change refreshes a cell of nearly every rollup of its dataset anyway (the whole day's
        cell, and the finer cells it is summed from), and each lock is a round trip (18 per
        postal complaint before, 3 now)."""
        for dataset in sorted({rid.split(".", 1)[0] for rid in rids}):
            serialize(conn, f"rollups:{dataset}")

    def rebuild_all(self, conn: Connection) -> list[str]:
        """Rebuild every rollup: the finest of each family from the records, the others from it."""
        self._lock(conn, [rollup_id(d, r) for pairs in self.by_form.values() for d, r in pairs])
        done = []
        for pairs in self.by_form.values():
            built: list[tuple[DatasetSpec, RollupSpec]] = []
            for dataset, rollup in sorted(pairs, key=lambda p: (-len(p[1].dimensions), p[1].grain != "day")):
                finer = next((r for d, r in built if d.name == dataset.name and _finer(r, rollup)), None)
                if finer is not None:
                    self.rebuild_from(conn, dataset, rollup, finer)
                else:
                    self.rebuild(conn, dataset, rollup)
                built.append((dataset, rollup))
                done.append(rollup_id(dataset, rollup))
        return done

    def source_of(self, dataset: DatasetSpec, rollup: RollupSpec) -> RollupSpec | None:
        """The day rollup whose cells this rollup's are summed from (None: from the records)."""
        return self._sources[rollup_id(dataset, rollup)]

    def _ensure_indexes(self, conn: Connection) -> None:
        """An index on (fields, created_at) for each rollup whose cells are recomputed from the
        records (day rollups, and month rollups not summed from day cells): refreshing a cell
        then reads exactly that cell's records, not every record of one region or customer
        (SQLite, without statistics, picked the index on the field alone). A rollup without
        fields uses the created_at index every record table has; an index that already leads
        with the same columns (one made for count_records, say) is reused."""
        tables = self.rt.services["forms"].tables
        for form, pairs in self.by_form.items():
            table = tables[form]
            leading = {tuple(ix["column_names"]) for ix in schema_inspector(conn).get_indexes(table.name)}
            for dataset, rollup in pairs:
                # An SLA verdict is in another table: the index serves the record's own fields.
                fields = tuple(dataset.fields[d].column for d in rollup.dimensions if dataset.fields[d].origin == "record")
                if not fields or self.source_of(dataset, rollup) is not None:
                    continue
                columns = fields + ("created_at",)
                if any(cols[:len(columns)] == columns for cols in leading):
                    continue
                name = "ix_rollup_" + hashlib.sha256(f"{table.name}:{','.join(columns)}".encode()).hexdigest()[:16]
                sa.Index(name, *[table.c[c] for c in columns]).create(conn, checkfirst=True)
                leading.add(columns)

    def _stamp(self, conn: Connection, dataset: DatasetSpec, rollup: RollupSpec) -> None:
        rid = rollup_id(dataset, rollup)
        conn.execute(report_rollup_state.delete().where(report_rollup_state.c.rollup == rid))
        conn.execute(report_rollup_state.insert().values(rollup=rid, signature=signature(dataset, rollup),
                                                         built_at=self.rt.clock.now()))

    def ensure_built(self, conn: Connection, *, force: bool = False) -> list[str]:
        """Rebuild the rollups whose definition is new or changed (all of them when `force`:
        their records' facts were rebuilt); returns their ids."""
        if not self.by_form:
            return []
        self._ensure_indexes(conn)
        stored = dict(conn.execute(sa.select(report_rollup_state.c.rollup, report_rollup_state.c.signature)).all())
        stale = [rollup_id(d, r) for pairs in self.by_form.values() for d, r in pairs
                 if stored.get(rollup_id(d, r)) != signature(d, r)]
        return self.rebuild_all(conn) if stale or force else []

    # -- keeping cells current -------------------------------------------------------------------
    def relevant(self, dataset: DatasetSpec) -> set[str]:
        """The record columns (and `verdict_key`s) a dataset's rollups depend on (dimensions,
        measure inputs)."""
        columns = set(self._measured(dataset))
        for rollup in dataset.rollups:
            columns |= {_key(dataset.fields[d]) for d in rollup.dimensions}
        return columns

    def _measured(self, dataset: DatasetSpec) -> frozenset[str]:
        """The record columns a dataset's measures and filter read (every cell holds every measure)."""
        known = self._relevant.get(dataset.name)
        if known is not None:
            return known
        names: set[str] = set()
        for m in dataset.measures.values():
            for parsed in (m.value, m.where, m.of):
                if parsed is not None:
                    names |= {n.id for n in ast.walk(parsed[0]) if isinstance(n, ast.Name)}
        if dataset.where is not None:
            names |= {n.id for n in ast.walk(dataset.where[0]) if isinstance(n, ast.Name)}
        columns = frozenset({_key(dataset.fields[n]) for n in names if n in dataset.fields} | names)
        self._relevant[dataset.name] = columns
        return columns

    def _relevant_to(self, dataset: DatasetSpec, rollup: RollupSpec) -> frozenset[str]:
        """The record columns one rollup depends on: its dimensions and the measures' inputs."""
        return self._measured(dataset) | {_key(dataset.fields[d]) for d in rollup.dimensions}

    def record_changed(self, conn: Connection, form: str, record_id: int,
                       old_values: Mapping[str, Any] | None = None) -> None:
        """Recompute the cells holding the record now (and before, from `old_values`).

        An edit of fields no rollup depends on (a comment, a finding) changes no cell."""
        pairs = self.by_form.get(form)
        if not pairs:
            return
        if old_values is not None:
            # Only the rollups grouping by, or measuring, a changed field can change.
            changed = set(old_values)
            pairs = [(d, r) for d, r in pairs if changed & self._relevant_to(d, r)]
            if not pairs:
                return
        row = self._record_select(form).first(conn, {"record_id": record_id})
        if row is None:
            return
        # The cells holding the record now and (from the old values) before this change: the
        # keys are taken now, as a later change of the transaction may move the record again.
        cells: dict[tuple[Any, ...], tuple[DatasetSpec, RollupSpec, datetime, tuple[Any, ...]]] = {}
        for dataset, rollup in pairs:
            dims = [_key(dataset.fields[d]) for d in rollup.dimensions]
            keys = {tuple(row[c] for c in dims)}
            if old_values:
                keys.add(tuple(old_values.get(c, row[c]) for c in dims))
            for key in keys:
                cell = (rollup_id(dataset, rollup), self._cell_day(rollup, row["created_at"]), key)
                cells[cell] = (dataset, rollup, row["created_at"], key)
        deferred = conn.info.get(_DEFERRED)
        if deferred is not None and deferred[0] is conn.get_transaction():
            deferred[1].update(cells)
            return
        self.refresh_cells(conn, list(cells.values()))

    @contextmanager
    def deferred(self, conn: Connection) -> Iterator[None]:
        """Record changes inside the block only note the cells they touch; when the block ends
        without an error each noted cell is recomputed once, in the caller's transaction (an
        error leaves them to the rollback). A command whose events touch a record's cells
        several times (its fields change, then its flow ends) pays for one refresh of each."""
        root = conn.get_transaction()
        outer = conn.info.get(_DEFERRED)
        if root is None or (outer is not None and outer[0] is root):
            yield  # nothing to wait for, or an enclosing block refreshes
            return
        cells: dict[tuple[Any, ...], tuple[DatasetSpec, RollupSpec, datetime, tuple[Any, ...]]] = {}
        conn.info[_DEFERRED] = (root, cells)
        try:
            yield
        finally:
            conn.info.pop(_DEFERRED, None)
        self.refresh_cells(conn, list(cells.values()))

    def refresh_cells(self, conn: Connection,
                      cells: Sequence[tuple[DatasetSpec, RollupSpec, datetime, tuple[Any, ...]]]) -> None:
        """Recompute cells from their records, holding their rollups' locks; day cells first,
        the finest first, since a cell may be the sum of finer day cells just refreshed (a
        rollup noted for a change is noted with every finer one: they depend on more fields)."""
        if not cells:
            return
        self._lock(conn, [rollup_id(d, r) for d, r, _created, _key in cells])
        for dataset, rollup, created, key in sorted(cells, key=lambda c: (c[1].grain != "day", -len(c[1].dimensions))):
            self._refresh(conn, dataset, rollup, created, key)

    def _cell_day(self, rollup: RollupSpec, created: datetime) -> date:
        """The local day (or month's first day) of the cell holding a record created then."""
        day = created.astimezone(ZoneInfo(self.rt.bundle.meta.timezone)).date()
        return day.replace(day=1) if rollup.grain == "month" else day

    def _record_select(self, form: str) -> Any:
        """created_at and every rolled-up field of one record, named by `_key` (an SLA
        verdict joined from its table)."""
        stmt = self._statements.get(("record", form))
        if stmt is None:
            table = self.rt.services["forms"].tables[form]
            fields = {_key(spec): spec for dataset, rollup in self.by_form[form]
                      for spec in (dataset.fields[d] for d in rollup.dimensions)}
            source: Any = table
            columns = []
            for key, spec in sorted(fields.items()):
                if spec.origin == "sla":
                    verdicts = report_verdicts.alias(f"verdict{len(columns) + 1}")
                    source = source.outerjoin(verdicts, sa.and_(
                        verdicts.c.form == form, verdicts.c.record_id == table.c.id, verdicts.c.target == spec.column))
                    columns.append(verdicts.c.verdict.label(key))
                else:
                    columns.append(table.c[key])
            stmt = _Statement(sa.select(table.c.created_at, *columns).select_from(source)
                              .where(table.c.id == sa.bindparam("record_id")))
            self._statements[("record", form)] = stmt
        return stmt

    def _cell_from_records(self, dataset: DatasetSpec, rollup: RollupSpec, nulls: tuple[bool, ...]) -> Any:
        """The select of one cell over its records: bind parameters `start`, `end` (UTC),
        `cell_day` (its label) and `key<i>` for each field whose value is not empty (`nulls`
        marks the empty ones). It always returns one row: `n` is 0 for an empty cell."""
        cache_key = ("cell", rollup_id(dataset, rollup), nulls)
        stmt = self._statements.get(cache_key)
        if stmt is None:
            q = self._dataset_query(dataset)
            conditions = [q.record.c.created_at >= sa.bindparam("start"), q.record.c.created_at < sa.bindparam("end")]
            for i, (d, empty) in enumerate(zip(rollup.dimensions, nulls)):
                column = self._column(q, dataset, d)
                conditions.append(column.is_(None) if empty else column == sa.bindparam(f"key{i}"))
            cell, _ = self._grouped(dataset, rollup, conditions, one_cell=True, q=q)
            stmt = self._statements[cache_key] = _Statement(cell)
        return stmt

    def _cell_delete(self) -> Any:
        stmt = self._statements.get("delete")
        if stmt is None:
            c = report_rollups.c
            stmt = PreparedQuery(report_rollups.delete().where(
                c.rollup == sa.bindparam("rid"), c.day == sa.bindparam("cell_day"), c.k1 == sa.bindparam("t1"),
                c.k2 == sa.bindparam("t2"), c.k3 == sa.bindparam("t3")))
            self._statements["delete"] = stmt
        return stmt

    def _cell_insert(self, columns: tuple[str, ...]) -> PreparedQuery:
        stmt = self._statements.get(("insert", columns))
        if stmt is None:
            stmt = PreparedQuery(report_rollups.insert().values({c: sa.bindparam(c) for c in columns}))
            self._statements[("insert", columns)] = stmt
        return stmt

    def _cell_upsert(self, dialect: str, columns: tuple[str, ...]) -> PreparedQuery | None:
        """Write one cell whether or not it exists (INSERT ... ON CONFLICT DO UPDATE): one
        statement instead of a delete and an insert per refresh. None on a database without it."""
        stmt = self._statements.get(("upsert", dialect, columns))
        if stmt is None:
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert
            elif dialect == "postgresql":
                from sqlalchemy.dialects.postgresql import insert
            else:
                return None
            keys = ("rollup", "day", "k1", "k2", "k3")
            upsert = insert(report_rollups).values({c: sa.bindparam(c) for c in columns})
            upsert = upsert.on_conflict_do_update(
                index_elements=list(keys), set_={c: upsert.excluded[c] for c in columns if c not in keys})
            stmt = self._statements[("upsert", dialect, columns)] = PreparedQuery(upsert)
        return stmt

    def _refresh(self, conn: Connection, dataset: DatasetSpec, rollup: RollupSpec, created: datetime,
                 key: tuple[Any, ...]) -> None:
        zone = self.rt.bundle.meta.timezone
        day = last = created.astimezone(ZoneInfo(zone)).date()
        if rollup.grain == "month":
            day = day.replace(day=1)
            last = day.replace(day=calendar.monthrange(day.year, day.month)[1])
        text_key = [("" if v is None else str(v)) for v in key] + [""] * (3 - len(key))
        finer = self.source_of(dataset, rollup)
        if finer is not None:
            row = self._sum_days(conn, dataset, rollup, finer, day, last, text_key)
        else:
            start, end = local_day_bounds(day, last, zone)
            nulls = tuple(value is None or value == "" for value in key)
            params: dict[str, Any] = {"start": start, "end": end, "cell_day": day.isoformat()}
            params |= {f"key{i}": value for i, value in enumerate(key) if not nulls[i]}
            row = self._cell_from_records(dataset, rollup, nulls).first(conn, params)
        if row is not None and row["n"]:
            upsert = self._cell_upsert(conn.dialect.name, tuple(row))
            if upsert is not None:
                upsert.execute(conn, row)
                return
        self._cell_delete().execute(conn, {"rid": rollup_id(dataset, rollup), "cell_day": day.isoformat(),
                                           "t1": text_key[0], "t2": text_key[1], "t3": text_key[2]})
        if row is not None and row["n"]:
            self._cell_insert(tuple(row)).execute(conn, row)

    def _sum_days(self, conn: Connection, dataset: DatasetSpec, rollup: RollupSpec, finer: RollupSpec,
                  first: date, last: date, text_key: list[str]) -> Mapping[str, Any] | None:
        """One cell as the sum of a finer day rollup's cells of its days (a month's, or the
        one day) and key."""
        stmt = self._statements.get(("days", rollup_id(dataset, rollup)))
        if stmt is None:
            cells = report_rollups.alias("finer")
            slots = {d: cells.c[f"k{i + 1}"] for i, d in enumerate(finer.dimensions)}
            part_columns = [p.column for ps in parts_of(dataset).values() for p in ps]
            conditions = [cells.c.rollup == rollup_id(dataset, finer), cells.c.day >= sa.bindparam("first"),
                          cells.c.day <= sa.bindparam("last")]
            conditions += [slots[d] == sa.bindparam(f"t{i + 1}") for i, d in enumerate(rollup.dimensions)]
            stmt = sa.select(sa.literal(rollup_id(dataset, rollup)).label("rollup"),
                             sa.bindparam("first", type_=sa.String).label("day"),
                             *[sa.bindparam(f"t{i + 1}", type_=sa.String).label(f"k{i + 1}") for i in range(3)],
                             sa.func.coalesce(sa.func.sum(cells.c.n), 0).label("n"),
                             *[sa.func.sum(cells.c[c]).label(c) for c in part_columns]).where(*conditions)
            stmt = self._statements[("days", rollup_id(dataset, rollup))] = _Statement(stmt)
        return stmt.first(conn, {"first": first.isoformat(), "last": last.isoformat(), "t1": text_key[0],
                                 "t2": text_key[1], "t3": text_key[2]})

    # -- answering -------------------------------------------------------------------------------
    def choose(self, dataset: DatasetSpec, widget: WidgetSpec, filters: Any, principal: Principal,
               measures: Sequence[MeasureSpec]) -> RollupSpec | None:
        """The smallest rollup that answers the widget exactly, or None."""
        if not dataset.rollups or widget.where is not None or filters.contains:
            return None
        if any(m.name not in parts_of(dataset) for m in measures):
            return None
        table = self.rt.services["forms"].tables[dataset.form]
        if record_scope(self.rt, dataset.form, principal, table) is not None:
            return None
        # The fewest dimensions first, month cells before day cells: the fewest cells to add up.
        for rollup in sorted(dataset.rollups, key=lambda r: (len(r.dimensions), r.grain == "day")):
            if rollup.date is None:
                continue
            if rollup.grain == "month" and not self._whole_months(widget, filters):
                continue
            columns = {_key(dataset.fields[d]) for d in rollup.dimensions}

            def covered(name: str) -> bool:  # another dataset field over the same column fits too
                spec = dataset.fields[name]
                return spec.origin in _KEPT and _key(spec) in columns

            if any(not covered(d.field) and not (d.grain and d.field == rollup.date) for d in widget.dimensions):
                continue
            if filters.period and filters.period_field != rollup.date:
                continue
            if any(not covered(f) for f in filters.values):
                continue
            return rollup
        return None

    def _whole_months(self, widget: WidgetSpec, filters: Any) -> bool:
        """Month cells give the exact answer: no day or week buckets, and a period that starts
        on a month's first day and ends on its last day, or today or later (nothing is stored
        after now, so the current month's cell holds exactly the records up to today)."""
        if any(d.grain in ("day", "week") for d in widget.dimensions):
            return False
        if not filters.period:
            return True
        first, last = filters.period
        if first is not None and first.day != 1:
            return False
        if last is None:
            return True
        today = self.rt.clock.now().astimezone(ZoneInfo(self.rt.bundle.meta.timezone)).date()
        return last >= today or last.day == calendar.monthrange(last.year, last.month)[1]

    def query(self, q: Any, dataset: DatasetSpec, rollup: RollupSpec, widget: WidgetSpec, filters: Any,
              measures: Sequence[MeasureSpec]) -> tuple[list[Any], list[Any], list[Any], Any]:
        """(dimension columns, measure columns, conditions, from) over the rollup's cells."""
        r = report_rollups.alias("cells")
        by_column = {_key(dataset.fields[d]): r.c[f"k{i + 1}"] for i, d in enumerate(rollup.dimensions)}
        slots = {name: by_column[_key(f)] for name, f in dataset.fields.items()
                 if f.origin in _KEPT and _key(f) in by_column}
        conditions: list[Any] = [r.c.rollup == rollup_id(dataset, rollup)]
        if filters.period:
            first, last = filters.period
            if first is not None:
                conditions.append(r.c.day >= first.isoformat())
            if last is not None:
                conditions.append(r.c.day <= last.isoformat())
        for name, values in filters.values.items():
            spec = dataset.fields[name]
            if spec.level is not None and spec.choices is not None:
                leaves = [o.value for _, o, path in spec.choices.walk()
                          if len(path) >= spec.level and path[spec.level - 1] in values or o.value in values]
                conditions.append(slots[name].in_(leaves))
            else:
                conditions.append(slots[name].in_([str(v) for v in values]))
        # Two steps: the cells are first added up by the raw keys the widget needs (a few hundred
        # groups), then tree levels are mapped and the ratios computed on those few rows.
        keys: list[Any] = []
        for i, dim in enumerate(widget.dimensions):
            keys.append((_grain(r.c.day, dim.grain, q.dialect) if dim.grain else slots[dim.field]).label(f"g{i}"))
        part_columns = sorted({p.column for m in measures for p in parts_of(dataset)[m.name]}, key=lambda c: int(c[1:]))
        inner = sa.select(*keys, *[sa.func.sum(r.c[c]).label(c) for c in part_columns]).where(*conditions)
        if keys:
            inner = inner.group_by(*[sa.literal_column(f"g{i}") for i in range(len(keys))])
        cells = inner.subquery("cells_by_key")
        dims = []
        for i, dim in enumerate(widget.dimensions):
            dims.append(cells.c[f"g{i}"] if dim.grain else _level(dataset, dim.field, cells.c[f"g{i}"]))
        parts = parts_of(dataset)
        cols = []
        for m in measures:
            p = {part.kind: cells.c[part.column] for part in parts[m.name]}
            if m.agg == "count":
                cols.append(sa.cast(sa.func.coalesce(sa.func.sum(p["count"]), 0), sa.Integer))
            elif m.agg == "sum":
                cols.append(sa.case((sa.func.sum(p["nonempty"]) > 0, sa.func.sum(p["sum"])), else_=sa.null()))
            elif m.agg == "avg":
                cols.append(sa.func.sum(p["sum"]) / sa.func.nullif(sa.func.sum(p["nonempty"]), 0))
            else:
                cols.append(sa.func.sum(p["hit"]) * 1.0 / sa.func.nullif(sa.func.sum(p["base"]), 0))
        return dims, cols, [], cells


def _day_expr(q: Any) -> Any:
    from reports.sql import bucket

    return bucket(q.record.c.created_at, "day", q.zone, q.dialect)


def _finer(finer: RollupSpec, rollup: RollupSpec) -> bool:
    """`finer`'s cells add up to `rollup`'s: same date, at least its fields, a grain as fine."""
    return (finer.date == rollup.date and set(rollup.dimensions) <= set(finer.dimensions)
            and (finer.grain == rollup.grain or finer.grain == "day"))


def _month_start(day: Any) -> Any:
    """The first day of a local day label's month ('2024-03-05' -> '2024-03-01')."""
    return sa.func.substr(day, 1, 7) + sa.literal("-01")


def _grain(day: Any, grain: str, dialect: str) -> Any:
    """The bucket label of a local day text (the same labels as reports.sql.bucket)."""
    if grain == "day":
        return day
    if grain == "month":
        return sa.func.substr(day, 1, 7)
    if grain == "year":
        return sa.func.substr(day, 1, 4)
    if grain == "quarter":
        month = sa.cast(sa.func.substr(day, 6, 2), sa.Integer)
        return sa.func.substr(day, 1, 4) + "-Q" + sa.cast((month + 2) / 3, sa.String)
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.date_trunc("week", sa.cast(day, sa.Date)), "YYYY-MM-DD")
    return sa.func.date(day, "weekday 0", "-6 days")


def _level(dataset: DatasetSpec, name: str, slot: Any) -> Any:
    spec = dataset.fields[name]
    value = sa.func.nullif(slot, "")
    if spec.level is None or spec.choices is None:
        return value
    whens = [(slot == o.value, path[spec.level - 1]) for _, o, path in spec.choices.walk() if len(path) >= spec.level]
    return sa.case(*whens, else_=value) if whens else value


__all__ = ["RollupKeeper", "parts_of", "rollup_id", "signature"]
