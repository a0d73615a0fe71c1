"""Where a rejected row is: its point and the beat it falls in, so rejects can be shown by beat.

- ``rejects`` gets ``lat``, ``lon`` (the row's point in WGS84, when its
  coordinates could be read), ``reported_beat`` (the beat the row itself names)
  and ``beat_id`` (the beat of its point among the loaded blocks, else the beat
  it reports; none when it has neither), indexed.
- Rows rejected before this revision have none of these: they are shown only
  to supervisors of all beats, like any rejected row with no location.

Revision ID: 0010
Revises: 0009 (after the ping archive; main had it on 0008 before 0009 was merged)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rejects") as batch:
        batch.add_column(sa.Column("lat", sa.Float))
        batch.add_column(sa.Column("lon", sa.Float))
        batch.add_column(sa.Column("reported_beat", sa.Text))
        batch.add_column(sa.Column("beat_id", sa.Text))
    op.create_index("ix_rejects_beat_id", "rejects", ["beat_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
