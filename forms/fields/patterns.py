"""Analysts' regular expressions (`pattern:`): compiled once at load, bounded at run time.

Python's `re` backtracks and has no time limit, so a pattern such as `(a+)+` can take
exponential time on a crafted value. Two guards keep that out of reach:
- at load, a pattern that repeats an unbounded repetition is refused with its position;
- at run time a pattern only ever sees at most PATTERN_INPUT_CAP characters.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

PATTERN_INPUT_CAP = 1000
"""The longest value a `pattern` is matched against; longer values are refused as too long."""
MAX_PATTERN_LENGTH = 500

try:  # the parser behind `re` (Python 3.11+); used only to spot nested repetitions
    from re import _parser as _sre  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters: the run-time cap still holds
    _sre = None


@lru_cache(maxsize=2048)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern (cached: compiled at load, looked up at run time)."""
    return re.compile(pattern)


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with an analyst's pattern, or None when it may be used."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"pattern is longer than {MAX_PATTERN_LENGTH} characters"
    try:
        compile_pattern(pattern)
    except re.error as exc:
        where = f" (at character {exc.pos + 1})" if exc.pos is not None else ""
        return f"pattern is not a valid regular expression: {exc.msg}{where}"
    brace = _stray_brace(pattern)
    if brace is not None:
        # Python reads `[0-9]{10` as a digit then the text "{10": every value would be refused.
        return (f"pattern has a '{{' that starts no repetition (at character {brace + 1}), so it "
                "matches '{' itself: close it, as in {10} or {2,4}, or write \\{ for the character")
    if _nested_repetition(pattern):
        return ("pattern repeats a repetition, like (a+)+ or (\\w+\\s?)*, which can take "
                "exponential time on some inputs")
    return None


def full_match(pattern: str, value: str) -> bool:
    """Whether the whole of `value` matches; a value over the cap never does."""
    if len(value) > PATTERN_INPUT_CAP:
        return False
    return compile_pattern(pattern).fullmatch(value) is not None


_QUANTIFIER = re.compile(r"\{(\d+|\d+,\d*|,\d+)\}")


def _stray_brace(pattern: str) -> int | None:
    """The index of an unescaped `{` outside [...] that does not start {n}, {m,}, {,n} or {m,n}."""
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1:i + 2] == "]":  # `[]...]`: a first ] belongs to the class
                i += 1
        elif char == "{" and not _QUANTIFIER.match(pattern, i):
            return i
        i += 1
    return None


def _nested_repetition(pattern: str) -> bool:
    if _sre is None:  # pragma: no cover
        return False
    try:
        tree = _sre.parse(pattern)
    except Exception:  # pragma: no cover - compile succeeded, so this should not happen
        return False
    return _walk(tree, False)


def _walk(node: Any, inside_unbounded: bool) -> bool:
    repeats = (_sre.MAX_REPEAT, _sre.MIN_REPEAT)
    safe = tuple(getattr(_sre, name) for name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP") if hasattr(_sre, name))
    for op, av in node:
        if op in repeats:
            _low, high, sub = av
            unbounded = high == _sre.MAXREPEAT
            if unbounded and inside_unbounded:
                return True
            if _walk(sub, inside_unbounded or unbounded):
                return True
        elif op in safe:
            continue  # no backtracking into these
        else:
            for child in _children(av):
                if _walk(child, inside_unbounded):
                    return True
    return False


def _children(av: Any) -> Any:
    if isinstance(av, _sre.SubPattern):
        yield av
    elif isinstance(av, (tuple, list)):
        for item in av:
            yield from _children(item)
