"""The postal complaint form uses the richer field types where REQUIREMENTS section 1 asks."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import ValidationFailed
from tests.forms import NOW
from web.system import System, boot, build_registry

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
COMPLAINT = {"customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
             "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
             "description": "十票快件超时三天"}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    db = tmp_path_factory.mktemp("postal") / "docket.db"
    return boot(POSTAL, db_url=f"sqlite:///{db}", clock=ManualClock(NOW), registry=build_registry(plugins=False))


def test_a_complaint_lists_its_waybills_as_rows(system: System) -> None:
    record_id = system.forms.submit("complaint", {**COMPLAINT, "waybills": "1180000000001\n1180000000002"}).record_id
    assert [row["number"] for row in system.forms.get("complaint", record_id)["waybills"]] == [
        "1180000000001", "1180000000002"]


def test_a_bad_waybill_number_is_reported_in_its_row(system: System) -> None:
    with pytest.raises(ValidationFailed) as caught:
        system.forms.submit("complaint", {**COMPLAINT, "waybills": [{"number": "1180000000001"}, {"number": "12-3"}]},
                            locale="zh-CN")
    assert caught.value.errors["waybills[1].number"] == ["请输入8至30位字母或数字的运单号。"]


def test_a_complaint_names_its_account_manager_and_takes_a_satisfaction_rating(system: System) -> None:
    record_id = system.forms.submit("complaint", {**COMPLAINT, "account_manager": "accounts",
                                                  "satisfaction": "5"}).record_id
    record = system.forms.get("complaint", record_id)
    assert (record["account_manager"], record["satisfaction"]) == ("accounts", 5)


def test_the_complaint_region_is_a_region_field(system: System) -> None:
    assert system.forms.form("complaint").types["region"].name == "region"
