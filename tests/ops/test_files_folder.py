"""`docket serve` says at start when the files folder holds none of the uploads its database
names (a few checked): DOCKET_FILES_DIR mistyped (/srv/docket/file) was created empty and served, every
photo and document of every complaint missing, and new uploads went there."""

from __future__ import annotations

from pathlib import Path

from cli import files_missing
from engine.storage.db import transaction
from forms.attachments.limits import DEFAULT_LIMITS
from forms.attachments.service import AttachmentService
from forms.attachments.store import FileStore
from tests.forms.test_attachments_kit import boot_claims, pdf


def test_a_files_folder_holding_none_of_the_newest_uploads_is_named_at_start(tmp_path: Path) -> None:
    system, service = boot_claims(tmp_path, tmp_path / "files")
    value = service.upload(pdf(b"waybill"), "waybill.pdf", actor=None, limits=DEFAULT_LIMITS)
    with transaction(system.db) as conn:
        service.link(conn, [value["id"]], "claim", 7, "evidence")
    assert files_missing(system) is None

    AttachmentService(system.runtime, FileStore(tmp_path / "file"))  # the folder as mistyped
    assert files_missing(system) == (
        f"none of 1 uploaded files the database names is in {tmp_path / 'file'}: their "
        "records will show them missing; is DOCKET_FILES_DIR the folder they were stored in?")


def test_a_database_without_uploads_says_nothing_of_the_files_folder(tmp_path: Path) -> None:
    system, _ = boot_claims(tmp_path, tmp_path / "files")
    assert files_missing(system) is None
