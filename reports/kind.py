"""`reports/*.yaml`: the dataset and dashboard definition kinds (schema, build, cross-file checks).

A dataset names what is counted (a form's records, its tasks or its history), the fields that
may be grouped, filtered and sorted by (the allow-list every request is checked against) and its
measures. A dashboard lays widgets out on a grid; each widget picks a chart type from
`registry.chart_types`, a dataset, dimensions and measures.
"""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Any, Iterable

import sqlalchemy as sa

from engine.errors import did_you_mean
from engine.expr import Names
from engine.kinds import CRASHED, BuildContext, Dispatch
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import YamlPath
from engine.yamlsource import Document
from forms.statuses import record_statuses, status_list
from reports.facts import DERIVED, derived_kind
from reports.spec import (GRAINS, DashboardSpec, DatasetField, DatasetSpec, Dimension, FilterSpec,
                          MeasureSpec, RollupSpec, ScheduleSpec, WidgetSpec)
from reports.sql import NotTranslatable, Translator, parse_condition

EXPRESSION = {"type": "string", "description": "an expression over the dataset's fields"}
_NUMBER_AGGREGATES = ("sum", "avg", "median", "percentile")
"""Aggregates of numbers only (min and max also order text and dates)."""
AGGREGATES = ("count", "count_distinct", "sum", "avg", "min", "max", "median", "percentile", "rate")
RECORD_SYSTEM = {"id": "number", "query_no": "text", "status": "text", "created_at": "date",
                 "updated_at": "date", "created_by": "text"}
TASK_COLUMNS = {"node": "text", "status": "text", "department": "text", "outcome": "text",
                "created_at": "date", "completed_at": "date", "due_at": "date",
                "escalation_level": "number"}
HISTORY_COLUMNS = {"kind": "text", "node": "text", "actor": "text", "at": "date"}
_DATE_TYPES = {"date", "datetime"}
_NUMBER_TYPES = {"number", "integer", "money", "percent", "rating", "duration"}
_CHOICE_TYPES = {"select", "radio", "cascade", "region", "boolean", "department", "role", "user"}

_MEASURE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "label": LABEL_SCHEMA,
        "count": {"type": "boolean", "description": "count the rows"},
        "count_distinct": {"type": "string", "description": "count the distinct values of a field"},
        "sum": EXPRESSION, "avg": EXPRESSION, "min": EXPRESSION, "max": EXPRESSION,
        "median": EXPRESSION,
        "percentile": EXPRESSION, "p": {"type": "number", "minimum": 0, "maximum": 1},
        "rate": {**EXPRESSION, "description": "a condition: the share of rows where it holds"},
        "of": {**EXPRESSION, "description": "for a rate: only rows where this holds are counted"},
        "where": {**EXPRESSION, "description": "only rows where this holds are aggregated"},
        "format": {"enum": ["number", "percent", "hours", "days"]},
        "decimals": {"type": "integer", "minimum": 0, "maximum": 6},
    },
}

_FIELD_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "label": LABEL_SCHEMA,
        "field": {"type": "string", "description": "a field (or system column) of the form"},
        "task": {"enum": sorted(TASK_COLUMNS), "description": "a column of the task (tasks datasets)"},
        "history": {"enum": sorted(HISTORY_COLUMNS), "description": "a column of the history entry"},
        "derived": {"enum": sorted(DERIVED), "description": "a lifecycle value kept by the report engine"},
        "handled_by": {"const": "department", "description": "filter only: records a department worked on"},
        "sla": {"type": "string", "description": "a target of the form's SLA (e.g. resolution): its verdict, met or "
                                                 "missed (empty while undecided), in the SLA's own working time"},
        "level": {"type": "integer", "minimum": 1, "maximum": 6, "description": "tree level of a category field"},
    },
}


def _listing_hint(ctx: BuildContext, dataset: DatasetSpec, name: str) -> str | None:
    """How to offer a field of the dataset's form that the dataset does not list yet."""
    form = ctx.definitions.get("form", {}).get(dataset.form)
    if form is None or name not in form.fields:
        return None
    where = f" in {dataset.span.file}" if dataset.span is not None else ""
    return f"add {name}: {{field: {name}}} under the fields: of dataset '{dataset.name}'{where}"


