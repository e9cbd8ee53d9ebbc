"""UTCDateTime: every timestamp is stored as UTC and read back as an aware UTC instant."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from engine.storage import tables as t
from engine.storage.db import read_transaction, transaction
from engine.storage.types import json_text

SHANGHAI = ZoneInfo("Asia/Shanghai")
LOCAL = datetime(2026, 2, 13, 10, 15, 30, 123456, tzinfo=SHANGHAI)
INSTANT = datetime(2026, 2, 13, 2, 15, 30, 123456, tzinfo=timezone.utc)


def _write(engine: Engine, at: object) -> None:
    with transaction(engine) as conn:
        conn.execute(t.audit_log.insert().values(at=at, action="probe"))


def test_aware_shanghai_time_reads_back_as_the_same_instant_in_utc(db_engine: Engine) -> None:
    _write(db_engine, LOCAL)
    with read_transaction(db_engine) as conn:
        stored = conn.execute(sa.select(t.audit_log.c.at)).scalar_one()
    assert stored == INSTANT
    assert stored.tzinfo is timezone.utc


def test_sqlite_file_holds_the_utc_wall_time(sqlite_engine: Engine) -> None:
    _write(sqlite_engine, LOCAL)
    with read_transaction(sqlite_engine) as conn:
        raw = conn.exec_driver_sql("SELECT at FROM dk_audit_log").scalar_one()
    assert raw == "2026-02-13 02:15:30.123456"


@pytest.mark.postgres
def test_postgres_session_time_zone_does_not_change_the_instant(postgres_engine: Engine) -> None:
    _write(postgres_engine, LOCAL)
    with read_transaction(postgres_engine) as conn:
        conn.exec_driver_sql("SET LOCAL TIME ZONE 'America/Los_Angeles'")
        stored = conn.execute(sa.select(t.audit_log.c.at)).scalar_one()
        utc_text = conn.exec_driver_sql(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM dk_audit_log"
        ).scalar_one()
    assert stored == INSTANT and stored.tzinfo is timezone.utc
    assert utc_text == "2026-02-13 02:15:30"


def test_comparison_with_an_aware_bound_value_uses_the_instant(db_engine: Engine) -> None:
    _write(db_engine, LOCAL)
    later_in_new_york = datetime(2026, 2, 12, 21, 15, 31, tzinfo=ZoneInfo("America/New_York"))
    with read_transaction(db_engine) as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)
                             .where(t.audit_log.c.at < later_in_new_york)).scalar()
    assert count == 1


def test_naive_datetime_is_refused_and_nothing_is_written(db_engine: Engine) -> None:
    with pytest.raises(StatementError, match="naive datetime") as info:
        _write(db_engine, datetime(2026, 2, 13, 10, 15))
    assert isinstance(info.value.orig, ValueError)
    with read_transaction(db_engine) as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)).scalar() == 0


def test_a_date_or_text_is_refused_as_a_timestamp(sqlite_engine: Engine) -> None:
    for value in (date(2026, 2, 13), "2026-02-13T10:15:00+08:00"):
        with pytest.raises(StatementError, match="expected a datetime"):
            _write(sqlite_engine, value)


def test_null_timestamp_stays_null(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        conn.execute(t.incidents.insert().values(kind="k", message="m", created_at=LOCAL,
                                                 resolved_at=None))
    with read_transaction(db_engine) as conn:
        assert conn.execute(sa.select(t.incidents.c.resolved_at)).scalar_one() is None


def test_json_columns_keep_chinese_text_as_typed(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        conn.execute(t.audit_log.insert().values(at=INSTANT, action="probe", detail={"who": ["张三", "李四"]}))
    with read_transaction(db_engine) as conn:
        raw = conn.execute(sa.select(sa.cast(t.audit_log.c.detail, sa.String))).scalar_one()
        found = conn.execute(sa.select(sa.func.count()).select_from(t.audit_log)
                             .where(sa.cast(t.audit_log.c.detail, sa.String).like('%"张三"%'))).scalar_one()
        detail = conn.execute(sa.select(t.audit_log.c.detail)).scalar_one()
    assert "张三" in raw and "\\u" not in raw
    assert found == 1 and detail == {"who": ["张三", "李四"]}


def test_json_text_writes_what_compact_json_dumps_writes() -> None:
    values = [None, True, 0, -3, 2.5, float("inf"), "引号\"与\\反斜杠\n", [], {},
              {"fields": {"amount": "8000.00", "tags": ["破损", 1, None]}, "n": [1.0, {"x": False}]}]
    for value in values:
        assert json_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_json_text_refuses_a_value_json_cannot_hold() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json_text({"when": date(2026, 2, 13)})
