"""A field required only in some cases (`required_if`) is marked required where the case holds:
a page saying "needed in some cases" and then refusing the empty field reads as a trick."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.flows.test_postal_flow import DELAY, accept
from tests.web.auth_kit import app_client, new_clock, postal_with_agent, sign_in
from web.system import System


@pytest.fixture
def system(tmp_path: Path) -> System:
    return postal_with_agent(tmp_path, new_clock())


def agent(system: System) -> TestClient:
    client = app_client(system)
    sign_in(client, "agent")
    return client


def label_of(page: str, name: str) -> str:
    found = re.search(rf'<label for="f-{name}">(.*?)</label>', page, re.S)
    assert found, f"no label for {name}"
    return found.group(1)


def test_the_reply_step_marks_the_resolution_required(system: System) -> None:
    # resolution: required_if status == "awaiting_reply": the reply step cannot be sent without it.
    case = accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "0"})
    page = agent(system).get(f"/records/complaint/{case.id}?lang=en").text
    label = label_of(page, "resolution")
    assert 'class="req"' in label and "needed in some cases" not in label
    assert re.search(r'<textarea id="f-resolution"[^>]* aria-required="true"', page)


def test_a_field_whose_case_does_not_hold_still_reads_needed_in_some_cases(system: System) -> None:
    # At acceptance the information to ask the customer for is needed only when information is
    # needed (required_if: info_needed), which it is not yet.
    from tests.flows.test_postal_flow import Case

    case = Case(system, DELAY)
    system.flows.claim(case.task("accept")["id"], "agent")
    page = agent(system).get(f"/records/complaint/{case.id}?lang=en").text
    label = label_of(page, "info_request")
    assert re.search(r"<small[^>]*>\(needed in some cases\)</small>", label)
    assert not re.search(r'<span class="req"(?![^>]*hidden)', label)  # no mark shown, at least


def test_a_condition_on_a_field_of_the_page_goes_to_the_page_to_follow_as_it_is_filled(system: System) -> None:
    # Ticking "more information needed" at acceptance makes the information to ask for required.
    from tests.flows.test_postal_flow import Case

    case = Case(system, DELAY)
    system.flows.claim(case.task("accept")["id"], "agent")
    page = agent(system).get(f"/records/complaint/{case.id}?lang=en").text
    box = re.search(r'<textarea id="f-info_request"[^>]*>', page)
    assert box and 'data-required-if="[&#34;field&#34;, &#34;info_needed&#34;]"' in box[0]
    assert re.search(r'<span class="req" data-required-mark hidden>', label_of(page, "info_request"))


def test_a_condition_on_the_records_status_is_decided_by_the_server_alone(system: System) -> None:
    # The reply step's resolution (required_if: status == ...) has no status field on the page:
    # a page script would read it as unset and take the required mark away.
    case = accept(system, DELAY).assess(finance=False).do("propose", "agent", {"compensation": "0"})
    page = agent(system).get(f"/records/complaint/{case.id}?lang=en").text
    box = re.search(r'<textarea id="f-resolution"[^>]*>', page)
    assert box and "data-required-if" not in box[0]
