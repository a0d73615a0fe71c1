"""The one place the dashboard calls streamlit-folium (tests patch this seam)."""

from __future__ import annotations

import folium
from streamlit_folium import st_folium


def show_map(m: folium.Map, *, key: str, height: int = 560) -> dict:
    """Render a folium map; return only what the page reads back (clicks), so panning never reruns."""
    return st_folium(m, key=key, height=height, use_container_width=True,
                     returned_objects=["last_active_drawing"]) or {}
