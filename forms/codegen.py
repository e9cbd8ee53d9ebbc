"""Generated validators: the first pass of `CompiledForm.validate` written as one Python function
per form, compiled once when the bundle loads (issue 4, point 8: >= 100,000 records/s).

Why: the interpreter loop (`CompiledForm._first_pass`) spends about half its time on its own
bookkeeping (unpacking each field's step, testing emptiness by class, reading the required flag)
and half in the field types' parsers. The generated function has every per-field flag decided
when it is written, so a submission runs straight-line code; and for the common values of the
hot field types (a trimmed text that fits, an exact option, a number within its bounds) it
inlines the test the type offers through `FieldType.fast_check` instead of calling the parser.
Any other value takes the same steps as the interpreter, so the fast tests only ever shorten a
path, never decide an outcome the parser would decide differently.

It serves the common call only: a new record whose keys are all fields of the form. Updates,
`editable` limits and unknown keys go through the interpreter, which stays the reference; the
tests (tests/forms/test_generated_validator.py) compare the two on randomised input.

Reading it: `CompiledForm.validator_source` (tracebacks show its lines too) has one block per
stored field, in form order, headed by the field's name and type:

    # 'amount': 'number'
    raw = get('amount')
    if raw.__class__ is float and 0 <= raw <= 100000:   # the type's fast check, if it has one
        v14 = raw
    elif (not raw if raw.__class__ is str else ...):     # missing, None, "", [] or {}
        v14 = None
        recheck.append(required_14)                      # required fields only
    else:                                                # any other value: the field's parser
        try:
            v14 = parse_14(raw)
        ...

Field names are only ever string literals (`repr`); names ending in `_N` are the constants of
field N (its parser, option set, compiled pattern), held in the function's globals.
"""

from __future__ import annotations

import linecache
import logging
import math
from datetime import date, datetime, time
from decimal import Decimal
from string import Formatter
from typing import TYPE_CHECKING, Any, Callable, Mapping

from forms.fields.base import FastCheck, FieldType
from forms.messages import FieldInvalid

if TYPE_CHECKING:
    from forms.compile import FieldPlan

log = logging.getLogger(__name__)

# Shared with the interpreter in forms/compile.py, so both read the same emptiness shortcuts.
SCALARS = frozenset({int, float, bool, Decimal, date, datetime, time})
"""Exact classes that never equal None, "", [] or {}: the base emptiness test is False for them."""
EMPTY_LIST: list[Any] = []  # compared against, never changed: no new list per field
EMPTY_DICT: dict[str, Any] = {}

Recheck = tuple[str, Callable[[Any], bool], bool]
"""A required field to test once every field is parsed: its name, `is_empty`, `custom_empty`."""
FirstPass = Callable[[Mapping[str, Any], str], tuple[dict[str, Any], dict[str, list[str]], list[Recheck]]]
"""(data, locale) -> (values, errors, recheck), as `CompiledForm._first_pass` for a new record."""


def generate_validator(plans: tuple[FieldPlan, ...], form: str) -> tuple[FirstPass, str]:
    """The first pass of a new record's validation for these fields, and its source."""
    namespace: dict[str, Any] = {"FieldInvalid": FieldInvalid, "SCALARS": SCALARS, "EMPTY_LIST": EMPTY_LIST,
                                 "EMPTY_DICT": EMPTY_DICT, "add_errors": add_errors}
    lines = ["def first_pass(data, locale):", "    get = data.get", "    errors = {}", "    recheck = []"]
    for index, plan in enumerate(plans):
        lines += _field_block(index, plan, namespace)
    values = ", ".join(f"{plan.name!r}: v{index}" for index, plan in enumerate(plans))
    lines.append(f"    return {{{values}}}, errors, recheck")
    source = "\n".join(lines) + "\n"
    filename = f"<docket validator of form {form!r}>"
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace["first_pass"], source


def add_errors(errors: dict[str, list[str]], messages: Mapping[str, str]) -> None:
    """Add a field's messages (its own and its sub-table cells') as the interpreter does."""
    for key, text in messages.items():
        errors.setdefault(key, []).append(text)


