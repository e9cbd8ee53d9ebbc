"""What a file really is, from its bytes: never from its name or the type the browser declared.

`sniff(path, limits)` answers a `Sniffed` (short type name and, for images, the size in pixels)
or raises `UploadRefused`. It refuses:
- empty files and anything not in the catalogue of `kinds.FILE_TYPES`;
- HTML, SVG and script-bearing polyglots: the first 64 KB of every file other than an Office zip
  are searched (case-insensitively, also with NUL bytes removed to catch UTF-16 tricks) for
  `<script`, `<html`, `<svg`, `<iframe`, `javascript:` and similar markers;
- images whose header announces more pixels than the limits allow: the size is read from the
  header (PNG IHDR, JPEG SOFn, GIF screen descriptor, WebP VP8/VP8L/VP8X), nothing is decoded;
- Office documents that are zip bombs (too many entries, too much declared uncompressed data, a
  compression ratio beyond the limit) or carry macros. The zip's central directory is walked by
  hand first, so even a directory of a million entries costs one pass and no memory; `zipfile`
  only opens archives that passed, and no entry is inflated except a bounded read of
  `[Content_Types].xml`;
- plain text unless the limits allow `txt`; text must be valid UTF-8 without NUL bytes.
"""

from __future__ import annotations

import codecs
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forms.attachments.errors import UploadRefused
from forms.attachments.kinds import FILE_TYPES, IMAGE_TYPES, FileType
from forms.attachments.limits import Limits, ZipLimits

__all__ = ["HEAD_BYTES", "MARKERS", "Sniffed", "has_active_markup", "sniff"]

HEAD_BYTES = 64 * 1024
MARKERS = (b"<script", b"<html", b"<iframe", b"<svg", b"javascript:", b"<!doctype html", b"<body",
           b"<object", b"<embed", b"<frameset", b"http://www.w3.org/2000/svg",
           b"http://www.w3.org/1999/xhtml", b"<?xml-stylesheet")
"""Signs of markup a browser could run. Any one in the first 64 KB refuses the file."""

