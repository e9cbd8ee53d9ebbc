"""Files on disk: content-addressed under a server-chosen path, hashed and counted as they
stream, refused the moment they pass their limit, deduplicated, with harmless display names."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from forms.attachments.errors import UploadRefused
from forms.attachments.kinds import FILE_TYPES
from forms.attachments.limits import DEFAULT_LIMITS, MB, Limits
from forms.attachments.names import display_name
from forms.attachments.store import FileStore
from tests.forms.test_attachments_kit import jpeg, pdf, png


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files")


def stored_files(store: FileStore) -> list[Path]:
    return sorted(p for p in store.root.rglob("*")
                  if p.is_file() and p.relative_to(store.root).parts[0] != "tmp")


def test_a_file_is_stored_under_its_sha256(store: FileStore) -> None:
    data = png(2, 2)
    kept = store.save(data, "photo.png", DEFAULT_LIMITS)
    digest = hashlib.sha256(data).hexdigest()
    assert kept.sha256 == digest and kept.size == len(data) and kept.type == "png"
    assert kept.path == store.root / digest[:2] / digest[2:4] / digest
    assert kept.path.read_bytes() == data


def test_the_recorded_checksum_verifies_and_a_changed_file_does_not(store: FileStore) -> None:
    kept = store.save(pdf(), "a.pdf", DEFAULT_LIMITS)
    assert store.verify(kept.sha256, kept.size)
    kept.path.write_bytes(pdf(b"tampered"))
    assert not store.verify(kept.sha256)


def test_a_path_in_the_file_name_never_becomes_a_path(store: FileStore, tmp_path: Path) -> None:
    kept = store.save(jpeg(), "../../x.jpg", DEFAULT_LIMITS)
    assert kept.name == "x.jpg"
    assert [p.name for p in stored_files(store)] == [kept.sha256]
    assert not (tmp_path / "x.jpg").exists() and not (tmp_path.parent / "x.jpg").exists()


def test_identical_content_is_kept_once(store: FileStore) -> None:
    first = store.save(png(), "a.png", DEFAULT_LIMITS)
    second = store.save(png(), "b.png", DEFAULT_LIMITS)
    assert first.created and not second.created
    assert first.path == second.path and len(stored_files(store)) == 1
    assert (first.name, second.name) == ("a.png", "b.png")


def test_an_oversized_stream_is_refused_as_soon_as_it_passes_the_limit(store: FileStore) -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"\x00" * (64 * 1024)

    limits = Limits(types=DEFAULT_LIMITS.types, max_bytes=1 * MB)
    with pytest.raises(UploadRefused) as caught:
        store.save(endless(), "big.bin", limits)
    assert caught.value.code == "too_large" and caught.value.status == 413
    assert pulled == 17  # 16 chunks fill the megabyte; the 17th is one byte too many
    assert list(store.root.rglob("*upload*")) == []


def test_a_refused_file_leaves_nothing_behind(store: FileStore) -> None:
    with pytest.raises(UploadRefused):
        store.save(b"<html><script>alert(1)</script></html>", "page.html", DEFAULT_LIMITS)
    assert stored_files(store) == [] and list((store.root / "tmp").iterdir()) == []


def test_a_full_disk_names_the_files_folder_and_leaves_no_partial_file(store: FileStore) -> None:
    # The server logged "the disk refused: No space left on device" without saying which disk:
    # the operating system names no file for a write that finds the disk full.
    import errno
    import os

    class FullDisk:
        def write(self, _chunk: bytes) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            pass

    incoming = store.begin(DEFAULT_LIMITS)
    incoming._file.close()  # type: ignore[union-attr]
    incoming._file = FullDisk()  # type: ignore[assignment]
    with pytest.raises(OSError) as refused:
        with incoming:
            incoming.write(png(2, 2))
    assert refused.value.errno == errno.ENOSPC and refused.value.filename == str(incoming.temp_path)
    assert not incoming.temp_path.exists()


def test_a_file_object_is_read_in_chunks(store: FileStore, tmp_path: Path) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(pdf(b"x" * 600_000))
    with open(source, "rb") as f:
        kept = store.save(f, "in.pdf", DEFAULT_LIMITS)
    assert kept.size == 600_000 + len(pdf(b""))


def test_only_a_sha256_opens_a_stored_file(store: FileStore) -> None:
    kept = store.save(png(), "a.png", DEFAULT_LIMITS)
    with store.open(kept.sha256) as f:
        assert f.read() == png()
    for bad in ("../../etc/passwd", kept.sha256.upper(), kept.sha256[:-1] + "/"):
        with pytest.raises(ValueError):
            store.open(bad)


@pytest.mark.parametrize(("raw", "kind", "shown"), [
    ("../../x.jpg", "jpeg", "x.jpg"),
    ("..\\..\\windows\\x.JPG", "jpeg", "x.jpg"),
    ("photo.html", "png", "photo.png"),
    ("invoice\u202egpj.exe", "pdf", "invoicegpj.pdf"),
    ("  ..hidden.pdf", "pdf", "hidden.pdf"),
    ("a<b>:c|d?.pdf", "pdf", "a_b__c_d_.pdf"),
    ("", "pdf", "file.pdf"),
    ("....", "pdf", "file.pdf"),
    ("v1.2 final", "docx", "v1.2 final.docx"),
    ("报告\x00\n.docx", "docx", "报告.docx"),
])
def test_display_names_are_made_harmless(raw: str, kind: str, shown: str) -> None:
    assert display_name(raw, FILE_TYPES[kind]) == shown


def test_display_names_are_bounded() -> None:
    name = display_name("长" * 1000 + ".pdf", FILE_TYPES["pdf"])
    assert len(name) == 200 and name.endswith(".pdf")
