"""Frozen specs of flows and their nodes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from engine.types import Label, Span, label_text


@dataclass(frozen=True)
class NodeSpec:
    """One node; `options` are its type's own keys, `compiled` what its type built at load."""

    id: str
    type: str
    label: Label
    span: Span
    options: Mapping[str, Any]
    next: str | None = None
    compiled: Mapping[str, Any] = field(default_factory=dict)

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.id)


@dataclass(frozen=True)
class FlowSpec:
    """A flow over one form's records."""

    name: str
    form: str
    label: Label
    start: str
    nodes: Mapping[str, NodeSpec]
    span: Span
    start_on_create: bool = True

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)
