"""Uploads and downloads over HTTP (RELIABILITY 48, 49): every hostile file is refused or kept
under a server-chosen name, and every file is served as a download that no browser will run."""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from forms.attachments import AttachmentService
from tests.forms.test_attachments_kit import boot_claims, docx, jpeg, pdf, png, zip_bomb_docx
from web import uploads
from web.app import create_app
from web.system import System

UPLOAD = "/api/v1/uploads"
EVIDENCE = {"form": "claim", "field": "evidence"}  # at most 1 MB, images, PDF, Office


class Seconds:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def claims(tmp_path: Path) -> tuple[System, AttachmentService]:
    return boot_claims(tmp_path, tmp_path / "files")


@pytest.fixture
def app(claims: tuple[System, AttachmentService]) -> Starlette:
    system, service = claims
    app = create_app(system, secret="test-secret", monotonic=Seconds())
    app.router.routes.extend(uploads.routes(app.state.web, service))
    return app


@pytest.fixture
def service(claims: tuple[System, AttachmentService]) -> AttachmentService:
    return claims[1]


def signed_in(app: Starlette, username: str) -> TestClient:
    """A client signed in as `username` (created on first use)."""
    from engine.storage.db import transaction
    from engine.storage.tables import users
    from web.auth import SESSION_COOKIE, issue_session

    web = app.state.web
    with transaction(web.system.db) as conn:
        if conn.execute(users.select().where(users.c.username == username)).first() is None:
            conn.execute(users.insert().values(username=username, created_at=web.system.runtime.clock.now()))
    client = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, issue_session(web, username))
    page = client.get("/inbox").text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, page[:500]
    client.headers["x-csrf-token"] = found.group(1)  # posts carry the session's token
    return client


@pytest.fixture
def client(app: Starlette) -> TestClient:
    """The uploader: a signed-in user, who may download what they uploaded."""
    return signed_in(app, "ann")


def send(client: TestClient, name: str, data: bytes, declared: str = "application/octet-stream",
         params: dict[str, str] | None = None) -> Any:
    return client.post(UPLOAD, files={"file": (name, data, declared)}, params={"lang": "en", **(params or {})})


def stored(service: AttachmentService) -> list[Path]:
    root = service.store.root
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]


def leftovers(service: AttachmentService) -> list[Path]:
    temp = service.store.root / "tmp"
    return list(temp.iterdir()) if temp.exists() else []