class DatasetKind:
    """`dataset: complaints`, `form: complaint`, `fields:`, `measures:`."""

    name = "dataset"
    aliases: tuple[str, ...] = ()
    folder = "reports"
    key = "dataset"
    order = 40
    dispatch: tuple[Dispatch, ...] = ()
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["dataset", "form", "measures"],
        "additionalProperties": False,
        "properties": {
            "dataset": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "form": {"type": "string", "description": "the form whose records (or tasks, history) are counted"},
            "source": {"enum": ["records", "tasks", "history"], "description": "default records"},
            "where": {**EXPRESSION, "description": "rows outside this condition are never counted"},
            "repeat": {"type": "object", "additionalProperties": False, "required": ["key"],
                       "description": "a record is a repeat when an earlier one shares `key` within `days`",
                       "properties": {"key": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 3650}}},
            "fields": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                       "additionalProperties": _FIELD_SCHEMA},
            "measures": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                         "additionalProperties": _MEASURE_SCHEMA},
            "rollups": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                        "description": "aggregates kept up to date as records change (additive measures only)",
                        "additionalProperties": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"date": {"type": "string"},
                                           "grain": {"enum": ["day", "month"],
                                                     "description": "one cell per local day (default) or per "
                                                                    "calendar month: month cells answer widgets "
                                                                    "over whole months with 30x fewer cells"},
                                           "dimensions": {"type": "array", "items": {"type": "string"}, "maxItems": 3}}}},
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> DatasetSpec | None:
        data = doc.data
        forms = ctx.definitions.get("form", {})
        form = forms.get(data["form"])
        if form is None:
            ctx.unknown(doc, ("form",), "form", data["form"], forms)
            return None
        source = data.get("source", "records")
        fields: dict[str, DatasetField] = {}
        broken: set[str] = set()
        for name, raw in (data.get("fields") or {}).items():
            built = self._field(doc, ("fields", name), name, raw, form, source, ctx)
            if built is not None:
                fields[name] = built
            else:
                broken.add(name)
        # A broken field's name still counts as known in conditions: its error is reported once.
        names = self._names(form, source, fields, broken, statuses=record_statuses(form, ctx))
        measures: dict[str, MeasureSpec] = {}
        for name, raw in data["measures"].items():
            if name in fields:
                ctx.error(doc, ("measures", name), f"'{name}' is already a field of the dataset",
                          code="duplicate-name", at_key=True)
                continue
            built_measure = self._measure(doc, ("measures", name), name, raw, names, ctx)
            if built_measure is not None:
                measures[name] = built_measure
            else:
                broken.add(name)
        where = self._condition(doc, ("where",), data.get("where"), names, ctx)
        repeat = data.get("repeat")
        if repeat and repeat["key"] not in form.fields:
            ctx.unknown(doc, ("repeat", "key"), "field", repeat["key"], form.fields)
        rollups = []
        if data.get("rollups") and source != "records":
            ctx.error(doc, ("rollups",), "rollups count records: they need `source: records`",
                      code="invalid-rollup", at_key=True)
        text_columns = self._text_columns(form, ctx) if data.get("rollups") else set()
        for rname, raw in (data.get("rollups") or {}).items():
            rollups.append(self._rollup(doc, ("rollups", rname), rname, raw, fields, ctx, text_columns,
                                        frozenset(broken)))
        return DatasetSpec(
            name=data["dataset"], label=data.get("label", data["dataset"]), form=data["form"],
            source=source, fields=MappingProxyType(fields), measures=MappingProxyType(measures),
            where=where, repeat_key=repeat["key"] if repeat else None,
            repeat_days=int(repeat.get("days", 30)) if repeat else 30,
            rollups=tuple(r for r in rollups if r is not None), span=doc.span(()),
            broken=frozenset(broken))

    # -- pieces ------------------------------------------------------------------------------------
    def _field(self, doc: Document, path: Any, name: str, raw: dict[str, Any], form: Any, source: str,
               ctx: BuildContext) -> DatasetField | None:
        origins = [k for k in ("field", "task", "history", "derived", "handled_by", "sla") if k in raw]
        if len(origins) != 1:
            ctx.error(doc, path, "a dataset field names exactly one of: field, task, history, derived, handled_by, sla",
                      code="invalid-field", at_key=True)
            return None
        origin = origins[0]
        label = raw.get("label")
        level = raw.get("level")
        if origin == "field":
            column = raw["field"]
            if column in RECORD_SYSTEM:
                kind = RECORD_SYSTEM[column]
                spec = None
                statuses = status_list(form, ctx) if column == "status" else None
                if statuses is not None:  # the statuses in the words the form's lookup gives them
                    return DatasetField(name, label or name, "record", column, "choice", None, statuses,
                                        doc.source_map.key(path))
            elif column in form.fields:
                spec = form.fields[column]
                kind = ("date" if spec.type in _DATE_TYPES else "number" if spec.type in _NUMBER_TYPES
                        else "choice" if spec.choices is not None or spec.type in _CHOICE_TYPES else "text")
            else:
                base, _, grain = str(column).rpartition(".")
                if grain in GRAINS and (base in RECORD_SYSTEM or base in form.fields):
                    # `created_at.month`: the grain belongs to the widget's dimension.
                    ctx.error(doc, path + ("field",), f"unknown field '{column}': a date's grain is chosen "
                              "in a widget's dimensions, not in the dataset", code="unknown-reference",
                              hint=f"write `{name}: {{field: {base}}}` here and `{name}.{grain}` in the widget")
                    return None
                ctx.unknown(doc, path + ("field",), "field", column, [*form.fields, *RECORD_SYSTEM])
                return None
            if level is not None and (spec is None or spec.choices is None):
                if spec is None or spec.opt("options") is None:  # else its list is broken, reported there
                    ctx.error(doc, path + ("level",), "`level` applies to a field with a tree of options",
                              code="invalid-option")
                return None
            return DatasetField(name, label or (spec.label if spec else name), "record", column, kind, level,
                                spec.choices if spec else None, doc.source_map.key(path))
        if origin in ("task", "history"):
            if source != ("tasks" if origin == "task" else "history"):
                ctx.error(doc, path + (origin,), f"`{origin}:` columns exist only in a dataset with "
                          f"`source: {'tasks' if origin == 'task' else 'history'}`", code="invalid-field")
                return None
            columns = TASK_COLUMNS if origin == "task" else HISTORY_COLUMNS
            kind = "choice" if raw[origin] in ("department", "node", "status") else columns[raw[origin]]
            return DatasetField(name, label or name, origin, raw[origin], kind, span=doc.source_map.key(path))
        if origin == "derived":
            return DatasetField(name, label or name, "derived", raw["derived"], derived_kind(raw["derived"]),
                                span=doc.source_map.key(path))
        if origin == "sla":
            return _sla_field(doc, path, name, raw, form, ctx)
        return DatasetField(name, label or name, "handled_by", "department", "choice", span=doc.source_map.key(path))

    @staticmethod
    def _names(form: Any, source: str, fields: dict[str, DatasetField], extra: Iterable[str] = (),
               *, statuses: Iterable[str] | None = None) -> Names:
        """Names conditions and measures may use: the form's fields, system and derived
        columns, the source's own columns, the dataset's field names and `extra`. A dataset
        field of a form field carries that field's options and kind of value, so a literal
        compared with either name is checked the same way; `status` is compared with the
        record's `statuses` (forms.statuses.record_statuses; None: not known)."""
        names = set(form.fields) | set(RECORD_SYSTEM) | set(DERIVED) | set(fields) | set(extra)
        if source == "tasks":
            names |= {f"task_{c}" for c in TASK_COLUMNS} | {"task_hours", "task_age_hours", "task_overdue"}
        if source == "history":
            names |= {f"history_{c}" for c in HISTORY_COLUMNS}
        facts = form.expression_names()
        choices, multi, kinds = dict(facts.choices), dict(facts.multi_choices), dict(facts.kinds)
        if statuses is not None and "status" not in form.fields:  # `status == "aproved"` never holds
            choices["status"] = frozenset(statuses)
        for name, dfield in fields.items():  # a dataset field's name reads its own column
            column = dfield.column if dfield.origin == "record" else None
            for known in (choices, multi, kinds):
                fact = known.get(column) if column is not None else None
                known.pop(name, None)
                if fact is not None:
                    known[name] = fact  # type: ignore[index]
            if dfield.origin == "sla":  # `on_time == "mett"` could never hold
                choices[name] = frozenset(value for value, _ in SLA_VERDICT_OPTIONS)
            if name in choices and dfield.level is not None and dfield.choices is not None:
                # A tree cut to a level reads the ancestor at that level: only its values match.
                choices[name] = frozenset(o.value for depth, o, _ in dfield.choices.walk() if depth == dfield.level)
        return Names(names, choices, multi_choices=multi, kinds=kinds)

    def _condition(self, doc: Document, path: Any, text: Any, names: set[str], ctx: BuildContext) -> Any:
        """A checked expression parsed for SQL translation: (ast, durations) or None."""
        if text is None:
            return None
        compiled = ctx.expression(doc, path, names)
        if compiled is None:
            return None
        parsed = parse_condition(str(text))
        try:  # translate once with placeholder columns so unsupported constructs fail at load
            Translator(lambda name: __import__("sqlalchemy").column(name), parsed[1])(parsed[0])
        except NotTranslatable as exc:
            ctx.error(doc, path, str(exc), code="report-expression")
            return None
        return parsed

    def _measure(self, doc: Document, path: Any, name: str, raw: dict[str, Any], names: set[str],
                 ctx: BuildContext) -> MeasureSpec | None:
        aggs = [a for a in AGGREGATES if a in raw]
        if len(aggs) != 1:
            ctx.error(doc, path, "a measure names exactly one aggregate: " + ", ".join(AGGREGATES),
                      code="invalid-measure", at_key=True)
            return None
        agg = aggs[0]
        value = None
        if agg == "count":
            if raw["count"] is not True:
                ctx.error(doc, path + ("count",), "write `count: true`", code="invalid-measure")
                return None
        elif agg == "count_distinct":
            if raw[agg] not in names:
                ctx.unknown(doc, path + (agg,), "field", raw[agg], names)
                return None
            value = parse_condition(raw[agg])
        else:
            value = self._condition(doc, path + (agg,), raw[agg], names, ctx)
            if value is None:
                return None
            kind = getattr(names, "kinds", {}).get(raw[agg]) if isinstance(raw[agg], str) else None
            if agg in _NUMBER_AGGREGATES and kind == "text":
                # SQLite adds up text as 0 and PostgreSQL refuses it when the dashboard opens.
                ctx.error(doc, path + (agg,), f"{agg} works on numbers, and '{raw[agg]}' holds text",
                          code="invalid-measure",
                          hint="count the records instead (count: true, with where:) or name a number field")
                return None
        if "of" in raw and agg != "rate":
            ctx.error(doc, path + ("of",), "`of` belongs to a `rate` measure", code="invalid-measure", at_key=True)
        if "p" in raw and agg != "percentile":
            ctx.error(doc, path + ("p",), "`p` belongs to a `percentile` measure", code="invalid-measure", at_key=True)
        fmt = raw.get("format", "percent" if agg == "rate" else "number")
        return MeasureSpec(name, raw.get("label", name), agg, value,
                           self._condition(doc, path + ("where",), raw.get("where"), names, ctx),
                           self._condition(doc, path + ("of",), raw.get("of"), names, ctx),
                           float(raw.get("p", 0.5)) if agg in ("percentile", "median") else None,
                           fmt, int(raw.get("decimals", 1)), doc.source_map.key(path))

    @staticmethod
    def _text_columns(form: Any, ctx: BuildContext) -> set[str]:
        """The form's fields stored in a text column: the only ones a rollup can group by,
        since a cell is found by its key as text, written by SQL (CAST) and looked up from the
        value in Python (str): a yes/no value is '1' to one and 'True' to the other, and an
        emptied cell was never found again (its count stayed)."""
        out = set()
        for fname, spec in form.fields.items():
            try:
                column = ctx.registry.field_types.get(spec.type).column_type(spec)
            except Exception:  # noqa: BLE001 - an unknown type is reported by the form itself
                continue
            if isinstance(column, sa.String):
                out.add(fname)
        return out

    def _rollup(self, doc: Document, path: Any, name: str, raw: dict[str, Any],
                fields: dict[str, DatasetField], ctx: BuildContext,
                text_columns: set[str], broken: frozenset[str] = frozenset()) -> RollupSpec | None:
        date = raw.get("date")
        ok = True
        if date in broken or any(dim in broken for dim in raw.get("dimensions", [])):
            return None  # a field it names has an error of its own, reported at that field
        if date is not None and (date not in fields or fields[date].column != "created_at"):
            ctx.error(doc, path + ("date",), f"'{date}' is not the creation date of the records",
                      code="invalid-rollup", hint="a rollup's date is the field of the dataset naming created_at")
            ok = False
        if raw.get("grain") == "month" and date is None:
            ctx.error(doc, path + ("grain",), "a month rollup needs its `date`",
                      code="invalid-rollup", hint="add `date:` naming the dataset field of created_at")
            ok = False
        for i, dim in enumerate(raw.get("dimensions", [])):
            if dim in fields and fields[dim].origin == "sla":
                continue  # an SLA verdict: a maintained fact, text, kept current as it is decided
            if (dim not in fields or fields[dim].origin != "record" or fields[dim].kind == "date"
                    or fields[dim].column in RECORD_SYSTEM):
                if dim not in fields:
                    ctx.error(doc, path + ("dimensions", i), f"'{dim}' is not a field of this dataset",
                              code="invalid-rollup", hint=did_you_mean(str(dim), fields) or (
                                  f"a rollup groups by the dataset's fields: if '{dim}' is a field of the form, "
                                  f"add {dim}: {{field: {dim}}} under fields: first"))
                else:
                    ctx.error(doc, path + ("dimensions", i), f"'{dim}' is not a field of the form in this dataset",
                              code="invalid-rollup", hint="a rollup groups by the form's own fields or SLA verdicts "
                                                          "(sla:), kept current as records change")
                ok = False
            elif fields[dim].column not in text_columns:
                ctx.error(doc, path + ("dimensions", i), f"a rollup cannot group by '{dim}': it is not stored as text",
                          code="invalid-rollup", hint="rollups group by text and option fields; widgets that group "
                                                      "by a number or a yes/no field read the records")
                ok = False
        return RollupSpec(name, date, tuple(raw.get("dimensions", [])), doc.source_map.key(path),
                          grain=raw.get("grain", "day")) if ok else None

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None


