"""Column types shared by the engine tables and the per-form record tables."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime"]


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
