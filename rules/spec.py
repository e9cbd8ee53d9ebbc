"""Frozen specs of the rule engine's definitions: rule sets, decision tables, SLA policies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Mapping

from engine.types import Label, Span, label_text


@dataclass(frozen=True)
class Trigger:
    """What starts a rule: an event name plus an optional filter.

    `only` narrows the event: changed fields (record.updated), node ids (task.*, flow.entered),
    outcomes (flow.ended), SLA targets (sla.*). `cron` is set for `schedule` triggers.
    """

    event: str
    only: frozenset[str] = frozenset()
    cron: str | None = None
    span: Span | None = None

    def matches(self, name: str, data: Mapping[str, Any]) -> bool:
        if name != self.event:
            return False
        if not self.only:
            return True
        if name == "record.updated":
            return bool(self.only & set(data.get("changes") or ()))
        key = {"flow.ended": "outcome", "sla.warning": "target", "sla.breached": "target",
               "sla.escalated": "target"}.get(name, "node")
        return str(data.get(key)) in self.only


@dataclass(frozen=True)
class CompiledAction:
    """One step of a rule's `do:` list: its action type and what the type compiled."""

    type: str
    compiled: Any
    span: Span
    index: int


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed rule is retried (on a `rule.retry` timer) before it stays an incident."""

    attempts: int = 3
    delay: timedelta = timedelta(minutes=5)
    """The first retry's delay; each further retry waits twice as long."""


@dataclass(frozen=True)
class RuleSpec:
    """One event-condition-action rule."""

    ruleset: str
    name: str
    label: Label
    form: str | None
    triggers: tuple[Trigger, ...]
    when: Any
    actions: tuple[CompiledAction, ...]
    retry: RetryPolicy
    span: Span
    enabled: bool = True

    @property
    def key(self) -> str:
        return f"{self.ruleset}.{self.name}"

    def text(self, locale: str = "en") -> str:
        return label_text(self.label, locale, self.name)


@dataclass(frozen=True)
class RuleSetSpec:
    """A file of rules over one form's records (or over none: scheduled rules only)."""

    name: str
    form: str | None
    label: Label
    rules: Mapping[str, RuleSpec]
    span: Span


@dataclass(frozen=True)
class SlaLevel:
    """One row of a policy's `levels`: targets (work time) chosen when `when` holds."""

    when: Any
    targets: Mapping[str, Any]
    """target name -> Duration or timedelta."""
    span: Span


@dataclass(frozen=True)
class SlaTarget:
    """A clock of a policy: started by `starts`, stopped by `stops` (response, resolution),
    started afresh once stopped by `restarts` (a reopened record)."""

    name: str
    label: Label
    starts: tuple[Trigger, ...]
    stops: tuple[Trigger, ...]
    restarts: tuple[Trigger, ...] = ()


@dataclass(frozen=True)
class SlaEscalation:
    """Repeated escalation while no status update happens: every `every`, one step up `chain`."""

    when: Any
    every: Any
    chain: tuple[str, ...]


@dataclass(frozen=True)
class SlaPolicy:
    """Service-level targets over one form's records."""

    name: str
    form: str
    label: Label
    counting: str
    """'business' (the bundle calendar) or 'wall' (around the clock in the bundle's zone)."""
    yellow_share: float
    targets: Mapping[str, SlaTarget]
    levels: tuple[SlaLevel, ...]
    pause_statuses: frozenset[str]
    pause_nodes: frozenset[str]
    escalation: SlaEscalation | None
    span: Span
    level_names: frozenset[str] = field(default_factory=frozenset)
    """Names the `levels` conditions read: a change of one of them recomputes the targets."""
