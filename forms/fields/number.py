"""Numeric field types: number, integer, money, percent, rating."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from sqlalchemy import BigInteger, Float, Integer as SqlInteger, Numeric
from sqlalchemy.types import TypeEngine

from forms.fields.base import FastCheck, FieldType
from forms.spec import FieldSpec

_BOUNDS = {"min": {"type": "number"}, "max": {"type": "number"}}


def _bounds(value: Any, spec: FieldSpec, field: FieldType) -> None:
    low, high = spec.opt("min"), spec.opt("max")
    if low is not None and value < low:
        raise field.invalid("too_small", min=low)
    if high is not None and value > high:
        raise field.invalid("too_large", max=high)


def _bounded(field: FieldType, spec: FieldSpec, kind: type) -> Callable[[Any], Any]:
    """A parser with the bounds looked up once; values already of `kind` skip the slow path."""
    low, high = spec.opt("min"), spec.opt("max")
    invalid = field.invalid
    slow = field.parse

    def parse_number(raw: Any) -> Any:
        if type(raw) is not kind or (kind is float and (raw != raw or raw in (_INF, -_INF))):
            return slow(raw, spec)  # conversions and refusals exactly as `parse` does them
        if kind is int and abs(raw) >= 2**63:
            raise invalid("not_integer")
        if low is not None and raw < low:
            raise invalid("too_small", min=low)
        if high is not None and raw > high:
            raise invalid("too_large", max=high)
        return raw

    return parse_number


_INF = float("inf")


def _as_float(value: Any) -> float | None:
    """A finite number (int, float or Decimal) as a float; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if number == number and number not in (_INF, -_INF) else None


def _fast_range(spec: FieldSpec, kind: type[int] | type[float], floor: Any, ceiling: Any) -> FastCheck | None:
    """The test of `_bounded`'s accepting path: exactly `kind`, within the bounds, and strictly
    between `floor` and `ceiling` (what every value must stay within: finite, or under 2**63).
    A bound inside those limits stands in for them; one outside them (or NaN) never refuses a
    value that is within them, so the limit alone is the test."""
    low, high = spec.opt("min"), spec.opt("max")
    real = (int, float)
    if (low is not None and low.__class__ not in real) or (high is not None and high.__class__ not in real):
        return None  # a bound of another type compares its own way: leave it to the parser
    left = "{low} <=" if low is not None and floor < low else "{floor} <"
    right = "<= {high}" if high is not None and high < ceiling else "< {ceiling}"
    return FastCheck(f"raw.__class__ is {kind.__name__} and {left} raw {right}", "raw",
                     {"low": low, "high": high, "floor": floor, "ceiling": ceiling})


class Number(FieldType):
    name = "number"
    aliases = ("float",)
    value_kind = "number"
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
        except (TypeError, ValueError, OverflowError):  # a 400-digit JSON integer overflows a float
            raise self.invalid("not_number") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self.invalid("not_number")
        _bounds(value, spec, self)
        return value

    def coerce(self, value: Any, spec: FieldSpec) -> Any:
        """A computed value as a float: a money amount in the expression gives a Decimal, which
        the record's history (JSON) could not hold."""
        return _as_float(value)

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Number.parse:
            return super().parser(spec)
        return _bounded(self, spec, float)

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """A finite float within the bounds is itself."""
        return _fast_range(spec, float, -_INF, _INF)


class Integer(FieldType):
    name = "integer"
    aliases = ("int",)
    value_kind = "number"
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
            digits = text[1:] if text[:1] in "+-" else text
            if not (digits.isascii() and digits.isdigit()) or len(text) > 18:
                raise self.invalid("not_integer")
            raw = int(text)
        if not isinstance(raw, int) or abs(raw) >= 2**63:
            raise self.invalid("not_integer")
        _bounds(raw, spec, self)
        return raw

    def coerce(self, value: Any, spec: FieldSpec) -> Any:
        """A computed whole number as an int: a Decimal or float from the expression is rounded
        to the nearest one (the column holds whole numbers; the history, JSON, no Decimal)."""
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = _as_float(value)
        return round(number) if number is not None and abs(number) < 2**63 else None

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Integer.parse:
            return super().parser(spec)
        return _bounded(self, spec, int)

    def fast_check(self, spec: FieldSpec) -> FastCheck | None:
        """An int (not a bool) under 2**63 in size and within the bounds is itself."""
        return _fast_range(spec, int, -2**63, 2**63)


