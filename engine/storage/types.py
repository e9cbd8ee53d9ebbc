"""Column types shared by the engine tables and the per-form record tables."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime", "json_text"]


def json_text(value: Any) -> str:
    """How a JSON column's value is written (every engine's `json_serializer`).

    Non-ASCII text is kept as UTF-8 rather than `\\uXXXX` escapes, and without the spaces
    after separators: a Chinese complaint's history row is half the bytes (fewer pages to
    write per commit), and a LIKE over the JSON text (`forms/access.py`: is a user among a
    task's candidates) finds a Chinese word as typed.
    """
    return "".join(_ENCODE(value, 0))


def _make_encode() -> Any:
    """JSON's C encoder, built once: json.dumps with options builds an encoder per call and
    JSONEncoder.encode builds its C iterator per call (half the cost of a history row's data).
    Without circular checks (`markers` None): stored values are plain trees from forms and rules.
    Interpreters without the C encoder get json.dumps."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return lambda value, _level: [json.dumps(value, ensure_ascii=False, separators=(",", ":"))]
    return make(None, json.JSONEncoder().default, json.encoder.encode_basestring,  # type: ignore[attr-defined]
                None, ":", ",", False, False, True)


_ENCODE = _make_encode()


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    Plain `DateTime(timezone=True)` is not enough: SQLite drops the offset and stores whatever
    wall time it was given, and reads back naive values, so a Shanghai-local datetime would be
    stored eight hours off. Here aware values are converted to UTC before they reach the driver,
    and naive values are refused (their meaning would depend on the server's TZ).
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware UTC value")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # SQLite has no offset column type: store the UTC wall time as text.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
