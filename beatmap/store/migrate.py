"""Schema versions: Alembic migrations, the checks on open, and the ``beatmap db`` commands behind them.

A new store is created from :mod:`beatmap.store.tables` and stamped at the newest
revision; an existing one moves there only through ``beatmap db upgrade``.  A
store made before migrations existed (no ``alembic_version`` table) is the
baseline revision, and ``upgrade`` stamps it so before it moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import Connection

from beatmap.errors import StoreError
from beatmap.store.meta import init_meta
from beatmap.store.tables import metadata
from beatmap.store.triggers import create_audit_guard

MIGRATIONS = Path(__file__).parent / "migrations"
#: The revision of the schema beatmap had before migrations (commit 9107492).
BASELINE = "0001"
#: A PostgreSQL advisory lock key, held while a store is created or migrated (any fixed number).
_SCHEMA_LOCK = 727_001


@dataclass(frozen=True)
class Revision:
    """One migration: its id, the one before it and what it does."""

    revision: str
    down_revision: str | None
    doc: str


def config(conn: Connection | None = None) -> Config:
    """Alembic's configuration for beatmap's migrations, bound to ``conn`` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


@cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def head() -> str:
    """The newest revision this beatmap knows."""
    value = _script().get_current_head()
    assert value is not None
    return value


def history() -> list[Revision]:
    """Every revision, oldest first."""
    revisions = list(_script().walk_revisions())
    return [
        Revision(r.revision, r.down_revision if isinstance(r.down_revision, str) else None, (r.doc or "").strip())
        for r in reversed(revisions)
    ]


def lock(conn: Connection) -> None:
    """Hold the schema lock for the rest of ``conn``'s transaction (PostgreSQL; SQLite's BEGIN IMMEDIATE is one)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})


def is_empty(conn: Connection) -> bool:
    """True when the database holds no table at all."""
    return not inspect(conn).get_table_names()


def create_schema(conn: Connection) -> None:
    """Create a new store at the newest revision inside ``conn``'s transaction (nothing if another process did)."""
    lock(conn)
    if not is_empty(conn):
        return
    metadata.create_all(conn)
    create_audit_guard(conn)
    init_meta(conn)
    MigrationContext.configure(conn).stamp(_script(), "heads")


def current(conn: Connection) -> str | None:
    """The store's revision: None for an empty database, the baseline for a store made before migrations."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is None and inspect(conn).has_table("meta"):
        return BASELINE
    return revision


def _is_stamped(conn: Connection) -> bool:
    return MigrationContext.configure(conn).get_current_revision() is not None


def require_current(conn: Connection) -> None:
    """Refuse a store whose schema is not the newest one, naming the command that fixes it."""
    revision = current(conn)
    newest = head()
    if revision == newest:
        return
    if revision is None:
        raise StoreError(
            "the database is empty: no store was created there yet; run `beatmap db upgrade` "
            "to create one, or load areas with `beatmap areas`"
        )
    known = {r.revision for r in history()}
    if revision not in known:
        raise StoreError(
            f"the store's schema is at revision {revision}, which this beatmap does not know "
            "(it was written by a newer version): update beatmap"
        )
    raise StoreError(
        f"the store's schema is at revision {revision}, behind this beatmap's {newest}: "
        "run `beatmap db upgrade` (back up first with `beatmap db backup FILE`)"
    )


def upgrade(engine: Engine, revision: str = "heads") -> tuple[str | None, str]:
    """Migrate the store to ``revision`` (default the newest) in one transaction; return (before, after).

    An empty database is created at the newest revision.
    """
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # Rebuilding a table with foreign keys on would cascade; the check runs after the migration instead.
            _driver(conn).execute("PRAGMA foreign_keys=OFF")  # outside any transaction
        conn.execution_options(beatmap_write=True)
        with conn.begin():
            lock(conn)
            before = current(conn)
            if before is None:
                create_schema(conn)
            else:
                if not _is_stamped(conn):
                    MigrationContext.configure(conn).stamp(_script(), BASELINE)
                command.upgrade(config(conn), revision)
            after = current(conn)
            if engine.dialect.name == "sqlite":
                problems = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if problems:
                    raise StoreError(
                        f"the migration left {len(problems)} rows whose references are broken; nothing was changed"
                    )
        if engine.dialect.name == "sqlite":
            _driver(conn).execute("PRAGMA foreign_keys=ON")
    assert after is not None
    return before, after


def _driver(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (for a statement SQLite must see outside any transaction)."""
    driver = conn.connection.driver_connection
    assert driver is not None
    return driver
