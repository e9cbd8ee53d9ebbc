"""Benchmark: import and export of postal complaints as CSV and XLSX (issue 4 item 6, RELIABILITY 52).

One run, on SQLite files in a temporary folder:
1. CSV import of N synthetic complaints (all or nothing: validate all, then one transaction;
   every row gets a query number, history and a started flow, like a submission).
2. CSV and XLSX export of those N records: rows/s, and the peak of Python allocations
   (tracemalloc, a separate run) beside the same export of N/10 records: flat = streaming.
3. XLSX import of the exported file into a fresh database: read + validate only (the batch
   fails on a bad last row, so nothing is stored) and the full import.
4. A 1,000,000-row XLSX (sheet XML written directly) against the default 100,000-row cap:
   how long until it is refused, and the peak memory of getting there.

Run: .venv/bin/python bench/bench_exchange.py [--rows 20000] [--skip-million] [--bundle DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import openpyxl  # noqa: E402
import sqlalchemy  # noqa: E402

from engine.clock import ManualClock  # noqa: E402
from forms.exchange import export_records, import_records  # noqa: E402
from web.system import System, boot  # noqa: E402

POSTAL = ROOT / "definitions" / "postal_complaints"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
FIELDS = ["customer_name", "contact_name", "contact_phone", "contact_email", "region", "channel",
          "occurred_at", "waybill_numbers", "category", "description", "expected_resolution",
          "amount_claimed", "urgency"]
CATEGORIES = ["运输 / 时效延误 / 运输超时", "Damaged contents", "loss_whole", "揽收 / 服务态度 / 揽收员态度差",
              "Overcharged", "派送超时", "misdelivered"]
CLAIMED = {"Damaged contents", "loss_whole"}
REGIONS = ["华东", "North China", "south", "华中", "Southwest", "西北"]
CHANNELS = ["客户经理代录", "400 hotline", "email", "官网表单"]


def synthetic_rows(count: int, seed: int = 7) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    rows = []
    start = datetime(2025, 1, 1, 8, 0)
    for i in range(count):
        category = rnd.choice(CATEGORIES)
        rows.append({
            "customer_name": f"华东电子商务有限公司{i % 500:03d}",
            "contact_name": rnd.choice(["陈先生", "刘女士", "王五", "Mr Smith"]),
            "contact_phone": f"13{rnd.randrange(10**9):09d}",
            "contact_email": f"contact{i}@example.com" if i % 3 else "",
            "region": rnd.choice(REGIONS), "channel": rnd.choice(CHANNELS),
            "occurred_at": (start + timedelta(minutes=37 * i)).strftime("%Y-%m-%d %H:%M"),
            "waybill_numbers": f"11800{i:08d}\n11801{i:08d}", "category": category,
            "description": "十票快件超时三天，客户多次催促，要求说明原因并赔偿。" * rnd.randint(1, 4),
            "expected_resolution": "尽快处理" if i % 2 else "",
            "amount_claimed": f"{rnd.randint(1, 50000)}.{rnd.randint(0, 99):02d}" if category in CLAIMED else "",
            "urgency": rnd.choice(["紧急", "normal", "Important", ""]),
        })
    return rows


def header(system: System, locale: str = "zh-CN") -> list[str]:
    """The form's labels of the benchmark's fields (the form may have more)."""
    form = system.forms.form("complaint")
    return [form.field(n).text(locale) for n in FIELDS]


def csv_bytes(head: list[str], rows: list[dict[str, str]]) -> bytes:
    import csv

    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(head)
    writer.writerows([row[n] for n in FIELDS] for row in rows)
    return out.getvalue().encode("utf-8-sig")


def start(folder: Path, name: str, bundle: Path = POSTAL) -> System:
    return boot(bundle, db_url=f"sqlite:///{folder / name}", clock=ManualClock(NOW))


class Discard(io.RawIOBase):
    """A write-only sink that keeps nothing, so the memory measured is the exporter's own."""

    def __init__(self) -> None:
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn()
    return time.perf_counter() - began, result


