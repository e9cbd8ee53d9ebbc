"""Hypothesis fuzzing of the whole pipeline (RELIABILITY 8) and differential tests against simpleeval.

Whatever the text, `check_expression` returns diagnostics, `compile_expression` raises only
`ExpressionError`, and `evaluate` returns a value or raises only `ExpressionError`.
"""

from __future__ import annotations

import ast
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import ExpressionError
from engine.expr import check_expression, compile_expression, reference_evaluate
from engine.expr.methods import METHODS
from tests.engine.test_expr_support import CTX, SCOPE, UTC, fresh_functions

FUNCTIONS = fresh_functions()  # read-only here: built once for speed

NAMES: dict[str, Any] = {
    "amount": Decimal("1234.56"), "count": 3, "category": "refund", "flag": True, "note": None,
    "created": datetime(2026, 1, 7, 1, 30, tzinfo=UTC), "due": date(2026, 2, 1),
    "record": {"amount": 5, "owner": {"name": "li"}, "tags": ["a", "b"]},
    "user": {"username": "wang"}, "tags": ["urgent", "vip"], "d": {"a": 1}, "x": 7, "y": -2.5,
    "s": "Hello", "n": 10**40, "answer": "{{7*7}}",
}

_TOKENS = [
    "0", "1", "7", "2.5", "10**", "9", "x", "y", "s", "amount", "tags", "record", "d", "user",
    "note", "true", "null", "now()", "len(", "max(", "str(", "round(", "add_workdays(",
    "created", "24h", "2 workdays", "'a'", '"b"', "'%d'", "(", ")", "[", "]", "{", "}", ",", ":",
    ".", ".lower()", ".get(", ".__class__", ".format(", ".append(", " + ", " - ", " * ", " / ",
    " // ", " % ", " ** ", " << ", " | ", " == ", " < ", " >= ", " in ", " not ", " and ",
    " or ", " if ", " else ", "lambda ", " for ", "f'", "\\", "\n", "#", "=", ":=", "*", "@",
    "__import__", "gi_frame", "工作日", "\x00",
]


def _outcome(source: str) -> None:
    """Run one text through the pipeline; only ExpressionError may escape."""
    diags = check_expression(source, scope=SCOPE, functions=FUNCTIONS)
    try:
        expr = compile_expression(source, scope=SCOPE, functions=FUNCTIONS)
    except ExpressionError:
        assert diags, "compile refused what check accepted"
        return
    assert not diags, "compile accepted what check refused"
    try:
        expr.evaluate(NAMES, CTX)
    except ExpressionError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_random_text_only_gives_values_or_expression_errors(source: str) -> None:
    _outcome(source)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join))
def test_random_token_soup_only_gives_values_or_expression_errors(source: str) -> None:
    _outcome(source)


# ---------------------------------------------------------------- random ASTs

_BIN_OPS = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.LShift,
            ast.BitOr, ast.MatMult]
_CMP_OPS = [ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is]
_LEAF_NAMES = sorted(SCOPE.names) + ["true", "false", "null", "unknown", "__class__", "now", "len"]
_CALLABLE = FUNCTIONS.names() + ["getattr", "eval", "open", "lenn"]
_ATTRS = ["amount", "owner", "name", "__class__", "gi_frame", "year", "lower", "tags"]
_METHOD_NAMES = sorted(METHODS) + ["ljust", "append", "format", "join", "__subclasses__"]


def _load(name: str) -> ast.Name:
    return ast.Name(id=name, ctx=ast.Load())


_leaves = st.one_of(
    st.integers(-(10**6), 10**6).map(ast.Constant),
    st.sampled_from([2**64, 10**300, 0, -1]).map(ast.Constant),
    st.floats(allow_nan=False, allow_infinity=False).map(ast.Constant),
    st.text(max_size=6).map(ast.Constant),
    st.sampled_from([True, False, None]).map(ast.Constant),
    st.sampled_from(_LEAF_NAMES).map(_load),
)


