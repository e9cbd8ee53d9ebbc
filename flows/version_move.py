"""Move running flow instances to the bundle's current version (`docket instances migrate`).

An instance runs on the bundle version it started on (RELIABILITY 32): deploying a new version
never changes a complaint in progress. When the business wants the new process for the work
already under way (a fixed approval limit, a new step after the current one), an administrator
moves those instances explicitly. Each instance moves whole or not at all, in its own
transaction, and only where the new definition can carry its position on:

- every step holding a token (and its open tasks) exists in the new flow, under the same name
  or one given as a rename (`--map flow.old=new`), and is of the same type;
- a `wait` step is unchanged (its timer or event was chosen by the old options);
- a `join` some branches already reached expects as many branches as before.

What cannot move is named with the reason and stays on its version. Armed timers of a renamed
step follow it; a step's `timeout:` keeps its due time and takes the new definition's target
(cancelled where the new step has none). The move is one `flow.migrated` history entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from engine.errors import DocketError, did_you_mean
from engine.storage.db import read_transaction, transaction
from engine.storage.prepared import INSERT_HISTORY
from engine.storage.tables import flow_instances, tasks
from flows.node_run import PARENT_KEY, TIMEOUT_TIMER, WAIT_TIMER
from flows.spec import FlowSpec

__all__ = ["InstanceMove", "MoveError", "apply_moves", "on_earlier_versions", "parse_renames", "plan_moves"]

Renames = Mapping[str, Mapping[str, str]]
"""flow -> {old step -> new step}."""

_MOVABLE = ("running", "incident")
_OPEN_TASK = tasks.c.status.in_(("open", "claimed"))


class MoveError(DocketError):
    """A rename that names no flow or step of the current bundle."""


@dataclass(frozen=True)
class InstanceMove:
    """One instance on an earlier version: where it stands and whether it can move."""

    instance_id: int
    flow: str
    form: str
    record_id: int
    version: str
    steps: tuple[str, ...]
    renamed: Mapping[str, str] = field(default_factory=dict)
    """Its steps that take another name in the new version (old -> new)."""
    blocked: str | None = None
    """Why it cannot move (None: it can)."""


def parse_renames(items: list[str], flows: Mapping[str, FlowSpec]) -> dict[str, dict[str, str]]:
    """`FLOW.OLD=NEW` arguments as renames, checked against the current flows: a typo in a
    rename would otherwise read as "this step is not in the current version"."""
    renames: dict[str, dict[str, str]] = {}
    for item in items:
        flow_old, _, new = item.partition("=")
        flow_name, _, old = flow_old.partition(".")
        if not (flow_name and old and new):
            raise MoveError(f"--map {item}: write it as FLOW.OLD_STEP=NEW_STEP")
        flow = flows.get(flow_name)
        if flow is None:
            hint = did_you_mean(flow_name, flows) or f"its flows: {', '.join(sorted(flows))}"
            raise MoveError(f"--map {item}: the current bundle has no flow '{flow_name}' ({hint})")
        if new not in flow.nodes:
            hint = did_you_mean(new, flow.nodes) or f"its steps: {', '.join(flow.nodes)}"
            raise MoveError(f"--map {item}: flow '{flow_name}' has no step '{new}' in the current "
                            f"version ({hint})")
        renames.setdefault(flow_name, {})[old] = new
    return renames


def plan_moves(service: Any, renames: Renames | None = None) -> list[InstanceMove]:
    """Every running instance on an earlier bundle version, with what moving it would do."""
    current = service.rt.bundle.hash
    with read_transaction(service.rt.db) as conn:
        rows = conn.execute(select(flow_instances).where(flow_instances.c.status.in_(_MOVABLE),
                                                         flow_instances.c.bundle_hash != current)
                            .order_by(flow_instances.c.id)).mappings().all()
        return [_plan(service, conn, row, renames or {}) for row in rows]


def on_earlier_versions(service: Any) -> list[tuple[str, str, int]]:
    """(flow, bundle version, how many) of the running instances not on the current version:
    counted by the database, so the admin page stays quick with thousands of them."""
    with read_transaction(service.rt.db) as conn:
        rows = conn.execute(select(flow_instances.c.flow, flow_instances.c.bundle_hash, func.count())
                            .where(flow_instances.c.status.in_(_MOVABLE),
                                   flow_instances.c.bundle_hash != service.rt.bundle.hash)
                            .group_by(flow_instances.c.flow, flow_instances.c.bundle_hash)
                            .order_by(flow_instances.c.flow, flow_instances.c.bundle_hash)).all()
    return [(flow, version, int(count)) for flow, version, count in rows]


def apply_moves(service: Any, renames: Renames | None = None, *, actor: str = "cli") -> list[InstanceMove]:
    """Move every instance that can move, each in its own transaction; returns the plan as
    carried out (an instance that changed since the plan is planned again inside its
    transaction, so it moves only from where it stands)."""
    done = []
    for planned in plan_moves(service, renames):
        if planned.blocked is not None:
            done.append(planned)
            continue
        with transaction(service.rt.db) as conn:
            row = conn.execute(select(flow_instances).where(flow_instances.c.id == planned.instance_id)
                               .with_for_update()).mappings().first()
            move = _plan(service, conn, row, renames or {})
            if move.blocked is None and row["bundle_hash"] != service.rt.bundle.hash:
                _move(service, conn, row, move, actor)
        done.append(move)
    return done


def _plan(service: Any, conn: Connection, row: Mapping[str, Any], renames: Renames) -> InstanceMove:
    """What moving the instance `row` to the current version does, or why it cannot."""
    open_steps = conn.execute(select(tasks.c.node).where(tasks.c.instance_id == row["id"], _OPEN_TASK)).scalars()
    steps = tuple(dict.fromkeys([*(row["current"] or []), *open_steps]))
    base = dict(instance_id=row["id"], flow=row["flow"], form=row["form"], record_id=row["record_id"],
                version=row["bundle_hash"], steps=steps)
    new = service.flows.get(row["flow"])
    if new is None:
        return InstanceMove(**base, blocked=f"the current bundle has no flow '{row['flow']}'")
    try:
        old: FlowSpec | None = service._flow(row)
    except DocketError:
        # A version recorded without its files (before Docket kept them): its instances cannot
        # run anywhere else, so they move wherever their steps' names still exist.
        old = None
    names = renames.get(row["flow"], {})
    renamed = {step: names[step] for step in steps if names.get(step, step) != step}
    blocked = _blocked(old, new, steps, names, row["variables"] or {})
    return InstanceMove(**base, renamed=renamed, blocked=blocked)


def _blocked(old: FlowSpec | None, new: FlowSpec, steps: tuple[str, ...], names: Mapping[str, str],
             variables: Mapping[str, Any]) -> str | None:
    """Why an instance at `steps` of `old` (None: unknown) cannot go on in `new`, or None."""
    for step in steps:
        target = names.get(step, step)
        was = old.nodes.get(step) if old is not None else None
        now = new.nodes.get(target)
        if now is None:
            return (f"its step '{step}' is not in the current version (name the step that takes "
                    f"its place: --map {new.name}.{step}=NEW_STEP)")
        if was is not None and was.type != now.type:
            return (f"its step '{step}' is a {was.type} step and '{target}' in the current version is "
                    f"of type {now.type}: its open tasks cannot carry over")
        if was is not None and was.type == "wait" and dict(was.options) != dict(now.options):
            return f"its wait step '{step}' waits for something else in the current version"
    for step, seen in variables.items():
        was = old.nodes.get(step) if old is not None else None
        if was is None or was.type != "join" or not isinstance(seen, Mapping) or not seen.get("arrived"):
            continue
        now = new.nodes.get(names.get(step, step))
        expected = was.compiled.get("expected")
        if now is None or now.type != "join" or now.compiled.get("expected") != expected:
            return (f"{seen['arrived']} of the {expected} branches of its parallel step have reached "
                    f"'{step}', which does not wait for the same branches in the current version")
    return None


def _move(service: Any, conn: Connection, row: Mapping[str, Any], move: InstanceMove, actor: str) -> None:
    """Carry the instance to the current version in the caller's transaction."""
    renamed = move.renamed
    new = service.flows[row["flow"]]
    variables = {renamed.get(key, key): value for key, value in (row["variables"] or {}).items()}
    current = [renamed.get(step, step) for step in row["current"] or []]
    conn.execute(update(flow_instances).where(flow_instances.c.id == row["id"]).values(
        bundle_hash=service.rt.bundle.hash, current=current, variables=variables,
        version=flow_instances.c.version + 1))
    for old, target in renamed.items():
        conn.execute(update(tasks).where(tasks.c.instance_id == row["id"], tasks.c.node == old, _OPEN_TASK)
                     .values(node=target, version=tasks.c.version + 1))
        child = (variables.get(target) or {}).get("instance_id") if new.nodes[target].type == "subflow" else None
        if child is not None:
            _repoint_parent(conn, int(child), target)
    _carry_timers(service, conn, row["id"], new, renamed)
    INSERT_HISTORY.later(conn, dict(
        instance_id=row["id"], form=row["form"], record_id=row["record_id"], kind="flow.migrated",
        node=None, actor=actor, at=service.rt.clock.now(),
        data={"from": row["bundle_hash"], "to": service.rt.bundle.hash, "renamed": dict(renamed)}))


