"""Pre-scan of expression text, before `ast.parse` ever sees it.

Why it exists:

* CPython's parser fails on hostile text with `RecursionError` or `MemoryError` (`'not '*10000`,
  50,000 chained `+`, thousands of nested brackets), not with `SyntaxError`. Linear scans with
  hard caps on length, bracket depth, operator count and runs of prefix operators bound the
  text first, so the parser only ever sees small, shallow input.
* Duration literals (`24h`, `2 workdays`, `1.5 hours`, `2 工作日`) are not Python. Outside string
  literals they are replaced by placeholder identifiers of the SAME length (`___`), so every other
  token keeps the line and column the analyst wrote; the checker maps placeholders back by
  position.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

from engine.durations import DURATION_PATTERN, Duration, parse_duration

__all__ = [
    "MAX_SOURCE_CHARS", "MAX_BRACKET_DEPTH", "MAX_OPERATORS", "MAX_PREFIX_RUN",
    "Problem", "Prescan", "prescan", "normalize_newlines", "Positions",
]

MAX_SOURCE_CHARS = 2000
"""Longest expression accepted, in characters."""
MAX_BRACKET_DEPTH = 32
"""Deepest nesting of (), [] and {} accepted."""
MAX_OPERATORS = 200
"""Most operator tokens (+, ==, and, not, ...) in one expression."""
MAX_PREFIX_RUN = 12
"""Longest run of prefix operators (`- - - x`, `not not x`)."""

_OPERATOR = re.compile(
    r"\*\*|//|==|!=|<=|>=|<<|>>|[-+*/%<>~&|^@]|(?<![\w.])(?:not|and|or|if|in|is)(?!\w)"
)
_PREFIX_RUN = re.compile(r"(?:(?:[-+~]|(?<![\w.])not(?!\w))\s*)+")
_PREFIX_TOKEN = re.compile(r"[-+~]|not")
_OPEN, _CLOSE = "([{", ")]}"
_BARE_DATE = re.compile(r"(?<![\w.])\d{4}([-/])\d{1,2}\1\d{1,2}(?![\w.])")
"""`2026/12/01` or `2026-12-01` outside quotes: a date as a business writes it."""
_THOUSANDS = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?![\w.])")
"""`5,000` as a business writes a number: Python reads it as two values (5, 0), and a condition
`compensation > 5,000` would be a non-empty tuple, always true."""


@dataclass(frozen=True)
class Problem:
    """A problem found before parsing, at a 1-based (line, col) of the source."""

    message: str
    line: int
    col: int
    code: str
    hint: str | None = None


@dataclass(frozen=True)
class Prescan:
    """The text to parse (durations replaced) and what the scan found."""

    text: str
    durations: dict[tuple[int, int], Duration] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    balanced: bool = False
    """Brackets outside strings close in order and none is left open."""


def normalize_newlines(source: str) -> str:
    """`\\r\\n` and `\\r` as `\\n`, the way Python's tokenizer counts lines."""
    return source.replace("\r\n", "\n").replace("\r", "\n")


