"""The `docket` command line: validate, submit, schema, db upgrade, help."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "damage_goods",
    "description": "三箱货物内件破损", "amount_claimed": "1200.00", "region": "east",
}


def test_validate_accepts_the_postal_bundle(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POSTAL)]) == 0
    assert "valid" in capsys.readouterr().out


def broken_postal_copy(tmp_path: Path) -> Path:
    """The postal bundle with the five defects of the foundation issue, one per file area."""
    copy = tmp_path / "postal"
    shutil.copytree(POSTAL, copy)
    form = copy / "forms" / "complaint.yaml"
    text = form.read_text("utf-8")
    text = text.replace("  contact_name:\n", "  customer_name:\n    type: text\n  contact_name:\n", 1)
    text = text.replace('required_if: category in (', 'required_if: categry in (')
    form.write_text(text, "utf-8")
    flow = copy / "flows" / "complaint_handling.yaml"
    text = flow.read_text("utf-8")
    text = text.replace("    type: decision\n", "    type: decisoin\n")
    text = text.replace("    next: satisfied\n", "    next: close\n")
    flow.write_text(text, "utf-8")
    lists = copy / "lists" / "urgency.yaml"
    lists.write_text(lists.read_text("utf-8").replace("  - {value: normal", "   - {value: normal"), "utf-8")
    return copy


def test_validate_names_each_defect_of_a_broken_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = broken_postal_copy(tmp_path)
    assert main(["validate", str(copy), "--format", "json"]) == 1
    found = {(Path(d["file"]).name, d["line"], d["col"], d["code"])
             for d in json.loads(capsys.readouterr().out) if d["severity"] == "error"}
    form = (copy / "forms" / "complaint.yaml").read_text("utf-8").splitlines()
    flow = (copy / "flows" / "complaint_handling.yaml").read_text("utf-8").splitlines()
    dup_line = [i for i, l in enumerate(form, 1) if l == "  customer_name:"][1]
    expr_line = next(i for i, l in enumerate(form, 1) if "categry" in l)
    type_line = next(i for i, l in enumerate(flow, 1) if "decisoin" in l)
    next_line = next(i for i, l in enumerate(flow, 1) if l == "    next: close")
    expected = {
        ("complaint.yaml", dup_line, 3),                      # duplicate key
        ("complaint.yaml", expr_line, form[expr_line - 1].index("categry") + 1),  # unknown field
        ("complaint_handling.yaml", type_line, 11),           # unknown node type
        ("complaint_handling.yaml", next_line, 11),           # dangling reference
        ("urgency.yaml", 6, 4),                               # wrong indent
    }
    assert expected <= {(f, l, c) for f, l, c, _ in found}, found


def test_validate_prints_file_line_col_messages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = broken_postal_copy(tmp_path)
    assert main(["validate", str(copy)]) == 1
    err = capsys.readouterr().err
    assert "complaint_handling.yaml:" in err and ": error: unknown node type 'decisoin'" in err
    assert "hint: did you mean 'decision'?" in err


def test_submit_stores_a_complaint_with_a_query_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps(COMPLAINT, ensure_ascii=False), "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db", db]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["created"] is True and out["query_no"].startswith("TS")


def test_submit_reports_every_invalid_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps({"contact_phone": "12"}), "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db", db]) == 1
    err = capsys.readouterr().err
    for field in ("customer_name", "contact_phone", "category", "description"):
        assert f": {field}: " in err


def test_submit_refuses_a_file_that_is_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text("{not json", "utf-8")
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data)]) == 1
    assert "cannot read JSON" in capsys.readouterr().err


def fail_in_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make storing any record fail as a damaged database file would."""
    import sqlite3

    from sqlalchemy.exc import DatabaseError

    def broken(*_args: object, **_kwargs: object) -> str:
        raise DatabaseError("INSERT INTO dk_counters ...", {"phone": "13812345678"},
                            sqlite3.DatabaseError("database disk image is malformed"))

    monkeypatch.setattr("forms.records.allocate", broken)


def test_a_storage_failure_in_submit_is_one_error_line_naming_the_form_and_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps(COMPLAINT, ensure_ascii=False), "utf-8")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    fail_in_storage(monkeypatch)
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db", db]) == 1
    err = capsys.readouterr().err
    assert err == (f"error: storing a new complaint record from {data} failed: database disk image is "
                   f"malformed (database {db}) (--log-level debug shows the traceback)\n")


