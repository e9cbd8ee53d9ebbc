"""Shared fixtures: databases.

- `sqlite_url` / `sqlite_engine`: a SQLite file in tmp_path (the engine is Docket's, migrated).
- `postgres_url` / `postgres_engine`: a fresh schema on the PostgreSQL server named by
  DOCKET_TEST_POSTGRES_URL (default below), dropped after the test; skipped when the server is
  unreachable. The schema is selected through the URL (`options=-csearch_path=<schema>`), so
  anything that builds its own engine from `postgres_url` (other processes included) lands in it.
- `db_engine`: the test runs twice, on SQLite and on PostgreSQL (marked `postgres`).
Tests that need PostgreSQL carry `@pytest.mark.postgres`.
"""

from __future__ import annotations

import os
import uuid
import weakref
from pathlib import Path
from typing import Any, Iterator

import pytest
import sqlalchemy
from sqlalchemy.engine import Engine, make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

# Every engine the tests make (and the processes they start) turns a read that would miss a
# command's own deferred history rows into an error (engine/storage/deferred.py).
os.environ.setdefault("DOCKET_CHECK_DEFERRED_READS", "1")

_ENGINES: "weakref.WeakSet[Engine]" = weakref.WeakSet()
"""Every engine made while the tests run (Docket's `create_engine` calls `sqlalchemy.create_engine`)."""
_create_engine = sqlalchemy.create_engine


def _tracked_create_engine(*args: Any, **kwargs: Any) -> Engine:
    engine = _create_engine(*args, **kwargs)
    _ENGINES.add(engine)
    return engine


sqlalchemy.create_engine = _tracked_create_engine


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Dispose of every engine still open when a test module is done (its fixtures are torn
    down by then). Many tests boot a system and leave it: an engine nobody disposed stays
    alive with its pool and caches (SQLite's shared writer connection stays checked out), and
    the suite grew to 4 GB, slowing its last tests' garbage collection. A disposed engine still
    works: one a later module uses connects again."""
    yield
    if nextitem is None or getattr(nextitem, "module", None) is not getattr(item, "module", None):
        for engine in list(_ENGINES):
            engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a not yet existing SQLite file in the test's tmp_path."""
    return f"sqlite:///{tmp_path / 'docket.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """Docket's SQLite engine on a fresh file, engine tables migrated."""
    from engine.storage.db import create_engine
    from engine.storage.migrations import upgrade

    engine = create_engine(sqlite_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    """The server URL, checked once per session; skips every PostgreSQL test if unreachable."""
    url = os.environ.get("DOCKET_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        import psycopg

        with psycopg.connect(_libpq(url), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means "not available here"
        pytest.skip(f"PostgreSQL not reachable at {shown}: {str(exc).strip() or type(exc).__name__}")
    return url


@pytest.fixture
def postgres_url(_postgres_server: str) -> Iterator[str]:
    """URL of a fresh, empty schema of its own (search_path set in the URL); dropped afterwards."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(_postgres_server), autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    url = make_url(_postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with psycopg.connect(_libpq(_postgres_server), autocommit=True) as admin:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_engine(postgres_url: str) -> Iterator[Engine]:
    """Docket's engine on a fresh PostgreSQL schema, engine tables migrated."""
    from engine.storage.db import create_engine
    from engine.storage.migrations import upgrade

    engine = create_engine(postgres_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_engine(request: pytest.FixtureRequest) -> Engine:
    """A migrated Docket engine; the test runs once per database."""
    return request.getfixturevalue(f"{request.param}_engine")
