"""Maintained aggregates: widgets that fit a rollup read its cells, give the same numbers as a
scan of the records, and stay exact as records are created, edited and closed."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from engine.identity import Principal
from engine.storage.db import read_transaction, schema_inspector, transaction
from engine.storage.tables import report_rollup_state, tasks
from tests.reports.report_kit import build, params, principal
from web.system import System

WIDGETS = ["total", "quality", "by_region", "by_month", "by_week", "by_day", "by_group", "top_customer",
           "heat", "table", "big", "radar", "tiles", "trend2"]


@pytest.fixture
def kit(tmp_path: Any) -> System:
    system, _ = build(tmp_path)
    return system


def answer(system: System, widget: str, who: Principal | None = None, **filters: Any) -> tuple[Any, Any]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("board")
    result = reports.run(board, board.widgets[widget], params(**filters), who or Principal.system())
    return result.rows, result.source


def rounded(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: round(v, 9) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def scanned(system: System, widget: str, **filters: Any) -> Any:
    keeper = system.runtime.services.pop("rollups")
    try:
        return answer(system, widget, **filters)[0]
    finally:
        system.runtime.services["rollups"] = keeper


@pytest.mark.parametrize("filters", [{}, {"region": "east"}, {"group": "delivery"},
                                     {"period_from": "2025-03-04", "period_to": "2025-04-01"},
                                     {"period_from": "2025-03-01", "period_to": "2025-03-31"},
                                     {"period_from": "2025-04-01", "period_to": "2025-05-01"}])
def test_rollup_answers_equal_a_scan_of_the_records(kit: System, filters: dict[str, str]) -> None:
    for widget in WIDGETS:
        rows, _ = answer(kit, widget, **filters)
        assert rounded(rows) == rounded(scanned(kit, widget, **filters)), widget


def test_widgets_that_fit_read_the_smallest_rollup(kit: System) -> None:
    assert answer(kit, "total")[1] == "daily"
    assert answer(kit, "by_month")[1] == "daily"
    assert answer(kit, "by_region")[1] == "by_region"
    assert answer(kit, "total", region="east")[1] == "by_region"
    assert answer(kit, "heat")[1] == "heat_month"
    assert answer(kit, "top_customer")[1] == "customer_month"
    assert answer(kit, "total", customer="Ac")[1] is None  # text filters read the records


def test_month_cells_answer_periods_of_whole_months(kit: System) -> None:
    assert answer(kit, "heat", period_from="2025-03-01", period_to="2025-03-31")[1] == "heat_month"
    assert answer(kit, "top_customer", period_from="2025-03-01", period_to="2025-04-30")[1] == "customer_month"


def test_a_period_ending_today_counts_as_whole_months(kit: System) -> None:
    # The clock reads 2025-05-01: May's cell holds nothing after today.
    assert answer(kit, "heat", period_from="2025-04-01", period_to="2025-05-01")[1] == "heat_month"


def test_a_period_cutting_a_month_reads_day_cells_or_the_records(kit: System) -> None:
    assert answer(kit, "heat", period_from="2025-03-04", period_to="2025-03-31")[1] == "by_region_category"
    assert answer(kit, "heat", period_from="2025-03-01", period_to="2025-03-30")[1] == "by_region_category"
    assert answer(kit, "top_customer", period_from="2025-03-04", period_to="2025-04-01")[1] is None


def test_day_and_week_buckets_never_read_month_cells(kit: System) -> None:
    assert answer(kit, "by_day")[1] == "daily"
    assert answer(kit, "by_week")[1] == "daily"


def test_a_record_created_late_in_the_day_utc_falls_in_its_local_month(kit: System) -> None:
    # Record 4 is created 2025-03-31 17:00 UTC, 1 April in Shanghai: April's cell counts it.
    march = dict((r["customer"], r["tickets"]) for r in answer(kit, "top_customer", period_from="2025-03-01",
                                                              period_to="2025-03-31")[0])
    assert march == {"Acme": 2, "__others__": 1} or sum(march.values()) == 3
    april = answer(kit, "top_customer", period_from="2025-04-01", period_to="2025-04-30")[0]
    assert sum(r["tickets"] for r in april) == 3


def test_each_rollup_kept_from_the_records_gets_one_index_on_its_fields_and_date(kit: System) -> None:
    with read_transaction(kit.db) as conn:
        indexes = [ix["column_names"] for ix in schema_inspector(conn).get_indexes(kit.forms.tables["ticket"].name)]
    assert ["customer", "created_at"] in indexes  # customer_month, kept from the records
    # by_region_category's, which by_region and heat_month (summed from its cells) do not duplicate
    assert indexes.count(["region", "category", "created_at"]) == 1
    assert ["region", "created_at"] not in indexes


def rollups_of(system: System) -> tuple[Any, Any, dict[str, Any]]:
    keeper = system.runtime.services["rollups"]
    dataset = system.runtime.services["reports"].dataset("tickets")
    return keeper, dataset, {r.name: r for r in dataset.rollups}


def test_a_rollup_is_summed_from_the_finer_day_rollup_with_the_fewest_fields(kit: System) -> None:
    keeper, dataset, rollups = rollups_of(kit)
    sources = {name: getattr(keeper.source_of(dataset, r), "name", None) for name, r in rollups.items()}
    assert sources == {"daily": "by_region", "by_region": "by_region_category", "by_region_category": None,
                       "heat_month": "by_region_category", "customer_month": None}


def test_a_change_counts_only_the_finest_cells_from_the_records(kit: System, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper, _, _ = rollups_of(kit)
    counted: list[str] = []
    original = keeper._cell_from_records

    def spy(dataset: Any, rollup: Any, nulls: Any) -> Any:
        counted.append(rollup.name)
        return original(dataset, rollup, nulls)

    monkeypatch.setattr(keeper, "_cell_from_records", spy)
    refreshed = _spy_refreshes(keeper, monkeypatch)
    table = kit.forms.tables["ticket"]
    with transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalar()
        kit.forms.update_fields(conn, "ticket", first, {"satisfaction": 1}, actor="bea")
    # Every rollup measures satisfaction; the whole day's cell is added up from region cells.
    assert sorted(counted) == ["by_region_category", "customer_month"]
    assert [name for name, _ in refreshed][:1] == ["by_region_category"]  # the finest first
    assert len(refreshed) == 5
    for widget in WIDGETS:
        assert rounded(answer(kit, widget)[0]) == rounded(scanned(kit, widget)), widget


def test_a_rollup_grouping_by_a_yes_no_or_number_field_is_refused_where_it_is_written(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Cells are found by their keys as text: a yes/no value is '1' in SQL and 'True' in Python,
    # so an emptied cell was never found again and kept its count.
    from engine.errors import DefinitionError
    from tests.reports import report_kit

    files = dict(report_kit.FILES)
    files["forms/ticket.yaml"] += "  vip: {type: boolean}\n"
    files["reports/tickets.yaml"] = (files["reports/tickets.yaml"]
                                     .replace("  region: {field: region}\n",
                                              "  region: {field: region}\n  vip: {field: vip}\n  rating: {field: satisfaction}\n")
                                     .replace("rollups:\n", "rollups:\n  by_vip: {date: created, dimensions: [region, vip]}\n"
                                              "  by_rating: {date: created, dimensions: [rating]}\n"))
    monkeypatch.setattr(report_kit, "FILES", files)
    with pytest.raises(DefinitionError) as caught:
        build(tmp_path)
    problems = [(d.span.line, d.span.col, d.message) for d in caught.value.diagnostics if d.code == "invalid-rollup"]
    lines = files["reports/tickets.yaml"].splitlines()
    vip = next(i for i, line in enumerate(lines) if line.startswith("  by_vip:")) + 1
    rating = next(i for i, line in enumerate(lines) if line.startswith("  by_rating:")) + 1
    assert [(line, message) for line, _col, message in problems] == [
        (vip, "a rollup cannot group by 'vip': it is not stored as text"),
        (rating, "a rollup cannot group by 'rating': it is not stored as text")]


def test_refreshing_a_day_cell_reads_only_that_cells_records(kit: System) -> None:
    keeper = kit.runtime.services["rollups"]
    dataset = kit.runtime.services["reports"].dataset("tickets")
    by_region_category = next(r for r in dataset.rollups if r.name == "by_region_category")
    statement = keeper._cell_from_records(dataset, by_region_category, (False, False))
    sql = str(statement.stmt.compile(kit.db))
    with read_transaction(kit.db) as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + sql.replace("?", "NULL")))
    assert "region=? AND category=? AND created_at>? AND created_at<?" in plan


def test_a_user_with_a_row_scope_reads_the_records(kit: System) -> None:
    rows, source = answer(kit, "total", principal(kit, "cleo"))
    assert source is None and rows == [{"tickets": 0}]


def test_a_new_record_is_counted_at_once(kit: System) -> None:
    kit.forms.submit("ticket", {"customer": "Dane", "region": "south", "category": "late"}, actor="intake")
    assert answer(kit, "total")[0] == [{"tickets": 7}]
    assert {r["region"]: r["tickets"] for r in answer(kit, "by_region")[0]}["south"] == 2
    for widget in ("heat", "top_customer"):
        assert answer(kit, widget)[0] == scanned(kit, widget), widget


def test_an_edit_moves_the_record_between_cells(kit: System) -> None:
    table = kit.forms.tables["ticket"]
    with read_transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).where(table.c.region == "east").order_by(table.c.id)).scalar()
    with transaction(kit.db) as conn:
        kit.forms.update_fields(conn, "ticket", first, {"region": "south"}, actor="bea")
    assert {r["region"]: r["tickets"] for r in answer(kit, "by_region")[0]} == {"east": 2, "north": 2, "south": 2}
    assert answer(kit, "by_region")[0] == scanned(kit, "by_region")
    assert answer(kit, "heat")[0] == scanned(kit, "heat")


def test_an_edit_of_the_customer_moves_the_record_between_month_cells(kit: System) -> None:
    table = kit.forms.tables["ticket"]
    with read_transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).where(table.c.customer == "Cole")).scalar()
    with transaction(kit.db) as conn:
        kit.forms.update_fields(conn, "ticket", first, {"customer": "Bolt"}, actor="bea")
    rows, source = answer(kit, "top_customer")
    assert source == "customer_month" and rows == scanned(kit, "top_customer")
    assert rows[0] == {"customer": "Acme", "tickets": 3} and rows[1]["tickets"] == 3


def test_closing_a_record_updates_its_rates(kit: System) -> None:
    before = answer(kit, "quality")[0][0]["closed_72h"]
    with read_transaction(kit.db) as conn:
        task_id = conn.execute(sa.select(tasks.c.id).where(tasks.c.status == "open").order_by(tasks.c.id.desc())).scalar()
    kit.runtime.clock.set(kit.runtime.clock.now())
    kit.flows.complete(task_id, "oli")
    after = answer(kit, "quality")[0][0]
    assert after == scanned(kit, "quality")[0]
    assert after["closed_72h"] != before


def test_a_rebuild_adds_up_the_days_of_a_month_into_one_cell(kit: System) -> None:
    # A second east/late ticket in March, on another day than record 1.
    kit.runtime.clock.set(datetime(2025, 3, 20, 2, tzinfo=timezone.utc))
    kit.forms.submit("ticket", {"customer": "Dane", "region": "east", "category": "late"}, actor="intake")
    kit.runtime.services["reports"].rebuild_rollups()
    rows, source = answer(kit, "heat", period_from="2025-03-01", period_to="2025-03-31")
    assert source == "heat_month" and rows == scanned(kit, "heat", period_from="2025-03-01", period_to="2025-03-31")
    assert {"region": "east", "category": "late", "tickets": 2} in rows


def test_a_measure_that_changes_with_the_clock_is_kept_in_no_cell(kit: System) -> None:
    from reports.rollups import parts_of

    parts = parts_of(kit.runtime.services["reports"].dataset("tickets"))
    assert "age" not in parts and "first_response" in parts


def test_a_measure_with_an_in_list_is_kept_through_sqlalchemy(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # An IN list expands its parameters per execution: its cell statements cannot be prepared.
    from tests.reports import report_kit

    files = dict(report_kit.FILES)
    files["reports/tickets.yaml"] = files["reports/tickets.yaml"].replace(
        "  age: {avg: age_hours}\n", "  age: {avg: age_hours}\n  late_or_lost: {count: true, where: \"category in ['late', 'lost']\"}\n")
    files["dashboards/board.yaml"] += "  late_lost: {chart: bar, dataset: tickets, dimensions: [region], measures: [late_or_lost]}\n"
    monkeypatch.setattr(report_kit, "FILES", files)
    system, _ = build(tmp_path)
    system.forms.submit("ticket", {"customer": "Dane", "region": "south", "category": "lost"}, actor="intake")
    rows, source = answer(system, "late_lost")
    assert source == "by_region" and rows == scanned(system, "late_lost")
    assert {r["region"]: r["late_or_lost"] for r in rows} == {"east": 2, "north": 1, "south": 2}


def test_a_changed_definition_is_rebuilt_at_start(kit: System) -> None:
    keeper = kit.runtime.services["rollups"]
    with transaction(kit.db) as conn:
        conn.execute(report_rollup_state.update().values(signature="old"))
        assert sorted(keeper.ensure_built(conn)) == ["tickets.by_region", "tickets.by_region_category",
                                                     "tickets.customer_month", "tickets.daily", "tickets.heat_month"]
        assert keeper.ensure_built(conn) == []


def test_an_edit_of_a_field_no_rollup_uses_changes_no_cell(kit: System) -> None:
    keeper = kit.runtime.services["rollups"]
    dataset = kit.runtime.services["reports"].dataset("tickets")
    assert {"region", "category", "amount", "satisfaction", "customer"} <= keeper.relevant(dataset)
    assert "title" not in keeper.relevant(dataset)


def test_an_edit_of_the_category_refreshes_only_the_rollups_grouping_by_it(
        kit: System, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = kit.runtime.services["rollups"]
    refreshed: list[str] = []
    original = keeper._refresh

    def spy(conn: sa.Connection, dataset: Any, rollup: Any, *args: Any) -> None:
        refreshed.append(rollup.name)
        original(conn, dataset, rollup, *args)

    monkeypatch.setattr(keeper, "_refresh", spy)
    table = kit.forms.tables["ticket"]
    with transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).where(table.c.category != "lost")).scalar()
        kit.forms.update_fields(conn, "ticket", first, {"category": "lost"}, actor="bea")
    # No measure reads the category: the daily, by-region and customer cells cannot change.
    assert set(refreshed) == {"by_region_category", "heat_month"}
    assert answer(kit, "heat")[0] == scanned(kit, "heat")


@pytest.mark.postgres
def test_cells_kept_on_postgresql_equal_a_scan(tmp_path: Any, postgres_url: str) -> None:
    from tests.reports.test_measures import build_on

    system, _ = build_on(tmp_path, postgres_url)
    table = system.forms.tables["ticket"]
    with transaction(system.db) as conn:  # the record leaves one cell and joins another: both rewritten
        first = conn.execute(sa.select(table.c.id).where(table.c.category != "lost")).scalar()
        system.forms.update_fields(conn, "ticket", first, {"category": "lost"}, actor="bea")
    for widget in ("heat", "by_region", "top_customer"):
        rows, source = answer(system, widget)
        assert source is not None and rounded(rows) == rounded(scanned(system, widget))


@pytest.mark.postgres
def test_cells_kept_by_concurrent_completions_on_postgresql_equal_a_scan(tmp_path: Any, postgres_url: str) -> None:
    # Each transaction counts its cells from the records it sees: without the dataset's lock,
    # two tickets of one cell closed at once would each miss the other's closing.
    import threading

    from tests.reports.test_measures import build_on

    system, _ = build_on(tmp_path, postgres_url)
    for i in range(30):
        system.forms.submit("ticket", {"customer": f"C{i}", "region": "east", "category": "late"}, actor="intake")
    with read_transaction(system.db) as conn:
        open_tasks = conn.execute(sa.select(tasks.c.id).where(tasks.c.status == "open")).scalars().all()
    failures: list[BaseException] = []

    def complete(ids: list[int]) -> None:
        try:
            for task_id in ids:
                system.flows.complete(task_id, "oli")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=complete, args=(open_tasks[w::3],)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for widget in ("quality", "by_region", "heat", "total"):
        rows, source = answer(system, widget)
        assert source is not None and rounded(rows) == rounded(scanned(system, widget)), widget


def _spy_refreshes(keeper: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    refreshed: list[tuple[str, Any]] = []
    original = keeper._refresh

    def spy(conn: sa.Connection, dataset: Any, rollup: Any, created: Any, key: Any) -> None:
        refreshed.append((rollup.name, key))
        original(conn, dataset, rollup, created, key)

    monkeypatch.setattr(keeper, "_refresh", spy)
    return refreshed


def test_cells_changed_twice_in_a_deferred_block_are_refreshed_once_as_it_ends(
        kit: System, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = kit.runtime.services["rollups"]
    refreshed = _spy_refreshes(keeper, monkeypatch)
    table = kit.forms.tables["ticket"]
    with transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalar()
        with keeper.deferred(conn):
            kit.forms.update_fields(conn, "ticket", first, {"satisfaction": 1}, actor="bea")
            kit.forms.update_fields(conn, "ticket", first, {"satisfaction": 2}, actor="bea")
            assert refreshed == []  # noted; recomputed as the block ends
        # The satisfaction measure is in every rollup; the record stays in the same five cells.
        assert len(refreshed) == 5 and len(set(refreshed)) == 5
    for widget in WIDGETS:
        assert rounded(answer(kit, widget)[0]) == rounded(scanned(kit, widget)), widget


def test_a_deferred_block_that_fails_leaves_the_cells_as_they_were(kit: System) -> None:
    keeper = kit.runtime.services["rollups"]
    before = {widget: answer(kit, widget)[0] for widget in WIDGETS}
    table = kit.forms.tables["ticket"]
    with pytest.raises(RuntimeError), transaction(kit.db) as conn, keeper.deferred(conn):
        first = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalar()
        kit.forms.update_fields(conn, "ticket", first, {"region": "south", "satisfaction": 1}, actor="bea")
        raise RuntimeError("the command fails after the change")
    assert {widget: answer(kit, widget)[0] for widget in WIDGETS} == before
    with transaction(kit.db) as conn:  # the next transaction defers nothing
        assert conn.info.get("docket_rollup_cells") is None


def test_a_cell_that_cannot_be_refreshed_fails_the_deferring_command(
        kit: System, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper = kit.runtime.services["rollups"]

    def broken(*_args: Any) -> None:
        raise RuntimeError("the cell statement failed")

    monkeypatch.setattr(keeper, "_refresh", broken)
    table = kit.forms.tables["ticket"]
    with read_transaction(kit.db) as conn:
        first = conn.execute(sa.select(table.c.id).order_by(table.c.id)).scalar()
    with pytest.raises(RuntimeError, match="cell statement"), transaction(kit.db) as conn, keeper.deferred(conn):
        kit.forms.update_fields(conn, "ticket", first, {"satisfaction": 1}, actor="bea")
    assert kit.forms.get("ticket", first)["satisfaction"] == 5  # nothing was committed
