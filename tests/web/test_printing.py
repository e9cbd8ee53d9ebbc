"""Printing a record from the web: GET /records/{form}/{id}/print/{template}.pdf and .html.

The routes are mounted in a small app whose test middleware sets `request.state.principal`
from an `X-Test-User` header, so the handler's own checks (sign-in, template roles, record
access, hidden fields, audit) are tested without the sign-in pages.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from engine.errors import NotFoundError
from engine.identity import Principal
from engine.storage.tables import audit_log
from tests.reports.print_kit import QUERY_NO, letter_record, needs_poppler, printed_system  # noqa: F401
from tests.web.auth_kit import app_client, give_password, new_clock, postal_with_agent, sign_in
from web import printing
from web.app import Web

PRINCIPALS = {
    "admin": Principal("admin", frozenset({"admin"}), is_admin=True, display_name="管理员"),
    "agent": Principal("agent1", frozenset({"agent"}), frozenset({"service"}), display_name="王芳"),
    "manager_of_accounts": Principal("am1", frozenset({"account_manager"})),
    "finance": Principal("fin1", frozenset({"finance"}), frozenset({"finance"})),
}


class PrincipalFromHeader:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            user = headers.get(b"x-test-user", b"").decode()
            scope.setdefault("state", {})["principal"] = PRINCIPALS.get(user)
        await self.app(scope, receive, send)


async def not_found(request: Request, exc: Exception) -> PlainTextResponse:
    return PlainTextResponse(str(exc), status_code=404)


@pytest.fixture(scope="module")
def client(printed_system) -> TestClient:
    web = Web(printed_system, secret="test")
    app = Starlette(routes=printing.routes(web), middleware=[Middleware(PrincipalFromHeader)],
                    exception_handlers={NotFoundError: not_found})
    return TestClient(app, base_url="https://ts.example-post.cn", follow_redirects=False)


def get(client: TestClient, path: str, user: str | None = "admin", **kw: Any):
    return client.get(path, headers={"x-test-user": user} if user else {}, **kw)


@needs_poppler
def test_the_letter_is_served_as_a_pdf_named_after_the_query_number(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf")
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (
        "inline; filename*=UTF-8''%E7%AD%94%E5%A4%8D%E5%87%BD-" + QUERY_NO + ".pdf")
    assert response.headers["cache-control"] == "no-store"
    assert "sandbox" not in response.headers["content-security-policy"]


def test_download_asks_the_browser_to_save_it(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf?download=1")
    assert response.headers["content-disposition"].startswith("attachment;")


def test_the_preview_is_html_with_its_styles_and_no_script_allowed(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.html?lang=zh-CN")
    assert response.status_code == 200 and "投诉答复函" in response.text and "<style>" in response.text
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    # The QR code points at this site's lookup when DOCKET_PUBLIC_URL is not set.
    import segno

    uri = segno.make(f"https://ts.example-post.cn/track?query_no={QUERY_NO}", error="m").svg_data_uri(border=2)
    assert uri in response.text


def test_the_preview_shows_the_letter_as_a_sheet_of_its_paper_with_its_margins(client, letter_record):
    html = get(client, f"/records/complaint/{letter_record}/print/reply_letter.html?lang=zh-CN").text
    sheet = html[html.index("@media screen"):]
    assert "width: 210mm" in sheet and "padding: 18mm 20mm 20mm 20mm" in sheet and "margin: 1rem auto" in sheet
    assert html.index("@media screen") < html.lower().index("</head>")


def test_an_anonymous_visitor_is_sent_to_sign_in(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf", user=None)
    assert response.status_code == 303 and response.headers["location"].startswith("/signin?next=")


def test_a_role_the_template_does_not_list_may_not_print(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf", user="manager_of_accounts")
    assert response.status_code == 403


def test_a_refused_print_says_why_in_the_readers_language(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf?lang=zh-CN",
                   user="manager_of_accounts")
    assert response.status_code == 403 and "您的角色无权打印此模板。" in response.text


def test_a_record_the_user_may_not_read_is_not_found(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.html", user="finance")
    assert response.status_code == 404


def test_an_unknown_template_or_record_is_not_found(client, letter_record):
    assert get(client, f"/records/complaint/{letter_record}/print/nope.pdf").status_code == 404
    assert get(client, "/records/complaint/999/print/reply_letter.pdf").status_code == 404
    assert get(client, f"/records/other/{letter_record}/print/reply_letter.html").status_code == 404


def test_every_print_is_in_the_audit_log(client, letter_record, printed_system):
    get(client, f"/records/complaint/{letter_record}/print/reply_letter.html", user="agent")
    with printed_system.db.connect() as conn:
        rows = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target, audit_log.c.detail)
                            .where(audit_log.c.action == "record.printed")).all()
    assert ("agent1", "record.printed", f"complaint:{letter_record}", {"template": "reply_letter"}) in rows


def test_the_lookup_page_opened_from_the_qr_code_has_the_query_number_filled_in(printed_system):
    from web.app import create_app

    app = TestClient(create_app(printed_system, secret="test"))
    page = app.get(f"/track?query_no={QUERY_NO}")
    assert page.status_code == 200 and f'value="{QUERY_NO}"' in page.text
    assert 'value="&lt;x&gt;"' not in app.get("/track?query_no=<x>").text


def test_the_record_page_lists_the_templates_the_user_may_print(printed_system, letter_record):
    agent = printing.print_links(printed_system.runtime, "complaint", letter_record, PRINCIPALS["agent"], "zh-CN")
    assert agent == [("投诉答复函", f"/records/complaint/{letter_record}/print/reply_letter.pdf")]
    assert printing.print_links(printed_system.runtime, "complaint", letter_record,
                                PRINCIPALS["manager_of_accounts"], "en") == []


def complaint_with_agent(tmp_path):  # type: ignore[no-untyped-def]
    """The postal bundle with the agent's password and a complaint the account manager entered."""
    system = postal_with_agent(tmp_path, new_clock())
    record_id = system.forms.submit("complaint", {
        "customer_name": "华中物流", "contact_name": "刘女士", "contact_phone": "027-88886666",
        "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late", "description": "延误三天"},
        actor="accounts").record_id
    return system, record_id


