"""Expression functions of the rule engine: aggregates over other records, decision tables.

`count_records("complaint", 30d, "customer_name", customer_name)` counts the complaints created
in the last 30 days with the same customer name: one indexed `SELECT count(*)`, never a load of
records. The rule service creates an index on (field..., created_at) for every such call written
in the bundle's rules (`ensure_indexes`).
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from sqlalchemy.engine import Connection

from sqlalchemy import bindparam, func, select

from engine.durations import Duration
from engine.expr.context import EvalContext, EvalFailure, Function
from engine.registry import Registry
from engine.storage.prepared import PreparedQuery

MAX_WINDOW = timedelta(days=3660)
CURRENT_CONNECTION: ContextVar[Connection | None] = ContextVar("docket_rules_connection", default=None)
"""The connection of the command whose rules are being evaluated (set by the rule service), so
aggregates count what this transaction wrote; elsewhere they read committed data."""


def _count_records(ctx: EvalContext | None, form: Any, within: Any, *pairs: Any) -> int:
    if ctx is None or not ctx.services or "forms" not in ctx.services:
        raise EvalFailure("count_records() needs the running system (no database here)")
    if len(pairs) % 2:
        raise EvalFailure("count_records() takes a form, a period, then pairs of field name and value")
    forms = ctx.services["forms"]
    table = forms.tables.get(form) if isinstance(form, str) else None
    if table is None:
        raise EvalFailure(f"count_records(): no form '{form}'")
    if isinstance(within, Duration):
        if ctx.calendar is None:
            raise EvalFailure("count_records() with working time needs a business calendar")
        since = ctx.calendar.add_work_time(ctx.now, Duration(-within.amount, within.unit))
    elif isinstance(within, timedelta):
        if within > MAX_WINDOW or within < timedelta(0):
            raise EvalFailure("count_records() looks back between 0 and 10 years")
        since = ctx.now - within
    elif within is None:
        since = None
    else:
        raise EvalFailure("count_records(): the period is a duration like 30d or 2h")
    names, values = pairs[::2], pairs[1::2]
    for name in names:
        if not isinstance(name, str) or name not in table.c:
            raise EvalFailure(f"count_records(): form '{form}' has no field '{name}'")
    query = _count_query(table, since is not None, tuple((n, v is None) for n, v in zip(names, values)))
    params: dict[str, Any] = {f"v{i}": v for i, v in enumerate(values) if v is not None}
    if since is not None:
        params |= {"since": since, "until": ctx.now}
    conn = CURRENT_CONNECTION.get()
    if conn is not None:  # inside a rule's transaction: see what this command wrote too
        return int(query.scalar(conn, params) or 0)
    from engine.storage.db import read_transaction

    with read_transaction(forms.rt.db) as fresh:
        return int(query.scalar(fresh, params) or 0)


def _count_query(table: Any, windowed: bool, fields: tuple[tuple[str, bool], ...]) -> PreparedQuery:
    """The count for one shape of call (window or not; each field compared to a value or to
    NULL), built once per table: building the select per call cost more than running it."""
    known: dict[Any, PreparedQuery] = table.info.setdefault("docket_count_records", {})
    query = known.get((windowed, fields))
    if query is None:
        stmt = select(func.count()).select_from(table)
        if windowed:
            stmt = stmt.where(table.c.created_at >= bindparam("since", type_=table.c.created_at.type),
                              table.c.created_at <= bindparam("until", type_=table.c.created_at.type))
        for i, (name, null) in enumerate(fields):
            column = table.c[name]
            stmt = stmt.where(column.is_(None) if null else column == bindparam(f"v{i}", type_=column.type))
        query = known[(windowed, fields)] = PreparedQuery(stmt)
    return query


def _decide(ctx: EvalContext | None, table: Any, names: Any) -> Any:
    if ctx is None or not ctx.services or "decisions" not in ctx.services:
        raise EvalFailure("decide() needs the running system's decision tables")
    tables = ctx.services["decisions"]
    spec = tables.get(table) if isinstance(table, str) else None
    if spec is None:
        raise EvalFailure(f"decide(): no decision table '{table}'")
    if not hasattr(names, "get"):
        raise EvalFailure("decide() takes the table's name and `record`, e.g. decide(\"level\", record)")
    return spec.decide(names, ctx)


FUNCTIONS = (
    Function("count_records", _count_records, 2, None,
             "How many records of a form were created within a period before now, optionally "
             "with fields equal to values: count_records(form, period, field, value, ...).",
             needs_context=True,
             examples=('count_records("complaint", 30d, "customer_name", customer_name) >= 3',
                       'count_records("complaint", 2h, "category", category) >= 5')),
    Function("decide", _decide, 2, 2,
             "The answer of a decision table for a record: decide(table, record).",
             needs_context=True, examples=('decide("complaint_level", record) >= 2',)),
)


def register(registry: Registry) -> None:
    for function in FUNCTIONS:
        registry.functions.add(function, source="built-in")
