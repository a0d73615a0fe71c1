"""Cached store reads and small widgets shared by the officers' pages (walking route, log a visit)."""

from __future__ import annotations

import geopandas as gpd
import streamlit as st
from sqlalchemy import Engine

from beatmap import schema as S
from beatmap import store
from beatmap.crs import WGS84
from beatmap.report import block_coverage, window_from_store
from beatmap.ui import data

#: Session key the signed-in officer's id is read from (set by the app's sign-in).
OFFICER_ID = "officer_id"


@st.cache_data(show_spinner="Computing coverage…", max_entries=16)
def beat_coverage(_engine: Engine, url: str, store_version: int, beat_id: str) -> gpd.GeoDataFrame:
    """Block coverage and flags of one beat over the default window (metric CRS)."""
    settings = data.get_settings()
    window = window_from_store(_engine, settings=settings)
    return block_coverage(_engine, window=window, settings=settings, beat_id=beat_id)


@st.cache_data(show_spinner=False, max_entries=16)
def beat_outline(_engine: Engine, url: str, store_version: int, beat_id: str) -> gpd.GeoDataFrame:
    """One beat's polygon (metric CRS)."""
    beats = store.read_beats(_engine)
    return beats[beats[S.BEAT_ID] == beat_id].reset_index(drop=True)


def beat_ids(engine: Engine, url: str, store_version: int) -> list[str]:
    """Every beat id with blocks, sorted."""
    return sorted(data.blocks(engine, url, store_version)[S.BEAT_ID].astype(str).unique())


def beat_centre(outline: gpd.GeoDataFrame) -> tuple[float, float]:
    """``(lat, lon)`` of a point inside the beat (its landmark for a start)."""
    point = outline.geometry.representative_point().to_crs(WGS84).iloc[0]
    return round(point.y, 6), round(point.x, 6)


def officer_id() -> str:
    """The signed-in officer's id, or the one typed in when nobody is signed in ('' until given)."""
    signed_in = st.session_state.get(OFFICER_ID)
    if signed_in:
        st.caption(f"Officer {signed_in}")
        return str(signed_in)
    return st.text_input("Your officer id", key="officer_id_typed", max_chars=64).strip()