class Positions:
    """Turns offsets in a text into 1-based (line, col) positions, counted in characters."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self._starts = [0]
        for line in self.lines[:-1]:
            self._starts.append(self._starts[-1] + len(line) + 1)
        self._encoded: dict[int, bytes] = {}

    def of_index(self, index: int) -> tuple[int, int]:
        """(line, col) of a character index."""
        line = bisect.bisect_right(self._starts, index) - 1
        return line + 1, index - self._starts[line] + 1

    def of_bytes(self, lineno: int, byte_offset: int) -> tuple[int, int]:
        """(line, col) of an `ast` position (`col_offset` counts UTF-8 bytes)."""
        if not 1 <= lineno <= len(self.lines):
            return max(lineno, 1), max(byte_offset, 0) + 1
        encoded = self._encoded.get(lineno)
        if encoded is None:
            encoded = self._encoded[lineno] = self.lines[lineno - 1].encode("utf-8")
        return lineno, len(encoded[: max(byte_offset, 0)].decode("utf-8", errors="ignore")) + 1


def _code_segments(text: str) -> list[tuple[int, int]]:
    """[start, end) ranges of `text` outside string literals and comments."""
    segments: list[tuple[int, int]] = []
    n = len(text)
    i = start = 0
    while i < n:
        ch = text[i]
        if ch in "'\"":
            segments.append((start, i))
            triple = text.startswith(ch * 3, i)
            j = i + (3 if triple else 1)
            while j < n:
                c = text[j]
                if c == "\\":
                    j += 2
                elif triple and text.startswith(ch * 3, j):
                    j += 3
                    break
                elif not triple and c == ch:
                    j += 1
                    break
                elif not triple and c == "\n":  # unterminated: the parser will say so
                    break
                else:
                    j += 1
            i = start = min(j, n)
        elif ch == "#":
            segments.append((start, i))
            end = text.find("\n", i)
            i = start = n if end < 0 else end
        else:
            i += 1
    segments.append((start, n))
    return [(a, b) for a, b in segments if b > a]


def prescan(source: str) -> Prescan:
    """Cap the size and shape of `source` and replace its duration literals.

    `source` must already have normalized newlines. When a cap is exceeded the returned
    `problems` say where, and `text` must not be parsed.
    """
    if len(source) > MAX_SOURCE_CHARS:
        return Prescan(source, {}, (Problem(
            f"expression is too long ({len(source)} characters; the limit is {MAX_SOURCE_CHARS})",
            1, 1, "expr-too-large", "split it into computed fields or a registered function"),))
    positions = Positions(source)
    segments = _code_segments(source)

    depth = 0
    balanced = True
    operators = 0
    for a, b in segments:
        for i in range(a, b):
            ch = source[i]
            if ch in _OPEN:
                depth += 1
                if depth > MAX_BRACKET_DEPTH:
                    line, col = positions.of_index(i)
                    return Prescan(source, {}, (Problem(
                        f"expression is nested too deeply (more than {MAX_BRACKET_DEPTH} levels "
                        "of brackets)", line, col, "expr-too-large"),))
            elif ch in _CLOSE:
                depth -= 1
                if depth < 0:
                    balanced = False
                    depth = 0
        chunk = source[a:b]
        for match in _OPERATOR.finditer(chunk):
            operators += 1
            if operators > MAX_OPERATORS:
                line, col = positions.of_index(a + match.start())
                return Prescan(source, {}, (Problem(
                    f"expression has too many operators (more than {MAX_OPERATORS})",
                    line, col, "expr-too-large", "split it into smaller expressions"),))
        for match in _PREFIX_RUN.finditer(chunk):
            if len(_PREFIX_TOKEN.findall(match.group())) > MAX_PREFIX_RUN:
                line, col = positions.of_index(a + match.start())
                return Prescan(source, {}, (Problem(
                    f"expression has too many operators in a row (more than {MAX_PREFIX_RUN})",
                    line, col, "expr-too-large"),))

    misread = _thousands_separators(source, segments, positions) + _bare_dates(source, segments, positions)
    if misread:
        return Prescan(source, {}, tuple(sorted(misread, key=lambda p: (p.line, p.col))))
    text, durations = _replace_durations(source, segments, positions)
    return Prescan(text, durations, (), balanced and depth == 0)


def _bare_dates(source: str, segments: list[tuple[int, int]], positions: Positions) -> tuple[Problem, ...]:
    """A date written bare (`2026/12/01`, `2026-12-1`): Python reads arithmetic, a number that
    compares with a date only when the expression runs, or a refusal in its own jargon about
    leading zeros."""
    problems = []
    for a, b in segments:
        for match in _BARE_DATE.finditer(source, a, b):
            written = match.group()
            year, month, day = re.split(r"[-/]", written)
            line, col = positions.of_index(match.start())
            problems.append(Problem(
                f"'{written}' is read as arithmetic, not a date", line, col, "expr-syntax",
                f"write a date as date(\"{year}-{int(month):02d}-{int(day):02d}\")"))
    return tuple(problems)


def _thousands_separators(source: str, segments: list[tuple[int, int]],
                          positions: Positions) -> tuple[Problem, ...]:
    """A number written with a thousands separator (`5,000`) outside text: Python would read it
    as two numbers and the expression would still load, meaning something else."""
    problems = []
    for a, b in segments:
        for match in _THOUSANDS.finditer(source, a, b):
            written = match.group()
            line, col = positions.of_index(match.start())
            problems.append(Problem(
                f"'{written}' is read as {written.count(',') + 1} numbers, not one: a comma separates "
                "values in an expression", line, col, "expr-syntax",
                f"write {written.replace(',', '')} without the thousands separator (or put a space "
                "after the comma to list separate values)"))
    return tuple(problems)


def _replace_durations(source: str, segments: list[tuple[int, int]],
                       positions: Positions) -> tuple[str, dict[tuple[int, int], Duration]]:
    durations: dict[tuple[int, int], Duration] = {}
    pieces: list[str] = []
    last = 0
    for a, b in segments:
        for match in DURATION_PATTERN.finditer(source, a, b):
            start, end = match.span()
            literal = match.group()
            if "\n" in literal:
                continue
            if start > 0 and (source[start - 1].isalnum() or source[start - 1] in "_."):
                continue  # part of a name (`x2h`), a float (`.5h`) or a hex number
            pieces.append(source[last:start])
            pieces.append("_" * len(literal))
            last = end
            durations[positions.of_index(start)] = parse_duration(literal)
    pieces.append(source[last:])
    return "".join(pieces), durations
