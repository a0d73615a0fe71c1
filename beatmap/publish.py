"""Publish the public map: a static snapshot folder, built under the public map rules.

:func:`publish_snapshot` reads the store once, applies :mod:`beatmap.privacy`,
writes the files that :mod:`beatmap.snapshot` describes into a fresh folder,
checks that folder with :func:`check_snapshot`, and only then replaces the
published folder and records a ``publish`` entry in the audit log.  The page
``index.html`` works opened straight from disk: Leaflet is inlined, there are no
tiles and nothing is fetched from a network.
"""

from __future__ import annotations

import html
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from shapely.geometry import mapping
from sqlalchemy import Engine, select

from beatmap import snapshot as snap
from beatmap import store
from beatmap.errors import BeatmapError, InputError
from beatmap.export import neutralise_cell
from beatmap.privacy import PublicAggregates, aggregates_from_store
from beatmap.publicmap import public_legend_html, public_map, round_coordinates
from beatmap.render import display_frame, standalone_html
from beatmap.settings import Settings
from beatmap.snapshot import check_snapshot, level_text, snapshot_violations

__all__ = [
    "DEFAULT_LEAFLET_DIR",
    "MOST_WITHHELD",
    "check_snapshot",
    "publish_history",
    "publish_snapshot",
    "publish_warnings",
    "write_snapshot",
]

#: Warn before publishing when more than this share of the blocks would have their visit count withheld.
MOST_WITHHELD = 0.5

#: Where `make vendor` installs Leaflet (from the npm registry).
DEFAULT_LEAFLET_DIR = Path(__file__).resolve().parents[1] / "static" / "vendor" / "leaflet"
#: Block shapes are simplified by this much before publishing (as on the dashboard map).
SIMPLIFY_M = 2.0


