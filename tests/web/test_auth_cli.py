"""`docket users ...` and the demo users' password printed by `docket serve`."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import select

import cli
from engine.storage.db import create_engine, read_transaction
from engine.storage.tables import audit_log, users
from web.auth import demo_mode, verify_password

from tests.web.auth_kit import POSTAL

COMPLAINT = {"customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
             "occurred_at": "2026-11-20T10:30:00+08:00", "category": "damage_goods",
             "description": "三箱货物内件破损", "amount_claimed": "1200.00", "region": "east"}


def password_hash(url: str, username: str) -> str | None:
    engine = create_engine(url)
    try:
        with read_transaction(engine) as conn:
            return conn.execute(select(users.c.password_hash).where(users.c.username == username)).scalar()
    finally:
        engine.dispose()


def run(monkeypatch: pytest.MonkeyPatch, argv: list[str], stdin: str = "") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(argv)


def test_users_add_creates_a_user_with_roles_and_a_password(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "add", "liu", "--name", "刘客服", "--role", "agent", "--department", "service",
                             "--password-stdin", "--bundle", str(POSTAL), "--db", sqlite_url],
               "a long enough passphrase\n")
    assert code == 0
    assert verify_password(password_hash(sqlite_url, "liu"), "a long enough passphrase")
    assert run(monkeypatch, ["users", "list", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    listed = capsys.readouterr().out
    assert any(line.startswith("liu ") and "agent" in line and "password set" in line for line in listed.splitlines())


def test_users_add_refuses_an_unknown_role_saying_which_exist(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "add", "liu", "--role", "emperor", "--no-password",
                             "--bundle", str(POSTAL), "--db", sqlite_url])
    assert code == 1
    assert "unknown role 'emperor' (roles: agent, " in capsys.readouterr().err


def test_users_add_refuses_an_email_that_is_no_address_as_the_admin_page_does(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # --email wang.li.example-post.cn was stored, and every message to her failed later.
    code = run(monkeypatch, ["users", "add", "wang.li", "--name", "王丽", "--role", "agent", "--no-password",
                             "--email", "wang.li.example-post.cn", "--bundle", str(POSTAL), "--db", sqlite_url])
    assert code == 1
    assert capsys.readouterr().err == "--email wang.li.example-post.cn: not an e-mail address; nothing was changed\n"
    assert run(monkeypatch, ["users", "list", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert "wang.li" not in capsys.readouterr().out


def test_set_password_sets_it_and_audits_it(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    code = run(monkeypatch, ["users", "set-password", "supervisor", "--password-stdin",
                             "--bundle", str(POSTAL), "--db", sqlite_url], "another long passphrase\n")
    assert code == 0
    assert verify_password(password_hash(sqlite_url, "supervisor"), "another long passphrase")
    engine = create_engine(sqlite_url)
    with read_transaction(engine) as conn:
        actions = [tuple(r) for r in conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target))]
    engine.dispose()
    assert ("cli", "user.password", "supervisor") in actions


def test_a_password_handed_to_someone_is_temporary_with_temporary(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "add", "liu", "--role", "agent", "--password-stdin", "--temporary",
                             "--bundle", str(POSTAL), "--db", sqlite_url], "a long enough passphrase\n")
    assert code == 0 and run(monkeypatch, ["users", "list", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert any(line.startswith("liu ") and "[temporary password]" in line for line in capsys.readouterr().out.splitlines())


def test_set_password_without_temporary_is_the_users_own(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    for flags in (["--temporary"], []):
        assert run(monkeypatch, ["users", "set-password", "supervisor", "--password-stdin", *flags,
                                 "--bundle", str(POSTAL), "--db", sqlite_url], "another long passphrase\n") == 0
    assert run(monkeypatch, ["users", "list", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith("supervisor ")]
    assert "[password set]" in line


def test_set_password_refuses_a_short_one(monkeypatch: pytest.MonkeyPatch, sqlite_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "set-password", "supervisor", "--password-stdin",
                             "--bundle", str(POSTAL), "--db", sqlite_url], "short\n")
    assert code == 1 and "at least 12 characters" in capsys.readouterr().err


def test_set_password_of_an_unknown_user_fails_clearly(monkeypatch: pytest.MonkeyPatch, sqlite_url: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "set-password", "nobody", "--password-stdin",
                             "--bundle", str(POSTAL), "--db", sqlite_url], "a long enough passphrase\n")
    assert code == 1 and "no user 'nobody'" in capsys.readouterr().err


# -- demo mode ---------------------------------------------------------------------------------

def test_demo_mode_is_on_for_the_quick_start_database_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_DEMO", raising=False)
    assert demo_mode(None, "sqlite:///var/docket.db", True)
    assert not demo_mode(None, "sqlite:///var/docket.db", False)
    assert not demo_mode(None, f"sqlite:///{tmp_path / 'elsewhere.db'}", True)
    assert not demo_mode(None, "postgresql+psycopg://u@db/docket", True)
    assert demo_mode(True, "postgresql+psycopg://u@db/docket", True)
    assert not demo_mode(False, "sqlite:///var/docket.db", True)
    monkeypatch.setenv("DOCKET_DEMO", "0")
    assert not demo_mode(None, "sqlite:///var/docket.db", True)
    monkeypatch.setenv("DOCKET_DEMO", "1")
    assert demo_mode(None, "postgresql+psycopg://u@db/docket", True)


def test_serve_gives_passwordless_demo_users_the_printed_password(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from web.system import boot

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_DEMO", raising=False)
    url = "sqlite:///var/docket.db"
    (tmp_path / "var").mkdir()
    system = boot(POSTAL, db_url=url)
    cli._print_demo_users(system, url, None)
    out = capsys.readouterr().out
    password = (tmp_path / "var" / "demo_password").read_text("utf-8")
    assert f"password: {password}" in out and "    agent " in out
    assert (tmp_path / "var" / "demo_password").stat().st_mode & 0o077 == 0
    assert verify_password(password_hash(url, "agent"), password)
    cli._print_demo_users(system, url, None)  # a restart prints the same password
    assert f"password: {password}" in capsys.readouterr().out
    system.db.dispose()


def test_serve_outside_demo_mode_gives_no_password(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from web.system import boot

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_DEMO", raising=False)
    system = boot(POSTAL, db_url=sqlite_url)
    cli._print_demo_users(system, sqlite_url, None)
    assert "`docket users deactivate --demo`" in capsys.readouterr().out
    assert password_hash(sqlite_url, "agent") is None
    system.db.dispose()


def test_serve_outside_demo_mode_lists_no_demo_user_once_they_are_deactivated(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from web.system import boot

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_DEMO", raising=False)
    assert run(monkeypatch, ["users", "deactivate", "--demo", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    capsys.readouterr()
    system = boot(POSTAL, db_url=sqlite_url)
    cli._print_demo_users(system, sqlite_url, None)
    assert capsys.readouterr().out == ""
    system.db.dispose()


# -- deactivating accounts -----------------------------------------------------------------------

def is_active(url: str, username: str) -> bool:
    engine = create_engine(url)
    try:
        with read_transaction(engine) as conn:
            return bool(conn.execute(select(users.c.is_active).where(users.c.username == username)).scalar())
    finally:
        engine.dispose()


def test_users_deactivate_demo_deactivates_every_demo_user_of_the_bundle_and_audits_it(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(monkeypatch, ["users", "add", "wang.li", "--role", "admin", "--no-password",
                             "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert run(monkeypatch, ["users", "deactivate", "--demo", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("deactivated: agent, supervisor, manager, ")
    assert not is_active(sqlite_url, "agent") and not is_active(sqlite_url, "admin")
    assert is_active(sqlite_url, "wang.li")
    engine = create_engine(sqlite_url)
    with read_transaction(engine) as conn:
        actions = {tuple(r) for r in conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target))}
    engine.dispose()
    assert ("cli", "user.deactivated", "agent") in actions


def test_users_deactivate_warns_of_the_open_tasks_a_user_still_holds(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from sqlalchemy import select

    from engine.storage.tables import tasks
    from web.system import boot

    system = boot(POSTAL, db_url=sqlite_url)
    record = system.forms.submit("complaint", COMPLAINT, actor="agent")
    with read_transaction(system.db) as conn:
        task_id = conn.execute(select(tasks.c.id).where(tasks.c.record_id == record.record_id)).scalar()
    system.flows.claim(task_id, "agent")
    system.db.dispose()
    assert run(monkeypatch, ["users", "deactivate", "--demo", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: agent holds 1 open task(s), which wait until someone reassigns them: an administrator hands "
        "them all over on /admin/users/agent"]


def test_deactivating_the_last_administrator_who_can_sign_in_warns_how_to_undo_it(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    # It said only "deactivated: wang.li": nobody could open /admin any more, unsaid.
    assert run(monkeypatch, ["users", "add", "wang.li", "--name", "王丽", "--role", "admin", "--password-stdin",
                             "--bundle", str(POSTAL), "--db", sqlite_url], "a long enough passphrase\n") == 0
    capsys.readouterr()
    assert run(monkeypatch, ["users", "deactivate", "wang.li", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "warning: no active administrator has a password now: nobody can sign in to /admin until "
        "`docket users activate wang.li` (or `docket users add NAME --role admin`)"]


def test_users_activate_undoes_a_deactivation(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    assert run(monkeypatch, ["users", "deactivate", "agent", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert run(monkeypatch, ["users", "activate", "agent", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert is_active(sqlite_url, "agent")


def test_users_deactivate_of_an_unknown_user_changes_nothing(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(monkeypatch, ["users", "deactivate", "agent", "nobody", "--bundle", str(POSTAL), "--db", sqlite_url])
    assert code == 1 and "no user 'nobody'; nothing was changed" in capsys.readouterr().err
    assert is_active(sqlite_url, "agent")
