"""An export is read by people in Excel: timestamps without microseconds, sub-tables as lines,
files by name; what an import reads back still comes back unchanged."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.clock import ManualClock
from forms.exchange import export_records, import_records
from forms.exchange.cells import export_cell
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
NOW = datetime(2026, 12, 7, 2, 27, 20, 564439, tzinfo=timezone.utc)
COMPLAINT: dict[str, Any] = {
    "customer_name": "华东电子", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2025-11-20T10:30:45+08:00", "category": "damage_goods",
    "description": "内件破损", "amount_claimed": "10", "region": "east"}
PHOTOS = [{"id": "a" * 32, "name": "box.jpg", "size": 100, "type": "image"},
          {"id": "b" * 32, "name": "label.png", "size": 200, "type": "image"}]


def start(tmp_path: Path, name: str) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / name}", clock=ManualClock(NOW))


def exported_csv(system: System, locale: str = "en") -> dict[str, str]:
    out = io.BytesIO()
    export_records(system.forms, "complaint", "csv", out, locale=locale)
    header, row = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))[:2]
    return dict(zip(header, row))


def test_created_at_in_csv_has_no_microseconds(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    assert exported_csv(system)["Created at"] == "2026-12-07 10:27:20"  # Asia/Shanghai


def test_created_at_in_xlsx_is_a_datetime_without_microseconds(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    system.forms.submit("complaint", COMPLAINT, actor="agent")
    out = io.BytesIO()
    export_records(system.forms, "complaint", "xlsx", out, locale="en")
    sheet = load_workbook(out).worksheets[0]
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(2, header.index("Created at") + 1)
    assert cell.value == datetime(2026, 12, 7, 10, 27, 20)
    assert cell.number_format.startswith("yyyy-mm-dd")