def publish_snapshot(
    engine: Engine,
    out_dir: str | os.PathLike,
    *,
    settings: Settings,
    as_of: date | None = None,
    actor: str = "cli",
    override_delay_days: int | None = None,
    override_reason: str | None = None,
    leaflet_dir: str | os.PathLike | None = None,
) -> dict:
    """Build the public snapshot from the store and publish it to ``out_dir``.

    Parameters
    ----------
    engine : Engine
        The store.
    out_dir : path
        The published folder: new, empty, or holding an earlier snapshot (which
        is replaced whole).  Any other folder is refused.
    settings : Settings
        The public map rules and the metric window.
    as_of : date, optional
        The publication date; today by default, never later.
    actor : str
        Who publishes, for the audit log.
    override_delay_days, override_reason : optional
        A delay shorter than ``public_delay_days``, with the reason; both go to
        the audit log (the reason is never published).
    leaflet_dir : path, optional
        Leaflet's ``leaflet.js`` and ``leaflet.css``; the project's
        ``static/vendor/leaflet`` by default.

    Returns
    -------
    dict
        The snapshot's manifest.

    Raises
    ------
    BeatmapError
        When Leaflet is not installed (run ``make vendor``), ``out_dir`` holds
        something other than a snapshot, an override lacks its reason, or the
        built snapshot fails its own check; nothing is published then.
    """
    leaflet = _leaflet_dir(leaflet_dir)
    delay = _delay_days(settings, override_delay_days, override_reason)
    out = _out_dir(Path(out_dir))
    aggregates = aggregates_from_store(engine, settings=settings, as_of=as_of, delay_days=delay)
    override = (
        None if override_delay_days is None else {"delay_days": delay, "rule_delay_days": settings.public_delay_days}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = write_snapshot(aggregates, staging, settings=settings, leaflet_dir=leaflet, override=override)
        problems = snapshot_violations(
            staging,
            min_count=settings.public_min_count,
            delay_days=delay,
            trend_min_blocks=settings.public_trend_min_blocks,
        )
        problems += archive_violations(manifest, published_periods(engine))
        if problems:
            raise BeatmapError(
                "the snapshot failed its own check, so nothing was published:\n"
                + "\n".join(f"  - {p}" for p in problems)
            )
        with store.transaction(engine) as conn:
            if override is not None:
                store.record_audit(
                    conn,
                    actor=actor,
                    action="publish.override",
                    target=str(out.resolve()),
                    details={**override, "reason": override_reason},
                )
            store.record_audit(
                conn, actor=actor, action="publish", target=str(out.resolve()), details=_audit_details(manifest)
            )
            _replace_folder(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def publish_warnings(aggregates: PublicAggregates) -> list[str]:
    """What a supervisor should know before publishing these aggregates, in plain sentences (empty: nothing).

    Warned of: a period holding no activity at all (every block would show "none"), no foot patrol or
    community visit in the period, and most blocks' visit counts withheld (the map would say little).
    """
    blocks = aggregates.blocks
    p = aggregates.period
    label = snap.withheld_label(aggregates.min_count)
    n = len(blocks)
    warnings = []
    active = (blocks["visits"] != 0) | (blocks["enforcement"] != 0)
    if n and not active.any():
        warnings.append(
            f"The period {snap.day_text(p.start)} to {snap.day_text(p.end)} holds no activity on any "
            'block: the map would show every block as "none". Import the period\'s records first, or '
            "wait for the next period."
        )
    elif n and (blocks["visits"] == 0).all():
        warnings.append(
            f"No foot patrol or community visit is recorded from {snap.day_text(p.start)} to "
            f'{snap.day_text(p.end)}: every block would show "none". Check that the visit log for the '
            "period is imported."
        )
    withheld = int((blocks["visits"] == label).sum())
    if n and withheld / n > MOST_WITHHELD:
        warnings.append(
            f"{withheld:,} of {n:,} blocks ({withheld / n:.0%}) would have their visit count withheld as "
            f'"{label}": the map would say little about them.'
        )
    return warnings


def publish_history(engine: Engine, *, timezone: str = "UTC", limit: int = 50) -> pd.DataFrame:
    """Earlier publications from the audit log, newest first.

    Returns
    -------
    DataFrame
        ``published_at`` (aware, ``timezone``), ``by``, ``data_start``, ``data_end``, ``dated``, ``blocks``,
        ``folder``, and ``shorter_delay`` (True when published with an override).
    """
    from beatmap.audit import read_audit  # the audit reader, only for the history

    log = read_audit(engine, action="publish", timezone=timezone, limit=limit)
    rows = []
    for entry in log.itertuples(index=False):
        details = json.loads(entry.details or "{}")
        rows.append(
            {
                "published_at": entry.at,
                "by": entry.actor,
                "data_start": details.get("data_start"),
                "data_end": details.get("data_end"),
                "dated": details.get("as_of"),
                "blocks": (details.get("counts") or {}).get("blocks"),
                "folder": entry.target,
                "shorter_delay": entry.action == "publish.override",
            }
        )
    columns = ["published_at", "by", "data_start", "data_end", "dated", "blocks", "folder", "shorter_delay"]
    frame = pd.DataFrame(rows, columns=columns)
    # An override is logged just before its publication (so just after it, newest first): one row per
    # publication, marked.
    if len(frame):
        marked = frame["shorter_delay"].shift(-1, fill_value=False).astype(bool)
        frame = frame[~frame["shorter_delay"]].assign(shorter_delay=marked[~frame["shorter_delay"]].to_numpy())
    return frame.reset_index(drop=True)


def _leaflet_dir(given: str | os.PathLike | None) -> Path:
    folder = Path(given) if given is not None else DEFAULT_LEAFLET_DIR
    missing = [n for n in ("leaflet.js", "leaflet.css") if not (folder / n).is_file()]
    if missing:
        raise BeatmapError(
            f"{folder}: {' and '.join(missing)} missing; the public map inlines Leaflet so it works "
            "offline. Run `make vendor` to install it from npm, then publish again."
        )
    return folder


def _delay_days(settings: Settings, override_days: int | None, reason: str | None) -> int:
    if override_days is None:
        if reason:
            raise InputError("--reason explains --override-delay-days; give both, or neither.")
        return settings.public_delay_days
    if not reason or not reason.strip():
        raise InputError(
            '--override-delay-days needs --reason "why"; the override and its reason are written to the audit log.'
        )
    if override_days < 0:
        raise InputError(f"--override-delay-days {override_days}: give 0 or more days.")
    return override_days


def _out_dir(out: Path) -> Path:
    """The folder to publish to, refusing one that holds anything but a snapshot (it is replaced whole)."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: a file, not a folder; give a folder for the snapshot.")
    if out.is_dir() and any(out.iterdir()):
        try:
            manifest = snap.read_manifest(out)
        except InputError as exc:
            raise InputError(
                f"--out {out}: this folder is not empty and holds no published snapshot; publishing "
                "replaces the folder's contents, so give an empty or new folder."
            ) from exc
        if not str(manifest.get("format", "")).startswith(snap.FORMAT_PREFIX):
            raise InputError(f"--out {out}: holds a manifest that beatmap did not write; give another folder.")
    return out


def _replace_folder(staging: Path, out: Path) -> None:
    staging.chmod(0o755)
    if not out.exists():
        os.replace(staging, out)
        return
    old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out, old)
    os.replace(staging, out)
    shutil.rmtree(old)


def published_periods(engine: Engine) -> list[dict[str, str]]:
    """Every snapshot published from this store (the audit log's ``publish`` entries): ``as_of``,
    ``data_start`` and ``data_end`` as ISO dates, oldest first."""
    log = store.audit_log
    query = select(log.c.details).where(log.c.action == "publish").order_by(log.c.audit_id)
    with engine.connect() as conn:
        entries = [json.loads(d) for d in conn.execute(query).scalars()]
    return [{k: str(e.get(k)) for k in ("as_of", "data_start", "data_end")} for e in entries if e.get("data_start")]


def archive_violations(manifest: Mapping, earlier: Sequence[Mapping[str, str]]) -> list[str]:
    """Refuse a period that overlaps an earlier publication's without equalling it.

    Two snapshots of overlapping, unequal periods can be subtracted: the weeks
    one holds and the other does not come out block by block, withheld counts
    included.  With the fixed calendar this only happens across a change of
    the calendar itself, so it is checked against every earlier publication.
    """
    try:
        start, end = date.fromisoformat(str(manifest["data_start"])), date.fromisoformat(str(manifest["data_end"]))
    except (KeyError, ValueError):
        return ["manifest.json: data_start and data_end must be dates; publish it again."]
    problems = []
    for before in earlier:
        try:
            first, last = date.fromisoformat(before["data_start"]), date.fromisoformat(before["data_end"])
        except ValueError:
            continue
        if (first, last) != (start, end) and first <= end and start <= last:
            problems.append(
                f"the data {start} to {end} overlaps the period {first} to {last} published on "
                f"{before['as_of']} without equalling it; subtracting the two snapshots would reveal "
                "the weeks they do not share. Publish a period of the fixed calendar."
            )
    return problems


def _audit_details(manifest: dict) -> dict:
    keep = ("as_of", "data_start", "data_end", "counts", "override")
    return {
        **{k: manifest[k] for k in keep},
        "rules": {k: manifest["rules"][k] for k in ("min_count", "delay_days")},
        "files": {name: entry["sha256"] for name, entry in manifest["files"].items()},
    }


# --- the files ----------------------------------------------------------------------------------


def write_snapshot(
    aggregates: PublicAggregates,
    folder: Path,
    *,
    settings: Settings,
    leaflet_dir: Path,
    override: dict | None = None,
) -> dict:
    """Write every file of a snapshot and its manifest into ``folder``; return the manifest."""
    levels = level_text(aggregates.level_cuts)
    collection = block_features(aggregates)
    about = about_text(aggregates, override=override)
    texts = {
        snap.GEOJSON: json.dumps(collection, ensure_ascii=False),
        snap.BLOCKS_CSV: _csv(aggregates.blocks, snap.BLOCK_FIELDS),
        snap.BEATS_CSV: _csv(aggregates.beats, snap.BEAT_FIELDS),
        snap.TREND_CSV: _csv(aggregates.trend, snap.TREND_FIELDS),
        snap.ABOUT: about,
        snap.INDEX: page_html(aggregates, collection, about=about, levels=levels, leaflet_dir=leaflet_dir),
    }
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    manifest = _manifest(aggregates, folder, settings=settings, levels=levels, override=override)
    (folder / snap.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def block_features(aggregates: PublicAggregates) -> dict:
    """The published blocks as a GeoJSON FeatureCollection: simplified, WGS84, rounded, whitelisted fields."""
    light = display_frame(aggregates.blocks, [], tolerance_m=SIMPLIFY_M)
    features = []
    for geometry, row in zip(
        light.geometry, aggregates.blocks[list(snap.BLOCK_FIELDS)].to_dict("records"), strict=True
    ):
        features.append({"type": "Feature", "properties": row, "geometry": round_coordinates(mapping(geometry))})
    return {"type": "FeatureCollection", "features": features}


def _csv(frame: pd.DataFrame, fields: Sequence[str]) -> str:
    table = pd.DataFrame(frame[list(fields)]).apply(lambda col: col.map(neutralise_cell))
    return table.to_csv(index=False, lineterminator="\n")


def _manifest(
    aggregates: PublicAggregates, folder: Path, *, settings: Settings, levels: Mapping[str, str], override: dict | None
) -> dict:
    period = aggregates.period
    return {
        "format": snap.FORMAT,
        "as_of": aggregates.as_of.isoformat(),
        "data_start": period.start.isoformat(),
        "data_end": period.end.isoformat(),
        "built_at": datetime.now(settings.zone).isoformat(timespec="seconds"),
        "timezone": period.timezone,
        "rules": {
            "min_count": aggregates.min_count,
            "delay_days": aggregates.delay_days,
            "time_bin": "week",
            "week": "Monday to Sunday",
            "period": f"fixed periods of {period.days // 7} weeks counted from {snap.PERIOD_EPOCH}",
            "window_days": period.days,
            "trend_min_blocks": aggregates.trend_min_blocks,
            "geometry": f"block polygons, simplified {SIMPLIFY_M:g} m, coordinates rounded to "
            f"{snap.COORD_DECIMALS} decimal places (about 1 m)",
            "suppression": f"counts 1 to {aggregates.min_count - 1} withheld as "
            f"'{snap.withheld_label(aggregates.min_count)}'; withheld counts are added into no "
            "published total (beat totals and weekly shares use shown blocks only)",
            "levels": dict(levels),
            "level_cuts": list(aggregates.level_cuts) if aggregates.level_cuts else None,
        },
        "override": override,
        "counts": {
            "blocks": len(aggregates.blocks),
            "beats": len(aggregates.beats),
            "visits_withheld": aggregates.withheld("visits"),
            "enforcement_withheld": aggregates.withheld("enforcement"),
        },
        "files": {
            name: {"sha256": snap.sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
            for name in snap.FILES
        },
    }


def about_text(aggregates: PublicAggregates, *, override: dict | None = None) -> str:
    """The plain-language notes: what the map shows and doesn't, how the numbers are made (``README.txt``)."""
    p = aggregates.period
    return snap.notes_text(
        p.start,
        p.end,
        aggregates.as_of,
        min_count=aggregates.min_count,
        cuts=aggregates.level_cuts,
        delay=aggregates.delay_days,
        override=override,
        trend_min_blocks=aggregates.trend_min_blocks,
    )


def check_published(folder: str | os.PathLike, *, settings: Settings) -> list[str]:
    """:func:`beatmap.snapshot.check_snapshot`, and ``README.txt`` compared with the text its manifest gives."""
    problems = check_snapshot(folder, settings=settings)
    try:
        expected = snap.about_from_manifest(snap.read_manifest(folder))
        written = snap.read_about(folder)
    except InputError:
        return problems  # already reported by the check
    if written != expected:
        problems.append(
            f"{Path(folder) / snap.ABOUT}: differs from the notes its manifest gives (edited after "
            "publishing); publish the snapshot again."
        )
    return problems


# --- the page -----------------------------------------------------------------------------------

_STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;background:#fff}
header,main{max-width:1100px;margin:0 auto;padding:0 12px}
h1{font-size:1.6rem;margin:16px 0 4px}
.map-wrap{position:relative}
.folium-map{height:65vh !important;min-height:320px;border:1px solid #777}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;font-size:14px;min-width:100%}
th,td{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
td.n{text-align:right}
.legend-static div{display:inline-block;margin:2px 14px 2px 0}
a{color:#0072B2}
.sr{position:absolute;left:-9999px;width:1px;height:1px;overflow:hidden}
.skip{position:absolute;left:-9999px;top:0;background:#fff;padding:6px 10px;border:2px solid #0072B2;z-index:2000}
.skip:focus{left:8px;top:8px}
.search{margin:8px 0}.search input{font:inherit;padding:4px 6px;min-width:16em}
@media (max-width:600px){h1{font-size:1.3rem}.folium-map{height:55vh !important}table{font-size:13px}}
"""


def page_html(
    aggregates: PublicAggregates, collection: dict, *, about: str, levels: Mapping[str, str], leaflet_dir: Path
) -> str:
    """The snapshot's ``index.html``: the map with Leaflet inlined, text tables, and the notes."""
    page = standalone_html(public_map(collection, level_text=levels, legend=False), vendor_dir=leaflet_dir)
    p = aggregates.period
    page = page.replace("<html>", '<html lang="en">', 1)
    page = _set_head(page, title="Police presence outside enforcement")
    before = (
        '<a class="skip" href="#tables">Skip the map: go to the tables</a>'
        f"<header><h1>Police presence outside enforcement</h1><p>Foot patrols and community visits by police, block "
        f"by block, from {snap.day_text(p.start)} to {snap.day_text(p.end)}. Published "
        f"{snap.day_text(aggregates.as_of)}; nothing from the last {aggregates.delay_days} days is included.</p>"
        "</header><main>"
        '<p id="map-help">Each block is coloured by how often police walked it or visited people there. A text '
        "version of the map is in the tables below.</p>"
        '<div class="map-wrap" role="region" aria-label="Map of blocks" aria-describedby="map-help">'
    )
    after = (
        "</div>" + _legend_static(levels) + _tables_html(aggregates) + _about_html(about) + _files_html() + "</main>"
    )
    return _around_map(page, before=before, after=after)


def _set_head(page: str, *, title: str) -> str:
    """An accessible head: zoom allowed on phones, a title, the page style."""
    start = page.index('<meta name="viewport"')
    end = page.index("/>", start) + 2
    head = (
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
    )
    return page[:start] + head + page[end:]


def _around_map(page: str, *, before: str, after: str) -> str:
    start = page.index('<div class="folium-map"')
    end = page.index("</div>", start) + len("</div>")
    return page[:start] + before + page[start:end] + after + page[end:]


def _legend_static(levels: Mapping[str, str]) -> str:
    legend = public_legend_html(levels, overlay=False)
    return f'<div class="legend-static" aria-label="Map legend">{legend}</div>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str) -> str:
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if isinstance(v, int) else ''}>{html.escape(str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return (
        f'<div class="scroll"><table><caption class="sr">{html.escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _tables_html(aggregates: PublicAggregates) -> str:
    beats = aggregates.beats
    beat_rows = [
        [
            r.beat_id,
            r.blocks,
            f"{r.coverage_pct}%",
            r.blocks_visits_withheld,
            r.visits_on_shown_blocks,
            r.enforcement_on_shown_blocks,
            r.blocks_mostly_enforcement,
        ]
        for r in beats.itertuples(index=False)
    ]
    beat_table = _table(
        [
            "Beat",
            "Blocks",
            "Coverage",
            "Blocks with visits withheld",
            "Visits on shown blocks",
            "Enforcement on shown blocks",
            "Blocks mostly enforcement",
        ],
        beat_rows,
        caption="Beats: coverage and counts",
    )
    trend = aggregates.trend.pivot(index="beat_id", columns="week_start", values="coverage_pct")
    trend_rows = [
        [beat, *[f"{v}%" for v in values]] for beat, values in zip(trend.index, trend.to_numpy().tolist(), strict=True)
    ]
    trend_table = _table(
        ["Beat", *[f"Week of {d}" for d in trend.columns]], trend_rows, caption="Share of blocks visited each week"
    )
    block_rows = aggregates.blocks[list(snap.BLOCK_FIELDS)].to_numpy().tolist()
    headers = [
        "Block",
        "Where",
        "Beat",
        "Visit level",
        "Foot patrols and community visits",
        "Enforcement events",
        "Police presence",
    ]
    block_table = _table(headers, block_rows, caption="Every block")
    return (
        f'<h2 id="tables" tabindex="-1">Beats</h2>{beat_table}'
        f"<h2>Week by week</h2><p>Share of each beat's blocks with a foot patrol or community visit, "
        f"rounded to the nearest 10%.</p>{trend_table}"
        f'<h2 id="blocks">Every block</h2>{_SEARCH}'
        f'<details id="block-table"><summary>Show all {len(block_rows):,} blocks (the map as a table)'
        f"</summary>{block_table}</details>{_SEARCH_SCRIPT}"
    )


#: A search box over the block table: it works offline, on the table's own text (street names, block and beat).
_SEARCH = (
    '<div class="search" role="search"><label for="block-search">Find a block by street name or block: '
    '</label><input id="block-search" type="search" autocomplete="off" aria-describedby="block-found">'
    ' <span id="block-found" aria-live="polite"></span></div>'
)
_SEARCH_SCRIPT = r"""<script>
(function () {
  var box = document.getElementById('block-search'), found = document.getElementById('block-found');
  var table = document.getElementById('block-table'), rows = table.querySelectorAll('tbody tr');
  box.addEventListener('input', function () {
    var words = box.value.toLowerCase().split(/\s+/).filter(Boolean), shown = 0;
    rows.forEach(function (row) {
      var text = row.textContent.toLowerCase();
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !hit;
      if (hit) shown += 1;
    });
    if (words.length) { table.open = true; found.textContent = shown + (shown === 1 ? ' block' : ' blocks'); }
    else found.textContent = '';
  });
})();
</script>"""


def _about_html(about: str) -> str:
    """The notes as HTML: underlined lines become headings, ``- `` lines a list, the rest paragraphs."""
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


def _files_html() -> str:
    links = ", ".join(
        f'<a href="{n}">{n}</a>'
        for n in (snap.BLOCKS_CSV, snap.GEOJSON, snap.BEATS_CSV, snap.TREND_CSV, snap.ABOUT, snap.MANIFEST)
    )
    return f"<p>Download the data: {links}.</p>"
