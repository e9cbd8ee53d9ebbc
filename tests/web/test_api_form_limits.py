"""RELIABILITY 49: floods of form fields and huge fields are refused quickly, in bounded memory.

The bodies are streamed to the ASGI application chunk by chunk from generators (as a slow or
hostile client would send them, without a Content-Length), so the test measures what the server
keeps, not what the client built: peak traced memory must stay far below the body's size.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any, Iterator

import anyio
import pytest

from tests.web.api_kit import boot_postal
from web.app import create_app
from web.forms_body import MAX_PART_SIZE
from web.system import System

CHUNK = 64 * 1024
BOUNDARY = b"docketboundary"
MEMORY_BUDGET = 8 * 1024 * 1024
TIME_BUDGET = 2.0
BODY_LIMIT = 2 * 1024 * 1024
"""web.app.MAX_REQUEST_BODY: no form handler ever reads more than this."""


def _chunked(parts: Iterator[bytes]) -> Iterator[bytes]:
    buffer = bytearray()
    for part in parts:
        buffer.extend(part)
        while len(buffer) >= CHUNK:
            yield bytes(buffer[:CHUNK])
            del buffer[:CHUNK]
    if buffer:
        yield bytes(buffer)


def multipart_fields(count: int) -> Iterator[bytes]:
    def parts() -> Iterator[bytes]:
        for i in range(count):
            yield (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nx\r\n" % i)
        yield b"--" + BOUNDARY + b"--\r\n"
    return _chunked(parts())


def multipart_big_text(size: int) -> Iterator[bytes]:
    def parts() -> Iterator[bytes]:
        yield b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"description\"\r\n\r\n"
        block = b"a" * CHUNK
        for _ in range(size // CHUNK):
            yield block
        yield b"\r\n--" + BOUNDARY + b"--\r\n"
    return _chunked(parts())


def urlencoded_fields(count: int) -> Iterator[bytes]:
    return _chunked(b"f%d=x&" % i for i in range(count))


def drive(app: Any, path: str, content_type: str, body: Iterator[bytes]) -> tuple[int, float, int, int]:
    """POST a streamed body to the app; (status, seconds, peak traced bytes, bytes consumed)."""
    result: dict[str, Any] = {"consumed": 0}

    async def receive() -> dict[str, Any]:
        chunk = next(body, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        result["consumed"] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            result["status"] = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"content-type", content_type.encode())],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80)}
    tracemalloc.start()
    started = time.perf_counter()
    try:
        anyio.run(app, scope, receive, send)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result["status"], elapsed, peak, result["consumed"]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    system: System = boot_postal(tmp_path_factory.mktemp("limits"))
    return create_app(system, secret="test-secret")


MULTIPART = f"multipart/form-data; boundary={BOUNDARY.decode()}"
URLENCODED = "application/x-www-form-urlencoded"
CASES = {
    "multipart with 100,000 fields": (MULTIPART, lambda: multipart_fields(100_000), 10_000_000),
    "multipart with a 50 MB text field": (MULTIPART, lambda: multipart_big_text(50 * 1024 * 1024), 50 * 1024 * 1024),
    "urlencoded with 100,000 fields": (URLENCODED, lambda: urlencoded_fields(100_000), 888_890),
}


@pytest.mark.parametrize("path", ["/f/complaint", "/track", "/signin"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_flooding_form_is_refused_quickly_in_bounded_memory(app: Any, path: str, case: str) -> None:
    content_type, body, size = CASES[case]
    status, elapsed, peak, consumed = drive(app, path, content_type, body())
    assert status in (400, 403, 413), f"{case} to {path} answered {status}"
    assert elapsed < TIME_BUDGET, f"{case} to {path} took {elapsed:.2f} s"
    assert peak < MEMORY_BUDGET, f"{case} to {path} peaked at {peak / 1e6:.1f} MB"
    assert consumed <= min(size, BODY_LIMIT + CHUNK), "the server read past the request body limit"


def test_a_single_text_field_larger_than_the_part_limit_is_refused(app: Any) -> None:
    status, _, _, consumed = drive(app, "/track", MULTIPART, multipart_big_text(2 * MAX_PART_SIZE))
    assert status in (400, 413) and consumed <= 2 * MAX_PART_SIZE + CHUNK


def test_an_api_body_of_50_mb_is_refused_without_reading_it(app: Any) -> None:
    status, elapsed, peak, consumed = drive(app, "/api/v1/forms/complaint/records", "application/json",
                                            _chunked(iter([b'{"description": "'] + [b"a" * CHUNK] * 800)))
    assert status == 413 and elapsed < TIME_BUDGET and peak < MEMORY_BUDGET
    assert consumed <= BODY_LIMIT + CHUNK
