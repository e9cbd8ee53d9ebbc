"""`webhooks/*.yaml`: inbound webhooks that turn another system's JSON into a form's record.

An e-mail gateway, the 400 hotline's call-centre system or a partner's ticketing tool posts
its own JSON; the webhook definition says which form it feeds and where each field's value is
found in the payload:

    webhook: hotline
    form: complaint
    secret_env: DOCKET_HOTLINE_SECRET     # the shared secret, from the environment
    external_id: $.call.id                # the sender's id: a repeated delivery is answered once
    values:
      contact_phone: $.caller.phone       # a path into the payload
      description: payload.summary + " (" + payload.call.id + ")"   # an expression over `payload`
      channel: {value: hotline}           # a constant

A string starting with `$` is a path (`$.a.b`, `$.items[0].name`, `$['key with space']`); any
other string is an expression over `payload` (the whole JSON body), checked at load; numbers,
booleans and `{value: ...}` are constants; `{path: ..., default: ...}` gives a path a fallback
(`path` may list several paths, tried in order). Constants and defaults are checked at load
against the field, as a submitted value is (`default: norml` for a select is an error there).
In expressions a key the payload lacks reads as empty, so `coalesce(payload.ticket.note, "")`
works whether or not the sender sent it.
The HTTP side (signature, timestamp, idempotency) is web/webhooks.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from engine.durations import parse_duration
from engine.errors import ExpressionError
from engine.expr import EvalContext
from engine.kinds import BuildContext
from engine.schema import LABEL_SCHEMA, NAME_PATTERN
from engine.types import Label, Span, label_text
from engine.yamlsource import Document
from forms.kind import check_written_value

DEFAULT_TOLERANCE = 300
"""Seconds a signed timestamp may differ from the server's clock (replays older are refused)."""
MAX_TOLERANCE = 3600
_PATH_TOKEN = re.compile(r"""\.([A-Za-z_][A-Za-z0-9_\-]*)|\[(\d{1,6})\]|\[['"]([^'"\]]{1,200})['"]\]""")
PAYLOAD = "payload"

_VALUE_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "description": "a path ($.a.b) or an expression over `payload`"},
        {"type": ["number", "boolean"], "description": "a constant"},
        {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 2,
         "properties": {"path": {"anyOf": [{"type": "string", "pattern": r"^\$"},
                                           {"type": "array", "minItems": 1, "maxItems": 10,
                                            "items": {"type": "string", "pattern": r"^\$"}}],
                                 "description": "a path, or several tried in order"},
                        "expr": {"type": "string"},
                        "value": {"description": "a constant"},
                        "default": {"description": "the value when the path finds nothing"}}},
    ],
}


class PathError(ValueError):
    """A path that is not written as `$.a.b[0]['c']`."""


def parse_path(text: str) -> tuple[str | int, ...]:
    """`$.call.id` -> ("call", "id"); `$.items[0]['x y']` -> ("items", 0, "x y")."""
    text = text.strip()
    if not text.startswith("$"):
        raise PathError("a path starts with $")
    parts: list[str | int] = []
    pos = 1
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if match is None:
            raise PathError(f"cannot read the path at '{text[pos:pos + 20]}': write $.a.b, $.a[0] or $['a b']")
        name, index, quoted = match.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = match.end()
    return tuple(parts)


def follow(payload: Any, parts: tuple[str | int, ...]) -> Any:
    """The value at a parsed path, or None when any step is missing."""
    value = payload
    for part in parts:
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                return None
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
    return value


@dataclass(frozen=True)
class Mapping_:
    """Where one field's value comes from: a path (with a default), an expression, a constant."""

    kind: str  # "path" | "expr" | "value"
    paths: tuple[tuple[str | int, ...], ...] = ()
    """Paths tried in order: the first that finds a value wins."""
    expression: Any = None
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        """This mapping as JSON data (paths and constants only: an expression is not data)."""
        if self.kind == "expr":
            raise ValueError("an expression mapping has no JSON form")
        if self.kind == "path":
            return {"paths": [list(p) for p in self.paths], "default": self.value}
        return {"value": self.value}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Mapping_":
        """The mapping `to_json` wrote."""
        if "paths" in data:
            return cls("path", paths=tuple(tuple(p) for p in data["paths"]), value=data.get("default"))
        return cls("value", value=data.get("value"))


@dataclass(frozen=True)
class WebhookSpec:
    """An inbound webhook: the form it feeds and how the payload maps to its fields."""

    name: str
    label: Label
    form: str
    secret_env: str
    span: Span
    values: Mapping[str, Mapping_] = field(default_factory=dict)
    external_id: tuple[str | int, ...] | None = None
    tolerance: int = DEFAULT_TOLERANCE
    actor: str | None = None

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)


