"""Import records of a form from CSV or XLSX: every row validated like a submission.

Two passes, so a failed batch never touches the write lock:
1. Read the sheet row by row, map each cell to its field (headers in any locale), validate the
   row with the form's compiled validator, and spool the clean values of the valid rows to a
   temporary file (memory stays flat; nothing is written to the database).
2. Store: `all_or_nothing` writes every row in ONE transaction, and only when pass 1 found no
   error at all; `valid_rows` writes the valid rows in transactions of `CHUNK` rows, each row
   under a savepoint. Each row goes through `FormService.insert_validated`, the path a
   submission takes (query number, history, `record.created`, the flow starts).
"""

from __future__ import annotations

import pickle
import tempfile
import warnings
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any, BinaryIO, Iterator, Literal

from openpyxl.utils import get_column_letter
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from engine.errors import ValidationFailed
from engine.storage.db import read_transaction, savepoint, transaction
from forms.compile import CompiledForm
from forms.exchange.cells import CellProblem, ChoiceIndex, holds_uploads, import_cell
from forms.exchange.columns import HeaderMap
from forms.exchange.csvfile import read_csv
from forms.exchange.messages import FileRefused, text
from forms.exchange.report import ImportReport
from forms.exchange.sheet import MB, Limits, Sheet, SheetRow
from forms.exchange.xlsx_read import read_xlsx
from forms.fields.base import FieldType
from forms.messages import message
from forms.records import FormService
from forms.spec import FieldSpec

Mode = Literal["all_or_nothing", "valid_rows"]
ImportFormat = Literal["auto", "csv", "xlsx"]
MODES = ("all_or_nothing", "valid_rows")
CHUNK = 500
"""Rows per transaction in `valid_rows` mode."""


@dataclass(frozen=True)
class _Target:
    """Where one column of the file goes."""

    position: int
    header: str
    key: str
    spec: FieldSpec | None = None
    ftype: FieldType | None = None
    choices: ChoiceIndex | None = None

    @property
    def ignored(self) -> bool:
        return self.spec is None


def import_records(service: FormService, form_name: str, fmt: ImportFormat, data: BinaryIO, *,
                   actor: str | None = None, locale: str = "en", mode: Mode = "all_or_nothing",
                   max_rows: int = 100_000, limits: Limits | None = None,
                   channel: str = "import", max_errors: int = 1000) -> ImportReport:
    """Validate every row of `data` (a binary stream) and store them as new records.

    `mode="all_or_nothing"` stores nothing unless every row is valid (one transaction);
    `mode="valid_rows"` stores the valid rows and reports the others. A problem with the file
    itself (not CSV/XLSX, a zip bomb, unknown or missing columns, more than `max_rows` rows)
    stores nothing in either mode. Errors carry the row number as the sheet shows it, the
    column's header, and a message in `locale`.
    """
    form = service.form(form_name)
    if mode not in MODES:
        raise ValueError(f"unknown import mode {mode!r} ({' or '.join(MODES)})")
    limits = limits or Limits()
    report = ImportReport(form=form_name, mode=mode, max_errors=max_errors)
    try:
        with _seekable(data, limits) as source, _openpyxl_quiet():
            report.format = _sniff(source) if fmt == "auto" else fmt
            reader = {"csv": read_csv, "xlsx": read_xlsx}.get(report.format)
            if reader is None:
                raise ValueError(f"unknown import format {fmt!r} (auto, csv or xlsx)")
            with reader(source, limits) as sheet, tempfile.TemporaryFile() as spool:
                targets = _map_header(form, sheet, report, locale)
                if targets is None:
                    return report
                _check_rows(service, form, sheet, targets, spool, report, actor=actor,
                            locale=locale, max_rows=max_rows)
                if report.error_count and mode == "all_or_nothing":
                    return report
                spool.seek(0)
                _store(service, form, targets, _unspool(spool), report, mode=mode, actor=actor,
                       locale=locale, channel=channel)
    except FileRefused as exc:
        report.refused = exc.text(locale)
        report.stored = report.valid = 0
        report.add(None, "", report.refused)
    return report


