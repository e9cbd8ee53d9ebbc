"""The one way a page handler reads a posted HTML form: bounded in fields, files and part size.

Starlette's `request.form()` defaults allow 1000 fields and 1000 files; a body of 100,000 tiny
fields or one 50 MB text field must be refused quickly without growing the process
(RELIABILITY 49). `read_form` applies Docket's limits on every parse:

- a declared Content-Length above `max_body` is refused (413) before a byte is read; the body
  is also counted as it streams (web.security.BodySizeLimit), so a missing or false
  Content-Length does not help;
- at most `max_fields` text fields and `max_files` files (400 past that, as soon as the parser
  meets the next one: the rest of the body is never parsed);
- each text field at most `max_part_size` bytes (400); files are spooled to disk by Starlette
  (kept in memory only up to 1 MB each), and their own limits are checked by the upload code.

Every handler that reads `application/x-www-form-urlencoded` or `multipart/form-data` calls
`await read_form(request, ...)` instead of `request.form()`. The forms it parsed are closed when
the response is sent (`CloseForms`), however the handler ended: a refused post returns before
its files are read, and each spooled upload would stay open until garbage collection.
"""

from __future__ import annotations

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Receive, Scope, Send

MAX_FIELDS = 200
"""Text fields of a page's form: the largest bundle form has a few dozen, plus hidden inputs."""
MAX_FILES = 0
"""Files: none unless the handler takes uploads (then it says how many)."""
MAX_PART_SIZE = 1024 * 1024
"""One text field: rich text of 200,000 characters fits; a 50 MB field does not."""
MAX_BODY = 2 * 1024 * 1024
"""The whole body when it holds no files."""
_FORMS = "docket.forms"
"""Where read_form notes the forms it parsed in the request's scope, for CloseForms."""


async def read_form(request: Request, *, max_fields: int = MAX_FIELDS, max_files: int = MAX_FILES,
                    max_part_size: int = MAX_PART_SIZE, max_body: int | None = None) -> FormData:
    """The posted form, parsed within the limits; HTTPException 400/413 when a limit is passed.

    `max_body` defaults to MAX_BODY for forms without files; a handler taking files names its own.
    """
    limit = max_body if max_body is not None else MAX_BODY
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the form is larger than {limit:,} bytes")
    try:
        form = await request.form(max_fields=max_fields, max_files=max_files, max_part_size=max_part_size)
        request.scope.setdefault(_FORMS, []).append(form)
        return form
    except ClientDisconnect:
        raise HTTPException(400, "the form was not sent completely") from None
    except (ValueError, UnicodeDecodeError) as exc:
        # python-multipart refuses malformed bodies (a bad boundary, bad headers) with these.
        raise HTTPException(400, f"the form could not be read: {exc}") from None


class CloseForms:
    """Closes the forms `read_form` parsed for a request once the request is done, whether the
    handler answered, returned early or failed (pure ASGI; innermost, so it shares the
    router's scope)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            for form in scope.pop(_FORMS, ()):
                await form.close()


__all__ = ["CloseForms", "MAX_BODY", "MAX_FIELDS", "MAX_FILES", "MAX_PART_SIZE", "read_form"]
