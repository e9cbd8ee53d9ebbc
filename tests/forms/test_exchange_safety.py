"""RELIABILITY 51 and 52: formula injection, RFC 4180, and hostile or oversized files on import."""

from __future__ import annotations

import csv
import io
import re
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pytest
from openpyxl import Workbook, load_workbook

from engine.clock import ManualClock
from engine.storage.db import transaction
from forms.exchange import Limits, export_records, import_records
from forms.exchange.cells import quote_csv, unquote_csv
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
BASE = {"contact_name": "王五", "contact_phone": "13812345678", "occurred_at": "2025-11-20 10:30",
        "category": "transport_late", "region": "east"}
HEADER = ["Key-account name", "Contact person", "Contact phone", "When it happened", "Category",
          "What happened"]
HOSTILE = ["=1+1", "+SUM(A1:A2)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "\x00=NUL", "＝全角",
           "=HYPERLINK(\"http://x\",\"y\")", "#N/A", "a,b", 'say "hi"', "two\nlines", "plain"]


@pytest.fixture
def system(tmp_path: Path) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))


def submit_hostile(system: System) -> None:
    """Store each hostile text as is (a submission would strip the leading tab and CR)."""
    form = system.forms.form("complaint")
    clean = form.validate({**BASE, "customer_name": "ok", "description": "x"},
                          ctx=system.forms.eval_context())
    with transaction(system.db) as conn:
        for text in HOSTILE:
            system.forms.insert_validated(conn, "complaint", {**clean, "description": text})


def good_row(name: str = "华东电子") -> list[str]:
    return [name, "王五", "13812345678", "2025-11-20 10:30", "Late in transit", "货物延误"]


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def rewrite_sheet(data: bytes, change: Callable[[str], str], extra: dict[str, bytes] | None = None) -> bytes:
    """The workbook with its first sheet's XML changed (and parts added)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = change(body.decode()).encode()
            target.writestr(info.filename, body)
        for name, body in (extra or {}).items():
            target.writestr(name, body)
    return out.getvalue()


def with_shared_strings(data: bytes) -> bytes:
    """The workbook with its texts moved to a shared-strings table, as Excel writes them."""
    strings: list[str] = []

    def shared(match: re.Match[str]) -> str:
        strings.append(match[2])
        return f'<c r="{match[1]}" t="s"><v>{len(strings) - 1}</v></c>'

    sheet = re.sub(r'<c r="(\w+)" t="inlineStr"><is><t>(.*?)</t></is></c>', shared,
                   zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode(), flags=re.S)
    table = ('<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             + "".join(f"<si><t>{t}</t></si>" for t in strings) + "</sst>")
    main = "http://schemas.openxmlformats.org/"
    extra = {"xl/sharedStrings.xml": table.encode()}
    data = rewrite_sheet(data, lambda _: sheet, extra)
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == "[Content_Types].xml":
                body = body.replace(b"</Types>", (
                    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>').encode())
            elif info.filename == "xl/_rels/workbook.xml.rels":
                body = body.replace(b"</Relationships>", (
                    f'<Relationship Id="rIdS" Type="{main}officeDocument/2006/relationships/sharedStrings" '
                    'Target="sharedStrings.xml"/></Relationships>').encode())
            target.writestr(info.filename, body)
    return out.getvalue()


def test_a_workbook_with_shared_strings_imports(system: System) -> None:
    data = with_shared_strings(xlsx_bytes([HEADER, good_row(), good_row("华南物流")]))
    assert b"<v>0</v>" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data))
    assert report.ok, report.lines()
    assert [r["customer_name"] for r in system.forms.list("complaint")] == ["华南物流", "华东电子"]
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data), limits=Limits(max_strings=100))
    assert report.refused and "table of texts" in report.errors[0].message


# -- RELIABILITY 51: export ---------------------------------------------------------------------
def test_quoting_for_csv_is_undone_exactly_on_import() -> None:
    for text in HOSTILE + ["'", "''", "'=x", "''+y", "'plain", "-", "", "x=1"]:
        assert unquote_csv(quote_csv(text)) == text.replace("\x00", ""), text
    assert quote_csv("=1+1") == "'=1+1" and quote_csv("'=1") == "''=1" and quote_csv("'a") == "'a"


def test_csv_export_neutralises_formulas_and_quotes_like_rfc_4180(system: System) -> None:
    submit_hostile(system)
    out = io.BytesIO()
    export_records(system.forms, "complaint", "csv", out, fields=["description"])
    raw = out.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    text = raw.decode("utf-8-sig")
    assert text.endswith("\r\n") and "\r\n" in text.split("\n", 1)[0] + "\n"
    assert '"a,b"' in text and '"say ""hi"""' in text and '"two\nlines"' in text
    assert "\x00" not in text
    cells = [row[3] for row in csv.reader(io.StringIO(text, newline=""))][1:]
    assert cells == ["'=1+1", "'+SUM(A1:A2)", "'-2+3", "'@SUM(A1)", "'\tTAB", "'\rCR", "'=NUL",
                     "'＝全角", "'=HYPERLINK(\"http://x\",\"y\")", "#N/A", "a,b", 'say "hi"',
                     "two\nlines", "plain"]
    for cell in cells:  # what a spreadsheet sees first is never a formula character
        assert cell[:1] not in "=+-@\t\r＝"


