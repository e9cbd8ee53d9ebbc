"""What a simulation did: `docket simulate` runs sample traffic through a bundle on a scratch
database (reports/demo.py drives it, with timers firing on the way), then this module sums up
what an analyst wants to know before a change goes live: how flows ended, how long each step
kept its records, how the SLA targets fared, how often cases escalated, which messages would
have gone out and whether anything broke (incidents). Two summaries of the same traffic
(`--compare`) are shown side by side.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping

import sqlalchemy as sa

from engine.runtime import Runtime
from engine.storage.db import read_transaction
from engine.storage.tables import flow_instances, history, incidents, outbox, sla_clocks, tasks

__all__ = ["StepStats", "Summary", "compare_lines", "summarize", "summary_lines"]


@dataclass(frozen=True)
class StepStats:
    """One flow node's tasks: how many were completed, still open, and how long they stayed
    open (hours on the wall clock, median and 90th percentile of the completed ones)."""

    completed: int
    open: int
    median_hours: float | None
    p90_hours: float | None


@dataclass
class Summary:
    """The numbers of one simulated run."""

    bundle: str
    records: int
    flows: dict[str, int] = field(default_factory=dict)
    steps: dict[str, StepStats] = field(default_factory=dict)
    sla: dict[str, dict[str, int]] = field(default_factory=dict)
    escalations: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    incidents: int = 0
    incident_reasons: dict[str, int] = field(default_factory=dict)
    """What failed (an incident's message: the node or rule, the YAML position, why) -> how often."""
    refused: dict[str, int] = field(default_factory=dict)
    """Why sample records were refused by the form ("field: message" -> samples)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def summarize(runtime: Runtime, form: str, *, bundle: str,
              refused: Mapping[str, int] | None = None) -> Summary:
    """Read a simulated database's results for `form`'s records; `refused` says why the form
    refused samples (the runner's count), so that none silently goes missing."""
    with read_transaction(runtime.db) as conn:
        records = conn.execute(sa.select(sa.func.count(sa.distinct(flow_instances.c.record_id)))
                               .where(flow_instances.c.form == form)).scalar() or 0
        summary = Summary(bundle, int(records), refused=dict(refused or {}))
        for status, outcome, count in conn.execute(
                sa.select(flow_instances.c.status, flow_instances.c.outcome, sa.func.count())
                .where(flow_instances.c.form == form)
                .group_by(flow_instances.c.status, flow_instances.c.outcome)):
            key = f"{status}: {outcome}" if outcome else str(status)
            summary.flows[key] = summary.flows.get(key, 0) + int(count)
        summary.steps = _steps(conn, form)
        for target, status, count in conn.execute(
                sa.select(sla_clocks.c.target, sla_clocks.c.status, sa.func.count())
                .where(sla_clocks.c.form == form).group_by(sla_clocks.c.target, sla_clocks.c.status)):
            summary.sla.setdefault(str(target), {})[str(status)] = int(count)
        summary.escalations = int(conn.execute(
            sa.select(sa.func.count()).select_from(history).where(
                history.c.form == form, history.c.kind.in_(("task.escalated", "sla.escalated")))).scalar() or 0)
        summary.messages = {str(channel): int(count) for channel, count in conn.execute(
            sa.select(outbox.c.channel, sa.func.count()).group_by(outbox.c.channel))}
        reasons = dict(conn.execute(sa.select(incidents.c.message, sa.func.count()).group_by(incidents.c.message)).all())
        summary.incidents = int(sum(reasons.values()))
        summary.incident_reasons = {str(message): int(count) for message, count in reasons.items()}
    return summary


def _steps(conn: Any, form: str) -> dict[str, StepStats]:
    hours: dict[str, list[float]] = {}
    still_open: dict[str, int] = {}
    for node, status, created, completed in conn.execute(
            sa.select(tasks.c.node, tasks.c.status, tasks.c.created_at, tasks.c.completed_at)
            .where(tasks.c.form == form)):
        hours.setdefault(node, [])
        if status == "completed" and completed is not None:
            hours[node].append((completed - created).total_seconds() / 3600)
        elif status in ("open", "claimed"):
            still_open[node] = still_open.get(node, 0) + 1
    out = {}
    for node, values in sorted(hours.items()):
        values.sort()
        out[node] = StepStats(len(values), still_open.get(node, 0),
                              round(statistics.median(values), 1) if values else None,
                              round(values[min(len(values) - 1, int(len(values) * 0.9))], 1) if values else None)
    return out


# -- text -----------------------------------------------------------------------------------------
def _rows(summary: Summary) -> Iterator[tuple[str, str]]:
    """(label, value) rows of one summary, in the order they are printed."""
    yield "records", str(summary.records)
    if summary.refused:
        yield "refused samples", str(sum(summary.refused.values()))
    for key, count in sorted(summary.flows.items()):
        yield f"flows {key}", str(count)
    for node, stats in summary.steps.items():
        time = "-" if stats.median_hours is None else f"{stats.median_hours} h (p90 {stats.p90_hours} h)"
        yield f"step {node}", f"{stats.completed} done, {stats.open} open, {time}"
    for target, counts in sorted(summary.sla.items()):
        total = sum(counts.values())
        parts = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
        yield f"sla {target}", f"{parts} (of {total})"
    yield "escalations", str(summary.escalations)
    for channel, count in sorted(summary.messages.items()):
        yield f"messages {channel}", str(count)
    yield "incidents", str(summary.incidents)


def _reasons(summary: Summary, title: str = "") -> list[str]:
    """Why samples were refused and what broke, most frequent first, as lines after the
    table (each reason is long: a step or rule and its position in the YAML): a simulation of
    nothing must not read as a quiet month, nor an incident count as a mystery."""
    lines = []
    for heading, reasons in (("refused samples", summary.refused), ("incidents", summary.incident_reasons)):
        if reasons:
            lines.append(f"{heading}{title}:")
            lines += [f"  {count:>5}  {reason}" for reason, count in
                      sorted(reasons.items(), key=lambda item: (-item[1], item[0]))[:5]]
    return lines


def summary_lines(summary: Summary) -> list[str]:
    """One summary as aligned text lines."""
    rows = list(_rows(summary))
    width = max(len(label) for label, _ in rows)
    lines = [f"simulation of {summary.bundle}"] + [f"  {label:<{width}}  {value}" for label, value in rows]
    lines += _reasons(summary)
    if summary.refused and not summary.records:
        lines.append("hint: the form refused every sample record; sample values come from each field's "
                     "type, options and default, so a required field they cannot fill (a file, a "
                     "signature) refuses them all: make it optional in a copy to simulate")
    return lines


def _merged(first: list[str], second: list[str]) -> list[str]:
    """The labels of both runs, each of `second`'s own after the label it follows there: a step
    only the changed bundle has sits among the steps, not under the incidents."""
    labels = list(first)
    for i, label in enumerate(second):
        if label not in labels:
            before = next((known for known in reversed(second[:i]) if known in labels), None)
            labels.insert(labels.index(before) + 1 if before is not None else 0, label)
    return labels


def compare_lines(before: Summary, after: Summary) -> list[str]:
    """Two summaries of the same traffic side by side; rows that differ are marked `*`."""
    left, right = dict(_rows(before)), dict(_rows(after))
    labels = _merged(list(left), list(right))
    width = max(len(label) for label in labels)
    col = max([len(before.bundle)] + [len(v) for v in left.values()])
    lines = [f"  {'':<{width}}  {before.bundle:<{col}}  {after.bundle}"]
    for label in labels:
        a, b = left.get(label, "-"), right.get(label, "-")
        lines.append(f"{'*' if a != b else ' '} {label:<{width}}  {a:<{col}}  {b}")
    return lines + _reasons(before, f" in {before.bundle}") + _reasons(after, f" in {after.bundle}")
