"""Building a mapping step by step (the Import page's wizard): guesses from a file's first rows, a live check of
a time format, a preview of what the first rows would give, and the mapping as TOML the command line can use.

Nothing here imports streamlit: the page reads widgets, calls these, and shows what they return.  A mapping is
kept as the dictionary of its TOML text (see ``examples/``), so what the page builds, what it saves and what
``beatmap import --mapping`` reads are one thing.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from beatmap import schema as S
from beatmap.activity import ENCODING, GUESSED_ENCODING, ROW, Mapping, mapping_from_dict, parse_activity
from beatmap.errors import InputError
from beatmap.timeformat import ISO, guess_time_format, parses

#: Rows the wizard reads to guess and to preview.
HEAD_ROWS = 1000

#: Column names that usually hold a field, lower-cased with spaces and underscores removed, best first.
NAME_HINTS: dict[str, tuple[str, ...]] = {
    S.OCCURRED_AT: (
        "occurredat",
        "date",
        "datetime",
        "timecreate",
        "createdat",
        "calltime",
        "reportdate",
        "occurreddate",
        "offensestartdatetime",
        "incidentdate",
        "time",
        "dispatchtime",
    ),
    S.SOURCE_ID: (
        "id",
        "sourceid",
        "incidentid",
        "eventnumber",
        "incidentnumber",
        "casenumber",
        "reportnumber",
        "nopditem",
        "callnumber",
        "cadnumber",
        "offenseid",
    ),
    S.SUBTYPE: (
        "subtype",
        "primarytype",
        "typetext",
        "calltype",
        "offense",
        "offensedescription",
        "crimetype",
        "type",
        "description",
    ),
    S.REPORTED_BEAT: ("reportedbeat", "beat", "beatid", "patrolbeat"),
    S.OFFICER_ID: ("officerid", "officer", "badge", "badgenumber"),
    S.UNIT_ID: ("unitid", "unit", "primaryunit"),
    S.SELF_INITIATED: ("selfinitiated", "officerinitiated", "selfinit"),
    S.KIND: ("kind",),
    S.LAT: ("lat", "latitude", "ycoordwgs84", "geolat"),
    S.LON: ("lon", "lng", "long", "longitude", "xcoordwgs84", "geolon"),
    "x": ("x", "mapx", "xcoordinate", "xcoord", "easting", "pointx"),
    "y": ("y", "mapy", "ycoordinate", "ycoord", "northing", "pointy"),
}


#: Parts of names that suggest an optional field when no name above matches whole (``police_beat``, ``category``).
PART_HINTS: dict[str, tuple[str, ...]] = {
    S.SUBTYPE: ("category", "offense", "calltype", "crimetype", "type"),
    S.REPORTED_BEAT: ("beat",),
    S.OFFICER_ID: ("officer", "badge"),
    S.UNIT_ID: ("unit",),
}


def _key(name: str) -> str:
    return re.sub(r"[\s_\-.]", "", name.lower())


@dataclass(frozen=True)
class Guess:
    """What the first rows suggest: a column per field, a time format, lat/lon or x/y, and why."""

    columns: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None
    coordinates: str = "latlon"  # or "xy"
    x: str | None = None
    y: str | None = None
    kind_column: str | None = None
    notes: tuple[str, ...] = ()


def read_head(data: str | Path | bytes, rows: int = HEAD_ROWS, *, name: str | None = None) -> pd.DataFrame:
    """The first ``rows`` rows of a CSV (a path, or an upload's bytes) as text (blank for empty), index 1..n = row
    numbers, columns stripped.  ``name`` names the file in messages.  Rows that are not UTF-8 are shown as
    Windows-1252, and ``attrs["encoding"]`` says so (``cp1252``), as the import will report.

    Raises
    ------
    InputError
        When the file is not a CSV with a header and rows.
    """
    label = name or (Path(data).name if not isinstance(data, bytes) else "the file")

    def read(encoding: str) -> pd.DataFrame:
        source = io.BytesIO(data) if isinstance(data, bytes) else Path(data)
        return pd.read_csv(source, dtype=str, keep_default_na=False, nrows=rows, encoding=encoding)

    try:
        try:
            head, encoding = read("utf-8-sig"), "utf-8-sig"
        except UnicodeDecodeError:
            head, encoding = read(GUESSED_ENCODING), GUESSED_ENCODING
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise InputError(
            f"{label}: cannot be read as a CSV with a header row "
            f"({str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__})."
        ) from exc
    if head.shape[1] < 2 or head.empty:
        raise InputError(f"{label}: needs a header row, at least two columns and one row.")
    head.columns = [str(c).strip() for c in head.columns]
    head.index = pd.RangeIndex(1, len(head) + 1, name=ROW)
    head.attrs[ENCODING] = encoding
    return head


def _numbers(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values.str.strip(), errors="coerce")


def _by_name(columns: Sequence[str], field_name: str, taken: set[str]) -> str | None:
    keys = {_key(c): c for c in columns if c not in taken}
    for hint in NAME_HINTS.get(field_name, ()):
        if hint in keys:
            return keys[hint]
    for part in PART_HINTS.get(field_name, ()):
        for key, column in keys.items():
            if part in key:
                return column
    return None


def guess(head: pd.DataFrame) -> Guess:
    """Guess the mapping of a file from its first rows: names first, checked against the values.

    A time column is the best-named column whose values read in a common
    format (ISO 8601 first); lat/lon are numeric columns in range; x/y are
    large numbers (a projected CRS, which the user must state); a ``kind``
    column is used only when its values are beatmap's kinds.
    """
    columns = list(head.columns)
    taken: set[str] = set()
    chosen: dict[str, str] = {}
    notes: list[str] = []
    fmt = None
    candidates = [c for c in [_by_name(columns, S.OCCURRED_AT, taken)] if c] + [
        c for c in columns if any(w in c.lower() for w in ("date", "time"))
    ]
    for column in dict.fromkeys(candidates):
        found = guess_time_format(head[column])
        if found is not None:
            chosen[S.OCCURRED_AT], fmt = column, found
            notes.append(f"times: {column!r} reads as " + ("ISO 8601" if found == ISO else repr(found)))
            break
    taken |= set(chosen.values())
    lat, lon = _by_name(columns, S.LAT, taken), _by_name(columns, S.LON, taken)
    coordinates, x, y = "latlon", None, None
    if lat and lon and _numbers(head[lat]).abs().le(90).mean() > 0.5 and _numbers(head[lon]).abs().le(180).mean() > 0.5:
        chosen[S.LAT], chosen[S.LON] = lat, lon
        notes.append(f"points: latitude {lat!r}, longitude {lon!r}")
    else:
        x, y = _by_name(columns, "x", taken), _by_name(columns, "y", taken)
        if x and y and _numbers(head[x]).abs().gt(1000).mean() > 0.5:
            coordinates = "xy"
            notes.append(f"points: x {x!r}, y {y!r} in a projected CRS: say which (e.g. EPSG:3435)")
        else:
            x = y = None
            notes.append("points: no latitude/longitude or x/y columns found; pick them")
    taken |= {c for c in (*chosen.values(), x, y) if c}
    for name in (S.SOURCE_ID, S.SUBTYPE, S.REPORTED_BEAT, S.OFFICER_ID, S.UNIT_ID, S.SELF_INITIATED):
        column = _by_name(columns, name, taken)
        if column:
            chosen[name] = column
            taken.add(column)
    kind_column = _by_name(columns, S.KIND, taken)
    if kind_column and not head[kind_column].str.lower().isin(S.KINDS).mean() > 0.5:
        kind_column = None
    if kind_column is None:
        notes.append(
            "kind: no column of foot_patrol/community_visit/enforcement/other; choose one kind for every "
            "row (a crime or arrest export is enforcement) or rules on a column"
        )
    return Guess(
        columns=chosen,
        time_format=None if fmt == ISO else fmt,
        coordinates=coordinates,
        x=x,
        y=y,
        kind_column=kind_column,
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class TimeCheck:
    """How a time format reads a column's first rows: the share read and some values it cannot read."""

    read: int
    total: int
    bad_examples: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Every non-blank value reads."""
        return self.read == self.total


def check_time_format(values: pd.Series, fmt: str | None) -> TimeCheck:
    """Which non-blank ``values`` read in ``fmt`` (None: ISO 8601), with up to five that do not."""
    text = values.astype(str).str.strip()
    text = text[text != ""]
    ok = parses(text, fmt)
    return TimeCheck(read=int(ok.sum()), total=len(text), bad_examples=tuple(text[~ok].head(5)))


def parse_points(text: str) -> list[list[float]]:
    """``"0,0; 37369000,3513814"`` -> ``[[0.0, 0.0], [37369000.0, 3513814.0]]`` (placeholder points, x,y each).

    Raises
    ------
    InputError
        Naming the part that is not two numbers.
    """
    points = []
    for part in re.split(r"[;\n]+", text.strip()):
        if not part.strip():
            continue
        pieces = [p.strip() for p in part.split(",")]
        try:
            x, y = (float(p) for p in pieces)
        except ValueError:
            raise InputError(f"placeholder point {part.strip()!r}: give it as two numbers x,y, e.g. 0,0") from None
        points.append([x, y])
    return points


def build_mapping(
    *,
    name: str | None,
    occurred_at: str,
    time_format: str | None,
    timezone: str | None = None,
    lat: str | None = None,
    lon: str | None = None,
    x: str | None = None,
    y: str | None = None,
    crs: str | None = None,
    placeholders: Sequence[Sequence[float]] = (),
    reject_pileups: bool = False,
    optional: dict[str, str] | None = None,
    kind_column: str | None = None,
    kind_default: str | None = None,
    kind_values: dict[str, str] | None = None,
    zero_pad: int | None = None,
) -> dict:
    """The mapping, as the dictionary of its TOML text, from the wizard's choices (blank choices left out).

    ``kind_values`` maps values of ``kind_column`` to kinds (one rule per kind);
    ``kind_default`` is the kind of every other row.  Checked with
    :func:`beatmap.activity.mapping_from_dict` before it is returned.

    Raises
    ------
    InputError
        When the choices do not make a usable mapping.
    """
    source: dict[str, object] = {}
    if name:
        source["name"] = name
    if timezone:
        source["timezone"] = timezone
    if time_format and time_format != ISO:
        source["time_format"] = time_format
    columns: dict[str, str] = {S.OCCURRED_AT: occurred_at}
    coordinates: dict[str, object] = {}
    if x and y:
        coordinates |= {"x": x, "y": y}
        if crs:
            coordinates["crs"] = crs
    else:
        if lat:
            columns[S.LAT] = lat
        if lon:
            columns[S.LON] = lon
    if placeholders:
        coordinates["reject"] = [[float(a), float(b)] for a, b in placeholders]
    if reject_pileups:
        coordinates["reject_pileups"] = True
    columns |= {k: v for k, v in (optional or {}).items() if v}
    out: dict[str, object] = {}
    if source:
        out["source"] = source
    out["columns"] = columns
    if coordinates:
        out["coordinates"] = coordinates
    kind: dict[str, object] = {}
    if kind_values and kind_column:
        by_kind: dict[str, list[str]] = {}
        for value, k in kind_values.items():
            if k:
                by_kind.setdefault(k, []).append(value)
        kind["rules"] = [{"column": kind_column, "equals": values, "kind": k} for k, values in by_kind.items()]
    elif kind_column:
        columns[S.KIND] = kind_column
    if kind_default:
        kind["default"] = kind_default
    if kind:
        out["kind"] = kind
    if zero_pad:
        out["reported_beat"] = {"zero_pad": int(zero_pad)}
    mapping_from_dict(out, where="this mapping")
    return out


def mapping_toml(mapping: dict, *, comment: str | None = None) -> str:
    """The mapping as TOML text (sections, then ``[[kind.rules]]``), readable by ``beatmap import --mapping``."""
    lines = [f"# {line}" for line in (comment or "").splitlines()]
    for section, body in mapping.items():
        plain = {k: v for k, v in body.items() if k != "rules"}
        if plain:
            lines += ["", f"[{section}]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in plain.items()]
        for rule in body.get("rules", []):
            lines += ["", f"[[{section}.rules]]"] + [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in rule.items()]
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


@dataclass(frozen=True)
class Preview:
    """What the mapping makes of the first rows: the points read, and the rows it would reject with why."""

    points: pd.DataFrame
    rejects: pd.DataFrame
    rows: int

    @property
    def reasons(self) -> dict[str, int]:
        """Rejected preview rows per reason."""
        return {str(k): int(v) for k, v in self.rejects["group"].value_counts().items()} if len(self.rejects) else {}


def preview(head: pd.DataFrame, mapping: dict, *, timezone: str) -> Preview:
    """Run the mapping over the first rows: ``points`` (``lat``, ``lon``, ``kind``, ``occurred_at``) and rejects.

    Raises
    ------
    InputError
        When the mapping is not usable (a column it names is missing, a CRS is unknown).
    """
    parsed: Mapping = mapping_from_dict(mapping, where="this mapping")
    if parsed.x and not parsed.xy_crs:
        raise InputError("x/y columns need their CRS, e.g. EPSG:3435 for NAD83 Illinois East (US feet)")
    missing = sorted({c for c in (*parsed.columns.values(), parsed.x, parsed.y) if c} - set(head.columns))
    if missing:
        raise InputError(f"the file has no column {', '.join(map(repr, missing))}")
    records, rejects = parse_activity(head, parsed, timezone=timezone, source=parsed.name or "preview")
    points = records[[S.LAT, S.LON, S.KIND, S.OCCURRED_AT]].reset_index(drop=True)
    return Preview(
        points=points[np.isfinite(points[S.LAT]) & np.isfinite(points[S.LON])], rejects=rejects, rows=len(head)
    )
