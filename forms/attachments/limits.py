"""What one upload may be: which types, how many bytes, how many pixels.

Limits come from the field the file is for (`attachment` / `image` options); an upload that
names no field gets `DEFAULT_LIMITS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from forms.attachments.kinds import FILE_TYPES, IMAGE_TYPES, KINDS, expand_accept

__all__ = ["DEFAULT_LIMITS", "DEFAULT_MAX_FILES", "DEFAULT_MAX_MB", "DEFAULT_TYPES", "HARD_MAX_BYTES",
           "Limits", "MAX_PIXELS", "MAX_SIDE", "MB", "ZipLimits", "limits_from_options"]

MB = 1024 * 1024
HARD_MAX_BYTES = 100 * MB
"""No field may allow more than this (the `max_size_mb` schema stops at 100)."""
DEFAULT_MAX_MB = 20
DEFAULT_MAX_FILES = 5
MAX_PIXELS = 40_000_000
MAX_SIDE = 20_000


@dataclass(frozen=True)
class ZipLimits:
    """Bounds on an Office document (a zip) checked from its directory, never by inflating it."""

    max_entries: int = 10_000
    max_total_uncompressed: int = 100 * MB
    max_ratio: float = 100.0
    ratio_applies_above: int = 64 * 1024
    """Small entries may compress well beyond the ratio without being a threat."""


@dataclass(frozen=True)
class Limits:
    types: frozenset[str]
    max_bytes: int = DEFAULT_MAX_MB * MB
    max_files: int = DEFAULT_MAX_FILES
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE
    zip: ZipLimits = field(default_factory=ZipLimits)

    def __post_init__(self) -> None:
        unknown = set(self.types) - set(FILE_TYPES)
        if unknown:
            raise ValueError(f"unknown file types {sorted(unknown)}")
        if not 0 < self.max_bytes <= HARD_MAX_BYTES:
            raise ValueError(f"max_bytes must be between 1 and {HARD_MAX_BYTES}")

    @property
    def allows_text(self) -> bool:
        return "txt" in self.types

    def accepted_text(self) -> str:
        """The accepted types for a message: `jpeg, png, pdf`."""
        return ", ".join(t for t in FILE_TYPES if t in self.types)

    def with_max_bytes(self, max_bytes: int) -> "Limits":
        return replace(self, max_bytes=max_bytes)


DEFAULT_TYPES = frozenset(KINDS["image"] + KINDS["pdf"] + KINDS["office"])
DEFAULT_LIMITS = Limits(types=DEFAULT_TYPES)


def limits_from_options(type_name: str, options: Mapping[str, Any]) -> Limits:
    """The limits of an `attachment` or `image` field from its YAML options."""
    max_bytes = int(float(options.get("max_size_mb", DEFAULT_MAX_MB)) * MB)
    max_bytes = max(1, min(max_bytes, HARD_MAX_BYTES))
    max_files = int(options.get("max_files", DEFAULT_MAX_FILES))
    if type_name == "image":
        types = IMAGE_TYPES
        max_pixels = min(int(options.get("max_pixels", MAX_PIXELS)), MAX_PIXELS)
    else:
        accept = options.get("accept")
        types = expand_accept(accept) if accept else DEFAULT_TYPES
        max_pixels = MAX_PIXELS
    return Limits(types=types, max_bytes=max_bytes, max_files=max_files, max_pixels=max_pixels)
