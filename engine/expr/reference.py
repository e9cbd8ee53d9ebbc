"""simpleeval as the reference evaluator, in a restricted configuration.

Docket evaluates its own compiled closures (fast), but the language is simpleeval's model, so
tests cross-check values against `EvalWithCompoundTypes` configured the way RELIABILITY.md
recommends: no shifts or bit operators, numeric-only `%`, a result-size bound on `**`,
comprehensions and f-strings removed, and a minimal per-type method allow-list instead of
`BASIC_ALLOWED_ATTRS`. The benchmark uses the same configuration as the named peer.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Mapping

from simpleeval import EvalWithCompoundTypes, NumberTooHigh, safe_add, safe_mult

__all__ = ["reference_evaluator", "reference_evaluate"]

_MAX_BITS = 4096


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        raise TypeError("'%' works on numbers only")
    return a % b


def _pow(a: Any, b: Any) -> Any:
    if isinstance(a, int) and isinstance(b, int) and b > 0 and a not in (0, 1, -1):
        if math.log2(abs(a)) * b > _MAX_BITS:
            raise NumberTooHigh(f"{a} ** {b} would be too large")
    return a ** b


_OPERATORS: dict[type, Any] = {
    ast.Add: safe_add, ast.Sub: operator.sub, ast.Mult: safe_mult, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: _mod, ast.Pow: _pow,
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Gt: operator.gt, ast.Lt: operator.lt,
    ast.GtE: operator.ge, ast.LtE: operator.le, ast.Not: operator.not_,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
    ast.In: lambda x, y: operator.contains(y, x),
    ast.NotIn: lambda x, y: not operator.contains(y, x),
    ast.Is: lambda x, y: x is y, ast.IsNot: lambda x, y: x is not y,
}
_STR_METHODS = frozenset({"lower", "upper", "title", "strip", "lstrip", "rstrip",
                          "startswith", "endswith"})
_ALLOWED_ATTRS: dict[type, frozenset[str]] = {str: _STR_METHODS, dict: frozenset({"get"})}
_FUNCTIONS: dict[str, Any] = {"len": len, "min": min, "max": max, "abs": abs, "round": round}
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "null": None,
                              "True": True, "False": False, "None": None}


def reference_evaluator(names: Mapping[str, Any]) -> EvalWithCompoundTypes:
    """A restricted `EvalWithCompoundTypes` over `names` (use `.parse` + `previously_parsed`)."""
    evaluator = EvalWithCompoundTypes(
        operators=dict(_OPERATORS), functions=dict(_FUNCTIONS),
        names={**_CONSTANTS, **names}, allowed_attrs=dict(_ALLOWED_ATTRS),
    )
    for node_type in (ast.ListComp, ast.GeneratorExp, ast.DictComp, ast.JoinedStr,
                      ast.FormattedValue):
        evaluator.nodes.pop(node_type, None)
    return evaluator


def reference_evaluate(source: str, names: Mapping[str, Any]) -> Any:
    """Evaluate `source` over `names` with simpleeval (for cross-checking Docket's compiler)."""
    return reference_evaluator(names).eval(source)
