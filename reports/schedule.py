"""Scheduled reports: a dashboard's widgets sent daily, weekly or monthly through the outbox.

Each `schedules:` entry of a dashboard is a durable timer of kind `report.schedule`
(engine/timers.py), armed at boot for its next run in the bundle's time zone. When it fires, the
widgets are computed in the timer's transaction for the system principal, rendered (PNG or SVG
from the same Vega specification as the page, or a text table), queued as one outbox message
(sent after commit, retried by the relay) and the next run is armed. A message key per run
makes a retried timer queue nothing twice.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from engine.identity import Principal
from engine.runtime import Runtime
from engine.site import configured_public_url, dashboard_url
from engine.storage.db import transaction
from engine.types import translate
from reports.charts import render_png, render_svg
from reports.query import run_widget
from reports.spec import DashboardSpec, ScheduleSpec

TIMER_KIND = "report.schedule"


def next_run(schedule: ScheduleSpec, after: datetime, zone: str) -> datetime:
    """The first run strictly after `after` (UTC), at `at` local time on the schedule's days."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    hour, minute = (int(p) for p in schedule.at.split(":"))
    day = local.date()
    for _ in range(400):
        candidate = datetime.combine(day, time(hour, minute), tzinfo=tz)
        fits = (schedule.every == "daily" or (schedule.every == "weekly" and day.weekday() == schedule.weekday)
                or (schedule.every == "monthly" and day.day == 1))
        if fits and candidate > local:
            return candidate.astimezone(ZoneInfo("UTC"))
        day += timedelta(days=1)
    raise ValueError(f"no next run for schedule {schedule.name}")


class ReportScheduler:
    """Arms and fires the bundle's report schedules (when timers and the outbox are running)."""

    def __init__(self, runtime: Runtime, reports: Any):
        self.rt = runtime
        self.reports = reports
        self.draw_charts = True
        """False in a simulation: its messages are counted, never sent, so no chart is drawn."""
        timers = runtime.services.get("timers")
        if timers is None or "outbox" not in runtime.services:
            return
        timers.on(TIMER_KIND, self.fire)
        schedules = [(d, s) for d in runtime.bundle.all("dashboard").values() for s in d.schedules.values()]
        if schedules:
            with transaction(runtime.db) as conn:
                for dashboard, schedule in schedules:
                    self.arm(conn, dashboard, schedule, runtime.clock.now())

    def arm(self, conn: Connection, dashboard: DashboardSpec, schedule: ScheduleSpec, after: datetime) -> int:
        due = next_run(schedule, after, self.rt.bundle.meta.timezone)
        return self.rt.services["timers"].schedule(
            conn, kind=TIMER_KIND, subject=f"dashboard:{dashboard.name}", key=schedule.name, due_at=due,
            payload={"dashboard": dashboard.name, "schedule": schedule.name})

    def fire(self, conn: Connection, timer: Any) -> None:
        dashboards = self.rt.bundle.all("dashboard")
        dashboard = dashboards.get(timer.payload.get("dashboard", ""))
        schedule = dashboard.schedules.get(timer.payload.get("schedule", "")) if dashboard else None
        if dashboard is None or schedule is None:
            return  # removed from the bundle since it was armed: nothing to send, nothing to re-arm
        self.send(conn, dashboard, schedule, timer.due_at)
        self.arm(conn, dashboard, schedule, max(timer.due_at, self.rt.clock.now()))

    def send(self, conn: Connection, dashboard: DashboardSpec, schedule: ScheduleSpec, due: datetime) -> int:
        """Compute, render and queue one run of a schedule in `conn`'s transaction."""
        locale = schedule.locale
        local_due = due.astimezone(ZoneInfo(self.rt.bundle.meta.timezone))
        params, period = self._period(dashboard, schedule, local_due.date())
        lines = [dashboard.text(locale), _period_line(period, local_due, locale), ""]
        attachments = []
        for name in schedule.widgets:
            widget = dashboard.widgets[name]
            dataset = self.reports.dataset(widget.dataset)
            filters = self.reports.filters_from(dashboard, params, dataset)
            result = run_widget(conn, self.rt, dataset, widget, filters, Principal.system())
            payload = self.reports.payload(widget, result, locale)
            lines.extend(_widget_lines(payload, locale))
            lines.append("")
            if schedule.format in ("png", "svg") and self.draw_charts:
                image = (render_png(payload["spec"]) if schedule.format == "png"
                         else render_svg(payload["spec"]).encode("utf-8"))
                attachments.append({"name": f"{dashboard.name}-{name}.{schedule.format}",
                                    "content_type": "image/png" if schedule.format == "png" else "image/svg+xml",
                                    "base64": base64.b64encode(image).decode("ascii")})
        subject = f"{dashboard.text(locale)} {_days_text(period) if period else local_due.strftime('%Y-%m-%d')}"
        data: dict[str, Any] = {"attachments": attachments, "dashboard": dashboard.name, "schedule": schedule.name}
        base = configured_public_url()
        if base:  # the whole dashboard, with its filters and drill-down, one tap away
            data["link"] = dashboard_url(base, dashboard.name)
        return self.rt.services["outbox"].enqueue(
            conn, channel=schedule.channel, to=list(schedule.to), subject=subject, body="\n".join(lines),
            data=data,
            key=f"report:{dashboard.name}:{schedule.name}:{due.isoformat()}")

    def _period(self, dashboard: DashboardSpec, schedule: ScheduleSpec,
                day: date) -> tuple[dict[str, list[str]], tuple[date, date] | None]:
        """The filter parameters of one run and the days it covers: the schedule's `period` (or
        the date filter's default) counted from the day the run was due, not the day it ran, so
        a run delayed past midnight still reports the week it was for."""
        for name, spec in dashboard.filters.items():
            preset = (schedule.period or spec.default) if spec.type == "period" else None
            if preset:
                first, last = self.reports.preset(preset, today=day)
                return {f"{name}_from": [first.isoformat()], f"{name}_to": [last.isoformat()]}, (first, last)
        return {}, None