# -- accepted files ----------------------------------------------------------------------------
def test_an_image_upload_answers_its_id_and_checksum(client: TestClient) -> None:
    data = png(8, 8)
    response = send(client, "photo.png", data, "image/png")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "size", "type", "sha256"} and len(body["id"]) == 32
    assert (body["name"], body["size"], body["type"]) == ("photo.png", len(data), "png")
    assert body["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_file_is_served_as_a_download_with_the_sniffed_type(client: TestClient) -> None:
    data = png(8, 8)
    token = send(client, "photo.jpg", data, "text/html").json()["id"]  # name and declared type lie
    served = client.get(f"/files/{token}")
    assert served.status_code == 200 and served.content == data
    assert served.headers["content-type"] == "image/png"
    assert served.headers["content-disposition"] == "attachment; filename*=UTF-8''photo.png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert served.headers["cache-control"] == "private, max-age=0"


def test_served_bytes_match_the_recorded_checksum(client: TestClient, service: AttachmentService) -> None:
    token = send(client, "a.pdf", pdf()).json()["id"]
    served = client.get(f"/files/{token}")
    assert hashlib.sha256(served.content).hexdigest() == service.get(token)["sha256"]


def test_a_chinese_file_name_is_percent_encoded(client: TestClient) -> None:
    token = send(client, "破损照片.png", png()).json()["id"]
    disposition = client.get(f"/files/{token}").headers["content-disposition"]
    assert disposition == "attachment; filename*=UTF-8''" + quote("破损照片.png", safe="")


def test_images_may_be_shown_inline_and_nothing_else(client: TestClient) -> None:
    image = send(client, "a.png", png()).json()["id"]
    document = send(client, "a.pdf", pdf()).json()["id"]
    assert client.get(f"/files/{image}?inline=1").headers["content-disposition"].startswith("inline;")
    assert client.get(f"/files/{document}?inline=1").headers["content-disposition"].startswith("attachment;")


def test_identical_uploads_get_their_own_ids_and_share_one_file(client: TestClient,
                                                                service: AttachmentService) -> None:
    first = send(client, "a.pdf", pdf()).json()
    second = send(client, "b.pdf", pdf()).json()
    assert first["id"] != second["id"] and first["sha256"] == second["sha256"]
    assert len(stored(service)) == 1


def test_a_path_in_the_name_is_only_a_display_name(client: TestClient, service: AttachmentService,
                                                   tmp_path: Path) -> None:
    body = send(client, "../../x.jpg", jpeg(), "image/jpeg").json()
    assert body["name"] == "x.jpg"
    assert [p.name for p in stored(service)] == [body["sha256"]]
    assert not list(tmp_path.rglob("x.jpg"))


def test_an_office_document_is_accepted(client: TestClient) -> None:
    response = send(client, "report.docx", docx(), params=EVIDENCE)
    assert response.status_code == 201 and response.json()["type"] == "docx"


# -- refused files -----------------------------------------------------------------------------
def test_an_html_file_is_refused_with_415(client: TestClient, service: AttachmentService) -> None:
    response = send(client, "page.html", b"<!doctype html><p>hi</p>", "text/html")
    assert response.status_code == 415
    assert response.json()["error"] == "Web pages, SVG images and files carrying scripts are not accepted."
    assert stored(service) == [] and leftovers(service) == []


def test_a_script_bearing_svg_is_refused(client: TestClient) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    assert send(client, "logo.svg", svg, "image/svg+xml").status_code == 415


def test_a_jpeg_html_polyglot_is_refused(client: TestClient) -> None:
    polyglot = jpeg(comment=b"<html><body><script>alert(document.cookie)</script>")
    assert send(client, "photo.jpg", polyglot, "image/jpeg").status_code == 415


def test_an_empty_file_is_refused_with_400(client: TestClient) -> None:
    response = send(client, "empty.pdf", b"")
    assert response.status_code == 400 and response.json()["code"] == "empty"


def test_a_file_over_the_fields_limit_is_refused_with_413(client: TestClient, service: AttachmentService) -> None:
    big = pdf(b"x" * (2 * 1024 * 1024))
    response = send(client, "big.pdf", big, params=EVIDENCE)
    assert response.status_code == 413 and "1 MB" in response.json()["error"]
    assert stored(service) == [] and leftovers(service) == []


def test_a_zip_bomb_docx_is_refused(client: TestClient) -> None:
    response = send(client, "bomb.docx", zip_bomb_docx(20))
    assert response.status_code == 413 and response.json()["code"] == "zip_bomb"


def test_a_50000_by_50000_png_is_refused(client: TestClient) -> None:
    response = send(client, "huge.png", png(50_000, 50_000), "image/png")
    assert response.status_code == 413 and response.json()["code"] == "too_many_pixels"


def test_a_field_that_takes_images_refuses_a_pdf(client: TestClient) -> None:
    response = send(client, "a.pdf", pdf(), params={"form": "claim", "field": "photos"})
    assert response.status_code == 415
    assert response.json()["error"] == "A pdf file is not accepted here. Accepted: jpeg, png, gif, webp."


def test_refusals_speak_the_users_language(client: TestClient) -> None:
    response = client.post(f"{UPLOAD}?lang=zh-CN", files={"file": ("a.html", b"<html>", "text/html")})
    assert response.json()["error"] == "不接受网页、SVG 图片或带有脚本的文件。"


def test_text_is_refused_unless_the_field_accepts_it(client: TestClient) -> None:
    assert send(client, "notes.txt", b"plain words").status_code == 415
    accepted = send(client, "notes.txt", b"plain words", params={"form": "claim", "field": "notes"})
    assert accepted.status_code == 201 and accepted.json()["type"] == "txt"


def test_a_stored_text_file_is_served_as_plain_utf8(client: TestClient) -> None:
    token = send(client, "n.txt", "备注".encode(), params={"form": "claim", "field": "notes"}).json()["id"]
    assert client.get(f"/files/{token}").headers["content-type"] == "text/plain; charset=utf-8"


# -- malformed requests ------------------------------------------------------------------------
def test_a_body_that_is_not_multipart_is_400(client: TestClient) -> None:
    assert client.post(UPLOAD, content=png(), headers={"content-type": "image/png"}).status_code == 400


def test_a_boundary_longer_than_the_parser_takes_is_400(client: TestClient) -> None:
    # python-multipart refuses it in its constructor: the upload answered 500.
    response = client.post(UPLOAD, content=b"--x--\r\n",
                           headers={"content-type": "multipart/form-data; boundary=" + "a" * 300})
    assert response.status_code == 400 and "malformed upload" in response.json()["error"]


def test_two_files_in_one_upload_are_400(client: TestClient) -> None:
    response = client.post(UPLOAD, files=[("file", ("a.png", png(), "image/png")),
                                          ("file", ("b.png", png(2, 2), "image/png"))])
    assert response.status_code == 400 and "exactly one file" in response.json()["error"]


def test_a_file_under_another_name_is_400(client: TestClient) -> None:
    assert client.post(UPLOAD, files={"upload": ("a.png", png(), "image/png")}).status_code == 400


def test_no_file_at_all_is_400(client: TestClient) -> None:
    assert client.post(UPLOAD, files={"form": (None, "claim")}).status_code == 400


def test_a_body_cut_off_before_the_closing_boundary_is_400(client: TestClient, service: AttachmentService) -> None:
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n" + png())
    response = client.post(UPLOAD, content=body, headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert response.status_code == 400 and leftovers(service) == []


def test_100000_fields_are_refused_quickly(client: TestClient) -> None:
    boundary = "b" * 20
    parts = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n'
                    for i in range(100_000))
    response = client.post(UPLOAD, content=(parts + f"--{boundary}--\r\n").encode(),
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400


def test_form_and_field_may_come_as_parts_before_the_file(client: TestClient) -> None:
    response = client.post(UPLOAD, data={"form": "claim", "field": "photos"},
                           files={"file": ("a.pdf", pdf(), "application/pdf")})
    assert response.status_code == 415  # the photos field's limits applied


def test_form_and_field_after_the_file_are_400(client: TestClient) -> None:
    boundary = "zz"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'.encode()
            + png() + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="form"\r\n\r\nclaim\r\n'
            f"--{boundary}--\r\n".encode())
    response = client.post(UPLOAD, content=body,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert response.status_code == 400


def test_a_field_that_takes_no_files_is_400_and_an_unknown_form_404(client: TestClient) -> None:
    assert send(client, "a.png", png(), params={"form": "claim", "field": "title"}).status_code == 400
    assert send(client, "a.png", png(), params={"form": "nothing", "field": "x"}).status_code == 404


def test_uploads_are_rate_limited(client: TestClient) -> None:
    statuses = [client.post(UPLOAD, content=b"", headers={"content-type": "text/plain"}).status_code
                for _ in range(uploads.UPLOADS.count + 1)]
    assert statuses[-1] == 429 and set(statuses[:-1]) == {400}


# -- serving -----------------------------------------------------------------------------------
def test_unknown_ids_are_404(client: TestClient) -> None:
    assert client.get("/files/" + "A" * 32).status_code == 404
    assert client.get("/files/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/files/1").status_code == 404


def test_a_damaged_stored_file_is_never_served(client: TestClient, service: AttachmentService) -> None:
    body = send(client, "a.pdf", pdf()).json()
    service.store.path_of(body["sha256"]).write_bytes(pdf(b"changed behind our back"))
    response = client.get(f"/files/{body['id']}")
    assert response.status_code == 500 and b"changed behind" not in response.content


# -- streaming: refused early, never buffered --------------------------------------------------
def multipart_head(boundary: str) -> bytes:
    return (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n").encode() + b"%PDF-1.4\n"


def call(app: Starlette, headers: list[tuple[bytes, bytes]], chunks: Iterator[bytes],
         query: bytes = b"form=claim&field=evidence") -> tuple[int, int]:
    """POST to the upload route as a server would; returns (status, body messages pulled)."""
    pulled = 0
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        chunk = next(chunks, None)
        pulled += 1
        return {"type": "http.request", "body": chunk or b"", "more_body": chunk is not None}

    async def send_(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": UPLOAD, "raw_path": UPLOAD.encode(), "query_string": query,
             "root_path": "", "headers": headers, "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80)}
    asyncio.run(app(scope, receive, send_))
    return status, pulled


def test_a_200_mb_upload_announced_by_content_length_is_refused_before_reading(app: Starlette) -> None:
    headers = [(b"content-type", b"multipart/form-data; boundary=qq"),
               (b"content-length", str(200 * 1024 * 1024).encode())]
    status, pulled = call(app, headers, iter(()))
    assert (status, pulled) == (413, 0)


def test_a_200_mb_upload_without_a_length_is_cut_off_while_streaming(app: Starlette,
                                                                     service: AttachmentService) -> None:
    chunk = b"\x00" * (64 * 1024)

    def body() -> Iterator[bytes]:
        yield multipart_head("qq")
        for _ in range(200 * 16):  # 200 MB, made lazily
            yield chunk

    status, pulled = call(app, [(b"content-type", b"multipart/form-data; boundary=qq")], body())
    assert status == 413
    assert pulled <= 1 + 16 + 2  # the head, the 1 MB limit and one chunk past it
    assert stored(service) == [] and leftovers(service) == []


def test_a_large_upload_without_a_field_is_cut_off_at_the_default_limit(app: Starlette) -> None:
    chunk = b"\x00" * (64 * 1024)

    def body() -> Iterator[bytes]:
        yield multipart_head("qq")
        for _ in range(200 * 16):
            yield chunk

    status, pulled = call(app, [(b"content-type", b"multipart/form-data; boundary=qq")], body(), query=b"")
    assert status == 413 and pulled <= 1 + 20 * 16 + 2


def test_a_file_not_yet_linked_is_served_to_its_uploader_only(app: Starlette, client: TestClient) -> None:
    token = send(client, "photo.png", png(8, 8)).json()["id"]
    anonymous = TestClient(app, raise_server_exceptions=False)
    assert client.get(f"/files/{token}").status_code == 200
    assert anonymous.get(f"/files/{token}").status_code == 404
    assert signed_in(app, "bob").get(f"/files/{token}").status_code == 404


def test_a_file_linked_to_a_record_is_served_only_to_those_who_may_read_the_record(
        app: Starlette, client: TestClient, service: AttachmentService) -> None:
    from engine.storage.db import transaction
    from engine.storage.tables import attachments

    token = send(client, "photo.png", png(8, 8)).json()["id"]
    record_id = app.state.web.system.forms.submit("ticket", {"title": "t"}, actor="bob").record_id
    with transaction(app.state.web.system.db) as conn:
        conn.execute(attachments.update().where(attachments.c.id == token)
                     .values(form="ticket", record_id=record_id, field="photos", status="linked"))
    assert signed_in(app, "bob").get(f"/files/{token}").status_code == 200  # submitted the record
    assert client.get(f"/files/{token}").status_code == 404  # uploaded the file, may not see the record


# -- room for anonymous uploads (ADR 0004) -------------------------------------------------------
def test_anonymous_uploads_are_refused_once_pending_files_fill_their_room(app: Starlette, client: TestClient) -> None:
    # Anyone may upload, and a file stays pending for a week: without a cap a few clients fill
    # the disk the database lives on.
    app.state.web.upload_room.cap = 1  # byte: the first file fills it
    anonymous = TestClient(app, raise_server_exceptions=False)
    assert send(anonymous, "a.png", png(8, 8)).status_code == 201
    refused = send(anonymous, "b.png", png(8, 9))
    assert refused.status_code == 503 and refused.json()["code"] == "no_room"
    assert "try again later" in refused.json()["error"]
    assert send(client, "c.png", png(8, 10)).status_code == 201  # signed-in staff still upload


def test_the_room_comes_back_once_pending_files_are_linked_or_swept(app: Starlette) -> None:
    from engine.storage.db import transaction
    from engine.storage.tables import attachments
    from web.upload_room import REFRESH_SECONDS

    web = app.state.web
    web.upload_room.cap = 1
    anonymous = TestClient(app, raise_server_exceptions=False)
    assert send(anonymous, "a.png", png(8, 8)).status_code == 201
    with transaction(web.system.db) as conn:
        conn.execute(attachments.delete())  # what `docket files sweep` does to old pending rows
    assert send(anonymous, "b.png", png(8, 9)).status_code == 503  # the total is read again later
    web.limiter.clock.now += REFRESH_SECONDS
    assert send(anonymous, "b.png", png(8, 9)).status_code == 201
