"""Built-in expression functions, registered through the same `Kind` a plugin uses.

Each function is pure: it takes and returns plain values (text, numbers, dates, durations,
lists, mappings), never objects with methods, and reads time only from the `EvalContext`, so the
same inputs and the same `ctx.now` always give the same result (simulation and replay).
Sizes are bounded like the operators': `str` refuses numbers over CPython's digit cap, `round`
refuses absurd precisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from engine.durations import Duration, as_value, parse_duration
from engine.expr.context import EvalContext, EvalFailure, Function
from engine.expr.safe_ops import (DECIMAL_CONTEXT, contains, MAX_BUSINESS_DAYS, MAX_CALENDAR_SPAN, kind,
                                   place_business)
from engine.registry import Registry
from engine.time_of_day import parse_time_of_day

__all__ = ["BUILTINS", "TEXT_READERS", "register"]

_MAX_STR_INT_BITS = 14_000  # ~4,200 digits: below CPython's int->str cap of 4,300
_MAX_ROUND_DIGITS = 100


def _need_ctx(ctx: EvalContext | None, what: str) -> EvalContext:
    if ctx is None:
        raise EvalFailure(f"{what} needs the current time and calendar (no context was given)")
    return ctx


def _calendar(ctx: EvalContext | None, what: str) -> Any:
    ctx = _need_ctx(ctx, what)
    if ctx.calendar is None:
        raise EvalFailure(f"{what} needs a business calendar")
    return ctx.calendar


def _local_instant(value: datetime, ctx: EvalContext | None) -> datetime:
    """A date and time as the calendar's zone reads it (UTC without a calendar; a naive one as is)."""
    if value.tzinfo is None:
        return value
    if ctx is not None and ctx.calendar is not None:
        return ctx.calendar.local(value)
    return value.astimezone(timezone.utc)


def _local_date(value: Any, ctx: EvalContext | None) -> date:
    if isinstance(value, datetime):
        return _local_instant(value, ctx).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return _parse_date(value, ctx)
    raise EvalFailure(f"expected a date, got {kind(value)}")


def _instant(value: Any, what: str) -> datetime:
    if isinstance(value, datetime):
        return value
    raise EvalFailure(f"{what} needs a date and time, got {kind(value)}")


# ------------------------------------------------------------------------------ time

def _now(ctx: EvalContext | None) -> datetime:
    return _need_ctx(ctx, "now()").now


def _today(ctx: EvalContext | None) -> date:
    return _local_date(_need_ctx(ctx, "today()").now, ctx)


def _parse_date(value: Any, ctx: EvalContext | None) -> date:
    if isinstance(value, (date, datetime)):
        return _local_date(value, ctx)
    if not isinstance(value, str):
        raise EvalFailure(f"date() needs text like 2026-01-31, got {kind(value)}")
    text = value.strip()
    try:
        if len(text) <= 10:
            return date.fromisoformat(text)
        return _local_date(datetime.fromisoformat(text), ctx)
    except ValueError:
        raise EvalFailure(f"'{value[:40]}' is not a date (write it like 2026-01-31)") from None


def _date(ctx: EvalContext | None, value: Any) -> date:
    return _parse_date(value, ctx)


def _time(ctx: EvalContext | None, value: Any) -> time:
    if isinstance(value, datetime):
        return _local_instant(value, ctx).time()
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        parsed = parse_time_of_day(value)
        if parsed is None:
            raise EvalFailure(f"'{value[:40]}' is not a time of day (write it like \"08:30\")")
        return parsed
    raise EvalFailure(f"time() needs text like \"08:30\" or a date and time, got {kind(value)}")


def _duration(value: Any) -> Any:
    if isinstance(value, (timedelta, Duration)):
        return value
    if not isinstance(value, str):
        raise EvalFailure(f"duration() needs text like '24h' or '2 workdays', got {kind(value)}")
    try:
        return as_value(parse_duration(value))
    except ValueError as exc:
        raise EvalFailure(str(exc)) from None


def _days_between(ctx: EvalContext | None, a: Any, b: Any) -> int:
    return (_local_date(b, ctx) - _local_date(a, ctx)).days


def _hours_between(a: Any, b: Any) -> float:
    a, b = _instant(a, "hours_between()"), _instant(b, "hours_between()")
    try:
        return (b - a).total_seconds() / 3600
    except TypeError:
        raise EvalFailure("hours_between() cannot mix times with and without a time zone") from None


def _work_time_between(ctx: EvalContext | None, a: Any, b: Any, what: str) -> tuple[Any, timedelta]:
    calendar = _calendar(ctx, what)
    a, b = _instant(a, what), _instant(b, what)
    try:
        span = abs(b - a)
    except TypeError:
        raise EvalFailure(f"{what} cannot mix times with and without a time zone") from None
    if span > MAX_CALENDAR_SPAN:
        raise EvalFailure(f"{what} measures at most {MAX_CALENDAR_SPAN.days} days")
    return calendar, calendar.work_time_between(a, b)


