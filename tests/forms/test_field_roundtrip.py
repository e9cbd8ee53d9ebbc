"""Every stored field type survives the whole trip: parse -> to_json -> submit through the form
engine into the form's SQLite record table -> read back -> the same value."""

from __future__ import annotations

import re

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import inspect

from engine.errors import ValidationFailed
from engine.storage.db import read_transaction, transaction
from forms.compile import CompiledForm
from forms.messages import FieldInvalid
from tests.forms import NOW, boot_gallery
from tests.forms.test_field_types import VALID
from web.system import System


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("roundtrip"))


@pytest.fixture(scope="module")
def form(system: System) -> CompiledForm:
    return system.forms.form("gallery")


@pytest.fixture(scope="module")
def customer_id(system: System) -> int:
    return system.forms.submit("customer", {"name": "华东电子商务有限公司"}).record_id


def stored(system: System, data: dict[str, Any]) -> dict[str, Any]:
    """Submit `data` as a new gallery record and read the record back."""
    result = system.forms.submit("gallery", data)
    return system.forms.get("gallery", result.record_id)


ROUNDTRIP = [(field, raw) for field, raw, _ in VALID if field != "reference"]


@pytest.mark.parametrize("field, raw", ROUNDTRIP, ids=[r[0] for r in ROUNDTRIP])
def test_a_value_reads_back_equal_after_it_is_stored(system: System, form: CompiledForm, field: str, raw: Any) -> None:
    ftype, spec = form.types[field], form.field(field)
    parsed = ftype.parse(raw, spec)
    back = stored(system, {field: ftype.to_json(parsed, spec)})[field]
    assert back == parsed
    assert ftype.to_json(back, spec) == ftype.to_json(parsed, spec)


def test_a_reference_reads_back_as_the_record_id(system: System, form: CompiledForm, customer_id: int) -> None:
    ftype, spec = form.types["reference"], form.field("reference")
    parsed = ftype.parse(str(customer_id), spec)
    assert stored(system, {"reference": ftype.to_json(parsed, spec)})["reference"] == customer_id


def test_a_reference_to_an_existing_record_passes_the_database_check(system: System, form: CompiledForm,
                                                                     customer_id: int) -> None:
    with read_transaction(system.db) as conn:
        form.types["reference"].check_stored(conn, customer_id, form.field("reference"), system.forms.tables)


def test_a_reference_to_a_missing_record_fails_the_database_check(system: System, form: CompiledForm) -> None:
    with read_transaction(system.db) as conn, pytest.raises(FieldInvalid) as caught:
        form.types["reference"].check_stored(conn, 999, form.field("reference"), system.forms.tables)
    assert caught.value.key == "no_record"


def test_a_computed_value_is_stored_from_its_expression(system: System) -> None:
    assert stored(system, {"money": "1234.5"})["computed"] == Decimal("2469.00")


def test_a_computed_value_cannot_be_submitted(system: System) -> None:
    with pytest.raises(ValidationFailed) as caught:
        system.forms.submit("gallery", {"computed": "5"})
    assert list(caught.value.errors) == ["computed"]


def test_an_auto_number_follows_its_pattern_and_counts_up(system: System, form: CompiledForm) -> None:
    ftype, spec = form.types["auto_number"], form.field("auto_number")
    with transaction(system.db) as conn:
        numbers = [ftype.on_insert(conn, spec, "gallery", NOW, "Asia/Shanghai") for _ in range(2)]
    assert all(re.fullmatch(r"CP\d{6}", n) for n in numbers)
    assert int(numbers[1][2:]) == int(numbers[0][2:]) + 1


def test_a_submitted_record_gets_its_auto_number(system: System) -> None:
    record = stored(system, {"text": "numbered"})
    assert re.fullmatch(r"CP\d{6}", record["auto_number"])


def test_an_auto_number_is_counted_apart_from_the_query_number(system: System, form: CompiledForm) -> None:
    ftype, spec = form.types["auto_number"], form.field("auto_number")
    with transaction(system.db) as conn:
        before = ftype.on_insert(conn, spec, "gallery", NOW, "Asia/Shanghai")
    result = system.forms.submit("gallery", {"text": "x"})  # one auto number, one query number
    with transaction(system.db) as conn:
        after = ftype.on_insert(conn, spec, "gallery", NOW, "Asia/Shanghai")
    assert int(after[2:]) == int(before[2:]) + 2
    assert result.query_no is not None and not result.query_no.startswith("CP")


def test_an_auto_number_reads_back_after_it_is_stored(system: System, form: CompiledForm) -> None:
    ftype, spec = form.types["auto_number"], form.field("auto_number")
    record_id = system.forms.submit("gallery", {"text": "x"}).record_id
    with transaction(system.db) as conn:
        number = ftype.on_insert(conn, spec, "gallery", NOW, "Asia/Shanghai")
        system.forms.update_fields(conn, "gallery", record_id, {"auto_number": number}, actor=None)
    assert system.forms.get("gallery", record_id)["auto_number"] == number


def test_every_stored_type_has_a_column_and_display_only_types_none(system: System, form: CompiledForm) -> None:
    columns = {c["name"] for c in inspect(system.db).get_columns("rec_gallery")}
    assert set(form.stored) <= columns
    assert not {"section", "help_text", "divider"} & columns


def test_an_empty_record_reads_back_empty_for_every_type(system: System, form: CompiledForm) -> None:
    record = stored(system, {})
    assert {n: record[n] for n in form.stored if n not in ("computed", "auto_number")} == {
        n: None for n in form.stored if n not in ("computed", "auto_number")}


@pytest.mark.parametrize("field, raw", ROUNDTRIP, ids=[r[0] for r in ROUNDTRIP])
def test_a_stored_value_displays_as_text_in_both_languages(system: System, form: CompiledForm,
                                                           field: str, raw: Any) -> None:
    value = stored(system, {field: raw})[field]
    shown = [form.display(field, value, locale) for locale in ("en", "zh-CN")]
    assert all(isinstance(s, str) and s for s in shown)
