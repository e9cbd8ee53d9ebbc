"""Hostile expressions are refused at load or fail cleanly (RELIABILITY tests 1-6).

Timings of the refusals are measured in bench/bench_expressions.py, not asserted here.
"""

from __future__ import annotations

import copy
import time
import tracemalloc
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.expr import Function
from engine.registry import Kind
from tests.engine.test_expr_support import compile_, diagnose, fresh_functions, run, where


@pytest.fixture
def functions() -> Kind[Any]:
    return fresh_functions()


# ---------------------------------------------------------------- 1: sandbox escapes


@pytest.mark.parametrize(("source", "expected"), [
    ("().__class__.__bases__[0].__subclasses__()",
     [(1, 4, "expr-forbidden"), (1, 14, "expr-forbidden"), (1, 27, "expr-forbidden")]),
    ("x.__globals__", [(1, 3, "expr-forbidden")]),
    ("'{0.__class__}'.format(1)", [(1, 17, "expr-forbidden")]),
    ("f'{x.__class__}'", [(1, 1, "expr-forbidden")]),
    ("g.gi_frame.f_back", [(1, 3, "expr-forbidden"), (1, 12, "expr-forbidden")]),
    ("operator.attrgetter('__class__')", [(1, 1, "expr-unknown-name"), (1, 10, "expr-forbidden")]),
])
def test_sandbox_escapes_are_rejected_at_load_with_positions(
        functions: Kind[Any], source: str, expected: list[tuple[int, int, str]]) -> None:
    assert where(diagnose(source, functions)) == expected
    with pytest.raises(ExpressionError) as info:
        compile_(source, functions)
    assert (info.value.span.line, info.value.span.col) == expected[0][:2]


def test_a_rejected_expression_evaluates_nothing(functions: Kind[Any]) -> None:
    calls: list[str] = []
    functions.add(Function("spy", lambda: calls.append("called"), 0, 0))
    with pytest.raises(ExpressionError, match="__globals__"):
        compile_("spy() or x.__globals__", functions)
    assert calls == []


def test_dunder_subscript_keys_are_rejected_at_load(functions: Kind[Any]) -> None:
    assert where(diagnose("d['__class__']", functions)) == [(1, 3, "expr-forbidden")]


def test_interpreter_internal_attribute_suggests_subscript_for_real_fields(
        functions: Kind[Any]) -> None:
    (diag,) = diagnose("record.f_total", functions)
    assert diag.hint == "write x['f_total'] to read a field with this name"


# ---------------------------------------------------------------- 2: unbounded methods


@pytest.mark.parametrize(("source", "col"), [
    ("'a'.ljust(10**9)", 5),
    ("'-'.join(x)", 5),
    ("s.center(5)", 3),
    ("'%099999999d' % 1", 15),
    ("'%*d' % (300000000, 1)", 7),
    ("'\\t'.expandtabs(10**9)", 6),
    ("s.zfill(10**9)", 3),
])
def test_unbounded_methods_and_text_formatting_are_load_errors(
        functions: Kind[Any], source: str, col: int) -> None:
    diags = diagnose(source, functions)
    assert [(d.span.line, d.span.col) for d in diags] == [(1, col)]
    assert diags[0].code == "expr-forbidden"


def test_refusing_unbounded_methods_keeps_memory_small(functions: Kind[Any]) -> None:
    tracemalloc.start()
    try:
        for source in ("'a'.ljust(10**9)", "'-'.join(['a'*50000]*50000)", "s.center(10**9)",
                       "'%099999999d' % 1"):
            with pytest.raises(ExpressionError):
                run(source, functions, {"s": "x"})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50 * 1024 * 1024


def test_text_modulo_from_a_field_fails_at_run_time(functions: Kind[Any]) -> None:
    with pytest.raises(ExpressionError, match="numbers only"):
        run("s % 1", functions, {"s": "%099999999d"})


# ---------------------------------------------------------------- 3: huge numbers


@pytest.mark.timeout(10)
@pytest.mark.parametrize("source", ["9**9**9", "10**10**10", "2**4000 * 2**4000", "n ** n",
                                    "2**4090 * n"])
def test_huge_powers_and_products_raise_expression_error(functions: Kind[Any], source: str) -> None:
    with pytest.raises(ExpressionError, match="too large"):
        run(source, functions, {"n": 10**6})


@pytest.mark.parametrize("source", ["9**9**9", "10**10**10", "1<<10**7", "2**4000 * 2**4000",
                                    "n ** n", "2**4090 * n", "n * n * n * n * n * n"])
def test_huge_numbers_are_refused_within_50_ms(functions: Kind[Any], source: str) -> None:
    """RELIABILITY 3: the bound is checked before the number is built, so a refusal is cheap.
    CPU time of this thread, so other work on the machine does not count against it."""
    started = time.thread_time()
    with pytest.raises(ExpressionError):
        run(source, functions, {"n": 10**1000})
    assert time.thread_time() - started < 0.05


@pytest.mark.parametrize(("source", "col"), [
    ("9**9**9", 2), ("10**10**10", 3), ("2**4000 * 2**4000", 9), ("x + 10.0 ** 400", 10),
])
def test_huge_constant_arithmetic_is_refused_at_load(functions: Kind[Any], source: str, col: int) -> None:
    (diag,) = diagnose(source, functions)
    assert (diag.span.col, diag.code) == (col, "expr-forbidden")
    assert "too large" in diag.message


def test_constant_arithmetic_that_fits_is_left_to_evaluation(functions: Kind[Any]) -> None:
    assert diagnose("2 ** 4096 + 1", functions) == []
    assert diagnose("1 / 0", functions) == []


