"""The rule engine at run time: rules react to events inside the event's transaction.

Failure policy (ADR 0009): each rule's condition and actions run in a SAVEPOINT inside the
transaction of the event that triggered it. If anything fails, the savepoint is rolled back, so
the record never keeps half of a rule's changes, while the command that raised the event (a
submission, a task completion) still commits; the failure becomes an incident on the record
(`dk_incidents`, plus an `incident` entry on its timeline) and the rule is retried on a durable
`rule.retry` timer with doubling delays, `retry.attempts` times. A retry that succeeds resolves
the incident. Scheduled rules (`on: {schedule: cron}`) fire from `rule.schedule` timers, each
firing arming the next.
"""

from __future__ import annotations

import functools
import logging
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from engine.actions import ActionContext, step_failure
from engine.errors import DocketError
from engine.events import Event
from engine.runtime import Runtime
from engine.storage.db import read_transaction, savepoint, schema_inspector, transaction
from engine.storage.prepared import INSERT_HISTORY
from engine.storage.tables import incidents
from rules.actions.common import json_safe
from rules.actions.messages import REPLY_KIND, apply_answer
from rules.actions.record import tags_of
from rules.exprs import aggregate_filters
from rules.functions import CURRENT_CONNECTION
from rules.spec import RuleSpec

log = logging.getLogger(__name__)

RETRY_KIND = "rule.retry"
SCHEDULE_KIND = "rule.schedule"
SYSTEM_ACTOR = "system"


