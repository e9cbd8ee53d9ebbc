"""Sign-in sessions, audit log and API tokens (web helpers).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # API tokens (web/tokens.py)
    op.create_table('dk_api_tokens',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=150), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['dk_users.id'], name='fk_dk_api_tokens_user_id_dk_users',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_api_tokens'),
        sa.UniqueConstraint('token_hash', name='uq_dk_api_tokens_token_hash')
    )
    op.create_index('ix_dk_api_tokens_user_id', 'dk_api_tokens', ['user_id'], unique=False)
    # Sign-in sessions and audit-log filters (web/auth.py)
    op.create_table('dk_sessions',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.Column('user_agent', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['dk_users.id'], name='fk_dk_sessions_user_id_dk_users',
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_sessions')
    )
    op.create_index('ix_dk_sessions_user_id', 'dk_sessions', ['user_id'], unique=False)
    op.create_index('ix_dk_sessions_expires_at', 'dk_sessions', ['expires_at'], unique=False)
    op.create_index('ix_dk_audit_log_actor', 'dk_audit_log', ['actor'], unique=False)
    op.create_index('ix_dk_audit_log_action', 'dk_audit_log', ['action'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_dk_audit_log_action', table_name='dk_audit_log')
    op.drop_index('ix_dk_audit_log_actor', table_name='dk_audit_log')
    op.drop_index('ix_dk_sessions_expires_at', table_name='dk_sessions')
    op.drop_index('ix_dk_sessions_user_id', table_name='dk_sessions')
    op.drop_table('dk_sessions')
    op.drop_index('ix_dk_api_tokens_user_id', table_name='dk_api_tokens')
    op.drop_table('dk_api_tokens')
