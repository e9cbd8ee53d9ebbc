"""Datasets and widgets compiled to one SQLAlchemy Core query each, run by the database.

A request names a widget and carries filter values from the page. Nothing from the request
reaches the SQL text: field, dimension and sort names are looked up in the dataset's allow-list
(unknown names raise `ReportRequestError` with the allowed names, never SQL), and values are
bound parameters; `contains` filters escape LIKE wildcards. Every query is restricted by
`forms.access.record_scope` for the requesting principal, so a chart and its drill-down count
the same records the principal may open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Iterable, Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DocketError
from engine.identity import Principal
from engine.runtime import Runtime
from engine.storage.tables import history, report_facts, report_verdicts, sla_clocks, tasks, users
from forms.access import record_scope
from reports.spec import DatasetSpec, Dimension, MeasureSpec, WidgetSpec
from reports.sql import NotTranslatable, Translator, bucket, escape_like, hours_between, local_day_bounds

OTHERS = "__others__"
"""The dimension value of the row that sums everything outside the top N."""

MAX_ROWS = 5000
"""A widget never returns more groups than this (a chart of more is unreadable)."""


class ReportRequestError(DocketError):
    """A request a report cannot answer (unknown name, bad value). The message names what is
    wrong in the analyst's words and never contains SQL."""


@dataclass(frozen=True)
class Filters:
    """Filter values from a page, already checked: `period` = (first day, last day) local dates,
    `values` = dataset field -> list of values, `contains` = dataset field -> text."""

    period: tuple[date | None, date | None] | None = None
    period_field: str | None = None
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    contains: Mapping[str, str] = field(default_factory=dict)

    def previous(self) -> "Filters | None":
        """The same filters over the period of equal length just before this one."""
        if not self.period or self.period[0] is None or self.period[1] is None:
            return None
        first, last = self.period
        days = (last - first).days + 1
        return Filters((first - timedelta(days=days), first - timedelta(days=1)), self.period_field,
                       self.values, self.contains)


@dataclass
class Result:
    """A widget's data: dimension keys, measure names and one dict per group."""

    dimensions: list[str]
    measures: list[str]
    rows: list[dict[str, Any]]
    previous: dict[str, Any] | None = None
    truncated: bool = False
    source: str | None = None
    """The rollup that answered (None: the records were read)."""


