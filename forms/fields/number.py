"""Numeric field types: number, integer, money."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import BigInteger, Float, Numeric
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

_BOUNDS = {"min": {"type": "number"}, "max": {"type": "number"}}


def _bounds(value: Any, spec: FieldSpec, field: FieldType) -> None:
    low, high = spec.opt("min"), spec.opt("max")
    if low is not None and value < low:
        raise field.invalid("too_small", min=low)
    if high is not None and value > high:
        raise field.invalid("too_large", max=high)


class Number(FieldType):
    name = "number"
    aliases = ("float",)
    description = "A number with decimals (measurements, weights)."
    options_schema = {"properties": dict(_BOUNDS)}
    examples = ("weight_kg:\n  type: number\n  label: {zh-CN: 重量(千克), en: Weight (kg)}\n  min: 0\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return Float()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            raise self.invalid("not_number")
        try:
            value = float(str(raw).replace(",", "").strip()) if isinstance(raw, str) else float(raw)
        except (TypeError, ValueError):
            raise self.invalid("not_number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.invalid("not_number")
        _bounds(value, spec, self)
        return value


class Integer(FieldType):
    name = "integer"
    aliases = ("int",)
    description = "A whole number."
    options_schema = {"properties": dict(_BOUNDS)}
    examples = ("parcel_count:\n  type: integer\n  label: {zh-CN: 件数, en: Parcels}\n  min: 1\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return BigInteger()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            raise self.invalid("not_integer")
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, str):
            text = raw.replace(",", "").strip()
            if not text.lstrip("+-").isdigit() or len(text) > 18:
                raise self.invalid("not_integer")
            raw = int(text)
        if not isinstance(raw, int) or abs(raw) >= 2**63:
            raise self.invalid("not_integer")
        _bounds(raw, spec, self)
        return raw


class Money(FieldType):
    name = "money"
    aliases = ("amount", "currency")
    description = "An amount of money, kept exactly as a decimal (never a float)."
    options_schema = {"properties": {**_BOUNDS, "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                     "places": {"type": "integer", "minimum": 0, "maximum": 4}}}
    examples = ("amount_claimed:\n  type: money\n  label: {zh-CN: 索赔金额, en: Amount claimed}\n  currency: CNY\n  min: 0\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return Numeric(18, spec.opt("places", 2), asdecimal=True)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool) or raw is None:
            raise self.invalid("not_number")
        text = str(raw).replace(",", "").replace("¥", "").replace("￥", "").strip()
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise self.invalid("not_number") from None
        if not value.is_finite() or abs(value) >= Decimal(10) ** 16:
            raise self.invalid("not_number")
        places = spec.opt("places", 2)
        if value.as_tuple().exponent < -places:  # type: ignore[operator]
            raise self.invalid("decimals", places=places)
        _bounds(value, spec, self)
        return value.quantize(Decimal(1).scaleb(-places))

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        return None if value is None else str(value)

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        return Decimal(value).quantize(Decimal(1).scaleb(-spec.opt("places", 2)))

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        symbol = {"CNY": "¥", "USD": "$", "EUR": "€"}.get(spec.opt("currency", "CNY"), "")
        return f"{symbol}{value:,.{spec.opt('places', 2)}f}"
