"""Record tables (`rec_<form>`): built from a spec, migrated additively, never dropped."""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from engine.storage.db import read_transaction, schema_inspector, transaction
from engine.storage.records import (
    SYSTEM_COLUMNS, ColumnSpec, MigrationPlan, RecordTableSpec, apply_additive, plan_migration,
    record_table,
)
from engine.storage.types import UTCDateTime

NOW = datetime(2026, 3, 2, 8, 30, tzinfo=timezone.utc)


def _spec(*columns: ColumnSpec, form: str = "complaint") -> RecordTableSpec:
    return RecordTableSpec(form, tuple(columns))


# The column types the built-in field types declare (forms/fields/*.py).
ALL_TYPES = _spec(
    ColumnSpec("customer", sa.String(100), index=True),
    ColumnSpec("phone", sa.String(50), unique=True),
    ColumnSpec("details", sa.Text()),
    ColumnSpec("weight", sa.Float()),
    ColumnSpec("pieces", sa.BigInteger()),
    ColumnSpec("compensation", sa.Numeric(18, 2, asdecimal=True)),
    ColumnSpec("incident_date", sa.Date()),
    ColumnSpec("incident_at", sa.DateTime(timezone=True)),
    ColumnSpec("tags", sa.JSON()),
    ColumnSpec("vip", sa.Boolean()),
    ColumnSpec("category", sa.String(64)),
)
V1 = _spec(ColumnSpec("customer", sa.String(100)), ColumnSpec("amount", sa.String(64)))


def _insert(engine: Engine, spec: RecordTableSpec, **values: Any) -> int:
    table = record_table(spec)
    with transaction(engine) as conn:
        return int(conn.execute(table.insert().values(
            created_at=NOW, updated_at=NOW, **values)).inserted_primary_key[0])


def _rows(engine: Engine, spec: RecordTableSpec) -> list[dict[str, Any]]:
    table = record_table(spec)
    with read_transaction(engine) as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def _live_columns(engine: Engine, name: str) -> dict[str, Any]:
    with read_transaction(engine) as conn:
        return {c["name"]: c for c in schema_inspector(conn).get_columns(name)}


def _migrate(engine: Engine, spec: RecordTableSpec) -> MigrationPlan:
    return apply_additive(engine, plan_migration(engine, spec))


# record_table ---------------------------------------------------------------------------------

def test_record_table_has_the_system_columns_then_the_fields() -> None:
    table = record_table(V1)
    assert table.name == "rec_complaint"
    assert [c.name for c in table.columns] == [*SYSTEM_COLUMNS, "customer", "amount"]
    assert SYSTEM_COLUMNS == ("id", "query_no", "status", "created_at", "updated_at",
                              "created_by", "version", "bundle_hash")
    assert [c.name for c in table.primary_key.columns] == ["id"]
    assert table.c.id.autoincrement is True
    assert isinstance(table.c.query_no.type, sa.String) and table.c.query_no.type.length == 64
    assert table.c.query_no.nullable
    assert isinstance(table.c.status.type, sa.String) and table.c.status.type.length == 50
    assert isinstance(table.c.created_at.type, UTCDateTime)
    assert isinstance(table.c.updated_at.type, UTCDateTime)
    assert table.c.created_by.type.length == 150
    assert isinstance(table.c.version.type, sa.Integer) and not table.c.version.nullable
    assert table.c.bundle_hash.type.length == 64
    indexes = {i.name: ([c.name for c in i.columns], i.unique) for i in table.indexes}
    assert indexes["uq_rec_complaint_query_no"] == (["query_no"], True)
    assert indexes["ix_rec_complaint_status"] == (["status"], False)


def test_field_flags_become_indexes_and_unique_indexes() -> None:
    table = record_table(ALL_TYPES)
    indexes = {tuple(c.name for c in i.columns): i.unique for i in table.indexes}
    assert indexes[("customer",)] is False
    assert indexes[("phone",)] is True
    assert ("details",) not in indexes


def test_same_spec_gives_the_same_table_object() -> None:
    rebuilt = _spec(ColumnSpec("customer", sa.String(100)), ColumnSpec("amount", sa.String(64)))
    assert rebuilt == V1 and hash(rebuilt) == hash(V1)
    assert record_table(rebuilt) is record_table(V1)
    metadata = sa.MetaData()
    assert record_table(V1, metadata) is record_table(rebuilt, metadata)
    assert record_table(V1, metadata) is not record_table(V1)
    assert metadata.tables["rec_complaint"] is record_table(V1, metadata)


def test_specs_with_different_column_types_differ() -> None:
    other = _spec(ColumnSpec("customer", sa.String(100)), ColumnSpec("amount", sa.Numeric(18, 2)))
    assert other != V1
    assert record_table(other) is not record_table(V1)


def test_metadata_refuses_a_second_definition_of_the_same_form() -> None:
    metadata = sa.MetaData()
    record_table(V1, metadata)
    with pytest.raises(ValueError, match="different definition"):
        record_table(_spec(ColumnSpec("customer", sa.Text())), metadata)


