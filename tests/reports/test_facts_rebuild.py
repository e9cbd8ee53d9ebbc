"""Lifecycle facts that were never written (a bundle that gained its reports over records it
already had) are rebuilt at start from tasks and flow instances, as the events would have
written them, and the dashboards that measure them count them again."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.clock import ManualClock
from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import report_facts
from reports.facts import complete_facts
from tests.flows.test_postal_flow import DELAY, POSTAL, Case, accept
from web.system import System, boot

KPIS = ("total", "on_time", "closed_72h", "repeats")


def facts(system: System) -> dict[int, dict[str, Any]]:
    with read_transaction(system.db) as conn:
        rows = conn.execute(sa.select(report_facts).where(report_facts.c.form == "complaint")).mappings()
        return {r["record_id"]: dict(r) for r in rows}


def kpis(system: System) -> dict[str, Any]:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("overview")
    return {w: reports.run(board, board.widgets[w], {}, Principal.system()).rows for w in KPIS}


def worked(db_url: str) -> tuple[System, ManualClock]:
    """Two closed complaints (one from a repeat customer), one accepted, one waiting."""
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    system = boot(POSTAL, db_url=db_url, clock=clock)
    for hours in (3, 30):
        case = accept(system, DELAY)
        clock.advance(timedelta(hours=hours))
        case.assess(finance=False).do("propose", "agent", {"compensation": "300", "basis": "条款 3.2"}).finish()
    accept(system, DELAY)
    Case(system, {**DELAY, "customer_name": "江南电商"})
    return system, clock


def forget_and_start_again(db_url: str) -> None:
    system, clock = worked(db_url)
    written, answers = facts(system), kpis(system)
    assert len(written) == 4 and sum(f["closed_at"] is not None for f in written.values()) == 2
    with transaction(system.db) as conn:
        conn.execute(report_facts.delete())
    system.db.dispose()
    again = boot(POSTAL, db_url=db_url, clock=clock)
    assert facts(again) == written
    assert kpis(again) == answers
    again.db.dispose()


def test_facts_missing_at_start_are_rebuilt_as_the_events_wrote_them(tmp_path: Path) -> None:
    forget_and_start_again(f"sqlite:///{tmp_path / 'docket.db'}")


@pytest.mark.postgres
def test_facts_missing_at_start_are_rebuilt_on_postgresql(postgres_url: str) -> None:
    forget_and_start_again(postgres_url)


def test_a_start_with_every_records_facts_in_place_rebuilds_none(tmp_path: Path) -> None:
    system, _ = worked(f"sqlite:///{tmp_path / 'docket.db'}")
    with transaction(system.db) as conn:
        assert complete_facts(conn, system.runtime, {"complaint"}) == []
