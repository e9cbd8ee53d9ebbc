"""Backups of the embedded database: a whole copy while Docket writes, the files it names, and a
restore that loses nothing (the replaced database is kept) and refuses a database in use."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli import main
from engine.storage.backup import BackupError, backup_name, in_use, restore, snapshot
from engine.storage.db import transaction
from forms.attachments.limits import DEFAULT_LIMITS
from tests.forms.test_attachments_kit import boot_claims, pdf
from web.system import boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {"customer_name": "华东电子", "contact_name": "刘女士", "contact_phone": "13800000000",
             "occurred_at": "2026-11-19T09:00:00+08:00", "category": "delivery_late",
             "description": "延误三天"}


def holder(database: Path) -> subprocess.Popen[str]:
    """Another process with the database open, as a running server has it."""
    code = ("import sqlite3, sys, time\n"
            f"c = sqlite3.connect({str(database)!r})\n"
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('SELECT count(*) FROM sqlite_master').fetchall()\n"
            "print('open', flush=True)\n"
            "time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "open"
    return process


def rows(database: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


# -- snapshot ------------------------------------------------------------------------------------
def test_a_backup_taken_while_complaints_arrive_holds_each_one_whole(tmp_path: Path) -> None:
    database = tmp_path / "docket.db"
    system = boot(POSTAL, db_url=f"sqlite:///{database}")
    stop, underway = threading.Event(), threading.Event()

    def submit() -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            system.forms.submit("complaint", {**COMPLAINT, "customer_name": f"客户{n}"}, actor="accounts")
            if n == 5:
                underway.set()

    writer = threading.Thread(target=submit)
    writer.start()
    try:
        assert underway.wait(60)  # some complaints in before the copy, more while it is taken
        copy = snapshot(database, tmp_path / "backups" / backup_name())
    finally:
        stop.set()
        writer.join()
    system.db.dispose()
    assert rows(copy.path, "PRAGMA integrity_check") == [("ok",)]
    (complaints,) = rows(copy.path, "SELECT count(*) FROM rec_complaint")[0]
    assert complaints > 0
    # Each submission commits the record, its flow instance, its first task and its history at
    # once: the copy has all of them for every record, or none.
    assert rows(copy.path, "SELECT count(DISTINCT record_id) FROM dk_flow_instances WHERE form = 'complaint'") == [(complaints,)]
    assert rows(copy.path, "SELECT count(DISTINCT record_id) FROM dk_tasks WHERE form = 'complaint'") == [(complaints,)]
    assert rows(copy.path, "SELECT count(*) FROM dk_history WHERE form = 'complaint' AND kind = 'record.created'") == [(complaints,)]
    assert copy.revision is not None


def test_a_backup_is_one_file_that_opens_where_it_lies(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    boot(POSTAL, db_url=f"sqlite:///{database}").db.dispose()
    copy = snapshot(database, tmp_path / "b" / "copy.db")
    assert rows(copy.path, "PRAGMA journal_mode") == [("delete",)]
    assert sorted(p.name for p in copy.path.parent.iterdir()) == ["copy.db"]


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    sqlite3.connect(database).close()
    existing = tmp_path / "there.db"
    existing.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="already exists"):
        snapshot(database, existing)
    assert existing.read_bytes() == b"keep me"


def test_backup_names_sort_by_time_in_utc() -> None:
    moment = datetime(2026, 12, 6, 23, 5, 9, tzinfo=timezone.utc)
    assert backup_name(moment) == "docket-20261206T230509Z.db"


# -- restore -------------------------------------------------------------------------------------
def test_a_database_another_process_has_open_is_in_use_until_it_closes(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    sqlite3.connect(database).close()
    process = holder(database)
    try:
        assert in_use(database)
    finally:
        process.kill()
        process.wait()
    assert not in_use(database)


def test_restore_is_refused_while_a_process_has_the_database_open(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    boot(POSTAL, db_url=f"sqlite:///{database}").db.dispose()
    copy = snapshot(database, tmp_path / "copy.db")
    before = database.read_bytes()
    process = holder(database)
    try:
        with pytest.raises(BackupError, match="in use; stop every Docket server and worker"):
            restore(copy.path, database)
    finally:
        process.kill()
        process.wait()
    assert database.read_bytes() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="restoring for another user needs root")
def test_a_restore_run_as_root_leaves_the_database_to_the_user_whose_folder_it_is(tmp_path: Path) -> None:
    # Run as root rather than through docket-admin, the restored file was root's, and the service
    # (user docket) stopped at start: "attempt to write a readonly database".
    database = tmp_path / "srv" / "d.db"
    database.parent.mkdir()
    boot(POSTAL, db_url=f"sqlite:///{database}").db.dispose()
    copy = snapshot(database, tmp_path / "copy.db")
    os.chown(database.parent, 65534, 65534)
    os.chown(database, 65534, 65534)
    restore(copy.path, database)
    assert (database.stat().st_uid, database.stat().st_gid) == (65534, 65534)


def test_a_restore_stopped_midway_leaves_neither_a_partial_copy_nor_a_changed_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl+C during the copy left .d.db.restoring beside the database: a partial copy of every
    # customer's data that nothing would remove.
    import engine.storage.backup as backup

    database = tmp_path / "d.db"
    boot(POSTAL, db_url=f"sqlite:///{database}").db.dispose()
    copy = snapshot(database, tmp_path / "copy.db")
    before = database.read_bytes()

    def interrupted(_path: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(backup, "_flush", interrupted)
    with pytest.raises(KeyboardInterrupt):
        restore(copy.path, database)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert database.read_bytes() == before


def test_restore_keeps_the_replaced_database_with_its_wal_and_never_replays_that_wal(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE dk_alembic_version (version_num TEXT)")
    conn.execute("INSERT INTO dk_alembic_version VALUES ('0008')")
    conn.execute("CREATE TABLE t (x INTEGER)")
    conn.commit()
    conn.close()
    copy = snapshot(database, tmp_path / "copy.db")
    # A process writes after the backup and dies: its commit is only in the -wal file.
    code = (f"import os, sqlite3, signal\nc = sqlite3.connect({str(database)!r})\n"
            "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute('INSERT INTO t VALUES (42)'); c.commit()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert Path(f"{database}-wal").stat().st_size > 0

    moved = restore(copy.path, database)

    assert rows(database, "SELECT count(*) FROM t") == [(0,)]
    assert moved is not None and Path(f"{moved}-wal").exists()
    assert rows(moved, "SELECT x FROM t") == [(42,)]  # nothing lost: the newer write is kept aside


def test_restore_refuses_a_damaged_backup_and_keeps_the_database(tmp_path: Path) -> None:
    database = tmp_path / "d.db"
    boot(POSTAL, db_url=f"sqlite:///{database}").db.dispose()
    damaged = tmp_path / "damaged.db"
    data = bytearray(snapshot(database, tmp_path / "copy.db").path.read_bytes())
    data[4096 * 3:4096 * 3 + 512] = os.urandom(512)
    damaged.write_bytes(bytes(data))
    before = database.read_bytes()
    with pytest.raises(BackupError, match="damaged.db"):
        restore(damaged, database)
    assert database.read_bytes() == before


def test_restore_refuses_a_sqlite_file_that_is_not_a_docket_database(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (y)").connection.commit()
    with pytest.raises(BackupError, match="not a Docket database"):
        restore(other, tmp_path / "d.db")
    assert not (tmp_path / "d.db").exists()


def test_restore_given_the_backup_folder_names_its_newest_backup(tmp_path: Path) -> None:
    # `docket db restore /srv/backups/docket` said only "no backup there", of a folder full of them.
    folder = tmp_path / "backups"
    folder.mkdir()
    for name in ("docket-20261205T023000Z.db", "docket-20261206T023000Z.db"):
        (folder / name).write_bytes(b"")
    with pytest.raises(BackupError) as refused:
        restore(folder, tmp_path / "d.db")
    assert str(refused.value) == (f"{folder}: a folder; give one of its backups, the newest is "
                                  f"{folder / 'docket-20261206T023000Z.db'}")


# -- docket db backup / restore ------------------------------------------------------------------
def test_db_backup_copies_the_files_the_database_names_and_restore_brings_them_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, service = boot_claims(tmp_path, tmp_path / "files")
    value = service.upload(pdf(b"waybill"), "waybill.pdf", actor=None, limits=DEFAULT_LIMITS)
    with transaction(system.db) as conn:
        service.link(conn, [value["id"]], "claim", 7, "evidence")
    system.db.dispose()
    url = f"sqlite:///{tmp_path / 'docket.db'}"
    backups = tmp_path / "backups"

    assert main(["db", "backup", str(backups), "--db", url]) == 0
    out = capsys.readouterr().out
    assert "integrity ok" in out and "1 copied" in out and "docket db restore" in out
    (copy,) = backups.glob("docket-*.db")
    assert service.store.path_of(value["sha256"]).read_bytes() == \
        (backups / "files" / value["sha256"][:2] / value["sha256"][2:4] / value["sha256"]).read_bytes()

    # The server's disk is lost: database and files.
    for path in tmp_path.glob("docket.db*"):
        path.unlink()
    service.store.path_of(value["sha256"]).unlink()
    assert main(["db", "restore", str(copy), "--db", url]) == 0
    assert service.store.verify(value["sha256"])
    assert rows(tmp_path / "docket.db", "SELECT status FROM dk_attachments") == [("linked",)]


def test_db_backup_fails_when_a_file_the_database_names_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, service = boot_claims(tmp_path, tmp_path / "files")
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    system.db.dispose()
    service.store.path_of(value["sha256"]).unlink()
    assert main(["db", "backup", str(tmp_path / "b"), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 1
    assert "1 file(s) the database names are missing" in capsys.readouterr().err


def test_db_backup_keep_removes_old_backups_and_the_files_only_they_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import engine.storage.backup as backup_module

    names = iter(["docket-20261201T000000Z.db", "docket-20261202T000000Z.db", "docket-20261203T000000Z.db"])
    monkeypatch.setattr(backup_module, "backup_name", lambda: next(names))
    system, service = boot_claims(tmp_path, tmp_path / "files")
    url, backups = f"sqlite:///{tmp_path / 'docket.db'}", tmp_path / "backups"
    first = service.upload(pdf(b"first"), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    assert main(["db", "backup", str(backups), "--db", url]) == 0
    with transaction(system.db) as conn:  # the first upload is forgotten; another arrives
        conn.exec_driver_sql("DELETE FROM dk_attachments")
    second = service.upload(pdf(b"second"), "b.pdf", actor=None, limits=DEFAULT_LIMITS)
    assert main(["db", "backup", str(backups), "--db", url]) == 0
    assert main(["db", "backup", str(backups), "--db", url, "--keep", "2"]) == 0
    system.db.dispose()
    assert sorted(p.name for p in backups.glob("docket-*.db")) == ["docket-20261202T000000Z.db",
                                                                    "docket-20261203T000000Z.db"]
    assert not (backups / "files" / first["sha256"][:2] / first["sha256"][2:4] / first["sha256"]).exists()
    assert (backups / "files" / second["sha256"][:2] / second["sha256"][2:4] / second["sha256"]).exists()
    assert "removed:" in capsys.readouterr().out


def test_a_backup_into_a_folder_that_cannot_be_made_names_that_folder_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}").db.dispose()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the backups' folder should be", "utf-8")
    assert main(["db", "backup", str(blocker / "backups"), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 1
    assert capsys.readouterr().err == f"error: {blocker / 'backups'}: cannot write a backup there: Not a directory\n"


def test_a_backup_whose_files_cannot_be_copied_is_one_error_line_naming_the_path(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    system, service = boot_claims(tmp_path, tmp_path / "files")
    service.upload(pdf(b"waybill"), "waybill.pdf", actor=None, limits=DEFAULT_LIMITS)
    system.db.dispose()
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "files").write_text("a file where the backup's files folder should be", "utf-8")
    assert main(["db", "backup", str(backups), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 1
    assert capsys.readouterr().err == f"error: {backups / 'files' / 'tmp'}: Not a directory\n"


def test_a_backup_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    source = tmp_path / "docket.db"
    boot(POSTAL, db_url=f"sqlite:///{source}").db.dispose()
    copy = snapshot(source, tmp_path / "backups" / backup_name())
    assert copy.path.stat().st_mode & 0o077 == 0  # it holds every customer's name and phone number


def test_restore_into_a_folder_that_cannot_be_made_blames_that_folder_not_the_backup(tmp_path: Path) -> None:
    source = tmp_path / "docket.db"
    boot(POSTAL, db_url=f"sqlite:///{source}").db.dispose()
    copy = snapshot(source, tmp_path / "backups" / backup_name())
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the database's folder should be", "utf-8")
    with pytest.raises(BackupError) as refused:
        restore(copy.path, blocker / "srv" / "docket.db")
    assert str(refused.value) == f"{blocker / 'srv'}: cannot write the restored database there: Not a directory"


def test_db_backup_of_postgresql_points_to_pg_dump(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["db", "backup", str(tmp_path), "--db", "postgresql+psycopg://docket@db.internal/docket"]) == 1
    err = capsys.readouterr().err
    assert "pg_dump" in err and "pg_restore --no-owner into a new database" in err  # as the server guide does it
    assert list(tmp_path.iterdir()) == []


def test_a_copy_taken_by_hand_with_its_wal_is_restored_with_its_last_commits(tmp_path: Path) -> None:
    source = tmp_path / "hand" / "docket.db"
    source.parent.mkdir()
    code = (f"import os, signal, sqlite3\nc = sqlite3.connect({str(source)!r})\n"
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')\n"
            "c.execute('CREATE TABLE dk_alembic_version (version_num TEXT)')\n"
            "c.execute(\"INSERT INTO dk_alembic_version VALUES ('0008')\")\n"
            "c.execute('CREATE TABLE t (x INTEGER)'); c.execute('INSERT INTO t VALUES (7)'); c.commit()\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", code])
    assert Path(f"{source}-wal").stat().st_size > 0  # the commits are in the WAL only
    restore(source, tmp_path / "d.db")
    assert rows(tmp_path / "d.db", "SELECT x FROM t") == [(7,)]


@pytest.mark.parametrize("keep", ["0", "-3"])
def test_db_backup_refuses_a_keep_below_one_before_writing_anything(
        tmp_path: Path, keep: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --keep 0 once meant "keep every backup" without a word, while --keep -3 was refused only
    # after a backup had been written.
    boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}").db.dispose()
    backups = tmp_path / "backups"
    assert main(["db", "backup", str(backups), "--db", f"sqlite:///{tmp_path / 'docket.db'}", "--keep", keep]) == 1
    assert capsys.readouterr().err.startswith("error: --keep must be at least 1")
    assert not list(backups.glob("docket-*.db"))