def test_column_type_may_be_a_class_or_a_factory() -> None:
    assert isinstance(ColumnSpec("a", sa.Text).type, sa.Text)
    made = ColumnSpec("b", lambda: sa.Numeric(10, 3)).type
    assert isinstance(made, sa.Numeric) and made.scale == 3
    with pytest.raises(TypeError, match="SQLAlchemy type"):
        ColumnSpec("c", "VARCHAR")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["status", "id", "version", "query_no", "bundle_hash"])
def test_field_named_like_a_system_column_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="system column"):
        ColumnSpec(name, sa.Text())


@pytest.mark.parametrize("name", ["Amount", "1st", "a-b", "a b", "x" * 64, "drop table;"])
def test_unsafe_or_too_long_column_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        ColumnSpec(name, sa.Text())


def test_too_long_form_name_and_duplicate_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than 59"):
        RecordTableSpec("f" * 60, ())
    with pytest.raises(ValueError, match="two columns named"):
        _spec(ColumnSpec("a", sa.Text()), ColumnSpec("a", sa.Text()))


def test_long_index_names_are_shortened_to_63_characters() -> None:
    spec = RecordTableSpec("f" * 59, (ColumnSpec("c" * 63, sa.Text(), index=True),))
    names = [str(i.name) for i in record_table(spec).indexes]
    assert all(len(n) <= 63 for n in names)
    assert len(set(names)) == len(names)


# plan and apply -------------------------------------------------------------------------------

def test_plan_on_an_empty_database_creates_the_table(db_engine: Engine) -> None:
    plan = plan_migration(db_engine, V1)
    assert plan.create_table
    assert (plan.add_columns, plan.add_indexes, plan.destructive) == ([], [], [])
    assert not plan.is_empty
    assert "rec_complaint: create table (id, query_no, status" in plan.describe()


def test_planning_changes_nothing(db_engine: Engine) -> None:
    plan_migration(db_engine, V1)
    with read_transaction(db_engine) as conn:
        assert not schema_inspector(conn).has_table("rec_complaint")


def test_apply_creates_a_table_that_matches_its_spec(db_engine: Engine) -> None:
    applied = _migrate(db_engine, ALL_TYPES)
    assert applied.create_table
    plan = plan_migration(db_engine, ALL_TYPES)
    assert plan.is_empty, plan.describe()
    assert plan.describe() == "rec_complaint: up to date"


def test_created_table_stores_every_field_type(db_engine: Engine) -> None:
    _migrate(db_engine, ALL_TYPES)
    values = dict(customer="张三", phone="13800000000", details="x" * 5000, weight=1.5,
                  pieces=2**40, compensation=Decimal("5000.25"), incident_date=date(2026, 3, 1),
                  incident_at=NOW, tags=["a", "b"], vip=True, category="damage")
    _insert(db_engine, ALL_TYPES, query_no="TS2026030200001", created_by="agent1", **values)
    (row,) = _rows(db_engine, ALL_TYPES)
    assert {k: row[k] for k in values} | {"incident_at": NOW} == values
    assert (row["status"], row["version"], row["query_no"]) == ("new", 1, "TS2026030200001")


def test_unique_field_refuses_a_duplicate_value(db_engine: Engine) -> None:
    _migrate(db_engine, ALL_TYPES)
    _insert(db_engine, ALL_TYPES, phone="13800000000")
    with pytest.raises(IntegrityError):
        _insert(db_engine, ALL_TYPES, phone="13800000000")


def test_query_numbers_are_unique_but_may_be_empty(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1)
    _insert(db_engine, V1)  # two records without a number
    _insert(db_engine, V1, query_no="Q1")
    with pytest.raises(IntegrityError):
        _insert(db_engine, V1, query_no="Q1")


def test_adding_a_field_adds_only_that_column_and_keeps_the_data(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1, customer="张三", amount="12.50")
    v2 = _spec(*V1.columns, ColumnSpec("phone", sa.String(50), index=True))

    plan = plan_migration(db_engine, v2)
    assert not plan.create_table
    assert plan.add_columns == ["phone"]
    assert plan.add_indexes == ["ix_rec_complaint_phone"]
    assert plan.destructive == []
    apply_additive(db_engine, plan)

    assert plan_migration(db_engine, v2).is_empty
    (row,) = _rows(db_engine, v2)
    assert (row["customer"], row["amount"], row["phone"]) == ("张三", "12.50", None)
    assert _live_columns(db_engine, "rec_complaint")["phone"]["nullable"] is True


def test_a_new_not_null_field_is_added_nullable_and_reported(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1, customer="张三")
    v2 = _spec(*V1.columns, ColumnSpec("region", sa.String(20), nullable=False))
    plan = plan_migration(db_engine, v2)
    assert plan.add_columns == ["region"]
    assert any("region is declared NOT NULL" in d for d in plan.destructive)
    apply_additive(db_engine, plan)
    assert _live_columns(db_engine, "rec_complaint")["region"]["nullable"] is True
    assert [r["region"] for r in _rows(db_engine, v2)] == [None]


