"""A partial index on dk_history for the copies (抄送) a watcher's inbox lists.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

The inbox shows each user the open records a task was copied to them for, newest first. Only
`task.copied` rows are in the index, so the other history rows (about fifty per postal
complaint) are written without it.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

COPIED = "kind = 'task.copied'"


def upgrade() -> None:
    op.create_index("ix_dk_history_copied", "dk_history", ["id"], sqlite_where=sa.text(COPIED),
                    postgresql_where=sa.text(COPIED))


def downgrade() -> None:
    op.drop_index("ix_dk_history_copied", table_name="dk_history")
