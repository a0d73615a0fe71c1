"""One text policy on both databases, ids never reused, one account per officer, a store identity.

- Every text column is TEXT (PostgreSQL enforced VARCHAR limits and SQLite did
  not, so a long subtype imported on one and aborted the import on the other);
  lengths are now checked by beatmap itself, the same way everywhere.
- SQLite tables with an integer id get AUTOINCREMENT, so a deleted newest row's
  id is never handed out again (an audit entry names its target by id).
- ``users.officer_id`` is unique: two accounts sharing one could edit each
  other's visits.
- ``meta`` gets the store's identity (a UUID) and its version counter.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TABLES = (
    "meta",
    "beats",
    "blocks",
    "import_batches",
    "events",
    "rejects",
    "area_notes",
    "audit_log",
    "users",
    "user_beats",
    "streets",
)
_AUTOINCREMENT = ("import_batches", "events", "rejects", "area_notes", "audit_log", "users")
_SQLITE_AUDIT_GUARD = (
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)


def upgrade() -> None:
    bind = op.get_bind()
    shared = (
        bind.execute(
            sa.text("SELECT officer_id FROM users WHERE officer_id IS NOT NULL GROUP BY officer_id HAVING COUNT(*) > 1")
        )
        .scalars()
        .all()
    )
    if shared:
        raise RuntimeError(
            f"accounts share officer ids {', '.join(sorted(shared))}: give each account its own officer id with "
            "`beatmap users` (or clear it), then run `beatmap db upgrade` again; nothing was changed"
        )
    sqlite = bind.dialect.name == "sqlite"
    inspector = sa.inspect(bind)
    for table in _TABLES:
        columns = [
            c
            for c in inspector.get_columns(table)
            if isinstance(c["type"], sa.String) and not isinstance(c["type"], sa.Text)
        ]
        kwargs = {"sqlite_autoincrement": True} if table in _AUTOINCREMENT else {}
        if not columns and not (sqlite and kwargs) and table != "users":
            continue
        with op.batch_alter_table(
            table, recreate="always" if sqlite and kwargs else "auto", table_kwargs=kwargs
        ) as batch:
            for column in columns:
                batch.alter_column(
                    column["name"], type_=sa.Text(), existing_type=column["type"], existing_nullable=column["nullable"]
                )
            if table == "users":
                batch.create_unique_constraint("uq_users_officer_id", ["officer_id"])
    if sqlite:
        # Rebuilding audit_log dropped its triggers with the old table.
        for statement in _SQLITE_AUDIT_GUARD:
            op.execute(statement)
    meta = sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text))
    present = set(bind.execute(sa.select(meta.c.key)).scalars())
    defaults = {"store_id": str(uuid.uuid4()), "version": "0"}
    rows = [{"key": k, "value": v} for k, v in defaults.items() if k not in present]
    if rows:
        op.bulk_insert(meta, rows)


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
