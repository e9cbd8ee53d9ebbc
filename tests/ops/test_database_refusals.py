"""A database that refuses Docket (a read-only standby, a user without the right to create
tables, a schema that does not exist, a wrong password) stops a command with one `error:` line
saying which database, the server's reason and what to check: never a traceback, which would
read as a bug in Docket."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from cli import main

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"


def with_options(url: str, *options: str) -> str:
    """`url` with these server settings added to its `options` (`-cname=value` each)."""
    parsed = make_url(url)
    given = parsed.query.get("options", "")
    return parsed.update_query_dict({"options": " ".join([given, *options]).strip()}).render_as_string(
        hide_password=False)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.postgres
def test_upgrading_a_read_only_postgresql_database_says_to_use_the_primary(
        postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    standby = with_options(postgres_url, "-cdefault_transaction_read_only=on")
    assert main(["db", "upgrade", "--db", standby]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "read-only transaction" in line and "point the URL at the primary server" in line


@pytest.mark.postgres
def test_upgrading_as_a_user_who_may_not_create_tables_says_which_right_is_missing(
        postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # pg_monitor, a built-in role, may read statistics but create nothing in any schema.
    weak = with_options(make_url(postgres_url).difference_update_query(["options"]).render_as_string(
        hide_password=False), "-crole=pg_monitor")
    assert main(["db", "upgrade", "--db", weak]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "permission denied" in line and "make it the owner of the database" in line


@pytest.mark.postgres
def test_a_schema_in_the_url_that_does_not_exist_is_named_with_how_to_create_it(
        postgres_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    missing = make_url(postgres_url).update_query_dict({"options": "-csearch_path=no_such_schema_here"})
    assert main(["db", "upgrade", "--db", missing.render_as_string(hide_password=False)]) == 1
    assert "CREATE SCHEMA" in one_error_line(capsys.readouterr().err)


@pytest.mark.postgres
def test_serve_on_a_read_only_postgresql_database_stops_with_one_line(
        postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKET_SECRET_KEY", "k" * 48)
    monkeypatch.setenv("DOCKET_FILES_DIR", str(tmp_path / "files"))
    standby = with_options(postgres_url, "-cdefault_transaction_read_only=on")
    assert main(["serve", str(POSTAL), "--db", standby, "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("error: cannot use the database")


def test_a_wrong_password_is_told_to_check_the_user_and_password() -> None:
    from sqlalchemy.exc import OperationalError

    from engine.storage.refusal import refusal_hint

    refused = OperationalError("connect", {}, Exception(
        'connection failed: FATAL:  password authentication failed for user "docket"'))
    assert "check the user name and password" in refusal_hint(
        refused, "postgresql+psycopg://docket:x@db.internal/docket")


def test_a_url_without_the_password_the_server_asks_for_is_told_to_add_it() -> None:
    # "fe_sendauth: no password supplied" came with no hint at all.
    from sqlalchemy.exc import OperationalError

    from engine.storage.refusal import refusal_hint

    refused = OperationalError("connect", {}, Exception(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied'))
    assert "check the user name and password" in refusal_hint(refused, "postgresql+psycopg://docket@db.internal/docket")


def test_a_read_only_sqlite_file_is_told_its_folder_must_be_writable(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "docket.db"
    assert main(["db", "upgrade", "--db", f"sqlite:///{path}"]) == 0
    capsys.readouterr()
    # Opened read-only, as a file whose folder this user may not write (root may write any).
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert main(["users", "add", "someone", "--no-password", "--db", read_only]) == 1
    assert "must be writable by this user" in one_error_line(capsys.readouterr().err)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_read_only_sqlite_file_of_another_user_names_its_owner(tmp_path: Path) -> None:
    # `docket db restore` run as root, not as the service's user, left a file the service could
    # not write: "attempt to write a readonly database" said nothing of whose file it was.
    import pwd
    import sqlite3

    from sqlalchemy.exc import OperationalError

    from engine.storage.refusal import refusal_hint

    path = tmp_path / "docket.db"
    sqlite3.connect(path).close()
    os.chown(path, 65534, -1)
    refused = OperationalError("INSERT ...", {}, sqlite3.OperationalError("attempt to write a readonly database"))
    owner, me = pwd.getpwuid(65534).pw_name, pwd.getpwuid(os.geteuid()).pw_name
    assert refusal_hint(refused, f"sqlite:///{path}").endswith(
        f"; {path} belongs to {owner}, and Docket runs as {me}: give it (with its -wal and -shm files) "
        f"to the user Docket runs as (chown)")


def connect_parameters(url: str) -> dict[str, object]:
    """What Docket's engine for `url` hands the driver when it connects (stopped right there)."""
    from sqlalchemy import event

    from engine.storage.db import create_engine

    engine = create_engine(url)
    seen: dict[str, object] = {}

    def capture(_dialect: object, _record: object, _cargs: object, cparams: dict[str, object]) -> None:
        seen.update(cparams)
        raise ConnectionAbortedError("stopped before connecting")

    event.listen(engine, "do_connect", capture)
    with pytest.raises(Exception):
        engine.connect()
    engine.dispose()
    return seen