def _field_block(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> list[str]:
    """One field's lines: the interpreter's steps for this field with its flags decided."""
    name, var = repr(plan.name), f"v{index}"
    namespace[f"parse_{index}"] = plan.parse
    lines = [f"    # {name}: {plan.ftype.name!r}", f"    raw = get({name})"]  # missing is None: same steps
    keyword = "if"
    fast = _fast_check(index, plan, namespace)
    if fast is not None:
        test, value = fast
        lines += [f"    if {test}:", f"        {var} = {value}"]
        keyword = "elif"
    if plan.custom_empty:
        namespace[f"is_empty_{index}"] = plan.is_empty
        empty = f"raw is None or raw == '' or is_empty_{index}(raw)"
    else:  # the base test, with the interpreter's shortcuts for a str and a scalar
        empty = ("(not raw if raw.__class__ is str else raw.__class__ not in SCALARS"
                 " and (raw is None or raw == '' or raw == EMPTY_LIST or raw == EMPTY_DICT))")
    recheck = []
    if plan.required:
        namespace[f"required_{index}"] = (plan.name, plan.is_empty, plan.custom_empty)
        recheck = [f"recheck.append(required_{index})"]
    lines += [f"    {keyword} {empty}:", f"        {var} = None", *("        " + r for r in recheck),
              "    else:", "        try:", f"            {var} = parse_{index}(raw)",
              "        except FieldInvalid as exc:", f"            {var} = None",
              # the first pass meets each field once: a plain problem is the field's first message
              f"            if exc.parts: add_errors(errors, exc.messages({name}, locale))",
              f"            else: errors[{name}] = [exc.text(locale)]",
              *("            " + r for r in recheck)]
    if plan.required and plan.custom_empty:
        lines += ["        else:", "            " + recheck[0]]
    elif plan.required:  # a plainly present value (a scalar, a non-empty str) needs no recheck
        lines += ["        else:",
                  f"            if not ({var}.__class__ in SCALARS or ({var}.__class__ is str and {var})):",
                  "                " + recheck[0]]
    return lines


def _fast_check(index: int, plan: FieldPlan, namespace: dict[str, Any]) -> tuple[str, str] | None:
    """The field type's fast check as (test, value) source, or None: always the parser."""
    cls = type(plan.ftype)
    owner = _owner(cls, "fast_check")
    if owner is FieldType:
        return None
    if not all(issubclass(owner, _owner(cls, hook)) for hook in ("parse", "parser", "is_empty")):
        return None  # a subclass changed what the check was written for
    try:
        fast = plan.ftype.fast_check(plan.spec)
        if fast is None:
            return None
        constants: dict[str, Any] = {}
        test, value = (_render(text, fast, index, constants) for text in (fast.test, fast.value))
        for text in (test, value):
            compile(text, "<fast check>", "eval")
    except Exception:  # noqa: BLE001 - a plugin's broken hook costs speed, not the bundle load
        log.warning("fast check of field type %r ignored for field %r", plan.ftype.name, plan.name,
                    exc_info=True)
        return None
    namespace.update(constants)
    return test, value


def _render(template: str, fast: FastCheck, index: int, constants: dict[str, Any]) -> str:
    """`template` with each `{key}` written as a literal, or as the name of a new constant."""
    text = {}
    for _, key, _, _ in Formatter().parse(template):
        if key is None:
            continue
        if not key.isidentifier():
            raise ValueError(f"fast check placeholder {key!r} is not a plain name")
        literal = _literal(fast.names[key])
        if literal is None:
            literal = f"{key}_{index}"
            constants[literal] = fast.names[key]
        text[key] = literal
    return template.format_map(text)


def _literal(value: Any) -> str | None:
    """Python source for a plain constant (reads better, loads faster), or None."""
    if value is None or value.__class__ in (bool, int, str) or (value.__class__ is float and math.isfinite(value)):
        text = repr(value)
        return f"({text})" if text.startswith("-") else text
    return None


def _owner(cls: type, attribute: str) -> type:
    """The class in `cls`'s MRO that defines `attribute`."""
    return next(klass for klass in cls.__mro__ if attribute in vars(klass))
