"""A hand-drawn signature: a PNG image as a data URL, checked to really be a PNG."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from sqlalchemy import Text as SqlText
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

PREFIX = "data:image/png;base64,"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEFAULT_MAX_KB = 200


class Signature(FieldType):
    name = "signature"
    aliases = ("handwritten_signature",)
    description = ("A signature drawn on the page, kept as a PNG data URL (data:image/png;base64,...); "
                   "the decoded image must start like a PNG and stay under `max_kb` (default 200 KB).")
    options_schema = {"properties": {"max_kb": {"type": "integer", "minimum": 1, "maximum": 1024}}}
    examples = ("customer_signature:\n  type: signature\n  label: {zh-CN: 客户签字, en: Customer signature}\n  max_kb: 100\n",)
    widget = "signature"

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlText()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        max_kb = spec.opt("max_kb", DEFAULT_MAX_KB)
        limit = max_kb * 1024
        if not isinstance(raw, str):
            raise self.invalid("not_signature")
        text = raw.strip()
        if len(text) > len(PREFIX) + (limit + 2) // 3 * 4 + 4:  # before decoding anything
            raise self.invalid("signature_too_large", max_kb=max_kb)
        if text[:len(PREFIX)].lower() != PREFIX:
            raise self.invalid("not_signature")
        try:
            data = base64.b64decode(text[len(PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise self.invalid("not_signature") from None
        if len(data) > limit:
            raise self.invalid("signature_too_large", max_kb=max_kb)
        if not data.startswith(PNG_MAGIC) or data[12:16] != b"IHDR":
            raise self.invalid("not_signature")
        return PREFIX + base64.b64encode(data).decode("ascii")

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        return "已签名" if locale.startswith("zh") else "Signed"
