"""Business calendars: working hours, weekends, public holidays and swapped working days (调休).

A `BusinessCalendar` turns business durations (`2 workdays`, `4 workhours`) into instants and
measures working time between instants. Instants go in and come out as aware UTC datetimes;
local wall time (the calendar's zone) is used only to decide which hours of which days count,
so the server's own TZ setting never changes a due time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.calendar.definition import CalendarError, parse_calendar_fields
from engine.clock import ensure_utc
from engine.durations import Duration

__all__ = ["BusinessCalendar"]

UTC = timezone.utc
_DAY_SECONDS = 86400
_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class BusinessCalendar:
    """When work happens. `working_periods` are (start, end) seconds after local midnight."""

    timezone: str = "UTC"
    working_periods: tuple[tuple[int, int], ...] = ((9 * 3600, 18 * 3600),)
    weekend: frozenset[int] = frozenset({5, 6})  # date.weekday(): Monday is 0
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()  # swapped working days: weekend dates worked
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterables from Python callers, but keep the instance hashable and immutable.
        object.__setattr__(self, "working_periods",
                           tuple((int(s), int(e)) for s, e in self.working_periods))
        for name in ("weekend", "holidays", "workdays"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise CalendarError(f"unknown time zone '{self.timezone}' ({_zone_meant(self.timezone)})",
                                ("timezone",)) from exc
        if not self.working_periods:
            raise CalendarError("at least one working period is needed", ("working_hours",))
        previous_end = 0
        for i, (start, end) in enumerate(self.working_periods):
            if not 0 <= start < end <= _DAY_SECONDS:
                raise CalendarError("a working period must end after it starts, within one day "
                                    "(split a night shift at 24:00)", ("working_hours", i))
            if start < previous_end:
                raise CalendarError("working periods must be in order and must not overlap",
                                    ("working_hours", i))
            previous_end = end
        if len(self.weekend) >= 7 or not self.weekend <= set(range(7)):
            raise CalendarError("the weekend must leave at least one working weekday", ("weekend",))
        both = self.holidays & self.workdays
        if both:
            raise CalendarError(f"{min(both)} is listed both as a holiday and as a working day",
                                ("workdays",))

    @classmethod
    def always_open(cls, tz: str = "UTC") -> "BusinessCalendar":
        """A 24x7 calendar (no weekend, no holidays): working time equals wall time."""
        return cls(timezone=tz, working_periods=((0, _DAY_SECONDS),), weekend=frozenset())

    @classmethod
    def from_definition(cls, data: Mapping[str, Any], *, where: str = "") -> "BusinessCalendar":
        """Build a calendar from its YAML shape; raises `CalendarError` (a ValueError) naming
        the key and index of the first bad value."""
        fields = parse_calendar_fields(data, where)
        try:
            return cls(**fields)
        except CalendarError as exc:
            raise exc.located(where) from None

    # ----------------------------------------------------------------------------- queries

    @property
    def zone(self) -> ZoneInfo:
        """The calendar's time zone."""
        return self._zone

    @property
    def workday_length(self) -> timedelta:
        """Working time in one full working day (what `1 workdays` means)."""
        return timedelta(seconds=sum(end - start for start, end in self.working_periods))

    def is_workday(self, d: date) -> bool:
        """True if `d` (a local date) has working hours."""
        if d in self.workdays:
            return True
        return d.weekday() not in self.weekend and d not in self.holidays

    def local(self, t: datetime) -> datetime:
        """An aware instant in the calendar's time zone."""
        return ensure_utc(t).astimezone(self._zone)

    def local_date(self, t: datetime) -> date:
        """The calendar-local date of an aware instant."""
        return self.local(t).date()

    def day_intervals(self, d: date) -> list[tuple[datetime, datetime]]:
        """The working intervals of local date `d` as (start, end) UTC instants."""
        if not self.is_workday(d):
            return []
        midnight = datetime(d.year, d.month, d.day)
        out = []
        for start, end in self.working_periods:
            # Wall time -> UTC through the zone, so DST days get their true length.
            a = (midnight + timedelta(seconds=start)).replace(tzinfo=self._zone)
            b = (midnight + timedelta(seconds=end)).replace(tzinfo=self._zone)
            a_utc, b_utc = a.astimezone(UTC), b.astimezone(UTC)
            if b_utc > a_utc:
                out.append((a_utc, b_utc))
        return out

    def next_work_start(self, t: datetime) -> datetime:
        """The first instant at or after `t` that lies in working time (UTC)."""
        t = ensure_utc(t)
        d = self.local_date(t)
        while True:
            for a, b in self.day_intervals(d):
                if b > t:
                    return max(a, t)
            d += _ONE_DAY

    def add_work_time(self, start: datetime, amount: Duration | timedelta) -> datetime:
        """The instant `amount` of working time after `start` (before it, if negative).

        Every amount counts as working time: `24h` is 24 working hours, `2 workdays` is twice
        `workday_length`, `4 workhours` is 4 hours. Counting starts at the next working period
        when `start` is outside hours; the result is the earliest instant at which that much
        working time has elapsed, so it can be the end of a period (e.g. 18:00, not 09:00 next
        day). Whole intervals are consumed at once, so long spans cost one step per day.
        """
        t = ensure_utc(start, what="start")
        remaining = self.work_time(amount)
        if remaining == timedelta(0):
            return t
        if remaining > timedelta(0):
            d = self.local_date(t)
            while True:
                for a, b in self.day_intervals(d):
                    if b <= t:
                        continue
                    a = max(a, t)
                    if remaining <= b - a:
                        return a + remaining
                    remaining -= b - a
                d += _ONE_DAY
        remaining = -remaining
        d = self.local_date(t)
        while True:
            for a, b in reversed(self.day_intervals(d)):
                if a >= t:
                    continue
                b = min(b, t)
                if remaining <= b - a:
                    return b - remaining
                remaining -= b - a
            d -= _ONE_DAY

    def work_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Working time from `a` to `b`; negative if `b` is before `a`."""
        a, b = ensure_utc(a, what="a"), ensure_utc(b, what="b")
        if b < a:
            return -self.work_time_between(b, a)
        total = timedelta(0)
        d, last = self.local_date(a), self.local_date(b)
        while d <= last:
            for x, y in self.day_intervals(d):
                lo, hi = max(x, a), min(y, b)
                if hi > lo:
                    total += hi - lo
            d += _ONE_DAY
        return total

    def work_time(self, amount: Duration | timedelta) -> timedelta:
        """`amount` as a length of working time (see `add_work_time`)."""
        if isinstance(amount, timedelta):
            return amount
        if isinstance(amount, Duration):
            if amount.unit == "workdays":
                return self.workday_length * amount.amount
            if amount.unit == "workhours":
                return timedelta(hours=amount.amount)
            return amount.to_timedelta()
        raise TypeError(f"expected a Duration or timedelta, got {type(amount).__name__}")



def _zone_meant(name: object) -> str:
    """'did you mean ...?' for a misspelt IANA zone (Asia/Shanghia, asia/shanghai), else an example."""
    from zoneinfo import available_timezones

    from engine.errors import did_you_mean

    return did_you_mean(str(name), available_timezones()) or "e.g. Asia/Shanghai"
