"""Drill-down: the records behind each bar, slice, cell or KPI are exactly as many as the chart says."""

from __future__ import annotations

import pytest

from engine.identity import Principal
from reports.query import OTHERS
from tests.reports.report_kit import build, params
from web.system import System


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> System:
    system, _ = build(tmp_path_factory.mktemp("drill"))
    return system


@pytest.mark.parametrize("widget", ["by_region", "by_month", "by_week", "by_day", "by_group", "top_customer",
                                    "heat", "total", "big"])
@pytest.mark.parametrize("filters", [{}, {"region": "east"}, {"period_from": "2025-03-01", "period_to": "2025-03-31"}])
def test_every_point_drills_to_as_many_records_as_it_counts(kit: System, widget: str, filters: dict[str, str]) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    spec = board.widgets[widget]
    who = Principal.system()
    result = reports.run(board, spec, params(**filters), who)
    measure = spec.measures[0]
    for row in result.rows:
        point = {f"p.{d.key}": "" if row[d.key] is None else str(row[d.key]) for d in spec.dimensions}
        total, records = reports.drill(board, spec, params(**filters, **point), who)
        assert total == row[measure], (widget, row)
        assert len(records) == row[measure]


def test_the_others_slice_drills_to_everything_outside_the_top(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    total, records = reports.drill(board, board.widgets["top_customer"], params(**{"p.customer": OTHERS}), Principal.system())
    assert total == 3 and {r["customer"] for r in records} == {"Bolt", "Cole"}
