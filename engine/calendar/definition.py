"""Reading a calendar from its YAML shape.

```yaml
timezone: Asia/Shanghai
working_hours: ["09:00-12:00", "13:30-18:00"]
weekend: [saturday, sunday]
holidays: ["2026-01-01", "2026-02-15..2026-02-23"]   # single dates or ranges a..b
workdays: ["2026-02-14", "2026-02-28"]               # swapped working days (调休)
```

Every problem raises `CalendarError` (a ValueError) with the key and index of the bad value in
`path`, so the bundle loader can point at `file:line:col`.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any, Mapping

from engine.errors import did_you_mean, format_yaml_path
from engine.types import YamlPath

__all__ = ["CalendarError", "WEEKDAY_NAMES", "parse_calendar_fields"]

WEEKDAY_NAMES: dict[str, int] = {}
for _index, _names in enumerate((
    ("monday", "mon", "周一", "星期一"), ("tuesday", "tue", "周二", "星期二"),
    ("wednesday", "wed", "周三", "星期三"), ("thursday", "thu", "周四", "星期四"),
    ("friday", "fri", "周五", "星期五"), ("saturday", "sat", "周六", "星期六"),
    ("sunday", "sun", "周日", "星期日", "星期天", "周天"),
)):
    for _name in _names:
        WEEKDAY_NAMES[_name] = _index

_PERIOD = re.compile(r"\s*(\d{1,2}):(\d{2})\s*[-–~]\s*(\d{1,2}):(\d{2})\s*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_KEYS = ("timezone", "working_hours", "weekend", "holidays", "workdays")
_IGNORED_KEYS = ("name", "label", "description")  # documentation only
_MAX_RANGE_DAYS = 366  # a longer holiday range is surely a typo in a year


class CalendarError(ValueError):
    """A calendar definition is wrong; `path` says where inside it (for file:line:col mapping)."""

    def __init__(self, message: str, path: YamlPath = (), where: str = ""):
        self.detail = message
        self.path = path
        self.where = where
        prefix = ": ".join(p for p in (where, format_yaml_path(path)) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def located(self, where: str) -> "CalendarError":
        """The same error with the file (or other context) it came from."""
        return CalendarError(self.detail, self.path, where)


def parse_calendar_fields(data: Mapping[str, Any], where: str = "") -> dict[str, Any]:
    """The keyword arguments of `BusinessCalendar` described by `data`."""
    if not isinstance(data, Mapping):
        raise CalendarError("a calendar must be a mapping with timezone, working_hours, ...",
                            (), where)
    for key in data:
        if key not in _KEYS and key not in _IGNORED_KEYS:
            hint = did_you_mean(str(key), _KEYS)
            raise CalendarError(f"unknown key '{key}'" + (f"; {hint}" if hint else "")
                                + f" (allowed: {', '.join(_KEYS)})", (str(key),), where)
    fields: dict[str, Any] = {}
    try:
        if "timezone" in data:
            if not isinstance(data["timezone"], str):
                raise CalendarError("timezone must be a name such as Asia/Shanghai", ("timezone",))
            fields["timezone"] = data["timezone"]
        if "working_hours" in data:
            fields["working_periods"] = tuple(
                _period(v, ("working_hours", i))
                for i, v in enumerate(_sequence(data["working_hours"], "working_hours")))
        if "weekend" in data:
            fields["weekend"] = frozenset(
                _weekday(v, ("weekend", i)) for i, v in enumerate(_sequence(data["weekend"], "weekend")))
        for key in ("holidays", "workdays"):
            if key in data:
                days: set[date] = set()
                for i, v in enumerate(_sequence(data[key], key)):
                    days.update(_dates(v, (key, i)))
                fields[key] = frozenset(days)
        weekend = fields.get("weekend", frozenset({5, 6}))
        holidays = fields.get("holidays", frozenset())
        for i, v in enumerate(_sequence(data.get("workdays", []), "workdays")):
            for d in _dates(v, ("workdays", i)):
                if d in holidays:
                    raise CalendarError(f"{d} is listed both as a holiday and as a working day",
                                        ("workdays", i))
                if d.weekday() not in weekend:
                    raise CalendarError(
                        f"{d} is a {d.strftime('%A')}, already a working day: workdays lists "
                        "weekend dates that are worked (调休)", ("workdays", i))
    except CalendarError as exc:
        raise exc.located(where) from None
    return fields


def _sequence(value: Any, key: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise CalendarError("must be a list", (key,))
    return list(value)


def _period(value: Any, path: YamlPath) -> tuple[int, int]:
    match = _PERIOD.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise CalendarError(f"'{value}' is not a working period: write it as \"09:00-12:00\"", path)
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
        raise CalendarError(f"'{value}' has an impossible time of day", path)
    start, end = h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60
    if end <= start:
        raise CalendarError(f"'{value}' ends before it starts (split a night shift at 24:00)",
                            path)
    return start, end


def _weekday(value: Any, path: YamlPath) -> int:
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in WEEKDAY_NAMES:
        hint = did_you_mean(str(name), [n for n in WEEKDAY_NAMES if n.isascii() and len(n) > 3])
        raise CalendarError(f"'{value}' is not a day of the week" + (f"; {hint}" if hint else ""),
                            path)
    return WEEKDAY_NAMES[name]


def _date(value: Any, path: YamlPath) -> date:
    # YAML 1.1 loaders may already have turned an unquoted 2026-01-01 into a date.
    if isinstance(value, date) and type(value) is date:
        return value
    text = value.strip() if isinstance(value, str) else None
    if text is None or not _DATE.fullmatch(text):
        raise CalendarError(f"'{value}' is not a date: write YYYY-MM-DD or YYYY-MM-DD..YYYY-MM-DD",
                            path)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CalendarError(f"'{value}' is not a real date", path) from None


def _dates(value: Any, path: YamlPath) -> list[date]:
    """One date, or every date of an inclusive range `a..b`."""
    if isinstance(value, str) and ".." in value:
        first_text, _, last_text = value.partition("..")
        first, last = _date(first_text, path), _date(last_text, path)
        if last < first:
            raise CalendarError(f"range '{value}' ends before it starts", path)
        if (last - first).days >= _MAX_RANGE_DAYS:
            raise CalendarError(f"range '{value}' is longer than a year", path)
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [_date(value, path)]
