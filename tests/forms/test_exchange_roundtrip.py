"""Export then import: every value comes back as it was stored, in CSV and XLSX, in both locales."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from openpyxl import load_workbook

from engine.clock import ManualClock
from engine.errors import NotFoundError
from forms.exchange import export_records, import_records
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
COMPLAINTS: list[dict[str, Any]] = [
    {"customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
     "contact_email": "chen@example.com", "occurred_at": "2025-11-20T10:30:45+08:00",
     "category": "damage_goods", "description": "三箱货物内件破损，\"急\"，请尽快处理\n第二行",
     "amount_claimed": "1200.50", "region": "east", "channel": "hotline", "urgency": "urgent",
     "waybill_numbers": "1180000000001\n1180000000002"},
    {"customer_name": "=HYPERLINK(\"http://evil\",\"click\")", "contact_name": "+Mr, Smith",
     "contact_phone": "010-66668888", "occurred_at": "2025-11-21 09:00", "category": "pickup_rude",
     "description": "-rude; @courier\tand more", "region": "north"},
    {"customer_name": "'quoted' customer", "contact_name": "''=twice", "contact_phone": "4008123456",
     "occurred_at": "2025-11-22T00:00:00Z", "category": "fee_overcharge", "description": "多收费用 ¥35",
     "expected_resolution": "退还 35 元", "region": "southwest"},
]


def start(tmp_path: Path, name: str) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / name}", clock=ManualClock(NOW))


@pytest.fixture
def source(tmp_path: Path) -> System:
    system = start(tmp_path, "source.db")
    for complaint in COMPLAINTS:
        system.forms.submit("complaint", complaint, actor="agent")
    return system


def fields(system: System) -> list[dict[str, Any]]:
    form = system.forms.form("complaint")
    return [{n: r[n] for n in form.stored} for r in reversed(system.forms.list("complaint"))]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_export_then_import_gives_back_every_stored_value(source: System, tmp_path: Path,
                                                          fmt: str, locale: str) -> None:
    out = io.BytesIO()
    assert export_records(source.forms, "complaint", fmt, out, locale=locale) == 3  # type: ignore[arg-type]
    target = start(tmp_path, "target.db")
    out.seek(0)
    report = import_records(target.forms, "complaint", "auto", out, actor="importer", locale=locale)
    assert report.ok, report.lines()
    assert (report.rows, report.stored, report.format) == (3, 3, fmt)
    created = [record["query_no"] for record in reversed(target.forms.list("complaint"))]  # oldest first
    assert (report.first_query_no, report.last_query_no) == (created[0], created[-1])
    assert fields(target) == fields(source)


def test_an_exported_file_imports_into_the_same_database_again(source: System) -> None:
    out = io.BytesIO()
    export_records(source.forms, "complaint", "xlsx", out, locale="zh-CN")
    out.seek(0)
    assert import_records(source.forms, "complaint", "xlsx", out, locale="en").stored == 3
    assert fields(source)[3:] == fields(source)[:3]


def test_headers_are_the_labels_of_the_locale(source: System) -> None:
    out = io.BytesIO()
    export_records(source.forms, "complaint", "csv", out, locale="zh-CN")
    header = next(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert header[:5] == ["查询编号", "状态", "提交时间", "大客户名称", "联系人"]
    assert "问题分类" in header and "customer_section" not in header  # sections store nothing
    out = io.BytesIO()
    export_records(source.forms, "complaint", "xlsx", out, locale="en")
    sheet = load_workbook(out, read_only=True).worksheets[0]
    assert sheet.title == "Key-account complaint"
    first = next(sheet.iter_rows(values_only=True))
    assert first[:5] == ("Query number", "Status", "Created at", "Key-account name", "Contact person")


def test_choices_are_written_as_labels_and_datetimes_as_local_wall_time(source: System) -> None:
    out = io.BytesIO()
    export_records(source.forms, "complaint", "xlsx", out, locale="zh-CN")
    rows = list(load_workbook(out, read_only=True).worksheets[0].iter_rows(values_only=True))
    record = dict(zip(rows[0], rows[1]))
    assert record["问题分类"] == "运输 / 货物破损 / 内件破损"
    assert record["所属区域"] == "华东" and record["紧急程度"] == "紧急"
    assert record["投诉发生时间"] == datetime(2025, 11, 20, 10, 30, 45)  # Asia/Shanghai, as entered
    assert record["提交时间"] == datetime(2026, 11, 23, 10, 0)
    first = source.forms.list("complaint")[-1]  # newest first: the first one submitted
    assert record["索赔金额"] == 1200.5 and record["查询编号"] == first["query_no"]


def test_export_can_choose_fields_and_filter_rows(source: System) -> None:
    out = io.BytesIO()
    count = export_records(source.forms, "complaint", "csv", out, locale="en", page_size=1,
                           fields=["region", "customer_name"], where={"region": ["east", "southwest"]})
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8-sig"))))
    assert count == 2
    assert rows == [["Query number", "Status", "Created at", "Region", "Key-account name"],
                    [rows[1][0], rows[1][1], rows[1][2], "East China", "华东电子商务有限公司"],
                    [rows[2][0], rows[2][1], rows[2][2], "Southwest", "'quoted' customer"]]
    with pytest.raises(NotFoundError):
        export_records(source.forms, "complaint", "csv", io.BytesIO(), fields=["nope"])
    with pytest.raises(NotFoundError):
        export_records(source.forms, "complaint", "csv", io.BytesIO(), where={"bundle_hash": "x"})


def test_an_empty_form_exports_a_header_only(tmp_path: Path) -> None:
    system = start(tmp_path, "empty.db")
    out = io.BytesIO()
    assert export_records(system.forms, "complaint", "csv", out) == 0
    assert out.getvalue().decode("utf-8-sig").count("\r\n") == 1


MINI = {
    "bundle.yaml": """\
        bundle: mini
        version: "1"
        label: Mini
        timezone: Asia/Shanghai
        """,
    "forms/item.yaml": """\
        form: item
        label: {zh-CN: 物品, en: Item}
        numbering: I{seq:4}
        fields:
          code:
            type: text
            label: {zh-CN: 编码, en: Code}
            required: true
            unique: true
          tags:
            type: multiselect
            label: {zh-CN: 标签, en: Tags}
            options:
              - {value: red, label: {zh-CN: 红色, en: Red}}
              - {value: blue, label: {zh-CN: 蓝色, en: "Blue, dark"}}
              - {value: green, label: {zh-CN: 绿色, en: Green}}
          fragile:
            type: boolean
            label: {zh-CN: 易碎, en: Fragile}
          count:
            type: integer
            label: {zh-CN: 数量, en: Count}
          weight:
            type: number
            label: {zh-CN: 重量, en: Weight}
          shipped:
            type: date
            label: {zh-CN: 发货日期, en: Shipped}
          doubled:
            type: integer
            label: {zh-CN: 双倍, en: Doubled}
            computed: count * 2
        """,
}


def mini(tmp_path: Path, name: str) -> System:
    root = tmp_path / "mini"
    if not root.exists():
        for rel, body in MINI.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(dedent(body), "utf-8")
    return boot(root, db_url=f"sqlite:///{tmp_path / name}", clock=ManualClock(NOW))


ITEMS = [
    {"code": "A-1", "tags": ["blue", "red"], "fragile": True, "count": 3, "weight": 2.25, "shipped": "2026-01-02"},
    {"code": "-2", "tags": ["green"], "fragile": False, "count": -4, "weight": 0.1},
    {"code": "@3"},
]


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_other_field_types_round_trip_too(tmp_path: Path, fmt: str, locale: str) -> None:
    source = mini(tmp_path, "source.db")
    for item in ITEMS:
        source.forms.submit("item", item)
    out = io.BytesIO()
    export_records(source.forms, "item", fmt, out, locale=locale)  # type: ignore[arg-type]
    target = mini(tmp_path, "target.db")
    out.seek(0)
    report = import_records(target.forms, "item", fmt, out, locale=locale)  # type: ignore[arg-type]
    assert report.ok, report.lines()
    assert report.ignored[-1] in ("Doubled", "双倍")  # computed: recomputed, not read
    got = [{k: v for k, v in r.items() if k not in ("id", "query_no", "created_at", "updated_at")}
           for r in target.forms.list("item")]
    want = [{k: v for k, v in r.items() if k not in ("id", "query_no", "created_at", "updated_at")}
            for r in source.forms.list("item")]
    assert got == want
    assert want[-1]["tags"] == ["blue", "red"] and want[-1]["doubled"] == 6


def test_a_label_with_a_comma_still_splits_a_list_of_choices(tmp_path: Path) -> None:
    system = mini(tmp_path, "one.db")
    data = io.BytesIO("Code,Tags\r\nX,\"Green, Blue, dark，红色\"\r\n".encode())
    report = import_records(system.forms, "item", "csv", data)
    assert report.ok, report.lines()
    assert system.forms.list("item")[0]["tags"] == ["green", "blue", "red"]
