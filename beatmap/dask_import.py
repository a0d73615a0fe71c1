"""Import GPS pings on a Dask cluster, with the same answers as the single-process engine.

``beatmap import-pings FILES... --engine dask [--scheduler ADDRESS]`` runs
:func:`import_pings_dask`.  It computes exactly what
:func:`beatmap.presence.import_pings` computes for the same list of files,
with the same public steps, spread over the workers:

1. **Hash** (on the workers): each file's SHA-256, so a file imported before
   is skipped, as in one process.
2. **Read** (one task per Parquet row group or per CSV file): the file's text
   cells through :func:`beatmap.pings.parse_ping_chunk`; each row keeps its
   file and row number.  Rejected rows (file, row, reason) are the only rows
   that come back from this stage.
3. **Shuffle on** ``device_id`` (Dask's own shuffle): afterwards all of a
   device's pings are in one partition.
4. **Credit** (one task per partition): order each device's pings and split
   off duplicates and impossible jumps (:func:`beatmap.pings.order_and_check`),
   apply the roster, project, then credit the track *by device and local
   day* with :func:`beatmap.tracks.credit_tracks`.  A device's track is cut
   into days at the first break in its track (a gap over ``max_gap_s``) at or
   after local midnight, so a segment that runs across midnight stays whole
   with the day it started on; the ping after each cut travels with the day
   before as a look-ahead (it closes that day's last interval, as in one
   process) and is credited with its own day.  Device-day quality is then
   figured from the partition's whole tracks.  A task returns aggregate rows
   only: presence per block, hour, unit, officer, mode, purpose and file;
   track visits; device-day quality; per-device and per-file totals; and the
   duplicate and jump rows with their reasons.
5. **Combine** (on the workers, in a tree): presence rows with the same keys
   are summed.  Seconds are integers, so the sums do not depend on order.
6. **Write** (on the client): every file's batch, presence, visits, quality
   and rejects in one transaction, with the usual row accounting.

The blocks, their saved block index, the CAD calls and the roster are
scattered to every worker once and handed to the tasks by reference, never
copied into each task.

The CAD calls: one process takes those dispatched from a day before the
first *used* ping.  The credit tasks start with those from a day before the
first *parsed* ping (known before any ping is checked); if the first parsed
pings were rejected and a call dispatched between the two starts is still open
at the first used ping, the import is credited again with one process's
window (:func:`calls_window_start`), so the answers stay the same.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS
from sqlalchemy import Engine

from beatmap import store
from beatmap.crs import parse_crs
from beatmap.errors import InputError
from beatmap.index import BlockIndex, block_index_for
from beatmap.pings import (
    ACCURACY_M,
    SPEED_MPS,
    PingMapping,
    apply_roster,
    order_and_check,
    parse_ping_chunk,
    project_pings,
    raw_chunks,
    read_ping_mapping,
    read_roster,
    text_frame,
)
from beatmap.presence import (
    POOR_ACCURACY,
    PingFileSummary,
    PingImportSummary,
    device_day_quality,
    file_hash,
    store_ping_file,
)
from beatmap.schema import ENFORCEMENT, KIND, LAT, LON, OFFICER_ID, UNIT_ID
from beatmap.settings import Settings
from beatmap.store import presence as presence_store
from beatmap.tracks import (
    DEVICE_COLUMNS,
    DEVICE_ID,
    DEVICE_KIND,
    PRESENCE_COLUMNS,
    TS,
    TrackCredit,
    TrackRules,
    call_windows,
    credit_tracks,
    device_codes,
)

Progress = Callable[[float, str], None]
#: File name endings the Dask engine reads (a directory is read as the files under it with these endings).
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
#: Pings credited in one call inside a task (whole device-days are kept together, so a call may hold more).
BATCH_PINGS = 1_000_000
#: Seconds in a day: the calls window starts a day before the first ping.
DAY_S = 86_400
#: Rows read at a time from a CSV file inside a read task.
CSV_CHUNK_ROWS = 500_000

_TEXT = (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND)
_REJECT_COLUMNS = ["file", "row", "reason", DEVICE_ID, TS]
_PRESENCE_KEYS = ["file", *PRESENCE_COLUMNS[:-1]]
_QUALITY_COLUMNS = ["file", *presence_store.DEVICE_DAY_COLUMNS]


def _quiet(_fraction: float, _message: str) -> None:
    """A progress callback that shows nothing."""


@dataclass(frozen=True)
class ReadPart:
    """One read task: a Parquet row group, or a whole CSV file."""

    file: int
    path: str
    row_group: int | None
    first_row: int


@dataclass(frozen=True)
class CreditConfig:
    """What every credit task needs besides the shared objects: small, so it travels with each task."""

    rules: TrackRules
    settings: Settings
    max_speed_kmh: float
    calls_from: int
    calls_to: int
    batch_pings: int = BATCH_PINGS


@dataclass(frozen=True)
class PartResult:
    """What one credit task (and a combination of them) sends back: aggregate rows only, never a ping.

    Attributes
    ----------
    presence : DataFrame
        ``file`` and :data:`beatmap.tracks.PRESENCE_COLUMNS`.
    visits : DataFrame
        ``file`` and the track visit columns.
    quality : DataFrame
        ``file`` and the device-day columns (poor accuracy added by the client).
    devices : DataFrame
        :data:`beatmap.tracks.DEVICE_COLUMNS`.
    files : DataFrame
        ``file, used, first_ts, last_ts``.
    rejects : DataFrame
        Duplicate and jump rows: ``file, row, reason, device_id, ts``.
    """

    presence: pd.DataFrame
    visits: pd.DataFrame
    quality: pd.DataFrame
    devices: pd.DataFrame
    files: pd.DataFrame
    rejects: pd.DataFrame


@dataclass(frozen=True)
class DaskImportRun:
    """A Dask import's summary, and the seconds its stages took on the client's clock."""

    summary: PingImportSummary
    seconds: dict[str, float] = field(default_factory=dict)
    pings: int = 0
    partitions: int = 0


def input_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files to read: each path, or for a directory (a Parquet dataset, a partitioned CSV) its files, sorted.

    Raises
    ------
    InputError
        For a missing path, an empty directory or a file the engine cannot read.
    """
    out: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(
                p for p in given.rglob("*") if p.is_file() and p.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES)
            )
            if not found:
                raise InputError(f"{given}: no .parquet or .csv files in this directory. Check the path.")
            out += found
        elif not given.exists():
            raise InputError(f"{given}: file not found. Check the path.")
        elif not given.name.lower().endswith(PARQUET_SUFFIXES + CSV_SUFFIXES):
            raise InputError(
                f"{given}: the Dask engine reads Parquet and CSV (.parquet, .pq, .csv, .csv.gz). "
                "Convert the file, or import it without --engine dask."
            )
        else:
            out.append(given)
    return out


