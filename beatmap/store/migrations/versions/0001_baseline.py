"""Baseline: the schema of beatmap before migrations (commit 9107492).

A store made by that version has these tables without an ``alembic_version``
table; ``beatmap db upgrade`` stamps it at this revision and moves on from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_AUDIT_GUARD = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION beatmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION beatmap_audit_append_only()",
    ],
}


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meta", sa.Column("key", sa.String(64), primary_key=True), sa.Column("value", sa.Text, nullable=False)
    )
    op.create_table(
        "beats",
        sa.Column("beat_id", sa.String(64), primary_key=True),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("geom", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "blocks",
        sa.Column("block_id", sa.String(128), primary_key=True),
        sa.Column("beat_id", sa.String(64), sa.ForeignKey("beats.beat_id"), nullable=False, index=True),
        sa.Column("area_m2", sa.Float, nullable=False),
        sa.Column("geom", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "import_batches",
        sa.Column("batch_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("imported_at", _utc(), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
    )
    op.create_table(
        "events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(32), nullable=False, unique=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), nullable=False),
        sa.Column("row_number", sa.Integer, nullable=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("source_id", sa.String(128)),
        sa.Column("occurred_at", _utc(), nullable=False, index=True),
        sa.Column("ended_at", _utc()),
        sa.Column("duration_min", sa.Float),
        sa.Column("kind", sa.String(32), nullable=False, index=True),
        sa.Column("subtype", sa.String(128)),
        sa.Column("officer_id", sa.String(64)),
        sa.Column("unit_id", sa.String(64)),
        sa.Column("self_initiated", sa.Boolean),
        sa.Column("notes", sa.Text),
        sa.Column("reported_beat", sa.String(64)),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("block_id", sa.String(128), index=True),
        sa.Column("beat_id", sa.String(64), index=True),
        sa.Column("snapped", sa.Boolean, nullable=False),
        sa.Column("distance_m", sa.Float),
    )
    op.create_table(
        "rejects",
        sa.Column("reject_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fingerprint", sa.String(32), nullable=False, unique=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("file_name", sa.Text, nullable=False),
        sa.Column("row_number", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw", sa.Text, nullable=False),
    )
    op.create_table(
        "area_notes",
        sa.Column("note_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("feature", sa.Integer),
        sa.Column("feature_id", sa.String(128)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", _utc(), nullable=False, index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False, index=True),
        sa.Column("target", sa.Text),
        sa.Column("details", sa.Text, nullable=False),
    )
    for statement in _AUDIT_GUARD[op.get_bind().dialect.name]:
        op.execute(statement)
    op.create_table(
        "users",
        sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("email", sa.String(256), unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("all_beats", sa.Boolean, nullable=False),
        sa.Column("officer_id", sa.String(64)),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("failed_attempts", sa.Integer, nullable=False),
        sa.Column("locked_until", _utc()),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("last_sign_in", _utc()),
    )
    op.create_table(
        "user_beats",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.user_id"), primary_key=True),
        sa.Column("beat_id", sa.String(64), primary_key=True),
    )
    op.create_table(
        "streets",
        sa.Column("segment_id", sa.Integer, primary_key=True),
        sa.Column("source_id", sa.String(128)),
        sa.Column("name", sa.String(256)),
        sa.Column("min_x", sa.Float, nullable=False),
        sa.Column("min_y", sa.Float, nullable=False),
        sa.Column("max_x", sa.Float, nullable=False),
        sa.Column("max_y", sa.Float, nullable=False),
        sa.Column("geom", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the baseline is the oldest schema; restore a backup instead")
