"""Record pages: the detail page with its timeline and the current task's actions, comments,
files, a new record, and who may see what (RELIABILITY 47)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.storage.db import read_transaction
from engine.storage.tables import history
from tests.web.staff_kit import (START, boot_helpdesk, client_for, csrf_of, open_task, post,
                                 submit)
from web.system import System


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def system(tmp_path: Path, clock: ManualClock) -> System:
    return boot_helpdesk(tmp_path, clock)


def claimed(system: System, record: int, username: str = "ann") -> dict:
    task = open_task(system, record)
    system.flows.claim(task["id"], username)
    return open_task(system, record)


def complete(client, record: int, task: dict, data: dict):  # type: ignore[no-untyped-def]
    page = f"/records/ticket/{record}"
    return post(client, f"{page}/tasks/{task['id']}/complete", {"version": str(task["version"]), **data},
                page=page)


# -- seeing a record ---------------------------------------------------------------------------
def test_the_record_page_shows_fields_current_step_and_who_may_take_it(system: System) -> None:
    record = submit(system, subject="Printer jams", details="Paper stuck in tray 2")
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=en").text
    assert 'id="record-query-no">HD0001<' in html
    assert "Paper stuck in tray 2" in html
    assert re.search(r'id="record-current">Triage<', html)
    assert 'action="/tasks/1/claim"' in html


def test_an_open_task_names_who_may_take_it_in_the_readers_words(system: System) -> None:
    record = submit(system)
    page = client_for(system, "max")
    assert "Open to: Service</p>" in page.get(f"/records/ticket/{record}?lang=en").text
    assert "可认领者：服务部</p>" in page.get(f"/records/ticket/{record}?lang=zh-CN").text


def test_a_claimed_task_names_its_holder_by_name(system: System) -> None:
    record = submit(system)
    claimed(system, record, "ann")
    assert "Held by: Ann</p>" in client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text


def test_the_diagram_highlights_the_current_step(system: System) -> None:
    record = submit(system)
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=en").text
    assert re.search(r'<g class="fd-node fd-box fd-current" data-node="triage" aria-current="step">', html)
    assert 'data-node="solve" aria-current' not in html


def test_a_record_outside_your_scope_is_not_found(system: System) -> None:
    record = submit(system)
    assert client_for(system, "nils").get(f"/records/ticket/{record}").status_code == 404
    assert client_for(system, "carl").get(f"/records/ticket/{record}").status_code == 404
    assert client_for(system, "max").get(f"/records/ticket/{record}").status_code == 200


def test_an_unknown_record_and_an_unknown_form_are_not_found(system: System) -> None:
    client = client_for(system, "max")
    assert client.get("/records/ticket/999").status_code == 404
    assert client.get("/records/nope/1").status_code == 404


def test_a_record_not_found_is_said_in_the_readers_language(system: System) -> None:
    record = submit(system)
    response = client_for(system, "carl").get(f"/records/ticket/{record}?lang=zh-CN")  # carl sees only his own
    assert response.status_code == 404 and "记录不存在，或您无权查看。" in response.text
    assert "no such record" not in response.text


def test_signed_out_visitors_are_sent_to_sign_in(system: System) -> None:
    record = submit(system)
    assert client_for(system).get(f"/records/ticket/{record}").status_code == 303


# -- handling the current task -----------------------------------------------------------------
def test_only_the_holder_gets_the_step_form_with_the_fields_the_step_allows(system: System) -> None:
    record = submit(system)
    claimed(system, record, "ann")
    mine = client_for(system, "ann").get(f"/records/ticket/{record}").text
    other = client_for(system, "bob").get(f"/records/ticket/{record}").text
    assert 'name="urgency"' in mine and 'name="internal_note"' in mine and 'name="answer"' not in mine
    assert "/complete" not in other and 'name="urgency"' not in other


def test_completing_a_step_saves_its_fields_and_moves_the_record_on(system: System) -> None:
    record = submit(system)
    task = claimed(system, record)
    response = complete(client_for(system, "ann"), record, task, {"urgency": "low", "area": "printer"})
    assert response.status_code == 303
    assert response.headers["location"] == f"/records/ticket/{record}?notice=completed"
    values = system.forms.get("ticket", record)
    assert (values["urgency"], values["area"]) == ("low", "printer")
    assert open_task(system, record)["node"] == "solve"


def test_invalid_values_come_back_next_to_their_field_with_what_was_typed(system: System) -> None:
    record = submit(system)
    task = claimed(system, record)
    response = complete(client_for(system, "ann"), record, task,
                        {"urgency": "extreme", "internal_note": "kept text"})
    assert response.status_code == 422
    assert re.search(r'<p class="error" id="f-urgency-error">', response.text)
    assert "kept text</textarea>" in response.text
    assert open_task(system, record)["node"] == "triage"


def test_rejecting_without_the_required_comment_is_refused_next_to_the_comment(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    task = claimed(system, record, "max")
    response = complete(client_for(system, "max"), record, task, {"outcome": "reject"})
    assert response.status_code == 422
    assert 'id="task-2-comment-error"' in response.text
    assert open_task(system, record)["node"] == "approve"


def test_the_missing_comment_is_asked_for_in_the_readers_language(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    task = claimed(system, record, "max")
    max_ = client_for(system, "max")
    max_.cookies.set("docket_lang", "zh-CN")
    response = complete(max_, record, task, {"outcome": "reject"})
    assert response.status_code == 422
    assert '<p class="error" id="task-2-comment-error">选择“驳回”时必须填写意见。</p>' in response.text
    assert "a comment is required" not in response.text


def test_an_approval_offers_approve_reject_and_return(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    claimed(system, record, "max")
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    assert [v for v in re.findall(r'name="outcome" value="([a-z]*)"', html)] == ["approve", "reject", "return"]
    assert '<option value="triage">Triage</option>' in html


def test_the_outcomes_needing_a_comment_are_listed_as_each_language_lists(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    claimed(system, record, "max")
    page = f"/records/ticket/{record}"
    assert "<small>(以下操作必填：驳回、退回)</small>" in client_for(system, "max").get(f"{page}?lang=zh-CN").text
    assert "<small>(required to Reject, Return)</small>" in client_for(system, "max").get(f"{page}?lang=en").text


def test_returning_a_step_says_the_record_went_back_not_on(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    client = client_for(system, "max")
    response = complete(client, record, claimed(system, record, "max"),
                        {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    assert response.headers["location"].endswith("?notice=sent_back")
    page = client.get(response.headers["location"] + "&lang=en").text
    assert '<p class="notice notice-sent_back" role="status">Sent back: the record is at an earlier step again.</p>' in page


def test_an_approval_puts_the_fields_it_shows_before_the_approver(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    flow = system.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    nodes["approve"] = replace(nodes["approve"], options={**nodes["approve"].options,
                                                          "show": ["urgency", "internal_note"]})
    monkeypatch.setitem(system.flows.flows, "ticket_flow", replace(flow, nodes=nodes))
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record),
             {"urgency": "high", "internal_note": "refund above the usual limit"})
    task = claimed(system, record, "max")
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    panel = html[html.index(f'id="task-{task["id"]}"'):html.index("</section>", html.index(f'id="task-{task["id"]}"'))]
    summary = panel[panel.index('class="record-fields task-summary"'):panel.index("</dl>")]
    assert re.findall(r'data-field="([a-z_]+)"', summary) == ["urgency", "internal_note"]
    assert "<dd class=\"text\">High</dd>" in summary and "refund above the usual limit" in summary
    assert panel.index("task-summary") < panel.index('name="outcome"')


def test_returning_sends_the_record_back_with_the_comment_in_the_timeline(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    task = claimed(system, record, "max")
    response = complete(client_for(system, "max"), record, task,
                        {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    assert response.status_code == 303
    assert open_task(system, record)["node"] == "triage"
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    assert '<p class="ev-comment">Which printer?</p>' in html
    assert "returned to" in html


def test_the_timeline_names_the_step_a_return_went_back_to_as_its_destination(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    complete(client_for(system, "max"), record, claimed(system, record, "max"),
             {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    line = re.search(r'<p class="ev-head">[^\n]*returned to[^\n]*</p>', html)
    assert line is not None
    text = re.sub(r"<[^>]+>", "", line.group(0))
    assert text.endswith("returned to · Triage") and "Manager approval" not in text


def test_the_step_sent_back_says_who_sent_it_back_and_why_beside_its_form(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    complete(client_for(system, "max"), record, claimed(system, record, "max"),
             {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    task = claimed(system, record)
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=en").text
    panel = html[html.index(f'id="task-{task["id"]}"'):html.index("</section>", html.index(f'id="task-{task["id"]}"'))]
    note = panel[panel.index('class="sent-back"'):panel.index("</div>", panel.index('class="sent-back"'))]
    assert "Sent back to this step by Max (Return)" in note and "Which printer?" in note
    assert panel.index("sent-back") < panel.index('class="step-form"')


def test_a_step_reached_the_usual_way_says_nothing_about_being_sent_back(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    claimed(system, record, "max")
    assert 'class="sent-back"' not in client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text


def test_a_step_done_again_after_being_sent_back_no_longer_says_so(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    complete(client_for(system, "max"), record, claimed(system, record, "max"),
             {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    claimed(system, record, "max")
    assert 'class="sent-back"' not in client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text


def test_the_timeline_gives_a_returns_reason_once(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    complete(client_for(system, "max"), record, claimed(system, record, "max"),
             {"outcome": "return", "return_to": "triage", "comment": "Which printer?"})
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    timeline = html[html.index('<ol class="activity">'):html.index("</ol>", html.index('<ol class="activity">'))]
    assert timeline.count("Which printer?") == 1


def post_to_a_step_completed_meanwhile(system: System, data: dict[str, str], query: str = "") -> Any:
    """Ann opens her claimed step, completes it elsewhere (another tab), then posts `data` from
    the page she opened first; the answer."""
    record = submit(system)
    task = claimed(system, record)
    client = client_for(system, "ann")
    page = client.get(f"/records/ticket/{record}{query}").text
    system.flows.complete(task["id"], "ann", values={"urgency": "low"})
    return client.post(f"/records/ticket/{record}/tasks/{task['id']}/complete",
                       data={**data, "version": str(task["version"]), "csrf_token": csrf_of(page)})


def test_a_step_someone_else_completed_first_shows_a_clear_message(system: System) -> None:
    response = post_to_a_step_completed_meanwhile(system, {"urgency": "high"})
    assert response.status_code == 409
    assert 'id="record-alert"' in response.text and "Traceback" not in response.text


def test_what_was_typed_into_a_step_completed_meanwhile_is_shown_to_copy(system: System) -> None:
    response = post_to_a_step_completed_meanwhile(
        system, {"urgency": "high", "comment": "Called the customer at 10:40"}, "?lang=en")
    assert response.status_code == 409
    kept = response.text.split('id="record-unsent"')[1].split("</section>")[0]
    assert "<dt>Urgency</dt><dd class=\"long\">High</dd>" in kept
    assert "<dt>Comment</dt><dd class=\"long\">Called the customer at 10:40</dd>" in kept


def test_a_stale_version_of_the_task_is_a_conflict_not_a_lost_update(system: System) -> None:
    record = submit(system)
    task = claimed(system, record)
    response = complete(client_for(system, "ann"), record, {**task, "version": task["version"] - 1},
                        {"urgency": "low"})
    assert response.status_code == 409
    assert open_task(system, record)["node"] == "triage"


def test_a_conflict_on_a_chinese_page_is_said_in_chinese_only(system: System) -> None:
    record = submit(system)
    task = claimed(system, record)
    client = client_for(system, "ann")
    client.get(f"/records/ticket/{record}?lang=zh-CN")
    response = complete(client, record, {**task, "version": task["version"] - 1}, {"urgency": "low"})
    alert = response.text.split('id="record-alert">')[1].split("</div>")[0]
    assert alert == "该任务已被他人处理或更改，本次未保存。"


def test_someone_who_does_not_hold_the_task_cannot_complete_it(system: System) -> None:
    record = submit(system)
    task = claimed(system, record, "ann")
    response = complete(client_for(system, "bob"), record, task, {"urgency": "low"})
    assert response.status_code == 409
    assert open_task(system, record)["node"] == "triage"


def test_the_timeline_shows_who_changed_what(system: System, clock: ManualClock) -> None:
    record = submit(system)
    task = claimed(system, record)
    clock.advance(timedelta(hours=2))
    complete(client_for(system, "ann"), record, task, {"urgency": "low", "comment": "routine"})
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=en").text
    assert re.search(r"<th scope=\"row\">Urgency</th><td><del>—</del></td><td><ins>Low</ins></td>", html)
    assert '<p class="ev-comment">routine</p>' in html
    # Triage lasted two hours (Monday 10:00-12:00 in Shanghai): wall and working time alike.
    assert re.search(r"<td>Triage</td><td>2026-11-23 10:00</td><td>2026-11-23 12:00</td>\s*<td>2h</td><td>2h</td>", html)


def test_a_step_the_flow_passed_through_at_once_is_greyed_among_the_steps(system: System, clock: ManualClock) -> None:
    record = submit(system)
    task = claimed(system, record)
    clock.advance(timedelta(hours=1))
    complete(client_for(system, "ann"), record, task, {"urgency": "low"})
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=en").text
    assert re.search(r'<tr class="pass-through"><td>Route</td>', html)
    assert re.search(r"<tr><td>Triage</td>", html)


def test_delegating_hands_the_task_to_a_colleague(system: System) -> None:
    record = submit(system)
    task = claimed(system, record, "ann")
    page = f"/records/ticket/{record}"
    response = post(client_for(system, "ann"), f"{page}/tasks/{task['id']}/reassign",
                    {"to": "bob", "comment": "on leave"}, page=page)
    assert response.status_code == 303
    assert "/complete" in client_for(system, "bob").get(page).text
    with read_transaction(system.db) as conn:
        kinds = [r[0] for r in conn.execute(select(history.c.kind).where(history.c.record_id == record))]
    assert "task.delegated" in kinds


def test_an_open_task_is_not_offered_for_reassigning_to_someone_who_may_claim_it_themselves(
        system: System) -> None:
    record = submit(system)
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    choices = re.findall(r'<option value="([a-z]+)">[^<]* \(\1\)</option>', html)
    assert "ann" in choices and "max" not in choices


def test_an_approval_only_its_viewer_could_take_offers_no_reassigning(system: System) -> None:
    record = submit(system)
    complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "high"})
    html = client_for(system, "max").get(f"/records/ticket/{record}?lang=en").text
    assert 'class="reassign"' not in html and "/claim" in html


def test_a_task_cannot_be_handed_to_someone_outside_its_people(system: System) -> None:
    record = submit(system)
    task = claimed(system, record, "ann")
    page = f"/records/ticket/{record}"
    response = post(client_for(system, "ann"), f"{page}/tasks/{task['id']}/reassign", {"to": "nils"}, page=page)
    assert response.status_code == 400


# -- comments ------------------------------------------------------------------------------------
def test_a_comment_becomes_a_history_entry(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    response = post(client_for(system, "ann"), f"{page}/comment", {"comment": "Called the customer"}, page=page)
    assert response.status_code == 303
    with read_transaction(system.db) as conn:
        row = conn.execute(select(history).where(history.c.kind == "comment.added")).mappings().one()
    assert (row["actor"], row["node"], row["data"]) == ("ann", "triage", {"text": "Called the customer", "task_id": None})
    assert "Called the customer" in client_for(system, "ann").get(page).text


def test_a_comment_the_box_let_through_is_kept_whole_though_its_lines_arrive_as_crlf(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    typed = "\n".join(["Called the customer back"] * 190)  # 4,749 characters as the box counts them
    response = post(client_for(system, "ann"), f"{page}/comment", {"comment": typed.replace("\n", "\r\n")}, page=page)
    assert response.status_code == 303
    with read_transaction(system.db) as conn:
        row = conn.execute(select(history).where(history.c.kind == "comment.added")).mappings().one()
    assert row["data"]["text"] == typed


def test_a_steps_comment_arriving_with_crlf_lines_is_kept_whole(system: System) -> None:
    record = submit(system)
    typed = "\n".join(["Checked the printer"] * 240) + "\nEND"  # 4,803 characters as the box counts them
    complete(client_for(system, "ann"), record, claimed(system, record),
             {"urgency": "low", "comment": typed.replace("\n", "\r\n")})
    with read_transaction(system.db) as conn:
        row = conn.execute(select(history).where(history.c.kind == "task.completed")).mappings().one()
    assert row["data"]["comment"] == typed


def test_files_sent_with_a_comment_are_kept_with_it_and_linked_in_the_timeline(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    ann = client_for(system, "ann")
    token = csrf_of(ann.get(page).text)
    response = ann.post(f"{page}/comment", data={"comment": "", "csrf_token": token},
                        files=[("files", ("receipt.pdf", b"%PDF-1.4\n%%EOF\n", "application/pdf"))],
                        follow_redirects=False)
    assert response.status_code == 303
    html = ann.get(page).text
    link = re.search(r'<p class="ev-files"><a href="([^"]+)">receipt.pdf</a>', html)
    assert link, "the timeline lists the file"
    assert ann.get(link.group(1)).content == b"%PDF-1.4\n%%EOF\n"


def test_a_file_of_a_few_megabytes_may_be_sent_with_a_comment(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    ann = client_for(system, "ann")
    token = csrf_of(ann.get(page).text)
    scan = b"%PDF-1.4\n" + b"0" * (3 * 1024 * 1024) + b"\n%%EOF\n"
    response = ann.post(f"{page}/comment", data={"comment": "The signed delivery note", "csrf_token": token},
                        files=[("files", ("note.pdf", scan, "application/pdf"))], follow_redirects=False)
    assert response.status_code == 303
    assert ">note.pdf</a>" in ann.get(page).text


def test_after_a_comment_the_page_opens_at_the_timelines_end_saying_it_was_added(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    ann = client_for(system, "ann")
    response = post(ann, f"{page}/comment", {"comment": "Called the customer"}, page=page)
    assert response.headers["location"] == f"{page}?notice=commented#comment-saved"
    html = ann.get(f"{page}?notice=commented&lang=en").text
    saved = html.index('id="comment-saved"')
    # Beside the box, after the new entry: a confirmation at the top of the page was out of sight.
    assert html.index("Called the customer") < saved < html.index('class="comment-form"')
    assert ">Your comment was added.</p>" in html[saved:] and html.count("Your comment was added.") == 1


def test_an_empty_comment_is_refused_next_to_the_box(system: System) -> None:
    record = submit(system)
    page = f"/records/ticket/{record}"
    response = post(client_for(system, "ann"), f"{page}/comment", {"comment": "  "}, page=page)
    assert response.status_code == 422 and 'id="new-comment-error"' in response.text


def test_someone_who_may_not_see_the_record_cannot_comment(system: System) -> None:
    record = submit(system)
    response = post(client_for(system, "nils"), f"/records/ticket/{record}/comment", {"comment": "hi"})
    assert response.status_code == 404


# -- new record ----------------------------------------------------------------------------------
def test_the_new_record_page_offers_staff_only_fields(system: System) -> None:
    html = client_for(system, "ann").get("/records/ticket/new").text
    assert 'name="internal_note"' in html and 'name="_key"' in html


def test_a_double_submitted_new_record_creates_one_record(system: System) -> None:
    client = client_for(system, "ann")
    html = client.get("/records/ticket/new").text
    key = re.search(r'name="_key" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    data = {"subject": "Phone line dead", "urgency": "high", "_key": key, "csrf_token": csrf_of(html)}
    first = client.post("/records/ticket/new", data=data)
    again = client.post("/records/ticket/new", data=data)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"] == "/records/ticket/1?notice=created"
    assert system.forms.count("ticket") == 1
    assert system.forms.get("ticket", 1)["created_by"] == "ann"


def test_a_new_record_with_errors_keeps_what_was_typed(system: System) -> None:
    client = client_for(system, "ann")
    html = client.get("/records/ticket/new").text
    key = re.search(r'name="_key" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    response = client.post("/records/ticket/new", data={"details": "no subject", "_key": key,
                                                        "csrf_token": csrf_of(html)})
    assert response.status_code == 422
    assert 'id="f-subject-error"' in response.text and "no subject</textarea>" in response.text
    assert f'value="{key}"' in response.text  # the same key: a retry still creates one record


# -- the list ------------------------------------------------------------------------------------
def test_the_list_searches_filters_and_keeps_row_level_scope(system: System) -> None:
    submit(system, subject="Printer jams", area="printer")
    submit(system, subject="Laptop broken", area="laptop")
    submit(system, subject="Mail down", area="software")
    client = client_for(system, "max")
    rows = lambda url: re.findall(r'<td class="c-no"><a href="/records/ticket/\d+">(HD\d+)</a></td>', client.get(url).text)  # noqa: E731
    assert rows("/records/ticket") == ["HD0003", "HD0002", "HD0001"]
    assert rows("/records/ticket?q=laptop") == ["HD0002"]
    assert rows("/records/ticket?area=hardware") == ["HD0002", "HD0001"]  # a parent takes its children
    assert rows("/records/ticket?area=not-an-option") == ["HD0003", "HD0002", "HD0001"]
    assert rows("/records/ticket?from=2026-11-24") == []
    assert rows("/records/ticket?q=%25") == []  # a typed % is a character, not a wildcard
    outsider = client_for(system, "nils").get("/records/ticket").text
    assert "HD0001" not in outsider


def rows_of(html: str) -> list[str]:
    return re.findall(r'<td class="c-no"><a href="/records/ticket/\d+">(HD\d+)</a></td>', html)


def test_the_list_may_be_ordered_oldest_or_last_changed_first(system: System, clock: ManualClock) -> None:
    first, _, _ = submit(system), submit(system), submit(system)
    clock.advance(timedelta(minutes=5))
    complete(client_for(system, "ann"), first, claimed(system, first), {"urgency": "low"})
    client = client_for(system, "max")
    assert rows_of(client.get("/records/ticket").text) == ["HD0003", "HD0002", "HD0001"]
    assert rows_of(client.get("/records/ticket?sort=oldest").text) == ["HD0001", "HD0002", "HD0003"]
    assert rows_of(client.get("/records/ticket?sort=updated").text) == ["HD0001", "HD0003", "HD0002"]
    assert rows_of(client.get("/records/ticket?sort=sideways").text) == ["HD0003", "HD0002", "HD0001"]


def test_the_lists_order_is_kept_when_paging_and_in_the_link_to_share(system: System,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("web.record_list.PAGE_SIZE", 2)
    for _ in range(3):
        submit(system)
    client = client_for(system, "max")
    html = client.get("/records/ticket?sort=oldest&lang=en").text
    assert '<label for="list-sort">Sort by</label>' in html
    assert '<option value="oldest" selected>Oldest first</option>' in html
    assert 'href="/records/ticket?sort=oldest&amp;page=2" rel="next"' in html
    assert 'id="view-link"' in html and 'href="/records/ticket?sort=oldest" id="view-link"' in html
    assert rows_of(client.get("/records/ticket?sort=oldest&page=2").text) == ["HD0003"]
    assert "清除筛选" not in client.get("/records/ticket?sort=oldest&lang=zh-CN").text  # an order filters nothing


def test_dates_typed_the_wrong_way_round_are_pointed_out(system: System) -> None:
    submit(system)
    html = client_for(system, "max").get("/records/ticket?from=2026-11-30&to=2026-11-01&lang=zh-CN").text
    assert '<p class="alert" role="alert" id="dates-reversed">开始日期晚于结束日期，没有记录能符合，请对调两个日期。</p>' in html
    assert html.count('aria-invalid="true"') == 2


def test_the_export_names_each_status_in_words_as_the_list_does(system: System) -> None:
    submit(system, subject="Printer jams")
    client = client_for(system, "max")
    client.get("/records/ticket?lang=zh-CN")
    header, row = client.get("/records/ticket/export.csv").content.decode("utf-8-sig").strip().splitlines()
    assert header.split(",")[1] == "状态" and row.split(",")[1] == "已分拣"


def test_the_export_holds_the_filtered_rows_in_scope_and_is_audited(system: System) -> None:
    from engine.storage.tables import audit_log

    submit(system, subject="Printer jams", area="printer")
    submit(system, subject="Laptop broken", area="laptop")
    response = client_for(system, "max").get("/records/ticket/export.csv?q=laptop")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    lines = response.content.decode("utf-8-sig").strip().splitlines()
    assert len(lines) == 2 and "Laptop broken" in lines[1]
    assert client_for(system, "nils").get("/records/ticket/export.csv").content.decode("utf-8-sig").count("\n") <= 1
    with read_transaction(system.db) as conn:
        rows = conn.execute(select(audit_log).where(audit_log.c.action == "export")).mappings().all()
    assert [r["actor"] for r in rows] == ["max", "nils"]
    assert rows[0]["detail"]["rows"] == 1 and rows[0]["detail"]["filters"] == {"q": "laptop"}


def test_the_exports_file_is_named_for_the_offices_date_and_time(system: System) -> None:
    submit(system)
    response = client_for(system, "max").get("/records/ticket/export.csv")
    # START is 02:00 UTC, 10:00 in the bundle's Asia/Shanghai
    assert response.headers["content-disposition"].endswith("ticket-20261123-1000.csv")


def test_the_xlsx_export_is_a_workbook(system: System) -> None:
    from openpyxl import load_workbook

    submit(system, subject="Printer jams")
    response = client_for(system, "max").get("/records/ticket/export.xlsx")
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).active
    assert any("Printer jams" in [str(c) for c in row] for row in sheet.iter_rows(values_only=True))


# -- files (RELIABILITY 47) ----------------------------------------------------------------------
def test_a_records_file_is_served_to_those_who_may_see_the_record_only(system: System) -> None:
    from tests.web.staff_kit import attach_photo

    token = attach_photo(system)
    record = submit(system, photo=[token])
    url = f"/records/ticket/{record}/files/{token}"
    html = client_for(system, "ann").get(f"/records/ticket/{record}").text
    assert f'href="{url}?inline=1"' in html
    allowed = client_for(system, "ann").get(url)
    assert allowed.status_code == 200 and allowed.content.startswith(b"\x89PNG")
    assert allowed.headers["x-content-type-options"] == "nosniff"
    assert allowed.headers["content-disposition"].startswith("attachment")
    assert client_for(system, "nils").get(url).status_code == 404


def test_a_photo_on_the_record_page_opens_in_the_browser_instead_of_downloading(system: System) -> None:
    from tests.web.staff_kit import attach_photo

    token = attach_photo(system)
    record = submit(system, photo=[token])
    client = client_for(system, "ann")
    link = re.search(r'<a href="([^"]+)" target="_blank" rel="noopener">tray.png</a>',
                     client.get(f"/records/ticket/{record}").text)
    assert link is not None and link.group(1).endswith("?inline=1")
    assert client.get(link.group(1)).headers["content-disposition"].startswith("inline")


def test_a_file_of_another_record_is_not_served_through_this_one(system: System) -> None:
    from tests.web.staff_kit import attach_photo

    token = attach_photo(system)
    submit(system, photo=[token])
    other = submit(system)
    assert client_for(system, "max").get(f"/records/ticket/{other}/files/{token}").status_code == 404


KEPT_PHOTO = re.compile(r'<input type="checkbox" name="photo" value="([A-Za-z0-9_-]{32})" checked> ([^<]+?) <small')


def new_record_refused_with_a_photo(client) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """Send the new-record page with a photo and no subject; returns the answer and its `_key`."""
    from tests.web.staff_kit import png_bytes

    html = client.get("/records/ticket/new").text
    key = re.search(r'name="_key" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
    response = client.post("/records/ticket/new", data={"details": "no subject", "_key": key,
                                                        "csrf_token": csrf_of(html)},
                           files=[("photo", ("tray.png", png_bytes(), "image/png"))])
    assert response.status_code == 422
    return response.text, key


def test_a_photo_sent_with_a_refused_new_record_is_listed_again(system: System) -> None:
    html, _ = new_record_refused_with_a_photo(client_for(system, "ann"))
    assert [name for _, name in KEPT_PHOTO.findall(html)] == ["tray.png"]


def test_a_new_record_sent_again_links_the_photo_kept_from_the_refused_one(system: System) -> None:
    client = client_for(system, "ann")
    html, key = new_record_refused_with_a_photo(client)
    ((kept, _),) = KEPT_PHOTO.findall(html)
    response = client.post("/records/ticket/new", data={"subject": "Jam", "photo": ["", kept], "_key": key,
                                                        "csrf_token": csrf_of(html)})
    assert response.status_code == 303
    assert [p["id"] for p in system.forms.get("ticket", 1)["photo"]] == [kept]


def photo_in_triage(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Let the triage step edit the photo field too (the help-desk flow's triage does not)."""
    from dataclasses import replace

    flow = system.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    triage = nodes["triage"]
    nodes["triage"] = replace(triage, options={**triage.options, "fields": [*triage.options["fields"], "photo"]})
    monkeypatch.setitem(system.flows.flows, "ticket_flow", replace(flow, nodes=nodes))


