"""The public complaint form: renders accessibly, submits once, resists spam and floods."""

from __future__ import annotations

import re
from typing import Any
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from engine.clock import ManualClock
from engine.storage.tables import outbox
from web.app import create_app
from tests.web.api_kit import watch_submissions
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
FILLED = {
    "customer_name": "华南物流客户", "contact_name": "黄小姐", "contact_phone": "020-88886666",
    "occurred_at": "2026-11-20T09:15", "category": "delivery_late", "description": "派送延误两天",
    "region": "south",
}


class Seconds:
    """A fake monotonic clock for the rate limiter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


@pytest.fixture
def client(system: System, seconds: Seconds) -> TestClient:
    return TestClient(create_app(system, secret="test-secret", monotonic=seconds),
                      raise_server_exceptions=False, follow_redirects=False)


def ticket_of(html: str) -> str:
    match = re.search(r'name="_ticket" value="([^"]+)"', html)
    assert match, "the form has no ticket"
    return match.group(1)


def open_form(client: TestClient, clock: ManualClock, lang: str = "zh-CN") -> str:
    """Load the form and let a human's few seconds pass; returns the ticket."""
    page = client.get(f"/f/complaint?lang={lang}")
    assert page.status_code == 200
    clock.advance(timedelta(seconds=20))
    return ticket_of(page.text)


def test_the_public_form_shows_bilingual_labels_bound_to_inputs(client: TestClient) -> None:
    zh = client.get("/f/complaint?lang=zh-CN").text
    assert '<label for="f-customer_name">大客户名称' in zh and 'id="f-customer_name"' in zh
    en = client.get("/f/complaint?lang=en").text
    assert '<label for="f-customer_name">Key-account name' in en


def test_a_phone_is_told_what_the_name_company_and_phone_fields_hold(client: TestClient) -> None:
    """Autofill on a phone: the company and contact name were typed letter by letter."""
    page = client.get("/f/complaint?lang=en").text

    def tag(name: str) -> str:
        return re.search(rf'<input[^>]* name="{name}"[^>]*>', page).group(0)  # type: ignore[union-attr]

    assert 'autocomplete="organization"' in tag("customer_name")
    assert 'autocomplete="name"' in tag("contact_name")
    assert tag("contact_phone").count("autocomplete=") == 1 and 'autocomplete="tel"' in tag("contact_phone")


def test_the_category_tree_offers_only_its_leaves(client: TestClient) -> None:
    html = client.get("/f/complaint?lang=en").text
    assert re.search(r'<option value="transport" disabled>', html)
    assert re.search(r'<option value="damage_goods">', html)


def test_a_submission_shows_the_query_number(client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket})
    assert response.status_code == 303
    done = client.get(response.headers["location"])
    (record,) = system.forms.list("complaint")
    assert record["query_no"] in done.text and "查询编号" in done.text


def test_a_replayed_submission_creates_one_record(client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = open_form(client, clock)
    first = client.post("/f/complaint", data={**FILLED, "_ticket": ticket})
    again = client.post("/f/complaint", data={**FILLED, "_ticket": ticket})
    assert first.headers["location"] == again.headers["location"]
    assert system.forms.count("complaint") == 1


def test_a_replayed_submission_sends_one_acknowledgement_with_the_same_query_number(
        client: TestClient, clock: ManualClock, system: System) -> None:
    """RELIABILITY 40: a double click or a network retry is one ticket, one SMS, one number."""
    ticket = open_form(client, clock)
    pages = [client.get(client.post("/f/complaint", data={**FILLED, "_ticket": ticket}).headers["location"]).text
             for _ in range(2)]
    (record,) = system.forms.list("complaint")
    numbers = {match for page in pages for match in re.findall(r"TS20261123[0-9A-Z]{6}", page)}
    assert numbers == {record["query_no"]}
    with system.db.connect() as conn:
        sms = conn.execute(select(outbox.c.recipient, outbox.c.body).where(outbox.c.channel == "sms")).all()
    assert len(sms) == 1
    assert sms[0].recipient == FILLED["contact_phone"] and record["query_no"] in sms[0].body


def test_a_replayed_ticket_with_a_different_body_is_422(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock)
    client.post("/f/complaint", data={**FILLED, "_ticket": ticket})
    other = client.post("/f/complaint", data={**FILLED, "region": "north", "_ticket": ticket})
    assert other.status_code == 422


def test_errors_appear_next_to_their_fields_and_input_is_kept(client: TestClient, clock: ManualClock,
                                                              system: System) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    assert response.status_code == 422
    assert 'id="f-contact_phone-error">Enter a valid phone number.' in response.text
    assert 'aria-invalid="true"' in response.text
    assert 'value="华南物流客户"' in response.text
    assert system.forms.count("complaint") == 0


def test_a_form_sent_too_quickly_is_refused(client: TestClient, system: System) -> None:
    ticket = ticket_of(client.get("/f/complaint?lang=en").text)
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket})
    assert response.status_code == 400 and "sent a moment too soon" in response.text
    assert system.forms.count("complaint") == 0


