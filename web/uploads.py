"""Uploads and downloads of attachments (ADR 0004).

- `POST /api/v1/uploads`: multipart with exactly one file part named `file`. `form` and `field`
  (query string, or text parts *before* the file) pick the limits of that attachment/image field;
  without them the default limits apply (images, PDF, Office; 20 MB). The body is parsed as it
  streams (python-multipart's push parser): the file's bytes go straight to a temporary file while
  they are hashed and counted, so nothing is buffered in memory and a too-large file is refused as
  soon as it passes its limit, or before a byte is read when Content-Length already says so.
  Answers 201 {id, name, size, type, sha256}; 413 too large, 415 refused type, 400 malformed.
- `GET /files/{id}`: the bytes with the sniffed Content-Type, always as a download
  (`Content-Disposition: attachment`), `nosniff`, a sandboxing CSP and no shared caching. Images
  (JPEG, PNG, GIF, WebP) may be shown inline with `?inline=1`. Unknown ids are 404; ids are
  random, so there is nothing to enumerate.

`routes(web)` returns the routes; the application mounts them.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from engine.errors import NotFoundError
from forms.attachments.errors import UploadRefused
from forms.attachments.kinds import INLINE_TYPES
from forms.attachments.limits import HARD_MAX_BYTES, MB, Limits
from forms.attachments.service import AttachmentService, type_of_media
from forms.attachments.store import FileStore, Incoming
from web.auth import principal_of
from web.offload import offload
from web.ratelimit import Limit

if TYPE_CHECKING:
    from web.app import Web

__all__ = ["DOWNLOADS", "FILE_HEADERS", "UPLOADS", "attachment_service", "content_disposition",
           "routes"]

log = logging.getLogger(__name__)

UPLOADS = Limit(30, 60)
DOWNLOADS = Limit(600, 60)
MULTIPART_OVERHEAD = 64 * 1024
"""Room for boundaries, part headers and the small text parts around the file."""
MAX_PARTS = 6
"""One file and at most five small text parts."""
MAX_TEXT_PART = 1024
MAX_HEADER_BYTES = 4096
FILE_HEADERS = {
    "x-content-type-options": "nosniff",
    "content-security-policy": "sandbox; default-src 'none'",
    "cache-control": "private, max-age=0",
    "cross-origin-resource-policy": "same-origin",
}
"""Headers of every served file: never sniffed, never run, never cached by a shared cache."""


class Malformed(Exception):
    """The request is not the multipart upload this endpoint takes (400)."""


def attachment_service(web: "Web") -> AttachmentService:
    """The system's AttachmentService, created over the default FileStore on first use."""
    runtime = web.system.runtime
    service = runtime.services.get("attachments")
    if service is None:
        service = AttachmentService(runtime, FileStore())
    return service


def routes(web: "Web", service: AttachmentService | None = None) -> list[Route]:
    """The upload and download routes (`service`: default `attachment_service(web)`)."""
    files = service or attachment_service(web)

    def target_limits(form: str | None, field: str | None) -> Limits:
        try:
            return files.limits_for(form, field)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None

    async def upload(request: Request) -> Response:
        web.limit(request, "upload", UPLOADS)
        locale = web.locale_of(request)
        query = request.query_params
        target = {k: query[k] for k in ("form", "field") if k in query}
        known = target_limits(target.get("form"), target.get("field")) if target else None
        cap = (known.max_bytes if known else HARD_MAX_BYTES) + MULTIPART_OVERHEAD
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return _refused(UploadRefused("too_large", max_mb=f"{(cap - MULTIPART_OVERHEAD) / MB:g}"), locale)
        kind, params = parse_options_header(request.headers.get("content-type", ""))
        boundary = params.get(b"boundary")
        if kind != b"multipart/form-data" or not boundary:
            raise HTTPException(400, "send the file as multipart/form-data in a part named 'file'")

        def begin(fields: dict[str, str]) -> Incoming:
            for key in ("form", "field"):
                if key in fields and key in target and fields[key] != target[key]:
                    raise Malformed(f"'{key}' is given twice with different values")
            chosen = {**{k: fields[k] for k in ("form", "field") if k in fields}, **target}
            return files.begin(target_limits(chosen.get("form"), chosen.get("field")))

        try:
            receiver = _Receiver(boundary, begin)
        except FormParserError as exc:  # the parser refuses the boundary itself (over 256 bytes)
            raise HTTPException(400, f"malformed upload: {exc}") from None
        anonymous = principal_of(request) is None
        try:
            if anonymous:
                await offload.run(web.upload_room.check)
            seen = 0
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > cap:
                    raise UploadRefused("too_large", max_mb=f"{(cap - MULTIPART_OVERHEAD) / MB:g}")
                receiver.feed(chunk)
            receiver.close()
            incoming = receiver.incoming
            assert incoming is not None
            uploader = principal_of(request)
            result = await offload.run(files.complete, incoming, receiver.filename,
                                             receiver.declared_type,
                                             actor=uploader.username if uploader else None)
        except UploadRefused as exc:
            return _refused(exc, locale)
        except (Malformed, MultipartParseError) as exc:
            raise HTTPException(400, f"malformed upload: {exc}") from None
        except ClientDisconnect:
            return Response(status_code=400)
        finally:
            receiver.discard()
        if anonymous:
            web.upload_room.add(int(result["size"]))
        return JSONResponse({k: result[k] for k in ("id", "name", "size", "type", "sha256")},
                            status_code=201)

    async def download(request: Request) -> Response:
        web.limit(request, "download", DOWNLOADS)
        # An unknown id is NotFoundError: the application's handler answers 404.
        row = await offload.run(files.get, request.path_params["id"])
        if not await offload.run(_may_download, web, request, row):
            raise NotFoundError("no such file")  # the same answer as an unknown id (RELIABILITY 47)
        sha256, size = row["sha256"], int(row["size"])
        if not await offload.run(files.store.verify, sha256, size):
            log.error("attachment %s: stored file %s is missing or damaged", row["id"], sha256)
            raise HTTPException(500, "this file is damaged on the server; the administrator has been told")
        inline = request.query_params.get("inline") == "1" and type_of_media(row["media_type"]) in INLINE_TYPES
        headers = {**FILE_HEADERS, "content-disposition": content_disposition(row["original_name"], inline=inline)}
        return FileResponse(files.store.path_of(sha256), media_type=row["media_type"], headers=headers)

    return [
        Route("/api/v1/uploads", upload, methods=["POST"]),
        Route("/files/{id}", download, methods=["GET"]),
    ]


