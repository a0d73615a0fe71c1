"""The published public-map snapshot: its files, their allowed fields, reading and checking them.

A snapshot is a folder of static files that :func:`beatmap.publish.publish_snapshot`
writes and anyone may read: ``index.html`` (an offline map page, the city's beats
first), ``beats/beat-NNNN.js`` (one beat's blocks, which the page loads when the
beat is chosen) and ``search.js`` (every block's row, loaded at the first search),
``coverage.geojson`` and ``coverage.csv`` (one row per block), ``beats.csv`` (one
row per beat), ``trend.csv`` (one row per beat and week), ``README.txt`` (what
the map shows and doesn't) and ``manifest.json`` (the rules applied, the dates,
and a SHA-256 of every other file).  Where the department has loaded a street
layer, ``streets.js`` holds the base map drawn under and over the blocks:
streets and their names, water and parks (public geography only; see
:func:`streets_violations` for what it may hold).

This module only reads files.  It never imports :mod:`beatmap.store` or a
database driver, so the public page, which uses it, has no path to the store.

Every field a snapshot may hold is listed here, per layer; anything else is a
violation that :func:`check_snapshot` reports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import shapely

from beatmap.errors import InputError
from beatmap.settings import Settings

#: Identifies the file layout; bump when a field changes meaning.
FORMAT = "beatmap-public-snapshot/3"
#: Every format beatmap has written (an older snapshot may be replaced by a new one; only the current is shown).
FORMAT_PREFIX = "beatmap-public-snapshot/"
MANIFEST = "manifest.json"
INDEX = "index.html"
GEOJSON = "coverage.geojson"
BLOCKS_CSV = "coverage.csv"
BEATS_CSV = "beats.csv"
TREND_CSV = "trend.csv"
ABOUT = "README.txt"
#: Every block's row (:data:`BLOCK_FIELDS`, no geometry), for the page's search; loaded at the first search.
SEARCH = "search.js"
#: Every file of a snapshot besides the manifest and the per-beat files.
FILES: tuple[str, ...] = (INDEX, GEOJSON, BLOCKS_CSV, BEATS_CSV, TREND_CSV, ABOUT, SEARCH)
#: The base map (streets, their names, water and parks), when the department has a street layer; loaded with the
#: page, so it counts in the first view.
STREETS = "streets.js"
STREETS_CALL = "window.beatmapStreets("
#: The first view (``index.html`` and ``streets.js``) stays under this many bytes at any city size.
FIRST_VIEW_BYTES = 2_000_000
#: Kinds of area a base map may draw.
STREET_AREA_KINDS: tuple[str, ...] = ("water", "park")
#: A street name's point lies this close to a line of that name (metres); anything else is not a street's name.
LABEL_NEAR_M = 10.0
#: One beat's blocks (a GeoJSON FeatureCollection), the n-th beat in the order of their ids.
BEAT_FILE = re.compile(r"^beats/beat-\d{4,}\.js$")
#: How the on-demand files hand their JSON data to the page: one call each (``window.beatmapBeat(n, {...});``).
BEAT_CALL = "window.beatmapBeat("
SEARCH_CALL = "window.beatmapSearch("
#: The page's own data (the beats' outlines and coverage): JSON in ``<script type="application/json">``.
_PAGE_DATA = re.compile(r'<script type="application/json"[^>]*>(.*?)</script>', re.DOTALL)

#: The only fields a published block may carry (coverage.geojson properties, coverage.csv columns).
#: ``streets`` names the block by its streets ("Main St between 1st Ave and 2nd Ave"; empty without a street
#: layer): public geography, for residents to find their block.
BLOCK_FIELDS: tuple[str, ...] = ("block_id", "streets", "beat_id", "visit_level", "visits", "enforcement", "presence")
#: The only columns of beats.csv.
BEAT_FIELDS: tuple[str, ...] = (
    "beat_id",
    "blocks",
    "blocks_visited",
    "coverage_pct",
    "blocks_visits_withheld",
    "visits_on_shown_blocks",
    "enforcement_on_shown_blocks",
    "blocks_mostly_enforcement",
)
#: The only columns of trend.csv (weekly bins, Monday to Sunday).
TREND_FIELDS: tuple[str, ...] = ("beat_id", "week_start", "week_end", "coverage_pct")
#: The optional block field of GPS presence outside calls (``publish_presence_minutes``): whole minutes, a
#: multiple of :data:`PRESENCE_STEP_MINUTES`, or :data:`PRESENCE_WITHHELD` where fewer than
#: :data:`PRESENCE_MIN_DEVICES` devices were there in the period.  Only in snapshots whose manifest rules say so.
PRESENCE_MINUTES = "presence_minutes"
#: Published presence minutes are rounded to this step (a quarter hour: coarser than one ten-minute stay).
PRESENCE_STEP_MINUTES = 15
#: A block's presence is withheld when fewer distinct devices were there in the period.
PRESENCE_MIN_DEVICES = 3
PRESENCE_WITHHELD = f"fewer than {PRESENCE_MIN_DEVICES} devices"
#: Fields that count events: each value is 0, at least the minimum count, or the withheld label.
BLOCK_COUNT_FIELDS: tuple[str, ...] = ("visits", "enforcement")
BEAT_COUNT_FIELDS: tuple[str, ...] = ("visits_on_shown_blocks", "enforcement_on_shown_blocks")

LEVELS: tuple[str, ...] = ("none", "low", "medium", "high")
NO_ACTIVITY = "no police activity recorded"
TOO_FEW = "too few to say"
MOSTLY_VISITS = "mostly foot patrols and visits"
MOSTLY_ENFORCEMENT = "mostly enforcement"
PRESENCE: tuple[str, ...] = (NO_ACTIVITY, TOO_FEW, MOSTLY_VISITS, MOSTLY_ENFORCEMENT)

#: A Monday: snapshot periods are back-to-back runs of whole weeks counted from it.
PERIOD_EPOCH = date(2000, 1, 3)
#: Weeks in every published period: one fixed calendar that no setting changes (13 weeks, about a quarter).
PERIOD_WEEKS = 13
#: Decimal places of published coordinates (1e-5 degrees is about 1 m, the block layer's own grid).
COORD_DECIMALS = 5
#: The environment variable that overrides the ``public_dir`` setting.
ENV_PUBLIC_DIR = "BEATMAP_PUBLIC_DIR"

#: Field names that would identify a person, a unit, a time or a point; never allowed in a snapshot.
_PERSONAL = re.compile(
    r"officer|unit|badge|employee|person|name|note|victim|address|subtype|source|track|gps|time|"
    r"(^|_)(lat|lon|lng|x|y)($|_)",
    re.IGNORECASE,
)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_CLOCK = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
#: What every date and time above holds: two digits between hyphens.
_DATE_HINT = re.compile(r"-\d\d-")
_EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE)
_EMBEDDED = re.compile(r'\{"features": \[')


def publishes_presence(manifest: Mapping) -> bool:
    """True when a snapshot's manifest says its blocks carry :data:`PRESENCE_MINUTES`."""
    rules = manifest.get("rules")
    return isinstance(rules, dict) and isinstance(rules.get(PRESENCE_MINUTES), dict)