def test_a_form_sent_too_quickly_is_shown_again_with_the_input_kept(client: TestClient) -> None:
    ticket = ticket_of(client.get("/f/complaint?lang=zh-CN").text)
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket})
    assert 'id="form-notice">提交过快，已保留您填写的内容' in response.text
    assert 'value="华南物流客户"' in response.text and "派送延误两天</textarea>" in response.text
    assert ticket_of(response.text) != ticket  # a fresh ticket, so the resend is accepted


def test_a_form_left_open_for_more_than_a_day_is_shown_again_with_the_input_kept(
        client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = ticket_of(client.get("/f/complaint?lang=en").text)
    clock.advance(timedelta(days=1, minutes=5))
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket})
    assert response.status_code == 400 and 'id="form-notice">This page was open too long' in response.text
    assert 'value="华南物流客户"' in response.text
    clock.advance(timedelta(seconds=20))
    again = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket_of(response.text)})
    assert again.status_code == 303 and system.forms.count("complaint") == 1


def test_a_filled_honeypot_is_refused(client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint", data={**FILLED, "_ticket": ticket, "website": "http://spam"})
    assert response.status_code == 400
    assert system.forms.count("complaint") == 0


def test_a_forged_ticket_is_refused(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock)
    forged = ticket.replace(ticket.split("|")[1], "1")
    assert client.post("/f/complaint", data={**FILLED, "_ticket": forged}).status_code == 400
    assert client.post("/f/complaint", data=FILLED).status_code == 400


def test_a_form_whose_ticket_no_longer_verifies_is_shown_again_with_the_input_kept(
        client: TestClient, clock: ManualClock, system: System) -> None:
    # A ticket signed before the server's secret changed (or by another server's) looks forged:
    # the customer who typed a long complaint must not lose it for that.
    from web.antispam import TicketSigner

    old = TicketSigner("the-secret-before").issue("complaint", clock.now())
    clock.advance(timedelta(seconds=20))
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": old})
    assert response.status_code == 400 and 'id="form-notice">页面已失效，已保留您填写的内容' in response.text
    assert 'value="华南物流客户"' in response.text and "派送延误两天</textarea>" in response.text
    assert system.forms.count("complaint") == 0
    clock.advance(timedelta(seconds=20))
    again = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket_of(response.text)})
    assert again.status_code == 303 and system.forms.count("complaint") == 1


def test_a_refusal_as_automated_is_worded_in_the_customers_language(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket, "website": "http://spam"})
    assert response.status_code == 400 and "表单未能提交，请刷新页面后重新填写。" in response.text
    assert "automated" not in response.text


