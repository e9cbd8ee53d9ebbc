"""Files posted with a page's form (the public form, a new record, a task step).

A file arrives with the form it was chosen in, is stored at once (pending, ADR 0004) and its id
put into the submitted values. When the post is refused (a wrong phone number, an expired page)
the page comes back listing the files already stored, each as a ticked checkbox holding its id
under the field's own name: sending the page again submits those ids with any new files, and
unticking one removes it. A browser cannot refill a file input, so without this the customer
would have to find every file again, and the first uploads would be orphaned.

The ids a page sends back are the client's word like any other: the field's own checks
(`check_stored`) and `AttachmentService.link` refuse an unknown id or one bound to another record
when the form is submitted, and `kept_files` shows only ids `link` would still accept, so a page
never shows the name of somebody else's file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping

from engine.storage.db import read_transaction
from forms.attachments.kinds import FILE_TYPES
from web.offload import offload

if TYPE_CHECKING:
    from web.app import Web

__all__ = ["FORM_TEXT_ALLOWANCE", "files_budget", "kept_files", "mark_file_limits", "read_kept_files", "store_files",
           "store_uploads"]

FORM_TEXT_ALLOWANCE = 512 * 1024
"""Of a page's body limit, what it keeps for the typed fields: the chosen files may fill the rest."""


def files_budget(max_body: int) -> int:
    """The bytes the files chosen on a page may take together (its form's `data-max-files-bytes`,
    _widgets.html `file_checks`): the page's body limit less what its typed fields need, so the
    page says "fewer or smaller files" instead of the whole post being refused unread."""
    return max_body - FORM_TEXT_ALLOWANCE


def mark_file_limits(web: "Web", form: Any, sections: Iterable[Any]) -> None:
    """Give each file input of a rendered form its field's size limit (`data-max-bytes`), so
    the page can refuse a too-large photo when it is chosen (static/form.js) instead of after
    the whole form has been sent, or refused unread for being larger than the page takes; and
    the types it takes (`accept`), so a phone's picker offers those files and not the others."""
    service = web.system.runtime.services["attachments"]
    for section in sections:
        for widget in section.widgets:
            if widget.kind == "file":
                limits = service.limits_for(form.name, widget.name)
                widget.attrs["data-max-bytes"] = str(limits.max_bytes)
                widget.attrs["accept"] = accept_attribute(limits.types)


def accept_attribute(types: Iterable[str]) -> str:
    """The HTML `accept` of a file input taking these short type names (`pdf`, `docx`): each
    type's media type and its extensions, since some pickers go by one and some by the other.
    The server still decides from the bytes (forms.attachments.sniff)."""
    wanted = [FILE_TYPES[name] for name in FILE_TYPES if name in set(types)]
    return ",".join([t.media_type.split(";")[0] for t in wanted] +
                    [f".{ext}" for t in wanted for ext in t.extensions])


def _file_fields(form: Any, only: Iterable[str] | None) -> list[str]:
    """The attachment and image fields of `form` the page shows (`only`: the fields it shows)."""
    shown = set(only) if only is not None else None
    return [name for name, ftype in form.types.items()
            if getattr(ftype, "holds_attachments", False) and (shown is None or name in shown)]


async def store_files(web: "Web", form: Any, posted: Any, data: dict[str, Any], locale: str, *,
                      only: Iterable[str] | None = None, anonymous: bool = False) -> dict[str, list[str]]:
    """Store the files posted for the file fields the page shows; put into `data` their ids after
    the ids of the files the page kept from an earlier post.

    Returns errors per field (a refused type, a file too large); a refused file does not drop
    the others. Stored files stay pending until a record links them, so a failed submission
    leaves nothing attached to anything. `anonymous` (a page anyone may post): the files are
    refused while pending uploads fill their room (web.upload_room).
    """
    from starlette.datastructures import UploadFile

    service = web.system.runtime.services["attachments"]
    errors: dict[str, list[str]] = {}
    for name in _file_fields(form, only):
        sent = posted.getlist(name)
        # Text parts are kept files' ids (and an empty marker sent when the page listed kept
        # files, so unticking them all removes them all); file parts are new uploads.
        listed = any(isinstance(item, str) for item in sent)
        ids = [item for item in sent if isinstance(item, str) and item]
        files = [item for item in sent if isinstance(item, UploadFile) and item.filename]
        if not (listed or files):
            continue
        stored, refused = await store_uploads(web, files, service.limits_for(form.name, name) if files else None,
                                              locale, anonymous=anonymous)
        if refused:
            errors[name] = refused
        data[name] = ids + stored
    return errors


async def store_uploads(web: "Web", files: Iterable[Any], limits: Any, locale: str, *,
                        anonymous: bool = False) -> tuple[list[str], list[str]]:
    """Store posted files (Starlette UploadFiles) as pending uploads: (their ids, one message
    per refused file). A refused file (its type, its size) does not drop the others; an
    `anonymous` poster's files are all refused while pending uploads fill their room."""
    from forms.attachments.errors import UploadRefused

    service = web.system.runtime.services["attachments"]
    ids: list[str] = []
    refused: list[str] = []
    for upload in files:
        try:
            if anonymous:
                await offload.run(web.upload_room.check)
            stored = await offload.run(service.upload, upload.file, upload.filename,
                                       upload.content_type, actor=None, limits=limits)
        except UploadRefused as exc:
            refused.append(f"{upload.filename}: {exc.text(locale)}")
            continue
        if anonymous:
            web.upload_room.add(int(stored["size"]))
        ids.append(stored["id"])
    return ids, refused


def kept_files(conn: Any, web: "Web", form: Any, values: Mapping[str, Any] | None, *,
               record_id: int | None = None) -> dict[str, Any] | None:
    """`values` with each file field's ids replaced by the stored files a page may offer again.

    Only files `link` would bind to this form's field are kept: pending uploads, or on a record's
    page the files already linked to that record's field. An unknown, malformed or foreign id
    is dropped (the submission that sent it was refused for it already).
    """
    if values is None:
        return None
    service = web.system.runtime.services["attachments"]
    out = dict(values)
    for name in _file_fields(form, None):
        if name in out:
            out[name] = service.keepable(conn, _ids(out[name]), form.name, name, record_id)
    return out


def read_kept_files(web: "Web", form: Any, values: Mapping[str, Any] | None, *,
                    record_id: int | None = None) -> dict[str, Any] | None:
    """`kept_files` in a read transaction of its own (for a handler to offload)."""
    with read_transaction(web.system.db) as conn:
        return kept_files(conn, web, form, values, record_id=record_id)


def _ids(value: Any) -> list[Any]:
    """The ids in a file field's value: ids as posted, or {id, ...} entries as stored."""
    if not isinstance(value, (list, tuple)):
        return []
    return [item.get("id") if isinstance(item, Mapping) else item for item in value]
