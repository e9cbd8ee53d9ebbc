"""The load-time check: parse once, then walk the AST against an allow-list.

Everything an expression may do is decided here, before anything runs: which node types,
operators, names, functions and methods appear, how large and deep the tree is. Each problem
becomes a `Diagnostic` with a 1-based line and column relative to the expression text, so the
bundle loader can point at `file:line:col`. The compiler only ever sees trees that passed.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from engine.durations import as_value
from engine.errors import Diagnostic, amount_hint, did_you_mean, invisible_hint, wide_punctuation_hint
from engine.expr import safe_ops
from engine.expr.context import VALUE_KINDS, EvalFailure, Scope, arity_text, group_hint, label_hint, option_hint
from engine.expr.functions import TEXT_READERS  # the calls' own reading of their text
from engine.expr.lexer import Positions, normalize_newlines, prescan
from engine.expr.methods import METHODS
from engine.registry import Kind
from engine.time_of_day import parse_time_of_day
from engine.types import Span

__all__ = ["MAX_AST_NODES", "MAX_AST_DEPTH", "Checked", "check", "LITERAL_NAMES"]

MAX_AST_NODES = 1000
"""Most AST nodes in one expression."""
MAX_AST_DEPTH = 48
"""Deepest AST nesting (a chain of 45 `+` is already unreadable)."""

LITERAL_NAMES: dict[str, Any] = {"true": True, "false": False, "null": None}
"""YAML-style constants analysts write; they are constants, never names."""

_INTERNAL_PREFIXES = ("func_", "gi_", "cr_", "ag_", "f_", "co_", "tb_", "im_")
_INTERNAL_NAMES = frozenset({"mro"})

_BIN_OPS: dict[type, str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}
_REFUSED_BIN_OPS: dict[type, str] = {
    ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|", ast.BitXor: "^", ast.BitAnd: "&",
    ast.MatMult: "@",
}
_FOLDED_OPS: dict[type, Any] = {
    ast.Add: safe_ops.add, ast.Sub: safe_ops.sub, ast.Mult: safe_ops.mul, ast.Pow: safe_ops.power,
}
_COMPREHENSION = ("comprehensions and generators (`for ... in ...`) are not allowed; "
                  "use a registered function instead")
_FORBIDDEN_NODES: dict[str, str] = {
    "Lambda": "lambda functions are not allowed",
    "ListComp": _COMPREHENSION, "SetComp": _COMPREHENSION, "DictComp": _COMPREHENSION,
    "GeneratorExp": _COMPREHENSION,
    "JoinedStr": "f-strings are not allowed; join text with +",
    "FormattedValue": "f-strings are not allowed; join text with +",
    "NamedExpr": "assignment (:=) is not allowed",
    "Await": "'await' is not allowed", "Yield": "'yield' is not allowed",
    "YieldFrom": "'yield' is not allowed",
    "Starred": "unpacking with * is not allowed",
    "Slice": "a slice is only allowed inside [ ]",
}


@dataclass
class Checked:
    """The outcome of checking: the tree (when it parsed), problems, and what it uses."""

    source: str
    tree: ast.Expression | None
    problems: list[Diagnostic] = field(default_factory=list)
    names_used: set[str] = field(default_factory=set)
    functions_used: set[str] = field(default_factory=set)
    constants: dict[ast.AST, Any] = field(default_factory=dict)
    """Name nodes that stand for constants: duration placeholders and true/false/null."""
    warnings: list[Diagnostic] = field(default_factory=list)
    """What loads but may fail when it runs (an empty field ordered or added without a fallback)."""


def check(source: str, *, scope: Scope, functions: Kind[Any], file: str = "<expr>") -> Checked:
    """Check `source` completely; never raises for any input text."""
    if not isinstance(source, str):
        return Checked(str(source), None, [Diagnostic(
            f"an expression must be text, not {type(source).__name__}", Span(file, 1, 1),
            code="expr-syntax")])
    text = normalize_newlines(source)
    scan = prescan(text)
    result = Checked(source, None)
    if scan.problems:
        result.problems = [Diagnostic(p.message, Span(file, p.line, p.col), code=p.code, hint=p.hint)
                           for p in scan.problems]
        return result
    positions = Positions(scan.text)
    tree, problem = _parse(scan.text, positions, file, multiline=scan.balanced and "\n" in scan.text)
    if problem is not None:
        result.problems.append(problem)
        return result
    assert tree is not None
    problem = _size_problem(tree, positions, file)
    if problem is not None:
        result.problems.append(problem)
        return result
    result.tree = tree
    walker = _Walker(scope, functions, scan.durations, positions, file, result)
    walker.visit(tree.body)
    result.problems.sort(key=Diagnostic.sort_key)
    return result


def _syntax_hint(text: str, message: str = "") -> str:
    """What an analyst most likely meant by an expression Python cannot read (`message` is
    Python's complaint)."""
    wide = re.search(r"invalid character '(.)'", message)
    if wide and wide_punctuation_hint(wide[1]):
        return wide_punctuation_hint(wide[1])
    invisible = re.search(r"character U\+([0-9A-Fa-f]{4})", message)
    if invisible and invisible_hint(chr(int(invisible[1], 16))):
        return invisible_hint(chr(int(invisible[1], 16)))
    if wide and invisible_hint(wide[1]):
        return invisible_hint(wide[1])
    try:
        tree = ast.parse(text, mode="exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tree = None
    if tree is not None and len(tree.body) == 1 and isinstance(tree.body[0], (ast.Assign, ast.AnnAssign)):
        return "to compare, write == (a single = would set a value): e.g. category == 'refund'"
    if "&&" in text or "||" in text:
        return "write `and` and `or` (not && and ||): e.g. amount > 1000 and category == 'refund'"
    amount = amount_hint(text)
    if amount:
        return amount
    for pattern, hint in _HABITS:
        if re.search(pattern, text):
            return hint
    return "expressions use Python syntax, e.g. amount > 1000 and category == 'refund'"


_HABITS = (
    (r"\b(AND|OR|NOT)\b", "write and, or, not in lower case: e.g. amount > 1000 and category == 'refund'"),
    (r"<>", "write != for 'not equal': e.g. category != 'refund'"),
    (r"=>|=<", "write >= and <= (the = comes second): e.g. amount >= 1000"),
    (r"(?i)\blike\b", "there is no LIKE: write 'fee' in category, or startswith(category, 'fee')"),
)
"""Spreadsheet and SQL habits that Python cannot read (the text it fails on -> what to write)."""

_FUNCTION_HABITS = {
    "if": "write a choice as: value_if_true if condition else value_if_false",
    "iif": "write a choice as: value_if_true if condition else value_if_false",
    "isnull": "write is_empty(x), or x == null", "isblank": "write is_empty(x), or x == null",
    "isempty": "write is_empty(x)", "count": "count the records with count_records(form, period, field, value)",
}
"""Spreadsheet functions an analyst reaches for (lower-cased) -> what Docket writes instead."""


def _parse(text: str, positions: Positions, file: str, *,
           multiline: bool) -> tuple[ast.Expression | None, Diagnostic | None]:
    """Parse one expression. Text spread over several lines (a YAML `|` block) is parsed
    inside brackets, where Python allows line breaks; brackets are known to be balanced, so
    the wrapping cannot join two fragments, and line numbers are moved back by one."""
    if not text.strip():
        return None, Diagnostic("the expression is empty", Span(file, 1, 1), code="expr-syntax")
    if multiline:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                tree = ast.parse("(\n" + text + "\n)", mode="eval")
            return ast.increment_lineno(tree, -1), None
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            pass  # parse it as written below, for the error as the analyst sees it
    try:
        with warnings.catch_warnings():
            # Invalid escapes and `1if` only warn in Python; in an expression they are errors.
            warnings.simplefilter("error")
            return ast.parse(text, mode="eval"), None
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = exc.offset or 0
        if col < 1:  # CPython reports 0 when the problem is the end of the text
            lines = positions.lines
            col = len(lines[line - 1]) + 1 if 1 <= line <= len(lines) else 1
        message = f"syntax error: {exc.msg}"
        return None, Diagnostic(message, Span(file, max(line, 1), col), code="expr-syntax",
                                hint=_syntax_hint(text, exc.msg))
    except (ValueError, TypeError) as exc:  # e.g. NUL characters
        return None, Diagnostic(f"syntax error: {exc}", Span(file, 1, 1), code="expr-syntax")
    except (RecursionError, MemoryError):
        return None, Diagnostic("expression is too complex to read", Span(file, 1, 1),
                                code="expr-too-large")


def _size_problem(tree: ast.Expression, positions: Positions, file: str) -> Diagnostic | None:
    """Count nodes and measure depth without recursion."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_AST_NODES or depth > MAX_AST_DEPTH:
            line, col = _node_pos(node, positions)
            what = (f"has too many parts (more than {MAX_AST_NODES})" if count > MAX_AST_NODES
                    else f"is nested too deeply (more than {MAX_AST_DEPTH} levels)")
            return Diagnostic(f"expression {what}", Span(file, line, col), code="expr-too-large",
                              hint="split it into computed fields or a registered function")
        for child in ast.iter_child_nodes(node):
            stack.append((child, depth + 1))
    return None


def _node_pos(node: ast.AST, positions: Positions) -> tuple[int, int]:
    lineno = getattr(node, "lineno", None)
    if lineno is None:
        return 1, 1
    return positions.of_bytes(lineno, getattr(node, "col_offset", 0))


def attribute_problem(attr: str) -> str | None:
    """Why an attribute or method name is refused, or None if its name is acceptable."""
    if attr.startswith("_"):
        return f"private/dunder names are not allowed ('{attr}')"
    if attr.startswith(_INTERNAL_PREFIXES) or attr in _INTERNAL_NAMES:
        return f"'{attr}' reaches interpreter internals and is not allowed"
    return None


_NUMBER_TEXT = re.compile(r"[-+]?\d+(\.\d+)?")
"""Text that reads as a number: `"3000"` compared with a number field is meant as 3000."""

_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}")
_KIND_WORDS = {"number": "a number", "text": "text", "date": "a date", "datetime": "a date and time",
               "time": "a time of day", "boolean": "yes or no"}
_CALL_KINDS = {"today": "date", "date": "date", "now": "datetime", "add_workdays": "datetime",
               "add_work_time": "datetime", "time": "time"}
"""What the built-in date and time functions give (engine/expr/functions.py)."""




def _kind_hint(name: str, kind: str, value: Any) -> str:
    """How to write the comparison of `name` (holding `kind`) with the literal `value`."""
    text = value.strip() if isinstance(value, str) else ""
    if kind == "number":
        return (f"write {text} without quotes" if _NUMBER_TEXT.fullmatch(text)
                else f"'{name}' holds a number: compare it with a number, e.g. {name} > 100")
    if kind == "text":
        return f"write \"{value!r}\" in quotes: '{name}' holds text"
    if kind == "boolean":
        return f"write {name} == true, or just {name} (not {name} for no)"
    if kind == "time":
        clock = parse_time_of_day(text)
        hour = clock.hour if clock else value if isinstance(value, int) and 0 <= value < 24 else 8
        minute = clock.minute if clock else 0
        return f"write time(\"{hour:02d}:{minute:02d}\"), e.g. {name} >= time(\"{hour:02d}:{minute:02d}\")"
    day = text if _DATE_TEXT.fullmatch(text) else "2026-01-31"
    if kind == "date":
        if not isinstance(value, str):
            return f"to count days, write days_between({name}, today()) > {value!r}"
        return f"write date(\"{day}\")"
    if not isinstance(value, str):
        return f"to count days, write days_between({name}, now()) > {value!r}"
    return f"compare days: date({name}) > date(\"{day}\"), or the instant with now() - 2d"


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a chain of attributes on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or not parts:
        return None
    return ".".join([node.id, *reversed(parts)])


def _literal(node: ast.AST) -> tuple[bool, Any]:
    """(True, value) for a constant, including a signed number (`-1`); (False, None) else."""
    if isinstance(node, ast.Constant):
        return True, node.value
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
            and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
        value = node.operand.value
        return True, -value if isinstance(node.op, ast.USub) else value
    return False, None


def _kind_of_literal(value: Any) -> str | None:
    """The kind of value a literal is: "number", "text", or None (true, false, null)."""
    if isinstance(value, str):
        return "text"
    if type(value) in (int, float):
        return "number"
    return None


_ORDERINGS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod)


def _tested(node: ast.expr, *, holds: bool) -> frozenset[str]:
    """The bare names `node` proves to hold a value when it is true (`holds`) or false: `x`,
    `x != None`, `not is_empty(x)` when true; `not x`, `x == None`, `is_empty(x)` when false."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return _tested(node.operand, holds=not holds)
    if isinstance(node, ast.Name):
        return frozenset({node.id}) if holds else frozenset()
    if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And) == holds:
        return frozenset().union(*(_tested(value, holds=holds) for value in node.values))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "is_empty"
            and len(node.args) == 1 and isinstance(node.args[0], ast.Name)):
        return frozenset({node.args[0].id}) if not holds else frozenset()
    if (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)
            and isinstance(node.comparators[0], (ast.Constant, ast.Name))
            and getattr(node.comparators[0], "value", getattr(node.comparators[0], "id", 0)) in (None, "None", "null")):
        not_none = isinstance(node.ops[0], (ast.NotEq, ast.IsNot))
        return frozenset({node.left.id}) if not_none == holds else frozenset()
    return frozenset()


