"""Files on disk, outside the database, named by the sha256 of their content.

`FileStore(root)` keeps each distinct content once, at `root/ab/cd/<sha256>`: the server chooses
every path, so nothing a sender writes (a file name, a declared type) can ever name a place on
disk, and identical uploads share one file. An upload streams into a temporary file under
`root/tmp` in chunks while it is hashed and counted; it is refused the moment it passes its size
limit (a 200 MB upload never sits in memory, nor entirely on disk), then sniffed, then renamed
into place (atomic on one file system; fsynced first, so a committed row never points at a file
lost in a crash).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Callable, Iterable, Union

from forms.attachments.errors import UploadRefused
from forms.attachments.limits import MB, Limits
from forms.attachments.names import display_name
from forms.attachments.sniff import sniff

__all__ = ["CHUNK", "DEFAULT_ROOT", "Attachment", "CopiedFiles", "FileStore", "Incoming", "Stream", "SweptFiles",
           "default_root", "iter_chunks"]

DEFAULT_ROOT = Path("var/files")
CHUNK = 256 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")

Stream = Union[BinaryIO, Iterable[bytes], bytes]


def default_root() -> Path:
    """Where files live: env DOCKET_FILES_DIR, else ./var/files."""
    return Path(os.environ.get("DOCKET_FILES_DIR") or DEFAULT_ROOT)


@dataclass(frozen=True)
class Attachment:
    """A stored file: what it is (sniffed), its checksum, and the name to show."""

    sha256: str
    size: int
    type: str
    media_type: str
    name: str
    path: Path
    width: int | None = None
    height: int | None = None
    created: bool = True
    """False when the same content was already stored (deduplicated)."""


def _max_mb(limits: Limits) -> str:
    return f"{limits.max_bytes / MB:g}"


class Incoming:
    """An upload being received: `write` chunks, then `finish` (or `discard`).

    Use as a context manager: leaving the block without `finish` removes the temporary file.
    """

    def __init__(self, store: "FileStore", limits: Limits):
        self.store = store
        self.limits = limits
        self.size = 0
        self._hash = hashlib.sha256()
        temp_dir = store.root / "tmp"
        temp_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd, name = tempfile.mkstemp(dir=temp_dir, prefix="upload-")
        self.temp_path = Path(name)
        self._file: BinaryIO | None = os.fdopen(fd, "wb")
        self._done = False

    def write(self, chunk: bytes) -> None:
        """Add bytes; UploadRefused('too_large') (and the temporary file gone) past the limit."""
        if self._file is None:
            raise RuntimeError("this upload is already finished or discarded")
        self.size += len(chunk)
        if self.size > self.limits.max_bytes:
            self.discard()
            raise UploadRefused("too_large", max_mb=_max_mb(self.limits))
        self._hash.update(chunk)
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise self._named(exc)

    def finish(self, filename: str | None, *, limits: Limits | None = None) -> Attachment:
        """Check what arrived (against `limits`, default the ones it streamed under) and keep it."""
        if self._file is None:
            raise RuntimeError("this upload is already finished or discarded")
        limits = limits or self.limits
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            if self.size > limits.max_bytes:
                raise UploadRefused("too_large", max_mb=_max_mb(limits))
            found = sniff(self.temp_path, limits)
        except OSError as exc:
            self.discard()
            raise self._named(exc)
        except BaseException:
            self.discard()
            raise
        sha256 = self._hash.hexdigest()
        final = self.store.path_of(sha256)
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        created = True
        if final.exists() and final.stat().st_size == self.size and _touch(final):
            created = False  # same content already kept: keep one copy (touched: see sweep)
            self.temp_path.unlink(missing_ok=True)
        else:
            os.replace(self.temp_path, final)  # atomic; also repairs a truncated copy
        self._done = True
        file_type = found.file_type
        return Attachment(sha256=sha256, size=self.size, type=found.type,
                          media_type=file_type.media_type, name=display_name(filename, file_type),
                          path=final, width=found.width, height=found.height, created=created)

    def _named(self, exc: OSError) -> OSError:
        """`exc` naming the file it was writing: a write or flush that finds the disk full names
        none, and the log's "the disk refused" then said not which disk."""
        if exc.filename is None:
            exc.filename = str(self.temp_path)
        return exc

    def discard(self) -> None:
        """Forget the upload: close and remove the temporary file."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if not self._done:
            self.temp_path.unlink(missing_ok=True)
        self._done = True

    def __enter__(self) -> "Incoming":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self.discard()


def _touch(path: Path) -> bool:
    """Mark a kept file as just used (its mtime), so a sweep running now leaves it; False when
    a sweep removed it a moment ago (the caller then writes its own copy)."""
    try:
        os.utime(path)
        return True
    except FileNotFoundError:
        return False


@dataclass(frozen=True)
class SweptFiles:
    """What `FileStore.sweep` removed."""

    files: int
    bytes: int
    temporary: int


@dataclass(frozen=True)
class CopiedFiles:
    """What `FileStore.copy_to` did."""

    copied: int
    present: int
    """Already in the destination (the same name is the same bytes), so left as they were."""
    bytes: int
    """Of the files copied."""
    missing: list[str]
    """Checksums named but absent from this store, or whose bytes no longer match them."""


class FileStore:
    """Content-addressed files under `root` (default `var/files`, env DOCKET_FILES_DIR)."""

    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else default_root()

    def begin(self, limits: Limits) -> Incoming:
        """Start receiving an upload (see `Incoming`)."""
        return Incoming(self, limits)

    def save(self, stream: Stream, filename: str | None, limits: Limits) -> Attachment:
        """Store a whole stream: a binary file object, an iterable of byte chunks, or bytes."""
        with self.begin(limits) as incoming:
            for chunk in iter_chunks(stream):
                incoming.write(chunk)
            return incoming.finish(filename)

    def path_of(self, sha256: str) -> Path:
        """Where the content with this checksum lives; ValueError for anything but 64 hex digits."""
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    def sweep(self, in_use: Callable[[str], bool], older_than: float) -> SweptFiles:
        """Remove stored files no row uses (`in_use(sha256)` False) and untouched for
        `older_than` seconds, and upload leftovers in `tmp/` as old (a crash mid-upload).

        Safe beside uploads of the same content: a file is first renamed aside, then removed
        only if it is still untouched, i.e. no upload kept it since it was judged unused (an
        upload touches the file it shares, and writes its own copy if the file just went).
        """
        cutoff = time.time() - older_than
        files = size = temporary = 0
        for path in self.root.glob("??/??/*"):
            if not _SHA256.fullmatch(path.name) or not path.is_file():
                continue
            if path.stat().st_mtime >= cutoff or in_use(path.name):
                continue
            aside = path.with_name(path.name + ".sweep")
            try:
                os.replace(path, aside)
            except FileNotFoundError:
                continue
            stat = aside.stat()
            if stat.st_mtime >= cutoff:  # an upload kept it a moment ago: put it back
                if not path.exists():
                    os.replace(aside, path)
                else:
                    aside.unlink(missing_ok=True)
                continue
            aside.unlink(missing_ok=True)
            files, size = files + 1, size + stat.st_size
        for leftover in (self.root / "tmp").glob("upload-*"):
            if leftover.is_file() and leftover.stat().st_mtime < cutoff:
                leftover.unlink(missing_ok=True)
                temporary += 1
        return SweptFiles(files, size, temporary)

    def copy_to(self, dest: "FileStore", sha256s: Iterable[str]) -> CopiedFiles:
        """Copy the files with these checksums into `dest` (e.g. a backup's store), each checked
        against its checksum as it is read; a file `dest` already has is left alone. A file
        missing here, or changed on disk, is reported in `missing` and not copied."""
        copied = present = size = 0
        missing: list[str] = []
        temp_dir = dest.root / "tmp"
        for sha256 in sorted(set(sha256s)):
            target = dest.path_of(sha256)
            if target.is_file():
                present += 1
                continue
            if not temp_dir.is_dir():
                temp_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
            fd, name = tempfile.mkstemp(dir=temp_dir, prefix="copy-")
            digest = hashlib.sha256()
            try:
                with os.fdopen(fd, "wb") as out, self.open(sha256) as src:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
                    written = out.tell()
            except FileNotFoundError:
                Path(name).unlink(missing_ok=True)
                missing.append(sha256)
                continue
            if digest.hexdigest() != sha256:
                Path(name).unlink(missing_ok=True)
                missing.append(sha256)
                continue
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
            os.replace(name, target)
            copied, size = copied + 1, size + written
        return CopiedFiles(copied, present, size, missing)

    def open(self, sha256: str) -> BinaryIO:
        """The stored bytes for reading (FileNotFoundError if missing)."""
        return open(self.path_of(sha256), "rb")

    def verify(self, sha256: str, size: int | None = None) -> bool:
        """True if the stored file still has this checksum (and size): nothing changed it."""
        path = self.path_of(sha256)
        try:
            if size is not None and path.stat().st_size != size:
                return False
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return False
        return digest.hexdigest() == sha256


def iter_chunks(stream: Stream) -> Iterable[bytes]:
    """Chunks of bytes from a binary file object, an iterable of chunks, or bytes."""
    if isinstance(stream, (bytes, bytearray, memoryview)):
        data = bytes(stream)
        for start in range(0, len(data), CHUNK):
            yield data[start:start + CHUNK]
        return
    read = getattr(stream, "read", None)
    if read is not None:
        while chunk := read(CHUNK):
            yield chunk
        return
    for chunk in stream:  # type: ignore[union-attr]
        yield chunk
