"""Public progress lookup: query number plus phone digits, public fields only, no enumeration."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.clock import ManualClock
from web.app import create_app
from web.system import System, boot

ROOT = Path(__file__).resolve().parents[2]
POSTAL = ROOT / "definitions" / "postal_complaints"
COMPLAINT = {
    "customer_name": "华东电子商务有限公司", "contact_name": "陈先生", "contact_phone": "13812345678",
    "occurred_at": "2026-11-20T10:30:00+08:00", "category": "transport_late",
    "description": "内部备注：客户情绪激动", "region": "east",
}


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def system(tmp_path: Path) -> System:
    clock = ManualClock(datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc))
    return boot(POSTAL, db_url=f"sqlite:///{tmp_path / 'docket.db'}", clock=clock)


@pytest.fixture
def client(system: System) -> TestClient:
    return TestClient(create_app(system, secret="t", monotonic=Seconds()), raise_server_exceptions=False)


@pytest.fixture
def query_no(system: System) -> str:
    return system.forms.submit("complaint", COMPLAINT).query_no or ""


def test_the_right_digits_show_the_status_in_the_customers_words(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=zh-CN", data={"query_no": query_no, "verify": "5678"})
    assert page.status_code == 200
    assert 'id="lookup-status">已受理<' in page.text and query_no in page.text


def test_only_public_fields_are_shown(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678"})
    assert "Late in transit" in page.text  # the category is public
    assert "客户情绪激动" not in page.text and "13812345678" not in page.text


def test_wrong_digits_and_unknown_numbers_get_the_same_answer(client: TestClient, query_no: str) -> None:
    wrong = client.post("/track?lang=en", data={"query_no": query_no, "verify": "0000"})
    unknown = client.post("/track?lang=en", data={"query_no": "TS2026112399999", "verify": "5678"})
    assert wrong.status_code == unknown.status_code == 200
    strip = lambda html, number: html.replace(number, "")  # noqa: E731 - the typed number is echoed
    assert strip(wrong.text, query_no) == strip(unknown.text, "TS2026112399999")
    assert 'id="lookup-failed"' in wrong.text and 'id="lookup-status"' not in wrong.text


def test_lookups_are_rate_limited_per_client(client: TestClient, query_no: str) -> None:
    statuses = [client.post("/track", data={"query_no": f"TS20261123{n:05d}", "verify": "1234"}).status_code
                for n in range(21)]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429


def test_the_acknowledgement_links_to_the_lookup_with_the_query_number_filled_in(client: TestClient) -> None:
    page = client.get("/f/complaint/submitted/TS2026112300001?lang=en")
    assert 'href="/track?lang=en&amp;query_no=TS2026112300001"' in page.text
    lookup = client.get("/track?lang=en&query_no=TS2026112300001")
    assert 'name="query_no" value="TS2026112300001"' in lookup.text


def test_a_failed_lookup_keeps_the_number_but_not_the_digits(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "9876"}).text
    assert f'name="query_no" value="{query_no}"' in page
    verify = re.search(r'<input type="text" id="f-verify"[^>]*>', page)
    assert verify and "value=" not in verify.group(0) and "9876" not in page


def test_a_failed_lookups_language_links_keep_the_number_but_not_the_digits(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "9876"}).text
    assert f'href="/track?lang=zh-CN&amp;query_no={query_no}"' in page and "9876" not in page


def test_a_failed_lookup_is_said_above_the_form_and_ties_both_inputs_to_it(client: TestClient, query_no: str) -> None:
    # Which of the two was wrong is not told (no enumeration), so both inputs carry the message.
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "9876"}).text
    assert page.index('id="lookup-failed"') < page.index('class="lookup"')
    for input_id in ("f-query-no", "f-verify"):
        tag = re.search(rf'<input [^>]*id="{input_id}"[^>]*>', page)
        assert tag and 'aria-invalid="true"' in tag[0] and 'aria-describedby="lookup-failed"' in tag[0]


def test_a_failed_lookup_says_so_in_the_page_title(client: TestClient, query_no: str) -> None:
    failed = client.post("/track?lang=en", data={"query_no": query_no, "verify": "0000"})
    assert "<title>Error: Look up progress · " in failed.text
    found = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678"})
    assert "<title>Look up progress · " in found.text


def test_a_failed_lookup_puts_the_cursor_in_the_digits_to_type_again(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "9876"}).text
    verify = re.search(r'<input [^>]*id="f-verify"[^>]*>', page)
    assert verify and " autofocus" in verify[0]
    assert " autofocus" not in client.get("/track?lang=en").text


def test_the_answer_comes_first_and_the_form_after_it_looks_up_another_number(
        client: TestClient, query_no: str) -> None:
    # On a phone the status was below the form just used, under the keyboard's fold.
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678"}).text
    assert page.index('id="lookup-status"') < page.index('class="lookup"')
    assert '<h2 id="lookup-another">Look up another number</h2>' in page
    assert page.index('id="lookup-another"') < page.index('class="lookup"')
    form = page.split('class="lookup"', 1)[1].split("</form>", 1)[0]
    assert 'name="query_no" value=""' in form


def test_the_status_reads_with_a_chinese_colon_in_chinese(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=zh-CN", data={"query_no": query_no, "verify": "5678"}).text
    assert '状态：<strong id="lookup-status">' in page


def test_the_acknowledgement_says_the_lookup_asks_for_the_last_digits_of_the_phone(client: TestClient) -> None:
    # Without it the customer learnt only on the lookup page that the number alone is not enough.
    page = client.get("/f/complaint/submitted/TS2026112300001?lang=en").text
    assert "you will need it and the last 4 digits of the “Contact phone” you gave" in page
    assert "查询时需输入此编号和联系电话后 4 位" in client.get("/f/complaint/submitted/TS2026112300001?lang=zh-CN").text


def test_the_acknowledgement_says_what_happens_next_and_leads_to_the_lookup(client: TestClient) -> None:
    page = client.get("/f/complaint/submitted/TS2026112300001?lang=en").text
    assert '<h2 id="what-next">What happens next</h2>' in page
    assert "contact you if we need anything more" in page and "confirm the outcome" in page
    after = page.split('id="what-next"', 1)[1]
    assert re.search(r'<a href="/track\?lang=en&amp;query_no=TS2026112300001" id="track-link" class="button[^"]*">'
                     r'Look up progress</a>', after)
    zh = client.get("/f/complaint/submitted/TS2026112300001?lang=zh-CN").text
    assert '<h2 id="what-next">接下来</h2>' in zh and "确认处理结果时，也请在该页面答复" in zh


def test_the_acknowledgement_reads_the_query_number_with_a_chinese_colon(client: TestClient) -> None:
    page = client.get("/f/complaint/submitted/TS2026112300001?lang=zh-CN").text
    assert '查询编号：<strong id="query-no">TS2026112300001</strong>' in page


def test_a_number_and_digits_typed_in_full_width_find_the_complaint(client: TestClient, query_no: str) -> None:
    # A Chinese input method in full-width mode types ＴＳ２０２６… and ５６７８.
    wide = query_no.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})
    page = client.post("/track?lang=zh-CN", data={"query_no": wide, "verify": "５６７８"})
    assert 'id="lookup-status">已受理<' in page.text


def test_a_number_copied_with_spaces_finds_the_complaint(client: TestClient, query_no: str) -> None:
    spaced = f" {query_no[:2]} {query_no[2:10]} {query_no[10:]}\u3000"
    page = client.post("/track?lang=zh-CN", data={"query_no": spaced, "verify": "5678"})
    assert 'id="lookup-status">已受理<' in page.text


def test_the_whole_phone_number_may_be_typed_for_the_digits(client: TestClient, query_no: str) -> None:
    # The box took only 4 characters: typing the whole number kept its first four, and failed.
    page = client.get("/track?lang=en").text
    verify = re.search(r'<input [^>]*id="f-verify"[^>]*>', page)
    assert verify and "maxlength" not in verify[0]
    found = client.post("/track?lang=zh-CN", data={"query_no": query_no, "verify": "138 1234 5678"})
    assert 'id="lookup-status">已受理<' in found.text


def test_the_lookup_says_where_the_query_number_is_found(client: TestClient) -> None:
    # A customer sent here from the form's link, months later, did not know what "query number" meant.
    page = client.get("/track?lang=en").text
    assert ('<p class="lead" id="lookup-help">The query number is on the page shown after sending, and in the '
            'acknowledgement we sent you; the digits are the last ones of the “Contact phone” given with it.</p>') in page
    assert "查询编号见提交后的确认页面，以及我们发给您的受理通知" in client.get("/track?lang=zh-CN").text


def test_the_lookup_help_is_left_out_once_the_answer_is_shown(client: TestClient, query_no: str) -> None:
    page = client.post("/track?lang=en", data={"query_no": query_no, "verify": "5678"}).text
    assert 'id="lookup-help"' not in page


def test_a_complaint_without_a_phone_is_not_opened_by_any_digits(client: TestClient, system: System,
                                                                  query_no: str) -> None:
    # A record whose phone is empty (imported, or kept from before the field was required) was
    # compared with a placeholder of 64 zeros, so typing 64 zeros opened it.
    from sqlalchemy import update

    from engine.storage.db import transaction

    table = system.forms.tables["complaint"]
    with transaction(system.db) as conn:
        conn.execute(update(table).where(table.c.query_no == query_no).values(contact_phone=None))
    for typed in ("0" * 64, "0" * 4, "0" * 100):
        page = client.post("/track?lang=en", data={"query_no": query_no, "verify": typed})
        assert 'id="lookup-failed"' in page.text and 'id="lookup-status"' not in page.text


def _from(client: TestClient, address: str) -> TestClient:
    """Another client of the same application, from its own address."""
    return TestClient(client.app, raise_server_exceptions=False, client=(address, 50000))


def _guess(client: TestClient, address: str, query_no: str, verify: str) -> int:
    return _from(client, address).post("/track?lang=en", data={"query_no": query_no, "verify": verify}).status_code


def test_a_number_guessed_from_many_addresses_is_refused_after_ten_wrong_digits(client: TestClient,
                                                                                 query_no: str) -> None:
    # Each address stays far below its own budget; together they would try all 10,000 endings.
    assert [_guess(client, f"203.0.113.{n}", query_no, f"{n:04d}") for n in range(10)] == [200] * 10
    refused = _from(client, "198.51.100.7").post("/track?lang=en", data={"query_no": query_no, "verify": "5678"})
    assert refused.status_code == 429 and 'id="lookup-status"' not in refused.text
    assert int(refused.headers["retry-after"]) > 0
    api = _from(client, "198.51.100.8").post("/api/v1/lookup", json={"query_no": query_no, "verify": "5678"})
    assert api.status_code == 429 and "values" not in api.text


def test_an_unknown_number_is_refused_after_as_many_guesses_as_a_real_one(client: TestClient,
                                                                          query_no: str) -> None:
    unknown = "TS2026112399999"
    for number in (query_no, unknown):
        assert [_guess(client, f"203.0.113.{n}", number, "0000") for n in range(11)] == [200] * 10 + [429]


def test_the_numbers_guesses_are_counted_over_a_day_too(client: TestClient, query_no: str) -> None:
    seconds = client.app.state.web.limiter.clock
    for hour in range(3):
        assert [_guess(client, f"203.0.113.{n}", query_no, "0000") for n in range(10)] == [200] * 10
        seconds.now += 3601
    assert _guess(client, "198.51.100.7", query_no, "5678") == 429
    seconds.now += 24 * 3600
    assert _guess(client, "198.51.100.7", query_no, "5678") == 200


def test_right_digits_do_not_count_against_the_number(client: TestClient, query_no: str) -> None:
    assert [_guess(client, "203.0.113.1", query_no, "5678") for _ in range(15)] == [200] * 15
    assert [_guess(client, "203.0.113.2", query_no, "0000") for _ in range(3)] == [200] * 3


def test_the_lookup_names_the_field_its_digits_come_from(tmp_path: Path) -> None:
    # The starter bundle verifies with a field labelled "Phone": the page said "contact phone",
    # a field that form does not have.
    starter = boot(POSTAL.parent / "starter", db_url=f"sqlite:///{tmp_path / 'starter.db'}")
    client = TestClient(create_app(starter, secret="t", monotonic=Seconds()), raise_server_exceptions=False)
    page = client.get("/track?lang=en").text
    assert '<label for="f-verify">Phone: last 4 digits</label>' in page
    assert "the last ones of the “Phone” given with it" in page


def test_wrong_digits_and_unknown_numbers_take_the_same_time(client: TestClient, query_no: str) -> None:
    """RELIABILITY 45: an unknown number does the same work as a known one with wrong digits (the
    same query, the same comparison), so timing does not tell which numbers exist. The two kinds
    alternate so the machine's load falls on both alike; medians keep out single stalls."""
    from statistics import median
    from time import perf_counter

    def timed(number: str, digits: str) -> float:
        started = perf_counter()
        response = client.post("/track?lang=en", data={"query_no": number, "verify": digits})
        elapsed = perf_counter() - started
        assert response.status_code == 200 and 'id="lookup-failed"' in response.text
        return elapsed

    wrong, unknown = [], []
    for n in range(8):  # within the number's 10 guesses and the client's 20 lookups
        wrong.append(timed(query_no, f"{n:04d}"))
        unknown.append(timed(f"{query_no[:-6]}ZZZZ{n:02d}", "5678"))  # a well-formed number nobody has
    ratio = median(unknown) / median(wrong)
    assert 0.5 < ratio < 2, (median(unknown), median(wrong))
