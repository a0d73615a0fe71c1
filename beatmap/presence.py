"""Import GPS ping files: read, assign, segment, credit, aggregate and store presence.

``beatmap import-pings FILE...`` runs :func:`import_pings`.  The files of one
import are read a chunk at a time into staging files partitioned by device,
then credited one group of devices at a time (bounded memory), and written
in one transaction: per file its import batch, its presence aggregates (an
interval counts under the file of its first ping), its track visits, its
device-day quality figures, its rejected rows and its raw ping archive (see
:mod:`beatmap.ping_archive`).  A file whose content was imported before is
skipped, so importing twice changes nothing.

Within ``retain_pings_days`` presence is computed again from the archive
when what it depends on changes: pings of a later import in the same time
(:func:`import_pings`), CAD calls imported or undone
(:func:`after_calls_changed`), the areas reloaded and a ping import undone
(:func:`recompute_presence`, :func:`undo_ping_import`).  Past retention only
the aggregates remain and cannot change.

CAD calls come from the store: activity of kind ``enforcement`` with a
``unit_id`` (imported with ``beatmap import``), from ``occurred_at`` to
``ended_at``.
"""

from __future__ import annotations

import hashlib
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from beatmap import ping_archive as archive
from beatmap import store
from beatmap.activity import guessed_encoding_note
from beatmap.crs import parse_crs
from beatmap.errors import InputError
from beatmap.index import BlockIndex, block_index_for
from beatmap.pings import (
    PingMapping,
    Staged,
    apply_roster,
    order_and_check,
    project_pings,
    read_ping_mapping,
    read_roster,
    read_stage,
    stage_pings,
)
from beatmap.schema import BEAT_ID, BLOCK_ID, ENFORCEMENT, KIND, LAT, LON, OFFICER_ID, UNIT_ID
from beatmap.settings import Settings
from beatmap.store import presence as presence_store
from beatmap.tracks import (
    DEVICE_ID,
    DEVICE_KIND,
    FOOT,
    NON_ENFORCEMENT,
    PRESENCE_COLUMNS,
    TS,
    VEHICLE,
    VISIT_COLUMNS,
    TrackCredit,
    TrackRules,
    credit_tracks,
    device_codes_and_ids,
    sum_by_codes,
)

Progress = Callable[[float, str], None]
#: The reason :mod:`beatmap.pings` gives a fix with poor accuracy starts with this.
POOR_ACCURACY = "accuracy worse"


#: Columns of the GPS quality table: the stored device-day figures, with the file they came from.
_QUALITY_COLUMNS = ("file", *presence_store.DEVICE_DAY_COLUMNS)


def _quiet(_fraction: float, _message: str) -> None:
    """A progress callback that shows nothing."""


