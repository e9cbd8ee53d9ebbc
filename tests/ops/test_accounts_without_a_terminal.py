"""Accounts made from a script, cron or `ssh host docket-admin ...` (no terminal): the password
prompt cannot be shown, so the command says to pipe it in with --password-stdin instead of
failing with a traceback, and a name that is taken (or unknown) is said before any password is
asked for."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import cli

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"


def run_without_a_terminal(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a TTY, and empty
    return cli.main(argv)


def test_adding_a_user_without_a_terminal_says_to_use_password_stdin(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_without_a_terminal(monkeypatch, ["users", "add", "wang.li", "--role", "admin",
                                                "--bundle", str(POSTAL), "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 1 and "--password-stdin" in err and "Traceback" not in err
    assert run_without_a_terminal(monkeypatch, ["users", "list", "--bundle", str(POSTAL), "--db", sqlite_url]) == 0
    assert "wang.li" not in capsys.readouterr().out


def test_setting_a_password_without_a_terminal_says_to_use_password_stdin(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_without_a_terminal(monkeypatch, ["users", "set-password", "agent",
                                                "--bundle", str(POSTAL), "--db", sqlite_url])
    assert code == 1 and "pipe it in with --password-stdin" in capsys.readouterr().err


def test_a_taken_user_name_is_refused_before_a_password_is_asked_for(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_without_a_terminal(monkeypatch, ["users", "add", "agent", "--role", "agent",
                                                "--bundle", str(POSTAL), "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 1 and "user 'agent' exists already" in err and "password" not in err


def test_an_unknown_user_is_named_before_a_new_password_is_asked_for(
        monkeypatch: pytest.MonkeyPatch, sqlite_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_without_a_terminal(monkeypatch, ["users", "set-password", "nobody",
                                                "--bundle", str(POSTAL), "--db", sqlite_url])
    err = capsys.readouterr().err
    assert code == 1 and "no user 'nobody'" in err and "terminal" not in err