# -- dashboards ------------------------------------------------------------------------------------
_WIDGET_COMMON: dict[str, Any] = {
    "required": ["chart", "dataset"],
    "properties": {
        "chart": {"type": "string", "description": "the chart type"},
        "label": LABEL_SCHEMA,
        "dataset": {"type": "string"},
        "dimensions": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        "measures": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 8},
        "sort": {"type": "array", "items": {"type": "string"},
                 "description": "names of dimensions or measures; a leading - sorts descending"},
        "top": {"type": "integer", "minimum": 1, "maximum": 1000},
        "others": {"type": "boolean", "description": "with top: one more row summing the rest"},
        "compare": {"enum": ["previous_period"]},
        "width": {"type": "integer", "minimum": 1, "maximum": 12},
        "where": EXPRESSION,
    },
}

_DASHBOARD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["dashboard", "widgets"],
    "additionalProperties": False,
    "properties": {
        "dashboard": {"type": "string", "pattern": NAME_PATTERN},
        "label": LABEL_SCHEMA,
        "description": LABEL_SCHEMA,
        "roles": {"type": "array", "items": {"type": "string"}, "description": "who may open it (default: everyone signed in)"},
        "filters": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {
                        "type": "object", "additionalProperties": False, "required": ["field"],
                        "properties": {"label": LABEL_SCHEMA, "field": {"type": "string"},
                                       "match": {"enum": ["equals", "contains"]},
                                       "default": {"description": "for a period: last_7_days, last_30_days, last_90_days, "
                                                                  "last_365_days, this_month, this_year, yesterday, last_week, last_month"}}}},
        "widgets": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {"type": "object"}},
        "schedules": {"type": "object", "propertyNames": {"pattern": NAME_PATTERN},
                      "additionalProperties": {
                          "type": "object", "additionalProperties": False, "required": ["every", "channel", "to"],
                          "properties": {"every": {"enum": ["daily", "weekly", "monthly"]},
                                         "at": {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"},
                                         "weekday": {"enum": ["monday", "tuesday", "wednesday", "thursday",
                                                              "friday", "saturday", "sunday"]},
                                         "channel": {"type": "string"},
                                         "to": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                                         "widgets": {"type": "array", "items": {"type": "string"}},
                                         "format": {"enum": ["png", "svg", "table"]},
                                         "period": {"type": "string", "description": "the period the report covers, "
                                                    "e.g. last_week (default: the date filter's default)"},
                                         "locale": {"type": "string"}}}},
    },
}

