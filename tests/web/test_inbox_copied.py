"""The inbox lists the running records a task was copied (抄送) to the user for: the account
manager of an urgent damage claim sees it there, and no longer once the claim is closed."""

from __future__ import annotations

from pathlib import Path

from tests.flows.test_postal_flow import DAMAGE, accept
from tests.web.auth_kit import app_client, give_password, new_clock, postal_with_agent, sign_in


def test_the_account_manager_finds_an_urgent_damage_copied_to_them_in_the_inbox(tmp_path: Path) -> None:
    system = postal_with_agent(tmp_path, new_clock())
    give_password(system, "accounts")
    case = accept(system, DAMAGE, urgency="urgent")  # the exception team's task, copied to the account manager
    query_no = system.forms.get("complaint", case.id)["query_no"]
    accounts = app_client(system)
    sign_in(accounts, "accounts")
    page = accounts.get("/inbox?lang=zh-CN").text
    section = page[page.index('id="copied-h"'):]
    assert f'<a href="/records/complaint/{case.id}">{query_no}</a>' in section and "异常处理" in section
    system.flows.withdraw("complaint", case.id, actor="accounts")
    assert 'id="copied-h"' not in accounts.get("/inbox").text  # ended: nothing to watch


def test_someone_nothing_was_copied_to_sees_no_such_list(tmp_path: Path) -> None:
    system = postal_with_agent(tmp_path, new_clock())
    accept(system, DAMAGE, urgency="urgent")
    agent = app_client(system)
    sign_in(agent, "agent")
    assert 'id="copied-h"' not in agent.get("/inbox").text
