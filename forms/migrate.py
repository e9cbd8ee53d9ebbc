"""Explicit record-table migrations: what `docket migrate` plans, checks and applies.

Start-up only ever adds (tables, nullable columns, indexes). Everything else a changed form can
ask for waits here, shown as a plan first and applied only on request, in one transaction per
form, and never losing data:

- a **renamed** field (`--rename form.old=new`) or a **retyped** one moves its values into the
  column the form now declares, each value converted by the field type's own parser (a value
  that does not convert blocks the whole step, listing the records); the old column is kept,
  renamed to `_removed_<name>`, so nothing is dropped;
- a field **removed** from the form keeps its data under `_removed_<name>` too, which frees the
  name for a new field;
- a field that became **unique** gets its unique index once no two records share a value (the
  plan lists the duplicates otherwise); one that is no longer unique loses the index.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine.storage.db import read_transaction, schema_inspector, serialize, transaction
from engine.storage.records import ARCHIVE_PREFIX, apply_additive, plan_migration, record_table
from engine.storage.tables import audit_log, bundle_versions
from forms.messages import FieldInvalid

SHOWN = 10
"""How many blocking records a step lists before it just counts them."""


@dataclass
class Step:
    """One change to one form's table; `blocked` says why it cannot be applied yet."""

    kind: str
    """`move` (rename or retype: values move to the declared column), `archive`, `add_unique`,
    `drop_unique`, or `note` (reported, nothing to apply)."""
    form: str
    column: str
    text: str
    target: str | None = None
    blocked: list[str] = field(default_factory=list)
    converted: dict[int, Any] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"{self.form}: {self.text}"]
        lines += [f"{self.form}:   blocked: {reason}" for reason in self.blocked]
        return "\n".join(lines)


class MigrationBlocked(Exception):
    """Some step cannot be applied; nothing was changed."""


def plan_form(service: Any, form_name: str, renames: Mapping[str, str] | None = None) -> list[Step]:
    """The explicit steps `form_name` needs, each checked against the data (nothing changes).

    `renames` maps an old column name to the field that replaces it.
    """
    renames = dict(renames or {})
    form = service.form(form_name)
    spec = form.table_spec
    plan = plan_migration(service.rt.db, spec)
    table = record_table(spec)
    steps: list[Step] = []
    with read_transaction(service.rt.db) as conn:
        live = _live_table(conn, table.name)
        for old, new in renames.items():
            if live is None or old not in live.c:
                steps.append(Step("note", form_name, old, f"cannot rename {old}: the table has no column {old}",
                                  blocked=[f"no column {old} in {table.name}"]))
                continue
            if new not in form.stored:
                steps.append(Step("note", form_name, old, f"cannot rename {old} to {new}: the form has no field {new}",
                                  blocked=[f"add the field {new} to the form first"]))
                continue
            steps.append(_move(conn, form, live, old, new, f"move the values of {old} into field {new}"))
        for change in plan.explicit:
            if change.column in renames or change.column in renames.values():
                continue
            if change.kind == "retype":
                steps.append(_move(conn, form, live, change.column, change.column,
                                   f"convert {change.column} to {table.c[change.column].type.compile(conn.dialect)}"))
            elif change.kind == "removed":
                meant = _renamed_to(conn, form, live, change.column)
                steps.append(Step("archive", form_name, change.column,
                                  f"keep the data of {change.column} (no longer in the form) as "
                                  f"{ARCHIVE_PREFIX}{change.column}"
                                  + (f"; if it was renamed to {meant}, run with --rename "
                                     f"{form_name}.{change.column}={meant} to move its values there"
                                     if meant else "")))
            elif change.kind == "add_unique":
                steps.append(_add_unique(conn, form_name, table.name, change.column))
            elif change.kind == "drop_unique":
                steps.append(Step("drop_unique", form_name, change.column,
                                  f"stop enforcing unique values of {change.column}"))
            else:
                steps.append(Step("note", form_name, change.column, change.text))
        moved = set(renames) | set(renames.values()) | {c.column for c in plan.explicit}
        for name in form.stored:
            if live is not None and name in live.c and name not in moved:
                note = _refused_values(conn, form, live, name)
                if note is not None:
                    steps.append(note)
    return steps


_NARROWED_TYPES = frozenset({"select", "radio", "rating", "integer"})
"""Field types whose stored value is what a person types, so a narrower definition (an option
taken out of the list, a lower `max`) can be checked against it: a rating moved from 1-10 to
1-5 leaves the 9s and 10s the form now refuses."""


