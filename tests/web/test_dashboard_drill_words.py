"""The records behind a point of a postal dashboard chart are titled with the chart's own words."""

from __future__ import annotations

from tests.flows.test_postal_flow import DELAY, accept, system  # noqa: F401 (fixture)
from tests.web.staff_kit import client_for
from web.system import System


def drill_title(system: System, path: str) -> str:
    page = client_for(system, "admin").get(path)
    assert page.status_code == 200
    return page.text.split("<h1>", 1)[1].split("</h1>", 1)[0]


def test_the_records_behind_a_steps_bar_are_titled_with_the_steps_name_not_its_code(system: System) -> None:
    accept(system, DELAY)
    path = "/dashboards/operations/widgets/time_per_step/records?p.node=accept"
    assert drill_title(system, path + "&lang=zh-CN") == "“受理”对应的记录"
    assert drill_title(system, path + "&lang=en") == "Records behind “Accept”"


def test_the_records_behind_a_departments_bar_are_titled_with_the_departments_name(system: System) -> None:
    accept(system, DELAY)
    path = "/dashboards/operations/widgets/backlog_by_department/records?p.department=marketing&lang=en"
    assert drill_title(system, path).startswith("Records behind “Marketing")


def drill_filters(system: System, path: str) -> str:
    """The drill-down page's line of dashboard filters, tags stripped ("" when it has none)."""
    import re

    found = re.search(r'<p class="muted" id="drill-filters">(.*?)</p>', client_for(system, "admin").get(path).text)
    return re.sub(r"<[^>]+>", "", found.group(1)) if found else ""


def test_the_records_behind_a_point_name_the_dashboard_filters_that_narrowed_them(system: System) -> None:
    accept(system, DELAY)
    path = "/dashboards/overview/widgets/top_types/records?region=north&period=last_30_days&p.category=delivery_late"
    assert drill_filters(system, path + "&lang=zh-CN") == "看板筛选条件：受理日期 最近30天 · 区域 华北"


def test_the_records_behind_a_point_of_an_unfiltered_dashboard_name_no_filters(system: System) -> None:
    accept(system, DELAY)
    assert drill_filters(system, "/dashboards/overview/widgets/top_types/records?p.category=delivery_late&lang=en") == ""


def test_a_dashboard_the_reader_may_not_open_says_so_in_their_language(system: System) -> None:
    page = client_for(system, "agent").get("/dashboards/overview?lang=zh-CN")
    assert page.status_code == 403 and "您的角色无权查看此看板。" in page.text
