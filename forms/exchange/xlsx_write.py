"""XLSX export with openpyxl's write_only mode: rows go to a temporary file as they come, so
memory does not grow with the row count.

Text is always a string cell. openpyxl would turn a text starting with `=` into a formula (`<f>`)
and `#N/A` into an error cell, so those get `data_type = "s"` explicitly; text a spreadsheet
would run as a formula also gets Excel's quote-prefix style, so editing the cell keeps it text
(RELIABILITY 51). Control characters XML cannot hold are dropped; CR becomes LF (XML would turn
it into LF on reading anyway).
"""

from __future__ import annotations

import unicodedata
from decimal import Decimal
from typing import Any, BinaryIO, Sequence

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from forms.exchange.cells import needs_quote

_SHEET_TITLE_BAD = str.maketrans({c: " " for c in "[]:*?/\\"})


def _width(text: str) -> float:
    """Column width for a header: wide (CJK) characters count twice."""
    wide = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return float(min(max(wide + 2, 10), 50))


class XlsxWriter:
    """Rows to a one-sheet workbook written to a binary stream when closed."""

    def __init__(self, out: BinaryIO, title: str):
        self._out = out
        self._book = Workbook(write_only=True)
        self._sheet = self._book.create_sheet((title.translate(_SHEET_TITLE_BAD).strip() or "Sheet")[:31])
        self._bold = Font(bold=True)

    def header(self, headers: Sequence[str]) -> None:
        for i, text in enumerate(headers, 1):
            self._sheet.column_dimensions[get_column_letter(i)].width = _width(text)
        self._sheet.freeze_panes = "A2"
        cells = []
        for text in headers:
            cell = self._cell(text)
            if not isinstance(cell, Cell):
                cell = WriteOnlyCell(self._sheet, cell)
            cell.font = self._bold
            cells.append(cell)
        self._sheet.append(cells)

    def row(self, values: Sequence[Any]) -> None:
        self._sheet.append([self._cell(v) for v in values])

    def _cell(self, value: Any) -> Any:
        if isinstance(value, str):
            # XML reads a CR back as LF anyway; Excel's line break inside a cell is LF.
            value = ILLEGAL_CHARACTERS_RE.sub("", value).replace("\r\n", "\n").replace("\r", "\n")
            if not value:
                return None
            quote = needs_quote(value)
            if quote or value[0] == "=" or value in ERROR_CODES:
                cell = WriteOnlyCell(self._sheet, value)
                cell.data_type = "s"  # never a formula or an error value: user data is text
                if quote:
                    cell.quotePrefix = True
                return cell
            return value
        if isinstance(value, Decimal) and Decimal(repr(float(value))) != value:
            return format(value, "f")  # more digits than a spreadsheet number holds: keep it exact
        return value

    def close(self) -> None:
        self._book.save(self._out)
