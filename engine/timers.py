"""Durable timers: rows with a due time, fired exactly once by any number of ticking processes.

How a timer fires (DESIGN.md "Timers and background work", RELIABILITY.md "Timers"):

1. **Claim** (one short transaction per batch): due rows (`pending`, `due_at <= now`) and rows
   whose claim lease expired or whose retry time came (`claimed` / `failed`,
   `lease_until <= now`) become `claimed` by this worker until `now + lease`. PostgreSQL selects
   them `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint rows without waiting; SQLite
   runs the claim inside `BEGIN IMMEDIATE` (engine/storage/db.py), the single writer lock giving
   the same exclusion. Both queries walk an index on (status, due_at) or (status, lease_until),
   so a tick costs what is due, not what is open.
2. **Fire** (up to `fire_batch` timers share one transaction): a guarded update marks the
   timers this worker still holds `fired`; then their handlers run on the same connection.
   Handler effects and the `fired` marks commit together or not at all, so a crash anywhere
   before the commit leaves claims whose leases expire and are taken again: a timer's effects
   commit exactly once (handler *code* may run again after a rollback, so handlers keep their
   effects in the transaction and send messages through the outbox).
3. **Fail**: a raising handler rolls the group back; its attempt is counted and either a retry
   is scheduled with exponential backoff (`failed`, retry at `lease_until`) or, when the policy
   is used up, the timer is parked as an `incident` that an admin lists (`incidents()`) and
   retries (`retry()`). The rest of the group fires again, each timer in its own savepoint, so
   other timers keep firing.

Recurring work (an escalation every 2 hours) is a handler that re-arms its own timer. After
downtime a timer fires once, late, never dropped as "misfired"; a recurring handler should
re-arm at `next_occurrence(...)`, which skips the occurrences missed while nothing ran, so a
6-hour outage gives one catch-up firing, not three (the coalescing policy, docs/reference/channels.md
and docs/decisions/0008-durable-timers-and-outbox.md).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.backoff import RetryPolicy, error_text
from engine.clock import ensure_utc
from engine.errors import DocketError
from engine.storage.db import read_transaction, savepoint, transaction
from engine.storage.prepared import PreparedQuery
from engine.storage.tables import timers as T

if TYPE_CHECKING:
    from engine.clock import ManualClock
    from engine.runtime import Runtime

__all__ = ["Timer", "TimerHandler", "TimerService", "TimerError", "next_occurrence", "worker_name"]

log = logging.getLogger(__name__)

_MAX_KIND, _MAX_SUBJECT, _MAX_KEY = 50, 255, 255


class TimerError(DocketError):
    """A timer could not be scheduled (bad kind, subject, due time or payload)."""


class _HandlerFailed(Exception):
    """A handler raised while firing a group without savepoints: roll the group back."""

    def __init__(self, timer: "Timer", error: Exception, policy: "RetryPolicy | None"):
        super().__init__(str(error))
        self.timer, self.error, self.policy = timer, error, policy


@dataclass(frozen=True)
class Timer:
    """One timer as its handler (and an admin) sees it."""

    id: int
    kind: str
    subject: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int
    status: str = "pending"
    last_error: str | None = None


TimerHandler = Callable[[Connection, Timer], None]


def worker_name() -> str:
    """A name unique to this process (host, pid, random), recorded on the rows it claims."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def next_occurrence(first_due: datetime, every: timedelta, after: datetime) -> datetime:
    """The first instant `first_due + k * every` (k >= 1) strictly after `after`.

    Recurring timers re-arm with this: occurrences missed during downtime are coalesced into the
    one late firing instead of firing back to back.
    """
    if every <= timedelta(0):
        raise ValueError(f"a recurrence interval must be positive, got {every}")
    first_due, after = ensure_utc(first_due), ensure_utc(after)
    steps = max(1, (after - first_due) // every + 1)
    return first_due + every * steps


def _open_key(kind: str, subject: str, key: str) -> str:
    return hashlib.sha256(json.dumps([kind, subject, key]).encode()).hexdigest()


def _as_timer(row: Any) -> Timer:
    return Timer(row.id, row.kind, row.subject, row.key, row.due_at, dict(row.payload or {}),
                 row.attempts, row.status, row.last_error)


_COLUMNS = (T.c.id, T.c.kind, T.c.subject, T.c.key, T.c.due_at, T.c.payload, T.c.attempts,
            T.c.status, T.c.last_error)

# Arming, cancelling and listing a subject's timers run inside commands (SLA clocks re-arm on
# most events of a record): prepared once, run on the driver's cursor (engine/storage/prepared.py).
_SCHEDULE_COLUMNS = ("kind", "subject", "key", "due_at", "payload", "status", "attempts", "lease_until",
                     "claimed_by", "last_error", "open_key", "created_at", "fired_at")
_SCHEDULE: dict[str, PreparedQuery] = {}
"""The re-arming upsert, per dialect (its ON CONFLICT clause is dialect-specific)."""
_CANCEL = PreparedQuery(T.delete().where(T.c.kind == sa.bindparam("kind"), T.c.subject == sa.bindparam("subject"),
                                         T.c.open_key.is_not(None)))
_CANCEL_KEY = PreparedQuery(T.delete().where(T.c.kind == sa.bindparam("kind"), T.c.subject == sa.bindparam("subject"),
                                             T.c.open_key.is_not(None), T.c.key == sa.bindparam("key")))
_PENDING_OF_KIND = PreparedQuery(sa.select(*_COLUMNS).where(
    T.c.open_key.is_not(None), T.c.subject == sa.bindparam("subject"), T.c.kind == sa.bindparam("kind"))
    .order_by(T.c.due_at, T.c.id))


def _schedule_statement(conn: Connection) -> PreparedQuery:
    prepared = _SCHEDULE.get(conn.dialect.name)
    if prepared is None:
        insert = dialect_insert(conn)(T).values({k: sa.bindparam(k, type_=T.c[k].type) for k in _SCHEDULE_COLUMNS})
        # Re-arm in place: the unique open_key makes a concurrent second schedule wait for the
        # first and then update its row instead of adding a duplicate.
        update = {k: insert.excluded[k] for k in _SCHEDULE_COLUMNS if k not in ("kind", "subject", "key", "open_key")}
        prepared = _SCHEDULE[conn.dialect.name] = PreparedQuery(
            insert.on_conflict_do_update(index_elements=[T.c.open_key], set_=update).returning(T.c.id))
    return prepared


class TimerService:
    """Schedules, cancels and fires durable timers; `runtime.services["timers"]`.

    `lease` bounds how long a claim protects a timer from other workers: a worker that dies
    after claiming delays the timer by at most this much. `policy` is the default retry policy;
    `on(kind, handler, policy=...)` overrides it per kind. Up to `fire_batch` timers share one
    firing transaction; 1 gives every timer a transaction of its own. On SQLite a firing
    transaction holds the write lock, so keep batches small enough to finish well within
    busy_timeout.
    """

    def __init__(self, runtime: "Runtime", *, lease: timedelta = timedelta(minutes=5),
                 policy: RetryPolicy | None = None, worker: str | None = None,
                 fire_batch: int = 50) -> None:
        if lease <= timedelta(0):
            raise ValueError("the claim lease must be positive")
        self.runtime = runtime
        self.lease = lease
        self.policy = policy or RetryPolicy()
        self.worker = worker or worker_name()
        self.fire_batch = max(1, fire_batch)
        self._handlers: dict[str, tuple[TimerHandler, RetryPolicy | None]] = {}
        self._lock = threading.Lock()  # one tick at a time in this process
        runtime.services["timers"] = self

    # -- registration -------------------------------------------------------------------------

    def on(self, kind: str, handler: TimerHandler, *, policy: RetryPolicy | None = None) -> None:
        """Run `handler(conn, timer)` when a timer of `kind` is due, inside the firing transaction.

        Raising retries the timer with backoff; after the policy's attempts it becomes an incident.
        """
        _check_text("kind", kind, _MAX_KIND, required=True)
        if kind in self._handlers:
            raise TimerError(f"a handler for timer kind '{kind}' is already registered")
        self._handlers[kind] = (handler, policy)

    def kinds(self) -> list[str]:
        """Timer kinds with a handler in this process."""
        return sorted(self._handlers)

    # -- inside a caller's transaction ----------------------------------------------------------

    def schedule(self, conn: Connection, *, kind: str, subject: str, due_at: datetime,
                 payload: Mapping[str, Any] | None = None, key: str = "") -> int:
        """Arm a timer in the caller's transaction; returns its id.

        An open timer with the same (kind, subject, key) is replaced (re-armed: new due time and
        payload, attempts reset), also when two transactions arm it at once.
        """
        _check_text("kind", kind, _MAX_KIND, required=True)
        _check_text("subject", subject, _MAX_SUBJECT, required=True)
        _check_text("key", key, _MAX_KEY)
        try:
            due = ensure_utc(due_at, what=f"due time of timer {kind} {subject}")
        except (ValueError, AttributeError) as exc:
            raise TimerError(str(exc)) from None
        data = dict(payload or {})
        try:
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise TimerError(f"payload of timer {kind} {subject} is not JSON data: {exc}") from None
        values = {"kind": kind, "subject": subject, "key": key, "due_at": due, "payload": data,
                  "status": "pending", "attempts": 0, "lease_until": None, "claimed_by": None,
                  "last_error": None, "open_key": _open_key(kind, subject, key),
                  "created_at": self.runtime.clock.now(), "fired_at": None}
        # An upsert on the unique open_key (see _schedule_statement): re-armed in place.
        return int(_schedule_statement(conn).scalar(conn, values))

    def cancel(self, conn: Connection, *, kind: str, subject: str, key: str | None = None) -> int:
        """Remove open timers of `kind` for `subject` (only `key` if given); returns how many.

        A timer already being fired by another worker is not removed: its firing commits first
        and the cancel then finds it fired (the handler must check its subject's state).
        """
        if key is None:
            return _CANCEL.execute(conn, {"kind": kind, "subject": subject})
        return _CANCEL_KEY.execute(conn, {"kind": kind, "subject": subject, "key": key})

    def pending(self, conn: Connection, *, subject: str | None = None, kind: str | None = None,
                limit: int | None = None) -> list[Timer]:
        """Open timers (not yet fired: pending, claimed, retrying or incident), soonest first."""
        if subject is not None and kind is not None and limit is None:  # the commands' case: prepared
            return [Timer(r["id"], r["kind"], r["subject"], r["key"], r["due_at"], dict(r["payload"] or {}),
                          r["attempts"], r["status"], r["last_error"])
                    for r in _PENDING_OF_KIND.all(conn, {"subject": subject, "kind": kind})]
        stmt = sa.select(*_COLUMNS).where(T.c.open_key.is_not(None))
        if subject is not None:
            stmt = stmt.where(T.c.subject == subject)
        if kind is not None:
            stmt = stmt.where(T.c.kind == kind)
        stmt = stmt.order_by(T.c.due_at, T.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return [_as_timer(r) for r in conn.execute(stmt)]

    # -- firing -----------------------------------------------------------------------------------

    def tick(self, *, now: datetime | None = None, limit: int = 500) -> int:
        """Claim up to `limit` due timers and fire each in its own transaction; the fired count."""
        return self.tick_batch(now=now, limit=limit)[1]

    def advance(self, clock: "ManualClock", until: datetime) -> int:
        """Move a manual clock on to `until`, firing every timer at its own due time on the way
        (a warning at 80%, then each escalation two hours apart), as a scheduler would have;
        the number fired. For scenario tests and simulations, which run weeks in seconds."""
        fired = self.tick()
        while True:
            now = clock.now()
            with read_transaction(self.runtime.db) as conn:
                due = conn.execute(sa.select(sa.func.min(T.c.due_at)).where(
                    T.c.open_key.is_not(None), T.c.status == "pending",
                    T.c.due_at > now, T.c.due_at <= until)).scalar()
            if due is None:
                break
            clock.set(due)
            fired += self.tick()
        if until > clock.now():
            clock.set(until)
        return fired + self.tick()

    def tick_batch(self, *, now: datetime | None = None, limit: int = 500) -> tuple[int, int]:
        """Like `tick`, returning (claimed, fired): a scheduler loops while claimed == limit."""
        at = self._now(now)
        with self._lock:
            claimed = self._claim(at, limit)
            step = self.fire_batch
            fired = sum(self._fire_group(claimed[i:i + step], at) for i in range(0, len(claimed), step))
        return len(claimed), fired

    def _now(self, now: datetime | None) -> datetime:
        return ensure_utc(now, what="tick time") if now is not None else self.runtime.clock.now()

    def _claim(self, now: datetime, limit: int) -> list[Timer]:
        lease_until = now + self.lease
        claimed: list[Timer] = []
        with transaction(self.runtime.db) as conn:
            # Due timers first, then expired claims and retries: two index range scans.
            for where, order in (
                ((T.c.status == "pending", T.c.due_at <= now), T.c.due_at),
                ((T.c.status.in_(("claimed", "failed")), T.c.lease_until <= now), T.c.lease_until),
            ):
                room = limit - len(claimed)
                if room <= 0:
                    break
                ids = (sa.select(T.c.id).where(*where).order_by(order).limit(room)
                       .with_for_update(skip_locked=True).scalar_subquery())
                # (SQLite ignores FOR UPDATE; its BEGIN IMMEDIATE already excludes other writers.)
                rows = conn.execute(
                    T.update().where(T.c.id.in_(ids))
                    .values(status="claimed", lease_until=lease_until, claimed_by=self.worker)
                    .returning(*_COLUMNS)
                ).all()
                claimed.extend(_as_timer(r) for r in rows)
        claimed.sort(key=lambda t: (t.due_at, t.id))
        return claimed

    def _fire(self, timer: Timer, now: datetime) -> bool:
        """Fire one claimed timer in a transaction of its own; True if its handler committed."""
        return self._fire_group([timer], now) == 1

    def _fire_group(self, group: list[Timer], now: datetime) -> int:
        """Fire claimed timers in one transaction: the common case costs one commit per group.

        One guarded update marks every timer this worker still holds as `fired` (a timer
        cancelled, re-armed or taken over after our lease is skipped); the marks and the
        handlers' effects commit together, so a crash before the commit leaves every timer of
        the group claimed until its lease expires: none is lost or fired twice. If a handler
        raises, the whole transaction rolls back, that timer's failure is recorded on its own,
        and the rest of the group is fired again with a savepoint per timer. Handlers must
        therefore keep their effects in the transaction (the outbox for messages): handler code
        may run again, its effects commit once.
        """
        try:
            return self._fire_in_one_transaction(group, now, savepoints=False)
        except _HandlerFailed as failed:
            try:
                with transaction(self.runtime.db) as conn:
                    self._failed(conn, failed.timer, failed.error, now, failed.policy)
            except Exception:  # noqa: BLE001 - its lease expires and it is tried again
                log.warning("could not record the failure of timer %s", failed.timer.id, exc_info=True)
            rest = [t for t in group if t.id != failed.timer.id]
            try:
                return self._fire_in_one_transaction(rest, now, savepoints=True) if rest else 0
            except Exception:  # noqa: BLE001
                log.warning("firing %d timer(s) failed before commit; they are tried again after "
                            "their lease", len(rest), exc_info=True)
                return 0
        except Exception:  # noqa: BLE001 - leases expire and the whole group is tried again
            log.warning("firing %d timer(s) failed before commit; they are tried again after their "
                        "lease", len(group), exc_info=True)
            return 0

    def _fire_in_one_transaction(self, group: list[Timer], now: datetime, *, savepoints: bool) -> int:
        fired = 0
        with transaction(self.runtime.db) as conn:
            owned = set(conn.execute(
                T.update()
                .where(T.c.id.in_([t.id for t in group]), T.c.status == "claimed",
                       T.c.claimed_by == self.worker)
                .values(status="fired", fired_at=now, open_key=None, lease_until=None)
                .returning(T.c.id)
            ).scalars())
            for timer in group:
                if timer.id not in owned:
                    continue
                entry = self._handlers.get(timer.kind)
                if entry is None:
                    error = TimerError(f"no handler is registered for timer kind '{timer.kind}' "
                                       f"(known: {', '.join(self.kinds()) or 'none'})")
                    self._failed(conn, timer, error, now, None)
                    continue
                if not savepoints:
                    try:
                        entry[0](conn, timer)
                    except Exception as exc:  # noqa: BLE001 - roll back all, then fire one by one
                        raise _HandlerFailed(timer, exc, entry[1]) from exc
                    fired += 1
                    continue
                try:
                    with savepoint(conn):
                        entry[0](conn, timer)
                    fired += 1
                except Exception as exc:  # noqa: BLE001 - retried with backoff, then an incident
                    self._failed(conn, timer, exc, now, entry[1])
        return fired

    def _failed(self, conn: Connection, timer: Timer, exc: Exception, now: datetime,
                policy: RetryPolicy | None) -> None:
        """Record a failed attempt of a timer this worker claimed (or marked fired in this very
        transaction): a retry after backoff, or an incident when the policy is used up."""
        policy = policy or self.policy
        failures = timer.attempts + 1
        message = error_text(exc)
        if policy.exhausted(failures):
            values: dict[str, Any] = {"status": "incident", "lease_until": None}
            log.error("timer %s (%s %s) failed %d times, now an incident: %s",
                      timer.id, timer.kind, timer.subject, failures, message)
        else:
            values = {"status": "failed", "lease_until": now + policy.delay(failures)}
            log.warning("timer %s (%s %s) failed (attempt %d of %d), retrying at %s: %s",
                        timer.id, timer.kind, timer.subject, failures, policy.max_attempts,
                        values["lease_until"].isoformat(), message)
        try:
            with savepoint(conn):
                conn.execute(
                    T.update().where(T.c.id == timer.id, T.c.claimed_by == self.worker)
                    .values(attempts=failures, last_error=message, fired_at=None,
                            open_key=_open_key(timer.kind, timer.subject, timer.key), **values)
                )
        except sa.exc.IntegrityError:
            # Another timer of this batch re-armed the same (kind, subject, key): the new timer
            # supersedes the failed one, which stays closed.
            log.warning("timer %s failed but was re-armed in the same batch; the new timer stands",
                        timer.id)

    # -- administration -----------------------------------------------------------------------

    def incidents(self, conn: Connection | None = None, *, limit: int = 200) -> list[Timer]:
        """Timers that used up their retries, newest first, with the last error."""
        stmt = sa.select(*_COLUMNS).where(T.c.status == "incident").order_by(T.c.id.desc()).limit(limit)
        if conn is not None:
            return [_as_timer(r) for r in conn.execute(stmt)]
        with read_transaction(self.runtime.db) as own:
            return [_as_timer(r) for r in own.execute(stmt)]

    def retry(self, timer_id: int, conn: Connection | None = None) -> bool:
        """Put an incident back to pending (fires at the next tick, attempts reset); False if
        the timer is not an incident (already retried, fired, re-armed or cancelled)."""
        stmt = (T.update().where(T.c.id == timer_id, T.c.status == "incident")
                .values(status="pending", attempts=0, lease_until=None, claimed_by=None))
        if conn is not None:
            return conn.execute(stmt).rowcount == 1
        with transaction(self.runtime.db) as own:
            return own.execute(stmt).rowcount == 1

    def purge_fired(self, *, older_than: timedelta = timedelta(days=30), limit: int = 10_000) -> int:
        """Delete fired timers that fired more than `older_than` ago (housekeeping)."""
        cutoff = self.runtime.clock.now() - older_than
        with transaction(self.runtime.db) as conn:
            ids = (sa.select(T.c.id).where(T.c.status == "fired", T.c.fired_at < cutoff)
                   .limit(limit).scalar_subquery())
            return conn.execute(T.delete().where(T.c.id.in_(ids))).rowcount


def dialect_insert(conn: Connection) -> Any:
    """The dialect's `insert` construct, which has `on_conflict_do_update/nothing`."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - Docket supports SQLite and PostgreSQL
        raise TimerError(f"timers need SQLite or PostgreSQL, not {conn.dialect.name}")
    return insert


def _check_text(what: str, value: Any, limit: int, *, required: bool = False) -> None:
    if not isinstance(value, str):
        raise TimerError(f"timer {what} must be text, got {type(value).__name__}")
    if required and not value:
        raise TimerError(f"timer {what} must not be empty")
    if len(value) > limit:
        raise TimerError(f"timer {what} is {len(value)} characters long; the limit is {limit}")
