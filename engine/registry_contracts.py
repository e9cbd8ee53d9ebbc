"""What the engines call on a registered type, checked when a plugin registers it.

A plugin mistake (a class registered instead of an instance, `aliases = ("old_name")` which is a
string, a missing method, a method taking other arguments than the engine passes, an
`options_schema` that is not JSON Schema or misspells a keyword) used to surface as a traceback in the middle of
loading a bundle, far from its cause. `contract_problems` finds these at registration, so
`Registry.use` reports them as one line naming the plugin (docs/plugins.md, "What Docket checks
when a plugin registers").

The contracts name methods and attributes only: the engine layer must not import the flow,
form, rule or report engines that define the base classes.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from engine.errors import did_you_mean

__all__ = ["CONTRACTS", "Contract", "RESERVED", "contract_problems", "word_problems"]

WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""A name or alias: a word analysts can write in YAML and expressions can call."""


@dataclass(frozen=True)
class Contract:
    """The members the engines use on every type of one kind.

    `methods` maps a method to the arguments the engines pass to it (positionally), so a
    plugin's method that cannot take them is reported before anything calls it. `base` names
    what a plugin should derive from (or build), for the error message.
    """

    base: str
    methods: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()
    merged_into: str | None = None
    """What the type's `options_schema` describes the keys of ("node", "field"...) when Docket
    merges it with the common keys and closes it (engine.schema.item_schema); None when it is
    the complete schema (a channel's settings)."""
    optional: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Hooks the engines call only when a type has them (no base class defines them): their
    arguments are checked where they exist."""
    extra: Callable[[Any], str | None] | None = None
    """A further check of the whole type (the arity of a function); returns a problem or None."""


def _function_arity_problem(function: Any) -> str | None:
    """An `engine.expr.Function` whose `fn` cannot take `min_args`..`max_args` arguments."""
    fn, low, high = function.fn, function.min_args, function.max_args
    if not callable(fn):
        return "fn is not callable"
    if not isinstance(low, int) or not (high is None or isinstance(high, int) and high >= low):
        return f"min_args {low!r} and max_args {high!r} are not a range of argument counts"
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # some C functions have no signature: trust them
        return None
    context = 1 if function.needs_context else 0
    for count in dict.fromkeys((low, low if high is None else high)):
        try:
            signature.bind(*range(count + context))
        except TypeError:
            called = f"fn(ctx, {count} argument(s))" if context else f"fn({count} argument(s))"
            return (f"fn{_parameters(signature)} cannot be called as {called}; "
                    f"min_args={low}, max_args={high}, needs_context={function.needs_context}")
    return None


CONTRACTS: dict[str, Contract] = {
    "node_types": Contract(
        "flows.nodes.base.NodeType", merged_into="node",
        methods={"targets": ("node",), "compile": ("node", "flow", "ctx", "doc", "path", "scope"),
                 "check_bundle": ("node", "flow", "bundle", "ctx", "doc", "path"), "enter": ("run",),
                 "check_completion": ("node", "outcome", "comment", "return_to"),
                 "on_task_completed": ("run", "task", "outcome")},
        attributes=("options_schema", "terminal", "needs_next")),
    "field_types": Contract(
        "forms.fields.base.FieldType", merged_into="field",
        methods={"load_choices": ("raw", "ctx", "doc", "path"), "prepare": ("spec", "ctx", "doc", "path"),
                 "check": ("spec", "ctx", "doc", "path"),
                 "check_bundle": ("spec", "bundle", "ctx", "doc", "path"), "is_empty": ("value",),
                 "parse": ("raw", "spec"), "parser": ("spec",), "fast_check": ("spec",),
                 "coerce": ("value", "spec"), "check_stored": ("conn", "value", "spec", "tables"),
                 "column_type": ("spec",), "to_json": ("value", "spec"), "from_db": ("value", "spec"),
                 "display": ("value", "spec", "locale")},
        attributes=("options_schema", "stores_value", "read_only", "in_subtable", "expression_option"),
        optional={"value_schema": ("spec",)}),
    "functions": Contract(
        "engine.expr.Function",
        attributes=("fn", "min_args", "max_args", "needs_context"),
        extra=_function_arity_problem),
    "actions": Contract(
        "engine.actions.BaseAction", merged_into="step",
        methods={"compile": ("options", "ctx", "doc", "path", "scope"), "run": ("act", "compiled")},
        attributes=("options_schema",)),
    "chart_types": Contract(
        "reports.charts.ChartType", merged_into="widget",
        methods={"check_shape": ("dimensions", "measures"), "spec": ("data",)},
        attributes=("options_schema", "mode", "default_width")),
    "channels": Contract(
        "engine.channels.ChannelType",
        methods={"send": ("message", "settings")},
        attributes=("options_schema",)),
    "sms_providers": Contract(
        "engine.channels.sms.SmsProvider",
        methods={"send": ("message", "to", "text", "settings", "allow")}),
    "definition_kinds": Contract(
        "engine.kinds.DefinitionKind",
        methods={"build": ("doc", "ctx"), "check": ("bundle", "ctx")},
        attributes=("folder", "key", "order", "options_schema", "dispatch")),
}
"""By `Registry` attribute."""

RESERVED: dict[str, str] = {
    "assignment_strategies": (
        "Docket does not use registry.assignment_strategies yet: the `strategy:` of an `assign` "
        "is one of claim, round_robin, least_loaded, built into the flow engine"),
}
"""Kinds that exist in the registry but that no engine reads yet: registering into one would
be silently ignored, so it is refused with the reason."""


def word_problems(name: Any, aliases: Any) -> list[str]:
    """Problems with a type's `name` and `aliases` (a plain string for aliases is the classic
    `("old_name")` mistake: it would register every letter of it as an alias)."""
    problems = []
    if not isinstance(name, str) or not name:
        problems.append("has no 'name' (the word written in YAML)")
    elif not WORD.fullmatch(name):
        problems.append(f"name '{name}' is not a word (letters, digits and _, not starting with a digit)")
    if isinstance(aliases, str):
        problems.append(f"aliases must be a tuple of names, not the string {aliases!r} "
                        f"(write ({aliases!r},) with a comma)")
    elif not isinstance(aliases, (tuple, list)):
        problems.append(f"aliases must be a tuple of names, not {type(aliases).__name__}")
    else:
        problems += [f"alias {alias!r} is not a word" for alias in aliases
                     if not isinstance(alias, str) or not WORD.fullmatch(alias)]
    return problems


def contract_problems(contract: Contract | None, plugin: Any) -> list[str]:
    """What is wrong with `plugin` as a type under `contract` (None: only the generic checks)."""
    if isinstance(plugin, type):
        return [f"{plugin.__name__} is a class: register an instance, {plugin.__name__}()"]
    problems = _schema_problems(getattr(plugin, "options_schema", None))
    if contract is None:
        return problems
    if contract.merged_into is not None and not problems:
        problems += _overruled(getattr(plugin, "options_schema", None), contract.merged_into)
    missing = [name for name in (*contract.methods, *contract.attributes) if not hasattr(plugin, name)]
    if missing:
        return problems + [f"lacks {', '.join(missing)} (see {contract.base})"]
    for method, arguments in contract.methods.items():
        if getattr(getattr(type(plugin), method, None), "__isabstractmethod__", False):
            # The base class's own placeholder, which only raises when the engine calls it.
            problems.append(f"does not define {method}({', '.join(arguments)}), which {contract.base} "
                            "leaves to each type")
        else:
            problems += _signature_problems(plugin, method, arguments)
    for method, arguments in contract.optional.items():
        if hasattr(plugin, method):
            problems += _signature_problems(plugin, method, arguments)
    if contract.extra is not None and not problems:
        problem = contract.extra(plugin)
        problems += [problem] if problem else []
    return problems


def _signature_problems(plugin: Any, method: str, arguments: tuple[str, ...]) -> list[str]:
    """The method cannot be called with the arguments the engines pass."""
    member = getattr(plugin, method)
    if not callable(member):
        return [f"{method} is not a method"]
    try:
        signature = inspect.signature(member)
    except (TypeError, ValueError):
        return []
    try:
        signature.bind(*arguments)
    except TypeError:
        return [f"{method}{_parameters(signature)} cannot be called as {method}({', '.join(arguments)})"]
    return []


def _overruled(schema: Any, what: str) -> list[str]:
    """What Docket's merge (engine.schema.item_schema) would overrule in a type's options schema
    without a word: a `type` other than object and any `additionalProperties`."""
    if not isinstance(schema, Mapping):
        return []
    problems = []
    if schema.get("type", "object") != "object":
        problems.append(f"options_schema describes the keys of the {what}'s YAML mapping: its type is "
                        f"object (or left out), not {schema['type']!r}")
    if schema.get("additionalProperties", False) is not False:
        problems.append("options_schema sets additionalProperties, which Docket sets to false on every "
                        "type's options (a misspelt key is reported): list each key under properties "
                        "(or patternProperties)")
    return problems


def _parameters(signature: inspect.Signature) -> str:
    """`(node, ctx)`: the parameter names only (annotations would bury them)."""
    marks = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    return "(" + ", ".join(marks.get(p.kind, "") + p.name for p in signature.parameters.values()) + ")"


def _schema_problems(schema: Any) -> list[str]:
    """`options_schema` must be a JSON Schema object; a wrong one would fail every bundle load."""
    if schema is None:
        return []
    if not isinstance(schema, Mapping):
        return [f"options_schema must be a JSON Schema object, not {type(schema).__name__}"]
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        return [f"options_schema is not a valid JSON Schema at {where}: {exc.message}"]
    return [f"options_schema has an unknown keyword at {where}"
            for where in _unknown_keywords(schema, ())]


# Draft 2020-12's keywords beyond the validating ones jsonschema lists: annotations and the core
# vocabulary. Any other key is valid JSON Schema but does nothing, and in a type's options it is
# nearly always a typo: `propertes` accepts every option, `"tpye": "number"` every value.
_ANNOTATIONS = frozenset({
    "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "$comment", "$defs", "definitions",
    "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly",
    "contentMediaType", "contentEncoding", "contentSchema"})
_ONE_SCHEMA = frozenset({"additionalProperties", "items", "contains", "not", "if", "then", "else",
                         "propertyNames", "unevaluatedItems", "unevaluatedProperties", "contentSchema"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "$defs", "definitions"})


def _keywords() -> frozenset[str]:
    from jsonschema import Draft202012Validator

    return frozenset(Draft202012Validator.VALIDATORS) | _ANNOTATIONS | {"then", "else"}


def _unknown_keywords(schema: Any, path: tuple[str, ...]) -> Iterator[str]:
    """`path/key (did you mean 'x'?)` for every key of `schema` and of its subschemas that is no
    JSON Schema keyword; `x-` keys are extensions, left alone."""
    if not isinstance(schema, Mapping):
        return
    known = _keywords()
    for key, value in schema.items():
        where = "/".join((*path, str(key)))
        if key not in known and not str(key).startswith("x-"):
            close = did_you_mean(str(key), known)
            yield f"{where}" + (f" ({close})" if close else "")
        elif key in _ONE_SCHEMA:
            yield from _unknown_keywords(value, (*path, key))
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            for i, item in enumerate(value):
                yield from _unknown_keywords(item, (*path, key, str(i)))
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            for name, item in value.items():
                yield from _unknown_keywords(item, (*path, key, str(name)))
