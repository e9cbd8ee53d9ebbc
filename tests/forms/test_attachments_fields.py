"""The `attachment` and `image` field types: options checked at load, values checked for shape,
count and type, and completed from `dk_attachments` so a record never keeps a client's claims."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import DefinitionError, ValidationFailed
from engine.storage.db import transaction
from forms.attachments import AttachmentService, UploadRefused
from forms.attachments.limits import DEFAULT_LIMITS
from forms.compile import CompiledForm
from forms.fields.files import Attachment, Image
from forms.messages import FieldInvalid
from tests.engine.bundle_kit import write_bundle
from tests.forms.test_attachments_kit import CLAIM_FORM, boot_claims, docx, pdf, png, registry_with_files
from web.system import System, boot

TOKEN = "A" * 32
SHA = "0" * 64


@pytest.fixture
def claims(tmp_path: Path) -> tuple[System, AttachmentService]:
    return boot_claims(tmp_path, tmp_path / "files")


@pytest.fixture
def form(claims: tuple[System, AttachmentService]) -> CompiledForm:
    return claims[0].forms.form("claim")


def parse(form: CompiledForm, name: str, raw: object) -> object:
    return form.types[name].parse(raw, form.field(name))


def problem(form: CompiledForm, name: str, raw: object) -> str:
    with pytest.raises(FieldInvalid) as caught:
        parse(form, name, raw)
    return caught.value.text("en")


def test_the_types_register_under_their_names_and_aliases() -> None:
    registry = registry_with_files()
    assert isinstance(registry.field_types.get("file"), Attachment)
    assert isinstance(registry.field_types.get("photo"), Image)


def test_the_claim_form_stores_attachments_as_json(form: CompiledForm) -> None:
    assert {"evidence", "notes", "photos"} <= set(form.stored)
    assert form.types["photos"].column_type(form.field("photos")).__class__.__name__ == "JSON"


def test_an_unknown_kind_in_accept_is_a_load_error_with_its_position(tmp_path: Path) -> None:
    registry = registry_with_files()
    bad = CLAIM_FORM.replace("accept: [image, pdf, office]", "accept: [image, exe]")
    bundle = write_bundle(tmp_path / "bundle", {"forms/claim.yaml": bad})
    with pytest.raises(DefinitionError) as caught:
        boot(bundle, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", registry=registry)
    assert "forms/claim.yaml:11:" in str(caught.value) and "exe" in str(caught.value)


def test_a_size_limit_over_100_mb_is_a_load_error(tmp_path: Path) -> None:
    registry = registry_with_files()
    bad = CLAIM_FORM.replace("max_size_mb: 1\n", "max_size_mb: 500\n")
    bundle = write_bundle(tmp_path / "bundle", {"forms/claim.yaml": bad})
    with pytest.raises(DefinitionError, match="max_size_mb"):
        boot(bundle, db_url=f"sqlite:///{tmp_path / 'db.sqlite'}", registry=registry)


def test_ids_and_descriptions_both_parse(form: CompiledForm) -> None:
    described = {"id": TOKEN, "name": "a.pdf", "size": 10, "type": "pdf", "sha256": SHA}
    assert parse(form, "evidence", [TOKEN]) == [{"id": TOKEN}]
    assert parse(form, "evidence", [described]) == [described]
    assert parse(form, "evidence", f'["{TOKEN}"]') == [{"id": TOKEN}]  # a JSON text from a page
    assert parse(form, "evidence", TOKEN) == [{"id": TOKEN}]


def test_the_same_file_twice_counts_once(form: CompiledForm) -> None:
    assert parse(form, "evidence", [TOKEN, TOKEN]) == [{"id": TOKEN}]


def test_more_files_than_allowed_are_refused(form: CompiledForm) -> None:
    tokens = [c * 32 for c in "ABCD"]
    assert problem(form, "evidence", tokens) == "Attach at most 3 files."


def test_a_type_outside_accept_is_refused(form: CompiledForm) -> None:
    item = {"id": TOKEN, "type": "pdf"}
    assert problem(form, "photos", [item]).startswith("A pdf file is not accepted here.")


@pytest.mark.parametrize("raw", [
    42, [42], [{"id": "short"}], ["../../etc/passwd"], [{"id": TOKEN, "path": "/etc/passwd"}],
    [{"id": TOKEN, "sha256": "xyz"}], [{"id": TOKEN, "size": -1}], [{"id": TOKEN, "type": "exe"}],
    "[not json",
])
def test_malformed_values_are_refused(form: CompiledForm, raw: object) -> None:
    assert problem(form, "evidence", raw) == "Upload the files, then send their ids."


def test_a_stored_value_is_completed_from_the_upload(claims: tuple[System, AttachmentService],
                                                     form: CompiledForm) -> None:
    system, service = claims
    upload = service.upload(pdf(), "report.pdf", actor=None, limits=DEFAULT_LIMITS)
    value = parse(form, "evidence", [{"id": upload["id"], "name": "renamed.exe"}])
    with transaction(system.db) as conn:
        form.types["evidence"].check_stored(conn, value, form.field("evidence"), {})
    assert value == [upload]


def test_forged_details_are_refused(claims: tuple[System, AttachmentService], form: CompiledForm) -> None:
    system, service = claims
    upload = service.upload(pdf(), "report.pdf", actor=None, limits=DEFAULT_LIMITS)
    value = parse(form, "evidence", [{**upload, "sha256": SHA}])
    with pytest.raises(FieldInvalid) as caught, transaction(system.db) as conn:
        form.types["evidence"].check_stored(conn, value, form.field("evidence"), {})
    assert caught.value.text("en") == "The file details do not match the upload; upload it again."


def test_an_upload_of_a_type_this_field_refuses_is_refused_when_stored(
        claims: tuple[System, AttachmentService], form: CompiledForm) -> None:
    system, service = claims
    upload = service.upload(docx(), "a.docx", actor=None, limits=DEFAULT_LIMITS)
    with pytest.raises(ValidationFailed) as caught:
        system.forms.submit("claim", {"title": "x", "photos": [upload["id"]]})
    assert caught.value.errors["photos"][0].startswith("A docx file is not accepted here.")


def test_an_unknown_id_is_refused_when_stored(claims: tuple[System, AttachmentService]) -> None:
    system, _ = claims
    with pytest.raises(ValidationFailed) as caught:
        system.forms.submit("claim", {"title": "x", "evidence": [TOKEN]}, locale="zh-CN")
    assert caught.value.errors["evidence"] == ["找不到已上传的文件，请重新上传。"]


def test_display_lists_the_file_names(form: CompiledForm) -> None:
    value = [{"id": TOKEN, "name": "a.pdf"}, {"id": "B" * 32, "name": "b.png"}]
    assert form.display("evidence", value, "en") == "a.pdf, b.png"
    assert form.display("evidence", None, "en") == ""


def test_the_image_field_accepts_images_only(claims: tuple[System, AttachmentService]) -> None:
    _, service = claims
    limits = service.limits_for("claim", "photos")
    assert service.upload(png(), "p.png", actor=None, limits=limits)["type"] == "png"
    with pytest.raises(UploadRefused) as caught:
        service.upload(pdf(), "p.pdf", actor=None, limits=limits)
    assert caught.value.code == "not_accepted"