def test_a_storage_failure_in_submit_never_shows_the_sql_or_its_values(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps(COMPLAINT, ensure_ascii=False), "utf-8")
    fail_in_storage(monkeypatch)
    assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db",
                 f"sqlite:///{tmp_path / 'docket.db'}"]) == 1
    err = capsys.readouterr().err
    assert "INSERT" not in err and "13812345678" not in err and "Traceback" not in err


def test_a_storage_failure_in_submit_logs_its_traceback_at_debug(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "complaint.json"
    data.write_text(json.dumps(COMPLAINT, ensure_ascii=False), "utf-8")
    fail_in_storage(monkeypatch)
    with caplog.at_level("DEBUG", logger="docket.cli"):
        assert main(["submit", str(POSTAL), "complaint", "--data", str(data), "--db",
                     f"sqlite:///{tmp_path / 'docket.db'}", "--log-level", "debug"]) == 1
    (record,) = [r for r in caplog.records if r.name == "docket.cli"]
    assert record.exc_info is not None and "storing a new complaint record" in record.getMessage()


def test_a_storage_failure_in_import_is_one_error_line_naming_the_file_and_form(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "complaints.csv"
    rows.write_text("Key-account name,Contact person,Contact phone,When it happened,Category,What happened\r\n"
                    "华北制造,刘女士,010-66668888,2025-11-21 09:00,Late in transit,延误\r\n", "utf-8")
    fail_in_storage(monkeypatch)
    assert main(["import", str(POSTAL), "complaint", str(rows), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: importing {rows} into complaint records failed: database disk image is malformed")


def test_schema_writes_one_schema_per_kind(tmp_path: Path) -> None:
    assert main(["schema", "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert {"bundle.schema.json", "form.schema.json", "flow.schema.json", "list.schema.json"} <= set(names)
    schema = json.loads((tmp_path / "form.schema.json").read_text("utf-8"))
    assert schema["$schema"].endswith("2020-12/schema")


def test_db_upgrade_creates_the_engine_tables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", f"sqlite:///{tmp_path / 'x.db'}"]) == 0
    assert "revision" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["validate"], ["serve"], ["submit"], ["schema"], ["db"], ["db", "upgrade"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "cli.py"), *command, "--help"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and "usage: docket" in result.stdout


# ---------------------------------------------------------------- operating a server


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_database_url_that_does_not_parse_is_refused_without_echoing_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", "not a url, password s3cret"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the database URL (--db or $DOCKET_DATABASE_URL) is not a URL")
    assert "s3cret" not in err


def test_a_password_with_an_at_sign_is_refused_without_showing_any_of_it(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", "postgresql+psycopg://docket:pa@zq9@db.internal/docket"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the database URL (--db or $DOCKET_DATABASE_URL) has more than one '@': write "
                          "each @ of the password as %40")
    assert "zq9" not in err


def test_a_database_docket_does_not_run_on_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", "mysql://docket@db.internal/docket"]) == 1
    assert "error: 'mysql' is not a database Docket knows; write sqlite:///" in capsys.readouterr().err


def test_a_database_that_cannot_be_opened_is_an_error_not_a_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", f"sqlite:///{tmp_path}"]) == 1  # a folder, not a file
    assert capsys.readouterr().err == (f"error: cannot use the database sqlite:///{tmp_path}: unable to open "
                                       "database file; check the path and that its folder is writable\n")


def test_a_sqlite_folder_that_cannot_be_created_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_DATABASE_URL", raising=False)
    (tmp_path / "var").write_text("a file where the folder should be", "utf-8")
    assert main(["db", "upgrade"]) == 1  # the quick start's var/docket.db
    assert capsys.readouterr().err.startswith(f"error: cannot create the folder for the SQLite database {tmp_path / 'var'}")


def test_a_sqlite_url_naming_a_folder_that_does_not_exist_is_refused_not_created(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # sqlite:///srv/docket/docket.db (three slashes where four were meant) is srv/docket/ under the
    # service's working folder: creating it started an empty database where the real one was expected.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKET_DATABASE_URL", "sqlite:///srv/docket/docket.db")
    assert main(["db", "upgrade"]) == 1
    assert capsys.readouterr().err == (
        f"error: the folder {tmp_path / 'srv' / 'docket'} of the SQLite database does not exist (from "
        f"$DOCKET_DATABASE_URL sqlite:///srv/docket/docket.db): create it first (mkdir -p {tmp_path / 'srv' / 'docket'}), "
        "or, if /srv/docket/docket.db was meant, write four slashes: sqlite:////srv/docket/docket.db "
        "(three are a path under the folder Docket starts in)\n")
    assert not (tmp_path / "srv").exists()


def test_a_sqlite_url_with_two_slashes_is_an_error_saying_how_many_to_write(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--db", "sqlite://var/docket.db"]) == 1
    assert capsys.readouterr().err == (
        "error: a SQLite URL has no host ('var' was read as one): write three slashes before a path under "
        "the working folder (sqlite:///var/docket.db), four before a path from / (sqlite:////srv/docket/docket.db)\n")


def test_serve_without_a_secret_key_it_cannot_keep_is_an_error_before_starting_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DOCKET_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "var").write_text("a file where var/secret_key's folder should be", "utf-8")
    code = main(["serve", str(POSTAL), "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'docket.db'}"])
    assert code == 1
    assert capsys.readouterr().err.startswith(
        f"error: DOCKET_SECRET_KEY is not set and the key that stands in for it cannot be kept in "
        f"{tmp_path / 'var' / 'secret_key'}: ")
    assert not (tmp_path / "docket.db").exists()


SETTINGS = ("DOCKET_PUBLIC_URL", "DOCKET_DEMO", "DOCKET_SECURE_COOKIES", "DOCKET_OUTBOX_DRY_RUN",
            "DOCKET_SESSION_IDLE_MINUTES", "DOCKET_SESSION_HOURS", "DOCKET_API_SUBMITS_PER_MINUTE",
            "DOCKET_TRUSTED_PROXIES", "DOCKET_WEBHOOK_ALLOW_NETWORKS", "DOCKET_MAX_PENDING_UPLOADS_MB",
            "DOCKET_METRICS_TOKEN")


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any of the settings `settings_problems` reads."""
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_public_url_without_its_scheme_is_a_warning_that_it_is_ignored(settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_PUBLIC_URL", "ts.example-post.cn")
    assert settings_problems() == [
        "DOCKET_PUBLIC_URL=ts.example-post.cn is not a plain http(s) address (write it like "
        "https://ts.example-post.cn, or https://oa.example-post.cn/docket): it is ignored, so messages and "
        "QR codes carry no link to Docket"]


def test_a_switch_given_a_word_docket_does_not_read_is_a_warning_that_it_counts_as_off(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_SECURE_COOKIES", "always")
    assert settings_problems() == ["DOCKET_SECURE_COOKIES=always is not one of 1, true, yes, on, 0, false, no, off: "
                                   "it counts as off"]


def test_a_count_that_is_not_a_whole_number_is_a_warning_naming_the_default_used(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_SESSION_IDLE_MINUTES", "30m")
    assert settings_problems() == ["DOCKET_SESSION_IDLE_MINUTES=30m is not a whole number above 0: 30 is used"]


def test_a_count_in_other_digits_is_a_warning_and_the_default_not_a_crash(settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems
    from web.settings import api_submits_per_minute

    settings.setenv("DOCKET_API_SUBMITS_PER_MINUTE", "6²")  # str.isdigit() says yes; int() refuses it
    assert settings_problems() == ["DOCKET_API_SUBMITS_PER_MINUTE=6² is not a whole number above 0: 60 is used"]
    assert api_submits_per_minute() == 60


def test_a_pending_uploads_cap_that_is_not_a_whole_number_is_a_warning_naming_the_default(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_MAX_PENDING_UPLOADS_MB", "2G")
    assert settings_problems() == ["DOCKET_MAX_PENDING_UPLOADS_MB=2G is not a whole number above 0: 2048 is used"]


def test_a_trusted_proxy_given_as_a_network_is_a_warning_that_it_never_matches(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    assert settings_problems() == ["DOCKET_TRUSTED_PROXIES: '10.0.0.0/8' is not an IP address (name each "
                                   "proxy's address, not a network or a host name): it never matches"]


def test_a_webhook_allow_list_that_does_not_parse_is_a_warning_that_every_webhook_fails(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_WEBHOOK_ALLOW_NETWORKS", "10.20.0.0/33")
    (warning,) = settings_problems()
    assert warning.startswith("DOCKET_WEBHOOK_ALLOW_NETWORKS: invalid network in webhook allow-list: ")
    assert warning.endswith(": every webhook, SMS and robot message fails until it is fixed")


def test_a_server_on_postgresql_without_a_secret_key_is_warned_that_other_servers_lack_its_key(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.delenv("DOCKET_SECRET_KEY", raising=False)
    settings.setenv("DOCKET_FILES_DIR", "/srv/docket/files")
    assert settings_problems(serving="sqlite:///var/docket.db") == []  # one server: its own key is enough
    (warning,) = settings_problems(serving="postgresql+psycopg://docket@db.internal/docket")
    assert warning.startswith("DOCKET_SECRET_KEY is not set: this server signs sessions and forms with a key of its own")


def test_a_server_on_postgresql_without_a_files_folder_is_warned_that_other_servers_cannot_read_its_files(
        settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_SECRET_KEY", "the same long key on every server of this database")
    settings.delenv("DOCKET_FILES_DIR", raising=False)
    assert settings_problems(serving="sqlite:///var/docket.db") == []  # files/ beside the database file
    (warning,) = settings_problems(serving="postgresql+psycopg://docket@db.internal/docket")
    assert warning.startswith("DOCKET_FILES_DIR is not set: uploaded files are kept in var/files on this server")


def test_the_settings_of_the_server_guide_raise_no_warning(settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    guide = (ROOT / "docs" / "guides" / "run-on-a-server.md").read_text("utf-8")
    for name, value in re.findall(r"^(DOCKET_[A-Z_]+)=(\S+)$", guide, re.M):
        if name in SETTINGS:
            settings.setenv(name, value)
    assert os.environ["DOCKET_PUBLIC_URL"] and settings_problems() == []


def test_serve_prints_each_setting_it_ignores_as_a_warning_line(
        tmp_path: Path, settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    settings.setenv("DOCKET_SECURE_COOKIES", "always")
    settings.setenv("DOCKET_SECRET_KEY", "test")
    settings.setattr(uvicorn, "run", lambda *args, **kwargs: None)  # started, and stopped at once
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # serve sets its own
    try:
        assert main(["serve", str(POSTAL), "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'd.db'}",
                     "--no-demo", "--no-scheduler"]) == 0
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)
    assert "warning: DOCKET_SECURE_COOKIES=always is not one of" in capsys.readouterr().err


def test_db_upgrade_of_a_database_a_newer_docket_migrated_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    with sqlite3.connect(tmp_path / "docket.db") as conn:
        conn.execute("UPDATE dk_alembic_version SET version_num = '9999'")
    capsys.readouterr()
    assert main(["db", "upgrade", "--db", url]) == 1
    err = capsys.readouterr().err
    # which database, too: on a server with a staging and a production URL, the first question
    assert err.startswith(f"error: {url}: the database's engine tables are at revision 9999, which this Docket "
                          "does not know")
    assert err.count("\n") == 1


def test_serve_refuses_a_port_in_use_before_starting_anything(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", str(POSTAL), "--port", str(port), "--db", f"sqlite:///{tmp_path / 'docket.db'}"])
    assert code == 1
    out, err = capsys.readouterr()
    assert err == (f"error: port {port} on 127.0.0.1 is already in use (another Docket, or another server?); "
                   "stop it or choose another with --port\n")
    assert "open:" not in out and not (tmp_path / "docket.db").exists()  # nothing seeded or started


def test_serve_refuses_a_files_folder_it_cannot_write(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the folder should be", "utf-8")
    monkeypatch.setenv("DOCKET_FILES_DIR", str(blocker / "files"))
    code = main(["serve", str(POSTAL), "--port", str(free_port()), "--db", f"sqlite:///{tmp_path / 'docket.db'}"])
    assert code == 1
    assert capsys.readouterr().err.startswith(f"error: uploaded files cannot be stored in {blocker / 'files'}")
    assert not (tmp_path / "docket.db").exists()


def worker_stopped_by_sigterm(tmp_path: Path, log_level: str) -> tuple[str, str]:
    """(standard output, standard error) of `docket worker` on the postal bundle, started in
    `tmp_path` and sent SIGTERM once it says it runs; it must then exit 0."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), "worker", str(POSTAL), "--db", f"sqlite:///{tmp_path / 'w.db'}",
             "--log-level", log_level], stdout=stdout, stderr=stderr, cwd=tmp_path)
        try:
            deadline = time.monotonic() + 90  # waits for the process to start; no behaviour is timed
            while "Ctrl+C stops" not in out.read_text() and worker.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
    return out.read_text(), err.read_text()


def test_worker_logs_at_its_log_level_and_stops_on_sigterm(tmp_path: Path) -> None:
    _, log = worker_stopped_by_sigterm(tmp_path, "info")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ INFO engine.scheduler: scheduler started", log, re.M), log


def test_a_stopped_server_leaves_one_self_contained_database_file(tmp_path: Path) -> None:
    import http.client

    port = free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), "serve", str(POSTAL), "--db", f"sqlite:///{tmp_path / 'd.db'}",
             "--port", str(port), "--no-demo", "--log-level", "warning"], stdout=stdout, stderr=subprocess.DEVNULL,
            cwd=tmp_path, env={**os.environ, "DOCKET_SECRET_KEY": "test"})
        try:
            deadline = time.monotonic() + 90
            while "open:" not in out.read_text() and server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            for _ in range(150):  # "open:" is printed just before the server listens
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                try:
                    conn.request("POST", "/api/v1/forms/complaint/records", json.dumps(COMPLAINT).encode(),
                                 {"Content-Type": "application/json"})
                    break
                except ConnectionRefusedError:
                    time.sleep(0.2)
            assert conn.getresponse().status == 201
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=60) == 0
        finally:
            if server.poll() is None:
                server.kill()
    assert not (tmp_path / "d.db-wal").exists()
    alone = tmp_path / "copy.db"  # what `cp d.db` gives: the file without a WAL beside it
    shutil.copy(tmp_path / "d.db", alone)
    with sqlite3.connect(alone) as copy:
        assert copy.execute("SELECT count(*) FROM rec_complaint").fetchone() == (1,)


