"""Retry policy shared by durable timers and the outbox: N attempts with exponential backoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from engine.types import clip

__all__ = ["RetryPolicy", "error_text"]


@dataclass(frozen=True)
class RetryPolicy:
    """Try up to `max_attempts` times; wait `base_delay * 2**(n-1)` (capped) after failure n.

    The defaults (5 tries after 30 s, 1 min, 2 min, 4 min) ride out a restarting mail server or
    a deploy of the receiving system without hiding a permanent fault for long.
    """

    max_attempts: int = 5
    base_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < timedelta(0) or self.max_delay < timedelta(0):
            raise ValueError("retry delays must not be negative")

    def delay(self, failures: int) -> timedelta:
        """How long to wait after the `failures`-th failed attempt (1-based)."""
        exponent = min(max(failures - 1, 0), 32)  # 2**32 * anything already exceeds any cap
        return min(self.base_delay * (2 ** exponent), self.max_delay)

    def exhausted(self, failures: int) -> bool:
        """True when `failures` failed attempts use up the policy (give up: incident/dead letter)."""
        return failures >= self.max_attempts


def error_text(exc: BaseException, limit: int = 2000) -> str:
    """`Type: message` of an exception, bounded, for a last_error column an admin reads."""
    return clip(f"{type(exc).__name__}: {exc}".strip(), limit)