class Percentile:
    """SQLite aggregate `docket_percentile(x, p)`: the continuous percentile (PostgreSQL's
    percentile_cont) of the group's non-NULL values. SQLite has no built-in one; this runs inside
    the database's aggregation, one group at a time."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.p = 0.5

    def step(self, value: Any, p: float) -> None:
        if value is not None:
            self.values.append(float(value))
            self.p = float(p)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        data = sorted(self.values)
        if len(data) == 1:
            return data[0]
        position = self.p * (len(data) - 1)
        low = math.floor(position)
        high = min(low + 1, len(data) - 1)
        return data[low] + (data[high] - data[low]) * (position - low)


def _sqlite_functions(conn: Connection) -> None:
    raw = conn.connection.driver_connection
    if raw is not None and not getattr(raw, "_docket_reports", False):
        raw.create_aggregate("docket_percentile", 2, Percentile)
        try:
            raw._docket_reports = True  # type: ignore[union-attr]
        except AttributeError:  # the driver's connection takes no attributes: register each time
            pass


class DatasetQuery:
    """The FROM clause and the columns of one dataset, for one principal."""

    def __init__(self, runtime: Runtime, dataset: DatasetSpec, principal: Principal):
        self.rt = runtime
        self.ds = dataset
        self.principal = principal
        self.dialect = runtime.db.dialect.name
        self.zone = runtime.bundle.meta.timezone
        self.record = runtime.services["forms"].tables[dataset.form]
        self.facts = report_facts.alias("facts")
        self.task = tasks.alias("task") if dataset.source == "tasks" else None
        self.entry = history.alias("entry") if dataset.source == "history" else None
        self.now = runtime.clock.now()
        self.uses_facts = False
        self.verdicts: dict[str, Any] = {}
        """SLA target -> the alias of dk_report_verdicts joined for it (the `sla:` fields read)."""

    # -- from and where ----------------------------------------------------------------------------
    def from_clause(self) -> Any:
        rec = self.record
        if self.task is not None:
            base: Any = self.task.join(rec, sa.and_(self.task.c.form == self.ds.form, self.task.c.record_id == rec.c.id))
        elif self.entry is not None:
            base = self.entry.join(rec, sa.and_(self.entry.c.form == self.ds.form, self.entry.c.record_id == rec.c.id))
        else:
            base = rec
        if self.uses_facts:
            base = base.outerjoin(self.facts, sa.and_(self.facts.c.form == self.ds.form,
                                                      self.facts.c.record_id == rec.c.id))
        for target, verdicts in self.verdicts.items():
            base = base.outerjoin(verdicts, sa.and_(verdicts.c.form == self.ds.form, verdicts.c.record_id == rec.c.id,
                                                    verdicts.c.target == target))
        return base

    def base_conditions(self, filters: Filters, extra: Any = None) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        scope = record_scope(self.rt, self.ds.form, self.principal, self.record)
        if scope is not None:
            conditions.append(scope)
        if self.task is not None:
            conditions.append(self.task.c.form == self.ds.form)
        if self.entry is not None:
            conditions.append(self.entry.c.form == self.ds.form)
        if self.ds.where is not None:
            conditions.append(self.condition(self.ds.where))
        if extra is not None:
            conditions.append(self.condition(extra))
        conditions.extend(self.filter_conditions(filters))
        return conditions

    def filter_conditions(self, filters: Filters) -> list[ColumnElement[bool]]:
        out: list[ColumnElement[bool]] = []
        if filters.period and filters.period_field:
            column = self.field_column(filters.period_field, raw=True)
            start, end = local_day_bounds(filters.period[0], filters.period[1], self.zone)
            if start is not None:
                out.append(column >= start)
            if end is not None:
                out.append(column < end)
        for name, values in filters.values.items():
            if values:
                out.append(self.values_condition(name, values))
        for name, text in filters.contains.items():
            if text:
                column = self.field_column(name, raw=True)
                out.append(sa.cast(column, sa.String).like(f"%{escape_like(text)}%", escape="\\"))
        return out

    def values_condition(self, name: str, values: Sequence[Any]) -> ColumnElement[bool]:
        spec = self.field(name)
        if spec.origin == "handled_by":
            task = tasks.alias("handled")
            return sa.exists().where(task.c.form == self.ds.form, task.c.record_id == self.record.c.id,
                                     task.c.candidate_department.in_(list(values)))
        if spec.level is not None and spec.choices is not None:
            leaves = [o.value for _, o, path in spec.choices.walk()
                      if len(path) >= spec.level and path[spec.level - 1] in values or o.value in values]
            return self.field_column(name, raw=True).in_(leaves)
        return self.field_column(name, raw=True).in_(list(values))

    # -- names -------------------------------------------------------------------------------------
    def field(self, name: str) -> Any:
        spec = self.ds.fields.get(name)
        if spec is None:
            allowed = ", ".join(sorted(self.ds.fields))
            raise ReportRequestError(f"'{_shown(name)}' is not a field of dataset '{self.ds.name}' (fields: {allowed})")
        return spec

    def field_column(self, name: str, *, raw: bool = False) -> Any:
        """The column of a dataset field; a tree field with `level` gives its ancestor at that
        level unless `raw`."""
        spec = self.field(name)
        if spec.origin == "record":
            column = self.record.c[spec.column]
        elif spec.origin == "derived":
            column = self.derived(spec.column)
        elif spec.origin == "task":
            assert self.task is not None
            column = self.task_department() if spec.column == "department" else self.task.c[spec.column]
        elif spec.origin == "history":
            assert self.entry is not None
            column = self.entry.c[spec.column]
        elif spec.origin == "sla":
            column = self.verdict(spec.column)
        else:
            raise ReportRequestError(f"'{name}' can only filter, not group")
        if spec.level is not None and not raw and spec.choices is not None:
            whens = [(column == o.value, path[spec.level - 1]) for _, o, path in spec.choices.walk()
                     if len(path) >= spec.level]
            return sa.case(*whens, else_=column) if whens else column
        return column

    def verdict(self, target: str) -> Any:
        """The verdict of the record's SLA `target` (met, missed; NULL while undecided or
        without a clock), a maintained fact joined by primary key (reports/facts.py)."""
        verdicts = self.verdicts.get(target)
        if verdicts is None:
            verdicts = self.verdicts[target] = report_verdicts.alias(f"verdict{len(self.verdicts) + 1}")
        return verdicts.c.verdict

    def derived(self, name: str) -> Any:
        self.uses_facts = True
        facts, rec = self.facts, self.record
        if name in ("first_response_at", "closed_at"):
            return facts.c[name]
        if name == "first_response_hours":
            return hours_between(rec.c.created_at, facts.c.first_response_at, self.dialect)
        if name == "resolution_hours":
            return hours_between(rec.c.created_at, facts.c.closed_at, self.dialect)
        if name == "is_repeat":
            return sa.func.coalesce(facts.c.is_repeat, 0)
        if name == "is_open":
            return sa.case((facts.c.closed_at.is_(None), 1), else_=0)
        if name == "age_hours":
            return hours_between(rec.c.created_at, sa.func.coalesce(facts.c.closed_at, sa.literal(self.now, rec.c.created_at.type)),
                                 self.dialect)
        raise ReportRequestError(f"unknown derived value '{_shown(name)}'")

    def resolve(self, name: str) -> Any:
        """A name in a condition or measure: dataset field, form field, system, derived, source."""
        if name in self.ds.fields and self.ds.fields[name].origin != "handled_by":
            return self.field_column(name)
        if name in self.record.c:
            return self.record.c[name]
        if name in _DERIVED_NAMES:
            return self.derived(name)
        if self.task is not None and name.startswith("task_"):
            column = name[5:]
            if column == "hours":
                return hours_between(self.task.c.created_at, self.task.c.completed_at, self.dialect)
            if column == "overdue":
                # Open past its due time at the moment the report runs: its own (a task may
                # carry one), or its record's running SLA clock's, which is the time the inbox
                # shows as overdue for it (without this, a bundle whose deadlines are SLA
                # targets always counted 0 overdue tasks beside an inbox full of red).
                now = sa.literal(self.now, self.task.c.due_at.type)
                late_clock = sa.exists().where(
                    sla_clocks.c.form == self.task.c.form, sla_clocks.c.record_id == self.task.c.record_id,
                    sla_clocks.c.status == "running", sla_clocks.c.due_at < now)
                return sa.case((sa.and_(self.task.c.status.in_(("open", "claimed")),
                                        sa.or_(self.task.c.due_at < now, late_clock)), 1), else_=0)
            if column == "age_hours":
                return hours_between(self.task.c.created_at, sa.func.coalesce(
                    self.task.c.completed_at, sa.literal(self.now, self.task.c.created_at.type)), self.dialect)
            return self.task_department() if column == "department" else self.task.c[column]
        if self.entry is not None and name.startswith("history_"):
            return self.entry.c[name[8:]]
        raise NotTranslatable(f"unknown name '{name}'")

    def task_department(self) -> Any:
        """The department a task belongs to: the one it was offered to, else the department of
        the person who completed or holds it."""
        assert self.task is not None
        person = sa.func.coalesce(self.task.c.completed_by, self.task.c.assignee_user)
        of_person = sa.select(users.c.department).where(users.c.id == person).scalar_subquery()
        return sa.func.coalesce(self.task.c.candidate_department, of_person)

    def condition(self, parsed: Any) -> Any:
        tree, durations = parsed
        return Translator(self.resolve, durations)(tree)

    # -- measures ----------------------------------------------------------------------------------
    def measure(self, spec: MeasureSpec) -> Any:
        where = self.condition(spec.where) if spec.where is not None else None

        def kept(value: Any) -> Any:
            return sa.case((where, value), else_=sa.null()) if where is not None else value

        if spec.agg == "count":
            return sa.func.count(kept(sa.literal(1))) if where is not None else sa.func.count()
        value = self.condition(spec.value) if spec.value is not None else None
        if spec.agg == "count_distinct":
            return sa.func.count(sa.distinct(kept(value)))
        if spec.agg in ("sum", "avg", "min", "max"):
            return getattr(sa.func, spec.agg)(kept(value))
        if spec.agg in ("median", "percentile"):
            p = spec.p if spec.p is not None else 0.5
            if self.dialect == "postgresql":
                return sa.func.percentile_cont(p).within_group(kept(value))
            return sa.func.docket_percentile(kept(value), p)
        if spec.agg == "rate":
            of = self.condition(spec.of) if spec.of is not None else None
            base = sa.and_(*(c for c in (where, of) if c is not None)) if (where is not None or of is not None) else None
            hit = sa.and_(base, value) if base is not None else value
            denominator = sa.func.count(sa.case((base, 1), else_=sa.null())) if base is not None else sa.func.count()
            return sa.func.count(sa.case((hit, 1), else_=sa.null())) * 1.0 / sa.func.nullif(denominator, 0)
        raise ReportRequestError(f"unknown aggregate {spec.agg}")

    def dimension(self, dim: Dimension) -> Any:
        column = self.field_column(dim.field)
        if dim.grain:
            return bucket(column, dim.grain, self.zone, self.dialect)
        return column

    def dimension_condition(self, dim: Dimension, value: Any) -> ColumnElement[bool]:
        """Rows whose `dim` equals `value` (drill-down); a date bucket becomes a range of instants."""
        if value is None:
            return self.dimension(dim).is_(None)
        if dim.grain:
            first, last = bucket_days(dim.grain, str(value))
            start, end = local_day_bounds(first, last, self.zone)
            column = self.field_column(dim.field)
            return sa.and_(column >= start, column < end)
        spec = self.field(dim.field)
        if spec.level is not None:
            return self.values_condition(dim.field, [str(value)])
        return self.field_column(dim.field) == value


_DERIVED_NAMES = ("first_response_at", "closed_at", "first_response_hours", "resolution_hours",
                  "is_repeat", "is_open", "age_hours")


def bucket_days(grain: str, label: str) -> tuple[date, date]:
    """The first and last local day of a bucket label (the inverse of reports.sql.bucket)."""
    try:
        if grain in ("day", "week"):
            first = date.fromisoformat(label)
            return first, first + timedelta(days=0 if grain == "day" else 6)
        if grain == "month":
            year, month = (int(p) for p in label.split("-"))
            nxt = date(year + month // 12, month % 12 + 1, 1)
            return date(year, month, 1), nxt - timedelta(days=1)
        if grain == "quarter":
            year_text, q = label.split("-Q")
            year, quarter = int(year_text), int(q)
            first = date(year, 3 * quarter - 2, 1)
            nxt = date(year + (1 if quarter == 4 else 0), 1 if quarter == 4 else 3 * quarter + 1, 1)
            return first, nxt - timedelta(days=1)
        if grain == "year":
            year = int(label)
            return date(year, 1, 1), date(year, 12, 31)
    except (ValueError, TypeError):
        pass
    raise ReportRequestError(f"'{_shown(label)}' is not a {grain}")


def _shown(text: Any) -> str:
    text = str(text)
    return text if len(text) <= 60 else text[:57] + "..."


# -- running a widget --------------------------------------------------------------------------------
def run_widget(conn: Connection, runtime: Runtime, dataset: DatasetSpec, widget: WidgetSpec,
               filters: Filters, principal: Principal, *, sort: Sequence[tuple[str, bool]] | None = None) -> Result:
    """The widget's groups (or single row) under the filters, for the principal."""
    if conn.dialect.name == "sqlite":
        _sqlite_functions(conn)
    dims = list(widget.dimensions)
    result = _grouped(conn, runtime, dataset, widget, filters, principal, sort, dims)
    if widget.compare == "previous_period":
        previous = filters.previous()
        if previous is not None:
            before = _grouped(conn, runtime, dataset, widget, previous, principal, None, dims)
            result.previous = before.rows[0] if before.rows else None
    return result


