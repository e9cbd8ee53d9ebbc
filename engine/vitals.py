"""What an operator watches to know Docket is healthy, read from the database in one go.

The engines keep their work in tables (timers, the outbox, incidents, tasks, SLA clocks), so
whether the background work keeps up is a question the database answers for every process at
once: a timer long past its due time means no scheduler is ticking (the worker is down); dead
messages mean a channel refuses (a wrong secret, a gateway gone); open incidents are records
stopped for an administrator. `/metrics` (Prometheus) and the admin overview page both show
these numbers; each query runs on an index, so a scrape every 15 seconds costs little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.outbox import message_counts
from engine.storage.tables import OUTBOX_STATUSES, TIMER_STATUSES, incidents, outbox, sla_clocks, tasks, timers

TIMER_GRACE = timedelta(minutes=1)
"""How late a pending timer may be before it counts as late: a tick runs every second, and a
busy one may take a while; a minute late means no scheduler is ticking."""


@dataclass(frozen=True)
class Vitals:
    """The numbers an operator watches, read at `at`."""

    at: datetime
    outbox: dict[str, int] = field(default_factory=dict)
    """Messages by status (pending, sending, sent, dead)."""
    outbox_oldest_pending: timedelta | None = None
    """How long the oldest message still to send has waited; None when none waits."""
    timers: dict[str, int] = field(default_factory=dict)
    """Timers by status (pending, claimed, fired, failed, incident)."""
    timers_late: int = 0
    """Pending timers more than TIMER_GRACE past their due time."""
    timers_latest_lateness: timedelta | None = None
    """How far past its due time the most overdue pending timer is; None when none is late."""
    incidents_open: int = 0
    tasks_open: int = 0
    """Open or claimed tasks, everyone's."""
    tasks_overdue: int = 0
    """Open or claimed tasks past their step's due time."""
    sla_breached_open: int = 0
    """SLA clocks past their target on records still being handled (running or paused)."""

    @property
    def waiting_for_admin(self) -> int:
        """Incidents and timers that stopped for an administrator (the admin's Incidents page)."""
        return self.incidents_open + self.timers.get("incident", 0)

    @property
    def worker_stalled(self) -> bool:
        """Timers are late: no scheduler (server or `docket worker`) is firing them."""
        return self.timers_late > 0


def read_vitals(conn: Connection, now: datetime) -> Vitals:
    """The vitals as the database holds them at `now`, inside the caller's transaction."""
    box = {status: n for status, n in message_counts(conn).items() if status in OUTBOX_STATUSES}
    oldest_box = conn.execute(sa.select(sa.func.min(outbox.c.created_at))
                              .where(outbox.c.status.in_(("pending", "sending")))).scalar()
    clock = {status: 0 for status in TIMER_STATUSES}
    clock.update({s: int(n) for s, n in conn.execute(
        sa.select(timers.c.status, sa.func.count()).group_by(timers.c.status))})
    late_before = now - TIMER_GRACE
    late, earliest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(timers.c.due_at))
        .where(timers.c.status == "pending", timers.c.due_at < late_before)).one()
    open_tasks = tasks.c.status.in_(("open", "claimed"))
    open_count, overdue = conn.execute(sa.select(
        sa.func.count(), sa.func.coalesce(sa.func.sum(sa.case((tasks.c.due_at < now, 1), else_=0)), 0))
        .where(open_tasks)).one()
    return Vitals(
        at=now, outbox=box, outbox_oldest_pending=_age(now, oldest_box), timers=clock,
        timers_late=int(late or 0), timers_latest_lateness=_age(now, earliest) if late else None,
        incidents_open=int(conn.execute(sa.select(sa.func.count()).where(incidents.c.resolved_at.is_(None))).scalar() or 0),
        tasks_open=int(open_count or 0), tasks_overdue=int(overdue or 0),
        sla_breached_open=int(conn.execute(sa.select(sa.func.count()).where(
            sla_clocks.c.status.in_(("running", "paused")), sla_clocks.c.breached_at.is_not(None))).scalar() or 0),
    )


def _age(now: datetime, since: Any) -> timedelta | None:
    return None if since is None else max(now - since, timedelta(0))