class Money(FieldType):
    name = "money"
    aliases = ("amount", "currency")
    value_kind = "number"
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


def _decimal(raw: Any, field: FieldType, *, strip: str = "") -> Decimal:
    """A finite Decimal from a number or its text (thousands separators and `strip` removed)."""
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        raise field.invalid("not_number")
    if isinstance(raw, float):
        raw = repr(raw)
    text = str(raw).replace(",", "").strip()
    for ch in strip:
        text = text.rstrip().removesuffix(ch)
    if len(text) > 40:
        raise field.invalid("not_number")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise field.invalid("not_number") from None
    if not value.is_finite():
        raise field.invalid("not_number")
    return value


_SAMPLE_PERCENTAGES = (5, 8, 10, 12, 15, 18, 20, 25, 30, 50, 85, 95)
"""Sample percentages: discounts and shares of a few points to a few tens, and high rates."""


class Percent(FieldType):
    name = "percent"
    aliases = ("percentage",)
    value_kind = "number"
    description = "A percentage kept exactly as a decimal; 0 to 100 unless `min`/`max` say otherwise."
    options_schema = {"properties": {**_BOUNDS, "places": {"type": "integer", "minimum": 0, "maximum": 4}}}
    examples = ("on_time_rate:\n  type: percent\n  label: {zh-CN: 准时率, en: On-time rate}\n  places: 1\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return Numeric(12, spec.opt("places", 2), asdecimal=True)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        value = _decimal(raw, self, strip="%％")
        places = spec.opt("places", 2)
        if abs(value) >= Decimal(10) ** 9:
            raise self.invalid("not_number")
        if value.as_tuple().exponent < -places:  # type: ignore[operator]
            raise self.invalid("decimals", places=places)
        low, high = spec.opt("min", 0), spec.opt("max", 100)
        if value < Decimal(str(low)):
            raise self.invalid("too_small", min=low)
        if value > Decimal(str(high)):
            raise self.invalid("too_large", max=high)
        return value.quantize(Decimal(1).scaleb(-places))

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        return None if value is None else str(value)

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        return Decimal(str(value)).quantize(Decimal(1).scaleb(-spec.opt("places", 2)))

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        text = f"{value:f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return f"{text}%"

    def sample(self, spec: FieldSpec, rng: Any) -> Any:
        """A rate as people give one (a discount, an on-time rate), within the field's bounds:
        without it `docket simulate` refused every record of a form with a required percentage."""
        low, high = spec.opt("min", 0), spec.opt("max", 100)
        return str(min(max(rng.choice(_SAMPLE_PERCENTAGES), low), high))


_RATING_TEXT = frozenset(str(n) for n in range(1, 11))


class Rating(FieldType):
    name = "rating"
    aliases = ("stars", "score")
    value_kind = "number"
    description = "A whole-number rating from 1 to `max` (5 by default), e.g. customer satisfaction."
    options_schema = {"properties": {"max": {"type": "integer", "minimum": 2, "maximum": 10,
                                             "description": "the highest rating (default 5)"}}}
    examples = ("satisfaction:\n  type: rating\n  label: {zh-CN: 满意度, en: Satisfaction}\n  max: 5\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlInteger()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        top = spec.opt("max", 5)
        if isinstance(raw, bool):
            raise self.invalid("not_rating", max=top)
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if isinstance(raw, str) and raw.strip() in _RATING_TEXT:
            raw = int(raw.strip())
        if not isinstance(raw, int) or not 1 <= raw <= top:
            raise self.invalid("not_rating", max=top)
        return raw

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema)."""
        return {"type": "integer", "minimum": 1, "maximum": spec.opt("max", 5)}

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        top = spec.opt("max", 5)
        return f"{'★' * value}{'☆' * (top - value)} {value}/{top}"