PERIODS = ("last_7_days", "last_30_days", "last_90_days", "last_365_days", "this_month", "this_year",
           "yesterday", "last_week", "last_month")
"""Named periods a date filter starts at, or a schedule covers. The last three are whole periods
before today: what a report sent on a timetable (the week just ended) covers."""
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class DashboardKind:
    """`dashboard: overview` with `filters:` and `widgets:` (each widget's `chart` picks a chart type)."""

    name = "dashboard"
    aliases: tuple[str, ...] = ()
    folder = "dashboards"
    key = "dashboard"
    order = 45
    dispatch = (Dispatch(("widgets", "*"), "chart_types", _WIDGET_COMMON, discriminator="chart"),)
    options_schema = _DASHBOARD_SCHEMA

    def build(self, doc: Document, ctx: BuildContext) -> DashboardSpec | None:
        data = doc.data
        datasets = ctx.definitions.get("dataset", {})
        filters: dict[str, FilterSpec] = {}
        widgets: dict[str, WidgetSpec] = {}
        ok = True
        unresolved = False  # a filter whose field is unknown (reported, or its dataset failed)
        used = [w.get("dataset") for w in data["widgets"].values()]
        for name, raw in (data.get("filters") or {}).items():
            found = [datasets[d].fields[raw["field"]] for d in used if d in datasets and raw["field"] in datasets[d].fields]
            if not found:
                if "dataset" not in ctx.incomplete and not any(
                        raw["field"] in datasets[d].broken for d in used if d in datasets):
                    known = {f for d in used if d in datasets for f in datasets[d].fields}
                    listing = next((hint for d in dict.fromkeys(used) if d in datasets
                                    for hint in [_listing_hint(ctx, datasets[d], str(raw["field"]))] if hint), None)
                    ctx.error(doc, ("filters", name, "field"), f"no dataset of this dashboard has a field '{raw['field']}'",
                              code="unknown-reference", hint=did_you_mean(str(raw["field"]), known) or listing)
                ok = False
                unresolved = True
                continue
            kind = found[0].kind
            ftype = "period" if kind == "date" else "choice" if kind == "choice" else "text"
            default = raw.get("default")
            if ftype == "period" and default is not None:
                _check_period_name(doc, ("filters", name, "default"), default, ctx)
            elif ftype != "period" and default is not None:
                # Only a period starts preset; any other default was silently ignored.
                ctx.error(doc, ("filters", name, "default"), f"a default applies to a date filter only: the "
                          f"{ftype} filter '{name}' starts empty (every record)", code="invalid-option",
                          hint="leave out `default`, or narrow a widget with `where:`")
            filters[name] = FilterSpec(name, raw.get("label", found[0].label), raw["field"], ftype,
                                       raw.get("match", "contains" if ftype == "text" else "equals"), default,
                                       doc.source_map.key(("filters", name)))
        for name, raw in data["widgets"].items():
            widget = self._widget(doc, ("widgets", name), name, raw, datasets, ctx)
            if widget is None:
                ok = False
            else:
                widgets[name] = widget
        roles = tuple(data.get("roles", ()))
        if ctx.meta is not None:
            for i, role in enumerate(roles):
                if role not in ctx.meta.roles:
                    ctx.unknown(doc, ("roles", i), "role", role, ctx.meta.roles)
        schedules = {}
        for name, raw in (data.get("schedules") or {}).items():
            for i, widget_name in enumerate(raw.get("widgets", [])):
                if widget_name not in data["widgets"]:
                    ctx.unknown(doc, ("schedules", name, "widgets", i), "widget", widget_name, data["widgets"])
            channels = {"log", *(getattr(ctx.meta, "channels", None) or {})}  # as engine/outbox.py
            if ctx.meta is not None and raw["channel"] not in channels:  # no meta: bundle.yaml is broken
                ctx.unknown(doc, ("schedules", name, "channel"), "channel", raw["channel"], channels)
            period = raw.get("period")
            if period is not None:
                self._check_schedule_period(doc, ("schedules", name, "period"), period, filters, unresolved, ctx)
            to = raw["to"]
            schedules[name] = ScheduleSpec(
                name, raw["every"], raw.get("at", "08:00"), WEEKDAYS.index(raw.get("weekday", "monday")),
                raw["channel"], tuple([to] if isinstance(to, str) else to),
                tuple(raw.get("widgets", [])) or tuple(data["widgets"]), raw.get("format", "png"),
                raw.get("locale", ctx.meta.default_locale if ctx.meta else "en"),
                doc.source_map.key(("schedules", name)), period)
        if not ok:
            return None
        return DashboardSpec(data["dashboard"], data.get("label", data["dashboard"]), data.get("description"),
                             MappingProxyType(filters), MappingProxyType(widgets), roles,
                             MappingProxyType(schedules), doc.span(()))

    def _check_schedule_period(self, doc: Document, path: YamlPath, period: Any, filters: dict[str, FilterSpec],
                               unresolved: bool, ctx: BuildContext) -> None:
        """A schedule's `period` names a known period and is applied to the dashboard's date
        filter, which it must have (unless a filter is `unresolved`: it may be that one, and its
        own error, or its form's, is the one to read)."""
        if not _check_period_name(doc, path, period, ctx) or unresolved:
            return
        if not any(f.type == "period" for f in filters.values()):
            ctx.error(doc, path, "the dashboard has no date filter for the period to narrow",
                      code="invalid-option", hint="add a filter on a date field, e.g. "
                      "filters: {period: {field: created}}")

    def _widget(self, doc: Document, path: Any, name: str, raw: dict[str, Any], datasets: Any,
                ctx: BuildContext) -> WidgetSpec | None:
        chart = ctx.registry.chart_types.get(raw["chart"])
        dataset = datasets.get(raw["dataset"])
        if dataset is None:
            ctx.unknown(doc, path + ("dataset",), "dataset", raw["dataset"], datasets)
            return None
        if chart is None:
            return None
        dims = []
        for i, text in enumerate(raw.get("dimensions", [])):
            field_name, _, grain = text.partition(".")
            dfield = dataset.fields.get(field_name)
            if field_name in dataset.broken:
                return None  # the dataset field has an error of its own, reported in the dataset
            listing = _listing_hint(ctx, dataset, field_name) if dfield is None else None
            if listing is not None:
                # A form field the dataset does not list yet: "known fields: ..." left the analyst
                # looking for a typo; the dataset is the allow-list a widget may group by.
                ctx.error(doc, path + ("dimensions", i),
                          f"dataset '{dataset.name}' has no field '{field_name}' (a field of the form "
                          f"'{dataset.form}' it does not list)", code="unknown-reference", hint=listing)
                return None
            if dfield is None or dfield.origin == "handled_by":
                ctx.unknown(doc, path + ("dimensions", i), "field", field_name,
                            [n for n, f in dataset.fields.items() if f.origin != "handled_by"])
                return None
            if dfield.kind == "date" and grain and grain not in GRAINS:
                ctx.error(doc, path + ("dimensions", i), f"unknown grain '{grain}' of the date '{field_name}'",
                          code="invalid-dimension",
                          hint=did_you_mean(grain, GRAINS) or "grains: " + ", ".join(GRAINS))
                return None
            if dfield.kind == "date" and grain not in GRAINS:
                ctx.error(doc, path + ("dimensions", i), f"a date dimension needs a grain: {field_name}.month",
                          code="invalid-dimension", hint="grains: " + ", ".join(GRAINS))
                return None
            if dfield.kind != "date" and grain:
                ctx.error(doc, path + ("dimensions", i), f"'{field_name}' is not a date; write it without .{grain}",
                          code="invalid-dimension")
                return None
            dims.append(Dimension(field_name, grain or None))
        measures = tuple(raw.get("measures", ()))
        if not measures:
            ctx.error(doc, path, "a widget needs at least one measure", code="invalid-widget", at_key=True)
            return None
        for i, measure in enumerate(measures):
            if measure in dataset.broken:
                return None  # the measure has an error of its own, reported in the dataset
            if measure not in dataset.measures:
                form = ctx.definitions.get("form", {}).get(dataset.form)
                if form is not None and measure in form.fields and not difflib.get_close_matches(
                        measure, list(dataset.measures), n=1, cutoff=0.8):  # `amount` for `amounts`: a slip
                    # `measures: [compensation]`, a field: a widget shows a measure (a sum, an
                    # average) that the dataset defines over it.
                    ctx.error(doc, path + ("measures", i),
                              f"dataset '{dataset.name}' has no measure '{measure}' ('{measure}' is a field: "
                              "a widget shows a measure defined over it)", code="unknown-reference",
                              hint=f"add one under the dataset's measures:, e.g. total_{measure}: {{sum: {measure}}}"
                              if form.value_kinds.get(measure) == "number" else
                              f"to count the records by '{measure}', put it under dimensions: and show a "
                              "count measure ({count: true})")
                    return None
                ctx.unknown(doc, path + ("measures", i), "measure", measure, dataset.measures)
                return None
        problem = ctx.guarded(lambda: chart.check_shape(len(dims), len(measures)), doc, path + ("chart",),
                              f"checking the shape of widget '{name}' (chart '{chart.name}')",
                              source=ctx.registry.chart_types.source(chart.name))
        if problem is CRASHED:
            return None
        if problem:
            # Name the charts that draw this many dimensions and measures: the widget's shape
            # is usually what the analyst means, the chart what to change.
            fits = [other.name for other in ctx.registry.chart_types if _draws(other, len(dims), len(measures))]
            ctx.error(doc, path + ("chart",), problem, code="invalid-widget",
                      hint=f"charts for {len(dims)} dimension(s) and {len(measures)} measure(s): "
                           + ", ".join(sorted(fits)) if fits else None)
            return None
        sort = []
        allowed = {d.key for d in dims} | {d.field for d in dims} | set(measures)
        for i, item in enumerate(raw.get("sort", [])):
            descending = item.startswith("-")
            key = item.lstrip("-")
            if key not in allowed:
                ctx.unknown(doc, path + ("sort", i), "dimension or measure", key, allowed)
                return None
            sort.append((key, descending))
        if raw.get("others") and not raw.get("top"):
            ctx.error(doc, path + ("others",), "`others` needs `top`", code="invalid-widget")
        if raw.get("compare") and dims:
            ctx.error(doc, path + ("compare",), "`compare` applies to a widget without dimensions (a KPI)",
                      code="invalid-widget")
        form = ctx.definitions["form"][dataset.form]
        names = DatasetKind._names(form, dataset.source, dict(dataset.fields), statuses=record_statuses(form, ctx))
        where = DatasetKind()._condition(doc, path + ("where",), raw.get("where"), names, ctx)
        options = {k: v for k, v in raw.items() if k not in _WIDGET_COMMON["properties"]}
        return WidgetSpec(name, raw.get("label", name), chart.name, dataset.name, tuple(dims), measures,
                          tuple(sort), raw.get("top"), bool(raw.get("others", False)), raw.get("compare"),
                          int(raw.get("width", chart.default_width)), MappingProxyType(options), where,
                          doc.source_map.key(path))

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        return None



