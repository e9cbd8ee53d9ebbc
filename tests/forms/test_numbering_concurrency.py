"""Query numbers stay unique when several processes submit at once, on SQLite and PostgreSQL:
counted ones ({seq:N}, the compensation form) are consecutive, random ones (the complaint) never
repeat."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
PROCESSES = 4
EACH = 25
VALUES = {
    "complaint": {"contact_name": "测试", "contact_phone": "13800000000", "description": "并发提交测试",
                  "occurred_at": "2026-11-20T10:00:00+08:00", "category": "delivery_late"},
    "compensation": {"complaint_no": "TS20261123AAAAAA", "amount": "100"},
}


def _submit_many(url: str, worker: int, form: str) -> list[str]:
    """One process: boot Docket on `url` (migrating concurrently with the others) and submit."""
    from datetime import datetime, timezone

    from engine.clock import ManualClock
    from web.system import boot

    system = boot(POSTAL, db_url=url, clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    numbers = []
    for i in range(EACH):
        values = VALUES[form] | {"customer_name": f"客户 {worker}-{i}"}
        result = system.forms.submit(form, values, actor=None)
        numbers.append(result.query_no)
    system.db.dispose()
    return numbers


def _run(url: str, form: str) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(PROCESSES) as pool:
        batches = pool.starmap(_submit_many, [(url, w, form) for w in range(PROCESSES)])
    return [n for batch in batches for n in batch]


def test_concurrent_submissions_on_sqlite_get_distinct_consecutive_numbers(sqlite_url: str) -> None:
    numbers = _run(sqlite_url, "compensation")
    assert sorted(numbers) == [f"PC20261123{n:04d}" for n in range(1, PROCESSES * EACH + 1)]


@pytest.mark.postgres
def test_concurrent_submissions_on_postgres_get_distinct_consecutive_numbers(postgres_url: str) -> None:
    numbers = _run(postgres_url, "compensation")
    assert sorted(numbers) == [f"PC20261123{n:04d}" for n in range(1, PROCESSES * EACH + 1)]


def test_concurrent_public_submissions_get_distinct_random_numbers(sqlite_url: str) -> None:
    numbers = _run(sqlite_url, "complaint")
    assert len(set(numbers)) == PROCESSES * EACH
    assert all(re.fullmatch(r"TS20261123[2-9A-HJ-NP-Z]{6}", number) for number in numbers)
