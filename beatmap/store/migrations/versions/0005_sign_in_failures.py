"""Failed sign-ins are counted per typed name and client, so a lockout holds for one client only.

Five wrong passwords locked an officer's account everywhere, for anyone who
knew the name; and unknown names never locked, which told an outsider which
names exist.  The new table ``sign_in_failures`` counts failures per keyed hash
of the typed name (known or not) and per client address.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("name_key", sa.Text(), primary_key=True),
        sa.Column("client", sa.Text(), primary_key=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
