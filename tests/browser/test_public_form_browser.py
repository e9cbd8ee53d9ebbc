"""A customer fills in the public complaint form in a real browser, on a desktop and a phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.browser.conftest import SCREENSHOTS, LiveServer

VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def slow(monkeypatch: pytest.MonkeyPatch, service: Any, name: str, seconds: float = 0.8) -> None:
    """Make the server take a while over `service.name`, as over a slow phone network."""
    import time

    original = getattr(service, name)
    monkeypatch.setattr(service, name, lambda *a, **k: (time.sleep(seconds), original(*a, **k))[1])


def tap_twice(page: Any, button: str) -> str:
    """Tap `button`, and again a moment later while the first post is on its way (a double tap;
    Playwright waits for a navigation between its own actions, so the page taps itself).
    The button's text just after the first tap."""
    return str(page.evaluate(
        "(sel) => { const b = document.querySelector(sel); b.click(); setTimeout(() => b.click(), 150);"
        " return b.textContent; }", button))


def fill_complaint(page: Any) -> None:
    page.get_by_label("大客户名称").fill("华东电子商务有限公司")
    page.get_by_label("联系人").fill("陈先生")
    page.get_by_label("联系电话").fill("13812345678")
    page.get_by_role("button", name="下一步").click()
    page.get_by_label("投诉发生时间").fill("2026-11-20T10:30")
    page.get_by_label("问题分类").select_option("damage_goods")
    page.get_by_label("问题详细描述").fill("三箱货物内件破损，外包装有明显挤压痕迹。")
    page.get_by_label("索赔金额").fill("1200")


def answer_page(browser: Any, live_server: LiveServer, locale: str) -> tuple[Any, Any, Any]:
    """(context, page, case): a phone on the lookup page of a complaint whose reply waits for the
    customer's confirmation, in `locale` ("zh-CN" or "en"), looked up with the phone's digits."""
    from tests.flows.test_postal_flow import accept

    zh = locale == "zh-CN"
    case = accept(live_server.system, {
        "customer_name": "华东电子商务有限公司" if zh else "ACME", "contact_name": "陈先生" if zh else "Chen",
        "contact_phone": "13812345678", "occurred_at": "2026-11-20T10:30:00+08:00",
        "category": "transport_late", "description": "延误" if zh else "Late"})
    case.assess(finance=False)
    case.do("propose", "agent", {"compensation": "300", "basis": "延误赔付条款 3.2" if zh else "Clause 3.2"})
    case.do("reply", "agent", {"resolution": "已向客户致歉，并按条款赔付运费。" if zh else "Refunded the freight."})
    number = live_server.system.forms.get("complaint", case.id)["query_no"]
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN" if zh else "en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/track?lang={locale}&query_no={number}")
    page.get_by_label("联系电话后 4 位" if zh else "Contact phone: last 4 digits").fill("5678")
    with page.expect_navigation():
        page.get_by_role("button", name="查询" if zh else "Look up").click()
    return context, page, case


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_customer_submits_the_public_form_and_sees_the_query_number(
        browser: Any, live_server: LiveServer, viewport: str) -> None:
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN")
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    page.screenshot(path=str(SCREENSHOTS / f"public-form-{viewport}.png"))
    fill_complaint(page)
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    assert page.locator("#query-no").count() == 1, page.inner_text("main")[:3000]
    assert page.inner_text("#query-no").startswith("TS20261123")
    page.screenshot(path=str(SCREENSHOTS / f"public-form-submitted-{viewport}.png"))
    assert dialogs == []
    assert live_server.system.forms.count("complaint") == 1
    context.close()