_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_MAX_SEGMENTS = 4096
_OFFICE_PARTS = (  # (type, folder, main part, content type of the main part)
    ("docx", "word/", "word/document.xml", b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
    ("xlsx", "xl/", "xl/workbook.xml", b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    ("pptx", "ppt/", "ppt/presentation.xml", b"application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"),
)
_CONTENT_TYPES = "[Content_Types].xml"
_CONTENT_TYPES_MAX = 1024 * 1024
_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_CD_ENTRY = b"PK\x01\x02"
_CD_ENTRY_SIZE = 46


@dataclass(frozen=True)
class Sniffed:
    """What the bytes are: a short type name (`png`) and, for images, width and height."""

    type: str
    width: int | None = None
    height: int | None = None

    @property
    def file_type(self) -> FileType:
        return FILE_TYPES[self.type]


def sniff(path: Path, limits: Limits) -> Sniffed:
    """Identify the file at `path` and check it against `limits`; UploadRefused if refused."""
    size = path.stat().st_size
    if size == 0:
        raise UploadRefused("empty")
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
        found = _identify(head, f, size, limits)
    if found.type not in limits.types:
        raise UploadRefused("not_accepted", found=found.type, accepted=limits.accepted_text())
    return found


def has_active_markup(head: bytes) -> bool:
    """True if these bytes carry markup a browser could run (checked as sent and without NULs)."""
    lowered = head.lower()
    squeezed = lowered.replace(b"\x00", b"")
    return any(marker in lowered or marker in squeezed for marker in MARKERS)


def _identify(head: bytes, f: BinaryIO, size: int, limits: Limits) -> Sniffed:
    if head.startswith(b"PK\x03\x04"):
        return _office(f, size, limits)
    if has_active_markup(head):
        raise UploadRefused("active_content")
    if head.startswith(b"\xff\xd8\xff"):
        return _image("jpeg", *_jpeg_size(f), limits)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _image("png", *_png_size(head), limits)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _image("gif", *_gif_size(head), limits)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _image("webp", *_webp_size(head), limits)
    if head.startswith(b"%PDF-"):
        return Sniffed("pdf")
    if limits.allows_text and _is_utf8_text(f):
        return Sniffed("txt")
    raise UploadRefused("unknown_type", accepted=limits.accepted_text())


# -- images ----------------------------------------------------------------------------------
def _image(kind: str, width: int, height: int, limits: Limits) -> Sniffed:
    assert kind in IMAGE_TYPES
    if width <= 0 or height <= 0:
        raise UploadRefused("malformed")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise UploadRefused("too_many_pixels", width=width, height=height,
                            max_pixels=limits.max_pixels, max_side=limits.max_side)
    return Sniffed(kind, width, height)


def _png_size(head: bytes) -> tuple[int, int]:
    if len(head) < 24 or head[12:16] != b"IHDR":
        raise UploadRefused("malformed")
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _gif_size(head: bytes) -> tuple[int, int]:
    if len(head) < 10:
        raise UploadRefused("malformed")
    width, height = struct.unpack("<HH", head[6:10])
    return width, height


def _webp_size(head: bytes) -> tuple[int, int]:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30 and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25 and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    raise UploadRefused("malformed")


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise UploadRefused("malformed")
    return data


def _jpeg_size(f: BinaryIO) -> tuple[int, int]:
    """Walk the JPEG segments (seeking over their bodies) to the first SOFn header."""
    f.seek(2)
    for _ in range(_JPEG_MAX_SEGMENTS):
        if _read_exact(f, 1) != b"\xff":
            raise UploadRefused("malformed")
        marker = _read_exact(f, 1)[0]
        fill = 0
        while marker == 0xFF:  # fill bytes before a marker
            fill += 1
            if fill > 64:
                raise UploadRefused("malformed")
            marker = _read_exact(f, 1)[0]
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            continue  # markers without a length
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            raise UploadRefused("malformed")
        (length,) = struct.unpack(">H", _read_exact(f, 2))
        if length < 2:
            raise UploadRefused("malformed")
        if marker in _JPEG_SOF:
            if length < 7:
                raise UploadRefused("malformed")
            _precision, height, width = struct.unpack(">BHH", _read_exact(f, 5))
            return width, height  # a height of 0 (set later by DNL) is refused as malformed
        f.seek(length - 2, 1)
    raise UploadRefused("malformed")


# -- text ------------------------------------------------------------------------------------
def _is_utf8_text(f: BinaryIO) -> bool:
    f.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    while True:
        chunk = f.read(256 * 1024)
        if not chunk:
            break
        if b"\x00" in chunk:
            return False
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError:
            return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


# -- Office documents ------------------------------------------------------------------------
def _office(f: BinaryIO, size: int, limits: Limits) -> Sniffed:
    _check_central_directory(f, size, limits.zip)
    f.seek(0)
    try:
        with zipfile.ZipFile(f) as archive:
            return _office_type(archive, limits.zip, limits)
    except UploadRefused:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, RuntimeError,
            NotImplementedError, ValueError, KeyError):
        raise UploadRefused("malformed") from None  # a damaged archive, never a crash


def _check_central_directory(f: BinaryIO, size: int, zl: ZipLimits) -> None:
    """Count the entries of the zip's central directory without building anything.

    Only plain zips are accepted: the directory must end exactly where the end record starts
    (no data prepended, no zip64), which every Office application writes.
    """
    tail_size = min(size, _EOCD_SIZE + 0xFFFF)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < _EOCD_SIZE:
        raise UploadRefused("malformed")
    eocd_offset = size - tail_size + at
    (_disk, _cd_disk, _here, total, cd_size, cd_offset, _comment) = struct.unpack(
        "<HHHHIIH", tail[at + 4:at + _EOCD_SIZE])
    if total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        raise UploadRefused("zip_bomb")  # zip64: no Office document needs it
    if total > zl.max_entries:
        raise UploadRefused("zip_bomb")
    if cd_offset + cd_size != eocd_offset:
        raise UploadRefused("malformed")
    f.seek(cd_offset)
    remaining = cd_size
    count = 0
    while remaining > 0:
        header = _read_exact(f, _CD_ENTRY_SIZE)
        if header[:4] != _CD_ENTRY:
            raise UploadRefused("malformed")
        name_len, extra_len, comment_len = struct.unpack("<HHH", header[28:34])
        skip = name_len + extra_len + comment_len
        remaining -= _CD_ENTRY_SIZE + skip
        count += 1
        if count > zl.max_entries:
            raise UploadRefused("zip_bomb")
        f.seek(skip, 1)
    if remaining != 0 or count != total:
        raise UploadRefused("malformed")


def _office_type(archive: zipfile.ZipFile, zl: ZipLimits, limits: Limits) -> Sniffed:
    infos = archive.infolist()
    total = 0
    compressed = 0
    for info in infos:
        total += info.file_size
        compressed += info.compress_size
        if info.file_size > zl.ratio_applies_above and (
                info.compress_size == 0 or info.file_size / info.compress_size > zl.max_ratio):
            raise UploadRefused("zip_bomb")
        if info.flag_bits & 0x1:
            raise UploadRefused("malformed")  # encrypted entries cannot be checked
    if total > zl.max_total_uncompressed:
        raise UploadRefused("zip_bomb")
    if total > zl.ratio_applies_above and (compressed == 0 or total / compressed > zl.max_ratio):
        raise UploadRefused("zip_bomb")
    names = {info.filename for info in infos}
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise UploadRefused("macros")
    if _CONTENT_TYPES not in names:
        raise UploadRefused("unknown_type", accepted=limits.accepted_text())
    candidates = [part for part in _OFFICE_PARTS
                  if part[2] in names and any(n.startswith(part[1]) for n in names)]
    if len(candidates) != 1:
        raise UploadRefused("unknown_type", accepted=limits.accepted_text())
    kind, _folder, _main, content_type = candidates[0]
    info = archive.getinfo(_CONTENT_TYPES)
    if info.file_size > _CONTENT_TYPES_MAX:
        raise UploadRefused("zip_bomb")
    with archive.open(info) as part:
        declared = part.read(_CONTENT_TYPES_MAX + 1)
    if len(declared) > _CONTENT_TYPES_MAX:
        raise UploadRefused("zip_bomb")
    lowered = declared.lower()
    if b"macroenabled" in lowered:
        raise UploadRefused("macros")
    if content_type.lower() not in lowered:
        raise UploadRefused("unknown_type", accepted=limits.accepted_text())
    return Sniffed(kind)
