"""Revision 0003 moves rows written under 0001's timer and outbox vocabulary, and back."""

from __future__ import annotations

import pytest
from alembic import command

from engine.storage.db import create_engine, transaction
from engine.storage.migrations import alembic_config, upgrade


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_0003_upgrades_old_rows_and_downgrades_them_back(database: str, request: pytest.FixtureRequest) -> None:
    db = create_engine(request.getfixturevalue(f"{database}_url"))
    upgrade(db, "0002")
    with transaction(db) as conn:
        conn.exec_driver_sql("INSERT INTO dk_outbox (channel, recipient, idempotency_key, status, attempts, "
                             "created_at) VALUES ('log', 'a@example.com', 'k1', 'failed', 1, '2026-01-01 00:00:00+00')")
        conn.exec_driver_sql("INSERT INTO dk_timers (kind, key, due_at, payload, status, attempts) VALUES "
                             "('sla', 'a', '2026-01-01 00:00:00+00', '{}', 'done', 0), "
                             "('sla', 'b', '2026-01-01 00:00:00+00', '{}', 'cancelled', 0)")
    upgrade(db, "0003")
    with transaction(db) as conn:
        assert conn.exec_driver_sql("SELECT status, length(message_id), duplicates FROM dk_outbox").all() == [("pending", 32, 0)]
        assert conn.exec_driver_sql("SELECT key, status, subject FROM dk_timers").all() == [("a", "fired", "")]
    with pytest.raises(Exception, match="(?i)check"):
        with transaction(db) as conn:
            conn.exec_driver_sql("UPDATE dk_timers SET status = 'done'")  # the new vocabulary is enforced
    config = alembic_config()
    with transaction(db) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0002")
    with transaction(db) as conn:
        assert conn.exec_driver_sql("SELECT status FROM dk_timers").all() == [("done",)]
    upgrade(db)
    db.dispose()