def block_fields(presence: bool) -> tuple[str, ...]:
    """The fields of a published block: :data:`BLOCK_FIELDS`, and :data:`PRESENCE_MINUTES` when ``presence``."""
    return (*BLOCK_FIELDS, PRESENCE_MINUTES) if presence else BLOCK_FIELDS


def withheld_label(min_count: int) -> str:
    """The text shown instead of a count below ``min_count``, e.g. ``"fewer than 3"``."""
    return f"fewer than {min_count}"


def public_dir(settings: Settings) -> Path:
    """The snapshot folder: ``$BEATMAP_PUBLIC_DIR`` if set, else the ``public_dir`` setting."""
    return Path(os.environ.get(ENV_PUBLIC_DIR) or settings.public_dir).expanduser()


def find_snapshot(folder: str | os.PathLike) -> Path | None:
    """The latest snapshot in ``folder``: the folder itself when it holds a manifest, else its newest subfolder.

    Returns None when nothing has been published there yet.
    """
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return folder
    if not folder.is_dir():
        return None
    candidates = [p for p in folder.iterdir() if p.is_dir() and (p / MANIFEST).is_file()]
    return max(candidates, key=_published_order, default=None)


def _published_order(folder: Path) -> tuple[str, str]:
    try:
        manifest = read_manifest(folder)
    except InputError:
        return ("", "")
    return (str(manifest.get("as_of", "")), str(manifest.get("built_at", "")))


def read_manifest(folder: str | os.PathLike) -> dict:
    """The snapshot's ``manifest.json`` as a dict.

    Raises
    ------
    InputError
        When the file is missing or is not a JSON object.
    """
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(
            f"{path}: no manifest; this folder holds no published snapshot. "
            "Publish one with `beatmap publish --out FOLDER`."
        ) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); publish the snapshot again.") from exc
    if not isinstance(manifest, dict):
        raise InputError(f"{path}: not a JSON object; publish the snapshot again.")
    return manifest


def read_rows(folder: str | os.PathLike, name: str) -> list[dict[str, str]]:
    """The rows of one of the snapshot's CSV files, every cell as text."""
    path = Path(folder) / name
    try:
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: missing from the snapshot; publish it again.") from exc


def read_about(folder: str | os.PathLike) -> str:
    """The snapshot's plain-language notes (``README.txt``)."""
    path = Path(folder) / ABOUT
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: missing from the snapshot; publish it again.") from exc


def read_features(folder: str | os.PathLike) -> dict:
    """The snapshot's ``coverage.geojson`` as a GeoJSON FeatureCollection (WGS84)."""
    path = Path(folder) / GEOJSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"{path}: missing from the snapshot; publish it again.") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc}); publish the snapshot again.") from exc


def beat_file(number: int) -> str:
    """The on-demand file of the ``number``-th beat (0-based, beats sorted by id)."""
    return f"beats/beat-{number:04d}.js"


def is_snapshot_file(name: str) -> bool:
    """True for a file name (relative, with ``/``) that a snapshot may hold besides the manifest."""
    return name in FILES or name == STREETS or bool(BEAT_FILE.match(name))


def streets_file(streets: Mapping) -> str:
    """The text of ``streets.js`` for a prepared street layer (``lines``, ``labels``, ``areas``)."""
    payload = {"lines": streets["lines"], "labels": streets["labels"], "areas": streets["areas"]}
    return STREETS_CALL + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + ");\n"


def read_streets(folder: str | os.PathLike) -> dict | None:
    """The snapshot's base map (``streets.js``: ``lines``, ``labels`` and ``areas``), or None when it has none.

    Raises
    ------
    InputError
        When the file is not the one publishing writes.
    """
    path = Path(folder) / STREETS
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = script_data(text, STREETS)
    if not isinstance(data, dict) or set(data) != {"lines", "labels", "areas"}:
        raise InputError(f"{path}: not the base map publishing writes; publish the snapshot again.")
    return data


def script_data(text: str, name: str) -> object:
    """The JSON data of an on-demand file (``beats/…`` or ``search.js``): the argument of its one call.

    Raises
    ------
    InputError
        When the file is not one call with JSON data, as publishing writes it.
    """
    call = {SEARCH: SEARCH_CALL, STREETS: STREETS_CALL}.get(name, BEAT_CALL)
    if not (text.startswith(call) and text.endswith(");\n")):
        raise InputError(f"{name}: not the data file publishing writes; publish the snapshot again.")
    try:
        return json.loads(text[len(call) : -3])
    except json.JSONDecodeError as exc:
        raise InputError(f"{name}: its data is not valid JSON ({exc}); publish the snapshot again.") from exc


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- checking -----------------------------------------------------------------------------------


