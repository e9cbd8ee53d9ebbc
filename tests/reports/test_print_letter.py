"""Golden tests of the postal reply letter (答复函): a fixed record rendered to PDF; its text
(pdftotext) and its first page as an image (pdftoppm) are checked.

The image is compared with `golden/reply_letter_page1.png` after both are reduced to a coarse
grey grid, so font hinting or anti-aliasing differences between machines do not matter while a
moved, missing or extra block does. After an intended change of the letter, regenerate it with
`DOCKET_UPDATE_GOLDEN=1 .venv/bin/pytest tests/reports/test_print_letter.py` and look at the PNG.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import segno
from PIL import Image, ImageChops, ImageStat

from reports.print import PrintService, render_pdf
from reports.print.render import lookup_url
from tests.reports.print_kit import BASE_URL, QUERY_NO, letter_record, needs_poppler, printed_system  # noqa: F401
from web.system import System

GOLDEN = Path(__file__).parent / "golden" / "reply_letter_page1.png"
DPI = 40
GRID = (42, 60)
"""Cells of about 5 x 5 mm: a line of text moving by a line lands in other cells."""


@pytest.fixture(scope="module")
def system(printed_system: System) -> System:
    return printed_system


@pytest.fixture(scope="module")
def record_id(letter_record: int) -> int:
    return letter_record


@pytest.fixture(scope="module")
def pdf(system: System, record_id: int, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pdf") / "letter.pdf"
    path.write_bytes(render_pdf(system.runtime, "reply_letter", "complaint", record_id, "zh-CN",
                                base_url=BASE_URL))
    return path


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def first_page(path: Path) -> Image.Image:
    out = path.with_suffix("")
    subprocess.run(["pdftoppm", "-r", str(DPI), "-f", "1", "-l", "1", "-png", "-singlefile",
                    str(path), str(out)], check=True, timeout=30)
    return Image.open(out.with_suffix(".png")).convert("L")


@needs_poppler
def test_the_letter_is_a_pdf_of_one_a4_page(pdf: Path):
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.M)
    assert re.search(r"^Page size:\s+595\.\d+ x 841\.89 pts \(A4\)", info, re.M)


@needs_poppler
def test_the_letter_text_has_the_chinese_labels_the_query_number_and_the_amounts(pdf: Path):
    text = pdf_text(pdf)
    for expected in ["投诉答复函", "邮政速递物流有限公司", "大客户服务中心", "客服热线 11183",
                     "华东电子商务有限公司", "陈先生", "处理结果", "处理依据", "赔偿金额", "涉及的运单",
                     "运单号", "EK123456789CN", "EK987654321CN", "上海转运中心分拣环节",
                     "GB/T 27917", "¥5,200.00", "¥6,800.00", "2026年11月23日", "扫码查询办理进度"]:
        assert expected in text, expected
    assert text.count(QUERY_NO) >= 3  # the reference line, the first paragraph, under the QR code


@needs_poppler
def test_the_letter_embeds_a_chinese_font(pdf: Path):
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert "CJK" in fonts and " yes yes " in fonts  # embedded, subset


def test_the_qr_code_opens_the_public_lookup_of_the_query_number(system: System, record_id: int):
    printed = PrintService.of(system.runtime).render_html("reply_letter", "complaint", record_id, "zh-CN",
                                                         base_url=BASE_URL)
    url = lookup_url(BASE_URL, QUERY_NO)
    assert url == f"{BASE_URL}/track?query_no={QUERY_NO}"
    assert segno.make(url, error="m").svg_data_uri(border=2) in printed.html
    assert printed.filename == f"答复函-{QUERY_NO}.pdf"


@needs_poppler
def test_the_first_page_image_is_an_a4_page_with_ink(pdf: Path):
    page = first_page(pdf)
    width, height = page.size
    assert abs(width / height - 210 / 297) < 0.01 and width == round(210 / 25.4 * DPI)
    ink = sum(page.histogram()[:128]) / (width * height)
    assert 0.005 < ink < 0.2  # dark pixels: not blank, not a black page (measured: 1.5%)


@needs_poppler
def test_the_first_page_looks_like_the_golden_image(pdf: Path):
    page = first_page(pdf)
    if os.environ.get("DOCKET_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        page.save(GOLDEN, optimize=True)
    golden = Image.open(GOLDEN).convert("L")
    assert page.size == golden.size
    got, want = (im.resize(GRID, Image.Resampling.BOX) for im in (page, golden))
    diff = ImageChops.difference(got, want)
    mean = ImageStat.Stat(diff).mean[0]
    changed = sum(diff.histogram()[49:])
    assert mean < 4, f"mean grey difference {mean:.1f} of 255"
    assert changed <= 6, f"{changed} of {GRID[0] * GRID[1]} cells differ clearly"


def test_the_english_letter_keeps_the_record_and_translates_the_labels(system: System, record_id: int):
    printed = PrintService.of(system.runtime).render_html("reply_letter", "complaint", record_id, "en",
                                                         base_url=BASE_URL)
    assert "Reply to your complaint" in printed.html and "Compensation" in printed.html
    assert "华东电子商务有限公司" in printed.html and "23 November 2026" in printed.html
