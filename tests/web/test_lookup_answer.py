"""The customer's side of the closure (REQUIREMENTS 4): the progress lookup shows the path of
statuses, the result, basis and compensation, and lets the customer confirm and rate the
resolution when the flow waits for it; the answer moves the flow on like a staff completion."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from engine.identity import CUSTOMER_ACTOR
from tests.flows.test_postal_flow import Case, accept
from tests.web.test_lookup import COMPLAINT, Seconds, system  # noqa: F401 (fixture)
from web.app import create_app
from web.lookup import StepPass
from web.system import System



@pytest.fixture
def client(system: System) -> TestClient:
    return TestClient(create_app(system, secret="t", monotonic=Seconds()), raise_server_exceptions=False)


def replied(system: System) -> Case:
    case = accept(system, COMPLAINT).assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2"})
    case.do("reply", "agent", {"resolution": "已赔付并致歉"})
    return case


def look_up(client: TestClient, case: Case, lang: str = "zh-CN") -> str:
    query_no = case.system.forms.get("complaint", case.id)["query_no"]
    page = client.post(f"/track?lang={lang}", data={"query_no": query_no, "verify": "5678"})
    assert page.status_code == 200
    return page.text


def step_pass(page: str) -> str:
    found = re.search(r'name="pass" value="([^"]+)"', page)
    assert found, "no step on the page"
    return found[1]


def test_the_lookup_shows_the_path_of_statuses_in_the_customers_words(client: TestClient, system: System) -> None:
    page = look_up(client, replied(system))
    path = re.search(r'<ol class="progress-path" id="lookup-progress">(.*?)</ol>', page, re.S)
    assert path is not None
    words = re.findall(r"</span> (\S+)</li>", path[1])
    assert words == ["已受理", "处理中", "待回复", "待您确认"]  # received and accepted read alike: once


def test_staff_read_the_status_in_their_own_words_where_the_customers_differ(client: TestClient,
                                                                             system: System) -> None:
    # A manager read 待您确认 ("awaiting your confirmation") on the staff list: the customer's words.
    from tests.web.auth_kit import give_password, sign_in

    case = replied(system)
    give_password(system, "agent")
    sign_in(client, "agent")
    page = client.get(f"/records/complaint/{case.id}?lang=zh-CN").text
    assert "待客户确认" in page and "待您确认" not in page


def test_the_result_basis_and_compensation_reach_the_customer(client: TestClient, system: System) -> None:
    page = look_up(client, replied(system))
    assert "已赔付并致歉" in page and "延误赔付条款 3.2" in page and "300" in page


def test_no_answer_is_asked_while_staff_still_work_on_the_case(client: TestClient, system: System) -> None:
    page = look_up(client, accept(system, COMPLAINT))
    assert 'id="customer-step"' not in page


def test_the_customer_confirms_and_rates_and_the_case_closes(client: TestClient, system: System) -> None:
    case = replied(system)
    page = look_up(client, case)
    assert 'id="customer-step"' in page and "请告诉我们问题是否已解决" in page
    answer = client.post("/track/answer?lang=zh-CN", data={
        "pass": step_pass(page), "customer_confirmed": "true", "satisfaction": "5"})
    assert answer.status_code == 200
    assert 'id="lookup-notice"' in answer.text and 'id="lookup-status">已解决<' in answer.text
    assert 'id="customer-step"' not in answer.text
    assert case.status == "resolved"
    (done,) = [h for h in case.history("task.completed") if h["node"] == "confirm"]
    assert done["actor"] == CUSTOMER_ACTOR


def test_a_dissatisfied_customer_sends_the_case_to_the_department_manager(client: TestClient, system: System) -> None:
    case = replied(system)
    client.post("/track/answer", data={"pass": step_pass(look_up(client, case)), "satisfaction": "2"})
    assert case.open() == ["manager_review"] and case.status == "escalated"


def test_a_dissatisfied_customer_is_told_what_happens_next(client: TestClient, system: System) -> None:
    case = replied(system)
    answer = client.post("/track/answer?lang=en", data={"pass": step_pass(look_up(client, case)), "satisfaction": "2"})
    assert 'id="lookup-status">Escalated: a senior manager is handling it and will reply to you<' in answer.text


def test_an_answer_the_form_refuses_is_shown_again_with_the_error(client: TestClient, system: System) -> None:
    case = replied(system)
    answer = client.post("/track/answer?lang=en", data={
        "pass": step_pass(look_up(client, case)), "customer_confirmed": "true", "satisfaction": "9"})
    assert answer.status_code == 422
    step = answer.text.split('id="customer-step"')[1]
    assert 'id="lookup-alert"' in answer.text and '<p class="error"' in step
    assert case.open() == ["confirm"]


def test_a_step_already_answered_by_staff_is_not_answered_twice(client: TestClient, system: System) -> None:
    case = replied(system)
    token = step_pass(look_up(client, case))
    case.do("confirm", "agent", {"customer_confirmed": True, "satisfaction": 4})
    answer = client.post("/track/answer?lang=zh-CN", data={"pass": token, "customer_confirmed": "true",
                                                          "satisfaction": "1"})
    assert answer.status_code == 409 and "此环节已有答复" in answer.text
    assert system.forms.get("complaint", case.id)["satisfaction"] == 4


def test_an_altered_pass_answers_nothing(client: TestClient, system: System) -> None:
    case = replied(system)
    token = step_pass(look_up(client, case))
    form, record_id, task_id = StepPass("t").check(token)  # type: ignore[misc]
    forged = StepPass("not the server's secret").issue(form, record_id, task_id)
    answer = client.post("/track/answer?lang=en", data={"pass": forged, "satisfaction": "5"})
    assert answer.status_code == 400 and "expired" in answer.text
    assert case.open() == ["confirm"]


def test_a_pass_older_than_half_an_hour_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import itsdangerous.timed

    clock = [1_000_000.0]
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: clock[0])
    passes = StepPass("t")
    token = passes.issue("complaint", 1, 2)
    clock[0] += StepPass.MAX_AGE - 1
    assert passes.check(token) == ("complaint", 1, 2)
    clock[0] += timedelta(seconds=2).total_seconds()
    assert passes.check(token) is None


def test_the_record_page_names_the_customer_as_who_answered(system: System) -> None:
    from web.record_view import build_record_page

    case = replied(system)
    task, _ = system.flows.customer_step("complaint", case.id)  # type: ignore[misc]
    system.flows.complete(task["id"], CUSTOMER_ACTOR, values={"customer_confirmed": True, "satisfaction": 5})
    app = create_app(system, secret="t")
    from engine.identity import Principal

    page = build_record_page(app.state.web, "complaint", case.id, Principal.system(), "zh-CN")
    confirm = [s for s in page.steps if s["by"] == "客户"]
    assert confirm and any(a.actor == "客户" for a in page.activity)


def test_staff_are_told_the_customer_may_answer_the_step_themselves(system: System) -> None:
    from engine.identity import Principal
    from web.record_view import build_record_page

    case = replied(system)
    app = create_app(system, secret="t")
    page = build_record_page(app.state.web, "complaint", case.id, Principal.system(), "en")
    (panel,) = page.tasks
    assert panel.node == "confirm" and panel.customer_may_answer


def test_the_inbox_marks_a_step_the_customer_may_answer(system: System) -> None:
    from engine.storage.db import read_transaction
    from forms.access import load_principal
    from web.inbox import inbox_rows

    case = replied(system)
    accept(system, COMPLAINT)  # another complaint, at its first steps
    app = create_app(system, secret="t")
    with read_transaction(system.db) as conn:
        agent = load_principal(conn, system.runtime, "agent")
    assert agent is not None
    rows = inbox_rows(app.state.web, agent, "zh-CN")
    assert [(r.node, r.customer_may_answer) for r in rows if r.record_id == case.id] == [("confirm", True)]
    assert rows and all(not r.customer_may_answer for r in rows if r.record_id != case.id)


# -- the same for apps: /api/v1/lookup ---------------------------------------------------------
def api_lookup(client: TestClient, case: Case, verify: str = "5678") -> Any:
    query_no = case.system.forms.get("complaint", case.id)["query_no"]
    return client.post("/api/v1/lookup?lang=en", json={"query_no": query_no, "verify": verify})


def test_an_app_looks_up_the_status_progress_and_the_step_as_json(client: TestClient, system: System) -> None:
    answer = api_lookup(client, replied(system))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["status_label"]) == ("awaiting_confirmation", "Awaiting your confirmation")
    assert [p["status"] for p in body["progress"]] == [
        "new", "accepted", "in_progress", "awaiting_reply", "awaiting_confirmation"]
    assert {f["name"] for f in body["fields"]} >= {"resolution", "basis", "compensation"}
    step = body["step"]
    assert step["node"] == "confirm" and [f["name"] for f in step["fields"]] == ["customer_confirmed", "satisfaction"]


def test_wrong_digits_over_the_api_say_nothing_about_the_number(client: TestClient, system: System) -> None:
    case = replied(system)
    wrong = api_lookup(client, case, verify="0000")
    unknown = client.post("/api/v1/lookup", json={"query_no": "TS2099010100001", "verify": "5678"})
    assert wrong.status_code == unknown.status_code == 404 and wrong.json() == unknown.json()


def test_an_app_sends_the_customers_answer_and_the_case_closes(client: TestClient, system: System) -> None:
    case = replied(system)
    token = api_lookup(client, case).json()["step"]["pass"]
    answer = client.post("/api/v1/lookup/answer", json={
        "pass": token, "values": {"customer_confirmed": True, "satisfaction": 5}})
    assert answer.status_code == 200 and answer.json()["status"] == "resolved" and answer.json()["step"] is None
    again = client.post("/api/v1/lookup/answer", json={"pass": token, "values": {"satisfaction": 1}})
    assert again.status_code == 409 and case.status == "resolved"


def test_an_answer_over_the_api_is_validated_like_any_completion(client: TestClient, system: System) -> None:
    case = replied(system)
    token = api_lookup(client, case).json()["step"]["pass"]
    refused = client.post("/api/v1/lookup/answer", json={"pass": token, "values": {"customer_confirmed": True}})
    assert refused.status_code == 422 and "satisfaction" in refused.json()["fields"]
    other = client.post("/api/v1/lookup/answer", json={"pass": token, "values": {"compensation": 99999}})
    assert other.status_code == 400 and "customer_confirmed, satisfaction" in other.json()["error"]
    forged = client.post("/api/v1/lookup/answer", json={"pass": token + "x", "values": {"satisfaction": 5}})
    assert forged.status_code == 400
    assert case.open() == ["confirm"]


def test_another_language_reopens_the_lookup_with_the_number_filled_in(client: TestClient, system: System) -> None:
    case = replied(system)
    page = look_up(client, case)
    query_no = system.forms.get("complaint", case.id)["query_no"]
    assert f'href="/track?lang=en&amp;query_no={query_no}"' in page
    assert f'value="{query_no}"' in client.get(f"/track?lang=en&query_no={query_no}").text


def asked_for_information(system: System) -> Case:
    case = Case(system, COMPLAINT)
    system.flows.claim(case.task("accept")["id"], "agent")
    case.do("accept", "agent", {"urgency": "normal", "info_needed": True, "info_request": "请提供破损照片"})
    assert case.open() == ["more_info"]
    return case


def test_the_customer_sends_the_photos_asked_for_with_the_answer(client: TestClient, system: System) -> None:
    from tests.forms.test_attachments_kit import png

    case = asked_for_information(system)
    page = look_up(client, case)
    assert "请提供破损照片" in page and 'enctype="multipart/form-data"' in page
    answer = client.post("/track/answer?lang=zh-CN", data={"pass": step_pass(page), "supplement": "两箱外包装破损"},
                         files={"photos": ("box.png", png(4, 3), "image/png")})
    assert answer.status_code == 200 and 'id="lookup-notice"' in answer.text
    record = system.forms.get("complaint", case.id)
    assert record["supplement"] == "两箱外包装破损" and [p["name"] for p in record["photos"]] == ["box.png"]
    assert case.open() == ["accept"]


def test_a_file_that_is_not_a_photo_is_refused_and_the_step_stays_open(client: TestClient, system: System) -> None:
    case = asked_for_information(system)
    answer = client.post("/track/answer?lang=en", data={"pass": step_pass(look_up(client, case)),
                                                        "supplement": "see the photo"},
                         files={"photos": ("box.png", b"<html><script>alert(1)</script></html>", "image/png")})
    assert answer.status_code == 422 and "box.png" in answer.text.split('id="customer-step"')[1]
    assert case.open() == ["more_info"] and system.forms.get("complaint", case.id)["supplement"] is None


def test_the_answers_photo_input_carries_its_fields_size_limit(client: TestClient, system: System) -> None:
    page = look_up(client, asked_for_information(system))
    photos = re.search(r'<input type="file" id="f-photos"[^>]*>', page)
    assert photos and f'data-max-bytes="{10 * 1024 * 1024}"' in photos.group(0)
    assert re.search(r'<form method="post" action="/track/answer\?lang=zh-CN"[^>]*data-max-files-bytes="\d+"', page)
    assert '/static/form.js' in page


def test_a_refused_answer_lists_its_mistakes_in_the_step_with_links(client: TestClient, system: System) -> None:
    case = replied(system)
    answer = client.post("/track/answer?lang=en", data={
        "pass": step_pass(look_up(client, case)), "customer_confirmed": "true"})
    step = answer.text.split('id="customer-step"')[1]
    assert 'id="lookup-alert"' in step
    assert '<a href="#f-satisfaction-error">Satisfaction: This field is required.</a>' in step


def test_a_refused_answer_opens_with_the_cursor_on_its_list_of_mistakes(client: TestClient, system: System) -> None:
    # The step is far down the page: without the cursor there, a phone shows the top of the page.
    case = replied(system)
    answer = client.post("/track/answer?lang=en", data={
        "pass": step_pass(look_up(client, case)), "customer_confirmed": "true"})
    alert = re.search(r'<div [^>]*id="lookup-alert"[^>]*>', answer.text)
    assert alert and 'tabindex="-1"' in alert[0] and "autofocus" in alert[0]
    assert answer.text.count("autofocus") == 1


def test_the_customers_step_says_in_words_what_the_asterisk_means(client: TestClient, system: System) -> None:
    step = look_up(client, replied(system), lang="en").split('id="customer-step"')[1]
    assert '<p class="help" id="required-note">Fields marked * are required.</p>' in step


def test_each_star_of_the_rating_is_named_by_its_number_for_a_screen_reader(client: TestClient, system: System) -> None:
    # Read aloud, "★★★" is "black star, black star, black star" (or nothing at all).
    step = look_up(client, replied(system), lang="en").split('id="customer-step"')[1]
    assert re.search(r'value="3"> <span aria-hidden="true">★★★</span><span class="sr">3 of 5 stars</span>', step)
    zh = look_up(client, replied(system)).split('id="customer-step"')[1]
    assert '<span class="sr">3 星（满分 5 星）</span>' in zh


def test_a_refused_rating_marks_its_radio_group_invalid(client: TestClient, system: System) -> None:
    case = replied(system)
    answer = client.post("/track/answer?lang=en", data={
        "pass": step_pass(look_up(client, case)), "customer_confirmed": "true"})
    group = re.search(r'<fieldset [^>]*aria-describedby="[^"]*f-satisfaction-error[^"]*"[^>]*>', answer.text)
    assert group and 'role="radiogroup"' in group[0] and 'aria-invalid="true"' in group[0]


def test_an_expired_answer_page_leads_back_to_the_lookup_with_the_number_filled_in(
        client: TestClient, system: System) -> None:
    # The customer read the reply, put the phone down and came back: only the digits are typed again.
    case = replied(system)
    page = look_up(client, case, lang="en")
    query_no = system.forms.get("complaint", case.id)["query_no"]
    assert f'<input type="hidden" name="query_no" value="{query_no}">' in page.split('id="customer-step"')[1]
    forged = StepPass("an old secret").issue("complaint", case.id, 1)
    answer = client.post("/track/answer?lang=en", data={"pass": forged, "query_no": query_no, "satisfaction": "5"})
    assert answer.status_code == 400 and 'id="lookup-alert"' in answer.text
    assert f'name="query_no" value="{query_no}"' in answer.text
    verify = re.search(r'<input [^>]*id="f-verify"[^>]*>', answer.text)
    assert verify and " autofocus" in verify[0]


def answer_with_an_expired_pass(client: TestClient, system: System, case: Case, **files: Any) -> tuple[str, Any]:
    """(query number, answer page) of a step answer sent once its pass has expired."""
    query_no = system.forms.get("complaint", case.id)["query_no"]
    old = StepPass("an old secret").issue("complaint", case.id, 1)
    answer = client.post("/track/answer?lang=en", data={"pass": old, "query_no": query_no,
                                                        "supplement": "Three boxes, photos taken at the door."},
                         files=files or None)
    assert answer.status_code == 400
    return query_no, answer


def test_an_answer_sent_with_an_expired_page_is_kept_for_the_lookup_that_follows(
        client: TestClient, system: System) -> None:
    # Half an hour spent writing it (or the phone put down) must not cost the customer the text.
    _query_no, answer = answer_with_an_expired_pass(client, system, asked_for_information(system))
    assert "what you wrote is kept" in answer.text
    lookup = answer.text.split('class="lookup"', 1)[1]
    assert '<input type="hidden" name="kept.supplement" value="Three boxes, photos taken at the door.">' in lookup


def test_looked_up_again_the_step_shows_the_answer_sent_with_the_expired_page(
        client: TestClient, system: System) -> None:
    case = asked_for_information(system)
    query_no, answer = answer_with_an_expired_pass(client, system, case)
    kept = dict(re.findall(r'<input type="hidden" name="(kept\.[^"]+)" value="([^"]*)">', answer.text))
    again = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678", **kept})
    step = again.text.split('id="customer-step"')[1]
    assert re.search(r'<textarea id="f-supplement"[^>]*>Three boxes, photos taken at the door\.</textarea>', step)
    assert system.forms.get("complaint", case.id)["supplement"] is None  # shown, not yet sent


def test_a_mistyped_lookup_still_carries_the_answer_sent_with_the_expired_page(
        client: TestClient, system: System) -> None:
    query_no, answer = answer_with_an_expired_pass(client, system, asked_for_information(system))
    kept = dict(re.findall(r'<input type="hidden" name="(kept\.[^"]+)" value="([^"]*)">', answer.text))
    wrong = client.post("/track?lang=en", data={"query_no": query_no, "verify": "0000", **kept})
    assert 'id="lookup-failed"' in wrong.text
    assert '<input type="hidden" name="kept.supplement" value="Three boxes, photos taken at the door.">' in wrong.text


def test_files_sent_with_an_expired_page_are_said_to_be_chosen_again(client: TestClient, system: System) -> None:
    from tests.web.staff_kit import png_bytes

    _query_no, answer = answer_with_an_expired_pass(client, system, asked_for_information(system),
                                                    photos=("door.png", png_bytes(), "image/png"))
    assert "The files you chose were not sent: choose them again." in answer.text


def test_the_answers_address_opened_again_leads_to_the_lookup(client: TestClient) -> None:
    # A phone reopening the tab after an answer loads /track/answer afresh, without the post.
    again = client.get("/track/answer?lang=zh-CN", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/track?lang=zh-CN"


def test_the_information_asked_for_is_marked_required_on_the_customers_step(client: TestClient, system: System) -> None:
    # It is required at this step (required_if: status == "awaiting_information"); the page said
    # "needed in some cases" and then refused the empty answer.
    step = look_up(client, asked_for_information(system), lang="en").split('id="customer-step"')[1]
    label = re.search(r'<label for="f-supplement">(.*?)</label>', step, re.S)
    assert label and "needed in some cases" not in label[1] and 'class="req"' in label[1]
    assert re.search(r'<textarea id="f-supplement"[^>]* aria-required="true"', step)


def test_the_rating_is_marked_required_on_the_confirmation_step(client: TestClient, system: System) -> None:
    step = look_up(client, replied(system), lang="en").split('id="customer-step"')[1]
    group = re.search(r'<fieldset [^>]*role="radiogroup"[^>]*>\s*<legend>(.*?)</legend>', step, re.S)
    assert group and 'aria-required="true"' in group[0] and 'class="req"' in group[1]


def test_a_request_for_information_is_not_headed_please_confirm_in_chinese(client: TestClient, system: System) -> None:
    # 请您确认 ("please confirm") headed the request for more information too.
    step = look_up(client, asked_for_information(system)).split('id="customer-step"')[1]
    assert '<h2 id="step-title">需要您的答复</h2>' in step


def test_the_customers_step_asks_its_fields_in_the_steps_order(client: TestClient, system: System) -> None:
    # fields: [supplement, photos, documents]: the answer asked for comes first, under the prompt;
    # in the form's order the two file pickers came first and the required answer last.
    step = look_up(client, asked_for_information(system), lang="en").split('id="customer-step"')[1]
    assert step.index('id="f-supplement"') < step.index('id="f-photos"') < step.index('id="f-documents"')


def test_a_photo_sent_with_the_answer_is_added_to_the_photos_the_complaint_has(client: TestClient, system: System) -> None:
    # The step lists the complaint's photo ticked ("untick a file to remove it"); left ticked, it
    # is kept. The customer's first photo, the evidence of the damage, was replaced by the new one.
    import io

    from tests.forms.test_attachments_kit import png

    service = system.runtime.services["attachments"]
    first = service.upload(io.BytesIO(png(2, 2)), "door.png", "image/png", actor=None,
                           limits=service.limits_for("complaint", "photos"))
    case = Case(system, {**COMPLAINT, "photos": [first["id"]]})
    system.flows.claim(case.task("accept")["id"], "agent")
    case.do("accept", "agent", {"urgency": "normal", "info_needed": True, "info_request": "请提供破损照片"})
    page = look_up(client, case)
    kept = re.findall(r'<input type="checkbox" name="photos" value="([^"]+)" checked>', page)
    assert kept == [first["id"]]
    answer = client.post("/track/answer?lang=zh-CN",
                         data={"pass": step_pass(page), "supplement": "又拍了一张", "photos": ["", *kept]},
                         files={"photos": ("box.png", png(4, 3), "image/png")})
    assert answer.status_code == 200, answer.text[:2000]
    assert [p["name"] for p in system.forms.get("complaint", case.id)["photos"]] == ["door.png", "box.png"]


def test_a_refused_answer_still_lists_the_photos_the_complaint_has(client: TestClient, system: System) -> None:
    # Sent without the required answer, the step came back without the complaint's own photo:
    # the next send then removed that photo, the evidence of the damage, from the complaint.
    import io

    from tests.forms.test_attachments_kit import png

    service = system.runtime.services["attachments"]
    first = service.upload(io.BytesIO(png(2, 2)), "door.png", "image/png", actor=None,
                           limits=service.limits_for("complaint", "photos"))
    case = Case(system, {**COMPLAINT, "photos": [first["id"]]})
    system.flows.claim(case.task("accept")["id"], "agent")
    case.do("accept", "agent", {"urgency": "normal", "info_needed": True, "info_request": "请提供破损照片"})
    page = look_up(client, case)
    refused = client.post("/track/answer?lang=zh-CN", data={"pass": step_pass(page), "photos": ["", first["id"]]})
    assert refused.status_code == 422
    step = refused.text.split('id="customer-step"')[1]
    assert f'<input type="checkbox" name="photos" value="{first["id"]}" checked>' in step