def check_snapshot(folder: str | os.PathLike, *, settings: Settings) -> list[str]:
    """Re-verify a published snapshot against the public map rules of ``settings``.

    Checks the manifest and every file's SHA-256 (nothing added, removed or
    changed), the field whitelist of every layer (also inside ``index.html``),
    that no field looks like an officer, unit, note, time or point, that no
    event count is below ``public_min_count``, that the data is one fixed
    period of whole weeks ending at least ``public_delay_days`` full days
    before the publication date and holds no later date or any time of day,
    that time bins are weeks, and that geometry is block polygons with
    coordinates no finer than the block layer's grid.

    Returns
    -------
    list of str
        One sentence per violation, naming the file and the fix; empty when
        the snapshot keeps every rule.
    """
    return snapshot_violations(
        folder,
        min_count=settings.public_min_count,
        delay_days=settings.public_delay_days,
        trend_min_blocks=settings.public_trend_min_blocks,
        presence_allowed=settings.publish_presence_minutes,
    )


def snapshot_violations(
    folder: str | os.PathLike,
    *,
    min_count: int,
    delay_days: int,
    trend_min_blocks: int = 20,
    features: dict | None = None,
    presence_allowed: bool = False,
) -> list[str]:
    """:func:`check_snapshot` with the two thresholds given directly.

    :func:`beatmap.publish.publish_snapshot` uses it to verify a snapshot
    before it replaces the published one, with the delay of a logged override.
    ``features``: the folder's ``coverage.geojson`` as :func:`read_features` just read it, for a caller
    that reads it anyway (it is checked as the file would be).  ``presence_allowed``: whether the settings let a
    snapshot publish :data:`PRESENCE_MINUTES` (``publish_presence_minutes``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: no such folder; give the folder `beatmap publish --out` wrote."]
    try:
        manifest = read_manifest(folder)
    except InputError as exc:
        return [str(exc)]
    problems = _check_files(folder, manifest)
    problems += _check_rules(folder, manifest, min_count=min_count, delay_days=delay_days)
    problems += _check_presence_rules(folder, manifest, allowed=presence_allowed)
    labels = _allowed_labels(manifest, min_count)
    data_end = _manifest_date(manifest, "data_end")
    fields = block_fields(publishes_presence(manifest))
    collection, geojson_problems = _check_geojson(
        folder, min_count=min_count, labels=labels, features=features, fields=fields
    )
    problems += geojson_problems
    problems += _check_presence_count(folder, manifest, collection)
    problems += _check_table(folder, BLOCKS_CSV, fields, BLOCK_COUNT_FIELDS, min_count=min_count, labels=labels)
    problems += _check_table(folder, BEATS_CSV, BEAT_FIELDS, BEAT_COUNT_FIELDS, min_count=min_count, labels=set())
    problems += _check_table(folder, TREND_CSV, TREND_FIELDS, (), min_count=min_count, labels=set())
    problems += _check_trend(folder, manifest, min_blocks=trend_min_blocks)
    problems += _check_dates(folder, data_end)
    problems += _check_html(folder, min_count=min_count, labels=labels, fields=fields)
    problems += _check_scripts(folder, manifest, min_count=min_count, labels=labels, checked=collection, fields=fields)
    problems += streets_violations(folder)
    return problems


def _check_presence_rules(folder: Path, manifest: dict, *, allowed: bool) -> list[str]:
    """Presence minutes only where the settings allow them, and under rules at least as strict as beatmap's."""
    if not publishes_presence(manifest):
        return []
    where = folder / MANIFEST
    if not allowed:
        return [
            f"{where}: publishes GPS presence minutes, which the settings do not allow "
            "(publish_presence_minutes is false); publish again with the current settings."
        ]
    rules = manifest["rules"][PRESENCE_MINUTES]
    step, devices = rules.get("step_minutes"), rules.get("min_devices")
    problems = []
    if type(step) is not int or step < PRESENCE_STEP_MINUTES or step % PRESENCE_STEP_MINUTES:
        problems.append(
            f"{where}: presence minutes rounded to {step!r} minutes; the rules need a multiple of "
            f"{PRESENCE_STEP_MINUTES}. Publish again with the current settings."
        )
    if type(devices) is not int or devices < PRESENCE_MIN_DEVICES:
        problems.append(
            f"{where}: presence minutes withheld below {devices!r} devices; the rules need at least "
            f"{PRESENCE_MIN_DEVICES}. Publish again with the current settings."
        )
    return problems


def _check_presence_count(folder: Path, manifest: dict, collection: dict | None) -> list[str]:
    """Every block carries presence minutes when the snapshot publishes them, and as many are withheld as the
    manifest says (a withheld block given a value no longer adds up)."""
    if not publishes_presence(manifest) or not isinstance(collection, dict):
        return []
    path = folder / GEOJSON
    features = [f for f in collection.get("features") or [] if isinstance(f, dict)]
    props = [f.get("properties") or {} for f in features]
    missing = [n for n, p in enumerate(props, start=1) if PRESENCE_MINUTES not in p]
    if missing:
        return [f"{path} feature {missing[0]}: no {PRESENCE_MINUTES}, which this snapshot publishes; publish again."]
    withheld = sum(p[PRESENCE_MINUTES] == PRESENCE_WITHHELD for p in props)
    stated = (manifest.get("counts") or {}).get("presence_withheld")
    if stated != withheld:
        return [
            f"{path}: {withheld} blocks have presence minutes withheld, the manifest says {stated!r}; a withheld "
            "block must carry no value. Publish the snapshot again."
        ]
    return []


def _check_minutes(where: str, value: object, *, step: int) -> str | None:
    """A problem with one published presence figure, or None."""
    if value == PRESENCE_WITHHELD:
        return None
    number = _as_number(value)
    if number is None or number < 0 or number != int(number) or int(number) % step:
        return (
            f"{where}: {PRESENCE_MINUTES} is {value!r}; it must be whole minutes rounded to {step} or "
            f"{PRESENCE_WITHHELD!r} (a block seen by fewer devices carries no value). Publish again."
        )
    return None


def _manifest_date(manifest: dict, key: str) -> date | None:
    try:
        return date.fromisoformat(str(manifest.get(key)))
    except ValueError:
        return None