@dataclass(frozen=True)
class PingFileSummary:
    """What an import did with one file: ``used + duplicates + rejected == rows``."""

    file: str
    batch_id: int | None
    rows: int
    used: int
    duplicates: int
    rejected: int
    already_imported: str | None = None  # what imported the same content before: "batch 3", or a file of this import
    reject_reasons: dict[str, int] = field(default_factory=dict)
    #: As an activity import's: ``code, message, count, details`` (``encoding_guessed``: read as Windows-1252).
    warnings: tuple[dict[str, object], ...] = ()

    def __post_init__(self) -> None:
        if self.used + self.duplicates + self.rejected != self.rows:
            raise AssertionError(f"import of {self.file} lost rows: {self}")

    def to_dict(self) -> dict[str, object]:
        """The counts, as ``--json`` prints them."""
        return {
            "file": self.file,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "used": self.used,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "already_imported": self.already_imported,
            "reject_reasons": self.reject_reasons,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class PingImportSummary:
    """What ``beatmap import-pings`` did: per file, and the presence it credited."""

    files: tuple[PingFileSummary, ...]
    presence_seconds: int = 0
    enforcement_seconds: int = 0
    vehicle_seconds: int = 0
    outside_seconds: int = 0
    gap_seconds: int = 0
    track_visits: int = 0
    devices: int = 0
    recomputed_batches: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The counts, as ``--json`` prints them."""
        return {
            "files": [f.to_dict() for f in self.files],
            "presence_seconds": self.presence_seconds,
            "enforcement_seconds": self.enforcement_seconds,
            "vehicle_seconds": self.vehicle_seconds,
            "outside_seconds": self.outside_seconds,
            "gap_seconds": self.gap_seconds,
            "track_visits": self.track_visits,
            "devices": self.devices,
            "recomputed_batches": list(self.recomputed_batches),
        }


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def prepare_ping_import(
    engine: Engine,
    *,
    settings: Settings,
    mapping_path: str | Path | None,
    roster_path: str | Path | None,
    crs: str | None,
    now: datetime | None,
) -> tuple[PingMapping, pd.DataFrame | None, gpd.GeoDataFrame, Path]:
    """What every engine reads before a ping import: the mapping (with ``crs`` for x/y), the roster, the
    blocks and the archive folder, after the retention sweep.

    Raises
    ------
    InputError
        A bad mapping, roster or CRS, or a store without blocks.
    """
    mapping = read_ping_mapping(mapping_path) if mapping_path is not None else PingMapping()
    if crs is not None:
        parse_crs(crs)
        mapping = PingMapping(**{**mapping.__dict__, "x": mapping.x or "x", "y": mapping.y or "y", "xy_crs": crs})
    roster = read_roster(roster_path, timezone=mapping.timezone or settings.timezone) if roster_path else None
    blocks = store.read_blocks(engine)
    if blocks.empty:
        raise InputError("no blocks in the store: load beats and blocks first (beatmap areas ...), then import pings.")
    folder = archive.archive_dir(engine, settings)
    archive.sweep_archive(engine, settings, now=now)
    archive.require_archives(engine, settings, doing="importing pings", now=now)  # duplicates are found in them
    return mapping, roster, blocks, folder


def import_pings(
    engine: Engine,
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    mapping_path: str | Path | None = None,
    roster_path: str | Path | None = None,
    crs: str | None = None,
    progress: Progress = _quiet,
    actor: str = "library",
    chunk_rows: int | None = None,
    partitions: int | None = None,
    now: datetime | None = None,
    file_names: Sequence[str] | None = None,
) -> PingImportSummary:
    """Import GPS ping files into the store's presence aggregates, keeping their raw pings in the archive.

    The files are read a chunk at a time into staging files partitioned by
    device, then credited one group of devices at a time, so memory stays
    bounded whatever the files' size.  A device's pings are ordered across the
    files and across the archived imports within retention: a ping with the
    device and second of an archived one is a duplicate, and the archived
    imports whose time overlaps these files get their presence computed
    again with the new pings in place.  All of it is one transaction.

    Parameters
    ----------
    engine : Engine
        The store, with areas loaded.
    paths : list of path
        CSV, Parquet or GPX files.
    settings : Settings
    mapping_path : path, optional
        A ping mapping (see :mod:`beatmap.pings`).
    roster_path : path, optional
        A device roster CSV.
    crs : str, optional
        The CRS of x/y columns, when the mapping names x/y but no CRS, or of
        columns named ``x`` and ``y`` when there is no mapping.
    progress : callable, optional
        ``progress(fraction, message)``.
    actor : str
        Who imports, for the audit log.
    chunk_rows : int, optional
        Rows read at a time (default :data:`beatmap.pings.CHUNK_ROWS`).
    partitions : int, optional
        Device partitions of the staging files (default: from the files' size).
    now : datetime, optional
        The time the retention is counted back from (default: now).
    file_names : list of str, optional
        The names to record and show for ``paths`` (an upload's own name, never its temporary copy).

    Returns
    -------
    PingImportSummary
    """
    files = [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise InputError(f"{path}: file not found. Check the path.")
    mapping, roster, blocks, folder = prepare_ping_import(
        engine, settings=settings, mapping_path=mapping_path, roster_path=roster_path, crs=crs, now=now
    )
    hashes = [file_hash(p) for p in files]
    earlier = [presence_store.known_ping_file(engine, h) for h in hashes]
    fresh = [i for i, batch in enumerate(earlier) if batch is None and hashes[i] not in hashes[:i]]
    progress(0.02, f"reading {len(fresh)} file(s)")
    with tempfile.TemporaryDirectory(prefix="staging-", dir=folder) as stage_dir:
        staged = stage_pings(
            [files[i] for i in fresh],
            Path(stage_dir),
            settings=settings,
            mapping=mapping,
            partitions=partitions,
            progress=lambda f, m: progress(0.02 + 0.38 * f, m),
            **({"chunk_rows": chunk_rows} if chunk_rows else {}),
        )
        kept = archive.archived_batches(engine)
        rewrite, context = neighbours(kept, staged.first_ts, staged.last_ts, settings)
        writers = {
            number: archive.ArchiveWriter(Path(stage_dir) / f"file_{number}.parquet") for number in range(len(fresh))
        }
        try:
            computed = _compute(
                engine,
                settings,
                blocks,
                folder=folder,
                staged=staged,
                roster=roster,
                rewrite=rewrite,
                context=context,
                writers=writers,
                progress=lambda f, m: progress(0.4 + 0.5 * f, m),
                spill=Path(stage_dir) / "presence",
            )
            progress(0.9, "storing")
            summaries = store_import(
                engine,
                files,
                fresh,
                hashes,
                earlier,
                staged.counts,
                staged.rejects,
                computed,
                writers,
                rewrite,
                folder,
                actor=actor,
                shown=list(file_names) if file_names is not None else [str(p) for p in files],
                encodings=staged.encodings,
            )
        finally:
            for writer in writers.values():
                writer.discard()
    progress(1.0, "done")
    return import_summary(summaries, computed, rewrite)


def import_summary(
    summaries: Sequence[PingFileSummary], computed: Computed, rewrite: pd.DataFrame
) -> PingImportSummary:
    """The summary of an import from its files' summaries and what it computed (``rewrite``: batches recomputed)."""
    totals = computed.presence.totals()
    devices = computed.devices[computed.devices["key"] < 0]
    return PingImportSummary(
        files=tuple(summaries),
        presence_seconds=totals["presence"],
        enforcement_seconds=totals["enforcement"],
        vehicle_seconds=totals["vehicle"],
        outside_seconds=totals["outside"],
        gap_seconds=int(devices["gap_seconds"].sum()),
        track_visits=int((computed.visits["key"] < 0).sum()),
        devices=int(devices[DEVICE_ID].nunique()),
        recomputed_batches=tuple(int(b) for b in rewrite["batch_id"]),
    )


#: Pings credited together at most (about 0.6 GB of working memory); more go in further groups of devices.
GROUP_PINGS = 500_000
#: The key of pings read from a neighbouring import for context only: their own presence is not rewritten.
_CONTEXT = 0


@dataclass(frozen=True)
class Computed:
    """The aggregate rows of an import or recomputation, as :func:`store_import` writes them."""

    presence: PresenceSum  # key, PRESENCE_COLUMNS (key < 0: file -key - 1 of this import; > 0: a batch)
    visits: pd.DataFrame
    days: pd.DataFrame
    devices: pd.DataFrame
    rejects: pd.DataFrame  # file, row, reason, device_id, ts: duplicates and jumps of this import's files
    used: pd.DataFrame  # file, used, first_ts, last_ts
    block_devices: pd.DataFrame  # key, block_id, week, device_id


def credit_margin(settings: Settings) -> int:
    """Seconds around a stretch of pings that can change how they are credited."""
    return settings.max_gap_s + settings.mode_window_s + settings.stop_max_s


def neighbours(kept: pd.DataFrame, first: int, last: int, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Archived batches to compute again (their time overlaps ``[first, last]``) and those read around them: any
    other batch with a ping from the rewritten batches' time (less :func:`credit_margin`) on, which
    :func:`archived_group` reads where the computation's time overlaps it, and where a segment goes on into it."""
    if last < 0 or kept.empty:
        return kept.iloc[:0], kept.iloc[:0]
    margin = credit_margin(settings)
    rewrite = kept[(kept["first_ping"] <= last + margin) & (kept["last_ping"] >= first - margin)]
    if rewrite.empty:
        return rewrite, kept.iloc[:0]
    lo = min(first, int(rewrite["first_ping"].min())) - margin
    rest = kept[~kept["batch_id"].isin(rewrite["batch_id"])]
    # Later batches too: a segment that runs past the window is read on into them (see archived_group).
    context = rest[rest["last_ping"] >= lo]
    return rewrite, context


def credit_span(first_ts: int, last_ts: int, rewrite: pd.DataFrame, settings: Settings) -> tuple[int, int] | None:
    """The seconds ``[lo, hi)`` whose pings and calls a computation reads: the new pings' (``first_ts, last_ts``;
    -1 for none) and the ``rewrite`` batches' time, with :func:`credit_margin` around; None when there is none."""
    spans = [s for s in (first_ts, last_ts) if s >= 0]
    spans += [int(rewrite["first_ping"].min()), int(rewrite["last_ping"].max())] if len(rewrite) else []
    if not spans:
        return None
    margin = credit_margin(settings)
    return min(spans) - margin, max(spans) + margin + 1


def _groups(rows: np.ndarray) -> list[list[int]]:
    """Consecutive partitions gathered into groups of at most :data:`GROUP_PINGS` rows (a bigger one alone)."""
    groups: list[list[int]] = [[]]
    size = 0
    for part, count in enumerate(rows):
        if groups[-1] and size + count > GROUP_PINGS:
            groups.append([])
            size = 0
        groups[-1].append(part)
        size += int(count)
    return groups


def _compute(
    engine: Engine,
    settings: Settings,
    blocks: gpd.GeoDataFrame,
    *,
    folder: Path,
    staged: Staged | None,
    roster: pd.DataFrame | None,
    rewrite: pd.DataFrame,
    context: pd.DataFrame,
    writers: dict[int, archive.ArchiveWriter],
    progress: Progress,
    spill: Path,
) -> Computed:
    """Credit the staged pings and the ``rewrite`` batches' archived pings, one group of devices at a time
    (presence rows past :data:`SPILL_ROWS` go to files in the folder ``spill``, which must outlive the store write)."""
    rules = TrackRules.from_settings(settings)
    index = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    span = credit_span(staged.first_ts if staged else -1, staged.last_ts if staged else -1, rewrite, settings)
    lo, hi = span if span is not None else (0, 0)
    old_rows = int(rewrite["used"].sum()) + int(_overlapping(context, lo, hi)["used"].sum()) // 4
    if staged is not None:
        parts = staged.partitions
        rows = staged.part_rows + old_rows // parts
    else:
        parts = int(max(np.ceil(old_rows / GROUP_PINGS), 1)) * 4
        rows = np.full(parts, old_rows // parts, dtype=np.int64)
    calls = calls_between(engine, lo, hi) if span is not None else None
    groups = _groups(rows)
    done: list[GroupCredit] = []
    # Summed as it goes (the aggregate grows with blocks and hours, not with fixes), and spilled to files in the
    # staging folder when it outgrows SPILL_ROWS.
    presence = PresenceSum(spill, block_ids=pd.CategoricalDtype(np.sort(blocks[BLOCK_ID].astype(str).unique())))
    for number, group in enumerate(groups):
        new = read_stage(staged, group) if staged is not None else None
        known = archived_group(
            folder, rewrite, context, partitions=parts, chosen=group, lo=lo, hi=hi, max_gap_s=settings.max_gap_s
        )
        credit = credit_group(
            new, known, blocks=blocks, index=index, rules=rules, calls=calls, roster=roster, settings=settings
        )
        for file_number, pings in credit.archive:
            writers[file_number].write(pings)
        rows = credit.presence
        # Kept without its presence rows: an empty slice (``iloc[:0]``) is a view that would keep every group's
        # rows alive until the end (at 100 million fixes, gigabytes).
        done.append(replace(credit, presence=_sum_presence([]), archive=[]))
        del credit, new, known  # the group's pings are let go before its presence is summed
        presence.add(rows)
        del rows
        progress((number + 1) / len(groups), f"credited device group {number + 1} of {len(groups)}")
    return computed_from(done, presence=presence)


@dataclass(frozen=True)
class GroupCredit:
    """What :func:`credit_group` computed for one group of devices: aggregate rows (``key`` < 0: file ``-key - 1``
    of this import; > 0: an archived batch), and the new pings to archive.

    Attributes
    ----------
    presence, visits, days, devices : DataFrame
        Presence summed per key (:data:`beatmap.tracks.PRESENCE_COLUMNS`), track visits, device-day quality,
        and ``key, device_id, gap_seconds``.
    rejects : DataFrame
        ``file, row, reason, device_id, ts``: duplicates (also of archived pings) and impossible jumps.
    used : DataFrame
        ``file, used, first_ts, last_ts`` of the new pings used.
    archive : list of (int, DataFrame)
        Per file number, the pings to add to its archive, in order (used pings, then poor-accuracy fixes).
    """

    presence: pd.DataFrame
    visits: pd.DataFrame
    days: pd.DataFrame
    devices: pd.DataFrame
    rejects: pd.DataFrame
    used: pd.DataFrame
    block_devices: pd.DataFrame = field(default_factory=lambda: _frame([], _PART_COLUMNS["block_devices"]))
    archive: list[tuple[int, pd.DataFrame]] = field(default_factory=list)


def archived_group(
    folder: Path,
    rewrite: pd.DataFrame,
    context: pd.DataFrame,
    *,
    partitions: int,
    chosen: Sequence[int],
    lo: int,
    hi: int,
    max_gap_s: int | None = None,
) -> pd.DataFrame | None:
    """The archived pings of the devices in the ``chosen`` partitions: all of each ``rewrite`` batch (``key`` its
    batch), and of the ``context`` batches those in ``[lo, hi)`` (``key`` 0, read for context only).

    With ``max_gap_s``, a segment of context pings that reaches ``hi`` is read on past it, to its end: a foot
    stay begun in a rewritten batch then counts whole (a stay is a run of fixes, and may last hours).
    """
    old = [
        archive.read_archive(folder / str(r.archive), partitions=partitions, chosen=chosen).assign(key=int(r.batch_id))
        for r in rewrite.itertuples()
    ]
    around = [
        archive.read_archive(folder / str(r.archive), partitions=partitions, chosen=chosen, start=lo, end=hi).assign(
            key=_CONTEXT
        )
        for r in _overlapping(context, lo, hi).itertuples()
    ]
    if max_gap_s is not None and around:
        around += _segments_past(folder, context, around, partitions=partitions, chosen=chosen, hi=hi, gap=max_gap_s)
    return pd.concat([*old, *around], ignore_index=True) if old or around else None


def _overlapping(batches: pd.DataFrame, lo: int, hi: int) -> pd.DataFrame:
    """The archived batches with a ping in ``[lo, hi)``, by their first and last ping."""
    if batches.empty:
        return batches
    return batches[(batches["first_ping"] < hi) & (batches["last_ping"] >= lo)]


def _segments_past(
    folder: Path,
    context: pd.DataFrame,
    read: list[pd.DataFrame],
    *,
    partitions: int,
    chosen: Sequence[int],
    hi: int,
    gap: int,
) -> list[pd.DataFrame]:
    """Context pings after ``hi`` that continue, with no gap over ``gap`` seconds, a segment of the pings ``read``
    (read up to ``hi``): read a stretch of time at a time (an hour, then twice as long each time) until every such
    segment has ended."""
    known = pd.concat(read, ignore_index=True)
    known = known[~known["poor"].to_numpy()]
    last = known.groupby(known[DEVICE_ID].astype(str), sort=False)[TS].max()
    tail = last[last >= hi - gap]  # devices whose segment may go on past hi, with their last fix
    out: list[pd.DataFrame] = []
    start, step = hi, max(3600, 2 * gap)
    while len(tail):
        end = start + step
        batches = _overlapping(context, start, end)
        if batches.empty:
            break
        parts = [
            archive.read_archive(folder / str(r.archive), partitions=partitions, chosen=chosen, start=start, end=end)
            for r in batches.itertuples()
        ]
        more = pd.concat(parts, ignore_index=True)
        more = more[(~more["poor"].to_numpy()) & more[DEVICE_ID].astype(str).isin(tail.index).to_numpy()]
        more = more.sort_values([DEVICE_ID, TS], kind="stable").reset_index(drop=True)
        device = more[DEVICE_ID].astype(str).to_numpy(dtype=object)
        ts = more[TS].to_numpy(dtype=np.int64)
        previous = np.empty(len(ts), dtype=np.int64)
        first = np.r_[True, device[1:] != device[:-1]] if len(ts) else np.zeros(0, dtype=bool)
        previous[first] = tail.reindex(device[first]).to_numpy(dtype=np.int64)
        previous[~first] = ts[:-1][~first[1:]] if len(ts) else previous[~first]
        broken = ts - previous > gap
        # A device's fixes count up to its first break.
        cut = pd.Series(broken).groupby(device, sort=False).cumsum().to_numpy() > 0 if len(ts) else broken
        taken = more[~cut]
        if len(taken):
            out.append(taken.assign(key=_CONTEXT))
        reached = taken.groupby(taken[DEVICE_ID].astype(str), sort=False)[TS].max()
        ended = set(device[cut]) | (set(tail.index) - set(device))
        tail = pd.concat([tail[~tail.index.isin(reached.index)], reached])
        tail = tail[(~tail.index.isin(list(ended))) & (tail >= end - gap)]
        start, step = end, step * 2
    return out


def credit_group(
    new: pd.DataFrame | None,
    known: pd.DataFrame | None,
    *,
    blocks: gpd.GeoDataFrame,
    index: BlockIndex,
    rules: TrackRules,
    calls: pd.DataFrame | None,
    roster: pd.DataFrame | None,
    settings: Settings,
) -> GroupCredit:
    """Credit one group of devices: every ping of each of its devices, new and archived.

    The step both import engines run per group (one process a group at a time,
    a cluster a partition per task); groups hold different devices, so the
    groups' answers combine (:func:`combine_groups`) into the import's.

    Parameters
    ----------
    new : DataFrame or None
        Staged pings of the group (:data:`beatmap.pings.STAGE_SCHEMA`), or None.
    known : DataFrame or None
        The group's archived pings, as :func:`archived_group` reads them.
    calls : DataFrame or None
        The CAD calls that can overlap the pings.
    """
    out: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("presence", "visits", "days", "devices", "block_devices", "rejects", "used")
    }
    archived: list[tuple[int, pd.DataFrame]] = []
    new_poor = pd.DataFrame()
    old_poor = known[known["poor"]] if known is not None else pd.DataFrame()
    if known is not None:
        known = known[~known["poor"].to_numpy()]
    if new is not None and len(new):
        poor_mask = new["poor"].to_numpy()
        new_poor = new[poor_mask]
        new = new[~poor_mask].reset_index(drop=True)
        # Archived fixes of these devices (earlier imports within retention) are neighbours in the jump check.
        new, dups, jumps = order_and_check(new, max_speed_kmh=settings.max_speed_kmh, archived=known)
        if roster is not None and not roster.empty:
            new = apply_roster(new, roster)
    else:
        new, dups, jumps = None, pd.DataFrame(), pd.DataFrame()
    if new is not None and known is not None and len(known) and len(new):
        new, repeated = _cross_duplicates(new, known)
        dups = pd.concat([dups, repeated], ignore_index=True)
    columns = [DEVICE_ID, TS, LON, LAT, UNIT_ID, OFFICER_ID, DEVICE_KIND, "key"]
    parts_frames = []
    if known is not None and len(known):
        parts_frames.append(known[columns])
    if new is not None and len(new):
        fresh = new.assign(key=-(new["file"].astype(np.int64) + 1))
        # Categories of different groups do not mix: plain text only when archived pings join these.
        parts_frames.append(_plain_text(fresh[columns]) if parts_frames else fresh[columns])
        for file_number, pings in fresh.groupby("file", sort=True):
            archived.append((int(file_number), pings[list(archive.ARCHIVE_COLUMNS[:-1])]))
        if len(new_poor):
            for file_number, pings in new_poor.groupby("file", sort=True):
                archived.append((int(file_number), pings[list(archive.ARCHIVE_COLUMNS)]))
        out["used"].append(
            fresh.groupby("file").agg(used=(TS, "size"), first_ts=(TS, "min"), last_ts=(TS, "max")).reset_index()
        )
    out["rejects"] += [f for f in (dups, jumps) if len(f)]
    if parts_frames:
        pings = pd.concat(parts_frames, ignore_index=True)
        credit = credit_tracks(
            project_pings(pings, blocks.crs), blocks, rules=rules, calls=calls, index=index, extra_keys=("key",)
        )
        poor_parts = [old_poor[[DEVICE_ID, TS, "key"]]] if len(old_poor) else []
        if len(new_poor):
            poor_parts.append(new_poor.assign(key=-(new_poor["file"].astype(np.int64) + 1))[[DEVICE_ID, TS, "key"]])
        poor = pd.concat(poor_parts, ignore_index=True) if poor_parts else pd.DataFrame(columns=[DEVICE_ID, TS, "key"])
        out["visits"].append(credit.visits[credit.visits["key"] != _CONTEXT])
        out["days"].append(device_day_quality(credit, poor, settings=settings, key="key"))
        out["devices"].append(_device_keys(credit))
        out["block_devices"].append(block_device_weeks(credit, settings=settings))
        out["presence"].append(credit.presence[credit.presence["key"] != _CONTEXT])
    parts = {name: _frame(out[name], columns) for name, columns in _PART_COLUMNS.items()}
    return GroupCredit(presence=_sum_presence(out["presence"]), **parts, archive=archived)


def block_device_weeks(credit: TrackCredit, *, settings: Settings) -> pd.DataFrame:
    """``key, block_id, week, device_id``: each device credited non-enforcement time on a block in a local week
    (its Monday, ISO), once."""
    rows = credit.block_devices
    if rows is None or rows.empty:
        return _frame([], _PART_COLUMNS["block_devices"])
    rows = rows[rows["key"] != _CONTEXT]
    codes, hours = pd.factorize(rows["hour"])  # few distinct hours: each is turned into its week once
    local = pd.DatetimeIndex(hours).tz_convert(settings.zone).tz_localize(None).normalize()
    mondays = (local - pd.to_timedelta(local.day_of_week, unit="D")).strftime("%Y-%m-%d")
    out = rows.assign(week=np.asarray(mondays, dtype=object)[codes])
    return out[list(_PART_COLUMNS["block_devices"])].drop_duplicates().reset_index(drop=True)


def combine_groups(groups: Sequence[GroupCredit]) -> GroupCredit:
    """The aggregate rows of several groups of devices as one (presence summed; the archive pings left out)."""

    def cat(name: str) -> pd.DataFrame:
        frames = [getattr(g, name) for g in groups if len(getattr(g, name))]
        return pd.concat(frames, ignore_index=True) if frames else getattr(groups[0], name)

    return GroupCredit(
        presence=_sum_presence([g.presence for g in groups if len(g.presence)]),
        visits=cat("visits"),
        days=cat("days"),
        devices=cat("devices"),
        block_devices=cat("block_devices").drop_duplicates(),
        rejects=cat("rejects"),
        used=cat("used"),
    )


_PART_COLUMNS: dict[str, tuple[str, ...]] = {
    "visits": ("key", *VISIT_COLUMNS),
    "days": ("key", *presence_store.DEVICE_DAY_COLUMNS),
    "devices": ("key", DEVICE_ID, "gap_seconds"),
    "block_devices": ("key", *presence_store.BLOCK_DEVICE_COLUMNS),
    "rejects": ("file", "row", "reason", DEVICE_ID, TS),
    "used": ("file", "used", "first_ts", "last_ts"),
}


def _empty_parts() -> dict[str, pd.DataFrame]:
    return {name: _frame([], columns) for name, columns in _PART_COLUMNS.items()}


def computed_from(groups: Sequence[GroupCredit], *, presence: PresenceSum | None = None) -> Computed:
    """An import's (or a recomputation's) aggregate rows from its groups' credits: their presence is added to
    ``presence`` (a sum kept as the groups went, perhaps spilled to files), or to a sum held in memory."""
    total = presence if presence is not None else PresenceSum(None)
    for group in groups:
        total.add(group.presence)
    if not groups:
        return Computed(presence=total, **_empty_parts())
    whole = combine_groups([replace(g, presence=g.presence.iloc[:0]) for g in groups])
    return Computed(
        presence=total,
        visits=whole.visits,
        days=whole.days,
        devices=whole.devices,
        block_devices=whole.block_devices,
        rejects=whole.rejects,
        used=whole.used.groupby("file", as_index=False).agg(
            used=("used", "sum"), first_ts=("first_ts", "min"), last_ts=("last_ts", "max")
        ),
    )


def _plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as plain objects (categories of different groups do not mix)."""
    out = frame.copy()
    for name in (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND):
        if name in out.columns:
            values = out[name].astype(object)
            out[name] = values.where(values.notna(), None)
    return out


def _frame(parts: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return pd.concat(parts, ignore_index=True)


def _sum_presence(parts: list[pd.DataFrame], *, plain: bool = True) -> pd.DataFrame:
    """Presence of every group, summed per key (groups hold different devices, so keys can repeat).

    Grouped on integer codes of each column (sorted, missing last, as ``groupby(sort=True, dropna=False)``
    orders them), packed into one sort key: grouping on text columns was most of the cost.  With ``plain``
    False, columns that came as categories stay categories (a text per cell takes several times the memory).
    """
    columns = ["key", *PRESENCE_COLUMNS]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).astype({"seconds": np.int64})
    frame = pd.concat(parts, ignore_index=True)
    keys = [c for c in columns if c != "seconds"]
    codes, values = {}, {}
    for name in keys:
        code, uniques = pd.factorize(frame[name], sort=True, use_na_sentinel=True)
        codes[name] = np.where(code < 0, len(uniques), code)
        values[name] = uniques
    seconds = frame["seconds"].to_numpy(dtype=np.int64)
    del frame  # what is let go as soon as it is not needed lowers the peak of a large sum
    coded = pd.DataFrame({**codes, "seconds": seconds})
    del codes, seconds
    summed = sum_by_codes(coded, keys, "seconds")
    del coded
    out = pd.DataFrame({name: _decode(values[name], summed[name].to_numpy()) for name in keys})
    out["seconds"] = summed["seconds"].to_numpy(dtype=np.int64)
    return _plain_presence(out[columns]) if plain else out[columns]


def _plain_presence(frame: pd.DataFrame) -> pd.DataFrame:
    """Presence rows with text columns as plain objects (None where missing), as the store writes them."""
    out = frame.copy()
    for column in (BLOCK_ID, UNIT_ID, OFFICER_ID):
        out[column] = out[column].astype(object).where(out[column].notna(), None)
    for column in _FEW_VALUES:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype(str)
    return out


#: The categories of the presence columns with few values, in sorted order (as the sum orders the rows).
_FEW_VALUES = {
    "mode": pd.CategoricalDtype(sorted((FOOT, VEHICLE))),
    "purpose": pd.CategoricalDtype(sorted((ENFORCEMENT, NON_ENFORCEMENT))),
}


def _compact_presence(presence: pd.DataFrame, block_ids: pd.CategoricalDtype) -> pd.DataFrame:
    """Presence rows waiting to be summed, with block, mode and purpose as categories shared by every group (a
    text per cell took several times the memory, at 10 million fixes a third of the import's peak)."""
    out = presence.copy()
    out[BLOCK_ID] = out[BLOCK_ID].astype(block_ids)
    for name, dtype in _FEW_VALUES.items():
        out[name] = out[name].astype(dtype)
    return out


#: Summed presence rows a :class:`PresenceSum` holds in memory at most (about 50 bytes each; summing the rows
#: waiting, up to twice as many and a group's, takes several times that for a moment) before it writes them to its
#: spill files.  The aggregate grows with the blocks, hours
#: and units a city's fixes reach: at 100 million fixes, tens of millions of rows.
SPILL_ROWS = 300_000
#: Partitions of the spill files: the rows of one block and hour always go to the same one, so that each partition
#: is summed on its own at the end, one at a time.
SPILL_PARTITIONS = 64


class PresenceSum:
    """Presence rows (``key`` and :data:`beatmap.tracks.PRESENCE_COLUMNS`) summed per key as groups of devices add
    theirs, in bounded memory.

    The rows are summed as they come; when the sum outgrows :data:`SPILL_ROWS`
    it is written to Arrow files in ``folder``, partitioned by a hash of the
    block and hour, and :meth:`pieces` sums each partition on its own at the
    end.  The seconds are integers, so the sums do not depend on the order.
    Every :class:`PresenceSum` of one import can share a folder (the Dask
    engine's tasks spill there, and the client's sum reads every file there).

    Parameters
    ----------
    folder : Path or None
        Where to spill (made when first needed; it must outlive the store write); None holds every row in memory.
    block_ids : CategoricalDtype, optional
        Every block id: rows waiting are held with block, mode and purpose as categories (less memory).
    """

    def __init__(self, folder: Path | None, *, block_ids: pd.CategoricalDtype | None = None) -> None:
        self.folder = folder
        self.block_ids = block_ids
        self.bound = SPILL_ROWS  # read now, so a test can lower it
        self._pending: list[pd.DataFrame] = []
        self._pending_rows = 0
        self._summed_rows = 0  # rows of _pending[0] when it is a sum
        self._totals: dict[str, int] | None = None

    def add(self, presence: pd.DataFrame) -> None:
        """Add presence rows (their keys may repeat those added before)."""
        if not len(presence):
            return
        self._pending.append(_compact_presence(presence, self.block_ids) if self.block_ids is not None else presence)
        self._pending_rows += len(presence)
        # Summed once the rows waiting outgrow the sum so far: each row is summed a few times, not once per group.
        if self._pending_rows > max(min(GROUP_PINGS, self.bound), 2 * self._summed_rows):
            self._sum()

    def held(self) -> pd.DataFrame:
        """The rows held in memory, summed (every row added, unless some were spilled)."""
        if len(self._pending) > 1 or self._pending_rows != self._summed_rows:
            self._sum()
        return _plain_presence(self._pending[0]) if self._pending else _sum_presence([])

    def _sum(self) -> None:
        if self.block_ids is not None:
            frame = _compact_presence(_sum_presence(self._pending, plain=False), self.block_ids)
        else:
            frame = _sum_presence(self._pending)
        self._pending = [frame] if len(frame) else []
        self._pending_rows = self._summed_rows = len(frame)
        if self.folder is not None and len(frame) > self.bound:
            self.spill()

    def spill(self) -> None:
        """Write the rows held to the spill files (nothing is held afterwards)."""
        if self.folder is None:
            raise ValueError("this presence sum has no folder to spill to")
        if len(self._pending) > 1 or self._pending_rows != self._summed_rows:
            self._sum()  # which may spill already
        if not self._pending:
            return
        frame = self._pending[0]
        self._pending, self._pending_rows, self._summed_rows = [], 0, 0
        self.folder.mkdir(parents=True, exist_ok=True)
        which = spill_partition(frame, SPILL_PARTITIONS)
        name = uuid.uuid4().hex  # one name per spill: the spills of several sums share the folder
        for part in np.unique(which):
            table = pa.Table.from_pandas(frame[which == part], preserve_index=False)
            with pa.ipc.new_file(
                self.folder / f"p{int(part):04d}-{name}.arrow",
                table.schema,
                options=pa.ipc.IpcWriteOptions(compression="lz4"),
            ) as writer:
                writer.write_table(table)

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("p*.arrow")) if self.folder is not None and self.folder.exists() else []

    def pieces(self) -> Iterator[pd.DataFrame]:
        """Every row summed per key, a piece at a time (no key is in two pieces): the rows held when nothing was
        spilled, else each spill partition in turn with the rows held added to theirs."""
        parts: Iterator[pd.DataFrame] | list[pd.DataFrame]
        if not self._files():
            parts = [self.held()]
        else:
            self.spill()
            parts = self._spilled_parts()
        totals = dict.fromkeys(("presence", "enforcement", "vehicle", "outside"), 0)
        for piece in parts:
            for name, value in _totals(piece).items():
                totals[name] += value
            yield piece
        self._totals = totals

    def _spilled_parts(self) -> Iterator[pd.DataFrame]:
        by_part: dict[str, list[Path]] = {}
        for path in self._files():
            by_part.setdefault(path.name.split("-")[0], []).append(path)
        for part in sorted(by_part):
            frames = [pa.ipc.open_file(path).read_all().to_pandas() for path in by_part[part]]
            yield _sum_presence(frames)

    def totals(self) -> dict[str, int]:
        """Seconds of this import's own rows (``key`` < 0): ``presence`` in all, on calls (``enforcement``), in a
        ``vehicle`` and ``outside`` every block.  Counted as :meth:`pieces` went, when it went to the end."""
        if self._totals is None:
            for _piece in self.pieces():
                pass
        assert self._totals is not None
        return self._totals


def _totals(presence: pd.DataFrame) -> dict[str, int]:
    own = presence[presence["key"].astype(np.int64) < 0]
    seconds = own["seconds"]
    return {
        "presence": int(seconds.sum()),
        "enforcement": int(seconds[(own["purpose"] == ENFORCEMENT).to_numpy()].sum()),
        "vehicle": int(seconds[(own["mode"] == VEHICLE).to_numpy()].sum()),
        "outside": int(seconds[own[BLOCK_ID].isna().to_numpy()].sum()),
    }


def spill_partition(presence: pd.DataFrame, partitions: int) -> np.ndarray:
    """The spill partition of each presence row, from a hash of its block id (text, or categories of text) and
    its hour: the same for a block and hour whatever else the rows hold and however the block column is stored."""
    block = presence[BLOCK_ID]
    if isinstance(block.dtype, pd.CategoricalDtype):
        hashed = pd.util.hash_array(np.asarray(block.cat.categories.astype(str), dtype=object))
        codes = block.cat.codes.to_numpy()
        by_block = np.where(codes >= 0, hashed[np.maximum(codes, 0)], _MISSING_HASH)
    else:
        text = block.astype(object).where(block.notna(), "").to_numpy(dtype=object)
        by_block = pd.util.hash_array(text)
    hours = pd.DatetimeIndex(presence["hour"]).as_unit("s").asi8 // 3600  # whatever the unit it is held in
    mixed = by_block ^ (hours.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    return (mixed % np.uint64(partitions)).astype(np.int64)


_MISSING_HASH = pd.util.hash_array(np.array([""], dtype=object))[0]


def _decode(uniques: pd.Index | np.ndarray, codes: np.ndarray) -> pd.Series:
    """Values of codes from :func:`pandas.factorize` (the code ``len(uniques)`` is missing: None)."""
    index = pd.Index(uniques)
    missing = codes >= len(index)
    if not len(index):
        return pd.Series(np.full(len(codes), None, dtype=object))
    if isinstance(index, pd.CategoricalIndex):  # categories stay categories, missing as a missing category
        category = np.asarray(index.codes)[np.where(missing, 0, codes)]
        return pd.Series(pd.Categorical.from_codes(np.where(missing, -1, category), dtype=index.dtype))
    out = pd.Series(index.take(np.where(missing, 0, codes)))
    if missing.any():
        out = out.astype(object)
        out[missing] = None
    return out


def _device_keys(credit: TrackCredit) -> pd.DataFrame:
    track = credit.pings
    return (
        track.groupby(["key", DEVICE_ID], observed=True, sort=True)["gap_s"]
        .sum()
        .rename("gap_seconds")
        .reset_index()
        .assign(**{DEVICE_ID: lambda f: f[DEVICE_ID].astype(str)})
    )


def _cross_duplicates(new: pd.DataFrame, known: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New pings with the device and second of an archived one: duplicates, naming the import that has it."""
    seen = known[[DEVICE_ID, TS, "key"]].astype({DEVICE_ID: str}).drop_duplicates([DEVICE_ID, TS])
    probe = pd.DataFrame({DEVICE_ID: new[DEVICE_ID].astype(str).to_numpy(), TS: new[TS].to_numpy()})
    match = probe.merge(seen, on=[DEVICE_ID, TS], how="left")["key"].to_numpy()
    hit = ~pd.isna(match)
    if not hit.any():
        return new, pd.DataFrame()
    repeated = pd.DataFrame(
        {
            "file": new["file"].to_numpy()[hit],
            "row": new["row"].to_numpy()[hit],
            "reason": [
                f"duplicate: the same device and time as a ping imported before (batch {int(k)})"
                if int(k) > 0
                else "duplicate: the same device and time as a ping imported before"
                for k in match[hit]
            ],
            DEVICE_ID: probe[DEVICE_ID].to_numpy()[hit],
            TS: new[TS].to_numpy()[hit],
        }
    )
    return new[~hit].reset_index(drop=True), repeated


def calls_between(engine: Engine, lo: int, hi: int) -> pd.DataFrame:
    """The CAD calls (enforcement activity with a unit) that can overlap pings from ``lo`` to ``hi`` (seconds)."""
    first = pd.Timestamp(lo, unit="s", tz="UTC") - timedelta(days=1)
    last = pd.Timestamp(hi, unit="s", tz="UTC")
    events = store.read_events(
        engine,
        start=first.to_pydatetime(),
        end=last.to_pydatetime(),
        columns=[UNIT_ID, "occurred_at", "ended_at", KIND],
    )
    return events[(events[KIND] == ENFORCEMENT) & events[UNIT_ID].notna()].reset_index(drop=True)


def device_day_quality(
    credit: TrackCredit, poor: pd.DataFrame, *, settings: Settings, key: str = "file"
) -> pd.DataFrame:
    """Per ``key`` (file or batch), device and local day: pings, median interval, gap and longest silence, outside
    and poor accuracy.

    Parameters
    ----------
    credit : TrackCredit
        Its pings carry the ``key`` column.
    poor : DataFrame
        ``device_id, ts`` and ``key`` of the fixes rejected for poor accuracy.

    Returns
    -------
    DataFrame
        ``key, device_id, day, pings, median_interval_s, gap_minutes,
        longest_silence_minutes, outside_share, poor_accuracy_share``.
    """
    columns = [key, *presence_store.DEVICE_DAY_COLUMNS]
    track = credit.pings
    if track.empty:
        return pd.DataFrame(columns=columns)
    zone = settings.zone
    ts = track[TS].to_numpy(dtype=np.int64)
    day = _local_days(ts, zone)
    device, ids = device_codes_and_ids(track[DEVICE_ID])
    interval = np.full(len(ts), np.nan)
    same = np.zeros(len(ts), dtype=bool)
    same[1:] = (device[1:] == device[:-1]) & (day[1:] == day[:-1])
    interval[1:] = np.where(same[1:], ts[1:] - ts[:-1], np.nan)
    outside = (track["block"].to_numpy() < 0) * track["credit_s"].to_numpy()
    frame = pd.DataFrame(
        {
            key: track[key].to_numpy(),
            DEVICE_ID: device,  # codes in the order of the ids, named after grouping (text keys are slow)
            "day": day,
            "interval": interval,
            "gap": track["gap_s"].to_numpy(),
            "credit": track["credit_s"].to_numpy(),
            "outside": outside,
        }
    )
    grouped = frame.groupby([key, DEVICE_ID, "day"], sort=True, observed=True)
    out = grouped.agg(
        pings=("interval", "size"),
        median_interval_s=("interval", "median"),
        gap=("gap", "sum"),
        silence=("interval", "max"),
        credit=("credit", "sum"),
        outside=("outside", "sum"),
    ).reset_index()
    out[DEVICE_ID] = ids[out[DEVICE_ID].to_numpy()]
    if len(poor):
        poor_counts = (
            pd.DataFrame(
                {
                    key: poor[key].to_numpy(),
                    DEVICE_ID: poor[DEVICE_ID].astype(str).to_numpy(),
                    "day": _local_days(poor[TS].to_numpy(dtype=np.int64), zone),
                }
            )
            .groupby([key, DEVICE_ID, "day"])
            .size()
            .rename("poor")
        )
        out = out.join(poor_counts, on=[key, DEVICE_ID, "day"])
    else:
        out["poor"] = 0
    out["day"] = pd.to_datetime(out["day"].to_numpy().astype("datetime64[D]")).strftime("%Y-%m-%d")
    out["gap_minutes"] = out["gap"] / 60
    out["longest_silence_minutes"] = out["silence"].fillna(0) / 60
    out["outside_share"] = np.where(out["credit"] > 0, out["outside"] / out["credit"].where(out["credit"] > 0, 1), 0.0)
    out["poor"] = out["poor"].fillna(0)
    out["poor_accuracy_share"] = out["poor"] / (out["pings"] + out["poor"])
    return out[columns]


def _local_days(ts: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """Local days (days since 1970) of UTC seconds."""
    local = pd.DatetimeIndex(pd.to_datetime(ts, unit="s", utc=True)).tz_convert(zone).tz_localize(None)
    return local.to_numpy().astype("datetime64[D]").astype(np.int64)


def silent_devices(days: pd.DataFrame, *, silent_minutes: int) -> pd.DataFrame:
    """Device-days on which a device that reported went silent for longer than ``silent_minutes``."""
    return days[days["longest_silence_minutes"] > silent_minutes].reset_index(drop=True)


def store_import(
    engine: Engine,
    files: list[Path],
    fresh: list[int],
    hashes: list[str],
    earlier: list[int | None],
    counts: pd.DataFrame,
    read_rejects: pd.DataFrame,
    computed: Computed,
    writers: dict[int, archive.ArchiveWriter],
    rewrite: pd.DataFrame,
    folder: Path,
    *,
    actor: str,
    shown: list[str],
    encodings: dict[int, str] | None = None,
) -> list[PingFileSummary]:
    """Write the import in one transaction; then give the archives their names.

    ``fresh`` are the positions in ``files`` of the files read (file number
    ``i`` is ``files[fresh[i]]``); ``counts`` has their ``rows`` by file
    number and ``read_rejects`` the rows rejected while reading
    (:class:`beatmap.pings.Staged`); ``writers`` hold their archives;
    ``encodings`` the file numbers read in a guessed encoding.
    """
    rejects = pd.concat([read_rejects, computed.rejects], ignore_index=True).sort_values(["file", "row"], kind="stable")
    duplicate = rejects["reason"].str.startswith("duplicate")
    used = computed.used.set_index("file") if len(computed.used) else pd.DataFrame()
    summaries: list[PingFileSummary] = []
    published: list[tuple[archive.ArchiveWriter, Path]] = []
    with store.transaction(engine) as conn:
        keys: dict[int, int] = {}
        for i in range(len(files)):
            if i not in fresh:
                prior = (
                    f"batch {earlier[i]}"
                    if earlier[i] is not None
                    else f"{shown[hashes.index(hashes[i])]} in this import"
                )
                summaries.append(
                    PingFileSummary(
                        file=shown[i], batch_id=None, rows=0, used=0, duplicates=0, rejected=0, already_imported=prior
                    )
                )
                continue
            number = fresh.index(i)
            file_rejects = rejects[rejects["file"] == number]
            reasons = (
                file_rejects["reason"].str.split(r" [\('\"]|: |,", regex=True).str[0].value_counts().to_dict()
                if not file_rejects.empty
                else {}
            )
            n_used = int(used.loc[number, "used"]) if number in used.index else 0
            summary = PingFileSummary(
                file=shown[i],
                batch_id=None,
                rows=int(counts.iloc[number]["rows"]),
                used=n_used,
                duplicates=int(duplicate[rejects["file"] == number].sum()),
                rejected=int((~duplicate[rejects["file"] == number]).sum()),
                reject_reasons={str(k): int(v) for k, v in reasons.items()},
                warnings=_encoding_warnings(shown[i], int(counts.iloc[number]["rows"]), (encodings or {}).get(number)),
            )
            counted = {"rows": summary.rows, "imported": summary.used, "duplicates": summary.duplicates}
            batch_id = store.add_batch(
                conn,
                what="pings",
                source="gps",
                file_name=shown[i],
                summary={**counted, "rejected": summary.rejected},
                imported_by=actor,
                content_hash=hashes[i],
            )
            keys[-(number + 1)] = batch_id
            writer = writers[number]
            has_archive = writer.close()
            if has_archive:
                published.append((writer, folder / archive.archive_name(batch_id)))

            def when(column: str, number: int = number) -> datetime | None:
                if number not in used.index:
                    return None
                return pd.Timestamp(int(used.loc[number, column]), unit="s", tz="UTC").to_pydatetime()

            presence_store.write_ping_file(
                conn,
                batch_id,
                content_hash=hashes[i],
                rows=summary.rows,
                used=summary.used,
                duplicates=summary.duplicates,
                rejected=summary.rejected,
                first_ping=when("first_ts"),
                last_ping=when("last_ts"),
                archive=archive.archive_name(batch_id) if has_archive else None,
            )
            if not file_rejects.empty:
                fingerprints = [
                    hashlib.blake2b(f"pings\x1f{hashes[i]}\x1f{row}".encode(), digest_size=16).hexdigest()
                    for row in file_rejects["row"]
                ]
                store.insert_rejects(
                    conn,
                    batch_id,
                    pd.DataFrame(
                        {
                            "fingerprint": fingerprints,
                            "row": file_rejects["row"].to_numpy(),
                            "reason": file_rejects["reason"].to_numpy(),
                            "raw": [{}] * len(file_rejects),
                        }
                    ),
                    source="gps",
                    file_name=shown[i],
                )
            result = PingFileSummary(**{**summary.__dict__, "batch_id": batch_id})
            store.set_batch_summary(conn, batch_id, result.to_dict())
            store.record_audit(
                conn,
                actor=actor,
                action="import.pings",
                target=shown[i],
                details={k: v for k, v in result.to_dict().items() if k != "file"},
            )
            summaries.append(result)
        _replace_derived(conn, computed, keys, [int(b) for b in rewrite["batch_id"]])
        store.bump_version(conn)
    for writer, target in published:
        writer.publish(target)
    return summaries


def _encoding_warnings(file: str, rows: int, encoding: str | None) -> tuple[dict[str, object], ...]:
    """The ``encoding_guessed`` warning of a file read in a guessed encoding (none for UTF-8), as activity gives it."""
    if encoding is None:
        return ()
    details = {"encoding": encoding}
    return ({"code": "encoding_guessed", "message": guessed_encoding_note(file), "count": rows, "details": details},)


def _replace_derived(conn: Connection, computed: Computed, keys: dict[int, int], rewritten: list[int]) -> None:
    """Swap the presence, visits and device days of the batches computed (``keys`` maps new files' keys)."""
    presence_store.delete_derived(conn, rewritten)

    def batch_of(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame[frame["key"] != _CONTEXT]
        key = frame["key"].astype(np.int64)
        return frame.assign(batch_id=key.map(lambda k: keys.get(k, k)).astype(np.int64))

    for piece in computed.presence.pieces():  # a bounded piece at a time
        presence_store.write_presence(conn, None, batch_of(piece))
    for batch_id, visits in batch_of(computed.visits).groupby("batch_id"):
        presence_store.write_track_visits(conn, int(batch_id), visits)
    for batch_id, days in batch_of(computed.days).groupby("batch_id"):
        presence_store.write_device_days(conn, int(batch_id), days)
    block_devices = batch_of(computed.block_devices)  # each row names its batch: one write for every batch
    presence_store.write_block_devices(
        conn, None, block_devices.drop_duplicates(["batch_id", *presence_store.BLOCK_DEVICE_COLUMNS])
    )


@dataclass(frozen=True)
class RecomputeSummary:
    """What computing presence again did: the batches recomputed, and those past retention left as they were."""

    reason: str
    recomputed: tuple[int, ...] = ()
    past_retention: tuple[int, ...] = ()

    def message(self) -> str:
        """One sentence for an import or undo summary."""
        parts = []
        if self.recomputed:
            parts.append(
                f"GPS presence computed again from the ping archive for {len(self.recomputed)} ping import(s) "
                f"({self.reason})"
            )
        if self.past_retention:
            parts.append(
                f"{len(self.past_retention)} ping import(s) for this time are past retain_pings_days: their raw "
                "pings are gone, so their presence cannot change"
            )
        return "; ".join(parts) + ("." if parts else "")


def recompute_presence(
    engine: Engine,
    *,
    settings: Settings,
    start: datetime | None = None,
    end: datetime | None = None,
    reason: str = "recompute",
    actor: str = "library",
    progress: Progress = _quiet,
    now: datetime | None = None,
) -> RecomputeSummary:
    """Compute presence again from the ping archive for the imports whose pings fall in ``[start, end]``.

    Without ``start`` and ``end``: every import still in the archive (after
    a reload of the areas).  The retention sweep runs first (counting back
    from ``now``); imports past retention keep their aggregates, and the
    summary lists those whose time overlaps.
    """
    kept = archive.archived_batches(engine)
    if len(kept):  # what is past retention now is not computed again
        archive.sweep_archive(engine, settings, now=now)
        archive.require_archives(engine, settings, doing=f"computing GPS presence again ({reason})", now=now)
        kept = archive.archived_batches(engine)
    blocks = store.read_blocks(engine) if len(kept) else gpd.GeoDataFrame()
    lo = _seconds(start) if start is not None else None
    hi = _seconds(end) if end is not None else None
    spans = presence_store.ping_spans(engine)
    if lo is None or hi is None:
        rewrite, context = kept, kept.iloc[:0]
        gone = spans[spans["archive"].isna()] if lo is None and hi is None else spans.iloc[:0]
    else:
        rewrite, context = neighbours(kept, lo, hi, settings)
        first = (spans["first_ping"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        last = (spans["last_ping"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        gone = spans[spans["archive"].isna() & (first <= hi) & (last >= lo)]
    past = tuple(int(b) for b in gone["batch_id"])
    if rewrite.empty or blocks.empty:
        return RecomputeSummary(reason=reason, past_retention=past)
    folder = archive.archive_dir(engine, settings)
    done = tuple(int(b) for b in rewrite["batch_id"])
    with tempfile.TemporaryDirectory(prefix="staging-", dir=folder) as stage_dir:
        computed = _compute(
            engine,
            settings,
            blocks,
            folder=folder,
            staged=None,
            roster=None,
            rewrite=rewrite,
            context=context,
            writers={},
            progress=progress,
            spill=Path(stage_dir) / "presence",
        )
        with store.transaction(engine) as conn:
            _replace_derived(conn, computed, {}, list(done))
            store.record_audit(
                conn, actor=actor, action="gps.recompute", target=reason, details={"batches": list(done)}
            )
            store.bump_version(conn)
    return RecomputeSummary(reason=reason, recomputed=done, past_retention=past)


def after_calls_changed(
    engine: Engine,
    batch_ids: list[int],
    *,
    settings: Settings,
    reason: str,
    span: tuple[datetime, datetime] | None = None,
    replaced: tuple[datetime, datetime] | None = None,
) -> RecomputeSummary:
    """Compute presence again where CAD calls of activity batches were added or removed.

    ``span`` is the calls' time (taken before an undo removes them); by
    default it is read from the batches.  ``replaced`` is the time of calls
    that batches replaced by these ones held (:func:`feed_calls_span`, taken
    before the replacement): presence there is computed again too, so a call
    the corrected file drops no longer counts.  Calls without a unit change nothing.
    """
    span = span if span is not None else presence_store.calls_span(engine, batch_ids)
    if replaced is not None:
        span = replaced if span is None else (min(span[0], replaced[0]), max(span[1], replaced[1]))
    if span is None or not presence_store.ping_spans(engine).shape[0]:
        return RecomputeSummary(reason=reason)
    start, end = span
    return recompute_presence(
        engine,
        settings=settings,
        start=start,
        end=end + timedelta(minutes=settings.call_default_minutes),
        reason=reason,
    )


def feed_calls_span(engine: Engine, source: str) -> tuple[datetime, datetime] | None:
    """The time the CAD calls of a feed's live imports cover (see :func:`after_calls_changed`'s ``replaced``)."""
    with store.transaction(engine) as conn:
        batch_ids = store.live_batch_ids(conn, source=source)
    return presence_store.calls_span(engine, batch_ids) if batch_ids else None


def undo_ping_import(engine: Engine, batch_id: int, *, settings: Settings, actor: str) -> RecomputeSummary:
    """Undo a ping import: its presence, visits, quality figures and archive go; its neighbours are computed again.

    Raises
    ------
    InputError
        When the batch is not a live ping import.
    """
    archive.require_archives(engine, settings, doing=f"undoing ping import {batch_id}", keep_going=[batch_id])
    with store.transaction(engine) as conn:
        batch = store.get_batch(conn, batch_id)
        if batch is None or batch["what"] != "pings":
            raise InputError(f"there is no ping import {batch_id}; list the imports to see their numbers.")
        if batch["undone_at"] is not None:
            raise InputError(f"ping import {batch_id} ({batch['file_name']}) was already undone.")
        spans = presence_store.ping_spans(conn)
        span = spans[spans["batch_id"] == batch_id]
        name = presence_store.forget_ping_file(conn, batch_id)
        store.retire_batches(conn, [batch_id], actor=actor)
        store.record_audit(conn, actor=actor, action="import.undo", target=batch["file_name"], details={})
        store.bump_version(conn)
    if name is not None:
        (archive.archive_dir(engine, settings) / name).unlink(missing_ok=True)
    if span.empty or pd.isna(span["first_ping"].iloc[0]):
        return RecomputeSummary(reason=f"undo of ping import {batch_id}")
    return recompute_presence(
        engine,
        settings=settings,
        start=span["first_ping"].iloc[0].to_pydatetime(),
        end=span["last_ping"].iloc[0].to_pydatetime(),
        reason=f"undo of ping import {batch_id}",
        actor=actor,
    )


def _seconds(moment: datetime) -> int:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int((stamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1))


def format_ping_import(summary: PingImportSummary) -> str:
    """The human summary of ``beatmap import-pings``."""
    lines = []
    for f in summary.files:
        if f.already_imported is not None:
            lines.append(f"{f.file}: already imported ({f.already_imported}); nothing changed")
            continue
        lines.append(
            f"{f.file}: {f.rows:,} rows: {f.used:,} used, {f.duplicates:,} duplicates, "
            f"{f.rejected:,} rejected (batch {f.batch_id})"
        )
        lines += [f"  {count:,} {reason}" for reason, count in sorted(f.reject_reasons.items())]
        lines += [f"  warning: {w['message']}" for w in f.warnings]
    minutes = summary.presence_seconds / 60
    lines.append(
        f"{summary.devices:,} devices, {minutes:,.0f} minutes of presence "
        f"({summary.enforcement_seconds / 60:,.0f} on calls, {summary.vehicle_seconds / 60:,.0f} in a "
        f"vehicle, {summary.outside_seconds / 60:,.0f} outside every block), "
        f"{summary.gap_seconds / 60:,.0f} minutes of gap, {summary.track_visits:,} track visits"
    )
    if summary.recomputed_batches:
        batches = ", ".join(map(str, summary.recomputed_batches))
        lines.append(f"presence of earlier ping import(s) {batches} computed again with these fixes in their tracks")
    return "\n".join(lines)


def quality_table(engine: Engine, *, settings: Settings) -> pd.DataFrame:
    """GPS data quality per device and local day, summed over imports, with ``silent`` for long silences.

    Returns
    -------
    DataFrame
        ``device_id, day, pings, median_interval_s, gap_minutes,
        longest_silence_minutes, outside_share, poor_accuracy_share, silent``.
    """
    days = presence_store.read_device_days(engine)
    if days.empty:
        return days.assign(silent=pd.Series(dtype=bool))
    weighted = days.assign(
        w_median=days["median_interval_s"] * days["pings"],
        w_outside=days["outside_share"] * days["pings"],
        w_poor=days["poor_accuracy_share"] * days["pings"],
    )
    grouped = weighted.groupby([DEVICE_ID, "day"], sort=True)
    out = grouped.agg(
        pings=("pings", "sum"),
        w_median=("w_median", "sum"),
        gap_minutes=("gap_minutes", "sum"),
        longest_silence_minutes=("longest_silence_minutes", "max"),
        w_outside=("w_outside", "sum"),
        w_poor=("w_poor", "sum"),
    ).reset_index()
    out["median_interval_s"] = out["w_median"] / out["pings"]
    out["outside_share"] = out["w_outside"] / out["pings"]
    out["poor_accuracy_share"] = out["w_poor"] / out["pings"]
    out["silent"] = out["longest_silence_minutes"] > settings.silent_minutes
    return out[
        [
            DEVICE_ID,
            "day",
            "pings",
            "median_interval_s",
            "gap_minutes",
            "longest_silence_minutes",
            "outside_share",
            "poor_accuracy_share",
            "silent",
        ]
    ]


#: Presence columns of the views: (column, purpose, mode or None for any mode).
PRESENCE_MINUTES: tuple[tuple[str, str, str | None], ...] = (
    ("presence_minutes", NON_ENFORCEMENT, FOOT),
    ("vehicle_minutes", NON_ENFORCEMENT, VEHICLE),
    ("enforcement_minutes", ENFORCEMENT, None),
)


def _minutes(presence: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Presence seconds summed per ``keys`` into the :data:`PRESENCE_MINUTES` columns (minutes, one decimal)."""
    out = presence[keys].drop_duplicates().reset_index(drop=True)
    for column, purpose, mode in PRESENCE_MINUTES:
        chosen = (presence["purpose"] == purpose) & ((presence["mode"] == mode) if mode else True)
        seconds = presence[chosen].groupby(keys, dropna=False)["seconds"].sum().rename(column).reset_index()
        out = out.merge(seconds, on=keys, how="left")
        out[column] = (out[column].fillna(0) / 60).round(1)
    return out


def presence_by_block(engine: Engine, *, start: datetime, end: datetime) -> pd.DataFrame:
    """GPS minutes per block in ``[start, end)`` from the stored aggregates (never from pings).

    Returns
    -------
    DataFrame
        ``block_id`` and :data:`PRESENCE_MINUTES` columns, for the blocks with any.
    """
    presence = presence_store.read_presence(engine, start=start, end=end)
    presence = presence[presence[BLOCK_ID].notna()]
    if presence.empty:
        return pd.DataFrame(columns=[BLOCK_ID, *(c for c, _, _ in PRESENCE_MINUTES)])
    return _minutes(presence, [BLOCK_ID])


def presence_by_officer(
    engine: Engine, *, start: datetime, end: datetime, block_ids: Sequence[str] | None = None
) -> pd.DataFrame:
    """GPS minutes per officer and unit in ``[start, end)`` on ``block_ids`` (all blocks by default), from the
    aggregates, with the number of blocks each was on.  For supervisors (see :mod:`beatmap.access`)."""
    presence = presence_store.read_presence(engine, start=start, end=end)
    presence = presence[presence[BLOCK_ID].notna()]
    if block_ids is not None:
        presence = presence[presence[BLOCK_ID].isin(list(block_ids))]
    columns = [OFFICER_ID, UNIT_ID, *(c for c, _, _ in PRESENCE_MINUTES), "blocks"]
    if presence.empty:
        return pd.DataFrame(columns=columns)
    keyed = presence.assign(**{c: presence[c].fillna("") for c in (OFFICER_ID, UNIT_ID)})
    out = _minutes(keyed, [OFFICER_ID, UNIT_ID])
    blocks = keyed.groupby([OFFICER_ID, UNIT_ID])[BLOCK_ID].nunique().rename("blocks").reset_index()
    out = out.merge(blocks, on=[OFFICER_ID, UNIT_ID], how="left")
    return out[columns].sort_values("presence_minutes", ascending=False).reset_index(drop=True)


def gps_hours_by_beat(engine: Engine, *, start: datetime, end: datetime, blocks: pd.DataFrame) -> pd.DataFrame:
    """For each beat of ``blocks``: the window's hours, the hours with usable GPS (any presence credited on one
    of its blocks) and their share.  Tells "not visited" from "no data"."""
    hours = max(int((pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() // 3600), 1)
    presence = presence_store.read_presence(engine, start=start, end=end)
    beat_of = blocks.set_index(BLOCK_ID)[BEAT_ID]
    located = presence[presence[BLOCK_ID].isin(beat_of.index)]
    usable = located.assign(beat=located[BLOCK_ID].map(beat_of)).groupby("beat")["hour"].nunique()
    beats = pd.Series(sorted(blocks[BEAT_ID].dropna().unique()), name=BEAT_ID)
    out = pd.DataFrame({BEAT_ID: beats, "window_hours": hours})
    out["gps_hours"] = out[BEAT_ID].map(usable).fillna(0).astype(int)
    out["gps_share"] = (out["gps_hours"] / hours).round(3)
    return out


def quality_in_window(engine: Engine, *, settings: Settings, start: datetime, end: datetime) -> pd.DataFrame:
    """:func:`quality_table` for the local days of ``[start, end)``."""
    table = quality_table(engine, settings=settings)
    if table.empty:
        return table
    zone = settings.zone
    first = pd.Timestamp(start).tz_convert(zone).strftime("%Y-%m-%d")
    last = (pd.Timestamp(end) - pd.Timedelta(seconds=1)).tz_convert(zone).strftime("%Y-%m-%d")
    return table[(table["day"] >= first) & (table["day"] <= last)].reset_index(drop=True)


#: What the coverage page can colour blocks by from GPS, and the heat map weight by: column -> legend title.
PRESENCE_WORDS: dict[str, str] = {
    "presence_minutes": "GPS minutes on foot, not on a call",
    "vehicle_minutes": "GPS minutes in a vehicle, not on a call",
    "enforcement_minutes": "GPS minutes on calls",
}
