"""Cached access to the store for the pages.

The engine and the activity frame are shared resources, loaded once per store
version and never mutated; geometry for the browser is prepared once per
store version and beat.  A filter change only recomputes counts.
"""

from __future__ import annotations

import os

import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from beatmap import access, naming, store
from beatmap import schema as S
from beatmap.accounts import User
from beatmap.crs import WGS84
from beatmap.exclusions import effective_settings
from beatmap.metrics import neighbour_pairs
from beatmap.render import display_frame
from beatmap.report import read_activity, window_from_store
from beatmap.settings import Settings, read_settings
from beatmap.streets import map_streets_from_store
from beatmap.ui.filters import Filters


def get_settings() -> Settings:
    """The department settings (``$BEATMAP_SETTINGS`` or ``data/settings.toml``), with the beats the store's
    areas leave out of the analysis (see :mod:`beatmap.exclusions`)."""
    return effective_settings(_settings_at(os.environ.get("BEATMAP_SETTINGS")), get_engine())


@st.cache_resource
def _settings_at(path: str | None) -> Settings:
    return read_settings(path)


def get_engine() -> Engine:
    """The store named by ``$BEATMAP_DB`` (or the default file), opened once per process."""
    return _engine_at(store.store_url())


@st.cache_resource
def _engine_at(url: str) -> Engine:
    return store.open_store(url)


def version(engine: Engine) -> tuple[str, int]:
    """The store's identity and change counter: the key of every cached view.

    The identity tells a store re-created at the same path from the old one,
    whose counter may have reached the same number.
    """
    return store.cache_key(engine)


def has_areas(engine: Engine) -> bool:
    """True once beats and blocks are loaded."""
    return store.counts(engine)["blocks"] > 0


@st.cache_resource(show_spinner="Loading activity…", max_entries=2)
def activity(_engine: Engine, url: str, store_version: tuple[str, int], timezone: str) -> pd.DataFrame:
    """Every event on a block as local codes (shared, read-only: never mutate it)."""
    return read_activity(_engine, timezone=timezone)


@st.cache_data(show_spinner=False, max_entries=4)
def default_window(_engine: Engine, url: str, store_version: tuple[str, int]) -> tuple:
    """Start and end of the default window (the last ``window_days`` days of data)."""
    window = window_from_store(_engine, settings=get_settings())
    return window.start, window.end


@st.cache_resource(show_spinner=False, max_entries=2)
def blocks(_engine: Engine, url: str, store_version: tuple[str, int]) -> pd.DataFrame:
    """``block_id``, ``beat_id`` and ``lat``/``lon`` of a point inside each block (no geometry)."""
    frame = store.read_blocks(_engine)
    inside = frame.geometry.representative_point().to_crs(WGS84)
    return pd.DataFrame(
        {S.BLOCK_ID: frame[S.BLOCK_ID], S.BEAT_ID: frame[S.BEAT_ID], "lat": inside.y.round(5), "lon": inside.x.round(5)}
    )


def block_coverage(
    engine: Engine, user: User | None, filters: Filters, settings: Settings, *, previous: bool = False
) -> pd.DataFrame:
    """:func:`beatmap.access.block_coverage_for` the user's blocks over the filters' window (``previous``: the
    period of the same length before it), computed once per store version, user, filters and settings.

    Every rerun that changes none of them (opening a beat, selecting a block, the next sign-in with the
    default filters) reuses it instead of counting and flagging every block again.
    """
    return _block_coverage(engine, str(engine.url), version(engine), user, filters, settings, previous)


@st.cache_data(show_spinner=False, max_entries=16)
def _block_coverage(
    _engine: Engine,
    url: str,
    store_version: tuple[str, int],
    user: User | None,
    filters: Filters,
    settings: Settings,
    previous: bool,
) -> pd.DataFrame:
    rows = filters.apply(activity(_engine, url, store_version, settings.timezone))
    return access.block_coverage_for(
        user,
        blocks(_engine, url, store_version),
        rows,
        window=filters.window.previous() if previous else filters.window,
        settings=settings,
        neighbours=neighbours(_engine, url, store_version),
    )


@st.cache_resource(show_spinner=False, max_entries=2)
def block_polygons(_engine: Engine, url: str, store_version: tuple[str, int]) -> gpd.GeoDataFrame:
    """Every block's polygon in the analysis CRS (``block_id``, ``beat_id``, geometry; shared: never mutate it)."""
    return store.read_blocks(_engine)