def _allowed_labels(manifest: dict, min_count: int) -> set[str]:
    """Withheld labels that are at least as strict as ``min_count``."""
    used = manifest.get("rules", {}).get("min_count", min_count)
    return {withheld_label(n) for n in {min_count, used} if isinstance(n, int) and n >= min_count}


def _check_files(folder: Path, manifest: dict) -> list[str]:
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return [f"{folder / MANIFEST}: no file list; publish the snapshot again."]
    problems = []
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    for name in sorted(present - set(listed)):
        problems.append(f"{folder / name}: not part of the published snapshot; delete it or publish again.")
    for name in sorted(set(FILES) - set(listed)):
        problems.append(f"{folder / MANIFEST}: {name} is not listed; publish the snapshot again.")
    for name, entry in sorted(listed.items()):
        path = folder / name
        if not is_snapshot_file(name):
            problems.append(f"{folder / MANIFEST}: lists {name!r}, which is not a snapshot file; publish again.")
        elif not path.is_file():
            problems.append(f"{path}: listed in the manifest but missing; publish the snapshot again.")
        elif not isinstance(entry, dict) or entry.get("sha256") != sha256_of(path):
            problems.append(
                f"{path}: changed since it was published (SHA-256 differs from {MANIFEST}); publish the snapshot again."
            )
    return problems


def _check_rules(folder: Path, manifest: dict, *, min_count: int, delay_days: int) -> list[str]:
    where = folder / MANIFEST
    problems = []
    if manifest.get("format") != FORMAT:
        problems.append(f"{where}: format is {manifest.get('format')!r}, not {FORMAT!r}; publish it again.")
    raw_rules = manifest.get("rules")
    rules: dict = raw_rules if isinstance(raw_rules, dict) else {}
    if not isinstance(rules.get("min_count"), int) or rules["min_count"] < min_count:
        problems.append(
            f"{where}: built with counts suppressed below {rules.get('min_count')!r}; the rules "
            f"need at least {min_count}. Publish again with the current settings."
        )
    if rules.get("time_bin") != "week":
        problems.append(f"{where}: time bins are {rules.get('time_bin')!r}; only weekly bins may be published.")
    as_of, start, end = (_manifest_date(manifest, k) for k in ("as_of", "data_start", "data_end"))
    if as_of is None or start is None or end is None:
        return [*problems, f"{where}: as_of, data_start and data_end must be dates; publish it again."]
    gap = (as_of - end).days - 1
    if gap < delay_days:
        problems.append(
            f"{where}: data ends {end}, only {gap} full days before it was published ({as_of}); "
            f"the rules need at least {delay_days}. Publish again without a delay override."
        )
    if end.weekday() != 6:
        problems.append(f"{where}: data ends on {end:%A} {end}, not at the end of a week (Sunday); publish it again.")
    span = (end - start).days + 1
    if span != 7 * PERIOD_WEEKS or (start - PERIOD_EPOCH).days % span:
        problems.append(
            f"{where}: {start} to {end} is not one of the fixed periods of {PERIOD_WEEKS} weeks counted "
            f"from {PERIOD_EPOCH}; overlapping periods let snapshots be subtracted. Publish it again."
        )
    built = str(manifest.get("built_at", ""))
    if built[:10] < as_of.isoformat():
        problems.append(
            f"{where}: dated {as_of}, later than the day it was built ({built[:10] or 'unknown'}); "
            "a snapshot cannot be dated in the future."
        )
    return problems


def _check_fields(where: str, fields: list[str], allowed: tuple[str, ...]) -> list[str]:
    problems = []
    for name in fields:
        if _PERSONAL.search(name):
            problems.append(
                f"{where}: field {name!r} looks like it identifies an officer, unit, note, time or "
                "point; it must never be published. Publish again with `beatmap publish`."
            )
        elif name not in allowed:
            problems.append(
                f"{where}: field {name!r} is not on the allowed list ({', '.join(allowed)}); "
                "publish again with `beatmap publish`."
            )
    return problems


def _check_count(where: str, name: str, value: object, *, min_count: int, labels: set[str]) -> str | None:
    """A problem with one published count, or None."""
    if isinstance(value, str) and value in labels:
        return None
    number = _as_number(value)
    if number is None:
        return f"{where}: {name} is {value!r}, neither a count nor a withheld label."
    if 0 < number < min_count:
        return (
            f"{where}: {name} is {value!r}, a count below {min_count} that must be withheld; "
            "publish again with `beatmap publish`."
        )
    return None


def _as_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _check_geojson(
    folder: Path,
    *,
    min_count: int,
    labels: set[str],
    features: dict | None = None,
    fields: tuple[str, ...] = BLOCK_FIELDS,
) -> tuple[dict | None, list[str]]:
    """``coverage.geojson`` as read (None when unreadable; ``features`` when given), and its problems."""
    path = folder / GEOJSON
    try:
        collection = read_features(folder) if features is None else features
    except InputError as exc:
        return None, [str(exc)]
    problems = _check_collection(str(path), collection, allowed=fields, min_count=min_count, labels=labels)
    return collection, problems


def _check_collection(
    where: str, collection: object, *, allowed: tuple[str, ...], min_count: int, labels: set[str]
) -> list[str]:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        return [f"{where}: not a GeoJSON FeatureCollection; publish again."]
    extra = sorted(set(collection) - {"type", "features"})
    problems = [f"{where}: unexpected member {k!r} in the collection; publish again." for k in extra]
    clean: set[tuple[str, ...]] = set()  # sets of field names already found clean (every block has the same)
    for number, feature in enumerate(collection.get("features") or [], start=1):
        at = f"{where} feature {number}"
        props = feature.get("properties") or {}
        names = tuple(sorted(props))
        if names not in clean:
            found = _check_fields(at, list(names), allowed)
            problems += found
            if not found:
                clean.add(names)
        for name in BLOCK_COUNT_FIELDS:
            if name in props:
                problem = _check_count(at, name, props[name], min_count=min_count, labels=labels)
                problems += [problem] if problem else []
        if PRESENCE_MINUTES in props and PRESENCE_MINUTES in allowed:
            problem = _check_minutes(at, props[PRESENCE_MINUTES], step=PRESENCE_STEP_MINUTES)
            problems += [problem] if problem else []
        problems += _check_geometry(at, feature.get("geometry"))
    return problems


