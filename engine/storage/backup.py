"""Backups of an embedded (SQLite) database: a consistent copy while servers run, and its restore.

`snapshot` uses SQLite's online backup API in one step: the copy is the database as of one
commit, taken inside a read transaction, so servers and workers go on writing meanwhile (WAL:
a reader never blocks a writer). The copy, one file in rollback-journal mode, is written beside its destination under a temporary
name, checked with `PRAGMA integrity_check`, flushed to disk and only then renamed into place:
a backup file that exists is whole and sound.

`restore` puts a backup in place of a database that no process has open (checked through the
lock SQLite itself holds, not by asking the operator); the database it replaces, with its WAL,
is moved aside, never deleted, and a stale WAL can never be replayed onto the restored file.

PostgreSQL has its own tools (`pg_dump`), which these functions point to rather than imitate.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.storage.migrations import VERSION_TABLE
from engine.storage.tables import attachments

__all__ = ["BACKUP_GLOB", "BackupError", "Snapshot", "backup_name", "database_path", "file_checksums",
           "in_use", "prune", "restore", "snapshot"]

BACKUP_GLOB = "docket-*.db"
"""The names `backup_name` gives, which `prune` may remove (nothing else in the folder)."""

_SHM_DMS_BYTE = 128
"""The byte of a WAL database's `-shm` file on which every connection that has the database open
holds a shared lock (SQLite's unix VFS: the "dead man switch" after the 8 lock bytes at 120)."""

_PG_HINT = ("a PostgreSQL database is backed up with its own tools, while Docket runs: "
            "pg_dump --format=custom --file=docket.dump DATABASE_URL, and copy the files folder "
            "(DOCKET_FILES_DIR) beside it; to restore, pg_restore --no-owner into a new database "
            "(docs/guides/run-on-a-server.md, section 6)")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    """A backup file that exists, whole and checked."""

    path: Path
    bytes: int
    seconds: float
    revision: str | None
    """The engine tables' migration revision in the copy (None: not a Docket database)."""


def database_path(url: str) -> Path:
    """The file of a SQLite database URL; BackupError for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(_PG_HINT if parsed.get_backend_name() == "postgresql"
                          else f"{parsed.get_backend_name()}: only SQLite databases are backed up by Docket")
    if parsed.database in (None, "", ":memory:"):
        raise BackupError("an in-memory database has nothing to back up")
    return Path(parsed.database)


def backup_name(now: datetime | None = None) -> str:
    """`docket-YYYYMMDDTHHMMSSZ.db`: sorts by time, names the moment in UTC."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"docket-{moment:%Y%m%dT%H%M%SZ}.db"


def snapshot(source: Path, dest: Path) -> Snapshot:
    """Copy the database at `source` to the new file `dest`, consistently, while others write."""
    if not source.is_file():
        raise BackupError(f"{source}: no database there")
    partial = dest.with_name(f".{dest.name}.partial")
    try:
        if dest.exists():
            raise BackupError(f"{dest}: already exists; a backup never overwrites a file")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _claim(partial)
    except OSError as exc:
        raise BackupError(_cannot_write(dest.parent, "a backup", exc)) from exc
    started = time.perf_counter()
    src = sqlite3.connect(source, timeout=30)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        copy = sqlite3.connect(partial)
        try:
            src.backup(copy)  # one step: every page as of one commit
            # A single self-contained file, readable where it lies without a -wal or -shm beside
            # it; Docket puts a database back into WAL mode when it opens it.
            copy.execute("PRAGMA journal_mode = DELETE")
            _check(copy, dest)
            revision = _revision(copy)
        finally:
            copy.close()
        _flush(partial)
        os.replace(partial, dest)
        _flush(dest.parent)
    except sqlite3.Error as exc:  # the source unreadable, or the destination full
        raise BackupError(f"{source}: cannot be copied to {dest.parent}: {exc}") from exc
    except OSError as exc:
        raise BackupError(_cannot_write(dest.parent, "a backup", exc)) from exc
    finally:
        src.close()
        for leftover in (partial, Path(f"{partial}-journal")):
            leftover.unlink(missing_ok=True)
    return Snapshot(dest, dest.stat().st_size, time.perf_counter() - started, revision)


def file_checksums(database: Path) -> set[str]:
    """The checksums of the uploaded files a Docket database names (its attachment rows)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute(f"SELECT DISTINCT sha256 FROM {attachments.name}")}
    except sqlite3.Error as exc:
        raise BackupError(f"{database}: cannot read its attachments: {exc}") from exc
    finally:
        conn.close()


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` backups in `folder` (by their names); the removed ones."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    backups = sorted(folder.glob(BACKUP_GLOB))
    removed = backups[:-keep]
    for path in removed:
        path.unlink()
    return removed


def in_use(database: Path) -> bool:
    """True while any process has the WAL database open (it holds a shared lock on the `-shm`
    file's DMS byte for as long as it does). Locks are per process: call it from one that has not
    opened the database itself."""
    shm = Path(f"{database}-shm")
    try:
        fd = os.open(shm, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):
        return False  # nobody has it open in WAL mode: the last connection removed its index
    except PermissionError as exc:
        raise BackupError(f"{shm}: cannot be opened to see whether Docket has the database open: "
                          f"{exc.strerror}; run this as the user Docket runs as") from exc
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, _SHM_DMS_BYTE)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN, 1, _SHM_DMS_BYTE)
        return False
    finally:
        os.close(fd)


def restore(backup: Path, database: Path, now: datetime | None = None) -> Path | None:
    """Put the checked `backup` in place of `database`; returns where the replaced database was
    moved (None if there was none). Refused while any process has the database open."""
    if backup.is_dir():
        kept = sorted(backup.glob(BACKUP_GLOB))
        if kept:
            raise BackupError(f"{backup}: a folder; give one of its backups, the newest is {kept[-1]}")
    if not backup.is_file():
        raise BackupError(f"{backup}: no backup there")
    if in_use(database):
        raise BackupError(f"{database}: in use; stop every Docket server and worker on it, then restore")
    incoming = database.with_name(f".{database.name}.restoring")
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        try:
            _check(source, backup)
            revision = _revision(source)
        except sqlite3.Error as exc:
            raise BackupError(f"{backup}: not a readable SQLite database: {exc}") from exc
        if revision is None:
            raise BackupError(f"{backup}: not a Docket database (it has no engine tables)")
        # Through SQLite, not a file copy: a backup file with a -wal beside it (a copy taken by
        # hand) comes back whole, its last commits included.
        try:
            database.parent.mkdir(parents=True, exist_ok=True)
            _claim(incoming)
            target = sqlite3.connect(incoming)
            try:
                source.backup(target)
            finally:
                target.close()
            _flush(incoming)
        except (OSError, sqlite3.Error) as exc:  # the folder not writable, or full
            raise BackupError(_cannot_write(database.parent, "the restored database", exc)) from exc
    except BaseException:  # refused, or Ctrl+C mid-copy: no partial copy left beside the database
        with suppress(OSError):  # there may be no folder to remove it from
            incoming.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    _owned_as(incoming, database if database.exists() else database.parent)
    moved: Path | None = None
    if database.exists():
        stamp = f"{(now or datetime.now(timezone.utc)).astimezone(timezone.utc):%Y%m%dT%H%M%SZ}"
        moved = database.with_name(f"{database.name}.before-restore-{stamp}")
        os.replace(database, moved)
    for suffix in ("-wal", "-shm"):  # the replaced database's: applied to the backup they would corrupt it
        side = Path(f"{database}{suffix}")
        if side.exists():
            if moved is not None:
                os.replace(side, Path(f"{moved}{suffix}"))
            else:
                side.unlink()
    os.replace(incoming, database)
    _flush(database.parent)
    return moved


def _owned_as(path: Path, model: Path) -> None:
    """Run as root, give `path` the owner of `model` (the database it replaces, else its folder):
    a restore run as root instead of as the service's user left a file the service could not
    write. Anyone else can only create their own files, which is then right already."""
    if os.geteuid() != 0:
        return
    owner = model.stat()
    if owner.st_uid != 0:
        os.chown(path, owner.st_uid, owner.st_gid)


def _claim(path: Path) -> None:
    """Create the empty file SQLite then copies into, readable by this user only (a backup holds
    every customer's name and phone number): a folder that cannot be written fails here, with
    the system's reason, rather than as SQLite's "unable to open database file"."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))


def _cannot_write(folder: Path, what: str, exc: OSError | sqlite3.Error) -> str:
    """One line: `what` cannot be written in `folder`, and the system's (or SQLite's) reason."""
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"{folder}: cannot write {what} there: {reason}"


def _check(conn: sqlite3.Connection, name: Path) -> None:
    result = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise BackupError(f"{name}: integrity check failed: {'; '.join(map(str, result[:5]))}")


def _revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


def _flush(path: Path) -> None:
    """fsync a file, or a folder after a rename in it (so the new name survives a power cut)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
