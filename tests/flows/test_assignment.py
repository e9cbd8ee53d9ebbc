"""Who gets a task: claimable by a role, or handed out round robin or to the least loaded."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from engine.clock import ManualClock
from tests.engine.bundle_kit import MINI, write_bundle
from web.system import System, boot

PEOPLE = MINI["bundle.yaml"].rstrip() + """
        demo_users:
          - {username: ann, roles: [agent]}
          - {username: bob, roles: [agent]}
          - {username: cat, roles: [agent]}
        """


def system_with(tmp_path: Path, strategy: str | None) -> System:
    assign = "{role: agent}" if strategy is None else f"{{role: agent, strategy: {strategy}}}"
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", assign)
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": PEOPLE, "flows/ticket_flow.yaml": flow})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def assignees(system: System, count: int) -> list[str | None]:
    out = []
    for i in range(count):
        record_id = system.forms.submit("ticket", {"title": f"t{i}"}).record_id
        (task,) = system.flows.open_tasks("ticket", record_id)
        inbox = [t for name in ("ann", "bob", "cat") for t in system.flows.inbox(name) if t.id == task["id"]]
        out.append(inbox[0].assignee if inbox and task["assignee_user"] else None)
    return out


def test_without_a_strategy_the_task_waits_for_someone_of_the_role_to_claim_it(tmp_path: Path) -> None:
    system = system_with(tmp_path, None)
    assert assignees(system, 2) == [None, None]
    assert len(system.flows.inbox("bob", roles=["agent"])) == 2


def test_round_robin_hands_tasks_out_in_turn(tmp_path: Path) -> None:
    system = system_with(tmp_path, "round_robin")
    assert assignees(system, 4) == ["ann", "bob", "cat", "ann"]


def test_least_loaded_gives_the_task_to_whoever_has_the_fewest_open(tmp_path: Path) -> None:
    system = system_with(tmp_path, "least_loaded")
    first = assignees(system, 3)
    assert sorted(first) == ["ann", "bob", "cat"]
    ann_task = next(t for t in system.flows.inbox("ann"))
    system.flows.complete(ann_task.id, "ann", values={"urgency": "low"})
    assert assignees(system, 1) == ["ann"]


def test_a_claimed_task_can_be_released_for_others(tmp_path: Path) -> None:
    system = system_with(tmp_path, None)
    record_id = system.forms.submit("ticket", {"title": "t"}).record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    system.flows.claim(task["id"], "ann")
    system.flows.release(task["id"], "ann")
    assert [t.status for t in system.flows.inbox("bob", roles=["agent"])] == ["open"]


def test_reassigning_moves_the_task_and_leaves_a_trace(tmp_path: Path) -> None:
    system = system_with(tmp_path, "round_robin")
    record_id = system.forms.submit("ticket", {"title": "t"}).record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    system.flows.reassign(task["id"], "cat", by="ann", comment="on leave", delegate=True)
    assert [t.id for t in system.flows.inbox("cat")] == [task["id"]] and system.flows.inbox("ann") == []
    (entry,) = [h for h in system.forms.history("ticket", record_id) if h["kind"] == "task.delegated"]
    assert entry["actor"] == "ann" and entry["data"]["to"] == "cat"


def test_watchers_are_copied_when_the_task_opens(tmp_path: Path) -> None:
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", "{role: agent, cc: {users: [cat]}}")
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": PEOPLE, "flows/ticket_flow.yaml": flow})
    system = boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}",
                  clock=ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)))
    record_id = system.forms.submit("ticket", {"title": "t"}).record_id
    (entry,) = [h for h in system.forms.history("ticket", record_id) if h["kind"] == "task.copied"]
    assert entry["data"]["to"] == ["cat"]


# -- a department the record names -----------------------------------------------------------------

DEPARTMENTS = PEOPLE.replace("          service: {label: Service}\n",
                             "          service: {label: Service}\n          repairs: {label: Repairs}\n").replace(
    "          - {username: cat, roles: [agent]}\n",
    "          - {username: cat, roles: [agent]}\n          - {username: dan, roles: [agent], department: repairs}\n")
OWNED = MINI["forms/ticket.yaml"].rstrip() + """
          owner:
            type: department
        """


def owned_system(tmp_path: Path, assign: str) -> System:
    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", assign)
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": DEPARTMENTS, "forms/ticket.yaml": OWNED,
                                              "flows/ticket_flow.yaml": flow})
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(root, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


def test_a_task_goes_to_the_department_a_field_of_the_record_names(tmp_path: Path) -> None:
    system = owned_system(tmp_path, "{department_from: owner}")
    record_id = system.forms.submit("ticket", {"title": "t", "owner": "repairs"}).record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    assert task["candidate_department"] == "repairs" and [t.id for t in system.flows.inbox("dan")] == [task["id"]]
    assert system.flows.inbox("ann") == []


def test_without_a_department_on_the_record_the_task_falls_back_to_the_role(tmp_path: Path) -> None:
    system = owned_system(tmp_path, "{department_from: owner, role: agent}")
    record_id = system.forms.submit("ticket", {"title": "t"}).record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    assert (task["candidate_department"], task["candidate_roles"]) == (None, ["agent"])


def test_with_nobody_to_fall_back_to_a_missing_department_is_an_incident(tmp_path: Path) -> None:
    system = owned_system(tmp_path, "{department_from: owner}")
    record_id = system.forms.submit("ticket", {"title": "t"}).record_id
    (instance,) = system.flows.instances("ticket", record_id)
    assert instance["status"] == "incident" and system.flows.open_tasks("ticket", record_id) == []


def test_a_department_from_expression_is_checked_when_the_bundle_loads(tmp_path: Path) -> None:
    from engine.bundle import validate_bundle
    from web.system import build_registry

    flow = MINI["flows/ticket_flow.yaml"].replace("{role: agent}", "{department_from: ownr}")
    root = write_bundle(tmp_path / "bundle", {"bundle.yaml": DEPARTMENTS, "forms/ticket.yaml": OWNED,
                                              "flows/ticket_flow.yaml": flow})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    assert [(d.span.file.split("/")[-1], d.code) for d in diags if d.severity == "error"] == [
        ("ticket_flow.yaml", "expr-unknown-name")]


def test_a_step_for_the_submitter_of_a_record_nobody_signed_in_submitted_is_an_incident(tmp_path: Path) -> None:
    """A public form's record has no submitter account: its task was offered to no one and
    waited unseen in every inbox."""
    from engine.storage.db import read_transaction
    from engine.storage.tables import incidents

    system = owned_system(tmp_path, "{submitter: true}")
    record_id = system.forms.submit("ticket", {"title": "t"}, actor=None).record_id
    (instance,) = system.flows.instances("ticket", record_id)
    assert instance["status"] == "incident" and system.flows.open_tasks("ticket", record_id) == []
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(incidents.select().with_only_columns(incidents.c.message)).scalars()
    assert message == ("handle: nobody to assign: the record has no submitter among the users (a customer "
                       "sent it on the public form)")


def test_a_step_for_the_submitter_goes_to_the_user_who_submitted(tmp_path: Path) -> None:
    system = owned_system(tmp_path, "{submitter: true}")
    record_id = system.forms.submit("ticket", {"title": "t"}, actor="ann").record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    assert task["candidate_users"] == ["ann"]


def test_a_submitter_of_the_role_beside_it_keeps_the_task(tmp_path: Path) -> None:
    """首问负责制: the agent who took the call keeps the case."""
    system = owned_system(tmp_path, "{submitter: true, role: agent}")
    record_id = system.forms.submit("ticket", {"title": "t"}, actor="cat").record_id
    (task,) = system.flows.open_tasks("ticket", record_id)
    assert (task["status"], task["candidate_users"]) == ("claimed", ["cat"])


def test_a_submitter_outside_the_role_beside_it_leaves_the_task_to_the_role(tmp_path: Path) -> None:
    system = owned_system(tmp_path, "{submitter: true, role: agent}")
    record_id = system.forms.submit("ticket", {"title": "t"}, actor="hotline").record_id  # an integration
    (task,) = system.flows.open_tasks("ticket", record_id)
    assert (task["status"], task["candidate_users"], task["candidate_roles"]) == ("open", None, ["agent"])
