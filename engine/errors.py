"""Diagnostics: how every problem in a definition reaches an analyst.

One formatter (`format_diagnostic`) prints `path:LINE:COL: error: MESSAGE [code]`; the web UI and
the API return the same `Diagnostic` as JSON (`Diagnostic.to_json`).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Iterator, Literal

from engine.types import Span, YamlPath

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem found in a definition, with where it is and what would fix it."""

    message: str
    span: Span | None = None
    code: str = "invalid"
    hint: str | None = None
    yaml_path: YamlPath = ()
    severity: Severity = "error"

    def sort_key(self) -> tuple[str, int, int, str]:
        if self.span is None:
            return ("", 0, 0, self.message)
        return (self.span.file, self.span.line, self.span.col, self.message)

    def to_json(self) -> dict[str, object]:
        """The diagnostic as plain data for the API and the web UI."""
        return {
            "severity": self.severity,
            "message": self.message,
            "code": self.code,
            "hint": self.hint,
            "file": self.span.file if self.span else None,
            "line": self.span.line if self.span else None,
            "col": self.span.col if self.span else None,
            "path": format_yaml_path(self.yaml_path),
            "text": format_diagnostic(self),
        }


def format_yaml_path(path: YamlPath) -> str:
    """`nodes.accept.assign[0]` style rendering of a YAML path."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def format_diagnostic(diag: Diagnostic) -> str:
    """THE formatter: `file:line:col: error: message [code]` plus an indented hint line."""
    where = f"{diag.span}: " if diag.span else ""
    path = f" (at {format_yaml_path(diag.yaml_path)})" if diag.yaml_path else ""
    text = f"{where}{diag.severity}: {diag.message}{path} [{diag.code}]"
    if diag.hint:
        text += f"\n  hint: {diag.hint}"
    return text


@dataclass
class Diagnostics:
    """A collector: every stage adds what it finds, nothing stops at the first problem."""

    items: list[Diagnostic] = field(default_factory=list)

    def add(self, diag: Diagnostic) -> None:
        self.items.append(diag)

    def error(
        self,
        message: str,
        span: Span | None = None,
        *,
        code: str = "invalid",
        hint: str | None = None,
        yaml_path: YamlPath = (),
    ) -> None:
        """Record an error."""
        self.add(Diagnostic(message, span, code, hint, yaml_path, "error"))

    def warning(
        self,
        message: str,
        span: Span | None = None,
        *,
        code: str = "warning",
        hint: str | None = None,
        yaml_path: YamlPath = (),
    ) -> None:
        """Record a warning (reported, but the bundle still loads)."""
        self.add(Diagnostic(message, span, code, hint, yaml_path, "warning"))

    def extend(self, diags: Iterable[Diagnostic]) -> None:
        self.items.extend(diags)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.items)

    def sorted(self) -> list[Diagnostic]:
        """Unique diagnostics ordered by file, line and column. The same problem at the same
        place is one, whatever path it was found through: a mistake inside an anchored block
        (`escalation: &escalation`) is reported once at its text, not again for every
        `*escalation` that repeats it (engine/yamlsource.py SourceMap.written)."""
        seen: set[tuple[object, ...]] = set()
        out = []
        for d in sorted(self.items, key=Diagnostic.sort_key):
            key = (d.span, d.message, d.code, d.hint, d.severity)
            if key not in seen:
                seen.add(key)
                out.append(d)
        return out

    def __iter__(self) -> Iterator[Diagnostic]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class DocketError(Exception):
    """Base of every error Docket raises on purpose."""


class DefinitionError(DocketError):
    """A bundle failed to load; carries every diagnostic found."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        super().__init__("\n".join(format_diagnostic(d) for d in self.diagnostics))


class ExpressionError(DocketError):
    """An expression was refused at load or failed at run time; carries its position."""

    def __init__(self, message: str, span: Span | None = None, *, source: str | None = None):
        self.message = message
        self.span = span
        self.source = source
        super().__init__(f"{span}: {message}" if span else message)


class ConflictError(DocketError):
    """A concurrent change won first: the caller should reload and try again."""


class IdempotencyKeyReused(ConflictError):
    """A retry key was sent again with a different request: the client has a bug."""


class NotFoundError(DocketError):
    """The thing asked for does not exist (or the caller may not know it exists)."""


class ValidationFailed(DocketError):
    """Submitted data broke the definition's rules; `errors` maps field -> messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__(errors)  # the text is built only when shown: refused imports raise thousands

    def __str__(self) -> str:
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in self.errors.items())


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt name, or None if nothing is close."""
    names = sorted(set(candidates))
    matches = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not matches:
        # Another case ('SMS' for the option 'sms') is a likely slip in which difflib sees no
        # likeness at all: compare the lower-case forms too.
        lowered = {str(n).lower(): n for n in reversed(names)}
        matches = [lowered[m] for m in difflib.get_close_matches(str(name).lower(), list(lowered), n=1, cutoff=0.6)]
    return f"did you mean '{matches[0]}'?" if matches else None


