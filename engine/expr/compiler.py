"""Turns a checked AST into a tree of Python closures, built once at load.

Why closures: walking the AST on every evaluation (what simpleeval does) costs a dispatch per
node; a closure per node, with operators, functions and methods resolved at build time, makes
evaluation a handful of plain calls. No `eval`, `exec` or `compile()` is involved: the only
code that runs is the closures below and the bounded operators of `safe_ops`.

Every closure takes `(names, ctx)`. The builder trusts the checker: it only sees trees that
passed `checker.check`.
"""

from __future__ import annotations

import ast
import traceback
from typing import Any, Callable, Mapping

from engine.expr import safe_ops as ops
from engine.expr.checker import Checked
from engine.expr.context import EvalContext, EvalFailure
from engine.expr.methods import METHODS, call_method
from engine.registry import BUILT_IN, Kind

__all__ = ["Evaluator", "build"]

Evaluator = Callable[[Mapping[str, Any], "EvalContext | None"], Any]
"""A compiled node: `(names, ctx) -> value`."""

_BIN: dict[type, Callable[[Any, Any, Any], Any]] = {
    ast.Add: ops.add, ast.Sub: ops.sub, ast.Mult: ops.mul, ast.Div: ops.truediv,
    ast.FloorDiv: ops.floordiv, ast.Mod: ops.mod, ast.Pow: ops.power,
}
_CMP: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: ops.eq, ast.NotEq: ops.ne, ast.Lt: ops.lt, ast.LtE: ops.le, ast.Gt: ops.gt,
    ast.GtE: ops.ge, ast.In: ops.contains, ast.NotIn: ops.not_contains,
    ast.Is: lambda a, b: a is b, ast.IsNot: lambda a, b: a is not b,
}


def build(checked: Checked, functions: Kind[Any]) -> Evaluator:
    """The evaluator of a tree that passed the checker."""
    assert checked.tree is not None and not checked.problems
    return _Builder(checked, functions).build(checked.tree.body)


