"""Durable timers, the outbox of outgoing messages and incidents (timers helper).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.

dk_timers and dk_outbox were created empty by 0001; this revision gives them what the timer
service and the outbox relay need: subjects, open keys (re-arm), leases on outbox claims, message
ids sent on every attempt, duplicate counts, and status sets matching engine/timers.py and
engine/outbox.py. SQLite cannot alter constraints in place, so batch mode copies the tables.
"""

from __future__ import annotations

import uuid
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

_OLD_TIMER_STATUSES = "status IN ('pending', 'claimed', 'done', 'failed', 'cancelled')"
_NEW_TIMER_STATUSES = "status IN ('pending', 'claimed', 'fired', 'failed', 'incident')"
_OUTBOX_STATUSES = "status IN ('pending', 'sending', 'sent', 'dead')"


def upgrade() -> None:
    conn = op.get_bind()
    # Rows written under 0001's vocabulary (nothing wrote them, but be exact): cancelled rows are
    # dropped (cancelling now deletes), done becomes fired once the old CHECK is gone.
    conn.execute(sa.text("DELETE FROM dk_timers WHERE status = 'cancelled'"))
    with op.batch_alter_table('dk_timers') as batch_op:
        batch_op.drop_constraint('ck_dk_timers_status_valid', type_='check')
        batch_op.add_column(sa.Column('subject', sa.String(length=255), server_default=sa.text("''"), nullable=False))
        batch_op.add_column(sa.Column('open_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('created_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('fired_at', sa.DateTime(timezone=True), nullable=True))
    conn.execute(sa.text("UPDATE dk_timers SET status = 'fired' WHERE status = 'done'"))
    with op.batch_alter_table('dk_timers') as batch_op:
        batch_op.create_check_constraint('ck_dk_timers_status_valid', _NEW_TIMER_STATUSES)
        batch_op.create_unique_constraint('uq_dk_timers_open_key', ['open_key'])
        batch_op.create_index('ix_dk_timers_status_lease_until', ['status', 'lease_until'], unique=False)
        batch_op.create_index('ix_dk_timers_subject_kind', ['subject', 'kind'], unique=False)

    with op.batch_alter_table('dk_outbox') as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('duplicates', sa.Integer(), server_default=sa.text('0'), nullable=False))
    for (row_id,) in conn.execute(sa.text("SELECT id FROM dk_outbox WHERE message_id IS NULL")).all():
        conn.execute(sa.text("UPDATE dk_outbox SET message_id = :m WHERE id = :i"),
                     {"m": uuid.uuid4().hex, "i": row_id})
    conn.execute(sa.text("UPDATE dk_outbox SET status = 'pending' WHERE status = 'failed'"))
    with op.batch_alter_table('dk_outbox') as batch_op:
        batch_op.alter_column('message_id', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_dk_outbox_message_id', ['message_id'])
        batch_op.create_check_constraint('ck_dk_outbox_status_valid', _OUTBOX_STATUSES)


def downgrade() -> None:
    with op.batch_alter_table('dk_outbox') as batch_op:
        batch_op.drop_constraint('ck_dk_outbox_status_valid', type_='check')
        batch_op.drop_constraint('uq_dk_outbox_message_id', type_='unique')
        batch_op.drop_column('duplicates')
        batch_op.drop_column('claimed_by')
        batch_op.drop_column('message_id')
    conn = op.get_bind()
    with op.batch_alter_table('dk_timers') as batch_op:
        batch_op.drop_constraint('ck_dk_timers_status_valid', type_='check')
        batch_op.drop_index('ix_dk_timers_subject_kind')
        batch_op.drop_index('ix_dk_timers_status_lease_until')
        batch_op.drop_constraint('uq_dk_timers_open_key', type_='unique')
        batch_op.drop_column('fired_at')
        batch_op.drop_column('created_at')
        batch_op.drop_column('open_key')
        batch_op.drop_column('subject')
    conn.execute(sa.text("UPDATE dk_timers SET status = 'done' WHERE status = 'fired'"))
    conn.execute(sa.text("UPDATE dk_timers SET status = 'failed' WHERE status = 'incident'"))
    with op.batch_alter_table('dk_timers') as batch_op:
        batch_op.create_check_constraint('ck_dk_timers_status_valid', _OLD_TIMER_STATUSES)