def peak(fn: Callable[[], Any]) -> float:
    """Peak MiB of Python allocations while fn runs."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def million_row_xlsx(path: Path, rows: int, head: list[str]) -> None:
    """A workbook with `rows` data rows, its sheet XML written straight into the zip."""
    sheet_head = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                  'spreadsheetml/2006/main"><sheetData>')
    book = openpyxl.Workbook()
    book.active.append(["x"])
    template = io.BytesIO()
    book.save(template)
    source = zipfile.ZipFile(template)

    def cell(ref: str, text: str) -> str:
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(info.filename, source.read(info))
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(sheet_head.encode())
            sheet.write(("<row r=\"1\">" + "".join(cell(f"{c}1", h) for c, h in zip("ABCDEF", head)) + "</row>").encode())
            chunk = []
            for r in range(2, rows + 2):
                chunk.append(f'<row r="{r}">{cell(f"A{r}", f"客户{r}")}{cell(f"B{r}", "王五")}'
                             f'{cell(f"C{r}", "13812345678")}{cell(f"D{r}", "2025-11-20 10:30")}'
                             f'{cell(f"E{r}", "运输超时")}{cell(f"F{r}", "延误")}</row>')
                if len(chunk) == 10_000:
                    sheet.write("".join(chunk).encode())
                    chunk = []
            sheet.write(("".join(chunk) + "</sheetData></worksheet>").encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--bundle", type=Path, default=POSTAL, help="the postal bundle (or a copy)")
    args = parser.parse_args()
    n = args.rows
    table: list[tuple[str, int, float, float | None]] = []

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        system = start(folder, "a.db", args.bundle)
        head = header(system)
        data = csv_bytes(head, synthetic_rows(n))
        seconds, report = timed(lambda: import_records(system.forms, "complaint", "csv", io.BytesIO(data)))
        assert report.ok and report.stored == n, report.lines()[:5]
        table.append(("CSV import (validate + store, one transaction)", n, seconds, None))

        files: dict[str, bytes] = {}
        for fmt in ("csv", "xlsx"):
            out = io.BytesIO()
            seconds, count = timed(lambda: export_records(system.forms, "complaint", fmt, out, locale="zh-CN"))
            assert count == n
            files[fmt] = out.getvalue()
            table_ = system.forms.tables["complaint"]
            big = peak(lambda: export_records(system.forms, "complaint", fmt, Discard(), locale="zh-CN"))
            small = peak(lambda: export_records(system.forms, "complaint", fmt, Discard(), locale="zh-CN",
                                                where=table_.c.id <= n // 10))
            table.append((f"{fmt.upper()} export (peak at N/10 rows: {small:.1f} MiB)", n, seconds, big))

        bad = files["xlsx"]
        target = start(folder, "b.db", args.bundle)
        book = openpyxl.load_workbook(io.BytesIO(bad))
        book.active.append(["x"] * 6 + ["坏行"])  # invalid last row: nothing stored
        broken = io.BytesIO()
        book.save(broken)
        seconds, report = timed(lambda: import_records(target.forms, "complaint", "xlsx", io.BytesIO(broken.getvalue())))
        assert report.stored == 0 and report.error_count > 0 and report.rows == n + 1
        memory = peak(lambda: import_records(target.forms, "complaint", "xlsx", io.BytesIO(broken.getvalue())))
        table.append(("XLSX import, read + validate only (batch refused)", n + 1, seconds, memory))
        seconds, report = timed(lambda: import_records(target.forms, "complaint", "xlsx", io.BytesIO(files["xlsx"])))
        assert report.ok and report.stored == n, report.lines()[:5]
        table.append(("XLSX import (validate + store, one transaction)", n, seconds, None))
        target2 = start(folder, "c.db", args.bundle)
        seconds, report = timed(lambda: import_records(target2.forms, "complaint", "csv", io.BytesIO(files["csv"]),
                                                       mode="valid_rows"))
        assert report.ok and report.stored == n
        table.append(("CSV import of the export, valid_rows (500-row transactions)", n, seconds, None))

        unpacked = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(files["xlsx"])).infolist())
        if not args.skip_million:
            path = folder / "million.xlsx"
            form = system.forms.form("complaint")
            head6 = [form.field(n).text("zh-CN") for n in ("customer_name", "contact_name", "contact_phone",
                                                            "occurred_at", "category", "description")]
            made, _ = timed(lambda: million_row_xlsx(path, 1_000_000, head6))
            empty = start(folder, "d.db", args.bundle)

            def refuse() -> Any:
                with path.open("rb") as f:
                    return import_records(empty.forms, "complaint", "xlsx", f)

            seconds, report = timed(refuse)
            assert report.refused and "100000" in report.errors[-1].message.replace(",", ""), report.lines()
            memory = peak(refuse)
            table.append((f"1,000,000-row XLSX ({path.stat().st_size / 2**20:.0f} MiB file) refused at the "
                          f"100,000-row cap", 100_000, seconds, memory))

    print(f"Machine: {platform.system()} {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy "
          f"{sqlalchemy.__version__}, openpyxl {openpyxl.__version__}")
    print(f"Workload: {n:,} synthetic postal complaints (13 columns, Chinese text, labels of both locales); "
          f"export files: CSV {len(files['csv']) / 2**20:.1f} MiB, XLSX {len(files['xlsx']) / 2**20:.1f} MiB "
          f"({unpacked / 2**20:.1f} MiB unpacked)\n")
    print("| what | rows | seconds | rows/s | peak MiB (tracemalloc) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for what, rows, seconds, memory in table:
        shown = "" if memory is None else f"{memory:.1f}"
        print(f"| {what} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | {shown} |")


if __name__ == "__main__":
    main()
