"""Shared vocabulary of Docket: the small types every module speaks in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

JsonValue = Union[None, bool, int, float, str, Sequence["JsonValue"], Mapping[str, "JsonValue"]]
"""A value as it comes out of a YAML or JSON document."""

YamlPath = tuple[Union[str, int], ...]
"""Where a value sits inside a document: mapping keys and sequence indexes from the root."""

Label = Union[str, Mapping[str, str]]
"""A label is a plain string or a map of locale -> string (e.g. {zh-CN: 受理, en: Accept})."""


@dataclass(frozen=True, slots=True)
class Span:
    """A 1-based position range inside a definition file."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def shifted(self, line_offset: int, col_offset: int) -> "Span":
        """A span moved inside this one, e.g. a token inside an expression scalar."""
        if line_offset == 0:
            return Span(self.file, self.line, self.col + col_offset)
        return Span(self.file, self.line + line_offset, col_offset + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


def label_text(label: Any, locale: str = "en", fallback: str = "") -> str:
    """The text of a label for a locale, falling back to en, zh-CN, then any value."""
    if label is None:
        return fallback
    if isinstance(label, str):
        return label
    if label.__class__ is dict or isinstance(label, Mapping):  # a plain dict first: ABC checks are slow
        for key in (locale, locale.split("-")[0], "en", "zh-CN"):
            if key in label and isinstance(label[key], str):
                return label[key]
        for value in label.values():
            if isinstance(value, str):
                return value
    return fallback


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with … where it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def translate(catalog: Mapping[str, Mapping[str, str]], key: str, locale: str = "en", **params: Any) -> str:
    """THE lookup of a built-in message: `catalog[key]` in `locale` (falling back like
    `label_text`), with `params` filled in; an unknown key comes back as itself."""
    table = catalog.get(key)
    if table is None:
        return key
    text = label_text(table, locale, key)
    return text.format(**params) if params else text