def test_adding_a_unique_field_adds_its_unique_index(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    v2 = _spec(*V1.columns, ColumnSpec("phone", sa.String(50), unique=True))
    assert plan_migration(db_engine, v2).add_indexes == ["uq_rec_complaint_phone"]
    _migrate(db_engine, v2)
    _insert(db_engine, v2, phone="1")
    with pytest.raises(IntegrityError):
        _insert(db_engine, v2, phone="1")


def test_indexing_an_existing_field_adds_the_index(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    v2 = _spec(ColumnSpec("customer", sa.String(100), index=True), V1.columns[1])
    plan = plan_migration(db_engine, v2)
    assert (plan.add_columns, plan.add_indexes, plan.destructive) == (
        [], ["ix_rec_complaint_customer"], [])
    _migrate(db_engine, v2)
    assert plan_migration(db_engine, v2).is_empty


def test_changing_a_type_is_listed_as_destructive_and_not_applied(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1, amount="12.50")
    v2 = _spec(V1.columns[0], ColumnSpec("amount", sa.Numeric(18, 2)))

    plan = plan_migration(db_engine, v2)
    assert (plan.create_table, plan.add_columns, plan.add_indexes) == (False, [], [])
    (change,) = plan.destructive
    assert "amount is VARCHAR(64) in the database" in change
    assert "NUMERIC(18, 2)" in change and "docket migrate" in change
    assert not plan.is_additive_only
    assert "NOT APPLIED: column amount" in plan.describe()

    apply_additive(db_engine, plan)
    assert str(_live_columns(db_engine, "rec_complaint")["amount"]["type"]) == "VARCHAR(64)"
    assert [r["amount"] for r in _rows(db_engine, V1)] == ["12.50"]
    assert plan_migration(db_engine, v2).destructive == plan.destructive


def test_a_removed_field_is_listed_and_its_column_and_data_kept(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1, customer="张三", amount="12.50")
    v2 = _spec(V1.columns[0])
    plan = plan_migration(db_engine, v2)
    (change,) = plan.destructive
    assert "column amount is no longer in the form" in change
    apply_additive(db_engine, plan)
    assert [r["amount"] for r in _rows(db_engine, V1)] == ["12.50"]
    _insert(db_engine, v2, customer="李四")  # new records simply leave it empty
    assert [r["amount"] for r in _rows(db_engine, V1)] == ["12.50", None]


def test_making_an_existing_field_unique_is_not_applied(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _insert(db_engine, V1, customer="张三")
    _insert(db_engine, V1, customer="张三")
    v2 = _spec(ColumnSpec("customer", sa.String(100), unique=True), V1.columns[1])
    plan = plan_migration(db_engine, v2)
    assert plan.add_indexes == []
    (change,) = plan.destructive
    assert "customer is declared unique" in change
    apply_additive(db_engine, plan)
    assert len(_rows(db_engine, V1)) == 2


def test_dropping_unique_from_a_field_is_reported_not_applied(db_engine: Engine) -> None:
    unique = _spec(ColumnSpec("customer", sa.String(100), unique=True))
    _migrate(db_engine, unique)
    plain = _spec(ColumnSpec("customer", sa.String(100)))
    (change,) = plan_migration(db_engine, plain).destructive
    assert "no longer declared unique" in change


def test_destructive_changes_are_logged_when_applying(db_engine: Engine,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    _migrate(db_engine, V1)
    v2 = _spec(V1.columns[0])
    with caplog.at_level(logging.WARNING, logger="engine.storage.records"):
        _migrate(db_engine, v2)
    assert "amount is no longer in the form" in caplog.text


def test_a_stale_plan_is_applied_only_once(db_engine: Engine) -> None:
    v2 = _spec(*V1.columns, ColumnSpec("phone", sa.String(50), index=True))
    first, second = plan_migration(db_engine, v2), plan_migration(db_engine, v2)
    assert first.create_table and second.create_table  # two processes starting together
    assert apply_additive(db_engine, first).create_table
    assert apply_additive(db_engine, second).is_empty  # re-planned under the lock
    _migrate(db_engine, V1)  # and an older process never removes anything
    assert "phone" in _live_columns(db_engine, "rec_complaint")


def test_an_up_to_date_plan_takes_no_write_lock(sqlite_engine: Engine) -> None:
    _migrate(sqlite_engine, V1)
    plan = plan_migration(sqlite_engine, V1)
    with transaction(sqlite_engine):  # another command holds the write lock
        assert apply_additive(sqlite_engine, plan) is plan


def test_plan_migration_accepts_an_open_connection(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        assert plan_migration(conn, V1).create_table


def test_record_tables_live_beside_the_engine_tables(db_engine: Engine) -> None:
    _migrate(db_engine, V1)
    _migrate(db_engine, _spec(ColumnSpec("title", sa.String(200)), form="leave"))
    with read_transaction(db_engine) as conn:
        names = set(schema_inspector(conn).get_table_names())
    assert {"rec_complaint", "rec_leave", "dk_tasks"} <= names