def test_a_step_editing_photos_lists_the_records_photos_to_keep(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.web.staff_kit import attach_photo

    photo_in_triage(system, monkeypatch)
    token = attach_photo(system)
    record = submit(system, photo=[token])
    claimed(system, record)
    html = client_for(system, "ann").get(f"/records/ticket/{record}").text
    assert KEPT_PHOTO.findall(html) == [(token, "tray.png")]


def test_a_photo_sent_with_a_refused_step_is_listed_again(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.web.staff_kit import png_bytes

    photo_in_triage(system, monkeypatch)
    record = submit(system)
    task = claimed(system, record)
    client = client_for(system, "ann")
    page = f"/records/ticket/{record}"
    response = client.post(f"{page}/tasks/{task['id']}/complete",
                           data={"urgency": "extreme", "version": str(task["version"]),
                                 "csrf_token": csrf_of(client.get(page).text)},
                           files=[("photo", ("jam.png", png_bytes(), "image/png"))])
    assert response.status_code == 422
    assert [name for _, name in KEPT_PHOTO.findall(response.text)] == ["jam.png"]


def test_a_step_adds_a_new_photo_beside_the_ones_it_keeps(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.web.staff_kit import attach_photo, png_bytes

    photo_in_triage(system, monkeypatch)
    token = attach_photo(system)
    record = submit(system, photo=[token])
    task = claimed(system, record)
    client = client_for(system, "ann")
    page = f"/records/ticket/{record}"
    response = client.post(f"{page}/tasks/{task['id']}/complete",
                           data={"urgency": "low", "photo": ["", token], "version": str(task["version"]),
                                 "csrf_token": csrf_of(client.get(page).text)},
                           files=[("photo", ("jam.png", png_bytes(), "image/png"))])
    assert response.status_code == 303
    assert [p["name"] for p in system.forms.get("ticket", record)["photo"]] == ["tray.png", "jam.png"]


# -- fields a user may not see -------------------------------------------------------------------
def test_fields_a_node_hides_from_its_people_never_reach_their_pages(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A node's `hidden_fields` (where a bundle declares them) are kept from the holders of the
    node's role: not on the record page, not in the timeline's diffs, not in the export."""
    from dataclasses import replace

    flow = system.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    nodes["solve"] = replace(nodes["solve"], options={**nodes["solve"].options, "hidden_fields": ["internal_note"]})
    monkeypatch.setitem(system.flows.flows, "ticket_flow", replace(flow, nodes=nodes))
    record = submit(system, internal_note="margin 12%")
    page = f"/records/ticket/{record}"
    assert "margin 12%" not in client_for(system, "ann").get(page).text  # an agent: solve's role
    assert "margin 12%" not in client_for(system, "ann").get("/records/ticket/export.csv").content.decode("utf-8-sig")
    assert "margin 12%" in client_for(system, "max").get(page).text  # a manager sees everything


# -- files too large are refused as they are chosen (static/form.js, as on the public form) ------
def file_input(html: str, input_id: str) -> str:
    found = re.search(rf'<input type="file" id="{input_id}"[^>]*>', html)
    assert found, f"no file input {input_id}"
    return found.group(0)


def form_tag(html: str, action: str) -> str:
    found = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>', html)
    assert found, f"no form posting to {action}"
    return found.group(0)


def test_a_steps_file_input_carries_its_fields_size_limit(system: System, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from web.form_files import files_budget
    from web.records_pages import MAX_STEP_BYTES

    photo_in_triage(system, monkeypatch)
    record = submit(system)
    task = claimed(system, record)
    html = client_for(system, "ann").get(f"/records/ticket/{record}").text
    limit = system.runtime.services["attachments"].limits_for("ticket", "photo").max_bytes
    assert f'data-max-bytes="{limit}"' in file_input(html, "f-photo")
    step = form_tag(html, f"/records/ticket/{record}/tasks/{task['id']}/complete")
    assert f'data-max-files-bytes="{files_budget(MAX_STEP_BYTES)}"' in step
    assert 'data-file-too-big="{name} is larger than {mb} MB: choose a smaller file."' in step


def test_the_comment_boxs_file_input_carries_the_size_limit_of_comment_files(system: System) -> None:
    from forms.attachments.limits import DEFAULT_LIMITS

    record = submit(system)
    html = client_for(system, "ann").get(f"/records/ticket/{record}?lang=zh-CN").text
    assert f'data-max-bytes="{DEFAULT_LIMITS.max_bytes}"' in file_input(html, "new-comment-files")
    comment = form_tag(html, f"/records/ticket/{record}/comment")
    assert 'data-max-files-bytes="' in comment and 'data-file-too-big="{name} 超过 {mb} MB，请换一个较小的文件。"' in comment


def test_the_new_record_pages_file_input_carries_its_fields_size_limit(system: System) -> None:
    html = client_for(system, "ann").get("/records/ticket/new").text
    limit = system.runtime.services["attachments"].limits_for("ticket", "photo").max_bytes
    assert f'data-max-bytes="{limit}"' in file_input(html, "f-photo")
    assert 'data-max-files-bytes="' in form_tag(html, "/records/ticket/new")


# -- a refused post answers at its own address: the page names the record's -----------------------
def test_a_refused_step_names_the_record_page_as_its_address(system: System) -> None:
    record = submit(system)
    response = complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "extreme"})
    assert response.status_code == 422
    assert f'<meta name="page-address" content="/records/ticket/{record}">' in response.text


def test_the_language_links_of_a_refused_step_open_the_record_page(system: System) -> None:
    record = submit(system)
    response = complete(client_for(system, "ann"), record, claimed(system, record), {"urgency": "extreme"})
    assert f'href="/records/ticket/{record}?lang=zh-CN"' in response.text
    assert "/complete?lang=" not in response.text


def test_a_chinese_page_heads_the_task_with_a_chinese_colon(system: System) -> None:
    # "任务: 分拣" read as English punctuation dropped into Chinese; the customer pages had "：".
    record = submit(system)
    page = client_for(system, "max")
    assert re.search(r'<h2 id="task-\d+-h">任务：', page.get(f"/records/ticket/{record}?lang=zh-CN").text)
    assert re.search(r'<h2 id="task-\d+-h">Task: ', page.get(f"/records/ticket/{record}?lang=en").text)


def test_the_steps_table_names_who_holds_the_open_step(system: System) -> None:
    record = submit(system)
    claimed(system, record, "bob")
    html = client_for(system, "root").get(f"/records/ticket/{record}?lang=en").text
    row = re.search(r'<tr class="open-step"><td>Triage</td>.*?</tr>', html, re.S)
    assert row and "<td>Bob</td>" in row.group(0)