def test_serve_writes_where_it_serves_before_it_stops_even_to_a_pipe(tmp_path: Path) -> None:
    """Under systemd stdout is a pipe to the journal: the start lines must be there while it runs."""
    import http.client

    port = free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "cli.py"), "serve", str(POSTAL), "--db", f"sqlite:///{tmp_path / 'd.db'}",
             "--port", str(port), "--no-demo", "--log-level", "warning"], stdout=stdout, stderr=subprocess.DEVNULL,
            cwd=tmp_path, env={**{k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},
                               "DOCKET_SECRET_KEY": "test"})
        try:
            deadline = time.monotonic() + 90
            while server.poll() is None and time.monotonic() < deadline:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    conn.request("GET", "/healthz")
                    if conn.getresponse().status == 200:
                        break
                except ConnectionRefusedError:
                    time.sleep(0.2)
            written = out.read_text()
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            finally:
                if server.poll() is None:
                    server.kill()
    assert "Docket is serving" in written and f"open:     http://localhost:{port}/" in written


def test_an_error_the_application_answered_with_a_reference_is_not_raised_again_to_the_server() -> None:
    import asyncio

    from cli import _logged_once
    from web.app import ANSWERED

    async def answered(scope: object, receive: object, send: object) -> None:
        exc = RuntimeError("logged and answered with a reference")
        setattr(exc, ANSWERED, True)
        raise exc

    asyncio.run(_logged_once(answered)({}, None, None))  # uvicorn would log it a second time


