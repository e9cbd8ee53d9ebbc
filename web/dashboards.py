"""Dashboards (报表看板): pages, widget data as JSON, drill-down, CSV/XLSX/SVG/PNG export, print.

Every route needs a signed-in principal and the dashboard's roles; every query runs through
`runtime.services["reports"]` with that principal, so row-level permissions apply to charts,
exports and drill-downs alike. Bad parameters get a 400 with a plain message (never SQL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.identity import Principal
from engine.types import label_text, translate
from reports.kind import PERIODS
from reports.query import OTHERS, ReportRequestError
from reports.sql import NotTranslatable
from web import auth
from web.i18n import ui
from web.offload import offload
from web.staff import local_time, status_labeller

if TYPE_CHECKING:
    from reports.service import ReportService
    from reports.spec import DashboardSpec, WidgetSpec
    from web.app import Web

TEXT: dict[str, dict[str, str]] = {
    "dashboards": {"en": "Dashboards", "zh-CN": "报表看板"},
    "no_dashboards": {"en": "No dashboard is open to you.", "zh-CN": "暂无可查看的看板。"},
    "apply": {"en": "Apply", "zh-CN": "查询"},
    "reset": {"en": "Reset", "zh-CN": "重置"},
    "from": {"en": "From", "zh-CN": "开始日期"},
    "to": {"en": "To", "zh-CN": "结束日期"},
    "all": {"en": "All", "zh-CN": "全部"},
    "any_period": {"en": "Any time", "zh-CN": "不限"},
    "last_7_days": {"en": "Last 7 days", "zh-CN": "最近7天"},
    "last_30_days": {"en": "Last 30 days", "zh-CN": "最近30天"},
    "last_90_days": {"en": "Last 90 days", "zh-CN": "最近90天"},
    "last_365_days": {"en": "Last 365 days", "zh-CN": "最近一年"},
    "this_month": {"en": "This month", "zh-CN": "本月"},
    "this_year": {"en": "This year", "zh-CN": "今年"},
    "yesterday": {"en": "Yesterday", "zh-CN": "昨天"},
    "last_week": {"en": "Last week", "zh-CN": "上周"},
    "last_month": {"en": "Last month", "zh-CN": "上月"},
    "print": {"en": "Print", "zh-CN": "打印"},
    "export": {"en": "Export", "zh-CN": "导出"},
    "loading": {"en": "Loading…", "zh-CN": "加载中…"},
    "drill_title": {"en": "Records behind “{point}”", "zh-CN": "“{point}”对应的记录"},
    "filtered_by": {"en": "Dashboard filters", "zh-CN": "看板筛选条件"},
    "records_found": {"en": "{n} records", "zh-CN": "共 {n} 条记录"},
    "back_to": {"en": "Back to the dashboard", "zh-CN": "返回看板"},
    "query_no": {"en": "Query number", "zh-CN": "查询编号"},
    "subject": {"en": "Subject", "zh-CN": "主题"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "created": {"en": "Received", "zh-CN": "受理时间"},
    "previous": {"en": "Previous", "zh-CN": "上期"},
    "more": {"en": "Next page", "zh-CN": "下一页"},
    "less": {"en": "Previous page", "zh-CN": "上一页"},
    "records_shown": {"en": "{first}–{last} of {n} records", "zh-CN": "第 {first}–{last} 条，共 {n} 条记录"},
    "click_hint": {"en": "Click a bar, slice or cell to see its records.", "zh-CN": "点击图中的柱、扇区或格子可查看对应记录。"},
    "drill_keys": {"en": "Records behind each point", "zh-CN": "各数据点对应的记录"},
    "total": {"en": "Total", "zh-CN": "合计"},
    "no_rows": {"en": "Nothing to show for these filters.", "zh-CN": "当前筛选条件下没有数据。"},
    "widget_failed": {"en": "This chart could not be drawn. Reload the page; if it stays, tell the administrator.",
                      "zh-CN": "此图表暂时无法显示。请刷新页面；如仍无法显示，请联系管理员。"},
    "dates_reversed": {"en": "“{filter}”: the start date is after the end date. The figures below are not filtered.",
                       "zh-CN": "“{filter}”的开始日期晚于结束日期，下面显示的是未筛选的数据。"},
    "bad_date": {"en": "“{filter}”: “{text}” is not a date. The figures below are not filtered.",
                 "zh-CN": "“{filter}”中的“{text}”不是有效日期，下面显示的是未筛选的数据。"},
    "drill_failed": {"en": "These records cannot be listed ({detail}). Go back to the dashboard and click the chart again.",
                     "zh-CN": "无法列出这些记录（{detail}）。请返回看板，重新点击图表。"},
    "bad_filters": {"en": "These filters cannot be used ({detail}). The figures below are not filtered.",
                    "zh-CN": "筛选条件无法使用（{detail}），下面显示的是未筛选的数据。"},
}
PERIOD_PRESETS = PERIODS
DRILL_PAGE = 100
MAX_OFFSET = 10**9
"""The furthest drill-down page start read; beyond it the page is simply empty."""


def _tr(key: str, locale: str, **params: Any) -> str:
    return translate(TEXT, key, locale, **params)


def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        if key in ("lang", "offset"):
            continue
        out.setdefault(key, []).append(value)
    return out


def _filter_query(params: Mapping[str, Sequence[str]]) -> str:
    return urlencode([(k, v) for k, vs in params.items() if not k.startswith("p.") for v in vs])


def routes(web: "Web") -> list[Route]:
    """The dashboard pages and their data endpoints."""

    def service() -> "ReportService":
        return web.system.runtime.services["reports"]

    def opened(request: Request) -> tuple[Principal, "DashboardSpec"]:
        principal = auth.require_principal(request)
        try:
            dashboard = service().dashboard(request.path_params["name"])
        except ReportRequestError:
            raise HTTPException(404, ui("err_no_dashboard", web.locale_of(request))) from None
        if not service().may_open(dashboard, principal):
            raise HTTPException(403, ui("err_dashboard_role", web.locale_of(request)))
        return principal, dashboard

    def widget_of(request: Request, dashboard: "DashboardSpec") -> "WidgetSpec":
        found = dashboard.widgets.get(request.path_params["widget"])
        if found is None:
            raise HTTPException(404, "there is no such widget")
        return found

    async def index(request: Request) -> Response:
        principal = auth.require_principal(request)
        locale = web.locale_of(request)
        items = [{"name": d.name, "title": d.text(locale),
                  "description": label_text(d.description, locale) if d.description else ""}
                 for d in service().visible(principal)]
        return web.page(request, "dashboards.html", dashboards=items, tr=lambda k, **p: _tr(k, locale, **p))

    async def page(request: Request) -> Response:
        principal, dashboard = opened(request)
        locale = web.locale_of(request)
        params = _params(request)
        applied = params
        try:
            service().filters_from(dashboard, params)
            error = None
        except ReportRequestError as exc:
            # The widgets load unfiltered; the filter bar keeps what was typed, to correct it.
            error, applied = _filter_problem(dashboard, params, locale) or _tr("bad_filters", locale, detail=str(exc)), {}
        query = _filter_query(applied)
        return web.page(request, "dashboard.html", dashboard=dashboard, title=dashboard.text(locale),
                        description=label_text(dashboard.description, locale) if dashboard.description else "",
                        filters=_filter_controls(service(), dashboard, params, locale), query=query,
                        widgets=[{"name": w.name, "title": w.text(locale), "width": w.width, "chart": w.chart}
                                 for w in dashboard.widgets.values()],
                        error=error, printing=request.url.path.endswith("/print"),
                        tr=lambda k, **p: _tr(k, locale, **p))

    async def data(request: Request) -> Response:
        principal, dashboard = opened(request)
        widget = widget_of(request, dashboard)
        locale = web.locale_of(request)
        fmt = request.path_params["fmt"]
        params = _params(request)
        try:
            if fmt == "json":
                body = await offload.run(service().widget_json, dashboard, widget, params, principal, locale)
                return JSONResponse(body)
            if fmt in ("svg", "png"):
                image = await offload.run(service().image, dashboard, widget, params, principal, locale, fmt)
                return Response(image, media_type="image/svg+xml" if fmt == "svg" else "image/png",
                                headers={"content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
                                         "cache-control": "no-store"})
            if fmt in ("csv", "xlsx"):
                content = await offload.run(service().export, dashboard, widget, params, principal, locale, fmt)
                media = ("text/csv; charset=utf-8" if fmt == "csv" else
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
                return Response(content, media_type=media, headers={
                    "content-disposition": f'attachment; filename="{dashboard.name}-{widget.name}.{fmt}"',
                    "cache-control": "no-store"})
        except (ReportRequestError, NotTranslatable) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        raise HTTPException(404, "unknown format")

    async def drill(request: Request) -> Response:
        principal, dashboard = opened(request)
        widget = widget_of(request, dashboard)
        locale = web.locale_of(request)
        params = _params(request)
        raw = request.query_params.get("offset", "")
        # A page further than any table holds is an empty page, not an integer the database
        # refuses (SQLite: OverflowError above 2**63).
        offset = min(int(raw), MAX_OFFSET) if raw.isascii() and raw.isdigit() else 0
        reports = service()
        back = f"/dashboards/{dashboard.name}?{_filter_query(params)}"
        try:
            total, records = await offload.run(reports.drill, dashboard, widget, params, principal,
                                                     limit=DRILL_PAGE, offset=offset)
        except (ReportRequestError, NotTranslatable) as exc:
            if request.query_params.get("format") == "json":
                return JSONResponse({"error": str(exc)}, status_code=400)
            # A person followed this link (an old bookmark, a chart changed since): a page that
            # says what to do and leads back, not a JSON error in the browser. The dashboard
            # itself says which filter, if one is the cause.
            return web.page(request, "dashboard_drill.html", status=400, dashboard=dashboard, widget=widget,
                            title=widget.text(locale), total=0, rows=[], form="", back=back,
                            error=_tr("drill_failed", locale, detail=str(exc)),
                            tr=lambda k, **p: _tr(k, locale, **p))
        if request.query_params.get("format") == "json":
            return JSONResponse({"total": total, "ids": [r["id"] for r in records]})
        dataset = reports.dataset(widget.dataset)
        forms = web.system.forms
        form = forms.form(dataset.form)
        title_field = form.spec.title_field
        point_text = _point_text(reports, widget, params, locale)
        status_label = status_labeller(web.system.bundle, form, locale)  # words, as the record list shows them
        rows = [{"id": r["id"], "query_no": r.get("query_no") or f"#{r['id']}",
                 "title": form.display(title_field, r.get(title_field), locale) if title_field else "",
                 "status": status_label(r.get("status")), "created": local_time(r.get("created_at"), web.bundle.meta.timezone)}
                for r in records]
        def at(start: int) -> str:
            return urlencode([*((k, v) for k, vs in params.items() for v in vs), ("offset", start)])

        next_query = at(offset + DRILL_PAGE) if offset + DRILL_PAGE < total else None
        # Back a page, too: paging through a bar of 600 records went only forward.
        prev_query = at(max(min(offset, total) - DRILL_PAGE, 0)) if offset > 0 and total else None
        shown = (offset + 1, offset + len(rows)) if rows and total > DRILL_PAGE else None
        return web.page(request, "dashboard_drill.html", dashboard=dashboard, widget=widget,
                        title=_tr("drill_title", locale, point=point_text), total=total, rows=rows,
                        applied=_applied_filters(_filter_controls(reports, dashboard, params, locale), locale),
                        form=dataset.form, back=back, next_query=next_query, prev_query=prev_query, shown=shown,
                        tr=lambda k, **p: _tr(k, locale, **p))

    return [
        Route("/dashboards", index, methods=["GET"]),
        Route("/dashboards/{name}", page, methods=["GET"]),
        Route("/dashboards/{name}/print", page, methods=["GET"]),
        Route("/dashboards/{name}/widgets/{widget}.{fmt}", data, methods=["GET"]),
        Route("/dashboards/{name}/widgets/{widget}/records", drill, methods=["GET"]),
    ]


def _filter_problem(dashboard: "DashboardSpec", params: Mapping[str, Sequence[str]], locale: str) -> str | None:
    """What is wrong with a period's typed dates, in the reader's language (None when nothing
    is): the report engine's own refusal is an English sentence naming the filter's code."""
    from datetime import date

    for name, spec in dashboard.filters.items():
        if spec.type != "period":
            continue
        days: dict[str, date] = {}
        for end in ("from", "to"):
            text = (params.get(f"{name}_{end}") or [""])[-1]
            if not text:
                continue
            try:
                days[end] = date.fromisoformat(text)
            except ValueError:
                return _tr("bad_date", locale, filter=spec.text(locale), text=text[:40])
        if "from" in days and "to" in days and days["from"] > days["to"]:
            return _tr("dates_reversed", locale, filter=spec.text(locale))
    return None


def _filter_controls(reports: "ReportService", dashboard: "DashboardSpec", params: Mapping[str, Sequence[str]],
                     locale: str) -> list[dict[str, Any]]:
    """What the filter bar shows: one control per dashboard filter, with its current value."""
    controls = []
    for name, spec in dashboard.filters.items():
        field = None
        for widget in dashboard.widgets.values():
            field = reports.dataset(widget.dataset).fields.get(spec.field) or field
        item: dict[str, Any] = {"name": name, "label": spec.text(locale), "type": spec.type,
                                "value": (params.get(name) or [""])[-1]}
        if spec.type == "period":
            item["presets"] = [(p, _tr(p, locale)) for p in PERIOD_PRESETS]
            item["from"] = (params.get(f"{name}_from") or [""])[-1]
            item["to"] = (params.get(f"{name}_to") or [""])[-1]
            if not item["value"] and not item["from"] and not item["to"] and spec.default:
                item["value"] = spec.default
        elif spec.type == "choice" and field is not None:
            if field.origin == "handled_by" or (field.origin == "task" and field.column == "department"):
                options = [(code, label_text(dep.label, locale, code))
                           for code, dep in reports.rt.bundle.meta.departments.items()]
            elif field.choices is not None:
                options = [(o.value, o.text(locale)) for depth, o, _ in field.choices.walk()
                           if field.level is None and not o.children or depth == field.level]
            else:
                options = []
            item["options"] = options
        controls.append(item)
    return controls


def _applied_filters(controls: list[dict[str, Any]], locale: str) -> list[tuple[str, str]]:
    """(filter label, value in words) of the dashboard filters that narrow the records, from
    the filter bar's controls: the drill-down page listed "3 records" of North China under a
    title naming only the bar clicked."""
    applied = []
    for item in controls:
        if item["type"] == "period":
            if item.get("from") or item.get("to"):
                text = f"{item.get('from') or '…'} – {item.get('to') or '…'}"
            elif item["value"] and item["value"] in PERIOD_PRESETS:
                text = _tr(item["value"], locale)
            else:
                continue
        elif not item["value"]:
            continue
        else:
            text = dict(item.get("options") or []).get(item["value"], item["value"])
        applied.append((item["label"], text))
    return applied


def _point_text(reports: "ReportService", widget: "WidgetSpec", params: Mapping[str, Sequence[str]], locale: str) -> str:
    dataset = reports.dataset(widget.dataset)
    parts = []
    for d in widget.dimensions:
        values = params.get(f"p.{d.key}")
        if not values:
            continue
        value = values[-1]
        spec = dataset.fields[d.field]
        if value == OTHERS:
            shown = label_text({"en": "Others", "zh-CN": "其他"}, locale)
        elif value and not d.grain:
            # As the chart named it: an option's, a department's or a flow step's words, not the
            # code behind it ("confirm" for the bar 客户确认).
            shown = reports.value_labels(dataset, spec, locale).get(value, value)
        else:
            shown = value or label_text({"en": "(none)", "zh-CN": "（空）"}, locale)
        parts.append(shown)
    return " · ".join(parts) or widget.text(locale)