def test_a_postgresql_server_that_does_not_answer_is_given_up_on_after_a_timeout() -> None:
    pytest.importorskip("psycopg")
    from engine.storage.db import CONNECT_TIMEOUT_S

    assert connect_parameters("postgresql+psycopg://docket@db.internal/docket")["connect_timeout"] == CONNECT_TIMEOUT_S
    assert CONNECT_TIMEOUT_S <= 30


def test_the_connect_timeout_in_the_url_wins() -> None:
    pytest.importorskip("psycopg")
    assert connect_parameters("postgresql+psycopg://docket@db.internal/docket?connect_timeout=60")[
        "connect_timeout"] == "60"


def test_an_unreachable_server_is_told_to_check_host_port_and_firewall() -> None:
    from sqlalchemy.exc import OperationalError

    from engine.storage.refusal import refusal_hint

    refused = OperationalError("connect", {}, Exception("connection timeout expired"))
    assert "check the host and port in the URL" in refusal_hint(refused, "postgresql+psycopg://docket@db/docket")


def refusal_from_a_read_only_server(postgres_url: str) -> BaseException:
    """The exception a write raises on a PostgreSQL server that only reads (a standby after a
    failover): an InternalError with SQLSTATE 25006, not an OperationalError."""
    import sqlalchemy as sa

    engine = sa.create_engine(with_options(postgres_url, "-cdefault_transaction_read_only=on"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE docket_refusal_probe (x int)"))
    except sa.exc.DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the server took a write")


@pytest.mark.postgres
def test_a_request_refused_by_a_read_only_server_is_named_as_the_database_refusing(postgres_url: str) -> None:
    # Only OperationalError was recognised: a failed-over standby gave every request a 500 and a traceback.
    from web.app import server_refusal

    reason = server_refusal(refusal_from_a_read_only_server(postgres_url))
    assert reason is not None and reason.startswith("the database refused: ") and "read-only transaction" in reason


@pytest.mark.postgres
def test_a_worker_tick_refused_by_a_read_only_server_is_one_warning_line(
        postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from engine.scheduler import Scheduler

    refusal = refusal_from_a_read_only_server(postgres_url)

    def step() -> tuple[int, int]:
        raise refusal

    with caplog.at_level(logging.WARNING, logger="engine.scheduler"):
        assert Scheduler(lambda: None)._loop("timers", step, 10) == 0  # type: ignore[arg-type,return-value]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "tick stopped by the database; next tick retries: " in record.getMessage()


def full_disk() -> Exception:
    import sqlite3

    from sqlalchemy.exc import OperationalError

    return OperationalError("INSERT ...", {}, sqlite3.OperationalError("database or disk is full"))


def test_a_database_refusing_for_minutes_is_one_warning_then_one_line_when_it_answers_again(
        caplog: pytest.LogCaptureFixture) -> None:
    # A stopped PostgreSQL or a full disk logged a warning per job per second (5,400 lines in an
    # hour of maintenance, on the disk that was full), and nothing when it answered again.
    import logging

    from engine.scheduler import Scheduler

    now = [0.0]
    scheduler = Scheduler(lambda: None, monotonic=lambda: now[0])  # type: ignore[arg-type,return-value]

    def refused() -> tuple[int, int]:
        raise full_disk()

    with caplog.at_level(logging.INFO, logger="engine.scheduler"):
        for second in range(600):
            now[0] = float(second)
            scheduler._loop("timers", refused, 10)
        scheduler._loop("timers", lambda: (0, 0), 10)
    assert [r.getMessage() for r in caplog.records] == [
        "timers tick stopped by the database; next tick retries: database or disk is full",
        "timers tick still stopped by the database (299 more refusals in 300 s): database or disk is full",
        "timers tick: the database answers again (after 299 more refusals)"]