def _check_geometry(where: str, geometry: object) -> list[str]:
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        kind = geometry.get("type") if isinstance(geometry, dict) else geometry
        return [f"{where}: geometry is {kind!r}; only block polygons may be published, never points or lines."]
    return _check_rounding(where, _coordinates(geometry))


def _check_rounding(where: str, values: np.ndarray) -> list[str]:
    """A problem when a coordinate is not finite or finer than :data:`COORD_DECIMALS` places."""
    scale = 10**COORD_DECIMALS
    bad = ~np.isfinite(values)
    bad[~bad] = np.abs(values[~bad] * scale - np.round(values[~bad] * scale)) > 1e-6
    if bad.any():
        x = float(values[int(bad.argmax())])
        return [
            f"{where}: coordinate {x!r} is finer than the block layer's {COORD_DECIMALS} decimal places; publish again."
        ]
    return []


def _coordinates(geometry: dict) -> np.ndarray:
    """Every number in a polygon's coordinates (as :func:`_numbers` finds them), in order.

    Each ring of ``[x, y]`` number pairs, as publishing writes them, becomes one numpy array (a city's
    30,000 blocks in a fraction of the time of a step per number); anything else is walked number by
    number.
    """
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry.get("type") == "Polygon" else coordinates
    if not isinstance(polygons, list):
        return np.fromiter(_numbers(polygons), dtype=float)
    parts: list[np.ndarray] = []
    for polygon in polygons:
        for ring in polygon if isinstance(polygon, list) else [polygon]:
            try:
                points = np.array(ring)
            except ValueError:  # ragged
                points = np.array([], dtype=object)
            if points.ndim == 2 and points.shape[1] == 2 and points.dtype.kind in "fi":
                parts.append(points.astype(float).ravel())
            else:
                parts.append(np.fromiter(_numbers(ring), dtype=float))
    return np.concatenate(parts) if parts else np.zeros(0)


def _numbers(value: object) -> Iterator[float]:
    if isinstance(value, list | tuple):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield float(value)


def _check_table(
    folder: Path, name: str, allowed: tuple[str, ...], counts: tuple[str, ...], *, min_count: int, labels: set[str]
) -> list[str]:
    path = folder / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{path}: missing from the snapshot; publish it again."]
    reader = csv.DictReader(io.StringIO(text))
    header = list(reader.fieldnames or [])
    problems = _check_fields(str(path), header, allowed)
    if sorted(header) != sorted(allowed):
        missing = sorted(set(allowed) - set(header))
        problems += [f"{path}: columns {', '.join(missing)} are missing; publish again."] if missing else []
    for row_number, row in enumerate(reader, start=1):
        for field in counts:
            if field in row:
                problem = _check_count(
                    f"{path} row {row_number}", field, row[field], min_count=min_count, labels=labels
                )
                problems += [problem] if problem else []
        if PRESENCE_MINUTES in row and PRESENCE_MINUTES in allowed:
            problem = _check_minutes(f"{path} row {row_number}", row[PRESENCE_MINUTES], step=PRESENCE_STEP_MINUTES)
            problems += [problem] if problem else []
    return problems


def _check_trend(folder: Path, manifest: dict, *, min_blocks: int) -> list[str]:
    path = folder / TREND_CSV
    start, end = _manifest_date(manifest, "data_start"), _manifest_date(manifest, "data_end")
    try:
        rows = read_rows(folder, TREND_CSV)
        blocks = read_rows(folder, BLOCKS_CSV)
    except InputError:
        return []
    sizes: dict[str, int] = {}
    for block in blocks:
        sizes[block.get("beat_id", "")] = sizes.get(block.get("beat_id", ""), 0) + 1
    problems = []
    small = sorted({row.get("beat_id", "") for row in rows if sizes.get(row.get("beat_id", ""), 0) < min_blocks})
    for beat in small:
        problems.append(
            f"{path}: weekly shares of beat {beat!r}, which has {sizes.get(beat, 0)} blocks; in a beat "
            f"of fewer than {min_blocks} blocks one block's visits show in its weekly share. Publish "
            "again (small beats get no weekly rows)."
        )
    for number, row in enumerate(rows, start=1):
        try:
            first, last = date.fromisoformat(row.get("week_start", "")), date.fromisoformat(row.get("week_end", ""))
        except ValueError:
            problems.append(f"{path} row {number}: week_start and week_end must be dates.")
            continue
        if first.weekday() != 0 or last - first != timedelta(days=6):
            problems.append(
                f"{path} row {number}: {first} to {last} is not one week from Monday to Sunday; "
                "only weekly bins may be published."
            )
        if start is not None and end is not None and not start <= first <= last <= end:
            problems.append(
                f"{path} row {number}: the week {first} to {last} lies outside the data ({start} to {end})."
            )
        pct = _as_number(row.get("coverage_pct", ""))
        if pct is None or pct % 10 != 0 or not 0 <= pct <= 100:
            problems.append(
                f"{path} row {number}: coverage_pct {row.get('coverage_pct')!r} must be a multiple of "
                "10 from 0 to 100 (weekly figures are coarse)."
            )
    return problems


def _check_dates(folder: Path, data_end: date | None) -> list[str]:
    """No time of day and no date after the end of the data, in any data file."""
    problems = []
    for name in (GEOJSON, BLOCKS_CSV, BEATS_CSV, TREND_CSV, STREETS):
        path = folder / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if not _DATE_HINT.search(text):
            continue  # no "-12-" anywhere: no date, no time (both need one; found at a fraction of the cost)
        if _CLOCK.search(text):
            problems.append(f"{path}: holds a time of day; only dates and weekly bins may be published.")
        later = sorted({d for d in _DATE.findall(text) if data_end is not None and _is_after(d, data_end)})
        if later:
            problems.append(
                f"{path}: holds dates after the end of the data ({data_end}): {', '.join(later[:5])}; publish again."
            )
    return problems


