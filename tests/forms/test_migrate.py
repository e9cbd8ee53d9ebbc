"""`docket migrate`: changes start-up never makes alone, planned first, applied without data loss."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cli import main
from engine.clock import ManualClock
from engine.storage.db import read_transaction, schema_inspector, transaction
from forms.migrate import MigrationBlocked, apply_form, plan_form
from tests.engine.bundle_kit import write_bundle
from web.system import System, boot

V1 = """\
form: ticket
label: Ticket
fields:
  title: {type: text, required: true}
  code: {type: text}
  note: {type: text}
  ref: {type: text}
"""


def v2(*, code: str = "integer", unique_title: bool = False, ref: str = "ref", note: bool = True) -> str:
    lines = ["form: ticket", "label: Ticket", "fields:",
             f"  title: {{type: text, required: true{', unique: true' if unique_title else ''}}}",
             f"  code: {{type: {code}}}", f"  {ref}: {{type: text}}"]
    if note:
        lines.append("  note: {type: text}")
    return "\n".join(lines) + "\n"


def start(tmp_path: Path, form: str, db_url: str | None = None) -> System:
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": form, "flows/ticket_flow.yaml": None})
    url = db_url or f"sqlite:///{tmp_path / 'docket.db'}"
    return boot(root, db_url=url, clock=ManualClock(datetime(2026, 11, 23, 2, tzinfo=timezone.utc)))


def columns(system: System) -> set[str]:
    with read_transaction(system.db) as conn:
        return {c["name"] for c in schema_inspector(conn).get_columns("rec_ticket")}


def seeded(tmp_path: Path, values: list[dict], db_url: str | None = None) -> None:
    system = start(tmp_path, V1, db_url)
    for row in values:
        system.forms.submit("ticket", row)
    system.db.dispose()


def test_a_retyped_field_converts_every_value_and_keeps_the_old_column(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "code": "12"}, {"title": "b", "code": " 7 "}, {"title": "c"}])
    system = start(tmp_path, v2())
    steps = plan_form(system.forms, "ticket")
    assert [s.kind for s in steps] == ["move"] and not steps[0].blocked
    apply_form(system.forms, "ticket", steps)
    assert sorted((r["title"], r["code"]) for r in system.forms.list("ticket")) == [("a", 12), ("b", 7), ("c", None)]
    assert "_removed_code" in columns(system)


def test_a_value_that_does_not_convert_blocks_the_step_and_names_the_record(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "code": "12"}, {"title": "b", "code": "twelve"}])
    system = start(tmp_path, v2())
    (step,) = plan_form(system.forms, "ticket")
    assert step.blocked[0].startswith("record 2: 'twelve'")
    with pytest.raises(MigrationBlocked):
        apply_form(system.forms, "ticket", [step])
    assert "_removed_code" not in columns(system)


def test_values_a_narrowed_field_now_refuses_are_noted_and_kept(tmp_path: Path) -> None:
    # A satisfaction scale moved from 1-10 to 1-5: the 9s stayed and nothing said so; an edit of
    # such a record was then refused for a field nobody touched.
    rated = V1 + "  score: {type: rating, max: 10}\n"
    system = start(tmp_path, rated)
    for score in (9, 9, 4):
        system.forms.submit("ticket", {"title": "t", "score": score})
    system.db.dispose()
    system = start(tmp_path, rated.replace("max: 10", "max: 5"))
    (step,) = plan_form(system.forms, "ticket")
    assert (step.kind, step.blocked) == ("note", [])
    assert step.text.startswith("2 record(s) hold a score the field now refuses: 9 (2 record(s)): ")
    assert sorted(r["score"] for r in system.forms.list("ticket")) == [4, 9, 9]


def test_a_plan_of_notes_only_does_not_ask_for_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rated = V1 + "  score: {type: rating, max: 10}\n"
    system = start(tmp_path, rated)
    system.forms.submit("ticket", {"title": "t", "score": 9})
    system.db.dispose()
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": rated.replace("max: 10", "max: 5"),
                                              "flows/ticket_flow.yaml": None})
    assert main(["migrate", str(root), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 0
    out = capsys.readouterr().out
    assert "nothing to apply: the notes above are for you to act on" in out and "--apply" not in out


def test_a_renamed_field_moves_its_values(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "ref": "EA1"}])
    system = start(tmp_path, v2(code="text", ref="reference"))
    steps = plan_form(system.forms, "ticket", {"ref": "reference"})
    assert [s.kind for s in steps] == ["move"]
    apply_form(system.forms, "ticket", steps)
    (record,) = system.forms.list("ticket")
    assert record["reference"] == "EA1" and "_removed_ref" in columns(system) and "ref" not in columns(system)


def test_a_rename_after_the_reload_keeps_what_new_records_wrote_in_the_new_field(tmp_path: Path) -> None:
    # The guide's order: the changed bundle is loaded, complaints keep coming in with the new
    # field filled, then `docket migrate --rename`. It was blocked for good ("column reference
    # already holds 1 value(s)"), leaving the old records' values out of sight.
    seeded(tmp_path, [{"title": "a", "ref": "EA1"}])
    system = start(tmp_path, v2(code="text", ref="reference"))
    system.forms.submit("ticket", {"title": "b", "reference": "EB2"})
    (step,) = plan_form(system.forms, "ticket", {"ref": "reference"})
    assert not step.blocked
    apply_form(system.forms, "ticket", [step])
    assert sorted((r["title"], r["reference"]) for r in system.forms.list("ticket")) == [("a", "EA1"), ("b", "EB2")]


def test_a_rename_onto_a_record_holding_both_values_is_blocked_naming_it(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "ref": "EA1"}])
    system = start(tmp_path, v2(code="text", ref="reference"))
    (record,) = system.forms.list("ticket")
    with transaction(system.db) as conn:
        system.forms.update_fields(conn, "ticket", record["id"], {"reference": "EA9"}, actor="agent")
    (step,) = plan_form(system.forms, "ticket", {"ref": "reference"})
    assert step.blocked[0] == "record 1: ref holds 'EA1' and reference holds 'EA9'"


def test_a_field_renamed_without_rename_is_told_the_rename_to_run(tmp_path: Path) -> None:
    # The plan said only that ref's data would be archived, and the new field stayed empty.
    seeded(tmp_path, [{"title": "a", "ref": "EA1"}])
    system = start(tmp_path, v2(code="text", ref="reference"))
    (step,) = plan_form(system.forms, "ticket")
    assert step.kind == "archive"
    assert step.text.endswith("; if it was renamed to reference, run with --rename ticket.ref=reference "
                              "to move its values there")


def test_the_rename_told_is_to_a_field_the_earlier_version_lacked_with_the_same_label(tmp_path: Path) -> None:
    # expected_resolution renamed to customer_expectation (same label) was told "if it was renamed
    # to resolution, run with --rename ...": an older, still empty field with a closer name, into
    # which the command would have moved every customer's expectation.
    before = ("form: ticket\nlabel: Ticket\nfields:\n  title: {type: text, required: true}\n"
              "  expected_resolution: {type: textarea, label: Expected resolution}\n"
              "  resolution: {type: textarea, label: Resolution}\n")
    after = ("form: ticket\nlabel: Ticket\nfields:\n  title: {type: text, required: true}\n"
             "  customer_expectation: {type: textarea, label: Expected resolution}\n"
             "  resolution: {type: textarea, label: Resolution}\n")
    system = start(tmp_path, before)
    system.forms.submit("ticket", {"title": "a", "expected_resolution": "a refund"})
    system.db.dispose()
    system = start(tmp_path, after)
    system.forms.submit("ticket", {"title": "b", "customer_expectation": "a call back"})  # since the reload
    (step,) = plan_form(system.forms, "ticket")
    assert step.text.endswith("; if it was renamed to customer_expectation, run with --rename "
                              "ticket.expected_resolution=customer_expectation to move its values there")


def test_a_removed_field_keeps_its_data_under_an_archive_name(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "note": "keep me"}])
    system = start(tmp_path, v2(code="text", note=False))
    steps = plan_form(system.forms, "ticket")
    assert [s.kind for s in steps] == ["archive"]
    apply_form(system.forms, "ticket", steps)
    with read_transaction(system.db) as conn:
        assert conn.exec_driver_sql("SELECT _removed_note FROM rec_ticket").scalar() == "keep me"
    assert plan_form(system.forms, "ticket") == []


def test_a_field_made_unique_is_blocked_by_duplicates_and_then_enforced(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "same"}, {"title": "same"}])
    system = start(tmp_path, v2(code="text", unique_title=True))
    (step,) = plan_form(system.forms, "ticket")
    assert step.kind == "add_unique" and step.blocked[0] == "'same' is used by 2 records"
    with system.db.begin() as conn:
        conn.exec_driver_sql("UPDATE rec_ticket SET title = 'other' WHERE id = 2")
    apply_form(system.forms, "ticket", plan_form(system.forms, "ticket"))
    with pytest.raises(Exception):
        system.forms.submit("ticket", {"title": "same"})
    assert plan_form(system.forms, "ticket") == []


def test_every_migration_is_written_to_the_audit_log(tmp_path: Path) -> None:
    seeded(tmp_path, [{"title": "a", "code": "1"}])
    system = start(tmp_path, v2())
    apply_form(system.forms, "ticket", plan_form(system.forms, "ticket"), actor="ops")
    with read_transaction(system.db) as conn:
        row = conn.exec_driver_sql("SELECT actor, action, target FROM dk_audit_log").one()
    assert tuple(row) == ("ops", "records.migrated", "rec_ticket")


def test_the_command_shows_the_plan_and_changes_nothing_without_apply(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seeded(tmp_path, [{"title": "a", "code": "12"}])
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": v2(), "flows/ticket_flow.yaml": None})
    db = f"sqlite:///{tmp_path / 'docket.db'}"
    assert main(["migrate", str(root), "--db", db]) == 0
    out = capsys.readouterr().out
    assert "ticket: convert code to BIGINT (1 value(s))" in out and "--apply" in out
    assert main(["migrate", str(root), "--db", db, "--apply"]) == 0
    assert "done: ticket: 1 value(s) of code moved into code" in capsys.readouterr().out


def test_the_command_does_not_warn_to_run_itself(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # Booting logged start-up's warning "... run an explicit migration (`docket migrate` ...)".
    seeded(tmp_path, [{"title": "a", "code": "12"}])
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": v2(), "flows/ticket_flow.yaml": None})
    with caplog.at_level(logging.WARNING):
        assert main(["migrate", str(root), "--db", f"sqlite:///{tmp_path / 'docket.db'}"]) == 0
    assert not [r for r in caplog.records if "docket migrate" in r.getMessage()]
    assert "ticket: convert code to BIGINT" in capsys.readouterr().out


def test_apply_with_a_blocked_step_says_nothing_changed_without_a_traceback_hint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It said "error: migrating the ticket record table failed: MigrationBlocked: ... (--log-level
    # debug shows the traceback)", as if Docket had failed, for a plan it had just shown blocked.
    seeded(tmp_path, [{"title": "a", "code": "twelve"}])
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": v2(), "flows/ticket_flow.yaml": None})
    assert main(["migrate", str(root), "--db", f"sqlite:///{tmp_path / 'docket.db'}", "--apply"]) == 1
    err = capsys.readouterr().err
    assert err.endswith("ticket: not migrated: some steps are blocked (see above); nothing changed\n")
    assert "traceback" not in err


def test_the_command_refuses_a_malformed_rename(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": V1, "flows/ticket_flow.yaml": None})
    assert main(["migrate", str(root), "--db", f"sqlite:///{tmp_path / 'd.db'}", "--rename", "ticket.ref"]) == 2
    assert "FORM.OLD=NEW" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_retype_and_a_rename_apply_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    seeded(tmp_path, [{"title": "a", "code": "12", "ref": "EA1"}], postgres_url)
    system = start(tmp_path, v2(ref="reference"), postgres_url)
    steps = plan_form(system.forms, "ticket", {"ref": "reference"})
    apply_form(system.forms, "ticket", steps)
    (record,) = system.forms.list("ticket")
    assert (record["code"], record["reference"]) == (12, "EA1")
    system.db.dispose()


@pytest.mark.postgres
def test_the_command_behind_a_transaction_left_open_stops_saying_so_instead_of_waiting_silently(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Behind a long report or a psql session left in a transaction, `docket migrate --apply`
    # printed nothing and waited for as long as that lasted.
    import cli
    from engine.storage.db import create_engine

    monkeypatch.setattr(cli, "LOCK_TIMEOUT_S", 1)
    seeded(tmp_path, [{"title": "a", "ref": "EA1"}], postgres_url)
    root = write_bundle(tmp_path / "bundle", {"forms/ticket.yaml": v2(code="text", ref="reference"),
                                              "flows/ticket_flow.yaml": None})
    holder = create_engine(postgres_url)
    try:
        with holder.connect() as open_session:
            open_session.exec_driver_sql("SELECT count(*) FROM rec_ticket").all()  # its lock held till the end
            assert main(["migrate", str(root), "--db", postgres_url, "--rename", "ticket.ref=reference", "--apply"]) == 1
    finally:
        holder.dispose()
    err = capsys.readouterr().err
    assert "lock timeout" in err and "in use by another session" in err and "Traceback" not in err
