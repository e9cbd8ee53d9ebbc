"""The SLA verdict of each record's targets, a maintained report fact (reports helper).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Reports read whether a record met its SLA target from dk_report_verdicts (one row per record
and target, joined by primary key) instead of a subquery on dk_sla_clocks per row, and
rollups count it (ADR 0012, session 17). The table is filled here from the clocks a database
already has, by the rule of engine.storage.tables.sla_verdict: met or missed once stopped,
missed while running past the recorded breach, none otherwise. Written out in full (not
imported) so that later changes to the metadata never rewrite history; test_storage_migrations
checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

BACKFILL = """
INSERT INTO dk_report_verdicts (form, record_id, target, verdict)
SELECT form, record_id, target,
       MAX(CASE WHEN status IN ('met', 'missed') THEN status
                WHEN status = 'running' AND breached_at IS NOT NULL THEN 'missed' END)
FROM dk_sla_clocks
GROUP BY form, record_id, target
HAVING MAX(CASE WHEN status IN ('met', 'missed') THEN status
                WHEN status = 'running' AND breached_at IS NOT NULL THEN 'missed' END) IS NOT NULL
"""
"""One row per decided (form, record, target), as the SLA service's announcements leave them (an
undecided target has no row); two policies naming one target on a form (which a dataset's
`sla:` field refuses) keep the worse verdict."""


def upgrade() -> None:
    op.create_table(
        "dk_report_verdicts",
        sa.Column("form", sa.String(length=100), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("verdict", sa.String(length=10), nullable=True),
        sa.CheckConstraint("verdict IN ('met', 'missed')", name="ck_dk_report_verdicts_verdict_valid"),
        sa.PrimaryKeyConstraint("form", "record_id", "target", name=op.f("pk_dk_report_verdicts")),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("dk_report_verdicts")
