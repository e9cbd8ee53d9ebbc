"""The only methods an expression may call: read-only, with output no larger than the input.

Python's own string and container methods include ones that mutate (`append`, `clear`, `pop`),
ones that allocate without bound (`ljust`, `center`, `zfill`, `expandtabs`, `join`) and ones that
reach object internals (`format`). Instead of a deny-list, Docket allows this short list and
calls each through an explicit implementation after checking the receiver's type, so no
attribute of a runtime value is ever looked up by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from engine.expr.context import EvalFailure
from engine.expr.safe_ops import kind, show

__all__ = ["Method", "METHODS", "call_method"]


@dataclass(frozen=True)
class Method:
    """An allowed method: the receiver type it works on, its arity and its implementation."""

    name: str
    receiver: type | tuple[type, ...]
    receiver_text: str
    min_args: int
    max_args: int
    impl: Callable[..., Any]


def _strip_chars(chars: Any) -> Any:
    if chars is not None and not isinstance(chars, str):
        raise EvalFailure("the characters to strip must be text")
    return chars


def _prefixes(prefix: Any) -> Any:
    if isinstance(prefix, str):
        return prefix
    if isinstance(prefix, (tuple, list)) and all(isinstance(p, str) for p in prefix):
        return tuple(prefix)
    raise EvalFailure("startswith/endswith need text (or a list of texts) to look for")


def _get(mapping: Mapping[Any, Any], key: Any, default: Any = None) -> Any:
    try:
        return mapping.get(key, default)
    except TypeError:
        raise EvalFailure(f"{show(key)} cannot be used as a key") from None


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("lower", str, "text", 0, 0, str.lower),
    Method("upper", str, "text", 0, 0, str.upper),
    Method("title", str, "text", 0, 0, str.title),
    Method("strip", str, "text", 0, 1, lambda s, c=None: s.strip(_strip_chars(c))),
    Method("lstrip", str, "text", 0, 1, lambda s, c=None: s.lstrip(_strip_chars(c))),
    Method("rstrip", str, "text", 0, 1, lambda s, c=None: s.rstrip(_strip_chars(c))),
    Method("startswith", str, "text", 1, 1, lambda s, p: s.startswith(_prefixes(p))),
    Method("endswith", str, "text", 1, 1, lambda s, p: s.endswith(_prefixes(p))),
    Method("get", Mapping, "a record or mapping", 1, 2, _get),
)}
"""Allowed methods by name."""


def call_method(method: Method, receiver: Any, args: list[Any]) -> Any:
    """Call an allowed method after checking the receiver's type."""
    if not isinstance(receiver, method.receiver):
        raise EvalFailure(f"'.{method.name}()' works on {method.receiver_text}, "
                          f"not on {kind(receiver)}")
    return method.impl(receiver, *args)
