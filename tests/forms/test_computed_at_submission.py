"""A computed field reads the record's own created_at when it is submitted: the expression
passed validation and then always stored nothing, the instant not being known yet."""

from __future__ import annotations

from pathlib import Path

from tests.forms import boot_gallery

FILES = {"forms/visit.yaml": """\
    form: visit
    fields:
      note: {type: text}
      received_on_time:
        type: computed
        expression: not is_empty(created_at) and created_at == now()
        result: boolean
    """}


def test_a_computed_field_reads_created_at_as_the_record_is_submitted(tmp_path: Path) -> None:
    system = boot_gallery(tmp_path, FILES)
    record = system.forms.submit("visit", {"note": "x"}, actor="zhao.li")
    stored = system.forms.get("visit", record.record_id)
    assert stored["received_on_time"] is True
