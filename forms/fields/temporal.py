"""Date and time field types; instants are stored in UTC, read in the bundle's zone."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Callable
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Date as SqlDate, DateTime as SqlDateTime, Time as SqlTime
from sqlalchemy.types import TypeEngine

from engine.clock import check_instant
from engine.durations import DURATION_PATTERN, parse_duration
from engine.time_of_day import parse_time_of_day
from forms.fields.base import FieldType
from forms.messages import FieldInvalid
from forms.spec import FieldSpec

_NOT_FUTURE = {"not_future": {"type": "boolean", "description": "refuse values later than now (by the runtime's clock)"}}

_YEAR_FIRST = re.compile(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})(?:\s*日)?(?=\D|$)")
_SHORT_HOUR = re.compile(r"(?<=[ T])(\d):")


def year_first(text: str) -> str:
    """A date written year first as people and spreadsheets write it (2026/11/21, 2026.11.21,
    2026年11月21日, 2026-11-2, with a time after it such as 9:30) in ISO form, 2026-11-21 09:30,
    for `fromisoformat`; other text unchanged. Year first is never ambiguous, unlike 11/21/2026."""
    found = _YEAR_FIRST.match(text)
    if found is None:
        return text
    year, month, day = found.groups()
    rest = _SHORT_HOUR.sub(r"0\1:", text[found.end():])
    return f"{year}-{int(month):02d}-{int(day):02d}{rest}"


class Date(FieldType):
    name = "date"
    value_kind = "date"
    description = "A calendar date (YYYY-MM-DD; imports and the API also read 2026/11/20, 2026.11.20 and 2026年11月20日)."
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
                value = date.fromisoformat(year_first(str(raw).strip())[:10])
            except ValueError:
                raise self.invalid("not_date") from None
        if spec.opt("not_future") and value > check_instant().astimezone(ZoneInfo(spec.timezone)).date():
            raise self.invalid("future")
        return value

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not Date.parse or spec.opt("not_future"):
            return super().parser(spec)
        slow = self.parse
        fromiso = date.fromisoformat

        def parse_date(raw: Any) -> Any:
            # The common input, "2026-11-20", read directly; anything else as `parse` reads it.
            if type(raw) is str and len(raw) == 10:
                try:
                    return fromiso(raw)
                except ValueError:
                    pass
            return slow(raw, spec)

        return parse_date

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        return None if value is None else value.isoformat()

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return date.fromisoformat(value) if isinstance(value, str) else value


class DateTime(FieldType):
    name = "datetime"
    value_kind = "datetime"
    aliases = ("timestamp",)
    description = "A date and time (YYYY-MM-DD HH:MM, or year first with / as for dates); entered in the bundle's time zone, stored in UTC."
    options_schema = {"properties": dict(_NOT_FUTURE)}
    examples = ("incident_at:\n  type: datetime\n  label: {zh-CN: 投诉发生时间, en: Time of the incident}\n  not_future: true\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlDateTime(timezone=True)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime):
            value = raw
        else:
            text = year_first(str(raw).strip().replace("T", " ").replace("Z", "+00:00"))
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise self.invalid("not_datetime") from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=ZoneInfo(spec.timezone))
        value = value.astimezone(timezone.utc)
        if spec.opt("not_future") and value > check_instant():
            raise self.invalid("future")
        return value

    def parser(self, spec: FieldSpec) -> Callable[[Any], Any]:
        if type(self).parse is not DateTime.parse or spec.opt("not_future"):
            return super().parser(spec)
        zone = ZoneInfo(spec.timezone)
        slow = self.parse
        fromiso = datetime.fromisoformat

        def parse_datetime(raw: Any) -> Any:
            # Python 3.11 reads "2026-11-20T10:30:00+08:00" and "...Z" directly.
            if type(raw) is not str:
                return slow(raw, spec)
            try:
                value = fromiso(raw.strip())
            except ValueError:
                return slow(raw, spec)
            if value.tzinfo is None:
                value = value.replace(tzinfo=zone)
            return value.astimezone(timezone.utc)

        return parse_datetime

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
    in_subtable = False

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any] | None:
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return None


_CLOCK_OPTION = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$",
                 "description": "a time of day as HH:MM (quote it)"}


class Time(FieldType):
    name = "time"
    value_kind = "time"
    aliases = ("time_of_day",)
    description = "A time of day (HH:MM), without a date or a time zone: opening hours, a pickup slot."
    options_schema = {"properties": {"min": _CLOCK_OPTION, "max": _CLOCK_OPTION}}
    examples = ('pickup_time:\n  type: time\n  label: {zh-CN: 预约揽收时间, en: Pickup time}\n  min: "08:00"\n  max: "20:00"\n',)
    widget = "time"

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlTime()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime):
            raise self.invalid("not_time")
        if isinstance(raw, time):
            value: time | None = raw.replace(microsecond=0, tzinfo=None)
        elif isinstance(raw, str) and len(raw) <= 16:
            value = parse_time_of_day(raw)
        else:
            value = None
        if value is None:
            raise self.invalid("not_time")
        low, high = spec.opt("min"), spec.opt("max")
        if low is not None and value < parse_time_of_day(low):  # type: ignore[operator]
            raise self.invalid("too_small", min=low)
        if high is not None and value > parse_time_of_day(high):  # type: ignore[operator]
            raise self.invalid("too_large", max=high)
        return value

    def to_json(self, value: Any, spec: FieldSpec) -> Any:
        if value is None:
            return None
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        if isinstance(value, str):
            return time.fromisoformat(value)
        return value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return "" if value is None else self.to_json(value, spec)


MAX_DURATION_SECONDS = 100 * 366 * 86400
_DURATION_OPTION = {"type": ["string", "integer"], "description": "a duration such as 30m or 8h (or seconds)"}
_CLOCK_DURATION = re.compile(r"(\d{1,6}):([0-5]\d)(?::([0-5]\d))?")


def duration_seconds(raw: Any) -> int:
    """Seconds of a wall-clock duration: 5400, "90m", "1.5 hours", "1h 30m", "1:30".

    Raises ValueError, or LookupError for working-time units that need a calendar.
    """
    if isinstance(raw, bool):
        raise ValueError("not a duration")
    if isinstance(raw, timedelta):
        total = raw.total_seconds()
    elif isinstance(raw, (int, float)):
        if not -1 < raw <= MAX_DURATION_SECONDS:  # also keeps float() away from huge integers
            raise ValueError("out of range")
        total = float(raw)
    elif isinstance(raw, str) and len(raw) <= 64:
        text = raw.strip().lower()
        clock = _CLOCK_DURATION.fullmatch(text)
        if text.isascii() and text.isdigit():
            total = float(text)
        elif clock:
            total = int(clock[1]) * 3600 + int(clock[2]) * 60 + int(clock[3] or 0)
        else:
            total = _literal_seconds(text)
    else:
        raise ValueError("not a duration")
    if total != total or not 0 <= total <= MAX_DURATION_SECONDS:
        raise ValueError("out of range")
    return int(round(total))


_UNIT_THEN_DIGIT = re.compile(r"(?<=[a-z\u4e00-\u9fff])(?=\d)")


def _literal_seconds(text: str) -> float:
    text = _UNIT_THEN_DIGIT.sub(" ", text)  # 1h30m -> 1h 30m
    pos, total, found = 0, 0.0, False
    for match in DURATION_PATTERN.finditer(text):
        if text[pos:match.start()].strip(" ,") or len(match[0]) > 40:
            raise ValueError("not a duration")
        duration = parse_duration(match[0])
        if duration.business:
            raise LookupError(duration.unit)
        total += duration.to_timedelta().total_seconds()
        pos, found = match.end(), True
    if not found or text[pos:].strip(" ,"):
        raise ValueError("not a duration")
    return total


def _format_duration(seconds: int, locale: str) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    zh = locale.startswith("zh")
    units = (("天", " d"), ("小时", " h"), ("分钟", " min"), ("秒", " s"))
    parts = [f"{n}{units[i][0] if zh else units[i][1]}" for i, n in enumerate((days, hours, minutes, secs)) if n]
    if not parts:
        return "0分钟" if zh else "0 min"
    return ("" if zh else " ").join(parts)


class Seconds(int):
    """A duration field's value: whole seconds, an int everywhere (stored, summed, sent as a
    number), that also compares with a wall-clock duration, so an analyst's `delay > 2d`
    means what it says instead of failing when it runs. A working-time duration (`2 workdays`)
    depends on when it starts and stays incomparable."""

    __slots__ = ()

    def _compare(self, other: Any, test: Callable[[int, float], bool]) -> Any:
        if isinstance(other, timedelta):
            return test(int(self), other.total_seconds())
        return NotImplemented

    def __eq__(self, other: object) -> bool:
        if isinstance(other, timedelta):
            return int(self) == other.total_seconds()
        return int.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        if isinstance(other, timedelta):
            return int(self) != other.total_seconds()
        return int.__ne__(self, other)

    __hash__ = int.__hash__

    def __lt__(self, other: Any) -> Any:
        return int.__lt__(self, other) if not isinstance(other, timedelta) else self._compare(other, lambda a, b: a < b)

    def __le__(self, other: Any) -> Any:
        return int.__le__(self, other) if not isinstance(other, timedelta) else self._compare(other, lambda a, b: a <= b)

    def __gt__(self, other: Any) -> Any:
        return int.__gt__(self, other) if not isinstance(other, timedelta) else self._compare(other, lambda a, b: a > b)

    def __ge__(self, other: Any) -> Any:
        return int.__ge__(self, other) if not isinstance(other, timedelta) else self._compare(other, lambda a, b: a >= b)


class Duration(FieldType):
    name = "duration"
    aliases = ("time_span",)
    description = ("A length of wall-clock time, stored as whole seconds; entered as 30m, 2h, "
                   "1.5 hours, 1h 30m or 1:30 (working-time units such as workdays are refused). "
                   "In expressions it compares with durations (delay > 2d) and with seconds.")
    options_schema = {"properties": {"min": _DURATION_OPTION, "max": _DURATION_OPTION}}
    examples = ("delay:\n  type: duration\n  label: {zh-CN: 延误时长, en: Delay}\n  max: 30d\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return BigInteger()

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        for key in ("min", "max"):
            if spec.opt(key) is None:
                continue
            try:
                duration_seconds(spec.opt(key))
            except LookupError:
                ctx.error(doc, path + (key,), f"{key} of a duration field must be in wall-clock units, not working time",
                          code="invalid-option", hint="write minutes, hours or days, e.g. 8h or 3d")
            except ValueError:
                ctx.error(doc, path + (key,), f"'{spec.opt(key)}' is not a duration", code="invalid-option",
                          hint="write a number and a unit, e.g. 30m, 8h or 3d")
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        try:
            value = duration_seconds(raw)
        except LookupError:
            raise self.invalid("business_duration") from None
        except ValueError:
            raise self.invalid("not_duration") from None
        for key, message in (("min", "too_small"), ("max", "too_large")):
            bound = spec.opt(key)
            if bound is None:
                continue
            limit = duration_seconds(bound)
            if (value < limit) if key == "min" else (value > limit):
                raise FieldInvalid(message, **{key: bound})
        return Seconds(value)

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return Seconds(value) if type(value) is int else value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        return "" if value is None else _format_duration(value, locale)
