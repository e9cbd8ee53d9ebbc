"""Sample files for the attachment tests, made byte by byte (no image library needed), and a
small bundle with `attachment` and `image` fields booted on SQLite with its own file store.

The builders are checked here too: each sample is what it claims to be.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from datetime import datetime, timezone
from pathlib import Path

from engine.clock import ManualClock
from engine.registry import Registry
from forms.attachments import AttachmentService, FileStore
from forms.fields.files import FILE_FIELD_TYPES
from tests.engine.bundle_kit import write_bundle
from web.system import System, boot, build_registry

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

CLAIM_FORM = """\
    form: claim
    label: {zh-CN: 索赔, en: Claim}
    public: true
    fields:
      title:
        type: text
        required: true
      evidence:
        type: attachment
        label: {zh-CN: 附件, en: Evidence}
        accept: [image, pdf, office]
        max_size_mb: 1
        max_files: 3
      notes:
        type: attachment
        accept: [text]
        max_size_mb: 0.01
      photos:
        type: image
        max_files: 2
        max_pixels: 1000000
    """


def png(width: int = 1, height: int = 1) -> bytes:
    """A PNG with this header; the pixel data is a real 1-row image only for small sizes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height)) if width * height <= 4096 else b""
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def jpeg(width: int = 16, height: int = 16, comment: bytes = b"") -> bytes:
    """A baseline JPEG's segments up to the frame header (enough for any header reader)."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    com = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment if comment else b""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + com + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 16 + b"\xff\xd9"


def gif(width: int = 1, height: int = 1) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def webp(width: int = 1, height: int = 1) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 8
    chunk = b"VP8L" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def pdf(text: bytes = b"hello") -> bytes:
    return b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n% " + text + b"\ntrailer\n<<>>\n%%EOF\n"


WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                 'package/2006/content-types"><Override PartName="/word/document.xml" '
                 'ContentType="{main}"/></Types>')


def docx(document: bytes = b"<w:document/>", *, main: str = WORD_MAIN,
         extra: dict[str, bytes] | None = None) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES.format(main=main))
        archive.writestr("word/document.xml", document)
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def zip_bomb_docx(megabytes: int = 20) -> bytes:
    """A docx whose document.xml is `megabytes` of zeros: ~1000x compression."""
    return docx(b"\x00" * (megabytes * 1024 * 1024))


def registry_with_files() -> Registry:
    """The built-in registry, with the file field types added unless forms.register has them."""
    registry = build_registry(plugins=False)
    for field_type in FILE_FIELD_TYPES:
        if registry.field_types.get(field_type.name) is None:
            registry.field_types.add(field_type())
    return registry


def boot_claims(root: Path, files_root: Path) -> tuple[System, AttachmentService]:
    """The MINI bundle plus the claim form, booted on SQLite with the file types registered."""
    registry = registry_with_files()
    bundle = write_bundle(root / "bundle", {"forms/claim.yaml": CLAIM_FORM})
    system = boot(bundle, db_url=f"sqlite:///{root / 'docket.db'}", clock=ManualClock(NOW),
                  registry=registry)
    return system, AttachmentService(system.runtime, FileStore(files_root))


# -- the samples are what they claim ---------------------------------------------------------
def test_the_png_sample_has_valid_chunk_checksums() -> None:
    data = png(3, 2)
    length = struct.unpack(">I", data[8:12])[0]
    assert zlib.crc32(data[12:16 + length]) == struct.unpack(">I", data[16 + length:20 + length])[0]


def test_the_docx_sample_is_a_zip_with_content_types() -> None:
    names = zipfile.ZipFile(io.BytesIO(docx())).namelist()
    assert names == ["[Content_Types].xml", "word/document.xml"]


def test_the_zip_bomb_sample_is_small_but_expands_a_thousandfold() -> None:
    data = zip_bomb_docx(10)
    (info,) = [i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if i.filename == "word/document.xml"]
    assert len(data) < 100_000 and info.file_size / info.compress_size > 500
