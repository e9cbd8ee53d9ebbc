"""Operators with bounds: what `+`, `*`, `**`, `%`, comparisons and `in` do in an expression.

Python's operators happily build a 300 MB string (`'a' * 10**9`), a million-digit integer
(`9**9**9`) or format text (`'%099999999d' % 1`). Each operator here checks its operand types
and estimates the size of its result BEFORE computing it, and says in plain English what went
wrong (`cannot add text and number`), so evaluation costs microseconds and fails cleanly.

Numbers mix sensibly: int, float and Decimal combine; a float meeting a Decimal is converted
through its shortest text (`0.1` -> `Decimal('0.1')`), and Decimal arithmetic uses one fixed
context so results never depend on a thread's decimal settings. Dates and times follow
`datetime`, and a business duration (`2 workdays`) is placed by the context's calendar.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Callable

from engine.durations import Duration
from engine.expr.context import EvalContext, EvalFailure

__all__ = [
    "MAX_INT_BITS", "MAX_TEXT", "show", "MAX_ITEMS", "MAX_BUSINESS_DAYS", "MAX_CALENDAR_SPAN", "DECIMAL_CONTEXT", "kind",
    "foreign_value",
    "add", "sub", "mul", "truediv", "floordiv", "mod", "power", "neg", "pos",
    "eq", "ne", "lt", "le", "gt", "ge", "contains", "not_contains",
    "get_field", "get_item", "make_slice", "place_business",
]

MAX_INT_BITS = 4096
"""Largest integer result of `*` and `**`, in bits (about 1233 decimal digits)."""
MAX_TEXT = 100_000
"""Longest text `+` or `*` may build, in characters."""
MAX_ITEMS = 10_000
"""Longest list or tuple `+` or `*` may build."""
MAX_BUSINESS_DAYS = 1000
"""Most working time (in working days) placed on a calendar in one step."""
MAX_CALENDAR_SPAN = timedelta(days=3660)
"""Longest interval whose working time is measured (the calendar walks it day by day)."""

DECIMAL_CONTEXT = decimal.Context(
    prec=28, rounding=decimal.ROUND_HALF_EVEN, Emin=-999_999, Emax=999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
"""The one Decimal context of expressions: results never depend on thread-local settings."""

_DATA_ATTRS: dict[type, frozenset[str]] = {
    date: frozenset({"year", "month", "day"}),
    datetime: frozenset({"year", "month", "day", "hour", "minute", "second"}),
    time: frozenset({"hour", "minute", "second"}),
    timedelta: frozenset({"days", "seconds"}),
}


def kind(value: Any) -> str:
    """What a value is, in an analyst's words."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float, Decimal)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "a date and time"
    if isinstance(value, date):
        return "a date"
    if isinstance(value, time):
        return "a time of day"
    if isinstance(value, (timedelta, Duration)):
        return "a duration"
    if isinstance(value, Mapping):
        return "a record"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (set, frozenset)):
        return "a set"
    return f"a value of type {type(value).__name__}"


_PLAIN_SCALARS = (type(None), bool, int, float, Decimal, str, date, time, timedelta, Duration)


def foreign_value(value: Any) -> Any | None:
    """The first part of `value` that is not a plain value an expression can hold (text, a
    number, a date, a time, a duration, true/false, nothing, or a list or record of those),
    or None when all of it is. A plugin function's result is checked with it: an object
    would otherwise be stored as `<object object at 0x...>`."""
    if isinstance(value, _PLAIN_SCALARS):
        return None
    if isinstance(value, (list, tuple, set, frozenset)):
        items: Any = value
    elif isinstance(value, Mapping) and all(isinstance(key, str) for key in value):
        items = value.values()
    else:
        return value
    for item in items:
        found = foreign_value(item)
        if found is not None:
            return found
    return None


