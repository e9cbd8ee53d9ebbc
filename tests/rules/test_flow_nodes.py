"""The flow node types `action` and `notify`: actions from the registry, run as a flow step."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlalchemy import select

from engine.storage.db import read_transaction
from engine.storage.tables import incidents
from tests.rules.kit import errors, history_of, make, messages, submit

FLOW = """\
    flow: ticket_flow
    form: ticket
    start: begin
    nodes:
      begin: {type: start, next: grade}
      grade:
        type: action
        do:
          - action: set
            compute: {level: "3 if amount > 5000 else 1"}
          - action: flag
            tag: graded
          - action: {SECOND}
            {OPTIONS}
        next: tell
      tell:
        type: notify
        to: {field: phone}
        subject: "Ticket {{ query_no }}"
        body: "Level {{ level }} for {{ customer }}"
        next: handle
      handle:
        type: task
        assign: {user: agent}
        next: done
      done: {type: end}
    """


def flow(second: str = "set", options: str = "fields: {team: ops}") -> str:
    return FLOW.replace("{SECOND}", second).replace("{OPTIONS}", options)


def test_an_action_node_runs_its_steps_and_a_notify_node_queues_a_message(tmp_path: Path) -> None:
    system = make(tmp_path, {"flows/ticket_flow.yaml": flow()})
    ticket = submit(system, amount="9000", phone="13812345678")
    record = system.forms.get("ticket", ticket)
    assert (record["level"], record["team"]) == (3, "ops")
    assert system.runtime.services["rules"].tags("ticket", ticket) == ["graded"]
    (message,) = messages(system)
    assert (message["recipient"], message["subject"], message["body"]) == (
        "13812345678", "Ticket T0001", "Level 3 for ACME")
    assert [t["node"] for t in system.flows.open_tasks("ticket", ticket)] == ["handle"]


def test_a_failing_step_rolls_the_node_back_and_leaves_an_incident(tmp_path: Path) -> None:
    system = make(tmp_path, {"flows/ticket_flow.yaml": flow("assign", "user: \"'nobody'\"")})
    ticket = submit(system, amount="9000", phone="13812345678")
    record = system.forms.get("ticket", ticket)
    assert record["level"] is None  # step 1 rolled back with the rest
    assert system.runtime.services["rules"].tags("ticket", ticket) == []
    assert messages(system) == []  # the flow stopped before the notify node
    assert system.flows.instances("ticket", ticket)[0]["status"] == "incident"
    with read_transaction(system.db) as conn:
        (message,) = conn.execute(select(incidents.c.message)).scalars().all()
    assert "grade: step 3 (assign) failed: no user 'nobody'" in message
    assert history_of(system, ticket, "incident")


def test_action_nodes_are_checked_at_load(tmp_path: Path) -> None:
    found = errors(tmp_path, {"flows/ticket_flow.yaml": flow("tag", "tagg: x")})
    assert sorted((line, msg) for _f, line, _c, msg in found) == [
        (13, "missing required key 'tag'"), (14, "unknown key 'tagg'")]


LINKED = FLOW.replace("{SECOND}", "set").replace("{OPTIONS}", "fields: {team: ops}").replace(
    'body: "Level {{ level }} for {{ customer }}"', 'body: "Open {{ link }}"')


def test_a_message_links_to_the_record_at_the_public_address(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_PUBLIC_URL", "https://ts.example-post.cn/")
    system = make(tmp_path, {"flows/ticket_flow.yaml": LINKED})
    ticket = submit(system, amount="10", phone="13812345678")
    (message,) = messages(system)
    url = f"https://ts.example-post.cn/records/ticket/{ticket}"
    assert message["body"] == f"Open {url}" and message["payload"]["data"]["link"] == url


def test_without_a_public_address_a_message_carries_the_path_and_no_link(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKET_PUBLIC_URL", raising=False)
    system = make(tmp_path, {"flows/ticket_flow.yaml": LINKED})
    ticket = submit(system, amount="10", phone="13812345678")
    (message,) = messages(system)
    assert message["body"] == f"Open /records/ticket/{ticket}" and "link" not in message["payload"]["data"]


TRACKED = LINKED.replace('body: "Open {{ link }}"',
                         'body: "{{ query_no }}{% if track_link %}: {{ track_link }}{% endif %}"')


def test_a_message_to_the_customer_can_link_to_their_progress_lookup(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKET_PUBLIC_URL", "https://ts.example-post.cn/")
    system = make(tmp_path, {"flows/ticket_flow.yaml": TRACKED})
    submit(system, amount="10", phone="13812345678")
    (message,) = messages(system)
    assert message["body"] == "T0001: https://ts.example-post.cn/track?query_no=T0001"


def test_without_a_public_address_the_progress_link_is_left_out(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKET_PUBLIC_URL", raising=False)
    system = make(tmp_path, {"flows/ticket_flow.yaml": TRACKED})
    submit(system, amount="10", phone="13812345678")
    (message,) = messages(system)
    assert message["body"] == "T0001"
