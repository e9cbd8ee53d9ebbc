"""Event rules on the help-desk bundle: aggregates, flags, batch triggers, failing actions
(incident, no half-applied change, retry), the outbox, schedules, and load errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from engine.storage.db import read_transaction, schema_inspector, transaction
from engine.storage.tables import outbox, timers, users
from engine.bundle import validate_bundle
from tests.rules.kit import (BUNDLE, FORM, MONDAY_9AM, SHANGHAI, SLA, advance_to, clock, complete, errors,
                             history_of, make, messages, submit, write)
from web.system import build_registry

CHANNELS = BUNDLE.rstrip(" ") + """\
    channels:
      erp: {type: webhook, url: "https://erp.example.com/hook"}
    """

RULES = """\
    ruleset: ticket_rules
    form: ticket
    label: {zh-CN: 工单规则, en: Ticket rules}
    rules:
      repeat_customer:
        label: {zh-CN: 重复客户预警, en: Repeat customer}
        on: record.created
        when: count_records("ticket", 30d, "customer", customer) >= 3
        do:
          - action: flag
            tag: repeat_customer
            note: "'complaint ' + str(count_records('ticket', 30d, 'customer', customer)) + ' in 30 days'"
          - action: set
            fields: {level: 2}
      big_claim:
        on: [record.created, {record.updated: [amount]}]
        when: amount > 5000
        do:
          - action: set
            fields: {level: 2}
      batch:
        on: record.created
        when: count_records("ticket", 2h, "category", category) == 5
        do:
          - action: notify
            to: {role: quality}
            subject: "5 {{ category }} tickets within 2 hours"
            body: "Latest: {{ query_no }} from {{ customer }}"
      acknowledge:
        on: record.created
        when: phone
        do:
          - action: notify
            to: {field: phone}
            body: "We received your ticket {{ query_no }}."
            once: true
    """


def tags(system, record_id: int) -> list[str]:
    return system.runtime.services["rules"].tags("ticket", record_id)


def level(system, record_id: int) -> int | None:
    return system.forms.get("ticket", record_id)["level"]


def test_the_third_ticket_of_a_customer_in_30_days_is_flagged_and_raised(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    first = submit(system, customer="ACME")
    clock(system).advance(timedelta(days=10))
    submit(system, customer="Globex")
    second = submit(system, customer="ACME")
    assert tags(system, first) == [] and tags(system, second) == []
    clock(system).advance(timedelta(days=10))
    third = submit(system, customer="ACME")
    assert tags(system, third) == ["repeat_customer"]
    assert level(system, third) == 2
    (added,) = history_of(system, third, "tag.added")
    assert added["data"]["note"] == "complaint 3 in 30 days"


def test_complaints_older_than_30_days_do_not_count(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    submit(system, customer="ACME")
    clock(system).advance(timedelta(days=31))
    submit(system, customer="ACME")
    third = submit(system, customer="ACME")
    assert tags(system, third) == []


def test_an_amount_over_5000_raises_the_level_on_creation_and_on_update(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    big = submit(system, amount="8000")
    small = submit(system, amount="100")
    assert (level(system, big), level(system, small)) == (2, None)
    with transaction(system.db) as conn:
        system.forms.update_fields(conn, "ticket", small, {"amount": 6000}, actor="agent")
    assert level(system, small) == 2


def test_five_tickets_of_one_category_within_two_hours_notify_quality_once(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    for _ in range(4):
        submit(system, category="damage")
        clock(system).advance(timedelta(minutes=20))
    submit(system, category="billing")
    assert [m for m in messages(system) if m["recipient"] == "qa"] == []
    fifth = submit(system, category="damage")
    submit(system, category="damage")  # the sixth does not notify again
    (sent,) = [m for m in messages(system) if m["recipient"] == "qa"]
    assert sent["subject"] == "5 damage tickets within 2 hours"
    assert sent["body"].startswith("Latest: T0006 from ACME")
    assert history_of(system, fifth, "notified")[0]["data"]["to"] == ["qa"]


def test_five_tickets_spread_over_more_than_two_hours_trigger_nothing(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    for _ in range(5):
        submit(system, category="damage")
        clock(system).advance(timedelta(minutes=40))
    assert [m for m in messages(system) if m["recipient"] == "qa"] == []


def test_the_aggregate_is_answered_by_an_index(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    with read_transaction(system.db) as conn:
        names = {ix["name"] for ix in schema_inspector(conn).get_indexes("rec_ticket")}
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM rec_ticket WHERE customer = 'x' "
            "AND created_at >= '2026-01-01'"))
    assert {"ix_rec_ticket_customer_created_at_agg", "ix_rec_ticket_category_created_at_agg"} <= names
    assert "ix_rec_ticket_customer_created_at_agg" in plan


def test_a_rolled_back_submission_sends_nothing(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": RULES})
    form = system.forms.form("ticket")
    clean = form.validate({"customer": "ACME", "category": "delivery", "phone": "13812345678"})
    with pytest.raises(RuntimeError):
        with transaction(system.db) as conn:
            system.forms.insert_validated(conn, "ticket", clean, actor="agent")
            assert len(conn.execute(select(outbox.c.id)).all()) == 1  # queued inside...
            raise RuntimeError("the command fails after the rule queued its message")
    assert messages(system) == []  # ...and gone with the rollback
    submit(system, phone="13812345678")
    assert [m["recipient"] for m in messages(system)] == ["13812345678"]


FAILING = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      hand_over:
        on: record.created
        retry: {attempts: 2, delay: 10m}
        do:
          - action: flag
            tag: handed_over
          - action: set
            fields: {note: "handed over"}
          - action: assign
            user: "'temp'"
    """


