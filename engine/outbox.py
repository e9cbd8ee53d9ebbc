"""The outbox: messages written in the caller's transaction, delivered after commit.

`enqueue` inserts a row in the same transaction as the change that caused it, so a rolled-back
change sends nothing (RELIABILITY 35). `deliver` (run by the scheduler, any number of processes)
claims due rows the way timers are claimed (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
`BEGIN IMMEDIATE` write lock on SQLite), with a lease, then sends each one **outside** any
transaction (a slow SMTP server must not hold the database) and records the outcome:

- sent: `sent`;
- failed: back to `pending` with exponential backoff, until the retry policy is used up, then
  `dead` (the dead-letter list an admin sees and retries, RELIABILITY 38); a
  `PermanentDeliveryError` (refused webhook target, header injection) is dead at once;
- the relay died mid-send: the lease expires, the row is claimed again and sent again with the
  same `message_id` (RELIABILITY 36, 37). Delivery is at-least-once; the resend is counted in
  `duplicates` and reported by `stats()`, never hidden.

A message may ask for the receiver's answer (`enqueue(reply=...)`: another system's payment
voucher number, a waybill's status): the handler registered for the reply's `kind`
(`on_reply`) runs in the transaction that marks the message sent, so an answer is applied once,
with the delivery, or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.backoff import RetryPolicy, error_text
from engine.channels.base import (
    ChannelConfig, DeliveryError, OutboundMessage, PermanentDeliveryError, missing_environment,
    resolve_settings,
)
from engine.clock import ensure_utc
from engine.switches import switched_on
from engine.errors import DocketError
from engine.storage.db import read_transaction, savepoint, transaction
from engine.storage.prepared import PreparedQuery
from engine.storage.tables import outbox as O
from engine.timers import dialect_insert, worker_name
from engine.types import clip

if TYPE_CHECKING:
    from engine.runtime import Runtime

__all__ = ["Outbox", "OutboxEntry", "OutboxError", "configured_channels"]

log = logging.getLogger(__name__)
settings_log = logging.getLogger(f"{__name__}.settings")
"""The channel settings missing at start: what a server or worker must say, and a one-off
command (`docket users ...`, a nightly `files sweep`), which sends nothing, leaves unsaid."""

_MAX_SUBJECT, _MAX_RECIPIENT, _MAX_KEY = 500, 500, 200
ReplyHandler = Callable[[Connection, OutboundMessage, Any], None]
"""`handler(conn, message, answer)`: applies a receiver's answer (JSON data, or None when it
answered nothing readable) inside the transaction that marks the message sent."""
DRY_RUN_ENV = "DOCKET_OUTBOX_DRY_RUN"
"""Set to 1 on a demo or staging server: every message goes to the log channel instead."""


class OutboxError(DocketError):
    """A message could not be queued (unknown channel, bad recipients, data not JSON)."""


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as an admin sees it."""

    id: int
    message_id: str
    channel: str
    to: tuple[str, ...]
    subject: str
    status: str
    attempts: int
    duplicates: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None


def configured_channels(meta: Any) -> dict[str, ChannelConfig]:
    """Channels a bundle can send through: bundle.yaml `channels:` plus `log`, always there."""
    channels: dict[str, ChannelConfig] = dict(getattr(meta, "channels", None) or {})
    channels.setdefault("log", ChannelConfig("log", "log", {}))
    return channels


_ENTRY_COLUMNS = (O.c.id, O.c.message_id, O.c.channel, O.c.payload, O.c.subject, O.c.status,
                  O.c.attempts, O.c.duplicates, O.c.last_error, O.c.created_at, O.c.sent_at,
                  O.c.next_attempt_at)


_ENQUEUE_COLUMNS = ("channel", "recipient", "subject", "body", "payload", "idempotency_key", "message_id",
                    "status", "attempts", "next_attempt_at", "created_at")
_ENQUEUE: dict[str, PreparedQuery] = {}
"""The queuing insert per dialect (ON CONFLICT is dialect-specific): rules queue messages on
most events of a flow, so it is prepared once and run on the driver's cursor."""


def _enqueue_statement(conn: Connection) -> PreparedQuery:
    prepared = _ENQUEUE.get(conn.dialect.name)
    if prepared is None:
        stmt = (dialect_insert(conn)(O).values({k: sa.bindparam(k, type_=O.c[k].type) for k in _ENQUEUE_COLUMNS})
                .on_conflict_do_nothing(index_elements=[O.c.idempotency_key]).returning(O.c.id))
        prepared = _ENQUEUE[conn.dialect.name] = PreparedQuery(stmt)
    return prepared


_MESSAGE_COLUMNS = (O.c.id, O.c.message_id, O.c.channel, O.c.payload, O.c.subject, O.c.body,
                    O.c.attempts, O.c.created_at)


