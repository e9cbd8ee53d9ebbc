"""The columns of an exported sheet, and how an imported sheet's headers map back to fields."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

from engine.errors import NotFoundError
from engine.types import label_text
from forms.compile import CompiledForm
from forms.exchange.cells import CellProblem, normalize
from forms.fields.base import FieldType
from forms.spec import FieldSpec

SYSTEM_COLUMNS: dict[str, dict[str, str]] = {
    "query_no": {"en": "Query number", "zh-CN": "查询编号"},
    "status": {"en": "Status", "zh-CN": "状态"},
    "created_at": {"en": "Created at", "zh-CN": "提交时间"},
}
"""Record columns every export carries before the fields; an import reads past them."""


@dataclass(frozen=True)
class Column:
    """One column: a field of the form (`spec` set) or a system column of the record table."""

    key: str
    header: str
    spec: FieldSpec | None = None
    ftype: FieldType | None = None


def export_columns(form: CompiledForm, fields: Sequence[str] | None, locale: str) -> list[Column]:
    """System columns, then the chosen fields (default: every stored field, in form order).

    Headers are labels in `locale`; a label two columns share gets the field name in brackets
    (`Delay [pickup_delay]`), which the importer reads back.
    """
    names = list(form.stored) if fields is None else list(fields)
    unknown = [n for n in names if n not in form.stored]
    if unknown:
        raise NotFoundError(f"form '{form.name}' has no stored field(s): {', '.join(unknown)}")
    columns = [Column(key, label_text(labels, locale, key)) for key, labels in SYSTEM_COLUMNS.items()]
    columns += [Column(n, form.field(n).text(locale), form.field(n), form.types[n]) for n in names]
    seen = Counter(normalize(c.header) for c in columns)
    return [Column(c.key, f"{c.header} [{c.key}]", c.spec, c.ftype)
            if c.spec is not None and seen[normalize(c.header)] > 1 else c for c in columns]


def _label_texts(label: Any) -> Iterator[str]:
    if isinstance(label, str):
        yield label
    elif isinstance(label, Mapping):
        yield from (v for v in label.values() if isinstance(v, str))


class HeaderMap:
    """Header text -> field name: the field name, or its label in any locale, or `label [name]`;
    system column headers (query number, status, created at) are recognised and skipped."""

    def __init__(self, form: CompiledForm):
        self.form = form
        self.index: dict[str, set[str]] = {}
        for name in form.stored:
            self._add(name, name)
            for text in _label_texts(form.field(name).label):
                self._add(text, name)
                self._add(f"{text} [{name}]", name)
        for key, labels in SYSTEM_COLUMNS.items():
            self._add(key, key)
            for text in labels.values():
                self._add(text, key)

    def _add(self, text: str, key: str) -> None:
        self.index.setdefault(normalize(text), set()).add(key)

    def resolve(self, header: str) -> str:
        """The field (or system column) a header names; CellProblem if none or several."""
        if header.strip() in self.form.stored:
            return header.strip()
        found = self.index.get(normalize(header).rstrip("*＊ ")) or set()
        fields = sorted(k for k in found if k in self.form.stored)
        if len(fields) == 1:
            return fields[0]
        if len(fields) > 1:
            raise CellProblem("ambiguous_column", header=header, fields=", ".join(fields))
        if found:
            return next(iter(found))
        raise CellProblem("unknown_column", header=header)

    @staticmethod
    def is_system(key: str) -> bool:
        return key in SYSTEM_COLUMNS
