"""File attachments: sniffed, size-limited, stored outside the database by sha256 (ADR 0004).

- `kinds`: the accepted file types and the kinds analysts name (`image`, `pdf`, `office`, `text`).
- `limits`: what one upload may be (`Limits`, from a field's options).
- `sniff`: what the bytes really are; refuses markup, polyglots, bombs and giant images.
- `names`: the harmless display name.
- `store`: `FileStore`, content-addressed files on disk.
- `service`: `AttachmentService`, upload / get / link with the `dk_attachments` rows.
"""

from __future__ import annotations

from forms.attachments.errors import UploadRefused
from forms.attachments.limits import DEFAULT_LIMITS, Limits, limits_from_options
from forms.attachments.service import AttachmentService
from forms.attachments.store import Attachment, FileStore

__all__ = ["DEFAULT_LIMITS", "Attachment", "AttachmentService", "FileStore", "Limits",
           "UploadRefused", "limits_from_options"]
