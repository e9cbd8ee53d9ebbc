"""What a transaction already knows: values kept for the rest of the transaction.

Rules, SLA clocks and flow nodes run on every event of a command, and each asked the database
again for the same rows (a record, its tags, its SLA clocks) that nothing else in the
transaction had changed. A memo keeps them for the connection's transaction (or the innermost
SQLAlchemy nested transaction, if some code opens one): a savepoint of Docket's own
(engine.storage.db.savepoint) rolled back starts every memo over (`reset`), so nothing it read or
wrote is believed after it, and a new transaction never sees the last one's.
The code that writes the rows keeps the memo true (or drops it with `forget`). Users: record
reads (forms/records.py), tags (rules/actions/record.py), SLA clocks (rules/sla.py).
"""

from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy.engine import Connection

__all__ = ["forget", "memo", "reset"]

T = TypeVar("T")
_EPOCH = "docket_memo_epoch"
"""conn.info key: a number `reset` moves on, so that every memo made before starts over."""


def memo(conn: Connection, key: str, new: Callable[[], T]) -> T | None:
    """The memo `key` of the connection's innermost transaction or savepoint, made by `new()`
    when there is none yet; None outside a transaction (nothing is kept then)."""
    scope = conn.get_nested_transaction() or conn.get_transaction()
    if scope is None:
        return None
    epoch = conn.info.get(_EPOCH, 0)
    kept = conn.info.get(key)
    if kept is None or kept[0] is not scope or kept[1] != epoch:
        kept = conn.info[key] = (scope, epoch, new())
    return kept[2]  # type: ignore[no-any-return]


def reset(conn: Connection) -> None:
    """Start every memo of the connection over: a savepoint was rolled back
    (engine.storage.db.savepoint), so what was read or kept since it began may be untrue. A
    savepoint that is released changes nothing: what it read or wrote stands."""
    conn.info[_EPOCH] = conn.info.get(_EPOCH, 0) + 1


def forget(conn: Connection, key: str) -> None:
    """Drop the memo `key`, whichever transaction or savepoint it belongs to (after a write the
    memo cannot follow)."""
    conn.info.pop(key, None)
