"""The one place the dashboard calls streamlit-folium (tests patch this seam)."""

from __future__ import annotations

from collections.abc import Callable

import folium
import streamlit as st
from streamlit_folium import st_folium


def show_map(
    m: folium.Map,
    *,
    key: str,
    height: int = 560,
    layers: list | None = None,
    on_click: Callable[[dict], None] | None = None,
) -> dict:
    """Render a folium map and return what the page reads back (the clicked feature).

    ``m`` should stay the same between reruns of one view (so the map is not
    reloaded); what changes with the filters goes in ``layers``, which are
    swapped in place.  Only clicks come back, so panning and zooming never
    rerun the page.

    ``on_click`` is called with the clicked feature's properties before the
    page's next run (a widget callback), so that run already shows what the
    click chose: one run per click instead of a run that reads the click and
    another that shows it.
    """

    def clicked_now() -> None:
        properties = feature_properties(st.session_state.get(key))
        if on_click is not None and properties:
            on_click(properties)

    return (
        st_folium(
            m,
            key=key,
            height=height,
            use_container_width=True,
            feature_group_to_add=layers,
            returned_objects=["last_active_drawing"],
            on_change=clicked_now if on_click is not None else None,
        )
        or {}
    )


def feature_properties(result: dict | None) -> dict:
    """The properties of the clicked feature in a map's answer (empty when nothing was clicked)."""
    feature = (result or {}).get("last_active_drawing") or {}
    return feature.get("properties") or {}


def clicked(result: dict, field: str) -> str | None:
    """The ``field`` property of the clicked feature, if any.

    streamlit-folium returns the clicked layer's ``toGeoJSON()``: its properties
    as the layer holds them, so an id comes back as raw as it was drawn.
    """
    value = feature_properties(result).get(field)
    return str(value) if value is not None else None


def show_tap_map(m: folium.Map, *, key: str, height: int = 480) -> tuple[float, float] | None:
    """Render a map the user taps to choose a place; return the last tapped ``(lat, lon)``, if any.

    Only the tap comes back, so panning and zooming never rerun the page.
    """
    result = st_folium(m, key=key, height=height, use_container_width=True, returned_objects=["last_clicked"]) or {}
    point = result.get("last_clicked")
    return (float(point["lat"]), float(point["lng"])) if point else None
