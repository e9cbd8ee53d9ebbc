"""Docket's expression language: Python-like conditions and formulas, checked at load.

One language everywhere (`visible_if`, computed fields, gateway conditions, rule conditions,
report filters). It follows simpleeval's model (a Python-expression subset parsed with `ast`),
but every expression is checked once at load against an allow-list and compiled to closures, so
nothing unsafe is ever evaluated and evaluation is cheap:

* `lexer`: size caps before parsing; duration literals (`24h`, `2 workdays`) as placeholders
* `checker`: the AST allow-list; every problem as a positioned `Diagnostic`
* `compiler`: the checked AST as a tree of closures
* `safe_ops`, `methods`: bounded operators and the read-only method allow-list
* `functions`: built-in functions, registered like a plugin's
* `reference`: simpleeval, restricted, to cross-check values in tests
"""

from engine.expr.context import EvalContext, Function, Members, Names, Scope
from engine.expr.expression import Expression, check_expression, compile_expression
from engine.expr.functions import BUILTINS, register
from engine.expr.reference import reference_evaluate

__all__ = [
    "BUILTINS", "EvalContext", "Expression", "Function", "Members", "Names", "Scope", "check_expression",
    "compile_expression", "reference_evaluate", "register",
]
