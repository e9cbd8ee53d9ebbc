"""Query numbers from a pattern: `TS{date:%Y%m%d}{seq:5}`, `C{random:8}`.

`{seq:N}` counts per form and per the text before it (so a date prefix restarts the count each
day), allocated by an atomic upsert on `dk_sequences` inside the submitting transaction: unique
under concurrency on SQLite and PostgreSQL alike. `{random:N}` draws N characters from an
alphabet without look-alikes, so numbers cannot be guessed by counting (RELIABILITY 45: a form
whose customers look up their record by its number should use it); a number drawn twice is
drawn again.
"""

from __future__ import annotations

import re
import secrets
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from engine.storage.prepared import PreparedQuery
from engine.storage.tables import sequences as dk_sequences

_TOKEN = re.compile(r"\{(?P<kind>\w+)(?::(?P<arg>[^}]*))?\}")
RANDOM_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
_NEXT = PreparedQuery(  # every numbered submission runs it: prepared (engine/storage/prepared.py)
    update(dk_sequences).where(dk_sequences.c.name == bindparam("counter"))
    .values(value=dk_sequences.c.value + 1).returning(dk_sequences.c.value))


def check_pattern(pattern: str) -> str | None:
    """A message describing what is wrong with a numbering pattern, or None."""
    kinds = []
    for match in _TOKEN.finditer(pattern):
        kind, arg = match["kind"], match["arg"]
        kinds.append(kind)
        if kind == "date":
            try:
                datetime(2024, 1, 2, 3, 4, 5).strftime(arg or "%Y%m%d")
            except ValueError:
                return f"bad date format '{arg}' in numbering"
        elif kind in ("seq", "random"):
            if not (arg or "").isdigit() or not 1 <= int(arg) <= 20:
                return f"{{{kind}:N}} needs a width N from 1 to 20"
        else:
            return f"unknown numbering token '{{{kind}}}'; use {{date:FORMAT}}, {{seq:N}} or {{random:N}}"
    if "seq" not in kinds and "random" not in kinds:
        return "numbering needs {seq:N} or {random:N} so that numbers are unique"
    if len(_TOKEN.sub("", pattern)) > 20:
        return "numbering pattern has too much fixed text"
    return None


def next_sequence(conn: Connection, name: str) -> int:
    """Atomically take the next value of a named counter (starting at 1)."""
    value = _NEXT.scalar(conn, {"counter": name})
    if value is not None:
        return int(value)
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(dk_sequences).values(name=name, value=1)
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={"value": dk_sequences.c.value + 1})
    conn.execute(stmt)
    return int(conn.execute(select(dk_sequences.c.value).where(dk_sequences.c.name == name)).scalar_one())


DRAWS = 20
"""Draws of a random number before giving up: at {random:4} (a million numbers) with half of
them taken, 20 draws all hit one with a chance of one in a million."""


class NumbersExhausted(Exception):
    """Every draw of a random number was one already taken: the pattern is too narrow."""


class Draws:
    """The random numbers the commands of one block gave out, in order (`made`); given
    `replayed`, those numbers are given out again instead of new draws (flows/replay.py: a
    replayed log must give the records the numbers they had)."""

    def __init__(self, replayed: list[str] | None = None):
        self.made: list[str] = []
        self.replayed = list(replayed or [])


_DRAWS: ContextVar[Draws | None] = ContextVar("docket_number_draws", default=None)


@contextmanager
def drawing(replayed: list[str] | None = None) -> Iterator[Draws]:
    """Keep (or, given `replayed`, repeat) the random numbers drawn inside the block."""
    draws = Draws(replayed)
    token = _DRAWS.set(draws)
    try:
        yield draws
    finally:
        _DRAWS.reset(token)


@lru_cache(maxsize=64)  # asked at every submission of a form: a bundle has a few patterns
def has_random(pattern: str) -> bool:
    """Whether `pattern` draws part of each number at random ({random:N})."""
    return any(match["kind"] == "random" for match in _TOKEN.finditer(pattern))


def allocate(conn: Connection, form: str, pattern: str, now: datetime, timezone: str,
             taken: Callable[[str], bool] | None = None) -> str:
    """A new number for `form` following `pattern`, at the instant `now` (UTC).

    A pattern with {random:N} is drawn again while `taken(number)` says a record has it (the
    unique index would refuse the submission): a customer's complaint is never lost to a draw.
    """
    if not has_random(pattern):
        return _draw(conn, form, pattern, now, timezone)
    draws = _DRAWS.get()
    if draws is not None and draws.replayed:
        number = draws.replayed.pop(0)
        draws.made.append(number)
        return number
    for _ in range(DRAWS):
        number = _draw(conn, form, pattern, now, timezone)
        if taken is None or not taken(number):
            break
    else:
        raise NumbersExhausted(f"numbering '{pattern}' of form '{form}': {DRAWS} draws in a row were "
                               "numbers already taken; widen its {random:N}")
    if draws is not None:
        draws.made.append(number)
    return number


def _draw(conn: Connection, form: str, pattern: str, now: datetime, timezone: str) -> str:
    local = now.astimezone(ZoneInfo(timezone))
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(pattern):
        out.append(pattern[pos:match.start()])
        kind, arg = match["kind"], match["arg"]
        if kind == "date":
            out.append(local.strftime(arg or "%Y%m%d"))
        elif kind == "seq":
            value = next_sequence(conn, f"{form}:{''.join(out)}")
            out.append(str(value).zfill(int(arg)))
        else:
            out.append("".join(secrets.choice(RANDOM_ALPHABET) for _ in range(int(arg))))
        pos = match.end()
    out.append(pattern[pos:])
    return "".join(out)
