"""A form's record statuses: what the engine gives a record, what its flows' steps write, and
the option list that names them (its progress lookup's `statuses`). Read by the flow checks,
the SLA's pause, report conditions and scenario checks, each of which must agree on what a
status can be."""

from __future__ import annotations

from typing import Any, Iterator

from engine.kinds import BuildContext
from engine.types import YamlPath

__all__ = ["ENGINE_STATUSES", "node_statuses", "record_statuses", "status_list"]


ENGINE_STATUSES = frozenset({"new", "withdrawn"})
"""Statuses the engine itself gives a record: on creation, and when its submitter withdraws it."""


def status_list(form: Any, ctx: BuildContext) -> Any:
    """The option list naming the statuses of `form`'s records for customers (its progress
    lookup's `statuses`), or None when it has none (or the list failed to load)."""
    name = (getattr(form, "lookup", None) or {}).get("statuses")
    return ctx.definitions.get("list", {}).get(name) if name else None


def node_statuses(raw: Any) -> Iterator[tuple[YamlPath, Any]]:
    """(path inside the node, status) for every `status:` a node writes: its own and those of
    its escalation levels."""
    if not isinstance(raw, dict):
        return
    if "status" in raw:
        yield ("status",), raw["status"]
    for i, level in enumerate(raw.get("escalation") or []):
        if isinstance(level, dict) and "status" in level:
            yield ("escalation", i, "status"), level["status"]


def record_statuses(form: Any, ctx: BuildContext) -> set[str] | None:
    """Every status a record of `form` can have: the values of its status list when it has one,
    else those its flows write plus the engine's own. None when a flow failed to load (its
    statuses are not known)."""
    listed = status_list(form, ctx)
    if listed is not None:
        return listed.values()
    if "flow" in ctx.incomplete:
        return None
    found = set(ENGINE_STATUSES)
    for flow in ctx.definitions.get("flow", {}).values():
        if flow.form == form.name:
            for node in flow.nodes.values():
                found.update(str(status) for _, status in node_statuses(dict(node.options)))
    return found
