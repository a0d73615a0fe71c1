"""Folium map builders: data in, folium objects out.

Geometry is prepared for the browser once: simplified in metres with shared
edges kept (coverage simplification), reprojected to WGS84, snapped to about
1 m, and stripped to the columns the view shows (folium writes every column
it is given into the page).  Property values keep their raw text, so ids join,
compare and come back from a click as they are; tooltips show them as text
(:class:`TextTooltip`), never as markup.  Leaflet is loaded from the app's own
server (``asset_base``), never from a CDN.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from folium.template import Template

from beatmap import schema as S
from beatmap.crs import WGS84
from beatmap.errors import BeatmapError
from beatmap.naming import LANDMARK, block_label

if TYPE_CHECKING:
    from branca.element import Figure

    from beatmap.routing.route import Route

#: Where the app serves Leaflet (Streamlit static serving of ``static/``).
DEFAULT_ASSET_BASE = "/app/static/vendor/leaflet"

#: Colour and legend text per flag (Okabe-Ito palette: distinguishable with colour-blindness).
FLAG_STYLE: dict[str | None, tuple[str, str]] = {
    S.ENFORCEMENT_ONLY: ("#D55E00", "Enforcement only: police came only to enforce"),
    S.UNVISITED: ("#7F7F7F", "Unvisited: no foot patrol or community visit"),
    S.RARELY_VISITED: ("#E69F00", "Rarely visited: clearly below the beat's typical block"),
    None: ("#009E73", "Visited: not flagged"),
}

#: A flag in words, for tables and text a person reads (the frames keep the codes).
FLAG_WORDS: dict[str, str] = {
    S.ENFORCEMENT_ONLY: "Enforcement only",
    S.UNVISITED: "Unvisited",
    S.RARELY_VISITED: "Rarely visited",
}


class TextTooltip(folium.GeoJsonTooltip):
    """A GeoJSON tooltip (fields with aliases, as :class:`folium.GeoJsonTooltip`) that shows values as text.

    folium's own tooltip pastes each property value into an HTML string, so a
    value like ``<img src=x onerror=...>`` would become an element.  This one
    builds the same table with DOM nodes and ``textContent``: the GeoJSON keeps
    raw values, and what is shown is never read as markup.  The table, class
    name and options are folium's, so it looks the same (``localize`` is not
    supported: values show as they are).  Fields in ``optional`` get no row where
    they are empty (a block's landmark: most blocks have none).
    """

    def __init__(self, fields: Sequence[str], *, optional: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(fields=list(fields), **kwargs)
        self.optional = [f for f in optional if f in fields]

    _template = Template("""
    {% macro script(this, kwargs) %}
    {{ this._parent.get_name() }}.bindTooltip(function(layer){
        let div = L.DomUtil.create('div'), table = L.DomUtil.create('table', '', div);
        let aliases = {{ this.aliases | tojson }};
        let optional = {{ this.optional | tojson }};
        {{ this.fields | tojson }}.forEach(function(field, i){
            let value = layer.feature.properties[field];
            if (optional.indexOf(field) >= 0 && (value === null || value === undefined || value === '')) return;
            let row = L.DomUtil.create('tr', '', table);
            {% if this.labels %}L.DomUtil.create('th', '', row).textContent = aliases[i];{% endif %}
            L.DomUtil.create('td', '', row).textContent = value === null || value === undefined ? ''
                : typeof value == 'object' ? JSON.stringify(value) : String(value);
        });
        return div;
    }, {{ this.tooltip_options | tojavascript }});
    {% endmacro %}
    """)


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

    Text columns are plain ``str`` (missing values become ``""``) and keep
    their raw text: show them with :class:`TextTooltip`, which never reads
    them as HTML.
    """
    geoms = frame.geometry.to_numpy()
    if tolerance_m > 0 and len(geoms):
        geoms = shapely.coverage_simplify(geoms, tolerance_m)
    light = gpd.GeoDataFrame(frame[list(columns)].copy(), geometry=list(geoms), crs=frame.crs).to_crs(WGS84)
    light["geometry"] = shapely.set_precision(light.geometry.to_numpy(), precision_deg)
    for name in columns:
        if light[name].dtype == object or pd.api.types.is_string_dtype(light[name]):
            light[name] = light[name].map(lambda v: str(v) if v is not None and v == v else "")
    return light


#: Tooltips wrap inside the map instead of running off a phone's screen.
_TOOLTIP_CSS = ".leaflet-tooltip{white-space:normal;max-width:min(280px,70vw);overflow-wrap:anywhere}"


class TooltipFit(MacroElement):
    """Tooltips that fit the map and close on a tap elsewhere (phones have no hover to close them).

    Every time Leaflet places a tooltip, it is moved back inside the map's box (with a small
    margin) when it would run off an edge.  On a touch screen a tap opens a block's tooltip and
    nothing used to close it: a tap on the map outside every shape, or on a shape that has no
    tooltip, now closes the open ones.
    """

    _template = Template("""
    {% macro script(this, kwargs) %}
    (function () {
        var map = {{ this._parent.get_name() }}, margin = 4;
        if (!L.Tooltip.prototype._bmFits) {
            var place = L.Tooltip.prototype._setPosition;
            L.Tooltip.prototype._setPosition = function (pos) {
                place.call(this, pos);
                var el = this.getElement(), owner = this._map;
                if (!el || !owner) return;
                var box = owner.getContainer().getBoundingClientRect(), r = el.getBoundingClientRect();
                var dx = 0, dy = 0;
                if (r.right > box.right - margin) dx = box.right - margin - r.right;
                if (r.left + dx < box.left + margin) dx = box.left + margin - r.left;
                if (r.bottom > box.bottom - margin) dy = box.bottom - margin - r.bottom;
                if (r.top + dy < box.top + margin) dy = box.top + margin - r.top;
                if (dx || dy) L.DomUtil.setPosition(el, L.DomUtil.getPosition(el).add([dx, dy]));
            };
            L.Tooltip.prototype._bmFits = true;
        }
        map.on('click', function (e) {
            var target = e.originalEvent && e.originalEvent.target;
            var cls = target && target.getAttribute && (target.getAttribute('class') || '');
            if (/leaflet-interactive/.test(cls)) return;  // a tap on a block opens its own tooltip
            map.eachLayer(function (layer) { if (layer.closeTooltip) layer.closeTooltip(); });
        });
    })();
    {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "TooltipFit"


class ClickAtOnce(MacroElement):
    """A click on a shape reaches the dashboard at once, not a quarter of a second later.

    streamlit-folium sends what was clicked (``last_active_drawing``) 250 ms after the click, in case the
    map is still moving.  In the dashboard's map frame, once Leaflet has handled a click that hit a shape,
    this sends the clicked shape straight away, stamped with the click's time (``clicked_at``) so that a
    second click on the same shape counts too; the component's own delayed send then finds nothing new.
    It acts only where the map returns nothing but the clicked shape; outside the dashboard (an exported
    map) it does nothing.
    """

    _template = Template("""
    {% macro script(this, kwargs) %}
    (function () {
        var box = {{ this._parent.get_name() }}.getContainer();
        box.addEventListener('click', function () {
            var g = window.__GLOBAL_DATA__, st = window.Streamlit;
            if (!g || !st || JSON.stringify(g.returned_objects) !== '["last_active_drawing"]') return;
            var seen = g.last_object_clicked_count;  // before Leaflet handles the click (this listener captures)
            setTimeout(function () {
                if (g.last_object_clicked_count === seen || !g.last_active_drawing) return;  // no shape was hit
                g.last_active_drawing = Object.assign({}, g.last_active_drawing, {clicked_at: Date.now()});
                var data = {last_active_drawing: g.last_active_drawing};
                g.previous_data = data;
                st.setComponentValue(data);
            }, 0);
        }, true);
    })();
    {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "ClickAtOnce"


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
    m = folium.Map(
        location=[(south + north) / 2, (west + east) / 2], tiles=None, control_scale=True, prefer_canvas=False
    )
    m.default_js = [("leaflet", f"{asset_base}/leaflet.js")]
    m.default_css = [("leaflet_css", f"{asset_base}/leaflet.css")]
    root = cast("Figure", m.get_root())
    root.header.add_child(Element(f"<style>{_TOOLTIP_CSS}</style>"))
    TooltipFit().add_to(m)
    ClickAtOnce().add_to(m)
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
        style_function=lambda f: {
            "fillColor": colours.get(f["properties"].get("flag") or "", "#009E73"),
            "color": "#ffffff",
            "weight": 0.5,
            "fillOpacity": 0.75,
        },
        highlight_function=lambda f: {"weight": 2, "color": "#000000"},
        tooltip=TextTooltip(fields=tooltip_fields, aliases=["Block", "Beat", "Visits", "Enforcement", "Why flagged"]),
    ).add_to(m)
    folium.GeoJson(
        outlines.to_json(drop_id=True),
        name="Beats",
        style_function=lambda f: {"fill": False, "color": "#1a1a1a", "weight": 2},
        interactive=False,  # outlines sit on top; clicks must reach the blocks
    ).add_to(m)
    return add_legend(m)


class LegendFold(MacroElement):
    """Opens the map's folding legend (:func:`legend_html`) when the map is at least 600 px wide.

    The legend starts folded, and this runs with the map's own script (the dashboard inserts a
    map's HTML where inline scripts never run, so a script beside the legend would not fold it).
    """

    _template = Template("""
    {% macro script(this, kwargs) %}
    if ({{ this._parent.get_name() }}.getContainer().clientWidth >= 600) {
        document.querySelectorAll('details.bm-legend').forEach(function (d) { d.open = true; });
    }
    {% endmacro %}
    """)

    def __init__(self) -> None:
        super().__init__()
        self._name = "LegendFold"


def add_legend(m: folium.Map) -> folium.Map:
    """Put the flag legend on a map, folded on phones (:func:`legend_html`, :class:`LegendFold`); returns the map."""
    cast(Figure, m.get_root()).html.add_child(Element(legend_html()))
    LegendFold().add_to(m)
    return m


def legend_html() -> str:
    """The flag legend as a small HTML block (colours with words) over the map.

    It starts folded ("Colours", a tap opens it); :class:`LegendFold` opens it on a map 600 px
    wide or wider.  On a phone it would cover a quarter of the map.
    """
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'margin-right:6px"></span>{html.escape(text)}</div>'
        for colour, text in FLAG_STYLE.values()
    )
    return (
        '<details class="bm-legend" style="position:absolute;bottom:24px;right:10px;z-index:1000;'
        'background:#fff;padding:6px 8px;font:12px sans-serif;border:1px solid #999;border-radius:4px">'
        f'<summary style="cursor:pointer">Colours</summary>{rows}</details>'
    )


#: Sequential palette for numeric measures (viridis, light end last: readable with colour-blindness).
SEQUENTIAL = ("#440154", "#3B528B", "#21918C", "#5EC962", "#FDE725")
NO_DATA = "#D9D9D9"

#: What the beat view can colour blocks by: column -> legend title.
MEASURES: dict[str, str] = {
    "flag": "Flag",
    "visits": "Foot patrols and community visits",
    "days_visited": "Days with a foot patrol or community visit",
    "enforcement_share": "Enforcement share of all presence",
    "days_since_visit": "Days since the last foot patrol or community visit",
}


def measure_colours(values: pd.Series, measure: str) -> tuple[pd.Series, list[tuple[str, str]]]:
    """Colour per row for a measure, and the legend as (colour, words) pairs.

    ``flag`` uses the flag colours; numbers are cut into up to five classes
    at their quantiles (ranges in the legend); missing values are grey.
    """
    if measure == "flag":
        colours = values.map(lambda f: FLAG_STYLE.get(f if isinstance(f, str) else None, FLAG_STYLE[None])[0])
        return colours, [(c, t) for c, t in FLAG_STYLE.values()]
    numbers = pd.to_numeric(values, errors="coerce")
    present = numbers.dropna()
    if present.empty:
        return pd.Series(NO_DATA, index=values.index), [(NO_DATA, "No data")]
    fixed = _FIXED_EDGES.get(measure)
    edges = fixed if fixed is not None else np.unique(np.quantile(present, np.linspace(0, 1, len(SEQUENTIAL) + 1)))
    if len(edges) == 1:
        edges = np.array([edges[0], edges[0]])
    codes = np.clip(np.searchsorted(edges, numbers, side="right") - 1, 0, len(edges) - 2)
    palette = (
        SEQUENTIAL if len(edges) - 1 >= len(SEQUENTIAL) else SEQUENTIAL[:: max(1, len(SEQUENTIAL) // (len(edges) - 1))]
    )
    colours = pd.Series([palette[min(c, len(palette) - 1)] for c in codes], index=values.index)
    colours[numbers.isna()] = NO_DATA
    fmt = _formatter(measure)
    legend = [
        (palette[min(i, len(palette) - 1)], f"{fmt(edges[i])} to {fmt(edges[i + 1])}") for i in range(len(edges) - 1)
    ]
    if numbers.isna().any():
        legend.append((NO_DATA, "No data (never visited, or no presence at all)"))
    return colours, legend


#: Measures on a fixed scale get fixed classes, so colours mean the same in every view.
_FIXED_EDGES = {
    "coverage_pct": np.array([0, 20, 40, 60, 80, 100.0]),
    "enforcement_share": np.array([0, 0.2, 0.4, 0.6, 0.8, 1.0]),
}


def _formatter(measure: str) -> Callable[[float], str]:
    if measure == "enforcement_share":
        return lambda v: f"{v:.0%}"
    return lambda v: f"{v:,.0f}"


def choropleth(
    light: gpd.GeoDataFrame,
    colours: Sequence[str],
    *,
    name: str,
    tooltip_fields: Sequence[str],
    aliases: Sequence[str],
    highlight: str | None = None,
    id_field: str = S.BLOCK_ID,
    optional: Sequence[str] = (),
) -> folium.FeatureGroup:
    """A clickable layer of polygons filled with the given colours, as a feature group.

    ``light`` comes from :func:`display_frame` (raw ids, WGS84).  The block or
    beat whose ``id_field`` is ``highlight`` (the raw id) gets a thick outline.
    Tooltips show the values as text (:class:`TextTooltip`); ``optional`` fields
    get no row where they are empty.
    """
    frame = light.assign(_fill=list(colours))
    group = folium.FeatureGroup(name=name)
    folium.GeoJson(
        frame.to_json(drop_id=True),
        style_function=lambda f: {
            "fillColor": f["properties"]["_fill"],
            "fillOpacity": 0.8,
            "color": "#ffffff",
            "weight": 0.6,
            **(
                {"color": "#000000", "weight": 4}
                if highlight is not None and f["properties"][id_field] == highlight
                else {}
            ),
        },
        highlight_function=lambda f: {"weight": 3, "color": "#000000"},
        tooltip=TextTooltip(fields=list(tooltip_fields), aliases=list(aliases), optional=optional),
    ).add_to(group)
    return group


def outlines(light: gpd.GeoDataFrame, *, name: str = "Beats") -> folium.FeatureGroup:
    """Non-interactive outlines (beat edges) as a feature group."""
    group = folium.FeatureGroup(name=name)
    folium.GeoJson(
        light.to_json(drop_id=True),
        interactive=False,
        style_function=lambda f: {"fill": False, "color": "#1a1a1a", "weight": 2},
    ).add_to(group)
    return group


def area_outlines(light: gpd.GeoDataFrame, *, name: str = "Neglected areas") -> folium.FeatureGroup:
    """Neglected areas as thick dashed outlines over the blocks (not clickable: a click still picks a block)."""
    group = folium.FeatureGroup(name=name)
    folium.GeoJson(
        light.to_json(drop_id=True),
        interactive=False,
        style_function=lambda f: {"fill": False, "color": "#000000", "weight": 4, "dashArray": "8 6"},
    ).add_to(group)
    return group


def points_map(
    points: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
    limit: int = 1000,
) -> folium.Map:
    """A preview of an import: its first ``limit`` points (``lat``, ``lon``, ``kind``) over the beat outlines.

    ``beats`` is a light frame (:func:`display_frame`, WGS84) and may be empty.
    """
    shown = points.head(limit)
    if len(shown):
        bounds = [shown["lon"].min(), shown["lat"].min(), shown["lon"].max(), shown["lat"].max()]
    elif len(beats):
        bounds = list(beats.total_bounds)
    else:
        bounds = [-0.01, -0.01, 0.01, 0.01]
    m = base_map(bounds, tiles=tiles, asset_base=asset_base)
    if len(beats):
        folium.GeoJson(
            beats.to_json(drop_id=True),
            name="Beats",
            interactive=False,
            style_function=lambda f: {"fill": False, "color": "#1a1a1a", "weight": 1.5},
        ).add_to(m)
    colours = {"enforcement": "#D55E00", "foot_patrol": "#009E73", "community_visit": "#0072B2", "other": "#7F7F7F"}
    for row in shown.itertuples(index=False):
        folium.CircleMarker(
            [float(row.lat), float(row.lon)],
            radius=3,
            weight=1,
            fill=True,
            fill_opacity=0.7,
            color=colours.get(str(row.kind), "#7F7F7F"),
        ).add_to(m)
    return m


#: Fill of beats left out of the analysis (light grey, hatched look through low opacity).
NOT_ANALYSED = "#BDBDBD"


def not_analysed(light: gpd.GeoDataFrame, *, id_field: str = S.BEAT_ID, alias: str = "Beat") -> folium.FeatureGroup:
    """Beats (or blocks: ``id_field`` ``block_id``, ``alias`` "Block") left out of the analysis: grey, a tooltip
    saying so."""
    frame = light.assign(_status="not analysed (left out of the analysis)")
    group = folium.FeatureGroup(name="Not analysed")
    folium.GeoJson(
        frame.to_json(drop_id=True),
        style_function=lambda f: {
            "fillColor": NOT_ANALYSED,
            "fillOpacity": 0.5,
            "color": "#999999",
            "weight": 0.6,
            "dashArray": "4 3",
        },
        tooltip=TextTooltip(fields=[id_field, "_status"], aliases=[alias, "Status"]),
    ).add_to(group)
    return group


def legend_block(title: str, entries: Sequence[tuple[str, str]]) -> str:
    """A legend in words: a title and one swatch with text per class (HTML, escaped)."""
    rows = "".join(
        f'<div><span style="display:inline-block;width:12px;height:12px;background:{colour};'
        f'margin-right:6px;border:1px solid #999"></span>{html.escape(text)}</div>'
        for colour, text in entries
    )
    return f'<div style="font:13px sans-serif;line-height:1.5"><b>{html.escape(title)}</b>{rows}</div>'


def heat_map(
    points: pd.DataFrame,
    bounds: Sequence[float],
    *,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
    gradient: dict[float, str] | None = None,
) -> folium.Map:
    """A heat map of aggregated presence: one weighted point per block (``lat``, ``lon``, ``weight``).

    Built from block totals, never from raw event points.
    """
    from folium.plugins import HeatMap

    m = base_map(bounds, tiles=tiles, asset_base=asset_base)
    data = points.loc[points["weight"] > 0, ["lat", "lon", "weight"]].round({"lat": 5, "lon": 5})
    layer = HeatMap(data.to_numpy().tolist(), radius=18, blur=14, min_opacity=0.25, gradient=gradient)
    layer.default_js = [("leaflet-heat.js", f"{asset_base.rsplit('/', 1)[0]}/leaflet.heat/leaflet-heat.js")]
    layer.add_to(m)
    return m


def standalone_html(m: folium.Map, *, vendor_dir: str | Path) -> str:
    """The map as one HTML file that works offline: Leaflet's script and styles inlined.

    Raises
    ------
    BeatmapError
        When the vendored Leaflet files are missing (run ``make vendor``).
    """
    vendor = Path(vendor_dir)
    script, style = vendor / "leaflet.js", vendor / "leaflet.css"
    if not script.exists() or not style.exists():
        raise BeatmapError(f"Leaflet is not installed in {vendor}; run `make vendor`.")
    page = m.get_root().render()
    for _, url in list(m.default_js):
        page = page.replace(f'<script src="{url}"></script>', f"<script>{script.read_text()}</script>")
    for _, url in list(m.default_css):
        page = page.replace(f'<link rel="stylesheet" href="{url}"/>', f"<style>{style.read_text()}</style>")
    return page


def beat_summary_html(
    beat_id: str,
    period: str,
    figures: Sequence[tuple[str, str]],
    flagged: pd.DataFrame,
    map_html: str | None = None,
    note: str | None = None,
) -> str:
    """A one-page, print-ready summary of a beat for roll call or a community meeting.

    Parameters
    ----------
    beat_id : str
    period : str
        The window and filters in words.
    figures : sequence of (label, value)
        Key figures, e.g. ("Coverage", "84%").
    flagged : DataFrame
        Flagged blocks: ``block_id``, ``flag``, ``visits``, ``enforcement``,
        ``last_visit``, ``flag_reason``.
    map_html : str, optional
        A standalone map page (:func:`standalone_html`) embedded as a frame.
    note : str, optional
        A line shown under the period and in place of an empty block list, e.g. that the beat is not
        analysed.
    """
    esc = html.escape
    cells = "".join(f"<div class='fig'><div class='v'>{esc(v)}</div><div>{esc(k)}</div></div>" for k, v in figures)
    rows = (
        "".join(
            "<tr>"
            + "".join(
                f"<td>{esc('' if v is None or v != v else str(v))}</td>"
                for v in (
                    block_label(r.block_id, getattr(r, "street_name", None)),
                    str(r.flag).replace("_", " "),
                    r.visits,
                    r.enforcement,
                    r.last_visit,
                    r.flag_reason,
                )
            )
            + "</tr>"
            for r in flagged.itertuples(index=False)
        )
        or f"<tr><td colspan='6'>{esc(note or 'No block is flagged in this period.')}</td></tr>"
    )
    remark = f"<p class='note'><b>{esc(note)}</b></p>" if note else ""
    frame = (
        f"<iframe srcdoc='{esc(map_html, quote=True)}' title='Map of beat {esc(beat_id)}'></iframe>" if map_html else ""
    )
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Beat {esc(beat_id)}: coverage summary</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#111}} h1{{margin:0 0 .2rem}}
.figs{{display:flex;flex-wrap:wrap;gap:.8rem;margin:1rem 0}} .fig{{border:1px solid #bbb;padding:.4rem .8rem}}
.v{{font-size:1.5rem;font-weight:600}} table{{border-collapse:collapse;width:100%;font-size:12px}}
td,th{{border:1px solid #ccc;padding:3px 5px;text-align:left;vertical-align:top}}
iframe{{width:100%;height:330px;border:1px solid #bbb}}
@media print{{body{{margin:0}} @page{{size:letter;margin:12mm}}}}
</style></head><body>
<h1>Beat {esc(beat_id)}: where officers spent time outside enforcement</h1>
<div>{esc(period)}</div>
{remark}
<div class="figs">{cells}</div>
{frame}
<h2>Blocks to attend to</h2>
<table><thead><tr><th>Block</th><th>Flag</th><th>Visits</th><th>Enforcement</th><th>Last visit</th>
<th>Why</th></tr></thead><tbody>{rows}</tbody></table>
<p><small>Visits are logged foot patrols and community visits. A block is flagged when police came only to
enforce, never came on foot, or came clearly less than the beat's typical block.</small></p>
</body></html>"""


def route_map(
    blocks: gpd.GeoDataFrame,
    beat: gpd.GeoDataFrame,
    route: Route | None = None,
    *,
    marker: tuple[float, float] | None = None,
    tiles: str = "none",
    asset_base: str = DEFAULT_ASSET_BASE,
) -> folium.Map:
    """A beat's blocks coloured by flag (grey when not analysed), with a walking route drawn on them and its stops
    numbered.

    Parameters
    ----------
    blocks : GeoDataFrame
        The beat's block coverage (:func:`beatmap.report.block_coverage`) in a metric CRS; a ``status``
        column marks the blocks of a beat left out of the analysis (grey, "not analysed" in the tooltip).
    beat : GeoDataFrame
        The beat's outline (``beat_id`` and geometry) in a metric CRS.
    route : Route, optional
        A planned route (:func:`beatmap.routing.plan.plan_walking_route`); its path, numbered stops,
        start and end are drawn.
    marker : tuple of float, optional
        ``(lat, lon)`` of a chosen place (a start, or where a visit is logged), drawn as a ring.
    """
    left_out = blocks["status"] == S.NOT_ANALYSED if "status" in blocks else pd.Series(False, index=blocks.index)
    shown = blocks.assign(flag_reason=blocks["flag_reason"].where(~left_out, "Not analysed (left out of the analysis)"))
    landmark = [LANDMARK] if LANDMARK in shown else []
    light = display_frame(shown.assign(_left_out=left_out), [S.BLOCK_ID, *landmark, "flag", "flag_reason", "_left_out"])
    outline = display_frame(beat, [S.BEAT_ID], tolerance_m=5.0)
    m = base_map(outline.total_bounds if len(outline) else light.total_bounds, tiles=tiles, asset_base=asset_base)
    colours = {k or "": v[0] for k, v in FLAG_STYLE.items()}
    folium.GeoJson(
        light.to_json(drop_id=True),
        name="Blocks",
        style_function=lambda f: {
            "fillColor": NOT_ANALYSED
            if f["properties"].get("_left_out")
            else colours.get(f["properties"].get("flag") or "", "#009E73"),
            "color": "#ffffff",
            "weight": 0.5,
            "fillOpacity": 0.55,
        },
        tooltip=TextTooltip(
            fields=[S.BLOCK_ID, *landmark, "flag_reason"],
            aliases=["Block", *(["Landmark"] * len(landmark)), "Why flagged"],
            optional=landmark,
        ),
    ).add_to(m)
    folium.GeoJson(
        outline.to_json(drop_id=True),
        name="Beat",
        interactive=False,
        style_function=lambda f: {"fill": False, "color": "#1a1a1a", "weight": 2},
    ).add_to(m)
    if route is not None:
        folium.PolyLine(
            [list(p) for p in route.path],
            color="#0072B2",
            weight=4,
            opacity=0.9,
            dash_array="8 6" if route.straight_line else None,
            tooltip="Straight-line estimate" if route.straight_line else "Walking route",
        ).add_to(m)
        folium.CircleMarker(
            list(route.start),
            radius=7,
            color="#000000",
            fill=True,
            fill_color="#ffffff",
            fill_opacity=1,
            tooltip="Start",
        ).add_to(m)
        if route.end != route.start:
            folium.CircleMarker(
                list(route.end),
                radius=7,
                color="#000000",
                fill=True,
                fill_color="#000000",
                fill_opacity=1,
                tooltip="End",
            ).add_to(m)
        at_place: dict[tuple[float, float], list] = {}
        for stop in route.stops:  # neighbouring blocks can be reached at the same corner: one badge, "2, 3"
            at_place.setdefault((stop.lat, stop.lon), []).append(stop)
        for (lat, lon), stops in at_place.items():
            label = ", ".join(str(stop.number) for stop in stops)
            width = 16 + 8 * len(label)
            folium.Marker(
                [lat, lon],
                icon=folium.DivIcon(
                    html=_stop_badge(label, width), icon_size=(width, 24), icon_anchor=(width // 2, 12)
                ),
                tooltip=html.escape("; ".join(f"{stop.number}. {stop.block_id}: {stop.reason}" for stop in stops)),
            ).add_to(m)
    if marker is not None:
        folium.CircleMarker(
            list(marker), radius=9, color="#CC79A7", weight=3, fill=False, tooltip="Chosen place"
        ).add_to(m)
    return add_legend(m)


def _stop_badge(label: str, width: int) -> str:
    """A numbered badge for the route stops at one place (HTML for a ``DivIcon``); ``label`` is digits."""
    return (
        f'<div style="width:{width}px;height:24px;border-radius:12px;background:#0072B2;color:#fff;'
        'font:bold 13px/20px sans-serif;text-align:center;border:2px solid #fff;box-sizing:border-box">'
        f"{html.escape(label)}</div>"
    )