def test_an_error_the_application_did_not_answer_still_reaches_the_server() -> None:
    import asyncio

    from cli import _logged_once

    async def crashed(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("nobody answered")

    with pytest.raises(RuntimeError, match="nobody answered"):
        asyncio.run(_logged_once(crashed)({}, None, None))


def test_a_second_stop_signal_while_the_server_closes_waits_for_the_close(
        caplog: pytest.LogCaptureFixture) -> None:
    from cli import _hold_stop_signals

    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _hold_stop_signals()
        with caplog.at_level("WARNING", logger="docket"):
            signal.raise_signal(signal.SIGTERM)  # the default action would end this process
            signal.raise_signal(signal.SIGINT)  # and this one raise KeyboardInterrupt
        assert [r.getMessage() for r in caplog.records] == ["already stopping: closing the database first"] * 2
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler)


def test_a_reader_that_stops_reading_the_output_gets_no_error_message(tmp_path: Path) -> None:
    """`docket users list | head -1`: what is left to print goes nowhere, quietly."""
    url = f"sqlite:///{tmp_path / 'd.db'}"
    assert main(["db", "upgrade", "--db", url]) == 0
    read, write = os.pipe()
    os.close(read)  # the reader is gone before anything is written
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "tokens", "list", "--db", url],
                              stdout=write, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    finally:
        os.close(write)
    assert done.stderr == "" and done.returncode == 141


