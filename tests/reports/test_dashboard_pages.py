"""The dashboard pages over HTTP: sign-in and roles, widget JSON, drill-down, exports, errors."""

from __future__ import annotations

import csv
import io
import re

import pytest
from openpyxl import load_workbook

from tests.reports.report_kit import build
from tests.web.staff_kit import client_for
from web.system import System


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> System:
    system, _ = build(tmp_path_factory.mktemp("pages"))
    system.forms.submit("ticket", {"customer": "=HYPERLINK(\"http://x\")", "region": "south"}, actor="cleo")
    return system


def test_anonymous_visitors_are_sent_to_sign_in(kit: System) -> None:
    response = client_for(kit).get("/dashboards/board")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    assert client_for(kit).get("/dashboards/board/widgets/total.json").status_code == 303


def test_the_page_lists_its_widgets_and_filters(kit: System) -> None:
    page = client_for(kit, "bea").get("/dashboards/board?lang=en")
    assert page.status_code == 200
    assert 'id="widget-by_region"' in page.text and 'name="period_from"' in page.text
    assert "<script>" not in page.text and "/static/vendor/vega.min.js" in page.text


def test_widget_json_carries_the_spec_the_rows_and_the_drill_points(kit: System) -> None:
    body = client_for(kit, "bea").get("/dashboards/board/widgets/by_region.json?lang=zh-CN").json()
    assert body["mode"] == "vega-lite" and body["spec"]["mark"]["type"] == "bar"
    assert body["rows"] == [["华东", 3], ["华北", 2], ["华南", 2]]
    assert body["points"] == [{"region": "east"}, {"region": "north"}, {"region": "south"}]


def test_the_printable_page_draws_every_widget_for_paper(kit: System) -> None:
    page = client_for(kit, "bea").get("/dashboards/board/print?region=east&lang=en")
    assert page.status_code == 200 and 'data-print="yes"' in page.text and 'data-query="region=east"' in page.text


def test_a_bad_filter_is_a_400_with_a_plain_message(kit: System) -> None:
    response = client_for(kit, "bea").get("/dashboards/board/widgets/total.json?region=' OR 1=1 --")
    assert response.status_code == 400
    assert "is not an option of the filter 'region'" in response.json()["error"]
    assert "SELECT" not in response.text


def test_a_drill_down_link_that_no_longer_fits_is_a_page_saying_what_to_do(kit: System) -> None:
    client = client_for(kit, "bea")
    page = client.get("/dashboards/board/widgets/by_region/records?region=east&p.colour=red&lang=en")
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert 'id="drill-error"' in page.text and "Go back to the dashboard and click the chart again." in page.text
    assert 'href="/dashboards/board?region=east&amp;lang=en" id="back-to-dashboard"' in page.text
    assert "请返回看板，重新点击图表。" in client.get(
        "/dashboards/board/widgets/by_region/records?p.colour=red&lang=zh-CN").text


def test_a_drill_down_asked_for_as_json_answers_its_error_as_json(kit: System) -> None:
    response = client_for(kit, "bea").get("/dashboards/board/widgets/by_region/records?p.colour=red&format=json")
    assert response.status_code == 400 and "colour" in response.json()["error"]


