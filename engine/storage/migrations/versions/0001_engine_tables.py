"""Engine tables: bundle versions, users, roles, departments, flow instances, tasks, history,
timers, outbox, incidents, sequences, idempotency keys, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('dk_audit_log',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=150), nullable=True),
        sa.Column('action', sa.String(length=100), nullable=False),
        sa.Column('target', sa.String(length=255), nullable=True),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('ip', sa.String(length=45), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_dk_audit_log')
    )
    op.create_index('ix_dk_audit_log_at', 'dk_audit_log', ['at'], unique=False)
    op.create_table('dk_bundle_versions',
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('version', sa.String(length=100), nullable=True),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('source', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('hash', name='pk_dk_bundle_versions')
    )
    op.create_table('dk_idempotency',
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('request_hash', sa.String(length=64), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('key', name='pk_dk_idempotency')
    )
    op.create_table('dk_incidents',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=50), nullable=False),
        sa.Column('ref', sa.String(length=255), nullable=True),
        sa.Column('message', sa.Text(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_dk_incidents')
    )
    op.create_index('ix_dk_incidents_resolved_at', 'dk_incidents', ['resolved_at'], unique=False)
    op.create_table('dk_outbox',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('channel', sa.String(length=50), nullable=False),
        sa.Column('recipient', sa.String(length=500), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=200), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_dk_outbox'),
        sa.UniqueConstraint('idempotency_key', name='uq_dk_outbox_idempotency_key')
    )
    op.create_index('ix_dk_outbox_status_next_attempt_at', 'dk_outbox', ['status', 'next_attempt_at'], unique=False)
    op.create_table('dk_roles',
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('label', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('name', name='pk_dk_roles')
    )
    op.create_table('dk_sequences',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('value', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
        sa.PrimaryKeyConstraint('name', name='pk_dk_sequences')
    )
    op.create_table('dk_timers',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('kind', sa.String(length=50), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('claimed_by', sa.String(length=100), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'claimed', 'done', 'failed', 'cancelled')", name='ck_dk_timers_status_valid'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_timers')
    )
    op.create_index('ix_dk_timers_key', 'dk_timers', ['key'], unique=False)
    op.create_index('ix_dk_timers_status_due_at', 'dk_timers', ['status', 'due_at'], unique=False)
    op.create_table('dk_users',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('username', sa.String(length=150), nullable=False),
        sa.Column('display_name', sa.String(length=200), nullable=True),
        sa.Column('password_hash', sa.String(length=255), nullable=True),
        sa.Column('email', sa.String(length=255), nullable=True),
        sa.Column('phone', sa.String(length=50), nullable=True),
        sa.Column('department', sa.String(length=100), nullable=True),
        sa.Column('manager_id', sa.Integer(), nullable=True),
        sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('locale', sa.String(length=20), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['manager_id'], ['dk_users.id'], name='fk_dk_users_manager_id_dk_users', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_users'),
        sa.UniqueConstraint('username', name='uq_dk_users_username')
    )
    op.create_index('ix_dk_users_department', 'dk_users', ['department'], unique=False)
    op.create_table('dk_departments',
        sa.Column('code', sa.String(length=100), nullable=False),
        sa.Column('label', sa.JSON(), nullable=True),
        sa.Column('parent', sa.String(length=100), nullable=True),
        sa.Column('manager_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['manager_id'], ['dk_users.id'], name='fk_dk_departments_manager_id_dk_users', ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['parent'], ['dk_departments.code'], name='fk_dk_departments_parent_dk_departments', ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('code', name='pk_dk_departments')
    )
    op.create_table('dk_flow_instances',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('flow', sa.String(length=100), nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('bundle_hash', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('current', sa.JSON(), nullable=False),
        sa.Column('variables', sa.JSON(), nullable=False),
        sa.Column('outcome', sa.String(length=100), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
        sa.CheckConstraint("status IN ('running', 'completed', 'withdrawn', 'incident')", name='ck_dk_flow_instances_status_valid'),
        sa.ForeignKeyConstraint(['bundle_hash'], ['dk_bundle_versions.hash'], name='fk_dk_flow_instances_bundle_hash_dk_bundle_versions'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_flow_instances')
    )
    op.create_index('ix_dk_flow_instances_form_record_id', 'dk_flow_instances', ['form', 'record_id'], unique=False)
    op.create_index('ix_dk_flow_instances_status', 'dk_flow_instances', ['status'], unique=False)
    op.create_table('dk_user_roles',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('role', sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['dk_users.id'], name='fk_dk_user_roles_user_id_dk_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'role', name='pk_dk_user_roles')
    )
    op.create_index('ix_dk_user_roles_role', 'dk_user_roles', ['role'], unique=False)
    op.create_table('dk_history',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=True),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=50), nullable=False),
        sa.Column('node', sa.String(length=100), nullable=True),
        sa.Column('actor', sa.String(length=150), nullable=True),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('data', sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(['instance_id'], ['dk_flow_instances.id'], name='fk_dk_history_instance_id_dk_flow_instances'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_history')
    )
    op.create_index('ix_dk_history_form_record_id', 'dk_history', ['form', 'record_id'], unique=False)
    op.create_index('ix_dk_history_instance_id', 'dk_history', ['instance_id'], unique=False)
    op.create_table('dk_tasks',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('instance_id', sa.Integer(), nullable=False),
        sa.Column('node', sa.String(length=100), nullable=False),
        sa.Column('form', sa.String(length=100), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('assignee_user', sa.Integer(), nullable=True),
        sa.Column('candidate_roles', sa.JSON(), nullable=True),
        sa.Column('candidate_users', sa.JSON(), nullable=True),
        sa.Column('candidate_department', sa.String(length=100), nullable=True),
        sa.Column('outcome', sa.String(length=100), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('completed_by', sa.Integer(), nullable=True),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalation_level', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('version', sa.Integer(), server_default=sa.text('1'), nullable=False),
        sa.CheckConstraint("status IN ('open', 'claimed', 'completed', 'cancelled')", name='ck_dk_tasks_status_valid'),
        sa.ForeignKeyConstraint(['assignee_user'], ['dk_users.id'], name='fk_dk_tasks_assignee_user_dk_users'),
        sa.ForeignKeyConstraint(['completed_by'], ['dk_users.id'], name='fk_dk_tasks_completed_by_dk_users'),
        sa.ForeignKeyConstraint(['instance_id'], ['dk_flow_instances.id'], name='fk_dk_tasks_instance_id_dk_flow_instances', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name='pk_dk_tasks')
    )
    op.create_index('ix_dk_tasks_instance_id', 'dk_tasks', ['instance_id'], unique=False)
    op.create_index('ix_dk_tasks_status_assignee_user', 'dk_tasks', ['status', 'assignee_user'], unique=False)


def downgrade() -> None:
    op.drop_table('dk_tasks')
    op.drop_table('dk_history')
    op.drop_table('dk_user_roles')
    op.drop_table('dk_flow_instances')
    op.drop_table('dk_departments')
    op.drop_table('dk_users')
    op.drop_table('dk_timers')
    op.drop_table('dk_sequences')
    op.drop_table('dk_roles')
    op.drop_table('dk_outbox')
    op.drop_table('dk_incidents')
    op.drop_table('dk_idempotency')
    op.drop_table('dk_bundle_versions')
    op.drop_table('dk_audit_log')
