"""Date and time field types; everything is stored in UTC, read in the bundle's zone."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Date as SqlDate, DateTime as SqlDateTime
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

_NOT_FUTURE = {"not_future": {"type": "boolean", "description": "refuse values later than now"}}


class Date(FieldType):
    name = "date"
    description = "A calendar date (YYYY-MM-DD)."
    options_schema = {"properties": {**_NOT_FUTURE, "min": {"type": "string", "format": "date"},
                                     "max": {"type": "string", "format": "date"}}}
    examples = ("ship_date:\n  type: date\n  label: {zh-CN: 寄件日期, en: Ship date}\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlDate()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime):
            raw = raw.date()
        if isinstance(raw, date):
            value = raw
        else:
            try:
                value = date.fromisoformat(str(raw).strip()[:10])
            except ValueError:
                raise self.invalid("not_date") from None
        if spec.opt("not_future") and value > datetime.now(ZoneInfo(spec.timezone)).date():
            raise self.invalid("future")
        return value

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        return None if value is None else value.isoformat()

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return date.fromisoformat(value) if isinstance(value, str) else value


class DateTime(FieldType):
    name = "datetime"
    aliases = ("timestamp",)
    description = "A date and time; entered in the bundle's time zone, stored in UTC."
    options_schema = {"properties": dict(_NOT_FUTURE)}
    examples = ("incident_at:\n  type: datetime\n  label: {zh-CN: 投诉发生时间, en: Time of the incident}\n  not_future: true\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlDateTime(timezone=True)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime):
            value = raw
        else:
            text = str(raw).strip().replace("T", " ").replace("Z", "+00:00")
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise self.invalid("not_datetime") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(spec.timezone))
        value = value.astimezone(timezone.utc)
        if spec.opt("not_future") and value > datetime.now(timezone.utc):
            raise self.invalid("future")
        return value

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        return None if value is None else value.isoformat()

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        return value.astimezone(ZoneInfo(spec.timezone)).strftime("%Y-%m-%d %H:%M")


class Section(FieldType):
    """A heading with help text between fields; stores nothing."""

    name = "section"
    aliases = ("heading",)
    description = "A heading and help text that groups the fields after it; stores nothing."
    options_schema = {"properties": {}}
    examples = ("contact_section:\n  type: section\n  label: {zh-CN: 联系人信息, en: Contact}\n",)
    stores_value = False

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any] | None:
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return None
