"""The public face of the expression language: check, compile, evaluate.

`check_expression` reports every problem (for the bundle checker and the editor);
`compile_expression` refuses with the first one; `Expression.evaluate` turns ANY failure into
one `ExpressionError` carrying the expression's position, so a broken gateway condition becomes
an incident on a ticket, never a 500.
"""

from __future__ import annotations

import decimal
from typing import Any, Mapping

from engine.errors import Diagnostic, ExpressionError
from engine.expr.checker import check
from engine.expr.compiler import Evaluator, build
from engine.expr.context import EvalContext, EvalFailure, Scope
from engine.expr.safe_ops import show
from engine.registry import Kind
from engine.types import Span

__all__ = ["Expression", "compile_expression", "check_expression"]

_SHOWN_CHARS = 120


class Expression:
    """A checked, compiled expression; evaluate it as often as needed."""

    __slots__ = ("source", "span", "names_used", "functions_used", "_fn")

    def __init__(self, source: str, span: Span | None, names_used: frozenset[str],
                 functions_used: frozenset[str], fn: Evaluator):
        self.source = source
        self.span = span
        self.names_used = names_used
        self.functions_used = functions_used
        self._fn = fn

    def evaluate(self, names: Mapping[str, Any], ctx: EvalContext | None = None) -> Any:
        """The value of the expression over `names` (absent names are None).

        `names` is only read. Every failure raises `ExpressionError` with this expression's
        span and a plain-English reason.
        """
        try:
            return self._fn(names if names is not None else {}, ctx)
        except Exception as exc:  # every failure, by design: see the module docstring
            raise self._failure(exc) from exc

    def _failure(self, exc: BaseException) -> ExpressionError:
        shown = self.source if len(self.source) <= _SHOWN_CHARS else self.source[:_SHOWN_CHARS] + "..."
        return ExpressionError(f"cannot evaluate `{shown}`: {_reason(exc)}",
                               self.span or Span("<expr>", 1, 1), source=self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _reason(exc: BaseException) -> str:
    """What went wrong, in plain English."""
    if isinstance(exc, EvalFailure):
        return str(exc)
    if isinstance(exc, ExpressionError):
        return exc.message
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, (OverflowError, decimal.Overflow)):
        return "the number is too large"
    if isinstance(exc, decimal.DecimalException):
        return "invalid decimal arithmetic"
    if isinstance(exc, RecursionError):
        return "the values are nested too deeply"
    if isinstance(exc, MemoryError):
        return "it needs too much memory"
    if isinstance(exc, KeyError):
        return f"no key {show(exc.args[0])}" if exc.args else "a key is missing"
    if isinstance(exc, ValueError) and "integer string conversion" in str(exc):
        return "the number has too many digits to turn into text"
    text = str(exc)[:_SHOWN_CHARS]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _absolute(span: Span | None, relative: Span | None) -> Span:
    """A position relative to the expression text, moved into the file the text came from."""
    if relative is None:
        return span or Span("<expr>", 1, 1)
    if span is None:
        return relative
    return span.shifted(relative.line - 1, relative.col - 1)


def check_expression(source: str, *, scope: Scope, functions: Kind[Any],
                     span: Span | None = None, warnings: bool = False) -> list[Diagnostic]:
    """Every problem of `source`, each positioned relative to the text (1:1 = first char); with
    `warnings`, followed by what loads but may fail when it runs (severity "warning")."""
    checked = check(source, scope=scope, functions=functions, file=span.file if span else "<expr>")
    return [*checked.problems, *(checked.warnings if warnings else ())]


def compile_expression(source: str, *, scope: Scope, functions: Kind[Any],
                       span: Span | None = None) -> Expression:
    """Check and compile `source`; raises `ExpressionError` at the first problem's position."""
    checked = check(source, scope=scope, functions=functions, file=span.file if span else "<expr>")
    if checked.problems:
        first = checked.problems[0]
        message = f"{first.message} ({first.hint})" if first.hint else first.message
        raise ExpressionError(message, _absolute(span, first.span), source=source)
    try:
        fn = build(checked, functions)
    except Exception as exc:  # the checker and the builder must agree; never crash a load
        raise ExpressionError(f"cannot compile the expression: {exc}", _absolute(span, None),
                              source=source) from exc
    return Expression(source, span, frozenset(checked.names_used),
                      frozenset(checked.functions_used), fn)
