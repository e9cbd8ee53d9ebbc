"""File fields: `attachment` (images, PDF, Office documents, text) and `image` (images only).

The bytes never enter the record: an upload (`POST /api/v1/uploads`) stores the file outside the
database and answers a random id; the field holds a JSON list of
`{id, name, size, type, sha256}`, one entry per file. `parse` accepts such dicts or bare ids and
checks the shape, the count and the types against `accept`. `check_stored` (inside the submitting
transaction) checks every id against `dk_attachments` and completes each entry from the stored
row, so the record keeps the server's facts (checksum, size, sniffed type), never the client's.
Linking the uploads to the new record is `AttachmentService.link`.

Not registered by `forms.register` yet: `FILE_FIELD_TYPES` lists the classes to register.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping

from sqlalchemy import JSON
from sqlalchemy.types import TypeEngine

from forms.attachments.kinds import FILE_TYPES, KINDS
from forms.attachments.limits import (
    DEFAULT_MAX_FILES, DEFAULT_MAX_MB, MAX_PIXELS, MB, Limits, limits_from_options,
)
from forms.attachments.service import is_token, load_values
from forms.fields.base import FieldType
from forms.messages import FieldInvalid
from forms.spec import FieldSpec

__all__ = ["FILE_FIELD_TYPES", "Attachment", "Image"]

_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEYS = frozenset({"id", "name", "size", "type", "sha256"})
_MAX_RAW_TEXT = 64 * 1024
_MAX_FILES_CAP = 20

_MESSAGES: dict[str, dict[str, str]] = {
    "not_files": {"en": "Upload the files, then send their ids.", "zh-CN": "请先上传文件，再提交文件编号。"},
    "too_many_files": {"en": "Attach at most {max} files.", "zh-CN": "最多上传 {max} 个文件。"},
    "file_type": {"en": "A {found} file is not accepted here. Accepted: {accepted}.",
                  "zh-CN": "此处不接受 {found} 文件。可接受：{accepted}。"},
    "file_too_large": {"en": "Each file may be at most {max_mb} MB.", "zh-CN": "每个文件不能超过 {max_mb} MB。"},
    "no_file": {"en": "A file was not found; upload it again.", "zh-CN": "找不到已上传的文件，请重新上传。"},
    "file_mismatch": {"en": "The file details do not match the upload; upload it again.",
                      "zh-CN": "文件信息与上传内容不符，请重新上传。"},
}

_COMMON_OPTIONS: dict[str, Any] = {
    "max_size_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 100,
                    "description": f"largest size of one file in MB (default {DEFAULT_MAX_MB}, at most 100)"},
    "max_files": {"type": "integer", "minimum": 1, "maximum": _MAX_FILES_CAP,
                  "description": f"how many files may be attached (default {DEFAULT_MAX_FILES})"},
}


def _refuse(key: str, **params: Any) -> FieldInvalid:
    return FieldInvalid(key, custom={loc: text.format(**params) for loc, text in _MESSAGES[key].items()})


class Attachment(FieldType):
    name = "attachment"
    aliases = ("file", "attachments")
    description = ("Files attached to the record (photos, PDF, Word/Excel/PowerPoint, optionally plain "
                   "text), uploaded first and stored outside the database by checksum. `accept` lists "
                   "kinds (image, pdf, office, text) or exact types (jpeg, png, gif, webp, pdf, docx, "
                   "xlsx, pptx, txt); default image, pdf and office. `max_size_mb` (default 20, at most "
                   "100) and `max_files` (default 5) bound each field. What a file is comes from its "
                   "bytes, never from its name.")
    options_schema = {"properties": {
        "accept": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": [*KINDS, *(t for t in FILE_TYPES if t not in KINDS)]},
                   "description": "kinds or exact types of file accepted"},
        **_COMMON_OPTIONS,
    }}
    examples = ("evidence:\n  type: attachment\n  label: {zh-CN: 相关附件, en: Evidence}\n"
                "  accept: [image, pdf, office]\n  max_size_mb: 20\n  max_files: 5\n",)
    widget = "file"
    in_subtable = False  # uploads are linked to a record's field, not to a row
    holds_attachments = True

    def limits(self, spec: FieldSpec) -> Limits:
        compiled = spec.compiled
        if isinstance(compiled, Limits):
            return compiled
        return limits_from_options(self.name, spec.options)

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        try:
            return limits_from_options(self.name, spec.options)
        except (ValueError, TypeError) as exc:
            ctx.error(doc, path, f"bad file limits: {exc}", code="invalid-option")
            return None

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return JSON()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        limits = self.limits(spec)
        items = self._as_list(raw)
        if len(items) > limits.max_files:
            raise _refuse("too_many_files", max=limits.max_files)
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for item in items:
            entry = self._entry(item, limits)
            if entry["id"] not in seen:
                seen.add(entry["id"])
                out.append(entry)
        return out

    @staticmethod
    def _as_list(raw: Any) -> list[Any]:
        if isinstance(raw, str):
            text = raw.strip()
            if len(text) > _MAX_RAW_TEXT:
                raise _refuse("not_files")
            if text.startswith("["):
                try:
                    raw = json.loads(text)
                except (ValueError, RecursionError):
                    raise _refuse("not_files") from None
            else:  # one id, or several separated by commas (a plain HTML form)
                raw = [part.strip() for part in text.split(",") if part.strip()]
        if isinstance(raw, dict):
            raw = [raw]
        if not isinstance(raw, (list, tuple)):
            raise _refuse("not_files")
        return list(raw)

    def _entry(self, item: Any, limits: Limits) -> dict[str, Any]:
        if isinstance(item, str):
            if not is_token(item):
                raise _refuse("not_files")
            return {"id": item}
        if not isinstance(item, Mapping) or not is_token(item.get("id")):
            raise _refuse("not_files")
        extra = set(item) - _KEYS - {"media_type"}
        if extra:
            raise _refuse("not_files")
        entry: dict[str, Any] = {"id": item["id"]}
        name = item.get("name")
        if name is not None:
            if not isinstance(name, str) or len(name) > 255:
                raise _refuse("not_files")
            entry["name"] = name
        size = item.get("size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise _refuse("not_files")
            if size > limits.max_bytes:
                raise _refuse("file_too_large", max_mb=f"{limits.max_bytes / MB:g}")
            entry["size"] = size
        kind = item.get("type")
        if kind is not None:
            if kind not in FILE_TYPES:
                raise _refuse("not_files")
            if kind not in limits.types:
                raise _refuse("file_type", found=kind, accepted=limits.accepted_text())
            entry["type"] = kind
        sha256 = item.get("sha256")
        if sha256 is not None:
            if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
                raise _refuse("not_files")
            entry["sha256"] = sha256
        return entry

    def check_stored(self, conn: Any, value: Any, spec: FieldSpec, tables: Mapping[str, Any]) -> None:
        """Every id must be a stored upload that fits this field; completes entries in place."""
        if not value:
            return
        limits = self.limits(spec)
        stored = load_values(conn, [entry["id"] for entry in value])
        for entry in value:
            row = stored.get(entry["id"])
            if row is None:
                raise _refuse("no_file")
            if any(key in entry and entry[key] != row[key] for key in ("size", "type", "sha256")):
                raise _refuse("file_mismatch")
            if row["type"] not in limits.types:
                raise _refuse("file_type", found=row["type"], accepted=limits.accepted_text())
            if row["size"] > limits.max_bytes:
                raise _refuse("file_too_large", max_mb=f"{limits.max_bytes / MB:g}")
            entry.update({key: row[key] for key in ("name", "size", "type", "sha256")})

    def coerce(self, value: Any, spec: FieldSpec) -> Any:
        return None  # files are uploaded, never computed

    def value_schema(self, spec: FieldSpec) -> dict[str, Any]:
        """JSON Schema of a value (forms.json_schema): files uploaded first, by id."""
        return {"type": "array", "maxItems": self.limits(spec).max_files,
                "description": "ids from POST /api/v1/uploads (the other keys are filled in)",
                "items": {"type": "object", "required": ["id"], "additionalProperties": False,
                          "properties": {"id": {"type": "string", "maxLength": 64},
                                         "name": {"type": "string", "maxLength": 255},
                                         "size": {"type": "integer", "minimum": 1},
                                         "type": {"type": "string", "enum": sorted(FILE_TYPES)},
                                         "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}}}

    def from_db(self, value: Any, spec: FieldSpec) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if not value:
            return ""
        return ", ".join(str(entry.get("name") or entry.get("id")) for entry in value
                         if isinstance(entry, Mapping))


class Image(Attachment):
    name = "image"
    aliases = ("photo", "images")
    description = ("Photos or other images (JPEG, PNG, GIF, WebP), uploaded first and stored outside the "
                   "database by checksum. `max_size_mb` (default 20, at most 100), `max_files` (default 5), "
                   f"`max_pixels` (default and at most {MAX_PIXELS:,}); a side may be at most 20,000 px. "
                   "The size in pixels is read from the image header before anything is decoded.")
    options_schema = {"properties": {
        **_COMMON_OPTIONS,
        "max_pixels": {"type": "integer", "minimum": 1, "maximum": MAX_PIXELS,
                       "description": "largest width x height accepted"},
    }}
    examples = ("damage_photos:\n  type: image\n  label: {zh-CN: 破损照片, en: Damage photos}\n"
                "  max_size_mb: 10\n  max_files: 9\n",)
    widget = "file"


FILE_FIELD_TYPES = (Attachment, Image)
"""The classes to register (`registry.field_types.add(cls())`); forms.register does not yet."""
