"""The background scheduler: APScheduler only *ticks*; timers and messages live in the database.

RELIABILITY.md "Timers": APScheduler's defaults silently drop a job that came due while the
process was down (`misfire_grace_time` = 1 s) and a shared job store fires jobs twice. So the
jobs here are two in-memory interval jobs per process, `max_instances=1` (a slow tick is never
overlapped by the next), `coalesce=True` (ticks missed while busy become one) and
`misfire_grace_time=None` (a late tick still runs). Correctness comes from the atomic claims in
engine/timers.py and engine/outbox.py, so any number of processes may run this.

Timers and the outbox tick in separate jobs so a slow mail server never delays an escalation;
an hourly third job removes fired timers and sent messages older than 30 days.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta, timezone
from typing import TYPE_CHECKING, Any, Callable

from engine.storage.refusal import RepeatedRefusal, database_refusal

if TYPE_CHECKING:
    from engine.runtime import Runtime

__all__ = ["JOB_DEFAULTS", "Scheduler"]

log = logging.getLogger(__name__)

JOB_DEFAULTS: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": None}
RETENTION = timedelta(days=30)
BUDGET_SECONDS = 20.0
"""One job run stops starting new batches after this long, so shutdown stays prompt."""


class Scheduler:
    """Ticks `runtime.services["timers"]` and delivers `runtime.services["outbox"]`."""

    def __init__(self, runtime: "Runtime | Callable[[], Runtime]", *, timer_interval: float = 1.0,
                 outbox_interval: float = 2.0, batch: int = 500, outbox_batch: int = 100,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.memory import MemoryJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        # A callable is asked at every tick, so a definitions reload (a new Runtime) is picked
        # up without restarting the scheduler.
        self._runtime_of: Callable[[], Runtime] = runtime if callable(runtime) else (lambda: runtime)
        self.timer_interval = timer_interval
        self.outbox_interval = outbox_interval
        self.batch = batch
        self.outbox_batch = outbox_batch
        self._refusals = {what: RepeatedRefusal(log, f"{what} tick", monotonic=monotonic)
                          for what in ("timers", "outbox")}
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(max_workers=2)},
            job_defaults=dict(JOB_DEFAULTS),
            timezone=timezone.utc,
        )

    def start(self) -> None:
        """Start ticking in background threads (returns at once)."""
        if "timers" in self.runtime.services:
            self.scheduler.add_job(self.run_timers, "interval", seconds=self.timer_interval,
                                   id="docket-timers", name="tick durable timers", **JOB_DEFAULTS)
        if "outbox" in self.runtime.services:
            self.scheduler.add_job(self.run_outbox, "interval", seconds=self.outbox_interval,
                                   id="docket-outbox", name="deliver the outbox", **JOB_DEFAULTS)
        self.scheduler.add_job(self.housekeeping, "interval", hours=1, id="docket-housekeeping",
                               name="purge old fired timers and sent messages", **JOB_DEFAULTS)
        self.scheduler.start()
        log.info("scheduler started: timers every %ss, outbox every %ss", self.timer_interval,
                 self.outbox_interval)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop ticking; with `wait`, let a running tick finish first."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)

    @property
    def runtime(self) -> "Runtime":
        """The runtime whose timers and outbox the next tick serves."""
        return self._runtime_of()

    @property
    def running(self) -> bool:
        return bool(self.scheduler.running)

    def jobs(self) -> list[Any]:
        return list(self.scheduler.get_jobs())

    def run_timers(self) -> int:
        """One job run: fire due timers in batches until none are left (or the budget is spent)."""
        service = self.runtime.services["timers"]
        return self._loop("timers", lambda: service.tick_batch(limit=self.batch), self.batch)

    def run_outbox(self) -> int:
        """One job run: deliver due messages in batches."""
        outbox = self.runtime.services["outbox"]

        def one() -> tuple[int, int]:
            sent = outbox.deliver(limit=self.outbox_batch)
            return sent, sent

        return self._loop("outbox", one, self.outbox_batch)

    def housekeeping(self) -> int:
        """Delete fired timers and sent messages older than RETENTION; how many rows went."""
        removed = 0
        try:
            if "timers" in self.runtime.services:
                removed += self.runtime.services["timers"].purge_fired(older_than=RETENTION)
            if "outbox" in self.runtime.services:
                removed += self.runtime.services["outbox"].purge_sent(older_than=RETENTION)
        except Exception:  # noqa: BLE001 - next hour tries again
            log.warning("housekeeping failed; next run retries", exc_info=True)
        return removed

    def _loop(self, what: str, step: Any, batch: int) -> int:
        # An exception must never escape: APScheduler would log it at ERROR each second, and a
        # "database is locked" under load is a retry, not an error (RELIABILITY 24).
        done = 0
        started = time.monotonic()
        try:
            while True:
                claimed, count = step()
                done += count
                if claimed < batch or time.monotonic() - started > BUDGET_SECONDS:
                    self._refusals[what].answered()
                    return done
        except Exception as exc:  # noqa: BLE001 - keep the scheduler thread alive whatever happens
            reason = database_refusal(exc)  # locked, down, read-only after a failover, no privilege
            if reason is None:
                log.exception("%s tick failed; next tick retries", what)
            else:
                self._refusals[what].refused(reason)
        return done
