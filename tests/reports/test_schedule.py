"""Scheduled reports: a timer per schedule, fired into one outbox message with the charts."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from engine.storage.db import read_transaction, transaction
from engine.storage.tables import outbox
from reports.schedule import TIMER_KIND, next_run
from reports.spec import ScheduleSpec
from tests.reports import report_kit
from tests.reports.report_kit import FILES, build

UTC = timezone.utc
SCHEDULE = """
schedules:
  weekly:
    every: weekly
    weekday: monday
    at: "08:30"
    channel: log
    to: [boss@example.com]
    widgets: [total, by_region]
    format: png
    locale: zh-CN
"""


def test_the_next_run_is_at_local_time_on_the_right_day() -> None:
    weekly = ScheduleSpec("w", "weekly", "08:30", 0, "log", ("x",), ("total",), "png", "en")
    # Wednesday 2025-04-30 12:00 UTC -> Monday 2025-05-05 08:30 Shanghai = 00:30 UTC
    assert next_run(weekly, datetime(2025, 4, 30, 12, tzinfo=UTC), "Asia/Shanghai") == datetime(2025, 5, 5, 0, 30, tzinfo=UTC)
    daily = ScheduleSpec("d", "daily", "07:00", 0, "log", ("x",), ("total",), "table", "en")
    assert next_run(daily, datetime(2025, 4, 30, 22, 59, tzinfo=UTC), "Asia/Shanghai") == datetime(2025, 4, 30, 23, 0, tzinfo=UTC)
    monthly = ScheduleSpec("m", "monthly", "09:00", 0, "log", ("x",), ("total",), "svg", "en")
    assert next_run(monthly, datetime(2025, 4, 30, 12, tzinfo=UTC), "Asia/Shanghai") == datetime(2025, 5, 1, 1, 0, tzinfo=UTC)


def test_a_weekly_report_is_armed_fired_and_queued_with_its_charts(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(report_kit.FILES, "dashboards/board.yaml", FILES["dashboards/board.yaml"] + SCHEDULE)
    system, _ = build(tmp_path)
    timers = system.runtime.services["timers"]
    with read_transaction(system.db) as conn:
        armed = [t for t in timers.pending(conn) if t.kind == TIMER_KIND]
    assert [(t.subject, t.key) for t in armed] == [("dashboard:board", "weekly")]
    assert armed[0].due_at == datetime(2025, 3, 3, 0, 30, tzinfo=UTC)  # Monday 3 March, the first after boot
    system.runtime.clock.set(datetime(2025, 5, 1, tzinfo=UTC))
    assert timers.tick() >= 1
    with read_transaction(system.db) as conn:
        messages = conn.execute(sa.select(outbox).where(outbox.c.channel == "log")).all()
        rearmed = [t for t in timers.pending(conn) if t.kind == TIMER_KIND]
    report = [m for m in messages if (m.payload or {}).get("data", {}).get("dashboard") == "board"]
    assert len(report) == 1
    body = report[0].body
    assert "华东 | 3" in body and "华北 | 2" in body  # labels in the schedule's locale
    attachments = report[0].payload["data"]["attachments"]
    assert [a["name"] for a in attachments] == ["board-total.png", "board-by_region.png"]
    assert base64.b64decode(attachments[1]["base64"]).startswith(b"\x89PNG")
    assert rearmed and rearmed[0].due_at > datetime(2025, 5, 1, tzinfo=UTC)


def fired_report(tmp_path: Path, monkeypatch, *, draw: bool = True) -> dict:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(report_kit.FILES, "dashboards/board.yaml", FILES["dashboards/board.yaml"] + SCHEDULE)
    system, _ = build(tmp_path)
    system.runtime.services["reports"].scheduler.draw_charts = draw
    system.runtime.clock.set(datetime(2025, 3, 3, 1, tzinfo=UTC))
    system.runtime.services["timers"].tick()
    with read_transaction(system.db) as conn:
        (payload,) = [m.payload for m in conn.execute(sa.select(outbox).where(outbox.c.channel == "log"))
                      if (m.payload or {}).get("data", {}).get("dashboard") == "board"]
    return payload["data"]


def test_a_report_links_to_its_dashboard_at_the_public_address(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DOCKET_PUBLIC_URL", "https://ts.example-post.cn")
    assert fired_report(tmp_path, monkeypatch)["link"] == "https://ts.example-post.cn/dashboards/board"


def test_a_report_has_no_link_without_a_public_address(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DOCKET_PUBLIC_URL", raising=False)
    assert "link" not in fired_report(tmp_path, monkeypatch)


def test_a_simulated_report_is_queued_without_drawing_its_charts(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    data = fired_report(tmp_path, monkeypatch, draw=False)
    assert data["schedule"] == "weekly" and data["attachments"] == []


def test_a_reports_kpi_reads_as_its_label_and_its_number(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(report_kit.FILES, "dashboards/board.yaml", FILES["dashboards/board.yaml"] + SCHEDULE)
    system, _ = build(tmp_path)
    system.runtime.clock.set(datetime(2025, 3, 3, 1, tzinfo=UTC))
    system.runtime.services["timers"].tick()
    with read_transaction(system.db) as conn:
        (body,) = [m.body for m in conn.execute(sa.select(outbox).where(outbox.c.channel == "log"))
                   if (m.payload or {}).get("data", {}).get("dashboard") == "board"]
    lines = body.splitlines()
    kpi = lines.index("## total")
    assert lines[kpi + 1] == "工单数：6"  # not the label as a column heading, the number on a line below


def sent_on(tmp_path: Path, monkeypatch, schedule: str, due: datetime, *, now: datetime | None = None):  # type: ignore[no-untyped-def]
    """The (subject, body) of the one run of `schedule` due at `due`, sent with the clock at `now`."""
    monkeypatch.setitem(report_kit.FILES, "dashboards/board.yaml", FILES["dashboards/board.yaml"] + schedule)
    system, _ = build(tmp_path)
    system.runtime.clock.set(now or due)
    reports = system.runtime.services["reports"]
    reports.scheduler.draw_charts = False
    dashboard = reports.dashboards["board"]
    with transaction(system.db) as conn:
        reports.scheduler.send(conn, dashboard, dashboard.schedules["weekly"], due)
    with read_transaction(system.db) as conn:
        (message,) = [m for m in conn.execute(sa.select(outbox).where(outbox.c.channel == "log"))
                      if (m.payload or {}).get("data", {}).get("dashboard") == "board"]
    return message.subject, message.body


LAST_WEEK = SCHEDULE.replace("    locale: zh-CN\n", "    locale: zh-CN\n    period: last_week\n")
MONDAY_17 = datetime(2025, 3, 17, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai


def test_a_weekly_report_over_last_week_counts_that_week_and_names_it(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    subject, body = sent_on(tmp_path, monkeypatch, LAST_WEEK, MONDAY_17)
    assert subject == "Board 2025-03-10 – 2025-03-16"
    assert body.splitlines()[1] == "统计期间：2025-03-10 – 2025-03-16"
    assert "工单数：1" in body  # Bolt's ticket of 10 March, the only one that week


def test_a_run_delayed_past_its_day_reports_the_week_it_was_due_for(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The server was down over Monday: the run fires on Wednesday, still for the week of 10 March.
    subject, _ = sent_on(tmp_path, monkeypatch, LAST_WEEK, MONDAY_17, now=datetime(2025, 3, 19, 3, tzinfo=UTC))
    assert subject == "Board 2025-03-10 – 2025-03-16"


def test_a_report_without_a_period_says_it_counts_every_record_up_to_its_time(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    subject, body = sent_on(tmp_path, monkeypatch, SCHEDULE, MONDAY_17)
    assert subject == "Board 2025-03-17"
    assert body.splitlines()[1] == "全部记录，截至 2025-03-17 08:30"
