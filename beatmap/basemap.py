"""The offline street base map: streets, street names, water, parks and beat labels drawn over a map, no tiles.

The streets come from the layer the department loads for walking routes
(``beatmap streets``).  They are prepared for the browser once: joined per
street name, simplified in metres, reprojected to WGS84 and rounded to about
1 m.  Major streets (the longest named streets, which cross the city) are
drawn at city zoom; every street and every name appears closer in.  Names and
beat labels are placed with ``textContent`` (never read as markup), sit in
panes that take no clicks or taps (clicks reach the blocks below), and are
not keyboard stops.

Nothing is fetched: the lines travel in the page, within
:data:`MAX_STREET_BYTES`, and Leaflet draws them.  This module never opens the
store (the public page uses it); :func:`beatmap.streets.map_streets_from_store`
reads the store's streets for it.

Water and parks (``beatmap streets --features``; the demo's river and park) are drawn in a pane
under the blocks (they have no blocks), with their names; they take no clicks either.
"""

from __future__ import annotations

import json

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from beatmap import schema as S
from beatmap.crs import WGS84

__all__ = [
    "AREA_STYLES",
    "LABEL_CSS",
    "MAX_STREET_BYTES",
    "STREETS_JS",
    "STREET_ZOOMS",
    "BeatLabels",
    "FitBounds",
    "StreetLayer",
    "add_streets",
    "base_layer",
    "beat_label_points",
    "clip_streets",
    "has_streets",
    "streets_for_map",
]

#: The street lines of one view stay under this many bytes (a view's whole payload stays under 2 MB).
MAX_STREET_BYTES = 600_000
#: Share of the named streets, by total length, drawn at city zoom.
MAJOR_SHARE = 0.2
#: Zoom from which every street is drawn, and from which every street is named.
ALL_STREETS_ZOOM = 15
ALL_NAMES_ZOOM = 16
#: Zoom from which major streets are named.
MAJOR_NAMES_ZOOM = 13
#: Up to this many beats, every beat id is written at city zoom; a city with more gets them from two zoom levels
#: in (as the published page does), where they no longer cover the map.
LABEL_ALL_BEATS = 40
#: A name is repeated along a street about this often, metres.
LABEL_EVERY_M = 450.0


def streets_for_map(
    streets: gpd.GeoDataFrame,
    *,
    tolerance_m: float = 3.0,
    max_bytes: int = MAX_STREET_BYTES,
    features: gpd.GeoDataFrame | None = None,
) -> dict:
    """Street lines and name points for :class:`StreetLayer`, light enough for a page.

    Parameters
    ----------
    streets : GeoDataFrame
        Street segments with ``name`` in a metric CRS (as the store keeps them).
    tolerance_m : float
        Simplification tolerance in metres.
    max_bytes : int
        When all streets would be larger, only the major ones are kept (and,
        if still too large, the longest of those).
    features : GeoDataFrame, optional
        Water and parks (``kind``, ``name``, polygons in a metric CRS) drawn
        under the blocks, simplified like the streets.

    Returns
    -------
    dict
        ``lines``: a GeoJSON FeatureCollection (WGS84) whose features carry
        ``name`` and ``major`` (1 or 0); ``labels``: ``[lat, lon, name, major, angle]``
        lists; ``dropped``: how many street names were left out to stay light;
        ``areas``: water and parks as a GeoJSON FeatureCollection (``kind``, ``name``).
    """
    areas = _areas_for_map(features, tolerance_m=tolerance_m)
    empty = {"lines": {"type": "FeatureCollection", "features": []}, "labels": [], "dropped": 0, "areas": areas}
    if streets is None or streets.empty:
        return empty
    names = (
        streets["name"].where(streets["name"].notna(), "").astype(str).str.strip()
        if "name" in streets
        else (pd.Series("", index=streets.index))
    )
    frame = gpd.GeoDataFrame({"name": names.to_numpy()}, geometry=streets.geometry.to_numpy(), crs=streets.crs)
    merged = frame.dissolve(by="name", as_index=False)
    merged["geometry"] = shapely.line_merge(shapely.simplify(merged.geometry.to_numpy(), tolerance_m))
    merged["length"] = shapely.length(merged.geometry.to_numpy())
    named = merged["name"].ne("")
    order = merged[named].sort_values("length", ascending=False)
    n_major = max(1, int(np.ceil(MAJOR_SHARE * len(order)))) if len(order) else 0
    merged["major"] = 0
    merged.loc[order.index[:n_major], "major"] = 1
    merged = merged.sort_values(["major", "length"], ascending=False).reset_index(drop=True)
    labels = _label_points(merged[merged["name"].ne("")])
    light = merged[["name", "major", "geometry"]].to_crs(WGS84)
    light["geometry"] = shapely.set_precision(light.geometry.to_numpy(), 1e-5)
    features = [
        {"type": "Feature", "properties": {"name": n, "major": int(m)}, "geometry": shapely.geometry.mapping(g)}
        for n, m, g in zip(light["name"], light["major"], light.geometry, strict=True)
        if not g.is_empty
    ]
    keep = len(features)
    sizes = np.cumsum([len(json.dumps(f, separators=(",", ":"))) for f in features])
    if keep and sizes[-1] > max_bytes:
        keep = int(np.searchsorted(sizes, max_bytes, side="right"))
        if int(light["major"].sum()) < keep:
            keep = int(light["major"].sum())  # all major streets fit: the minor ones go whole
    kept_names = {f["properties"]["name"] for f in features[:keep]}
    return {
        "lines": {"type": "FeatureCollection", "features": features[:keep]},
        "labels": [label for label in labels if label[2] in kept_names],
        "dropped": len(features) - keep,
        "areas": areas,
    }


