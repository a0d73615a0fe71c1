"""Coverage tables from the store, and writing them to files.

The glue between :mod:`beatmap.store` and :mod:`beatmap.metrics` that the
command line and the dashboard share.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine

from beatmap import activity_cache, store
from beatmap import schema as S
from beatmap.errors import InputError, StoreError
from beatmap.exclusions import ANALYSED, NOT_ANALYSED, left_out, with_not_analysed
from beatmap.metrics import (
    Window,
    analysed_blocks,
    coverage_by_beat,
    coverage_by_block,
    default_window,
    unmatched_track_visits,
)
from beatmap.settings import Settings
from beatmap.store import presence as presence_store

#: A beat whose usable GPS hours (hours with presence credited on its blocks) are below this share of the window's
#: hours has poor GPS coverage: an ``unvisited`` block there says it may be missing data.
GPS_POOR_SHARE = 0.5

#: GPS presence columns of the block coverage: (column, purpose, mode or None for any mode).
PRESENCE_MINUTES = (
    ("presence_minutes", "non_enforcement", "foot"),
    ("vehicle_minutes", "non_enforcement", "vehicle"),
    ("enforcement_minutes", "enforcement", None),
)


#: Events read to judge the last day of recorded activity (a few weeks of a large city, years of a small one).
RECENT_EVENTS = 20_000


def window_from_store(
    engine: Engine, *, settings: Settings, start: date | None = None, end: date | None = None
) -> Window:
    """The window asked for, defaulting to the last ``window_days`` days of recorded activity (from its first day).

    The default end is the last day holding a typical day's share of activity (see
    :func:`beatmap.metrics.recorded_end`), judged on the newest :data:`RECENT_EVENTS` events: a
    visit logged long after the data ended is measured against the data, not against itself.
    """
    span = store.activity_span(engine)
    counts = None
    if span is not None and end is None:
        times = store.latest_times(engine, limit=RECENT_EVENTS)
        days = times.dt.tz_convert(settings.timezone).dt.date
        if len(times) == RECENT_EVENTS:
            days = days[days != days.min()]  # the oldest day read is only partly read
        counts = days.value_counts()
    return default_window(
        span[1] if span else None,
        settings=settings,
        start=start,
        end=end,
        first_activity=span[0] if span else None,
        day_counts=counts,
    )


def read_activity(engine: Engine, *, timezone: str, cache_dir: str | Path | None = None) -> pd.DataFrame:
    """Every event on a block as a :func:`beatmap.metrics.local_activity` frame, sorted by day.

    Kept on disk in parts (see :mod:`beatmap.activity_cache`), so a
    dashboard start after an import reads a few compact columns instead of
    every event row.
    """
    return activity_cache.read_activity(engine, timezone=timezone, cache_dir=cache_dir)


def block_coverage(
    engine: Engine,
    *,
    window: Window,
    settings: Settings,
    beat_id: str | None = None,
    gps: bool = True,
    not_analysed: bool = False,
) -> gpd.GeoDataFrame:
    """Coverage of every block (of one beat, or all) over ``window``, with geometry in the analysis CRS.

    The blocks of beats left out of the analysis (``settings.excluded_beats``)
    are not in the table; with ``not_analysed`` they are, after the others,
    with ``status`` ``not analysed``, no flag and no figures (the table then has
    a ``status`` column, see :func:`beatmap.exclusions.with_not_analysed`):
    the form of the table that is written to a file.

    With ``gps`` (the default), the table gains the GPS presence of the window
    (from the stored aggregates, never from pings): ``presence_minutes``
    (not on a call, on foot), ``vehicle_minutes`` (not on a call, in a
    vehicle), ``enforcement_minutes`` (on a call, any mode) and
    ``track_visits`` (stays on foot of ``visit_min_minutes`` not already
    logged as a visit by the same officer); track visits count as visits for
    the flags.

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
        raise StoreError(
            "no beats or blocks in the store yet; load them with `beatmap areas` "
            "or build the demo city with `beatmap demo`."
        )
    if not_analysed:
        table = block_coverage(engine, window=window, settings=settings, beat_id=beat_id, gps=gps)
        out = left_out(blocks, settings.excluded_beats)[[S.BLOCK_ID, S.BEAT_ID, "geometry"]]
        return gpd.GeoDataFrame(with_not_analysed(table, out))
    blocks = analysed_blocks(blocks, settings)
    first, after = window.utc_bounds()
    events = store.read_events(
        engine, start=first, end=after, beat_id=beat_id, columns=("occurred_at", S.KIND, S.OFFICER_ID, S.BLOCK_ID)
    )
    if not gps:
        cov = coverage_by_block(blocks, events, window=window, settings=settings)
        return gpd.GeoDataFrame(cov, geometry=blocks.geometry, crs=blocks.crs)
    tracks = presence_store.read_track_visits(engine, start=first, end=after)
    cov = coverage_by_block(
        blocks, events, window=window, settings=settings, track_visits=unmatched_track_visits(tracks, events)
    )
    presence = presence_store.read_presence(engine, start=first, end=after)
    for column, purpose, mode in PRESENCE_MINUTES:
        chosen = (presence["purpose"] == purpose) & ((presence["mode"] == mode) if mode else True)
        seconds = presence[chosen].groupby(S.BLOCK_ID)["seconds"].sum()
        cov[column] = (cov[S.BLOCK_ID].map(seconds).fillna(0) / 60).round(1)
    if not presence.empty:
        _gps_caveat(cov, presence, hours=int((after - first).total_seconds() // 3600))
    order = [*S.COVERAGE_COLUMNS, *(c for c, _, _ in PRESENCE_MINUTES), "track_visits"]
    return gpd.GeoDataFrame(cov[order], geometry=blocks.geometry, crs=blocks.crs)


def _gps_caveat(cov: pd.DataFrame, presence: pd.DataFrame, *, hours: int) -> None:
    """Add the poor-GPS caveat to ``unvisited`` reasons in beats with few usable GPS hours (in place).

    Only when the store holds GPS presence for the window at all: a
    department without GPS gets no caveat.
    """
    beat_of = cov.set_index(S.BLOCK_ID)[S.BEAT_ID]
    located = presence[presence[S.BLOCK_ID].notna()]
    usable = located.assign(beat=located[S.BLOCK_ID].map(beat_of)).groupby("beat")["hour"].nunique()
    covered = cov[S.BEAT_ID].map(usable).fillna(0).astype(int)
    poor = (cov["flag"] == S.UNVISITED) & (covered < GPS_POOR_SHARE * hours)
    cov.loc[poor, "flag_reason"] = cov.loc[poor, "flag_reason"] + [
        f" GPS data covers only {c:,} of the window's {hours:,} hours in beat {b}, so this may be missing "
        "data rather than no visit."
        for c, b in zip(covered[poor], cov.loc[poor, S.BEAT_ID], strict=True)
    ]


def beat_coverage(engine: Engine, *, window: Window, settings: Settings) -> gpd.GeoDataFrame:
    """Per-beat summary over ``window``, with beat geometry in the analysis CRS.

    An excluded beat (``settings.excluded_beats``) has ``analysed`` False, ``status`` ``not analysed``
    and no figures.
    """
    beats = store.read_beats(engine)
    summary = coverage_by_beat(block_coverage(engine, window=window, settings=settings))
    merged = beats[[S.BEAT_ID, "geometry"]].merge(summary, on=S.BEAT_ID, how="left")
    merged["analysed"] = ~merged[S.BEAT_ID].isin(list(settings.excluded_beats))
    merged["status"] = merged["analysed"].map({True: ANALYSED, False: NOT_ANALYSED})
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=beats.crs)
