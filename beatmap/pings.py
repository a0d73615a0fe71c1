"""GPS ping files: mappings, rosters, chunked reading and row accounting.

A ping file is CSV, Parquet or GPX.  The canonical columns are ``ts, lat, lon,
device_id`` plus optional ``officer_id``, ``unit_id``, ``accuracy_m`` and
``speed_mps``.  A ping mapping (TOML, like an activity mapping) adapts a
foreign export::

    [source]
    name = "avl"
    timezone = "America/Chicago"      # for times without an offset
    time_format = "%m/%d/%Y %H:%M:%S" # else ISO 8601; "epoch" for seconds since 1970
    device_kind = "vehicle"           # or "radio", "phone", "bodycam" (classified by movement)
    device_id = "car-12"              # a fixed device id (a GPX file's default is its track name)

    [columns]
    ts = "FixTime"
    device_id = "UnitSerial"

    [coordinates]
    x = "X"
    y = "Y"
    crs = "EPSG:3435"
    reject = [[0, 0]]                 # placeholder points

A device roster (CSV ``device_id, unit_id, officer_id, from, to``; ``from``
and ``to`` local times or blank for open ends) maps devices to units and
officers over time; a value in the ping itself wins.

Every row read is *used*, a *duplicate* (the same device and second as a
ping read before it) or *rejected* with its file, row number and reason: no
time, a time that cannot be read, no device, bad coordinates, a placeholder
point, accuracy worse than ``max_accuracy_m``, or an impossible jump (faster
than ``max_speed_kmh`` from the device's previous fix and to its next one).
Files are read in chunks of ``chunk_rows``, and only compact columns are
kept, so memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pandas.api.types import union_categoricals
from pyproj import CRS

from beatmap.activity import GUESSED_ENCODING, place_and_zone_problems, read_mapping_file, text_encoding
from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.schema import LAT, LON, OFFICER_ID, UNIT_ID
from beatmap.settings import Settings
from beatmap.tracks import DEVICE_ID, DEVICE_KIND, DEVICE_KINDS, TS, device_codes

ACCURACY_M = "accuracy_m"
SPEED_MPS = "speed_mps"
REQUIRED_PING_COLUMNS: tuple[str, ...] = (TS, LAT, LON, DEVICE_ID)
OPTIONAL_PING_COLUMNS: tuple[str, ...] = (OFFICER_ID, UNIT_ID, ACCURACY_M, SPEED_MPS)
PING_COLUMNS: tuple[str, ...] = REQUIRED_PING_COLUMNS + OPTIONAL_PING_COLUMNS
#: Columns of :attr:`PingRead.pings`.
READ_COLUMNS: tuple[str, ...] = (
    "file",
    "row",
    TS,
    LON,
    LAT,
    DEVICE_ID,
    UNIT_ID,
    OFFICER_ID,
    DEVICE_KIND,
    ACCURACY_M,
    SPEED_MPS,
)
#: Rows per chunk when reading.
CHUNK_ROWS = 500_000
_TEXT = (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND)
_GPX_NS = "{http://www.topografix.com/GPX/1/1}"


@dataclass(frozen=True)
class PingMapping:
    """How to read one kind of ping export (see the module docstring); the default reads canonical files."""

    name: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    time_format: str | None = None
    timezone: str | None = None
    x: str | None = None
    y: str | None = None
    xy_crs: str | None = None
    placeholders: tuple[tuple[float, float], ...] = ()
    placeholder_tolerance: float = 1e-6
    device_kind: str | None = None
    device_id: str | None = None

    def source_column(self, canonical: str) -> str:
        """The file's column that holds a canonical field."""
        return self.columns.get(canonical, canonical)


_MAPPING_KEYS = {
    "source": {"name", "timezone", "time_format", "device_kind", "device_id"},
    "columns": set(PING_COLUMNS),
    "coordinates": {"x", "y", "crs", "reject", "tolerance"},
}


def read_ping_mapping(path: str | Path) -> PingMapping:
    """Read and check a ping mapping file.

    Raises
    ------
    InputError
        Naming the file and every unknown section, key or value.
    """
    path = Path(path)
    raw = read_mapping_file(path)
    problems: list[str] = []
    for section, body in raw.items():
        known = _MAPPING_KEYS.get(section)
        if known is None or not isinstance(body, dict):
            problems.append(f"unknown section [{section}] (known: {', '.join(_MAPPING_KEYS)})")
            continue
        problems += [
            f"unknown key {k!r} in [{section}] (known: {', '.join(sorted(known))})" for k in body if k not in known
        ]
    source, cols, coords = raw.get("source", {}), raw.get("columns", {}), raw.get("coordinates", {})
    if any(not isinstance(v, str) for v in cols.values()):
        problems.append("every value in [columns] must be a column name in quotes")
    if bool(coords.get("x")) != bool(coords.get("y")):
        problems.append("[coordinates] needs both x and y")
    if coords.get("x") and not coords.get("crs"):
        problems.append('[coordinates] x and y need crs = "EPSG:...." (the CRS they are in)')
    problems += place_and_zone_problems(source, coords, where=str(path))
    kind = source.get("device_kind")
    if kind is not None and kind not in DEVICE_KINDS:
        problems.append(f"[source] device_kind {kind!r} is not one of {', '.join(DEVICE_KINDS)}")
    placeholders = []
    for point in coords.get("reject", []):
        if not (isinstance(point, list) and len(point) == 2 and all(isinstance(v, int | float) for v in point)):
            problems.append(f"[coordinates] reject must be a list of [x, y] pairs, not {point!r}")
        else:
            placeholders.append((float(point[0]), float(point[1])))
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems) + ". See examples/ for the format.")
    return PingMapping(
        name=source.get("name"),
        columns=dict(cols),
        time_format=source.get("time_format"),
        timezone=source.get("timezone"),
        x=coords.get("x"),
        y=coords.get("y"),
        xy_crs=coords.get("crs"),
        placeholders=tuple(placeholders),
        placeholder_tolerance=float(coords.get("tolerance", 1e-6)),
        device_kind=kind,
        device_id=source.get("device_id"),
    )


