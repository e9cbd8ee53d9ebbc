"""SQL building blocks of the report engine: time buckets in the bundle's time zone, durations,
and the expression language translated to SQLAlchemy Core.

Report conditions (`where:`, `rate:` of a measure) are written in Docket's expression language
and checked at load by the same checker as every other expression (engine/expr); the checked
AST is then translated here into SQL, so the database does the filtering and nothing is ever
evaluated row by row in Python. Only the part of the language that has a SQL meaning is
accepted (comparisons, and/or/not, arithmetic, `in`, `x if c else y`, durations as hours);
anything else is a load error naming the construct.
"""

from __future__ import annotations

import ast
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from engine.durations import Duration
from engine.expr.lexer import prescan


class NotTranslatable(ValueError):
    """An expression construct that has no SQL meaning in a report (message for the analyst)."""


# -- time zones ----------------------------------------------------------------------------------
@lru_cache(maxsize=32)
def utc_offsets(zone: str, first_year: int = 2000, last_year: int = 2045) -> tuple[tuple[datetime, int], ...]:
    """(from UTC instant, offset in minutes) pieces of `zone` between the years: one piece for a
    zone without daylight saving (Asia/Shanghai), two per year for one with it."""
    tz = ZoneInfo(zone)
    start = datetime(first_year, 1, 1, tzinfo=timezone.utc)
    end = datetime(last_year, 1, 1, tzinfo=timezone.utc)

    def offset(at: datetime) -> int:
        value = at.astimezone(tz).utcoffset()
        return int(value.total_seconds() // 60) if value is not None else 0

    pieces = [(start, offset(start))]
    at = start
    step = timedelta(days=1)
    while at < end:
        following = at + step
        if offset(following) != pieces[-1][1]:
            low, high = at, following  # find the change to the minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                if offset(middle) == pieces[-1][1]:
                    low = middle
                else:
                    high = middle
            pieces.append((high.replace(second=0, microsecond=0), offset(following)))
        at = following
    return tuple(pieces)


def _sqlite_modifier(minutes: int) -> str:
    return f"{'+' if minutes >= 0 else '-'}{abs(minutes)} minutes"


def _sqlite_stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def _sqlite_local(column: Any, zone: str, fmt: str, *extra: str) -> ColumnElement[Any]:
    """strftime(fmt, column, offset, *extra) with the zone's offset at that instant."""
    pieces = utc_offsets(zone)
    if len(pieces) == 1:
        return sa.func.strftime(fmt, column, _sqlite_modifier(pieces[0][1]), *extra)
    whens = [(column < _sqlite_stamp(pieces[i + 1][0]), sa.func.strftime(fmt, column, _sqlite_modifier(m), *extra))
             for i, (_, m) in enumerate(pieces[:-1])]
    return sa.case(*whens, else_=sa.func.strftime(fmt, column, _sqlite_modifier(pieces[-1][1]), *extra))


def bucket(column: Any, grain: str, zone: str, dialect: str) -> ColumnElement[str]:
    """The text label of the `grain` bucket a UTC timestamp falls in, in the local time of
    `zone`: day 2024-03-05, week 2024-03-04 (its Monday), month 2024-03, quarter 2024-Q1,
    year 2024. The same text on every database, so results compare exactly."""
    if dialect == "postgresql":
        local = sa.func.timezone(zone, column)
        formats = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
        if grain == "week":
            return sa.func.to_char(sa.func.date_trunc("week", local), "YYYY-MM-DD")
        return sa.func.to_char(local, formats[grain])
    if grain == "day":
        return _sqlite_local(column, zone, "%Y-%m-%d")
    if grain == "week":
        return _sqlite_local(column, zone, "%Y-%m-%d", "weekday 0", "-6 days")
    if grain == "month":
        return _sqlite_local(column, zone, "%Y-%m")
    if grain == "year":
        return _sqlite_local(column, zone, "%Y")
    if grain == "quarter":
        year = _sqlite_local(column, zone, "%Y")
        month = sa.cast(_sqlite_local(column, zone, "%m"), sa.Integer)
        return year + "-Q" + sa.cast((month + 2) / 3, sa.String)
    raise ValueError(f"unknown grain {grain!r}")


def local_day_bounds(day_from: Any, day_to: Any, zone: str) -> tuple[datetime | None, datetime | None]:
    """The UTC instants [start of `day_from`, start of the day after `day_to`) in `zone`."""
    tz = ZoneInfo(zone)
    start = end = None
    if day_from is not None:
        start = datetime(day_from.year, day_from.month, day_from.day, tzinfo=tz).astimezone(timezone.utc)
    if day_to is not None:
        after = day_to + timedelta(days=1)
        end = datetime(after.year, after.month, after.day, tzinfo=tz).astimezone(timezone.utc)
    return start, end


def hours_between(start: Any, end: Any, dialect: str) -> ColumnElement[float]:
    """Hours from `start` to `end` (NULL when either is NULL), in wall-clock time."""
    if dialect == "postgresql":
        return sa.func.extract("epoch", end - start) / 3600.0
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 24.0


# -- expressions -----------------------------------------------------------------------------------
_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def parse_condition(source: str) -> tuple[ast.expr, list[Duration]]:
    """The AST of an already checked expression, with its duration literals in source order."""
    scanned = prescan(source)
    tree = ast.parse(scanned.text.strip(), mode="eval").body
    durations = [d for _, d in sorted(scanned.durations.items())]
    return tree, durations


class Translator:
    """Turns a checked expression AST into a SQLAlchemy column expression.

    `resolve(name)` gives the column for a name (it raises NotTranslatable for unknown ones);
    duration literals become hours (`72h` -> 72, `3 days` -> 72).
    """

    def __init__(self, resolve: Callable[[str], ColumnElement[Any]], durations: list[Duration] | None = None):
        self.resolve = resolve
        self.durations = list(durations or [])
        self._placeholders = 0

    def __call__(self, node: ast.expr) -> Any:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise NotTranslatable(f"`{ast.unparse(node)}` cannot be computed by the database in a report")
        return method(node)

    def _Constant(self, node: ast.Constant) -> Any:
        return sa.literal(node.value) if node.value is not None else sa.null()

    def _Name(self, node: ast.Name) -> Any:
        if node.id in ("true", "True"):
            return sa.true()
        if node.id in ("false", "False"):
            return sa.false()
        if node.id in ("null", "None"):
            return sa.null()
        if node.id and set(node.id) == {"_"}:
            if self._placeholders >= len(self.durations):
                raise NotTranslatable("a duration could not be read")
            duration = self.durations[self._placeholders]
            self._placeholders += 1
            if duration.business:
                raise NotTranslatable(f"working-time durations ({duration}) cannot be compared in the database; "
                                      "write calendar hours, e.g. 72h")
            return sa.literal(duration.to_timedelta().total_seconds() / 3600.0)
        return self.resolve(node.id)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        parts = [self(v) for v in node.values]
        return sa.and_(*parts) if isinstance(node.op, ast.And) else sa.or_(*parts)

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self(node.operand)
        if isinstance(node.op, ast.Not):
            return sa.not_(operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise NotTranslatable(f"`{ast.unparse(node)}` cannot be computed by the database in a report")

    def _BinOp(self, node: ast.BinOp) -> Any:
        left, right = self(node.left), self(node.right)
        ops = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
               ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a * 1.0 / sa.func.nullif(b, 0)}
        for op_type, fn in ops.items():
            if isinstance(node.op, op_type):
                return fn(left, right)
        raise NotTranslatable(f"the operator in `{ast.unparse(node)}` is not available in report conditions")

    def _IfExp(self, node: ast.IfExp) -> Any:
        return sa.case((self(node.test), self(node.body)), else_=self(node.orelse))

    def _Compare(self, node: ast.Compare) -> Any:
        parts = []
        left_node = node.left
        for op, right_node in zip(node.ops, node.comparators):
            left = self(left_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right_node, (ast.Tuple, ast.List, ast.Set)):
                    raise NotTranslatable(f"`in` needs a list of values in a report: `{ast.unparse(node)}`")
                values = [self._value(v) for v in right_node.elts]
                cond = left.in_(values)
                parts.append(sa.not_(cond) if isinstance(op, ast.NotIn) else cond)
            else:
                symbol = _COMPARE.get(type(op))
                if symbol is None:
                    raise NotTranslatable(f"`{ast.unparse(node)}` cannot be computed by the database in a report")
                right_is_none = isinstance(right_node, ast.Constant) and right_node.value is None or (
                    isinstance(right_node, ast.Name) and right_node.id in ("None", "null"))
                if right_is_none and symbol in ("==", "!="):
                    parts.append(left.is_(None) if symbol == "==" else left.is_not(None))
                else:
                    right = self(right_node)
                    parts.append({"==": lambda a, b: a == b, "!=": lambda a, b: a != b,
                                  "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                                  ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[symbol](left, right))
            left_node = right_node
        return sa.and_(*parts) if len(parts) > 1 else parts[0]

    def _value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return -node.operand.value
        raise NotTranslatable(f"only plain values may be listed after `in`, not `{ast.unparse(node)}`")


def escape_like(text: str) -> str:
    """`text` with LIKE wildcards escaped (escape character backslash), for `contains` filters."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