SLA_VERDICT_OPTIONS: tuple[tuple[str, dict[str, str]], ...] = (
    ("met", {"zh-CN": "按时", "en": "Met"}), ("missed", {"zh-CN": "超时", "en": "Missed"}))
"""The verdicts of an SLA target (engine.storage.tables.SLA_VERDICTS), as a dataset's `sla:`
field shows them; a record without one (its clock runs in time, is paused, or never started)
has none."""


def _sla_field(doc: Document, path: YamlPath, name: str, raw: dict[str, Any], form: Any,
               ctx: BuildContext) -> DatasetField | None:
    """`on_time: {sla: resolution}`: the verdict of the record's clock for that SLA target, so
    a measure counts what met its service level in working time (`rate: on_time == "met"`),
    as the record page and the overdue list judge it."""
    from engine.lists import Option, OptionList

    target = str(raw["sla"])
    policies = [policy.name for policy in ctx.definitions.get("sla", {}).values()
                if policy.form == form.name and target in policy.targets]
    if len(policies) > 1:
        # One verdict is kept per record and target: two clocks would overwrite each other's.
        ctx.error(doc, path + ("sla",), f"the SLA policies {', '.join(sorted(policies))} of form '{form.name}' "
                  f"both have a target '{target}': which one's verdict is meant is unclear",
                  code="ambiguous-reference", hint="rename the target in one of the policies")
        return None
    targets = {t for policy in ctx.definitions.get("sla", {}).values() if policy.form == form.name
               for t in policy.targets}
    if target not in targets and "sla" not in ctx.incomplete:
        if targets:
            ctx.unknown(doc, path + ("sla",), "SLA target", target, targets)
        else:
            ctx.error(doc, path + ("sla",), f"no SLA policy covers form '{form.name}': there is no clock to read",
                      code="unknown-reference", hint="add one under sla/ (see the rules reference)")
        return None
    span = doc.source_map.key(path)
    verdicts = OptionList("sla_verdict", {"zh-CN": "时限结果", "en": "SLA verdict"},
                          tuple(Option(value, label, (), span) for value, label in SLA_VERDICT_OPTIONS), span)
    return DatasetField(name, raw.get("label") or name, "sla", target, "choice", None, verdicts, span)


def _draws(chart: Any, dimensions: int, measures: int) -> bool:
    """Whether `chart` draws this shape; one whose check raises is left out of a hint (it is
    reported where a widget uses it)."""
    try:
        return chart.check_shape(dimensions, measures) is None
    except Exception:  # noqa: BLE001 - a plugin's bug, reported at its own widgets
        return False


def _check_period_name(doc: Document, path: YamlPath, period: Any, ctx: BuildContext) -> bool:
    """Report a period that is not one of `PERIODS` at `path`; True when it is one."""
    if period in PERIODS:
        return True
    ctx.error(doc, path, f"unknown period '{period}'", code="invalid-option",
              hint=did_you_mean(str(period), PERIODS) or "periods: " + ", ".join(PERIODS))
    return False
