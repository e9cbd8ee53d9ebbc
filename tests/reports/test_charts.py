"""Every chart type's specification renders on the server (SVG/PNG) with Chinese labels, and
every built-in chart type is documented with an example."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.identity import Principal
from reports.charts import render_png, render_svg
from tests.reports.report_kit import build
from web.system import System, build_registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference" / "reports.md"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> System:
    system, _ = build(tmp_path_factory.mktemp("charts"))
    return system


def test_every_chart_type_is_used_by_the_kit_board(kit: System) -> None:
    used = {w.chart for w in kit.runtime.services["reports"].dashboard("board").widgets.values()}
    assert used == set(build_registry(plugins=False).chart_types.names())


@pytest.mark.parametrize("widget", ["total", "quality", "by_region", "by_month", "by_week", "by_group", "top_customer",
                                    "heat", "table", "radar", "tiles", "trend2"])
def test_each_chart_renders_to_svg_with_chinese_labels(kit: System, widget: str) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    payload = reports.widget_json(board, board.widgets[widget], {}, Principal.system(), "zh-CN")
    svg = render_svg(payload["spec"])
    assert svg.startswith("<svg") and "<script" not in svg
    if widget in ("by_region", "heat", "tiles", "radar", "table"):
        assert "华东" in svg


def test_a_png_is_a_png(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    payload = reports.widget_json(board, board.widgets["by_group"], {}, Principal.system(), "zh-CN")
    assert render_png(payload["spec"]).startswith(b"\x89PNG")


@pytest.mark.parametrize("widget", ["by_region", "by_month", "top_customer"])
def test_a_count_is_drawn_on_whole_number_ticks(kit: System, widget: str) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    spec = reports.widget_json(board, board.widgets[widget], {}, Principal.system(), "zh-CN")["spec"]
    axes = [e["axis"] for part in [spec, *spec.get("layer", [])] for e in part.get("encoding", {}).values()
            if isinstance(e, dict) and e.get("type") == "quantitative" and "axis" in e]
    assert axes and all(a["tickMinStep"] == 1 for a in axes)


def test_an_amount_with_cents_keeps_fractional_ticks(kit: System) -> None:
    from reports.charts import ChartData, _value_axis

    data = ChartData("Amount", [("d0", "Region", "text")], [("m0", "Amount", "number")],
                     [{"d0": "east", "m0": 12.5}, {"d0": "west", "m0": 3}], {}, None)
    assert "tickMinStep" not in _value_axis(data, "number")


def test_labels_two_options_share_are_told_apart(kit: System) -> None:
    from reports.service import _option_labels

    kit_choices = kit.runtime.services["reports"].dataset("tickets").fields["category"].choices
    labels = _option_labels(kit_choices, "en")
    assert labels["late"] == "Late" and labels["delivery"] == "Delivery"


def test_every_chart_type_has_a_row_in_the_reference() -> None:
    text = DOCS.read_text("utf-8")
    missing = [name for name in build_registry(plugins=False).chart_types.names() if f"| `{name}` |" not in text]
    assert missing == []


def test_a_backlog_of_up_to_sixteen_steps_gives_each_step_its_own_colour() -> None:
    """The postal flow has more than ten staff steps: 'Accept' and 'Reply to the customer'
    shared a blue."""
    from reports.charts import PALETTE

    assert len(PALETTE) >= 16 and len({colour.lower() for colour in PALETTE}) == len(PALETTE)


def test_a_region_the_grid_does_not_place_goes_below_the_map_not_onto_a_placed_tile() -> None:
    from reports.charts import ChartData, RegionGrid

    values = [{"d0": "华北", "_raw0": "north", "m0": 3}, {"d0": "西北", "_raw0": "northwest", "m0": 6},
              {"d0": "(空)", "_raw0": None, "m0": 4}]
    grid = {"north": [0, 1], "northwest": [0, 2]}  # the third tile's place in option order
    data = ChartData("Regions", [("d0", "Region", "text")], [("m0", "Complaints", "number")], values, {"grid": grid})
    tiles = {(r["row"], r["col"]): r["d0"] for r in RegionGrid().spec(data)["data"]["values"]}
    assert tiles == {(0, 1): "华北", (0, 2): "西北", (1, 0): "(空)"}
