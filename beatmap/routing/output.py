"""A route for the officer: a GPX 1.1 file, a printable one-page card, and plain text for a terminal."""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from beatmap.errors import InputError
from beatmap.routing.route import Route

_GPX_NS = "http://www.topografix.com/GPX/1/1"


def route_to_gpx(route: Route, *, created: datetime | None = None) -> str:
    """The route as a GPX 1.1 document: numbered waypoints for the stops and a route along the path.

    Parameters
    ----------
    route : Route
    created : datetime, optional
        The document's time (default: now, UTC).
    """
    ET.register_namespace("", _GPX_NS)
    q = lambda tag: f"{{{_GPX_NS}}}{tag}"  # noqa: E731 - a qualified-name helper

    root = ET.Element(q("gpx"), {"version": "1.1", "creator": "beatmap"})
    metadata = ET.SubElement(root, q("metadata"))
    ET.SubElement(metadata, q("name")).text = _title(route)
    ET.SubElement(metadata, q("desc")).text = _summary(route)
    ET.SubElement(metadata, q("time")).text = (created or datetime.now(UTC)).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    def waypoint(lat: float, lon: float, name: str, desc: str, sym: str, kind: str) -> None:
        wpt = ET.SubElement(root, q("wpt"), {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
        ET.SubElement(wpt, q("name")).text = name
        ET.SubElement(wpt, q("desc")).text = desc
        ET.SubElement(wpt, q("sym")).text = sym
        ET.SubElement(wpt, q("type")).text = kind

    waypoint(*route.start, "Start", "Start of the walk", "Flag, Green", "start")
    for stop in route.stops:
        waypoint(stop.lat, stop.lon, f"{stop.number}. {stop.block_id}",
                 f"Arrive about {stop.arrival_min:.0f} min after the start, stay {stop.stay_min:g} min. "
                 f"Why: {stop.reason}", "Waypoint", stop.flag or "block")
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


def route_card_html(route: Route) -> str:
    """A printable one-page card of the route: the stops in order with the reasons, and the notes."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{s.number}</td><td>{e(s.block_id)}</td><td>+{s.arrival_min:.0f} min</td>"
        f"<td>{s.stay_min:g} min</td><td>{e(s.reason)}</td></tr>"
        for s in route.stops
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in route.notes)
    warning = ('<p class="warn">Straight-line estimate: no street network was loaded, so real walks are longer.</p>'
               if route.straight_line else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(_title(route))}</title>
<style>
body {{ font: 12pt sans-serif; margin: 1.5cm; }} h1 {{ font-size: 16pt; margin: 0 0 4pt; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 8pt; }}
td, th {{ border: 1px solid #999; padding: 4pt 6pt; text-align: left; vertical-align: top; }}
.warn {{ font-weight: bold; border: 2px solid #000; padding: 4pt; }} .meta {{ color: #333; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head>
<body>
<h1>{e(_title(route))}</h1>
<p class="meta">{e(_summary(route))}</p>
<p class="meta">Start {route.start[0]:.5f}, {route.start[1]:.5f}; end {route.end[0]:.5f}, {route.end[1]:.5f}.</p>
{warning}
<table><thead><tr><th>#</th><th>Block</th><th>Arrive</th><th>Stay</th><th>Why this block</th></tr></thead>
<tbody>{rows}</tbody></table>
<ul>{notes}</ul>
</body></html>
"""


def _title(route: Route) -> str:
    where = f", beat {route.beat_id}" if route.beat_id else ""
    return f"Walking route{where}" + (f", area {route.area}" if route.area else "")


def _summary(route: Route) -> str:
    kind = "straight-line estimate" if route.straight_line else "on the streets"
    return (f"{len(route.stops)} stops, {route.distance_m / 1000:.1f} km {kind}, about {route.total_min:.0f} of "
            f"{route.budget_min:g} minutes ({route.walk_min:.0f} walking, {route.dwell_min:g} on each block); "
            f"priority {route.priority:g}; seed {route.seed}.")


def route_text(route: Route) -> str:
    """The route as plain text for a terminal: the summary, one line per stop, and the notes."""
    lines = [_title(route) + (" (STRAIGHT-LINE ESTIMATE)" if route.straight_line else ""), "  " + _summary(route)]
    lines += [f"  {s.number:>2}. +{s.arrival_min:>3.0f} min  {s.block_id:<14} {s.reason}" for s in route.stops]
    lines += [f"  note: {n}" for n in route.notes]
    return "\n".join(lines)
