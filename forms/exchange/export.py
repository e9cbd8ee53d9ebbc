"""Export a form's records as CSV or XLSX, streamed from the database page by page."""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, Literal, Mapping, Sequence

from sqlalchemy import ColumnElement, Table, and_, func, select, true

from engine.errors import NotFoundError
from engine.storage.db import read_transaction
from forms.exchange.cells import export_cell, local_wall_time
from forms.exchange.columns import Column, export_columns
from forms.exchange.csvfile import CsvWriter
from forms.exchange.xlsx_write import XlsxWriter
from forms.records import FormService

Format = Literal["csv", "xlsx"]
PAGE_SIZE = 1000
FILTERABLE = {"id", "query_no", "status", "created_at", "updated_at", "created_by"}


def export_records(service: FormService, form_name: str, fmt: Format, out: BinaryIO, *,
                   locale: str = "en", fields: Sequence[str] | None = None,
                   where: Mapping[str, Any] | ColumnElement[bool] | None = None,
                   page_size: int = PAGE_SIZE, status_text: Callable[[str], str] | None = None) -> int:
    """Write the form's records to `out` (a binary stream, left open); return how many.

    Headers are labels in `locale`: query number, status, created at, then `fields` (default:
    every stored field). `where` is either {column: value or list of values} (equality on a
    field or system column) or a SQLAlchemy condition on the record table (row-level
    permissions). Rows are read by id in pages of `page_size`, each page its own short read
    transaction, up to the newest id at the start: memory stays flat however many rows there
    are, and writers are never held up. `status_text` names a status in words (a staff page's
    export, read by people); without it the status is its code. Importing skips the column either way.
    """
    form = service.form(form_name)
    table = service.tables[form_name]
    columns = export_columns(form, fields, locale)
    condition = _condition(table, set(form.stored) | FILTERABLE, where)
    writer: CsvWriter | XlsxWriter
    if fmt == "csv":
        writer = CsvWriter(out)
    elif fmt == "xlsx":
        writer = XlsxWriter(out, form.spec.text(locale))
    else:
        raise ValueError(f"unknown export format {fmt!r} (csv or xlsx)")
    zone = service.rt.bundle.meta.timezone
    wanted = [table.c.id] + [table.c[c.key] for c in columns]
    writer.header([c.header for c in columns])
    with read_transaction(service.rt.db) as conn:
        last = conn.execute(select(func.max(table.c.id)).where(condition)).scalar()
    after, count = 0, 0
    while last is not None and after < last:
        with read_transaction(service.rt.db) as conn:
            page = conn.execute(select(*wanted).where(table.c.id > after, table.c.id <= last, condition)
                                .order_by(table.c.id).limit(page_size)).all()
        if not page:
            break
        for row in page:
            writer.row([status_text(value) if status_text is not None and c.key == "status" and value else
                        _cell(c, value, locale, zone) for c, value in zip(columns, row[1:])])
        count += len(page)
        after = page[-1][0]
    writer.close()
    return count


def _cell(column: Column, value: Any, locale: str, zone: str) -> Any:
    if column.spec is None or column.ftype is None:
        if column.key == "created_at" and value is not None:
            # The clock's microseconds mean nothing to a reader; import skips this column anyway.
            return local_wall_time(value, zone).replace(microsecond=0)
        return value
    return export_cell(column.ftype, column.spec, column.ftype.from_db(value, column.spec), locale)


def _condition(table: Table, names: set[str],
               where: Mapping[str, Any] | ColumnElement[bool] | None) -> ColumnElement[bool]:
    if where is None:
        return true()
    if isinstance(where, ColumnElement):
        return where
    parts = []
    for name, value in where.items():
        if name not in names:
            raise NotFoundError(f"cannot filter on '{name}': no such field")
        column = table.c[name]
        parts.append(column.in_(list(value)) if isinstance(value, (list, tuple, set)) else column == value)
    return and_(true(), *parts)
