"""A step's `hidden_fields` are kept from the holders of its role in the API and file downloads
too, as on every page, list, export and print (web.staff.hidden_fields): the API answered them
whole to anyone who could read the record."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from tests.web.staff_kit import attach_photo, boot_helpdesk, client_for, submit
from web.system import System

SECRET = "margin 12%"


@pytest.fixture
def system(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> System:
    """The helpdesk bundle whose `solve` step hides the internal note and the photo from its
    people (agents such as ann); managers (max) see every record and so every field."""
    booted = boot_helpdesk(tmp_path)
    flow = booted.flows.flows["ticket_flow"]
    nodes = dict(flow.nodes)
    nodes["solve"] = replace(nodes["solve"], options={**nodes["solve"].options,
                                                      "hidden_fields": ["internal_note", "photo"]})
    monkeypatch.setitem(booted.flows.flows, "ticket_flow", replace(flow, nodes=nodes))
    return booted


@pytest.fixture
def photo(system: System) -> str:
    return attach_photo(system)


@pytest.fixture
def record(system: System, photo: str) -> int:
    return submit(system, internal_note=SECRET, photo=[photo])


def test_a_record_read_through_the_api_leaves_out_the_hidden_fields(system: System, record: int) -> None:
    values = client_for(system, "ann").get(f"/api/v1/forms/ticket/records/{record}").json()["values"]
    assert "internal_note" not in values and "photo" not in values and values["subject"] == "Printer jams"
    managers = client_for(system, "max").get(f"/api/v1/forms/ticket/records/{record}").json()["values"]
    assert managers["internal_note"] == SECRET


def test_a_record_list_through_the_api_leaves_out_the_hidden_fields(system: System, record: int) -> None:
    items = client_for(system, "ann").get("/api/v1/forms/ticket/records").json()["items"]
    assert [item["id"] for item in items] == [record] and "internal_note" not in items[0]["values"]


def test_a_hidden_field_can_be_neither_searched_nor_filtered_by(system: System, record: int) -> None:
    # Either would tell the value by what is found.
    ann = client_for(system, "ann")
    assert ann.get("/api/v1/forms/ticket/records", params={"q": "margin"}).json()["total"] == 0
    assert ann.get("/api/v1/forms/ticket/records", params={"internal_note": SECRET}).status_code == 400
    assert client_for(system, "max").get("/api/v1/forms/ticket/records", params={"q": "margin"}).json()["total"] == 1


def test_a_records_history_through_the_api_leaves_out_the_hidden_values(system: System, record: int,
                                                                        photo: str) -> None:
    history = client_for(system, "ann").get(f"/api/v1/forms/ticket/records/{record}/history")
    assert history.status_code == 200
    assert SECRET not in history.text and photo not in history.text
    created = history.json()["entries"][0]["data"]["fields"]
    assert created["subject"] == "Printer jams"
    assert SECRET in json.dumps(client_for(system, "max").get(f"/api/v1/forms/ticket/records/{record}/history").json(),
                                ensure_ascii=False)


def test_a_file_of_a_hidden_field_is_not_served_to_those_it_is_hidden_from(system: System, record: int,
                                                                          photo: str) -> None:
    assert client_for(system, "ann").get(f"/files/{photo}").status_code == 404
    assert client_for(system, "max").get(f"/files/{photo}").status_code == 200
