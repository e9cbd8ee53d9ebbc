"""Each measure and dimension against a hand-computed answer (tests/reports/report_kit.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.query import OTHERS
from tests.reports.report_kit import build, run
from web.system import System


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> System:
    system, _ = build(tmp_path_factory.mktemp("measures"))
    return system


def one(kit: System, measure: str) -> float:
    reports = kit.runtime.services["reports"]
    from dataclasses import replace

    board = reports.dashboard("board")
    widget = replace(board.widgets["total"], measures=(measure,), compare=None)
    from engine.identity import Principal

    from reports.query import Filters, run_widget
    from engine.storage.db import read_transaction

    with read_transaction(kit.db) as conn:
        rows = run_widget(conn, kit.runtime, reports.dataset("tickets"), widget, Filters(), Principal.system()).rows
    return rows[0][measure]


@pytest.mark.parametrize("measure, expected", [
    ("tickets", 6), ("customers", 3), ("amount", 2000), ("avg_amount", 400), ("min_amount", 100),
    ("max_amount", 1000), ("satisfaction", 3.6), ("resolution", 54), ("median_resolution", 50),
    ("p90_resolution", 92), ("first_response", 3), ("closed_72h", 0.6), ("on_time", 0.4),
    ("repeat_rate", 2 / 6), ("open", 1), ("big", 3),
])
def test_each_measure_matches_the_hand_computed_answer(kit: System, measure: str, expected: float) -> None:
    assert one(kit, measure) == pytest.approx(expected)


def test_count_by_a_choice_field(kit: System) -> None:
    assert [(r["region"], r["tickets"]) for r in run(kit, "by_region")] == [("east", 3), ("north", 2), ("south", 1)]


def test_a_count_where_measure_keeps_groups_with_none(kit: System) -> None:
    assert {r["region"]: r["big"] for r in run(kit, "big")} == {"east": 2, "south": 1, "north": 0}


def test_months_are_counted_in_the_bundle_time_zone(kit: System) -> None:
    # Ticket 4 is created at 17:00 UTC on 31 March: 1 April in Shanghai.
    assert [(r["created.month"], r["tickets"]) for r in run(kit, "by_month")] == [("2025-03", 3), ("2025-04", 3)]


def test_weeks_start_on_monday_in_the_bundle_time_zone(kit: System) -> None:
    assert [(r["created.week"], r["tickets"]) for r in run(kit, "by_week")] == [
        ("2025-03-03", 2), ("2025-03-10", 1), ("2025-03-31", 2), ("2025-04-14", 1)]


def test_days_are_local_days(kit: System) -> None:
    days = [r["created.day"] for r in run(kit, "by_day")]
    assert "2025-04-01" in days and "2025-03-31" not in days


def test_a_tree_field_groups_by_the_level_asked_for(kit: System) -> None:
    assert {r["group"]: r["tickets"] for r in run(kit, "by_group")} == {"delivery": 4, "goods": 2}


def test_top_n_with_others_sums_the_rest(kit: System) -> None:
    assert [(r["customer"], r["tickets"]) for r in run(kit, "top_customer")] == [("Acme", 3), (OTHERS, 3)]


def test_a_period_filter_and_the_previous_period(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    from engine.identity import Principal

    result = reports.run(board, board.widgets["total"], {"period_from": ["2025-04-01"], "period_to": ["2025-04-30"]},
                         Principal.system())
    assert result.rows[0]["tickets"] == 3
    assert result.previous == {"tickets": 3}  # 2 to 31 March, local days


def test_choice_and_text_filters_combine(kit: System) -> None:
    assert run(kit, "total", region="east", customer="cm")[0]["tickets"] == 2
    assert run(kit, "total", group="goods")[0]["tickets"] == 2


def test_a_two_dimension_heat_map(kit: System) -> None:
    cells = {(r["region"], r["category"]): r["tickets"] for r in run(kit, "heat")}
    assert cells == {("east", "late"): 1, ("east", "lost"): 1, ("east", "broken"): 1, ("north", "late"): 1,
                     ("north", "broken"): 1, ("south", "late"): 1}


def test_repeats_are_kept_as_records_arrive(kit: System) -> None:
    from tests.reports.report_kit import facts

    assert [f.is_repeat for f in facts(kit)] == [0, 1, 0, 1, 0, 0]


def test_the_same_numbers_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    from tests.reports.report_kit import ROWS  # noqa: F401

    pytest.importorskip("psycopg")
    system, _ = build_on(tmp_path, postgres_url)
    assert [(r["created.week"], r["tickets"]) for r in run(system, "by_week")] == [
        ("2025-03-03", 2), ("2025-03-10", 1), ("2025-03-31", 2), ("2025-04-14", 1)]
    assert run(system, "quality")[0] == pytest.approx({"closed_72h": 0.6, "on_time": 0.4, "satisfaction": 3.6,
                                                        "repeat_rate": 2 / 6})
    assert one(system, "p90_resolution") == pytest.approx(92)


def build_on(tmp_path: Path, url: str) -> tuple[System, list[int]]:
    import tests.reports.report_kit as kit_module
    from web import system as system_module

    original = system_module.boot

    def boot_on(root, *, db_url=None, clock=None, **kw):  # type: ignore[no-untyped-def]
        return original(root, db_url=url, clock=clock, **kw)

    kit_module.boot = boot_on  # type: ignore[assignment]
    try:
        return build(tmp_path)
    finally:
        kit_module.boot = original  # type: ignore[assignment]