def test_customer_input_is_never_evaluated(client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = open_form(client, clock)
    hostile = "{{7*7}} ${7*7} __import__('os').system('id')"
    client.post("/f/complaint", data={**FILLED, "description": hostile, "_ticket": ticket})
    (record,) = system.forms.list("complaint")
    assert record["description"] == hostile


def test_posting_too_often_is_throttled_with_retry_after(client: TestClient, seconds: Seconds) -> None:
    statuses = [client.post("/f/complaint", data={}).status_code for _ in range(11)]
    assert statuses[:10] == [400] * 10 and statuses[10] == 429
    limited = client.post("/f/complaint", data={})
    assert int(limited.headers["retry-after"]) >= 1
    seconds.now += 61
    assert client.post("/f/complaint", data={}).status_code == 400


def test_a_forged_forwarded_for_header_does_not_reset_the_limit(client: TestClient) -> None:
    for i in range(10):
        client.post("/f/complaint", data={}, headers={"X-Forwarded-For": f"10.0.0.{i}"})
    response = client.post("/f/complaint", data={}, headers={"X-Forwarded-For": "10.9.9.9"})
    assert response.status_code == 429


def test_a_post_with_too_many_fields_is_refused(client: TestClient) -> None:
    body = "&".join(f"f{i}=x" for i in range(100_000))
    response = client.post("/f/complaint", content=body,
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400


def test_a_form_that_is_not_public_is_not_found(client: TestClient, system: System) -> None:
    assert client.get("/f/nope").status_code == 404


def test_a_link_to_a_form_that_does_not_exist_is_explained_in_the_customers_language(client: TestClient) -> None:
    page = client.get("/f/nope?lang=zh-CN")
    assert page.status_code == 404 and '<html lang="zh-CN">' in page.text
    assert "此地址没有可填写的表单" in page.text and "nope" not in page.text.split("<main>")[1]
    assert "Traceback" not in page.text


def test_a_form_that_is_not_public_reads_like_one_that_does_not_exist(client: TestClient) -> None:
    staff_only, missing = client.get("/f/compensation?lang=en"), client.get("/f/nope?lang=en")
    assert staff_only.status_code == missing.status_code == 404
    assert staff_only.text.split("<main>")[1] == missing.text.split("<main>")[1]


def test_a_customers_dead_link_leads_to_the_progress_lookup_not_the_staff_sign_in(client: TestClient) -> None:
    page = client.get("/f/nope?lang=en").text
    assert '<a href="/track?lang=en" id="error-home">Look up progress</a>' in page


def test_an_acknowledgement_link_with_a_broken_number_says_so_in_the_customers_language(client: TestClient) -> None:
    page = client.get("/f/complaint/submitted/TS%25%25?lang=zh-CN")
    assert page.status_code == 404 and "此链接中的查询编号无效" in page.text


def test_a_crash_while_submitting_is_explained_to_the_customer_with_a_way_back_to_the_form(
        client: TestClient, clock: ManualClock, system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret internals")

    ticket = open_form(client, clock)
    monkeypatch.setattr(system.forms, "submit", explode)
    page = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket})
    assert page.status_code == 500 and '<html lang="zh-CN">' in page.text
    assert "系统内部出错（参考编号 " in page.text
    assert "secret internals" not in page.text and "Traceback" not in page.text
    assert '<a href="/f/complaint?lang=zh-CN" id="error-home">返回上一页</a>' in page.text


def test_the_public_form_may_be_framed_by_configured_sites_only(system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_EMBED_ORIGINS", "https://www.example-post.cn")
    client = TestClient(create_app(system, secret="test-secret"))
    form = client.get("/f/complaint").headers
    assert "frame-ancestors 'self' https://www.example-post.cn" in form["content-security-policy"]
    assert "x-frame-options" not in form
    home = client.get("/").headers
    assert "frame-ancestors 'none'" in home["content-security-policy"] and home["x-frame-options"] == "DENY"


def test_the_share_page_offers_an_iframe_snippet_and_qr_codes(client: TestClient) -> None:
    page = client.get("/f/complaint/share?lang=en")
    assert page.status_code == 200
    assert "&lt;iframe src=&#34;http://testserver/f/complaint?lang=en&#34;" in page.text


def test_the_share_page_warns_that_an_address_not_configured_may_not_reach_customers(client: TestClient) -> None:
    # A poster printed from an office PC encoded http://10.1.2.3:8000, which no customer reaches.
    page = client.get("/f/complaint/share?lang=en").text
    assert 'id="address-guessed"' in page and "DOCKET_PUBLIC_URL" in page


def test_qr_codes_encode_the_form_address_as_svg_and_png(client: TestClient) -> None:
    svg = client.get("/f/complaint/qr.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    png = client.get("/f/complaint/qr.png")
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get("/f/complaint/qr.gif").status_code == 404


def test_a_multipart_post_with_too_many_fields_is_refused(client: TestClient) -> None:
    boundary = "x" * 20
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n'
                    for i in range(20_000))
    body = (parts + f"--{boundary}--\r\n").encode()
    response = client.post("/f/complaint", content=body,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code in (400, 413)


def test_a_huge_text_field_is_refused_before_it_is_read(client: TestClient) -> None:
    response = client.post("/f/complaint", content=b"description=" + b"x" * (50 * 1024 * 1024),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


def test_a_huge_body_without_a_length_is_cut_off_while_streaming(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b"description="
        for _ in range(64):
            yield b"x" * (64 * 1024)

    response = client.post("/f/complaint", content=chunks(),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413


PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")


def test_photos_sent_with_the_form_are_stored_and_linked(client: TestClient, clock: ManualClock,
                                                         system: System) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("破损.png", PNG_1X1, "image/png"))])
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    (photo,) = record["photos"]
    assert photo["name"] == "破损.png" and photo["type"] == "png" and photo["size"] == len(PNG_1X1)


def test_a_disguised_html_photo_is_refused_next_to_its_field(client: TestClient, clock: ManualClock,
                                                             system: System) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("x.png", b"<html><script>alert(1)</script></html>", "image/png"))])
    assert response.status_code == 422
    assert 'id="f-photos-error">x.png: ' in response.text
    assert system.forms.count("complaint") == 0


def test_a_refused_photo_does_not_hide_the_other_mistakes(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket},
                           files=[("photos", ("notes.txt", b"just text", "text/plain"))])
    assert response.status_code == 422
    assert 'id="f-photos-error">notes.txt: ' in response.text
    assert 'id="f-contact_phone-error">Enter a valid phone number.' in response.text


def test_staff_only_fields_are_not_on_the_public_form(client: TestClient) -> None:
    html = client.get("/f/complaint?lang=en").text
    assert 'name="urgency"' not in html and 'name="satisfaction"' not in html
    assert 'name="customer_name"' in html


def test_an_anonymous_submission_cannot_set_a_staff_only_field(client: TestClient, clock: ManualClock,
                                                               system: System) -> None:
    response = client.post("/api/v1/forms/complaint/records",
                           json={**{k: v for k, v in FILLED.items()}, "urgency": "urgent"})
    assert response.status_code == 422 and "urgency" in response.json()["fields"]
    assert system.forms.count("complaint") == 0


def test_waybill_rows_are_posted_as_a_table_and_blank_rows_ignored(client: TestClient, clock: ManualClock,
                                                                   system: System) -> None:
    html = client.get("/f/complaint?lang=en").text
    assert 'name="waybills.0.number"' in html and 'name="waybills.1.note"' in html
    ticket = open_form(client, clock)
    rows = {"waybills.0.number": "EA123456789CN", "waybills.0.note": "三箱之一",
            "waybills.1.number": "", "waybills.1.note": ""}
    response = client.post("/f/complaint", data={**FILLED, **rows, "_ticket": ticket})
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert record["waybills"] == [{"number": "EA123456789CN", "note": "三箱之一"}]


