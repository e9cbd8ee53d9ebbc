"""Rendering print templates: what the template reads, escaping, hidden fields, errors, and a
PDF that loads nothing from outside the bundle."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from engine.clock import ManualClock
from engine.errors import NotFoundError
from engine.storage.db import transaction
from engine.templating import TemplateRenderError
from reports.print import PrintService, render_pdf
from reports.print.render import ASSET_BASE, _fetcher_class, asset_uri, lookup_url, qr
from tests.engine.bundle_kit import write_bundle
from tests.reports.print_kit import BASE_URL, LETTER, NOW, QUERY_NO, letter_record, printed_system  # noqa: F401
from web.system import System, boot

HOSTILE = '"><img src=x onerror=alert(1)>'


def render(system: System, record_id: int, locale: str = "zh-CN", **options) -> str:
    return PrintService.of(system.runtime).render_html("reply_letter", "complaint", record_id, locale,
                                                      base_url=BASE_URL, **options).html


def test_the_letter_reads_the_record_its_fields_and_the_templates_values(printed_system, letter_record):
    html = render(printed_system, letter_record)
    assert "华东电子商务有限公司（联系人：陈先生）" in html
    assert "运输 / 货物破损 / 内件破损" in html  # the category as people read it, not its code
    assert "<td>EK123456789CN</td><td>显示器</td>" in html  # sub-table rows by column
    assert "邮政速递物流有限公司" in html and "¥5,200.00" in html
    assert "2026年11月23日" in html  # today, from the injected clock, in the bundle's zone


def test_a_letter_without_waybills_numbers_its_sections_without_a_gap(printed_system):
    record = printed_system.forms.submit("complaint", {**LETTER, "waybills": []}, actor="agent1")
    html = render(printed_system, record.record_id)
    assert [h.split("、")[0] for h in html.split("<h2>")[1:]] == ["一", "二", "三", "四"]


def test_a_hostile_answer_is_escaped_in_the_letter(printed_system):
    """RELIABILITY 14: a customer's text never becomes markup in the printed letter."""
    record = printed_system.forms.submit("complaint", {**LETTER, "description": HOSTILE,
                                                       "resolution": "<script>alert(1)</script>"},
                                         actor="agent1")
    html = render(printed_system, record.record_id)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_fields_the_reader_may_not_see_print_empty(printed_system, letter_record):
    html = render(printed_system, letter_record, hidden={"compensation", "basis"})
    assert "¥5,200.00" not in html and "GB/T 27917" not in html
    assert "本次投诉不涉及赔偿" in html


def test_an_unknown_template_a_template_of_another_form_and_an_unknown_record_are_not_found(
        printed_system, letter_record):
    service = PrintService.of(printed_system.runtime)
    with pytest.raises(NotFoundError, match="no print template 'nope'"):
        service.render_html("nope", "complaint", letter_record, "zh-CN")
    with pytest.raises(NotFoundError, match="for form 'other'"):
        service.render_html("reply_letter", "other", letter_record, "zh-CN")
    with pytest.raises(NotFoundError, match="no complaint record 999"):
        service.render_html("reply_letter", "complaint", 999, "zh-CN")


def test_render_pdf_works_inside_the_callers_transaction(printed_system, letter_record):
    """What a notification action does: attach the letter while its transaction is open."""
    with transaction(printed_system.db) as conn:
        conn.execute(text("SELECT 1"))
        pdf = render_pdf(printed_system.runtime, "reply_letter", "complaint", letter_record, "zh-CN",
                         conn=conn)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 10_000


def test_the_lookup_url_defaults_to_the_configured_public_address(printed_system, letter_record, monkeypatch):
    monkeypatch.setenv("DOCKET_PUBLIC_URL", "https://ts.example.cn/")
    html = PrintService.of(printed_system.runtime).render_html(
        "reply_letter", "complaint", letter_record, "zh-CN").html
    assert lookup_url("https://ts.example.cn", QUERY_NO) == f"https://ts.example.cn/track?query_no={QUERY_NO}"
    import segno

    assert segno.make(f"https://ts.example.cn/track?query_no={QUERY_NO}", error="m").svg_data_uri(border=2) in html


def test_qr_refuses_a_size_that_is_not_a_length():
    with pytest.raises(ValueError, match="not a length"):
        qr("x", "1px;background:url(http://evil)")
    assert qr("x").startswith('<img class="qr" src="data:image/svg+xml')


def test_asset_gives_an_svg_of_the_templates_folder_as_a_data_uri():
    assert asset_uri({"a.svg": "<svg/>"}, "a.svg") == "data:image/svg+xml;charset=utf-8,%3Csvg%2F%3E"
    with pytest.raises(ValueError, match="not an SVG or CSS file"):
        asset_uri({"a.svg": "<svg/>"}, "../secret.svg")


def test_the_pdf_step_loads_only_the_bundles_files_and_data_uris():
    fetcher = _fetcher_class()({"logo.svg": "<svg xmlns='http://www.w3.org/2000/svg'/>"})
    assert fetcher.fetch(ASSET_BASE + "logo.svg").read().startswith(b"<svg")
    assert fetcher.fetch("data:text/plain,hi").read() == b"hi"
    for url in ("file:///etc/passwd", "http://169.254.169.254/latest/meta-data/", ASSET_BASE + "missing.svg",
                "https://example.com/x.css"):
        with pytest.raises(ValueError):
            fetcher.fetch(url)


MINI_LETTER = {
    "templates/letter.yaml": """\
        template: letter
        form: ticket
        html: letter.html
        """,
}


def mini_system(tmp_path: Path, html: str) -> tuple[System, int]:
    root = write_bundle(tmp_path / "bundle", {**MINI_LETTER, "templates/letter.html": html})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=ManualClock(NOW))
    return system, system.forms.submit("ticket", {"title": "A & B"}).record_id


def test_any_bundle_can_have_print_templates(tmp_path: Path):
    system, record_id = mini_system(tmp_path, "<p>{{ fields.title.label }}: {{ record.title }}</p>")
    pdf = render_pdf(system.runtime, "letter", "ticket", record_id, "en")
    assert pdf.startswith(b"%PDF-")
    printed = PrintService.of(system.runtime).render_html("letter", "ticket", record_id, "en")
    assert printed.html == "<p>title: A &amp; B</p>" and printed.filename == "letter-T0001.pdf"


def test_a_failing_template_is_a_clear_error_with_its_file_and_line(tmp_path: Path):
    system, record_id = mini_system(tmp_path, "<p>\n{{ record.title|center(10**9) }}</p>")
    with pytest.raises(TemplateRenderError) as caught:
        render_pdf(system.runtime, "letter", "ticket", record_id, "en")
    assert str(caught.value).startswith("letter.html:2: refused: center()")


def test_the_preview_inlines_the_stylesheets(printed_system, letter_record):
    service = PrintService.of(printed_system.runtime)
    printed = service.render_html("reply_letter", "complaint", letter_record, "zh-CN", base_url=BASE_URL)
    page = service.preview(printed)
    assert page.index("<style>") < page.index("</head>") and ".letterhead" in page
