"""SLA clocks at run time: started, paused, resumed, re-targeted and stopped by events, with
durable timers for the yellow warning, the breach and the repeated escalation.

Every clock counts working seconds in the bundle's calendar (`counting: business`) or around the
clock in the bundle's zone (`counting: wall`). A clock row banks the working time used before
its running segment (`used_seconds`) and remembers when that segment started (`resumed_at`), so
pausing, resuming and changing the target never re-count the past; `due_at`/`warn_at` are where
the running segment would cross the thresholds, and the `sla.warning` / `sla.breached` timers
are armed there.

A clock's verdict (engine.storage.tables.sla_verdict: met or missed once stopped, missed as soon
as the breach of a running clock is recorded, none while in time or paused) is announced as
`sla.verdict` whenever it changes, in the same transaction: the report engine keeps it as a
fact of the record, so dashboards judge a record as its page and the overdue list do.

Races (RELIABILITY 30): a timer handler locks the record's flow instance and clocks (`FOR
UPDATE NOWAIT` on PostgreSQL, where waiting could deadlock with a command that holds the
instance and then re-arms the timer; a busy record fails the firing and the timer service
retries it shortly; SQLite's single writer serializes anyway) and acts only on a clock still
running with open work. A task completed in the same second either commits first (the clock
is stopped, the handler does nothing) or finds the escalation recorded before its closure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import Select, bindparam, exists, select, update
from sqlalchemy.engine import Connection

from engine.calendar import BusinessCalendar
from engine.events import Event
from engine.runtime import Runtime
from engine.storage.db import read_transaction, savepoint
from engine.storage.prepared import INSERT_HISTORY, PreparedInsert, PreparedQuery
from engine.storage.tables import (SLA_VERDICT_EVENT, flow_instances, sla_clocks, sla_verdict, tasks,
                                   timers as timer_table)
from rules.functions import CURRENT_CONNECTION
from engine.storage.memo import memo
from rules.spec import SlaPolicy

log = logging.getLogger(__name__)

WARNING_KIND, BREACH_KIND, ESCALATE_KIND = "sla.warning", "sla.breached", "sla.escalate"
SYSTEM_ACTOR = "system"
UPDATE_EVENTS = ("record.updated", "task.completed")
"""Events that count as a status update (they restart the escalation interval)."""

# The SLA service runs on every event of a record with a policy: its statements are prepared
# once and run on the driver's cursor (engine/storage/prepared.py).
_CLOCKS = select(sla_clocks).where(sla_clocks.c.form == bindparam("form"),
                                   sla_clocks.c.record_id == bindparam("record_id")).order_by(sla_clocks.c.id)
_ARMED = "_escalation_armed"
_SELECT_CLOCKS = PreparedQuery(_CLOCKS.add_columns(
    # Whether the policy's escalation timer is open, in the same statement: a command learns it
    # with the clocks, instead of deleting a timer that is rarely there on every event.
    exists().where(timer_table.c.subject == bindparam("subject"), timer_table.c.kind == ESCALATE_KIND,
                   timer_table.c.open_key.is_not(None), timer_table.c.key == sla_clocks.c.policy)
    .label(_ARMED)))
_LOCK_CLOCKS = PreparedQuery(_CLOCKS.with_for_update())
_INSERT_CLOCK = PreparedInsert(sla_clocks)
_SAVE_CLOCK: dict[tuple[str, ...], PreparedQuery] = {}
"""Clock updates, one prepared statement per set of columns written."""
_KNOWN = "docket_sla_known"
"""conn.info key of what this transaction already knows (`_Known`)."""


class _Known:
    """What one transaction has read or written of the SLA tables since it began (or since a
    savepoint in it rolled back): the clock rows of each record it touched and whether each
    escalation timer is armed (an `engine.storage.memo`).

    Every event of a record with a policy runs the SLA service (about 20 per postal complaint),
    and each read the record's clocks and cancelled the escalation timer again, although only
    this service writes either. The rows kept are the very dicts the service updates as it
    writes them (`_save` changes them in place, `_start` adds one), so they stay what the
    database holds.
    """

    __slots__ = ("clocks", "escalation")

    def __init__(self) -> None:
        self.clocks: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.escalation: dict[tuple[str, str], bool] = {}
        """(subject, policy) -> whether an escalation timer is open (armed), once known."""


def _known(conn: Connection) -> _Known | None:
    """This transaction's `_Known` (None outside a transaction: nothing is kept)."""
    return memo(conn, _KNOWN, _Known)