def _repoint_parent(conn: Connection, child_id: int, step: str) -> None:
    """A subflow's instance names the step of its parent that waits for it: follow the rename."""
    variables = conn.execute(select(flow_instances.c.variables).where(flow_instances.c.id == child_id)).scalar()
    if variables and PARENT_KEY in variables:
        conn.execute(update(flow_instances).where(flow_instances.c.id == child_id).values(
            variables={**variables, PARENT_KEY: {**variables[PARENT_KEY], "node": step}}))


def _carry_timers(service: Any, conn: Connection, instance_id: int, new: FlowSpec,
                  renamed: Mapping[str, str]) -> None:
    """Armed wait and timeout timers follow their step; a timeout takes the new step's target
    (its due time stays: the time given to do the step was promised when it was entered)."""
    timers = service.rt.services.get("timers")
    if timers is None:
        return
    subject = f"instance:{instance_id}"
    for kind in (WAIT_TIMER, TIMEOUT_TIMER):
        for timer in timers.pending(conn, subject=subject, kind=kind):
            step = renamed.get(timer.key, timer.key)
            payload = {**timer.payload, "node": step}
            if kind == TIMEOUT_TIMER:
                timeout = new.nodes[step].compiled.get("timeout") if step in new.nodes else None
                if timeout is None:
                    timers.cancel(conn, kind=kind, subject=subject, key=timer.key)
                    continue
                payload.update(after=str(timeout[0]), to=timeout[1])
            if step == timer.key and payload == timer.payload:
                continue
            timers.cancel(conn, kind=kind, subject=subject, key=timer.key)
            timers.schedule(conn, kind=kind, subject=subject, key=step, due_at=timer.due_at, payload=payload)