def read_roster(path: str | Path, *, timezone: str) -> pd.DataFrame:
    """Read a device roster: ``device_id, unit_id, officer_id, from, to`` (optional ``device_kind``).

    Returns
    -------
    DataFrame
        ``device_id, unit_id, officer_id, device_kind, from, to``; ``from`` /
        ``to`` as integer seconds since 1970 (UTC), open ends as the extremes.

    Raises
    ------
    InputError
        Naming the file and each bad row.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: roster file not found. Check the path given to --roster.")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    raw.columns = [str(c).strip() for c in raw.columns]
    if DEVICE_ID not in raw.columns:
        raise InputError(f"{path}: a roster needs a device_id column (and unit_id, officer_id, from, to).")
    problems: list[str] = []
    bounds = {}
    for column, open_value in (("from", np.iinfo(np.int64).min), ("to", np.iinfo(np.int64).max)):
        text = raw[column].str.strip() if column in raw.columns else pd.Series("", index=raw.index)
        times, bad = _parse_times(text, fmt=None, zone=timezone)
        problems += [
            f"row {i + 1}: {column} {text[i]!r} is not a date and time such as 2026-03-01 07:00"
            for i in np.flatnonzero(bad.to_numpy())
        ]
        bounds[column] = np.where(times < 0, open_value, times)
    kinds = raw[DEVICE_KIND].str.strip() if DEVICE_KIND in raw.columns else pd.Series("", index=raw.index)
    problems += [
        f"row {i + 1}: device_kind {kinds[i]!r} is not one of {', '.join(DEVICE_KINDS)}"
        for i in np.flatnonzero((kinds != "") & ~kinds.isin(DEVICE_KINDS))
    ]
    problems += [f"row {i + 1}: no device_id" for i in np.flatnonzero(raw[DEVICE_ID].str.strip() == "")]
    problems += [f"row {i + 1}: to is not after from" for i in np.flatnonzero(bounds["to"] <= bounds["from"])]
    if problems:
        raise InputError(f"{path}: the roster has {len(problems)} bad row(s): " + "; ".join(problems[:10]))

    def text_column(name: str) -> pd.Series:
        values = raw[name].str.strip() if name in raw.columns else pd.Series("", index=raw.index)
        return values.where(values != "", None).astype(object)

    return pd.DataFrame(
        {
            DEVICE_ID: raw[DEVICE_ID].str.strip().astype(object),
            UNIT_ID: text_column(UNIT_ID),
            OFFICER_ID: text_column(OFFICER_ID),
            DEVICE_KIND: text_column(DEVICE_KIND),
            "from": bounds["from"],
            "to": bounds["to"],
        }
    )


@dataclass(frozen=True)
class PingRead:
    """What :func:`read_pings` found.

    Attributes
    ----------
    pings : DataFrame
        The used pings (:data:`READ_COLUMNS`), ordered by device and time;
        ``file`` is the position of the file in the list read, ``row`` the
        1-based data row (a GPX file counts its track points).
    rejects : DataFrame
        ``file, row, reason, device_id, ts``: rejected and duplicate rows
        (``ts`` -1 where the row has no readable time).
    counts : DataFrame
        Per file: ``file, path, rows, used, duplicates, rejected``.
    """

    pings: pd.DataFrame
    rejects: pd.DataFrame
    counts: pd.DataFrame


def read_pings(
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    mapping: PingMapping | None = None,
    roster: pd.DataFrame | None = None,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[float, str], None] | None = None,
) -> PingRead:
    """Read ping files in chunks, with every row accounted for.

    Parameters
    ----------
    paths : list of path
        CSV, Parquet (``.parquet``) or GPX (``.gpx``) files.
    settings : Settings
        ``timezone`` for times without an offset (unless the mapping names
        one), ``max_accuracy_m`` and ``max_speed_kmh``.
    mapping : PingMapping, optional
    roster : DataFrame, optional
        As :func:`read_roster` returns it.
    chunk_rows : int
        Rows read at a time.
    progress : callable, optional
        Called with the fraction of files read and a message.

    Returns
    -------
    PingRead
    """
    mapping = mapping or PingMapping()
    zone = mapping.timezone or settings.timezone
    kept: list[pd.DataFrame] = []
    rejects: list[pd.DataFrame] = []
    counts = []
    for number, path in enumerate(map(Path, paths)):
        if not path.exists():
            raise InputError(f"{path}: file not found. Check the path.")
        rows = 0
        for raw, first_row in _raw_chunks(path, mapping, chunk_rows):
            good, bad = parse_ping_chunk(
                raw, first_row, mapping=mapping, zone=zone, max_accuracy_m=settings.max_accuracy_m, source=str(path)
            )
            rows += len(raw)
            kept.append(good.assign(file=np.int32(number)))
            rejects.append(bad.assign(file=np.int32(number)))
        counts.append({"file": number, "path": str(path), "rows": rows})
        if progress is not None:
            progress((number + 1) / len(paths), f"read {path.name}: {rows:,} rows")
    pings = _concat(kept)
    pings, duplicates, jumps = order_and_check(pings, max_speed_kmh=settings.max_speed_kmh)
    if roster is not None and not roster.empty:
        pings = apply_roster(pings, roster)
    all_rejects = pd.concat([*rejects, duplicates, jumps], ignore_index=True)
    all_rejects = all_rejects[["file", "row", "reason", DEVICE_ID, TS]].sort_values(["file", "row"], kind="stable")
    table = pd.DataFrame(counts, columns=["file", "path", "rows"])
    used = pings.groupby("file").size()
    dup = duplicates.groupby("file").size()
    rej = pd.concat([*rejects, jumps], ignore_index=True).groupby("file").size()
    table["used"] = table["file"].map(used).fillna(0).astype(np.int64)
    table["duplicates"] = table["file"].map(dup).fillna(0).astype(np.int64)
    table["rejected"] = table["file"].map(rej).fillna(0).astype(np.int64)
    return PingRead(pings=pings, rejects=all_rejects.reset_index(drop=True), counts=table)


def _raw_chunks(path: Path, mapping: PingMapping, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """Chunks of the file as text columns, each with the row number of its first row."""
    if path.suffix.lower() == ".gpx":
        yield from _gpx_chunks(path, mapping, chunk_rows)
        return
    try:
        for table, first in _arrow_chunks(path, chunk_rows):
            yield _text_frame(table), first
    except _NotUtf8Error as exc:
        raise InputError(str(exc)) from exc


def _text_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow chunk as a frame of text cells (blank for empty)."""
    frame = table.to_pandas()
    return pd.DataFrame({c: _as_text(frame[c]) for c in frame.columns})