def test_a_drill_down_page_says_which_records_it_shows_and_leads_both_ways(
        kit: System, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("web.dashboards.DRILL_PAGE", 3)
    client = client_for(kit, "bea")
    total = client.get("/dashboards/board/widgets/total/records?format=json").json()["total"]
    assert total > 6
    page = client.get("/dashboards/board/widgets/total/records?region=&offset=3&lang=en").text
    assert f">4–6 of {total} records</p>" in page
    assert 'href="?region=&amp;offset=0&amp;lang=en" rel="prev" id="drill-prev"' in page
    assert 'href="?region=&amp;offset=6&amp;lang=en" rel="next" id="drill-next"' in page
    first = client.get("/dashboards/board/widgets/total/records?lang=zh-CN").text
    assert f">第 1–3 条，共 {total} 条记录</p>" in first and 'id="drill-prev"' not in first


def test_drill_down_lists_the_records_of_a_bar(kit: System) -> None:
    client = client_for(kit, "bea")
    page = client.get("/dashboards/board/widgets/by_region/records?p.region=north&lang=en")
    assert page.status_code == 200 and 'data-total="2"' in page.text
    assert client.get("/dashboards/board/widgets/by_region/records?p.region=north&format=json").json()["total"] == 2


def test_drill_down_names_each_records_status_in_the_readers_words(kit: System) -> None:
    page = client_for(kit, "bea").get("/dashboards/board/widgets/by_region/records?p.region=north&lang=zh-CN").text
    rows = page.split("<tbody>")[1].split("<tr>")[1:]
    statuses = [re.findall(r'<td data-label="[^"]*">([^<]*)</td>', row)[1] for row in rows]  # subject, status
    assert statuses == ["新建", "新建"]


@pytest.mark.parametrize("offset", ["1" + "0" * 30, "²", "-5"])
def test_a_drill_down_offset_out_of_range_or_not_a_number_is_a_page_not_an_error(kit: System, offset: str) -> None:
    body = client_for(kit, "bea").get(f"/dashboards/board/widgets/by_region/records?p.region=north&format=json"
                                      f"&offset={offset}").json()
    assert body["total"] == 2  # what the point counts, whichever page was asked for


def test_a_clerk_drills_only_into_what_they_may_see(kit: System) -> None:
    body = client_for(kit, "cleo").get("/dashboards/board/widgets/by_region/records?p.region=south&format=json").json()
    assert body["total"] == 1  # the one cleo submitted, not Cole's


def test_csv_export_neutralises_formulas(kit: System) -> None:
    response = client_for(kit, "bea").get("/dashboards/board/widgets/top_customer.csv?lang=en")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["customer", "Tickets"]
    assert rows[1] == ["Acme", "3"] and rows[2][1] == "4"  # top 1, then the others


def test_an_exported_formula_like_value_is_text(kit: System) -> None:
    response = client_for(kit, "bea").get("/dashboards/board/widgets/top_customer.csv?region=south")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")"  # quote-prefixed: a spreadsheet shows it as text


def test_xlsx_export_writes_values_and_no_formulas(kit: System) -> None:
    response = client_for(kit, "bea").get("/dashboards/board/widgets/table.xlsx?lang=en")
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[0][:2] == ["region", "Tickets"]
    assert values[-1][0] == "Total" and values[-1][1] == 7


def test_a_table_of_averages_has_no_totals_row(kit: System) -> None:
    """A sum of averages means nothing, so such a table ends with its last row, not with a
    'Total' row of blanks (the postal overdue list showed one)."""
    client = client_for(kit, "bea")
    assert client.get("/dashboards/board/widgets/averages.json").json()["totals"] is None
    sheet = load_workbook(io.BytesIO(client.get("/dashboards/board/widgets/averages.xlsx?lang=en").content)).active
    assert [row[0].value for row in sheet.iter_rows()][-1] != "Total"


def test_png_and_svg_exports_render_chinese_labels(kit: System) -> None:
    client = client_for(kit, "bea")
    png = client.get("/dashboards/board/widgets/by_region.png?lang=zh-CN")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    svg = client.get("/dashboards/board/widgets/by_region.svg?lang=zh-CN")
    assert svg.headers["content-type"].startswith("image/svg+xml") and "华东" in svg.text
    assert "<script" not in svg.text


def test_a_dashboard_closed_to_a_role_is_403(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.reports import report_kit

    board = report_kit.FILES["dashboards/board.yaml"].replace("label: Board\n", "label: Board\nroles: [boss]\n")
    original = report_kit.FILES["dashboards/board.yaml"]
    report_kit.FILES["dashboards/board.yaml"] = board
    try:
        system, _ = build(tmp_path)
    finally:
        report_kit.FILES["dashboards/board.yaml"] = original
    assert client_for(system, "cleo").get("/dashboards/board").status_code == 403
    assert client_for(system, "bea").get("/dashboards/board").status_code == 200
    assert 'id="dashboard-board"' not in client_for(system, "cleo").get("/dashboards").text
    assert 'id="dashboard-board"' in client_for(system, "bea").get("/dashboards").text


def test_reversed_dates_are_explained_in_the_readers_language_and_kept_to_correct(kit: System) -> None:
    page = client_for(kit, "bea").get("/dashboards/board?period_from=2026-12-31&period_to=2026-01-01&lang=zh-CN")
    assert page.status_code == 200
    assert '<p class="notice notice-error" role="alert">' in page.text
    assert "的开始日期晚于结束日期，下面显示的是未筛选的数据。" in page.text
    assert "first day is after" not in page.text
    assert 'value="2026-12-31"' in page.text and 'value="2026-01-01"' in page.text


def test_a_date_that_is_no_date_is_named_in_the_message(kit: System) -> None:
    page = client_for(kit, "bea").get("/dashboards/board?period_from=31.12.2026&lang=en")
    assert "“31.12.2026” is not a date. The figures below are not filtered." in page.text
