"""Alembic environment for Docket's engine tables (`dk_*`), run from code, not from an ini file.

`engine.storage.migrations.upgrade(engine)` passes an open connection in
`config.attributes["connection"]`, so this works for any engine, SQLite in memory included.
Record tables (`rec_*`) are managed by `engine.storage.records`, never here.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from engine.storage.migrations import VERSION_TABLE, include_name
from engine.storage.tables import metadata

config = context.config
options: dict[str, Any] = dict(
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    compare_type=True,
    render_as_batch=True,  # SQLite cannot ALTER most things: later migrations copy-and-move
)

if context.is_offline_mode():
    # `alembic upgrade --sql` style script for a DBA to read or run by hand.
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through engine.storage.migrations.upgrade(engine)")
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()
