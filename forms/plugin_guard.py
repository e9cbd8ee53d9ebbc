"""A plugin's field type, guarded where the engines call it on every record: a bug in its code
refuses one value or shows it as stored, logged once with the traceback naming the plugin,
instead of failing the whole submission, the record's pages or its history (docs/plugins.md,
"When a plugin is broken"). Built-in types are trusted, and on the hot path: never wrapped.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Mapping

from engine.expr.safe_ops import foreign_value, kind
from forms.fields.base import FieldType
from forms.messages import FieldInvalid

__all__ = ["guarded_type", "plain_json"]

log = logging.getLogger(__name__)


def _refuse(*_: Any) -> Any:
    raise FieldInvalid("unreadable")


_HOOK_FALLBACKS: dict[str, tuple[str, str, Callable[..., Any]]] = {
    "parse": ("raw, spec", "the value is refused as one that could not be checked", _refuse),
    "to_json": ("value, spec", "the value is used as stored", lambda value, *_: plain_json(value)),
    "from_db": ("value, spec", "the value is used as stored", lambda value, *_: value),
    "display": ("value, spec, locale", "the value is shown as stored",
                lambda value, *_: "" if value is None else str(value)),
    "coerce": ("value, spec", "the computed field is left empty", lambda *_: None),
    "check_stored": ("conn, value, spec, tables", "the value is refused as one that could not be checked",
                     _refuse),
}
"""The hooks of a plugin's field type that run on every record written, read or shown: (their
arguments, what is done when one raises, the fallback). A bug there would otherwise refuse every
submission of the form (to_json shapes the history entry of each one, even of an empty field;
check_stored and coerce run inside it), make its records unreadable, or fail every page, lookup
and message that shows the field."""


def guarded_type(ftype: FieldType, field: str, source: str, *, column: bool = False) -> FieldType:
    """A copy of a plugin's field type whose overridden hooks of `_HOOK_FALLBACKS` fall back
    when they raise, logged once per field and hook with the traceback. `parse` only for a
    sub-table's `column`, whose cells call it directly: a form's fields go through the parser
    its generated validator guards (forms.compile)."""
    hooks = [hook for hook in _HOOK_FALLBACKS if getattr(type(ftype), hook, None) is not getattr(FieldType, hook)
             and (column or hook != "parse")]
    if not hooks:
        return ftype
    try:
        guarded = copy.copy(ftype)
        for hook in hooks:
            setattr(guarded, hook, _guarded_hook(getattr(ftype, hook), hook, ftype.name, field, source))
    except Exception:  # noqa: BLE001 - an object that cannot be copied (slots): left unguarded
        return ftype
    return guarded


def _guarded_hook(hook: Callable[..., Any], what: str, type_name: str, field: str,
                  source: str) -> Callable[..., Any]:
    """`hook`, answering its fallback where it raises anything but the user's FieldInvalid."""
    reported: list[bool] = []
    arguments, consequence, fallback = _HOOK_FALLBACKS[what]

    def guarded(*args: Any) -> Any:
        try:
            result = hook(*args)
        except FieldInvalid:
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's bug must not cost the record
            if not reported:
                reported.append(True)
                log.error("field type '%s' (from %s) failed in %s(%s) for field %s, so %s: %s: %s: "
                          "a bug in that plugin", type_name, source, what, arguments, field, consequence,
                          type(exc).__name__, exc, exc_info=True)
            return fallback(*args)
        if what == "parse" and foreign_value(result) is not None:  # it would fail the insert
            if not reported:
                reported.append(True)
                log.error("field type '%s' (from %s) returned %s from parse(%s) for field %s, not a value a "
                          "record can hold, so %s: a bug in that plugin", type_name, source,
                          kind(foreign_value(result)), arguments, field, consequence)
            return fallback(*args)
        foreign = _not_json(result) if what == "to_json" else None
        if foreign is not None:  # it would fail the history entry's JSON, so the submission
            if not reported:
                reported.append(True)
                log.error("field type '%s' (from %s) returned %s from to_json(%s) for field %s, which JSON "
                          "cannot carry, so it is written as text: a bug in that plugin", type_name, source,
                          type(foreign).__name__, arguments, field)
            return plain_json(result)
        return result
    return guarded


def _not_json(value: Any) -> Any:
    """The first part of `value` that JSON cannot carry, or None when it all can."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return None
    if isinstance(value, (list, tuple)):
        return next((found for found in map(_not_json, value) if found is not None), None)
    if isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            return next(key for key in value if not isinstance(key, str))
        return next((found for found in map(_not_json, value.values()) if found is not None), None)
    return value


def plain_json(value: Any) -> Any:
    """A stored value as JSON carries it: dates and times as ISO text, anything else as text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): plain_json(item) for key, item in value.items()}
    return value.isoformat() if hasattr(value, "isoformat") else str(value)
