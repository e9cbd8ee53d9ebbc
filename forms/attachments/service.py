"""Attachments at run time: upload (store the bytes, record a pending row), look up, link.

An upload answers a random token (`secrets.token_urlsafe(24)`, 32 characters, 192 bits): the id
the client later sends in a form's `attachment` field and the id in `/files/<id>`. Ids are never
sequential, so they cannot be guessed or enumerated. A row is `pending` until the record it
belongs to is stored; `link` then binds it to (form, record, field) inside the submitting
transaction, and refuses a token that is unknown or already bound to another record.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any, Iterable, Mapping

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from engine.errors import ConflictError, NotFoundError, ValidationFailed
from engine.runtime import Runtime
from engine.storage.db import read_transaction, transaction
from engine.storage.tables import attachments as dk_attachments
from forms.attachments.kinds import FILE_TYPES
from forms.attachments.limits import DEFAULT_LIMITS, Limits, limits_from_options
from forms.attachments.store import Attachment, FileStore, Incoming, Stream, SweptFiles, iter_chunks

__all__ = ["FILE_FIELD_TYPE_NAMES", "TOKEN", "AttachmentService", "is_token", "load_values",
           "new_token", "pending_bytes", "type_of_media", "value_of_row"]

TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")
FILE_FIELD_TYPE_NAMES = frozenset({"attachment", "image"})
_MEDIA_TO_TYPE = {t.media_type: t.name for t in FILE_TYPES.values()}

_LINK_MESSAGES = {
    "en": "These files are unknown or belong to another record: {ids}.",
    "zh-CN": "以下文件不存在或属于其他记录：{ids}。",
}


def new_token() -> str:
    """A fresh attachment id: 24 random bytes, URL-safe base64 (32 characters)."""
    return secrets.token_urlsafe(24)


def is_token(value: Any) -> bool:
    return isinstance(value, str) and TOKEN.fullmatch(value) is not None


def type_of_media(media_type: str) -> str:
    """The short type name (`png`) of a stored media type."""
    return _MEDIA_TO_TYPE.get(media_type, "unknown")


def value_of_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dk_attachments row as the value an attachment field stores."""
    return {"id": row["id"], "name": row["original_name"], "size": int(row["size"]),
            "type": type_of_media(row["media_type"]), "sha256": row["sha256"]}


def pending_bytes(conn: Connection) -> int:
    """The bytes of uploads no record holds yet (pending until linked or swept)."""
    total = conn.execute(select(func.coalesce(func.sum(dk_attachments.c.size), 0))
                         .where(dk_attachments.c.status == "pending")).scalar()
    return int(total or 0)


