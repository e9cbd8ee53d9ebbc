"""The file types Docket accepts as attachments, grouped into the kinds analysts write in YAML.

Everything else is refused. A type is what the *content* is (forms.attachments.sniff decides),
never what the file name or the browser claims.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FILE_TYPES", "FileType", "IMAGE_TYPES", "INLINE_TYPES", "KINDS", "expand_accept"]


@dataclass(frozen=True)
class FileType:
    """One accepted type: its short name (`jpeg`), kind (`image`), media type and extension."""

    name: str
    kind: str
    media_type: str
    extension: str
    extensions: tuple[str, ...]
    """Every extension a person may have given such a file; the display name keeps one of these."""


FILE_TYPES: dict[str, FileType] = {t.name: t for t in (
    FileType("jpeg", "image", "image/jpeg", "jpg", ("jpg", "jpeg", "jpe", "jfif")),
    FileType("png", "image", "image/png", "png", ("png",)),
    FileType("gif", "image", "image/gif", "gif", ("gif",)),
    FileType("webp", "image", "image/webp", "webp", ("webp",)),
    FileType("pdf", "pdf", "application/pdf", "pdf", ("pdf",)),
    FileType("docx", "office",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", ("docx",)),
    FileType("xlsx", "office",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", ("xlsx",)),
    FileType("pptx", "office",
             "application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx", ("pptx",)),
    FileType("txt", "text", "text/plain; charset=utf-8", "txt", ("txt", "text", "log", "csv")),
)}

KINDS: dict[str, tuple[str, ...]] = {
    "image": ("jpeg", "png", "gif", "webp"),
    "pdf": ("pdf",),
    "office": ("docx", "xlsx", "pptx"),
    "text": ("txt",),
}
IMAGE_TYPES = frozenset(KINDS["image"])
INLINE_TYPES = IMAGE_TYPES
"""Types that may be shown inline in a page (`?inline=1`); everything else is a download."""


def expand_accept(accept: list[str] | tuple[str, ...]) -> frozenset[str]:
    """`[image, pdf]` or `[png, docx]` (or a mix) as the set of short type names.

    An unknown word raises ValueError (the YAML schema already refuses it at load).
    """
    out: set[str] = set()
    for word in accept:
        if word in KINDS:
            out.update(KINDS[word])
        elif word in FILE_TYPES:
            out.add(word)
        else:
            raise ValueError(f"unknown file kind or type {word!r}")
    return frozenset(out)
