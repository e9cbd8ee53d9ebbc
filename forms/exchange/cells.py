"""One value <-> one spreadsheet cell, generic over the FieldType contract.

Export writes what a person reads where that reads back unambiguously: option labels (the full
path for trees) for choice fields, Yes/No (是/否) for booleans, numbers and dates as numbers and
dates, datetimes as wall time in the bundle's zone, a sub-table that fills only its first column
as one line per row; anything else as the type's JSON. Import accepts that, the option values,
and every locale's labels. Uploaded files are the exception: a cell cannot carry them, so export
writes their names, one per line, and import ignores the column (`holds_uploads`). A field type
may take over with two optional methods: `to_cell(value, spec, locale)` and `from_cell(cell, spec)`.

Formula injection (RELIABILITY 51): a text that a spreadsheet would run as a formula gets a
leading apostrophe in CSV (`quote_csv`), which `unquote_csv` removes again on import; the rule is
a bijection, so every text survives export -> import unchanged.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from forms.fields.base import FieldType
from forms.fields.files import Attachment
from forms.fields.subtable import CELL_BAR
from forms.messages import FieldInvalid
from forms.spec import FieldSpec

FORMULA_STARTS = frozenset("=+-@\t\r＝＋－＠")
"""First characters that make Excel, LibreOffice or Sheets treat a cell as a formula
(OWASP's list, plus the full-width forms an IME types)."""

LIST_SEPARATORS = re.compile(r"(\s*[,;\n，；、]\s*)")
DISPLAY_PROBE_LIMIT = 1000
"""Up to this many options, the type's own `display` of each is indexed too (a cascade's
display walks the tree, so asking it for every option of a large tree is quadratic)."""
_LONGEST_LABEL = 8
"""Pieces one option's label may span (bounds the work on a cell full of commas)."""
_SPACES = re.compile(r"\s+")
_PATH = re.compile(r"\s*[/／]\s*")


def needs_quote(text: str) -> bool:
    """Would a spreadsheet run this text (once leading apostrophes are taken off) as a formula?"""
    bare = text.lstrip("'")
    return bool(bare) and bare[0] in FORMULA_STARTS


def quote_csv(text: str) -> str:
    """NULs removed; a leading apostrophe when the text would start a formula."""
    text = text.replace("\x00", "")
    return "'" + text if needs_quote(text) else text


def unquote_csv(text: str) -> str:
    """The inverse of `quote_csv` (a user's own leading apostrophe before a formula character
    is Excel's "this is text" mark too, so it is taken off the same way)."""
    if text.startswith("'") and needs_quote(text[1:]):
        return text[1:]
    return text


def normalize(text: str) -> str:
    """Text compared case- and spacing-insensitively (labels typed by hand)."""
    text = _SPACES.sub(" ", text.replace("\ufeff", "").replace("\u200b", "")).strip().casefold()
    return _PATH.sub("/", text)


class CellProblem(Exception):
    """A cell that cannot become a field value; `key`/`params` name an exchange message."""

    def __init__(self, key: str, **params: Any):
        self.key = key
        self.params = params
        super().__init__(key)


_OPTIONS_NAMED = 12
"""At most this many options are named in a message about a cell (a tree may have hundreds)."""


class ChoiceIndex:
    """Every way a person may write an option: its value, its label and its display text
    (a tree's full path) in each locale. A text naming two options is ambiguous, not a guess.
    A text the field cannot take is a CellProblem that says what it may hold instead, with
    labels in `locale` (the field's own "choose one of the listed options" lists nothing in a
    spreadsheet)."""

    def __init__(self, ftype: FieldType, spec: FieldSpec, locale: str = "en"):
        self.locale = locale
        self._parse = ftype.parser(spec)
        self._walked = list(spec.choices.walk())
        self._groups: Mapping[str, tuple[str, ...]] = spec.choices.groups()
        self._paths: dict[str, str] = {}
        self.values: dict[str, str] = {}
        texts: dict[str, set[str]] = defaultdict(set)
        locales = {"en", "zh-CN"}
        walked = list(spec.choices.walk())
        for _, option, _ in walked:
            if isinstance(option.label, Mapping):
                locales.update(option.label)
        ask_type = len(walked) <= DISPLAY_PROBE_LIMIT
        options = {option.value: option for _, option, _ in walked}
        for _, option, parents in walked:
            value = option.value
            self.values[value] = value
            self._paths[value] = " / ".join([options[p].text(self.locale) for p in parents if p in options]
                                            + [option.text(self.locale)])
            texts[normalize(value)].add(value)
            for locale in locales:
                label = option.text(locale)
                texts[normalize(label)].add(value)
                if parents:  # a tree: the path of labels, as a cascade displays it
                    path = [options[p].text(locale) for p in parents if p in options] + [label]
                    texts[normalize(" / ".join(path))].add(value)
                if ask_type:
                    for shown in _displays(ftype, spec, value, locale):
                        texts[normalize(shown)].add(value)
        self.texts = {key: sorted(found) for key, found in texts.items() if key}

    def resolve(self, text: str) -> str | list[str]:
        """The option value(s) the text names; the text itself when it names none (the field
        type then reports it); CellProblem when it names several."""
        found = self._one(text)
        if found is not None:
            return self._taken(found, text)
        values = self._several(text.strip())
        if values is not None:
            return values
        if not self._takes(text):
            raise self._unknown(text.strip())
        return text

    def _takes(self, value: str) -> bool:
        try:
            self._parse(value)
        except FieldInvalid:
            return False
        return True

    def _taken(self, value: str, text: str) -> str:
        """`value` when the field takes it; a group of a tree whose leaves must be chosen is a
        CellProblem naming them (货物破损 is a group: 外包装破损 or 内件破损?)."""
        if self._takes(value):
            return value
        under = [self._paths[leaf] for leaf in self._groups.get(value, ()) if self._takes(leaf)]
        if not under:
            return value  # the field type says why
        raise CellProblem("choice_is_group", text=text.strip(), options=self._named(under))

    def _unknown(self, text: str) -> CellProblem:
        """What to say of a text that names no option: the options it looks like, or (a short
        list) every option."""
        allowed = [o.value for _, o, _ in self._walked if self._takes(o.value)]
        # Any locale's label or path may be the one mistyped; the options are named in the reader's.
        written = {key: found[0] for key, found in self.texts.items() if len(found) == 1 and found[0] in allowed}
        typed = normalize(text)
        close = difflib.get_close_matches(typed, list(written), n=3, cutoff=0.75)
        if not close and len(typed) >= 2:  # a word of the options' labels (延误 of 时效延误 / 运输超时)
            close = [key for key in written if typed in key]
        if close:
            return CellProblem("unknown_choice_close", text=text,
                               options=self._named([self._paths[v] for v in dict.fromkeys(written[c] for c in close)]))
        if len(allowed) <= _OPTIONS_NAMED:
            return CellProblem("unknown_choice_list", text=text, options=self._named([self._paths[v] for v in allowed]))
        return CellProblem("unknown_choice", text=text)

    def _named(self, options: list[str]) -> str:
        comma = "、" if self.locale.startswith("zh") else ", "
        return comma.join(options[:_OPTIONS_NAMED] + (["..."] if len(options) > _OPTIONS_NAMED else []))

    def _several(self, text: str) -> list[str] | None:
        """A list of options, each the longest run of pieces that names one (a label may
        itself hold a comma: "Blue, dark, Red" is two options when "Blue, dark" is a label)."""
        tokens = LIST_SEPARATORS.split(text)  # piece, separator, piece, ...
        pieces, separators = tokens[0::2], tokens[1::2]
        if len(pieces) < 2:
            return None
        values, start = [], 0
        while start < len(pieces):
            for end in range(min(len(pieces), start + _LONGEST_LABEL), start, -1):
                candidate = pieces[start] + "".join(s + p for s, p in zip(separators[start:end - 1],
                                                                          pieces[start + 1:end]))
                found = self._one(candidate) if candidate else None
                if found is not None:
                    values.append(found)
                    start = end
                    break
            else:
                if pieces[start]:
                    return None
                start += 1  # an empty piece: "a,,b" or a trailing comma
        return values

    def _one(self, text: str) -> str | None:
        if text in self.values:
            return text
        found = self.texts.get(normalize(text))
        if not found:
            return None
        if len(found) > 1:
            raise CellProblem("ambiguous_choice", text=text.strip(),
                              options=self._named([self._paths[v] for v in found]))
        return found[0]


def _displays(ftype: FieldType, spec: FieldSpec, value: str, locale: str) -> list[str]:
    """How the type displays one option, asked both as a single value and as a one-item list
    (the exporter cannot tell a one-choice type from a many-choice one; the wrong shape only
    adds a key that maps to the same option)."""
    shown = []
    for probe in (value, [value]):
        try:
            text = ftype.display(probe, spec, locale)
        except Exception:  # noqa: BLE001 - a type that cannot display this shape simply adds nothing
            continue
        if isinstance(text, str) and text:
            shown.append(text)
    return shown


# -- export --------------------------------------------------------------------------------------
def export_cell(ftype: FieldType, spec: FieldSpec, value: Any, locale: str) -> Any:
    """The cell for a stored value: None, str, int, float, Decimal, date, naive datetime or time."""
    hook = getattr(ftype, "to_cell", None)
    if hook is not None:
        return hook(value, spec, locale)
    if value is None:
        return None
    if spec.choices is not None or isinstance(value, bool):
        return ftype.display(value, spec, locale)
    if isinstance(value, datetime):
        # To the second, as people write times: a rule's now() carried the clock's microseconds
        # into the file ("2026-11-17 02:51:45.010939").
        return local_wall_time(value, spec.timezone).replace(microsecond=0)
    if isinstance(value, (str, int, float, Decimal, date, time)):
        return value
    if holds_uploads(ftype):
        return "\n".join(str(entry.get("name") or entry.get("id"))
                         for entry in value if isinstance(entry, Mapping))
    lines = _subtable_lines(ftype, spec, value)
    if lines is not None:
        return lines
    shown = ftype.to_json(value, spec)
    if isinstance(shown, (str, int, float)) and not isinstance(shown, bool):
        return shown
    return json.dumps(shown, ensure_ascii=False)


def holds_uploads(ftype: FieldType) -> bool:
    """Does the field hold uploaded files (which a spreadsheet cell can name but not carry)?"""
    return isinstance(ftype, Attachment)


def _subtable_lines(ftype: FieldType, spec: FieldSpec, value: Any) -> str | None:
    """A sub-table's rows as one line each, its cells joined by " | " and empty trailing cells
    left off (a cell like "SF1234567890 | 外包装破损\nYT9876543210"), when its cells are text and
    the type reads those lines back as exactly these rows; None otherwise (the caller writes
    JSON, which always reads back)."""
    columns = getattr(ftype, "columns", None)
    if columns is None or not isinstance(value, list) or not value:
        return None
    names = list(columns(spec))
    if not names or not all(isinstance(row, Mapping) and set(row) <= set(names)
                            and all(v is None or isinstance(v, str) for v in row.values()) for row in value):
        return None
    lines = []
    for row in value:
        cells = [row.get(name) or "" for name in names]
        while len(cells) > 1 and not cells[-1]:
            cells.pop()
        lines.append(CELL_BAR.join(cells))
    text = "\n".join(lines)
    try:
        same = ftype.to_json(ftype.parse(text, spec), spec) == ftype.to_json(value, spec)
    except FieldInvalid:
        return None
    return text if same else None


def local_wall_time(value: datetime, zone: str) -> datetime:
    """An aware datetime as the naive wall time of `zone` (spreadsheets have no time zones)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)


# -- import --------------------------------------------------------------------------------------
def import_cell(ftype: FieldType, spec: FieldSpec, cell: Any, choices: ChoiceIndex | None) -> Any:
    """The raw input `CompiledForm.validate` gets for one cell (None: the cell is empty)."""
    hook = getattr(ftype, "from_cell", None)
    if hook is not None:
        return hook(cell, spec)
    if cell is None:
        return None
    if isinstance(cell, str):
        if not cell.strip():
            return None
    elif isinstance(cell, float) and cell.is_integer() and abs(cell) < 2**53:
        cell = int(cell)  # a whole number typed in Excel is stored as 12.0 by some writers
    if choices is not None and isinstance(cell, (str, int)) and not isinstance(cell, bool):
        return choices.resolve(str(cell))
    if isinstance(cell, str) and cell.lstrip()[:1] in ("[", "{"):
        return _maybe_json(ftype, spec, cell)
    return cell


def _maybe_json(ftype: FieldType, spec: FieldSpec, text: str) -> Any:
    """Text for the type if it takes it as text; else the JSON export wrote for list/object values."""
    try:
        ftype.parse(text, spec)
        return text
    except FieldInvalid:
        pass
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    return decoded if isinstance(decoded, (list, dict)) else text