_TEXT = {
    "period": {"en": "Period: {days}", "zh-CN": "统计期间：{days}"},
    "up_to": {"en": "All records up to {at}", "zh-CN": "全部记录，截至 {at}"},
}


def _days_text(period: tuple[date, date]) -> str:
    first, last = period
    return first.isoformat() if first == last else f"{first.isoformat()} – {last.isoformat()}"


def _period_line(period: tuple[date, date] | None, due: datetime, locale: str) -> str:
    """What the figures cover, said under the title: a reader of a forwarded report cannot ask."""
    if period is None:
        return translate(_TEXT, "up_to", locale, at=due.strftime("%Y-%m-%d %H:%M"))
    return translate(_TEXT, "period", locale, days=_days_text(period))


def _widget_lines(payload: dict[str, Any], locale: str) -> list[str]:
    """A widget as lines of the message: a KPI as "label: value" ("投诉量：41", not a heading, the
    label again as a column and the number under it), anything else as a table of 20 rows at most."""
    columns, rows = payload["columns"], payload["rows"]
    if payload.get("chart") == "kpi" and len(rows) == 1:
        colon = "：" if locale.startswith("zh") else ": "
        values = [(c["title"], "" if v is None else _cell(v, c.get("format"))) for v, c in zip(rows[0], columns)]
        if len(values) == 1 and values[0][0] == payload["title"]:
            return [f"## {payload['title']}{colon}{values[0][1]}"]
        return [f"## {payload['title']}", *(f"{title}{colon}{value}" for title, value in values)]
    lines = [f"## {payload['title']}", " | ".join(c["title"] for c in columns)]
    lines += [" | ".join("" if v is None else _cell(v, c.get("format")) for v, c in zip(row, columns)) for row in rows[:20]]
    return lines


def _cell(value: Any, fmt: str | None) -> str:
    if fmt == "percent" and isinstance(value, (int, float)):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


__all__ = ["ReportScheduler", "TIMER_KIND", "next_run"]
