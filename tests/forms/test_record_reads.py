"""A record is read from the database once per transaction, and never served stale."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from engine.storage.db import savepoint, transaction
from tests.rules.kit import make, submit
from web.system import System


@pytest.fixture
def system(tmp_path: Path) -> System:
    return make(tmp_path)


def _reads_of(conn: object, run: object) -> int:
    driver = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    seen: list[str] = []
    driver.set_trace_callback(seen.append)
    try:
        run()  # type: ignore[operator]
    finally:
        driver.set_trace_callback(None)
    return sum(1 for s in seen if s.startswith("SELECT") and ("FROM rec_ticket" in s or "FROM rec_gallery" in s))


def test_a_record_read_twice_in_one_transaction_is_read_once(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        assert _reads_of(conn, lambda: [system.forms.read(conn, "ticket", ticket) for _ in range(3)]) == 1


def test_each_transaction_reads_the_record_again(system: System) -> None:
    ticket = submit(system)
    for _ in range(2):
        with transaction(system.db) as conn:
            assert _reads_of(conn, lambda: system.forms.read(conn, "ticket", ticket)) == 1


def test_a_write_is_seen_by_the_next_read_of_the_transaction(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        system.forms.read(conn, "ticket", ticket)
        system.forms.update_fields(conn, "ticket", ticket, {"team": "north"}, actor="agent")
        assert system.forms.read(conn, "ticket", ticket)["team"] == "north"


def test_writing_fields_diffs_against_the_values_read_in_the_transaction_without_reading_again(
        system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        system.forms.read(conn, "ticket", ticket)
        diff: dict[str, object] = {}
        reads = _reads_of(conn, lambda: diff.update(
            system.forms.update_fields(conn, "ticket", ticket, {"team": "north"}, actor="agent")))
        assert reads == 0 and diff == {"team": [None, "north"]}


def test_a_status_change_is_seen_by_the_next_read_of_the_transaction(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        system.forms.read(conn, "ticket", ticket)
        system.forms.update_fields(conn, "ticket", ticket, {}, actor="agent", status="on_hold")
        assert system.forms.read(conn, "ticket", ticket)["status"] == "on_hold"


def test_a_status_change_keeps_the_values_read_exactly_as_the_database_has_them(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        before = system.forms.read(conn, "ticket", ticket)
        reads = _reads_of(conn, lambda: (
            system.forms.update_fields(conn, "ticket", ticket, {}, actor="agent", status="on_hold"),
            system.forms.read(conn, "ticket", ticket)))
        assert reads == 0  # the flow's next event handlers are served from what was kept
        kept = system.forms.read(conn, "ticket", ticket)
        assert kept == system.forms.read(conn, "ticket", ticket, fresh=True)
        assert kept["status"] == "on_hold" and kept["version"] == before["version"] + 1


def test_what_a_rolled_back_savepoint_wrote_and_read_is_not_served_after_it(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        system.forms.read(conn, "ticket", ticket)
        savepoint = conn.begin_nested()
        system.forms.update_fields(conn, "ticket", ticket, {"team": "north"}, actor="agent")
        assert system.forms.read(conn, "ticket", ticket)["team"] == "north"
        savepoint.rollback()
        assert system.forms.read(conn, "ticket", ticket)["team"] is None


def test_what_a_failed_part_of_a_command_wrote_and_read_is_not_served_after_it(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        system.forms.read(conn, "ticket", ticket)
        with pytest.raises(RuntimeError), savepoint(conn):  # a rule's actions, say
            system.forms.update_fields(conn, "ticket", ticket, {"team": "north"}, actor="agent")
            assert system.forms.read(conn, "ticket", ticket)["team"] == "north"
            raise RuntimeError("a later step failed")
        assert system.forms.read(conn, "ticket", ticket)["team"] is None


def test_a_part_of_a_command_that_succeeds_keeps_what_was_read(system: System) -> None:
    ticket = submit(system)
    with transaction(system.db) as conn:
        def run() -> None:
            system.forms.read(conn, "ticket", ticket)
            with savepoint(conn):
                system.forms.read(conn, "ticket", ticket)
            system.forms.read(conn, "ticket", ticket)

        assert _reads_of(conn, run) == 1


def test_changing_the_values_read_does_not_change_the_next_read(system: System) -> None:
    ticket = submit(system, customer="ACME")
    with transaction(system.db) as conn:
        first = system.forms.read(conn, "ticket", ticket)
        first["customer"] = "someone else"
        assert system.forms.read(conn, "ticket", ticket)["customer"] == "ACME"


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_built_in_type_is_kept_after_a_write_exactly_as_reading_it_back_gives(
        tmp_path: Path, request: pytest.FixtureRequest, database: str) -> None:
    """The transaction's copy of a record follows a write of built-in fields without reading
    the record again (forms/records.py `_kept_as_written`): that is only right if each type's
    checked value is what the database gives back, the same type and the same digits."""
    from engine.clock import ManualClock
    from tests.engine.bundle_kit import write_bundle
    from tests.forms import GALLERY, NOW
    from tests.forms.test_field_types import VALID
    from web.system import boot, build_registry

    url = f"sqlite:///{tmp_path / 'docket.db'}" if database == "sqlite" else request.getfixturevalue("postgres_url")
    system = boot(write_bundle(tmp_path / "bundle", GALLERY), db_url=url, clock=ManualClock(NOW),
                  registry=build_registry(plugins=False))
    customer = system.forms.submit("customer", {"name": "Acme"}, actor="zhao.li").record_id
    record = system.forms.submit("gallery", {}, actor="zhao.li").record_id
    form = system.forms.form("gallery")
    raw = {name: value for name, value, _ in reversed(VALID) if name in form.spec.fields}
    raw["reference"] = f"#{customer}"
    with transaction(system.db) as conn:
        existing = system.forms.read(conn, "gallery", record)
        clean = form.validate(raw, existing=existing, editable=set(raw))
        diff = system.forms.update_fields(conn, "gallery", record, form.edited(clean, set(raw)), actor="zhao.li")
        assert set(raw) - {"auto_number"} <= set(diff)
        kept: dict[str, object] = {}
        read_kept = lambda: kept.update(system.forms.read(conn, "gallery", record))  # noqa: E731
        if database == "sqlite":
            assert _reads_of(conn, read_kept) == 0  # from the transaction's copy
        else:
            read_kept()
        stored = system.forms.read(conn, "gallery", record, fresh=True)
    def exact(value: object) -> str:  # the same digits and type; an instant in any UTC zone object
        return f"datetime {value.isoformat()}" if isinstance(value, datetime) else repr(value)

    assert {n: exact(v) for n, v in kept.items()} == {n: exact(v) for n, v in stored.items()}
