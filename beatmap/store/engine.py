"""Opening the store: its URL, the connection settings of each database, and write transactions.

SQLite runs in WAL mode so the dashboard reads while an import writes; every
write transaction starts with ``BEGIN IMMEDIATE`` (a transaction that reads and
then writes would otherwise get ``SQLITE_BUSY`` at once instead of waiting).
PostgreSQL needs nothing special.  Any other database is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from beatmap.errors import StoreError
from beatmap.store import migrate
from beatmap.store.triggers import check_dialect

DEFAULT_DB = Path("data/beatmap.db")
ENV_VAR = "BEATMAP_DB"
#: How long a writer waits for another writer on SQLite, in milliseconds (an import holds the lock while it
#: writes: about 5 s for 250,000 rows).
SQLITE_BUSY_MS = 60_000
_WRITE = "beatmap_write"


def store_url(db: str | os.PathLike[str] | None = None) -> str:
    """The SQLAlchemy URL of the store: ``db``, else ``$BEATMAP_DB``, else ``data/beatmap.db``.

    A plain file path means a SQLite file.
    """
    value = str(db) if db is not None else os.environ.get(ENV_VAR) or str(DEFAULT_DB)
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, or None for another database."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def connect(db: str | os.PathLike[str] | None = None) -> Engine:
    """An engine on the store's database with beatmap's connection settings, without checking its schema."""
    url = store_url(db)
    try:
        check_dialect(make_url(url).get_backend_name())
        # SQLite: no pooled connections, so a store deleted and made again at the same path is the one read.
        engine = create_engine(url, poolclass=NullPool) if url.startswith("sqlite") else create_engine(url)
    except ArgumentError as exc:
        raise StoreError(
            f"{url!r} is not a database URL; give a file path or e.g. postgresql+psycopg://host/db"
        ) from exc
    except ModuleNotFoundError as exc:
        raise StoreError(f"cannot open {safe_url(url)}: its database driver is not installed ({exc.name})") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_store(db: str | os.PathLike[str] | None = None, *, create: bool = True) -> Engine:
    """Open the store; with ``create``, make a new one where the database is empty.

    A new store is created at the newest schema revision.  An existing store must
    be at that revision: one made by an older beatmap is refused with the command
    that upgrades it (nothing migrates on open).

    Raises
    ------
    StoreError
        When the URL is malformed, the database cannot be reached or is not
        SQLite or PostgreSQL, the store's schema is behind or ahead of this
        beatmap, or (without ``create``) there is no store.
    """
    url = store_url(db)
    path = sqlite_path(url)
    missing = StoreError(
        f"no store at {path or safe_url(url)}; load data with `beatmap areas` and `beatmap import`, "
        "or build the demo city with `beatmap demo`."
    )
    if path is not None:
        if not create and not path.exists():
            raise missing
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = connect(url)
    try:
        with engine.connect() as conn:
            empty = migrate.is_empty(conn)
        if empty and not create:
            raise missing
        if empty:
            with transaction(engine) as conn:
                migrate.create_schema(conn)
        with engine.connect() as conn:
            migrate.require_current(conn)
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the store at {safe_url(url)}: {str(exc.orig).strip()}") from exc
    except StoreError:
        engine.dispose()
        raise
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling is off, so that BEGIN (deferred or immediate) is ours to emit.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")


def safe_url(url: str) -> str:
    """A URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: all or nothing; driver errors become :class:`StoreError`.

    On SQLite it begins ``IMMEDIATE``: it waits for any other writer up front, so
    what it reads (a duplicate check, a counter) is still true when it writes.
    """
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn
    except SQLAlchemyError as exc:
        raise StoreError(
            f"the store refused the change, nothing was written: {exc.__class__.__name__}: {str(exc).splitlines()[0]}"
        ) from exc