class MappingFailed(Exception):
    """The payload could not be mapped (an expression failed on it): errors per field."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {', '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class _Lenient(dict):  # type: ignore[type-arg]
    """A JSON object in which a missing key reads as empty (None) in expressions, so
    `coalesce(payload.ticket.note, "")` works whether or not the sender included the key."""

    def __missing__(self, key: Any) -> None:
        return None


def lenient(value: Any) -> Any:
    """`value` with every JSON object turned into a `_Lenient` one."""
    if isinstance(value, dict):
        return _Lenient((k, lenient(v)) for k, v in value.items())
    if isinstance(value, list):
        return [lenient(v) for v in value]
    return value


def map_payload(spec: WebhookSpec, payload: Any, ctx: EvalContext | None = None) -> tuple[dict[str, Any], str | None]:
    """The form values and the external id (None if the webhook has none) of a payload."""
    values = map_values(spec.values, payload, ctx)
    external = None
    if spec.external_id is not None:
        found = follow(payload, spec.external_id)
        if isinstance(found, (str, int)) and not isinstance(found, bool) and str(found).strip():
            external = str(found).strip()[:120]  # the idempotency key holds 200 characters
    return values, external


def map_values(sources: Mapping[str, Mapping_], payload: Any,
               ctx: EvalContext | None = None) -> dict[str, Any]:
    """Each field's value found in `payload` by its mapping; MappingFailed when an expression
    fails on it."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    names: dict[str, Any] | None = None
    for name, source in sources.items():
        if source.kind == "value":
            values[name] = source.value
        elif source.kind == "path":
            found = next((v for v in (follow(payload, p) for p in source.paths) if v is not None), None)
            values[name] = source.value if found is None else found
        else:
            if names is None:
                try:
                    names = {PAYLOAD: lenient(payload)}
                except RecursionError:
                    raise MappingFailed({name: ["the payload is nested too deeply"]}) from None
            try:
                values[name] = source.expression.evaluate(names, ctx)
            except ExpressionError as exc:
                errors[name] = [f"the mapping failed on this payload: {exc.message}"]
    if errors:
        raise MappingFailed(errors)
    return values


def check_mappable(doc: Document, path: tuple[Any, ...], name: str, form: Any, ctx: BuildContext) -> bool:
    """Whether field `name` of `form` may be written from another system's JSON (an error at
    `path` when it is unknown or set by the system)."""
    spec = form.fields.get(name)
    ftype = ctx.registry.field_types.get(spec.type) if spec is not None else None
    if spec is None:
        ctx.unknown(doc, path, "field", name, form.fields, at_key=True)
        return False
    if ftype is None or not ftype.stores_value or getattr(ftype, "read_only", False) \
            or spec.computed is not None:
        ctx.error(doc, path, f"'{name}' is set by the system and cannot be mapped",
                  code="invalid-mapping", at_key=True)
        return False
    return True


def check_constant(doc: Document, path: tuple[Any, ...], raw: Any, source: Mapping_, name: str,
                   form: Any, ctx: BuildContext) -> bool:
    """Whether the constant or the `default:` written at `path` for field `name` is a value the
    field accepts (an error at the value when not): checked at load, not when a delivery
    arrives. The field must be mappable (`check_mappable`)."""
    if source.kind == "expr" or source.value is None:
        return True
    if source.kind == "value":
        at, noun = (path + ("value",) if isinstance(raw, dict) else path), "constant"
    else:
        at, noun = path + ("default",), "default"
    spec = form.fields[name]
    return check_written_value(source.value, ctx.registry.field_types.get(spec.type), spec, ctx, doc, at,
                               noun=noun, subject=f"field '{name}'", code="invalid-mapping")


def build_source(doc: Document, path: tuple[Any, ...], raw: Any, ctx: BuildContext, *,
                 expressions: bool = True) -> Mapping_ | None:
    """Where one field's value comes from, as written at `path` (errors there when it cannot be
    read). Without `expressions`, only paths and constants (mappings kept as data)."""
    if isinstance(raw, dict):
        if "value" in raw:
            if len(raw) > 1:
                ctx.error(doc, path, "a constant is written {value: ...} alone", code="invalid-mapping")
                return None
            return Mapping_("value", value=raw["value"])
        if "path" in raw:
            extra = set(raw) - {"path", "default"}
            if extra:
                ctx.error(doc, path, f"'{sorted(extra)[0]}' does not go with 'path'", code="invalid-mapping")
                return None
            return _path_source(doc, path + ("path",), raw["path"], raw.get("default"), ctx)
        if "expr" in raw and len(raw) == 1 and expressions:
            return _expression_source(doc, path + ("expr",), ctx)
        ctx.error(doc, path, "write {path: $.a.b, default: x}" + (", {expr: ...}" if expressions else "")
                  + " or {value: x}", code="invalid-mapping")
        return None
    if isinstance(raw, str):
        if raw.strip().startswith("$"):
            return _path_source(doc, path, raw, None, ctx)
        if not expressions:
            ctx.error(doc, path, f"'{raw}' is not a path: write $.a.b (a path into the answer) or "
                      "{value: ...} (a constant)", code="invalid-path")
            return None
        return _expression_source(doc, path, ctx)
    return Mapping_("value", value=raw)