def _is_after(text: str, day: date) -> bool:
    try:
        return date.fromisoformat(text) > day
    except ValueError:
        return False


def _check_html(folder: Path, *, min_count: int, labels: set[str], fields: tuple[str, ...] = BLOCK_FIELDS) -> list[str]:
    path = folder / INDEX
    try:
        page = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [f"{path}: missing from the snapshot; publish it again."]
    problems = []
    if _EXTERNAL.search(page):
        problems.append(
            f"{path}: loads a script, style or image from the internet; the page must work offline "
            "with Leaflet inlined. Publish again (run `make vendor` first)."
        )
    decoder = json.JSONDecoder()
    for match in _EMBEDDED.finditer(page):
        try:
            collection, _ = decoder.raw_decode(page, match.start())
        except json.JSONDecodeError:
            problems.append(f"{path}: embedded map data at character {match.start()} is not valid JSON.")
            continue
        problems += _check_collection(
            f"{path} (map data)", collection, allowed=fields, min_count=min_count, labels=labels
        )
    for match in _PAGE_DATA.finditer(page):
        try:
            data = json.loads(match.group(1))
        except json.JSONDecodeError:
            problems.append(f"{path}: the page's data at character {match.start()} is not valid JSON; publish again.")
            continue
        if not isinstance(data, dict) or set(data) - _PAGE_KEYS:
            extra = sorted(set(data) - _PAGE_KEYS) if isinstance(data, dict) else [type(data).__name__]
            problems.append(f"{path}: the page's data holds {', '.join(map(str, extra))}; publish again.")
            continue
        problems += _check_collection(
            f"{path} (beat outlines)", data.get("outlines"), allowed=("beat_id",), min_count=min_count, labels=labels
        )
    return problems


#: What the page's own data may hold: beat outlines, label points, coverage per beat and how to draw them.
_PAGE_KEYS = {
    "outlines",
    "labels",
    "coverage",
    "files",
    "search",
    "shown",
    "fields",
    "levels",
    "classes",
    "edge",
    "unknown",
    "bounds",
    "streets",
}


def _check_scripts(
    folder: Path,
    manifest: dict,
    *,
    min_count: int,
    labels: set[str],
    checked: dict | None = None,
    fields: tuple[str, ...] = BLOCK_FIELDS,
) -> list[str]:
    """The on-demand files hold only published blocks and fields, like ``coverage.geojson``.

    A beat file whose blocks are exactly ``checked``'s blocks of that beat (``coverage.geojson`` as the
    check read it, each block with the published fields in their order, as publishing writes them) holds
    nothing the check of ``coverage.geojson`` did not see; any other is checked in full.
    """
    files = manifest.get("files")
    listed: dict = files if isinstance(files, dict) else {}
    problems = []
    by_beat: dict[str, list[dict | None]] = {}
    for feature in (checked or {}).get("features") or []:
        if isinstance(feature, dict):
            props = feature.get("properties") or {}
            by_beat.setdefault(str(props.get("beat_id", "")), []).append(
                {
                    "type": "Feature",
                    "properties": {k: props[k] for k in fields},
                    "geometry": feature.get("geometry"),
                }
                if all(k in props for k in fields)
                else None  # a field the beat file fills in was not there to check: check that file in full
            )
    seen = [{"type": "FeatureCollection", "features": by_beat[b]} for b in sorted(by_beat)]
    for name in sorted(n for n in listed if BEAT_FILE.match(n) or n == SEARCH):
        path = folder / name
        try:
            data = script_data(path.read_text(encoding="utf-8"), name)
        except FileNotFoundError:
            continue  # reported with the file list
        except InputError as exc:
            problems.append(f"{folder}/{exc}")
            continue
        if name == SEARCH:
            problems += _check_search_rows(str(path), data, min_count=min_count, labels=labels, fields=fields)
        elif not isinstance(data, list) or len(data) != 2:
            problems.append(f"{path}: not the data file publishing writes; publish the snapshot again.")
        elif not (type(data[0]) is int and 0 <= data[0] < len(seen) and data[1] == seen[data[0]]):
            problems += _check_collection(str(path), data[1], allowed=fields, min_count=min_count, labels=labels)
    return problems


def _check_search_rows(
    where: str, rows: object, *, min_count: int, labels: set[str], fields: tuple[str, ...] = BLOCK_FIELDS
) -> list[str]:
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(fields) for r in rows):
        return [f"{where}: not rows of the published block fields; publish the snapshot again."]
    problems = []
    at = {name: fields.index(name) for name in BLOCK_COUNT_FIELDS}
    minutes = fields.index(PRESENCE_MINUTES) if PRESENCE_MINUTES in fields else None
    for number, row in enumerate(rows, start=1):
        for name, i in at.items():
            problem = _check_count(f"{where} row {number}", name, row[i], min_count=min_count, labels=labels)
            problems += [problem] if problem else []
        if minutes is not None:
            problem = _check_minutes(f"{where} row {number}", row[minutes], step=PRESENCE_STEP_MINUTES)
            problems += [problem] if problem else []
    return problems


# --- the base map --------------------------------------------------------------------------------