def show(value: Any, limit: int = 40) -> str:
    """A short, always-printable rendering of a value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"a {value.bit_length()}-bit number"
    try:
        text = repr(value)
    except Exception:  # a huge number inside a list, a broken __repr__: still say something
        return kind(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal))


def _dec(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(int(value))


def _numeric(a: Any, b: Any, dec_op: Callable[[Decimal, Decimal], Decimal],
             py_op: Callable[[Any, Any], Any]) -> Any:
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return dec_op(_dec(a), _dec(b))
    return py_op(a, b)


def _check_int_bits(bits: float) -> None:
    if bits > MAX_INT_BITS:
        raise EvalFailure(f"the result would be too large a number (more than {MAX_INT_BITS} "
                          "bits, about 1,200 digits)")


def place_business(start: Any, amount: Duration | timedelta, ctx: EvalContext | None) -> datetime:
    """`start` moved by working time through the context's calendar (at most
    `MAX_BUSINESS_DAYS` working days, so the calendar walk stays short)."""
    if not isinstance(start, datetime):
        raise EvalFailure(f"working time ({amount}) can only be added to a date and time, "
                          f"not to {kind(start)}")
    if ctx is None or ctx.calendar is None:
        raise EvalFailure(f"adding {amount} needs a business calendar")
    calendar = ctx.calendar
    if abs(calendar.work_time(amount)) > calendar.workday_length * MAX_BUSINESS_DAYS:
        raise EvalFailure(f"{amount} is too much working time (the limit is "
                          f"{MAX_BUSINESS_DAYS} working days)")
    return calendar.add_work_time(start, amount)


def _negated(d: Duration) -> Duration:
    return Duration(-d.amount, d.unit)


# ------------------------------------------------------------------------------ arithmetic

def add(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a + b`, bounded."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a + b
    if ta is str and tb is str:
        if len(a) + len(b) > MAX_TEXT:
            raise EvalFailure(f"the text would be too long (more than {MAX_TEXT:,} characters)")
        return a + b
    if _is_num(a) and _is_num(b):
        return _numeric(a, b, DECIMAL_CONTEXT.add, lambda x, y: x + y)
    if (ta is list and tb is list) or (ta is tuple and tb is tuple):
        if len(a) + len(b) > MAX_ITEMS:
            raise EvalFailure(f"the list would be too long (more than {MAX_ITEMS:,} items)")
        return a + b
    if isinstance(a, date) and isinstance(b, timedelta):
        return a + b
    if isinstance(a, timedelta) and isinstance(b, (date, timedelta)):
        return b + a if isinstance(b, date) else a + b
    if isinstance(b, Duration):
        return place_business(a, b, ctx) if b.business else add(a, b.to_timedelta(), ctx)
    if isinstance(a, Duration):
        return add(b, a, ctx)
    raise EvalFailure(f"cannot add {kind(a)} and {kind(b)}")


def sub(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a - b`, for numbers, dates, times and durations."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a - b
    if _is_num(a) and _is_num(b):
        return _numeric(a, b, DECIMAL_CONTEXT.subtract, lambda x, y: x - y)
    if isinstance(a, datetime) and isinstance(b, datetime):
        try:
            return a - b
        except TypeError:
            raise EvalFailure("cannot subtract a date and time with a time zone from one "
                              "without") from None
    if isinstance(a, date) and not isinstance(a, datetime) and type(b) is date:
        return a - b
    if isinstance(a, (date, timedelta)) and isinstance(b, timedelta):
        return a - b
    if isinstance(b, Duration):
        return (place_business(a, _negated(b), ctx) if b.business
                else sub(a, b.to_timedelta(), ctx))
    raise EvalFailure(f"cannot subtract {kind(b)} from {kind(a)}")


def mul(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a * b`, with integer size, text length and list length bounded."""
    ta, tb = type(a), type(b)
    if ta is int and tb is int:
        _check_int_bits(a.bit_length() + b.bit_length())
        return a * b
    if ta is float and tb is float:
        return a * b
    if _is_num(a) and _is_num(b):
        if isinstance(a, int) and isinstance(b, int):
            _check_int_bits(a.bit_length() + b.bit_length())
        return _numeric(a, b, DECIMAL_CONTEXT.multiply, lambda x, y: x * y)
    if isinstance(b, (str, list, tuple)) and isinstance(a, int):
        a, b = b, a
    if isinstance(a, (str, list, tuple)) and isinstance(b, int):
        limit, what = (MAX_TEXT, "text") if isinstance(a, str) else (MAX_ITEMS, "list")
        if b > 0 and len(a) * b > limit:
            raise EvalFailure(f"the {what} would be too long (more than {limit:,} "
                              f"{'characters' if what == 'text' else 'items'})")
        return a * b
    if isinstance(b, timedelta) and _is_num(a):
        a, b = b, a
    if isinstance(a, timedelta) and _is_num(b):
        return a * float(b)
    raise EvalFailure(f"cannot multiply {kind(a)} by {kind(b)}")