def test_a_bad_waybill_cell_is_reported_with_its_row_and_column(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "waybills.0.number": "EA123456789CN",
                                                         "waybills.1.number": "??", "_ticket": ticket})
    assert response.status_code == 422
    assert "Row 2 Waybill number: " in response.text
    assert 'value="EA123456789CN"' in response.text


def test_the_submission_runs_off_the_event_loop_thread(client: TestClient, clock: ManualClock, system: System,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """It may wait on the database's write lock: the event loop must go on serving meanwhile."""
    on_loop = watch_submissions(system, monkeypatch)
    ticket = open_form(client, clock)
    assert client.post("/f/complaint", data={**FILLED, "_ticket": ticket}).status_code == 303
    assert on_loop == [False]
    bad = client.post("/f/complaint", data={**FILLED, "contact_phone": "x", "_ticket": open_form(client, clock)})
    assert bad.status_code == 422 and on_loop == [False, False]  # its ValidationFailed still reaches the page


# -- files are kept through a refused post ------------------------------------------------------
KEPT = re.compile(r'<input type="checkbox" name="photos" value="([A-Za-z0-9_-]{32})" checked> ([^<]+?) <small')


def attachment_rows(system: System) -> list[dict]:
    from engine.storage.tables import attachments

    with system.db.connect() as conn:
        return [dict(r) for r in conn.execute(select(attachments)).mappings()]


def refused_with_a_photo(client: TestClient, clock: ManualClock, lang: str = "zh-CN") -> str:
    """The page answering a form sent with a photo and a wrong phone number (read by a human for
    a while, so its fresh ticket may be sent)."""
    ticket = open_form(client, clock, lang)
    response = client.post(f"/f/complaint?lang={lang}",
                           data={**FILLED, "contact_phone": "12345", "_ticket": ticket},
                           files=[("photos", ("破损.png", PNG_1X1, "image/png"))])
    assert response.status_code == 422
    clock.advance(timedelta(seconds=20))
    return response.text


def test_a_photo_sent_with_a_refused_form_is_listed_again_by_name(client: TestClient, clock: ManualClock,
                                                                  system: System) -> None:
    html = refused_with_a_photo(client, clock)
    (row,) = attachment_rows(system)
    assert KEPT.findall(html) == [(row["id"], "破损.png")]
    assert "已上传，将随表单一起提交（取消勾选即可移除）" in html
    assert f"破损.png <small class=\"muted\">({row['size']} B)</small>" in html  # no English "Bytes"


def test_sending_the_corrected_form_links_the_photo_stored_the_first_time(
        client: TestClient, clock: ManualClock, system: System) -> None:
    html = refused_with_a_photo(client, clock)
    ((kept, _),) = KEPT.findall(html)
    response = client.post("/f/complaint", data={**FILLED, "photos": ["", kept], "_ticket": ticket_of(html)})
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert [p["id"] for p in record["photos"]] == [kept]
    (row,) = attachment_rows(system)  # the one upload, linked: nothing orphaned, nothing stored twice
    assert (row["status"], row["record_id"], row["field"]) == ("linked", record["id"], "photos")


def test_a_kept_photo_and_a_newly_chosen_one_are_linked_together(client: TestClient, clock: ManualClock,
                                                                 system: System) -> None:
    html = refused_with_a_photo(client, clock)
    ((kept, _),) = KEPT.findall(html)
    response = client.post("/f/complaint", data={**FILLED, "photos": ["", kept], "_ticket": ticket_of(html)},
                           files=[("photos", ("第二张.png", PNG_1X1, "image/png"))])
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert [p["name"] for p in record["photos"]] == ["破损.png", "第二张.png"]
    assert record["photos"][0]["id"] == kept


def test_unticking_a_kept_photo_leaves_it_out_of_the_record(client: TestClient, clock: ManualClock,
                                                            system: System) -> None:
    html = refused_with_a_photo(client, clock)
    response = client.post("/f/complaint", data={**FILLED, "photos": "", "_ticket": ticket_of(html)})
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert not record["photos"]
    assert [row["status"] for row in attachment_rows(system)] == ["pending"]


def test_a_forged_photo_id_is_refused_beside_the_field_and_not_listed(client: TestClient, clock: ManualClock,
                                                                      system: System) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "photos": ["", "A" * 32], "_ticket": ticket})
    assert response.status_code == 422
    assert 'id="f-photos-error">A file was not found; upload it again.' in response.text
    assert KEPT.findall(response.text) == [] and "A" * 32 not in response.text
    assert system.forms.count("complaint") == 0


def test_a_photo_of_another_complaint_is_refused_and_its_name_not_shown(
        client: TestClient, clock: ManualClock, system: System) -> None:
    first = refused_with_a_photo(client, clock)
    ((theirs, _),) = KEPT.findall(first)
    client.post("/f/complaint", data={**FILLED, "photos": theirs, "_ticket": ticket_of(first)})
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "contact_name": "Another customer",
                                                         "photos": ["", theirs], "_ticket": ticket})
    assert response.status_code == 422
    assert 'id="f-photos-error">These files are unknown or belong to another record' in response.text
    assert "破损.png" not in response.text
    assert system.forms.count("complaint") == 1