def has_streets(prepared: dict | None) -> bool:
    """True when a prepared street layer (:func:`streets_for_map`) has anything to draw: lines, water or parks."""
    return bool(prepared and (prepared["lines"]["features"] or (prepared.get("areas") or {}).get("features")))


def clip_streets(prepared: dict, bounds: tuple[float, float, float, float]) -> dict:
    """The part of a prepared street layer that reaches into ``bounds`` (west, south, east, north, WGS84).

    Lines, water and parks that touch the box are kept whole, with the name points of the kept streets
    inside it: a beat's view then carries its own streets, not the city's.
    """
    box = shapely.box(*bounds)

    def touching(collection: dict) -> dict:
        features = collection.get("features") or []
        shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
        hits = shapely.intersects(np.array(shapes, dtype=object), box) if shapes else []
        return {"type": "FeatureCollection", "features": [f for f, hit in zip(features, hits, strict=True) if hit]}

    lines = touching(prepared["lines"])
    kept = {f["properties"]["name"] for f in lines["features"]}
    west, south, east, north = bounds
    return {
        **prepared,
        "lines": lines,
        "labels": [p for p in prepared["labels"] if p[2] in kept and south <= p[0] <= north and west <= p[1] <= east],
        "areas": touching(prepared.get("areas") or {}),
    }


#: Kinds of map features and how they are drawn (fill colour, edge colour).
AREA_STYLES = {"water": ("#a8d4f0", "#6fa8d0"), "park": ("#c8e6b0", "#8fbf73")}


def _areas_for_map(features: gpd.GeoDataFrame | None, *, tolerance_m: float) -> dict:
    """Water and parks as light WGS84 GeoJSON with ``kind`` and ``name``; empty without any."""
    if features is None or features.empty:
        return {"type": "FeatureCollection", "features": []}
    kept = features[features["kind"].isin(list(AREA_STYLES))]
    shapes = shapely.simplify(kept.geometry.to_numpy(), tolerance_m)
    light = gpd.GeoSeries(shapes, crs=kept.crs).to_crs(WGS84)
    light = gpd.GeoSeries(shapely.set_precision(light.to_numpy(), 1e-5), crs=WGS84)
    names = kept["name"].where(kept["name"].notna(), "").astype(str)
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"kind": k, "name": n}, "geometry": shapely.geometry.mapping(g)}
            for k, n, g in zip(kept["kind"], names, light, strict=True)
            if not g.is_empty
        ],
    }


