"""XLSX import: openpyxl's read_only + data_only + keep_links=False reading, values only, streamed.

The zip is inspected first (zipguard), then the active worksheet is parsed row by row. Formulas
are never read, only the results Excel cached; a formula without a cached result and an error
value (#DIV/0!) are problems of that cell, not silently empty or text. openpyxl's worksheet
parser is subclassed for that one distinction (its data_only mode drops the formula before the
caller can see it); the tests pin it (RELIABILITY 52).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, BinaryIO, Iterator

from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import apply_stylesheet
from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser
from openpyxl.xml.constants import SHARED_STRINGS

from forms.exchange.cells import CellProblem
from forms.exchange.messages import FileRefused
from forms.exchange.sheet import MB, Limits, Sheet, SheetRow
from forms.exchange.zipguard import inspect_xlsx

log = logging.getLogger(__name__)

_NO_VALUE = "formula-without-value"


class _ValueParser(WorkSheetParser):
    """openpyxl's sheet parser, telling "formula without a cached value" apart from "empty"."""

    def parse_cell(self, element: Any) -> dict[str, Any]:
        cell = super().parse_cell(element)
        if cell["value"] is None and element.find(FORMULA_TAG) is not None:
            cell["data_type"] = _NO_VALUE
        return cell


@contextmanager
def read_xlsx(source: BinaryIO, limits: Limits) -> Iterator[Sheet]:
    """The active (else first) worksheet of a seekable XLSX file: values only, streamed."""
    inspect_xlsx(source, limits)
    try:
        # The steps of openpyxl's load_workbook(read_only=True, data_only=True, keep_links=False)
        # except building a worksheet object per sheet: that parses a sheet without a
        # <dimension> element from end to end just to size it (a million rows: seconds and
        # tens of MB before the first row is seen).
        reader = ExcelReader(source, read_only=True, keep_vba=False, data_only=True, keep_links=False)
    except Exception as exc:  # noqa: BLE001 - whatever a broken file makes openpyxl raise
        log.info("not an XLSX workbook: %r", exc)
        raise FileRefused("not_xlsx") from None
    try:
        try:
            reader.read_manifest()
            _check_strings(reader, limits)
            reader.read_strings()
            reader.read_workbook()
            apply_stylesheet(reader.archive, reader.wb)  # number formats: which cells are dates
            parts = [rel.target for _, rel in reader.parser.find_sheets()
                     if "chartsheet" not in rel.Type and rel.target in reader.valid_files]
        except FileRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - as above
            log.info("not an XLSX workbook: %r", exc)
            raise FileRefused("not_xlsx") from None
        if not parts:
            raise FileRefused("no_sheet")
        book = reader.wb
        with reader.archive.open(_active(reader, parts)) as stream:
            parser = _ValueParser(stream, reader.shared_strings, data_only=True, epoch=book.epoch,
                                  date_formats=book._date_formats,
                                  timedelta_formats=book._timedelta_formats)
            rows = _rows(parser.parse(), limits)
            first = next(rows, None)
            while first is not None and not first.cells:
                first = next(rows, None)
            if first is None:
                raise FileRefused("no_header")
            header = {col: str(value).strip() for col, value in first.cells.items()
                      if str(value).strip()}
            yield Sheet(first.number, header, rows)
    finally:
        reader.archive.close()


def _check_strings(reader: ExcelReader, limits: Limits) -> None:
    """The shared-strings table is read into memory whole: bound it before it is."""
    part = reader.package.find(SHARED_STRINGS)
    if part is not None and part.PartName[1:] in reader.valid_files:
        if reader.archive.getinfo(part.PartName[1:]).file_size > limits.max_strings:
            raise FileRefused("strings_too_large", max=limits.max_strings // MB)


def _active(reader: ExcelReader, parts: list[str]) -> str:
    """The sheet the workbook opens on, when it is a worksheet; else the first worksheet."""
    try:
        sheets = [rel.target for _, rel in reader.parser.find_sheets()]
        chosen = sheets[reader.wb.views[0].activeTab]
    except (IndexError, AttributeError, TypeError):
        return parts[0]
    return chosen if chosen in parts else parts[0]


def _rows(parsed: Iterator[tuple[int, list[dict[str, Any]]]], limits: Limits) -> Iterator[SheetRow]:
    try:
        for number, cells in parsed:
            row = SheetRow(number, {})
            for cell in cells:
                column, value, kind = cell["column"], cell["value"], cell["data_type"]
                if column > limits.max_columns:
                    if value is not None or kind == _NO_VALUE:
                        raise FileRefused("too_many_columns", max=limits.max_columns)
                    continue
                if kind == _NO_VALUE:
                    row.problems[column] = CellProblem("formula_no_value")
                elif kind == "e":
                    row.problems[column] = CellProblem("cell_error", value=value)
                elif value is not None and value != "":
                    row.cells[column] = value
            yield row
    except FileRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed XML or cell data inside the zip
        log.info("unreadable worksheet: %r", exc)
        raise FileRefused("not_xlsx") from None
