"""The public snapshot's web page and its on-demand files, made from the snapshot's data files alone.

``index.html`` is the first view: Leaflet inlined, the city's beats outlined
and shaded by coverage, the beat and week-by-week tables, and the notes.  It
stays light at any city size: a beat's blocks are in ``beats/beat-NNNN.js``,
loaded when the beat is chosen, and the text of every block (for the search)
in ``search.js``, loaded at the first search.  They are scripts, not data
fetched with ``fetch``, so the page also works opened straight from disk
(browsers refuse ``fetch`` on ``file://``) and nothing comes from a network.

Every file here is a pure function of the snapshot's data (``coverage.geojson``,
``beats.csv``, ``trend.csv``) and its manifest's dates and rules, through
:func:`site_files`: publishing writes them, and ``beatmap publish --check``
makes them again and compares, so an edited sentence, table cell or script in
the page is found even when its checksum in the manifest was recomputed.
Text from the data reaches the page only escaped, or as JSON that the page's
script puts in as text (never as HTML).
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path

import shapely
from shapely.geometry import shape

from beatmap import snapshot as snap
from beatmap.basemap import AREA_STYLES, LABEL_CSS, STREET_ZOOMS, STREETS_JS
from beatmap.errors import BeatmapError, InputError
from beatmap.publicmap import (
    COVERAGE_CLASSES,
    ENFORCEMENT_EDGE,
    LEVEL_STYLE,
    OUTLINE_TOLERANCE_DEG,
    UNKNOWN_FILL,
    beat_outlines,
    coverage_legend_html,
    public_legend_html,
)

__all__ = ["BLOCK_HEADINGS", "block_headings", "page_data", "site_files"]

#: Search results listed at most (the count says how many matched).
SEARCH_SHOWN = 200


def site_files(
    manifest: Mapping,
    collection: Mapping,
    beats: Sequence[Mapping[str, str]],
    trend: Sequence[Mapping[str, str]],
    *,
    leaflet_dir: str | os.PathLike,
    streets: bool = False,
) -> dict[str, str]:
    """The page and its on-demand files, by name relative to the snapshot folder.

    Parameters
    ----------
    manifest : mapping
        The snapshot's manifest (only ``as_of``, ``data_start``, ``data_end``,
        ``rules`` and ``override`` are read).
    collection : mapping
        ``coverage.geojson``.
    beats, trend : sequence of mapping
        The rows of ``beats.csv`` and ``trend.csv``, as text.
    leaflet_dir : path
        Leaflet's ``leaflet.js`` and ``leaflet.css``, inlined into the page.
    streets : bool
        The snapshot has a base map (``streets.js``, a data file publishing writes): the page loads it
        with the city view and draws it.
    """
    features = list(collection.get("features") or [])
    fields = snap.block_fields(snap.publishes_presence(manifest))
    by_beat: dict[str, list[dict]] = {}
    for feature in features:
        by_beat.setdefault(str(feature["properties"].get("beat_id", "")), []).append(_published(feature, fields))
    beat_ids = sorted(by_beat)
    files = {
        snap.beat_file(n): _js_call(snap.BEAT_CALL, [n, {"type": "FeatureCollection", "features": by_beat[b]}])
        for n, b in enumerate(beat_ids)
    }
    files[snap.SEARCH] = _js_call(snap.SEARCH_CALL, [[f["properties"][k] for k in fields] for f in features])
    files[snap.INDEX] = _page(manifest, beat_ids, by_beat, beats, trend, leaflet_dir=Path(leaflet_dir), streets=streets)
    return files


def _published(feature: Mapping, fields: tuple[str, ...] = snap.BLOCK_FIELDS) -> dict:
    props = feature.get("properties") or {}
    return {
        "type": "Feature",
        "properties": {k: props.get(k, "") for k in fields},
        "geometry": feature["geometry"],
    }


def _js_call(call: str, payload: object) -> str:
    return call + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + ");\n"


# --- the city view ------------------------------------------------------------------------------


def _label_points(outlines: Mapping) -> list[list | None]:
    points: list[list | None] = []
    for feature in outlines["features"]:
        inside = shapely.point_on_surface(shape(feature["geometry"]))
        points.append(
            None if inside.is_empty else [round(inside.y, snap.COORD_DECIMALS), round(inside.x, snap.COORD_DECIMALS)]
        )
    return points


# --- the page -----------------------------------------------------------------------------------

_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;background:#fff;margin:0}
header,main{max-width:1100px;margin:0 auto;padding:0 12px}
h1{font-size:1.6rem;margin:16px 0 4px}
#map{height:65vh;min-height:320px;border:1px solid #777}
.chooser{margin:8px 0}.chooser select,.search input{font:inherit;padding:4px 6px;max-width:100%}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:14px;min-width:100%}
th,td{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right}
.legend-static div{display:inline-block;margin:2px 14px 2px 0}
.legend-static p{margin:8px 0 0}
a{color:#005a8c}
.sr{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}
.skip{position:absolute;left:-9999px;top:0;background:#fff;padding:6px 10px;border:2px solid #005a8c;z-index:2000}
.skip:focus{left:8px;top:8px}
.search{margin:8px 0}.search input{min-width:16em}
.notice{border-left:4px solid #b35900;padding:4px 10px;background:#fff4e5}
.bm-beat-label{background:none;border:none;white-space:nowrap;pointer-events:none}
.bm-beat-label span{font:bold 13px/1 sans-serif;color:#000;background:rgba(255,255,255,.85);border:1px solid #333;
border-radius:3px;padding:2px 4px;position:relative;left:-50%;top:-9px}
.leaflet-tooltip{white-space:normal;max-width:min(280px,70vw);overflow-wrap:anywhere}
@media (max-width:600px){h1{font-size:1.3rem}#map{height:55vh}table{font-size:13px}}
"""

