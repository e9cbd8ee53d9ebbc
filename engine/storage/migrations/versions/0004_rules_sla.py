"""Rule engine and SLA state (rules helper).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dk_record_tags',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('tag', sa.String(length=100), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=150), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_dk_record_tags'),
        sa.UniqueConstraint('form', 'record_id', 'tag', name='uq_dk_record_tags_form_record_id_tag')
    )
    op.create_index('ix_dk_record_tags_tag_created_at', 'dk_record_tags', ['tag', 'created_at'],
                    unique=False)
    op.create_table('dk_sla_clocks',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('policy', sa.String(length=100), nullable=False),
        sa.Column('target', sa.String(length=100), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('target_seconds', sa.Integer(), nullable=False),
        sa.Column('used_seconds', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resumed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('warn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('breached_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalation_level', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
        sa.CheckConstraint("status IN ('running', 'paused', 'met', 'missed')",
                           name='ck_dk_sla_clocks_status_valid'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_sla_clocks'),
        sa.UniqueConstraint('form', 'record_id', 'policy', 'target',
                            name='uq_dk_sla_clocks_form_record_id_policy_target')
    )
    op.create_index('ix_dk_sla_clocks_status_due_at', 'dk_sla_clocks', ['status', 'due_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_dk_sla_clocks_status_due_at', table_name='dk_sla_clocks')
    op.drop_table('dk_sla_clocks')
    op.drop_index('ix_dk_record_tags_tag_created_at', table_name='dk_record_tags')
    op.drop_table('dk_record_tags')
