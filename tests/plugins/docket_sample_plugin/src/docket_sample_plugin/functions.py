"""`mask_phone(text)`: a phone number with its middle digits hidden, `138****5678`."""

from __future__ import annotations

from typing import Any

from engine.expr import Function
from engine.expr.context import EvalFailure

KEEP_START, KEEP_END = 3, 4
DIGITS = frozenset("0123456789")


def mask_phone(value: Any) -> str:
    """Hide every digit but the first three and the last four; separators stay.

    Numbers too short to keep seven digits are hidden entirely; an empty value gives "".
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EvalFailure(f"mask_phone() needs text, got {type(value).__name__}")
    digits = sum(ch in DIGITS for ch in value)
    keep = digits > KEEP_START + KEEP_END
    out, seen = [], 0
    for ch in value:
        if ch in DIGITS:
            seen += 1
            if not keep or KEEP_START < seen <= digits - KEEP_END:
                ch = "*"
        out.append(ch)
    return "".join(out)


MASK_PHONE = Function(
    "mask_phone", mask_phone, 1, 1,
    "A phone number with its middle digits hidden (138****5678); separators are kept.",
    examples=('mask_phone(contact_phone)', 'mask_phone("13812345678") == "138****5678"'),
)
