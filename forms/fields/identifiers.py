"""ID-like codes: Chinese resident ID numbers (GB 11643), unified social credit codes (GB 32100),
waybill numbers, or any code described by a pattern."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from sqlalchemy import String
from sqlalchemy.types import TypeEngine

from forms.fields.base import FieldType
from forms.fields.text import _LENGTH_OPTIONS, check_pattern_option, match_pattern
from forms.spec import FieldSpec

_RESIDENT_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK = "10X98765432"
_RESIDENT = re.compile(r"[1-9]\d{16}[0-9X]")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_USCC = re.compile(rf"[{USCC_ALPHABET}]{{18}}")

_WAYBILL = re.compile(r"[A-Z0-9]{8,30}")


def resident_id_ok(value: str) -> bool:
    """GB 11643-1999: 6-digit area, birth date YYYYMMDD, 3-digit sequence, ISO 7064 MOD 11-2 check."""
    if not _RESIDENT.fullmatch(value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900:
        return False
    total = sum(int(ch) * w for ch, w in zip(value[:17], _RESIDENT_WEIGHTS))
    return _RESIDENT_CHECK[total % 11] == value[17]


def uscc_ok(value: str) -> bool:
    """GB 32100-2015: 17 characters of the code alphabet and a MOD 31 check character."""
    if not _USCC.fullmatch(value):
        return False
    total = sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(value[:17], _USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31] == value[17]


KINDS = {
    "cn_resident_id": (resident_id_ok, "not_resident_id", 18),
    "cn_uscc": (uscc_ok, "not_uscc", 18),
    "waybill": (lambda v: _WAYBILL.fullmatch(v) is not None, "not_waybill", 30),
}


class IdNumber(FieldType):
    name = "id_number"
    aliases = ("id_code", "identifier")
    value_kind = "text"
    description = ("An ID-like code: `kind: cn_resident_id` (居民身份证号码, with its check digit), "
                   "`cn_uscc` (统一社会信用代码, with its check character), `waybill` (8-30 letters "
                   "and digits), or your own `pattern`.")
    options_schema = {
        "anyOf": [{"required": ["kind"]}, {"required": ["pattern"]}],
        "properties": {
            "kind": {"enum": [*KINDS, "custom"], "description": "the kind of code"},
            "pattern": _LENGTH_OPTIONS["pattern"],
            "pattern_message": _LENGTH_OPTIONS["pattern_message"],
            "max_length": {"type": "integer", "minimum": 1, "maximum": 200},
            "mask": {"type": "boolean", "description": "show only the first 6 and last 4 characters"},
        },
    }
    examples = (
        "waybill_no:\n  type: id_number\n  label: {zh-CN: 运单号, en: Waybill number}\n  kind: waybill\n",
        "customer_credit_code:\n  type: id_number\n  label: {zh-CN: 统一社会信用代码, en: Credit code}\n  kind: cn_uscc\n",
        "contract_no:\n  type: id_number\n  label: {zh-CN: 合同编号, en: Contract number}\n  pattern: 'HT-\\d{4}-\\d{5}'\n",
    )

    def kind(self, spec: FieldSpec) -> str:
        return spec.opt("kind") or "custom"

    def column_type(self, spec: FieldSpec) -> TypeEngine[Any]:
        kind = self.kind(spec)
        return String(KINDS[kind][2] if kind in KINDS else spec.opt("max_length", 64))

    def prepare(self, spec: FieldSpec, ctx: Any, doc: Any, path: tuple[Any, ...]) -> Any:
        if self.kind(spec) == "custom" and not spec.opt("pattern"):
            ctx.error(doc, path + ("kind",), "kind: custom needs a `pattern`", code="invalid-option")
        elif self.kind(spec) != "custom" and spec.opt("pattern"):
            ctx.error(doc, path + ("pattern",), f"kind: {self.kind(spec)} has its own format; "
                      "leave out `pattern` or use kind: custom", code="invalid-option")
        check_pattern_option(self, spec, ctx, doc, path)
        return None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        kind = self.kind(spec)
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise self.invalid(KINDS[kind][1] if kind in KINDS else "pattern")
        value = str(raw).strip()
        if kind in KINDS:
            check, key, longest = KINDS[kind]
            # Full-width letters and digits (a Chinese input method's full-width mode) read as ASCII.
            value = unicodedata.normalize("NFKC", value).replace(" ", "").upper()
            if len(value) > longest or not check(value):
                raise self.invalid(key)
            return value
        max_length = spec.opt("max_length", 64)
        if len(value) > max_length:
            raise self.invalid("too_long", max=max_length)
        match_pattern(self, value, spec)
        return value

    def display(self, value: Any, spec: FieldSpec, locale: str) -> str:
        if value is None:
            return ""
        if spec.opt("mask") and len(value) > 10:
            return value[:6] + "*" * (len(value) - 10) + value[-4:]
        return str(value)
