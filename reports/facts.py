"""Lifecycle facts of records, kept as they change: first response, closure, repeat.

Reports measure "average first-response time", "72 h closure rate" or "repeat-complaint rate".
Those values live in other tables (tasks, flow instances, earlier records); computing them per
report would scan those tables for every row. Instead one row per record in `dk_report_facts`
is written in the transaction of the event that changes it (events are published inside the
command's transaction, engine/events.py), so a report joins it by primary key.

Derived names a dataset can use (`derived:` fields, and in measures and conditions):
`first_response_at`, `closed_at`, `first_response_hours`, `resolution_hours`, `is_repeat`
(1 or 0), `is_open` (1 while not closed), `age_hours` (creation to closure, or to now).

The verdict of each SLA target (met, missed, none while undecided) is such a fact too, one row
per record and target in `dk_report_verdicts`: the SLA service announces every change of it
(`sla.verdict`: a clock stopped, breached while running, paused, restarted by a reopening) in
the transaction that decides it, and a dataset's `sla:` field reads it (ADR 0012, session 17).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.events import Event
from engine.runtime import Runtime
from engine.storage.prepared import PreparedQuery
from engine.storage.tables import (SLA_VERDICT_EVENT, flow_instances, report_facts, report_verdicts, sla_clocks,
                                   sla_verdict_sql, tasks)
from engine.timers import dialect_insert

DERIVED = {"first_response_at": "date", "closed_at": "date", "first_response_hours": "number",
           "resolution_hours": "number", "is_repeat": "number", "is_open": "number", "age_hours": "number"}


def derived_kind(name: str) -> str:
    return DERIVED[name]


def verdict_key(target: str) -> str:
    """The name a rollup knows an SLA target's verdict by, beside the record's own columns (a
    form field may be called like a target)."""
    return f"sla:{target}"


class FactKeeper:
    """Subscribes to the events that change a record's lifecycle facts and writes them."""

    def __init__(self, runtime: Runtime):
        self.rt = runtime
        # Every statement is built once with bind parameters: they run on each task completion.
        key = self._key = ((report_facts.c.form == sa.bindparam("f_form"))
                           & (report_facts.c.record_id == sa.bindparam("f_record")))
        # Run prepared on the driver (engine/storage/prepared.py): every task completion and
        # every record change passes here.
        self._first_response = PreparedQuery(report_facts.update().where(
            key & report_facts.c.first_response_at.is_(None)).values(
            first_response_at=sa.bindparam("f_at", type_=report_facts.c.first_response_at.type)))
        self._responded_at = PreparedQuery(sa.select(report_facts.c.first_response_at).where(key))
        self._updates: dict[tuple[str, tuple[str, ...]], PreparedQuery] = {}  # (dialect, columns) -> upsert
        self._insert = report_facts.insert()
        self._earlier: dict[str, tuple[PreparedQuery, PreparedQuery]] = {}
        datasets = runtime.bundle.all("dataset").values()
        self.forms = {d.form for d in datasets}
        self.repeat: dict[str, tuple[str, int]] = {}
        for d in datasets:
            if d.repeat_key and d.form not in self.repeat:
                self.repeat[d.form] = (d.repeat_key, d.repeat_days)
        bus = runtime.bus
        bus.subscribe("record.created", self._created)
        bus.subscribe("task.completed", self._responded)
        bus.subscribe("flow.ended", self._closed)
        bus.subscribe("flow.reopened", self._reopened)
        bus.subscribe("record.updated", self._updated)
        bus.subscribe(SLA_VERDICT_EVENT, self._decided)
        self._verdicts: dict[str, PreparedQuery] = {}  # dialect -> upsert

    def _cells(self, conn: Connection, form: str, record_id: int, old: dict[str, Any] | None = None) -> None:
        """Maintained aggregates holding the record recompute their cells (reports/rollups.py)."""
        keeper = self.rt.services.get("rollups")
        if keeper is not None:
            keeper.record_changed(conn, form, record_id, old)

    def _updated(self, event: Event, conn: Connection) -> None:
        if event.form in self.forms and event.record_id is not None:
            changes = (event.data or {}).get("changes") or {}
            self._cells(conn, event.form, event.record_id, {k: v[0] for k, v in changes.items()})

    def _upsert(self, conn: Connection, form: str, record_id: int, **values: Any) -> None:
        """Set `values` on the record's facts row, adding the row if it has none, in one
        statement (INSERT ... ON CONFLICT DO UPDATE: a new record's facts took an UPDATE that
        matched nothing and then an INSERT)."""
        columns = tuple(sorted(values))
        stmt = self._updates.get((conn.dialect.name, columns))
        if stmt is None:
            upsert = dialect_insert(conn)(report_facts).values(
                {c: sa.bindparam(f"v_{c}", type_=report_facts.c[c].type) for c in ("form", "record_id", *columns)})
            stmt = self._updates[(conn.dialect.name, columns)] = PreparedQuery(upsert.on_conflict_do_update(
                index_elements=[report_facts.c.form, report_facts.c.record_id],
                set_={c: upsert.excluded[c] for c in columns}))
        stmt.execute(conn, {"v_form": form, "v_record_id": record_id, **{f"v_{c}": v for c, v in values.items()}})

    def _created(self, event: Event, conn: Connection) -> None:
        if event.form not in self.forms or event.record_id is None:
            return
        repeat = 0
        if event.form in self.repeat:
            repeat = int(self._is_repeat(conn, event.form, event.record_id, *self.repeat[event.form]))
        self._upsert(conn, event.form, event.record_id, is_repeat=repeat)
        self._cells(conn, event.form, event.record_id)

    def _is_repeat(self, conn: Connection, form: str, record_id: int, key: str, days: int) -> bool:
        statements = self._earlier.get(form)
        if statements is None:
            table = self.rt.services["forms"].tables[form]
            this = PreparedQuery(sa.select(table.c[key].label("r_key"), table.c.created_at.label("r_at"))
                                 .where(table.c.id == sa.bindparam("r_id")))
            earlier = PreparedQuery(sa.select(table.c.id).where(
                table.c[key] == sa.bindparam("r_key"), table.c.id != sa.bindparam("r_id"),
                table.c.created_at <= sa.bindparam("r_at"), table.c.created_at >= sa.bindparam("r_since")).limit(1))
            statements = self._earlier[form] = (this, earlier)
        this, earlier = statements
        row = this.first(conn, {"r_id": record_id})
        if row is None or row["r_key"] in (None, ""):
            return False
        found = earlier.first(conn, {"r_key": row["r_key"], "r_id": record_id, "r_at": row["r_at"],
                                     "r_since": row["r_at"] - timedelta(days=days)})
        return found is not None

    def _responded(self, event: Event, conn: Connection) -> None:
        if event.form not in self.forms or event.record_id is None:
            return
        params = {"f_form": event.form, "f_record": event.record_id, "f_at": event.at}
        # Read first: every task completion passes here and only the first one writes, so the
        # usual case is one SELECT (an UPDATE that matched nothing, then a SELECT, before).
        facts = self._responded_at.first(conn, params)
        if facts is None:
            conn.execute(self._insert, {"form": event.form, "record_id": event.record_id,
                                        "first_response_at": event.at})
        elif facts["first_response_at"] is not None:
            return  # not the first response: nothing changed
        elif self._first_response.execute(conn, params) == 0:
            return  # answered meanwhile (PostgreSQL: a concurrent first response committed first)
        self._cells(conn, event.form, event.record_id)

    def _closed(self, event: Event, conn: Connection) -> None:
        if event.form in self.forms and event.record_id is not None:
            self._upsert(conn, event.form, event.record_id, closed_at=event.at)
            self._cells(conn, event.form, event.record_id)

    def _decided(self, event: Event, conn: Connection) -> None:
        """Keep the verdict an SLA target came to (None: undecided again) and recompute the
        cells that count it, under the verdict it had (`was`) and the one it has now."""
        if event.form not in self.forms or event.record_id is None:
            return
        stmt = self._verdicts.get(conn.dialect.name)
        if stmt is None:
            upsert = dialect_insert(conn)(report_verdicts).values(
                form=sa.bindparam("v_form"), record_id=sa.bindparam("v_record"), target=sa.bindparam("v_target"),
                verdict=sa.bindparam("v_verdict", type_=report_verdicts.c.verdict.type))
            stmt = self._verdicts[conn.dialect.name] = PreparedQuery(upsert.on_conflict_do_update(
                index_elements=[report_verdicts.c.form, report_verdicts.c.record_id, report_verdicts.c.target],
                set_={"verdict": upsert.excluded.verdict}))
        target = str(event.data["target"])
        stmt.execute(conn, {"v_form": event.form, "v_record": event.record_id, "v_target": target,
                            "v_verdict": event.data.get("verdict")})
        self._cells(conn, event.form, event.record_id, {verdict_key(target): event.data.get("was")})

    def _reopened(self, event: Event, conn: Connection) -> None:
        if event.form in self.forms and event.record_id is not None:
            self._upsert(conn, event.form, event.record_id, closed_at=None)
            self._cells(conn, event.form, event.record_id)