def test_xlsx_export_writes_user_text_as_strings_never_formulas(system: System) -> None:
    submit_hostile(system)
    out = io.BytesIO()
    export_records(system.forms, "complaint", "xlsx", out, fields=["description"])
    archive = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert not re.search(r"<(\w+:)?f[\s>/]", sheet), "a formula element in the sheet"
    assert 't="e"' not in sheet  # "#N/A" is text, not an error value
    cells = re.findall(r'<c r="D\d+"([^>]*)>', sheet)[1:]
    assert all('t="inlineStr"' in attrs for attrs in cells)
    styles = archive.read("xl/styles.xml").decode()
    assert 'quotePrefix="1"' in styles  # Excel keeps an edited "=1+1" as text
    rows = list(load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[3] for r in rows[1:]] == [t.replace("\x00", "").replace("\r", "\n") for t in HOSTILE]


# -- RELIABILITY 52: import ---------------------------------------------------------------------
def test_a_formula_imports_its_cached_value(system: System) -> None:
    data = xlsx_bytes([HEADER, good_row("placeholder")])
    data = rewrite_sheet(data, lambda xml: re.sub(
        r'<c r="A2"[^>]*>.*?</c>', '<c r="A2" t="str"><f>CONCATENATE("华东","电子")</f><v>华东电子</v></c>', xml))
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data))
    assert report.ok, report.lines()
    assert system.forms.list("complaint")[0]["customer_name"] == "华东电子"


def test_a_formula_without_a_cached_value_is_an_error_of_its_cell(system: System) -> None:
    data = xlsx_bytes([HEADER, good_row(), good_row("=UPPER(\"x\")")])
    assert b"<f>" in zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data))
    assert not report.ok and report.stored == 0 and system.forms.count("complaint") == 0
    (error,) = report.errors
    assert (error.row, error.column) == (3, "Key-account name")
    assert "formula" in error.message


def test_an_error_value_is_an_error_of_its_cell(system: System) -> None:
    data = rewrite_sheet(xlsx_bytes([HEADER, good_row()]), lambda xml: re.sub(
        r'<c r="C2"[^>]*>.*?</c>', '<c r="C2" t="e"><f>1/0</f><v>#DIV/0!</v></c>', xml))
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data), locale="zh-CN")
    assert [(e.row, e.column, e.message) for e in report.errors] == [
        (2, "Contact phone", "单元格内容为错误值 #DIV/0!。")]


