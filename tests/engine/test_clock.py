"""Clocks: aware UTC instants, and a manual clock that tests and simulations move by hand."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from engine.clock import Clock, ManualClock, SystemClock, ensure_utc


def test_system_clock_is_aware_utc_and_current() -> None:
    now = SystemClock().now()
    assert now.tzinfo is timezone.utc
    assert abs(now - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert isinstance(SystemClock(), Clock)


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(datetime(2026, 2, 13, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    assert isinstance(clock, Clock)
    assert clock.now() == datetime(2026, 2, 13, 2, 0, tzinfo=timezone.utc)
    assert clock.now().tzinfo is timezone.utc
    assert clock.now() == clock.now()
    assert clock.advance(timedelta(hours=30)) == datetime(2026, 2, 14, 8, 0, tzinfo=timezone.utc)
    assert clock.now() == datetime(2026, 2, 14, 8, 0, tzinfo=timezone.utc)
    jumped = clock.set(datetime(2027, 1, 1, tzinfo=ZoneInfo("America/New_York")))
    assert jumped == clock.now() == datetime(2027, 1, 1, 5, 0, tzinfo=timezone.utc)
    assert clock.now().tzinfo is timezone.utc


def test_manual_clock_refuses_naive_datetimes_and_non_timedeltas() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 2))
    with pytest.raises(TypeError):
        clock.advance(60)  # type: ignore[arg-type]


def test_manual_clock_is_safe_to_advance_from_threads() -> None:
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))

    def tick() -> None:
        for _ in range(1000):
            clock.advance(timedelta(seconds=1))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == datetime(2026, 1, 1, 1, 6, 40, tzinfo=timezone.utc)


def test_ensure_utc_converts_aware_values() -> None:
    local = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert ensure_utc(local) == datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc)
    assert ensure_utc(local).tzinfo is timezone.utc
