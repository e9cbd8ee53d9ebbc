"""Cheap reads of an ASGI scope for code that runs on every request (middlewares, the API's
submission path).

Starlette's `request.headers.get(name)` answers a missing header by raising and catching a
KeyError inside `Mapping.get`, `request.state.x` a missing attribute by raising AttributeError,
and `request.query_params` parses the query string into a multi-dict; on an API submission
that asks for a dozen absent headers these cost more than the checks themselves (py-spy).
These helpers answer the same questions from the scope with one loop and no exception.
"""

from __future__ import annotations

from typing import Any, Mapping


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes, as ASGI servers send them), decoded
    as latin-1 exactly as `request.headers.get(name)` does; None when absent."""
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


def state_value(scope: Mapping[str, Any], key: str) -> Any:
    """`getattr(request.state, key, None)` without building a `State` or raising."""
    state = scope.get("state")
    return state.get(key) if state is not None else None


__all__ = ["header", "state_value"]