class RuleService:
    """Runs the bundle's rules; `runtime.services["rules"]`. Decision tables are published as
    `runtime.services["decisions"]` for the `decide()` function and the `decide` action."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.rules: dict[str, RuleSpec] = {}
        self._by_event: dict[str, list[RuleSpec]] = {}
        for ruleset in rt.bundle.all("ruleset").values():
            for rule in ruleset.rules.values():
                if not rule.enabled:
                    continue
                self.rules[rule.key] = rule
                for event in {t.event for t in rule.triggers}:
                    self._by_event.setdefault(event, []).append(rule)
        rt.services["rules"] = self
        rt.services["decisions"] = dict(rt.bundle.all("decision_table"))
        rt.bus.subscribe("*", self._on_event)
        timers = rt.services.get("timers")
        if timers is not None:
            timers.on(RETRY_KIND, self._on_retry)
            timers.on(SCHEDULE_KIND, self._on_schedule)
        outbox = rt.services.get("outbox")
        if outbox is not None:
            # Webhook actions with `answer:`: the receiver's answer goes into the record.
            outbox.on_reply(REPLY_KIND, functools.partial(apply_answer, rt))

    # -- boot ---------------------------------------------------------------------------------
    def ensure_indexes(self) -> list[str]:
        """Create the indexes the aggregate functions written in the bundle filter on:
        (field..., created_at) per `count_records` call. Returns the names created."""
        forms = self.rt.services["forms"]
        wanted: dict[str, tuple[str, tuple[str, ...]]] = {}
        for source in self._expression_sources():
            for form, fields in aggregate_filters(source):
                table = forms.tables.get(form)
                if table is None or any(f not in table.c for f in fields):
                    continue
                name = "ix_" + "_".join((table.name, *fields, "created_at"))[:50] + "_agg"
                wanted[name] = (form, fields)
        created = []
        with transaction(self.rt.db) as conn:
            existing = {ix["name"] for form, _ in wanted.values()
                        for ix in schema_inspector(conn).get_indexes(forms.tables[form].name)}
            for name, (form, fields) in sorted(wanted.items()):
                if name in existing:
                    continue
                table = forms.tables[form]
                sa.Index(name, *[table.c[f] for f in fields], table.c.created_at).create(conn)
                created.append(name)
        return created

    def _expression_sources(self) -> Iterable[str]:
        def strings(value: Any) -> Iterable[str]:
            if isinstance(value, str):
                if "count_records" in value:
                    yield value
            elif isinstance(value, dict):
                for v in value.values():
                    yield from strings(v)
            elif isinstance(value, list):
                for v in value:
                    yield from strings(v)

        for (kind, _name), doc in self.rt.bundle.documents.items():
            yield from strings(doc.data)

    def arm_schedules(self) -> int:
        """Arm the next firing of every scheduled rule that has none pending; returns how many."""
        timers = self.rt.services.get("timers")
        if timers is None:
            return 0
        armed = 0
        now = self.rt.clock.now()
        with transaction(self.rt.db) as conn:
            for rule in self.rules.values():
                for i, trig in enumerate(t for t in rule.triggers if t.event == "schedule"):
                    subject = f"rule:{rule.key}"
                    key = str(i)
                    if any(t.kind == SCHEDULE_KIND and t.key == key
                           for t in timers.pending(conn, subject=subject)):
                        continue
                    timers.schedule(conn, kind=SCHEDULE_KIND, subject=subject, key=key,
                                    due_at=self.next_fire(trig.cron or "", now),
                                    payload={"rule": rule.key, "cron": trig.cron})
                    armed += 1
        return armed

    def next_fire(self, cron: str, after: datetime) -> datetime:
        """The first instant of `cron` (in the bundle's time zone) strictly after `after`."""
        from apscheduler.triggers.cron import CronTrigger

        zone = ZoneInfo(self.rt.bundle.meta.timezone or "UTC")
        trigger = CronTrigger.from_crontab(cron, timezone=zone)
        fire = trigger.get_next_fire_time(None, after.astimezone(zone) + timedelta(seconds=1))
        return fire.astimezone(after.tzinfo)

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, event: Event, conn: Connection) -> None:
        candidates = self._by_event.get(event.name)
        if not candidates or event.record_id is None:
            return
        names: dict[str, Any] | None = None
        for rule in candidates:
            if rule.form != event.form:
                continue
            if not any(t.matches(event.name, event.data) for t in rule.triggers):
                continue
            if names is None:
                names = self.names(conn, event)
            if self.run_rule(conn, rule, event, names):
                names = None  # the rule may have changed the record: read it again

    def names(self, conn: Connection, event: Event) -> dict[str, Any]:
        """What a rule's expressions see: the record's values, `record`, `tags`, `user`, `event`."""
        record = self.rt.services["forms"].read(conn, event.form, event.record_id)
        return {**record, "record": record, "tags": tags_of(conn, event.form or "", event.record_id or 0),
                "user": {"username": event.actor}, "event": {"name": event.name, **dict(event.data)}}

    def run_rule(self, conn: Connection, rule: RuleSpec, event: Event,
                 names: dict[str, Any] | None = None, *, attempt: int = 0,
                 incident_id: int | None = None) -> bool:
        """Evaluate the rule and run its actions in a savepoint; True when the actions ran.

        A failure rolls the savepoint back, leaves (or updates) an incident and arms a retry.
        """
        registry = self.rt.bundle.registry
        token = CURRENT_CONNECTION.set(conn)
        try:
            # The condition writes nothing, so on SQLite the savepoint is opened only for a rule
            # that fires (most rules do not fire on most events; SAVEPOINT and RELEASE cost).
            # On PostgreSQL a failed read aborts the whole transaction unless a savepoint holds
            # it, so there the savepoint comes first, as the condition may read (count_records).
            savepoint_first = conn.dialect.name != "sqlite"
            with ExitStack() as scope:
                if savepoint_first:
                    scope.enter_context(savepoint(conn))
                if names is None:
                    names = self.names(conn, event) if event.record_id is not None else {
                        "event": {"name": event.name, **dict(event.data)}, "user": {"username": SYSTEM_ACTOR}}
                record = names.get("record", {}) if event.record_id is not None else {}
                act = ActionContext(conn, self.rt, rule.form, event.record_id, dict(record), SYSTEM_ACTOR,
                                    event, dict(names), f"rule:{rule.key}")
                if act.names and event.record_id is not None:
                    act.names["record"] = act.record
                if rule.when is not None and not act.evaluate(rule.when):
                    return False
                if not savepoint_first:
                    scope.enter_context(savepoint(conn))
                for step in rule.actions:
                    try:
                        registry.actions.get(step.type).run(act, step.compiled)
                    except Exception as exc:
                        raise _StepFailed(step, exc) from exc
                if event.record_id is not None:
                    INSERT_HISTORY.later(conn, dict(
                        instance_id=None, form=rule.form, record_id=event.record_id, kind="rule.fired",
                        node=None, actor=SYSTEM_ACTOR, at=self.rt.clock.now(),
                        data={"rule": rule.key, "event": event.name}))
            if incident_id is not None:
                self._resolve(conn, rule, event, incident_id)
            return True
        except Exception as exc:  # every failure: the savepoint (if opened) is already rolled back
            self._failed(conn, rule, event, exc, attempt, incident_id)
            return False
        finally:
            CURRENT_CONNECTION.reset(token)

    # -- failures and retries ---------------------------------------------------------------
    def _failed(self, conn: Connection, rule: RuleSpec, event: Event, exc: Exception, attempt: int,
                incident_id: int | None) -> None:
        cause = exc.cause if isinstance(exc, _StepFailed) else exc
        where = f" (step {exc.step.index + 1}: {exc.step.type}, {exc.step.span})" if isinstance(exc, _StepFailed) else ""
        if isinstance(exc, _StepFailed):
            actions = self.rt.bundle.registry.actions
            reason = step_failure(cause, exc.step.type, actions.source(exc.step.type))
        else:  # the condition: Docket's own errors are written for the reader
            reason = str(cause) if isinstance(cause, DocketError) and str(cause) else f"{type(cause).__name__}: {cause}"
        message = f"rule {rule.key} failed{where}: {reason}"
        log.warning("%s on %s %s", message, event.form, event.record_id)
        now = self.rt.clock.now()
        retries_left = attempt < rule.retry.attempts and self.rt.services.get("timers") is not None
        detail = (f"attempt {attempt + 1} of {rule.retry.attempts + 1}; "
                  + ("will retry" if retries_left else "no retries left"))
        ref = f"record:{event.form}:{event.record_id}" if event.record_id is not None else f"rule:{rule.key}"
        if incident_id is None:
            incident_id = int(conn.execute(insert(incidents).values(
                kind="rule", ref=ref, message=message, detail=detail, created_at=now)).inserted_primary_key[0])
        else:
            conn.execute(update(incidents).where(incidents.c.id == incident_id)
                         .values(message=message, detail=detail))
        if event.record_id is not None:
            INSERT_HISTORY.later(conn, dict(
                instance_id=None, form=event.form, record_id=event.record_id, kind="incident", node=None,
                actor=SYSTEM_ACTOR, at=now, data={"rule": rule.key, "message": message,
                                                  "incident_id": incident_id, "attempt": attempt + 1}))
        if retries_left:
            delay = rule.retry.delay * (2 ** attempt)
            self.rt.services["timers"].schedule(
                conn, kind=RETRY_KIND, subject=ref, key=f"{rule.key}:{event.name}",
                due_at=now + delay, payload={"rule": rule.key, "attempt": attempt + 1,
                                             "incident_id": incident_id, "event": _snapshot(event)})

    def _resolve(self, conn: Connection, rule: RuleSpec, event: Event, incident_id: int) -> None:
        now = self.rt.clock.now()
        conn.execute(update(incidents).where(incidents.c.id == incident_id).values(resolved_at=now))
        if event.record_id is not None:
            INSERT_HISTORY.later(conn, dict(
                instance_id=None, form=event.form, record_id=event.record_id, kind="incident.resolved",
                node=None, actor=SYSTEM_ACTOR, at=now, data={"rule": rule.key, "incident_id": incident_id}))

    def _on_retry(self, conn: Connection, timer: Any) -> None:
        payload = timer.payload
        rule = self.rules.get(payload.get("rule", ""))
        if rule is None:
            log.warning("rule %s is no longer in the bundle; retry dropped", payload.get("rule"))
            return
        event = _restore(payload["event"])
        self.run_rule(conn, rule, event, attempt=int(payload.get("attempt", 1)),
                      incident_id=payload.get("incident_id"))

    def _on_schedule(self, conn: Connection, timer: Any) -> None:
        payload = timer.payload
        rule = self.rules.get(payload.get("rule", ""))
        if rule is None:
            return  # the rule was removed: its schedule ends
        now = self.rt.clock.now()
        event = Event("schedule", now, None, None, SYSTEM_ACTOR, {"cron": payload.get("cron")})
        self.run_rule(conn, rule, event)
        self.rt.services["timers"].schedule(
            conn, kind=SCHEDULE_KIND, subject=timer.subject, key=timer.key,
            due_at=self.next_fire(payload["cron"], max(now, timer.due_at)), payload=dict(payload))

    # -- queries ------------------------------------------------------------------------------
    def incidents_of(self, form: str, record_id: int, *, open_only: bool = True) -> list[dict[str, Any]]:
        """The record's rule incidents, newest first."""
        with read_transaction(self.rt.db) as conn:
            query = select(incidents).where(incidents.c.ref == f"record:{form}:{record_id}")
            if open_only:
                query = query.where(incidents.c.resolved_at.is_(None))
            return [dict(r) for r in conn.execute(query.order_by(incidents.c.id.desc())).mappings()]

    def tags(self, form: str, record_id: int) -> list[str]:
        with read_transaction(self.rt.db) as conn:
            return tags_of(conn, form, record_id)


class _StepFailed(Exception):
    def __init__(self, step: Any, cause: Exception):
        super().__init__(str(cause))
        self.step = step
        self.cause = cause


def _snapshot(event: Event) -> dict[str, Any]:
    return {"name": event.name, "at": event.at.isoformat(), "form": event.form,
            "record_id": event.record_id, "actor": event.actor, "data": json_safe(dict(event.data))}


def _restore(data: Mapping[str, Any]) -> Event:
    return Event(data["name"], datetime.fromisoformat(data["at"]), data.get("form"),
                 data.get("record_id"), data.get("actor"), data.get("data") or {})