def _work_hours_between(ctx: EvalContext | None, a: Any, b: Any) -> float:
    _, worked = _work_time_between(ctx, a, b, "work_hours_between()")
    return worked.total_seconds() / 3600


def _workdays_between(ctx: EvalContext | None, a: Any, b: Any) -> float:
    calendar, worked = _work_time_between(ctx, a, b, "workdays_between()")
    return float(worked / calendar.workday_length)


def _add_workdays(ctx: EvalContext | None, start: Any, amount: Any) -> datetime:
    if isinstance(amount, bool) or not isinstance(amount, (int, float, Decimal)):
        raise EvalFailure(f"add_workdays() needs a number of days, got {kind(amount)}")
    if abs(amount) > MAX_BUSINESS_DAYS:
        raise EvalFailure(f"add_workdays() accepts at most {MAX_BUSINESS_DAYS} working days")
    _calendar(ctx, "add_workdays()")
    return place_business(_instant(start, "add_workdays()"), Duration(float(amount), "workdays"), ctx)


def _add_work_time(ctx: EvalContext | None, start: Any, amount: Any) -> datetime:
    _calendar(ctx, "add_work_time()")
    return place_business(_instant(start, "add_work_time()"), _duration(amount), ctx)


# ------------------------------------------------------------------------------ values

def _len(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (str, list, tuple, set, frozenset, Mapping)):
        return len(value)
    raise EvalFailure(f"len() needs text or a list, got {kind(value)}")


def _items(args: tuple[Any, ...], what: str) -> list[Any]:
    if len(args) == 1 and isinstance(args[0], (list, tuple, set, frozenset)):
        items = list(args[0])
    else:
        items = list(args)
    items = [x for x in items if x is not None]
    if not items:
        raise EvalFailure(f"{what}() of nothing (all values are empty)")
    return items


def _min(*args: Any) -> Any:
    try:
        return min(_items(args, "min"))
    except TypeError:
        raise EvalFailure("min() cannot compare these values") from None


def _max(*args: Any) -> Any:
    try:
        return max(_items(args, "max"))
    except TypeError:
        raise EvalFailure("max() cannot compare these values") from None


def _abs(value: Any) -> Any:
    if isinstance(value, (int, float, Decimal, timedelta)):
        return abs(value)
    raise EvalFailure(f"abs() needs a number, got {kind(value)}")


