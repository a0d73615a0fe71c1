"""Alembic's entry point: runs beatmap's migrations on the connection :mod:`beatmap.store.migrate` hands it."""

from __future__ import annotations

from alembic import context

from beatmap.store.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `beatmap db upgrade`, which opens the store")

# Batch mode: SQLite changes a table's columns by rebuilding it, so migrations say so once for both databases.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
