"""SQLite WAL checkpoints off the committing thread.

In WAL mode a commit appends its pages to the `-wal` file; a *checkpoint* copies them back into
the database file and fsyncs it. SQLite's default (`wal_autocheckpoint=1000` pages) runs that
checkpoint inside whichever COMMIT crosses the threshold: about every 100th intake transaction
paid 1-3 ms for it, which averaged to more than the commit itself (bench/RESULTS.md, session 4).

Docket's connections to a SQLite file turn the automatic checkpoint off, and `transaction()`
reports each commit here. Every `EVERY` commits a background thread of this process runs a
PASSIVE checkpoint on its own connection: it never blocks writers or readers, and SQLite
releases the GIL while it copies and syncs. Durability is unchanged (`synchronous=NORMAL` in
WAL mode never synced at commit; the checkpoint syncs, as before). The WAL stays bounded when
the thread cannot keep up or cannot run: after `INLINE_AFTER` commits without a finished
checkpoint, the committing thread runs one itself, as SQLite would have. Other processes
(`docket worker`, the command line) do the same for their own commits, and SQLite checkpoints
when the last connection to the file closes.

A checkpoint that runs beside writers never finishes: by the time it has copied the frames it
saw, new ones were appended, and SQLite starts the WAL file over only when every frame has been
copied and no reader still reads from the WAL. Under sustained intake the `-wal` file then
grew without end (37 KB per submission: 185 MB after 5,000 submissions in one run; with the
postal flow, 300 KB per submission and 100 MB in 8 seconds while dashboards ran). So:
- a checkpoint is also asked for every `INTERVAL` seconds in which anything was committed (a
  postal submission writes ~75 pages: 200 of them are 60 MB);
- when a background checkpoint leaves more than `RESTART_FRAMES` frames in the WAL, it runs a
  RESTART checkpoint holding this process's write gate (`exclusive`): only the frames appended
  meanwhile are left to copy, nothing new arrives, and SQLite waits (at most `RESTART_WAIT_MS`)
  for the readers still on the WAL, such as a dashboard's long query, so that the next commit
  starts the WAL from its beginning. Readers that keep overlapping would otherwise starve every
  restart ("checkpoint starvation" in SQLite's WAL documentation). When they outlast the wait,
  the next run tries again.
Connections also set `journal_size_limit`, so a WAL file that did grow is cut back when it
restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from contextlib import AbstractContextManager
from typing import Callable

from engine.storage.refusal import RepeatedRefusal

log = logging.getLogger(__name__)


class Checkpointer:
    """Checkpoints one SQLite file's WAL on a daemon thread, every `every` commits."""

    EVERY = 200
    """Commits between checkpoints: Docket's transactions write ~5-10 pages, so about what
    SQLite's own 1,000-page threshold gave."""
    INLINE_AFTER = 2_000
    """Commits without a finished checkpoint after which the committer checkpoints itself."""
    INTERVAL = 0.25
    """Seconds after which a commit asks for a checkpoint even before `EVERY` commits."""
    RESTART_FRAMES = 4_096
    """WAL frames (pages; 16 MB at 4 KB) above which a background checkpoint finishes the job
    with the write gate held, so that the WAL starts over."""
    RESTART_WAIT_MS = 2_000
    """How long that checkpoint waits for readers still on the WAL (this process's writers wait
    meanwhile)."""
    JOURNAL_SIZE_LIMIT = 4 * RESTART_FRAMES * 4096
    """Bytes a restarted WAL file is cut back to (PRAGMA journal_size_limit)."""

    def __init__(self, path: str, *, busy_timeout_ms: int, every: int = EVERY,
                 inline_after: int = INLINE_AFTER, restart_frames: int = RESTART_FRAMES,
                 exclusive: Callable[[], AbstractContextManager[bool]] | None = None):
        self.path = path
        self.every = every
        self.inline_after = inline_after
        self.restart_frames = restart_frames
        self.exclusive = exclusive
        """Holds off this process's writers while it is held; yields False when it could not
        be taken in time (the restart is then left to a later run)."""
        self.restarts = 0
        self.busy_timeout = busy_timeout_ms / 1000
        self.background_runs = 0
        self.inline_runs = 0
        self._commits = 0  # since the last request; approximate under threads, which is enough
        self._asked_at = time.monotonic()  # when a checkpoint was last asked for
        self._unsynced = 0  # since the last finished checkpoint
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._done = threading.Condition()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._busy = False
        # A full disk fails every checkpoint: one warning, not one a second (engine.storage.refusal).
        self._refusals = RepeatedRefusal(log, f"WAL checkpoint of {path}", retry="the next commit retries")
        # The thread holds this checkpointer only weakly: a strong reference from a thread that
        # never ends kept every engine alive with its caches, one thread each (a scratch
        # database per scenario run in a long-lived server, every `boot` of the test suite).
        # When the engine goes, this stops the thread; the callback must not hold `self`.
        weakref.finalize(self, _stop_loop, self._wake, self._stop)

    def committed(self) -> None:
        """Count one commit; ask for a checkpoint every `every`, or run one inline when
        `inline_after` commits went by without one (the thread is stuck or cannot start)."""
        self._commits += 1
        self._unsynced += 1
        if self._unsynced >= self.inline_after:
            self._checkpoint(inline=True)
        elif self._commits >= self.every or time.monotonic() - self._asked_at >= self.INTERVAL:
            self._commits = 0
            self._asked_at = time.monotonic()
            if self._running():
                self._wake.set()
            else:
                self._checkpoint(inline=True)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no checkpoint is requested or running (tests, orderly shutdown)."""
        with self._done:
            return self._done.wait_for(lambda: not self._wake.is_set() and not self._busy, timeout)

    def _running(self) -> bool:
        thread = self._thread
        if thread is not None and thread.is_alive():
            return True
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                try:
                    self._thread = threading.Thread(
                        target=_loop, args=(weakref.ref(self), self._wake, self._stop),
                        name="docket-wal-checkpoint", daemon=True)
                    self._thread.start()
                except RuntimeError:  # the interpreter is shutting down: no new threads
                    self._thread = None
                    return False
        return True

    def _run_requested(self) -> None:
        """The background thread's work for one wake-up: the checkpoint asked for."""
        with self._done:
            self._busy = True
            self._wake.clear()
        try:
            # A connection per run (~0.1 ms every `every` commits): an idle process holds no
            # file open, and a database file replaced on disk is never checkpointed stale.
            self.background_runs += self._checkpoint(inline=False, restart=True)
        finally:
            with self._done:
                self._busy = False
                self._done.notify_all()

    def _checkpoint(self, *, inline: bool, restart: bool = False) -> bool:
        """One PASSIVE checkpoint (and, when `restart` and the WAL is long, a second one with
        the writers held off); a failure is logged, not raised: the commit that asked for it
        stands, the next request retries, and the inline bound still holds."""
        try:
            connection = self._connect()
            try:
                left = self._run(connection)
                if restart and left > self.restart_frames and self.exclusive is not None:
                    with self.exclusive() as held:
                        if held:
                            self.restarts += self._restart(connection)
            finally:
                connection.close()
            self.inline_runs += inline
            self._refusals.answered()
            return True
        except sqlite3.Error as exc:
            self._refusals.refused(str(exc))
            return False

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                               check_same_thread=False)

    def _restart(self, connection: sqlite3.Connection) -> bool:
        """A RESTART checkpoint: copy every frame, wait for the readers still on the WAL, so the
        next writer starts it over. False when a reader outlasted the wait."""
        connection.execute(f"PRAGMA busy_timeout={self.RESTART_WAIT_MS}")
        busy, _frames, _copied = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        self._unsynced = 0
        return not busy

    def _run(self, connection: sqlite3.Connection) -> int:
        """A PASSIVE checkpoint: copy what no reader still needs, wait for nobody (frames a long
        reader still pins are copied by a later run). Returns the frames in the WAL."""
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self._unsynced = 0
        return int(frames)


def _loop(checkpointer: "weakref.ref[Checkpointer]", wake: threading.Event, stop: threading.Event) -> None:
    """The checkpointer's thread: a checkpoint per wake-up, until its checkpointer is gone."""
    while True:
        wake.wait()
        if stop.is_set():
            return
        current = checkpointer()
        if current is None:
            return
        current._run_requested()
        del current  # hold it only while it works


def _stop_loop(wake: threading.Event, stop: threading.Event) -> None:
    stop.set()
    wake.set()
