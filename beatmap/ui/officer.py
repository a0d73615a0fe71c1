"""Cached store reads and small widgets shared by the officers' pages (walking route, log a visit)."""

from __future__ import annotations

import geopandas as gpd
import streamlit as st
from sqlalchemy import Engine

from beatmap import access, store
from beatmap import schema as S
from beatmap.accounts import User
from beatmap.crs import WGS84
from beatmap.index import BlockIndex, block_index_for
from beatmap.report import block_coverage, window_from_store
from beatmap.ui import data
from beatmap.ui.safe import md_escape


@st.cache_data(show_spinner="Computing coverage…", max_entries=16)
def beat_coverage(_engine: Engine, url: str, store_version: tuple[str, int], beat_id: str) -> gpd.GeoDataFrame:
    """Block coverage and flags of one beat over the default window (metric CRS); the blocks of a beat left out of
    the analysis are listed with ``status`` ``not analysed`` and no flag."""
    settings = data.get_settings()
    window = window_from_store(_engine, settings=settings)
    return block_coverage(_engine, window=window, settings=settings, beat_id=beat_id, not_analysed=True)


@st.cache_resource(show_spinner=False, max_entries=2)
def tap_index(_engine: Engine, url: str, store_version: tuple[str, int]) -> BlockIndex:
    """The block index of every block (the rows of :func:`beatmap.ui.data.block_polygons`), for placing a tap
    by look-up: read from the store (or built) once per store version.  Shared and read-only."""
    settings = data.get_settings()
    blocks = data.block_polygons(_engine, url, store_version)
    return block_index_for(_engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)


@st.cache_data(show_spinner=False, max_entries=16)
def beat_outline(_engine: Engine, url: str, store_version: tuple[str, int], beat_id: str) -> gpd.GeoDataFrame:
    """One beat's polygon (metric CRS)."""
    beats = store.read_beats(_engine)
    return beats[beats[S.BEAT_ID] == beat_id].reset_index(drop=True)


@st.cache_resource(show_spinner=False, max_entries=16)
def beat_blocks(_engine: Engine, url: str, store_version: tuple[str, int], beat_id: str) -> gpd.GeoDataFrame:
    """One beat's blocks (``block_id``, ``beat_id``, polygons in the metric CRS), for placing a tap.

    Shared and read-only: never mutate it.
    """
    return store.read_blocks(_engine, beat_id=beat_id)


def beat_ids(engine: Engine, url: str, store_version: tuple[str, int], user: User | None) -> list[str]:
    """The beat ids with blocks that ``user`` may work on, sorted (every one for all-beats users)."""
    every = sorted(data.blocks(engine, url, store_version)[S.BEAT_ID].astype(str).unique())
    return access.visible_beats(user, every)


def choose_beat(engine: Engine, url: str, store_version: tuple[str, int], user: User | None) -> str:
    """The beat selectbox, listing the user's beats; stops the page with a message when they have none."""
    beats = beat_ids(engine, url, store_version, user)
    if not beats:
        st.info(access.NO_BEATS)
        st.stop()
    return st.selectbox("Beat", beats)


def beat_centre(outline: gpd.GeoDataFrame) -> tuple[float, float]:
    """``(lat, lon)`` of a point inside the beat (its landmark for a start)."""
    point = outline.geometry.representative_point().to_crs(WGS84).iloc[0]
    return round(point.y, 6), round(point.x, 6)


def officer_id(user: User) -> str:
    """The signed-in user's officer id (their visits are logged under it), shown as a caption."""
    ident = access.officer_id_of(user)
    st.caption(f"Officer {md_escape(ident)}")
    return ident