def _grouped(conn: Connection, runtime: Runtime, dataset: DatasetSpec, widget: WidgetSpec, filters: Filters,
             principal: Principal, sort: Sequence[tuple[str, bool]] | None, dims: list[Dimension]) -> Result:
    q = DatasetQuery(runtime, dataset, principal)
    measures = [dataset.measures[m] for m in widget.measures]
    keeper = runtime.services.get("rollups")
    rollup = keeper.choose(dataset, widget, filters, principal, measures) if keeper is not None else None
    if rollup is not None:
        dim_exprs, measure_exprs, conditions, source = keeper.query(q, dataset, rollup, widget, filters, measures)
    else:
        dim_exprs = [q.dimension(d) for d in dims]
        measure_exprs = [q.measure(m) for m in measures]
        conditions = q.base_conditions(filters, widget.where)
        source = q.from_clause()
    dim_cols = [e.label(f"d{i}") for i, e in enumerate(dim_exprs)]
    measure_cols = [e.label(f"m{i}") for i, e in enumerate(measure_exprs)]
    query = sa.select(*dim_cols, *measure_cols).select_from(source)
    if conditions:
        query = query.where(*conditions)
    if dim_cols:
        query = query.group_by(*[sa.literal_column(f"d{i}") for i in range(len(dims))])
    order = _order(dims, widget, sort)
    keys = {d.key: f"d{i}" for i, d in enumerate(dims)} | {d.field: f"d{i}" for i, d in enumerate(dims)}
    keys |= {m.name: f"m{i}" for i, m in enumerate(measures)}
    clauses = []
    for name, descending in order:
        label = keys.get(name)
        if label is None:
            raise ReportRequestError(f"cannot sort by '{_shown(name)}': sort by one of {', '.join(sorted(keys))}")
        column = sa.literal_column(label)
        clauses.append(column.desc() if descending else column.asc())
    clauses += [sa.literal_column(f"d{i}").asc() for i in range(len(dims))]
    query = query.order_by(*clauses)
    top = widget.top
    others_row = None
    truncated = False
    if top and len(dims) == 1:
        rows = conn.execute(query.limit(top)).all()
        if widget.others:
            shown = [r[0] for r in rows if r[0] is not None]
            rest = sa.select(*measure_cols).select_from(source).where(*conditions)
            if shown:
                outside = sa.not_(dim_exprs[0].in_(shown))
                rest = rest.where(outside if any(r[0] is None for r in rows) else sa.or_(outside, dim_exprs[0].is_(None)))
            other = conn.execute(rest).first()
            if other is not None and any(v not in (None, 0) for v in other):
                others_row = (OTHERS, *other)
    elif top and len(dims) > 1:
        ranked = (sa.select(dim_exprs[0].label("k")).select_from(source).where(*conditions)
                  .group_by(sa.literal_column("k")).order_by(measure_exprs[0].desc()).limit(top))
        query = query.where(dim_exprs[0].in_(ranked.scalar_subquery()))
        rows = conn.execute(query.limit(MAX_ROWS + 1)).all()
        truncated = len(rows) > MAX_ROWS
        rows = rows[:MAX_ROWS]
    else:
        rows = conn.execute(query.limit(MAX_ROWS + 1)).all()
        truncated = len(rows) > MAX_ROWS
        rows = rows[:MAX_ROWS]
    out_rows = []
    for row in (*rows, *([others_row] if others_row else [])):
        item: dict[str, Any] = {}
        for i, d in enumerate(dims):
            item[d.key] = row[i]
        for i, m in enumerate(measures):
            item[m.name] = _number(row[len(dims) + i])
        out_rows.append(item)
    return Result([d.key for d in dims], [m.name for m in measures], out_rows, truncated=truncated,
                  source=rollup.name if rollup is not None else None)


