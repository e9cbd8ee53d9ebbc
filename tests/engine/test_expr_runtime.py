"""Evaluation: values, clean failures with positions, verbatim data, determinism (RELIABILITY 7, 9, 10)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.calendar import BusinessCalendar
from engine.errors import ExpressionError
from engine.expr import EvalContext, reference_evaluate
from engine.registry import Kind
from engine.types import Span
from tests.engine.test_expr_support import CTX, NOW, SHANGHAI, UTC, compile_, fresh_functions, run


@pytest.fixture
def functions() -> Kind[Any]:
    return fresh_functions()


# ---------------------------------------------------------------- 7: runtime failures


@pytest.mark.parametrize(("source", "names", "reason"), [
    ("amount / count", {"amount": 10, "count": 0}, "division by zero"),
    ("amount % count", {"amount": Decimal(10), "count": 0}, "division by zero"),
    ("record['missing']", {"record": {}}, "no key 'missing'"),
    ("record.missing", {"record": {"amount": 1}}, "no field 'missing'"),
    ("record.amount", {"record": None}, "cannot read 'amount' of nothing"),
    ("'a' + n", {"n": 1}, "cannot add text and a number"),
    ("str(n)", {"n": 10**5000}, "too many digits"),
    ("'No. ' + str(n)", {"n": 10**4400}, "too many digits"),
    ("amount > 100", {"amount": None}, "cannot compare nothing (an empty value) with a number"),
    ("tags[5]", {"tags": [1]}, "position 5 is outside the list"),
    ("x in n", {"x": 1, "n": 5}, "cannot look inside a number"),
    ("int(s)", {"s": "abc"}, "'abc' is not a whole number"),
    ("date(s)", {"s": "31/01/2026"}, "is not a date"),
    ("now() + 2 workdays", {}, "needs a business calendar"),
    ("s.lower()", {"s": 5}, "'.lower()' works on text, not on a number"),
    ("amount ** count", {"amount": 10.0, "count": 400}, "too large"),
    ("amount ** count", {"amount": 9, "count": 9**9}, "too large"),
])
def test_runtime_failures_become_expression_errors_at_the_expression_span(
        functions: Kind[Any], source: str, names: dict[str, Any], reason: str) -> None:
    span = Span("flows/claim.yaml", 12, 9)
    expr = compile_(source, functions, span=span)
    ctx = EvalContext(now=NOW)
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(names, ctx)
    assert info.value.span == span
    assert reason in info.value.message
    assert f"`{source}`" in info.value.message


def test_without_a_span_the_error_still_has_a_position(functions: Kind[Any]) -> None:
    with pytest.raises(ExpressionError) as info:
        run("1 / 0", functions)
    assert info.value.span == Span("<expr>", 1, 1)


def test_now_without_a_context_is_a_clean_error(functions: Kind[Any]) -> None:
    with pytest.raises(ExpressionError, match="no context"):
        run("now()", functions, ctx=None)


def test_a_failing_plugin_function_becomes_an_expression_error(functions: Kind[Any]) -> None:
    from engine.expr import Function

    def broken(value: Any) -> Any:
        raise RuntimeError("service down")

    functions.add(Function("lookup", broken, 1, 1))
    with pytest.raises(ExpressionError, match="RuntimeError: service down"):
        run("lookup(1)", functions)


def test_absent_top_level_names_are_empty(functions: Kind[Any]) -> None:
    assert run("note == null and is_empty(tags)", functions, {}) is True


# ---------------------------------------------------------------- 9: data stays data


@pytest.mark.parametrize("answer", [
    "{{7*7}}", "${7*7}", "__import__('os').system('id')", "'; DROP TABLE x; --", "{0.__class__}",
])
def test_customer_answers_come_back_verbatim(functions: Kind[Any], answer: str) -> None:
    names = {"answer": answer}
    assert run("answer", functions, names) == answer
    assert run("'Answer: ' + answer", functions, names) == "Answer: " + answer
    assert run("answer.strip()", functions, names) == answer.strip()


# ---------------------------------------------------------------- 10: determinism

_DETERMINISTIC = [
    "now()", "today()", "now() + 24h", "now() + 2 workdays", "created - 1 workdays",
    "days_between(created, now())", "hours_between(created, now())",
    "work_hours_between(created, now())", "workdays_between(created, now())",
    "add_workdays(created, 3)", "add_work_time(created, '4 workhours')",
    "date(created) == today()", "amount * 1.13", "round(amount / 3, 2)",
    "coalesce(note, category, 'none')", "upper(category) + '-' + str(count)",
    "category in ['refund', 'repair'] and amount > 100",
]


def test_same_inputs_and_clock_give_the_same_results(functions: Kind[Any]) -> None:
    names = {"created": datetime(2026, 1, 7, 1, 30, tzinfo=UTC), "amount": Decimal("1234.50"),
             "note": None, "category": "refund", "count": 3}
    first = [run(s, functions, names, CTX) for s in _DETERMINISTIC]
    again = [run(s, fresh_functions(), dict(names), EvalContext(now=NOW, calendar=SHANGHAI))
             for s in _DETERMINISTIC]
    assert first == again


# ---------------------------------------------------------------- numbers


def test_decimal_arithmetic_stays_exact(functions: Kind[Any]) -> None:
    names = {"amount": Decimal("0.10")}
    assert run("amount + 0.2", functions, names) == Decimal("0.30")
    assert run("amount * 3 + 1", functions, names) == Decimal("1.30")
    assert run("amount == 0.1", functions, names) is True
    assert run("round(amount / 3, 2)", functions, names) == Decimal("0.03")
    assert isinstance(run("amount / 4", functions, names), Decimal)


def test_int_and_float_follow_python(functions: Kind[Any]) -> None:
    assert run("7 // 2 + 7 % 2 + 7 / 2", functions) == 3 + 1 + 3.5
    assert run("-7 // 2", functions) == -4


def test_text_and_list_growth_is_bounded(functions: Kind[Any]) -> None:
    assert len(run("'ab' * 50000", functions)) == 100_000
    with pytest.raises(ExpressionError, match="text would be too long"):
        run("'ab' * 50001", functions)
    with pytest.raises(ExpressionError, match="list would be too long"):
        run("[1, 2] * 5001", functions)
    with pytest.raises(ExpressionError, match="text would be too long"):
        run("s + s", functions, {"s": "x" * 60_000})


# ---------------------------------------------------------------- dates and durations


def test_datetime_plus_workdays_uses_the_calendar(functions: Kind[Any]) -> None:
    friday_10 = datetime(2026, 1, 9, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    tuesday_10 = datetime(2026, 1, 13, 2, 0, tzinfo=UTC)
    assert run("created + 2 workdays", functions, {"created": friday_10}) == tuesday_10
    assert run("add_workdays(created, 2)", functions, {"created": friday_10}) == tuesday_10
    assert run("created - 2 workdays", functions, {"created": tuesday_10}) == friday_10


def test_an_always_open_calendar_counts_wall_time(functions: Kind[Any]) -> None:
    ctx = EvalContext(now=NOW, calendar=BusinessCalendar.always_open("Asia/Shanghai"))
    assert run("now() + 2 workdays", functions, {}, ctx) == NOW + timedelta(days=2)


def test_datetime_arithmetic_and_duration_comparisons(functions: Kind[Any]) -> None:
    created = NOW - timedelta(hours=30)
    names = {"created": created}
    assert run("now() - created", functions, names) == timedelta(hours=30)
    assert run("now() - created > 24h", functions, names) is True
    assert run("created + 30m < now()", functions, names) is True
    assert run("hours_between(created, now())", functions, names) == 30.0


def test_working_time_is_capped_so_the_calendar_walk_stays_short(functions: Kind[Any]) -> None:
    with pytest.raises(ExpressionError, match="too much working time"):
        run("now() + 100000 workdays", functions)
    with pytest.raises(ExpressionError, match="at most 3660 days"):
        run("work_hours_between(created, now())", functions,
            {"created": datetime(1900, 1, 1, tzinfo=UTC)})


def test_today_and_date_use_the_calendar_zone(functions: Kind[Any]) -> None:
    late = datetime(2026, 1, 8, 17, 0, tzinfo=UTC)  # already Jan 9 in Shanghai
    assert run("today()", functions) == date(2026, 1, 9)
    assert run("date(created)", functions, {"created": late}) == date(2026, 1, 9)
    assert run("date('2026-01-31')", functions) == date(2026, 1, 31)
    assert run("days_between(date('2026-01-01'), today())", functions) == 8


def test_record_fields_and_date_parts_are_readable(functions: Kind[Any]) -> None:
    names = {"record": {"amount": 5, "owner": {"name": "li"}}, "user": {"username": "wang"},
             "due": date(2026, 3, 1)}
    assert run("record.owner.name + '/' + user.username", functions, names) == "li/wang"
    assert run("record.get('x', 7) + record['amount']", functions, names) == 12
    assert run("due.month", functions, names) == 3


# ---------------------------------------------------------------- reference


_CROSS_CHECK = [
    "1 + 2 * 3", "(1 + 2) * 3", "7 // 2", "-7 % 3", "2 ** 10", "10 / 4", "x * y - 3",
    "x > 3 and y < 10", "x > 3 or y > 100", "not x", "1 < x < 10", "x == y", "x != y",
    "x if y > 2 else y", "x in [1, 2, 3]", "'a' + s", "s * 3", "len(s)", "max(x, y, 7)",
    "abs(-x) + round(2.5)", "[x, y][1]", "{'a': x}['a']", "s.upper()", "s[1:]",
    "true and not false", "null == null", "x / 3.0 >= 1.5", "-x ** 2", "s.startswith('h')",
]


@pytest.mark.parametrize("source", _CROSS_CHECK)
def test_values_agree_with_simpleeval(functions: Kind[Any], source: str) -> None:
    names = {"x": 5, "y": 3, "s": "hey"}
    assert run(source, functions, names) == reference_evaluate(source, names)


def test_time_gives_the_local_time_of_day_of_an_instant_in_the_calendar(functions: Kind[Any]) -> None:
    from datetime import time

    # 2026-01-09 10:00 UTC is 18:00 in Shanghai: after hours there.
    instant = datetime(2026, 1, 9, 10, 0, tzinfo=UTC)
    assert run("time(due)", functions, {"due": instant}) == time(18, 0)
    assert run('time(due) >= time("18:00")', functions, {"due": instant}) is True


def test_time_reads_a_time_of_day_written_with_a_full_width_colon(functions: Kind[Any]) -> None:
    from datetime import time

    assert run("time(note)", functions, {"note": "8：05"}) == time(8, 5)
