"""Attachments: metadata of uploaded files (the bytes live outside the database, by sha256).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dk_attachments',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('media_type', sa.String(length=100), nullable=False),
        sa.Column('original_name', sa.String(length=255), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=150), nullable=True),
        sa.Column('form', sa.String(length=100), nullable=True),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('field', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'linked')", name='ck_dk_attachments_status_valid'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_attachments')
    )
    with op.batch_alter_table('dk_attachments') as batch_op:
        batch_op.create_index('ix_dk_attachments_form_record_id', ['form', 'record_id'], unique=False)
        batch_op.create_index('ix_dk_attachments_sha256', ['sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('dk_attachments') as batch_op:
        batch_op.drop_index('ix_dk_attachments_sha256')
        batch_op.drop_index('ix_dk_attachments_form_record_id')
    op.drop_table('dk_attachments')
