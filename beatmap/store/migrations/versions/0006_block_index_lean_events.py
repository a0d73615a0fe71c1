"""The saved block index, and only the event indexes that queries use.

- ``block_index``: the block index of the loaded areas (see
  :mod:`beatmap.index`), keyed by the areas' identity, as NumPy ``.npz`` bytes;
  built when areas load, rebuilt when missing.
- ``events.kind`` and ``events.block_id`` lose their indexes: no query selects
  events by kind or by block (the dashboard reads every located event once),
  and SQLite kept them up to date row by row on every import.
- ``events.batch_id`` gets one: the dashboard's cache, kept in a part per
  batch, rebuilds a part by reading that batch's rows.  Batch ids grow with
  the rows, so SQLite appends to this index instead of searching it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "block_index",
        sa.Column("areas_key", sa.Text, primary_key=True),
        sa.Column("format", sa.Text, nullable=False),
        sa.Column("edge_tolerance_m", sa.Float, nullable=False),
        sa.Column("snap_m", sa.Float, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.drop_index("ix_events_kind", table_name="events")
    op.drop_index("ix_events_block_id", table_name="events")
    op.create_index("ix_events_batch_id", "events", ["batch_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
