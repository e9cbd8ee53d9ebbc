"""AttachmentService: uploads become pending rows with their checksum; `link` binds them to one
record inside the caller's transaction and never to a second one."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.errors import NotFoundError, ValidationFailed
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import attachments
from forms.attachments import AttachmentService, UploadRefused
from forms.attachments.limits import DEFAULT_LIMITS, MB
from tests.forms.test_attachments_kit import boot_claims, jpeg, pdf, png
from web.system import System


@pytest.fixture
def claims(tmp_path: Path) -> tuple[System, AttachmentService]:
    return boot_claims(tmp_path, tmp_path / "files")


@pytest.fixture
def service(claims: tuple[System, AttachmentService]) -> AttachmentService:
    return claims[1]


def rows(service: AttachmentService) -> list[dict]:
    with read_transaction(service.rt.db) as conn:
        return [dict(r) for r in conn.execute(select(attachments).order_by(attachments.c.created_at)).mappings()]


def test_an_upload_is_recorded_as_pending_with_its_checksum(service: AttachmentService) -> None:
    data = png(4, 4)
    value = service.upload(data, "../../x.png", "image/svg+xml", actor="alice", limits=DEFAULT_LIMITS)
    (row,) = rows(service)
    assert value == {"id": row["id"], "name": "x.png", "size": len(data), "type": "png",
                     "sha256": hashlib.sha256(data).hexdigest()}
    assert (row["status"], row["media_type"], row["created_by"], row["sha256"]) == (
        "pending", "image/png", "alice", value["sha256"])
    assert service.store.verify(row["sha256"], row["size"])


def test_ids_are_random_tokens_even_for_identical_content(service: AttachmentService) -> None:
    first = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    second = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    assert first["id"] != second["id"] and len(first["id"]) == 32
    assert first["sha256"] == second["sha256"]
    assert len([p for p in service.store.root.rglob(first["sha256"])]) == 1


def test_a_refused_upload_records_nothing(service: AttachmentService) -> None:
    with pytest.raises(UploadRefused):
        service.upload(b"<svg onload=alert(1)>", "x.svg", actor=None, limits=DEFAULT_LIMITS)
    assert rows(service) == []


def test_get_answers_the_row_or_not_found(service: AttachmentService) -> None:
    value = service.upload(jpeg(), "p.jpg", actor=None, limits=DEFAULT_LIMITS)
    assert service.get(value["id"])["sha256"] == value["sha256"]
    for unknown in ("A" * 32, "../../etc/passwd", ""):
        with pytest.raises(NotFoundError):
            service.get(unknown)


def test_link_binds_pending_uploads_to_the_record(service: AttachmentService) -> None:
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    with transaction(service.rt.db) as conn:
        linked = service.link(conn, [value["id"]], "claim", 7, "evidence")
    assert linked == [value]
    row = service.get(value["id"])
    assert (row["status"], row["form"], row["record_id"], row["field"]) == ("linked", "claim", 7, "evidence")


def test_linking_again_to_the_same_record_is_harmless(service: AttachmentService) -> None:
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    for _ in range(2):
        with transaction(service.rt.db) as conn:
            service.link(conn, [value["id"]], "claim", 7, "evidence")
    assert service.get(value["id"])["record_id"] == 7


def test_link_refuses_a_token_linked_to_another_record(service: AttachmentService) -> None:
    mine = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    theirs = service.upload(png(), "b.png", actor=None, limits=DEFAULT_LIMITS)
    with transaction(service.rt.db) as conn:
        service.link(conn, [theirs["id"]], "claim", 1, "evidence")
    with pytest.raises(ValidationFailed) as caught, transaction(service.rt.db) as conn:
        service.link(conn, [mine["id"], theirs["id"]], "claim", 2, "evidence")
    assert theirs["id"] in caught.value.errors["evidence"][0]
    assert service.get(mine["id"])["status"] == "pending"  # nothing was bound
    assert service.get(theirs["id"])["record_id"] == 1


def test_link_refuses_an_unknown_token(service: AttachmentService) -> None:
    with pytest.raises(ValidationFailed), transaction(service.rt.db) as conn:
        service.link(conn, ["B" * 32], "claim", 1, "evidence")


def test_link_rolls_back_with_the_callers_transaction(service: AttachmentService) -> None:
    value = service.upload(pdf(), "a.pdf", actor=None, limits=DEFAULT_LIMITS)
    with pytest.raises(RuntimeError), transaction(service.rt.db) as conn:
        service.link(conn, [value["id"]], "claim", 3, "evidence")
        raise RuntimeError("the submit failed after linking")
    assert service.get(value["id"])["status"] == "pending"


def test_keepable_offers_pending_uploads_and_the_records_own_files_in_the_order_given(
        service: AttachmentService) -> None:
    pending = service.upload(png(), "new.png", actor=None, limits=DEFAULT_LIMITS)
    own = service.upload(pdf(), "own.pdf", actor=None, limits=DEFAULT_LIMITS)
    with transaction(service.rt.db) as conn:
        service.link(conn, [own["id"]], "claim", 7, "evidence")
    with read_transaction(service.rt.db) as conn:
        kept = service.keepable(conn, [own["id"], pending["id"]], "claim", "evidence", 7)
    assert kept == [own, pending]


def test_keepable_leaves_out_unknown_malformed_and_foreign_ids(service: AttachmentService) -> None:
    theirs = service.upload(png(), "theirs.png", actor=None, limits=DEFAULT_LIMITS)
    with transaction(service.rt.db) as conn:
        service.link(conn, [theirs["id"]], "claim", 1, "evidence")
    with read_transaction(service.rt.db) as conn:
        for record_id, field in ((2, "evidence"), (None, "evidence"), (1, "other")):
            assert service.keepable(conn, [theirs["id"], "B" * 32, "../x", 42], "claim", field, record_id) == []


def test_limits_come_from_the_field(service: AttachmentService) -> None:
    evidence = service.limits_for("claim", "evidence")
    assert evidence.max_bytes == 1 * MB and evidence.max_files == 3
    assert evidence.types == {"jpeg", "png", "gif", "webp", "pdf", "docx", "xlsx", "pptx"}
    photos = service.limits_for("claim", "photos")
    assert photos.types == {"jpeg", "png", "gif", "webp"} and photos.max_pixels == 1_000_000
    assert service.limits_for("claim", "notes").types == {"txt"}
    assert service.limits_for() is DEFAULT_LIMITS


def test_limits_for_a_field_that_takes_no_files_are_refused(service: AttachmentService) -> None:
    with pytest.raises(ValueError):
        service.limits_for("claim", "title")
    with pytest.raises(NotFoundError):
        service.limits_for("claim", "nothing")
    with pytest.raises(NotFoundError):
        service.limits_for("nothing", "evidence")


def test_a_submitted_record_stores_the_server_facts_and_links_its_files(
        claims: tuple[System, AttachmentService]) -> None:
    system, service = claims
    photo = service.upload(png(10, 10), "site.png", actor=None, limits=service.limits_for("claim", "photos"))
    form = system.forms.form("claim")
    clean = form.validate({"title": "broken parcel", "photos": [photo["id"]]})
    with transaction(system.db) as conn:
        result = system.forms.insert_validated(conn, "claim", clean)
        service.link_record(conn, form, clean, result.record_id)
    record = system.forms.get("claim", result.record_id)
    assert record["photos"] == [photo]
    assert form.display("photos", record["photos"], "en") == "site.png"
    assert service.get(photo["id"])["record_id"] == result.record_id
    with read_transaction(system.db) as conn:
        assert conn.execute(select(func.count()).select_from(attachments)
                            .where(attachments.c.status == "linked")).scalar() == 1
