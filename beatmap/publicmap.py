"""The public map: a published snapshot's blocks on a folium map.

A pure builder like those in :mod:`beatmap.render`: a snapshot's GeoJSON in, a
folium map out.  The published snapshot page (``index.html``) and the public
dashboard page draw the same map from the same file, so what residents see is
exactly what was published and checked.  The levels are one ordered scale of a
single hue (white for none, then light to dark blue: readable with any
colour-blindness and in grey print), and no colour carries meaning alone:
levels are named in the legend, tooltips and the page's text tables, and
"mostly enforcement" is a separate mark, a dashed vermillion edge, that no
level uses.  Values keep their
raw text in the map's GeoJSON; the tooltip shows them as text
(:class:`beatmap.render.TextTooltip`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import cast

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element, Figure
from shapely.geometry import mapping, shape

from beatmap.basemap import BeatLabels, add_streets, beat_label_points, clip_streets
from beatmap.crs import WGS84
from beatmap.render import DEFAULT_ASSET_BASE, TextTooltip, base_map
from beatmap.snapshot import (
    BLOCK_FIELDS,
    COORD_DECIMALS,
    LEVELS,
    MOSTLY_ENFORCEMENT,
    PRESENCE_HEADING,
    PRESENCE_MINUTES,
    presence_text,
)

#: Fill colour and legend words per visit level, in order: white for none, then light to dark blue
#: (ColorBrewer "Blues"; darker means more visits).
LEVEL_STYLE: dict[str, tuple[str, str]] = {
    "none": ("#FFFFFF", "None: no foot patrol or community visit"),
    "low": ("#BDD7E7", "Low"),
    "medium": ("#6BAED6", "Medium"),
    "high": ("#08519C", "High"),
}
#: Block edges: grey, so white ("none") blocks stand out from the background and from each other.
BLOCK_EDGE = "#737373"
#: Edge colour of blocks where police presence is mostly enforcement (Okabe-Ito vermillion).
ENFORCEMENT_EDGE = "#D55E00"
#: The city view shades each beat by the share of its blocks visited, on the same scale:
#: (upper bound in percent, level whose colour it takes, legend words).
COVERAGE_CLASSES: tuple[tuple[int, str, str], ...] = (
    (0, "none", "0%: no block visited"),
    (33, "low", "1% to 33% of blocks visited"),
    (66, "medium", "34% to 66%"),
    (100, "high", "67% to 100%"),
)
#: Fill of a beat whose coverage is not known.
UNKNOWN_FILL = "#D9D9D9"
#: Beat outlines on a city view are simplified by this much (degrees, about 5 m).
OUTLINE_TOLERANCE_DEG = 5e-5
#: ... after closing the streets between blocks: gaps up to twice this wide (degrees, about 2 x 20 m) are filled.
CLOSE_STREETS_DEG = 2e-4
#: Tooltip labels of the published block fields.
ALIASES: dict[str, str] = {
    "block_id": "Block",
    "streets": "Where",
    "beat_id": "Beat",
    "visit_level": "Visit level",
    "visits": "Foot patrols and community visits",
    "enforcement": "Enforcement events",
    "presence": "Police presence",
    PRESENCE_MINUTES: PRESENCE_HEADING,
}


def public_map(
    collection: dict,
    *,
    level_text: Mapping[str, str] | None = None,
    legend: bool = True,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
    streets: dict | None = None,
) -> folium.Map:
    """Published blocks coloured by visit level, beats outlined, a legend in words.

    Parameters
    ----------
    collection : dict
        A snapshot's ``coverage.geojson`` (WGS84 block polygons with
        :data:`~beatmap.snapshot.BLOCK_FIELDS`).
    level_text : mapping, optional
        Legend words per level (e.g. ``{"low": "Low: 1 to 14 visits"}``).
    legend : bool
        Draw the legend over the map (a page that shows it beside the map
        passes False).
    tiles, asset_base
        As for :func:`beatmap.render.base_map`.
    streets : dict, optional
        The snapshot's base map (:func:`beatmap.snapshot.read_streets`); the part around the blocks is drawn.
    """
    features = collection.get("features") or []
    # Presence minutes where the snapshot publishes them (every block then has them), in words.
    fields = (
        (*BLOCK_FIELDS, PRESENCE_MINUTES)
        if features and PRESENCE_MINUTES in features[0]["properties"]
        else BLOCK_FIELDS
    )
    blocks = {"type": "FeatureCollection", "features": [_published(f, fields) for f in features]}
    outlines = beat_outlines(features)
    bounds = (
        shapely.bounds(shapely.union_all([shape(f["geometry"]) for f in features]))
        if features
        else (-180.0, -85.0, 180.0, 85.0)
    )
    m = base_map(bounds, tiles=tiles, asset_base=asset_base)
    if streets is not None:
        add_streets(m, clip_streets(streets, _widened(bounds)))
    folium.GeoJson(
        blocks,
        name="Blocks",
        style_function=_block_style,
        highlight_function=lambda f: {"weight": 3, "color": "#000000"},
        tooltip=TextTooltip(fields=list(fields), aliases=[ALIASES[k] for k in fields]),
    ).add_to(m)
    folium.GeoJson(
        outlines,
        name="Beats",
        style_function=lambda f: {"fill": False, "color": "#000000", "weight": 2},
        interactive=False,  # outlines sit on top; taps must reach the blocks
    ).add_to(m)
    BeatLabels(_beat_label_points(outlines)).add_to(m)
    if legend:
        cast(Figure, m.get_root()).html.add_child(Element(public_legend_html(level_text)))
    return m


def _widened(bounds: tuple[float, float, float, float] | np.ndarray, by: float = 0.25) -> tuple:
    """``bounds`` (west, south, east, north) grown by ``by`` of their size on every side: the streets just
    beyond a beat's edge are drawn too."""
    west, south, east, north = (float(v) for v in bounds)
    dx, dy = (east - west) * by, (north - south) * by
    return (west - dx, south - dy, east + dx, north + dy)