def read_parts(files: Sequence[Path]) -> list[ReadPart]:
    """One read task per Parquet row group (row numbers from the file's metadata) or per CSV file."""
    import pyarrow.parquet as pq

    parts: list[ReadPart] = []
    for number, path in enumerate(files):
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            try:
                meta = pq.ParquetFile(path).metadata
            except Exception as exc:  # pyarrow raises several kinds for a damaged file
                raise InputError(f"{path}: not a readable Parquet file ({exc}).") from exc
            first = 1
            for group in range(meta.num_row_groups):
                parts.append(ReadPart(number, str(path.resolve()), group, first))
                first += meta.row_group(group).num_rows
            if meta.num_row_groups == 0:
                parts.append(ReadPart(number, str(path.resolve()), None, 1))
        else:
            parts.append(ReadPart(number, str(path.resolve()), None, 1))
    return parts


def _empty_read() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series(dtype=np.int32),
            "row": pd.Series(dtype=np.int64),
            TS: pd.Series(dtype=np.int64),
            LON: pd.Series(dtype=float),
            LAT: pd.Series(dtype=float),
            **{c: pd.Series(dtype=object) for c in _TEXT},
            ACCURACY_M: pd.Series(dtype=np.float32),
            SPEED_MPS: pd.Series(dtype=np.float32),
            "reason": pd.Series(dtype=object),
        }
    )


