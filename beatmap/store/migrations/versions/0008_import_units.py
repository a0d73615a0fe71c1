"""Imports as units: who imported a batch, its file's hash, superseded rejects, undo, and skipped duplicates.

- ``import_batches`` gets ``imported_by``, ``content_hash``, ``superseded_by``,
  ``undone_at`` and ``undone_by``.
- ``rejects.fingerprint`` is no longer unique: each batch keeps its own rejected
  rows (a corrected import's rejects used to be dropped as "already stored"
  under the first import, with the first import's reasons); it is indexed, and
  so is ``rejects.batch_id``.
- ``skipped_duplicates`` records which stored events a batch skipped as
  duplicates, so undoing the batch that added them never loses them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("import_batches") as batch:
        batch.add_column(sa.Column("imported_by", sa.Text))
        batch.add_column(sa.Column("content_hash", sa.Text))
        batch.add_column(sa.Column("superseded_by", sa.Integer))
        batch.add_column(sa.Column("undone_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("undone_by", sa.Text))
    unique = [c for c in sa.inspect(bind).get_unique_constraints("rejects") if c["column_names"] == ["fingerprint"]]
    if bind.dialect.name == "sqlite":
        # SQLite's constraint is unnamed: name it through a convention, so the rebuilt table goes without it.
        with op.batch_alter_table(
            "rejects",
            recreate="always",
            table_kwargs={"sqlite_autoincrement": True},
            naming_convention={"uq": "uq_%(table_name)s_%(column_0_name)s"},
        ) as batch:
            if unique:
                batch.drop_constraint("uq_rejects_fingerprint", type_="unique")
    else:
        for constraint in unique:
            op.drop_constraint(str(constraint["name"]), "rejects", type_="unique")
    op.create_index("ix_rejects_fingerprint", "rejects", ["fingerprint"])
    op.create_index("ix_rejects_batch_id", "rejects", ["batch_id"])
    op.create_table(
        "skipped_duplicates",
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("import_batches.batch_id"), primary_key=True),
        sa.Column("event_id", sa.Integer, sa.ForeignKey("events.event_id"), primary_key=True),
    )
    op.create_index("ix_skipped_duplicates_event_id", "skipped_duplicates", ["event_id"])


def downgrade() -> None:
    raise NotImplementedError("restore the backup taken before `beatmap db upgrade`")
