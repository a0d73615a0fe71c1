"""The audit log refuses an insert over an existing entry, and each entry carries a chained hash.

- A BEFORE INSERT trigger refuses an ``audit_id`` that exists: SQLite's
  ``REPLACE`` and ``INSERT OR REPLACE`` remove the old row without firing the
  DELETE trigger (``recursive_triggers`` is off), and ``ON CONFLICT DO UPDATE``
  would rewrite it.  A trigger, not a per-connection pragma, so every client
  of the database file is held to it.
- ``audit_log.entry_hash``: SHA-256 over the previous entry's hash and the
  entry's time, actor, action, target and details.  Existing entries are
  chained here, oldest first; ``beatmap audit verify`` reports the first entry
  that no longer matches.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of what this revision runs (beatmap.store.triggers holds the newest).
_NO_REPLACE = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_replace BEFORE INSERT ON audit_log "
        "WHEN NEW.audit_id IS NOT NULL AND EXISTS (SELECT 1 FROM audit_log WHERE audit_id = NEW.audit_id) "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: that audit_id exists'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION beatmap_audit_no_replace() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF EXISTS (SELECT 1 FROM audit_log WHERE audit_id = NEW.audit_id) THEN "
        "RAISE EXCEPTION 'the audit log is append-only: that audit_id exists'; END IF; RETURN NEW; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION beatmap_audit_no_replace()",
    ],
}
# The UPDATE guard is lifted for the one backfill of the hashes, inside this revision's transaction.
_LIFT_UPDATE_GUARD = {
    "sqlite": ["DROP TRIGGER audit_log_no_update"],
    "postgresql": ["DROP TRIGGER audit_log_append_only ON audit_log"],
}
_RESTORE_UPDATE_GUARD = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    ],
    "postgresql": [
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION beatmap_audit_append_only()"
    ],
}


def _entry_hash(previous: str | None, at: datetime, actor: str, action: str, target: str | None, details: str) -> str:
    when = (at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)).isoformat(timespec="microseconds")
    payload = json.dumps(
        [previous or "", when, actor, action, target, details], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    with op.batch_alter_table("audit_log") as batch:  # an ALTER TABLE ADD COLUMN: the table and triggers stay
        batch.add_column(sa.Column("entry_hash", sa.Text(), nullable=True))
    log = sa.table(
        "audit_log",
        sa.column("audit_id", sa.Integer),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("actor", sa.Text),
        sa.column("action", sa.Text),
        sa.column("target", sa.Text),
        sa.column("details", sa.Text),
        sa.column("entry_hash", sa.Text),
    )
    rows = bind.execute(
        sa.select(log.c.audit_id, log.c.at, log.c.actor, log.c.action, log.c.target, log.c.details).order_by(
            log.c.audit_id
        )
    ).all()
    if rows:
        for statement in _LIFT_UPDATE_GUARD[dialect]:
            op.execute(statement)
        previous = None
        for audit_id, at, actor, action, target, details in rows:
            previous = _entry_hash(previous, at, actor, action, target, details)
            bind.execute(sa.update(log).where(log.c.audit_id == audit_id).values(entry_hash=previous))
        for statement in _RESTORE_UPDATE_GUARD[dialect]:
            op.execute(statement)
    for statement in _NO_REPLACE[dialect]:
        op.execute(statement)


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
