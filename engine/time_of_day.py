"""Times of day written as text: "08:30", "8:30:15", also with the full-width colon (08：30)."""

from __future__ import annotations

import re
from datetime import time

__all__ = ["TIME_OF_DAY", "parse_time_of_day"]

TIME_OF_DAY = re.compile(r"([01]?[0-9]|2[0-3])[:：]([0-5][0-9])(?:[:：]([0-5][0-9]))?")


def parse_time_of_day(text: str) -> time | None:
    """The time of day `text` names (surrounding blanks ignored), or None if it names none."""
    match = TIME_OF_DAY.fullmatch(text.strip())
    if match is None:
        return None
    return time(int(match[1]), int(match[2]), int(match[3] or 0))
