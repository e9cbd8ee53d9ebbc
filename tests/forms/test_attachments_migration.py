"""Revision 0002 adds `dk_attachments` to a database that is at 0001, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from engine.storage.db import create_engine, read_transaction, schema_inspector, transaction
from engine.storage.migrations import current_revision, head_revision, upgrade
from engine.storage.tables import attachments, users

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine_at_0001(request: pytest.FixtureRequest) -> Iterator[Engine]:
    engine = create_engine(str(request.getfixturevalue(f"{request.param}_url")))
    upgrade(engine, "0001")
    yield engine
    engine.dispose()


def table_names(engine: Engine) -> set[str]:
    with read_transaction(engine) as conn:
        return set(schema_inspector(conn).get_table_names())


def test_0002_adds_the_attachments_table_and_keeps_existing_rows(engine_at_0001: Engine) -> None:
    assert current_revision(engine_at_0001) == "0001"
    assert "dk_attachments" not in table_names(engine_at_0001)
    with transaction(engine_at_0001) as conn:
        conn.execute(users.insert().values(username="alice", created_at=NOW))
    upgrade(engine_at_0001)
    assert current_revision(engine_at_0001) == head_revision()
    assert "dk_attachments" in table_names(engine_at_0001)
    with read_transaction(engine_at_0001) as conn:
        assert conn.execute(sa.select(users.c.username)).scalars().all() == ["alice"]
        indexes = {ix["name"] for ix in schema_inspector(conn).get_indexes("dk_attachments")}
    assert {"ix_dk_attachments_sha256", "ix_dk_attachments_form_record_id"} <= indexes


def test_the_status_check_constraint_holds_after_the_upgrade(engine_at_0001: Engine) -> None:
    upgrade(engine_at_0001)
    row = dict(id="t" * 32, sha256="0" * 64, size=1, media_type="image/png", original_name="a.png",
               created_at=NOW, status="pending")
    with transaction(engine_at_0001) as conn:
        conn.execute(attachments.insert().values(row))
    with pytest.raises(IntegrityError), transaction(engine_at_0001) as conn:
        conn.execute(attachments.insert().values({**row, "id": "u" * 32, "status": "lost"}))
