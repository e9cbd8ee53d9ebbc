"""Values the system sets, never typed in: an auto number, a computed value."""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean as SqlBoolean, Date as SqlDate, Float, Numeric, String, Text as SqlText
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.numbering import allocate, check_pattern
from forms.spec import FieldSpec


class AutoNumber(FieldType):
    name = "auto_number"
    aliases = ("autonumber", "serial")
    value_kind = "text"
    description = ("A number the system gives each new record from a pattern, like the form's "
                   "`numbering`: `{date:FORMAT}`, `{seq:N}`, `{random:N}`. Read-only.")
    options_schema = {"required": ["pattern"], "properties": {
        "pattern": {"type": "string", "description": "e.g. CP{seq:6} or RF{date:%Y%m}{seq:4}"}}}
    examples = ("compensation_no:\n  type: auto_number\n  label: {zh-CN: 赔付单号, en: Compensation number}\n  pattern: CP{date:%Y}{seq:6}\n",)
    read_only = True
    in_subtable = False

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(64)

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        problem = check_pattern(spec.opt("pattern"))
        if problem:
            ctx.error(doc, path + ("pattern",), problem.replace("in numbering", "in the pattern"),
                      code="numbering")
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        raise self.invalid("system_set")

    def on_insert(self, conn: Connection, spec: FieldSpec, form_name: str, now: datetime,
                  timezone: str) -> str:
        """The number of a record being inserted, inside the inserting transaction.

        Counters are kept per form and field (and per the text before `{seq}`), apart from the
        form's own query numbers, and are unique under concurrency like them.
        """
        return allocate(conn, f"{form_name}.{spec.name}", spec.opt("pattern"), now, timezone)


RESULTS = ("number", "text", "money", "boolean", "date")
_RESULT_KINDS = {"number": "number", "money": "number", "text": "text", "boolean": "boolean", "date": "date"}
"""The kind of value (FieldType.value_kind) a computed field of each `result` holds."""
MAX_TEXT = 2000


class Computed(FieldType):
    name = "computed"
    aliases = ("formula",)
    description = ("A read-only value computed from other fields by an expression every time the "
                   "record is saved; `result` says what it is (number, text, money, boolean, date).")
    options_schema = {
        "anyOf": [{"required": ["expression"]}, {"required": ["computed"]}],
        "properties": {
            "expression": {"type": "string", "description": "an expression over the form's fields"},
            "result": {"enum": list(RESULTS), "description": "the kind of value (default number)"},
            "places": {"type": "integer", "minimum": 0, "maximum": 4, "description": "decimal places of money"},
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        },
    }
    examples = ("compensation_estimate:\n  type: computed\n  label: {zh-CN: 预估赔付, en: Estimated compensation}\n"
                "  expression: round(coalesce(amount_claimed, 0) * 0.3, 2)\n  result: money\n",)
    read_only = True
    in_subtable = False
    expression_option = "expression"

    def result(self, spec: FieldSpec) -> str:
        return spec.opt("result", "number")

    def value_kind_of(self, options: Mapping[str, Any]) -> str | None:
        return _RESULT_KINDS.get(options.get("result", "number"))

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return {
            "number": lambda: Float(),
            "text": lambda: SqlText(),
            "money": lambda: Numeric(18, spec.opt("places", 2), asdecimal=True),
            "boolean": lambda: SqlBoolean(),
            "date": lambda: SqlDate(),
        }[self.result(spec)]()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        raise self.invalid("system_set")

    def coerce(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        try:
            return getattr(self, f"_as_{self.result(spec)}")(value, spec)
        except (ValueError, TypeError, ArithmeticError):
            return None

    def _as_number(self, value: Any, spec: FieldSpec) -> float | None:
        if isinstance(value, bool):
            return float(value)
        number = float(value)
        return number if math.isfinite(number) else None

    def _as_money(self, value: Any, spec: FieldSpec) -> Decimal | None:
        if isinstance(value, bool):
            return None
        amount = Decimal(repr(value) if isinstance(value, float) else str(value))
        if not amount.is_finite() or abs(amount) >= Decimal(10) ** 16:
            return None
        return amount.quantize(Decimal(1).scaleb(-spec.opt("places", 2)))

    def _as_text(self, value: Any, spec: FieldSpec) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)[:MAX_TEXT]

    def _as_boolean(self, value: Any, spec: FieldSpec) -> bool:
        return bool(value)

    def _as_date(self, value: Any, spec: FieldSpec) -> date:
        if isinstance(value, datetime):
            if value.tzinfo is not None:
                value = value.astimezone(ZoneInfo(spec.timezone))
            return value.date()
        if isinstance(value, date):
            return value
        return date.fromisoformat(str(value)[:10])

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        if self.result(spec) == "money":
            return str(value)
        if self.result(spec) == "date":
            return value.isoformat()
        return value

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        result = self.result(spec)
        try:
            if result == "money":
                return Decimal(str(value)).quantize(Decimal(1).scaleb(-spec.opt("places", 2)))
            if result == "date" and isinstance(value, str):
                return date.fromisoformat(value)
        except (InvalidOperation, ValueError):
            return None
        return value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        result = self.result(spec)
        if result == "money":
            symbol = {"CNY": "¥", "USD": "$", "EUR": "€"}.get(spec.opt("currency", "CNY"), "")
            return f"{symbol}{value:,.{spec.opt('places', 2)}f}"
        if result == "boolean":
            if locale.startswith("zh"):
                return "是" if value else "否"
            return "Yes" if value else "No"
        if result == "number":
            return str(int(value)) if float(value).is_integer() else f"{value:,.6g}"
        if result == "date":
            return value.isoformat()
        return str(value)
