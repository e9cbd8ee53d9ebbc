"""Look inside an XLSX (a zip of XML parts) before any XML parser does: refuse zip bombs and DTDs.

zipfile never inflates a part past the size its directory declares (it stops there and fails the
CRC check), so the declared sizes are a safe bound: too many parts, too much in total once
inflated, or a part that inflates more than `max_ratio` times is refused without inflating it.
An XML part whose prolog declares a DTD (entity expansion, external entities) is refused too:
Office never writes one.
"""

from __future__ import annotations

import re
import zipfile
from typing import BinaryIO

from forms.exchange.messages import FileRefused
from forms.exchange.sheet import MB, Limits

_PROLOG_BYTES = 64 * 1024
_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.I)
_ELEMENT = re.compile(rb"<[A-Za-z_]")


def inspect_xlsx(source: BinaryIO, limits: Limits) -> None:
    """Raise FileRefused unless the zip is of a sane shape; leaves `source` at position 0."""
    try:
        with zipfile.ZipFile(source) as archive:
            parts = archive.infolist()
            if len(parts) > limits.max_parts:
                raise FileRefused("too_many_parts", max=limits.max_parts)
            total = 0
            for part in parts:
                if part.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise FileRefused("not_xlsx")
                total += part.file_size
                if (part.file_size > limits.ratio_floor
                        and part.file_size > limits.max_ratio * max(part.compress_size, 1)):
                    raise FileRefused("too_compressed", ratio=part.file_size // max(part.compress_size, 1))
            if total > limits.max_unpacked:
                raise FileRefused("unpacked_too_large", max=limits.max_unpacked // MB)
            for part in parts:
                if part.filename.endswith((".xml", ".rels", ".vml")):
                    with archive.open(part) as stream:
                        _check_prolog(stream.read(_PROLOG_BYTES))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, NotImplementedError,
            RuntimeError):
        raise FileRefused("not_xlsx") from None
    finally:
        source.seek(0)


def _check_prolog(head: bytes) -> None:
    """No DTD before the root element, and the root element within the first 64 KiB."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        head = head.decode("utf-16", errors="ignore").encode("utf-8")
    root = _ELEMENT.search(head)
    if _DTD.search(head[:root.start()] if root else head):
        raise FileRefused("xml_dtd")
    if root is None and head.strip():
        raise FileRefused("not_xlsx")
