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


def test_a_datetime_field_in_csv_is_written_to_the_second(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    system.forms.submit("complaint", {**COMPLAINT, "occurred_at": "2025-11-20T10:30:45.010939+08:00"}, actor="agent")
    assert exported_csv(system)["When it happened"] == "2025-11-20 10:30:45"


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


def test_a_subtable_of_first_column_only_is_one_line_per_row(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    system.forms.submit("complaint", {**COMPLAINT, "waybills": [{"number": "SF1234567890"},
                                                                {"number": "YT9876543210"}]}, actor="agent")
    assert exported_csv(system)["Waybills concerned"] == "SF1234567890\nYT9876543210"


def test_a_subtable_written_as_lines_imports_back_equal(tmp_path: Path) -> None:
    source = start(tmp_path, "a.db")
    source.forms.submit("complaint", {**COMPLAINT, "waybills": [{"number": "SF1234567890"},
                                                                {"number": "YT9876543210"}]}, actor="agent")
    out = io.BytesIO()
    export_records(source.forms, "complaint", "xlsx", out, locale="zh-CN")
    target = start(tmp_path, "b.db")
    out.seek(0)
    assert import_records(target.forms, "complaint", "xlsx", out, locale="zh-CN").ok
    assert target.forms.list("complaint")[0]["waybills"] == source.forms.list("complaint")[0]["waybills"]


def test_a_subtable_with_notes_is_one_line_per_row_with_its_cells_after_bars(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    system.forms.submit("complaint", {**COMPLAINT, "waybills": [{"number": "SF1234567890", "note": "外箱破损"},
                                                                {"number": "YT9876543210"}]}, actor="agent")
    assert exported_csv(system)["Waybills concerned"] == "SF1234567890 | 外箱破损\nYT9876543210"


def test_a_subtable_with_notes_keeps_the_form_import_reads_back(tmp_path: Path) -> None:
    source = start(tmp_path, "a.db")
    rows = [{"number": "SF1234567890", "note": "外箱破损 | 见照片"}, {"number": "YT9876543210", "note": None}]
    source.forms.submit("complaint", {**COMPLAINT, "waybills": rows}, actor="agent")
    out = io.BytesIO()
    export_records(source.forms, "complaint", "csv", out)
    target = start(tmp_path, "b.db")
    out.seek(0)
    assert import_records(target.forms, "complaint", "csv", out).ok
    assert target.forms.list("complaint")[0]["waybills"] == source.forms.list("complaint")[0]["waybills"]


def test_a_subtable_with_a_comma_in_a_note_imports_back_equal(tmp_path: Path) -> None:
    source = start(tmp_path, "a.db")
    rows = [{"number": "SF1234567890", "note": "外箱破损, 见照片"}]
    source.forms.submit("complaint", {**COMPLAINT, "waybills": rows}, actor="agent")
    out = io.BytesIO()
    export_records(source.forms, "complaint", "csv", out)
    target = start(tmp_path, "b.db")
    out.seek(0)
    assert import_records(target.forms, "complaint", "csv", out).ok
    assert target.forms.list("complaint")[0]["waybills"] == source.forms.list("complaint")[0]["waybills"]


@pytest.mark.parametrize("field", ["photos", "documents"])
def test_files_are_written_by_their_names(tmp_path: Path, field: str) -> None:
    form = start(tmp_path, "a.db").forms.form("complaint")
    assert export_cell(form.types[field], form.field(field), PHOTOS, "en") == "box.jpg\nlabel.png"


def test_an_import_ignores_a_file_column_and_says_so(tmp_path: Path) -> None:
    system = start(tmp_path, "a.db")
    data = io.BytesIO(("Key-account name,Contact person,contact_phone,When it happened,Category,"
                       "What happened,Photos of the damage\r\n"
                       "华东电子,王五,13812345678,2025-11-20 10:30,Late in transit,延误,box.jpg\r\n").encode())
    report = import_records(system.forms, "complaint", "csv", data)
    assert report.ok, report.lines()
    assert report.ignored == ["Photos of the damage"]
