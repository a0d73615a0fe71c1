"""The dashboard's activity frame, cached on disk in parts.

Every located event as a :func:`beatmap.metrics.local_activity` frame is what
the dashboard and the coverage counts read.  It is kept in ``cache_dir``
(default ``$BEATMAP_CACHE`` or ``data/cache``), in a folder per store
identity and time zone:

- one Parquet part per import batch, named by the batch and by the areas load
  its assignments belong to (``part-<batch>-a<areas batch>``): an import
  writes its own part from the rows it has just written; loading areas again
  makes every such part old;
- one part per batch of visits logged in the app (``part-<batch>-v<store
  version>``): those rows can be edited and deleted, so their parts are
  rebuilt whenever the store changes; they are small;
- the whole frame, assembled from the parts, per store version.

A part that is missing, old or unreadable is rebuilt from the store by
reading only its batch's rows, column by column; nothing reads the whole
store unless every part is missing.  Files are written under a temporary
name and renamed, so two imports at once never lose each other's part and a
reader never sees half a file.  The store stays the only source of truth.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pandas.api.types import union_categoricals
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import Connection

from beatmap import schema as S
from beatmap import store
from beatmap.metrics import local_activity

DEFAULT_CACHE = Path("data/cache")
#: Changes when the layout of the cached frames changes, so old files are rebuilt.
CACHE_FORMAT = "f3"
#: Batches whose rows never change after their import (only loading areas reassigns them).
_FIXED = "activity"
#: Batches that hold no events.
_NO_EVENTS = ("areas", "streets")
_PART = re.compile(r"part-(\d+)-([av])(\d+)\.parquet$")
_COLUMNS = ("occurred_at", S.KIND, S.OFFICER_ID, S.BLOCK_ID)


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$BEATMAP_CACHE``, else ``data/cache``."""
    return Path(cache_dir or os.environ.get("BEATMAP_CACHE") or DEFAULT_CACHE)


