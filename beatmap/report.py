"""Coverage tables from the store, and writing them to files.

The glue between :mod:`beatmap.store` and :mod:`beatmap.metrics` that the
command line and the dashboard share.
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine

from beatmap import schema as S
from beatmap import store
from beatmap.errors import InputError, StoreError
from beatmap.metrics import (
    Window,
    analysed_blocks,
    coverage_by_beat,
    coverage_by_block,
    default_window,
    local_activity,
)
from beatmap.settings import Settings

DEFAULT_CACHE = Path("data/cache")
#: Changes when the cached activity frame's layout changes (f2: rows sorted by day), so old files are rebuilt.
_ACTIVITY_FORMAT = "f2"


def window_from_store(
    engine: Engine, *, settings: Settings, start: date | None = None, end: date | None = None
) -> Window:
    """The window asked for, defaulting to the last ``window_days`` days of data in the store (from its first day)."""
    span = store.activity_span(engine)
    return default_window(span[1] if span else None, settings=settings, start=start, end=end,
                          first_activity=span[0] if span else None)


def read_activity(engine: Engine, *, timezone: str, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Every event on a block as a :func:`beatmap.metrics.local_activity` frame, sorted by day.

    The frame is kept as a Parquet file per store identity and version in
    ``cache_dir`` (default ``$BEATMAP_CACHE`` or ``data/cache``), so a dashboard
    start after an import reads a few compact columns instead of every event
    row.  The store stays the only source of truth: a missing, old or damaged
    cache file is rebuilt.  A file is written under a temporary name and then
    renamed, so a reader never sees half of one.
    """
    folder = Path(cache_dir or os.environ.get("BEATMAP_CACHE") or DEFAULT_CACHE)
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":  # the version and the rows from one snapshot
            conn.execution_options(isolation_level="REPEATABLE READ")
        identity = store.get_meta(conn, "store_id") or "none"
        version = int(store.get_meta(conn, "version") or 0)
        key = hashlib.sha1(f"{identity}|{timezone}".encode()).hexdigest()[:12]
        path = folder / f"activity-{key}-v{version}-{_ACTIVITY_FORMAT}.parquet"
        cached = _read_cached(path)
        if cached is not None:
            return cached
        rows = conn.exec_driver_sql(
            "SELECT occurred_at, kind, officer_id, block_id FROM events WHERE block_id IS NOT NULL").all()
    events = pd.DataFrame(rows, columns=["occurred_at", S.KIND, S.OFFICER_ID, S.BLOCK_ID])
    # SQLite hands back the stored UTC text; PostgreSQL aware datetimes.
    events["occurred_at"] = pd.to_datetime(events["occurred_at"], utc=True, format="ISO8601")
    # Sorted by day, so a window is a slice (beatmap.metrics.window_rows).
    activity = local_activity(events, timezone=timezone).sort_values("day", kind="stable").reset_index(drop=True)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        activity.to_parquet(partial)
        os.replace(partial, path)
        for old in folder.glob(f"activity-{key}-v*.parquet"):  # older versions and formats
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only disk only costs speed: the frame was built from the store
    return activity


def _read_cached(path: Path) -> pd.DataFrame | None:
    """The cached frame at ``path``, or None when it is missing or cannot be read (then it is rebuilt)."""
    try:
        cached = pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException):
        return None
    cached["day"] = cached["day"].astype("datetime64[s]")  # Parquet keeps milliseconds at the finest
    return cached


def block_coverage(
    engine: Engine,
    *,
    window: Window,
    settings: Settings,
    beat_id: str | None = None,
) -> gpd.GeoDataFrame:
    """Coverage of every block (of one beat, or all) over ``window``, with geometry in the analysis CRS.

    Raises
    ------
    StoreError
        When no areas are loaded; InputError when ``beat_id`` is unknown.
    """
    blocks = store.read_blocks(engine, beat_id=beat_id)
    if blocks.empty:
        if beat_id is not None and not store.read_blocks(engine).empty:
            known = ", ".join(store.read_beats(engine)[S.BEAT_ID].head(20))
            raise InputError(f"--beat {beat_id!r}: no such beat; beats include {known}.")
        raise StoreError("no beats or blocks in the store yet; load them with `beatmap areas` "
                         "or build the demo city with `beatmap demo`.")
    blocks = analysed_blocks(blocks, settings)
    first, after = window.utc_bounds()
    events = store.read_events(engine, start=first, end=after, beat_id=beat_id,
                               columns=("occurred_at", S.KIND, S.OFFICER_ID, S.BLOCK_ID))
    cov = coverage_by_block(blocks, events, window=window, settings=settings)
    return gpd.GeoDataFrame(cov, geometry=blocks.geometry, crs=blocks.crs)


def beat_coverage(engine: Engine, *, window: Window, settings: Settings) -> gpd.GeoDataFrame:
    """Per-beat summary over ``window``, with beat geometry in the analysis CRS.

    An excluded beat (``settings.excluded_beats``) has ``analysed`` False and no figures.
    """
    beats = store.read_beats(engine)
    summary = coverage_by_beat(block_coverage(engine, window=window, settings=settings))
    merged = beats[[S.BEAT_ID, "geometry"]].merge(summary, on=S.BEAT_ID, how="left")
    merged["analysed"] = ~merged[S.BEAT_ID].isin(list(settings.excluded_beats))
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=beats.crs)
