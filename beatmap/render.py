"""Folium map builders: data in, folium objects out.

Geometry is prepared for the browser once: simplified in metres with shared
edges kept (coverage simplification), reprojected to WGS84, snapped to about
1 m, and stripped to the columns the view shows (folium writes every column
it is given into the page).  Every text value is HTML-escaped.  Leaflet is
loaded from the app's own server (``asset_base``), never from a CDN.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import folium
import geopandas as gpd
import pandas as pd
import shapely
from branca.element import Element

from beatmap import schema as S
from beatmap.crs import WGS84

#: Where the app serves Leaflet (Streamlit static serving of ``static/``).
DEFAULT_ASSET_BASE = "/app/static/vendor/leaflet"

#: Colour and legend text per flag (Okabe-Ito palette: distinguishable with colour-blindness).
FLAG_STYLE: dict[str | None, tuple[str, str]] = {
    S.ENFORCEMENT_ONLY: ("#D55E00", "Enforcement only: police came only to enforce"),
    S.UNVISITED: ("#7F7F7F", "Unvisited: no foot patrol or community visit"),
    S.RARELY_VISITED: ("#E69F00", "Rarely visited: clearly below the beat's typical block"),
    None: ("#009E73", "Visited: not flagged"),
}


def display_frame(
    frame: gpd.GeoDataFrame,
    columns: Sequence[str],
    *,
    tolerance_m: float = 2.0,
    precision_deg: float = 1e-5,
) -> gpd.GeoDataFrame:
    """A light copy of ``frame`` for the browser: few columns, simplified, WGS84, rounded.

    Parameters
    ----------
    frame : GeoDataFrame
        Polygons in a metric CRS.
    columns : sequence of str
        The only attribute columns to keep.
    tolerance_m : float
        Simplification tolerance in metres; shared edges stay shared.
    precision_deg : float
        Coordinate grid in degrees (1e-5 is about 1 m).
    """
    geoms = frame.geometry.to_numpy()
    if tolerance_m > 0 and len(geoms):
        geoms = shapely.coverage_simplify(geoms, tolerance_m)
    light = gpd.GeoDataFrame(frame[list(columns)].copy(), geometry=list(geoms), crs=frame.crs).to_crs(WGS84)
    light["geometry"] = shapely.set_precision(light.geometry.to_numpy(), precision_deg)
    for name in columns:
        if light[name].dtype == object or pd.api.types.is_string_dtype(light[name]):
            light[name] = light[name].map(lambda v: html.escape(str(v)) if v is not None and v == v else "")
    return light


def base_map(
    bounds: Sequence[float],
    *,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
) -> folium.Map:
    """An empty map fitted to ``bounds`` (west, south, east, north), with Leaflet served locally.

    ``tiles`` is ``"none"`` (plain background: works on a closed network),
    ``"openstreetmap"`` or a tile URL template of the department's server.
    """
    west, south, east, north = bounds
    m = folium.Map(location=[(south + north) / 2, (west + east) / 2], tiles=None, control_scale=True,
                   prefer_canvas=False)
    m.default_js = [("leaflet", f"{asset_base}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{asset_base}/leaflet.css")]
    if tiles == "openstreetmap":
        folium.TileLayer("OpenStreetMap").add_to(m)
    elif tiles not in ("", "none"):
        folium.TileLayer(tiles=tiles, attr="Department tiles").add_to(m)
    m.fit_bounds([[south, west], [north, east]])
    return m


def coverage_map(
    blocks: gpd.GeoDataFrame,
    beats: gpd.GeoDataFrame,
    *,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
) -> folium.Map:
    """Blocks coloured by flag, beats outlined, a legend in words.

    Parameters
    ----------
    blocks : GeoDataFrame
        A coverage table (:func:`beatmap.report.block_coverage`) in a metric CRS.
    beats : GeoDataFrame
        ``beat_id`` and geometry in a metric CRS.
    """
    tooltip_fields = [S.BLOCK_ID, S.BEAT_ID, "visits", "enforcement", "flag_reason"]
    light = display_frame(blocks, [*tooltip_fields, "flag"])
    outlines = display_frame(beats, [S.BEAT_ID], tolerance_m=5.0)
    m = base_map(outlines.total_bounds if len(outlines) else light.total_bounds, tiles=tiles, asset_base=asset_base)
    colours = {k or "": v[0] for k, v in FLAG_STYLE.items()}
    folium.GeoJson(
        light.to_json(drop_id=True),
        name="Blocks",
        style_function=lambda f: {"fillColor": colours.get(f["properties"].get("flag") or "", "#009E73"),
                                  "color": "#ffffff", "weight": 0.5, "fillOpacity": 0.75},
        highlight_function=lambda f: {"weight": 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=tooltip_fields,
                                      aliases=["Block", "Beat", "Visits", "Enforcement", "Why flagged"]),
    ).add_to(m)
    folium.GeoJson(
        outlines.to_json(drop_id=True),
        name="Beats",
        style_function=lambda f: {"fill": False, "color": "#1a1a1a", "weight": 2},
        interactive=False,  # outlines sit on top; clicks must reach the blocks
    ).add_to(m)
    m.get_root().html.add_child(Element(legend_html()))
    return m


def legend_html() -> str:
    """The flag legend as a small HTML block (colours with words)."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'margin-right:6px"></span>{html.escape(text)}</div>'
        for colour, text in FLAG_STYLE.values()
    )
    return ('<div style="position:absolute;bottom:24px;right:10px;z-index:1000;background:#fff;padding:6px 8px;'
            f'font:12px sans-serif;border:1px solid #999;border-radius:4px">{rows}</div>')
