"""What an import did: rows read and stored, and every problem with its row and column."""

from __future__ import annotations

from dataclasses import dataclass, field

from forms.exchange.messages import text


@dataclass(frozen=True)
class CellError:
    """One problem: `row` as the sheet shows it (the header is row 1; None: the whole file),
    `column` as its header reads in the file (or a field label, or a column letter)."""

    row: int | None
    column: str
    message: str

    def __str__(self) -> str:
        return self.text()

    def text(self, locale: str = "en") -> str:
        """`row 3, Contact phone: Enter a valid phone number.` in `locale`."""
        where = text("at_file", locale) if self.row is None else text("at_row", locale, row=self.row)
        return f"{where}, {self.column}: {self.message}" if self.column else f"{where}: {self.message}"


@dataclass
class ImportReport:
    """The outcome of `import_records`; `ok` when every row was stored."""

    form: str
    mode: str
    format: str = ""
    rows: int = 0
    """Data rows read (blank rows are skipped and not counted)."""
    valid: int = 0
    stored: int = 0
    first_query_no: str | None = None
    last_query_no: str | None = None
    refused: str | None = None
    """Why the file as a whole was refused (not a workbook, a zip bomb, unknown columns...)."""
    errors: list[CellError] = field(default_factory=list)
    error_count: int = 0
    failed_rows: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    """Header as written -> field name, for every column that was imported."""
    ignored: list[str] = field(default_factory=list)
    """Headers recognised but not imported (query number, status, created at, computed fields,
    uploaded files)."""
    max_errors: int = 1000

    @property
    def ok(self) -> bool:
        return self.refused is None and self.error_count == 0

    def add(self, row: int | None, column: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(CellError(row, column, message))

    def summary(self, locale: str = "en") -> str:
        if self.refused is not None:
            return text("summary_refused", locale)
        if self.error_count == 0:
            return text("summary_all", locale, stored=self.stored, rows=self.rows)
        if self.stored == 0 and self.mode == "all_or_nothing":
            return text("summary_none", locale, errors=self.error_count, failed=self.failed_rows,
                        rows=self.rows)
        return text("summary_partial", locale, stored=self.stored, rows=self.rows, failed=self.failed_rows)

    def lines(self, locale: str = "en") -> list[str]:
        """Every recorded problem, then how many more were not kept, then the summary."""
        out = [e.text(locale) for e in self.errors]
        if self.error_count > len(self.errors):
            out.append(text("more_errors", locale, more=self.error_count - len(self.errors)))
        out.append(self.summary(locale))
        return out