def test_external_links_are_not_followed(system: System) -> None:
    link = '<c r="A2" t="str"><f>[1]Sheet1!A1</f><v>外部客户</v></c>'
    data = rewrite_sheet(xlsx_bytes([HEADER, good_row("x")]),
                         lambda xml: re.sub(r'<c r="A2"[^>]*>.*?</c>', link, xml),
                         {"xl/externalLinks/externalLink1.xml": b"<not-even-xml"})
    workbook_rels = "xl/_rels/workbook.xml.rels"
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == workbook_rels:
                body = body.replace(b"</Relationships>", (
                    b'<Relationship Id="rIdX" Type="http://schemas.openxmlformats.org/officeDocument/'
                    b'2006/relationships/externalLink" Target="externalLinks/externalLink1.xml"/>'
                    b"</Relationships>"))
            target.writestr(info, body)
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(out.getvalue()))
    assert report.ok, report.lines()
    assert system.forms.list("complaint")[0]["customer_name"] == "外部客户"  # the cached value only


def test_a_zip_bomb_is_refused_before_it_is_inflated(system: System) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"<worksheet>" + b" " * (20 << 20) + b"</worksheet>")
    assert len(bomb.getvalue()) < 100_000
    started = time.perf_counter()
    report = import_records(system.forms, "complaint", "auto", bomb)
    assert time.perf_counter() - started < 1.0
    assert report.refused and "zip bomb" in report.errors[0].message
    assert report.errors[0].row is None and system.forms.count("complaint") == 0


@pytest.mark.parametrize("limits, words", [
    (Limits(max_unpacked=10_000), "unpacks to more than"),
    (Limits(max_parts=5), "more than 5 parts"),
    (Limits(max_bytes=1000), "larger than"),
])
def test_other_zip_limits(system: System, limits: Limits, words: str) -> None:
    data = xlsx_bytes([HEADER] + [good_row()] * 50)
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data), limits=limits)
    assert report.refused and words in report.errors[0].message


def test_a_dtd_in_any_part_is_refused(system: System) -> None:
    data = rewrite_sheet(xlsx_bytes([HEADER, good_row()]), lambda xml: xml.replace(
        "<worksheet", '<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">]><worksheet', 1))
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(data))
    assert report.refused and "document type declaration" in report.errors[0].message


@pytest.mark.parametrize("payload", [b"PK\x03\x04 not really a zip", b"", b"\x00\x01garbage" * 10])
def test_a_file_that_is_not_a_workbook_is_refused(system: System, payload: bytes) -> None:
    report = import_records(system.forms, "complaint", "xlsx", io.BytesIO(payload))
    assert report.refused and not report.ok


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_more_rows_than_the_cap_stores_nothing_and_says_so(system: System, fmt: str) -> None:
    rows = [HEADER] + [good_row(f"客户{i}") for i in range(30)]
    if fmt == "csv":
        data = "\r\n".join(",".join(r) for r in rows).encode()
    else:
        data = xlsx_bytes(rows)  # type: ignore[arg-type]
    report = import_records(system.forms, "complaint", fmt, io.BytesIO(data), max_rows=10,  # type: ignore[arg-type]
                            mode="valid_rows")
    assert report.refused and "more than 10 rows" in report.errors[-1].message
    assert report.stored == 0 and system.forms.count("complaint") == 0


def test_a_gb18030_csv_from_chinese_excel_imports(system: System) -> None:
    text = "大客户名称,联系人,联系电话,投诉发生时间,问题分类,问题详细描述\r\n" \
           "华东电子,王五,13812345678,2025-11-20 10:30,运输超时,货物延误三天\r\n"
    report = import_records(system.forms, "complaint", "auto", io.BytesIO(text.encode("gb18030")))
    assert report.ok, report.lines()
    record = system.forms.list("complaint")[0]
    assert (record["customer_name"], record["category"]) == ("华东电子", "transport_late")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_utf8_with_or_without_bom_and_utf16_csv_import(system: System, encoding: str) -> None:
    text = "\t".join(HEADER) + "\r\n" + "\t".join(good_row()) + "\r\n"  # tab-separated, as Excel's "Unicode text"
    report = import_records(system.forms, "complaint", "csv", io.BytesIO(text.encode(encoding)))
    assert report.ok, report.lines()


def test_a_file_in_no_known_encoding_is_refused(system: System) -> None:
    report = import_records(system.forms, "complaint", "csv", io.BytesIO(b"a,b\r\n\xff\xff\xff\r\n"))
    assert report.refused and "UTF-8" in report.errors[0].message