def test_a_photo_sent_with_a_form_refused_as_too_quick_is_kept(client: TestClient, system: System) -> None:
    ticket = ticket_of(client.get("/f/complaint?lang=zh-CN").text)
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("破损.png", PNG_1X1, "image/png"))])
    assert response.status_code == 400 and 'id="form-notice">提交过快' in response.text
    (row,) = attachment_rows(system)
    assert KEPT.findall(response.text) == [(row["id"], "破损.png")]


def test_a_refused_photo_does_not_drop_the_good_one_sent_with_it(client: TestClient, clock: ManualClock,
                                                                 system: System) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("good.png", PNG_1X1, "image/png")),
                                  ("photos", ("notes.txt", b"just text", "text/plain"))])
    assert response.status_code == 422 and 'id="f-photos-error">notes.txt: ' in response.text
    assert [name for _, name in KEPT.findall(response.text)] == ["good.png"]


# -- a table marks only its bad cells -----------------------------------------------------------
def table_inputs(html: str) -> dict[str, str]:
    """The attributes of each waybill cell's input, by input name."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<input [^>]*name="(waybills\.\d+\.\w+)"[^>]*>', html)}


def test_only_the_bad_waybill_cell_is_marked_invalid(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint", data={**FILLED, "waybills.0.number": "XYZ", "_ticket": ticket})
    assert response.status_code == 422
    cells = table_inputs(response.text)
    assert [name for name, tag in cells.items() if 'aria-invalid="true"' in tag] == ["waybills.0.number"]
    assert len(cells) > 1


def test_a_bad_waybill_cells_message_is_tied_to_the_cell(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "waybills.0.number": "XYZ", "_ticket": ticket})
    described = re.search(r'aria-describedby="([^"]+)"', table_inputs(response.text)["waybills.0.number"])
    assert described, "the bad cell names no message"
    message = re.search(rf'<p class="error" id="{described.group(1)}">([^<]+)</p>', response.text)
    assert message and message.group(1).startswith("Row 1 Waybill number: ")


def test_a_bad_waybill_below_a_blank_row_is_marked_in_the_row_that_shows_it(client: TestClient,
                                                                            clock: ManualClock) -> None:
    """The validator skips blank rows before numbering them: the page shows the rows the same way."""
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "waybills.0.number": "",
                                                         "waybills.1.number": "XYZ", "_ticket": ticket})
    bad = table_inputs(response.text)["waybills.0.number"]
    assert 'value="XYZ"' in bad and 'aria-invalid="true"' in bad
    assert "Row 1 Waybill number: " in response.text


def camera_png(megabytes: float) -> bytes:
    """A valid PNG of about `megabytes` MB, as a phone camera's photo weighs (stored uncompressed:
    random pixels do not compress)."""
    import os
    import struct
    import zlib

    width = 1000
    height = int(megabytes * 1024 * 1024 / (3 * width)) + 1
    raw = b"".join(b"\x00" + os.urandom(3 * width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 0)) + chunk(b"IEND", b""))


def test_a_photo_of_a_few_megabytes_from_a_phone_is_accepted_with_the_form(client: TestClient, clock: ManualClock,
                                                                            system: System) -> None:
    ticket = open_form(client, clock)
    response = client.post("/f/complaint", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("破损.png", camera_png(3), "image/png"))])
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert record["photos"][0]["size"] > 3 * 1024 * 1024


def test_a_photo_over_its_fields_limit_is_refused_beside_the_field_with_the_entries_kept(
        client: TestClient, clock: ManualClock, system: System) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("huge.png", camera_png(11), "image/png"))])
    assert response.status_code == 422
    assert 'id="f-photos-error">huge.png: The file is larger than 10 MB.' in response.text
    assert 'value="华南物流客户"' in response.text
    assert system.forms.count("complaint") == 0


def test_files_too_large_for_the_form_are_refused_with_a_page_in_the_readers_language(client: TestClient) -> None:
    boundary = "b" * 16
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + b"x" * (21 * 1024 * 1024) + f"\r\n--{boundary}--\r\n".encode()
    response = client.post("/f/complaint?lang=zh-CN", content=body,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 413 and response.headers["content-type"].startswith("text/html")
    assert "<h1>提交的内容过大</h1>" in response.text and "合计超过 20 MB" in response.text


def test_a_refused_customer_is_led_back_to_the_form_not_to_the_staff_sign_in(client: TestClient) -> None:
    response = client.post("/f/complaint?lang=en", content=b"description=" + b"x" * (3 * 1024 * 1024),
                           headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert 'href="/f/complaint?lang=en" id="error-home">Back to the page</a>' in response.text


def test_each_file_input_of_the_public_form_carries_its_fields_size_limit(client: TestClient) -> None:
    html = client.get("/f/complaint?lang=en").text
    photos = re.search(r'<input type="file" id="f-photos"[^>]*>', html)
    assert photos and f'data-max-bytes="{10 * 1024 * 1024}"' in photos.group(0)
    assert 'data-max-files-bytes="' in html and "is larger than {mb} MB: choose a smaller file." in html


def test_a_throttled_customer_is_told_how_long_to_wait_in_their_language(client: TestClient, seconds: Seconds) -> None:
    for _ in range(10):
        client.post("/f/complaint?lang=zh-CN", data={})
    seconds.now += 15  # the oldest post of the window leaves it in 45 seconds
    limited = client.post("/f/complaint?lang=zh-CN", data={})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "45"
    assert "请求过于频繁，请在 45 秒后再试。" in limited.text
    seconds.now -= 15  # the same wait read in English, rounded up to whole minutes
    assert "Too many requests: please try again in 1 minute." in client.post("/f/complaint?lang=en", data={}).text


def test_the_uploads_of_a_refused_post_are_closed_with_its_request(client: TestClient, clock: ManualClock) -> None:
    """A post refused for a wrong phone number stores its photo and answers 422: the spooled
    upload is closed with the request, not left open until garbage collection finds it."""
    import gc
    import tempfile

    def open_spools() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, tempfile.SpooledTemporaryFile) and not o.closed)

    before = open_spools()
    refused_with_a_photo(client, clock)
    assert open_spools() == before


def test_a_refused_form_lists_every_mistake_at_the_top_with_a_link_to_its_field(
        client: TestClient, clock: ManualClock) -> None:
    # The wizard shows one step at a time: the list is how the customer learns that the step they
    # are not looking at has mistakes too.
    ticket = open_form(client, clock, "en")
    data = {**FILLED, "contact_phone": "12", "description": "", "_ticket": ticket}
    response = client.post("/f/complaint?lang=en", data=data)
    assert response.status_code == 422
    summary = response.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert re.findall(r'<a href="#([^"]+)">([^<]+)</a>', summary) == [
        ("f-contact_phone", "Contact phone: Enter a valid phone number."),
        ("f-description", "What happened: This field is required.")]


def test_a_refused_form_opens_with_the_cursor_on_its_list_of_mistakes(client: TestClient, clock: ManualClock) -> None:
    # autofocus needs no script: without JavaScript the page still starts at the list.
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    summary = re.search(r'<div [^>]*id="form-errors"[^>]*>', response.text)
    assert summary and 'tabindex="-1"' in summary[0] and "autofocus" in summary[0]
    assert response.text.count("autofocus") == 1


def test_a_form_sent_too_soon_opens_with_the_cursor_on_the_notice_saying_so(client: TestClient) -> None:
    ticket = ticket_of(client.get("/f/complaint?lang=en").text)
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket})
    notice = re.search(r'<div [^>]*id="form-notice"[^>]*>', response.text)
    assert notice and 'tabindex="-1"' in notice[0] and "autofocus" in notice[0]


def test_the_form_says_in_words_what_the_asterisk_of_a_required_field_means(client: TestClient) -> None:
    # A red asterisk alone relies on colour and convention; screen readers hear "required" already.
    en = client.get("/f/complaint?lang=en").text
    assert '<p class="help" id="required-note">Fields marked * are required.</p>' in en
    assert en.index('id="required-note"') < en.index('id="f-customer_name"')
    assert '<p class="help" id="required-note">带 * 的为必填项。</p>' in client.get("/f/complaint?lang=zh-CN").text


def test_a_refused_form_says_so_in_the_page_title(client: TestClient, clock: ManualClock) -> None:
    # The title is what a screen reader announces first on the page that comes back.
    ticket = open_form(client, clock, "en")
    refused = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    assert "<title>Error: Key-account complaint · " in refused.text
    assert "<title>错误：大客户投诉 · " in client.post("/f/complaint?lang=zh-CN", data={
        **FILLED, "contact_phone": "12", "_ticket": open_form(client, clock)}).text
    assert "<title>Key-account complaint · " in client.get("/f/complaint?lang=en").text


def test_the_list_of_mistakes_reads_in_chinese_with_a_chinese_colon(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock, "zh-CN")
    response = client.post("/f/complaint?lang=zh-CN", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    assert '<a href="#f-contact_phone">联系电话：请输入有效的电话号码。</a>' in response.text


def test_a_bad_waybill_cell_is_listed_with_a_link_to_its_message(client: TestClient, clock: ManualClock) -> None:
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "waybills.0.number": "XYZ", "_ticket": ticket})
    summary = response.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#f-waybills-cell-0-error">Row 1 Waybill number: ' in summary
    assert 'id="f-waybills-cell-0-error">Row 1 Waybill number: ' in response.text


def test_the_documents_input_offers_only_the_types_the_field_takes(client: TestClient) -> None:
    # Without `accept` a phone's picker offered every file, and an .exe was refused only once sent.
    page = client.get("/f/complaint?lang=en").text
    documents = re.search(r'<input type="file" id="f-documents"[^>]*>', page)
    assert documents
    accept = re.search(r'accept="([^"]+)"', documents[0])
    assert accept and set(accept[1].split(",")) >= {"application/pdf", ".pdf", ".docx", ".xlsx", "image/jpeg", ".jpg"}
    assert ".exe" not in accept[1] and ".txt" not in accept[1]


def test_the_photos_input_offers_images_only(client: TestClient) -> None:
    page = client.get("/f/complaint?lang=en").text
    photos = re.search(r'<input type="file" id="f-photos"[^>]*accept="([^"]+)"', page)
    assert photos and {kind.split("/")[0] for kind in photos[1].split(",") if "/" in kind} == {"image"}


def test_the_public_form_leads_a_returning_customer_to_the_progress_lookup(client: TestClient) -> None:
    # The QR code and the embedded form are a customer's way in; /track was linked from nowhere
    # but the acknowledgement, so a lost acknowledgement meant no way to the progress.
    page = client.get("/f/complaint?lang=en").text
    assert re.search(r'Already sent one\? <a href="/track\?lang=en" id="lookup-link"[^>]*>Look up progress</a>', page)
    assert re.search(r'已提交过？<a href="/track\?lang=zh-CN" id="lookup-link"[^>]*>查询处理进度</a>',
                     client.get("/f/complaint?lang=zh-CN").text)


def test_a_public_form_without_a_lookup_does_not_offer_one(tmp_path: Path) -> None:
    from tests.engine.bundle_kit import write_bundle

    root = write_bundle(tmp_path / "bundle", {"forms/receipt.yaml": (
        "form: receipt\nlabel: {zh-CN: 签收确认, en: Delivery receipt}\npublic: true\nfields:\n"
        "  name:\n    type: text\n    label: {zh-CN: 姓名, en: Name}\n")})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}")
    page = TestClient(create_app(system, secret="t")).get("/f/receipt?lang=en")
    assert page.status_code == 200 and 'id="lookup-link"' not in page.text


def test_a_public_form_without_numbering_thanks_the_customer_after_sending(tmp_path: Path) -> None:
    # Its acknowledgement was a 404 (no number to put in the address): the customer, told the
    # page was not found, sent the form again.
    from tests.engine.bundle_kit import write_bundle

    root = write_bundle(tmp_path / "bundle", {"forms/receipt.yaml": (
        "form: receipt\nlabel: {zh-CN: 签收确认, en: Delivery receipt}\npublic: true\nfields:\n"
        "  name:\n    type: text\n    label: {zh-CN: 姓名, en: Name}\n")})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    client = TestClient(create_app(boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock), secret="t"))
    ticket = ticket_of(client.get("/f/receipt?lang=en").text)
    clock.advance(timedelta(seconds=20))
    sent = client.post("/f/receipt?lang=en", data={"name": "Chen", "_ticket": ticket}, follow_redirects=False)
    assert sent.status_code == 303 and sent.headers["location"] == "/f/receipt/submitted?lang=en"
    thanks = client.get(sent.headers["location"])
    assert thanks.status_code == 200 and "Thank you, we have received it" in thanks.text
    assert 'id="query-no"' not in thanks.text


def test_the_contact_phone_says_what_it_takes_and_that_the_lookup_asks_for_its_last_digits(client: TestClient) -> None:
    # "12" met "Enter a valid phone number." only after sending; and the customer learnt only on
    # the lookup page that this phone is their proof there.
    page = client.get("/f/complaint?lang=en").text
    assert re.search(r'<input type="tel" id="f-contact_phone"[^>]* aria-describedby="f-contact_phone-help"', page)
    assert ('id="f-contact_phone-help">A mobile, or a landline with its area code (e.g. 021-12345678). '
            'Looking up the progress asks for its last 4 digits.<') in page
    zh = client.get("/f/complaint?lang=zh-CN").text
    assert 'id="f-contact_phone-help">手机号，或带区号的固定电话（如 021-12345678）。查询处理进度时需输入它的后 4 位。<' in zh


def test_the_incident_time_picker_offers_no_time_after_now(client: TestClient) -> None:
    # not_future: a phone's picker let the customer choose tomorrow, refused only after sending.
    # Now is the runtime's clock (2026-11-23 02:00 UTC), as the server's check reads it.
    page = client.get("/f/complaint?lang=en").text
    found = re.search(r'<input type="datetime-local" id="f-occurred_at"[^>]* max="([^"]+)"', page)
    assert found and found[1] == "2026-11-23T10:00"


def test_the_public_pages_are_titled_with_the_service_not_the_engine(client: TestClient) -> None:
    # A customer's tab and bookmark read "大客户投诉 · Docket": the engine's name means nothing to them.
    for path in ("/f/complaint?lang=zh-CN", "/track?lang=zh-CN", "/f/complaint/submitted/TS2026112300001?lang=zh-CN"):
        title = re.search(r"<title>(.*?)</title>", client.get(path).text)
        assert title and title[1].endswith(" · 大客户投诉管理"), (path, title and title[1])


@pytest.fixture
def framed(system: System, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """A client of a server whose public pages the customer's own site may frame."""
    monkeypatch.setenv("DOCKET_EMBED_ORIGINS", "https://www.example-post.cn")
    return TestClient(create_app(system, secret="test-secret", monotonic=Seconds()),
                      raise_server_exceptions=False, follow_redirects=False)


