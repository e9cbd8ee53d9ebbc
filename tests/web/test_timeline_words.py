"""Every entry of a record's timeline reads as words in both languages: each history kind the
engines write while complaints go through the postal flow (closed, damaged and approved,
withdrawn and reopened, commented on) has its label, so the page never shows `flow.withdrawn`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import history
from tests.flows.test_postal_flow import DAMAGE, DELAY, POSTAL, Case, accept
from tests.web.auth_kit import app_client, give_password, sign_in
from web.i18n import ui
from web.system import boot


def test_every_history_kind_of_the_postal_flow_has_a_label_in_both_languages(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)
    accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "300", "basis": "条款"}).finish()
    damage = accept(system, {**DAMAGE, "amount_claimed": "8000"}, urgency="urgent")
    withdrawn = Case(system, {**DELAY, "customer_name": "西南物流"})
    system.flows.comment("complaint", withdrawn.id, actor="agent", text="客户来电")
    system.flows.withdraw("complaint", withdrawn.id, actor="accounts", comment="重复提交")
    system.flows.reopen("complaint", withdrawn.id, at="accept", actor="manager", comment="客户再次来电")
    assert damage.open()  # the urgent damage waits with the exception team
    with read_transaction(system.db) as conn:
        kinds = set(conn.execute(sa.select(history.c.kind).distinct()).scalars())
    assert {"flow.withdrawn", "flow.reopened", "comment.added", "task.escalated", "webhook.queued"} <= kinds
    missing = {(kind, locale) for kind in kinds for locale in ("zh-CN", "en") if ui(f"ev_{kind}", locale) == f"ev_{kind}"}
    assert missing == set()


def test_how_a_flow_ended_reads_in_the_pages_language(tmp_path: Path) -> None:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    give_password(system, "admin")
    case = Case(system, DELAY)
    system.flows.withdraw("complaint", case.id, actor="accounts")
    admin = app_client(system)
    sign_in(admin, "admin")
    page = admin.get(f"/records/complaint/{case.id}?lang=zh-CN").text
    assert "流程结束 · 已撤回" in page and "· withdrawn" not in page


def test_the_answer_of_another_system_reads_on_the_timeline_with_what_it_changed(tmp_path: Path) -> None:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    give_password(system, "admin")
    accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "300", "basis": "条款"})
    outbox = system.runtime.services["outbox"]
    outbox.send_now = lambda message: {"voucher_no": "FI-2026-000318"} if message.channel == "erp" else None
    outbox.deliver()
    (compensation,) = system.forms.list("compensation")
    admin = app_client(system)
    sign_in(admin, "admin")
    page = admin.get(f"/records/compensation/{compensation['id']}?lang=zh-CN").text
    assert "外部系统已回复" in page and "财务 ERP" in page
    assert "ERP 凭证号" in page and "FI-2026-000318" in page


def test_an_escalation_reads_as_the_level_the_step_names(tmp_path: Path) -> None:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    give_password(system, "admin")
    case = Case(system, {**DAMAGE, "amount_claimed": "8000"})  # the rules raise it to level 2 at once
    admin = app_client(system)
    sign_in(admin, "admin")
    assert "升级 · 受理 · 二级响应：部门经理" in admin.get(f"/records/complaint/{case.id}?lang=zh-CN").text
    assert "escalated · Accept · Level 2: department manager" in admin.get(f"/records/complaint/{case.id}?lang=en").text


def test_the_knowledge_articles_recommended_are_listed_as_the_language_lists_sentences(tmp_path: Path) -> None:
    system = boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    give_password(system, "admin")
    for problem in ("快件超时三天未妥投。", "转运中心积压。"):
        system.forms.submit("knowledge_article", {"category": DELAY["category"], "problem": problem,
                                                  "solution": "先致歉，再查轨迹。"}, actor="admin")
    case = Case(system, DELAY)
    admin = app_client(system)
    sign_in(admin, "admin")
    page = admin.get(f"/records/complaint/{case.id}?lang=zh-CN").text
    assert "转运中心积压。；快件超时三天未妥投。" in page or "快件超时三天未妥投。；转运中心积压。" in page
