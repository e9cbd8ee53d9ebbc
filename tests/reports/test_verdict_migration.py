"""A database from before the SLA verdict was a report fact (revision 0009) gets the verdicts
of its records' clocks when it is upgraded (migration 0010), the same ones the SLA service
would have announced, and the overview's on-time rate counts them at once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine.identity import Principal
from engine.storage.db import read_transaction, transaction
from engine.storage.migrations import VERSION_TABLE, current_revision, head_revision, upgrade
from engine.storage.tables import report_verdicts
from tests.flows.test_postal_flow import DELAY, POSTAL, accept
from tests.reports.test_postal_on_time import MONDAY_10AM, postal, resolve
from web.system import System, boot


def kept(system: System) -> set[tuple[Any, ...]]:
    with read_transaction(system.db) as conn:
        return set(conn.execute(sa.select(report_verdicts)).all())


def on_time(system: System) -> Any:
    reports = system.runtime.services["reports"]
    board = reports.dashboard("overview")
    return reports.run(board, board.widgets["on_time"], {}, Principal.system()).rows


def test_upgrading_a_database_from_before_the_verdicts_fills_them_from_the_clocks(tmp_path: Path) -> None:
    system, clock = postal(tmp_path, MONDAY_10AM)
    resolve(accept(system, DELAY))  # met
    late = accept(system, {**DELAY, "customer_name": "乙"})
    waiting = accept(system, {**DELAY, "customer_name": "丙"})
    clock.advance(timedelta(days=3))
    while system.runtime.services["timers"].tick():  # the waiting one's breach: missed already
        pass
    resolve(late)  # missed
    accept(system, {**DELAY, "customer_name": "丁"})  # in time: undecided
    written, rate = kept(system), on_time(system)
    assert {(r[1], r[2], r[3]) for r in written} >= {(waiting.id, "resolution", "missed"), (late.id, "resolution", "missed")}
    with transaction(system.db) as conn:  # what the previous release left: no table, revision 0009
        conn.execute(sa.text("DROP TABLE dk_report_verdicts"))
        conn.execute(sa.text("ALTER TABLE dk_users DROP COLUMN password_temporary"))  # revision 0011's
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0009'"))
    engine = system.db
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert kept(system) == written
    system.db.dispose()
    again = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    assert on_time(again) == rate == [{"on_time_rate": 0.5}]
    again.db.dispose()