def may_be_framed_by_the_site(headers: Any) -> bool:
    return ("frame-ancestors 'self' https://www.example-post.cn" in headers["content-security-policy"]
            and "x-frame-options" not in headers)


def test_a_refused_form_may_be_shown_in_the_frame_it_was_sent_from(framed: TestClient, clock: ManualClock) -> None:
    # The browser blocked it: a customer on the partner's site met an error instead of their mistakes.
    ticket = open_form(framed, clock, "en")
    refused = framed.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    assert refused.status_code == 422 and may_be_framed_by_the_site(refused.headers)


def test_a_form_sent_too_soon_may_be_shown_again_in_its_frame(framed: TestClient) -> None:
    ticket = ticket_of(framed.get("/f/complaint?lang=en").text)
    again = framed.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket})
    assert again.status_code == 400 and may_be_framed_by_the_site(again.headers)


def test_the_acknowledgement_may_be_shown_in_the_frame_the_form_was_sent_from(
        framed: TestClient, clock: ManualClock) -> None:
    ticket = open_form(framed, clock, "en")
    sent = framed.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket})
    acknowledgement = framed.get(sent.headers["location"])
    assert acknowledgement.status_code == 200 and may_be_framed_by_the_site(acknowledgement.headers)


def test_the_progress_lookup_may_be_framed_by_the_same_sites(framed: TestClient) -> None:
    assert may_be_framed_by_the_site(framed.get("/track?lang=en").headers)
    answer = framed.post("/track?lang=en", data={"query_no": "TS2026112399999", "verify": "1234"})
    assert may_be_framed_by_the_site(answer.headers)
    assert may_be_framed_by_the_site(framed.post("/track/answer?lang=en", data={"pass": "x"}).headers)


