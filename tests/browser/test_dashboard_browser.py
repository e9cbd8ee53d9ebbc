"""Dashboards in a real browser: charts draw from the vendored Vega files with no network and
no CSP violation, a click on a bar opens exactly the records it counts; screenshots of the
postal dashboards for docs/ are taken on demo data run through the real flows."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.site import PUBLIC_URL_ENV
from engine.storage.db import transaction
from tests.browser.conftest import POSTAL, SCREENSHOTS, LiveServer
from tests.browser.test_staff_browser import PASSWORD, serve, sign_in
from tests.engine.bundle_kit import write_bundle
from tests.reports.report_kit import FILES, ROWS
from web.auth import set_password


@pytest.fixture
def kit_server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from serve_kit(tmp_path)


@pytest.fixture
def kit_under_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """The same, served under /docket of a shared host (web/prefix.py)."""
    monkeypatch.setenv(PUBLIC_URL_ENV, "http://127.0.0.1/docket")
    for server in serve_kit(tmp_path):
        yield LiveServer(server.system, server.clock, server.url + "/docket")


def serve_kit(tmp_path: Path) -> Iterator[LiveServer]:
    root = write_bundle(tmp_path / "bundle", FILES)
    for server in serve(root, tmp_path / "docket.db"):
        for row in ROWS:
            server.clock.set(row["at"])
            data = {k: row[k] for k in ("customer", "region", "category", "amount", "satisfaction") if row[k] is not None}
            server.system.forms.submit("ticket", data, actor="intake")
        # Markup typed by a customer must stay text in labels and tooltips (RELIABILITY 50).
        server.system.forms.submit("ticket", {"customer": "<img src=x onerror=alert(1)>"}, actor="intake")
        with transaction(server.system.db) as conn:
            set_password(conn, "bea", PASSWORD)
        yield server


def watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text)
            if msg.type == "error" and "404" not in msg.text else None)
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("dialog", lambda dialog: (problems.append("dialog " + dialog.message), dialog.dismiss()))
    page.on("request", lambda req: problems.append("external " + req.url)
            if not req.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    return problems


def wait_ready(page: Any, count: int) -> None:
    """Until every widget has drawn (polled from Python: the CSP forbids evaluated strings)."""
    for _ in range(300):
        if page.locator(".widget-body[data-ready]").count() >= count:
            return
        page.wait_for_timeout(100)
    raise AssertionError("the widgets did not all draw")


def test_a_click_on_a_bar_opens_the_records_it_counts(browser: Any, kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=en")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready] svg .mark-rect path", timeout=20000)
    page.wait_for_selector("#widget-total .kpi-value")
    assert page.inner_text("#widget-total .kpi-value") == "7"
    bars = page.locator("#widget-by_region svg .mark-rect path")
    assert bars.count() == 4  # east 3, north 2, south 1, none 1
    page.wait_for_selector("#widget-top_customer .widget-body[data-ready]")
    page.locator("#widget-top_customer svg .mark-rect path").first.hover()  # a tooltip with the markup
    page.wait_for_timeout(300)
    with page.expect_navigation():
        bars.first.click()
    assert "p.region=east" in page.url
    assert page.get_attribute("#drill-count", "data-total") == "3"
    assert page.locator("table.drill tbody tr").count() == 3
    assert problems == [], "\n".join(problems)


def test_going_back_from_a_filtered_dashboard_shows_the_filters_of_the_charts_shown(
        browser: Any, kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=en")
    page.select_option("#f-region", "east")
    with page.expect_navigation():
        page.click("#apply-filters")
    page.wait_for_selector("#widget-total .kpi-value")
    assert page.inner_text("#widget-total .kpi-value") == "3"
    page.go_back()
    page.wait_for_selector("#widget-total .kpi-value")
    # Every ticket again, so the region says "All", not the choice made before leaving.
    assert page.inner_text("#widget-total .kpi-value") == "7"
    assert page.input_value("#f-region") == ""


def test_the_keyboard_opens_the_records_behind_a_bar(browser: Any, kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=en")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready] svg", timeout=20000)
    keys = page.locator("#widget-by_region .drill-keys a")
    assert keys.all_inner_texts()[:2] == ["East: 3", "North: 2"]
    assert keys.first.bounding_box()["x"] < 0  # out of sight for the mouse
    page.locator("#apply-filters").focus()
    for _ in range(40):  # Tab along the page until the chart's first point
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('#widget-by_region .drill-keys') !== null"):
            break
    assert keys.first.bounding_box()["x"] >= 0  # shown where the keyboard is
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "p.region=east" in page.url and page.get_attribute("#drill-count", "data-total") == "3"


def test_a_chinese_dashboards_charts_are_named_in_chinese_for_a_screen_reader(browser: Any,
                                                                           kit_server: LiveServer) -> None:
    # Vega described each chart in English ("X-axis titled '区域' for a discrete scale with 4
    # values", "Vega visualization") on a Chinese page: the widget's title names it, and its
    # points are read from the list of links after it.
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea", lang="zh-CN")
    page.goto(f"{kit_server.url}/dashboards/board?lang=zh-CN")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready] svg", timeout=20000)
    svg = page.locator("#widget-by_region svg").first
    title = page.inner_text("#widget-by_region h2")
    assert svg.get_attribute("aria-label") == title
    described = page.evaluate("""() => Array.from(document.querySelectorAll('#widget-by_region svg, #widget-by_region svg *'))
        .flatMap(e => ['aria-label', 'aria-roledescription'].map(a => e.getAttribute(a)).filter(Boolean))""")
    assert described == [title]
    page.close()


def test_on_a_phone_the_records_behind_a_bar_are_cards_with_nothing_off_screen(browser: Any,
                                                                               kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board/widgets/by_region/records?p.region=east&lang=en")
    assert page.get_attribute("#drill-count", "data-total") == "3"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    for cell in page.locator("table.drill tbody tr").first.locator("td").all():
        box = cell.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 390
    status = page.locator("table.drill tbody tr").first.locator('td[data-label="Status"]')
    assert status.evaluate("td => getComputedStyle(td, '::before').content") == '"Status "'


def test_a_chart_with_nothing_to_show_says_so(browser: Any, kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?period_from=2001-01-01&period_to=2001-01-31&lang=zh-CN")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready]", timeout=20000)
    page.wait_for_selector("#widget-table .widget-body[data-ready]")
    for widget in ("by_region", "table"):
        assert page.inner_text(f"#widget-{widget} .widget-body") == "当前筛选条件下没有数据。"
    assert page.inner_text("#widget-total .kpi-value") == "0"
    page.close()


def test_a_widget_whose_data_fails_says_so_in_words_and_the_others_draw(browser: Any, kit_server: LiveServer,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # The server's 500 was an HTML page: the widget showed "SyntaxError: Unexpected token '<'".
    reports = kit_server.system.runtime.services["reports"]
    real = reports.widget_json

    def failing(dashboard: Any, widget: Any, *args: Any) -> Any:
        if widget.name == "by_region":
            raise RuntimeError("a chart plugin's bug")
        return real(dashboard, widget, *args)

    monkeypatch.setattr(reports, "widget_json", failing)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=zh-CN")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready]", timeout=20000)
    shown = page.inner_text("#widget-by_region .widget-body")
    assert shown.startswith("系统内部出错（参考编号 ") and "Error" not in shown
    page.wait_for_selector("#widget-total .kpi-value")
    assert page.inner_text("#widget-total .kpi-value") == "7"
    page.close()


def test_charts_draw_and_open_their_records_under_a_path_prefix(browser: Any, kit_under_prefix: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems = watch(page)
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    sign_in(page, kit_under_prefix, "bea")
    page.goto(f"{kit_under_prefix.url}/dashboards/board?lang=en")
    page.wait_for_selector("#widget-by_region .widget-body[data-ready] svg .mark-rect path", timeout=20000)
    assert page.inner_text("#widget-total .kpi-value") == "7"
    with page.expect_navigation():
        page.locator("#widget-by_region svg .mark-rect path").first.click()
    assert page.url.startswith(f"{kit_under_prefix.url}/dashboards/board/widgets/by_region/records?")
    assert page.locator("table.drill tbody tr").count() == 3
    # The widgets' data and the drill-down were asked for under the prefix, not found by chance
    # through a redirect (the server also answers a proxy that strips the prefix).
    outside = [url for url in asked if url.startswith("http://127.0.0.1") and not url.startswith(kit_under_prefix.url + "/")]
    assert outside == [] and any("/widgets/by_region.json?" in url for url in asked)
    assert problems == [], "\n".join(problems)


def test_a_cards_export_menu_opens_on_a_click_with_the_formats_that_fit_it(browser: Any, kit_server: LiveServer) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=en")
    chart = page.locator("#widget-by_region .widget-export")
    assert not chart.locator("a").first.is_visible()
    chart.locator("summary").click()
    assert chart.locator("a").all_inner_texts() == ["CSV", "XLSX", "PNG", "SVG"] and chart.locator("a").first.is_visible()
    number = page.locator("#widget-total .widget-export")
    number.locator("summary").click()
    assert number.locator("a").all_inner_texts() == ["CSV", "XLSX"]  # a single number is no picture
    with page.expect_download() as download:
        number.locator("a", has_text="CSV").click()
    assert download.value.suggested_filename.endswith(".csv")


OVERFLOW = """() => Array.from(document.querySelectorAll('.widget')).flatMap(w => {
  const edge = w.getBoundingClientRect().right;
  return Array.from(w.querySelectorAll('.chart svg'))
    .filter(svg => svg.getBoundingClientRect().right > edge + 1).map(() => w.id);
})"""


@pytest.mark.parametrize("width", [1280, 390])
def test_every_chart_fits_its_widget_legend_included(browser: Any, kit_server: LiveServer, width: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900})
    sign_in(page, kit_server, "bea")
    page.goto(f"{kit_server.url}/dashboards/board?lang=en")
    wait_ready(page, page.locator(".widget").count())
    assert page.evaluate(OVERFLOW) == []


LEGEND_LABELS_CUT = """svg => Array.from(svg.querySelectorAll('.role-legend-label text'))
  .filter(t => t.getBoundingClientRect().right > svg.getBoundingClientRect().right + 1)
  .map(t => t.textContent)"""


@pytest.mark.parametrize("width", [390, 1280])
def test_the_department_radar_fits_its_card_with_whole_department_names(browser: Any, tmp_path: Path,
                                                                        width: int) -> None:
    """部门效率雷达图 on the postal operations dashboard: no sideways scrolling, and every
    department's name in the legend is drawn inside the chart (Customer service centre was cut
    mid-word at the drawing's edge on a desktop)."""
    from reports.demo import DemoRunner

    for server in serve(POSTAL, tmp_path / "postal.db"):
        start = datetime(2026, 9, 1, 2, tzinfo=timezone.utc)
        server.clock.set(start)
        DemoRunner(server.system.runtime, seed=3).run(25, start=start, days=80)
        with transaction(server.system.db) as conn:
            set_password(conn, "manager", PASSWORD)
        lang = "zh-CN" if width < 480 else "en"
        page = browser.new_page(viewport={"width": width, "height": 844})
        sign_in(page, server, "manager", lang=lang)
        page.goto(f"{server.url}/dashboards/operations?lang={lang}")
        wait_ready(page, page.locator(".widget").count())
        radar = page.locator("#widget-efficiency")
        assert radar.locator("svg .mark-symbol path").count() > 0  # it drew the departments
        body = radar.locator(".widget-body")
        assert body.evaluate("b => b.scrollWidth <= b.clientWidth")
        assert page.evaluate(OVERFLOW) == []
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert radar.locator("svg").first.evaluate(LEGEND_LABELS_CUT) == []
        if width < 480:
            radar.screenshot(path=str(SCREENSHOTS / "dashboard-radar-phone.png"))
        page.close()


@pytest.mark.timeout(900)
def test_screenshots_of_the_postal_dashboards(browser: Any, tmp_path: Path) -> None:
    from reports.demo import DemoRunner

    for server in serve(POSTAL, tmp_path / "postal.db"):
        start = datetime(2024, 11, 1, 16, tzinfo=timezone.utc)
        server.clock.set(start)
        DemoRunner(server.system.runtime, seed=3).run(70, start=start, days=730)
        with transaction(server.system.db) as conn:
            set_password(conn, "manager", PASSWORD)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        problems = watch(page)
        sign_in(page, server, "manager", lang="zh-CN")
        for name in ("overview", "operations"):
            page.goto(f"{server.url}/dashboards/{name}?lang=zh-CN")
            count = page.locator(".widget").count()
            wait_ready(page, count)
            page.screenshot(path=str(SCREENSHOTS / f"dashboard-{name}.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        sign_in(phone, server, "manager", lang="zh-CN")
        phone.goto(f"{server.url}/dashboards/overview?lang=zh-CN")
        wait_ready(phone, phone.locator(".widget").count())
        phone.screenshot(path=str(SCREENSHOTS / "dashboard-overview-phone.png"))
        assert problems == [], "\n".join(problems)