def load_values(conn: Connection, tokens: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored facts of these attachment ids (unknown ids are simply absent)."""
    wanted = sorted({t for t in tokens if is_token(t)})
    if not wanted:
        return {}
    rows = conn.execute(select(dk_attachments).where(dk_attachments.c.id.in_(wanted))).mappings()
    return {row["id"]: {**value_of_row(row), "status": row["status"], "form": row["form"],
                        "record_id": row["record_id"], "field": row["field"]} for row in rows}


class AttachmentService:
    """Uploads and their rows over a `FileStore`; registered as `runtime.services['attachments']`."""

    def __init__(self, runtime: Runtime, store: FileStore):
        self.rt = runtime
        self.store = store
        runtime.services["attachments"] = self

    # -- limits --------------------------------------------------------------------------------
    def limits_for(self, form: str | None = None, field: str | None = None) -> Limits:
        """The limits of an upload for `form`.`field` (an attachment or image field).

        Neither given: `DEFAULT_LIMITS`. NotFoundError for an unknown form or field, ValueError
        for a field that takes no files.
        """
        if form is None and field is None:
            return DEFAULT_LIMITS
        if not form or not field:
            raise ValueError("name both the form and the field the file is for")
        spec = self.rt.bundle.all("form").get(form)
        if spec is None:
            raise NotFoundError(f"no form '{form}'")
        field_spec = spec.fields.get(field)
        if field_spec is None:
            raise NotFoundError(f"form '{form}' has no field '{field}'")
        if field_spec.type not in FILE_FIELD_TYPE_NAMES:
            raise ValueError(f"field '{field}' of form '{form}' does not take files")
        return limits_from_options(field_spec.type, field_spec.options)

    # -- commands ------------------------------------------------------------------------------
    def begin(self, limits: Limits) -> Incoming:
        """Start receiving an upload chunk by chunk (the web layer streams into it)."""
        return self.store.begin(limits)

    def upload(self, stream: Stream, filename: str | None, declared_type: str | None = None, *,
               actor: str | None, limits: Limits) -> dict[str, Any]:
        """Store a file and record it as pending; returns {id, name, size, type, sha256}.

        `declared_type` (what the browser said) is never trusted: the bytes decide.
        UploadRefused when the file breaks `limits`.
        """
        with self.begin(limits) as incoming:
            for chunk in iter_chunks(stream):
                incoming.write(chunk)
            return self.complete(incoming, filename, declared_type, actor=actor)

    def complete(self, incoming: Incoming, filename: str | None, declared_type: str | None = None,
                 *, actor: str | None, limits: Limits | None = None) -> dict[str, Any]:
        """Finish a streamed upload (checked against `limits`, default its own) and record it."""
        stored = incoming.finish(filename, limits=limits)
        return self.record(stored, actor=actor)

    def record(self, stored: Attachment, *, actor: str | None) -> dict[str, Any]:
        """Insert the pending row of a stored file under a fresh random id."""
        token = new_token()
        with transaction(self.rt.db) as conn:
            conn.execute(insert(dk_attachments).values(
                id=token, sha256=stored.sha256, size=stored.size, media_type=stored.media_type,
                original_name=stored.name, created_at=self.rt.clock.now(),
                created_by=actor[:150] if actor else None, status="pending"))
        return {"id": token, "name": stored.name, "size": stored.size, "type": stored.type,
                "sha256": stored.sha256}

    def sweep(self, older_than: timedelta) -> tuple[int, SweptFiles]:
        """Forget uploads never linked to a record within `older_than` (a form abandoned after
        its photo went up, a file unticked after a refusal), then remove the stored files no
        row uses any more; (rows deleted, what the store removed)."""
        cutoff = self.rt.clock.now() - older_than
        with transaction(self.rt.db) as conn:
            rows = conn.execute(delete(dk_attachments).where(
                dk_attachments.c.status == "pending", dk_attachments.c.created_at < cutoff)).rowcount

        def in_use(sha256: str) -> bool:
            with read_transaction(self.rt.db) as conn:
                return conn.execute(select(dk_attachments.c.id).where(
                    dk_attachments.c.sha256 == sha256).limit(1)).first() is not None

        return int(rows or 0), self.store.sweep(in_use, older_than.total_seconds())

    def link(self, conn: Connection, tokens: Iterable[str], form: str, record_id: int, field: str,
             *, locale: str = "en") -> list[dict[str, Any]]:
        """Bind pending uploads to a record's field, inside the caller's transaction.

        Idempotent for tokens already bound to this very (form, record, field). A token that is
        unknown or bound elsewhere raises ValidationFailed on `field` (nothing is bound); a token
        bound by a concurrent command between the check and the update raises ConflictError.
        Returns the stored values, in the order given.
        """
        wanted = list(dict.fromkeys(tokens))
        found = load_values(conn, wanted)
        bad = [t for t in wanted if t not in found or not _bindable(found[t], form, record_id, field)]
        if bad:
            text = _LINK_MESSAGES.get(locale, _LINK_MESSAGES["en"])
            raise ValidationFailed({field: [text.format(ids=", ".join(str(t)[:40] for t in bad))]})
        pending = [t for t in wanted if found[t]["status"] == "pending"]
        if pending:
            result = conn.execute(
                update(dk_attachments)
                .where(dk_attachments.c.id.in_(pending), dk_attachments.c.status == "pending")
                .values(status="linked", form=form, record_id=record_id, field=field))
            if result.rowcount != len(pending):
                raise ConflictError("an attachment was linked by someone else at the same time; "
                                    "try again")
        return [_public(found[t]) for t in wanted]

    def link_record(self, conn: Connection, form: Any, values: Mapping[str, Any], record_id: int,
                    *, locale: str = "en") -> None:
        """Link every attachment in a record's values (`form`: a CompiledForm) to the record."""
        for name, ftype in form.types.items():
            if getattr(ftype, "holds_attachments", False) and values.get(name):
                self.link(conn, [item["id"] for item in values[name]], form.name, record_id, name,
                          locale=locale)

    # -- queries -------------------------------------------------------------------------------
    def keepable(self, conn: Connection, tokens: Iterable[Any], form: str, field: str,
                 record_id: int | None = None) -> list[dict[str, Any]]:
        """The stored values of the ids `link` would still bind to (form, record_id, field), in
        the order given: pending uploads, and ones already bound there.

        A page shown again after a refused post offers these files again; an unknown id, a
        malformed one or one bound to another record is left out (its name is never shown).
        """
        wanted = list(dict.fromkeys(t for t in tokens if is_token(t)))
        found = load_values(conn, wanted)
        return [_public(found[t]) for t in wanted
                if t in found and _bindable(found[t], form, record_id, field)]

    def get(self, token: str) -> dict[str, Any]:
        """The row of an attachment id; NotFoundError if there is none (or it is malformed)."""
        if not is_token(token):
            raise NotFoundError("no such file")
        with read_transaction(self.rt.db) as conn:
            row = conn.execute(select(dk_attachments).where(dk_attachments.c.id == token)).mappings().first()
        if row is None:
            raise NotFoundError("no such file")
        return dict(row)

    def resolve(self, items: Iterable[Any]) -> list[Any]:
        """Replace ids (or {id: ...} dicts) by the stored values; unknown ones are kept as sent,
        so the field's own checks report them."""
        items = list(items)
        ids = [i if isinstance(i, str) else i.get("id") for i in items if isinstance(i, (str, dict))]
        with read_transaction(self.rt.db) as conn:
            found = load_values(conn, [i for i in ids if isinstance(i, str)])
        out = []
        for item in items:
            key = item if isinstance(item, str) else item.get("id") if isinstance(item, dict) else None
            out.append(_public(found[key]) if isinstance(key, str) and key in found else item)
        return out


def _bindable(found: Mapping[str, Any], form: str, record_id: int | None, field: str) -> bool:
    """Whether `link` may bind this stored upload to (form, record_id, field)."""
    return found["status"] == "pending" or (
        (found["form"], found["record_id"], found["field"]) == (form, record_id, field))


def _public(value: Mapping[str, Any]) -> dict[str, Any]:
    return {k: value[k] for k in ("id", "name", "size", "type", "sha256")}