# -- reading ------------------------------------------------------------------------------------
@contextmanager
def _seekable(data: BinaryIO, limits: Limits) -> Iterator[BinaryIO]:
    """`data` itself when it can seek (both readers need to), else a spooled copy; too large
    a file is refused before it is read."""
    if getattr(data, "seekable", lambda: False)():
        size = data.seek(0, 2)
        data.seek(0)
        if size > limits.max_bytes:
            raise FileRefused("too_large", max=limits.max_bytes // MB)
        yield data
        return
    with tempfile.SpooledTemporaryFile(max_size=8 * MB) as copy:
        size = 0
        while chunk := data.read(1 << 20):
            size += len(chunk)
            if size > limits.max_bytes:
                raise FileRefused("too_large", max=limits.max_bytes // MB)
            copy.write(chunk)
        copy.seek(0)
        yield copy  # type: ignore[misc]


@contextmanager
def _openpyxl_quiet() -> Iterator[None]:
    """openpyxl warns about what it drops from a workbook (extensions, bad dates); here those
    are either irrelevant or reported per cell, and must not become errors or noise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"openpyxl(\.|$)")
        yield


def _sniff(source: BinaryIO) -> str:
    head = source.read(4)
    source.seek(0)
    return "xlsx" if head == b"PK\x03\x04" else "csv"


def _map_header(form: CompiledForm, sheet: Sheet, report: ImportReport,
                locale: str) -> dict[int, _Target] | None:
    """Column position -> target; None (with errors reported) when the header is unusable."""
    headers = HeaderMap(form)
    targets: dict[int, _Target] = {}
    by_key: dict[str, _Target] = {}
    problems = []
    for position, header in sorted(sheet.header.items()):
        try:
            key = headers.resolve(header)
        except CellProblem as exc:
            problems.append((header, text(exc.key, locale, **exc.params)))
            continue
        spec = form.field(key) if key in form.stored else None
        if spec is not None and spec.computed is not None:
            spec = None  # computed on every save: what the file says is not used
        if spec is not None and holds_uploads(form.types[key]):
            spec = None  # an export names the files; a name cannot bring an upload back
        if key in by_key and spec is not None:
            problems.append((header, text("duplicate_column", locale, other=by_key[key].header)))
            continue
        ftype = form.types[key] if spec is not None else None
        target = _Target(position, header, key, spec, ftype,
                         ChoiceIndex(ftype, spec, locale) if spec is not None and spec.choices is not None
                         and ftype is not None else None)
        targets[position] = by_key[key] = target
        if spec is None:
            report.ignored.append(header)
        else:
            report.columns[header] = key
    for name in form.stored:
        spec = form.field(name)
        if (name not in by_key and spec.required and spec.visible_if is None and spec.computed is None
                and spec.default is None and spec.default_expr is None):
            problems.append((spec.text(locale), text("missing_column", locale, label=spec.text(locale))))
    if problems:
        for column, problem in problems:
            report.add(sheet.header_row, column, problem)
        report.refused = text("summary_refused", locale)
        return None
    return targets


# -- pass 1: validate ---------------------------------------------------------------------------
def _check_rows(service: FormService, form: CompiledForm, sheet: Sheet, targets: dict[int, _Target],
                spool: IO[bytes], report: ImportReport, *, actor: str | None, locale: str,
                max_rows: int) -> None:
    ctx = service.eval_context()
    extra = {"user": {"username": actor}}
    positions = {t.key: t.position for t in targets.values() if not t.ignored}
    unique = _Unique(service, form, locale)
    with unique:
        for row in sheet.rows:
            if not row.cells and not row.problems:
                continue
            report.rows += 1
            if report.rows > max_rows:
                raise FileRefused("too_many_rows", max=max_rows)
            errors, data, failed = _read_row(row, targets, locale)
            try:
                clean: dict[str, Any] | None = form.validate(data, locale=locale, ctx=ctx, extra_names=extra)
            except ValidationFailed as exc:
                clean = None
                for key, messages in exc.errors.items():
                    if _field_of(key) not in failed:
                        errors += [(positions.get(_field_of(key), 1 << 30), _label(form, targets, key, locale), m)
                                   for m in messages]
            if clean is not None and not errors:
                errors += [(positions.get(name, 1 << 30), _label(form, targets, name, locale), m)
                           for name, m in unique.check(row.number, clean)]
            if errors:
                report.failed_rows += 1
                for _, column, problem in sorted(errors, key=lambda e: e[0]):
                    report.add(row.number, column, problem)
                continue
            pickle.dump((row.number, clean), spool, protocol=pickle.HIGHEST_PROTOCOL)
            report.valid += 1


def _read_row(row: SheetRow, targets: dict[int, _Target],
              locale: str) -> tuple[list[tuple[int, str, str]], dict[str, Any], set[str]]:
    """(errors as (position, column, message), raw field values, fields whose cell failed)."""
    errors: list[tuple[int, str, str]] = []
    data: dict[str, Any] = {}
    failed: set[str] = set()
    for position, problem in row.problems.items():
        target = targets.get(position)
        if target is not None and target.ignored:
            continue
        errors.append((position, target.header if target else get_column_letter(position),
                       text(problem.key, locale, **problem.params)))
        if target is not None:
            failed.add(target.key)
    for position, value in row.cells.items():
        target = targets.get(position)
        if target is None:
            errors.append((position, get_column_letter(position), text("no_header_value", locale)))
            continue
        if target.ignored or target.key in failed:
            continue
        assert target.ftype is not None and target.spec is not None
        try:
            raw = import_cell(target.ftype, target.spec, value, target.choices)
        except CellProblem as exc:
            errors.append((position, target.header, text(exc.key, locale, **exc.params)))
            failed.add(target.key)
            continue
        if raw is not None:
            data[target.key] = raw
    return errors, data, failed


def _field_of(key: str) -> str:
    """The field an error key names: `items[2].qty` (a sub-table cell) belongs to `items`."""
    return key.split("[", 1)[0].split(".", 1)[0]


def _label(form: CompiledForm, targets: dict[int, _Target], key: str, locale: str) -> str:
    """The header of the field's column in the file (or its label when the file has none),
    plus the sub-table cell an error key points into."""
    name = _field_of(key)
    rest = key[len(name):]
    for target in targets.values():
        if target.key == name:
            return target.header + rest
    return (form.field(name).text(locale) if name in form.spec.fields else name) + rest


class _Unique:
    """Values of `unique` fields: not twice in the file, not already stored."""

    def __init__(self, service: FormService, form: CompiledForm, locale: str):
        self.service = service
        self.form = form
        self.locale = locale
        self.fields = [n for n in form.stored if form.field(n).unique]
        self.seen: dict[str, dict[Any, int]] = {n: {} for n in self.fields}
        self.conn: Connection | None = None
        self._scope: Any = nullcontext()

    def __enter__(self) -> "_Unique":
        if self.fields:
            self._scope = read_transaction(self.service.rt.db)
            self.conn = self._scope.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._scope.__exit__(*exc)

    def check(self, number: int, clean: dict[str, Any]) -> list[tuple[str, str]]:
        found = []
        table = self.service.tables[self.form.name]
        for name in self.fields:
            value = clean.get(name)
            if value is None:
                continue
            key = value if isinstance(value, (str, int, float)) else repr(value)
            if key in self.seen[name]:
                found.append((name, text("not_unique_in_file", self.locale, row=self.seen[name][key])))
                continue
            self.seen[name][key] = number
            assert self.conn is not None
            if self.conn.execute(select(func.count()).select_from(table).where(table.c[name] == value)).scalar():
                found.append((name, message("not_unique", self.locale)))
        return found


def _unspool(spool: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    while True:
        try:
            yield pickle.load(spool)  # our own temporary file, written above
        except EOFError:
            return


# -- pass 2: store ------------------------------------------------------------------------------
def _store(service: FormService, form: CompiledForm, targets: dict[int, _Target],
           rows: Iterator[tuple[int, dict[str, Any]]], report: ImportReport, *, mode: str,
           actor: str | None, locale: str, channel: str) -> None:
    def insert(conn: Connection, clean: dict[str, Any]) -> None:
        result = service.insert_validated(conn, form.name, clean, actor=actor, channel=channel,
                                          locale=locale)
        report.stored += 1
        report.first_query_no = report.first_query_no or result.query_no
        report.last_query_no = result.query_no

    if mode == "all_or_nothing":
        number = None
        try:
            with transaction(service.rt.db) as conn:
                for number, clean in rows:
                    insert(conn, clean)
        except (ValidationFailed, IntegrityError) as exc:
            report.stored = 0
            report.first_query_no = report.last_query_no = None
            report.failed_rows += 1
            for column, problem in _store_errors(form, targets, exc, locale):
                report.add(number, column, problem)
        return
    while batch := list(islice(rows, CHUNK)):
        with transaction(service.rt.db) as conn:
            for number, clean in batch:
                try:
                    with savepoint(conn):
                        insert(conn, clean)
                except (ValidationFailed, IntegrityError) as exc:
                    report.failed_rows += 1
                    for column, problem in _store_errors(form, targets, exc, locale):
                        report.add(number, column, problem)


def _store_errors(form: CompiledForm, targets: dict[int, _Target], exc: Exception,
                  locale: str) -> list[tuple[str, str]]:
    if isinstance(exc, ValidationFailed):
        return [(_label(form, targets, key, locale), m) for key, messages in exc.errors.items()
                for m in messages]
    return [("", text("row_refused", locale, detail=message("not_unique", locale)))]
