"""Report engine support: lifecycle facts of records and maintained aggregates (reports helper).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "dk_report_facts",
        sa.Column("form", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("is_repeat", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("form", "record_id", name=op.f("pk_dk_report_facts")),
    )
    op.create_table(
        "dk_report_rollups",
        sa.Column("rollup", sa.String(length=120), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("k1", sa.String(length=200), nullable=False),
        sa.Column("k2", sa.String(length=200), nullable=False),
        sa.Column("k3", sa.String(length=200), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        *[sa.Column(f"v{i}", sa.Float(), nullable=True) for i in range(1, 25)],
        sa.PrimaryKeyConstraint("rollup", "day", "k1", "k2", "k3", name=op.f("pk_dk_report_rollups")),
    )
    op.create_table(
        "dk_report_rollup_state",
        sa.Column("rollup", sa.String(length=120), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rollup", name=op.f("pk_dk_report_rollup_state")),
    )


def downgrade() -> None:
    op.drop_table("dk_report_rollup_state")
    op.drop_table("dk_report_rollups")
    op.drop_table("dk_report_facts")