def complete_facts(conn: Connection, runtime: Runtime, forms: set[str]) -> list[str]:
    """Rebuild the facts of each form whose records and facts rows do not pair up: a bundle
    that gained its first report over a form with records already in it (the facts are only
    written as records change), or rows written around the engines. Returns those forms; run
    at start, before the rollups that measure the facts are checked."""
    tables = runtime.services["forms"].tables
    rebuilt = []
    for form in sorted(forms):
        records = conn.execute(sa.select(sa.func.count()).select_from(tables[form])).scalar()
        kept = conn.execute(sa.select(sa.func.count()).select_from(report_facts)
                            .where(report_facts.c.form == form)).scalar()
        if records != kept:
            rebuild_facts(conn, runtime, form)
            rebuilt.append(form)
    return rebuilt


def rebuild_facts(conn: Connection, runtime: Runtime, form: str) -> int:
    """Recompute every record's facts of `form` from tasks and flow instances (after a bulk
    import or when reports are added to a bundle with records already in it); returns rows."""
    table = runtime.services["forms"].tables[form]
    conn.execute(report_facts.delete().where(report_facts.c.form == form))
    first = (sa.select(sa.func.min(tasks.c.completed_at))
             .where(tasks.c.form == form, tasks.c.record_id == table.c.id, tasks.c.status == "completed")
             .scalar_subquery())
    closed = (sa.select(sa.func.max(flow_instances.c.ended_at))
              .where(flow_instances.c.form == form, flow_instances.c.record_id == table.c.id,
                     flow_instances.c.status == "completed")
              .scalar_subquery())
    repeat: Any = sa.literal(0)
    for d in runtime.bundle.all("dataset").values():
        if d.form == form and d.repeat_key:
            other = table.alias("earlier")
            window = (sa.func.julianday(table.c.created_at) - sa.func.julianday(other.c.created_at)
                      if conn.dialect.name == "sqlite"
                      else sa.func.extract("epoch", table.c.created_at - other.c.created_at) / 86400.0)
            repeat = sa.case((sa.exists().where(other.c[d.repeat_key] == table.c[d.repeat_key],
                                                other.c.id != table.c.id,
                                                other.c.created_at <= table.c.created_at,
                                                window <= d.repeat_days), 1), else_=0)
            break
    query = sa.select(sa.literal(form), table.c.id, first, closed, repeat)
    result = conn.execute(report_facts.insert().from_select(
        ["form", "record_id", "first_response_at", "closed_at", "is_repeat"], query))
    rebuild_verdicts(conn, form)
    return int(result.rowcount or 0)


def rebuild_verdicts(conn: Connection, form: str) -> int:
    """Recompute the SLA verdicts of `form`'s records from their clocks (the rule the SLA
    service announces them by, engine.storage.tables.sla_verdict); returns rows. Two policies
    naming one target keep the worse verdict ('missed' sorts after 'met'); a dataset refuses
    to read such a target."""
    conn.execute(report_verdicts.delete().where(report_verdicts.c.form == form))
    verdict = sa.func.max(sla_verdict_sql(sla_clocks))
    query = (sa.select(sla_clocks.c.form, sla_clocks.c.record_id, sla_clocks.c.target, verdict)
             .where(sla_clocks.c.form == form)
             .group_by(sla_clocks.c.form, sla_clocks.c.record_id, sla_clocks.c.target)
             .having(verdict.is_not(None)))  # an undecided target needs no row
    result = conn.execute(report_verdicts.insert().from_select(["form", "record_id", "target", "verdict"], query))
    return int(result.rowcount or 0)
