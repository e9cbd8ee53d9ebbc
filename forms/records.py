"""Records of forms: submit, read, list, update. Each command is one transaction."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from datetime import timezone
from typing import Any, Mapping, Sequence

from sqlalchemy import MetaData, Table, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import ConflictError, IdempotencyKeyReused, NotFoundError, ValidationFailed
from engine.events import Event
from engine.expr import EvalContext
from engine.registry import BUILT_IN
from engine.runtime import Runtime
from engine.storage.prepared import INSERT_HISTORY, PreparedInsert, PreparedQuery
from engine.storage.db import read_transaction, transaction
from engine.storage.memo import memo
from engine.storage.records import apply_additive, plan_migration, record_table
from engine.storage.tables import history as dk_history
from engine.storage.tables import idempotency as dk_idempotency
from forms.fields.base import FieldType
from forms.compile import CompiledForm, compile_form
from forms.messages import FieldInvalid, message
from forms.numbering import allocate

_READS = "docket_record_reads"
"""The `engine.storage.memo` of the records read in a transaction (`FormService.read`)."""
SYSTEM_COLUMNS = ("id", "query_no", "version", "status", "created_at", "updated_at", "created_by")

NEW_STATUS = "new"
"""The status of every record as it is created (a flow step may set another at once)."""


@dataclass(frozen=True)
class SubmitResult:
    """What a submission produced; `created` is False when an idempotent retry was answered."""

    form: str
    record_id: int
    query_no: str | None
    created: bool


def request_hash(data: Mapping[str, Any]) -> str:
    """A stable hash of a submission body, to tell a retry from a different request."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class FormService:
    """The form engine at run time: compiled forms, their tables, and record commands."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.metadata = MetaData()
        self.forms: dict[str, CompiledForm] = {
            name: compile_form(spec, rt.bundle.registry) for name, spec in rt.bundle.all("form").items()
        }
        self.tables: dict[str, Table] = {
            name: record_table(form.table_spec, self.metadata) for name, form in self.forms.items()
        }
        rt.services["forms"] = self
        self._insert_record = {name: PreparedInsert(table) for name, table in self.tables.items()}
        self._number_taken = {name: PreparedQuery(select(table.c.id).where(table.c.query_no == bindparam("number")))
                              for name, table in self.tables.items()}
        self._record_updates: dict[tuple[str, tuple[str, ...], bool], PreparedQuery] = {}
        self._auto_numbered = {name: tuple(n for n in form.stored if hasattr(form.types[n], "on_insert"))
                               for name, form in self.forms.items()}
        self._checked = {name: tuple(n for n in form.stored
                                     if type(form.types[n]).check_stored is not FieldType.check_stored)
                         for name, form in self.forms.items()}
        # Fields whose checked value is exactly what reading the record back gives (every
        # built-in type's is, tests/forms/test_record_reads.py): a write of only those keeps the
        # transaction's copy of the record up to date instead of reading it again. A plugin's
        # type may store something else than it hands back, so its writes drop the copy.
        self._kept_as_written = {
            name: frozenset(n for n in form.stored
                            if rt.bundle.registry.field_types.source(form.field(n).type) == BUILT_IN)
            for name, form in self.forms.items()}
        # Forms without file fields have nothing to link: skip the attachment service's walk.
        self._with_attachments = {name: any(getattr(t, "holds_attachments", False) for t in form.types.values())
                                  for name, form in self.forms.items()}

    def ensure_tables(self) -> None:
        """Create missing record tables and add new columns (additive only, never drops)."""
        for form in self.forms.values():
            apply_additive(self.rt.db, plan_migration(self.rt.db, form.table_spec))

    def form(self, name: str) -> CompiledForm:
        try:
            return self.forms[name]
        except KeyError:
            raise NotFoundError(f"no form '{name}'") from None

    def eval_context(self) -> EvalContext:
        return EvalContext(now=self.rt.clock.now(), calendar=self.rt.bundle.meta.calendar,
                           services=self.rt.services)

    # -- commands ---------------------------------------------------------------------------
    def submit(self, form_name: str, data: Mapping[str, Any], *, actor: str | None = None,
               locale: str = "en", idempotency_key: str | None = None,
               channel: str | None = None, anonymous: bool = False) -> SubmitResult:
        """Validate and store a new record, publish `record.created` (which starts its flow).

        `anonymous` submitters (the public form, the unauthenticated API) may not set fields
        marked `staff_only`.
        """
        form = self.form(form_name)
        # Only conditions, defaults, computed values and `not_future` read the context: most forms skip it.
        clean = form.validate(data, locale=locale, ctx=self.eval_context() if form.needs_context else None,
                              editable=form.public_fields if anonymous else None,
                              extra_names={"user": {"username": actor}})
        # Only a keyed submission compares bodies: hashing costs as much as validating.
        body_hash = request_hash(data) if idempotency_key else ""
        try:
            with transaction(self.rt.db) as conn:
                if idempotency_key:
                    earlier = self._earlier(conn, form_name, idempotency_key, body_hash)
                    if earlier is not None:
                        return earlier
                result = self.insert_validated(conn, form_name, clean, actor=actor, channel=channel,
                                               locale=locale)
                if idempotency_key:
                    conn.execute(insert(dk_idempotency).values(
                        key=idempotency_key, form=form_name, request_hash=body_hash,
                        record_id=result.record_id, created_at=self.rt.clock.now()))
                return result
        except IntegrityError:
            if idempotency_key:  # a concurrent retry with the same key won the race
                with transaction(self.rt.db) as conn:
                    earlier = self._earlier(conn, form_name, idempotency_key, body_hash)
                    if earlier is not None:
                        return earlier
            self._raise_unique(form, clean, locale)
            raise

    def _earlier(self, conn: Connection, form: str, key: str, body_hash: str) -> SubmitResult | None:
        row = conn.execute(select(dk_idempotency).where(dk_idempotency.c.key == key)).first()
        if row is None:
            return None
        if row.form != form or row.request_hash != body_hash:
            raise IdempotencyKeyReused("this submission key was already used for a different submission")
        query_no = conn.execute(select(self.tables[form].c.query_no)
                                .where(self.tables[form].c.id == row.record_id)).scalar()
        return SubmitResult(form, row.record_id, query_no, created=False)

    def _raise_unique(self, form: CompiledForm, clean: Mapping[str, Any], locale: str) -> None:
        table = self.tables[form.name]
        errors = {}
        with read_transaction(self.rt.db) as conn:
            for name in form.stored:
                if form.field(name).unique and clean.get(name) is not None:
                    taken = conn.execute(select(func.count()).select_from(table)
                                         .where(table.c[name] == clean[name])).scalar()
                    if taken:
                        errors[name] = [message("not_unique", locale)]
        if errors:
            raise ValidationFailed(errors)

    def insert_validated(self, conn: Connection, form_name: str, clean: Mapping[str, Any], *,
                         actor: str | None = None, channel: str | None = None,
                         locale: str = "en", source: Mapping[str, Any] | None = None) -> SubmitResult:
        """Store values that `CompiledForm.validate` returned, inside the caller's transaction.

        The one way a record comes into being, whatever the channel (page, API, command line,
        import): the field types' database checks, a query number, the `record.created` history
        entry and the `record.created` event (which starts the form's flow), all in the caller's
        transaction. A failed database check raises ValidationFailed before anything is written.
        `source` names the record a rule created this one from (`form`, `record_id`, `query_no`),
        kept in the `record.created` entry so the new record's page links back to it.
        """
        form = self.form(form_name)
        self._check_stored(conn, form, clean, locale)
        now = self.rt.clock.now()
        zone = self.rt.bundle.meta.timezone
        values = dict(clean)
        for name in self._auto_numbered[form.name]:
            values[name] = form.types[name].on_insert(conn, form.field(name), form.name, now, zone)
        query_no = None
        if form.spec.numbering:
            held = self._number_taken[form.name]
            query_no = allocate(conn, form.name, form.spec.numbering, now, zone,
                                taken=lambda number: held.first(conn, {"number": number}) is not None)
        # The two inserts of every submission are prepared once per table (engine/storage/
        # prepared.py): per-execution SQLAlchemy work was the largest cost of intake.
        record_id = self._insert_record[form.name].execute(conn, {
            **values, "query_no": query_no, "version": 1, "status": NEW_STATUS, "created_at": now,
            "updated_at": now, "created_by": actor, "bundle_hash": self.rt.bundle.hash,
        })
        attachments = self.rt.services.get("attachments")
        if attachments is not None and self._with_attachments[form.name]:
            attachments.link_record(conn, form, values, int(record_id), locale=locale)
        INSERT_HISTORY.later(conn, {
            "form": form.name, "record_id": record_id, "kind": "record.created", "actor": actor,
            "at": now, "data": {"fields": form.to_json(values), "channel": channel,
                                **({"source": dict(source)} if source else {})}})
        clean = values
        self.rt.bus.publish(Event("record.created", now, form.name, record_id, actor,
                                  {"values": dict(clean), "query_no": query_no}), conn)
        return SubmitResult(form.name, int(record_id), query_no, created=True)

    def _check_stored(self, conn: Connection, form: CompiledForm, clean: Mapping[str, Any],
                      locale: str) -> None:
        errors: dict[str, list[str]] = {}
        for name in self._checked[form.name]:
            check = form.types[name].check_stored
            if clean.get(name) is None:
                continue
            try:
                check(conn, clean[name], form.field(name), self.tables)
            except FieldInvalid as exc:
                for key, text in exc.messages(name, locale).items():  # sub-table cells too
                    errors.setdefault(key, []).append(text)
        if errors:
            raise ValidationFailed(errors)

    def _update_statement(self, form_name: str, columns: tuple[str, ...], versioned: bool) -> PreparedQuery:
        """The record UPDATE writing `columns` (and version, updated_at), optionally checking the
        version: prepared once per form and set of columns, since flows and rules write the
        same few sets over and over (building the statement cost more than running it)."""
        key = (form_name, columns, versioned)
        stmt = self._record_updates.get(key)
        if stmt is None:
            table = self.tables[form_name]
            where = [table.c.id == bindparam("b_id")]
            if versioned:
                where.append(table.c.version == bindparam("b_version"))
            stmt = self._record_updates[key] = PreparedQuery(update(table).where(*where).values({
                **{table.c[c]: bindparam(f"v_{c}", type_=table.c[c].type) for c in columns},
                table.c.version: table.c.version + 1,
                table.c.updated_at: bindparam("b_updated_at", type_=table.c.updated_at.type)}))
        return stmt

    def update_fields(self, conn: Connection, form_name: str, record_id: int,
                      values: Mapping[str, Any], *, actor: str | None,
                      expected_version: int | None = None, status: str | None = None,
                      locale: str = "en") -> dict[str, Any]:
        """Write already-validated field values inside the caller's transaction.

        Returns the field diff {name: [old, new]}. A stale `expected_version` is a ConflictError;
        a changed value that fails its field type's database check (a user who does not exist,
        an upload that is not stored) is a ValidationFailed, as on insert.
        """
        form = self.form(form_name)
        if not values and status is not None and expected_version is None:
            # A status change alone (a flow entering a node): no field diff to compute.
            now = self.rt.clock.now()
            kept = memo(conn, _READS, dict)
            values_kept = kept.get((form_name, record_id)) if kept is not None else None
            # A status it already has is left out of the SET: SQLite rewrites the status index
            # entry of any UPDATE that sets the column, changed or not (a page more per commit).
            columns = () if values_kept is not None and values_kept.get("status") == status else ("status",)
            if self._update_statement(form_name, columns, False).execute(
                    conn, {"b_id": record_id, "v_status": status, "b_updated_at": now}) != 1:
                self._forget(conn, form_name, record_id)
                return {}
            # The kept values (if any) get the same three changes the statement made, so the
            # handlers of the events that follow do not read the record again (~18 reads per
            # postal complaint): they are exactly what a read would return.
            if values_kept is not None:
                values_kept.update(status=status, version=values_kept["version"] + 1,
                                   updated_at=now.astimezone(timezone.utc))
            return {}
        # The stored values (kept for the transaction: a step's completion has just read them to
        # validate), not a copy the caller holds.
        before = self.read(conn, form_name, record_id)
        diff = {n: [form.types[n].to_json(before.get(n), form.field(n)),
                    form.types[n].to_json(v, form.field(n))]
                for n, v in values.items() if before.get(n) != v}
        changes: dict[str, Any] = {n: values[n] for n in diff}
        if changes and self._checked[form.name]:
            self._check_stored(conn, form, changes, locale)
        if status is not None:
            changes["status"] = status
        if not changes:
            return {}
        stmt = self._update_statement(form_name, tuple(changes), expected_version is not None)
        now = self.rt.clock.now()
        rowcount = stmt.execute(conn, {"b_id": record_id, "b_version": expected_version, "b_updated_at": now,
                                       **{f"v_{name}": value for name, value in changes.items()}})
        if rowcount != 1:
            raise ConflictError("the record was changed by someone else; reload it and try again")
        kept = memo(conn, _READS, dict)
        held = kept.get((form_name, record_id)) if kept is not None else None
        if held is not None and self._kept_as_written[form_name].issuperset(diff):
            # What the statement wrote, as a read would return it: the event handlers that follow
            # (SLA clocks, rules) need not read the record again.
            held.update(_copy(changes), version=held["version"] + 1, updated_at=now.astimezone(timezone.utc))
        else:
            self._forget(conn, form_name, record_id)
        if diff:
            self.rt.bus.publish(Event("record.updated", now, form_name, record_id, actor,
                                      {"changes": diff}), conn)
        return diff

    # -- queries ----------------------------------------------------------------------------
    def read(self, conn: Connection, form_name: str, record_id: int, *, fresh: bool = False) -> dict[str, Any]:
        """One record's values (fields and system columns); NotFoundError if absent.

        Within one transaction a record is read from the database once: rules, SLA clocks and
        flow nodes ask for it on every event of a command (about 50 times per postal
        complaint). The values are kept for the transaction (a savepoint rolled back drops every
        kept value: engine/storage/memo.py) and dropped when this service writes the record;
        each caller gets its own copy. `fresh` reads the database anyway.
        """
        kept: dict[tuple[str, int], dict[str, Any]] | None = memo(conn, _READS, dict)
        if kept is not None and not fresh:
            values = kept.get((form_name, record_id))
            if values is not None:
                return _copy(values)
        form = self.form(form_name)
        # Prepared once per form and run on the driver's cursor (engine/storage/prepared.py).
        prepared = self.__dict__.setdefault("_prepared_reads", {})
        query = prepared.get(form_name)
        if query is None:
            table = self.tables[form_name]
            query = prepared[form_name] = PreparedQuery(select(table).where(table.c.id == bindparam("record_id")))
        row = query.first(conn, {"record_id": record_id})
        if row is None:
            raise NotFoundError(f"no {form_name} record {record_id}")
        out = {c: row[c] for c in SYSTEM_COLUMNS}
        for name in form.stored:
            out[name] = form.types[name].from_db(row[name], form.field(name))
        if kept is not None:
            kept[(form_name, record_id)] = out
            return _copy(out)
        return out

    def _forget(self, conn: Connection, form_name: str, record_id: int) -> None:
        """Drop a record's kept values on this connection (`read`)."""
        kept = memo(conn, _READS, dict)
        if kept is not None:
            kept.pop((form_name, record_id), None)

    def choices(self, conn: Connection, form_name: str, locale: str, *, show: str | None = None,
                where: ColumnElement[bool] | None = None, limit: int | None = 200) -> list[tuple[int, str]]:
        """(id, words) of the newest `limit` records of `form_name` (narrowed by `where`, e.g.
        their ids, or forms.access.record_scope): the words that identify a record to people,
        the `show` field (default: the form's `title`) as its type displays it, after the query
        number when the form numbers its records; `#id` for a record with neither. What a staff
        page offers for a `reference` field, and how one reads, where it read `#12`."""
        form = self.form(form_name)
        table = self.tables[form_name]
        shown = show or form.spec.title_field
        shown = shown if shown in form.stored else None
        query = select(table.c.id, table.c.query_no, *([table.c[shown]] if shown else []))
        if where is not None:
            query = query.where(where)
        query = query.order_by(table.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        out: list[tuple[int, str]] = []
        for row in conn.execute(query).mappings():
            title = form.display(shown, form.types[shown].from_db(row[shown], form.field(shown)), locale) \
                if shown and row[shown] is not None else ""
            out.append((int(row["id"]), " · ".join(w for w in (row["query_no"], title) if w) or f"#{row['id']}"))
        return out

    def get(self, form_name: str, record_id: int) -> dict[str, Any]:
        with read_transaction(self.rt.db) as conn:
            return self.read(conn, form_name, record_id)

    def find_by_query_no(self, form_name: str, query_no: str) -> dict[str, Any] | None:
        table = self.tables[form_name]
        with read_transaction(self.rt.db) as conn:
            record_id = conn.execute(select(table.c.id).where(table.c.query_no == query_no)).scalar()
            return None if record_id is None else self.read(conn, form_name, record_id)

    def list(self, form_name: str, *, limit: int = 50, offset: int = 0,
             where: ColumnElement[bool] | None = None,
             order_by: Sequence[ColumnElement[Any]] = ()) -> list[dict[str, Any]]:
        """Newest records first, or in `order_by`; `where` narrows them (e.g. forms.access.record_scope)."""
        form = self.form(form_name)
        table = self.tables[form_name]
        query = select(table) if where is None else select(table).where(where)
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(query.order_by(*(order_by or [table.c.id.desc()])).limit(limit).offset(offset)).mappings()
            out = []
            for row in rows:
                item = {c: row[c] for c in SYSTEM_COLUMNS}
                for name in form.stored:
                    item[name] = form.types[name].from_db(row[name], form.field(name))
                out.append(item)
            return out

    def count(self, form_name: str, *, where: ColumnElement[bool] | None = None) -> int:
        """How many records the form has (that match `where`)."""
        table = self.tables[form_name]
        query = select(func.count()).select_from(table)
        if where is not None:
            query = query.where(where)
        with read_transaction(self.rt.db) as conn:
            return int(conn.execute(query).scalar_one())

    def history(self, form_name: str, record_id: int) -> list[dict[str, Any]]:
        """The record's timeline, oldest first."""
        with read_transaction(self.rt.db) as conn:
            rows = conn.execute(select(dk_history).where(dk_history.c.form == form_name,
                                                         dk_history.c.record_id == record_id)
                                .order_by(dk_history.c.id)).mappings()
            return [dict(r) for r in rows]


def _copy(values: Mapping[str, Any]) -> dict[str, Any]:
    """A record's values for one caller: lists and dicts (multi-selects, sub-tables) copied too,
    so changing them in place never changes what the next caller reads."""
    return {k: copy.deepcopy(v) if v.__class__ in (list, dict) else v for k, v in values.items()}
