"""A booted postal system with one fixed, fully handled complaint, for the print tests.

Import the fixtures into a test module: `from tests.reports.print_kit import printed_system,
letter_record  # noqa: F401`.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
BASE_URL = "https://ts.example-post.cn"
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
LETTER = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "damage_goods", "region": "east",
    "description": "11 月 20 日签收的两票快件外包装破损，内装显示器屏幕碎裂。",
    "amount_claimed": "6800",
    "waybills": [{"number": "EK123456789CN", "note": "显示器"}, {"number": "EK987654321CN", "note": "配件"}],
    "resolution": "经查，破损发生在上海转运中心分拣环节，责任在我司。",
    "basis": "《快递服务》国家标准 GB/T 27917 第 5.3 条；双方服务协议第八条。",
    "compensation": "5200",
}
QUERY_NO = "TS2026112300001"
"""The letter's number, fixed (the bundle draws them at random) so the golden image stays one."""

needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                   reason="poppler-utils (pdftotext, pdftoppm) is not installed")


@pytest.fixture(scope="module")
def printed_system(tmp_path_factory: pytest.TempPathFactory) -> System:
    """One system per test module (booting takes a second): tests add records, never change one."""
    db = tmp_path_factory.mktemp("print") / "docket.db"
    return boot(POSTAL, db_url=f"sqlite:///{db}", clock=ManualClock(NOW))


@pytest.fixture(scope="module")
def letter_record(printed_system: System) -> int:
    from sqlalchemy import update

    from engine.storage.db import transaction

    result = printed_system.forms.submit("complaint", LETTER, actor="agent1")
    table = printed_system.forms.tables["complaint"]
    with transaction(printed_system.db) as conn:
        conn.execute(update(table).where(table.c.id == result.record_id).values(query_no=QUERY_NO))
    return result.record_id
