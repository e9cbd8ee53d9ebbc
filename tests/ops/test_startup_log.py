"""What a server logs at start when it brings the record tables up to date: one line per change
it makes, each a log record of its own (with its time and level in the journal), and a change
it leaves for `docket migrate` said once, as a warning."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from engine.storage.records import ColumnSpec, RecordTableSpec, apply_additive, plan_migration

V1 = RecordTableSpec("complaint", (ColumnSpec("customer", sa.String(100)), ColumnSpec("expected", sa.Text())))
V2 = RecordTableSpec("complaint", (ColumnSpec("customer", sa.String(100)), ColumnSpec("outcome", sa.Text()),
                                   ColumnSpec("region", sa.String(64), index=True)))
"""The analyst renamed `expected` to `outcome` and added `region`."""


def test_a_field_left_for_docket_migrate_is_logged_once_and_each_change_on_a_line_of_its_own(
        sqlite_engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    apply_additive(sqlite_engine, plan_migration(sqlite_engine, V1))
    with caplog.at_level(logging.INFO, logger="engine.storage.records"):
        apply_additive(sqlite_engine, plan_migration(sqlite_engine, V2))
    messages = [record.getMessage() for record in caplog.records]
    assert sum("expected is no longer in the form" in m for m in messages) == 1
    assert all("\n" not in m for m in messages)
    assert "rec_complaint: add column outcome (nullable)" in messages
    assert "rec_complaint: add column region (nullable)" in messages