def coverage_fill(pct: int | None) -> str:
    """The city view's fill of a beat with ``pct`` percent of its blocks visited (see :data:`COVERAGE_CLASSES`)."""
    if pct is None:
        return UNKNOWN_FILL
    for upper, level, _ in COVERAGE_CLASSES:
        if pct <= upper:
            return LEVEL_STYLE[level][0]
    return LEVEL_STYLE[COVERAGE_CLASSES[-1][1]][0]


def public_city_map(
    outlines: dict,
    coverage: Mapping[str, int | None],
    *,
    legend: bool = True,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
    streets: dict | None = None,
) -> folium.Map:
    """The city view: each beat's outline (:func:`beat_outlines`) shaded by the share of its blocks visited.

    It sends beats only, so it stays light at any city size; a beat's blocks go on :func:`public_map`.
    ``coverage`` gives the percent per beat id (from ``beats.csv``); ``streets``, the snapshot's base map.
    """
    features = [
        {**f, "properties": {"beat_id": str(f["properties"]["beat_id"]), "coverage": _percent(coverage, f)}}
        for f in outlines.get("features") or []
    ]
    bounds = shapely.bounds(shapely.union_all([shape(f["geometry"]) for f in features])) if features else None
    m = base_map(bounds if bounds is not None else (-180.0, -85.0, 180.0, 85.0), tiles=tiles, asset_base=asset_base)
    add_streets(m, streets)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="Beats",
        style_function=lambda f: {
            "fillColor": coverage_fill(_pct(f["properties"]["coverage"])),
            "fillOpacity": 0.85,
            "color": "#000000",
            "weight": 2,
        },
        highlight_function=lambda f: {"weight": 4},
        tooltip=TextTooltip(fields=["beat_id", "coverage"], aliases=["Beat", "Blocks visited"]),
    ).add_to(m)
    BeatLabels(_beat_label_points({"features": features})).add_to(m)
    if legend:
        cast(Figure, m.get_root()).html.add_child(Element(coverage_legend_html()))
    return m


