"""CSV both ways: RFC 4180 (CRLF, quotes doubled, special fields quoted), UTF-8 with a BOM so
Excel shows Chinese; read back as UTF-8 (BOM or not), UTF-16 with a BOM, or GB18030 (what
Chinese Excel writes for "CSV"), with a comma, semicolon or tab as the delimiter."""

from __future__ import annotations

import codecs
import csv
import io
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO, Iterator, Sequence

from forms.exchange.cells import quote_csv, unquote_csv
from forms.exchange.messages import FileRefused
from forms.exchange.sheet import Limits, Sheet, SheetRow

_CHUNK = 1 << 20


def csv_text(value: Any) -> str:
    """A cell value as CSV text: formulas neutralised, numbers and dates in ISO forms."""
    if value is None:
        return ""
    if isinstance(value, str):
        return quote_csv(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    return quote_csv(str(value))


class CsvWriter:
    """Rows to a binary stream; the stream is left open."""

    def __init__(self, out: BinaryIO):
        self._text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
        self._writer = csv.writer(self._text, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)

    def header(self, headers: Sequence[str]) -> None:
        self.row(headers)

    def row(self, values: Sequence[Any]) -> None:
        self._writer.writerow([csv_text(v) for v in values])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()


def detect_encoding(source: BinaryIO) -> str:
    """The text encoding of a seekable binary file (the whole file is checked)."""
    head = source.read(4)
    source.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "utf-16"
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            while chunk := source.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
        finally:
            source.seek(0)
    raise FileRefused("encoding")


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


@contextmanager
def read_csv(source: BinaryIO, limits: Limits) -> Iterator[Sheet]:
    """The sheet of a seekable CSV file; the header is the first record."""
    encoding = detect_encoding(source)
    text = io.TextIOWrapper(source, encoding=encoding, newline="")
    try:
        delimiter = _delimiter(text.readline())
        text.seek(0)
        reader = csv.reader(text, delimiter=delimiter)
        try:
            first = next(reader, None)
        except csv.Error as exc:
            raise FileRefused("csv_malformed", row=1, detail=str(exc)) from None
        if first is None or not any(cell.strip() for cell in first):
            raise FileRefused("no_header")
        if len(first) > limits.max_columns:
            raise FileRefused("too_many_columns", max=limits.max_columns)
        header = {i: unquote_csv(cell) for i, cell in enumerate(first, 1) if cell.strip()}
        yield Sheet(1, header, _rows(reader))
    finally:
        text.detach()


def _rows(reader: Any) -> Iterator[SheetRow]:
    number = 1
    while True:
        try:
            record = next(reader, None)
        except csv.Error as exc:
            raise FileRefused("csv_malformed", row=number + 1, detail=str(exc)) from None
        if record is None:
            return
        number += 1
        cells = {i: unquote_csv(cell) for i, cell in enumerate(record, 1) if cell.strip()}
        yield SheetRow(number, cells)
