"""Presence devices: which devices were credited non-enforcement time on a block in a local week.

- ``presence_devices`` (batch, block, local week (its Monday), device), written with each ping batch's presence
  and removed with it; the public map's three-device rule counts distinct devices per block from it.
  Batches imported before this revision have no rows until their presence is computed again.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "presence_devices",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), primary_key=True),
        sa.Column("block_id", sa.Text, primary_key=True),
        sa.Column("week", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
