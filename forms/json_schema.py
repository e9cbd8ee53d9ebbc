"""JSON Schema (Draft 2020-12) of a record's values, derived from the form's field types.

The API's OpenAPI document and clients use it to know what each form takes and gives back. A
field type may describe its own JSON value precisely with an optional hook

    def value_schema(self, spec: FieldSpec) -> dict    # the schema of one non-null value

(a select's options as an enum, a money amount as a decimal string, a sub-table's rows). Without
the hook the schema is derived from the type's SQL column (text with its length, numbers with
their `min`/`max`, dates, times, booleans), which is right for most types. Values may always be
null (empty); fields the system sets (`read_only`) are marked `readOnly`.
"""

from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, Float, Integer, Numeric, String, Time

from forms.fields.base import FieldType
from forms.spec import FieldSpec

DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def decimal_schema(places: int, description: str) -> dict[str, Any]:
    """An exact decimal: returned as a string ("1200.00"); a JSON number is accepted too."""
    return {"anyOf": [{"type": "string", "pattern": DECIMAL_PATTERN, "maxLength": 40},
                      {"type": "number"}],
            "description": f"{description}, with at most {places} decimal places; given back as a string"}


def fallback_schema(ftype: FieldType, spec: FieldSpec) -> dict[str, Any]:
    """The schema of a value of a type without a `value_schema` hook, from its SQL column."""
    column = ftype.column_type(spec)
    low, high = spec.opt("min"), spec.opt("max")
    bounds = {k: v for k, v in (("minimum", low), ("maximum", high)) if isinstance(v, (int, float))
              and not isinstance(v, bool)}
    if isinstance(column, Boolean):
        return {"type": "boolean"}
    if isinstance(column, (BigInteger, Integer)):
        return {"type": "integer", **bounds}
    if isinstance(column, Float):
        return {"type": "number", **bounds}
    if isinstance(column, Numeric):
        return decimal_schema(int(column.scale or 0), "a decimal number")
    if isinstance(column, DateTime):
        return {"type": "string", "format": "date-time",
                "description": "ISO 8601; without an offset it is read in the bundle's time zone"}
    if isinstance(column, Date):
        return {"type": "string", "format": "date"}
    if isinstance(column, Time):
        return {"type": "string", "pattern": r"^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$",
                "description": "a time of day, HH:MM"}
    if isinstance(column, String):  # Text is a String without a length
        length = column.length or spec.opt("max_length")
        return {"type": "string", **({"maxLength": length} if isinstance(length, int) else {})}
    if isinstance(column, JSON):
        return {}
    return {}


def value_schema(ftype: FieldType, spec: FieldSpec) -> dict[str, Any]:
    """The schema of one field's value, null included."""
    hook = getattr(ftype, "value_schema", None)
    schema = dict(hook(spec)) if callable(hook) else fallback_schema(ftype, spec)
    described = {"title": spec.text("en")}
    if ftype.read_only or spec.computed is not None:
        described["readOnly"] = True
    return {**described, **nullable(schema)}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` or null."""
    if not schema:
        return {}
    kind = schema.get("type")
    if isinstance(kind, str) and "enum" not in schema and "const" not in schema:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def record_values_schema(form: Any, *, only: Iterable[str] | None = None,
                         for_input: bool = False) -> dict[str, Any]:
    """The JSON Schema of a record's `values` object for a compiled form.

    `only` limits the properties (e.g. the fields an anonymous submitter may set); `for_input`
    lists the plainly required fields as `required` and leaves out read-only ones.
    """
    names = [n for n in form.stored if only is None or n in set(only)]
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name in names:
        ftype, spec = form.types[name], form.field(name)
        schema = value_schema(ftype, spec)
        if for_input and schema.get("readOnly"):
            continue
        properties[name] = schema
        if for_input and spec.required and spec.visible_if is None and spec.computed is None \
                and spec.default is None and spec.default_expr is None:
            required.append(name)
    out: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


__all__ = ["DECIMAL_PATTERN", "decimal_schema", "fallback_schema", "nullable", "record_values_schema",
           "value_schema"]
