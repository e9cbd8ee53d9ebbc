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
    reopen_roles: tuple[str, ...] = ()
    """Besides administrators, who may reopen an ended instance from the record page (`reopen:`)."""
    reopen_at: tuple[str, ...] = ()
    """The nodes it may be reopened at; empty: every step a person works (`reopen_steps`)."""

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)

    def reopen_steps(self) -> list[str]:
        """The nodes an ended instance may be reopened at, in the order they are written."""
        if self.reopen_at:
            return [n for n in self.reopen_at if n in self.nodes]
        return [n for n, node in self.nodes.items() if "assign" in node.options]
