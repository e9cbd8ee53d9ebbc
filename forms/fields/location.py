"""A place: an address and/or coordinates, stored together as JSON {address, lat, lng}."""

from __future__ import annotations

import json
import math
from typing import Any

from sqlalchemy import JSON
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

MAX_ADDRESS = 500
_KEYS = frozenset({"address", "lat", "lng"})


def _coordinate(raw: Any) -> float | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)) or (isinstance(raw, str) and len(raw) > 32):
        raise ValueError("not a number")
    try:
        value = float(raw)
    except OverflowError:  # an integer too large for a float
        raise ValueError("not a number") from None
    if not math.isfinite(value):
        raise ValueError("not a number")
    return round(value, 6)


class Location(FieldType):
    name = "location"
    aliases = ("geo_location", "place")
    description = ("Where something happened: an address, coordinates (lat -90..90, lng -180..180), "
                   "or both; stored as JSON {address, lat, lng}.")
    options_schema = {"properties": {
        "require_coordinates": {"type": "boolean", "description": "latitude and longitude must be given"},
        "require_address": {"type": "boolean", "description": "an address must be given"},
    }}
    examples = ("pickup_location:\n  type: location\n  label: {zh-CN: 揽收地点, en: Pickup location}\n  require_address: true\n",)
    widget = "text"  # an address; coordinates come from a map widget or the API

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return JSON()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, str):
            raw = _from_text(raw)
        if not isinstance(raw, dict) or not set(raw) <= _KEYS:
            raise self.invalid("not_location")
        address = raw.get("address")
        if address is not None and not isinstance(address, str):
            raise self.invalid("not_location")
        address = (address or "").strip() or None
        if address is not None and len(address) > MAX_ADDRESS:
            raise self.invalid("too_long", max=MAX_ADDRESS)
        try:
            lat = _coordinate(raw.get("lat"))
        except ValueError:
            raise self.invalid("bad_latitude") from None
        try:
            lng = _coordinate(raw.get("lng"))
        except ValueError:
            raise self.invalid("bad_longitude") from None
        if lat is not None and not -90 <= lat <= 90:
            raise self.invalid("bad_latitude")
        if lng is not None and not -180 <= lng <= 180:
            raise self.invalid("bad_longitude")
        if (lat is None) != (lng is None):
            raise self.invalid("not_location")
        if address is None and lat is None:
            raise self.invalid("not_location")
        if spec.opt("require_coordinates") and lat is None:
            raise self.invalid("not_location")
        if spec.opt("require_address") and address is None:
            raise self.invalid("not_location")
        return {"address": address, "lat": lat, "lng": lng}

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema)."""
        return {"type": "object", "additionalProperties": False, "properties": {
            "address": {"type": ["string", "null"], "maxLength": MAX_ADDRESS},
            "lat": {"type": ["number", "null"], "minimum": -90, "maximum": 90},
            "lng": {"type": ["number", "null"], "minimum": -180, "maximum": 180}}}

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if not value:
            return ""
        parts = [value["address"]] if value.get("address") else []
        if value.get("lat") is not None:
            parts.append(f"({value['lat']:.6f}, {value['lng']:.6f})")
        return " ".join(parts)


def _from_text(text: str) -> Any:
    """A location typed or exported as text: a JSON object (as exports write it) or an address."""
    stripped = text.strip()
    if stripped.startswith("{") and len(stripped) <= 4 * MAX_ADDRESS:
        try:
            value = json.loads(stripped)
        except ValueError:
            return {"address": text}
        if isinstance(value, dict):
            return value
    return {"address": text}