class _NotUtf8Error(Exception):
    """A CSV file that is not UTF-8 (its message is the error to show when no other encoding is tried)."""


def _arrow_chunks(path: Path, chunk_rows: int, encoding: str = "utf-8") -> Iterator[tuple[pa.Table, int]]:
    """Chunks of a CSV (every column as text, read in ``encoding``) or Parquet file as Arrow tables, with their
    first row number.  A CSV that is not UTF-8 (read as such) raises :class:`_NotUtf8Error`."""
    first = 1
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            reader = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several kinds for a damaged file
            raise InputError(f"{path}: not a readable Parquet file ({exc}).") from exc
        for batch in reader.iter_batches(batch_size=chunk_rows):
            yield pa.Table.from_batches([batch]), first
            first += batch.num_rows
        return
    utf8 = encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig")
    try:
        with path.open(encoding="utf-8-sig" if utf8 else encoding, newline="") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        raise _NotUtf8Error(f"{path}: not a readable UTF-8 CSV file ({exc}). Export the pings as CSV.") from exc
    if not header:
        raise InputError(f"{path}: is empty. Export the pings with a header row.")
    names = [h.strip() for h in header]
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=1 << 24, encoding="utf8" if utf8 else encoding
            ),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}),
        )
        for batch in reader:
            for offset in range(0, batch.num_rows, chunk_rows):
                part = batch.slice(offset, chunk_rows)
                yield pa.Table.from_batches([part]), first
                first += part.num_rows
    except pa.ArrowInvalid as exc:
        message = (
            f"{path}: not a readable UTF-8 CSV file after row {first - 1} ({str(exc).splitlines()[0]}). "
            "Export the pings as CSV with a header row and the same number of fields on every row."
        )
        if utf8 and "utf8" in str(exc).lower().replace("-", ""):
            raise _NotUtf8Error(message) from exc
        raise InputError(message) from exc


def _as_text(values: pd.Series) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S%z").fillna("")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S").fillna("")
    return values.astype(object).where(values.notna(), "").astype(str)