@dataclass(frozen=True)
class SlaState:
    """How one SLA target of a record stands now (for the record page and the inbox)."""

    policy: str
    target: str
    status: str  # on_time | yellow | red | paused | met | missed
    due_at: datetime | None
    remaining_work_seconds: int


class SlaService:
    """`runtime.services["sla"]`: keeps the clocks of every record of a form with a policy."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.policies: dict[str, SlaPolicy] = dict(rt.bundle.all("sla"))
        self._by_form: dict[str, list[SlaPolicy]] = {}
        for policy in self.policies.values():
            self._by_form.setdefault(policy.form, []).append(policy)
        zone = rt.bundle.meta.timezone or "UTC"
        self._business = rt.bundle.meta.calendar or BusinessCalendar.always_open(zone)
        self._wall = BusinessCalendar.always_open(zone)
        rt.services["sla"] = self
        # Forms whose clocks must see every node entry: a target starts or stops on one, or the
        # clock pauses at a node (a wait step publishes nothing else when entered).
        self._on_entered = {p.form for p in self.policies.values()
                            if p.pause_nodes or any(t.event == "flow.entered" for target in p.targets.values()
                                                    for t in (*target.starts, *target.stops))}
        rt.bus.subscribe("*", self._on_event)
        timers = rt.services.get("timers")
        if timers is not None:
            timers.on(WARNING_KIND, self._on_warning)
            timers.on(BREACH_KIND, self._on_breach)
            timers.on(ESCALATE_KIND, self._on_escalate)

    def calendar(self, policy: SlaPolicy | None) -> BusinessCalendar:
        return self._wall if policy is not None and policy.counting == "wall" else self._business

    # -- queries ------------------------------------------------------------------------------
    def covers(self, form: str) -> bool:
        """Whether a policy keeps clocks on the records of `form`."""
        return form in self._by_form

    def late_records(self, form: str, lateness: str, now: datetime) -> Select[Any]:
        """The ids of `form`'s records with a running clock past its due time (`overdue`, red), or
        past its warning (`at_risk`: yellow or red), as a subquery for a record list's condition.
        `due_at` and `warn_at` are where the running segment crosses each threshold, so this
        agrees with the states `states_for` works out."""
        column = sla_clocks.c.due_at if lateness == "overdue" else sla_clocks.c.warn_at
        return select(sla_clocks.c.record_id).where(sla_clocks.c.form == form, sla_clocks.c.status == "running",
                                                    column <= now)

    def state_of(self, conn: Connection, form: str, record_id: int) -> list[SlaState]:
        return self.states_for(conn, form, [record_id]).get(record_id, [])

    def states_for(self, conn: Connection, form: str, record_ids: Iterable[int]) -> dict[int, list[SlaState]]:
        """Every record's SLA states, in one query."""
        ids = list(record_ids)
        out: dict[int, list[SlaState]] = {i: [] for i in ids}
        if not ids or form not in self._by_form:
            return out
        now = self.rt.clock.now()
        rows = conn.execute(select(sla_clocks).where(sla_clocks.c.form == form,
                                                     sla_clocks.c.record_id.in_(ids))
                            .order_by(sla_clocks.c.record_id, sla_clocks.c.id)).mappings()
        for row in rows:
            out.setdefault(row["record_id"], []).append(self._state(row, now))
        return out

    def _state(self, row: Mapping[str, Any], now: datetime) -> SlaState:
        policy = self.policies.get(row["policy"])
        used = self._used(row, now, policy)
        remaining = row["target_seconds"] - used
        status = row["status"]
        if status == "running":
            share = policy.yellow_share if policy is not None else 0.2
            if remaining <= 0:
                status = "red"
            elif remaining <= share * row["target_seconds"]:
                status = "yellow"
            else:
                status = "on_time"
        return SlaState(row["policy"], row["target"], status, row["due_at"], int(remaining))

    def _used(self, row: Mapping[str, Any], now: datetime, policy: SlaPolicy | None) -> int:
        used = row["used_seconds"]
        if row["status"] == "running" and row["resumed_at"] is not None:
            used += int(self.calendar(policy).work_time_between(row["resumed_at"], now).total_seconds())
        return int(used)

    # -- events -------------------------------------------------------------------------------
    def _on_event(self, event: Event, conn: Connection) -> None:
        policies = self._by_form.get(event.form or "")
        if not policies or event.record_id is None or event.name.startswith("sla."):
            return
        if event.name == "flow.entered" and event.form not in self._on_entered:
            # Every node entry publishes it; a form whose targets never name it needs no work
            # (status changes that pause a clock are seen with the task created at the node).
            return
        token = CURRENT_CONNECTION.set(conn)
        try:
            names: dict[str, Any] | None = None
            clocks = self._clocks(conn, event.form or "", event.record_id)
            for policy in policies:
                if names is None:
                    names = self._names(conn, event)
                self._apply(conn, policy, event, names, [c for c in clocks if c["policy"] == policy.name])
        finally:
            CURRENT_CONNECTION.reset(token)

    def _names(self, conn: Connection, event: Event) -> dict[str, Any]:
        record = self.rt.services["forms"].read(conn, event.form, event.record_id)
        return {**record, "record": record, "event": {"name": event.name, **dict(event.data)}}

    def _clocks(self, conn: Connection, form: str, record_id: int, *, lock: bool = False) -> list[dict[str, Any]]:
        """The record's clock rows, read once per transaction (`_Known`); `lock` always reads,
        FOR UPDATE on PostgreSQL. Callers may change the rows only through `_save`."""
        known = _known(conn)
        if known is not None and not lock:
            rows = known.clocks.get((form, record_id))
            if rows is not None:
                return rows
        if lock:
            rows = _LOCK_CLOCKS.all(conn, {"form": form, "record_id": record_id})
        else:
            subject = f"record:{form}:{record_id}"
            rows = _SELECT_CLOCKS.all(conn, {"form": form, "record_id": record_id, "subject": subject})
            for row in rows:
                armed = bool(row.pop(_ARMED))
                if known is not None:
                    known.escalation[(subject, row["policy"])] = armed
        if known is not None:
            known.clocks[(form, record_id)] = rows
        return rows

    def _apply(self, conn: Connection, policy: SlaPolicy, event: Event, names: dict[str, Any],
               clocks: list[dict[str, Any]]) -> None:
        now = self.rt.clock.now()
        by_target = {c["target"]: c for c in clocks}
        # The rows are changed in place below: what each target's verdict was before the event.
        verdicts = {c["target"]: sla_verdict(c["status"], c["breached_at"]) for c in clocks}
        paused = self._should_pause(conn, policy, event, names)
        level = None
        for target in policy.targets.values():
            clock = by_target.get(target.name)
            if clock is None:
                if any(t.matches(event.name, event.data) for t in target.starts):
                    if level is None:
                        level = self._level(policy, names)
                    if level is not None:
                        by_target[target.name] = self._start(conn, policy, target.name, level, event, paused, now)
                continue
            if clock["status"] in ("met", "missed"):
                if any(t.matches(event.name, event.data) for t in target.restarts):
                    if level is None:
                        level = self._level(policy, names)
                    if level is not None:
                        self._restart(conn, policy, clock, level, event, paused, now)
                continue
            if any(t.matches(event.name, event.data) for t in target.stops):
                self._stop(conn, policy, clock, event, now)
                continue
            if event.name == "record.updated" and policy.level_names & set(event.data.get("changes") or ()):
                if level is None:
                    level = self._level(policy, names)
                if level is not None:
                    self._retarget(conn, policy, clock, level, now)
            if paused and clock["status"] == "running":
                self._pause(conn, policy, clock, now)
            elif not paused and clock["status"] == "paused":
                self._resume(conn, policy, clock, now)
        for target, clock in by_target.items():
            self._decided(conn, clock, verdicts.get(target), now)
        self._escalation(conn, policy, event, names, list(by_target.values()), now)

    def _decided(self, conn: Connection, row: Mapping[str, Any], was: str | None, now: datetime) -> None:
        """Announce the clock's verdict when it is no longer `was` (stopped, breached, paused
        past its due time, restarted, given a longer target), in the deciding transaction."""
        verdict = sla_verdict(row["status"], row["breached_at"])
        if verdict != was:
            self.rt.bus.publish(Event(SLA_VERDICT_EVENT, now, row["form"], row["record_id"], SYSTEM_ACTOR,
                                      {"policy": row["policy"], "target": row["target"], "verdict": verdict,
                                       "was": was}), conn)

    def _level(self, policy: SlaPolicy, names: Mapping[str, Any]) -> Any:
        ctx = self._eval_context()
        for level in policy.levels:
            if level.when is None or level.when.evaluate(names, ctx):
                return level
        return None

    def _eval_context(self) -> Any:
        from engine.expr import EvalContext

        return EvalContext(now=self.rt.clock.now(), calendar=self.rt.bundle.meta.calendar,
                           services=self.rt.services)

    def _should_pause(self, conn: Connection, policy: SlaPolicy, event: Event, names: Mapping[str, Any]) -> bool:
        if policy.pause_statuses and names.get("status") in policy.pause_statuses:
            return True
        if policy.pause_nodes:
            # The flow service answers from the instance the command is moving: its row is
            # written at the command's end and still names the step the token left.
            flows = self.rt.services.get("flows")  # None: no flow runs, no token stands anywhere
            return flows is not None and bool(flows.current_nodes(conn, event.form, event.record_id)
                                              & policy.pause_nodes)
        return False

    # -- clock changes ------------------------------------------------------------------------
    def _seconds(self, policy: SlaPolicy, amount: Any) -> int:
        return int(self.calendar(policy).work_time(amount).total_seconds())

    def _start(self, conn: Connection, policy: SlaPolicy, target: str, level: Any, event: Event,
               paused: bool, now: datetime) -> dict[str, Any]:
        seconds = self._seconds(policy, level.targets[target])
        row = {"form": policy.form, "record_id": event.record_id, "policy": policy.name, "target": target,
               "status": "paused" if paused else "running", "target_seconds": seconds, "used_seconds": 0,
               "started_at": now, "resumed_at": None if paused else now, "due_at": None, "warn_at": None,
               "stopped_at": None, "warned_at": None, "breached_at": None, "escalation_level": 0, "version": 1}
        if not paused:
            row.update(self._thresholds(policy, row, now))
        row["id"] = int(_INSERT_CLOCK.execute(conn, row))
        known = _known(conn)
        kept = known.clocks.get((policy.form, event.record_id)) if known is not None else None
        if kept is not None:
            kept.append(row)  # ordered by id, as the query orders them
        self._history(conn, row, "sla.started", {"target": target, "due_at": _iso(row["due_at"]),
                                                 "work_seconds": seconds})
        if not paused:
            self._arm(conn, policy, row, now)
        return row

    def _thresholds(self, policy: SlaPolicy, row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Where the running segment (from `resumed_at`) reaches yellow and the due time."""
        calendar = self.calendar(policy)
        start = row["resumed_at"] or now
        remaining = row["target_seconds"] - row["used_seconds"]
        to_yellow = remaining - policy.yellow_share * row["target_seconds"]
        due = calendar.add_work_time(start, timedelta(seconds=remaining)) if remaining > 0 else start
        warn = calendar.add_work_time(start, timedelta(seconds=to_yellow)) if to_yellow > 0 else start
        return {"due_at": due, "warn_at": warn}

    def _arm(self, conn: Connection, policy: SlaPolicy, row: Mapping[str, Any], now: datetime) -> None:
        timers = self.rt.services.get("timers")
        if timers is None:
            return
        subject, key = _subject(row), f"{row['policy']}:{row['target']}"
        payload = {"clock": row["id"], "policy": row["policy"], "target": row["target"]}
        if row["warned_at"] is None and policy.yellow_share > 0:
            timers.schedule(conn, kind=WARNING_KIND, subject=subject, key=key,
                            due_at=max(row["warn_at"], now), payload=payload)
        if row["breached_at"] is None:
            timers.schedule(conn, kind=BREACH_KIND, subject=subject, key=key,
                            due_at=max(row["due_at"], now), payload=payload)

    def _disarm(self, conn: Connection, row: Mapping[str, Any]) -> None:
        timers = self.rt.services.get("timers")
        if timers is None:
            return
        key = f"{row['policy']}:{row['target']}"
        for kind in (WARNING_KIND, BREACH_KIND):
            timers.cancel(conn, kind=kind, subject=_subject(row), key=key)

    def _save(self, conn: Connection, row: dict[str, Any], **values: Any) -> None:
        row.update(values)
        row["version"] += 1
        columns = tuple(sorted(values))
        stmt = _SAVE_CLOCK.get(columns)
        if stmt is None:
            stmt = _SAVE_CLOCK[columns] = PreparedQuery(update(sla_clocks).where(sla_clocks.c.id == bindparam("b_id")).values(
                {**{c: bindparam(f"v_{c}", type_=sla_clocks.c[c].type) for c in columns}, "version": bindparam("b_version")}))
        params = {f"v_{c}": values[c] for c in columns}
        params.update(b_id=row["id"], b_version=row["version"])
        stmt.execute(conn, params)

    def _stop(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], event: Event, now: datetime) -> None:
        used = self._used(row, now, policy)
        # Late from the instant no time is left, as the page's red, the overdue list and the
        # breach timer judge it: a record closed that evening after hours (no working time
        # counted since the due time) had been shown overdue and was announced breached.
        status = "met" if used < row["target_seconds"] else "missed"
        self._save(conn, row, status=status, used_seconds=used, resumed_at=None, stopped_at=now)
        self._disarm(conn, row)
        self._history(conn, row, f"sla.{status}", {"target": row["target"], "by": event.name,
                                                  "work_seconds_used": used})

    def _restart(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], level: Any, event: Event,
                 paused: bool, now: datetime) -> None:
        """A stopped clock runs again from nothing (a reopened record), against its level's target
        now; the history keeps how the earlier run ended."""
        values: dict[str, Any] = {
            "status": "paused" if paused else "running", "target_seconds": self._seconds(policy, level.targets[row["target"]]),
            "used_seconds": 0, "started_at": now, "resumed_at": None if paused else now, "due_at": None,
            "warn_at": None, "stopped_at": None, "warned_at": None, "breached_at": None, "escalation_level": 0}
        row.update(values)
        if not paused:
            values.update(self._thresholds(policy, row, now))
        self._save(conn, row, **values)
        self._history(conn, row, "sla.restarted", {"target": row["target"], "by": event.name,
                                                   "due_at": _iso(row["due_at"])})
        if not paused:
            self._arm(conn, policy, row, now)

    def _pause(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], now: datetime) -> None:
        used = self._used(row, now, policy)
        self._save(conn, row, status="paused", used_seconds=used, resumed_at=None)
        self._disarm(conn, row)
        self._history(conn, row, "sla.paused", {"target": row["target"], "work_seconds_used": used})

    def _resume(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], now: datetime) -> None:
        row["resumed_at"] = now
        self._save(conn, row, status="running", resumed_at=now, **self._thresholds(policy, row, now))
        self._arm(conn, policy, row, now)
        self._history(conn, row, "sla.resumed", {"target": row["target"], "due_at": _iso(row["due_at"])})

    def _retarget(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], level: Any, now: datetime) -> None:
        seconds = self._seconds(policy, level.targets[row["target"]])
        if seconds == row["target_seconds"]:
            return
        values: dict[str, Any] = {"target_seconds": seconds}
        if row["status"] == "running":
            # Bank the time used so far and start a new segment now, against the new target.
            values.update(used_seconds=self._used(row, now, policy), resumed_at=now)
        row.update(values)
        if row["status"] == "running":
            thresholds = self._thresholds(policy, row, now)
            values.update(thresholds)
            # A longer target can make a sent warning (or breach) premature: allow them again.
            if row["warned_at"] is not None and thresholds["warn_at"] > now:
                values["warned_at"] = None
            if row["breached_at"] is not None and thresholds["due_at"] > now:
                values["breached_at"] = None
        self._save(conn, row, **values)
        self._disarm(conn, row)
        if row["status"] == "running":
            self._arm(conn, policy, row, now)
        self._history(conn, row, "sla.retargeted", {"target": row["target"], "work_seconds": seconds,
                                                    "due_at": _iso(row["due_at"])})

    # -- escalation ---------------------------------------------------------------------------
    def _escalation(self, conn: Connection, policy: SlaPolicy, event: Event, names: Mapping[str, Any],
                    clocks: list[dict[str, Any]], now: datetime) -> None:
        timers = self.rt.services.get("timers")
        esc = policy.escalation
        if esc is None or timers is None or not clocks:
            return
        subject = f"record:{policy.form}:{event.record_id}"
        running = any(c["status"] in ("running", "paused") for c in clocks)
        applies = running and (esc.when is None or bool(esc.when.evaluate(names, self._eval_context())))
        # Whether the timer is armed, when this transaction already cancelled, armed or looked
        # it up: a normal-urgency complaint would otherwise delete nothing on every event.
        known = _known(conn)
        armed = known.escalation.get((subject, policy.name)) if known is not None else None
        if not applies:
            if armed is not False:
                timers.cancel(conn, kind=ESCALATE_KIND, subject=subject, key=policy.name)
                if known is not None:
                    known.escalation[(subject, policy.name)] = False
            return
        level = max(c["escalation_level"] for c in clocks)
        if level >= len(esc.chain):
            return
        restart = event.name in UPDATE_EVENTS and (event.actor or SYSTEM_ACTOR) != SYSTEM_ACTOR
        if armed is None and not restart:  # a restart re-arms whatever is pending
            armed = any(t.key == policy.name for t in timers.pending(conn, subject=subject, kind=ESCALATE_KIND))
        if armed and not restart:
            if known is not None:
                known.escalation[(subject, policy.name)] = True
            return
        timers.schedule(conn, kind=ESCALATE_KIND, subject=subject, key=policy.name,
                        due_at=self.calendar(policy).add_work_time(now, esc.every),
                        payload={"policy": policy.name})
        if known is not None:
            known.escalation[(subject, policy.name)] = True

    # -- timer handlers -----------------------------------------------------------------------
    def _lock_record(self, conn: Connection, form: str, record_id: int) -> None:
        """Take the record's flow instance and clock rows before acting, without waiting.

        A command on the record (a task completion) locks the instance first and the timer rows
        last; a firing timer holds its own row first. Waiting here could close that circle
        (PostgreSQL reports a deadlock), so a record busy with a command makes the handler fail
        at once: the timer service retries it shortly, and by then the command has committed
        (a closed ticket is then left alone). SQLite's single writer needs none of this.
        """
        if conn.dialect.name != "postgresql":
            return
        from sqlalchemy.exc import OperationalError

        try:
            conn.execute(select(flow_instances.c.id).where(
                flow_instances.c.form == form, flow_instances.c.record_id == record_id,
                flow_instances.c.status == "running").with_for_update(nowait=True))
            conn.execute(select(sla_clocks.c.id).where(
                sla_clocks.c.form == form, sla_clocks.c.record_id == record_id).with_for_update(nowait=True))
        except OperationalError as exc:
            raise RecordBusy(f"{form} {record_id} is being changed by a command; retrying") from exc

    def _locked_clock(self, conn: Connection, timer: Any) -> tuple[SlaPolicy | None, dict[str, Any] | None]:
        policy = self.policies.get(timer.payload.get("policy", ""))
        form, record_id = _parse_subject(timer.subject)
        if policy is None or form is None:
            return None, None
        self._lock_record(conn, form, record_id)
        for row in self._clocks(conn, form, record_id, lock=True):
            if row["policy"] == policy.name and row["target"] == timer.payload.get("target"):
                return policy, row
        return policy, None

    def _on_warning(self, conn: Connection, timer: Any) -> None:
        policy, row = self._locked_clock(conn, timer)
        now = self.rt.clock.now()
        if policy is None or row is None or row["status"] != "running" or row["warned_at"] is not None:
            return  # stopped, paused or already warned meanwhile
        if row["warn_at"] is not None and row["warn_at"] > now:
            return  # re-targeted later; the re-armed timer will come
        self._save(conn, row, warned_at=now)
        self._announce(conn, policy, row, "sla.warning", now)

    def _on_breach(self, conn: Connection, timer: Any) -> None:
        policy, row = self._locked_clock(conn, timer)
        now = self.rt.clock.now()
        if policy is None or row is None or row["status"] != "running" or row["breached_at"] is not None:
            return
        if row["due_at"] is not None and row["due_at"] > now:
            return
        self._save(conn, row, breached_at=now)
        self._decided(conn, row, None, now)  # running in time until now: missed from here
        self._announce(conn, policy, row, "sla.breached", now)

    def _announce(self, conn: Connection, policy: SlaPolicy, row: dict[str, Any], name: str, now: datetime) -> None:
        state = self._state(row, now)
        data = {"policy": policy.name, "target": row["target"], "due_at": _iso(row["due_at"]),
                "status": state.status, "remaining_work_seconds": state.remaining_work_seconds}
        self._history(conn, row, name, data)
        self.rt.bus.publish(Event(name, now, row["form"], row["record_id"], SYSTEM_ACTOR, data), conn)

    def _on_escalate(self, conn: Connection, timer: Any) -> None:
        policy = self.policies.get(timer.payload.get("policy", ""))
        form, record_id = _parse_subject(timer.subject)
        if policy is None or policy.escalation is None or form is None:
            return
        esc = policy.escalation
        self._lock_record(conn, form, record_id)
        clocks = [c for c in self._clocks(conn, form, record_id, lock=True) if c["policy"] == policy.name]
        if not any(c["status"] in ("running", "paused") for c in clocks):
            return  # closed meanwhile: never escalate a closed ticket (RELIABILITY 30)
        open_tasks = list(conn.execute(select(tasks.c.id, tasks.c.escalation_level).where(
            tasks.c.form == form, tasks.c.record_id == record_id,
            tasks.c.status.in_(("open", "claimed")))))
        if not open_tasks:
            return
        now = self.rt.clock.now()
        names = self._names(conn, Event("sla.escalate", now, form, record_id, SYSTEM_ACTOR))
        if esc.when is not None and not esc.when.evaluate(names, self._eval_context()):
            return
        level = max(c["escalation_level"] for c in clocks) + 1
        if level > len(esc.chain):
            return
        role = esc.chain[level - 1]
        for clock in clocks:
            self._save(conn, clock, escalation_level=level)
        flows = self.rt.services.get("flows")
        escalated = []
        if flows is not None and hasattr(flows, "escalate"):
            for task_id, task_level in open_tasks:
                if (task_level or 0) >= min(level, 3):
                    continue
                try:
                    with savepoint(conn):
                        flows.escalate(conn, task_id, min(level, 3), SYSTEM_ACTOR)
                    escalated.append(task_id)
                except Exception as exc:  # a node without `escalation:` still gets the notices
                    log.info("task %s not escalated by the flow: %s", task_id, exc)
        data = {"policy": policy.name, "target": "escalation", "level": level, "role": role,
                "tasks": escalated}
        self._history(conn, clocks[0], "sla.escalated", data)
        self.rt.bus.publish(Event("sla.escalated", now, form, record_id, SYSTEM_ACTOR, data), conn)
        known = _known(conn)
        if level < len(esc.chain):
            self.rt.services["timers"].schedule(
                conn, kind=ESCALATE_KIND, subject=timer.subject, key=policy.name,
                due_at=self.calendar(policy).add_work_time(max(now, timer.due_at), esc.every),
                payload={"policy": policy.name})
        if known is not None:
            # Armed again, or (the chain's end) none: the fired timer is no longer open.
            known.escalation[(timer.subject, policy.name)] = level < len(esc.chain)

    def _history(self, conn: Connection, row: Mapping[str, Any], kind: str, data: Mapping[str, Any]) -> None:
        INSERT_HISTORY.later(conn, dict(
            instance_id=None, form=row["form"], record_id=row["record_id"], kind=kind, node=None,
            actor=SYSTEM_ACTOR, at=self.rt.clock.now(), data={"policy": row["policy"], **data}))

    def clocks(self, form: str, record_id: int) -> list[dict[str, Any]]:
        """The record's clock rows (for the timeline and tests)."""
        with read_transaction(self.rt.db) as conn:
            return [dict(row) for row in self._clocks(conn, form, record_id)]


class RecordBusy(Exception):
    """A timer's record is locked by a command in progress: the timer is retried shortly."""


def _subject(row: Mapping[str, Any]) -> str:
    return f"record:{row['form']}:{row['record_id']}"


def _parse_subject(subject: str) -> tuple[str | None, int]:
    parts = subject.split(":")
    if len(parts) != 3 or parts[0] != "record" or not parts[2].isdigit():
        return None, 0
    return parts[1], int(parts[2])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