def _round(value: Any, digits: Any = None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise EvalFailure(f"round() needs a number, got {kind(value)}")
    if digits is None:
        return round(value)
    if isinstance(digits, bool) or not isinstance(digits, int) or abs(digits) > _MAX_ROUND_DIGITS:
        raise EvalFailure(f"round() needs a whole number of digits between -{_MAX_ROUND_DIGITS} "
                          f"and {_MAX_ROUND_DIGITS}")
    if isinstance(value, Decimal):  # the fixed context, not the thread's
        return value.quantize(Decimal(1).scaleb(-digits, DECIMAL_CONTEXT), context=DECIMAL_CONTEXT)
    return round(value, digits)


def _int(value: Any) -> int:
    if isinstance(value, str):
        text = value.strip()
        if len(text) > 100:
            raise EvalFailure("int() accepts at most 100 characters of text")
        try:
            return int(text)
        except ValueError:
            try:
                return int(Decimal(text))
            except ArithmeticError:
                raise EvalFailure(f"'{text[:40]}' is not a whole number") from None
    if isinstance(value, (int, float, Decimal)):
        return int(value)
    raise EvalFailure(f"int() needs a number or text, got {kind(value)}")


def _float(value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise EvalFailure(f"'{value[:40]}' is not a number") from None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    raise EvalFailure(f"float() needs a number or text, got {kind(value)}")


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_STR_INT_BITS:
        raise EvalFailure("the number has too many digits to turn into text (more than about 4,200)")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return str(value)


def _lower(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EvalFailure(f"lower() needs text, got {kind(value)}")
    return value.lower()


def _upper(value: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, str):
        raise EvalFailure(f"upper() needs text, got {kind(value)}")
    return value.upper()


def _contains(haystack: Any, needle: Any) -> bool:
    """contains(a, b) is `b in a`, and False for an empty field."""
    return False if haystack is None else contains(needle, haystack)


def _text_test(name: str) -> Any:
    def test(text: Any, part: Any) -> bool:
        if text is None:
            return False
        if not isinstance(text, str) or not isinstance(part, str):
            raise EvalFailure(f"{name}() needs text, got {kind(text)} and {kind(part)}")
        return bool(getattr(str, name)(text, part))
    return test


def _coalesce(*args: Any) -> Any:
    for value in args:
        if value is not None:
            return value
    return None


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, set, frozenset, Mapping)):
        return len(value) == 0
    return False


TEXT_READERS: dict[str, Any] = {
    "date": lambda text: _parse_date(text, None),
    "time": lambda text: _time(None, text),
    "duration": _duration,
}
"""Built-ins whose one text argument the load check reads when it is written as a literal
(`time("25:00")`): each raises EvalFailure, with what to write, where the call would."""


BUILTINS: tuple[Function, ...] = (
    Function("now", _now, 0, 0, "The current instant (UTC) of the evaluation.",
             needs_context=True, examples=("now() - created_at > 24h",)),
    Function("today", _today, 0, 0, "Today's date in the business calendar's time zone.",
             needs_context=True, examples=("due_date < today()",)),
    Function("len", _len, 1, 1, "Length of text or a list; 0 for an empty value.",
             examples=("len(description) > 20",)),
    Function("min", _min, 1, None, "Smallest of the values (or of one list), ignoring empty ones.",
             examples=("min(amount, 5000)",)),
    Function("max", _max, 1, None, "Largest of the values (or of one list), ignoring empty ones.",
             examples=("max(amount, 0)",)),
    Function("abs", _abs, 1, 1, "Absolute value.", examples=("abs(balance) < 0.01",)),
    Function("round", _round, 1, 2, "Round to a whole number, or to a number of decimal places.",
             examples=("round(amount * 0.13, 2)",)),
    Function("int", _int, 1, 1, "A whole number from a number or text.",
             examples=("int(quantity) >= 1",)),
    Function("float", _float, 1, 1, "A decimal fraction from a number or text.",
             examples=("float(rate) * 100",)),
    Function("str", _str, 1, 1, "The value as text (empty text for an empty value).",
             examples=("'No. ' + str(number)",)),
    Function("lower", _lower, 1, 1, "Text in lower case.", examples=("lower(email)",)),
    Function("upper", _upper, 1, 1, "Text in upper case.", examples=("upper(code) == 'VIP'",)),
    Function("contains", _contains, 2, 2, "Whether text contains text, or a list contains a value.",
             examples=("contains(tags, 'urgent')",)),
    Function("startswith", _text_test("startswith"), 2, 2, "Whether text starts with a prefix.",
             examples=("startswith(phone, '+86')",)),
    Function("endswith", _text_test("endswith"), 2, 2, "Whether text ends with a suffix.",
             examples=("endswith(email, '@example.com')",)),
    Function("coalesce", _coalesce, 1, None, "The first value that is not empty (None).",
             examples=("coalesce(nickname, name)",)),
    Function("is_empty", _is_empty, 1, 1, "Whether a value is empty: None, blank text, empty list.",
             examples=("is_empty(attachments)",)),
    Function("days_between", _days_between, 2, 2,
             "Calendar days from the first date to the second (local dates of the calendar).",
             needs_context=True, examples=("days_between(created_at, now()) > 30",)),
    Function("hours_between", _hours_between, 2, 2, "Hours from the first instant to the second.",
             examples=("hours_between(created_at, now()) >= 48",)),
    Function("work_hours_between", _work_hours_between, 2, 2,
             "Working hours between two instants in the business calendar.",
             needs_context=True, examples=("work_hours_between(created_at, now()) > 16",)),
    Function("workdays_between", _workdays_between, 2, 2,
             "Working days (fractional) between two instants in the business calendar.",
             needs_context=True, examples=("workdays_between(created_at, now()) > 2",)),
    Function("add_workdays", _add_workdays, 2, 2,
             "The instant a number of working days after a date and time.",
             needs_context=True, examples=("add_workdays(created_at, 3)",)),
    Function("add_work_time", _add_work_time, 2, 2,
             "The instant an amount of working time (a duration) after a date and time.",
             needs_context=True, examples=("add_work_time(created_at, 4h)",)),
    Function("date", _date, 1, 1,
             "A date from ISO text (2026-01-31), or the local date of a date and time.",
             needs_context=True, examples=("date(created_at) == today()",)),
    Function("time", _time, 1, 1,
             "A time of day from text (\"08:30\"), or the local time of day of a date and time.",
             needs_context=True, examples=('pickup_time >= time("08:30")', 'time(created_at) >= time("18:00")')),
    Function("duration", _duration, 1, 1, "A duration from text such as '24h' or '2 workdays'.",
             examples=("duration(sla) > 24h",)),
)
"""Every built-in function, in registration order."""


def register(registry: Registry) -> None:
    """Add the built-in expression functions to `registry.functions`."""
    for function in BUILTINS:
        registry.functions.add(function, source="built-in")