def _label_points(named: gpd.GeoDataFrame) -> list[list]:
    """Points along each named street (every :data:`LABEL_EVERY_M`, at least one, mid-line)."""
    points, angles, label_names, majors = [], [], [], []
    for name, major, geometry in zip(named["name"], named["major"], named.geometry, strict=True):
        for part in shapely.get_parts(geometry):
            length = part.length
            if length < 40:  # too short to carry a readable name
                continue
            count = max(1, int(length // LABEL_EVERY_M))
            for k in range(count):
                at = (k + 0.5) * length / count
                ahead, behind = part.interpolate(min(length, at + 10)), part.interpolate(max(0.0, at - 10))
                # Screen angle (clockwise, as CSS turns), kept upright: -90 to 90 degrees.
                angle = -np.degrees(np.arctan2(ahead.y - behind.y, ahead.x - behind.x))
                angles.append(round((angle + 90) % 180 - 90))
                points.append(part.interpolate(at))
                label_names.append(name)
                majors.append(int(major))
    if not points:
        return []
    lon_lat = gpd.GeoSeries(points, crs=named.crs).to_crs(WGS84)
    return [
        [round(p.y, 5), round(p.x, 5), name, major, angle]
        for p, name, major, angle in zip(lon_lat, label_names, majors, angles, strict=True)
    ]


def beat_label_points(beats: gpd.GeoDataFrame) -> list[list]:
    """``[lat, lon, beat_id]`` at a point inside each beat (any CRS), for :class:`BeatLabels`."""
    if beats.empty:
        return []
    inside = gpd.GeoSeries(shapely.point_on_surface(beats.geometry.to_numpy()), crs=beats.crs).to_crs(WGS84)
    return [[round(p.y, 5), round(p.x, 5), str(b)] for p, b in zip(inside, beats[S.BEAT_ID], strict=True)]


LABEL_CSS = (
    ".bm-street-label,.bm-beat-label{background:none;border:none;white-space:nowrap;pointer-events:none}"
    ".bm-street-label span{font:11px/1 sans-serif;color:#222;text-shadow:0 0 2px #fff,0 0 2px #fff,0 0 3px #fff;"
    "position:relative;left:-50%;top:-6px}"
    ".bm-area-label{background:none;border:none;white-space:nowrap;pointer-events:none}"
    ".bm-area-label span{font:italic 12px/1 sans-serif;color:#24577a;text-shadow:0 0 2px #fff,0 0 3px #fff;"
    "position:relative;left:-50%;top:-6px}"
    ".bm-beat-label span{font:bold 14px/1 sans-serif;color:#000;background:rgba(255,255,255,.85);"
    "border:1px solid #333;border-radius:3px;padding:2px 4px;position:relative;left:-50%;top:-9px}"
)


#: Runs ``setup(map, host)`` once ``host`` (a map, or a layer group) is on a map: a group the dashboard swaps in
#: is drawn later than its script runs.  The label styles go into the frame's document once (a group's own
#: header never reaches a map frame that is already drawn).
_ON_MAP_JS = """
function bmOnMap(host, css, setup) {
    if (css && !document.getElementById('bm-label-css')) {
        var style = document.createElement('style');
        style.id = 'bm-label-css';
        style.textContent = css;
        document.head.appendChild(style);
    }
    if (host instanceof L.Map) { setup(host, host); return; }
    if (host._map) { setup(host._map, host); return; }
    host.once('add', function () { setup(host._map, host); });
}
"""

#: Zooms at which :data:`STREETS_JS` shows each part: every street, every name, the major streets' names.
STREET_ZOOMS = {"all": ALL_STREETS_ZOOM, "allNames": ALL_NAMES_ZOOM, "majorNames": MAJOR_NAMES_ZOOM}

#: ``bmStreets(map, host, data, styles, zooms)`` draws :func:`streets_for_map`'s ``lines``, ``labels`` and
#: ``areas`` into ``host`` (the map or a layer group on it), shown by zoom (:data:`STREET_ZOOMS`), in panes
#: that take no clicks: water and parks under the blocks, lines and names over them.  Shared by
#: :class:`StreetLayer` and the published snapshot's page, which has no folium.
STREETS_JS = """
function bmStreets(map, host, data, styles, zooms) {
    [['bm-areas', 350], ['bm-streets', 450], ['bm-labels', 460]].forEach(function (p) {
        var pane = map.getPane(p[0]) || map.createPane(p[0]);
        pane.style.zIndex = p[1];
        pane.style.pointerEvents = 'none';
    });
    L.geoJSON(data.areas, {
        pane: 'bm-areas', interactive: false,
        style: function (f) {
            var s = styles[f.properties.kind];
            return {fillColor: s[0], color: s[1], weight: 1, fillOpacity: 0.9, opacity: 1};
        }
    }).addTo(host);
    data.areas.features.forEach(function (f) {
        if (!f.properties.name) return;
        var span = document.createElement('span');
        span.textContent = f.properties.name;
        var c = L.geoJSON(f).getBounds().getCenter();
        L.marker(c, {pane: 'bm-labels', interactive: false, keyboard: false,
            icon: L.divIcon({className: 'bm-area-label', html: span, iconSize: null})}).addTo(host);
    });
    function lines(major) {
        return L.geoJSON(data.lines, {
            pane: 'bm-streets', interactive: false,
            filter: function (f) { return f.properties.major === major; },
            style: {color: '#ffffff', weight: major ? 4 : 2, opacity: major ? 0.95 : 0.85}
        });
    }
    function names(major) {
        var group = L.layerGroup();
        data.labels.forEach(function (p) {
            if (p[3] !== major) return;
            var span = document.createElement('span');
            var inner = document.createElement('span');
            inner.textContent = p[2];
            inner.style.transform = 'rotate(' + p[4] + 'deg)';
            inner.style.display = 'inline-block';
            span.appendChild(inner);
            L.marker([p[0], p[1]], {pane: 'bm-labels', interactive: false, keyboard: false,
                icon: L.divIcon({className: 'bm-street-label', html: span, iconSize: null})}).addTo(group);
        });
        return group;
    }
    var layers = [[lines(1), 0], [lines(0), zooms.all], [names(1), zooms.majorNames], [names(0), zooms.allNames]];
    function show() {
        var z = map.getZoom();
        layers.forEach(function (l) {
            if (z >= l[1]) { if (!host.hasLayer(l[0])) host.addLayer(l[0]); }
            else if (host.hasLayer(l[0])) host.removeLayer(l[0]);
        });
    }
    map.on('zoomend', show);
    if (host !== map) host.once('remove', function () { map.off('zoomend', show); });
    map.whenReady(show);
}
"""


class StreetLayer(MacroElement):
    """Streets and their names over a folium map, shown by zoom (see the module notes).

    Added to a map, or to a feature group (the dashboard swaps such groups in a map frame that stays):
    everything it draws is then in the group, and goes when the group goes.

    Parameters
    ----------
    prepared : dict
        The output of :func:`streets_for_map`.
    """

    _template = Template("""
    {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
    {% macro script(this, kwargs) %}
    (function () {
        {{ this.on_map_js }}
        {{ this.streets_js }}
        var data = {{ this.data | tojson }}, styles = {{ this.area_styles | tojson }};
        var zooms = {{ this.zooms | tojson }};
        bmOnMap({{ this._parent.get_name() }}, {{ this.css | tojson }}, function (map, host) {
            bmStreets(map, host, data, styles, zooms);
        });
    })();
    {% endmacro %}
    """)

    def __init__(self, prepared: dict) -> None:
        super().__init__()
        self._name = "StreetLayer"
        self.data = {
            "lines": prepared["lines"],
            "labels": prepared["labels"],
            "areas": prepared.get("areas") or {"type": "FeatureCollection", "features": []},
        }
        self.area_styles = AREA_STYLES
        self.css = LABEL_CSS
        self.on_map_js = _ON_MAP_JS
        self.streets_js = STREETS_JS
        self.zooms = STREET_ZOOMS


class BeatLabels(MacroElement):
    """Beat ids written on the map at a point inside each beat (:func:`beat_label_points`); on a map, or in a
    feature group as :class:`StreetLayer`.  In a city of more than :data:`LABEL_ALL_BEATS` beats they appear
    from two zoom levels in from the whole city."""

    _template = Template("""
    {% macro header(this, kwargs) %}<style>{{ this.css }}</style>{% endmacro %}
    {% macro script(this, kwargs) %}
    (function () {
        {{ this.on_map_js }}
        var points = {{ this.points | tojson }};
        bmOnMap({{ this._parent.get_name() }}, {{ this.css | tojson }}, function (map, host) {
            var pane = map.getPane('bm-labels') || map.createPane('bm-labels');
            pane.style.zIndex = 460;
            pane.style.pointerEvents = 'none';
            var labels = L.layerGroup();
            points.forEach(function (p) {
                var span = document.createElement('span');
                span.textContent = p[2];
                L.marker([p[0], p[1]], {pane: 'bm-labels', interactive: false, keyboard: false,
                    icon: L.divIcon({className: 'bm-beat-label', html: span, iconSize: null})}).addTo(labels);
            });
            // Many beats: written from two zoom levels in from the whole city (at city zoom they would cover it).
            var from = points.length <= {{ this.all_at_city_zoom }} ? -Infinity
                : map.getBoundsZoom(L.latLngBounds(points.map(function (p) { return [p[0], p[1]]; }))) + 2;
            function show() {
                if (map.getZoom() >= from) { if (!host.hasLayer(labels)) host.addLayer(labels); }
                else if (host.hasLayer(labels)) host.removeLayer(labels);
            }
            map.on('zoomend', show);
            if (host !== map) host.once('remove', function () { map.off('zoomend', show); });
            show();
        });
    })();
    {% endmacro %}
    """)

    def __init__(self, points: list[list]) -> None:
        super().__init__()
        self._name = "BeatLabels"
        self.points = points
        self.all_at_city_zoom = LABEL_ALL_BEATS
        self.css = LABEL_CSS
        self.on_map_js = _ON_MAP_JS


class FitBounds(MacroElement):
    """Fits the map to ``bounds`` (west, south, east, north) when this view is drawn, once per view.

    In a feature group the dashboard swaps in a map frame that stays, it moves the map to the new view (a
    beat after the city); the same view drawn again (a filter change) leaves the map where the user put it.
    """

    _template = Template("""
    {% macro script(this, kwargs) %}
    (function () {
        {{ this.on_map_js }}
        var box = {{ this.box | tojson }}, key = JSON.stringify(box);
        bmOnMap({{ this._parent.get_name() }}, null, function (map) {
            if (map._bmView === key) return;
            map._bmView = key;
            map.fitBounds(box);
        });
    })();
    {% endmacro %}
    """)

    def __init__(self, bounds: list[float]) -> None:
        super().__init__()
        self._name = "FitBounds"
        west, south, east, north = (round(float(v), 6) for v in bounds)
        self.box = [[south, west], [north, east]]
        self.on_map_js = _ON_MAP_JS


def base_layer(prepared: dict | None, *, bounds: list[float], labels: list[list] | None = None) -> folium.FeatureGroup:
    """A view's streets (:func:`streets_for_map`), beat labels and fit to ``bounds``, as one feature group for a
    map frame that stays (:func:`beatmap.ui.mapview.show_map`'s ``layers``)."""
    group = folium.FeatureGroup(name="Streets", control=False)
    if prepared and has_streets(prepared):
        StreetLayer(prepared).add_to(group)
    if labels:
        BeatLabels(labels).add_to(group)
    FitBounds(bounds).add_to(group)
    return group


def add_streets(m: folium.Map, prepared: dict | None) -> folium.Map:
    """Add a prepared street layer (:func:`streets_for_map`) to a map, if there are streets; returns the map."""
    if prepared and has_streets(prepared):
        StreetLayer(prepared).add_to(m)
    return m
