"""Text-like field types: text, textarea, phone, email."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import String
from sqlalchemy import Text as SqlText
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.spec import FieldSpec

_LENGTH_OPTIONS = {
    "min_length": {"type": "integer", "minimum": 0},
    "max_length": {"type": "integer", "minimum": 1, "maximum": 100000},
    "pattern": {"type": "string", "description": "a regular expression the whole value must match"},
    "pattern_message": {"description": "message shown when the pattern does not match"},
}


class Text(FieldType):
    name = "text"
    aliases = ("string",)
    description = "One line of text."
    options_schema = {"properties": dict(_LENGTH_OPTIONS)}
    examples = ("customer_name:\n  type: text\n  label: {zh-CN: 大客户名称, en: Key-account name}\n  required: true\n  max_length: 100\n",)
    default_max = 200

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(spec.opt("max_length", self.default_max))

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise self.invalid("not_text")
        value = str(raw).strip()
        max_length = spec.opt("max_length", self.default_max)
        if len(value) > max_length:
            raise self.invalid("too_long", max=max_length)
        if len(value) < spec.opt("min_length", 0):
            raise self.invalid("too_short", min=spec.opt("min_length"))
        pattern = spec.opt("pattern")
        if pattern and not re.fullmatch(pattern, value):
            raise self.invalid("pattern")
        return value


class Textarea(Text):
    name = "textarea"
    aliases = ("long_text",)
    description = "Several lines of plain text."
    examples = ("description:\n  type: textarea\n  label: {zh-CN: 问题详细描述, en: Detailed description}\n  max_length: 5000\n",)
    default_max = 10000

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return SqlText()

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        value = super().parse(raw, spec)
        return value.replace("\r\n", "\n")



_MOBILE_CN = re.compile(r"1[3-9]\d{9}")
_LANDLINE_CN = re.compile(r"0\d{2,3}-?\d{7,8}(-\d{1,6})?")
_SERVICE_CN = re.compile(r"(400|800)-?\d{3}-?\d{4}")
_INTERNATIONAL = re.compile(r"\+[1-9]\d{6,14}")


def normalize_phone(raw: str) -> str:
    """Digits with at most a leading + and single dashes kept for landlines."""
    value = re.sub(r"[\s()（）]", "", raw)
    if value.startswith("00"):
        value = "+" + value[2:]
    if value.startswith("+86"):
        value = value[3:].lstrip("-")
    return value


class Phone(FieldType):
    name = "phone"
    description = "A phone number: Chinese mobile, landline with area code, 400/800, or international (+country)."
    options_schema = {"properties": {"allow": {"type": "array", "items": {"enum": ["mobile", "landline", "service", "international"]}}}}
    examples = ("contact_phone:\n  type: phone\n  label: {zh-CN: 联系电话, en: Contact phone}\n  required: true\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(32)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, (str, int)) or isinstance(raw, bool):
            raise self.invalid("not_phone")
        value = normalize_phone(str(raw))
        allow = spec.opt("allow", ["mobile", "landline", "service", "international"])
        checks = {"mobile": _MOBILE_CN, "landline": _LANDLINE_CN, "service": _SERVICE_CN,
                  "international": _INTERNATIONAL}
        if any(checks[kind].fullmatch(value) for kind in allow):
            return value
        raise self.invalid("not_phone")


_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")


class Email(FieldType):
    name = "email"
    description = "An e-mail address."
    options_schema = {"properties": {}}
    examples = ("contact_email:\n  type: email\n  label: {zh-CN: 电子邮箱, en: E-mail}\n",)

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        return String(254)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if not isinstance(raw, str) or len(raw) > 254 or not _EMAIL.fullmatch(raw.strip()):
            raise self.invalid("not_email")
        return raw.strip()
