"""What a file is comes from its bytes (RELIABILITY 48): markup, polyglots, bombs and giant
images are refused; the accepted types are recognised whatever their name says."""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from forms.attachments.errors import UploadRefused
from forms.attachments.kinds import FILE_TYPES, expand_accept
from forms.attachments.limits import DEFAULT_LIMITS, Limits, ZipLimits
from forms.attachments.sniff import sniff
from tests.forms.test_attachments_kit import docx, gif, jpeg, pdf, png, webp, zip_bomb_docx

EVERYTHING = Limits(types=frozenset(FILE_TYPES))


def sniffed(tmp_path: Path, data: bytes, limits: Limits = EVERYTHING):  # type: ignore[no-untyped-def]
    path = tmp_path / "upload"
    path.write_bytes(data)
    return sniff(path, limits)


def refusal(tmp_path: Path, data: bytes, limits: Limits = EVERYTHING) -> str:
    with pytest.raises(UploadRefused) as caught:
        sniffed(tmp_path, data, limits)
    return caught.value.code


@pytest.mark.parametrize(("data", "kind", "size"), [
    (png(3, 2), "png", (3, 2)),
    (jpeg(640, 480), "jpeg", (640, 480)),
    (gif(5, 7), "gif", (5, 7)),
    (webp(9, 4), "webp", (9, 4)),
])
def test_images_are_recognised_with_their_size_from_the_header(tmp_path: Path, data: bytes, kind: str,
                                                              size: tuple[int, int]) -> None:
    found = sniffed(tmp_path, data)
    assert (found.type, (found.width, found.height)) == (kind, size)


def test_a_pdf_is_recognised(tmp_path: Path) -> None:
    assert sniffed(tmp_path, pdf()).type == "pdf"


def test_a_word_document_is_recognised(tmp_path: Path) -> None:
    assert sniffed(tmp_path, docx()).type == "docx"


def test_an_html_page_is_refused(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    assert refusal(tmp_path, page) == "active_content"


def test_an_svg_with_a_script_is_refused(tmp_path: Path) -> None:
    svg = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
           b"<script>alert(document.domain)</script></svg>")
    assert refusal(tmp_path, svg) == "active_content"


def test_an_svg_without_a_script_is_refused_too(tmp_path: Path) -> None:
    assert refusal(tmp_path, b'<svg width="10" height="10"><rect/></svg>') == "active_content"


def test_a_jpeg_carrying_html_is_refused_as_a_polyglot(tmp_path: Path) -> None:
    polyglot = jpeg(16, 16, comment=b"*/<html><script>alert(1)</script></html>/*")
    assert refusal(tmp_path, polyglot) == "active_content"


def test_a_pdf_carrying_an_iframe_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, pdf(b"<iframe src=javascript:alert(1)>")) == "active_content"


def test_markup_hidden_in_utf16_is_still_found(tmp_path: Path) -> None:
    data = b"\xff\xd8\xff" + "<script>alert(1)</script>".encode("utf-16-le")
    assert refusal(tmp_path, data) == "active_content"


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, b"") == "empty"


def test_a_50000_by_50000_png_header_is_refused_without_decoding(tmp_path: Path) -> None:
    started = time.perf_counter()
    assert refusal(tmp_path, png(50_000, 50_000)) == "too_many_pixels"
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("data", [jpeg(30_000, 10), gif(20_001, 1), webp(16_000, 16_000)])
def test_a_side_or_an_area_over_the_limit_is_refused(tmp_path: Path, data: bytes) -> None:
    assert refusal(tmp_path, data) == "too_many_pixels"


def test_a_field_may_lower_the_pixel_limit(tmp_path: Path) -> None:
    assert refusal(tmp_path, png(1001, 1000), replace(EVERYTHING, max_pixels=1_000_000)) == "too_many_pixels"


def test_a_zip_bomb_docx_is_refused_before_anything_is_inflated(tmp_path: Path) -> None:
    assert refusal(tmp_path, zip_bomb_docx(10)) == "zip_bomb"


def test_a_docx_declaring_more_than_the_total_limit_is_refused(tmp_path: Path) -> None:
    data = docx(b"x" * 300_000)
    limits = replace(EVERYTHING, zip=ZipLimits(max_total_uncompressed=200_000, max_ratio=10_000))
    assert refusal(tmp_path, data, limits) == "zip_bomb"


def test_a_zip_with_too_many_entries_is_refused(tmp_path: Path) -> None:
    data = docx(extra={f"word/media/{i}.bin": b"x" for i in range(50)})
    assert refusal(tmp_path, data, replace(EVERYTHING, zip=ZipLimits(max_entries=20))) == "zip_bomb"


def test_a_macro_document_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, docx(extra={"word/vbaProject.bin": b"\x00" * 10})) == "macros"


def test_a_plain_zip_is_not_an_office_document(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert refusal(tmp_path, out.getvalue()) == "unknown_type"


def test_a_zip_with_data_before_it_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, docx()[:4] + b"junk" + docx()[4:]) == "malformed"


def test_a_truncated_zip_is_malformed_not_a_crash(tmp_path: Path) -> None:
    assert refusal(tmp_path, docx()[:-30]) == "malformed"


def test_plain_text_is_accepted_only_when_allowed(tmp_path: Path) -> None:
    text = "运单 1234 延误\n".encode()
    assert refusal(tmp_path, text, DEFAULT_LIMITS) == "unknown_type"
    assert sniffed(tmp_path, text, Limits(types=expand_accept(["text"]))).type == "txt"


@pytest.mark.parametrize("data", [b"abc\x00def", b"\xff\xfe\xfa not utf-8"])
def test_binary_or_invalid_utf8_is_not_text(tmp_path: Path, data: bytes) -> None:
    assert refusal(tmp_path, data) == "unknown_type"


def test_text_with_a_script_tag_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, b"notes <script>alert(1)</script>") == "active_content"


def test_unknown_binary_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, b"MZ\x90\x00\x03" + b"\x00" * 100) == "unknown_type"


def test_a_type_the_field_does_not_accept_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, pdf(), Limits(types=expand_accept(["image"]))) == "not_accepted"


def test_a_jpeg_cut_off_before_its_frame_header_is_malformed(tmp_path: Path) -> None:
    assert refusal(tmp_path, jpeg()[:22]) == "malformed"


def test_refusals_explain_themselves_in_chinese_too() -> None:
    exc = UploadRefused("not_accepted", found="pdf", accepted="jpeg, png")
    assert exc.text("en") == "A pdf file is not accepted here. Accepted: jpeg, png."
    assert "不接受 pdf" in exc.text("zh-CN") and exc.status == 415
