"""Room for anonymous uploads: the files nobody has put on a record yet stay under a cap.

Anyone may upload (`POST /api/v1/uploads`, the public form's files, a customer's answer on the
lookup), and an upload stays `pending` until a record takes it or `docket files sweep` forgets
it a week later. Per-client rate limits do not bound what many clients store together, and a
full disk stops the database too (SQLite lives beside the files), so once pending uploads hold
`cap` bytes, anonymous uploads are refused (503, the customer is told to try later or send the
form without files) and the operator is told in the log. Signed-in staff still upload.

The total is read from the database at most every `REFRESH_SECONDS` (a sum over the pending
rows), and this process adds what it accepts in between, so a burst cannot slip far past it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Callable

from engine.storage.db import read_transaction
from forms.attachments.errors import UploadRefused
from forms.attachments.service import pending_bytes

if TYPE_CHECKING:
    from web.app import Web

__all__ = ["REFRESH_SECONDS", "UploadRoom"]

log = logging.getLogger(__name__)

REFRESH_SECONDS = 30.0


class UploadRoom:
    """Whether an anonymous upload may be stored now (`check`), and what was stored (`add`)."""

    def __init__(self, web: "Web", cap: int, clock: Callable[[], float]):
        self.web = web
        self.cap = cap
        self._clock = clock
        self._lock = threading.Lock()
        self._total = 0
        self._read_at: float | None = None

    def check(self) -> None:
        """UploadRefused("no_room") when pending uploads fill the cap (blocking: a query at
        most every REFRESH_SECONDS; call it off the event loop)."""
        now = self._clock()
        with self._lock:
            stale = self._read_at is None or now - self._read_at >= REFRESH_SECONDS
        if stale:
            with read_transaction(self.web.system.db) as conn:
                total = pending_bytes(conn)
            with self._lock:
                self._total, self._read_at = total, now
        with self._lock:
            total = self._total
        if total >= self.cap:
            log.error("anonymous upload refused: pending uploads hold %d MB, the cap is %d MB "
                      "($DOCKET_MAX_PENDING_UPLOADS_MB); run `docket files sweep`, or look for a flood",
                      total // (1024 * 1024), self.cap // (1024 * 1024))
            raise UploadRefused("no_room")

    def add(self, size: int) -> None:
        """Count an upload this process just stored (until the next read of the total)."""
        with self._lock:
            self._total += size
