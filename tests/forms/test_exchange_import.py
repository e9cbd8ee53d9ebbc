"""Importing rows: validated like submissions, all or nothing (or the valid rows), errors by row and column."""

from __future__ import annotations

import re

import io
from datetime import datetime, timezone
from pathlib import Path

import pytest
from openpyxl import Workbook

from engine.clock import ManualClock
from forms.exchange import import_records
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
HEADER = "大客户名称,Contact person,contact_phone,When it happened,问题分类,What happened,Amount claimed,Region"
GOOD = "华东电子,王五,13812345678,2025-11-20 10:30,Late in transit,货物延误三天,,East China"

QUERY_NO = re.compile(r"TS20261123[2-9A-HJ-NP-Z]{6}")
"""A number the postal bundle draws for a complaint of the tests' day."""


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))


def csv_file(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\r\n".join(lines) + "\r\n").encode("utf-8"))


def test_headers_in_either_language_or_field_names_map_to_fields(system: System) -> None:
    report = import_records(system.forms, "complaint", "csv", csv_file(HEADER, GOOD), actor="clerk")
    assert report.ok, report.lines()
    assert report.columns == {
        "大客户名称": "customer_name", "Contact person": "contact_name", "contact_phone": "contact_phone",
        "When it happened": "occurred_at", "问题分类": "category", "What happened": "description",
        "Amount claimed": "amount_claimed", "Region": "region"}


def test_an_imported_row_is_a_submission_with_number_history_and_flow(system: System) -> None:
    import_records(system.forms, "complaint", "csv", csv_file(HEADER, GOOD), actor="clerk")
    (record,) = system.forms.list("complaint")
    assert QUERY_NO.fullmatch(record["query_no"]) and record["created_by"] == "clerk"
    assert (record["category"], record["region"], record["channel"]) == ("transport_late", "east", "website")
    (created,) = [h for h in system.forms.history("complaint", record["id"]) if h["kind"] == "record.created"]
    assert created["data"]["channel"] == "import"
    (instance,) = system.flows.instances("complaint", record["id"])
    assert instance["status"] == "running"


def test_one_bad_row_stores_nothing_and_names_its_row_and_column(system: System) -> None:
    data = csv_file(HEADER, GOOD, GOOD.replace("13812345678", "12345"), GOOD)
    report = import_records(system.forms, "complaint", "csv", data, locale="zh-CN")
    assert not report.ok and report.stored == 0 and system.forms.count("complaint") == 0
    assert [(e.row, e.column, e.message) for e in report.errors] == [(3, "contact_phone", "请输入有效的电话号码。")]
    assert (report.rows, report.valid, report.failed_rows) == (3, 2, 1)
    assert report.summary("en").startswith("Nothing stored: 1 error(s) in 1 of 3 row(s)")


def test_valid_rows_mode_stores_the_good_rows_and_reports_the_others(system: System) -> None:
    bad = "华北制造,刘女士,010-66668888,2025-11-21 09:00,Damaged contents,设备破损,,North China"  # no amount
    data = csv_file(HEADER, GOOD, bad, GOOD.replace("Late in transit", "Teleported"), GOOD)
    report = import_records(system.forms, "complaint", "csv", data, mode="valid_rows")
    assert report.stored == 2 and system.forms.count("complaint") == 2
    assert [(e.row, e.column) for e in report.errors] == [(3, "Amount claimed"), (4, "问题分类")]
    assert report.errors[1].message == "'Teleported' is not an option of this field; the form's page or an export lists them."
    assert report.summary() == "2 of 4 row(s) stored; 2 row(s) with errors were left out."
    numbers = [r["query_no"] for r in system.forms.list("complaint")]
    assert len(set(numbers)) == 2 and all(QUERY_NO.fullmatch(number) for number in numbers)


def test_every_error_of_a_row_is_reported_at_once_in_column_order(system: System) -> None:
    data = csv_file(HEADER, "华东电子,,12345,yesterday,Rude courier,,-5,Mars")
    report = import_records(system.forms, "complaint", "csv", data)
    assert [(e.row, e.column) for e in report.errors] == [
        (2, "Contact person"), (2, "contact_phone"), (2, "When it happened"), (2, "问题分类"),
        (2, "What happened"), (2, "Region")]  # no category: the claim amount is not asked (visible_if)
    assert "several options" in report.errors[3].message  # "Rude courier" is at pickup and delivery


def errors_of(system: System, *rows: str, locale: str = "en") -> list[str]:
    report = import_records(system.forms, "complaint", "csv", csv_file(HEADER, *rows), locale=locale)
    return [e.message for e in report.errors]


def test_a_group_of_a_tree_names_the_options_under_it(system: System) -> None:
    # 货物破损 is a group of the category tree; a complaint's category is one of its leaves.
    assert errors_of(system, GOOD.replace("Late in transit", "货物破损"), locale="zh-CN") == [
        "“货物破损”是一组选项，请填写其中之一：运输 / 货物破损 / 外包装破损、运输 / 货物破损 / 内件破损。"]


def test_a_mistyped_option_is_answered_with_the_options_it_looks_like_in_the_readers_language(system: System) -> None:
    assert errors_of(system, GOOD.replace("Late in transit", "Late in transt"), locale="zh-CN") == [
        "“Late in transt”不是可选项，是否应为：运输 / 时效延误 / 运输超时？"]
    assert errors_of(system, GOOD.replace("East China", "East Chna")) == ["'East Chna' is not an option; did you mean East China?"]


def test_a_word_of_the_options_labels_is_answered_with_the_options_holding_it(system: System) -> None:
    (message,) = errors_of(system, GOOD.replace("Late in transit", "延误"), locale="zh-CN")
    assert message.startswith("“延误”不是可选项，是否应为：揽收 / 时效延误 / 未按约上门、") and "运输 / 时效延误 / 运输超时" in message


def test_an_unknown_option_of_a_short_list_is_answered_with_the_whole_list(system: System) -> None:
    assert errors_of(system, GOOD.replace("East China", "Mars")) == [
        "'Mars' is not an option; write one of: East China, North China, South China, Central China, Southwest, "
        "Northwest, Northeast."]


def test_a_date_written_year_first_with_slashes_imports(system: System) -> None:
    # Dates typed as text in a Chinese spreadsheet: 2025/11/20 9:30, not ISO.
    report = import_records(system.forms, "complaint", "csv",
                            csv_file(HEADER, GOOD.replace("2025-11-20 10:30", "2025/11/20 9:30")))
    assert report.ok, report.lines()
    (record,) = system.forms.list("complaint")
    assert record["occurred_at"] == datetime(2025, 11, 20, 1, 30, tzinfo=timezone.utc)


def test_row_numbers_are_those_the_sheet_shows(system: System) -> None:
    multiline = GOOD.replace("货物延误三天", '"第一行\n第二行"')
    data = csv_file(HEADER, multiline, "", ",,,,,,,", GOOD.replace("13812345678", "x"))
    report = import_records(system.forms, "complaint", "csv", data)
    assert [e.row for e in report.errors] == [5] and report.rows == 2  # blank rows skipped, counted

    book = Workbook()
    sheet = book.active
    sheet.append(HEADER.split(","))
    sheet.append(GOOD.split(","))
    sheet.append(GOOD.replace("13812345678", "x").split(","))
    for i, value in enumerate(GOOD.replace("13812345678", "y").split(","), 1):
        sheet.cell(row=7, column=i, value=value)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    report = import_records(system.forms, "complaint", "xlsx", out)
    assert [e.row for e in report.errors] == [3, 7]


def test_unknown_duplicate_and_missing_columns_refuse_the_file(system: System) -> None:
    data = csv_file("Key-account name,Colour,联系人,Contact person,What happened", "a,b,c,d,e")
    report = import_records(system.forms, "complaint", "csv", data, mode="valid_rows")
    assert report.refused and report.stored == 0 and report.rows == 0
    problems = [(e.row, e.column, e.message) for e in report.errors]
    assert problems[:2] == [(1, "Colour", "Unknown column: the form has no field called 'Colour'."),
                            (1, "Contact person", "This column fills the same field as column '联系人'.")]
    assert {c for _, c, m in problems[2:] if "no column for the required field" in m} == {
        "Contact phone", "When it happened", "Category"}


def test_a_value_under_no_header_is_an_error(system: System) -> None:
    report = import_records(system.forms, "complaint", "csv", csv_file(HEADER + ",", GOOD + ",stray"))
    assert [(e.row, e.column) for e in report.errors] == [(2, "I")]


def test_system_columns_are_read_past(system: System) -> None:
    data = csv_file("Query number,状态,Created at," + HEADER, "TS1,closed,2020-01-01," + GOOD)
    report = import_records(system.forms, "complaint", "csv", data)
    assert report.ok and report.ignored == ["Query number", "状态", "Created at"]
    record = system.forms.list("complaint")[0]
    assert QUERY_NO.fullmatch(record["query_no"]) and record["status"] != "closed"  # drawn, not TS1


def test_option_values_and_labels_of_both_languages_are_accepted(system: System) -> None:
    rows = [GOOD.replace("Late in transit", choice).replace("East China", region)
            for choice, region in [("transport_late", "east"), ("运输超时", "华北"),
                                   ("运输/时效延误/运输超时", "south china"), ("Transport / Delay / Late in transit", "SouthWest")]]
    report = import_records(system.forms, "complaint", "csv", csv_file(HEADER, *rows))
    assert report.ok, report.lines()
    assert [(r["category"], r["region"]) for r in reversed(system.forms.list("complaint"))] == [
        ("transport_late", "east"), ("transport_late", "north"), ("transport_late", "south"),
        ("transport_late", "southwest")]


def test_an_empty_file_or_a_header_only_file(system: System) -> None:
    report = import_records(system.forms, "complaint", "csv", io.BytesIO(b""))
    assert report.refused and "no header" in report.errors[0].message
    report = import_records(system.forms, "complaint", "csv", csv_file(HEADER))
    assert report.ok and report.rows == 0 and report.stored == 0


def test_unique_fields_are_checked_within_the_file_and_against_stored_records(tmp_path: Path) -> None:
    root = tmp_path / "bundle"
    (root / "forms").mkdir(parents=True)
    (root / "bundle.yaml").write_text('bundle: mini\nversion: "1"\nlabel: Mini\n', "utf-8")
    (root / "forms" / "item.yaml").write_text(
        "form: item\nfields:\n  code:\n    type: text\n    label: Code\n    unique: true\n", "utf-8")
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'mini.db'}")
    system.forms.submit("item", {"code": "A"})
    data = csv_file("Code", "A", "B", "C", "B")
    report = import_records(system.forms, "item", "csv", data, mode="valid_rows")
    assert [(e.row, e.message) for e in report.errors] == [
        (2, "This value is already used by another record."), (5, "The same value appears in row 3 of this file.")]
    assert sorted(r["code"] for r in system.forms.list("item")) == ["A", "B", "C"]
