"""Shared helpers for the expression tests (no tests here): a scope, contexts and shortcuts."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping

import yaml

from engine.calendar import BusinessCalendar
from engine.errors import Diagnostic
from engine.expr import EvalContext, Expression, Scope, check_expression, compile_expression, register
from engine.registry import Kind, Registry
from engine.types import Span

UTC = timezone.utc

SCOPE = Scope(frozenset({
    "amount", "count", "category", "created", "due", "record", "user", "tags", "form", "d",
    "x", "y", "s", "g", "n", "answer", "flag", "note", "金额",
}))

SHANGHAI = BusinessCalendar.from_definition(yaml.safe_load(
    "timezone: Asia/Shanghai\n"
    'working_hours: ["09:00-18:00"]\n'
    "weekend: [saturday, sunday]\n"
))
"""Mon-Fri 09:00-18:00 in Shanghai: one workday is 9 working hours."""

NOW = datetime(2026, 1, 9, 2, 0, tzinfo=UTC)
"""Friday 2026-01-09 10:00 in Shanghai."""

CTX = EvalContext(now=NOW, calendar=SHANGHAI)


def fresh_functions() -> Kind[Any]:
    """The built-in functions in a registry of their own."""
    registry = Registry()
    register(registry)
    return registry.functions


def compile_(source: str, functions: Kind[Any], *, scope: Scope = SCOPE,
             span: Span | None = None) -> Expression:
    """Compile with the shared scope."""
    return compile_expression(source, scope=scope, functions=functions, span=span)


def run(source: str, functions: Kind[Any], names: Mapping[str, Any] | None = None,
        ctx: EvalContext | None = CTX) -> Any:
    """Compile and evaluate in one step."""
    return compile_(source, functions).evaluate(names or {}, ctx)


def diagnose(source: str, functions: Kind[Any], *, scope: Scope = SCOPE) -> list[Diagnostic]:
    """Every problem of `source`."""
    return check_expression(source, scope=scope, functions=functions)


def where(diags: list[Diagnostic]) -> list[tuple[int, int, str]]:
    """(line, col, code) of each diagnostic."""
    return [(d.span.line, d.span.col, d.code) for d in diags if d.span is not None]
