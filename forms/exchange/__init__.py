"""Import and export of form records as CSV and XLSX, headed by the form's labels.

- `export_records(service, form, "csv" | "xlsx", out, locale=...)` streams every record.
- `import_records(service, form, "auto" | "csv" | "xlsx", data, actor=..., mode=...)` validates
  every row like a submission and stores all of them, none of them, or only the valid ones.

Modules: `cells` (one value <-> one cell, formula neutralisation), `columns` (headers both
ways), `csvfile`, `xlsx_write` and `xlsx_read` (the formats), `zipguard` (zip bombs), `export`, `importer`,
`report`, `messages`.
"""

from __future__ import annotations

from forms.exchange.export import export_records
from forms.exchange.importer import import_records
from forms.exchange.report import CellError, ImportReport
from forms.exchange.sheet import Limits

__all__ = ["CellError", "ImportReport", "Limits", "export_records", "import_records"]
