"""A record's tags, which every rule condition may read, are read once per transaction; a tag
a rule adds is seen by the rules that run after it."""

from __future__ import annotations

from pathlib import Path

from tests.rules.kit import history_of, make, statements, submit
from web.system import System

RULES = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      vip:
        on: record.created
        when: customer == "ACME"
        do:
          - action: flag
            tag: vip
      vip_level:
        on: record.created
        when: '"vip" in tags'
        do:
          - action: set
            fields: {level: 3}
      quiet:
        on: task.created
        when: '"blocked" in tags'
        do:
          - action: set
            fields: {team: blocked}
    """


def _tag_reads(seen: list[str]) -> int:
    return sum(1 for s in seen if s.startswith("SELECT dk_record_tags.tag"))


def test_the_tags_are_read_once_per_transaction(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    with statements(system) as seen:
        # record.created and then (the flow starts) task.created: rules of both read the tags.
        submit(system, customer="Globex")
    assert _tag_reads(seen) == 1


def test_a_tag_a_rule_adds_is_seen_by_the_next_rule(tmp_path: Path) -> None:
    system: System = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    ticket = submit(system, customer="ACME")
    assert system.runtime.services["rules"].tags("ticket", ticket) == ["vip"]
    assert system.forms.get("ticket", ticket)["level"] == 3
    assert system.forms.get("ticket", ticket)["team"] is None
    assert [h["data"]["tag"] for h in history_of(system, ticket, "tag.added")] == ["vip"]