def streets_violations(folder: str | os.PathLike) -> list[str]:
    """What is wrong with a snapshot's ``streets.js`` (nothing when it has none).

    The base map is public geography and nothing else: street lines that carry a name and whether the street
    is major, name points that lie on a line of that name (within :data:`LABEL_NEAR_M`), with a major flag and
    an upright angle, and water and park polygons with their names; every coordinate at most
    :data:`COORD_DECIMALS` places.  No other member, field or shape may be there: a point that is not on its
    street could be anything (an event, a home).  The first view, the page and this file, stays under
    :data:`FIRST_VIEW_BYTES`.
    """
    folder = Path(folder)
    path = folder / STREETS
    try:
        data = read_streets(folder)
    except InputError as exc:
        return [str(exc)]
    if data is None:
        return []
    where = str(path)
    problems: list[str] = []
    lines = data["lines"]
    problems += _check_base_collection(
        f"{where} (streets)", lines, fields={"name": str, "major": int}, kinds=("LineString", "MultiLineString")
    )
    areas = data["areas"]
    problems += _check_base_collection(
        f"{where} (water and parks)", areas, fields={"kind": str, "name": str}, kinds=("Polygon", "MultiPolygon")
    )
    for number, feature in enumerate(areas.get("features") or [] if isinstance(areas, dict) else [], start=1):
        kind = (feature.get("properties") or {}).get("kind") if isinstance(feature, dict) else None
        if kind not in STREET_AREA_KINDS:
            problems.append(f"{where} (water and parks) feature {number}: kind {kind!r} is not water or a park.")
    if not problems:
        problems += _check_street_labels(where, data["labels"], lines)
    first_view = path.stat().st_size + ((folder / INDEX).stat().st_size if (folder / INDEX).is_file() else 0)
    if first_view > FIRST_VIEW_BYTES:
        problems.append(
            f"{where}: the first view (index.html and {STREETS}) is {first_view:,} bytes, over "
            f"{FIRST_VIEW_BYTES:,}; publish again (only the major streets are kept when all would be too large)."
        )
    return problems


def _check_base_collection(where: str, collection: object, *, fields: dict[str, type], kinds: tuple[str, ...]) -> list:
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        return [f"{where}: not a GeoJSON FeatureCollection; publish again."]
    extra = sorted(set(collection) - {"type", "features"})
    problems = [f"{where}: unexpected member {k!r}; publish again." for k in extra]
    features = collection.get("features")
    for number, feature in enumerate(features if isinstance(features, list) else [], start=1):
        at = f"{where} feature {number}"
        props = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(props, dict) or set(props) != set(fields):
            names = sorted(props) if isinstance(props, dict) else props
            problems.append(f"{at}: fields {names!r}; a base map's may only be {', '.join(fields)}. Publish again.")
            continue
        wrong = [k for k, kind in fields.items() if type(props[k]) is not kind]
        if wrong or ("major" in props and props["major"] not in (0, 1)):
            problems.append(f"{at}: {', '.join(wrong) or 'major'} of the wrong kind; publish again.")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict) or geometry.get("type") not in kinds:
            kind = geometry.get("type") if isinstance(geometry, dict) else geometry
            problems.append(f"{at}: geometry is {kind!r}; a base map holds only {' and '.join(kinds)} here.")
            continue
        values = np.fromiter(_numbers(geometry.get("coordinates")), dtype=float)
        problems += _check_rounding(at, values)
        if len(values) % 2 or np.any(np.abs(values[0::2]) > 180) or np.any(np.abs(values[1::2]) > 90):
            problems.append(f"{at}: coordinates are not longitude and latitude pairs; publish again.")
    return problems


def _check_street_labels(where: str, labels: object, lines: dict) -> list[str]:
    """Every name point is ``[lat, lon, name, major, angle]`` and lies on a street of that name."""
    if not isinstance(labels, list):
        return [f"{where} (names): not a list of name points; publish again."]
    by_name: dict[str, list] = {}
    for feature in lines.get("features") or []:
        by_name.setdefault(feature["properties"]["name"], []).append(feature["geometry"])
    points = [p for p in labels if isinstance(p, list) and len(p) == 5]
    problems = [
        f"{where} (names) point {n}: not [lat, lon, name, major, angle]; publish again."
        for n, p in enumerate(labels, start=1)
        if not (
            isinstance(p, list)
            and len(p) == 5
            and all(type(v) in (int, float) for v in (p[0], p[1]))
            and isinstance(p[2], str)
            and p[3] in (0, 1)
            and type(p[4]) is int
            and -90 <= p[4] <= 90
        )
    ]
    if problems or not points:
        return problems
    lat = np.array([p[0] for p in points], dtype=float)
    lon = np.array([p[1] for p in points], dtype=float)
    problems += _check_rounding(f"{where} (names)", np.concatenate([lat, lon]))
    # Metres near the city: longitude shrinks with the cosine of the latitude.
    scale = np.array([111_320.0 * np.cos(np.radians(float(np.median(lat)))), 110_540.0])
    streets = {
        name: shapely.transform(
            shapely.from_geojson(json.dumps({"type": "GeometryCollection", "geometries": g})), lambda xy: xy * scale
        )
        for name, g in by_name.items()
    }
    for number, (p, y, x) in enumerate(zip(points, lat, lon, strict=True), start=1):
        line = streets.get(p[2])
        far = line is None or shapely.distance(line, shapely.Point(x * scale[0], y * scale[1])) > LABEL_NEAR_M
        if far:
            problems.append(
                f"{where} (names) point {number}: {p[2]!r} at {y}, {x} is not on a street of that name; "
                "a base map names its streets and shows no other point. Publish again."
            )
    return problems


# --- the notes -----------------------------------------------------------------------------------


#: The heading of the optional presence minutes column (``publish_presence_minutes``), after the others.
PRESENCE_HEADING = "Police presence outside calls (GPS)"
#: How the page words a withheld presence figure.
PRESENCE_WITHHELD_TEXT = f"withheld (fewer than {PRESENCE_MIN_DEVICES} patrol devices)"


def presence_text(value: object) -> str:
    """A published presence figure in words, as the pages show it: "about 45 minutes of police presence outside
    calls", "under 8 minutes …" for a 0 (it is rounded to 15), or the withheld text."""
    if value == PRESENCE_WITHHELD or isinstance(value, bool) or not isinstance(value, int | str):
        return PRESENCE_WITHHELD_TEXT
    try:
        minutes = int(value)
    except ValueError:
        return PRESENCE_WITHHELD_TEXT
    if minutes == 0:
        return f"under {(PRESENCE_STEP_MINUTES + 1) // 2} minutes of police presence outside calls"
    hours = f" ({(minutes + 30) // 60:,} hours)" if minutes >= 120 else ""  # half up, as the page's script
    return f"about {minutes:,} minutes{hours} of police presence outside calls"