def read_part(part: ReadPart, mapping: PingMapping, zone: str, max_accuracy_m: float) -> pd.DataFrame:
    """Read and parse one part: its used pings (``reason`` missing) and rejected rows (with ``reason``).

    Text columns are plain objects (missing as None), so parts can be shuffled.
    """
    frames: list[pd.DataFrame] = []
    for raw, first in _part_chunks(part, mapping):
        good, bad = parse_ping_chunk(
            raw, first, mapping=mapping, zone=zone, max_accuracy_m=max_accuracy_m, source=part.path
        )
        good = good.assign(file=np.int32(part.file), reason=None)
        for column in _TEXT:
            values = good[column].astype(object)
            good[column] = values.where(values.notna(), None)
        frames.append(good)
        if len(bad):
            frames.append(bad.assign(file=np.int32(part.file), **{DEVICE_ID: bad[DEVICE_ID].astype(object)}))
    empty = _empty_read()
    if not frames:
        return empty
    out = pd.concat([empty, *frames], ignore_index=True)[list(empty.columns)]
    return out.astype({c: empty[c].dtype for c in empty.columns})


@dataclass(frozen=True)
class ReadStats:
    """What a read task sends back besides its pings (which go on to the shuffle): accounting rows only."""

    rejects: pd.DataFrame
    rows: pd.Series
    first_ts: int | None
    last_ts: int | None


def split_read(
    part: ReadPart, mapping: PingMapping, zone: str, max_accuracy_m: float
) -> tuple[pd.DataFrame, ReadStats]:
    """Read one part: its parsed pings, and its rejected rows with the rows read per file."""
    frame = read_part(part, mapping, zone, max_accuracy_m)
    bad = frame["reason"].notna().to_numpy()
    good = frame[~bad].drop(columns=["reason"]).reset_index(drop=True)
    rejects = frame.loc[bad, _REJECT_COLUMNS].reset_index(drop=True)
    stats = ReadStats(
        rejects=rejects,
        rows=pd.Series({part.file: len(frame)}, dtype=np.int64),
        first_ts=int(good[TS].min()) if len(good) else None,
        last_ts=int(good[TS].max()) if len(good) else None,
    )
    return good, stats


def _part_chunks(part: ReadPart, mapping: PingMapping) -> Iterator[tuple[pd.DataFrame, int]]:
    if part.row_group is None and not part.path.lower().endswith(PARQUET_SUFFIXES):
        yield from raw_chunks(part.path, mapping, CSV_CHUNK_ROWS)
        return
    if part.row_group is None:
        return
    import pyarrow.parquet as pq

    table = pq.ParquetFile(part.path).read_row_group(part.row_group)
    yield text_frame(table.to_pandas()), part.first_row


