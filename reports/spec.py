"""The frozen specs the report definition kinds build: datasets, measures, dashboards, widgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from engine.types import Label, Span, label_text

GRAINS = ("day", "week", "month", "quarter", "year")
"""How a date dimension is bucketed (`created.week`), in the bundle's time zone."""

SOURCES = ("records", "tasks", "history")
"""What a dataset counts: a form's records, the tasks of its flows, or its history entries."""


@dataclass(frozen=True)
class DatasetField:
    """A name a dataset offers for dimensions, filters and sorting (the allow-list).

    `column` is where the value lives: a record field or system column (`record`), a task or
    history column (`task`, `history`), or a derived lifecycle value (`derived`, see
    reports/facts.py). `level` (1-based) cuts a tree-valued field to that level of its tree.
    `handled_by` is a filter-only field: records with a task offered to that department. `sla`:
    the state of the record's SLA clock for the target named in `column`.
    """

    name: str
    label: Label
    origin: str  # record | task | history | derived | handled_by | sla
    column: str
    kind: str = "text"  # text | number | date | choice
    level: int | None = None
    choices: Any = None  # OptionList of a choice field (labels, tree levels)
    span: Span | None = None

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


@dataclass(frozen=True)
class MeasureSpec:
    """An aggregate: `agg` over `value` (an expression or None for count), rows kept by `where`.

    `rate` measures are the share of rows where `value` (a condition) holds among those where
    `of` holds; `percentile` carries `p` (0-1). `format` guides display: number, percent, hours.
    """

    name: str
    label: Label
    agg: str  # count | count_distinct | sum | avg | min | max | median | percentile | rate
    value: Any = None  # parsed expression AST (ast.expr) or None
    where: Any = None
    of: Any = None
    p: float | None = None
    format: str = "number"
    decimals: int = 1
    span: Span | None = None

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)

    @property
    def additive(self) -> bool:
        """Can be summed from parts kept in a maintained aggregate (reports/rollups.py)."""
        return self.agg in ("count", "sum", "avg", "rate")


@dataclass(frozen=True)
class RollupSpec:
    """A maintained aggregate of a dataset: additive measure parts by `dimensions` and date grain."""

    name: str
    date: str | None  # a date field of the dataset, bucketed by `grain`
    dimensions: tuple[str, ...]
    span: Span | None = None
    grain: str = "day"  # day | month: a month cell holds a whole local calendar month


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: Label
    form: str
    source: str  # records | tasks | history
    fields: Mapping[str, DatasetField]
    measures: Mapping[str, MeasureSpec]
    where: Any = None  # parsed expression AST
    repeat_key: str | None = None
    repeat_days: int = 30
    rollups: tuple[RollupSpec, ...] = ()
    span: Span | None = None
    broken: frozenset[str] = frozenset()
    """Fields and measures written in the file whose definition has an error (already
    reported): a reference to one of them is not "unknown", so it is not reported again."""

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


@dataclass(frozen=True)
class Dimension:
    """A dimension of a widget: a dataset field, with a grain for dates (`created.month`)."""

    field: str
    grain: str | None = None

    @property
    def key(self) -> str:
        return f"{self.field}.{self.grain}" if self.grain else self.field


@dataclass(frozen=True)
class WidgetSpec:
    name: str
    label: Label
    chart: str
    dataset: str
    dimensions: tuple[Dimension, ...]
    measures: tuple[str, ...]
    sort: tuple[tuple[str, bool], ...] = ()  # (name, descending)
    top: int | None = None
    others: bool = False
    compare: str | None = None  # previous_period
    width: int = 6
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    where: Any = None
    span: Span | None = None

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


@dataclass(frozen=True)
class FilterSpec:
    """A dashboard-level filter: a date range (`period`) or values of a dataset field."""

    name: str
    label: Label
    field: str
    type: str  # period | choice | text
    match: str = "equals"  # equals | contains (text)
    default: Any = None
    span: Span | None = None

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)


@dataclass(frozen=True)
class ScheduleSpec:
    """A dashboard sent on a timetable through a channel of the outbox."""

    name: str
    every: str  # daily | weekly | monthly
    at: str  # HH:MM in the bundle time zone
    weekday: int  # 0 = Monday, for weekly
    channel: str
    to: tuple[str, ...]
    widgets: tuple[str, ...]
    format: str  # png | svg | table
    locale: str
    span: Span | None = None
    period: str | None = None
    """The named period it covers (`last_week`); None: the date filter's default."""


@dataclass(frozen=True)
class DashboardSpec:
    name: str
    label: Label
    description: Label | None
    filters: Mapping[str, FilterSpec]
    widgets: Mapping[str, WidgetSpec]
    roles: tuple[str, ...] = ()
    schedules: Mapping[str, ScheduleSpec] = field(default_factory=lambda: MappingProxyType({}))
    span: Span | None = None

    def text(self, locale: str) -> str:
        return label_text(self.label, locale, self.name)
