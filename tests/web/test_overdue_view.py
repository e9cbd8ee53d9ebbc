"""What is late across a team: the record list filters by SLA lateness, and the inbox points at
the overdue records its user can see (a manager's team's, not only their own tasks)."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.flows.test_postal_flow import DELAY, Case, accept, system  # noqa: F401 (fixture)
from tests.web.staff_kit import client_for
from web.system import System


def listed(system: System, query: str, username: str = "admin") -> list[str]:
    page = client_for(system, username).get(f"/records/complaint?{query}")
    assert page.status_code == 200
    return re.findall(r'<td class="c-no"><a href="/records/complaint/\d+">([^<]+)</a>', page.text)


def late_and_due_soon(system: System) -> tuple[str, str]:
    """(query number past its response time, query number near its resolution time), on
    Tuesday 22:00: the first was never accepted (1 working day to respond, due Tuesday 10:00);
    the second was (2 working days to resolve, warned at 80%: Tuesday afternoon)."""
    late = Case(system, DELAY)
    soon = accept(system, DELAY)
    system.runtime.clock.advance(timedelta(hours=36))  # Monday 10:00 -> Tuesday 22:00, Shanghai
    number = lambda case: system.forms.get("complaint", case.id)["query_no"]  # noqa: E731
    return number(late), number(soon)


def test_the_record_list_shows_only_records_past_due_when_asked(system: System) -> None:
    late, _ = late_and_due_soon(system)
    assert listed(system, "sla=overdue") == [late]


def test_the_record_list_shows_records_past_their_warning_too_when_asked(system: System) -> None:
    late, soon = late_and_due_soon(system)
    assert sorted(listed(system, "sla=at_risk")) == sorted([late, soon])


def test_the_record_list_may_put_the_record_due_soonest_first(system: System) -> None:
    late, soon = late_and_due_soon(system)
    assert listed(system, "") == [soon, late]
    assert listed(system, "sort=due") == [late, soon]


def test_an_unknown_lateness_filters_nothing(system: System) -> None:
    late, soon = late_and_due_soon(system)
    assert sorted(listed(system, "sla=whenever")) == sorted([late, soon])


def test_the_lateness_filter_is_kept_in_the_export_and_the_shared_view(system: System) -> None:
    late_and_due_soon(system)
    page = client_for(system, "admin").get("/records/complaint?sla=overdue").text
    assert 'href="/records/complaint/export.csv?sla=overdue"' in page
    assert '<option value="overdue" selected>' in page


def test_the_inbox_points_a_manager_at_the_overdue_records_they_can_see(system: System) -> None:
    late_and_due_soon(system)
    page = client_for(system, "manager").get("/inbox?lang=en").text
    found = re.search(r'<p class="overdue-in-view" id="overdue-in-view">(.*?)</p>', page, re.S)
    assert found and 'href="/records/complaint?sla=overdue"' in found[1]
    assert re.search(r'<span class="count red">1</span>', found[1])


def test_the_inbox_says_nothing_when_nothing_is_overdue(system: System) -> None:
    Case(system, DELAY)
    assert 'id="overdue-in-view"' not in client_for(system, "manager").get("/inbox").text


def test_the_record_list_shows_each_records_worst_sla_state(system: System) -> None:
    late_and_due_soon(system)
    page = client_for(system, "admin").get("/records/complaint?lang=en").text
    assert re.findall(r'<span class="sla sla-(\w+)"[^>]*>([^<]+)</span>', page) == [
        ("yellow", "Due soon"), ("red", "Overdue")]  # newest first


def test_the_api_lists_the_overdue_records_of_a_form_with_sla_clocks(system: System) -> None:
    from tests.web.api_kit import Api

    late, _ = late_and_due_soon(system)
    api = Api(client_for(system), system, "admin")
    assert [r["query_no"] for r in api.get("/api/v1/forms/complaint/records?sla=overdue").json()["items"]] == [late]
    refused = api.get("/api/v1/forms/complaint/records?sla=late")
    assert refused.status_code == 400 and "at_risk, overdue" in refused.json()["error"]
