"""The part of an expression a browser may evaluate while a form is being filled in.

Conditions like `urgency == "urgent" and amount > 5000` are translated into a small JSON tree
that web/static/form.js evaluates to show and hide fields live. Only comparisons, `in`,
and/or/not, field names and literals are translated; anything else (functions, durations,
arithmetic) gives None and the page simply shows the field. The server evaluates the real
expression on every submission either way: the browser's answer is a convenience, never
the authority.
"""

from __future__ import annotations

import ast
from typing import Any

from engine.durations import DURATION_PATTERN

_COMPARE = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.In: "in", ast.NotIn: "not in"}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
MAX_CLIENT_SOURCE = 500


class _NotForClient(Exception):
    pass


def client_condition(source: str) -> list[Any] | None:
    """The JSON tree of a condition a page can evaluate, or None when it cannot."""
    if len(source) > MAX_CLIENT_SOURCE or DURATION_PATTERN.search(source):
        return None
    try:
        tree = ast.parse(source.strip(), mode="eval").body
        return _node(tree)
    except (SyntaxError, ValueError, RecursionError, _NotForClient):
        return None


def _node(node: ast.AST) -> list[Any]:
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return [op, *(_node(v) for v in node.values)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return ["not", _node(node.operand)]
    if isinstance(node, ast.Compare):
        parts = []
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            symbol = _COMPARE.get(type(op))
            if symbol is None:
                raise _NotForClient
            parts.append([symbol, _node(left), _node(right)])
            left = right
        return parts[0] if len(parts) == 1 else ["and", *parts]
    if isinstance(node, ast.Name):
        if node.id in _CONSTANT_NAMES:
            return ["lit", _CONSTANT_NAMES[node.id]]
        return ["field", node.id]
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int, float, bool, type(None))):
        return ["lit", node.value]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant) \
            and isinstance(node.operand.value, (int, float)) and not isinstance(node.operand.value, bool):
        return ["lit", -node.operand.value]
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_node(e) for e in node.elts]
        if any(i[0] != "lit" for i in items):
            raise _NotForClient
        return ["lit", [i[1] for i in items]]
    raise _NotForClient
