"""Alembic migrations of the engine tables, run programmatically.

`upgrade(engine)` brings the `dk_*` tables to the newest revision inside one write transaction
(SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so several processes starting at once
migrate exactly once. A new, empty database gets the newest tables in one step, as the metadata
declares them, and is stamped with the newest revision: replaying every revision on it gives
the same tables (the test suite checks both ways against `engine.storage.tables.metadata`, and
against each other) in many more statements, SQLite's copy-and-move ones included. New
revisions go in `versions/`.
"""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine

from engine.errors import DocketError
from engine.storage.db import read_transaction, schema_inspector, serialize, transaction
from engine.storage.tables import metadata

__all__ = ["VERSION_TABLE", "DatabaseTooNew", "alembic_config", "current_revision", "head_revision",
           "include_name", "upgrade"]

VERSION_TABLE = "dk_alembic_version"
_PROCESS_LOCK = threading.Lock()
"""Alembic's `context` is a process-wide proxy: two threads migrating at once would swap each
other's environment. Processes are serialised by the database lock, threads by this one."""


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic filter: only engine tables (`dk_*`); record tables are not Alembic's business.

    Alembic's own version table is left out too: it is not in the metadata, so autogenerate
    would otherwise propose dropping it.
    """
    if type_ == "table":
        return name is not None and name.startswith("dk_") and name != VERSION_TABLE
    return True


def alembic_config() -> Config:
    """An Alembic Config built in code, pointing at this package."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent))
    config.set_main_option("path_separator", "os")
    return config


class DatabaseTooNew(DocketError):
    """The engine tables are at a revision this Docket does not ship: a newer Docket migrated
    them (the code was rolled back after an upgrade, or an old server still runs)."""


def upgrade(engine: Engine, revision: str = "head", *, replay: bool = False) -> None:
    """Migrate the engine tables to `revision` (default: newest) in one transaction;
    DatabaseTooNew when a newer Docket has migrated them already. An empty database is created
    at the newest revision directly, unless `replay` asks for every revision to run."""
    config = alembic_config()
    with _PROCESS_LOCK, transaction(engine) as conn:
        serialize(conn, "migrations")
        _refuse_a_newer_revision(conn, config)
        config.attributes["connection"] = conn
        if revision == "head" and not replay and not _has_engine_tables(conn):
            metadata.create_all(conn)
            command.stamp(config, "head")
            return
        command.upgrade(config, revision)


def _has_engine_tables(conn: Connection) -> bool:
    """Whether any engine table (or Alembic's version table) exists in the database."""
    return any(name.startswith("dk_") for name in schema_inspector(conn).get_table_names())


def _refuse_a_newer_revision(conn: Connection, config: Config) -> None:
    """Raise DatabaseTooNew if the database's revision is not one of this Docket's (Alembic
    would say only "Can't locate revision identified by '0010'", as a traceback)."""
    found = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()
    if found is None:
        return
    scripts = ScriptDirectory.from_config(config)
    try:
        scripts.get_revision(found)
    except CommandError:
        restore = ("docket db restore" if conn.dialect.name == "sqlite"
                   else "pg_restore of the dump taken before it")  # db restore is SQLite's
        raise DatabaseTooNew(
            f"the database's engine tables are at revision {found}, which this Docket does not know (its "
            f"newest is {scripts.get_current_head()}): a newer Docket has upgraded them. Run that version, "
            f"or restore the backup taken before the upgrade ({restore})") from None


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None if the engine tables were never created."""
    with read_transaction(engine) as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of Docket."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