def _percent(coverage: Mapping[str, int | None], feature: dict) -> str:
    pct = coverage.get(str(feature["properties"]["beat_id"]))
    return "not known" if pct is None else f"{pct}%"


def _pct(text: str) -> int | None:
    return int(text[:-1]) if text.endswith("%") else None


def coverage_legend_html(*, overlay: bool = True) -> str:
    """The city view's legend: a swatch and words per share of blocks visited."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{LEVEL_STYLE[level][0]};'
        f'margin-right:6px;border:1px solid #555"></span>{html.escape(words)}</div>'
        for _, level, words in COVERAGE_CLASSES
    )
    title = "<b>Each beat by the share of its blocks with a foot patrol or community visit</b>"
    return _legend_box(title, rows, overlay=overlay)


def _beat_label_points(outlines: dict) -> list[list]:
    features = outlines["features"]
    if not features:
        return []
    frame = gpd.GeoDataFrame(
        {"beat_id": [f["properties"]["beat_id"] for f in features]},
        geometry=[shape(f["geometry"]) for f in features],
        crs=WGS84,
    )
    return beat_label_points(frame)


def _block_style(feature: dict) -> dict:
    props = feature["properties"]
    fill = LEVEL_STYLE.get(props.get("visit_level", ""), ("#FFFFFF", ""))[0]
    if props.get("presence") == MOSTLY_ENFORCEMENT:
        return {"fillColor": fill, "fillOpacity": 0.85, "color": ENFORCEMENT_EDGE, "weight": 3, "dashArray": "6 4"}
    return {"fillColor": fill, "fillOpacity": 0.85, "color": BLOCK_EDGE, "weight": 0.6}


def _published(feature: dict, fields: tuple[str, ...] = BLOCK_FIELDS) -> dict:
    """A feature with only the published fields, as text (raw: the tooltip shows it as text, not HTML)."""
    props = feature.get("properties") or {}
    return {
        "type": "Feature",
        "geometry": feature["geometry"],
        "properties": {
            k: presence_text(props.get(k)) if k == PRESENCE_MINUTES else str(props.get(k, "")) for k in fields
        },
    }


def beat_outlines(features: list[dict], *, tolerance_deg: float = 0.0) -> dict:
    """Each beat's outline: the union of its published blocks, simplified by ``tolerance_deg`` (for a city
    view), on the same coordinate grid; beats in the order of their ids."""
    by_beat: dict[str, list] = {}
    for feature in features:
        by_beat.setdefault(str(feature["properties"].get("beat_id", "")), []).append(shape(feature["geometry"]))
    outlines = []
    for beat_id, shapes in sorted(by_beat.items()):
        union = shapely.union_all(shapes)
        if tolerance_deg:  # close the streets between blocks (a city view draws the beat, not its blocks)
            closed = shapely.buffer(
                shapely.buffer(union, CLOSE_STREETS_DEG, join_style="mitre"), -CLOSE_STREETS_DEG, join_style="mitre"
            )
            light = shapely.simplify(closed, tolerance_deg)
            union = union if light.is_empty else light
        merged = shapely.set_precision(union, 10.0**-COORD_DECIMALS)
        outlines.append(
            {"type": "Feature", "properties": {"beat_id": beat_id}, "geometry": round_coordinates(mapping(merged))}
        )
    return {"type": "FeatureCollection", "features": outlines}


def outline_problems(outlines: dict, by_beat: Mapping[str, list[dict]]) -> list[str]:
    """What is wrong with beat outlines (:func:`beat_outlines` of the city view, read back from a published
    page) as the outlines of the published blocks ``by_beat`` (beat id -> its features); empty when they fit.

    The outlines must be the same beats, in the order of their ids, and every block's first corner must lie
    inside its beat's outline or within the outline's simplification of it: a shifted, swapped or redrawn
    beat is found without making the outlines again.
    """
    features = outlines.get("features") if isinstance(outlines, dict) else None
    if not isinstance(features, list):
        return ["the page's beat outlines are not a GeoJSON FeatureCollection; publish the snapshot again."]
    ids = [str((f.get("properties") or {}).get("beat_id", "")) for f in features]
    if ids != sorted(by_beat):
        return ["the page's beat outlines are not the published beats; publish the snapshot again."]
    try:
        shapes = np.array([shape(f["geometry"]) for f in features], dtype=object)
        corners = [(i, _first_corner(block["geometry"])) for i, b in enumerate(ids) for block in by_beat[b]]
    except (KeyError, TypeError, ValueError, IndexError, shapely.errors.GEOSException):
        return ["the page's beat outlines or the blocks' shapes cannot be read; publish the snapshot again."]
    beat = np.array([i for i, _ in corners], dtype=int)
    points = shapely.points(np.array([c for _, c in corners], dtype=float).reshape(-1, 2))
    near = shapely.dwithin(shapes[beat], points, 2 * OUTLINE_TOLERANCE_DEG + 10.0**-COORD_DECIMALS)
    away = sorted({ids[i] for i in beat[~near]})
    if away:
        return [
            f"the page's outline of beat {', '.join(away[:5])} does not hold its published blocks; "
            "publish the snapshot again."
        ]
    return []


def _first_corner(geometry: dict) -> tuple[float, float]:
    """The first corner of a GeoJSON polygon's (or its first polygon's) outer ring."""
    ring = geometry["coordinates"][0] if geometry["type"] == "Polygon" else geometry["coordinates"][0][0]
    return float(ring[0][0]), float(ring[0][1])


def round_coordinates(geometry: dict, decimals: int = COORD_DECIMALS) -> dict:
    """A GeoJSON geometry with every coordinate rounded to ``decimals`` places (short, exact text)."""

    def walk(value: object) -> object:
        if isinstance(value, list | tuple):
            return [walk(v) for v in value]
        return round(float(cast(float, value)), decimals)

    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


def public_legend_html(level_text: Mapping[str, str] | None = None, *, overlay: bool = True) -> str:
    """The public map's legend as HTML: a swatch and words per level, and the dashed edge.

    ``overlay`` places it in the map's corner; otherwise it flows with the page.  Given ``level_text``,
    only its levels are listed (a level no block reached this period is left out).
    """
    shown = [k for k in LEVELS if level_text is None or level_text.get(k)]
    words = {k: (level_text or {}).get(k) or LEVEL_STYLE[k][1] for k in shown}
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{LEVEL_STYLE[k][0]};'
        f'margin-right:6px;border:1px solid #555"></span>{html.escape(words[k])}</div>'
        for k in shown
    )
    rows += (
        f'<div><span style="display:inline-block;width:10px;height:10px;border:2px dashed {ENFORCEMENT_EDGE};'
        'margin-right:6px"></span>Dashed edge: police presence here is mostly enforcement</div>'
    )
    return _legend_box("<b>Foot patrols and community visits</b>", rows, overlay=overlay)


def _legend_box(title: str, rows: str, *, overlay: bool) -> str:
    """A legend's HTML: inline in the page, or (``overlay``) floating at the map's bottom right."""
    if not overlay:
        return f'<div class="beatmap-legend">{title} {rows}</div>'
    return (
        '<div class="beatmap-legend" style="position:absolute;bottom:24px;right:10px;z-index:1000;'
        "background:#fff;padding:6px 8px;font:12px sans-serif;border:1px solid #999;border-radius:4px;"
        f'max-width:60%">{title}{rows}</div>'
    )