def credit_partition(
    pings: pd.DataFrame,
    blocks: gpd.GeoDataFrame,
    index: BlockIndex,
    calls: pd.DataFrame,
    roster: pd.DataFrame | None,
    config: CreditConfig,
) -> PartResult:
    """Credit one partition holding all pings of its devices; aggregate rows only come back.

    Parameters
    ----------
    pings : DataFrame
        Parsed pings as :func:`read_part` returns them (``reason`` missing),
        every ping of each device in this partition.
    blocks, index : the store's blocks and their block index.
    calls : DataFrame
        CAD calls (``unit_id, occurred_at, ended_at``); those dispatched in
        ``[config.calls_from, config.calls_to)`` are used.
    roster : DataFrame or None
    config : CreditConfig
    """
    frame = pings.drop(columns=["reason"], errors="ignore").reset_index(drop=True)
    for column in _TEXT:
        frame[column] = pd.Categorical(frame[column].astype(object).where(frame[column].notna(), None))
    checked, duplicates, jumps = order_and_check(frame, max_speed_kmh=config.max_speed_kmh)
    if roster is not None and not roster.empty:
        checked = apply_roster(checked, roster)
    projected = project_pings(checked, CRS(blocks.crs))
    rules = config.rules
    dispatched = _seconds(calls["occurred_at"]) if len(calls) else np.zeros(0, dtype=np.int64)
    used_calls = calls[(dispatched >= config.calls_from) & (dispatched < config.calls_to)]

    presence, visits, devices, tracks = [], [], [], []
    lookaheads = []
    for start, stop in _day_batches(projected, rules.max_gap_s, config.settings.zone, config.batch_pings):
        rows = projected.iloc[start:stop].assign(core=True)
        look = stop < len(projected) and _same_device(projected, stop - 1, stop)
        if look:
            rows = pd.concat([rows, projected.iloc[stop : stop + 1].assign(core=False)], ignore_index=True)
            lookaheads.append(str(projected[DEVICE_ID].iloc[stop]))
        credit = credit_tracks(rows, blocks, rules=rules, calls=used_calls, index=index, extra_keys=("file", "core"))
        presence.append(credit.presence[credit.presence["core"]].drop(columns="core"))
        visits.append(credit.visits[credit.visits["core"].astype(bool)].drop(columns="core"))
        devices.append(credit.devices)
        track = credit.pings
        track = track[track["core"]]
        tracks.append(
            pd.DataFrame(
                {
                    "file": track["file"].to_numpy(),
                    DEVICE_ID: track[DEVICE_ID].astype(str).to_numpy(),
                    TS: track[TS].to_numpy(),
                    "block": track["block"].to_numpy(),
                    "credit_s": track["credit_s"].to_numpy(),
                    "gap_s": track["gap_s"].to_numpy(),
                }
            )
        )
    device_table = _device_totals(devices, lookaheads)
    quality = _quality(tracks, config.settings)
    used = checked.groupby("file", observed=True)[TS].agg(["size", "min", "max"])
    files = pd.DataFrame(
        {
            "file": used.index.to_numpy(dtype=np.int32),
            "used": used["size"].to_numpy(dtype=np.int64),
            "first_ts": used["min"].to_numpy(dtype=np.int64),
            "last_ts": used["max"].to_numpy(dtype=np.int64),
        }
    )
    rejects = pd.concat([duplicates, jumps], ignore_index=True)[_REJECT_COLUMNS]
    rejects[DEVICE_ID] = rejects[DEVICE_ID].astype(str)
    return PartResult(
        presence=_sum_presence(presence),
        visits=pd.concat(visits, ignore_index=True) if visits else pd.DataFrame(),
        quality=quality,
        devices=device_table,
        files=files,
        rejects=rejects.reset_index(drop=True),
    )


def _seconds(times: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(times, utc=True)
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def _same_device(frame: pd.DataFrame, i: int, j: int) -> bool:
    ids = frame[DEVICE_ID]
    return bool(str(ids.iloc[i]) == str(ids.iloc[j]))


def day_starts(device: np.ndarray, ts: np.ndarray, max_gap_s: int, zone: str | tzinfo) -> np.ndarray:
    """Where each device-day of ordered pings starts: at a device's first ping, and at the first segment start
    on a later local day than the segment before (so no segment is ever cut).

    Returns
    -------
    array of bool
    """
    n = len(ts)
    if not n:
        return np.zeros(0, dtype=bool)
    local = pd.DatetimeIndex(pd.to_datetime(ts, unit="s", utc=True)).tz_convert(zone).tz_localize(None)
    day = local.to_numpy().astype("datetime64[D]").astype(np.int64)
    new_device = np.ones(n, dtype=bool)
    new_device[1:] = device[1:] != device[:-1]
    segment_start = new_device.copy()
    segment_start[1:] |= ts[1:] - ts[:-1] > max_gap_s
    last_start = np.maximum.accumulate(np.where(segment_start, np.arange(n), 0))
    segment_day = day[last_start]
    out = new_device.copy()
    out[1:] |= segment_day[1:] != segment_day[:-1]
    return out


def _day_batches(
    pings: pd.DataFrame, max_gap_s: int, zone: str | tzinfo, batch_pings: int
) -> Iterator[tuple[int, int]]:
    """Ranges of ordered pings made of whole device-days, about ``batch_pings`` long."""
    n = len(pings)
    if not n:
        return
    starts = np.flatnonzero(
        day_starts(device_codes(pings[DEVICE_ID]), pings[TS].to_numpy(dtype=np.int64), max_gap_s, zone)
    )
    begin = 0
    for cut in starts[1:]:
        if cut - begin >= batch_pings:
            yield begin, int(cut)
            begin = int(cut)
    yield begin, n


def _device_totals(devices: list[pd.DataFrame], lookaheads: list[str]) -> pd.DataFrame:
    """Per-device totals over a partition's batches, less each look-ahead ping (one ping, one segment, no time)."""
    if not devices:
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c != DEVICE_ID else object) for c in DEVICE_COLUMNS})
    table = pd.concat(devices, ignore_index=True).groupby(DEVICE_ID, sort=True).sum()
    extra = pd.Series(lookaheads, dtype=object).value_counts()
    extra = extra.reindex(table.index, fill_value=0)
    table["pings"] -= extra
    table["segments"] -= extra
    return table.reset_index()[list(DEVICE_COLUMNS)]


