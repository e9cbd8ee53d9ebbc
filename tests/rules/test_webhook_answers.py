"""A webhook action's `answer:`: what the receiving system answers (the ERP's voucher number, a
waybill's status) goes into the record, validated like any edit, in the transaction that marks
the message sent; an answer that cannot be used changes nothing and says why on the timeline."""

from __future__ import annotations

from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from tests.engine.fake_receivers import http_receiver
from tests.rules.kit import BUNDLE, errors, history_of, make, messages, submit

FORM_WITH_ANSWERS = """\
    form: ticket
    label: {zh-CN: 工单, en: Ticket}
    numbering: T{seq:4}
    fields:
      customer: {type: text, required: true}
      category: {type: select, options: [delivery, damage, billing]}
      amount: {type: money, currency: CNY}
      voucher_no: {type: text, max_length: 12}
      erp_status: {type: select, options: [booked, paid]}
      booked_amount: {type: money, currency: CNY}
    """


NO_FLOW = {"flows/ticket_flow.yaml": None}


def channels(url: str) -> str:
    return BUNDLE.rstrip(" ") + f"""\
    channels:
      erp: {{type: webhook, label: {{zh-CN: 财务 ERP, en: Finance ERP}}, url: "{url}", timeout: 2}}
    """


def rules(answer: str) -> str:
    return dedent("""\
        ruleset: ticket_rules
        form: ticket
        rules:
          to_erp:
            on: record.created
            do:
              - action: webhook
                channel: erp
                fields: [customer, amount]
                answer:
        """) + "".join(f"          {line}\n" for line in answer.strip().splitlines())


ANSWER = """\
voucher_no: $.voucher.number
erp_status: {path: [$.status, $.state], default: booked}
booked_amount: $.lines[0].amount
"""


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Webhooks refuse internal addresses unless the operator allows them; the receiver is local.
    monkeypatch.setenv("DOCKET_WEBHOOK_ALLOW_NETWORKS", "127.0.0.1/32")


def deliver(tmp_path: Path, reply: Any, *, answer: str = ANSWER) -> tuple[Any, int]:
    with http_receiver(reply) as receiver:
        system = make(tmp_path, {"bundle.yaml": channels(receiver.url + "/vouchers"),
                                 "forms/ticket.yaml": FORM_WITH_ANSWERS, "rules/ticket_rules.yaml": rules(answer), **NO_FLOW})
        record_id = submit(system, amount="1200")
        assert system.runtime.services["outbox"].deliver() == 1
        assert receiver.requests[0].json()["data"]["fields"] == {"customer": "ACME", "amount": "1200.00"}
    return system, record_id


def test_the_receivers_answer_is_written_into_the_record(tmp_path: Path) -> None:
    system, record_id = deliver(tmp_path, ("json", 201, {"voucher": {"number": "V-2026-0042"},
                                                        "lines": [{"amount": "1200.00"}]}))
    record = system.forms.get("ticket", record_id)
    assert (record["voucher_no"], record["erp_status"], str(record["booked_amount"])) == \
        ("V-2026-0042", "booked", "1200.00")
    (answered,) = history_of(system, record_id, "webhook.answered")
    assert answered["data"]["changes"]["voucher_no"] == [None, "V-2026-0042"]
    assert answered["data"]["channel"] == "erp"


def test_the_first_path_that_finds_a_value_wins_over_the_default(tmp_path: Path) -> None:
    system, record_id = deliver(tmp_path, ("json", 200, {"state": "paid"}))
    assert system.forms.get("ticket", record_id)["erp_status"] == "paid"


def test_a_path_the_answer_lacks_leaves_its_field_as_it_was(tmp_path: Path) -> None:
    system, record_id = deliver(tmp_path, ("json", 200, {"status": "paid"}))
    record = system.forms.get("ticket", record_id)
    assert (record["voucher_no"], record["booked_amount"], record["erp_status"]) == (None, None, "paid")


