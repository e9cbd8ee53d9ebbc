"""Duration literals as analysts write them: `24h`, `30m`, `2 workdays`, `1.5 hours`, `2 工作日`.

Wall-clock durations become `datetime.timedelta`; business durations (`workdays`, `workhours`)
stay `Duration` values, because only a business calendar can turn them into a point in time.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

WALL_UNITS: dict[str, float] = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}
BUSINESS_UNITS = ("workdays", "workhours")

_UNIT_WORDS: dict[str, str] = {}
for _canonical, _words in {
    "seconds": ("s", "sec", "secs", "second", "seconds", "秒"),
    "minutes": ("m", "min", "mins", "minute", "minutes", "分钟"),
    "hours": ("h", "hr", "hrs", "hour", "hours", "小时"),
    "days": ("d", "day", "days", "天"),
    "weeks": ("w", "week", "weeks", "周"),
    "workdays": ("wd", "workday", "workdays", "working day", "working days", "business day",
                 "business days", "工作日", "个工作日"),
    "workhours": ("wh", "workhour", "workhours", "working hour", "working hours",
                  "business hour", "business hours", "工作小时"),
}.items():
    for _word in _words:
        _UNIT_WORDS[_word] = _canonical

_UNIT_ALTERNATION = "|".join(sorted((re.escape(w) for w in _UNIT_WORDS), key=len, reverse=True))
DURATION_PATTERN = re.compile(
    rf"(?P<amount>\d+(?:\.\d+)?)(?P<space>\s*)(?P<unit>{_UNIT_ALTERNATION})(?![\w\u4e00-\u9fff])"
)
"""Matches one duration literal; used by `parse_duration` and by the expression pre-scanner."""


@dataclass(frozen=True, slots=True)
class Duration:
    """An amount of time in one unit; `business` units need a calendar to be placed in time."""

    amount: float
    unit: str

    @property
    def business(self) -> bool:
        return self.unit in BUSINESS_UNITS

    def to_timedelta(self) -> timedelta:
        """The wall-clock length; a business duration has none and raises ValueError."""
        if self.business:
            raise ValueError(f"{self} is counted in working time: use a business calendar")
        return timedelta(seconds=self.amount * WALL_UNITS[self.unit])

    def __str__(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"{amount} {self.unit}"

    def after(self, start: datetime, calendar: Any) -> datetime:
        """The instant this long after `start`: in wall time, or in working time through
        `calendar` (a BusinessCalendar); ValueError for working time without a calendar."""
        if not self.business:
            return start + self.to_timedelta()
        if calendar is None:
            raise ValueError(f"'{self}' is counted in working time, and the bundle has no calendar")
        return calendar.add_work_time(start, self)  # type: ignore[no-any-return]


def parse_duration(text: str) -> Duration:
    """Parse `24h`, `2 workdays`, `1.5 hours`...; raises ValueError with a clear message."""
    cleaned = text.strip()
    match = DURATION_PATTERN.fullmatch(cleaned)
    if match is None:
        meant = _meant(cleaned)
        raise ValueError(
            f"'{text}' is not a duration" + (f" (did you mean '{meant}'?)" if meant else "") + ": "
            + "write a number and a unit, e.g. 30m, 24h, 2d, 2 workdays or 4 workhours"
        )
    return Duration(float(match["amount"]), _UNIT_WORDS[match["unit"]])


def _meant(text: str) -> str | None:
    """The duration a misspelt or capitalised unit most likely meant (`5 wrokdays`, `2 Days`)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(\s*)([^\d\s].*)", text)
    if found is None:
        return None
    words = [w for w in _UNIT_WORDS if len(w) > 2]  # a one- or two-letter unit is no spelling
    close = difflib.get_close_matches(found[3].lower(), words, n=1, cutoff=0.75)
    return f"{found[1]} {close[0]}" if close else None


def as_value(duration: Duration) -> "timedelta | Duration":
    """The runtime value of a literal: a timedelta for wall units, the Duration itself otherwise."""
    return duration if duration.business else duration.to_timedelta()
