"""A route for the officer: a GPX 1.1 file, a printable one-page card, and plain text for a terminal."""

from __future__ import annotations

import html
import math
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from beatmap.errors import InputError
from beatmap.routing.route import Route, Stop

_GPX_NS = "http://www.topografix.com/GPX/1/1"


def route_to_gpx(route: Route, *, created: datetime | None = None, stop_names: Mapping[str, str] | None = None) -> str:
    """The route as a GPX 1.1 document: numbered waypoints for the stops and a route along the path.

    Parameters
    ----------
    route : Route
    created : datetime, optional
        The document's time (default: now, UTC).
    stop_names : mapping, optional
        Block id -> name by its streets; a stop's waypoint is named by it (the block id follows).
    """
    names = stop_names or {}
    ET.register_namespace("", _GPX_NS)
    q = lambda tag: f"{{{_GPX_NS}}}{tag}"  # noqa: E731 - a qualified-name helper

    root = ET.Element(q("gpx"), {"version": "1.1", "creator": "beatmap"})
    metadata = ET.SubElement(root, q("metadata"))
    ET.SubElement(metadata, q("name")).text = _title(route)
    ET.SubElement(metadata, q("desc")).text = _summary(route)
    ET.SubElement(metadata, q("time")).text = (
        (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    )

    def waypoint(lat: float, lon: float, name: str, desc: str, sym: str, kind: str) -> None:
        wpt = ET.SubElement(root, q("wpt"), {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
        ET.SubElement(wpt, q("name")).text = name
        ET.SubElement(wpt, q("desc")).text = desc
        ET.SubElement(wpt, q("sym")).text = sym
        ET.SubElement(wpt, q("type")).text = kind

    waypoint(*route.start, "Start", "Start of the walk", "Flag, Green", "start")
    for stop in route.stops:
        where = f"{names[stop.block_id]} (block {stop.block_id})" if names.get(stop.block_id) else stop.block_id
        waypoint(
            stop.lat,
            stop.lon,
            f"{stop.number}. {where}",
            f"Arrive about {stop.arrival_min:.0f} min after the start, stay {stop.stay_min:g} min. Why: {stop.reason}",
            "Waypoint",
            stop.flag or "block",
        )
    if route.end != route.start:
        waypoint(*route.end, "End", "End of the walk", "Flag, Red", "end")
    rte = ET.SubElement(root, q("rte"))
    ET.SubElement(rte, q("name")).text = _title(route)
    ET.SubElement(rte, q("desc")).text = _summary(route)
    for lat, lon in route.path:
        ET.SubElement(rte, q("rtept"), {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_gpx(route: Route, path: str | Path) -> Path:
    """Write the route as a GPX 1.1 file (the name must end in ``.gpx``)."""
    path = Path(path)
    if path.suffix.lower() != ".gpx":
        raise InputError(f"--out {path}: give a file ending in .gpx.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(route_to_gpx(route), encoding="utf-8")
    return path


def route_card_html(
    route: Route,
    *,
    stop_names: Mapping[str, str] | None = None,
    landmarks: Mapping[str, tuple[float, float]] | None = None,
    streets: dict | None = None,
) -> str:
    """A printable one-page card for the officer: a small map of the walk, the stops by street, the notes.

    Nothing meant for the planner (the seed, the priority) is on it.

    Parameters
    ----------
    route : Route
    stop_names : mapping, optional
        Block id -> name by its streets (:func:`beatmap.naming.names_from_store`); the stops are listed
        by these names, with the block id beside.
    landmarks : mapping, optional
        Named places (``settings.landmarks``): a start or end at one of them is called by its name.
    streets : dict, optional
        Streets prepared for a map (:func:`beatmap.basemap.streets_for_map`), drawn under the walk.
    """
    e = html.escape
    names = stop_names or {}

    def block(s: Stop) -> str:
        name = names.get(s.block_id)
        return f"{e(name)}<br><small>block {e(s.block_id)}</small>" if name else e(s.block_id)

    rows = "".join(
        f"<tr><td>{s.number}</td><td>{block(s)}</td><td>+{s.arrival_min:.0f} min</td>"
        f"<td>{s.stay_min:g} min</td><td>{e(s.reason)}</td></tr>"
        for s in route.stops
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in route.notes)
    warning = (
        '<p class="warn">Straight-line estimate: no street network was loaded, so real walks are longer.</p>'
        if route.straight_line
        else ""
    )
    start, end = _place(route.start, landmarks), _place(route.end, landmarks)
    ends = f"Start and end: {e(start)}." if route.end == route.start else f"Start: {e(start)}. End: {e(end)}."
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(_title(route))}</title>
<style>
body {{ font: 12pt sans-serif; margin: 1.5cm; }} h1 {{ font-size: 16pt; margin: 0 0 4pt; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 8pt; }}
td, th {{ border: 1px solid #999; padding: 4pt 6pt; text-align: left; vertical-align: top; }}
.warn {{ font-weight: bold; border: 2px solid #000; padding: 4pt; }} .meta {{ color: #333; }}
svg.walk {{ width: 100%; max-height: 9cm; border: 1px solid #999; background: #f4f4f4; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head>
<body>
<h1>{e(_title(route))}</h1>
<p class="meta">{e(_card_summary(route))}</p>
<p class="meta">{ends}</p>
{warning}
{walk_svg(route, streets=streets)}
<table><thead><tr><th>#</th><th>Where</th><th>Arrive</th><th>Stay</th><th>Why this block</th></tr></thead>
<tbody>{rows}</tbody></table>
<ul>{notes}</ul>
</body></html>
"""


def _place(point: tuple[float, float], landmarks: Mapping[str, tuple[float, float]] | None) -> str:
    """A landmark's name when ``point`` is one (within about a metre), else the coordinates."""
    for name, (lat, lon) in (landmarks or {}).items():
        if abs(lat - point[0]) < 1e-5 and abs(lon - point[1]) < 1e-5:
            return name
    return f"{point[0]:.5f}, {point[1]:.5f}"


def _card_summary(route: Route) -> str:
    kind = "straight-line estimate" if route.straight_line else "on the streets"
    return (
        f"{len(route.stops)} stops, {route.distance_m / 1000:.1f} km {kind}, about {route.total_min:.0f} of "
        f"{route.budget_min:g} minutes ({route.walk_min:.0f} walking, {route.dwell_min:g} on each block)."
    )


def walk_svg(route: Route, *, streets: dict | None = None, width: int = 600, height: int = 340) -> str:
    """A small map of the walk as inline SVG (prints anywhere, needs no script): streets, path, numbered stops.

    ``streets`` is :func:`beatmap.basemap.streets_for_map` output (WGS84 lines with names).
    """
    points = [*route.path, route.start, route.end, *[(s.lat, s.lon) for s in route.stops]]
    lats, lons = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    scale_x = math.cos(math.radians(float(lats.mean())))  # degrees of longitude are shorter
    pad = 0.08
    west, east, south, north = lons.min(), lons.max(), lats.min(), lats.max()
    span = max((east - west) * scale_x, north - south, 1e-4) * (1 + 2 * pad)
    ratio = width / height
    span_x, span_y = max(span, (north - south) * (1 + 2 * pad) * ratio), max(span / ratio, 1e-4)
    span_y = max(span_y, span_x / ratio)
    cx, cy = (west + east) / 2 * scale_x, (south + north) / 2

    def xy(lat: float, lon: float) -> tuple[float, float]:
        return ((lon * scale_x - cx) / span_x * width + width / 2, (cy - lat) / span_y * height + height / 2)

    def polyline(coords: Iterable[tuple[float, float]]) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lat, lon) for lat, lon in coords))

    parts = []
    for feature in ((streets or {}).get("lines") or {}).get("features", []):
        geometry = feature["geometry"]
        lines = [geometry["coordinates"]] if geometry["type"] == "LineString" else geometry["coordinates"]
        weight = 5 if feature["properties"].get("major") else 3
        for line in lines:
            parts.append(
                f'<polyline points="{polyline((lat, lon) for lon, lat in line)}" fill="none" '
                f'stroke="#ffffff" stroke-width="{weight}"><title>{html.escape(feature["properties"]["name"])}'
                "</title></polyline>"
            )
    for lat, lon, name, major, angle in (streets or {}).get("labels", []):
        x, y = xy(lat, lon)
        if 0 <= x <= width and 0 <= y <= height:
            parts.append(
                f'<text x="{x:.1f}" y="{y:.1f}" transform="rotate({angle} {x:.1f} {y:.1f})" '
                f'font-size="{10 if major else 9}" text-anchor="middle" fill="#333">'
                f"{html.escape(name)}</text>"
            )
    if route.path:
        dash = ' stroke-dasharray="8 6"' if route.straight_line else ""
        parts.append(f'<polyline points="{polyline(route.path)}" fill="none" stroke="#0072B2" stroke-width="3"{dash}/>')
    sx, sy = xy(*route.start)
    parts.append(
        f'<circle cx="{sx:.1f}" cy="{sy:.1f}" r="7" fill="#ffffff" stroke="#000" stroke-width="2">'
        "<title>Start</title></circle>"
    )
    for stop in route.stops:
        x, y = xy(stop.lat, stop.lon)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="#0072B2" stroke="#fff" stroke-width="2"/>'
            f'<text x="{x:.1f}" y="{y + 4:.1f}" font-size="11" font-weight="bold" text-anchor="middle" '
            f'fill="#fff">{stop.number}</text>'
        )
    return (
        f'<svg class="walk" viewBox="0 0 {width} {height}" role="img" aria-label="Map of the walk" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">{"".join(parts)}</svg>'
    )


def _title(route: Route) -> str:
    where = f", beat {route.beat_id}" if route.beat_id else ""
    return f"Walking route{where}" + (f", area {route.area}" if route.area else "")


def _summary(route: Route) -> str:
    kind = "straight-line estimate" if route.straight_line else "on the streets"
    return (
        f"{len(route.stops)} stops, {route.distance_m / 1000:.1f} km {kind}, about {route.total_min:.0f} of "
        f"{route.budget_min:g} minutes ({route.walk_min:.0f} walking, {route.dwell_min:g} on each block); "
        f"priority {route.priority:g}; seed {route.seed}."
    )


def route_text(route: Route) -> str:
    """The route as plain text for a terminal: the summary, one line per stop, and the notes."""
    lines = [_title(route) + (" (STRAIGHT-LINE ESTIMATE)" if route.straight_line else ""), "  " + _summary(route)]
    lines += [f"  {s.number:>2}. +{s.arrival_min:>3.0f} min  {s.block_id:<14} {s.reason}" for s in route.stops]
    lines += [f"  note: {n}" for n in route.notes]
    return "\n".join(lines)
