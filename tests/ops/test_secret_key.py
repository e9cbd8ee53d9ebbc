"""The key Docket keeps in var/secret_key when DOCKET_SECRET_KEY is not set: made once, kept
across restarts, readable by its owner only, and never empty (an empty key would let anyone
sign a session cookie)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from web.settings import secret_key


@pytest.fixture
def started_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A server's working folder, without DOCKET_SECRET_KEY."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DOCKET_SECRET_KEY", raising=False)
    return tmp_path


def test_the_first_start_keeps_a_key_only_its_owner_reads_and_later_starts_use_it(started_in: Path) -> None:
    first = secret_key()
    kept = started_in / "var" / "secret_key"
    assert len(first) >= 32 and kept.read_text("utf-8") == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert secret_key() == first
    assert [p.name for p in kept.parent.iterdir()] == ["secret_key"]  # nothing half written left beside it


def test_an_empty_key_file_is_replaced_by_a_new_key_not_used(started_in: Path) -> None:
    kept = started_in / "var" / "secret_key"
    kept.parent.mkdir()
    kept.write_text("\n", "utf-8")  # the machine stopped as the key was first written
    key = secret_key()
    assert len(key) >= 32 and kept.read_text("utf-8") == key and secret_key() == key
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_docket_secret_key_wins_over_the_kept_key(started_in: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_key()
    monkeypatch.setenv("DOCKET_SECRET_KEY", "k" * 48)
    assert secret_key() == "k" * 48
