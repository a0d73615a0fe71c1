"""Map features: water and parks drawn on the offline base map, under the blocks.

- ``map_features`` holds polygons (WKB in the analysis CRS) with a ``kind``
  (``water`` or ``park``) and a ``name``; they have no blocks and take no clicks.

Revision ID: 0011
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_features",
        sa.Column("feature_id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("geom", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
