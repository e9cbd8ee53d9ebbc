"""Alembic migrations of the engine tables, run from code on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from typing import Any, Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event
from sqlalchemy.engine import Engine

from engine.storage import tables
from engine.storage.db import create_engine, read_transaction, schema_inspector, transaction
from engine.storage.migrations import (
    VERSION_TABLE, DatabaseTooNew, current_revision, head_revision, include_name, upgrade,
)

ENGINE_TABLES = {
    "dk_bundle_versions", "dk_users", "dk_roles", "dk_user_roles", "dk_departments",
    "dk_flow_instances", "dk_tasks", "dk_history", "dk_timers", "dk_outbox", "dk_incidents",
    "dk_sequences", "dk_idempotency", "dk_audit_log", "dk_attachments",
    "dk_api_tokens", "dk_sessions",
    "dk_record_tags", "dk_sla_clocks",
    "dk_report_facts", "dk_report_verdicts", "dk_report_rollups", "dk_report_rollup_state",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_url(request: pytest.FixtureRequest) -> str:
    """An empty database (a new SQLite file, or a new PostgreSQL schema)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture
def fresh_engine(fresh_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_url)
    yield engine
    engine.dispose()


def _table_names(engine: Engine) -> set[str]:
    with read_transaction(engine) as conn:
        return set(schema_inspector(conn).get_table_names())


def test_metadata_declares_exactly_the_engine_tables() -> None:
    assert set(tables.metadata.tables) == ENGINE_TABLES


def test_upgrade_creates_every_engine_table(fresh_engine: Engine) -> None:
    assert _table_names(fresh_engine) == set()
    upgrade(fresh_engine)
    assert _table_names(fresh_engine) == ENGINE_TABLES | {VERSION_TABLE}