def _gpx_chunks(path: Path, mapping: PingMapping, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """Track points of a GPX file as rows ``ts, lat, lon, device_id`` (the track's name, or the mapping's id)."""
    rows: list[tuple[str, str, str, str]] = []
    first = 1
    name = ""
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            tag = element.tag.rsplit("}", 1)[-1]
            if event == "start" and tag == "trk":
                name = ""
            elif event == "end" and tag == "name" and element.text and not name:
                name = element.text.strip()
            elif event == "end" and tag == "trkpt":
                time = element.find(f"{_GPX_NS}time")
                if time is None:
                    time = element.find("time")
                rows.append(
                    (
                        time.text or "" if time is not None else "",
                        element.get("lat", ""),
                        element.get("lon", ""),
                        mapping.device_id or name,
                    )
                )
                element.clear()
                if len(rows) >= chunk_rows:
                    yield pd.DataFrame(rows, columns=[TS, LAT, LON, DEVICE_ID]), first
                    first += len(rows)
                    rows = []
    except ET.ParseError as exc:
        raise InputError(f"{path}: not a readable GPX file ({exc}).") from exc
    if rows:
        yield pd.DataFrame(rows, columns=[TS, LAT, LON, DEVICE_ID]), first


def parse_ping_chunk(
    raw: pd.DataFrame, first_row: int, *, mapping: PingMapping, zone: str, max_accuracy_m: float, source: str = "pings"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn text rows into pings and rejects.

    Parameters
    ----------
    raw : DataFrame
        Text cells (blank for empty) as the file has them.
    first_row : int
        The row number of ``raw``'s first row.

    Returns
    -------
    pings : DataFrame
        ``row, ts`` (int64 seconds, UTC), ``lon, lat``, the text columns as
        categories and ``accuracy_m, speed_mps`` (NaN when absent).
    rejects : DataFrame
        ``row, reason, device_id, ts`` (the last two as far as the row has
        them: blank, and -1).
    """
    n = len(raw)
    missing = [
        c
        for c in REQUIRED_PING_COLUMNS
        if not (c == DEVICE_ID and mapping.device_id)
        and not (c in (LAT, LON) and mapping.x)
        and mapping.source_column(c) not in raw.columns
    ]
    if missing:
        names = ", ".join(mapping.source_column(c) for c in missing)
        raise InputError(
            f"{source}: no column {names}; the columns are {', '.join(map(str, raw.columns))}. "
            "Rename them or give a mapping (--mapping) that names them."
        )
    reason = np.full(n, None, dtype=object)

    def reject(mask: np.ndarray, why: str | np.ndarray) -> None:
        new = np.asarray(mask, dtype=bool) & pd.isna(reason)
        reason[new] = why[new] if isinstance(why, np.ndarray) else why

    def col(canonical: str) -> pd.Series:
        name = mapping.source_column(canonical)
        if name not in raw.columns:
            return pd.Series("", index=raw.index, dtype=object)
        return raw[name].astype(str).str.strip()

    ts_text = col(TS)
    reject((ts_text == "").to_numpy(), "no time")
    ts, bad_time = _parse_times(ts_text, fmt=mapping.time_format, zone=zone)
    reject(bad_time.to_numpy(), "time " + ts_text.to_numpy(dtype=object) + " cannot be read")
    device = pd.Series(mapping.device_id, index=raw.index) if mapping.device_id else col(DEVICE_ID)
    reject((device == "").to_numpy(), "no device_id")
    lon, lat = _coordinates(raw, mapping, col, reject)
    accuracy = pd.to_numeric(col(ACCURACY_M), errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        reject(accuracy > max_accuracy_m, f"accuracy worse than max_accuracy_m ({max_accuracy_m:g} m)")
    speed = pd.to_numeric(col(SPEED_MPS), errors="coerce").to_numpy(dtype=float)
    rows = np.arange(first_row, first_row + n, dtype=np.int64)
    good = pd.isna(reason)
    kind = pd.Series(mapping.device_kind or "", index=raw.index)
    pings = pd.DataFrame(
        {
            "row": rows[good],
            TS: ts[good],
            LON: lon[good],
            LAT: lat[good],
            DEVICE_ID: _category(device[good]),
            UNIT_ID: _category(col(UNIT_ID)[good]),
            OFFICER_ID: _category(col(OFFICER_ID)[good]),
            DEVICE_KIND: _category(kind[good]),
            ACCURACY_M: accuracy[good].astype(np.float32),
            SPEED_MPS: speed[good].astype(np.float32),
        }
    )
    rejects = pd.DataFrame(
        {
            "row": rows[~good],
            "reason": reason[~good].astype(str),
            DEVICE_ID: device.to_numpy(dtype=object)[~good],
            TS: ts[~good],
        }
    )
    return pings, rejects


def _category(values: pd.Series) -> pd.Categorical:
    text = values.astype(object).to_numpy()
    present = (text != "") & pd.notna(text)
    categories = pd.Index(pd.unique(text[present]).astype(str), dtype=str)
    return pd.Categorical(np.where(present, text, None), categories=categories)


def _parse_times(values: pd.Series, *, fmt: str | None, zone: str) -> tuple[np.ndarray, pd.Series]:
    """Integer seconds since 1970 (UTC), -1 where blank or unreadable; and the unreadable non-blank ones.

    Times without an offset are wall-clock times in ``zone``; in the autumn
    the repeated hour is read as its first occurrence, a time in the spring
    gap is moved forward.  ``fmt = "epoch"`` reads seconds since 1970.
    """
    present = (values != "").to_numpy()
    out = np.full(len(values), -1, dtype=np.int64)
    if fmt == "epoch":
        number = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        ok = present & np.isfinite(number)
        out[ok] = np.floor(number[ok]).astype(np.int64)
        return out, pd.Series(present & ~ok, index=values.index)
    offset = present & values.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, case=False).to_numpy()
    stamps = pd.Series(pd.NaT, index=values.index, dtype="datetime64[s, UTC]")
    if offset.any():
        parsed = pd.to_datetime(values[offset], utc=True, errors="coerce", format=fmt or "ISO8601")
        stamps[offset] = parsed.dt.as_unit("s")
    naive = present & ~offset
    if naive.any():
        local = pd.to_datetime(values[naive], errors="coerce", format=fmt or "ISO8601")
        local = local.dt.tz_localize(zone, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward")
        stamps[naive] = local.dt.tz_convert("UTC").dt.as_unit("s")
    ok = stamps.notna().to_numpy()
    out[ok] = (stamps[ok] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return out, pd.Series(present & ~ok, index=values.index)


def _coordinates(
    raw: pd.DataFrame,
    mapping: PingMapping,
    col: Callable[[str], pd.Series],
    reject: Callable[[np.ndarray, str | np.ndarray], None],
) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude in WGS84, rejecting unusable coordinates row by row."""
    if mapping.x:
        xs, ys = raw[mapping.x].astype(str).str.strip(), raw[mapping.y].astype(str).str.strip()
    else:
        xs, ys = col(LON), col(LAT)
    x = pd.to_numeric(xs, errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(ys, errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    reject(~finite, "bad coordinates (not numbers): " + xs.to_numpy(dtype=object) + "," + ys.to_numpy(dtype=object))
    placeholder = finite & (np.abs(x) < 1e-9) & (np.abs(y) < 1e-9)
    for px, py in mapping.placeholders:
        placeholder |= (
            finite
            & (np.abs(x - px) <= mapping.placeholder_tolerance)
            & (np.abs(y - py) <= mapping.placeholder_tolerance)
        )
    reject(placeholder, "a placeholder point (the system's stand-in for 'no location')")
    usable = finite & ~placeholder
    if mapping.x:
        lon = np.full(len(x), np.nan)
        lat = np.full(len(x), np.nan)
        lon[usable], lat[usable] = transform_xy(x[usable], y[usable], CRS(mapping.xy_crs), WGS84)
    else:
        lon, lat = x, y
    with np.errstate(invalid="ignore"):
        reject(
            usable & ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)),
            "bad coordinates: outside the range of latitude and longitude",
        )
    return lon, lat


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if not frames:
        frames = [pd.DataFrame({c: pd.Series(dtype=float) for c in READ_COLUMNS})]
    columns = {}
    for name in READ_COLUMNS:
        parts = [f[name] for f in frames]
        if name in _TEXT:
            columns[name] = pd.Series(
                union_categoricals(
                    [
                        _category(pd.Series(p)) if not isinstance(getattr(p, "dtype", None), pd.CategoricalDtype) else p
                        for p in parts
                    ],
                    ignore_order=True,
                )
            )
        else:
            columns[name] = pd.Series(np.concatenate([np.asarray(p) for p in parts]))
    out = pd.DataFrame(columns)
    return out.astype({"file": np.int32, "row": np.int64, TS: np.int64})


def order_and_check(
    pings: pd.DataFrame, *, max_speed_kmh: float, archived: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Order by device and time; split off duplicates (the later read of a device and second) and jumps.

    A ping is an impossible jump when reaching it from the device's previous
    ping, and leaving it for the next, are both faster than ``max_speed_kmh``
    (at a device's first or last ping, the one speed there is).  Two passes:
    spikes first, then the rest among the pings left.

    ``archived`` (``device_id, ts, lon, lat``: used pings of earlier imports
    within retention) are neighbours too: a new ping between two archived
    ones is checked against them.  They are never rejected here, and a new
    ping with the device and second of an archived one is left out of the
    check (it is a duplicate of it, found later).
    """
    device = device_codes(pings[DEVICE_ID])
    order = _device_time_order(device, pings[TS].to_numpy(), pings["file"].to_numpy(), pings["row"].to_numpy())
    pings = pings.iloc[order].reset_index(drop=True)
    device = device[order]
    ts = pings[TS].to_numpy()
    repeat = np.zeros(len(pings), dtype=bool)
    repeat[1:] = (device[1:] == device[:-1]) & (ts[1:] == ts[:-1])
    duplicates = pd.DataFrame(
        {
            "file": pings["file"].to_numpy()[repeat],
            "row": pings["row"].to_numpy()[repeat],
            "reason": "duplicate: the same device and time as a ping read before",
            DEVICE_ID: pings[DEVICE_ID].iloc[np.flatnonzero(repeat)].to_numpy(dtype=object),
            TS: ts[repeat],
        }
    )
    pings = pings[~repeat].reset_index(drop=True)
    device, ts = device[~repeat], ts[~repeat]
    keep = np.ones(len(pings), dtype=bool)
    c_device, c_ts, c_lon, c_lat, c_new = _with_archived(pings, device, ts, archived)
    checked = c_new >= 0
    # First pass: fixes both reached and left impossibly fast.  Second pass, once those are gone: the same, and a
    # device's first or last fix reached or left impossibly fast.  Archived fixes (c_new -1) stay.
    alive = np.ones(len(c_ts), dtype=bool)
    speeds: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
    for ends in (False, True):
        live = np.flatnonzero(alive)
        if speeds is None or len(live) < len(alive):  # the first pass's speeds hold when it removed nothing
            speeds = _jumps(c_device[live], c_ts[live], c_lon[live], c_lat[live], max_speed_kmh)
        into, out, has_prev, has_next = speeds
        spike = into & out
        if ends:
            spike |= (into & ~has_next) | (out & ~has_prev)
        spike &= checked[live]
        alive[live[spike]] = False
        keep[c_new[live[spike]]] = False
    jump = ~keep
    jumps = pd.DataFrame(
        {
            "file": pings["file"].to_numpy()[jump],
            "row": pings["row"].to_numpy()[jump],
            "reason": f"impossible jump (faster than max_speed_kmh, {max_speed_kmh:g} km/h)",
            DEVICE_ID: pings[DEVICE_ID].iloc[np.flatnonzero(jump)].to_numpy(dtype=object),
            TS: ts[jump],
        }
    )
    return pings[~jump].reset_index(drop=True), duplicates, jumps


def _with_archived(
    pings: pd.DataFrame, device: np.ndarray, ts: np.ndarray, archived: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ordered new pings with the archived pings of their devices among them, by device and time:
    device code, time, lon, lat, and the new ping's position (-1: archived; -2: a new ping repeating an
    archived device and second, which no check looks at)."""
    lon, lat = pings[LON].to_numpy(dtype=float), pings[LAT].to_numpy(dtype=float)
    position = np.arange(len(ts), dtype=np.int64)
    if archived is None or archived.empty or not len(ts):
        return device, ts, lon, lat, position
    ids = np.asarray(pings[DEVICE_ID].astype(str).to_numpy(), dtype=object)
    old_ids = np.asarray(archived[DEVICE_ID].astype(str).to_numpy(), dtype=object)
    mine = pd.Index(pd.unique(ids))
    old_code = mine.get_indexer(old_ids)
    take = old_code >= 0
    if not take.any():
        return device, ts, lon, lat, position
    new_code = mine.get_indexer(ids)
    old_ts = archived[TS].to_numpy(dtype=np.int64)[take]
    all_code = np.concatenate([new_code, old_code[take]])
    all_ts = np.concatenate([ts, old_ts])
    source = np.concatenate([position, np.full(int(take.sum()), -1, dtype=np.int64)])
    # Archived first among equal times: a new ping at an archived second is then marked and left out.
    order = np.lexsort((source >= 0, all_ts, all_code))
    all_code, all_ts, source = all_code[order], all_ts[order], source[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = (all_code[1:] == all_code[:-1]) & (all_ts[1:] == all_ts[:-1]) & (source[:-1] == -1)
    source[repeat & (source >= 0)] = -2
    all_lon = np.concatenate([lon, archived[LON].to_numpy(dtype=float)[take]])[order]
    all_lat = np.concatenate([lat, archived[LAT].to_numpy(dtype=float)[take]])[order]
    keep = source != -2
    return all_code[keep], all_ts[keep], all_lon[keep], all_lat[keep], source[keep]


def _device_time_order(device: np.ndarray, ts: np.ndarray, file: np.ndarray, row: np.ndarray) -> np.ndarray:
    """The order by device, time, file and row: each pair packed into one int64 where it fits (sorting is most of
    the ordering's cost, and it grows with the keys)."""
    keys = [np.asarray(v, dtype=np.int64) for v in (row, file, ts, device)]
    if not len(device):
        return np.zeros(0, dtype=np.int64)
    packed = []
    for minor, major in ((keys[0], keys[1]), (keys[2], keys[3])):
        lo, span = int(minor.min()), int(minor.max()) - int(minor.min()) + 1
        top = int(major.max()) - int(major.min()) + 1
        if top * span >= 1 << 62:
            return np.lexsort(keys)
        packed.append((major - int(major.min())) * span + (minor - lo))
    order = np.argsort(packed[1])
    key = packed[1][order]
    if len(key) > 1 and bool(np.any(key[1:] == key[:-1])):  # a device and second repeats: file and row decide
        return np.lexsort(packed)
    return order


def _jumps(
    device: np.ndarray, ts: np.ndarray, lon: np.ndarray, lat: np.ndarray, max_speed_kmh: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per ordered ping: reached too fast, left too fast, has a previous and a next ping of its device."""
    n = len(ts)
    into, out = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    has_prev, has_next = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if n > 1:
        same = device[1:] == device[:-1]
        metres = _haversine_m(lon[:-1], lat[:-1], lon[1:], lat[1:])
        fast = same & (metres / np.maximum(ts[1:] - ts[:-1], 1) * 3.6 > max_speed_kmh)
        into[1:], out[:-1] = fast, fast
        has_prev[1:], has_next[:-1] = same, same
    return into, out, has_prev, has_next


def _haversine_m(lon0: np.ndarray, lat0: np.ndarray, lon1: np.ndarray, lat1: np.ndarray) -> np.ndarray:
    lon0, lat0, lon1, lat1 = (np.radians(v) for v in (lon0, lat0, lon1, lat1))
    a = np.sin((lat1 - lat0) / 2) ** 2 + np.cos(lat0) * np.cos(lat1) * np.sin((lon1 - lon0) / 2) ** 2
    return 2 * 6_371_008.8 * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def apply_roster(pings: pd.DataFrame, roster: pd.DataFrame) -> pd.DataFrame:
    """Fill ``unit_id``, ``officer_id`` and ``device_kind`` from the roster entry in force at each ping.

    A value the ping carries itself wins.  Pings of a device outside every
    roster period keep what they had.
    """
    if pings.empty or roster.empty:
        return pings
    keys = pd.DataFrame(
        {"i": np.arange(len(pings)), DEVICE_ID: pings[DEVICE_ID].astype(str).to_numpy(), TS: pings[TS].to_numpy()}
    )
    entries = roster.assign(**{DEVICE_ID: roster[DEVICE_ID].astype(str)}).sort_values("from")
    matched = pd.merge_asof(
        keys.sort_values(TS), entries.rename(columns={"from": TS}), on=TS, by=DEVICE_ID, direction="backward"
    )
    matched = matched[matched[TS] < matched["to"]].set_index("i")
    out = pings.copy()
    for column in (UNIT_ID, OFFICER_ID, DEVICE_KIND):
        filled = pd.Series(out[column].astype(object).to_numpy(), dtype=object)
        given = matched[column].reindex(range(len(out))).astype(object)
        blank = filled.isna() & given.notna()
        filled[blank] = given[blank]
        out[column] = pd.Categorical(filled.to_numpy(dtype=object))
    return out


def project_pings(pings: pd.DataFrame, crs: CRS) -> pd.DataFrame:
    """The pings with ``x, y`` in ``crs`` (the blocks' metric CRS), ready for :func:`beatmap.tracks.credit_tracks`."""
    x, y = transform_xy(pings[LON].to_numpy(), pings[LAT].to_numpy(), WGS84, crs)
    return pings.assign(x=x, y=y)


#: Columns of a staged ping (see :func:`stage_pings`).
STAGE_SCHEMA = pa.schema(
    [
        ("file", pa.int32()),
        ("row", pa.int64()),
        (TS, pa.int64()),
        (LON, pa.float64()),
        (LAT, pa.float64()),
        (DEVICE_ID, pa.string()),
        (UNIT_ID, pa.string()),
        (OFFICER_ID, pa.string()),
        (DEVICE_KIND, pa.string()),
        (ACCURACY_M, pa.float32()),
        (SPEED_MPS, pa.float32()),
        ("poor", pa.bool_()),
    ]
)
#: Bytes of input per staging partition: a partition's pings are credited together, so this bounds memory.
PARTITION_BYTES = 24 << 20


@dataclass(frozen=True)
class Staged:
    """What :func:`stage_pings` wrote: parsed pings in ``partitions`` files by device, and the rows it rejected.

    Attributes
    ----------
    folder : Path
        ``part_<p>.arrow`` per partition that received pings (Arrow files, :data:`STAGE_SCHEMA`;
        ``poor`` rows are fixes rejected for poor accuracy, also in ``rejects``).
    partitions : int
    part_rows : array of int
        Rows staged per partition.
    counts : DataFrame
        Per file: ``file, path, rows``.
    rejects : DataFrame
        ``file, row, reason, device_id, ts`` of the rows rejected while parsing.
    first_ts, last_ts : int
        The earliest and latest time of a staged ping (-1 when none).
    encodings : dict of int to str
        File numbers read as Windows-1252 (``cp1252``): CSV files with no UTF-8 at all, a guess to report.
    """

    folder: Path
    partitions: int
    part_rows: np.ndarray
    counts: pd.DataFrame
    rejects: pd.DataFrame
    first_ts: int
    last_ts: int
    encodings: dict[int, str] = field(default_factory=dict)

    def part_path(self, part: int) -> Path:
        """The staging file of a partition."""
        return self.folder / f"part_{part}.arrow"


def stage_pings(
    paths: Sequence[str | Path],
    folder: Path,
    *,
    settings: Settings,
    mapping: PingMapping | None = None,
    chunk_rows: int = CHUNK_ROWS,
    partitions: int | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Staged:
    """Read ping files a chunk at a time into Arrow files partitioned by device (memory: one chunk).

    Rows are parsed and checked as by :func:`parse_ping_chunk` (clean chunks
    take a vectorised path through Arrow with the same result); duplicates
    and impossible jumps need a device's whole track and are found later.
    """
    mapping = mapping or PingMapping()
    zone = mapping.timezone or settings.timezone
    files = [Path(p) for p in paths]
    total = sum(p.stat().st_size for p in files if p.exists())
    parts = partitions or int(min(max(np.ceil(total / PARTITION_BYTES), 1), 4096))
    folder.mkdir(parents=True, exist_ok=True)
    encodings: dict[int, str] = {}  # files read in another encoding than UTF-8 (a guess, reported)
    while True:
        writers: dict[int, pa.ipc.RecordBatchWriter] = {}
        part_rows = np.zeros(parts, dtype=np.int64)
        rejects: list[pd.DataFrame] = []
        counts = []
        first_ts, last_ts = np.iinfo(np.int64).max, -1
        done = 0
        not_utf8: tuple[int, _NotUtf8Error] | None = None
        try:
            for number, path in enumerate(files):
                if not path.exists():
                    raise InputError(f"{path}: file not found. Check the path.")
                rows = 0
                try:
                    for table, first_row in _file_chunks(path, mapping, chunk_rows, encodings.get(number, "utf-8")):
                        good, bad = stage_chunk(
                            table,
                            first_row,
                            number,
                            mapping=mapping,
                            zone=zone,
                            max_accuracy_m=settings.max_accuracy_m,
                            source=path,
                        )
                        rows += table.num_rows
                        done += table.nbytes
                        if good.num_rows:
                            ts = good.column(TS).to_numpy()
                            first_ts, last_ts = min(first_ts, int(ts.min())), max(last_ts, int(ts.max()))
                        _write_partitions(good, parts, writers, part_rows, folder)
                        if len(bad):
                            rejects.append(bad.assign(file=np.int32(number)))
                        if progress is not None:
                            progress(min(done / max(total, 1), 0.99), f"read {path.name}: {rows:,} rows")
                except _NotUtf8Error as exc:
                    not_utf8 = (number, exc)
                    break
                counts.append({"file": number, "path": str(path), "rows": rows})
        finally:
            for writer in writers.values():
                writer.close()
        if not_utf8 is None:
            break
        # A file with no UTF-8 at all is read again from the start as Windows-1252, as activity files are (the
        # check refuses a file that mixes encodings); what was staged is dropped and staged again.
        number, problem = not_utf8
        if number in encodings or text_encoding(files[number]) != GUESSED_ENCODING:
            raise InputError(str(problem)) from problem
        encodings[number] = GUESSED_ENCODING
        for staged_part in folder.glob("part_*.arrow"):
            staged_part.unlink()
    reject_frame = (
        pd.concat(rejects, ignore_index=True)
        if rejects
        else pd.DataFrame(
            {
                "row": pd.Series(dtype=np.int64),
                "reason": pd.Series(dtype=object),
                DEVICE_ID: pd.Series(dtype=object),
                TS: pd.Series(dtype=np.int64),
                "file": pd.Series(dtype=np.int32),
            }
        )
    )
    return Staged(
        folder=folder,
        partitions=parts,
        part_rows=part_rows,
        counts=pd.DataFrame(counts, columns=["file", "path", "rows"]),
        rejects=reject_frame[["file", "row", "reason", DEVICE_ID, TS]],
        first_ts=int(first_ts) if last_ts >= 0 else -1,
        last_ts=int(last_ts),
        encodings=encodings,
    )


def stage_chunk(
    table: pa.Table, first_row: int, file: int, *, mapping: PingMapping, zone: str, max_accuracy_m: float, source: Path
) -> tuple[pa.Table, pd.DataFrame]:
    """One chunk of a file parsed as :func:`stage_pings` stages it: the pings (:data:`STAGE_SCHEMA`, poor-accuracy
    fixes flagged) and the rejected rows (``row, reason, device_id, ts``).

    ``first_row`` is the 1-based row number of the chunk's first row in the
    file, ``file`` the file's number in the import.  An engine that reads
    parts of files elsewhere (on a cluster's workers) stages them with this.
    """
    good, bad = _parse_arrow_chunk(
        table, first_row, mapping=mapping, zone=zone, max_accuracy_m=max_accuracy_m, source=source
    )
    good = good.append_column("file", pa.array(np.full(good.num_rows, file, dtype=np.int32)))
    return good.select(STAGE_SCHEMA.names).cast(STAGE_SCHEMA), bad


def file_chunks(path: Path, mapping: PingMapping, chunk_rows: int = CHUNK_ROWS) -> Iterator[tuple[pa.Table, int]]:
    """A ping file's chunks as :func:`stage_pings` reads them (CSV as UTF-8 text), each with its first row's
    number."""
    try:
        yield from _file_chunks(path, mapping, chunk_rows)
    except _NotUtf8Error as exc:
        raise InputError(str(exc)) from exc


def _file_chunks(
    path: Path, mapping: PingMapping, chunk_rows: int, encoding: str = "utf-8"
) -> Iterator[tuple[pa.Table, int]]:
    if path.suffix.lower() == ".gpx":
        for frame, first in _gpx_chunks(path, mapping, chunk_rows):
            yield pa.Table.from_pandas(frame, preserve_index=False), first
        return
    yield from _arrow_chunks(path, chunk_rows, encoding)


def _write_partitions(
    table: pa.Table, parts: int, writers: dict[int, pa.ipc.RecordBatchWriter], part_rows: np.ndarray, folder: Path
) -> None:
    if not table.num_rows:
        return
    devices = table.column(DEVICE_ID).combine_chunks().dictionary_encode()
    from beatmap.ping_archive import partition_of

    part = partition_of(devices.dictionary.to_numpy(zero_copy_only=False), parts)[
        devices.indices.to_numpy(zero_copy_only=False)
    ]
    order = np.argsort(part, kind="stable")
    ordered = table.take(pa.array(order))
    sorted_part = part[order]
    bounds = np.flatnonzero(np.diff(sorted_part)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    for start, end in zip(starts, ends, strict=True):
        p = int(sorted_part[start])
        if p not in writers:
            writers[p] = pa.ipc.new_file(
                folder / f"part_{p}.arrow", STAGE_SCHEMA, options=pa.ipc.IpcWriteOptions(compression="lz4")
            )
        writers[p].write_table(ordered.slice(start, end - start))
        part_rows[p] += end - start


def read_stage(staged: Staged, chosen: Sequence[int]) -> pd.DataFrame:
    """The staged pings of some partitions, as a frame (text columns as categories: ids repeat a lot)."""
    tables = [pa.ipc.open_file(staged.part_path(p)).read_all() for p in chosen if staged.part_path(p).exists()]
    if not tables:
        return STAGE_SCHEMA.empty_table().to_pandas(strings_to_categorical=True)
    return pa.concat_tables(tables).to_pandas(strings_to_categorical=True)


def _parse_arrow_chunk(
    table: pa.Table, first_row: int, *, mapping: PingMapping, zone: str, max_accuracy_m: float, source: Path
) -> tuple[pa.Table, pd.DataFrame]:
    """Parsed pings (plus poor-accuracy fixes, flagged) as an Arrow table, and the rejected rows."""
    fast = _fast_parse(table, first_row, mapping=mapping, zone=zone, max_accuracy_m=max_accuracy_m)
    if fast is not None:
        return fast
    raw = _text_frame(table)
    good, bad = parse_ping_chunk(
        raw, first_row, mapping=mapping, zone=zone, max_accuracy_m=max_accuracy_m, source=str(source)
    )
    poor = bad["reason"].str.startswith("accuracy worse").to_numpy() if len(bad) else np.zeros(0, dtype=bool)
    frame = pd.DataFrame(
        {
            "row": good["row"].to_numpy(),
            TS: good[TS].to_numpy(),
            LON: good[LON].to_numpy(),
            LAT: good[LAT].to_numpy(),
            DEVICE_ID: good[DEVICE_ID].astype(object).to_numpy(),
            UNIT_ID: good[UNIT_ID].astype(object).to_numpy(),
            OFFICER_ID: good[OFFICER_ID].astype(object).to_numpy(),
            DEVICE_KIND: good[DEVICE_KIND].astype(object).to_numpy(),
            ACCURACY_M: good[ACCURACY_M].to_numpy(),
            SPEED_MPS: good[SPEED_MPS].to_numpy(),
            "poor": False,
        }
    )
    poor_rows = bad[poor]
    if len(poor_rows):
        frame = pd.concat(
            [
                frame,
                pd.DataFrame(
                    {
                        "row": poor_rows["row"].to_numpy(),
                        TS: poor_rows[TS].to_numpy(),
                        LON: np.nan,
                        LAT: np.nan,
                        DEVICE_ID: poor_rows[DEVICE_ID].astype(object).to_numpy(),
                        "poor": True,
                    }
                ),
            ],
            ignore_index=True,
        )
    for name in (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND):
        frame[name] = frame[name].astype(object).where(frame[name].notna() & (frame[name] != ""), None)
    return pa.Table.from_pandas(frame, preserve_index=False), bad


def _fast_parse(
    table: pa.Table, first_row: int, *, mapping: PingMapping, zone: str, max_accuracy_m: float
) -> tuple[pa.Table, pd.DataFrame] | None:
    """The vectorised parse of a chunk whose every row is clean; None sends the chunk to the row-by-row rules."""
    if mapping.x or mapping.time_format or mapping.device_id or mapping.placeholders or not table.num_rows:
        return None
    names = {c: mapping.source_column(c) for c in PING_COLUMNS}
    if any(names[c] not in table.column_names for c in REQUIRED_PING_COLUMNS):
        return None
    if any(
        not pa.types.is_string(table.schema.field(names[c]).type)
        for c in PING_COLUMNS
        if names[c] in table.column_names
    ):
        return None
    try:
        text = table.column(names[TS])
        try:
            stamps = pc.cast(text, pa.timestamp("ns", tz="UTC"))
            ns = stamps.to_numpy().astype("datetime64[ns]").astype(np.int64)
        except pa.ArrowInvalid:
            naive = pc.cast(text, pa.timestamp("ns")).to_numpy().astype("datetime64[ns]")
            local = pd.DatetimeIndex(naive).tz_localize(
                zone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
            )
            ns = local.asi8
        if pd.isna(pc.min(text).as_py()) or np.any(ns == np.iinfo(np.int64).min):
            return None
        ts = np.floor_divide(ns, 1_000_000_000)
        lat = pc.cast(table.column(names[LAT]), pa.float64()).to_numpy()
        lon = pc.cast(table.column(names[LON]), pa.float64()).to_numpy()
        optional = {}
        for name in (ACCURACY_M, SPEED_MPS):
            if names[name] in table.column_names:
                column = table.column(names[name])
                blank = pc.equal(column, "")
                optional[name] = pc.cast(pc.if_else(blank, None, column), pa.float64()).to_numpy(zero_copy_only=False)
            else:
                optional[name] = np.full(table.num_rows, np.nan)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
        return None
    with np.errstate(invalid="ignore"):
        bad = (
            ~(np.isfinite(lat) & np.isfinite(lon))
            | (np.abs(lat) > 90)
            | (np.abs(lon) > 180)
            | ((np.abs(lat) < 1e-9) & (np.abs(lon) < 1e-9))
        )
    if bad.any() or table.column(names[TS]).null_count:
        return None
    device = table.column(names[DEVICE_ID])
    if pc.any(pc.equal(pc.utf8_trim_whitespace(device), "")).as_py() or device.null_count:
        return None
    with np.errstate(invalid="ignore"):
        poor = optional[ACCURACY_M] > max_accuracy_m
    rows = np.arange(first_row, first_row + table.num_rows, dtype=np.int64)

    def text_column(canonical: str) -> pa.Array:
        if names[canonical] not in table.column_names:
            return pa.nulls(table.num_rows, pa.string())
        column = pc.utf8_trim_whitespace(table.column(names[canonical]))
        return pc.if_else(pc.equal(column, ""), None, column).combine_chunks()

    out = pa.table(
        {
            "row": rows,
            TS: ts,
            LON: np.where(poor, np.nan, lon),
            LAT: np.where(poor, np.nan, lat),
            DEVICE_ID: pc.utf8_trim_whitespace(device).combine_chunks(),
            UNIT_ID: text_column(UNIT_ID),
            OFFICER_ID: text_column(OFFICER_ID),
            DEVICE_KIND: pa.array([mapping.device_kind] * table.num_rows, type=pa.string()),
            ACCURACY_M: optional[ACCURACY_M].astype(np.float32),
            SPEED_MPS: optional[SPEED_MPS].astype(np.float32),
            "poor": poor,
        }
    )
    rejects = pd.DataFrame(
        {
            "row": rows[poor],
            "reason": f"accuracy worse than max_accuracy_m ({max_accuracy_m:g} m)",
            DEVICE_ID: out.column(DEVICE_ID).to_numpy(zero_copy_only=False)[poor],
            TS: ts[poor],
        }
    )
    return out, rejects
