"""Business calendar: working time across weekends, holidays and 调休; TZ independence (RELIABILITY 34)."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from typing import Iterator
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.calendar import BusinessCalendar, CalendarError, china_holidays_yaml
from engine.durations import parse_duration

SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc

CHINA_YAML = (
    "timezone: Asia/Shanghai\n"
    'working_hours: ["09:00-12:00", "13:30-18:00"]\n'
    "weekend: [saturday, sunday]\n" + china_holidays_yaml([2025, 2026])
)
CHINA = BusinessCalendar.from_definition(yaml.safe_load(CHINA_YAML), where="calendar.yaml")
BERLIN = BusinessCalendar(
    timezone="Europe/Berlin", working_periods=((8 * 3600, 12 * 3600), (13 * 3600, 17 * 3600 + 1800)),
    weekend=frozenset({6}), holidays=frozenset({date(2026, 3, 30), date(2026, 10, 26)}),
)


def sh(*args: int) -> datetime:
    """An instant given in Shanghai wall time."""
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_definition_is_read_with_ranges_and_swapped_days() -> None:
    assert CHINA.timezone == "Asia/Shanghai"
    assert CHINA.working_periods == ((9 * 3600, 12 * 3600), (13 * 3600 + 1800, 18 * 3600))
    assert CHINA.workday_length == timedelta(hours=7, minutes=30)
    assert all(date(2026, 2, d) in CHINA.holidays for d in range(15, 24))
    assert not CHINA.is_workday(date(2026, 2, 16))  # Spring Festival, a Monday
    assert CHINA.is_workday(date(2026, 2, 14))  # swapped working Saturday
    assert not CHINA.is_workday(date(2026, 2, 21))  # ordinary Saturday
    assert CHINA.is_workday(date(2026, 2, 24))


@pytest.mark.parametrize(
    ("start", "amount", "due", "why"),
    [
        (sh(2025, 3, 7, 15), "2 workdays", sh(2025, 3, 11, 15), "weekend"),
        (sh(2025, 4, 3, 10), "2 workdays", sh(2025, 4, 8, 10), "Qingming Fri-Sun"),
        (sh(2026, 2, 13, 10), "2 workdays", sh(2026, 2, 24, 10), "swapped Saturday, then 春节"),
        (sh(2025, 4, 26, 10), "1 workdays", sh(2025, 4, 27, 18), "starts on a swapped Sunday"),
        (sh(2025, 4, 26, 10), "5 workdays", sh(2025, 5, 6, 18), "Labour Day after 调休"),
        (sh(2025, 3, 10, 12, 15), "4 workhours", sh(2025, 3, 10, 17, 30), "lunch break skipped"),
        (sh(2025, 3, 7, 19), "1 workhours", sh(2025, 3, 10, 10), "Friday evening"),
        (sh(2025, 3, 10, 9), "24h", sh(2025, 3, 13, 10, 30), "24h = 24 working hours"),
        (sh(2025, 3, 10, 9), "1.5 workdays", sh(2025, 3, 11, 14, 15), "fractional"),
    ],
)
def test_add_work_time(start: datetime, amount: str, due: datetime, why: str) -> None:
    result = CHINA.add_work_time(start, parse_duration(amount))
    assert result == due, why
    assert result.tzinfo is UTC


def test_timedelta_counts_as_working_time_and_negative_amounts_go_back() -> None:
    assert CHINA.add_work_time(sh(2025, 3, 10, 17), timedelta(hours=2)) == sh(2025, 3, 11, 10)
    assert CHINA.add_work_time(sh(2025, 3, 11, 10), timedelta(hours=-2)) == sh(2025, 3, 10, 17)
    assert CHINA.add_work_time(sh(2025, 3, 8, 10), timedelta(0)) == sh(2025, 3, 8, 10)


def test_work_time_between_and_next_work_start() -> None:
    assert CHINA.work_time_between(sh(2025, 3, 10, 11), sh(2025, 3, 10, 14)) == timedelta(hours=1, minutes=30)
    assert CHINA.work_time_between(sh(2025, 3, 10, 14), sh(2025, 3, 10, 11)) == -timedelta(hours=1, minutes=30)
    assert CHINA.work_time_between(sh(2025, 3, 8, 0), sh(2025, 3, 9, 23)) == timedelta(0)
    assert CHINA.work_time_between(sh(2026, 2, 13, 9), sh(2026, 2, 25, 9)) == 3 * CHINA.workday_length
    assert CHINA.next_work_start(sh(2025, 3, 10, 12, 30)) == sh(2025, 3, 10, 13, 30)
    assert CHINA.next_work_start(sh(2025, 3, 10, 10, 5)) == sh(2025, 3, 10, 10, 5)
    assert CHINA.next_work_start(sh(2025, 9, 30, 18)) == sh(2025, 10, 9, 9)
    assert CHINA.next_work_start(sh(2025, 9, 30, 18)).tzinfo is UTC


def test_long_spans_are_fast() -> None:
    started = time.perf_counter()
    due = CHINA.add_work_time(sh(2025, 1, 2, 9), parse_duration("1000 workdays"))
    assert CHINA.work_time_between(sh(2025, 1, 2, 9), due) == 1000 * CHINA.workday_length
    assert time.perf_counter() - started < 1.0


def test_always_open_and_dst_days() -> None:
    always = BusinessCalendar.always_open()
    assert always.is_workday(date(2026, 2, 15))
    start = datetime(2026, 1, 3, 22, tzinfo=UTC)
    assert always.add_work_time(start, parse_duration("2 workdays")) == start + timedelta(hours=48)
    berlin = BusinessCalendar.always_open("Europe/Berlin")
    spring = datetime(2026, 3, 29, tzinfo=ZoneInfo("Europe/Berlin"))
    autumn = datetime(2026, 10, 25, tzinfo=ZoneInfo("Europe/Berlin"))
    assert berlin.work_time_between(spring, spring.astimezone(UTC) + timedelta(days=1)) == timedelta(hours=24)
    assert berlin.work_time_between(spring, datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Berlin"))) == timedelta(hours=23)
    assert berlin.work_time_between(autumn, datetime(2026, 10, 26, tzinfo=ZoneInfo("Europe/Berlin"))) == timedelta(hours=25)


@pytest.fixture
def server_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    time.tzset()


def test_server_time_zone_does_not_change_due_times(server_tz: pytest.MonkeyPatch) -> None:
    """RELIABILITY 34: same inputs under three server TZ settings -> identical UTC due times."""
    starts = [datetime(2026, 2, 13, 15, 30, tzinfo=UTC), datetime(2025, 9, 26, 23, 45, tzinfo=UTC)]
    results = []
    for tz in ("UTC", "America/New_York", "Pacific/Kiritimati"):
        server_tz.setenv("TZ", tz)
        time.tzset()
        results.append([CHINA.add_work_time(s, parse_duration("2 workdays")) for s in starts])
    assert results[0] == results[1] == results[2]
    assert all(d.tzinfo is UTC for d in results[0])
    assert results[0][0] == sh(2026, 2, 24, 18)  # Sat 14th is worked, then 春节


def test_due_time_is_stored_and_read_back_as_utc(server_tz: pytest.MonkeyPatch) -> None:
    import sqlalchemy as sa

    from engine.storage.db import create_engine, transaction
    from engine.storage.tables import metadata, timers

    server_tz.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    engine = create_engine("sqlite:///:memory:")
    metadata.create_all(engine)
    due = CHINA.add_work_time(sh(2026, 2, 13, 10), parse_duration("2 workdays"))
    with transaction(engine) as conn:
        conn.execute(timers.insert().values(kind="sla", key="t1", due_at=due.astimezone(SHANGHAI),
                                            payload={}, status="pending", attempts=0))
    with engine.connect() as conn:
        stored = conn.execute(sa.select(timers.c.due_at)).scalar_one()
        raw = conn.exec_driver_sql("SELECT due_at FROM dk_timers").scalar_one()
    assert stored == due and stored.tzinfo is UTC
    assert raw.startswith("2026-02-24 02:00:00")  # UTC wall time on disk
    engine.dispose()


@given(
    start=st.datetimes(datetime(2024, 12, 1), datetime(2027, 1, 31), timezones=st.just(UTC)),
    amount=st.timedeltas(timedelta(0), timedelta(days=60)),
    cal=st.sampled_from([CHINA, BERLIN, BusinessCalendar.always_open("Europe/Berlin")]),
)
@settings(max_examples=300, deadline=None)
def test_work_time_between_inverts_add_work_time(start: datetime, amount: timedelta, cal: BusinessCalendar) -> None:
    due = cal.add_work_time(start, amount)
    assert due >= start
    assert cal.work_time_between(start, due) == amount
    earlier = cal.add_work_time(start, -amount)
    assert earlier <= start
    assert cal.work_time_between(earlier, start) == amount


@given(
    a=st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
    b=st.datetimes(datetime(2025, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC)),
)
@settings(max_examples=200, deadline=None)
def test_add_work_time_inverts_work_time_between(a: datetime, b: datetime) -> None:
    spent = CHINA.work_time_between(a, b)
    assert CHINA.work_time_between(b, a) == -spent
    reached = CHINA.add_work_time(a, spent)
    assert CHINA.work_time_between(reached, b) == timedelta(0)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        ({"timezone": "Asia/Shanghia"}, ("timezone",), "unknown time zone"),
        ({"working_hours": ["9-12"]}, ("working_hours", 0), "not a working period"),
        ({"working_hours": ["09:00-12:00", "18:00-09:00"]}, ("working_hours", 1), "ends before"),
        ({"working_hours": ["09:00-12:00", "11:00-13:00"]}, ("working_hours", 1), "overlap"),
        ({"working_hours": ["09:00-25:00"]}, ("working_hours", 0), "impossible"),
        ({"working_hours": "09:00-12:00"}, ("working_hours",), "must be a list"),
        ({"weekend": ["saturdya"]}, ("weekend", 0), "did you mean 'saturday'"),
        ({"holidays": ["2026-02-30"]}, ("holidays", 0), "not a real date"),
        ({"holidays": ["2026/02/03"]}, ("holidays", 0), "YYYY-MM-DD"),
        ({"holidays": ["2026-02-23..2026-02-15"]}, ("holidays", 0), "ends before it starts"),
        ({"holidays": ["2026-01-01..2027-06-01"]}, ("holidays", 0), "longer than a year"),
        ({"holidays": ["2026-02-14"], "workdays": ["2026-02-14"]}, ("workdays", 0), "both"),
        ({"workdays": ["x", "2026-02-16"]}, ("workdays", 0), "not a date"),
        ({"workdays": ["2026-02-14", "2026-02-16"]}, ("workdays", 1), "already a working day"),
        ({"weekends": ["sunday"]}, ("weekends",), "did you mean 'weekend'"),
        ({"weekend": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, ("weekend",), "at least one"),
    ],
)
def test_bad_definitions_name_where_the_problem_is(data: dict, path: tuple, message: str) -> None:
    with pytest.raises(CalendarError, match=message) as info:
        BusinessCalendar.from_definition(data, where="definitions/x/calendar.yaml")
    assert isinstance(info.value, ValueError)
    assert info.value.path == path
    assert str(info.value).startswith("definitions/x/calendar.yaml: ")


def test_chinese_weekday_names_and_yaml_dates_are_accepted() -> None:
    cal = BusinessCalendar.from_definition(
        {"weekend": ["星期六", "周日"], "holidays": [date(2026, 10, 1)], "label": "x"})
    assert cal.weekend == frozenset({5, 6})
    assert not cal.is_workday(date(2026, 10, 1))


def test_china_helper_refuses_unknown_years() -> None:
    with pytest.raises(ValueError, match="2027"):
        china_holidays_yaml([2026, 2027])
    text = china_holidays_yaml([2026], indent=2)
    assert text.startswith("  holidays:\n") and '"2026-02-15..2026-02-23"' in text


@pytest.mark.parametrize("text, meant", [("5 wrokdays", "5 workdays"), ("2 Days", "2 days"),
                                         ("10 mintues", "10 minutes")])
def test_a_misspelt_duration_unit_is_told_the_duration_meant(text: str, meant: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_duration(text)
    assert str(refused.value).startswith(f"'{text}' is not a duration (did you mean '{meant}'?): write")


def test_a_duration_after_an_instant_is_wall_time_or_working_time_by_its_unit() -> None:
    from datetime import datetime, timezone

    from engine.durations import parse_duration

    friday_5pm = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)  # 17:00 in Shanghai
    assert parse_duration("2d").after(friday_5pm, None) == datetime(2026, 11, 29, 9, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError, match="counted in working time, and the bundle has no calendar"):
        parse_duration("2 workdays").after(friday_5pm, None)