def test_a_failing_action_leaves_an_incident_and_no_half_applied_change(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": FAILING})
    ticket = submit(system)  # the submission itself succeeds
    record = system.forms.get("ticket", ticket)
    assert record["note"] is None and tags(system, ticket) == []  # steps 1-2 rolled back
    (incident,) = system.runtime.services["rules"].incidents_of("ticket", ticket)
    assert "rule ticket_rules.hand_over failed (step 3: assign" in incident["message"]
    assert "no user 'temp'" in incident["message"]
    assert history_of(system, ticket, "incident")[0]["data"]["incident_id"] == incident["id"]


def test_a_failed_rule_is_retried_and_its_incident_resolved(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": FAILING})
    ticket = submit(system)
    advance_to(system, MONDAY_9AM + timedelta(minutes=10))  # retry 1 fails again
    assert tags(system, ticket) == []
    with transaction(system.db) as conn:
        conn.execute(insert(users).values(username="temp", is_active=True, created_at=clock(system).now()))
    advance_to(system, MONDAY_9AM + timedelta(minutes=30))  # retry 2 (20 minutes later) succeeds
    assert tags(system, ticket) == ["handed_over"]
    assert system.forms.get("ticket", ticket)["note"] == "handed over"
    assert system.runtime.services["rules"].incidents_of("ticket", ticket) == []
    assert len(history_of(system, ticket, "incident.resolved")) == 1


def test_retries_stop_after_the_policy_and_the_incident_stays(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": FAILING})
    ticket = submit(system)
    advance_to(system, MONDAY_9AM + timedelta(minutes=10))
    advance_to(system, MONDAY_9AM + timedelta(hours=5))
    (incident,) = system.runtime.services["rules"].incidents_of("ticket", ticket)
    assert "no retries left" in incident["detail"]
    assert len(history_of(system, ticket, "incident")) == 3  # the first try and two retries
    with read_transaction(system.db) as conn:
        assert conn.execute(select(timers.c.id).where(timers.c.kind == "rule.retry",
                                                      timers.c.open_key.is_not(None))).all() == []


SCHEDULED = """\
    ruleset: daily
    rules:
      morning_digest:
        on: {schedule: "0 9 * * mon-fri"}
        do:
          - action: notify
            to: {role: quality}
            subject: Morning digest
            body: "Open tickets: {{ event.cron }}"
    """


def test_a_scheduled_rule_fires_on_its_cron_in_the_bundle_time_zone(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/daily.yaml": SCHEDULED},
                  start=datetime(2026, 11, 27, 10, 0, tzinfo=SHANGHAI))  # Friday after 9:00
    advance_to(system, datetime(2026, 11, 30, 8, 59, tzinfo=SHANGHAI))
    assert messages(system) == []
    advance_to(system, datetime(2026, 11, 30, 9, 0, tzinfo=SHANGHAI))  # Monday 09:00 Shanghai
    assert [m["subject"] for m in messages(system)] == ["Morning digest"]
    advance_to(system, datetime(2026, 12, 1, 9, 0, tzinfo=SHANGHAI))
    assert len(messages(system)) == 2


def test_a_webhook_action_queues_the_record_for_the_channel(tmp_path: Path) -> None:
    rules = """\
        ruleset: ticket_rules
        form: ticket
        rules:
          to_erp:
            on: record.created
            when: amount > 1000
            do:
              - action: webhook
                channel: erp
                fields: [customer, amount]
        """
    system = make(tmp_path, {"bundle.yaml": CHANNELS, "rules/ticket_rules.yaml": rules})
    submit(system, amount="2000")
    (sent,) = messages(system)
    assert sent["channel"] == "erp"
    data = sent["payload"]["data"]
    assert data["fields"] == {"customer": "ACME", "amount": "2000.00"}
    assert data["event"]["name"] == "record.created" and data["query_no"] == "T0001"


BROKEN = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      one:
        on: {record.updated: [amout]}
        when: count_records("tickets", 30d) > 1
        do:
          - action: notfy
            to: assignee
            body: hi
      two:
        on: {task.completed: acept}
        when: count_records("ticket", 30d, "custumer", customer) > 1
        do:
          - action: notify
            to: {role: superviser}
            body: "{{ custmer }}"
          - action: set
            fields: {levle: 2}
    """


def test_every_wrong_reference_is_reported_at_its_position(tmp_path: Path) -> None:
    found = errors(tmp_path, {"rules/ticket_rules.yaml": BROKEN})
    assert found == [
        ("rules/ticket_rules.yaml", 5, 27, "unknown field 'amout'"),
        ("rules/ticket_rules.yaml", 6, 25, "unknown form 'tickets'"),
        ("rules/ticket_rules.yaml", 8, 17, "unknown action 'notfy'"),
        ("rules/ticket_rules.yaml", 12, 26, "unknown node 'acept'"),
        ("rules/ticket_rules.yaml", 13, 40, "unknown field 'custumer' of form 'ticket'"),
        ("rules/ticket_rules.yaml", 16, 20, "unknown role 'superviser'"),
        ("rules/ticket_rules.yaml", 17, 19, "unknown name 'custmer'"),
        ("rules/ticket_rules.yaml", 19, 18, "unknown field 'levle'"),
    ]



def rule_on(trigger: str) -> dict[str, str]:
    """A rule set whose one rule runs `on` the trigger written (YAML), with the kit's SLA."""
    return {"sla/ticket_sla.yaml": SLA, "rules/ticket_rules.yaml": f"""\
    ruleset: ticket_rules
    form: ticket
    rules:
      one:
        on: {trigger}
        do:
          - {{action: flag, tag: seen}}
    """}


def test_a_misspelt_sla_target_in_on_is_a_load_error(tmp_path: Path) -> None:
    # The rule loaded and never ran: no SLA event carries the target 'resolve'.
    assert errors(tmp_path, rule_on("{sla.breached: resolve}")) == [
        ("rules/ticket_rules.yaml", 5, 24, "unknown SLA target 'resolve'")]


def test_a_flow_outcome_in_on_that_no_end_gives_is_a_load_error(tmp_path: Path) -> None:
    # The kit's flow ends at `done`, which names no outcome: its flows end `completed`.
    assert errors(tmp_path, rule_on("{flow.ended: resolved}")) == [
        ("rules/ticket_rules.yaml", 5, 22, "unknown outcome 'resolved'")]


def test_the_outcomes_every_flow_can_end_with_are_known_in_on(tmp_path: Path) -> None:
    assert errors(tmp_path, rule_on("[{flow.ended: completed}, {flow.ended: withdrawn}]")) == []


def test_a_message_reads_fields_as_people_read_them_and_a_misspelt_one_is_a_load_error(tmp_path: Path) -> None:
    rules = BROKEN.replace('body: "{{ custmer }}"', 'body: "{{ text.custmer }}"')
    found = [e for e in errors(tmp_path, {"rules/ticket_rules.yaml": rules}) if e[1] == 17]
    assert found == [("rules/ticket_rules.yaml", 17, 19, "'text' has no 'custmer'")]




def test_a_message_gives_the_status_in_the_words_of_the_form_s_status_list(tmp_path: Path) -> None:
    # {{ status }} is the code (resolved); a message to a customer wants what /track shows them:
    # the customer's words (customer_label) where staff read others.
    form = FORM.replace("numbering: T{seq:4}", "numbering: T{seq:4}\n    lookup: {verify: phone, statuses: ticket_status}")
    system = make(tmp_path, {
        "forms/ticket.yaml": form,
        "lists/ticket_status.yaml": """\
            list: ticket_status
            items:
              - {value: new, label: 已提交}
              - {value: accepted, label: 受理完毕待分派, customer_label: 已受理}
              - {value: in_progress, label: 处理中}
              - {value: awaiting_reply, label: 待回复}
              - {value: resolved, label: 已解决}
            """,
        "rules/ticket_rules.yaml": """\
            ruleset: ticket_rules
            form: ticket
            rules:
              told:
                on: {task.completed: accept}
                do:
                  - {action: notify, to: {address: "13912345678"}, body: "{{ query_no }}: {{ text.status }}"}
            """})
    record_id = submit(system, phone="13912345678")
    complete(system, record_id, "accept")
    (message,) = messages(system)
    assert message["body"] == "T0001: 已受理"



def test_a_phone_field_as_the_address_of_an_e_mail_is_a_load_error(tmp_path: Path) -> None:
    # It loaded, and every message went to a phone number as an e-mail address.
    bundle = BUNDLE.rstrip(" ") + """\
    channels:
      mail: {type: email, host: smtp.example.com, from: desk@example.com}
    """
    assert errors(tmp_path, {"bundle.yaml": bundle, "rules/ticket_rules.yaml": """\
    ruleset: ticket_rules
    form: ticket
    rules:
      told:
        on: record.created
        do:
          - {action: notify, channel: mail, to: {field: phone}, body: hi}
    """}) == [("rules/ticket_rules.yaml", 7, 53,
               "'phone' holds a phone number, and channel 'mail' sends to an e-mail address")]


def set_rule(fields: str) -> dict[str, str]:
    """A rule set whose one rule's `set` action writes `fields` (a YAML flow mapping)."""
    return {"forms/ticket.yaml": FORM.rstrip(" ") + "      score: {type: computed, expression: (level or 0) * 2}\n",
            "rules/ticket_rules.yaml": f"""\
    ruleset: ticket_rules
    form: ticket
    rules:
      one:
        on: record.created
        do:
          - action: set
            fields: {fields}
    """}


def test_a_set_value_that_is_no_option_of_its_field_is_a_load_error_at_it(tmp_path: Path) -> None:
    # It was found only when the rule ran: an incident on the first record it touched.
    assert errors(tmp_path, set_rule("{urgency: urgnt}")) == [
        ("rules/ticket_rules.yaml", 8, 27, "the value 'urgnt' is not an option of field 'urgency'")]


def test_a_set_value_its_field_cannot_hold_is_a_load_error_at_it(tmp_path: Path) -> None:
    assert errors(tmp_path, set_rule("{level: many}")) == [
        ("rules/ticket_rules.yaml", 8, 25, "the value 'many' is not valid for field 'level': Enter a whole number.")]


def test_setting_a_computed_field_is_a_load_error_at_its_name(tmp_path: Path) -> None:
    assert errors(tmp_path, set_rule("{score: 3}")) == [
        ("rules/ticket_rules.yaml", 8, 18, "'score' is worked out by the system and cannot be set")]


def test_an_unknown_field_to_set_with_nothing_close_lists_the_form_s_fields(tmp_path: Path) -> None:
    root = write(tmp_path / "bundle", set_rule("{priorty: high}"))
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (found,) = [d for d in diags if d.severity == "error"]
    assert found.message == "unknown field 'priorty'"
    assert found.hint and found.hint.startswith("known fields: amount, category, customer, level,")


ENTERED_RULES = """\
    ruleset: ticket_rules
    form: ticket
    label: {zh-CN: 工单规则, en: Ticket rules}
    rules:
      second_line:
        on: {flow.entered: solve}
        do:
          - action: set
            fields: {team: second line}
    """


def test_a_rule_on_flow_entered_runs_when_the_token_reaches_that_node(tmp_path: Path) -> None:
    system = make(tmp_path, {"rules/ticket_rules.yaml": ENTERED_RULES})
    ticket = submit(system)
    assert system.forms.get("ticket", ticket)["team"] is None  # entering `accept` does not match
    complete(system, ticket, "accept")
    assert system.forms.get("ticket", ticket)["team"] == "second line"
    assert [h["data"]["event"] for h in history_of(system, ticket, "rule.fired")] == ["flow.entered"]


def test_a_rule_on_a_status_change_is_told_to_react_to_the_steps_that_set_it(tmp_path: Path) -> None:
    # `record.updated: [status]` read "unknown field 'status'" with a list of fields, none of them it.
    root = write(tmp_path / "bundle", {"rules/ticket_rules.yaml": """\
        ruleset: ticket_rules
        form: ticket
        rules:
          tell:
            on: {record.updated: [status]}
            do:
              - action: notify
                to: {field: phone}
                body: "{{ text.status }}"
        """})
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert error.span is not None and (error.span.line, error.span.col) == (5, 27)
    assert error.message.startswith("the status is not a field")
    assert error.hint == "react to the steps that set it: on: {flow.entered: [accept, confirm, done, solve]}"


def test_a_set_action_stores_the_computed_values_that_read_what_it_set(tmp_path: Path) -> None:
    system = make(tmp_path, set_rule("{level: 3}"))
    record_id = submit(system)
    assert system.forms.get("ticket", record_id)["score"] == 6


def notify_to(recipient: str) -> dict[str, str]:
    """A rule set whose one rule notifies `recipient` (as written after `to:`)."""
    return {"rules/ticket_rules.yaml": f"""\
    ruleset: ticket_rules
    form: ticket
    rules:
      told:
        on: record.created
        do:
          - {{action: notify, to: {recipient}, body: hi}}
    """}


def test_a_role_written_as_a_bare_recipient_is_a_load_error_saying_how_to_write_it(tmp_path: Path) -> None:
    # It was accepted, and every message went to nobody.
    root = write(tmp_path / "bundle", notify_to("quality"))
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert (error.span.line, error.span.col, error.message, error.hint) == (
        7, 30, "unknown recipient 'quality'", "a role is written {role: quality}")


def test_a_field_written_as_a_bare_recipient_is_told_to_write_it_as_a_field(tmp_path: Path) -> None:
    # `to: account_manager` (a field of the complaint, and a role) was told only the role way.
    root = write(tmp_path / "bundle", notify_to("phone"))
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert (error.message, error.hint) == (
        "unknown recipient 'phone'", "the person or address in the field 'phone' is written {field: phone}")


def test_a_misspelt_recipient_word_is_a_load_error_with_the_word_meant(tmp_path: Path) -> None:
    root = write(tmp_path / "bundle", notify_to("submiter"))
    _bundle, diags = validate_bundle(root, build_registry(plugins=False))
    (error,) = [d for d in diags if d.severity == "error"]
    assert (error.message, error.hint) == ("unknown recipient 'submiter'", "did you mean 'submitter'?")


def test_creating_a_record_without_a_field_its_form_requires_is_a_load_error(tmp_path: Path) -> None:
    # A compensation made without its required amount loaded clean; every one was refused when
    # the rule ran, an incident on each complaint.
    rules = """\
    ruleset: ticket_rules
    form: ticket
    rules:
      copy:
        on: record.created
        do:
          - action: create_record
            form: ticket
            fields: {note: note}
    """
    assert errors(tmp_path, {"rules/ticket_rules.yaml": rules}) == [
        ("rules/ticket_rules.yaml", 9, 9, "a new 'ticket' record needs 'customer' (required on its form), "
         "and this gives no value for it: every record it makes would be refused")]