def _check_divisor(b: Any) -> None:
    if _is_num(b) and b == 0:
        raise EvalFailure("division by zero")


def truediv(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a / b`."""
    if _is_num(a) and _is_num(b):
        _check_divisor(b)
        return _numeric(a, b, DECIMAL_CONTEXT.divide, lambda x, y: x / y)
    if isinstance(a, timedelta) and (_is_num(b) or isinstance(b, timedelta)):
        if isinstance(b, timedelta) and not b:
            raise EvalFailure("division by zero")
        _check_divisor(b)
        return a / (float(b) if isinstance(b, Decimal) else b)
    raise EvalFailure(f"cannot divide {kind(a)} by {kind(b)}")


def floordiv(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a // b`, numbers only."""
    if _is_num(a) and _is_num(b):
        _check_divisor(b)
        return _numeric(a, b, DECIMAL_CONTEXT.divide_int, lambda x, y: x // y)
    raise EvalFailure(f"cannot divide {kind(a)} by {kind(b)}")


def mod(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a % b`, numbers only: `%` never formats text."""
    if isinstance(a, str):
        raise EvalFailure("'%' works on numbers only (formatting text with % is not allowed)")
    if _is_num(a) and _is_num(b):
        _check_divisor(b)
        return _numeric(a, b, DECIMAL_CONTEXT.remainder, lambda x, y: x % y)
    raise EvalFailure(f"cannot take the remainder of {kind(a)} by {kind(b)}")


def power(a: Any, b: Any, ctx: EvalContext | None = None) -> Any:
    """`a ** b`, refused before computing when the result would exceed `MAX_INT_BITS`."""
    if not (_is_num(a) and _is_num(b)):
        raise EvalFailure(f"cannot raise {kind(a)} to the power of {kind(b)}")
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        return DECIMAL_CONTEXT.power(_dec(a), _dec(b))
    if isinstance(a, int) and isinstance(b, int):
        if b < 0:
            if a == 0:
                raise EvalFailure("division by zero (0 raised to a negative power)")
            return float(a) ** b
        if a in (0, 1, -1):
            return a ** b
        _check_int_bits(math.log2(abs(a)) * b)
        return a ** b
    if a == 0 and b < 0:
        raise EvalFailure("division by zero (0 raised to a negative power)")
    result = a ** b
    if isinstance(result, complex):
        raise EvalFailure("the result is not a real number (a negative number to a fractional power)")
    return result


def neg(a: Any, ctx: EvalContext | None = None) -> Any:
    """`-a`."""
    if type(a) is int or type(a) is float:
        return -a
    if isinstance(a, Decimal):
        return DECIMAL_CONTEXT.minus(a)
    if isinstance(a, (int, timedelta)):
        return -a
    if isinstance(a, Duration):
        return _negated(a)
    raise EvalFailure(f"cannot negate {kind(a)}")


def pos(a: Any, ctx: EvalContext | None = None) -> Any:
    """`+a`."""
    if isinstance(a, Decimal):
        return DECIMAL_CONTEXT.plus(a)
    if isinstance(a, (int, float, timedelta)):
        return +a
    if isinstance(a, Duration):
        return a
    raise EvalFailure(f"cannot apply '+' to {kind(a)}")


# ------------------------------------------------------------------------------ comparisons

def _mixed(a: Any, b: Any) -> tuple[Any, Any]:
    """Decimal meeting float: compare both as Decimals (0.1 == Decimal('0.1'))."""
    if isinstance(a, Decimal) and isinstance(b, float):
        return a, _dec(b)
    if isinstance(b, Decimal) and isinstance(a, float):
        return _dec(a), b
    return a, b


def eq(a: Any, b: Any) -> bool:
    """`a == b`."""
    if type(a) is type(b):
        return bool(a == b)
    a, b = _mixed(a, b)
    return bool(a == b)


def ne(a: Any, b: Any) -> bool:
    """`a != b`."""
    if type(a) is type(b):
        return bool(a != b)
    a, b = _mixed(a, b)
    return bool(a != b)


def _ordered(symbol: str, test: Callable[[Any, Any], Any]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        ta, tb = type(a), type(b)
        if (ta is int or ta is float) and (tb is int or tb is float):
            return bool(test(a, b))
        a, b = _mixed(a, b)
        try:
            return bool(test(a, b))
        except TypeError:
            raise EvalFailure(f"cannot compare {kind(a)} with {kind(b)} using '{symbol}'") from None

    compare.__name__ = f"compare {symbol}"
    return compare


lt = _ordered("<", lambda a, b: a < b)
le = _ordered("<=", lambda a, b: a <= b)
gt = _ordered(">", lambda a, b: a > b)
ge = _ordered(">=", lambda a, b: a >= b)


def contains(item: Any, container: Any) -> bool:
    """`item in container`."""
    if isinstance(container, str):
        if not isinstance(item, str):
            raise EvalFailure(f"cannot look for {kind(item)} inside text")
        return item in container
    if isinstance(container, (list, tuple, set, frozenset, Mapping)):
        try:
            return item in container
        except TypeError:
            raise EvalFailure(f"{kind(item)} cannot be looked up in {kind(container)}") from None
    raise EvalFailure(f"cannot look inside {kind(container)} with 'in'")


def not_contains(item: Any, container: Any) -> bool:
    """`item not in container`."""
    return not contains(item, container)


# ------------------------------------------------------------------------------ access

def get_field(value: Any, name: str) -> Any:
    """`value.name`: a key of a record, or a date/time part (`created.year`)."""
    if isinstance(value, Mapping):
        try:
            return value[name]
        except KeyError:
            raise EvalFailure(f"no field '{name}'") from None
    if value is None:
        raise EvalFailure(f"cannot read '{name}' of nothing (the value is empty)")
    allowed = _DATA_ATTRS.get(type(value))
    if allowed is not None and name in allowed:
        return getattr(value, name)
    raise EvalFailure(f"{kind(value)} has no field '{name}'")


def get_item(value: Any, key: Any) -> Any:
    """`value[key]`: a key of a record or an item or slice of a list or text."""
    if isinstance(value, Mapping):
        try:
            return value[key]
        except KeyError:
            raise EvalFailure(f"no key {show(key)}") from None
        except TypeError:
            raise EvalFailure(f"{kind(key)} cannot be used as a key") from None
    if isinstance(value, (list, tuple, str)):
        if isinstance(key, slice):
            return value[key]
        if isinstance(key, bool) or not isinstance(key, int):
            raise EvalFailure(f"a position in a list must be a whole number, not {kind(key)}")
        try:
            return value[key]
        except IndexError:
            raise EvalFailure(f"position {show(key)} is outside the list (it has {len(value)} "
                              "items)") from None
    if value is None:
        raise EvalFailure(f"cannot read [{show(key)}] of nothing (the value is empty)")
    raise EvalFailure(f"cannot read [{show(key)}] of {kind(value)}")


def make_slice(lower: Any, upper: Any, step: Any) -> slice:
    """A slice whose bounds are whole numbers (or omitted)."""
    for part in (lower, upper, step):
        if part is not None and (isinstance(part, bool) or not isinstance(part, int)):
            raise EvalFailure(f"slice bounds must be whole numbers, not {kind(part)}")
    if step == 0:
        raise EvalFailure("a slice step cannot be zero")
    return slice(lower, upper, step)