def _refused_values(conn: Connection, form: Any, live: sa.Table, name: str) -> Step | None:
    """A note when records hold values of `name` that its field, as now defined, refuses:
    they stay as they are, and the form asks for another on their next edit."""
    ftype, spec = form.types[name], form.field(name)
    if getattr(ftype, "name", None) not in _NARROWED_TYPES:
        return None
    column = live.c[name]
    counts = conn.execute(sa.select(column, sa.func.count()).where(column.is_not(None)).group_by(column)).all()
    refused = []
    for value, count in counts:
        try:
            _convert(ftype, spec, value)
        except FieldInvalid as exc:
            refused.append((value, count, exc.text("en")))
    if not refused:
        return None
    total = sum(count for _, count, _ in refused)
    shown = "; ".join(f"{value!r} ({count} record(s)): {why.rstrip('.')}" for value, count, why in refused[:SHOWN])
    return Step("note", form.name, name,
                f"{total} record(s) hold a {name} the field now refuses: {shown}"
                + ("; ..." if len(refused) > SHOWN else "")
                + ". They keep it, and an edit asks for another: correct them, or widen the field again")


def apply_form(service: Any, form_name: str, steps: list[Step], *, actor: str = "docket migrate") -> list[str]:
    """Apply the planned steps of one form in one transaction; MigrationBlocked if any is blocked.

    Returns what was done, in words. Additive changes (new columns, indexes) follow.
    """
    blocked = [s for s in steps if s.blocked]
    if blocked:
        raise MigrationBlocked("\n".join(s.describe() for s in blocked))
    form = service.form(form_name)
    table = record_table(form.table_spec)
    done: list[str] = []
    with transaction(service.rt.db) as conn:
        serialize(conn, table.name)
        for step in steps:
            if step.kind == "archive":
                done.append(f"{form_name}: {step.column} kept as {_archive(conn, table.name, step.column)}")
            elif step.kind == "move":
                done.append(_apply_move(conn, table, step))
            elif step.kind == "add_unique":
                _drop_indexes(conn, table.name, step.column)
                for index in table.indexes:
                    if index.unique and step.column in index.columns:
                        index.create(conn)
                done.append(f"{form_name}: {step.column} is now unique")
            elif step.kind == "drop_unique":
                _drop_indexes(conn, table.name, step.column)
                for index in table.indexes:
                    if step.column in index.columns:
                        index.create(conn)
                done.append(f"{form_name}: {step.column} no longer unique")
        if done:
            conn.execute(sa.insert(audit_log).values(at=service.rt.clock.now(), actor=actor,
                                                     action="records.migrated", target=table.name,
                                                     detail={"steps": done}))
    apply_additive(service.rt.db, plan_migration(service.rt.db, form.table_spec))
    return done


# -- steps ---------------------------------------------------------------------------------
def _renamed_to(conn: Connection, form: Any, live: sa.Table | None, old: str) -> str | None:
    """The field `old` was most likely renamed to, so renaming `clerk_note` to `check_note` is
    not read as a removal and an empty new field without a word about `--rename`: a field new
    since the form's earlier version (its label kept first, else a close name) that no record
    fills beside `old`; without that version, one with a close name whose column is empty."""
    if live is None or old not in live.c:
        return None

    def holding(name: str, *, beside_old: bool) -> int:
        where = live.c[name].is_not(None)
        if beside_old:
            where = sa.and_(where, live.c[old].is_not(None))
        return int(conn.execute(sa.select(sa.func.count()).select_from(live).where(where)).scalar() or 0)

    earlier = _earlier_fields(conn, form, old)
    # A field new since the earlier version may already hold what records written after the
    # reload put there (the move leaves those be); without that version, only an empty one.
    empty = [name for name in form.stored if name in live.c and name != old
             and (earlier is None or name not in earlier)
             and holding(name, beside_old=earlier is not None) == 0]
    if earlier is not None:
        # A field the earlier version already had was not renamed from `old`: only new ones can
        # be, and one keeping the old field's label is the analyst's own answer.
        label = earlier[old].get("label") if isinstance(earlier[old], dict) else None
        same = [name for name in empty if label is not None and form.field(name).label == label]
        if same:
            return same[0]
    close = difflib.get_close_matches(old, empty, n=1, cutoff=0.6) or [
        name for name in empty if len(min(name, old, key=len)) >= 3 and (name.startswith(old) or old.startswith(name))]
    return close[0] if close else None


def _earlier_fields(conn: Connection, form: Any, old: str) -> dict[str, Any] | None:
    """The fields (name: definition) of `form` in the most recently loaded earlier bundle
    version that declared `old`, read from the source kept with each version; None when no
    kept version did."""
    from engine.errors import Diagnostics
    from engine.yamlsource import load_yaml

    rows = conn.execute(sa.select(bundle_versions.c.source).order_by(bundle_versions.c.loaded_at.desc()))
    for (source,) in rows:
        for path, text in (source or {}).items():
            if not (path.startswith("forms/") and path.endswith((".yaml", ".yml"))):
                continue
            # Read as the loader read it when that version ran (YAML 1.2 scalars, bounded).
            loaded = load_yaml(text, path, Diagnostics())
            doc = loaded.data if loaded is not None else None
            fields = doc.get("fields") if isinstance(doc, dict) and doc.get("form") == form.name else None
            if isinstance(fields, dict) and old in fields:
                return fields
    return None


