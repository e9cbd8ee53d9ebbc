"""A withdrawn complaint in the postal dashboards: the closure rates (on time, within 72 h)
count only complaints that were resolved, not ones their customer took back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from tests.flows.test_postal_flow import DELAY, accept
from tests.reports.test_facts_rebuild import kpis, worked
from web.system import System


def rates(system: System) -> dict[str, object]:
    answers = kpis(system)
    return {"on_time": answers["on_time"], "closed_72h": answers["closed_72h"]}


def test_a_withdrawn_complaint_is_not_counted_in_the_closure_rates(tmp_path: Path) -> None:
    system, clock = worked(f"sqlite:///{tmp_path / 'docket.db'}")
    before = rates(system)
    late = accept(system, {**DELAY, "customer_name": "西南物流"})
    clock.advance(timedelta(hours=80))  # past every closure target
    system.flows.withdraw("complaint", late.id, actor="accounts")
    assert rates(system) == before
    rollup = system.runtime.services.pop("rollups")
    try:  # the maintained cells say what a scan of the records says
        scanned = rates(system)
    finally:
        system.runtime.services["rollups"] = rollup
    assert scanned == before
