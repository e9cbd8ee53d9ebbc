"""When the database, not Docket, is at fault: recognise it and say so in one line an operator
can act on (the server's own words, which database, what to check), never a traceback.

SQLAlchemy files most of these under OperationalError, but not all: PostgreSQL's refusals are
classified by SQLSTATE, and psycopg raises a read-only standby's refusal (25006) as an
InternalError, a missing privilege (42501) or schema (3F000) as a ProgrammingError, which
look like bugs in Docket's SQL unless their SQLSTATE is read.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Callable

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

__all__ = ["RepeatedRefusal", "database_refusal", "refusal_hint", "refusal_sqlstate"]

REFUSING_STATES = ("08", "28", "3D", "3F", "42501", "25006", "53", "57", "58")
"""SQLSTATEs (classes, or whole codes) that mean the server or its set-up refused: connection
(08), authorisation (28), no such database (3D) or schema (3F), no privilege (42501), a read-only
transaction on a standby (25006), resources such as a full disk or too many connections (53),
an operator's intervention such as a shutdown (57), and the server's own I/O errors (58)."""

HINTS = {
    "08": "; check the host and port in the URL, that the server runs, and that it accepts connections "
          "from this machine (a firewall, listen_addresses, pg_hba.conf)",
    "28": "; check the user name and password in the database URL (in the password write @ as %40, "
          "/ as %2F, : as %3A and % as %25)",
    "3D": "; create the database first (createdb --owner USER NAME) or correct its name in the URL",
    "3F": "; create the schema named in the URL's search_path first (CREATE SCHEMA name) or correct it",
    "42501": "; the database user may not create or change tables there: make it the owner of the "
             "database (createdb --owner USER NAME) or grant it CREATE on the schema",
    "25006": "; this database only reads (a standby or replica?): point the URL at the primary server",
    "55P03": "; a table it must change is in use by another session (a long report, or a transaction "
             "left open in psql): let it finish or end it (see pg_stat_activity), then run the command again",
}
"""What to check for a refusal, by SQLSTATE class or code (code first)."""
CONNECTION_WORDS = ((re.compile(r'password authentication failed|role ".*" does not exist|no password supplied'), "28"),
                    (re.compile(r'database ".*" does not exist'), "3D"),
                    (re.compile(r"Connection refused|timeout expired|failed to resolve host|"
                                r"No route to host|Network is unreachable"), "08"))
"""PostgreSQL's words when it refuses a connection (psycopg gives them no SQLSTATE), and the
SQLSTATE whose hint applies."""


def refusal_sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE the database server gave for `exc` (raised through SQLAlchemy or by the
    driver itself), or None when it gave none (SQLite gives none)."""
    seen: BaseException | None = exc
    for _ in range(4):  # the error, what SQLAlchemy wrapped, their causes: never a long chain
        if seen is None:
            return None
        state = getattr(seen, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
        seen = getattr(seen, "orig", None) or seen.__cause__
    return None


def _refuses(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError):
        return True
    state = refusal_sqlstate(exc)
    return isinstance(exc, DBAPIError) and state is not None and state.startswith(REFUSING_STATES)


def database_refusal(exc: BaseException) -> str | None:
    """The database's own reason for refusing, in one line (its first), when `exc` is the
    database or its set-up refusing to work rather than a fault in Docket; None otherwise.
    Never the SQL or its parameters: they can hold personal data."""
    if not _refuses(exc):
        return None
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def refusal_hint(exc: BaseException, url: str) -> str:
    """What to check when the database at `url` refused with `exc` ("; ..."), or nothing."""
    state = refusal_sqlstate(exc)
    if state is not None:
        return HINTS.get(state) or HINTS.get(state[:2], "")
    reason = database_refusal(exc) or ""
    if make_url(url).get_backend_name() != "sqlite":
        # A refused connection carries no SQLSTATE, only the server's words.
        for words, code in CONNECTION_WORDS:
            if words.search(reason):
                return HINTS[code]
        return ""
    if "readonly" in reason or "read-only" in reason:
        return _owned_by_another(make_url(url).database or "") or (
            "; the database file and its folder must be writable by this user (SQLite adds -wal and -shm files)")
    if "unable to open" in reason:
        return "; check the path and that its folder is writable"
    return ""


def _owned_by_another(database: str) -> str | None:
    """"; FILE belongs to USER, and Docket runs as ME: ..." when the SQLite file is another
    user's (a restore or an upgrade run as root, not as the service's user); None otherwise."""
    import os
    import pwd
    from pathlib import Path

    try:
        owner = Path(database).stat().st_uid
    except OSError:
        return None
    if owner == os.geteuid():
        return None

    def name(uid: int) -> str:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    return (f"; {Path(database).resolve()} belongs to {name(owner)}, and Docket runs as {name(os.geteuid())}: "
            "give it (with its -wal and -shm files) to the user Docket runs as (chown)")


class RepeatedRefusal:
    """The log of a background job the database keeps refusing (a server stopped for
    maintenance, a full disk): one warning when it starts, one every `every` seconds while the
    same refusal goes on, and one line when the job gets through again. Logged each second, a
    refusal filled the log (often on the disk that was full) and its end went unsaid."""

    def __init__(self, log: logging.Logger, what: str, *, every: float = 300.0,
                 retry: str = "next tick retries", monotonic: Callable[[], float] = time.monotonic) -> None:
        self.log, self.what, self.every, self.retry, self.monotonic = log, what, every, retry, monotonic
        self._reason: str | None = None
        self._said_at = 0.0
        self._since = 0  # refusals not logged since the last line

    def refused(self, reason: str) -> None:
        """The job was refused for `reason` this time."""
        now = self.monotonic()
        if self._reason is None or reason != self._reason:
            self.log.warning("%s stopped by the database; %s: %s", self.what, self.retry, reason)
        elif now - self._said_at >= self.every:
            self.log.warning("%s still stopped by the database (%d more refusals in %.0f s): %s",
                             self.what, self._since, now - self._said_at, reason)
        else:
            self._since += 1
            return
        self._reason, self._said_at, self._since = reason, now, 0

    def answered(self) -> None:
        """The job got through: say so once if it had been refused."""
        if self._reason is not None:
            self.log.warning("%s: the database answers again (after %d more refusals)", self.what, self._since)
            self._reason, self._since = None, 0
