"""GPS ping archive: each ping file's archive of raw pings, kept for ``retain_pings_days``.

- ``ping_files`` gets ``archive``: the file name, in the store's ping archive
  folder, of the Parquet archive of the batch's pings (NULL once the retention
  sweep has deleted it: only the aggregates remain).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ping_files") as batch:
        batch.add_column(sa.Column("archive", sa.Text))


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
