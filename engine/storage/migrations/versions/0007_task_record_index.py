"""An index on the tasks of a record (form, record_id).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

Every question about a record's tasks (its open tasks before a completion, the record page,
rules' `open_tasks`, the SLA escalation) filtered on (form, record_id), and dk_tasks had no index
on them: SQLite searched every open task by status and filtered, so each lookup grew with the
number of open tasks in the whole system.
"""

from __future__ import annotations

from typing import Sequence, Union

from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index(op.f("ix_dk_tasks_form_record_id"), "dk_tasks", ["form", "record_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_dk_tasks_form_record_id"), table_name="dk_tasks")
