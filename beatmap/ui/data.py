"""Cached access to the store for the pages.

The engine is a shared resource; tables are cached on the store's version, so
a new import shows at once and an unchanged store is never queried twice.
"""

from __future__ import annotations

import os
from datetime import date

import geopandas as gpd
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from beatmap import store
from beatmap.metrics import Window
from beatmap.report import beat_coverage, block_coverage, window_from_store
from beatmap.settings import Settings, read_settings


def get_settings() -> Settings:
    """The department settings (``$BEATMAP_SETTINGS`` or ``data/settings.toml``)."""
    return _settings_at(os.environ.get("BEATMAP_SETTINGS"))


@st.cache_resource
def _settings_at(path: str | None) -> Settings:
    return read_settings(path)


def get_engine() -> Engine:
    """The store named by ``$BEATMAP_DB`` (or the default file), opened once per process."""
    return _engine_at(store.store_url())


@st.cache_resource
def _engine_at(url: str) -> Engine:
    return store.open_store(url)


def version(engine: Engine) -> int:
    """The store's change counter, used as a cache key."""
    return store.store_version(engine)


@st.cache_data(show_spinner=False)
def default_window(_engine: Engine, url: str, store_version: int) -> Window:
    """The default window of the store's data."""
    return window_from_store(_engine, settings=get_settings())


@st.cache_data(show_spinner="Computing coverage…")
def blocks_for(_engine: Engine, url: str, store_version: int, start: date, end: date,
               beat_id: str | None) -> gpd.GeoDataFrame:
    """Block coverage for a window and beat (cached per store version)."""
    settings = get_settings()
    return block_coverage(_engine, window=Window(start, end, settings.timezone), settings=settings, beat_id=beat_id)


@st.cache_data(show_spinner=False)
def beats_for(_engine: Engine, url: str, store_version: int, start: date, end: date) -> gpd.GeoDataFrame:
    """Beat summaries for a window (cached per store version)."""
    settings = get_settings()
    return beat_coverage(_engine, window=Window(start, end, settings.timezone), settings=settings)


@st.cache_data(show_spinner=False)
def beat_ids(_engine: Engine, url: str, store_version: int) -> list[str]:
    """Every beat id in the store."""
    return store.read_beats(_engine)["beat_id"].tolist()


def has_areas(engine: Engine) -> bool:
    """True once beats and blocks are loaded."""
    return store.counts(engine)["blocks"] > 0


def as_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame without geometry, for st.dataframe."""
    return pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
