"""GPS presence: aggregates per block and hour, ping files, device-day quality, track visits.

- ``presence``: whole seconds per block, UTC hour, unit, officer, mode (foot,
  vehicle) and purpose (enforcement, non_enforcement), per import batch, so
  an undo removes a batch's rows and sums are exact in any order;
- ``ping_files``: one row per ping file imported, keyed by its content hash;
- ``device_days``: pings, median interval, gap and silence, share outside the
  blocks and share of poor accuracy per device and local day;
- ``track_visits``: stays on foot of at least ``visit_min_minutes``.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "presence",
        sa.Column("presence_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), nullable=False),
        sa.Column("block_id", sa.Text),
        sa.Column("hour", _utc(), nullable=False),
        sa.Column("unit_id", sa.Text),
        sa.Column("officer_id", sa.Text),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("seconds", sa.BigInteger, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_presence_batch_id", "presence", ["batch_id"])
    op.create_index("ix_presence_hour", "presence", ["hour"])
    op.create_table(
        "ping_files",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), primary_key=True),
        sa.Column("content_hash", sa.Text, nullable=False, unique=True),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("used", sa.Integer, nullable=False),
        sa.Column("duplicates", sa.Integer, nullable=False),
        sa.Column("rejected", sa.Integer, nullable=False),
        sa.Column("first_ping", _utc()),
        sa.Column("last_ping", _utc()),
    )
    op.create_table(
        "device_days",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("day", sa.Text, primary_key=True),
        sa.Column("pings", sa.Integer, nullable=False),
        sa.Column("median_interval_s", sa.Float),
        sa.Column("gap_minutes", sa.Float, nullable=False),
        sa.Column("longest_silence_minutes", sa.Float, nullable=False),
        sa.Column("outside_share", sa.Float, nullable=False),
        sa.Column("poor_accuracy_share", sa.Float, nullable=False),
    )
    op.create_table(
        "track_visits",
        sa.Column("visit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("unit_id", sa.Text),
        sa.Column("officer_id", sa.Text),
        sa.Column("block_id", sa.Text, nullable=False),
        sa.Column("beat_id", sa.Text),
        sa.Column("start", _utc(), nullable=False),
        sa.Column("end", _utc(), nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("enforcement_seconds", sa.Integer, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_track_visits_batch_id", "track_visits", ["batch_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