@st.cache_resource(show_spinner=False, max_entries=2)
def neighbours(_engine: Engine, url: str, store_version: tuple[str, int]) -> pd.DataFrame:
    """Blocks of one beat that touch or face each other (``block_id``, ``neighbour_id``), for the flag rule."""
    return neighbour_pairs(block_polygons(_engine, url, store_version))


@st.cache_resource(show_spinner=False, max_entries=2)
def streets(_engine: Engine, url: str, store_version: tuple[str, int]) -> gpd.GeoDataFrame | None:
    """The loaded street segments (analysis CRS), to name neglected areas; None when none are loaded."""
    frame = store.read_streets(_engine)
    return frame if len(frame) else None


@st.cache_resource(show_spinner=False, max_entries=2)
def beat_shapes(_engine: Engine, url: str, store_version: tuple[str, int]) -> gpd.GeoDataFrame:
    """Beat polygons for the browser: simplified, WGS84, ``beat_id`` only."""
    return display_frame(store.read_beats(_engine), [S.BEAT_ID], tolerance_m=10.0)


@st.cache_resource(show_spinner=False, max_entries=16)
def block_shapes(_engine: Engine, url: str, store_version: tuple[str, int], beat_id: str) -> gpd.GeoDataFrame:
    """One beat's block polygons for the browser: simplified, WGS84, ``block_id`` only."""
    return display_frame(store.read_blocks(_engine, beat_id=beat_id), [S.BLOCK_ID], tolerance_m=2.0)


@st.cache_resource(show_spinner=False, max_entries=16)
def street_lines(_engine: Engine, url: str, store_version: tuple[str, int], beat_id: str | None) -> dict:
    """The streets for a map (the city's, or around one beat), prepared once (read-only)."""
    return map_streets_from_store(_engine, beat_id=beat_id)


@st.cache_resource(show_spinner=False, max_entries=2)
def street_names(_engine: Engine, url: str, store_version: tuple[str, int]) -> pd.Series:
    """Every block's name by its streets, indexed by ``block_id`` (empty without streets; read-only)."""
    return naming.names_from_store(_engine)


def block_landmarks(engine: Engine, settings: Settings) -> pd.Series:
    """The settings' landmarks on or beside each block (:func:`beatmap.naming.landmarks_by_block`), indexed by
    ``block_id``, worked out once per store version and landmark list (read-only)."""
    places = tuple(sorted((name, float(lat), float(lon)) for name, (lat, lon) in settings.landmarks.items()))
    return _block_landmarks(engine, str(engine.url), version(engine), places)


@st.cache_resource(show_spinner=False, max_entries=2)
def _block_landmarks(
    _engine: Engine, url: str, store_version: tuple[str, int], places: tuple[tuple[str, float, float], ...]
) -> pd.Series:
    if not places:
        return pd.Series(dtype=object, name=naming.LANDMARK)
    polygons = block_polygons(_engine, url, store_version)
    return naming.landmarks_by_block(polygons, {name: (lat, lon) for name, lat, lon in places})


def with_landmarks(frame: pd.DataFrame, landmarks: pd.Series) -> pd.DataFrame:
    """``frame`` with a ``landmark`` column: the landmarks on or beside each block (empty text where none)."""
    values = frame[S.BLOCK_ID].map(landmarks).where(lambda v: v.notna(), "") if len(landmarks) else ""
    return frame.assign(**{naming.LANDMARK: values})


def with_street_names(frame: pd.DataFrame, names: pd.Series) -> pd.DataFrame:
    """``frame`` with a ``street_name`` column after ``block_id`` (empty text where a block has none)."""
    values = frame[S.BLOCK_ID].map(names).where(lambda v: v.notna(), "") if len(names) else ""
    out = frame.copy()
    out.insert(list(out.columns).index(S.BLOCK_ID) + 1, naming.NAME, values)
    return out


def bounds(shapes: gpd.GeoDataFrame) -> list[float]:
    """West, south, east, north of some shapes (WGS84)."""
    return [float(v) for v in np.asarray(shapes.total_bounds)]


def as_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame without geometry, for st.dataframe."""
    return pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