WIDE_PUNCTUATION = {"“": '"', "”": '"', "‘": "'", "’": "'", "（": "(", "）": ")", "，": ",",
                    "＝": "=", "＞": ">", "＜": "<", "！": "!", "：": ":", "［": "[", "］": "]", "＋": "+",
                    "－": "-", "、": ",", "％": "%"}
"""Punctuation a Chinese input method types (full-width, or curly quotes) -> what was meant."""


INVISIBLE = {"\u00a0": "a non-breaking space", "\u200b": "a zero-width space", "\u200c": "a zero-width non-joiner",
             "\u200d": "a zero-width joiner", "\u2060": "a word joiner", "\ufeff": "a byte-order mark",
             "\u3000": "a full-width space"}
"""Characters a paste from a document or chat brings along that look like a space, or like nothing."""


def invisible_hint(text: str) -> str | None:
    """The fix for the first invisible or look-alike space in `text`, or None when it has none:
    `'confirm\u200b'` prints like `'confirm'`, so "did you mean 'confirm'?" baffled."""
    for i, ch in enumerate(str(text)):
        if ch in INVISIBLE:
            what = f"{INVISIBLE[ch]} (U+{ord(ch):04X})"
            if len(text) == 1:
                return f"this is {what}, pasted from a document or a chat: type an ordinary space, or delete it"
            where = f"after '{text[:i]}'" if i else "at its start"
            return f"it holds {what} {where}, pasted from a document or a chat: delete it, or type an ordinary space"
    return None


def wide_punctuation_hint(text: str) -> str | None:
    """The fix for the first Chinese punctuation mark in `text`, or None when it has none."""
    mark = next((ch for ch in str(text) if ch in WIDE_PUNCTUATION), None)
    if mark is None:
        return None
    return (f"'{mark}' is Chinese punctuation: write {WIDE_PUNCTUATION[mark]} instead "
            "(switch the input method to English punctuation)")


_SEPARATED_NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def separator_hint(text: str) -> str | None:
    """The fix for a number written with thousands separators (`5,000`, `10,000,000`), which a
    business writes and YAML, decision cells and expressions read as text or several values."""
    if not isinstance(text, str) or not _SEPARATED_NUMBER.fullmatch(text.strip()):
        return None
    return f"write {text.strip().replace(',', '')} without the thousands separator"


_CHINESE_MULTIPLES = {"万": 10_000, "千": 1_000, "百": 100, "亿": 100_000_000}
_CURRENCY_MARKS = r"(?:元|块钱|块|人民币|RMB|CNY|rmb|yuan)"


def amount_hint(text: str) -> str | None:
    """The fix for an amount written as people say it (`2万`, `20000元`, `¥20000`), which
    expressions and decision cells read as no number: the number alone."""
    if not isinstance(text, str):
        return None
    found = re.search(r"(\d+(?:\.\d+)?)\s*([万千百亿])", text)
    if found:
        full = (Decimal(found[1]) * _CHINESE_MULTIPLES[found[2]]).normalize()
        return f"write the number in full, {full:f}, not {found[0]}: only digits are read"
    found = re.search(r"(\d+(?:\.\d+)?)\s*" + _CURRENCY_MARKS, text) or re.search(
        r"[¥￥$]\s*(\d+(?:\.\d+)?)", text)
    if found:
        return (f"write the amount as a bare number, {found[1]}, not {found[0]}: the field holds the "
                "amount, without its currency")
    return None


_IRREGULAR_PLURALS = {"status": "statuses", "index": "indexes", "child": "children", "person": "people",
                      "analysis": "analyses", "criterion": "criteria"}


def plural(noun: str) -> str:
    """The plural of a noun naming what a hint lists: "statuses", "template files", "policies";
    "dimension or measure" -> "dimensions or measures"."""
    if " or " in noun:
        return " or ".join(plural(part) for part in noun.split(" or "))
    head, _, last = noun.rpartition(" ")
    prefix = head + " " if head else ""
    if last in _IRREGULAR_PLURALS:
        return prefix + _IRREGULAR_PLURALS[last]
    if last.endswith(("s", "x", "z", "ch", "sh")):
        return prefix + last + "es"
    if len(last) > 1 and last.endswith("y") and last[-2] not in "aeiou":
        return prefix + last[:-1] + "ies"
    return prefix + last + "s"

