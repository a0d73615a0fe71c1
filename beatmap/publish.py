"""Publish the public map: a static snapshot folder, built under the public map rules.

:func:`publish_snapshot` reads the store once, applies :mod:`beatmap.privacy`,
writes the files that :mod:`beatmap.snapshot` describes into a fresh folder,
checks that folder with :func:`check_snapshot`, and only then replaces the
published folder and records a ``publish`` entry in the audit log.  The page
``index.html`` and its on-demand files (:mod:`beatmap.publicsite`) work opened
straight from disk: Leaflet is inlined, there are no tiles and nothing is
fetched from a network.
"""

from __future__ import annotations

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
from beatmap.basemap import has_streets
from beatmap.errors import BeatmapError, InputError
from beatmap.export import neutralise_cell
from beatmap.privacy import PublicAggregates, aggregates_from_store
from beatmap.publicmap import round_coordinates
from beatmap.publicsite import site_files
from beatmap.render import display_frame
from beatmap.settings import Settings
from beatmap.snapshot import check_snapshot, level_text, snapshot_violations
from beatmap.streets import map_streets_from_store

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
    streets = map_streets_from_store(engine)
    override = (
        None if override_delay_days is None else {"delay_days": delay, "rule_delay_days": settings.public_delay_days}
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = write_snapshot(
            aggregates, staging, settings=settings, leaflet_dir=leaflet, override=override, streets=streets
        )
        problems = snapshot_violations(
            staging,
            min_count=settings.public_min_count,
            delay_days=delay,
            trend_min_blocks=settings.public_trend_min_blocks,
            presence_allowed=settings.publish_presence_minutes,
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
    community visit in the period, GPS presence minutes published for a period without any GPS presence
    (every block would show 0), and most blocks' visit counts withheld (the map would say little).
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
    if aggregates.presence and n and (blocks[snap.PRESENCE_MINUTES] == 0).all():
        warnings.append(
            f"GPS presence minutes are published (publish_presence_minutes), but no GPS presence is stored from "
            f"{snap.day_text(p.start)} to {snap.day_text(p.end)}: every block would show 0 minutes, which reads as "
            "no police presence rather than no GPS data. Import the period's GPS pings first, or turn the setting "
            "off."
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
    streets: dict | None = None,
) -> dict:
    """Write every file of a snapshot and its manifest into ``folder``; return the manifest.

    The data files come from the aggregates, and the base map (``streets.js``) from ``streets``
    (:func:`beatmap.streets.map_streets_from_store`) when it has anything to draw; the page, its on-demand
    files and ``README.txt`` are then made from those data files and the manifest alone
    (:func:`beatmap.publicsite.site_files`), as ``publish --check`` makes them again.
    """
    levels = level_text(aggregates.level_cuts)
    collection = block_features(aggregates)
    data = {
        snap.GEOJSON: json.dumps(collection, ensure_ascii=False),
        snap.BLOCKS_CSV: _csv(aggregates.blocks, snap.block_fields(aggregates.presence)),
        snap.BEATS_CSV: _csv(aggregates.beats, snap.BEAT_FIELDS),
        snap.TREND_CSV: _csv(aggregates.trend, snap.TREND_FIELDS),
    }
    if streets is not None and has_streets(streets):
        data[snap.STREETS] = snap.streets_file(streets)
    for name, text in data.items():
        (folder / name).write_text(text, encoding="utf-8")
    manifest = json.loads(json.dumps(_manifest(aggregates, settings=settings, levels=levels, override=override)))
    derived = {snap.ABOUT: snap.about_from_manifest(manifest), **_site_files_from_data(folder, manifest, leaflet_dir)}
    for name, text in derived.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    manifest["files"] = {
        name: {"sha256": snap.sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
        for name in sorted({*data, *derived})
    }
    (folder / snap.MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest


def _site_files_from_data(folder: Path, manifest: Mapping, leaflet_dir: str | os.PathLike) -> dict[str, str]:
    """The page and its on-demand files made from the snapshot's data files in ``folder`` and ``manifest``."""
    return site_files(
        manifest,
        snap.read_features(folder),
        snap.read_rows(folder, snap.BEATS_CSV),
        snap.read_rows(folder, snap.TREND_CSV),
        leaflet_dir=leaflet_dir,
        streets=(folder / snap.STREETS).is_file(),
    )


def block_features(aggregates: PublicAggregates) -> dict:
    """The published blocks as a GeoJSON FeatureCollection: simplified, WGS84, rounded, whitelisted fields."""
    light = display_frame(aggregates.blocks, [], tolerance_m=SIMPLIFY_M)
    features = []
    for geometry, row in zip(
        light.geometry,
        aggregates.blocks[list(snap.block_fields(aggregates.presence))].to_dict("records"),
        strict=True,
    ):
        features.append({"type": "Feature", "properties": row, "geometry": round_coordinates(mapping(geometry))})
    return {"type": "FeatureCollection", "features": features}


def _csv(frame: pd.DataFrame, fields: Sequence[str]) -> str:
    table = pd.DataFrame(frame[list(fields)]).apply(lambda col: col.map(neutralise_cell))
    return table.to_csv(index=False, lineterminator="\n")


def _manifest(
    aggregates: PublicAggregates, *, settings: Settings, levels: Mapping[str, str], override: dict | None
) -> dict:
    """The manifest without its file list (which :func:`write_snapshot` adds once the files are written)."""
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
            **(
                {
                    snap.PRESENCE_MINUTES: {
                        "what": "GPS presence outside calls (foot and vehicle) in the period, whole minutes",
                        "step_minutes": snap.PRESENCE_STEP_MINUTES,
                        "min_devices": snap.PRESENCE_MIN_DEVICES,
                        "withheld": snap.PRESENCE_WITHHELD,
                    }
                }
                if aggregates.presence
                else {}
            ),
        },
        "override": override,
        "counts": {
            "blocks": len(aggregates.blocks),
            "beats": len(aggregates.beats),
            "visits_withheld": aggregates.withheld("visits"),
            "enforcement_withheld": aggregates.withheld("enforcement"),
            **({"presence_withheld": aggregates.presence_withheld()} if aggregates.presence else {}),
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
        presence=aggregates.presence,
    )


def check_published(
    folder: str | os.PathLike, *, settings: Settings, leaflet_dir: str | os.PathLike | None = None
) -> list[str]:
    """:func:`beatmap.snapshot.check_snapshot`, and every file made from the data made again and compared.

    The checksums in the manifest only say that nothing changed since the
    manifest was written; whoever edits a file can recompute them.  So the
    page (``index.html``: its text, tables and scripts), the on-demand files,
    ``README.txt`` and ``coverage.csv`` are made again from ``coverage.geojson``,
    ``beats.csv``, ``trend.csv`` and the manifest's dates and rules, and must be
    identical, byte for byte.  ``leaflet_dir`` is the Leaflet the page inlines
    (the project's by default): a snapshot published with another Leaflet is
    reported too.
    """
    problems = check_snapshot(folder, settings=settings)
    folder = Path(folder)
    try:
        manifest = snap.read_manifest(folder)
        expected = {
            snap.ABOUT: snap.about_from_manifest(manifest),
            snap.BLOCKS_CSV: _csv(
                pd.DataFrame([f["properties"] for f in snap.read_features(folder)["features"]]),
                snap.block_fields(snap.publishes_presence(manifest)),
            ),
            **_site_files_from_data(folder, manifest, _leaflet_dir(leaflet_dir)),
        }
    except (InputError, KeyError, TypeError, AttributeError) as exc:
        return [*problems, f"{folder}: the files made from the data cannot be made again ({exc}); publish again."]
    files = manifest.get("files")
    listed: dict = files if isinstance(files, dict) else {}
    for name in sorted(set(listed) - set(expected) - {snap.GEOJSON, snap.BEATS_CSV, snap.TREND_CSV, snap.STREETS}):
        problems.append(f"{folder / name}: not a file this snapshot's data makes; publish the snapshot again.")
    for name, text in sorted(expected.items()):
        path = folder / name
        try:
            written = path.read_text(encoding="utf-8")
        except (FileNotFoundError, UnicodeDecodeError):
            problems.append(f"{path}: missing or unreadable; publish the snapshot again.")
            continue
        if written != text:
            problems.append(f"{path}: {_difference(name, written, text)}; publish the snapshot again.")
    return problems


def _difference(name: str, written: str, expected: str) -> str:
    """Where a published file first differs from the one its data makes, in words."""
    at = next(
        (i for i, (a, b) in enumerate(zip(written, expected, strict=False)) if a != b), min(len(written), len(expected))
    )
    what = {
        snap.ABOUT: "differs from the notes its manifest gives",
        snap.BLOCKS_CSV: "differs from the blocks in coverage.geojson",
        snap.INDEX: "differs from the page its data makes (text, tables or scripts edited, or another Leaflet)",
    }.get(name, "differs from the blocks in coverage.geojson it is made from")
    line = written.count("\n", 0, at) + 1
    return f"{what} (edited after publishing; first difference at line {line})"
