"""History rows a command keeps for its commit (engine/storage/deferred.py): written once, in
order, seen by the command's own reads, dropped with what rolls back."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from engine.storage import deferred
from engine.storage.db import read_transaction, savepoint, transaction
from engine.storage.prepared import INSERT_HISTORY, PreparedQuery
from engine.storage.tables import history

AT = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
_KINDS = PreparedQuery(sa.select(history.c.kind).where(history.c.record_id == sa.bindparam("record_id"))
                       .order_by(history.c.id))


def keep(conn: Connection, kind: str, record_id: int = 1) -> None:
    INSERT_HISTORY.later(conn, {"form": "ticket", "record_id": record_id, "kind": kind, "at": AT, "data": {}})


def kinds(engine: Engine, record_id: int = 1) -> list[str]:
    with read_transaction(engine) as conn:
        return [row["kind"] for row in _KINDS.all(conn, {"record_id": record_id})]


def test_kept_rows_are_written_when_the_command_commits_in_the_order_they_were_kept(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        for kind in ("a", "b", "c"):
            keep(conn, kind)
        assert kinds(db_engine) == []  # another connection: nothing written yet
    assert kinds(db_engine) == ["a", "b", "c"]


def test_a_prepared_read_in_the_command_sees_the_rows_it_kept(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        keep(conn, "a")
        assert [row["kind"] for row in _KINDS.all(conn, {"record_id": 1})] == ["a"]


def test_a_row_inserted_at_once_comes_after_the_rows_kept_before_it(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        keep(conn, "kept")
        INSERT_HISTORY.execute(conn, {"form": "ticket", "record_id": 1, "kind": "at once", "at": AT, "data": {}})
        keep(conn, "kept later")
    assert kinds(db_engine) == ["kept", "at once", "kept later"]


def test_a_failed_command_writes_none_of_its_kept_rows(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        with transaction(db_engine) as conn:
            keep(conn, "a")
            raise RuntimeError("the command failed")
    with transaction(db_engine) as conn:
        keep(conn, "next command")
    assert kinds(db_engine) == ["next command"]


def test_a_savepoint_rolled_back_drops_the_rows_kept_inside_it_only(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        keep(conn, "before")
        with pytest.raises(ValueError):
            with savepoint(conn):
                keep(conn, "inside")
                raise ValueError("a rule failed")
        keep(conn, "after")
    assert kinds(db_engine) == ["before", "after"]


def test_rows_kept_before_a_savepoint_survive_its_rollback_after_a_read_inside_wrote_them(
        db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        keep(conn, "before")
        with pytest.raises(ValueError):
            with savepoint(conn):
                keep(conn, "inside")
                _KINDS.all(conn, {"record_id": 1})  # writes both, inside the savepoint
                raise ValueError("a rule failed")
        keep(conn, "after")
    assert kinds(db_engine) == ["before", "after"]


def test_outside_a_command_transaction_a_row_is_written_at_once(db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        keep(conn, "a")
        assert [row["kind"] for row in _KINDS.all(conn, {"record_id": 1})] == ["a"]
    assert kinds(db_engine) == ["a"]


def test_the_command_rows_of_one_table_go_to_the_driver_in_one_call(db_engine: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, int]] = []
    original = deferred._run

    def counting(conn: Connection, batches: list[tuple[Any, list[Any]]]) -> None:
        calls.extend((batch.table.name, len(rows)) for batch, rows in batches)
        original(conn, batches)

    monkeypatch.setattr(deferred, "_run", counting)
    with transaction(db_engine) as conn:
        for kind in ("a", "b", "c", "d"):
            keep(conn, kind)
    assert calls == [("dk_history", 4)]
    assert kinds(db_engine) == ["a", "b", "c", "d"]  # one multi-row INSERT on a server


def test_a_core_statement_naming_the_table_before_a_flush_is_an_error_in_the_tests(db_engine: Engine) -> None:
    # The suite's check (tests/conftest.py sets DOCKET_CHECK_DEFERRED_READS): a Core read that
    # forgot `flush` would not see the command's own rows.
    with pytest.raises(deferred.DeferredRowsUnseen, match="dk_history"):
        with transaction(db_engine) as conn:
            keep(conn, "a")
            conn.execute(sa.select(sa.func.count()).select_from(history)).scalar()


def test_a_core_statement_after_flush_sees_the_kept_rows(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        keep(conn, "a")
        deferred.flush(conn)
        assert conn.execute(sa.select(sa.func.count()).select_from(history)).scalar() == 1


def test_a_command_that_keeps_hundreds_of_rows_writes_them_all_in_order(db_engine: Engine) -> None:
    # A server gets them 100 to an INSERT: three statements here, ids in the kept order.
    with transaction(db_engine) as conn:
        for i in range(250):
            keep(conn, f"k{i}")
    assert kinds(db_engine) == [f"k{i}" for i in range(250)]