def _branches(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    pairs = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda p, op: ast.BinOp(p[0], op(), p[1]), pairs, st.sampled_from(_BIN_OPS)),
        st.builds(lambda v, op: ast.UnaryOp(op(), v), children,
                  st.sampled_from([ast.UAdd, ast.USub, ast.Not, ast.Invert])),
        st.builds(lambda p, op: ast.BoolOp(op(), list(p)), pairs, st.sampled_from([ast.And, ast.Or])),
        st.builds(lambda p, op: ast.Compare(p[0], [op()], [p[1]]), pairs, st.sampled_from(_CMP_OPS)),
        st.builds(lambda t, b, o: ast.IfExp(t, b, o), children, children, children),
        st.builds(lambda f, args: ast.Call(_load(f), args, []), st.sampled_from(_CALLABLE),
                  st.lists(children, max_size=3)),
        st.builds(lambda v, m, args: ast.Call(ast.Attribute(v, m, ast.Load()), args, []),
                  children, st.sampled_from(_METHOD_NAMES), st.lists(children, max_size=2)),
        st.builds(lambda v, a: ast.Attribute(v, a, ast.Load()), children, st.sampled_from(_ATTRS)),
        st.builds(lambda p: ast.Subscript(p[0], p[1], ast.Load()), pairs),
        st.builds(lambda v, lo, hi: ast.Subscript(v, ast.Slice(lo, hi, None), ast.Load()),
                  children, children, children),
        st.lists(children, max_size=3).map(lambda e: ast.List(e, ast.Load())),
        st.lists(children, max_size=3).map(lambda e: ast.Tuple(e, ast.Load())),
        st.lists(pairs, max_size=3).map(lambda kv: ast.Dict([k for k, _ in kv], [v for _, v in kv])),
        st.builds(lambda e, it: ast.ListComp(e, [ast.comprehension(_load("i"), it, [], 0)]),
                  children, children),
    )


_trees = st.recursive(_leaves, _branches, max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_trees)
def test_random_syntax_trees_only_give_values_or_expression_errors(tree: ast.expr) -> None:
    _outcome(ast.unparse(ast.fix_missing_locations(ast.Expression(tree))))


_soup = st.lists(st.sampled_from(_TOKENS), max_size=25).map("".join)
_unparsed = _trees.map(lambda tree: ast.unparse(ast.fix_missing_locations(ast.Expression(tree))))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=80), _soup, _unparsed))
def test_every_fuzzed_source_is_checked_compiled_and_evaluated_within_100_ms(source: str) -> None:
    """RELIABILITY 8: no text makes one call slow. CPU time of this thread, so the machine's
    other work does not count (Hypothesis's own deadline measures wall time)."""
    started = time.thread_time()
    _outcome(source)
    assert time.thread_time() - started < 0.1, source


# ---------------------------------------------------------------- differential


def _arith(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "//", "%", "==", "!=", "<", ">=", "and", "or"])
    return st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", children, binary, children),
        st.builds(lambda a, k: f"({a}) ** {k}", children, st.integers(0, 3)),
        st.builds(lambda a: f"(not {a})", children),
        st.builds(lambda a: f"(-{a})", children),
        st.builds(lambda a, b, c: f"({a} if {b} else {c})", children, children, children),
    )


_arith_sources = st.recursive(
    st.one_of(st.integers(-50, 50).map(str), st.sampled_from(["x", "y", "2.5", "0"])),
    _arith, max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(_arith_sources, st.integers(-20, 20), st.integers(-20, 20))
def test_docket_and_simpleeval_agree_on_values_and_refusals(source: str, x: int, y: int) -> None:
    names = {"x": x, "y": y}
    try:
        expected: Any = reference_evaluate(source, names)
    except Exception:  # simpleeval raises raw Python errors (ZeroDivisionError, ...)
        expected = ExpressionError
    try:
        actual: Any = compile_expression(source, scope=SCOPE, functions=FUNCTIONS).evaluate(names)
    except ExpressionError:
        actual = ExpressionError
    if isinstance(expected, float) and expected != expected:
        assert isinstance(actual, float) and actual != actual  # NaN
    else:
        assert actual == expected
