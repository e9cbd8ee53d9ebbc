"""Report engine support: indexes or maintained aggregates (reports helper).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23

Written out in full (not imported from engine.storage.tables) so that later changes to the
metadata never rewrite history; test_storage_migrations checks both still agree.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