def test_an_answer_the_form_refuses_changes_nothing_and_says_why(tmp_path: Path) -> None:
    system, record_id = deliver(tmp_path, ("json", 200, {"voucher": {"number": "V-2026-0042-TOO-LONG"},
                                                        "status": "paid"}))
    record = system.forms.get("ticket", record_id)
    assert (record["voucher_no"], record["erp_status"]) == (None, None)  # all or nothing
    (refused,) = history_of(system, record_id, "webhook.answer_refused")
    assert "voucher_no" in refused["data"]["reason"]
    assert history_of(system, record_id, "webhook.answered") == []
    (row,) = messages(system)
    assert row["status"] == "sent"  # it was delivered: sending it again would not mend the answer


def test_an_answer_that_is_not_a_json_object_changes_nothing_and_says_so(tmp_path: Path) -> None:
    system, record_id = deliver(tmp_path, ("raw", 200, b"<html>OK</html>"))
    (refused,) = history_of(system, record_id, "webhook.answer_refused")
    assert refused["data"]["reason"] == "the receiver answered no JSON object or array"
    assert system.forms.get("ticket", record_id)["voucher_no"] is None


def test_a_failed_delivery_applies_no_answer_until_it_is_delivered(tmp_path: Path) -> None:
    with http_receiver(500, ("json", 200, {"voucher": {"number": "V-1"}})) as receiver:
        system = make(tmp_path, {"bundle.yaml": channels(receiver.url), "forms/ticket.yaml": FORM_WITH_ANSWERS,
                                 "rules/ticket_rules.yaml": rules(ANSWER), **NO_FLOW})
        record_id = submit(system)
        outbox = system.runtime.services["outbox"]
        assert outbox.deliver() == 0
        assert system.forms.get("ticket", record_id)["voucher_no"] is None
        system.runtime.clock.advance(outbox.policy.delay(1))
        assert outbox.deliver() == 1
    assert system.forms.get("ticket", record_id)["voucher_no"] == "V-1"


def test_rules_follow_the_change_an_answer_makes(tmp_path: Path) -> None:
    follow_up = rules(ANSWER) + """\
  paid:
    on: {record.updated: [erp_status]}
    when: erp_status == "paid"
    do:
      - action: flag
        tag: paid_out
"""
    with http_receiver(("json", 200, {"status": "paid"})) as receiver:
        system = make(tmp_path, {"bundle.yaml": channels(receiver.url), "forms/ticket.yaml": FORM_WITH_ANSWERS,
                                 "rules/ticket_rules.yaml": follow_up, **NO_FLOW})
        record_id = submit(system)
        system.runtime.services["outbox"].deliver()
    assert system.runtime.services["rules"].tags("ticket", record_id) == ["paid_out"]


# -- at load ----------------------------------------------------------------------------------

def load_errors(tmp_path: Path, answer: str) -> list[str]:
    return [f"{line}:{col}: {message}" for _file, line, col, message in errors(tmp_path, {
        "bundle.yaml": channels("https://erp.example.com/hook"), "forms/ticket.yaml": FORM_WITH_ANSWERS,
        "rules/ticket_rules.yaml": rules(answer), **NO_FLOW})]


def test_an_answer_into_an_unknown_field_is_an_error_at_its_position(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "voucher_num: $.voucher.number")
    assert found == "11:11: unknown field 'voucher_num'"


def test_an_answer_is_read_with_paths_not_expressions(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "voucher_no: payload.voucher.number")
    assert found.startswith("11:23: 'payload.voucher.number' is not a path")


def test_a_path_that_cannot_be_read_is_an_error_at_its_position(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "voucher_no: $.voucher..number")
    assert found.startswith("11:23: cannot read the path at '..number'")


def test_a_field_the_system_sets_cannot_take_an_answer(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "query_no: $.voucher.number")
    assert "'query_no'" in found


def test_an_answer_default_that_is_not_an_option_is_an_error_at_the_default(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "erp_status: {path: $.status, default: boked}")
    assert found == "11:49: the default 'boked' is not an option of field 'erp_status'"


def test_an_answer_constant_the_field_refuses_is_an_error_at_the_value(tmp_path: Path) -> None:
    (found,) = load_errors(tmp_path, "booked_amount: {value: lots}")
    assert found.startswith("11:34: the constant 'lots' is not valid for field 'booked_amount'")