def test_shifts_and_bit_operators_are_refused_at_load(functions: Kind[Any]) -> None:
    assert where(diagnose("1<<10**7", functions)) == [(1, 2, "expr-forbidden")]
    assert [d.message for d in diagnose("x | y", functions)] == ["the operator '|' is not allowed"]
    assert [d.message for d in diagnose("~x", functions)] == ["the operator '~' is not allowed"]


def test_powers_within_the_bound_are_exact(functions: Kind[Any]) -> None:
    assert run("2 ** 4096", functions) == 2**4096
    assert run("2 ** -2", functions) == 0.25
    assert run("amount ** 2", functions, {"amount": Decimal("1.5")}) == Decimal("2.25")


# ---------------------------------------------------------------- 4: size and depth caps


@pytest.mark.parametrize("source", [
    "(" * 5000 + "1" + ")" * 5000,
    "not " * 10000 + "1",
    "+".join(["1"] * 50000),
    "x" * 100_000,
])
def test_huge_sources_get_a_clean_too_large_diagnostic(functions: Kind[Any], source: str) -> None:
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-too-large"
    assert diag.message.startswith(f"expression is too long ({len(source)} characters")
    with pytest.raises(ExpressionError, match="too long"):
        compile_(source, functions)


@pytest.mark.parametrize(("source", "message"), [
    ("(" * 40 + "1" + ")" * 40, "nested too deeply"),
    ("not " * 20 + "flag", "too many operators in a row"),
    ("-" * 30 + "1", "too many operators in a row"),
    ("+".join(["1"] * 300), "too many operators"),
    ("+".join(["x"] * 100), "nested too deeply"),
    ("[" + ",".join(["1"] * 999) + "]", "too many parts"),
])
def test_short_but_deep_or_wide_sources_hit_a_cap(
        functions: Kind[Any], source: str, message: str) -> None:
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-too-large"
    assert message in diag.message


def test_the_bracket_cap_points_at_the_first_bracket_too_deep(functions: Kind[Any]) -> None:
    (diag,) = diagnose("x + " + "(" * 40 + "1" + ")" * 40, functions)
    assert (diag.span.line, diag.span.col) == (1, 5 + 32)


def test_brackets_inside_strings_do_not_count(functions: Kind[Any]) -> None:
    assert run("'" + "(" * 100 + "' + 'x'", functions) == "(" * 100 + "x"


# ---------------------------------------------------------------- 5: comprehensions


@pytest.mark.parametrize(("source", "col"), [
    ("[i for i in range(10**7)]", 1),
    ("[[j for j in x] for i in x]", 1),
    ("{i: i for i in x}", 1),
    ("{i for i in x}", 1),
    ("len(i for i in x)", 4),
])
def test_comprehensions_are_refused_at_load(functions: Kind[Any], source: str, col: int) -> None:
    (diag,) = diagnose(source, functions)
    assert diag.code == "expr-forbidden"
    assert "comprehensions" in diag.message
    assert (diag.span.line, diag.span.col) == (1, col)


@pytest.mark.parametrize(("source", "message"), [
    ("lambda: 1", "lambda"),
    ("(y := 1)", "assignment"),
    ("len(*x)", "unpacking"),
    ("{**d}", "unpacking"),
    ("round(x, ndigits=2)", "keyword arguments"),
    ("b'abc'", "bytes"),
    ("1j", "complex"),
    ("x[0]()", "only registered functions"),
    ("__import__('os')", "private"),
    ("x.mro()", "interpreter internals"),
])
def test_other_python_features_are_refused_at_load(
        functions: Kind[Any], source: str, message: str) -> None:
    diags = diagnose(source, functions)
    assert diags and diags[0].code == "expr-forbidden"
    assert message in diags[0].message


# ---------------------------------------------------------------- 6: mutation


@pytest.mark.parametrize(("source", "col"), [
    ("form.tags.append('x')", 11),
    ("record.clear()", 8),
    ("d.pop('a')", 3),
    ("d.update(x)", 3),
    ("tags.sort()", 6),
])
def test_mutating_methods_are_refused_at_load(functions: Kind[Any], source: str, col: int) -> None:
    assert where(diagnose(source, functions)) == [(1, col, "expr-forbidden")]


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=8)
    | st.decimals(allow_nan=False, allow_infinity=False, places=2) | st.dates(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from("abc"), inner, max_size=3),
    max_leaves=12,
)
_READERS = [
    "d.get('a')", "d.get('b', 1)", "record['a']", "record.a", "tags + tags", "tags * 2",
    "len(tags)", "s.lower().strip()", "s.upper()", "x == y", "x in tags", "contains(tags, x)",
    "coalesce(x, y)", "is_empty(d)", "[x, y, tags]", "{'k': d}", "min(tags)", "str(d)",
    "tags[0]", "tags[1:]", "d if x else record",
]


@settings(max_examples=150, deadline=None)
@given(names=st.fixed_dictionaries({
    "d": st.dictionaries(st.sampled_from("abc"), _VALUES, max_size=3),
    "record": st.dictionaries(st.sampled_from("abc"), _VALUES, max_size=3),
    "tags": st.lists(_VALUES, max_size=4), "s": st.text(max_size=10),
    "x": _VALUES, "y": _VALUES,
}), source=st.sampled_from(_READERS))
def test_evaluation_never_changes_the_names_it_reads(names: dict[str, Any], source: str) -> None:
    before = copy.deepcopy(names)
    try:
        run(source, fresh_functions(), names)
    except ExpressionError:
        pass
    assert names == before


def test_dates_and_numbers_pass_through_unchanged(functions: Kind[Any]) -> None:
    names = {"due": date(2026, 1, 9), "amount": Decimal("12.50")}
    assert run("[due, amount]", functions, names) == [date(2026, 1, 9), Decimal("12.50")]
