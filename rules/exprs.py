"""Compiling the rule engine's expressions, with load checks of the rule functions' arguments.

`count_records("complaint", 30d, "customer_name", customer_name)` names a form and its fields in
text; `decide("complaint_level", record)` names a decision table. The expression checker knows
only that these are functions, so after compiling, this module walks the tree once and reports an
unknown form, field or table at its position in the YAML file.
"""

from __future__ import annotations

import ast
from typing import Any, Iterable

from engine.expr.checker import check
from engine.expr.lexer import Positions, normalize_newlines, prescan
from engine.kinds import BuildContext
from engine.types import YamlPath
from engine.yamlsource import Document

RECORD_NAMES = frozenset({"record", "user", "event", "tags", "id", "query_no", "status",
                          "created_at", "updated_at", "created_by"})
"""Names a rule's expressions see besides the form's fields."""

AGGREGATES = ("count_records",)


def scope_of(ctx: BuildContext, form: str | None) -> frozenset[str] | None:
    """The names of expressions over `form`'s records; None when the form failed to load."""
    if form is None:
        return frozenset({"event", "user"})
    spec = ctx.definitions.get("form", {}).get(form)
    if spec is None:
        return None
    return spec.expression_names(RECORD_NAMES)


def compile_expr(ctx: BuildContext, doc: Document, path: YamlPath, names: Iterable[str] | None,
                 *, source: str | None = None) -> Any:
    """`ctx.expression` plus the argument checks of the rule functions."""
    if names is None:
        return None
    compiled = ctx.expression(doc, path, names, source=source)
    if compiled is not None and compiled.functions_used & {"count_records", "decide"}:
        check_calls(ctx, doc, path, compiled.source)
    return compiled


def check_calls(ctx: BuildContext, doc: Document, path: YamlPath, source: str) -> None:
    """Report unknown forms, fields and decision tables named in rule function calls."""
    text = normalize_newlines(source)
    from engine.expr import Scope

    checked = check(text, scope=Scope(frozenset()), functions=ctx.registry.functions)
    if checked.tree is None:
        return
    positions = Positions(prescan(text).text)

    def report(node: ast.AST, message: str, hint: str | None = None) -> None:
        line, col = positions.of_bytes(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))
        span = doc.source_map.inside(path, line - 1, col - 1)
        ctx.diags.error(message, span, code="unknown-reference", hint=hint, yaml_path=path)

    forms = ctx.definitions.get("form", {})
    for node in ast.walk(checked.tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        args = node.args
        if node.func.id == "count_records":
            _check_count(ctx, forms, args, report)
        elif node.func.id == "decide" and args:
            tables = ctx.definitions.get("decision_table", {})
            first = args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                if first.value not in tables and "decision_table" not in ctx.incomplete:
                    from engine.errors import did_you_mean

                    report(first, f"unknown decision table '{first.value}'",
                           did_you_mean(first.value, tables))
            else:
                report(first, "decide() needs the table's name as text, e.g. decide(\"level\", record)")


def _check_count(ctx: BuildContext, forms: Any, args: list[ast.expr], report: Any) -> None:
    from engine.errors import did_you_mean

    if not args:
        return
    first = args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        report(first, "count_records() needs the form's name as text, e.g. count_records(\"complaint\", 30d)")
        return
    form = forms.get(first.value)
    if form is None:
        if "form" not in ctx.incomplete:
            report(first, f"unknown form '{first.value}'", did_you_mean(first.value, forms))
        return
    if len(args) % 2 != 0:
        report(args[-1], "count_records() takes a form, a period, then pairs of field name and value")
    for i in range(2, len(args) - 1, 2):
        field = args[i]
        if not (isinstance(field, ast.Constant) and isinstance(field.value, str)):
            report(field, "name the field as text, e.g. \"customer_name\"")
            continue
        if field.value not in form.fields:
            report(field, f"unknown field '{field.value}' of form '{first.value}'",
                   did_you_mean(field.value, form.fields))


def aggregate_filters(source: str) -> list[tuple[str, tuple[str, ...]]]:
    """(form, fields) of every `count_records` call with literal names, for index creation."""
    text = normalize_newlines(source)
    scan = prescan(text)
    if scan.problems:
        return []
    try:
        tree = ast.parse(scan.text, mode="eval")
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in AGGREGATES:
            consts = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            if consts and isinstance(consts[0], str):
                fields = tuple(c for c in consts[2::2] if isinstance(c, str))
                found.append((consts[0], fields))
    return found
