"""What a plugin hands back at run time is checked where Docket takes it: a wrong value is named
as that plugin's bug at the place it was used, instead of being stored as `<object object at
0x...>` or failing later, far from its cause, as a fault of Docket's (docs/plugins.md, "When a
plugin is broken")."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import ExpressionError
from engine.expr import Function, Scope, compile_expression
from engine.registry import Registry
from web.system import build_registry

SOURCE = "acme-docket"


def registry_with(*functions: Function) -> Registry:
    """Docket's own types plus the given plugin functions."""
    registry = build_registry(plugins=False)
    for function in functions:
        registry.functions.add(function, source=SOURCE)
    return registry


def evaluate(source: str, registry: Registry, **names: Any) -> Any:
    """The value of `source` over `names`, with the registry's functions."""
    expression = compile_expression(source, scope=Scope(frozenset(names)), functions=registry.functions)
    return expression.evaluate(names)


def test_a_plugin_function_returning_an_object_fails_the_expression_naming_the_plugin() -> None:
    registry = registry_with(Function("handle", lambda value: object(), 1, 1))
    with pytest.raises(ExpressionError) as info:
        evaluate("handle(x)", registry, x="a")
    assert ("cannot evaluate `handle(x)`: handle() (from acme-docket) returned a value of type object"
            in info.value.message)
    assert "a bug in that plugin" in info.value.message


def test_an_object_inside_a_plugin_functions_list_is_found_too() -> None:
    registry = registry_with(Function("pair", lambda value: [value, {"at": object()}], 1, 1))
    with pytest.raises(ExpressionError, match=r"pair\(\) \(from acme-docket\) returned a value of type object"):
        evaluate("pair(x)", registry, x="a")


def test_a_plugin_function_needing_the_context_is_checked_the_same_way() -> None:
    registry = registry_with(Function("when", lambda ctx, value: object(), 1, 1, needs_context=True))
    with pytest.raises(ExpressionError, match=r"when\(\) \(from acme-docket\) returned"):
        evaluate("when(x)", registry, x="a")


@pytest.mark.parametrize("result", [None, True, 3, 2.5, "text", ["a", 1, {"b": None}], ("a",)])
def test_plain_results_of_a_plugin_function_pass_unchanged(result: Any) -> None:
    registry = registry_with(Function("give", lambda value: result, 1, 1))
    assert evaluate("give(x)", registry, x="a") == result