def _path_source(doc: Document, at: tuple[Any, ...], text: str | list[str], default: Any,
                 ctx: BuildContext) -> Mapping_ | None:
    texts = text if isinstance(text, list) else [text]
    paths = []
    for i, one in enumerate(texts):
        try:
            paths.append(parse_path(one))
        except PathError as exc:
            ctx.error(doc, at + ((i,) if isinstance(text, list) else ()), str(exc), code="invalid-path")
            return None
    return Mapping_("path", paths=tuple(paths), value=default)


def _expression_source(doc: Document, at: tuple[Any, ...], ctx: BuildContext) -> Mapping_ | None:
    compiled = ctx.expression(doc, at, {PAYLOAD})
    return None if compiled is None else Mapping_("expr", expression=compiled)


class WebhookKind:
    """`webhook: <name>` in `webhooks/`: an inbound mapping of an external payload to a form."""

    name = "webhook"
    aliases: tuple[str, ...] = ()
    folder = "webhooks"
    key = "webhook"
    order = 50
    dispatch = ()
    options_schema: dict[str, Any] = {
        "type": "object",
        "required": ["webhook", "form", "secret_env", "values"],
        "additionalProperties": False,
        "properties": {
            "webhook": {"type": "string", "pattern": NAME_PATTERN},
            "label": LABEL_SCHEMA,
            "description": LABEL_SCHEMA,
            "form": {"type": "string", "description": "the form each delivery creates a record of"},
            "secret_env": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]{0,100}$",
                           "description": "environment variable holding the shared HMAC secret"},
            "tolerance": {"type": ["string", "integer"],
                          "description": "how far the signed timestamp may be from now (default 5m, at most 1h)"},
            "external_id": {"type": "string", "pattern": r"^\$",
                            "description": "path of the sender's id: a repeated delivery is answered once"},
            "actor": {"type": "string", "maxLength": 150,
                      "description": "recorded as the records' creator (default: none)"},
            "values": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": NAME_PATTERN},
                       "additionalProperties": _VALUE_SCHEMA,
                       "description": "form field -> where its value comes from in the payload"},
        },
    }

    def build(self, doc: Document, ctx: BuildContext) -> WebhookSpec | None:
        data = doc.data
        forms = ctx.definitions.get("form", {})
        form = forms.get(data["form"])
        if form is None:
            ctx.unknown(doc, ("form",), "form", data["form"], forms)
        values: dict[str, Mapping_] = {}
        ok = True
        for name, raw in data["values"].items():
            path = ("values", name)
            mappable = form is not None and check_mappable(doc, path, name, form, ctx)
            if form is not None and not mappable:
                ok = False
            built = build_source(doc, path, raw, ctx)
            if built is None:
                ok = False
            else:
                values[name] = built
                if mappable and not check_constant(doc, path, raw, built, name, form, ctx):
                    ok = False
        external = None
        if "external_id" in data:
            try:
                external = parse_path(data["external_id"])
            except PathError as exc:
                ctx.error(doc, ("external_id",), str(exc), code="invalid-path")
                ok = False
        tolerance = DEFAULT_TOLERANCE
        if "tolerance" in data:
            tolerance = self._tolerance(doc, data["tolerance"], ctx)
            ok = ok and tolerance is not None
        if not ok or form is None or tolerance is None:
            return None
        return WebhookSpec(name=data["webhook"], label=data.get("label", data["webhook"]), form=data["form"],
                           secret_env=data["secret_env"], span=doc.span(()),
                           values=MappingProxyType(values), external_id=external, tolerance=tolerance,
                           actor=data.get("actor"))

    @staticmethod
    def _tolerance(doc: Document, raw: Any, ctx: BuildContext) -> int | None:
        try:
            seconds = raw if isinstance(raw, int) and not isinstance(raw, bool) else \
                int(parse_duration(str(raw)).to_timedelta().total_seconds())
        except ValueError as exc:
            ctx.error(doc, ("tolerance",), f"not a wall-clock duration: {exc}", code="invalid-duration",
                      hint="e.g. 5m or 300 (seconds)")
            return None
        if not 1 <= seconds <= MAX_TOLERANCE:
            ctx.error(doc, ("tolerance",), f"the tolerance must be between 1 second and {MAX_TOLERANCE // 60} minutes",
                      code="invalid-duration")
            return None
        return seconds

    def check(self, bundle: Any, ctx: BuildContext) -> None:
        """Everything is checked while building (the form is built before webhooks)."""
        return None


__all__ = ["DEFAULT_TOLERANCE", "MappingFailed", "Mapping_", "PathError", "WebhookKind", "WebhookSpec",
           "build_source", "check_constant", "check_mappable", "follow", "lenient", "map_payload", "map_values",
           "parse_path"]
