"""Sub-tables: rows checked cell by cell, errors keyed `field[row].column`, row limits."""

from __future__ import annotations

import json

import pytest

from engine.errors import ValidationFailed
from engine.storage.db import read_transaction
from forms.compile import CompiledForm
from forms.messages import FieldInvalid
from tests.forms import boot_gallery
from web.system import System

ROWS = """\
    form: shipment
    fields:
      kind: {type: select, options: [single, batch]}
      waybills:
        type: subtable
        min_rows: 1
        max_rows: 3
        visible_if: kind == "batch"
        columns:
          number: {type: id_number, kind: waybill, required: true}
          customer: {type: reference, form: customer}
          parcels: {type: integer, default: 1}
    """


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("subtable"), {"forms/shipment.yaml": ROWS})


@pytest.fixture(scope="module")
def form(system: System) -> CompiledForm:
    return system.forms.form("shipment")


def errors(form: CompiledForm, data: dict[str, object], locale: str = "en") -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        form.validate(data, locale=locale)
    return caught.value.errors


def test_a_bad_cell_is_reported_under_the_field_row_and_column(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"number": "SF1234567890"}, {"number": "x"}]})
    assert found["waybills[1].number"] == ["Enter a waybill number of 8 to 30 letters and digits."]


def test_rows_with_problems_also_flag_the_field_itself(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"number": "x"}]})
    assert found["waybills"] == ["Some rows have problems; see each row."]


def test_cell_messages_follow_the_users_language(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"parcels": 2}]}, locale="zh-CN")
    assert found["waybills[0].number"] == ["此项为必填项。"]


def test_a_column_the_subtable_does_not_have_is_reported_in_its_row(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"number": "SF1234567890", "colour": "red"}]})
    assert "waybills[0].colour" in found


def test_a_column_default_fills_an_empty_cell(form: CompiledForm) -> None:
    clean = form.validate({"kind": "batch", "waybills": [{"number": "SF1234567890"}]})
    assert clean["waybills"] == [{"number": "SF1234567890", "customer": None, "parcels": 1}]


def test_blank_rows_left_on_the_page_are_dropped(form: CompiledForm) -> None:
    clean = form.validate({"kind": "batch", "waybills": [{"number": ""}, {"number": "SF1234567890"}, {}]})
    assert [row["number"] for row in clean["waybills"]] == ["SF1234567890"]


def test_rows_may_arrive_as_json_text_from_a_page(form: CompiledForm) -> None:
    clean = form.validate({"kind": "batch", "waybills": json.dumps([{"number": "SF1234567890"}])})
    assert len(clean["waybills"]) == 1


def test_fewer_rows_than_the_minimum_are_refused(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"number": ""}]})
    assert found["waybills"] == ["Add at least 1 rows."]


def test_more_rows_than_the_maximum_are_refused_before_any_row_is_checked(form: CompiledForm) -> None:
    found = errors(form, {"kind": "batch", "waybills": [{"number": "x"}] * 4})
    assert found == {"waybills": ["Add at most 3 rows."]}


def test_rows_that_are_not_mappings_are_refused(form: CompiledForm) -> None:
    assert errors(form, {"kind": "batch", "waybills": ["SF1234567890"]}) == {
        "waybills": ["Enter the rows as a list of column values."]}


def test_a_hidden_subtable_drops_its_cell_errors_too(form: CompiledForm) -> None:
    assert form.validate({"kind": "single", "waybills": [{"number": "x"}]})["waybills"] is None


def test_a_reference_cell_to_a_missing_record_is_reported_in_its_row(system: System, form: CompiledForm) -> None:
    ftype, spec = form.types["waybills"], form.field("waybills")
    rows = ftype.parse([{"number": "SF1234567890", "customer": 404}], spec)
    with read_transaction(system.db) as conn, pytest.raises(FieldInvalid) as caught:
        ftype.check_stored(conn, rows, spec, system.forms.tables)
    assert list(caught.value.messages("waybills")) == ["waybills", "waybills[0].customer"]


def test_rows_display_as_labelled_cells(form: CompiledForm) -> None:
    rows = [{"number": "SF1234567890", "customer": None, "parcels": 2}]
    assert form.display("waybills", rows, "en") == "number: SF1234567890, parcels: 2"


def test_stored_rows_read_back_equal(system: System) -> None:
    data = {"kind": "batch", "waybills": [{"number": "SF1234567890", "parcels": "3"}, {"number": "YT9876543210"}]}
    record_id = system.forms.submit("shipment", data).record_id
    assert system.forms.get("shipment", record_id)["waybills"] == [
        {"number": "SF1234567890", "customer": None, "parcels": 3},
        {"number": "YT9876543210", "customer": None, "parcels": 1}]


def test_rows_may_be_typed_one_per_line_into_the_first_column(form: CompiledForm) -> None:
    clean = form.validate({"kind": "batch", "waybills": "SF1234567890\n\nYT9876543210\n"})
    assert [row["number"] for row in clean["waybills"]] == ["SF1234567890", "YT9876543210"]


def test_rows_in_broken_json_text_are_refused(form: CompiledForm) -> None:
    assert errors(form, {"kind": "batch", "waybills": "[{oops"}) == {
        "waybills": ["Enter the rows as a list of column values."]}