def level_text(cuts: tuple[int, int] | None) -> dict[str, str]:
    """Legend words per visit level, with the snapshot's cut points.

    A level no block can reach this period (too few shown counts to split) is left out.
    """
    text = {"none": "None: no foot patrol or community visit"}
    if cuts is None:
        return {**text, "low": "Low: at least 1 visit"}
    low, medium = cuts
    middle = {"medium": f"Medium: {low + 1} to {medium} visits"} if medium > low else {}
    return {**text, "low": f"Low: 1 to {low} visits", **middle, "high": f"High: more than {medium} visits"}


def about_from_manifest(manifest: Mapping) -> str:
    """:func:`about_text` made again from a snapshot's manifest (its dates and rules), not read from its files.

    The public page shows this, and ``publish --check`` compares ``README.txt``
    with it: an edited README with its checksum recomputed shows nothing.

    Raises
    ------
    InputError
        When the manifest lacks the dates or rules (the snapshot check says which).
    """
    try:
        rules = manifest["rules"]
        cuts = rules.get("level_cuts")
        override = manifest.get("override")
        return notes_text(
            date.fromisoformat(str(manifest["data_start"])),
            date.fromisoformat(str(manifest["data_end"])),
            date.fromisoformat(str(manifest["as_of"])),
            min_count=int(rules["min_count"]),
            cuts=(int(cuts[0]), int(cuts[1])) if cuts else None,
            delay=int(rules["delay_days"]),
            override={"delay_days": int(override["delay_days"]), "rule_delay_days": int(override["rule_delay_days"])}
            if override
            else None,
            trend_min_blocks=int(rules.get("trend_min_blocks", 20)),
            presence=publishes_presence(manifest),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{MANIFEST}: its dates or rules cannot be read ({exc}); publish the snapshot again.") from exc


def notes_text(
    start: date,
    end: date,
    as_of: date,
    *,
    min_count: int,
    cuts: tuple[int, int] | None,
    delay: int,
    override: Mapping | None,
    trend_min_blocks: int,
    presence: bool = False,
) -> str:
    """The plain-language notes of a snapshot (``README.txt``): what the map shows and doesn't, how the numbers
    are made; from its dates and rules alone."""
    m = min_count
    levels = level_text(cuts)
    days = (end - start).days + 1
    weeks = days // 7
    title = "Police presence outside enforcement: public map"
    lines = [
        title,
        "=" * len(title),
        "",
        f"Data from {day_text(start)} to {day_text(end)} ({days} days), published {day_text(as_of)}.",
        "",
        "What the map shows",
        "-" * 18,
        "",
        "- Every city block, coloured by how often police were there outside enforcement: foot patrols and "
        "community visits (porch visits, business checks, school visits, community meetings) that officers "
        "logged.",
        f"- {'. '.join(levels.values())}. The cut points split the "
        f"blocks with at least {m} visits into three equal groups across the whole city, so colours compare "
        "between beats.",
        "- A dashed red-orange edge marks blocks where most police presence was enforcement (stops, citations, "
        f"arrests, answering calls), shown only where the block had at least {m} enforcement events.",
        "- For each beat: how many of its blocks had at least one foot patrol or community visit (coverage), and, "
        f"for beats of at least {trend_min_blocks} blocks, the same share for each of the period's {weeks} weeks, "
        "rounded to the nearest 10% (in a smaller beat one block would show week by week).",
        *(
            [
                "- For each block, the minutes that police radios and patrol cars placed there by GPS outside calls "
                f"(on foot or in a car), for the whole period, rounded to {PRESENCE_STEP_MINUTES} minutes. It is "
                f"withheld where fewer than {PRESENCE_MIN_DEVICES} devices were there in the period, added into no "
                "total, and not part of the colours."
            ]
            if presence
            else []
        ),
        "",
        "What the map does not show",
        "-" * 26,
        "",
        "- No officer, unit, name, note, time of day, patrol route, GPS track or exact location: only counts per "
        "block for the whole period, and shares per beat and week.",
        "- No enforcement detail beyond one count per block: not what kind, not why, not who.",
        f"- Nothing recent. The data is a fixed period of {weeks} whole weeks (Monday to Sunday), the latest "
        f"that ended at least {delay} days before publication, so the map cannot show where police are now or "
        "will be next. Every snapshot until the next period is over shows the same data, and periods never "
        "overlap, so comparing snapshots reveals nothing about a single week.",
        "- Presence that officers did not log, and driving through in a car.",
        "- Crime or safety. A block with few visits is not a safer or a more dangerous block.",
        "",
        "How the numbers are made",
        "-" * 24,
        "",
        f'- A count from 1 to {m - 1} is withheld and shown as "{withheld_label(m)}", so a single visit, '
        "which could point to one household, is never shown. A count of 0 is shown: it says nothing about any "
        "person.",
        "- Withheld counts are never added into any total. A beat's totals (visits and enforcement on shown "
        "blocks) add only the block counts that are shown, and the beat table says how many blocks were "
        "withheld; the week-by-week shares count only blocks whose count is shown. So subtracting the shown "
        "blocks from a total can never reveal a withheld count.",
        "- Block shapes are simplified by about 2 metres and rounded to about 1 metre; no point locations are "
        "published.",
        "- Files: coverage.csv and coverage.geojson (one row per block), beats.csv (one row per beat), trend.csv "
        "(one row per beat and week), manifest.json (the rules applied and a checksum of every file).",
    ]
    if override is not None:
        lines += [
            "",
            f"This snapshot was published with a shorter delay ({override['delay_days']} days) than the "
            f"usual {override['rule_delay_days']} days, by a decision the department recorded.",
        ]
    return "\n".join(lines) + "\n"


def day_text(d: date) -> str:
    """A date as the notes write it: 'March 2, 2026'."""
    return f"{d:%B} {d.day}, {d.year}"