def test_a_throttled_customer_is_told_so_inside_the_frame(framed: TestClient) -> None:
    for _ in range(20):
        framed.post("/track?lang=en", data={"query_no": "TS2026112399999", "verify": "1234"})
    throttled = framed.post("/track?lang=en", data={"query_no": "TS2026112399999", "verify": "1234"})
    assert throttled.status_code == 429 and may_be_framed_by_the_site(throttled.headers)


def test_staff_pages_stay_unframeable_when_public_ones_may_be_framed(framed: TestClient) -> None:
    signin = framed.get("/signin").headers
    assert "frame-ancestors 'none'" in signin["content-security-policy"] and signin["x-frame-options"] == "DENY"


def test_the_list_of_mistakes_is_introduced_as_a_list_not_as_marks_below(client: TestClient, clock: ManualClock) -> None:
    # "The fields marked below": with the wizard, some of them are on a step that is not shown.
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket})
    assert re.search(r'<div class="alert" role="alert" id="form-errors"[^>]*><p>Please correct the following, '
                     r'then send the form again:</p>', response.text)


def test_a_mistake_in_a_field_the_form_does_not_show_is_still_listed(tmp_path: Path) -> None:
    # A staff-only field required by a condition refused the anonymous posts that met it, and
    # the page listed nothing to fix. (Required outright, it is a load error: forms/kind.py.)
    from tests.engine.bundle_kit import write_bundle

    root = write_bundle(tmp_path / "bundle", {"forms/receipt.yaml": (
        "form: receipt\nlabel: {zh-CN: 签收确认, en: Delivery receipt}\npublic: true\nfields:\n"
        "  name:\n    type: text\n    label: {zh-CN: 姓名, en: Name}\n"
        "  code:\n    type: text\n    staff_only: true\n    required_if: name == 'Chen'\n"
        "    label: {zh-CN: 内部编码, en: Internal code}\n")})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    client = TestClient(create_app(boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock), secret="t"))
    ticket = ticket_of(client.get("/f/receipt?lang=en").text)
    clock.advance(timedelta(seconds=20))
    refused = client.post("/f/receipt?lang=en", data={"name": "Chen", "_ticket": ticket})
    summary = refused.text.split('id="form-errors"', 1)[1].split("</div>", 1)[0]
    assert "<li>Internal code: This field is required.</li>" in summary