def _may_download(web: "Web", request: Request, row: Any) -> bool:
    """A file linked to a record: whoever may read the record and see the file's field (a step's
    `hidden_fields` keep it from its people, as the record page does). One not linked yet: its
    uploader (when signed in) and admins only."""
    from engine.storage.db import read_transaction
    from forms.access import can_read
    from web.staff import hidden_fields

    principal = principal_of(request)
    if principal is None:
        return False
    if row["form"] is None or row["record_id"] is None:
        return principal.is_admin or (row["created_by"] is not None and row["created_by"] == principal.username)
    runtime = web.system.runtime
    if row["field"] in hidden_fields(runtime, row["form"], principal):
        return False
    with read_transaction(runtime.db) as conn:
        return can_read(conn, runtime, row["form"], int(row["record_id"]), principal)


def content_disposition(name: str, *, inline: bool = False) -> str:
    """`attachment; filename*=UTF-8''<name percent-encoded>` (RFC 6266 / RFC 8187)."""
    return f"{'inline' if inline else 'attachment'}; filename*=UTF-8''{quote(name, safe='')}"


def _refused(exc: UploadRefused, locale: str) -> JSONResponse:
    return JSONResponse({"error": exc.text(locale), "code": exc.code}, status_code=exc.status)


class _Receiver:
    """Feeds a multipart body to python-multipart's push parser: text parts are collected (small,
    counted), the one file part is written chunk by chunk into an `Incoming` upload."""

    def __init__(self, boundary: bytes, begin: Callable[[dict[str, str]], Incoming]):
        self._begin = begin
        self.fields: dict[str, str] = {}
        self.incoming: Incoming | None = None
        self.filename: str | None = None
        self.declared_type: str | None = None
        self._parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._in_file = False
        self._field_name: str | None = None
        self._value = bytearray()
        self._ended = False
        callbacks: dict[str, Any] = {
            "on_part_begin": self._part_begin, "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data, "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
            "on_part_end": self._part_end, "on_end": self._end,
        }
        self._parser = MultipartParser(boundary, callbacks)

    def feed(self, chunk: bytes) -> None:
        self._parser.write(chunk)

    def close(self) -> None:
        self._parser.finalize()
        if not self._ended:
            raise Malformed("the body ended before the closing boundary")
        if self.incoming is None:
            raise Malformed("no file: send it in a part named 'file'")

    def discard(self) -> None:
        if self.incoming is not None:
            self.incoming.discard()

    # -- parser callbacks ----------------------------------------------------------------------
    def _part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise Malformed(f"at most {MAX_PARTS} parts: one file and a few fields")
        self._headers = {}
        self._header_bytes = 0
        self._in_file = False
        self._field_name = None
        self._value = bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]
        self._count_header(end - start)

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header(end - start)

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_HEADER_BYTES:
            raise Malformed("part headers are too large")

    def _header_end(self) -> None:
        self._headers[bytes(self._header_field).strip().lower()] = bytes(self._header_value).strip()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def _headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            raise Malformed("every part needs Content-Disposition: form-data with a name")
        if b"filename" in params:
            if name != b"file":
                raise Malformed("the file must be sent in a part named 'file'")
            if self.incoming is not None:
                raise Malformed("send exactly one file per upload")
            self.filename = params[b"filename"].decode("utf-8", "replace")
            declared = self._headers.get(b"content-type")
            self.declared_type = declared.decode("latin-1")[:100] if declared else None
            self.incoming = self._begin(dict(self.fields))
            self._in_file = True
        else:
            if self.incoming is not None and name in (b"form", b"field"):
                raise Malformed("send 'form' and 'field' before the file (or in the query string)")
            self._field_name = name.decode("utf-8", "replace")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            assert self.incoming is not None
            self.incoming.write(data[start:end])
            return
        self._value += data[start:end]
        if len(self._value) > MAX_TEXT_PART:
            raise Malformed(f"a text part is longer than {MAX_TEXT_PART} bytes")

    def _part_end(self) -> None:
        if self._field_name is not None:
            try:
                self.fields[self._field_name] = self._value.decode("utf-8")
            except UnicodeDecodeError:
                raise Malformed("text parts must be UTF-8") from None
        self._in_file = False
        self._field_name = None

    def _end(self) -> None:
        self._ended = True