def test_docket_help_gives_examples_and_the_environment_a_server_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    assert "examples:\n  docket new my_process" in out and "\n  docket validate definitions/postal_complaints\n" in out
    for variable in ("DOCKET_DATABASE_URL", "DOCKET_SECRET_KEY", "DOCKET_FILES_DIR", "DOCKET_OUTBOX_DRY_RUN"):
        assert f"\n  {variable} " in out


def test_docket_help_names_every_environment_variable_the_code_reads(capsys: pytest.CaptureFixture[str]) -> None:
    root = Path(__file__).resolve().parents[1]
    sources = [root / "cli.py", *(path for folder in ("engine", "forms", "flows", "rules", "reports", "web")
                                  for path in (root / folder).rglob("*.py"))]
    read = {name for path in sources for name in re.findall(r"[\"'](DOCKET_[A-Z_]+)[\"']", path.read_text("utf-8"))}
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert len(read) > 10
    assert sorted(name for name in read if name not in out) == []


def test_serve_help_gives_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "examples:\n  docket serve " in out and "--log-level" in out and "SIGTERM" in out


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command words, parser) of `docket`, nested ones (`db upgrade`) included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield path + (name,), child
                yield from subcommands(child, path + (name,))


def db_options() -> dict[str, argparse.Action]:
    """The --db option of every command that has one, by command words (`db upgrade`)."""
    return {" ".join(words): action for words, parser in subcommands(build_parser())
            for action in parser._actions if "--db" in action.option_strings}


