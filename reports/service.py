"""The report service (`runtime.services["reports"]`): dashboards, widget data, drill-down,
export and scheduled sending, for a principal, over the compiled datasets of the bundle.

Page parameters arrive as text. `filters_from` checks each against the dashboard's filter
definitions (dates must be dates, choice values must be options of the field, free text is
bounded) before anything is built; the query layer then binds them as parameters.
"""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from engine.identity import Principal
from engine.runtime import Runtime
from engine.storage.db import read_transaction, serialize, transaction
from engine.types import label_text
from reports.charts import ChartData, checked_spec, render_png, render_svg
from reports.facts import FactKeeper, complete_facts
from reports.rollups import RollupKeeper
from reports.query import OTHERS, Filters, ReportRequestError, Result, drill_rows, run_widget
from reports.spec import DashboardSpec, DatasetSpec, WidgetSpec

MAX_TEXT_FILTER = 100
OTHERS_LABEL = {"en": "Others", "zh-CN": "其他"}
EMPTY_LABEL = {"en": "(none)", "zh-CN": "（空）"}


class ReportService:
    """Runs the bundle's dashboards; started once per runtime (web/system.py boot)."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        self.facts = FactKeeper(runtime)
        self.rollups = RollupKeeper(runtime)
        runtime.services["reports"] = self
        runtime.services["rollups"] = self.rollups
        if self.facts.forms:
            with transaction(runtime.db) as conn:
                serialize(conn, "report-rollups")  # processes starting together build once
                rebuilt = complete_facts(conn, runtime, self.facts.forms)
                self.rollups.ensure_built(conn, force=bool(rebuilt))  # they measure the facts
        from reports.schedule import ReportScheduler

        self.scheduler = ReportScheduler(runtime, self)

    def rebuild_rollups(self) -> list[str]:
        """Recompute every maintained aggregate from the records (after writes that bypassed
        the engines: a bulk load, a restore); returns the rollups rebuilt."""
        with transaction(self.rt.db) as conn:
            return self.rollups.rebuild_all(conn)

    # -- definitions ---------------------------------------------------------------------------
    @property
    def dashboards(self) -> Mapping[str, DashboardSpec]:
        return self.rt.bundle.all("dashboard")

    def dashboard(self, name: str) -> DashboardSpec:
        found = self.dashboards.get(name)
        if found is None:
            raise ReportRequestError(f"there is no dashboard '{_cut(name)}'")
        return found

    def dataset(self, name: str) -> DatasetSpec:
        return self.rt.bundle.get("dataset", name)

    def widget(self, dashboard: DashboardSpec, name: str) -> WidgetSpec:
        found = dashboard.widgets.get(name)
        if found is None:
            raise ReportRequestError(f"dashboard '{dashboard.name}' has no widget '{_cut(name)}'")
        return found

    def may_open(self, dashboard: DashboardSpec, principal: Principal) -> bool:
        return not dashboard.roles or principal.has_role(*dashboard.roles)

    def visible(self, principal: Principal) -> list[DashboardSpec]:
        return [d for d in self.dashboards.values() if self.may_open(d, principal)]

    # -- filters -------------------------------------------------------------------------------
    def filters_from(self, dashboard: DashboardSpec, params: Mapping[str, Sequence[str]],
                     dataset: DatasetSpec | None = None) -> Filters:
        """Checked filter values from page parameters (`period=last_30_days` or `period_from`,
        `period_to` as YYYY-MM-DD; `region=east&region=north`; `customer=text`). Filters whose
        field the dataset lacks are left out for that dataset."""
        period = None
        period_field = None
        values: dict[str, tuple[str, ...]] = {}
        contains: dict[str, str] = {}
        for name, spec in dashboard.filters.items():
            if dataset is not None and spec.field not in dataset.fields:
                continue
            if spec.type == "period":
                first = _date_param(params, f"{name}_from")
                last = _date_param(params, f"{name}_to")
                preset = _one(params, name) or (None if first or last else spec.default)
                if preset:
                    first, last = self.preset(preset)
                if first and last and first > last:
                    raise ReportRequestError(f"{name}: the first day is after the last day")
                if first or last:
                    period, period_field = (first, last), spec.field
            elif spec.type == "choice":
                chosen = tuple(v for v in params.get(name, ()) if v != "")
                if chosen:
                    allowed = self._choices(dashboard, spec.field)
                    bad = [v for v in chosen if allowed is not None and v not in allowed]
                    if bad:
                        raise ReportRequestError(f"'{_cut(bad[0])}' is not an option of the filter '{name}'")
                    values[spec.field] = chosen
            else:
                text = _one(params, name)
                if text:
                    if len(text) > MAX_TEXT_FILTER:
                        raise ReportRequestError(f"the filter '{name}' takes at most {MAX_TEXT_FILTER} characters")
                    if spec.match == "contains":
                        contains[spec.field] = text
                    else:
                        values[spec.field] = (text,)
        return Filters(period, period_field, values, contains)

    def preset(self, name: str, today: date | None = None) -> tuple[date, date]:
        """A named period (reports.kind.PERIODS) in the bundle's time zone: one ending `today`
        (default: the runtime's), or the whole day, week (Monday to Sunday) or month before it."""
        today = today or self.rt.clock.now().astimezone(ZoneInfo(self.rt.bundle.meta.timezone)).date()
        days = {"last_7_days": 7, "last_30_days": 30, "last_90_days": 90, "last_365_days": 365}
        if name in days:
            return today - timedelta(days=days[name] - 1), today
        if name == "this_month":
            return today.replace(day=1), today
        if name == "this_year":
            return today.replace(month=1, day=1), today
        if name == "yesterday":
            return today - timedelta(days=1), today - timedelta(days=1)
        if name == "last_week":
            monday = today - timedelta(days=today.weekday() + 7)
            return monday, monday + timedelta(days=6)
        if name == "last_month":
            last = today.replace(day=1) - timedelta(days=1)
            return last.replace(day=1), last
        raise ReportRequestError(f"unknown period '{_cut(name)}'")

    def _choices(self, dashboard: DashboardSpec, field_name: str) -> set[str] | None:
        for widget in dashboard.widgets.values():
            spec = self.dataset(widget.dataset).fields.get(field_name)
            if spec is not None:
                if spec.origin == "handled_by" or (spec.origin == "task" and spec.column == "department"):
                    return set(self.rt.bundle.meta.departments)
                if spec.choices is not None:
                    if spec.level is not None:
                        return {o.value for d, o, _ in spec.choices.walk() if d == spec.level}
                    return spec.choices.values()
                return None
        return None

    # -- data ----------------------------------------------------------------------------------
    def run(self, dashboard: DashboardSpec, widget: WidgetSpec, params: Mapping[str, Sequence[str]],
            principal: Principal) -> Result:
        dataset = self.dataset(widget.dataset)
        filters = self.filters_from(dashboard, params, dataset)
        with read_transaction(self.rt.db) as conn:
            return run_widget(conn, self.rt, dataset, widget, filters, principal)

    def widget_json(self, dashboard: DashboardSpec, widget: WidgetSpec, params: Mapping[str, Sequence[str]],
                    principal: Principal, locale: str) -> dict[str, Any]:
        """What the page draws: the chart specification, the table of values, drill points."""
        result = self.run(dashboard, widget, params, principal)
        return self.payload(widget, result, locale)

    def payload(self, widget: WidgetSpec, result: Result, locale: str) -> dict[str, Any]:
        dataset = self.dataset(widget.dataset)
        chart = self.rt.bundle.registry.chart_types.get(widget.chart)
        data = self.chart_data(widget, result, locale)
        columns = ([{"key": d.key, "title": dataset.fields[d.field].text(locale), "kind": "dimension"}
                    for d in widget.dimensions]
                   + [{"key": m, "title": dataset.measures[m].text(locale), "kind": "measure",
                       "format": dataset.measures[m].format} for m in widget.measures])
        table = [[row.get(f"d{i}") for i in range(len(widget.dimensions))]
                 + [row.get(f"m{j}") for j in range(len(widget.measures))] for row in data.values]
        points = [{d.key: _jsonable(r.get(d.key)) for d in widget.dimensions} for r in result.rows]
        totals = None
        if widget.chart == "table" and result.rows:
            sums = [sum(r.get(m) or 0 for r in result.rows) if dataset.measures[m].agg in ("count", "sum") else None
                    for m in widget.measures]
            # Averages and rates have no total: a table of only those ends with its last row.
            totals = [None] * len(widget.dimensions) + sums if any(t is not None for t in sums) else None
        return {"widget": widget.name, "chart": chart.name, "mode": chart.mode, "title": data.title,
                "spec": checked_spec(chart, data, self.rt.bundle.registry.chart_types.source(chart.name)),
                "columns": columns, "rows": table, "points": points,
                "totals": totals, "truncated": result.truncated,
                "previous": [result.previous.get(m) for m in widget.measures] if result.previous else None}

    def chart_data(self, widget: WidgetSpec, result: Result, locale: str) -> ChartData:
        dataset = self.dataset(widget.dataset)
        dims = []
        labelers = []
        for i, d in enumerate(widget.dimensions):
            spec = dataset.fields[d.field]
            dims.append((f"d{i}", spec.text(locale), "date" if d.grain else "text"))
            labelers.append(self.value_labels(dataset, spec, locale))
        measures = [(f"m{j}", dataset.measures[m].text(locale), dataset.measures[m].format)
                    for j, m in enumerate(widget.measures)]
        values = []
        for p, row in enumerate(result.rows):
            item: dict[str, Any] = {"_p": p}
            for i, d in enumerate(widget.dimensions):
                raw = row.get(d.key)
                item[f"_raw{i}"] = _jsonable(raw)
                if raw == OTHERS:
                    item[f"d{i}"] = label_text(OTHERS_LABEL, locale)
                elif raw is None or raw == "":
                    item[f"d{i}"] = label_text(EMPTY_LABEL, locale)
                else:
                    item[f"d{i}"] = labelers[i].get(str(raw), str(raw))
            for j, m in enumerate(widget.measures):
                item[f"m{j}"] = row.get(m)
            values.append(item)
        previous = None
        if result.previous:
            previous = {f"m{j}": result.previous.get(m) for j, m in enumerate(widget.measures)}
        return ChartData(widget.text(locale), dims, measures, values, dict(widget.options), previous)

    def value_labels(self, dataset: DatasetSpec, spec: Any, locale: str) -> dict[str, str]:
        """How a dimension's values read: option labels, department names, flow step names."""
        if spec.choices is not None:
            return _option_labels(spec.choices, locale)
        if spec.origin == "handled_by" or (spec.origin == "task" and spec.column == "department"):
            return {code: label_text(dep.label, locale, code) for code, dep in self.rt.bundle.meta.departments.items()}
        if spec.origin in ("task", "history") and spec.column == "node":
            labels: dict[str, str] = {}
            for flow in self.rt.bundle.all("flow").values():
                if flow.form == dataset.form:
                    for node_id, node in flow.nodes.items():
                        labels.setdefault(node_id, label_text(node.label, locale, node_id))
            return labels
        return {}

    def image(self, dashboard: DashboardSpec, widget: WidgetSpec, params: Mapping[str, Sequence[str]],
              principal: Principal, locale: str, fmt: str) -> bytes:
        """The widget as SVG or PNG bytes, drawn from the same specification as the page."""
        payload = self.widget_json(dashboard, widget, params, principal, locale)
        if fmt == "svg":
            return render_svg(payload["spec"]).encode("utf-8")
        return render_png(payload["spec"])

    # -- drill-down ----------------------------------------------------------------------------
    def drill(self, dashboard: DashboardSpec, widget: WidgetSpec, params: Mapping[str, Sequence[str]],
              principal: Principal, *, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
        """(count, records) behind a point: `params` holds the dashboard filters and `p.<dimension>`
        values naming the point (e.g. `p.category=damage_goods`, `p.created.month=2025-03`)."""
        dataset = self.dataset(widget.dataset)
        filters = self.filters_from(dashboard, params, dataset)
        point: dict[str, Any] = {}
        for d in widget.dimensions:
            key = f"p.{d.key}"
            if key in params:
                value = _one(params, key)
                point[d.key] = None if value == "" else value
        for key in params:
            if key.startswith("p.") and key[2:] not in {d.key for d in widget.dimensions}:
                raise ReportRequestError(f"'{_cut(key[2:])}' is not a dimension of widget '{widget.name}'")
        shown: list[Any] = []
        with read_transaction(self.rt.db) as conn:
            if OTHERS in point.values():
                top = run_widget(conn, self.rt, dataset, widget, filters, principal)
                first = widget.dimensions[0].key
                shown = [r[first] for r in top.rows if r[first] != OTHERS]
            total, ids = drill_rows(conn, self.rt, dataset, widget, filters, principal, point,
                                    shown=shown, limit=limit, offset=offset)
        forms = self.rt.services["forms"]
        table = forms.tables[dataset.form]
        with read_transaction(self.rt.db) as conn:
            rows = {r.id: dict(r._mapping) for r in conn.execute(sa.select(table).where(table.c.id.in_(ids)))} if ids else {}
        return total, [rows[i] for i in ids if i in rows]

    # -- export --------------------------------------------------------------------------------
    def export(self, dashboard: DashboardSpec, widget: WidgetSpec, params: Mapping[str, Sequence[str]],
               principal: Principal, locale: str, fmt: str) -> bytes:
        """The widget's table as CSV or XLSX (formula-safe cells, forms/exchange writers)."""
        from forms.exchange.csvfile import CsvWriter
        from forms.exchange.xlsx_write import XlsxWriter

        payload = self.widget_json(dashboard, widget, params, principal, locale)
        out = io.BytesIO()
        writer: Any = XlsxWriter(out, payload["title"]) if fmt == "xlsx" else CsvWriter(out)
        writer.header([c["title"] for c in payload["columns"]])
        for row in payload["rows"]:
            writer.row(row)
        if payload["totals"]:
            writer.row([label_text({"en": "Total", "zh-CN": "合计"}, locale)]
                       + [t for t in payload["totals"][1:]] if widget.dimensions else payload["totals"])
        writer.close()
        return out.getvalue()


def _option_labels(choices: Any, locale: str) -> dict[str, str]:
    """value -> label; a label two options share (时效延误 under pickup and under transport)
    gets its parent's label in front, so a chart never merges two different values."""
    labels = {o.value: o.text(locale) for _, o, _ in choices.walk()}
    parents = {o.value: path[-1] if path else None for _, o, path in choices.walk()}
    seen: dict[str, int] = {}
    for text in labels.values():
        seen[text] = seen.get(text, 0) + 1
    for value, text in list(labels.items()):
        parent = parents.get(value)
        if seen[text] > 1 and parent is not None:
            labels[value] = f"{labels.get(parent, parent)}·{text}"
    return labels


def _one(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = params.get(key)
    if not values:
        return None
    value = values[-1] if not isinstance(values, str) else values
    return value.strip() if isinstance(value, str) else None


def _date_param(params: Mapping[str, Sequence[str]], key: str) -> date | None:
    text = _one(params, key)
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportRequestError(f"{key}: '{_cut(text)}' is not a date (YYYY-MM-DD)") from None


def _cut(text: Any) -> str:
    text = str(text)
    return text if len(text) <= 60 else text[:57] + "..."


def _jsonable(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