def test_errors_show_next_to_the_fields_in_english(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("<img src=x onerror=alert(1)>")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("12")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("When it happened").fill("2026-11-20T10:30")
    page.get_by_label("Category").select_option("delivery_late")
    page.get_by_label("What happened").fill("Late by two days")
    live_server.clock.advance(timedelta(seconds=30))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("#form-errors")
    assert page.inner_text("#f-contact_phone-error") == "Enter a valid phone number."
    assert page.get_by_label("Contact phone").is_visible()  # the step with the error opens first
    assert page.get_by_label("Key-account name").input_value() == "<img src=x onerror=alert(1)>"
    page.screenshot(path=str(SCREENSHOTS / "public-form-errors-en.png"), full_page=True)
    assert live_server.system.forms.count("complaint") == 0
    context.close()


def test_the_claim_amount_appears_only_for_damage_loss_and_fees(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    amount = page.locator("[data-field=amount_claimed]")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("13812345678")
    page.get_by_role("button", name="Next").click()
    assert amount.is_hidden()
    page.get_by_label("Category").select_option("damage_goods")
    assert amount.is_visible()
    page.get_by_label("Category").select_option("delivery_late")
    assert amount.is_hidden()
    context.close()


def test_the_claim_amount_is_marked_required_as_soon_as_the_category_needs_it(
        browser: Any, live_server: LiveServer) -> None:
    # required_if: a damage or a loss; for a fee it shows, needed in some cases only. The page
    # said "needed in some cases" for a damage too, and then refused the empty amount.
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("13812345678")
    page.get_by_role("button", name="Next").click()
    field = page.locator("[data-field=amount_claimed]")
    amount = page.locator("#f-amount_claimed")
    page.get_by_label("Category").select_option("damage_goods")
    assert field.locator("label .req").is_visible() and amount.get_attribute("aria-required") == "true"
    assert not field.get_by_text("needed in some cases").is_visible()
    page.get_by_label("Category").select_option("fee_overcharge")
    assert field.locator("label .req").is_hidden() and amount.get_attribute("aria-required") != "true"
    assert field.get_by_text("needed in some cases").is_visible()
    context.close()


def test_the_wizard_will_not_move_on_with_a_required_field_empty(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    assert page.inner_text(".wizard-step") == "Step 1 of 2"
    page.get_by_role("button", name="Next").click()
    assert page.inner_text(".wizard-step") == "Step 1 of 2"
    assert page.get_by_label("Key-account name").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("button", name="Submit").is_hidden()
    context.close()


def test_a_customer_looks_up_progress_with_the_query_number(browser: Any, live_server: LiveServer) -> None:
    number = live_server.system.forms.submit("complaint", {
        "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
        "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late", "description": "延误",
    }).query_no
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/track?lang=zh-CN")
    page.get_by_label("查询编号").fill(number or "")
    page.get_by_label("联系电话后 4 位").fill("5678")
    with page.expect_navigation():
        page.get_by_role("button", name="查询").click()
    assert page.inner_text("#lookup-status") == "已受理"
    page.screenshot(path=str(SCREENSHOTS / "progress-lookup-phone.png"))
    context.close()


def test_a_customer_confirms_and_rates_the_resolution_on_the_lookup_page(browser: Any, live_server: LiveServer) -> None:
    context, page, case = answer_page(browser, live_server, "zh-CN")
    assert page.inner_text("#lookup-status") == "待您确认"
    page.get_by_label("确认问题已解决").check()
    page.locator("#customer-step input[name=satisfaction][value='5']").check()
    page.screenshot(path=str(SCREENSHOTS / "progress-lookup-answer-phone.png"), full_page=True)
    with page.expect_navigation():
        page.get_by_role("button", name="提交我的答复").click()
    assert page.inner_text("#lookup-status") == "已解决" and page.locator("#lookup-notice").count() == 1
    assert case.status == "resolved"
    context.close()


def test_next_on_an_empty_required_field_says_so_beside_it(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_role("button", name="Next").click()
    assert page.inner_text("#f-customer_name-required") == "Please fill in this field."
    assert page.evaluate("document.activeElement.id") == "f-customer_name"
    assert page.locator("#f-contact_name-required").count() == 0
    page.get_by_label("Key-account name").fill("ACME")
    assert page.locator("#f-customer_name-required").count() == 0
    context.close()


def test_errors_on_both_steps_open_the_first_step_with_the_cursor_on_the_list_of_mistakes(
        browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("12")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("When it happened").fill("2030-01-01T10:30")  # in the future: refused too
    page.get_by_label("Category").select_option("delivery_late")
    page.get_by_label("What happened").fill("Late by two days")
    live_server.clock.advance(timedelta(seconds=30))
    page.get_by_role("button", name="Submit").click()
    page.wait_for_selector("#form-errors")
    assert page.get_by_label("Contact phone").is_visible()
    assert page.evaluate("document.activeElement.id") == "form-errors"
    page.keyboard.press("Tab")  # the next key leads to the first mistake's link
    assert page.evaluate("document.activeElement.getAttribute('href')") == "#f-contact_phone"
    context.close()


def test_without_javascript_a_refused_form_opens_with_the_cursor_on_its_list_of_mistakes(
        browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport={"width": 320, "height": 667}, locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    page.get_by_label("联系电话").fill("12")
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    assert page.evaluate("document.activeElement.id") == "form-errors"
    assert page.get_by_label("联系电话").input_value() == "12"
    context.close()


def test_a_refused_answer_on_a_phone_shows_its_mistakes_with_the_cursor_on_them(
        browser: Any, live_server: LiveServer) -> None:
    # The customer's step is far below the status and progress: the page must not open at its top.
    context, page, _case = answer_page(browser, live_server, "en")
    page.get_by_label("Confirmed as resolved").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Send my answer").click()
    assert page.evaluate("document.activeElement.id") == "lookup-alert"
    assert page.evaluate("(() => { const top = document.getElementById('lookup-alert').getBoundingClientRect().top;"
                         " return top >= 0 && top < window.innerHeight; })()")
    assert page.get_by_label("Confirmed as resolved").is_checked()
    context.close()


def test_a_photo_chosen_before_a_refusal_is_linked_when_the_corrected_form_is_sent(
        browser: Any, live_server: LiveServer) -> None:
    from tests.web.staff_kit import png_bytes

    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    page.get_by_label("现场照片").set_input_files(files=[
        {"name": "破损.png", "mimeType": "image/png", "buffer": png_bytes()}])
    page.get_by_role("button", name="上一步").click()
    page.get_by_label("联系电话").fill("12345")
    page.get_by_role("button", name="下一步").click()
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    assert page.locator("#f-contact_phone-error").is_visible()
    page.get_by_label("联系电话").fill("13812345678")
    page.get_by_role("button", name="下一步").click()
    kept = page.get_by_role("checkbox", name="破损.png")
    assert kept.is_visible() and kept.is_checked()
    stored = kept.get_attribute("value")
    page.screenshot(path=str(SCREENSHOTS / "public-form-kept-photo-phone.png"), full_page=True)
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    assert page.locator("#query-no").count() == 1, page.inner_text("main")[:3000]
    (record,) = live_server.system.forms.list("complaint")
    assert [p["id"] for p in record["photos"]] == [stored]
    context.close()


def test_only_the_bad_waybill_cell_is_outlined_in_red(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    page.get_by_label("运单号 1").fill("XYZ")
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    table = page.locator("[data-field=waybills]")
    table.scroll_into_view_if_needed()
    colours = table.locator("td input").evaluate_all(
        "inputs => inputs.map(i => [i.name, getComputedStyle(i).borderTopColor])")
    red = [name for name, colour in colours if colour == "rgb(209, 36, 47)"]
    assert red == ["waybills.0.number"], colours
    assert page.evaluate("document.activeElement.id") == "form-errors"
    page.locator("#form-errors a[href='#f-waybills-cell-0-error']").click()  # its link leads to the cell
    assert page.evaluate("document.activeElement.name") == "waybills.0.number"
    table.screenshot(path=str(SCREENSHOTS / "public-form-waybill-error.png"))
    context.close()


def test_a_photo_too_large_for_its_field_is_flagged_when_chosen_and_the_form_is_not_sent(
        browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    photos = page.get_by_label("现场照片")
    photos.set_input_files(files=[{"name": "相机原图.jpg", "mimeType": "image/jpeg", "buffer": b"\xff" * (11 * 1024 * 1024)}])
    note = page.locator("#f-photos-size")
    assert note.is_visible() and note.inner_text() == "相机原图.jpg 超过 10 MB，请换一个较小的文件。"
    live_server.clock.advance(timedelta(seconds=30))
    page.get_by_role("button", name="提交").click()
    assert page.url.endswith("/f/complaint?lang=zh-CN") and page.get_by_label("问题详细描述").input_value()
    assert live_server.system.forms.count("complaint") == 0
    photos.set_input_files(files=[])
    assert note.count() == 0 and photos.get_attribute("aria-invalid") is None
    context.close()


def test_enter_on_a_step_before_the_last_moves_to_the_next_step_instead_of_sending(
        browser: Any, live_server: LiveServer) -> None:
    # A phone keyboard's Go key submits the form: sent from step 1, the customer met a page of
    # "required" errors for a step they had not seen yet.
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    page.get_by_label("大客户名称").fill("华东电子商务有限公司")
    page.get_by_label("联系人").fill("陈先生")
    page.get_by_label("联系电话").fill("13812345678")
    live_server.clock.advance(timedelta(seconds=30))
    page.get_by_label("联系电话").press("Enter")
    page.wait_for_timeout(300)
    assert sent == [] and page.locator("#form-errors").count() == 0
    assert page.inner_text(".wizard-step") == "第 2 步，共 2 步"
    assert page.evaluate("document.activeElement.id") == "f-occurred_at"
    context.close()


def test_enter_on_a_step_with_a_required_field_empty_stays_and_says_so(
        browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Key-account name").press("Enter")
    page.wait_for_timeout(300)
    assert page.inner_text(".wizard-step") == "Step 1 of 2"
    assert page.locator("#f-contact_name-required").is_visible()
    assert page.evaluate("document.activeElement.id") == "f-contact_name"
    context.close()


def test_the_list_of_mistakes_leads_to_a_field_on_the_step_not_shown(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("12")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("When it happened").fill("2026-11-20T10:30")
    page.get_by_label("Category").select_option("delivery_late")
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="Submit").click()
    assert page.inner_text(".wizard-step") == "Step 1 of 2"  # the first mistake's step
    page.get_by_role("link", name="What happened: This field is required.").click()
    assert page.inner_text(".wizard-step") == "Step 2 of 2"
    assert page.evaluate("document.activeElement.id") == "f-description"
    context.close()


def test_a_customer_rates_with_a_screen_reader_by_the_number_of_stars(browser: Any, live_server: LiveServer) -> None:
    context, page, _case = answer_page(browser, live_server, "en")
    stars = page.get_by_role("radiogroup", name="Satisfaction")
    stars.get_by_role("radio", name="4 of 5 stars").check()
    assert page.locator("#customer-step input[name=satisfaction]:checked").get_attribute("value") == "4"
    context.close()


def test_a_double_tap_on_submit_sends_the_form_once_and_says_it_is_sending(
        browser: Any, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    slow(monkeypatch, live_server.system.forms, "submit")  # a phone network: the answer takes a while
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation(url="**/submitted/**"):
        assert tap_twice(page, "form[data-live] button[type=submit]") == "正在提交…"
    assert len(posts) == 1 and page.locator("#query-no").count() == 1
    context.close()


def test_back_to_a_sent_form_finds_its_submit_button_usable_again(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():
        page.get_by_role("button", name="提交").click()
    page.go_back()
    page.get_by_role("button", name="下一步").click()
    submit = page.locator("form[data-live] button[type=submit]")
    assert submit.inner_text() == "提交" and submit.get_attribute("aria-disabled") is None
    context.close()


def test_a_double_tap_on_send_my_answer_answers_once_without_saying_it_was_already_answered(
        browser: Any, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The second post found the step taken by the first, and the customer read "this step has
    # already been answered (perhaps with our staff on the phone)" about their own answer.
    context, page, _case = answer_page(browser, live_server, "en")
    page.get_by_role("radio", name="5 of 5 stars").check()
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    slow(monkeypatch, live_server.system.flows, "complete")
    with page.expect_navigation():
        tap_twice(page, "#customer-step button[type=submit]")
    page.wait_for_timeout(1000)  # a second post would have been answered by now
    assert len(posts) == 1
    assert page.locator("#lookup-notice").count() == 1 and page.locator("#lookup-alert").count() == 0
    context.close()


def test_a_long_description_counts_down_the_characters_left(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    fill_complaint(page)
    count = page.locator("#f-description-count")
    assert count.is_hidden()  # a short text needs no counting
    page.get_by_label("问题详细描述").fill("货" * 4500)
    assert count.is_visible() and count.inner_text() == "还可输入 500 字"
    assert "f-description-count" in (page.get_by_label("问题详细描述").get_attribute("aria-describedby") or "")
    context.close()


def test_a_paste_cut_off_at_the_limit_is_said_beside_the_field(browser: Any, live_server: LiveServer) -> None:
    # The browser drops what goes past `maxlength` without a word: the end of a pasted e-mail
    # thread was lost, and the customer did not know.
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US",
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("13812345678")
    page.get_by_role("button", name="Next").click()
    page.evaluate("navigator.clipboard.writeText('x'.repeat(5200))")
    page.get_by_label("What happened").focus()
    page.keyboard.press("Control+V")
    assert len(page.get_by_label("What happened").input_value()) == 5000
    assert page.inner_text("#f-description-count") == (
        "This box takes at most 5000 characters: anything past that was not entered.")
    context.close()


def test_back_by_keyboard_puts_the_cursor_in_the_step_it_opens(browser: Any, live_server: LiveServer) -> None:
    # Back hides itself on the first step: the cursor fell to the page, and Tab went on to Next.
    context = browser.new_context(viewport=VIEWPORTS["desktop"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("13812345678")
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Back").focus()
    page.keyboard.press("Enter")
    assert page.inner_text(".wizard-step") == "Step 1 of 2"
    assert page.evaluate("document.activeElement.id") == "f-customer_name"
    context.close()


def test_switching_language_keeps_what_was_typed(browser: Any, live_server: LiveServer) -> None:
    # The language links load the form afresh: a clerk who switched halfway typed it all again.
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=zh-CN")
    page.get_by_label("大客户名称").fill("华东电子商务有限公司")
    page.get_by_label("联系电话").fill("13812345678")
    page.get_by_label("所属区域").select_option("east")
    with page.expect_navigation():
        page.get_by_role("link", name="English").click()
    assert page.get_by_label("Key-account name").input_value() == "华东电子商务有限公司"
    assert page.get_by_label("Contact phone").input_value() == "13812345678"
    assert page.get_by_label("Region").input_value() == "east"
    assert page.evaluate("sessionStorage.length") == 0  # kept only for the page that asked
    context.close()


def test_typing_at_the_limit_says_nothing_more_is_taken(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang=en")
    page.get_by_label("Key-account name").fill("ACME")
    page.get_by_label("Contact person").fill("Chen")
    page.get_by_label("Contact phone").fill("13812345678")
    page.get_by_role("button", name="Next").click()
    box = page.get_by_label("What happened")
    box.fill("x" * 4999)
    box.press("End")
    page.keyboard.type("ab")
    assert len(box.input_value()) == 5000
    assert page.inner_text("#f-description-count").startswith("This box takes at most 5000 characters")
    context.close()


def test_the_query_number_is_copied_with_one_tap_on_the_acknowledgement(browser: Any, live_server: LiveServer) -> None:
    # To paste into a chat or a note: selecting it on a phone took a long press and handles.
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN",
                                  permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint/submitted/TS2026112300001?lang=zh-CN")
    page.get_by_role("button", name="复制编号").click()
    assert page.evaluate("navigator.clipboard.readText()") == "TS2026112300001"
    assert page.inner_text("#copy-status") == "已复制"
    context.close()


def test_without_javascript_the_acknowledgement_offers_no_copy_button(browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=VIEWPORTS["phone"], locale="zh-CN", java_script_enabled=False)
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint/submitted/TS2026112300001?lang=zh-CN")
    assert page.get_by_role("button", name="复制编号").count() == 0
    assert page.inner_text("#query-no") == "TS2026112300001"
    context.close()


SMALL_PHONE = {"width": 320, "height": 568}

TOO_SMALL = """() => {
  // Every control or link a finger may tap, and its tap area: a radio or checkbox is tapped
  // through its label. Links inside a sentence are left out (WCAG 2.5.5 exempts them).
  const seen = [];
  document.querySelectorAll("a, button, input:not([type=hidden]), select, textarea").forEach(el => {
    if (el.closest(".hp, .sr") || el.offsetParent === null) { return; }
    const label = (el.type === "radio" || el.type === "checkbox") && el.closest("label");
    const box = (label || el).getBoundingClientRect();
    if (box.width < 44 || box.height < 44) {
      seen.push(`${el.tagName} ${el.id || el.name || el.textContent.trim()} ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  });
  return seen;
}"""


def sideways(page: Any) -> int:
    """How many pixels the page scrolls sideways (0 when it fits the screen)."""
    return int(page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth"))


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("javascript", [True, False])
def test_on_a_320px_phone_the_form_fits_the_screen_and_every_control_is_a_fingers_width(
        browser: Any, live_server: LiveServer, locale: str, javascript: bool) -> None:
    # Without JavaScript every step shows at once: all the fields are measured.
    context = browser.new_context(viewport=SMALL_PHONE, locale=locale, java_script_enabled=javascript)
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint?lang={locale}")
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    page.get_by_label("联系电话" if locale == "zh-CN" else "Contact phone").fill("12")
    live_server.clock.advance(timedelta(seconds=30))
    with page.expect_navigation():  # sent as it stands (the wizard's Next would stop at step 1)
        page.evaluate("document.querySelector('form[data-live]').submit()")
    assert page.locator("#form-errors").count() == 1
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    context.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_on_a_320px_phone_the_lookup_and_the_customers_step_fit_and_are_a_fingers_width(
        browser: Any, live_server: LiveServer, locale: str) -> None:
    context, page, _case = answer_page(browser, live_server, locale)
    page.set_viewport_size(SMALL_PHONE)
    assert page.locator("#customer-step").count() == 1
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    page.goto(f"{live_server.url}/track?lang={locale}")
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    context.close()


def test_on_a_320px_phone_the_acknowledgement_fits_and_is_a_fingers_width(
        browser: Any, live_server: LiveServer) -> None:
    context = browser.new_context(viewport=SMALL_PHONE, locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint/submitted/TS2026112300001?lang=en")
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    context.close()


def test_without_a_clipboard_one_press_selects_the_whole_query_number(browser: Any, live_server: LiveServer) -> None:
    # Over http (or in a WeChat view) there is no clipboard and no copy button: the number must
    # not need selecting character by character.
    context = browser.new_context(viewport=SMALL_PHONE, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{live_server.url}/f/complaint/submitted/TS2026112300001?lang=zh-CN")
    page.locator("#query-no").click()
    assert page.evaluate("window.getSelection().toString()") == "TS2026112300001"
    context.close()


@pytest.mark.parametrize("address", ["/f/nope", "/f/complaint/submitted/TS%25%25"])
def test_on_a_320px_phone_a_dead_links_page_fits_and_its_way_back_is_a_fingers_width(
        browser: Any, live_server: LiveServer, address: str) -> None:
    context = browser.new_context(viewport=SMALL_PHONE, locale="zh-CN")
    page = context.new_page()
    assert page.goto(f"{live_server.url}{address}?lang=zh-CN").status == 404
    assert sideways(page) == 0
    assert page.evaluate(TOO_SMALL) == []
    context.close()


def test_a_double_tap_on_look_up_sends_one_lookup_and_says_it_is_looking(browser: Any, live_server: LiveServer) -> None:
    # Each lookup counts against the number's few guesses an hour: a double tap spent two.
    context = browser.new_context(viewport=SMALL_PHONE, locale="en-US")
    page = context.new_page()
    page.goto(f"{live_server.url}/track?lang=en&query_no=TS2026112300001")
    page.get_by_label("Contact phone: last 4 digits").fill("0000")
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    with page.expect_navigation():
        assert tap_twice(page, "form.lookup button[type=submit]") == "Looking up…"
    assert len(posts) == 1
    assert page.locator("#lookup-failed").count() == 1
    assert page.evaluate("document.activeElement.id") == "f-verify"  # the digits, to type again
    context.close()
