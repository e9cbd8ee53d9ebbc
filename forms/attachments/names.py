"""The name a file is shown under: the sender's name, made harmless. Never a path.

Files are stored under their sha256 (forms.attachments.store); the name only appears in lists and
in the download's `Content-Disposition`. It is still cleaned, because people save downloads:
no directories (`../../x.jpg` is `x.jpg`), no control or bidirectional-override characters
(a right-to-left override makes `gpj.exe` look like `exe.jpg`), no characters Windows forbids,
no leading dots, a bounded length, and an extension that matches what the bytes really are
(`photo.html` holding a PNG becomes `photo.png`).
"""

from __future__ import annotations

import re
import unicodedata

from forms.attachments.kinds import FileType

__all__ = ["MAX_NAME", "display_name"]

MAX_NAME = 200
_PATH_SEPARATORS = re.compile(r"[/\\]")
_RESERVED = re.compile(r'[<>:"|?*]')
_LOOKS_LIKE_EXTENSION = re.compile(r"[A-Za-z0-9]{1,8}")
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def display_name(raw: str | None, file_type: FileType) -> str:
    """A safe display name for a file the sender called `raw`, holding a `file_type`."""
    text = unicodedata.normalize("NFC", raw or "")
    text = _PATH_SEPARATORS.split(text)[-1]
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _DROPPED_CATEGORIES)
    text = _RESERVED.sub("_", text)
    text = " ".join(text.split()).strip(" .")
    stem, dot, extension = text.rpartition(".")
    if not dot:
        stem, extension = text, ""
    if extension.lower() in file_type.extensions:
        extension = extension.lower()
    else:
        if not _LOOKS_LIKE_EXTENSION.fullmatch(extension):
            stem = text  # "v1.2 final" has no extension to replace
        extension = file_type.extension
    stem = stem.strip(" .") or "file"
    stem = stem[:MAX_NAME - len(extension) - 1].rstrip(" .") or "file"
    return f"{stem}.{extension}"
