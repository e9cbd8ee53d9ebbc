"""What the readers of every format hand the importer, and the limits they keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from forms.exchange.cells import CellProblem

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what an import will read (RELIABILITY 52): refuse early, never run out of memory."""

    max_bytes: int = 100 * MB
    """The file as uploaded."""
    max_unpacked: int = 512 * MB
    """An XLSX's parts once inflated, all together (a 100,000-row postal sheet is ~90 MB)."""
    max_ratio: int = 100
    """Inflated / compressed size of any part larger than `ratio_floor` (sheets reach ~20)."""
    ratio_floor: int = 1 * MB
    max_strings: int = 100 * MB
    """An XLSX's shared-strings table, which openpyxl holds in memory whole."""
    max_parts: int = 1000
    max_columns: int = 1000


@dataclass
class SheetRow:
    """One row as the user sees it: `number` counts from 1 at the top of the sheet."""

    number: int
    cells: dict[int, Any]
    """Column number (1 = A) -> value, empty cells left out."""
    problems: dict[int, CellProblem] = field(default_factory=dict)
    """Cells the reader could not turn into a value (a formula without a saved result...)."""


@dataclass
class Sheet:
    """A header row, then the data rows below it, streamed."""

    header_row: int
    header: dict[int, str]
    rows: Iterator[SheetRow]