def _quality(tracks: list[pd.DataFrame], settings: Settings) -> pd.DataFrame:
    """Device-day quality of a partition's tracks (no poor-accuracy rows yet: the client has those)."""
    if not tracks:
        return pd.DataFrame(columns=_QUALITY_COLUMNS)
    track = pd.concat(tracks, ignore_index=True)
    empty = pd.DataFrame(columns=track.columns[:0])
    no_rejects = pd.DataFrame({"file": [], "reason": pd.Series(dtype=object), DEVICE_ID: [], TS: []})
    credit = TrackCredit(presence=empty, visits=empty, devices=empty, pings=track)
    return device_day_quality(credit, no_rejects, settings=settings)


def _sum_presence(parts: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in parts if len(p)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*_PRESENCE_KEYS, "seconds"]})
    frame = pd.concat(frames, ignore_index=True)
    out = frame.groupby(_PRESENCE_KEYS, dropna=False, sort=True)["seconds"].sum().reset_index()
    out["seconds"] = out["seconds"].astype(np.int64)
    for column in ("block_id", UNIT_ID, OFFICER_ID):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    return out


def combine(a: PartResult, b: PartResult) -> PartResult:
    """Two tasks' results as one (presence with the same keys summed; everything else kept apart)."""
    files = pd.concat([a.files, b.files], ignore_index=True)
    files = files.groupby("file", as_index=False).agg(
        used=("used", "sum"), first_ts=("first_ts", "min"), last_ts=("last_ts", "max")
    )

    def cat(x: pd.DataFrame, y: pd.DataFrame) -> pd.DataFrame:
        frames = [f for f in (x, y) if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else x

    return PartResult(
        presence=_sum_presence([a.presence, b.presence]),
        visits=cat(a.visits, b.visits),
        quality=cat(a.quality, b.quality),
        devices=cat(a.devices, b.devices),
        files=files,
        rejects=cat(a.rejects, b.rejects),
    )


def _tree(items: list[Any], join: Callable[[Any, Any], Any], token: str) -> Any:
    """Pairwise combination of delayed results, in a tree of depth log2(n)."""
    from dask import delayed

    level = list(items)
    while len(level) > 1:
        level = [
            delayed(join)(level[i], level[i + 1], dask_key_name=f"combine-pings-{token}-{len(level)}-{i}")
            if i + 1 < len(level)
            else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


def start_client(scheduler: str | None = None) -> Any:
    """A Dask client: of the scheduler at ``scheduler``, else of a ``LocalCluster`` sized to this machine."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    return Client(LocalCluster())


def import_pings_dask(
    engine: Engine,
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    mapping_path: str | Path | None = None,
    roster_path: str | Path | None = None,
    crs: str | None = None,
    client: Any = None,
    scheduler: str | None = None,
    partitions: int | None = None,
    batch_pings: int = BATCH_PINGS,
    progress: Progress = _quiet,
    actor: str = "library",
) -> DaskImportRun:
    """Import ping files (Parquet datasets, partitioned CSV) on a Dask cluster; answers as in one process.

    Parameters
    ----------
    engine : Engine
        The store, with areas loaded.
    paths : list of path
        Files, or directories of ``.parquet`` / ``.csv`` files, on storage
        every worker reads at the same path.
    settings, mapping_path, roster_path, crs
        As for :func:`beatmap.presence.import_pings`.
    client : distributed.Client, optional
        A client to use (left open); else one is made from ``scheduler``, or a
        ``LocalCluster`` sized to this machine, and closed at the end.
    partitions : int, optional
        Partitions after the shuffle on ``device_id`` (default: as many as
        read tasks, at least two per worker thread).
    batch_pings : int
        Pings credited per call inside a task (whole device-days).

    Returns
    -------
    DaskImportRun
        The summary (as :func:`beatmap.presence.import_pings` returns it) and
        the seconds of each stage.
    """

    clock: dict[str, float] = {}
    mark = time.perf_counter()
    files = input_files(paths)
    mapping = read_ping_mapping(mapping_path) if mapping_path is not None else PingMapping()
    if crs is not None:
        parse_crs(crs)
        mapping = PingMapping(**{**mapping.__dict__, "x": mapping.x or "x", "y": mapping.y or "y", "xy_crs": crs})
    roster = read_roster(roster_path, timezone=mapping.timezone or settings.timezone) if roster_path else None
    blocks = store.read_blocks(engine)
    if blocks.empty:
        raise InputError("no blocks in the store: load beats and blocks first (beatmap areas ...), then import pings.")
    index = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    own_client = client is None
    if own_client:
        client = start_client(scheduler)
    try:
        progress(0.02, f"hashing {len(files)} file(s) on the workers")
        hashes = client.gather(client.map(_hash, [str(p.resolve()) for p in files], pure=False))
        earlier = [presence_store.known_ping_file(engine, h) for h in hashes]
        fresh = [i for i, batch in enumerate(earlier) if batch is None and hashes[i] not in hashes[:i]]
        clock["hash"] = time.perf_counter() - mark
        mark = time.perf_counter()
        parts = read_parts([files[i] for i in fresh])
        n_out = 0
        total = PartResult(
            presence=_sum_presence([]),
            visits=pd.DataFrame(),
            quality=pd.DataFrame(columns=_QUALITY_COLUMNS),
            devices=_device_totals([], []),
            files=pd.DataFrame(columns=["file", "used", "first_ts", "last_ts"]),
            rejects=pd.DataFrame(columns=_REJECT_COLUMNS),
        )
        parse_rejects = pd.DataFrame(columns=_REJECT_COLUMNS)
        row_counts = pd.Series(dtype=np.int64)
        if parts:
            zone = mapping.timezone or settings.timezone
            calls = _all_calls(engine)
            shared = client.scatter([blocks, index, calls, roster], broadcast=True)
            workers = max(sum(client.nthreads().values()), 1)
            n_out = partitions or max(len(parts), 2 * workers)
            progress(
                0.05, f"reading and crediting {len(parts):,} part(s) in {n_out:,} partition(s) on {workers} thread(s)"
            )
            graph = _CreditGraph(parts, mapping, zone, settings, shared, n_out, batch_pings)
            total, read_stats = graph.compute(calls_from=None)
            rerun = calls_window_start(total, read_stats, calls, TrackRules.from_settings(settings))
            if rerun is not None:
                progress(0.5, "a CAD call was open at the first used ping: crediting again with its window")
                total, read_stats = graph.compute(calls_from=rerun)
            parse_rejects = pd.concat([r.rejects for r in read_stats], ignore_index=True)
            row_counts = pd.concat([r.rows for r in read_stats]).groupby(level=0).sum()
        clock["read, shuffle and credit"] = time.perf_counter() - mark
        mark = time.perf_counter()
        progress(0.9, "writing to the store")
        summary = _write(
            engine, files, hashes, earlier, fresh, total, parse_rejects, row_counts, settings=settings, actor=actor
        )
        clock["write"] = time.perf_counter() - mark
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    return DaskImportRun(
        summary=summary,
        seconds=clock,
        pings=int(total.files["used"].sum()) if len(total.files) else 0,
        partitions=n_out,
    )


class _CreditGraph:
    """The read, shuffle and credit graph of one import, computed once (or twice, with another calls window)."""

    def __init__(
        self,
        parts: list[ReadPart],
        mapping: PingMapping,
        zone: str,
        settings: Settings,
        shared: list[Any],
        n_out: int,
        batch_pings: int,
    ) -> None:
        self.parts, self.mapping, self.zone, self.settings = parts, mapping, zone, settings
        self.shared, self.n_out, self.batch_pings = shared, n_out, batch_pings

    def compute(self, *, calls_from: int | None) -> tuple[PartResult, list[ReadStats]]:
        """The combined aggregates of every partition, and every read task's accounting."""
        import dask
        import dask.dataframe as dd

        settings = self.settings
        token = uuid.uuid4().hex[:8]
        reads = [
            dask.delayed(split_read, nout=2)(
                part, self.mapping, self.zone, settings.max_accuracy_m, dask_key_name=f"read-pings-{token}-{i}"
            )
            for i, part in enumerate(self.parts)
        ]
        stats = [r[1] for r in reads]
        meta = _empty_read().drop(columns=["reason"])
        table = dd.from_delayed([r[0] for r in reads], meta=meta, verify_meta=False)
        shuffled = table.shuffle(on=DEVICE_ID, npartitions=self.n_out)
        config = dask.delayed(_config)(
            stats, TrackRules.from_settings(settings), settings, settings.max_speed_kmh, self.batch_pings, calls_from
        )
        results = [
            dask.delayed(credit_partition)(part, *self.shared, config, dask_key_name=f"credit-pings-{token}-{i}")
            for i, part in enumerate(shuffled.to_delayed())
        ]
        total, read_stats = dask.compute(_tree(results, combine, token), stats)
        return total, list(read_stats)


def calls_window_start(
    total: PartResult, stats: Sequence[ReadStats], calls: pd.DataFrame, rules: TrackRules
) -> int | None:
    """Where the calls window must start for one process's answer, when the first parsed pings were not used.

    The credit tasks take the calls dispatched from a day before the first
    *parsed* ping; one process takes them from a day before the first *used*
    one.  The two differ only by calls dispatched between those two starts;
    if one of them is still open at the first used ping, the window must
    start a day before that ping (returned); otherwise None.
    """
    firsts = [s.first_ts for s in stats if s.first_ts is not None]
    if not firsts or total.files.empty:
        return None
    parsed, used = min(firsts), int(total.files["first_ts"].min())
    if used == parsed:
        return None
    windows = call_windows(calls, rules)
    between = (windows["start"] >= parsed - DAY_S) & (windows["start"] < used - DAY_S) & (windows["end"] > used)
    return used - DAY_S if bool(between.any()) else None


def _hash(path: str) -> str:
    return file_hash(Path(path))


def _config(
    stats: list[ReadStats],
    rules: TrackRules,
    settings: Settings,
    max_speed_kmh: float,
    batch_pings: int,
    calls_from: int | None,
) -> CreditConfig:
    """The credit tasks' settings, with the calls window from the first and last parsed ping (or ``calls_from``)."""
    firsts = [s.first_ts for s in stats if s.first_ts is not None]
    lasts = [s.last_ts for s in stats if s.last_ts is not None]
    start = calls_from if calls_from is not None else min(firsts) - DAY_S if firsts else 0
    return CreditConfig(
        rules=rules,
        settings=settings,
        max_speed_kmh=max_speed_kmh,
        calls_from=start,
        calls_to=max(lasts) + 1 if lasts else 0,
        batch_pings=batch_pings,
    )


def _all_calls(engine: Engine) -> pd.DataFrame:
    """Every CAD call with a unit (enforcement activity): the tasks keep those in the import's window."""
    events = store.read_events(engine, columns=[UNIT_ID, "occurred_at", "ended_at", KIND])
    calls = events[(events[KIND] == ENFORCEMENT) & events[UNIT_ID].notna()]
    return calls.drop(columns=[KIND]).reset_index(drop=True)


def _write(
    engine: Engine,
    files: list[Path],
    hashes: list[str],
    earlier: list[int | None],
    fresh: list[int],
    total: PartResult,
    parse_rejects: pd.DataFrame,
    row_counts: pd.Series,
    *,
    settings: Settings,
    actor: str,
) -> PingImportSummary:
    """Write every fresh file's import in one transaction; the summary as one process gives it."""
    rejects = pd.concat([parse_rejects, total.rejects], ignore_index=True)
    rejects = rejects.astype({"file": np.int32, "row": np.int64, TS: np.int64})
    rejects = rejects.sort_values(["file", "row"], kind="stable").reset_index(drop=True)
    quality = _with_poor_accuracy(total.quality, rejects, settings.zone)
    presence = total.presence
    visits = total.visits
    if len(visits):
        visits = visits.sort_values([DEVICE_ID, "start"], kind="stable").reset_index(drop=True)
    used = total.files.set_index("file")
    duplicate = rejects["reason"].str.startswith("duplicate")
    summaries: list[PingFileSummary] = []
    with store.transaction(engine) as conn:
        for i, path in enumerate(files):
            if i not in fresh:
                prior = (
                    f"batch {earlier[i]}"
                    if earlier[i] is not None
                    else f"{files[hashes.index(hashes[i])]} in this import"
                )
                summaries.append(
                    PingFileSummary(
                        file=str(path), batch_id=None, rows=0, used=0, duplicates=0, rejected=0, already_imported=prior
                    )
                )
                continue
            number = fresh.index(i)
            mine = rejects["file"] == number
            n_used = int(used["used"].get(number, 0))
            counts = pd.Series(
                {
                    "rows": int(row_counts.get(number, 0)),
                    "used": n_used,
                    "duplicates": int((mine & duplicate).sum()),
                    "rejected": int((mine & ~duplicate).sum()),
                }
            )
            summaries.append(
                store_ping_file(
                    conn,
                    path,
                    content_hash=hashes[i],
                    counts=counts,
                    presence=presence[presence["file"] == number] if len(presence) else presence,
                    visits=visits[visits["file"] == number] if len(visits) else visits,
                    days=quality[quality["file"] == number] if len(quality) else quality,
                    rejects=rejects[mine],
                    first_ts=int(used.loc[number, "first_ts"]) if n_used else None,
                    last_ts=int(used.loc[number, "last_ts"]) if n_used else None,
                    actor=actor,
                )
            )
    devices = total.devices
    return PingImportSummary(
        files=tuple(summaries),
        presence_seconds=int(presence["seconds"].sum()) if len(presence) else 0,
        enforcement_seconds=int(presence.loc[presence["purpose"] == ENFORCEMENT, "seconds"].sum())
        if len(presence)
        else 0,
        vehicle_seconds=int(presence.loc[presence["mode"] == "vehicle", "seconds"].sum()) if len(presence) else 0,
        outside_seconds=int(presence.loc[presence["block_id"].isna(), "seconds"].sum()) if len(presence) else 0,
        gap_seconds=int(devices["gap_seconds"].sum()) if len(devices) else 0,
        track_visits=len(visits),
        devices=len(devices),
    )


def _with_poor_accuracy(quality: pd.DataFrame, rejects: pd.DataFrame, zone: str | tzinfo) -> pd.DataFrame:
    """The poor-accuracy share of each device-day, from the rejected rows (as one process figures it)."""
    if quality.empty:
        return pd.DataFrame(columns=_QUALITY_COLUMNS)
    out = quality.drop(columns=["poor_accuracy_share"])
    poor = rejects[rejects["reason"].str.startswith(POOR_ACCURACY) & (rejects[TS] >= 0)]
    if not poor.empty:
        poor_day = pd.to_datetime(poor[TS], unit="s", utc=True).dt.tz_convert(zone).dt.strftime("%Y-%m-%d")
        poor_counts = (
            poor.assign(day=poor_day.to_numpy(), **{DEVICE_ID: poor[DEVICE_ID].astype(str)})
            .groupby(["file", DEVICE_ID, "day"])
            .size()
            .rename("poor")
        )
        out = out.join(poor_counts, on=["file", DEVICE_ID, "day"])
    else:
        out["poor"] = 0
    out["poor"] = out["poor"].fillna(0)
    out["poor_accuracy_share"] = out["poor"] / (out["pings"] + out["poor"])
    out = out.sort_values(["file", DEVICE_ID, "day"], kind="stable").reset_index(drop=True)
    return out[_QUALITY_COLUMNS]