class _Builder:
    def __init__(self, checked: Checked, functions: Kind[Any]):
        self.constants = checked.constants
        self.functions = functions

    def build(self, node: ast.AST) -> Evaluator:
        method = getattr(self, f"build_{type(node).__name__}")
        result: Evaluator = method(node)
        return result

    # ------------------------------------------------------------------ leaves

    def build_Constant(self, node: ast.Constant) -> Evaluator:
        value = node.value
        return lambda n, c: value

    def build_Name(self, node: ast.Name) -> Evaluator:
        if node in self.constants:
            value = self.constants[node]
            return lambda n, c: value
        key = node.id
        return lambda n, c: n.get(key)

    def name_key(self, node: ast.AST) -> str | None:
        """The key of a plain name read (`amount`), for closures that inline the lookup."""
        if isinstance(node, ast.Name) and node not in self.constants:
            return node.id
        return None

    # ------------------------------------------------------------------ operators

    def constant(self, node: ast.AST) -> tuple[bool, Any]:
        """(True, value) when `node` is a constant known at load."""
        if isinstance(node, ast.Constant):
            return True, node.value
        if node in self.constants:
            return True, self.constants[node]
        return False, None

    def build_BinOp(self, node: ast.BinOp) -> Evaluator:
        op = _BIN[type(node.op)]
        left = self.build(node.left)
        is_const, value = self.constant(node.right)
        if is_const:  # `amount * 1.13`: one closure call fewer
            return lambda n, c: op(left(n, c), value, c)
        right = self.build(node.right)
        return lambda n, c: op(left(n, c), right(n, c), c)

    def build_UnaryOp(self, node: ast.UnaryOp) -> Evaluator:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.Not):
            return lambda n, c: not operand(n, c)
        op = ops.neg if isinstance(node.op, ast.USub) else ops.pos
        return lambda n, c: op(operand(n, c), c)

    def build_BoolOp(self, node: ast.BoolOp) -> Evaluator:
        values = [self.build(v) for v in node.values]
        first, rest = values[0], values[1:]
        if len(values) == 2:
            second = values[1]
            if isinstance(node.op, ast.And):
                return lambda n, c: first(n, c) and second(n, c)
            return lambda n, c: first(n, c) or second(n, c)
        if isinstance(node.op, ast.And):
            def all_of(n: Mapping[str, Any], c: EvalContext | None) -> Any:
                result = first(n, c)
                for value in rest:
                    if not result:
                        return result
                    result = value(n, c)
                return result
            return all_of

        def any_of(n: Mapping[str, Any], c: EvalContext | None) -> Any:
            result = first(n, c)
            for value in rest:
                if result:
                    return result
                result = value(n, c)
            return result
        return any_of

    def build_Compare(self, node: ast.Compare) -> Evaluator:
        left = self.build(node.left)
        pairs = [(_CMP[type(op)], self.build(right)) for op, right in zip(node.ops, node.comparators)]
        if len(pairs) == 1:
            op, right = pairs[0]
            key = self.name_key(node.left)
            is_const, value = self.constant(node.comparators[0])
            if key is not None and is_const:  # `amount > 1000`: the commonest condition
                return lambda n, c: op(n.get(key), value)
            if is_const:
                return lambda n, c: op(left(n, c), value)
            return lambda n, c: op(left(n, c), right(n, c))

        def chain(n: Mapping[str, Any], c: EvalContext | None) -> bool:
            a = left(n, c)
            for compare, right_of in pairs:
                b = right_of(n, c)
                if not compare(a, b):
                    return False
                a = b
            return True
        return chain

    def build_IfExp(self, node: ast.IfExp) -> Evaluator:
        test, body, orelse = self.build(node.test), self.build(node.body), self.build(node.orelse)
        return lambda n, c: body(n, c) if test(n, c) else orelse(n, c)

    # ------------------------------------------------------------------ containers

    def build_List(self, node: ast.List) -> Evaluator:
        elts = [self.build(e) for e in node.elts]
        return lambda n, c: [e(n, c) for e in elts]

    def build_Tuple(self, node: ast.Tuple) -> Evaluator:
        elts = [self.build(e) for e in node.elts]
        return lambda n, c: tuple([e(n, c) for e in elts])

    def build_Set(self, node: ast.Set) -> Evaluator:
        elts = [self.build(e) for e in node.elts]

        def make_set(n: Mapping[str, Any], c: EvalContext | None) -> set[Any]:
            try:
                return {e(n, c) for e in elts}
            except TypeError:
                raise EvalFailure("lists and records cannot be put in a set { }") from None
        return make_set

    def build_Dict(self, node: ast.Dict) -> Evaluator:
        pairs = [(self.build(k), self.build(v)) for k, v in zip(node.keys, node.values)
                 if k is not None]

        def make_dict(n: Mapping[str, Any], c: EvalContext | None) -> dict[Any, Any]:
            try:
                return {k(n, c): v(n, c) for k, v in pairs}
            except TypeError:
                raise EvalFailure("lists and records cannot be keys of a mapping") from None
        return make_dict

    # ------------------------------------------------------------------ access

    def build_Attribute(self, node: ast.Attribute) -> Evaluator:
        value, attr = self.build(node.value), node.attr
        get_field = ops.get_field

        def field(n: Mapping[str, Any], c: EvalContext | None) -> Any:
            obj = value(n, c)
            if type(obj) is dict and attr in obj:
                return obj[attr]
            return get_field(obj, attr)
        return field

    def build_Subscript(self, node: ast.Subscript) -> Evaluator:
        value = self.build(node.value)
        key_node = node.slice
        if isinstance(key_node, ast.Slice):
            parts = [None if p is None else self.build(p)
                     for p in (key_node.lower, key_node.upper, key_node.step)]

            def sliced(n: Mapping[str, Any], c: EvalContext | None) -> Any:
                obj = value(n, c)
                bounds = [None if p is None else p(n, c) for p in parts]
                return ops.get_item(obj, ops.make_slice(*bounds))
            return sliced
        key = self.build(key_node)
        get_item = ops.get_item
        return lambda n, c: get_item(value(n, c), key(n, c))

    # ------------------------------------------------------------------ calls

    def build_Call(self, node: ast.Call) -> Evaluator:
        args = [self.build(a) for a in node.args]
        func = node.func
        if isinstance(func, ast.Attribute):
            method = METHODS[func.attr]
            receiver = self.build(func.value)
            return lambda n, c: call_method(method, receiver(n, c), [a(n, c) for a in args])
        assert isinstance(func, ast.Name)
        registered = self.functions.get(func.id)
        impl = registered.fn
        if self.functions.source(func.id) != BUILT_IN:
            impl = _checked_result(impl, registered.name, self.functions.source(func.id))
        if getattr(registered, "needs_context", False):
            return lambda n, c: impl(c, *[a(n, c) for a in args])
        if len(args) == 0:
            return lambda n, c: impl()
        if len(args) == 1:
            only = args[0]
            return lambda n, c: impl(only(n, c))
        if len(args) == 2:
            first, second = args
            return lambda n, c: impl(first(n, c), second(n, c))
        return lambda n, c: impl(*[a(n, c) for a in args])


def _checked_result(fn: Callable[..., Any], name: str, source: str) -> Callable[..., Any]:
    """A plugin function whose result must be a plain value: anything else (an object, a set)
    fails the expression, naming the function and its plugin, instead of being stored as its
    `repr` or failing later far from its cause. An exception other than `EvalFailure` (the
    plugin's way of refusing its arguments) is a bug in the plugin: it is named too, with the
    plugin's line, or 'KeyError: x' read as a mistake in the analyst's expression. Built-in
    functions are trusted (and fast)."""
    def call(*args: Any) -> Any:
        try:
            result = fn(*args)
        except EvalFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - reported as the plugin's bug, with its line
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" (raised in {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
            raise EvalFailure(f"{name}() (from {source}) failed: {type(exc).__name__}: {exc}{where}: "
                              "a bug in that plugin") from exc
        foreign = ops.foreign_value(result)
        if foreign is not None:
            raise EvalFailure(f"{name}() (from {source}) returned {ops.kind(foreign)}, not text, a "
                              "number, a date, a duration or a list or record of those: a bug in "
                              "that plugin")
        return result
    return call
