"""Prepared inserts store exactly what a SQLAlchemy Core insert of the same values stores."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.storage.db import read_transaction, transaction
from engine.storage.prepared import PreparedInsert
from engine.storage.types import UTCDateTime

SHANGHAI = timezone(timedelta(hours=8))


def sample_table() -> sa.Table:
    return sa.Table(
        "t_prepared", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(100)),
        sa.Column("amount", sa.Numeric(12, 2)),
        sa.Column("data", sa.JSON),
        sa.Column("at", UTCDateTime),
        sa.Column("status", sa.String(20), nullable=False, server_default="new"),
    )


@pytest.fixture
def table(db_engine: Engine) -> sa.Table:
    table = sample_table()
    table.metadata.create_all(db_engine)
    return table


ROW = {"title": "破损 damaged", "amount": Decimal("5000.50"), "data": {"waybills": ["EA1", "EA2"], "n": 2},
       "at": datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI), "status": "open"}


def rows(engine: Engine, table: sa.Table) -> list[dict]:
    with read_transaction(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def test_a_prepared_insert_stores_the_same_values_as_a_core_insert(db_engine: Engine, table: sa.Table) -> None:
    with transaction(db_engine) as conn:
        conn.execute(sa.insert(table), ROW)
        PreparedInsert(table).execute(conn, ROW)
    core, prepared = rows(db_engine, table)
    assert {k: v for k, v in core.items() if k != "id"} == {k: v for k, v in prepared.items() if k != "id"}
    assert prepared["at"] == datetime(2026, 11, 23, 1, 30, tzinfo=timezone.utc)


def test_it_returns_the_new_rows_key(db_engine: Engine, table: sa.Table) -> None:
    insert = PreparedInsert(table)
    with transaction(db_engine) as conn:
        first = insert.execute(conn, ROW)
        second = insert.execute(conn, ROW)
    assert second == first + 1 and [r["id"] for r in rows(db_engine, table)] == [first, second]


def test_a_missing_column_with_a_default_gets_its_default(db_engine: Engine, table: sa.Table) -> None:
    with transaction(db_engine) as conn:
        PreparedInsert(table).execute(conn, {"title": "t"})
    (row,) = rows(db_engine, table)
    assert row["status"] == "new" and row["amount"] is None


def test_it_runs_inside_the_callers_transaction(db_engine: Engine, table: sa.Table) -> None:
    with pytest.raises(RuntimeError):
        with transaction(db_engine) as conn:
            PreparedInsert(table).execute(conn, ROW)
            raise RuntimeError("rolled back")
    assert rows(db_engine, table) == []


def test_a_naive_timestamp_is_refused_as_through_sqlalchemy(db_engine: Engine, table: sa.Table) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        with transaction(db_engine) as conn:
            PreparedInsert(table).execute(conn, {**ROW, "at": datetime(2026, 11, 23, 9, 30)})


def test_timestamps_convert_right_when_one_is_reused_and_others_change(db_engine: Engine, table: sa.Table) -> None:
    # The UTC conversion remembers its last value (a submission stores one `now` three times):
    # the same object, then other objects, equal or not, must all store their own instant.
    first = datetime(2026, 11, 23, 9, 30, tzinfo=SHANGHAI)
    later = first + timedelta(minutes=1)
    equal_wall_time = datetime(2026, 11, 23, 9, 30, tzinfo=timezone.utc)  # == first's wall time, not instant
    stamps = [first, first, later, equal_wall_time, first]
    insert = PreparedInsert(table)
    with transaction(db_engine) as conn:
        for at in stamps:
            insert.execute(conn, {**ROW, "at": at})
    assert [r["at"] for r in rows(db_engine, table)] == [s.astimezone(timezone.utc) for s in stamps]
