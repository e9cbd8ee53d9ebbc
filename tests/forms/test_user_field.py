"""A user field names a real, active user, holding the field's role when it names one: checked
against the directory when a record is created and when a step or an edit changes the field."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import ValidationFailed
from web.system import System, boot

POSTAL = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
DELAY = {"customer_name": "华中物流客户", "contact_name": "刘女士", "contact_phone": "027-88886666",
         "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"}


@pytest.fixture
def system(tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def test_a_user_of_the_fields_role_is_accepted(system: System) -> None:
    record_id = system.forms.submit("complaint", {**DELAY, "account_manager": "accounts"}, actor="agent").record_id
    assert system.forms.get("complaint", record_id)["account_manager"] == "accounts"


def test_a_user_who_does_not_exist_is_refused_and_nothing_is_stored(system: System) -> None:
    with pytest.raises(ValidationFailed) as refused:
        system.forms.submit("complaint", {**DELAY, "account_manager": "nobody-here"}, actor="agent")
    assert refused.value.errors == {"account_manager": ["There is no active user with this name."]}
    assert system.forms.count("complaint") == 0


def test_a_user_without_the_fields_role_is_refused(system: System) -> None:
    with pytest.raises(ValidationFailed) as refused:
        system.forms.submit("complaint", {**DELAY, "account_manager": "agent"}, actor="agent", locale="zh-CN")
    assert refused.value.errors == {"account_manager": ["该用户不具备 account_manager 岗位。"]}


def test_a_step_that_names_a_user_who_does_not_exist_is_refused_and_stays_open(system: System) -> None:
    record_id = system.forms.submit("complaint", DELAY, actor="accounts").record_id
    (task,) = system.flows.open_tasks("complaint", record_id)
    with pytest.raises(ValidationFailed) as refused:
        system.flows.complete(task["id"], "agent", values={"urgency": "normal", "account_manager": "nobody"})
    assert list(refused.value.errors) == ["account_manager"]
    assert [t["node"] for t in system.flows.open_tasks("complaint", record_id)] == ["accept"]
    assert system.forms.get("complaint", record_id)["account_manager"] is None
