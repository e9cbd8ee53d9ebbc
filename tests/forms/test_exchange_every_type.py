"""Every field type survives the whole trip: submit -> store -> read -> export -> import -> read."""

from __future__ import annotations

import io
from typing import Any

import pytest

from forms.compile import CompiledForm
from forms.exchange import export_records, import_records
from tests.forms import boot_gallery
from tests.forms.test_field_roundtrip import ROUNDTRIP
from web.system import System

SKIPPED = {"attachment", "image"}  # files travel as uploads: export names them, import ignores them
CASES = [(f, raw) for f, raw in ROUNDTRIP if f not in SKIPPED]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> System:
    return boot_gallery(tmp_path_factory.mktemp("target"))


def only_field(system: System, form: CompiledForm, field: str, raw: Any) -> Any:
    ftype, spec = form.types[field], form.field(field)
    result = system.forms.submit("gallery", {field: ftype.to_json(ftype.parse(raw, spec), spec)})
    return system.forms.get("gallery", result.record_id)[field], result.record_id


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize("locale", ["en", "zh-CN"])
@pytest.mark.parametrize("field, raw", CASES, ids=[c[0] for c in CASES])
def test_a_value_comes_back_equal_through_export_and_import(source: System, target: System, field: str,
                                                           raw: Any, fmt: str, locale: str) -> None:
    form = source.forms.form("gallery")
    value, record_id = only_field(source, form, field, raw)
    out = io.BytesIO()
    export_records(source.forms, "gallery", fmt, out, locale=locale, fields=[field],
                   where={"id": record_id})
    before = target.forms.count("gallery")
    report = import_records(target.forms, "gallery", fmt, io.BytesIO(out.getvalue()), actor="importer",
                            locale=locale)
    assert report.ok, report.lines(locale)
    (row,) = target.forms.list("gallery", limit=1)
    assert target.forms.count("gallery") == before + 1
    assert row[field] == value