def read_activity(engine: Engine, *, timezone: str, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Every event on a block as a :func:`beatmap.metrics.local_activity` frame, sorted by day.

    Read from the cache when it holds this store version, else assembled
    from the parts (rebuilding the missing or old ones from the store) and
    kept for the next reader.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # the version and the rows from one snapshot
            conn.execution_options(isolation_level="REPEATABLE READ")
        identity = store.get_meta(conn, "store_id") or "none"
        version = int(store.get_meta(conn, "version") or 0)
        folder = _store_folder(cache_folder(cache_dir), identity, timezone)
        whole = folder / f"activity-v{version}.parquet"
        cached = _read(whole)
        if cached is not None:
            return cached
        areas = areas_batch(conn)
        wanted = conn.execute(
            select(store.batches.c.batch_id, store.batches.c.what)
            .where(store.batches.c.what.not_in(_NO_EVENTS))
            .order_by(store.batches.c.batch_id)
        ).all()
        parts = []
        for batch_id, what in wanted:
            path = folder / _part_name(batch_id, areas=areas if what == _FIXED else None, version=version)
            part = _read(path)
            if part is None:
                part = _part_from_store(conn, batch_id, timezone=timezone)
                _write(part, path)
            parts.append(part)
    activity = _assemble(parts)
    _write(activity, whole)
    _drop_old(folder, version=version, areas=areas)
    return activity


def add_activity_part(
    engine: Engine,
    batch_id: int,
    events: pd.DataFrame,
    *,
    timezone: str,
    areas_batch: int,
    cache_dir: str | Path | None = None,
) -> None:
    """Write the part of an import batch from the rows it has just written (nothing is read back).

    Parameters
    ----------
    engine : Engine
        The store the batch was written to.
    batch_id : int
    events : DataFrame
        The batch's rows in the order written: ``occurred_at`` (aware),
        ``kind``, ``officer_id`` and ``block_id`` (missing when on no block).
    timezone : str
    areas_batch : int
        The areas load the rows were assigned to (:func:`areas_batch`, read
        in the import's transaction).
    """
    folder = _store_folder(cache_folder(cache_dir), store.store_identity(engine), timezone)
    part = local_activity(events[list(_COLUMNS)].reset_index(drop=True), timezone=timezone).reset_index(drop=True)
    _write(part, folder / _part_name(batch_id, areas=areas_batch, version=None))


def areas_batch(conn: Connection) -> int:
    """The batch id of the areas load the stored assignments belong to (0 before any)."""
    b = store.batches
    return int(conn.execute(select(func.max(b.c.batch_id)).where(b.c.what == "areas")).scalar_one() or 0)


def _store_folder(root: Path, identity: str, timezone: str) -> Path:
    key = hashlib.sha1(f"{identity}|{timezone}".encode()).hexdigest()[:12]
    return root / f"activity-{key}-{CACHE_FORMAT}"


def _part_name(batch_id: int, *, areas: int | None, version: int | None) -> str:
    return f"part-{batch_id}-a{areas}.parquet" if areas is not None else f"part-{batch_id}-v{version}.parquet"


def _part_from_store(conn: Connection, batch_id: int, *, timezone: str) -> pd.DataFrame:
    """One batch's located rows, read as columns (the batch index finds them)."""
    query = text(
        "SELECT occurred_at, kind, officer_id, block_id FROM events "
        "WHERE batch_id = :batch AND block_id IS NOT NULL ORDER BY event_id"
    )
    frame = pd.read_sql(query, conn, params={"batch": batch_id})
    # SQLite hands back the stored UTC text; PostgreSQL aware datetimes.
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return local_activity(frame, timezone=timezone).reset_index(drop=True)


def _assemble(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The parts in batch order as one frame sorted by day (so a window is a slice: ``window_rows``)."""
    if not parts:
        empty = pd.DataFrame({S.BLOCK_ID: [], S.KIND: [], S.OFFICER_ID: [], "occurred_at": []})
        empty["occurred_at"] = pd.to_datetime(empty["occurred_at"], utc=True)
        return local_activity(empty, timezone="UTC").reset_index(drop=True)
    frame = pd.concat(parts, ignore_index=True)
    for name in (S.BLOCK_ID, S.OFFICER_ID):  # categories differ between parts (values, and text dtypes)
        frame[name] = union_categoricals([_with_object_categories(p[name]) for p in parts], ignore_order=True)
    frame[S.KIND] = pd.Categorical(frame[S.KIND], categories=list(S.KINDS))
    return frame.sort_values("day", kind="stable").reset_index(drop=True)


def _read(path: Path) -> pd.DataFrame | None:
    """A cached frame, or None when it is missing or cannot be read (it is then rebuilt)."""
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException):
        return None
    frame["day"] = frame["day"].astype("datetime64[s]")  # Parquet keeps milliseconds at the finest
    for name in (S.BLOCK_ID, S.OFFICER_ID):  # Parquet gives text categories another dtype than a fresh frame's
        frame[name] = _with_object_categories(frame[name])
    return frame


def _with_object_categories(column: pd.Series) -> pd.Categorical:
    if not isinstance(column.dtype, pd.CategoricalDtype):  # Parquet drops the categories of an all-missing column
        column = column.astype(object).astype("category")
    return pd.Categorical.from_codes(column.cat.codes, categories=pd.Index(column.cat.categories, dtype=object))


def _write(frame: pd.DataFrame, path: Path) -> None:
    """Write under a temporary name, then rename: readers and other writers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        frame.to_parquet(partial)
        os.replace(partial, path)
    except OSError:
        pass  # a read-only disk only costs speed: the frame was built from the store


def _drop_old(folder: Path, *, version: int, areas: int) -> None:
    """Remove whole frames of older versions and parts of older areas loads or versions (never newer ones)."""
    for path in folder.glob("*.parquet"):
        old = False
        if path.name.startswith("activity-v"):
            old = int(path.name.removeprefix("activity-v").removesuffix(".parquet") or 0) < version
        elif (match := _PART.match(path.name)) is not None:
            old = int(match.group(3)) < (areas if match.group(2) == "a" else version)
        if old:
            path.unlink(missing_ok=True)