def test_photos_on_the_public_form_are_refused_while_pending_uploads_fill_their_room(
        client: TestClient, clock: ManualClock, system: System) -> None:
    client.app.state.web.upload_room.cap = 1  # byte: the first photo fills it
    ticket = open_form(client, clock, "en")
    first = client.post("/f/complaint?lang=en", data={**FILLED, "contact_phone": "12", "_ticket": ticket},
                        files=[("photos", ("a.png", PNG_1X1, "image/png"))])
    assert first.status_code == 422 and 'id="f-photos-error"' not in first.text  # stored, kept for the next post
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket},
                           files=[("photos", ("b.png", PNG_1X1, "image/png"))])
    assert response.status_code == 422 and system.forms.count("complaint") == 0
    assert 'id="f-photos-error">b.png: Files cannot be received just now' in response.text


@pytest.mark.parametrize("index", ["²", "①", "٣"])
def test_a_table_row_numbered_with_a_digit_that_is_not_ascii_is_ignored(client: TestClient, clock: ManualClock,
                                                                        system: System, index: str) -> None:
    # str.isdigit() takes ² and ①, which int() refuses: the public form answered 500.
    ticket = open_form(client, clock, "en")
    response = client.post("/f/complaint?lang=en", data={**FILLED, "_ticket": ticket,
                                                          f"waybills.{index}.number": "SF1234567890"})
    assert response.status_code == 303
    (record,) = system.forms.list("complaint")
    assert not record["waybills"]
