"""A password an administrator set is temporary: its user chooses their own at the next sign-in.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

`dk_users.password_temporary` is true from an administrator's `/admin/users` (a new user's first
password, or a reset) until the user changes it on `/account`; while it is, every page of theirs
leads to `/account` (ADR 0007). Passwords stored before this revision are the users' own or an
operator's (`docket users set-password`): false.
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: Union[str, Sequence[str], None] = "0010"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Plain ALTER TABLE, not a batch: SQLite adds a column with a constant default in place, where a
# batch would copy dk_users into a new table, which the tables referring to users refuse.
def upgrade() -> None:
    op.add_column("dk_users", sa.Column("password_temporary", sa.Boolean(), nullable=False,
                                        server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("dk_users", "password_temporary")