def _order(dims: list[Dimension], widget: WidgetSpec, sort: Sequence[tuple[str, bool]] | None) -> list[tuple[str, bool]]:
    if sort:
        return list(sort)
    if widget.sort:
        return list(widget.sort)
    if dims and dims[0].grain:
        return []  # a trend runs along time
    if dims and widget.measures:
        return [(widget.measures[0], True)]
    return []


def _number(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return round(number, 10)


# -- drill-down --------------------------------------------------------------------------------------
def drill_condition(q: DatasetQuery, widget: WidgetSpec, point: Mapping[str, Any], shown: Iterable[Any] = ()) -> list[Any]:
    """Conditions selecting the rows behind one point of a widget (`point`: dimension key ->
    value; the others row: value OTHERS, `shown` = the top values it excludes)."""
    out = []
    for dim in widget.dimensions:
        if dim.key not in point:
            continue
        value = point[dim.key]
        if value == OTHERS:
            listed = [s for s in shown if s is not None]
            out.append(sa.not_(q.dimension(dim).in_(listed)) if listed else sa.true())
        else:
            out.append(q.dimension_condition(dim, value))
    return out


def drill_rows(conn: Connection, runtime: Runtime, dataset: DatasetSpec, widget: WidgetSpec, filters: Filters,
               principal: Principal, point: Mapping[str, Any], *, shown: Iterable[Any] = (),
               limit: int = 200, offset: int = 0) -> tuple[int, list[int]]:
    """(number of rows, record ids on this page) behind a point of a widget: the same dataset,
    filters, widget condition and row-level scope as the chart, plus the point's dimensions."""
    q = DatasetQuery(runtime, dataset, principal)
    measures = [dataset.measures[m] for m in widget.measures]
    conditions = q.base_conditions(filters, widget.where)
    conditions += drill_condition(q, widget, point, shown)
    if measures and measures[0].where is not None:
        conditions.append(q.condition(measures[0].where))  # a "count where" measure drills to its rows
    if measures and measures[0].agg == "rate" and measures[0].of is not None:
        conditions.append(q.condition(measures[0].of))
    ids = q.record.c.id
    count_query = sa.select(sa.func.count(sa.distinct(ids))).select_from(q.from_clause()).where(*conditions)
    total = int(conn.execute(count_query).scalar() or 0)
    page = (sa.select(ids).select_from(q.from_clause()).where(*conditions).group_by(ids)
            .order_by(ids.desc()).limit(limit).offset(offset))
    return total, [int(r[0]) for r in conn.execute(page)]


__all__ = ["Filters", "OTHERS", "Result", "ReportRequestError", "DatasetQuery", "bucket_days",
           "drill_rows", "run_widget"]
