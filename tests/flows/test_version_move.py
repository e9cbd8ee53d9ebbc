"""Running instances move to the current bundle version only when an administrator says so
(`docket instances migrate`), each whole or not at all, and only where the new flow can carry
its position on (RELIABILITY 32's "explicit migration")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from flows.node_run import TIMEOUT_TIMER
from flows.version_move import MoveError, apply_moves, parse_renames, plan_moves
from tests.flows.kit import NOW, history_of, instance, make, open_tasks, submit, task_at
from web.system import System

V1 = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin: {type: start, next: handle}
      handle:
        type: task
        assign: {role: agent}
        next: done
      done: {type: end}
    """
# v2 checks the work: a manager's step after the agent's.
V2 = V1.replace("        next: done\n      done:", "        next: check\n      check:\n"
                "        type: task\n        assign: {role: manager}\n        next: done\n      done:")
RENAMED = V2.replace("next: handle", "next: work").replace("      handle:\n", "      work:\n")
RETYPED = V1.replace("        type: task\n", "        type: approval\n").replace(
    "        next: done\n", "        approve: done\n        reject: done\n")


def deploy(tmp_path: Path, flow: str, name: str, clock: ManualClock | None = None) -> System:
    """The same database booted with another version of the bundle."""
    return make(tmp_path, flow, name=name, clock=clock)


def on_v1(tmp_path: Path) -> tuple[System, int]:
    v1 = deploy(tmp_path, V1, "v1")
    return v1, submit(v1)


def test_an_instance_whose_step_the_new_version_keeps_moves_and_goes_on_by_the_new_flow(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, V2, "v2")
    (move,) = apply_moves(v2.flows)
    assert (move.blocked, move.steps) == (None, ("handle",))
    assert instance(v2, record_id)["bundle_hash"] == v2.bundle.hash
    v2.flows.complete(task_at(v2, record_id, "handle")["id"], "ann")
    assert [t["node"] for t in open_tasks(v2, record_id)] == ["check"]


def test_the_plan_changes_nothing(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, V2, "v2")
    (move,) = plan_moves(v2.flows)
    assert move.blocked is None and move.record_id == record_id
    assert instance(v2, record_id)["bundle_hash"] == v1.bundle.hash


def test_an_instance_at_a_step_the_new_version_lacks_stays_and_says_how_to_move_it(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, RENAMED, "v2")
    (move,) = apply_moves(v2.flows)
    assert move.blocked == ("its step 'handle' is not in the current version (name the step that takes its "
                            "place: --map ticket_flow.handle=NEW_STEP)")
    assert instance(v2, record_id)["bundle_hash"] == v1.bundle.hash
    assert history_of(v2, record_id, "flow.migrated") == []


def test_a_renamed_step_carries_the_instance_and_its_open_task(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, RENAMED, "v2")
    (move,) = apply_moves(v2.flows, parse_renames(["ticket_flow.handle=work"], v2.flows.flows))
    assert move.blocked is None and move.renamed == {"handle": "work"}
    assert instance(v2, record_id)["current"] == ["work"]
    v2.flows.complete(task_at(v2, record_id, "work")["id"], "ann")
    assert [t["node"] for t in open_tasks(v2, record_id)] == ["check"]


def test_a_move_is_one_history_entry_naming_both_versions_and_the_renames(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, RENAMED, "v2")
    apply_moves(v2.flows, {"ticket_flow": {"handle": "work"}}, actor="admin")
    (entry,) = history_of(v2, record_id, "flow.migrated")
    assert entry["actor"] == "admin"
    assert entry["data"] == {"from": v1.bundle.hash, "to": v2.bundle.hash, "renamed": {"handle": "work"}}


def test_a_step_of_another_type_in_the_new_version_keeps_the_instance_where_it_is(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, RETYPED, "v2")
    (move,) = apply_moves(v2.flows)
    assert move.blocked == ("its step 'handle' is a task step and 'handle' in the current version is of "
                            "type approval: its open tasks cannot carry over")
    assert instance(v2, record_id)["bundle_hash"] == v1.bundle.hash


def test_an_instance_already_on_the_current_version_is_not_listed(tmp_path: Path) -> None:
    v1, _ = on_v1(tmp_path)
    assert plan_moves(v1.flows) == []


def test_a_finished_instance_is_never_moved(tmp_path: Path) -> None:
    v1, record_id = on_v1(tmp_path)
    v1.flows.complete(task_at(v1, record_id, "handle")["id"], "ann")
    v2 = deploy(tmp_path, V2, "v2")
    assert plan_moves(v2.flows) == []


def test_a_rename_naming_a_step_the_flow_lacks_is_refused_with_the_step_meant(tmp_path: Path) -> None:
    v2 = deploy(tmp_path, RENAMED, "v2")
    with pytest.raises(MoveError, match="flow 'ticket_flow' has no step 'wrk' in the current version "
                                        r"\(did you mean 'work'\?\)"):
        parse_renames(["ticket_flow.handle=wrk"], v2.flows.flows)