_TITLE = "Police presence outside enforcement"


def _page(
    manifest: Mapping,
    beat_ids: Sequence[str],
    by_beat: Mapping[str, list[dict]],
    beats: Sequence[Mapping[str, str]],
    trend: Sequence[Mapping[str, str]],
    *,
    leaflet_dir: Path,
    streets: bool,
) -> str:
    script, style = leaflet_dir / "leaflet.js", leaflet_dir / "leaflet.css"
    if not script.is_file() or not style.is_file():
        raise BeatmapError(f"Leaflet is not installed in {leaflet_dir}; run `make vendor`.")
    try:
        start, end, as_of = (date.fromisoformat(str(manifest[k])) for k in ("data_start", "data_end", "as_of"))
        rules = manifest["rules"]
        delay = int(rules["delay_days"])
        levels = {str(k): str(v) for k, v in (rules.get("levels") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{snap.MANIFEST}: its dates or rules cannot be read ({exc}); publish again.") from exc
    outlines = beat_outlines([f for b in beat_ids for f in by_beat[b]], tolerance_deg=OUTLINE_TOLERANCE_DEG)
    coverage = {str(r.get("beat_id", "")): _int(r.get("coverage_pct")) for r in beats}
    data = {
        "outlines": outlines,
        "labels": _label_points(outlines),
        "coverage": [coverage.get(b) for b in beat_ids],
        "files": [snap.beat_file(n) for n in range(len(beat_ids))],
        "search": snap.SEARCH,
        "shown": SEARCH_SHOWN,
        "fields": list(snap.block_fields(snap.publishes_presence(manifest))),
        "levels": {k: LEVEL_STYLE[k][0] for k in snap.LEVELS},
        "classes": [[upper, LEVEL_STYLE[level][0]] for upper, level, _ in COVERAGE_CLASSES],
        "edge": ENFORCEMENT_EDGE,
        "unknown": UNKNOWN_FILL,
        "bounds": _bounds(outlines),
        "streets": {"file": snap.STREETS, "styles": AREA_STYLES, "zooms": STREET_ZOOMS} if streets else None,
    }
    override = manifest.get("override")
    notice = (
        f'<p class="notice">This snapshot was published with a shorter delay ({_int(override.get("delay_days"))} '
        f"days) than the usual {_int(override.get('rule_delay_days'))} days, by a decision the department "
        "recorded.</p>"
        if isinstance(override, Mapping)
        else ""
    )
    options = "".join(f'<option value="{n}">{html.escape(b)}</option>' for n, b in enumerate(beat_ids))
    body = (
        '<a class="skip" href="#tables">Skip the map: go to the tables</a>'
        f"<header><h1>{_TITLE}</h1><p>Foot patrols and community visits by police, block by block, from "
        f"{snap.day_text(start)} to {snap.day_text(end)}. Published {snap.day_text(as_of)}; nothing from the "
        f"last {delay} days is included.</p>{notice}</header><main>"
        '<p id="map-help">The map first shows the whole city: each beat shaded by the share of its blocks that '
        "police walked or visited. Choose a beat, in the list or on the map, to see its blocks, each coloured by "
        "how often police walked it or visited people there. A text version is in the tables below.</p>"
        '<div class="chooser"><label for="beat-select">Beat: </label><select id="beat-select">'
        f'<option value="">Whole city</option>{options}</select> <span id="beat-status" aria-live="polite">'
        "</span></div>"
        '<div id="map" role="region" aria-label="Map of beats and blocks" aria-describedby="map-help"></div>'
        + _legends(levels)
        + _tables(
            beats,
            trend,
            count=sum(len(v) for v in by_beat.values()),
            headings=block_headings(snap.publishes_presence(manifest)),
        )
        + _about(manifest)
        + _downloads()
        + "</main>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_TITLE}</title><style>{style.read_text(encoding='utf-8')}</style><style>{LABEL_CSS}{_STYLE}</style>"
        f"</head><body>{body}"
        f"{_DATA_OPEN}{_json_for_html(data)}</script>"
        f"<script>{script.read_text(encoding='utf-8')}</script><script>{STREETS_JS}{_SCRIPT}</script></body></html>\n"
    )


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def _bounds(outlines: Mapping) -> list[list[float]]:
    shapes = [shape(f["geometry"]) for f in outlines["features"]]
    if not shapes:
        return [[-85.0, -180.0], [85.0, 180.0]]
    west, south, east, north = shapely.total_bounds(shapes)
    return [[float(south), float(west)], [float(north), float(east)]]


#: Where the page's own data starts (:func:`_page` writes it; :func:`page_data` reads it back).
_DATA_OPEN = '<script type="application/json" id="beatmap-data">'


def page_data(page: str) -> dict:
    """The data a published ``index.html`` carries for its map, as :func:`site_files` wrote it: the beats'
    outlines (``outlines``, the city view's shapes), their label points, coverage per beat and how to draw them.

    Raises
    ------
    InputError
        When the page holds no such data (not a page publishing wrote).
    """
    start = page.find(_DATA_OPEN)
    end = page.find("</script>", start)
    if start < 0 or end < 0:
        raise InputError(f"{snap.INDEX}: holds no map data; publish the snapshot again.")
    try:
        data = json.loads(page[start + len(_DATA_OPEN) : end])
    except json.JSONDecodeError as exc:
        raise InputError(f"{snap.INDEX}: its map data is not valid JSON ({exc}); publish the snapshot again.") from exc
    if not isinstance(data, dict) or not isinstance(data.get("outlines"), dict):
        raise InputError(f"{snap.INDEX}: its map data has no beat outlines; publish the snapshot again.")
    return data


def _json_for_html(data: object) -> str:
    """JSON safe inside a ``<script>`` element: no ``<``, ``>`` or ``&`` that HTML would read."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _legends(levels: Mapping[str, str]) -> str:
    return (
        f'<div class="legend-static" aria-label="Map legend"><p>Whole city:</p>{coverage_legend_html(overlay=False)}'
        f"<p>One beat: each block</p>{public_legend_html(levels or None, overlay=False)}</div>"
    )


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, caption: str, numeric: Sequence[bool]) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td{' class=n' if right else ''}>{html.escape(str(v))}</td>"
            for v, right in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table><caption class="sr">{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


_BEAT_HEADERS = (
    ("beat_id", "Beat"),
    ("blocks", "Blocks"),
    ("coverage_pct", "Coverage"),
    ("blocks_visits_withheld", "Blocks with visits withheld"),
    ("visits_on_shown_blocks", "Visits on shown blocks"),
    ("enforcement_on_shown_blocks", "Enforcement on shown blocks"),
    ("blocks_mostly_enforcement", "Blocks mostly enforcement"),
)
#: Column headings of the block tables, in the order of :data:`~beatmap.snapshot.BLOCK_FIELDS`.
BLOCK_HEADINGS = (
    "Block",
    "Where",
    "Beat",
    "Visit level",
    "Foot patrols and community visits",
    "Enforcement events",
    "Police presence",
)


def block_headings(presence: bool) -> tuple[str, ...]:
    """Column headings of the block tables, in the order of :func:`beatmap.snapshot.block_fields`."""
    return (*BLOCK_HEADINGS, snap.PRESENCE_HEADING) if presence else BLOCK_HEADINGS


def _tables(
    beats: Sequence[Mapping[str, str]],
    trend: Sequence[Mapping[str, str]],
    *,
    count: int,
    headings: Sequence[str] = BLOCK_HEADINGS,
) -> str:
    beat_rows = [[f"{r.get(k, '')}%" if k == "coverage_pct" else r.get(k, "") for k, _ in _BEAT_HEADERS] for r in beats]
    beat_table = _table(
        [h for _, h in _BEAT_HEADERS],
        beat_rows,
        caption="Beats: coverage and counts",
        numeric=[k != "beat_id" for k, _ in _BEAT_HEADERS],
    )
    weeks = sorted({r.get("week_start", "") for r in trend})
    shares: dict[str, dict[str, str]] = {}
    for r in trend:
        shares.setdefault(r.get("beat_id", ""), {})[r.get("week_start", "")] = f"{r.get('coverage_pct', '')}%"
    trend_rows = [[b, *(shares[b].get(w, "") for w in weeks)] for b in sorted(shares)]
    trend_part = (
        _table(
            ["Beat", *[f"Week of {w}" for w in weeks]],
            trend_rows,
            caption="Share of blocks visited each week",
            numeric=[False, *[True] * len(weeks)],
        )
        if trend_rows
        else "<p>No beat has enough blocks for weekly shares (a share of a small beat would show single blocks).</p>"
    )
    block_head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headings)
    block_table = (
        '<div class="scroll"><table id="block-table"><caption id="block-caption">Blocks</caption>'
        f"<thead><tr>{block_head}</tr></thead><tbody></tbody></table></div>"
    )
    return (
        f'<h2 id="tables" tabindex="-1">Beats</h2>{beat_table}'
        "<h2>Week by week</h2><p>Share of each beat's blocks with a foot patrol or community visit, rounded to the "
        f"nearest 10%.</p>{trend_part}"
        f'<h2 id="blocks">Every block</h2><p>All {count:,} blocks are in the files below. Choose a beat above to '
        "list its blocks here, or find blocks by street name or block anywhere in the city.</p>"
        '<div class="search" role="search"><label for="block-search">Find a block by street name or block: '
        '</label><input id="block-search" type="search" autocomplete="off" aria-describedby="block-found">'
        ' <span id="block-found" aria-live="polite"></span></div>'
        f"{block_table}"
    )


def _about(manifest: Mapping) -> str:
    """The notes, made from the manifest (as ``README.txt`` is): underlined lines become headings,
    ``- `` lines a list, the rest paragraphs."""
    about = snap.about_from_manifest(manifest)
    parts = ['<h2 id="about">About this map</h2>']
    for block in about.strip().split("\n\n"):
        lines = block.split("\n")
        if len(lines) == 2 and set(lines[1]) <= {"=", "-"}:
            parts += [] if lines[1].startswith("=") else [f"<h3>{html.escape(lines[0])}</h3>"]
        elif all(line.startswith("- ") for line in lines):
            parts.append("<ul>" + "".join(f"<li>{html.escape(line[2:])}</li>" for line in lines) + "</ul>")
        else:
            parts.append(f"<p>{html.escape(' '.join(lines))}</p>")
    return "<section>" + "".join(parts) + "</section>"


def _downloads() -> str:
    links = ", ".join(
        f'<a href="{n}">{n}</a>'
        for n in (snap.BLOCKS_CSV, snap.GEOJSON, snap.BEATS_CSV, snap.TREND_CSV, snap.ABOUT, snap.MANIFEST)
    )
    return f"<p>Download the data: {links}.</p>"


#: The page's script: the city view, a beat's blocks on demand, the block table and the search.
#: Text from the data is set with ``textContent``, never as HTML.
_SCRIPT = r"""
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('beatmap-data').textContent);
  var fields = data.fields, headings = [];
  document.querySelectorAll('#block-table thead th').forEach(function (th) { headings.push(th.textContent); });
  var map = L.map('map', {zoomSnap: 0.25});
  map.fitBounds(data.bounds);
  var select = document.getElementById('beat-select'), status = document.getElementById('beat-status');
  var tbody = document.querySelector('#block-table tbody'), caption = document.getElementById('block-caption');
  var loaded = {}, waiting = {}, blocks = null, current = -1;

  function beatColour(pct) {
    if (pct === null || pct === undefined) return data.unknown;
    for (var i = 0; i < data.classes.length; i++) if (pct <= data.classes[i][0]) return data.classes[i][1];
    return data.classes[data.classes.length - 1][1];
  }
  function text(lines) {
    var box = document.createElement('div');
    lines.forEach(function (line) {
      var row = document.createElement('div'), b = document.createElement('b');
      b.textContent = line[0] + ': ';
      row.appendChild(b);
      row.appendChild(document.createTextNode(String(line[1])));
      box.appendChild(row);
    });
    return box;
  }
  var outlines = L.geoJSON(data.outlines, {
    style: function (f) {
      var n = data.outlines.features.indexOf(f);
      return {color: '#000000', weight: 2, fillColor: beatColour(data.coverage[n]), fillOpacity: 0.85};
    },
    onEachFeature: function (f, layer) {
      var n = data.outlines.features.indexOf(f), pct = data.coverage[n];
      layer.bindTooltip(text([['Beat', f.properties.beat_id],
        ['Blocks visited', pct === null ? 'not known' : pct + '%'], ['Tap or click', 'to see its blocks']]),
        {sticky: true});
      layer.on('click', function () { choose(n); });
    }
  }).addTo(map);
  // Beat labels: all of them in a small city; in a large one from two zoom levels in, where they no longer
  // cover each other (the list and the tooltips name every beat).
  var labels = L.layerGroup();
  data.labels.forEach(function (point, n) {
    if (!point) return;
    var span = document.createElement('span');
    span.textContent = data.outlines.features[n].properties.beat_id;
    var holder = document.createElement('div');
    holder.appendChild(span);
    L.marker(point, {icon: L.divIcon({className: 'bm-beat-label', html: holder, iconSize: null}),
                     interactive: false, keyboard: false}).addTo(labels);
  });
  var labelZoom = data.labels.length <= 40 ? 0 : map.getZoom() + 2;
  function showLabels() {
    if (map.getZoom() >= labelZoom) labels.addTo(map); else map.removeLayer(labels);
  }
  map.on('zoomend', showLabels);
  showLabels();

  function blockStyle(f) {
    var fill = data.levels[f.properties.visit_level] || '#FFFFFF';
    if (f.properties.presence === 'mostly enforcement')
      return {fillColor: fill, fillOpacity: 0.85, color: data.edge, weight: 3, dashArray: '6 4'};
    return {fillColor: fill, fillOpacity: 0.85, color: '#737373', weight: 0.6};
  }
  function row(values) {
    var tr = document.createElement('tr');
    values.forEach(function (v) {
      var td = document.createElement('td');
      td.textContent = String(v);
      tr.appendChild(td);
    });
    return tr;
  }
  function showRows(rows, title) {
    caption.textContent = title;
    tbody.textContent = '';
    rows.forEach(function (values) { tbody.appendChild(row(values)); });
  }
  // Presence minutes (when published) in words, as beatmap.publicsite.presence_text writes them.
  function say(k, v) {
    if (k !== 'presence_minutes') return v;
    if (typeof v !== 'number') return 'withheld (fewer than 3 patrol devices)';
    if (v === 0) return 'under 8 minutes of police presence outside calls';
    return 'about ' + v.toLocaleString('en-US') + ' minutes' +
      (v >= 120 ? ' (' + Math.round(v / 60).toLocaleString('en-US') + ' hours)' : '') +
      ' of police presence outside calls';
  }
  function values(props) { return fields.map(function (k) { return say(k, props[k]); }); }

  function draw(n) {
    var collection = loaded[n];
    if (blocks) map.removeLayer(blocks);
    outlines.setStyle(function (f) {
      var mine = data.outlines.features.indexOf(f) === n;
      return {color: '#000000', weight: mine ? 3 : 1, fillOpacity: mine ? 0 : 0.2,
              fillColor: beatColour(data.coverage[data.outlines.features.indexOf(f)])};
    });
    blocks = L.geoJSON(collection, {
      style: blockStyle,
      onEachFeature: function (f, layer) {
        layer.bindTooltip(text(fields.map(function (k, i) { return [headings[i], say(k, f.properties[k])]; })),
          {sticky: true});
      }
    }).addTo(map);
    map.fitBounds(blocks.getBounds());
    var beat = select.options[n + 1].text;
    showRows(collection.features.map(function (f) { return values(f.properties); }),
             'Blocks of beat ' + beat);
    status.textContent = 'Beat ' + beat + ': ' + collection.features.length + ' blocks';
  }
  function load(file, key, then) {
    if (loaded[key] !== undefined) { then(); return; }
    if (waiting[key]) { waiting[key].push(then); return; }
    waiting[key] = [then];
    var tag = document.createElement('script');
    tag.src = file;
    tag.onerror = function () {
      delete waiting[key];
      status.textContent = 'This part of the map could not be loaded (' + file + ').';
    };
    document.body.appendChild(tag);
  }
  window.beatmapBeat = function (beat) {  // [n, collection]: one JSON value, as the check reads it
    var n = beat[0];
    loaded[n] = beat[1];
    (waiting[n] || []).forEach(function (f) { f(); });
    delete waiting[n];
  };
  window.beatmapStreets = function (streets) {
    loaded.streets = streets;
    (waiting.streets || []).forEach(function (f) { f(); });
    delete waiting.streets;
  };
  // The base map: streets and their names over the blocks, water and parks under them (bmStreets).
  if (data.streets) load(data.streets.file, 'streets', function () {
    bmStreets(map, map, loaded.streets, data.streets.styles, data.streets.zooms);
  });
  window.beatmapSearch = function (rows) {
    loaded.search = rows;
    (waiting.search || []).forEach(function (f) { f(); });
    delete waiting.search;
  };
  function city() {
    current = -1;
    if (blocks) { map.removeLayer(blocks); blocks = null; }
    outlines.setStyle(function (f) {
      return {color: '#000000', weight: 2, fillOpacity: 0.85,
              fillColor: beatColour(data.coverage[data.outlines.features.indexOf(f)])};
    });
    map.fitBounds(data.bounds);
    showRows([], 'Blocks');
    status.textContent = '';
  }
  function choose(n) {
    n = Number(n);
    select.value = n < 0 ? '' : String(n);
    if (n < 0) { city(); return; }
    current = n;
    status.textContent = 'Loading the blocks of beat ' + select.options[n + 1].text + '…';
    load(data.files[n], n, function () { if (current === n) draw(n); });
  }
  select.addEventListener('change', function () { choose(select.value === '' ? -1 : select.value); });

  var box = document.getElementById('block-search'), found = document.getElementById('block-found'), timer = null;
  function search() {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) { found.textContent = ''; if (current >= 0) draw(current); else showRows([], 'Blocks'); return; }
    load(data.search, 'search', function () {
      var hits = loaded.search.filter(function (values) {
        var line = values.join(' ').toLowerCase();
        return words.every(function (w) { return line.indexOf(w) >= 0; });
      });
      var inWords = function (r) { return r.map(function (v, i) { return say(fields[i], v); }); };
      showRows(hits.slice(0, data.shown).map(inWords), 'Blocks found: ' + box.value);
      found.textContent = hits.length + (hits.length === 1 ? ' block' : ' blocks') +
        (hits.length > data.shown ? ' (the first ' + data.shown + ' are listed)' : '');
    });
  }
  box.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(search, 150); });
})();
"""