def _live_table(conn: Connection, name: str) -> sa.Table | None:
    if not schema_inspector(conn).has_table(name):
        return None
    return sa.Table(name, sa.MetaData(), autoload_with=conn)


def _move(conn: Connection, form: Any, live: sa.Table | None, old: str, new: str, text: str) -> Step:
    """Check that every stored value of `old` converts to field `new`'s type."""
    step = Step("move", form.name, old, text, target=new)
    if live is None:
        return step
    # Once the renamed field is loaded, records written since fill the new column and leave the
    # old one empty: those keep their value, and only a record holding two different values
    # (edited in the new field after the reload) has to be settled by hand.
    both = new != old and new in live.c
    target = live.c[new] if both else sa.null()
    ftype, spec = form.types[new], form.field(new)
    failures: list[str] = []
    rows = conn.execute(sa.select(live.c.id, live.c[old], target).where(live.c[old].is_not(None))
                        .order_by(live.c.id))
    for record_id, value, present in rows:
        try:
            converted = _convert(ftype, spec, value)
        except FieldInvalid as exc:
            failures.append(f"record {record_id}: {value!r}: {exc.text('en')}")
            continue
        if present is None:
            step.converted[record_id] = converted
        elif present != converted:
            failures.append(f"record {record_id}: {old} holds {value!r} and {new} holds {present!r}")
    if failures:
        shown = failures[:SHOWN]
        more = len(failures) - len(shown)
        step.blocked += shown + ([f"... and {more} more"] if more else [])
        step.blocked.append("correct these values (or empty them), then run the migration again")
    else:
        step.text += f" ({len(step.converted)} value(s))"
    return step


def _convert(ftype: Any, spec: Any, value: Any) -> Any:
    """A stored value as the field's type parses it: as it is first, then as text."""
    try:
        return ftype.parse(value, spec)
    except FieldInvalid:
        if isinstance(value, str):
            raise
    text = format(value, "f") if isinstance(value, Decimal) else str(value)
    return ftype.parse(text, spec)


def _apply_move(conn: Connection, table: sa.Table, step: Step) -> str:
    assert step.target is not None
    archived = _archive(conn, table.name, step.column)
    live_columns = {c["name"] for c in schema_inspector(conn).get_columns(table.name)}
    if step.target not in live_columns:
        column = table.c[step.target]
        ops = _operations(conn)
        ops.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
    if step.converted:
        target = sa.table(table.name, sa.column("id"), sa.column(step.target, table.c[step.target].type))
        conn.execute(sa.update(target).where(target.c.id == sa.bindparam("rid"))
                     .values({step.target: sa.bindparam("value")}),
                     [{"rid": rid, "value": value} for rid, value in step.converted.items()])
    return (f"{step.form}: {len(step.converted)} value(s) of {step.column} moved into {step.target}; "
            f"the old column is kept as {archived}")


def _add_unique(conn: Connection, form_name: str, table_name: str, column: str) -> Step:
    step = Step("add_unique", form_name, column, f"enforce unique values of {column}")
    live = _live_table(conn, table_name)
    if live is None or column not in live.c:
        return step
    dupes = conn.execute(sa.select(live.c[column], sa.func.count()).where(live.c[column].is_not(None))
                         .group_by(live.c[column]).having(sa.func.count() > 1)
                         .order_by(sa.func.count().desc()).limit(SHOWN + 1)).all()
    if dupes:
        step.blocked += [f"{value!r} is used by {count} records" for value, count in dupes[:SHOWN]]
        step.blocked.append("make these values unique (or empty them), then run the migration again")
    return step


def _archive(conn: Connection, table_name: str, column: str) -> str:
    """Rename `column` out of the way (its indexes dropped first); the new name."""
    existing = {c["name"] for c in schema_inspector(conn).get_columns(table_name)}
    name, n = f"{ARCHIVE_PREFIX}{column}", 2
    while name in existing:
        name, n = f"{ARCHIVE_PREFIX}{column}_{n}", n + 1
    _drop_indexes(conn, table_name, column)
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(f"ALTER TABLE {quote(table_name)} RENAME COLUMN {quote(column)} TO {quote(name)}")
    return name


def _drop_indexes(conn: Connection, table_name: str, column: str) -> None:
    inspector = schema_inspector(conn)
    quote = conn.dialect.identifier_preparer.quote
    for index in inspector.get_indexes(table_name):
        if index.get("column_names") == [column] and index.get("name"):
            conn.exec_driver_sql(f"DROP INDEX {quote(index['name'])}")
    for constraint in inspector.get_unique_constraints(table_name):
        if constraint.get("column_names") == [column] and constraint.get("name"):
            conn.exec_driver_sql(f"ALTER TABLE {quote(table_name)} DROP CONSTRAINT {quote(constraint['name'])}")


def _operations(conn: Connection) -> Any:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    return Operations(MigrationContext.configure(conn))
