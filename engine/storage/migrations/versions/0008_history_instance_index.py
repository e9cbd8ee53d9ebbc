"""Drop the index on dk_history.instance_id.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Every history row (eleven per instance of a 3-step flow, ~50 per postal complaint) paid an
insert into this index, and nothing ever read through it: a record's trail is read by (form,
record_id), and flow instances are never deleted, so the foreign key never searches it.
"""

from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_index("ix_dk_history_instance_id", table_name="dk_history")


def downgrade() -> None:
    op.create_index("ix_dk_history_instance_id", "dk_history", ["instance_id"])