class _Walker:
    """Visits the parsed tree once, recording every problem and every name and function used."""

    def __init__(self, scope: Scope, functions: Kind[Any], durations: dict[tuple[int, int], Any],
                 positions: Positions, file: str, result: Checked):
        self.scope = scope
        self.functions = functions
        self.durations = durations
        self.positions = positions
        self.file = file
        self.result = result
        self.folded: dict[ast.AST, Any] = {}
        self.guarded: frozenset[str] = frozenset()
        """Optional fields known to hold a value where the walk is (`x and x > 5`)."""
        self.warned: set[str] = set()

    # ------------------------------------------------------------------ helpers

    def problem(self, message: str, pos: tuple[int, int], code: str = "expr-forbidden",
                hint: str | None = None) -> None:
        self.result.problems.append(Diagnostic(message, Span(self.file, *pos), code=code, hint=hint))

    def pos(self, node: ast.AST) -> tuple[int, int]:
        return _node_pos(node, self.positions)

    def attr_pos(self, node: ast.Attribute) -> tuple[int, int]:
        """Where the attribute name itself starts (`x.__class__` -> the `_`)."""
        end_line, end_col = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
        if end_line is None or end_col is None:
            return self.pos(node)
        line, col = self.positions.of_bytes(end_line, end_col)
        return line, max(col - len(node.attr), 1)

    def operator_pos(self, node: ast.BinOp, symbol: str) -> tuple[int, int]:
        """Where the operator symbol sits between the two operands."""
        left, right = node.left, node.right
        start = self.positions.of_bytes(left.end_lineno or left.lineno, left.end_col_offset or 0)
        end = self.positions.of_bytes(right.lineno, right.col_offset)
        lines = self.positions.lines
        for line in range(start[0], end[0] + 1):
            text = lines[line - 1] if line <= len(lines) else ""
            lo = start[1] - 1 if line == start[0] else 0
            hi = end[1] - 1 if line == end[0] else len(text)
            found = text.find(symbol, lo, hi)
            if found >= 0:
                return line, found + 1
        return self.pos(node)

    def visit(self, node: ast.AST) -> None:
        name = type(node).__name__
        handler = getattr(self, f"visit_{name}", None)
        if handler is None:
            self.problem(_FORBIDDEN_NODES.get(name, f"'{name}' is not allowed in an expression"),
                         self.pos(node))
            return
        handler(node)

    # ------------------------------------------------------------------ leaves

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if value is None or isinstance(value, (bool, int, float, str)):
            return
        if isinstance(value, bytes):
            message = "bytes literals are not allowed"
        elif isinstance(value, complex):
            message = "complex numbers are not allowed"
        else:
            message = f"{value!r} is not allowed"
        self.problem(message, self.pos(node))

    def visit_Name(self, node: ast.Name) -> None:
        ident = node.id
        pos = self.pos(node)
        duration = self.durations.get(pos)
        if duration is not None and set(ident) == {"_"}:
            self.result.constants[node] = as_value(duration)
            return
        if ident in LITERAL_NAMES:
            self.result.constants[node] = LITERAL_NAMES[ident]
            return
        if ident.startswith("_"):
            self.problem(f"private/dunder names are not allowed ('{ident}')", pos)
            return
        if ident in self.scope.names:
            self.result.names_used.add(ident)
            return
        if ident in self.functions:
            self.problem(f"'{ident}' is a function: call it as {ident}(...)", pos,
                         code="expr-unknown-name")
            return
        # `urgency == urgent`: an option's value without its quotes. "did you mean 'urgency'?"
        # would make it `urgency == urgency`, which always holds.
        hint = option_hint(ident, {**self.scope.multi_choices, **self.scope.choices})
        hint = hint or did_you_mean(ident, [*self.scope.names, *LITERAL_NAMES])
        if hint is None and not ident.isascii():  # text meant, not a name: `urgency == 紧急`
            hint = label_hint(ident, self.scope.choices) or f'text goes in quotes: "{ident}"'
        if hint is None and self.scope.names:
            known = sorted(self.scope.names)
            hint = "known names: " + ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
        self.problem(f"unknown name '{ident}'", pos, code="expr-unknown-name", hint=hint)

    # ------------------------------------------------------------------ operators

    def fold(self, node: ast.AST) -> tuple[bool, Any]:
        """(True, value) for arithmetic on number literals, computed with the bounded operators;
        raises what they raise."""
        if node in self.folded:
            return True, self.folded[node]
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return True, node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            ok, value = self.fold(node.operand)
            result = (safe_ops.neg if isinstance(node.op, ast.USub) else safe_ops.pos)(value) if ok else None
        elif isinstance(node, ast.BinOp) and type(node.op) in _FOLDED_OPS:
            ok, left = self.fold(node.left)
            ok2, right = self.fold(node.right) if ok else (False, None)
            ok = ok and ok2
            result = _FOLDED_OPS[type(node.op)](left, right) if ok else None
        else:
            return False, None
        if ok:
            self.folded[node] = result
        return ok, result

    def visit_BinOp(self, node: ast.BinOp) -> None:
        refused = _REFUSED_BIN_OPS.get(type(node.op))
        if refused is None and isinstance(node.op, (ast.Pow, ast.Mult)):
            try:  # `9**9**9` is refused at load, not at the first evaluation
                self.fold(node)
            except (EvalFailure, OverflowError) as exc:
                if isinstance(exc, OverflowError) or "too large" in str(exc):
                    reason = str(exc) if isinstance(exc, EvalFailure) else "the result would be too large"
                    self.problem(reason, self.operator_pos(node, _BIN_OPS[type(node.op)]))
            except ArithmeticError:
                pass  # division by zero and the like are reported when evaluated
        if refused is not None:
            self.problem(f"the operator '{refused}' is not allowed", self.operator_pos(node, refused))
        elif isinstance(node.op, ast.Mod) and isinstance(node.left, (ast.Constant, ast.JoinedStr)) \
                and isinstance(getattr(node.left, "value", ""), str):
            self.problem("'%' works on numbers only (formatting text with % is not allowed)",
                         self.operator_pos(node, "%"))
        self.visit(node.left)
        self.visit(node.right)
        if isinstance(node.op, _ARITHMETIC):
            for side in (node.left, node.right):
                self._may_be_empty(side, _BIN_OPS[type(node.op)], node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Invert):
            self.problem("the operator '~' is not allowed", self.pos(node))
        self.visit(node.operand)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        outer = self.guarded
        for value in node.values:
            self.visit(value)
            # `x and x > 5`: x holds a value after it tested true; `not x or x > 5` after false.
            self.guarded |= _tested(value, holds=isinstance(node.op, ast.And))
        self.guarded = outer

    def visit_Compare(self, node: ast.Compare) -> None:
        self.visit(node.left)
        for comparator in node.comparators:
            self.visit(comparator)
        left = node.left
        for op, right in zip(node.ops, node.comparators):
            self._check_literals(left, op, right)
            if type(op) in _ORDERINGS:
                self._may_be_empty(left, _ORDERINGS[type(op)], node)
                self._may_be_empty(right, _ORDERINGS[type(op)], node)
            left = right

    def _may_be_empty(self, side: ast.expr, op: str, node: ast.expr) -> None:
        """Warn of an optional field ordered or computed with, unguarded: on a record that
        leaves it empty the expression fails when it runs, and the record stops with an incident."""
        name = self._field(side)
        if name is None or name not in self.scope.optional or name in self.guarded or name in self.warned:
            return
        self.warned.add(name)
        ordering = op in _ORDERINGS.values()
        fallback = '""' if self.scope.kinds.get(name) == "text" else "0"
        written = ast.get_source_segment(self.positions.text, side) or name
        self.result.warnings.append(Diagnostic(
            f"'{name}' may be empty when this runs: {'comparing' if ordering else 'computing'} an empty "
            f"value with '{op}' fails, and the record stops with an incident",
            Span(self.file, *self.pos(side)), code="expr-may-be-empty", severity="warning",
            hint=f"give it a fallback, ({written} or {fallback}), or test it first: {name} and ..."))

    # ------------------------------------------------------------------ literals against fields

    def _check_literals(self, left: ast.expr, op: ast.cmpop, right: ast.expr) -> None:
        """A literal compared with a field must be a value the field can hold: an option of a
        choice field, a number for a number field, text for a text field. Anything else never
        matches (the branch it guards is silently never taken) or fails when it runs."""
        if isinstance(op, (ast.In, ast.NotIn)):
            if isinstance(right, (ast.Tuple, ast.List, ast.Set)):
                self._check_side(left, right.elts, op)
            elif self._in_text(left, right):
                return
            else:
                self._check_member(left, right)
            return
        self._check_side(left, [right], op)
        self._check_side(right, [left], op)

    def _check_side(self, side: ast.expr, others: list[ast.expr], op: ast.cmpop) -> None:
        """Check the literals among `others`, each compared with `side` by `op`."""
        name = self._field(side)
        equality = isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn))
        if equality and name is not None and name in self.scope.choices:
            for literal in others:  # the options say more than the kind of value
                self._check_option(name, self.scope.choices[name], literal)
            return
        kind, name = self._value_kind(side)
        if kind is None:
            return
        for literal in others:
            if (kind == "text" and isinstance(op, (ast.Eq, ast.NotEq)) and _literal(literal) == (True, "")
                    and self._field(side) is not None):  # `(x or "") != ""` does mean "has a value"
                self._empty_text(name, literal, has_value=isinstance(op, ast.NotEq))
            else:
                self._check_kind(name, kind, literal, ordering=not equality)

    def _empty_text(self, name: str, literal: ast.expr, *, has_value: bool) -> None:
        """`contact_email != ""`, as a spreadsheet says "has a value": an empty field holds null,
        never "", so the test held for every record (or, with ==, for none)."""
        outcome = "holds for every record" if has_value else "never holds"
        self.problem(f"an empty field holds null, not \"\": the comparison {outcome}", self.pos(literal),
                     code="expr-empty-text",
                     hint=f"write {name} for 'has a value'" if has_value else f"write not {name} for 'is empty'")

    def _in_text(self, item: ast.expr, container: ast.expr) -> bool:
        """`vip_level in ("gold")`: brackets around one text do not make a list, so `in` tests
        for a part of the text ("old" would match, an empty field fails when it runs). True when
        reported."""
        name = self._field(item)
        found, text = _literal(container)
        if name is None or name not in self.scope.choices or not found or not isinstance(text, str):
            return False
        self.problem(f"'in' with the text \"{text}\" tests whether '{name}' is a part of that text: "
                     "brackets around one value do not make a list", self.pos(container),
                     code="expr-in-text", hint=f"write {name} == \"{text}\", or a list of one: {name} in (\"{text}\",)")
        return True

    def _check_member(self, item: ast.expr, container: ast.expr) -> None:
        """`"x" in tags`: the literal must be an option of the multi-choice field `tags`."""
        name = self._field(container)
        if name is not None and name in self.scope.multi_choices:
            self._check_option(name, self.scope.multi_choices[name], item)

    def _field(self, node: ast.AST) -> str | None:
        """The field `node` reads: a name, or `record.NAME` / `record["NAME"]`; or the dotted
        path it reads under a name with known members (`flow.assess.outcome`)."""
        if isinstance(node, ast.Name):
            return node.id
        dotted = _dotted(node)
        if dotted is not None and dotted.split(".", 1)[0] in self.scope.members:
            return dotted
        if "record" not in self.scope.names:
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "record":
            return node.attr
        if (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "record"
                and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            return node.slice.value
        return None

    def _value_kind(self, node: ast.AST) -> tuple[str | None, str]:
        """(kind of value, field) of a field, or of a field with a fallback (`amount or 0`,
        `coalesce(amount, 0)`); (None, "") when it is not known for certain."""
        name = self._field(node)
        if name is not None:
            kind = self.scope.kinds.get(name)
            return (kind, name) if kind in VALUE_KINDS else (None, "")
        parts: list[ast.expr] = []
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            parts = node.values
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "coalesce"
              and "coalesce" in self.functions):
            parts = node.args
        kinds, field_name = set(), ""
        for part in parts:
            found, literal = _literal(part)
            if found:
                if literal is not None:
                    kinds.add(_kind_of_literal(literal))
                continue
            kind, part_field = self._value_kind(part)
            if kind is None:
                return None, ""  # a part of unknown kind: the whole is unknown
            kinds.add(kind)
            field_name = field_name or part_field
        if field_name and len(kinds) == 1:
            return kinds.pop(), field_name
        return None, ""

    def _check_option(self, name: str, options: frozenset[str], literal: ast.expr) -> None:
        """A literal compared with a choice field must be one of its options: a typo
        (`"urgnt"`) or a number for a text option (`2` for `"2"`) would never match."""
        found, value = _literal(literal)
        if not found or value is None:
            return  # a name, a call or `null`: not known before it runs
        leaves = getattr(options, "groups", {}).get(value)
        if leaves:  # `category == "billing"`: records hold "fee_invoice", never "billing"
            self.problem(f"'{value}' is a group of '{name}', and a record holds the last level under it: "
                         "the comparison could never hold", self.pos(literal), code="expr-unknown-option",
                         hint=group_hint(name, leaves))
            return
        if isinstance(value, str) and value in options:
            return
        shown = f"'{value}'" if isinstance(value, str) else repr(value)
        if not isinstance(value, (str, bool)) and str(value) in options:
            hint = f"options are text: write \"{value}\""
        elif isinstance(value, str) and label_hint(value, {name: options}, name):
            hint = label_hint(value, {name: options}, name)
        else:
            hint = did_you_mean(str(value), sorted(options)) or (
                "options: " + ", ".join(sorted(options)[:12]) + (", ..." if len(options) > 12 else ""))
        self.problem(f"{shown} is not an option of '{name}': the comparison could never hold",
                     self.pos(literal), code="expr-unknown-option", hint=hint)

    def _check_kind(self, name: str, kind: str, literal: ast.expr, *, ordering: bool) -> None:
        """A literal (or a call to a date function) compared with a field holding another kind
        of value: never equal, and ordering them fails when the expression runs."""
        found, value = _literal(literal)
        if not found:
            self._check_call_kind(name, kind, literal)
            return
        if value is None or isinstance(value, bool) or _kind_of_literal(value) == kind:
            return
        if kind == "boolean" and not isinstance(value, str):
            return  # true == 1 and false == 0 hold: nothing is lost
        if isinstance(value, str):
            shown = f"the text '{value}'"
        else:
            shown = f"the number {value!r}"
        outcome = "cannot be compared with" if ordering else "is never equal to"
        result = "the expression would fail when it runs" if ordering else "the comparison could never hold"
        self.problem(f"{shown} {outcome} '{name}', which holds {_KIND_WORDS[kind]}: {result}",
                     self.pos(literal), code="expr-type-mismatch", hint=_kind_hint(name, kind, value))

    def _check_call_kind(self, name: str, kind: str, call: ast.expr) -> None:
        """`occurred_at > today()`: a date and time against a calendar day (or a date field
        against `now()`, a time of day against either) is never equal and cannot be ordered."""
        made = _CALL_KINDS.get(call.func.id) if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                                                 and call.func.id in self.functions) else None
        if made is None or kind not in ("date", "datetime", "time") or made == kind:
            return
        function = call.func.id  # type: ignore[union-attr]
        written = f"{function}()" if not call.args else f"{function}(...)"  # type: ignore[attr-defined]
        if kind == "time":
            hint = f"compare it with a time of day, e.g. {name} >= time(\"08:30\"), or time(now())"
        elif made == "time":
            hint = (f"compare the time of day: time({name}) with {written}" if kind == "datetime"
                    else f"'{name}' is a calendar day, without a time of day")
        elif kind == "datetime":
            hint = f"compare days: date({name}) with {written}, or the instant with now()"
        else:
            hint = f"compare it with today() or date(\"2026-01-31\"), or with date({written})"
        self.problem(f"{function}() gives {_KIND_WORDS[made]}, but '{name}' holds {_KIND_WORDS[kind]}: "
                     "they are never equal and cannot be ordered", self.pos(call),
                     code="expr-type-mismatch", hint=hint)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        outer = self.guarded
        self.guarded = outer | _tested(node.test, holds=True)
        self.visit(node.body)
        self.guarded = outer | _tested(node.test, holds=False)
        self.visit(node.orelse)
        self.guarded = outer

    # ------------------------------------------------------------------ containers

    def visit_List(self, node: ast.List) -> None:
        for elt in node.elts:
            self.visit(elt)

    visit_Tuple = visit_List  # type: ignore[assignment]
    visit_Set = visit_List  # type: ignore[assignment]

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if key is None:
                self.problem("unpacking with ** is not allowed", self.pos(value))
            else:
                self.visit(key)
            self.visit(value)

    # ------------------------------------------------------------------ access

    def visit_Attribute(self, node: ast.Attribute) -> None:
        why = attribute_problem(node.attr)
        if why is not None:
            self.problem(why, self.attr_pos(node),
                         hint=None if node.attr.startswith("_") else f"write x['{node.attr}'] to "
                         "read a field with this name")
        elif isinstance(node.value, ast.Name) and node.value.id in self.scope.members:
            members = self.scope.members[node.value.id]
            if node.attr not in members.names:
                known = sorted(members.names)
                self.problem(f"unknown {members.noun} '{node.attr}' in {node.value.id}.{node.attr}",
                             self.attr_pos(node), code="expr-unknown-name",
                             hint=did_you_mean(node.attr, known) or f"{members.noun}s: " + ", ".join(known[:12])
                             + (", ..." if len(known) > 12 else ""))
        self.visit(node.value)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        self.visit(node.value)
        key = node.slice
        if isinstance(key, ast.Slice):
            for part in (key.lower, key.upper, key.step):
                if part is not None:
                    self.visit(part)
            return
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.startswith("_"):
            self.problem(f"private/dunder names are not allowed ('{key.value}')", self.pos(key))
            return
        self.visit(key)

    # ------------------------------------------------------------------ calls

    def visit_Call(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg is None:
                self.problem("unpacking with ** is not allowed", self.pos(keyword))
            else:
                self.problem(f"keyword arguments are not allowed ('{keyword.arg}=')",
                             self.pos(keyword), hint="pass arguments by position")
        func = node.func
        count = len(node.args)
        if isinstance(func, ast.Name):
            self._check_function(func, count)
            self._check_text_argument(node)
        elif isinstance(func, ast.Attribute):
            self._check_method(func, count)
            self.visit(func.value)
        else:
            self.problem("only registered functions and allowed methods can be called",
                         self.pos(func))
        for arg in node.args:
            self.visit(arg)

    def _check_function(self, func: ast.Name, count: int) -> None:
        ident, pos = func.id, self.pos(func)
        if pos in self.durations and set(ident) == {"_"}:
            self.problem("a duration cannot be called like a function", pos, code="expr-syntax")
            return
        if ident.startswith("_"):
            self.problem(f"private/dunder names are not allowed ('{ident}')", pos)
            return
        fn = self.functions.get(ident)
        if fn is None:
            if ident in self.scope.names:
                self.problem(f"'{ident}' is a field, not a function", pos,
                             code="expr-unknown-function")
                return
            hint = self.functions.hint(ident) or _FUNCTION_HABITS.get(ident.lower())
            self.problem(f"unknown function '{ident}'", pos, code="expr-unknown-function",
                         hint=hint)
            return
        self.result.functions_used.add(getattr(fn, "name", ident))
        low, high = getattr(fn, "min_args", 0), getattr(fn, "max_args", None)
        if count < low or (high is not None and count > high):
            self.problem(f"function '{ident}' takes {arity_text(low, high)}, got {count}", pos,
                         code="expr-arity")

    def _check_text_argument(self, call: ast.Call) -> None:
        """`date("2026-13-01")`, `time("25:00")`, `duration("2 dayz")`: text that names no
        value would fail each time the expression runs; it is a load error instead."""
        name = call.func.id  # type: ignore[attr-defined]
        reader = TEXT_READERS.get(name)
        if reader is None or len(call.args) != 1 or name not in self.functions:
            return
        found, value = _literal(call.args[0])
        if not found or not isinstance(value, str):
            return
        try:
            reader(value)
        except EvalFailure as exc:
            self.problem(f"{name}() cannot read '{value[:40]}'", self.pos(call.args[0]),
                         code="expr-bad-literal", hint=str(exc))

    def _check_method(self, func: ast.Attribute, count: int) -> None:
        pos = self.attr_pos(func)
        why = attribute_problem(func.attr)
        if why is not None:
            self.problem(why, pos)
            return
        method = METHODS.get(func.attr)
        if method is None:
            hint = ("to look for text inside a field, write 'text' in field" if func.attr in ("contains", "find", "index")
                    else "allowed methods: " + ", ".join(sorted(METHODS)))
            self.problem(f"the method '.{func.attr}()' is not allowed", pos, hint=hint)
            return
        if not method.min_args <= count <= method.max_args:
            self.problem(f"method '.{func.attr}()' takes "
                         f"{arity_text(method.min_args, method.max_args)}, got {count}", pos,
                         code="expr-arity")