def test_a_database_a_newer_docket_migrated_is_refused_naming_both_revisions(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    with transaction(fresh_engine) as conn:  # what the next release's migration leaves behind
        conn.exec_driver_sql(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    with pytest.raises(DatabaseTooNew) as refused:
        upgrade(fresh_engine)
    assert str(refused.value).startswith(f"the database's engine tables are at revision 9999, which this Docket "
                                         f"does not know (its newest is {head_revision()}): a newer Docket")
    # docket db restore restores SQLite files; a PostgreSQL database comes back from its dump.
    restore = "docket db restore" if fresh_engine.dialect.name == "sqlite" else "pg_restore"
    assert f"restore the backup taken before the upgrade ({restore}" in str(refused.value)
    assert current_revision(fresh_engine) == "9999"


def _diffs_from_metadata(engine: Engine) -> list[Any]:
    with read_transaction(engine) as conn:
        context = MigrationContext.configure(conn, opts={
            "include_name": include_name, "compare_type": True, "compare_server_default": True,
            "version_table": VERSION_TABLE})
        return list(compare_metadata(context, tables.metadata))


def test_every_revision_replayed_builds_what_the_metadata_declares(fresh_engine: Engine) -> None:
    upgrade(fresh_engine, replay=True)
    assert _diffs_from_metadata(fresh_engine) == []


def test_a_new_database_is_created_at_the_newest_revision_as_the_metadata_declares(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    assert _diffs_from_metadata(fresh_engine) == []
    assert current_revision(fresh_engine) == head_revision()


def _shape(engine: Engine) -> dict[str, Any]:
    """Every engine table's columns (name, type, nullable, default), indexes, unique and check
    constraints and foreign keys, as the database reports them. Columns are compared by name:
    a revision that adds one puts it last, which nothing reads by position."""
    with read_transaction(engine) as conn:
        inspector = schema_inspector(conn)
        shape: dict[str, Any] = {}
        for name in sorted(n for n in inspector.get_table_names() if n.startswith("dk_")):
            shape[name] = {
                "columns": sorted((c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                                  for c in inspector.get_columns(name)),
                "indexes": sorted((tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(name)),
                "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
                "checks": sorted(" ".join(c["sqltext"].split()) for c in inspector.get_check_constraints(name)),
                "foreign_keys": sorted((tuple(f["constrained_columns"]), f["referred_table"])
                                       for f in inspector.get_foreign_keys(name)),
            }
        return shape


def test_a_new_database_has_the_same_tables_as_one_that_replayed_every_revision(
        fresh_url: str, tmp_path: Any) -> None:
    # The next revision runs on databases made either way: they must not differ in anything it
    # could touch.
    from sqlalchemy.engine import make_url

    replayed = create_engine(fresh_url)
    second = f"s_{uuid.uuid4().hex[:16]}"
    if fresh_url.startswith("sqlite"):
        created = create_engine(f"sqlite:///{tmp_path / 'created.db'}")
    else:  # a second schema beside the test's own
        with transaction(replayed) as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{second}"')
        created = create_engine(make_url(fresh_url).update_query_dict({"options": f"-csearch_path={second}"})
                                .render_as_string(hide_password=False))
    try:
        upgrade(replayed, replay=True)
        upgrade(created)
        assert _shape(created) == _shape(replayed)
    finally:
        created.dispose()
        if not fresh_url.startswith("sqlite"):
            with transaction(replayed) as conn:
                conn.exec_driver_sql(f'DROP SCHEMA "{second}" CASCADE')
        replayed.dispose()


def test_record_tables_are_not_alembics_business() -> None:
    assert include_name("dk_tasks", "table", {})
    assert not include_name("rec_complaint", "table", {})
    assert not include_name(VERSION_TABLE, "table", {})


def test_revision_is_none_before_and_head_after_upgrade(fresh_engine: Engine) -> None:
    assert head_revision() is not None
    assert current_revision(fresh_engine) is None
    upgrade(fresh_engine)
    assert current_revision(fresh_engine) == head_revision()


def test_second_upgrade_is_a_no_op(fresh_engine: Engine) -> None:
    upgrade(fresh_engine)
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(fresh_engine, "before_cursor_execute", record)
    try:
        upgrade(fresh_engine)
    finally:
        event.remove(fresh_engine, "before_cursor_execute", record)
    ddl = [s for s in statements if s.lstrip().upper().startswith(("CREATE", "ALTER", "DROP"))]
    assert ddl == []
    assert current_revision(fresh_engine) == head_revision()
    assert _table_names(fresh_engine) == ENGINE_TABLES | {VERSION_TABLE}


def test_processes_starting_together_migrate_once(fresh_url: str) -> None:
    engines = [create_engine(fresh_url) for _ in range(4)]
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []

    def start(engine: Engine) -> None:
        barrier.wait()
        try:
            upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
        with read_transaction(engines[0]) as conn:
            versions = conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}").all()
        assert len(versions) == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_the_tasks_of_a_record_are_found_through_an_index(sqlite_engine: Engine) -> None:
    from flows.runtime import _OPEN_TASKS

    compiled = _OPEN_TASKS._compiled(sqlite_engine.dialect)
    with read_transaction(sqlite_engine) as conn:
        plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + compiled.sql, tuple(compiled.params({"form": "complaint", "record_id": 1}))))
    assert "ix_dk_tasks_form_record_id" in plan  # not every open task of the system


def test_db_upgrade_names_the_database_and_the_revisions_it_went_between(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # An operator whose settings live in an environment file must see which database was upgraded.
    from cli import main

    url = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out == (f"{url}: engine tables upgraded to revision {head_revision()} "
                                       "(from none: a new database)\n")
    assert main(["db", "upgrade", "--db", url]) == 0
    assert capsys.readouterr().out == (f"{url}: engine tables already at the newest revision, "
                                       f"{head_revision()}; nothing to do\n")


def test_db_upgrade_hides_the_password_of_the_database_it_names(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    import cli

    monkeypatch.setattr("engine.storage.migrations.upgrade", lambda engine: None)
    monkeypatch.setattr("engine.storage.migrations.current_revision", lambda engine: "0009")
    assert cli.main(["db", "upgrade", "--db", "postgresql+psycopg://docket:s3cret@db.internal/docket"]) == 0
    out = capsys.readouterr().out
    assert "postgresql+psycopg://docket:***@db.internal/docket" in out and "s3cret" not in out
