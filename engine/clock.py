"""Clocks: the only way Docket learns what time it is.

Every service takes a `Clock` instead of calling `datetime.now()`, so tests and `docket simulate`
can run weeks of SLA time in seconds with a `ManualClock`, and replays see the same instants.
All instants are timezone-aware UTC; local time exists only inside a business calendar.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta, timezone
from typing import Iterator, Protocol, runtime_checkable

__all__ = ["Clock", "SystemClock", "ManualClock", "ensure_utc", "checking_at", "check_instant"]

_CHECK_INSTANT: ContextVar[datetime | None] = ContextVar("check_instant", default=None)


def ensure_utc(value: datetime, *, what: str = "datetime") -> datetime:
    """`value` converted to UTC; a naive datetime is refused (its meaning depends on the server)."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(timezone.utc)


@runtime_checkable
class Clock(Protocol):
    """Something that tells the current instant."""

    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real clock of the machine, in UTC (independent of the server's TZ setting)."""

    def now(self) -> datetime:
        """The current instant in UTC."""
        return datetime.now(timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to: for tests, simulation and replay.

    Thread-safe, because a simulated scheduler may read it from a worker thread while the test
    thread advances it.
    """

    def __init__(self, start: datetime):
        self._lock = threading.Lock()
        self._now = ensure_utc(start, what="ManualClock start")

    def now(self) -> datetime:
        """The instant the clock was last set or advanced to, in UTC."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` (negative moves back) and return the new instant."""
        if not isinstance(delta, timedelta):
            raise TypeError(f"advance() takes a timedelta, got {type(delta).__name__}")
        with self._lock:
            self._now = self._now + delta
            return self._now

    def set(self, dt: datetime) -> datetime:
        """Jump to the instant `dt` (must be timezone-aware) and return it in UTC."""
        value = ensure_utc(dt, what="ManualClock.set")
        with self._lock:
            self._now = value
            return value

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


@contextmanager
def checking_at(instant: datetime) -> Iterator[None]:
    """Within the block, `check_instant()` is `instant`: the moment the command whose values are
    being checked runs at, by its runtime's clock.

    A field type checks a value against "now" (a `not_future` date) in `parse(raw, spec)`, which
    is handed no clock. The form validator, which is, says here which instant that is, so a
    scenario or simulation dated ahead of the real day refuses what its own day would.
    """
    token = _CHECK_INSTANT.set(instant)
    try:
        yield
    finally:
        _CHECK_INSTANT.reset(token)


def check_instant() -> datetime:
    """The instant values are checked against: the one `checking_at` set, else the machine's
    clock (a value parsed outside any command, e.g. a default checked at load)."""
    return _CHECK_INSTANT.get() or datetime.now(timezone.utc)