def _message(row: Any) -> OutboundMessage:
    """A row of `_MESSAGE_COLUMNS` as its channel sees it."""
    payload = row.payload or {}
    return OutboundMessage(row.id, row.message_id, row.channel, tuple(payload.get("to") or ()),
                           row.subject or "", row.body or "", dict(payload.get("data") or {}),
                           row.attempts, row.created_at, payload.get("reply"))


def _entry(row: Any) -> OutboxEntry:
    to = tuple((row.payload or {}).get("to") or ())
    return OutboxEntry(row.id, row.message_id, row.channel, to, row.subject or "", row.status,
                       row.attempts, row.duplicates, row.last_error, row.created_at, row.sent_at,
                       row.next_attempt_at)


class Outbox:
    """Queues messages transactionally and relays them; `runtime.services["outbox"]`.

    `lease` must exceed the slowest send (channel timeouts are 10-30 s): a relay that dies
    delays its messages by at most this much. `parallel` sends run at once, so one slow
    receiver does not hold up the others. `dry_run` (default: $DOCKET_OUTBOX_DRY_RUN) logs every
    message instead of sending it, for demo and staging servers that must not mail customers.
    """

    def __init__(self, runtime: "Runtime", *, policy: RetryPolicy | None = None,
                 lease: timedelta = timedelta(minutes=2), parallel: int = 4,
                 worker: str | None = None, environ: Mapping[str, str] | None = None,
                 dry_run: bool | None = None) -> None:
        self.runtime = runtime
        self.policy = policy or RetryPolicy()
        self.lease = lease
        self.parallel = max(1, parallel)
        self.worker = worker or worker_name()
        self.environ = environ
        self.channels = configured_channels(runtime.bundle.meta)
        env = os.environ if environ is None else environ
        self.dry_run = switched_on(DRY_RUN_ENV, env) if dry_run is None else dry_run
        if self.dry_run:
            log.warning("outbox dry run (%s): messages are logged, not sent", DRY_RUN_ENV)
        for config in self.channels.values() if not self.dry_run else ():  # a dry run needs no credentials
            for var in missing_environment(config, environ):
                settings_log.warning("channel %s: environment variable %s is not set; its messages "
                                     "will fail until it is", config.name, var)
        self._reply_handlers: dict[str, ReplyHandler] = {}
        runtime.services["outbox"] = self

    def on_reply(self, kind: str, handler: ReplyHandler) -> None:
        """Apply the answers to messages queued with `reply={"kind": kind, ...}` with `handler`."""
        if kind in self._reply_handlers:
            raise OutboxError(f"a handler for replies of kind '{kind}' is already registered")
        self._reply_handlers[kind] = handler

    # -- inside a caller's transaction ----------------------------------------------------------

    def enqueue(self, conn: Connection, *, channel: str, to: list[str] | tuple[str, ...] | str,
                subject: str, body: str, data: Mapping[str, Any] | None = None,
                key: str | None = None, reply: Mapping[str, Any] | None = None) -> int:
        """Queue a message in the caller's transaction; returns the outbox id.

        `key` deduplicates: queuing the same key again returns the first message's id and
        queues nothing (e.g. `ack:complaint:17` for one acknowledgement per complaint).
        `reply` ({"kind": ..., ...}, JSON data kept with the row, never sent) asks for the
        receiver's answer, applied by the handler registered for its kind (`on_reply`).
        """
        if channel not in self.channels:
            raise OutboxError(f"unknown channel '{channel}'; configured channels: "
                              f"{', '.join(sorted(self.channels))} (bundle.yaml channels:)")
        recipients = _recipients(to)
        if not isinstance(subject, str) or not isinstance(body, str):
            raise OutboxError("a message's subject and body must be text")
        payload: dict[str, Any] = {"to": list(recipients), "data": dict(data or {})}
        if reply is not None:
            if not isinstance(reply.get("kind"), str) or reply["kind"] not in self._reply_handlers:
                raise OutboxError(f"no handler applies replies of kind '{reply.get('kind')}' "
                                  "in this process")
            payload["reply"] = dict(reply)
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as exc:
            raise OutboxError(f"message data for channel '{channel}' is not JSON data: {exc}") from None
        if key is not None and (not isinstance(key, str) or not key or len(key) > _MAX_KEY):
            raise OutboxError(f"a message key must be 1 to {_MAX_KEY} characters of text")
        message_id = uuid.uuid4().hex
        now = self.runtime.clock.now()
        values = {"channel": channel, "recipient": clip(", ".join(recipients), _MAX_RECIPIENT),
                  "subject": clip(subject, _MAX_SUBJECT), "body": body, "payload": payload,
                  "idempotency_key": key or f"msg:{message_id}", "message_id": message_id,
                  "status": "pending", "attempts": 0, "next_attempt_at": now, "created_at": now}
        new_id = _enqueue_statement(conn).scalar(conn, values)
        if new_id is not None:
            return int(new_id)
        return int(conn.execute(sa.select(O.c.id).where(O.c.idempotency_key == key)).scalar_one())

    # -- relaying ---------------------------------------------------------------------------------

    def deliver(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Send up to `limit` due messages; returns how many were sent."""
        at = ensure_utc(now, what="delivery time") if now is not None else self.runtime.clock.now()
        claimed = self._claim(at, limit)
        if not claimed:
            return 0
        if self.parallel == 1 or len(claimed) == 1:
            return sum(1 for m in claimed if self._send_one(m, at))
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(claimed)),
                                thread_name_prefix="docket-outbox") as pool:
            return sum(1 for ok in pool.map(lambda m: self._send_one(m, at), claimed) if ok)

    def _claim(self, now: datetime, limit: int) -> list[OutboundMessage]:
        with transaction(self.runtime.db) as conn:
            ids = (sa.select(O.c.id)
                   .where(O.c.status.in_(("pending", "sending")), O.c.next_attempt_at <= now)
                   .order_by(O.c.next_attempt_at, O.c.id).limit(limit)
                   .with_for_update(skip_locked=True).scalar_subquery())
            rows = conn.execute(
                O.update().where(O.c.id.in_(ids))
                .values(status="sending", attempts=O.c.attempts + 1, claimed_by=self.worker,
                        next_attempt_at=now + self.lease,
                        # A row still 'sending' was claimed by a relay that died: it may have
                        # been delivered already, so this send is a possible duplicate.
                        duplicates=O.c.duplicates + sa.case((O.c.status == "sending", 1), else_=0))
                .returning(*_MESSAGE_COLUMNS)
            ).all()
        rows.sort(key=lambda r: r.id)
        return [_message(r) for r in rows]

    def _send_one(self, message: OutboundMessage, now: datetime) -> bool:
        try:
            answer = self.send_now(message)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
            self._failed(message, exc, now)
            return False
        with transaction(self.runtime.db) as conn:
            marked = conn.execute(
                O.update().where(O.c.id == message.id, O.c.status == "sending",
                                 O.c.claimed_by == self.worker)
                .values(status="sent", sent_at=now, next_attempt_at=None, last_error=None)
            ).rowcount
            # A dry run logged the message: there is no receiver, so no answer to apply.
            if marked == 1 and message.reply is not None and not self.dry_run:
                self._apply_reply(conn, message, answer)
        if marked != 1:
            log.warning("outbox message %s was sent but another relay had taken it over "
                        "(lease %s too short for the channel?)", message.id, self.lease)
        return True

    def delivered_with(self, outbox_id: int, answer: Any) -> bool:
        """Mark a pending message delivered, with `answer` as what its receiver answered, without
        sending it: how a scenario plays the other system. False when it is not pending."""
        now = self.runtime.clock.now()
        with transaction(self.runtime.db) as conn:
            row = conn.execute(
                O.update().where(O.c.id == outbox_id, O.c.status == "pending")
                .values(status="sent", sent_at=now, next_attempt_at=None, attempts=O.c.attempts + 1)
                .returning(*_MESSAGE_COLUMNS)
            ).first()
            if row is None:
                return False
            message = _message(row)
            if message.reply is not None:
                self._apply_reply(conn, message, answer)
        return True

    def _apply_reply(self, conn: Connection, message: OutboundMessage, answer: Any) -> None:
        """Run the reply's handler in a savepoint: a handler that fails leaves the message sent
        (it was delivered; sending it again would not mend the handler) and says why on it."""
        kind = str((message.reply or {}).get("kind"))
        handler = self._reply_handlers.get(kind)
        try:
            if handler is None:
                raise OutboxError(f"no handler applies replies of kind '{kind}' in this process")
            with savepoint(conn):
                handler(conn, message, answer)
        except Exception as exc:  # noqa: BLE001 - recorded on the row and in the log
            text = error_text(exc)
            log.error("outbox message %s (%s) was sent but its answer was not applied: %s",
                      message.id, message.channel, text)
            conn.execute(O.update().where(O.c.id == message.id)
                         .values(last_error=clip(f"sent; the answer was not applied: {text}", 2000)))

    def send_now(self, message: OutboundMessage) -> Any:
        """Send one message through its channel (no bookkeeping); raises on failure. Returns
        the receiver's answer (JSON data) when the channel reads one, else None."""
        config = self.channels.get(message.channel)
        if config is None:
            raise PermanentDeliveryError(f"channel '{message.channel}' is no longer configured")
        if self.dry_run:
            config = ChannelConfig(config.name, "log", {})
        channel_type = self.runtime.bundle.registry.channels.get(config.type)
        if channel_type is None:
            raise PermanentDeliveryError(f"channel type '{config.type}' is not installed")
        return channel_type.send(message, resolve_settings(config, self.environ))

    def _failed(self, message: OutboundMessage, exc: Exception, now: datetime) -> None:
        text = error_text(exc)
        permanent = isinstance(exc, PermanentDeliveryError)
        if permanent or self.policy.exhausted(message.attempts):
            values: dict[str, Any] = {"status": "dead", "next_attempt_at": None}
            log.error("outbox message %s (%s) dead-lettered after %d attempt(s): %s",
                      message.id, message.channel, message.attempts, text)
        else:
            values = {"status": "pending", "next_attempt_at": now + self.policy.delay(message.attempts)}
            level = logging.WARNING if isinstance(exc, DeliveryError) else logging.ERROR
            log.log(level, "outbox message %s (%s) failed (attempt %d of %d), retrying at %s: %s",
                    message.id, message.channel, message.attempts, self.policy.max_attempts,
                    values["next_attempt_at"].isoformat(), text)
        try:
            with transaction(self.runtime.db) as conn:
                conn.execute(O.update().where(O.c.id == message.id, O.c.status == "sending",
                                              O.c.claimed_by == self.worker)
                             .values(last_error=text, **values))
        except Exception:  # noqa: BLE001 - the lease expires and the message is tried again
            log.warning("could not record the failure of outbox message %s", message.id, exc_info=True)

    # -- administration -----------------------------------------------------------------------

    def dead_letters(self, conn: Connection | None = None, *, limit: int = 200) -> list[OutboxEntry]:
        """Messages that will not be retried on their own, newest first, with the last error."""
        stmt = sa.select(*_ENTRY_COLUMNS).where(O.c.status == "dead").order_by(O.c.id.desc()).limit(limit)
        return self._entries(stmt, conn)

    def entries(self, conn: Connection | None = None, *, status: str | None = None,
                limit: int = 200) -> list[OutboxEntry]:
        """Recent messages (optionally of one status), newest first."""
        stmt = sa.select(*_ENTRY_COLUMNS).order_by(O.c.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(O.c.status == status)
        return self._entries(stmt, conn)

    def _entries(self, stmt: Any, conn: Connection | None) -> list[OutboxEntry]:
        if conn is not None:
            return [_entry(r) for r in conn.execute(stmt)]
        with read_transaction(self.runtime.db) as own:
            return [_entry(r) for r in own.execute(stmt)]

    def retry(self, outbox_id: int, conn: Connection | None = None) -> bool:
        """Queue a dead letter again (attempts reset, same message id); False if not dead."""
        stmt = (O.update().where(O.c.id == outbox_id, O.c.status == "dead")
                .values(status="pending", attempts=0, claimed_by=None,
                        next_attempt_at=self.runtime.clock.now()))
        if conn is not None:
            return conn.execute(stmt).rowcount == 1
        with transaction(self.runtime.db) as own:
            return own.execute(stmt).rowcount == 1

    def purge_sent(self, *, older_than: timedelta = timedelta(days=30), limit: int = 10_000) -> int:
        """Delete messages sent more than `older_than` ago (housekeeping); dead letters stay."""
        cutoff = self.runtime.clock.now() - older_than
        with transaction(self.runtime.db) as conn:
            ids = (sa.select(O.c.id).where(O.c.status == "sent", O.c.sent_at < cutoff)
                   .limit(limit).scalar_subquery())
            return conn.execute(O.delete().where(O.c.id.in_(ids))).rowcount

    def stats(self, conn: Connection | None = None) -> dict[str, int]:
        """Messages by status, plus `possible_duplicates` (message_counts)."""
        if conn is not None:
            return message_counts(conn)
        with read_transaction(self.runtime.db) as own:
            return message_counts(own)


def message_counts(conn: Connection) -> dict[str, int]:
    """Messages by status, plus `possible_duplicates`: resends after a relay died mid-send. The
    admin's health page and /metrics read it too (engine/vitals.py)."""
    out = {"pending": 0, "sending": 0, "sent": 0, "dead": 0, "possible_duplicates": 0}
    for status, count, dups in conn.execute(
            sa.select(O.c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(O.c.duplicates), 0))
            .group_by(O.c.status)):
        out[status] = int(count)
        out["possible_duplicates"] += int(dups)
    return out


def _recipients(to: Any) -> tuple[str, ...]:
    items = [to] if isinstance(to, str) else to
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        raise OutboxError("recipients must be text or a list of text")
    return tuple(t.strip() for t in items if t.strip())