def test_the_record_page_offers_the_print_templates_the_reader_may_print(tmp_path):
    system, record_id = complaint_with_agent(tmp_path)
    give_password(system, "accounts")
    agent = app_client(system)
    sign_in(agent, "agent")
    page = agent.get(f"/records/complaint/{record_id}?lang=zh-CN").text
    assert f'href="/records/complaint/{record_id}/print/reply_letter.pdf"' in page
    assert f'href="/records/complaint/{record_id}/print/reply_letter.html"' in page
    accounts = app_client(system)  # an account manager is not among the letter's roles
    sign_in(accounts, "accounts")
    theirs = accounts.get(f"/records/complaint/{record_id}")
    assert theirs.status_code == 200 and "/print/" not in theirs.text


def test_the_record_page_offers_each_print_in_the_bundles_other_languages(tmp_path):
    system, record_id = complaint_with_agent(tmp_path)
    agent = app_client(system)
    sign_in(agent, "agent")
    page = agent.get(f"/records/complaint/{record_id}?lang=en").text
    assert f'href="/records/complaint/{record_id}/print/reply_letter.pdf?lang=zh-CN"' in page
    assert ">中文 PDF</a>" in page and ">English PDF</a>" not in page


def test_a_print_in_another_language_leaves_the_readers_page_language_alone(client, letter_record):
    response = get(client, f"/records/complaint/{letter_record}/print/reply_letter.pdf?lang=en")
    assert response.status_code == 200
    assert "docket_lang" not in response.headers.get("set-cookie", "")


def test_the_print_links_follow_the_colon_without_a_space_in_chinese(tmp_path):
    # "打印： 投诉答复函": a space after the full-width colon, which carries its own.
    system, record_id = complaint_with_agent(tmp_path)
    agent = app_client(system)
    sign_in(agent, "agent")
    assert 'id="record-prints">打印：<a ' in agent.get(f"/records/complaint/{record_id}?lang=zh-CN").text
    assert 'id="record-prints">Print: <a ' in agent.get(f"/records/complaint/{record_id}?lang=en").text
