"""The rule engine: event rules, decision tables and SLA policies, with their actions and
functions. `register(registry)` adds them like any plugin; `RuleService` and `SlaService`
(rules.service, rules.sla) run them, subscribed to the event bus."""

from __future__ import annotations

from engine.registry import Registry
from rules.actions import BUILT_IN_ACTIONS
from rules.decisions import DecisionTableKind
from rules.functions import register as register_functions
from rules.kind import RuleSetKind
from rules.sla_kind import SlaPolicyKind


def register(registry: Registry) -> None:
    """Register the rule engine's definition kinds, actions and expression functions."""
    registry.definition_kinds.add(DecisionTableKind())
    registry.definition_kinds.add(SlaPolicyKind())
    registry.definition_kinds.add(RuleSetKind())
    for action in BUILT_IN_ACTIONS:
        registry.actions.add(action())
    register_functions(registry)
