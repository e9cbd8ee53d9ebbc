"""Sweeping uploads nothing uses: abandoned pending uploads are forgotten after a while, and a
stored file goes only when no upload uses it and nothing touched it for as long."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.errors import NotFoundError
from engine.storage.db import transaction
from forms.attachments import AttachmentService
from forms.attachments.limits import DEFAULT_LIMITS
from tests.forms.test_attachments_kit import boot_claims, pdf, png
from web.system import System

WEEK = timedelta(days=7)


@pytest.fixture
def claims(tmp_path: Path) -> tuple[System, AttachmentService]:
    return boot_claims(tmp_path, tmp_path / "files")


def age(service: AttachmentService, sha256: str, days: float) -> None:
    """Make the stored file look untouched for `days`."""
    past = time.time() - days * 86400
    os.utime(service.store.path_of(sha256), (past, past))


def later(system: System, days: float) -> None:
    clock = system.runtime.clock
    assert isinstance(clock, ManualClock)
    clock.advance(timedelta(days=days))


def test_an_upload_never_attached_is_forgotten_with_its_file_after_the_period(
        claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    later(system, 8)
    age(service, value["sha256"], 8)
    rows, swept = service.sweep(WEEK)
    assert (rows, swept.files) == (1, 1) and swept.bytes > 0
    with pytest.raises(NotFoundError):
        service.get(value["id"])
    assert not service.store.exists(value["sha256"])


def test_a_recent_upload_is_kept(claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    later(system, 2)
    rows, swept = service.sweep(WEEK)
    assert (rows, swept.files) == (0, 0) and service.store.exists(value["sha256"])


def test_an_attached_upload_is_kept_however_old(claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    value = service.upload(png(), "p.png", actor=None, limits=DEFAULT_LIMITS)
    with transaction(system.db) as conn:
        service.link(conn, [value["id"]], "claim", 7, "evidence")
    later(system, 400)
    age(service, value["sha256"], 400)
    assert service.sweep(WEEK)[1].files == 0
    assert service.get(value["id"])["status"] == "linked" and service.store.exists(value["sha256"])


def test_a_file_shared_with_an_attached_upload_stays_when_the_abandoned_one_goes(
        claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    kept = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    abandoned = service.upload(pdf(), "copy.pdf", actor=None, limits=DEFAULT_LIMITS)
    with transaction(system.db) as conn:
        service.link(conn, [kept["id"]], "claim", 7, "evidence")
    later(system, 8)
    age(service, kept["sha256"], 8)
    rows, swept = service.sweep(WEEK)
    assert (rows, swept.files) == (1, 0) and service.store.exists(kept["sha256"])
    with pytest.raises(NotFoundError):
        service.get(abandoned["id"])


def test_a_file_an_upload_shared_a_moment_ago_is_kept(claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    old = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    later(system, 8)
    age(service, old["sha256"], 8)
    fresh = service.upload(pdf(), "again.pdf", actor=None, limits=DEFAULT_LIMITS)  # same bytes: touches it
    rows, swept = service.sweep(WEEK)
    assert (rows, swept.files) == (1, 0)
    assert service.get(fresh["id"])["status"] == "pending" and service.store.exists(fresh["sha256"])


def test_an_unfinished_upload_left_by_a_crash_is_removed(claims: tuple[System, AttachmentService]) -> None:
    _system, service = claims
    leftover = service.store.root / "tmp" / "upload-crashed"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"half a photo")
    past = time.time() - 8 * 86400
    os.utime(leftover, (past, past))
    assert service.sweep(WEEK)[1].temporary == 1 and not leftover.exists()


def test_docket_files_sweep_reports_what_it_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    postal = Path(__file__).resolve().parents[2] / "definitions" / "postal_complaints"
    assert main(["files", "sweep", str(postal), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 0
    assert capsys.readouterr().out.startswith("removed 0 upload(s) never attached to a record within 7d, "
                                              "0 stored file(s) nothing uses (0.0 MB) and 0 unfinished upload(s)")


def test_docket_files_sweep_refuses_a_period_it_cannot_read(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    assert main(["files", "sweep", "--older-than", "soon", "--db", f"sqlite:///{tmp_path / 'd.db'}"]) == 1
    assert "--older-than: 'soon' is not a duration" in capsys.readouterr().err