def test_a_rename_written_without_its_flow_is_refused_with_the_form_to_write() -> None:
    with pytest.raises(MoveError, match="write it as FLOW.OLD_STEP=NEW_STEP"):
        parse_renames(["handle=work"], {})


def test_a_timeout_keeps_its_due_time_and_takes_the_new_steps_target(tmp_path: Path) -> None:
    timed = V1.replace("        next: done\n", "        timeout: {after: 2 workdays, to: done}\n        next: done\n", 1)
    v1 = deploy(tmp_path, timed, "v1")
    record_id = submit(v1)
    new = (RENAMED.replace("        next: check\n", "        timeout: {after: 1 workdays, to: lapsed}\n"
                           "        next: check\n", 1)
           .replace("      done: {type: end}", "      lapsed: {type: end, outcome: withdrawn}\n      done: {type: end}"))
    clock = ManualClock(NOW)
    v2 = deploy(tmp_path, new, "v2", clock=clock)
    apply_moves(v2.flows, {"ticket_flow": {"handle": "work"}})
    timers = v2.runtime.services["timers"]
    with read_transaction(v2.db) as conn:
        (timer,) = timers.pending(conn, subject=f"instance:{instance(v2, record_id)['id']}", kind=TIMEOUT_TIMER)
    assert (timer.key, timer.payload["to"], timer.payload["after"]) == ("work", "lapsed", "1 workdays")
    assert timer.due_at == NOW + timedelta(days=2)  # Monday 10:00 + two working days, as promised
    clock.set(timer.due_at)
    assert timers.tick() == 1
    assert (instance(v2, record_id)["status"], instance(v2, record_id)["outcome"]) == ("completed", "withdrawn")


def test_a_join_waiting_for_other_branches_in_the_new_version_keeps_the_instance(tmp_path: Path) -> None:
    split = """\
        flow: ticket_flow
        form: ticket
        start: begin
        nodes:
          begin: {type: start, next: fork}
          fork: {type: parallel, branches: [a, b]}
          a: {type: task, assign: {role: agent}, next: met}
          b: {type: task, assign: {role: manager}, next: met}
          met: {type: join, split: fork, next: done}
          done: {type: end}
        """
    v1 = deploy(tmp_path, split, "v1")
    record_id = submit(v1)
    v1.flows.complete(task_at(v1, record_id, "a")["id"], "ann")
    three = (split.replace("branches: [a, b]", "branches: [a, b, c]")
             .replace("          met:", "          c: {type: task, assign: {role: finance}, next: met}\n          met:"))
    v2 = deploy(tmp_path, three, "v2")
    (move,) = apply_moves(v2.flows)
    assert move.blocked == ("1 of the 2 branches of its parallel step have reached 'met', which does not wait "
                            "for the same branches in the current version")


def test_the_command_shows_its_plan_and_moves_only_with_apply(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    v1, record_id = on_v1(tmp_path)
    v2 = deploy(tmp_path, RENAMED, "v2")
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    root = str(tmp_path / "v2")
    assert main(["instances", "migrate", root, "--db", db]) == 0
    plan = capsys.readouterr().out
    assert f"  stays  ticket {record_id} (ticket_flow, version {v1.bundle.hash[:12]}) at handle: its step" in plan
    assert "0 of 1 running instance(s) can move" in plan
    assert main(["instances", "migrate", root, "--db", db, "--map", "ticket_flow.handle=work"]) == 0
    assert "nothing changed: run again with --apply to move them" in capsys.readouterr().out
    assert instance(v2, record_id)["bundle_hash"] == v1.bundle.hash
    assert main(["instances", "migrate", root, "--db", db, "--map", "ticket_flow.handle=work", "--apply"]) == 0
    assert f"  moved  ticket {record_id} (ticket_flow, version {v1.bundle.hash[:12]}) at handle -> work" in (
        capsys.readouterr().out)
    assert instance(v2, record_id)["bundle_hash"] == v2.bundle.hash
    assert main(["instances", "migrate", root, "--db", db]) == 0
    assert "every running instance is on the current version" in capsys.readouterr().out


def test_the_command_refuses_a_rename_of_a_step_the_flow_lacks(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    from cli import main

    deploy(tmp_path, RENAMED, "v2")
    assert main(["instances", "migrate", str(tmp_path / "v2"), "--db", f"sqlite:///{tmp_path / 'docket.db'}",
                 "--map", "ticket_flow.handle=wrok"]) == 2
    assert "error: --map ticket_flow.handle=wrok: flow 'ticket_flow' has no step 'wrok'" in capsys.readouterr().err