@pytest.mark.parametrize("command", sorted(db_options()))
def test_every_db_option_names_its_default_and_postgresql(command: str) -> None:
    help_text = db_options()[command].help or ""
    assert "sqlite:///var/docket.db" in help_text and "postgresql+psycopg://" in help_text


def test_validate_says_a_bundle_folder_that_does_not_exist_does_not_exist(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "does not exist" in err and "no bundle.yaml" not in err


def test_a_bundle_outside_the_working_folder_is_named_by_its_absolute_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "srv" / "docket").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "srv" / "docket")  # a service's WorkingDirectory
    assert main(["validate", str(tmp_path / "opt" / "postal_complaint")]) == 1
    assert f"{tmp_path / 'opt' / 'postal_complaint'}:1:1: error: the folder '{tmp_path / 'opt' / 'postal_complaint'}' " \
           "does not exist" in capsys.readouterr().err


def test_validate_given_bundle_yaml_itself_names_its_folder(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(POSTAL / "bundle.yaml")]) == 1
    err = capsys.readouterr().err
    assert "is a file, not a bundle folder" in err and f"give the folder holding it: {os.path.relpath(POSTAL)}" in err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"docket {version('docket')}"


def test_a_relative_sqlite_file_is_shown_from_the_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # "sqlite:///var/docket.db" did not say which folder var/ is in: a service's working folder
    # is often not the one the operator thought.
    from cli import _safe_url

    monkeypatch.chdir(tmp_path)
    assert _safe_url("sqlite:///var/docket.db") == f"sqlite:///{tmp_path / 'var' / 'docket.db'}"
    assert _safe_url("postgresql+psycopg://u:secret@db/x") == "postgresql+psycopg://u:***@db/x"


def test_test_and_simulate_leave_the_callers_logging_as_they_found_it(capsys: pytest.CaptureFixture[str]) -> None:
    """`docket test` quieted the outbox's log for good: a program (or test) that ran it in-process
    lost every later outbox warning."""
    import logging

    from cli import STARTER_BUNDLE

    outbox, demo = logging.getLogger("engine.outbox"), logging.getLogger("reports.demo")
    outbox.setLevel(logging.INFO)
    try:
        assert main(["test", str(STARTER_BUNDLE)]) == 0
        assert main(["simulate", str(STARTER_BUNDLE), "--records", "3", "--days", "1"]) == 0
        assert (outbox.level, demo.level) == (logging.INFO, logging.NOTSET)
    finally:
        outbox.setLevel(logging.NOTSET)
    capsys.readouterr()



@pytest.mark.parametrize("port", ["80000", "-1", "eighty"])
def test_a_port_out_of_range_is_a_usage_error_not_a_traceback(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --port 80000 ended in "OverflowError: bind(): port must be 0-65535." under a traceback, and
    # --port -1 in "cannot listen on --host 127.0.0.1: Servname not supported for ai_socktype".
    with pytest.raises(SystemExit) as stopped:
        main(["serve", str(POSTAL), "--port", port])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"docket serve: error: argument --port: {port} is not a port: give a number from 1 to 65535\n")


def test_a_short_metrics_token_is_warned_of(settings: pytest.MonkeyPatch) -> None:
    from cli import settings_problems

    settings.setenv("DOCKET_METRICS_TOKEN", "prom")
    (problem,) = settings_problems()
    assert problem.startswith("DOCKET_METRICS_TOKEN has only 4 characters: whoever guesses it")
