"""RELIABILITY 53 and row-level permissions: page values never change the SQL's shape, names
come from the dataset's allow-list, LIKE wildcards are escaped, errors carry no SQL; a user sees
only the records their role allows, in charts and drill-downs alike."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.identity import Principal
from engine.storage.db import read_transaction
from forms.access import record_scope
from reports.query import DatasetQuery, Filters, ReportRequestError, run_widget
from tests.reports.report_kit import build, params, principal, run
from web.system import System


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> System:
    system, _ = build(tmp_path_factory.mktemp("safety"), submitters={2: "cleo"})
    system.forms.submit("ticket", {"customer": "a%_%b"}, actor="intake")
    return system


def test_an_injection_in_a_text_filter_is_a_value_not_sql(kit: System) -> None:
    assert run(kit, "total", customer="' OR 1=1 --")[0]["tickets"] == 0
    assert run(kit, "total")[0]["tickets"] == 7


def test_like_wildcards_in_a_filter_match_only_themselves(kit: System) -> None:
    assert run(kit, "total", customer="%_%")[0]["tickets"] == 1  # only "a%_%b"
    assert run(kit, "total", customer="_")[0]["tickets"] == 1


def test_filter_values_are_bound_parameters(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    dataset = reports.dataset("tickets")
    q = DatasetQuery(kit.runtime, dataset, Principal.system())
    conditions = q.filter_conditions(Filters(contains={"customer": "' OR 1=1 --"}, values={"region": ("east'--",)}))
    sql = str(sa.select(sa.literal(1)).where(*conditions).compile(kit.db))
    assert "OR 1=1" not in sql and "east'" not in sql


def test_a_sort_name_outside_the_allow_list_is_refused_without_sql(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    with read_transaction(kit.db) as conn, pytest.raises(ReportRequestError) as caught:
        run_widget(conn, kit.runtime, reports.dataset("tickets"), board.widgets["by_region"], Filters(),
                   Principal.system(), sort=[("name; DROP TABLE x", False)])
    message = str(caught.value)
    assert "cannot sort by 'name; DROP TABLE x'" in message
    assert "SELECT" not in message.upper() and "rec_ticket" not in message
    with read_transaction(kit.db) as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM rec_ticket")).scalar() == 7


def test_an_unknown_choice_value_is_refused_by_name(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    with pytest.raises(ReportRequestError, match="is not an option of the filter 'region'"):
        reports.filters_from(reports.dashboard("board"), params(region="' OR 1=1 --"))


def test_a_bad_date_and_an_unknown_drill_dimension_are_refused(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    with pytest.raises(ReportRequestError, match="is not a date"):
        reports.filters_from(board, params(period_from="2025-13-01; DROP"))
    with pytest.raises(ReportRequestError, match="is not a dimension"):
        reports.drill(board, board.widgets["by_region"], params(**{"p.password": "x"}), Principal.system())


def test_an_overlong_text_filter_is_refused(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    with pytest.raises(ReportRequestError, match="at most 100 characters"):
        reports.filters_from(reports.dashboard("board"), params(customer="x" * 101))


# -- row-level permissions ------------------------------------------------------------------------
def visible_ids(system: System, who: Principal) -> set[int]:
    table = system.forms.tables["ticket"]
    condition = record_scope(system.runtime, "ticket", who, table)
    query = sa.select(table.c.id) if condition is None else sa.select(table.c.id).where(condition)
    with read_transaction(system.db) as conn:
        return {r[0] for r in conn.execute(query)}


@pytest.mark.parametrize("username", ["cleo", "sam", "oli", "bea"])
def test_charts_count_only_the_records_the_user_may_see(kit: System, username: str) -> None:
    who = principal(kit, username)
    seen = visible_ids(kit, who)
    assert sum(r["tickets"] for r in run(kit, "by_region", who)) == len([i for i in seen])
    assert run(kit, "total", who)[0]["tickets"] == len(seen)


def test_a_clerk_sees_only_what_they_submitted(kit: System) -> None:
    cleo = principal(kit, "cleo")
    assert run(kit, "total", cleo)[0]["tickets"] == 1
    assert [(r["region"], r["tickets"]) for r in run(kit, "by_region", cleo)] == [("north", 1)]


def test_the_department_tasks_are_offered_to_sees_them_and_another_does_not(kit: System) -> None:
    assert run(kit, "total", principal(kit, "oli"))[0]["tickets"] == 7  # tasks offered to ops
    assert run(kit, "total", principal(kit, "sam"))[0]["tickets"] == 0


def test_drill_down_applies_the_same_permissions(kit: System) -> None:
    reports = kit.runtime.services["reports"]
    board = reports.dashboard("board")
    cleo = principal(kit, "cleo")
    total, records = reports.drill(board, board.widgets["by_region"], params(**{"p.region": "north"}), cleo)
    assert total == 1 and {r["id"] for r in records} <= visible_ids(kit, cleo)
    total_all, _ = reports.drill(board, board.widgets["by_region"], params(**{"p.region": "north"}), Principal.system())
    assert total_all == 2


def test_the_department_filter_keeps_records_a_department_worked_on(kit: System) -> None:
    assert run(kit, "total", department="ops")[0]["tickets"] == 7
    assert run(kit, "total", department="service")[0]["tickets"] == 0


def test_a_dashboard_with_roles_is_closed_to_others(tmp_path: Path) -> None:
    from tests.reports.report_kit import FILES
    from tests.engine.bundle_kit import write_bundle
    from engine.clock import ManualClock
    from datetime import datetime, timezone
    from web.system import boot

    board = FILES["dashboards/board.yaml"].replace("label: Board\n", "label: Board\nroles: [boss]\n")
    root = write_bundle(tmp_path / "b", {**FILES, "dashboards/board.yaml": board})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'd.db'}", clock=ManualClock(datetime(2025, 1, 1, tzinfo=timezone.utc)))
    reports = system.runtime.services["reports"]
    assert not reports.may_open(reports.dashboard("board"), principal(system, "cleo"))
    assert reports.may_open(reports.dashboard("board"), principal(system, "bea"))
