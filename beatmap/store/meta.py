"""The store's own facts: its identity, its change counter and the CRS of its geometries.

Every dashboard cache is keyed on (identity, version): the identity is a UUID
made with the store, so a store re-created at the same path never serves the
old one's cached views; the version grows with every change.
"""

from __future__ import annotations

import uuid

from pyproj import CRS
from sqlalchemy import Engine, Integer, Text, cast, insert, select, update
from sqlalchemy.engine import Connection

from beatmap.store.bind import Bind, connection
from beatmap.store.tables import meta

STORE_ID = "store_id"
VERSION = "version"
ANALYSIS_CRS = "analysis_crs"


def get_meta(conn: Connection, key: str) -> str | None:
    """A value of the ``meta`` table, or None."""
    value: str | None = conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()
    return value


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Set a value of the ``meta`` table."""
    if get_meta(conn, key) is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def init_meta(conn: Connection) -> None:
    """Give a new store its identity and a version counter (kept when already there)."""
    if get_meta(conn, STORE_ID) is None:
        set_meta(conn, STORE_ID, str(uuid.uuid4()))
    if get_meta(conn, VERSION) is None:
        set_meta(conn, VERSION, "0")


def bump_version(conn: Connection) -> None:
    """Mark the store as changed, so cached views recompute.

    One ``UPDATE … SET value = value + 1``: two writers at once each add one
    (a read, then a write, lost one of them).
    """
    conn.execute(update(meta).where(meta.c.key == VERSION).values(value=cast(cast(meta.c.value, Integer) + 1, Text)))


def store_version(engine: Engine) -> int:
    """A counter that grows with every change to the store (a cache key)."""
    with engine.connect() as conn:
        return int(get_meta(conn, VERSION) or 0)


def store_identity(engine: Engine) -> str:
    """The store's UUID, made when it was created (or when it was first migrated)."""
    with engine.connect() as conn:
        value = get_meta(conn, STORE_ID)
    if value is None:  # pragma: no cover - every store at the newest revision has one
        raise RuntimeError("the store has no identity; run `beatmap db upgrade`")
    return value


def cache_key(engine: Engine) -> tuple[str, int]:
    """``(identity, version)`` in one read: what every cached view of the store is keyed on."""
    with engine.connect() as conn:
        rows = dict(conn.execute(select(meta.c.key, meta.c.value).where(meta.c.key.in_([STORE_ID, VERSION]))).all())
    return str(rows.get(STORE_ID, "")), int(rows.get(VERSION) or 0)


def analysis_crs(bind: Bind) -> CRS | None:
    """The CRS the beats and blocks are stored in, or None before any areas are loaded."""
    with connection(bind) as conn:
        wkt = get_meta(conn, ANALYSIS_CRS)
    return CRS.from_wkt(wkt) if wkt else None
