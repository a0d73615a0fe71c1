"""Import GPS pings on a Dask cluster, with the same answers as the single-process engine.

``beatmap import-pings FILES... --engine dask [--scheduler ADDRESS]`` runs
:func:`import_pings_dask`.  It does what :func:`beatmap.presence.import_pings`
does for the same files, through the same public steps, spread over the
workers:

1. **Before** (on the client): the retention sweep of the raw ping archive
   (:func:`beatmap.ping_archive.sweep_archive`); the files' SHA-256 (hashed
   on the workers), so a file imported before is skipped.
2. **Read and shuffle** (one task per Parquet row group or per CSV file):
   the chunks are parsed and checked as one process stages them
   (:func:`beatmap.pings.stage_chunk`) and written, split by device
   partition (:func:`beatmap.ping_archive.partition_of` of ``device_id``),
   to staging files in the archive folder.  A read task sends back its
   rejected rows and counts only; after this stage all of a device's pings
   are in one partition.
3. **Credit** (one task per partition): the partition's staged pings and the
   archived pings of its devices (:func:`beatmap.presence.archived_group`)
   go through :func:`beatmap.presence.credit_group`, the very step one
   process runs per group of devices: duplicates and impossible jumps, the
   roster, duplicates of pings imported before within retention, the
   tracks credited with the CAD calls of the import's span, device-day
   quality.  The task writes the partition's pings for the raw archive to a
   staging file and sends back aggregate rows only.
4. **Combine** (on the workers, in a tree): presence rows with the same keys
   summed (integer seconds: the sums do not depend on order).  A task's or a
   combination's presence past :data:`beatmap.presence.SPILL_ROWS` rows is
   spilled to files in the staging folder by the same
   :class:`beatmap.presence.PresenceSum` one process uses, so no result that
   travels, and no sum on the client, grows with the import.
5. **Write** (on the client): the archive of each file gathered from the
   partitions' staging files, then every file's batch, presence (the spill
   files summed a partition at a time), visits, quality and rejects, and the
   presence of the earlier imports computed again, in one transaction
   (:func:`beatmap.presence.store_import`).

The blocks, their block index, the CAD calls and the roster are scattered to
every worker once and handed to the tasks by reference.  Workers read the
input files and the archive folder at the paths the client gives: on a real
cluster both are on storage every machine mounts at the same path.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine

from beatmap import ping_archive as archive
from beatmap.errors import InputError
from beatmap.index import block_index_for
from beatmap.pings import (
    PARTITION_BYTES,
    STAGE_SCHEMA,
    PingMapping,
    file_chunks,
    stage_chunk,
)
from beatmap.presence import (
    GROUP_PINGS,
    GroupCredit,
    PingImportSummary,
    PresenceSum,
    archived_group,
    calls_between,
    combine_groups,
    computed_from,
    credit_group,
    credit_span,
    file_hash,
    import_summary,
    neighbours,
    prepare_ping_import,
    store_import,
)
from beatmap.settings import Settings
from beatmap.store import presence as presence_store
from beatmap.tracks import DEVICE_ID, TS, TrackRules

Progress = Callable[[float, str], None]
#: File name endings the Dask engine reads (a directory is read as the files under it with these endings).
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz")
#: Rows read at a time from a CSV file inside a read task.
CSV_CHUNK_ROWS = 500_000
_REJECT_COLUMNS = ["file", "row", "reason", DEVICE_ID, TS]


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


@dataclass(frozen=True)
class ReadStats:
    """What a read task sends back (its pings went to the staging files): accounting rows only."""

    rejects: pd.DataFrame
    file: int
    rows: int
    first_ts: int
    last_ts: int
    part_rows: np.ndarray


def stage_part(
    part: ReadPart, number: int, folder: str, partitions: int, mapping: PingMapping, zone: str, max_accuracy_m: float
) -> ReadStats:
    """Read one part, parse it as one process stages it, and write its pings by device partition.

    The pings of partition ``p`` go to ``<folder>/read_<number>/part_<p>.arrow``.
    """
    out = Path(folder) / f"read_{number}"
    out.mkdir(parents=True, exist_ok=True)
    path = Path(part.path)
    rejects: list[pd.DataFrame] = []
    rows = 0
    first_ts, last_ts = np.iinfo(np.int64).max, -1
    part_rows = np.zeros(partitions, dtype=np.int64)
    writers: dict[int, pa.ipc.RecordBatchWriter] = {}
    try:
        for table, first in _part_chunks(part, mapping):
            good, bad = stage_chunk(
                table, first, part.file, mapping=mapping, zone=zone, max_accuracy_m=max_accuracy_m, source=path
            )
            rows += table.num_rows
            if len(bad):
                rejects.append(bad.assign(file=np.int32(part.file)))
            if not good.num_rows:
                continue
            ts = good.column(TS).to_numpy()
            first_ts, last_ts = min(first_ts, int(ts.min())), max(last_ts, int(ts.max()))
            device = good.column(DEVICE_ID).to_numpy(zero_copy_only=False)
            which = archive.partition_of(device, partitions)
            for p in np.unique(which):
                chosen = good.filter(pa.array(which == p))
                if int(p) not in writers:
                    writers[int(p)] = pa.ipc.new_file(
                        out / f"part_{int(p)}.arrow", STAGE_SCHEMA, options=pa.ipc.IpcWriteOptions(compression="lz4")
                    )
                writers[int(p)].write_table(chosen)
                part_rows[int(p)] += chosen.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    frame = (
        pd.concat(rejects, ignore_index=True)[_REJECT_COLUMNS]
        if rejects
        else pd.DataFrame({c: pd.Series(dtype=object) for c in _REJECT_COLUMNS})
    )
    return ReadStats(
        rejects=frame,
        file=part.file,
        rows=rows,
        first_ts=int(first_ts) if last_ts >= 0 else -1,
        last_ts=int(last_ts),
        part_rows=part_rows,
    )


def _part_chunks(part: ReadPart, mapping: PingMapping) -> Any:
    if part.row_group is None:
        if part.path.lower().endswith(PARQUET_SUFFIXES):
            return iter(())
        return file_chunks(Path(part.path), mapping, CSV_CHUNK_ROWS)
    return iter([(pq.ParquetFile(part.path).read_row_group(part.row_group), part.first_row)])


def _read_partition(folder: str, reads: int, partition: int) -> pd.DataFrame | None:
    """The staged pings of one partition, from every read task, in read order."""
    tables = []
    for number in range(reads):
        path = Path(folder) / f"read_{number}" / f"part_{partition}.arrow"
        if path.exists():
            tables.append(pa.ipc.open_file(path).read_all())
    return pa.concat_tables(tables).to_pandas() if tables else None


@dataclass(frozen=True)
class CreditTask:
    """What every credit task needs besides the shared objects: small, so it travels with each task."""

    folder: str
    archive_folder: str
    reads: int
    partitions: int
    rules: TrackRules
    settings: Settings
    rewrite: pd.DataFrame
    context: pd.DataFrame
    lo: int
    hi: int


def credit_partition(
    partition: int, blocks: Any, index: Any, calls: pd.DataFrame | None, roster: pd.DataFrame | None, task: CreditTask
) -> tuple[GroupCredit, list[tuple[int, str]]]:
    """Credit one device partition with :func:`beatmap.presence.credit_group`: aggregate rows only come back.

    The partition's pings for the raw archive are written to staging files;
    their file numbers and paths come back with the aggregates.
    """
    new = _read_partition(task.folder, task.reads, partition)
    known = archived_group(
        Path(task.archive_folder),
        task.rewrite,
        task.context,
        partitions=task.partitions,
        chosen=[partition],
        lo=task.lo,
        hi=task.hi,
        max_gap_s=task.settings.max_gap_s,
    )
    credit = credit_group(
        new, known, blocks=blocks, index=index, rules=task.rules, calls=calls, roster=roster, settings=task.settings
    )
    presence = PresenceSum(Path(task.folder) / "presence")  # spilled there when it outgrows the bound
    presence.add(credit.presence)
    credit = replace(credit, presence=presence.held())
    written: list[tuple[int, str]] = []
    for k, (file_number, pings) in enumerate(credit.archive):
        writer = archive.ArchiveWriter(Path(task.folder) / f"archive_{partition}_{k}.parquet")
        writer.write(pings)
        if writer.close():
            written.append((file_number, str(writer.partial)))
    return replace(credit, archive=[]), written


def _combine(
    a: tuple[GroupCredit, list[tuple[int, str]]], b: tuple[GroupCredit, list[tuple[int, str]]], spill: str
) -> tuple[GroupCredit, list[tuple[int, str]]]:
    """Two results as one: presence summed, and spilled to the folder ``spill`` when it outgrows the bound."""
    presence = PresenceSum(Path(spill))
    presence.add(a[0].presence)
    presence.add(b[0].presence)
    rest = combine_groups(
        [replace(a[0], presence=a[0].presence.iloc[:0]), replace(b[0], presence=b[0].presence.iloc[:0])]
    )
    return replace(rest, presence=presence.held()), [*a[1], *b[1]]


def _tree(client: Any, futures: list[Any], spill: str) -> Any:
    """Pairwise combination of the tasks' results on the workers, in a tree of depth log2(n)."""
    level = list(futures)
    while len(level) > 1:
        level = [
            client.submit(_combine, level[i], level[i + 1], spill, pure=False) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return level[0]


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
    progress: Progress = _quiet,
    actor: str = "library",
    now: datetime | None = None,
) -> DaskImportRun:
    """Import ping files (Parquet datasets, partitioned CSV) on a Dask cluster; answers as in one process.

    Parameters
    ----------
    engine : Engine
        The store, with areas loaded.
    paths : list of path
        Files, or directories of ``.parquet`` / ``.csv`` files, on storage
        every worker reads at the same path.
    settings, mapping_path, roster_path, crs, now
        As for :func:`beatmap.presence.import_pings`.  The archive folder
        (:func:`beatmap.ping_archive.archive_dir`) must be one every worker
        can write at the same path: the staging files of the shuffle live there.
    client : distributed.Client, optional
        A client to use (left open); else one is made from ``scheduler``, or a
        ``LocalCluster`` sized to this machine, and closed at the end.
    partitions : int, optional
        Device partitions (credit tasks); default :func:`default_partitions`.

    Returns
    -------
    DaskImportRun
        The summary (as :func:`beatmap.presence.import_pings` returns it) and
        the seconds of each stage.
    """
    clock: dict[str, float] = {}
    mark = time.perf_counter()
    files = input_files(paths)
    mapping, roster, blocks, folder = prepare_ping_import(
        engine, settings=settings, mapping_path=mapping_path, roster_path=roster_path, crs=crs, now=now
    )
    own_client = client is None
    if own_client:
        client = start_client(scheduler)
    n_out = 0
    try:
        progress(0.02, f"hashing {len(files)} file(s) on the workers")
        hashes = client.gather(client.map(_hash, [str(p.resolve()) for p in files], pure=False))
        earlier = [presence_store.known_ping_file(engine, h) for h in hashes]
        fresh = [i for i, batch in enumerate(earlier) if batch is None and hashes[i] not in hashes[:i]]
        clock["hash"] = time.perf_counter() - mark
        mark = time.perf_counter()
        parts = read_parts([files[i] for i in fresh])
        workers = max(sum(client.nthreads().values()), 1)
        n_out = partitions or default_partitions(parts, workers)
        zone = mapping.timezone or settings.timezone
        with tempfile.TemporaryDirectory(prefix="staging-", dir=folder) as stage_dir:
            progress(0.05, f"reading {len(parts):,} part(s) into {n_out:,} device partition(s) on {workers} thread(s)")
            stats: list[ReadStats] = client.gather(
                client.map(
                    stage_part,
                    parts,
                    range(len(parts)),
                    folder=stage_dir,
                    partitions=n_out,
                    mapping=mapping,
                    zone=zone,
                    max_accuracy_m=settings.max_accuracy_m,
                    pure=False,
                )
            )
            clock["read and shuffle"] = time.perf_counter() - mark
            mark = time.perf_counter()
            firsts = [s.first_ts for s in stats if s.first_ts >= 0]
            first_ts = min(firsts) if firsts else -1
            last_ts = max((s.last_ts for s in stats), default=-1)
            rewrite, context = neighbours(archive.archived_batches(engine), first_ts, last_ts, settings)
            span = credit_span(first_ts, last_ts, rewrite, settings)
            lo, hi = span if span is not None else (0, 0)
            calls = calls_between(engine, lo, hi) if span is not None else None
            index = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
            shared = client.scatter([blocks, index, calls, roster], broadcast=True)
            task = CreditTask(
                folder=stage_dir,
                archive_folder=str(folder),
                reads=len(parts),
                partitions=n_out,
                rules=TrackRules.from_settings(settings),
                settings=settings,
                rewrite=rewrite,
                context=context,
                lo=lo,
                hi=hi,
            )
            progress(0.3, f"crediting {n_out:,} device partition(s)")
            credits = client.map(credit_partition, range(n_out), *[[s] * n_out for s in shared], task=task, pure=False)
            spill = Path(stage_dir) / "presence"
            total, written = _tree(client, credits, str(spill)).result()
            # The presence spilled by the tasks is summed a partition at a time as the store write goes.
            computed = computed_from([total], presence=PresenceSum(spill))
            clock["credit"] = time.perf_counter() - mark
            mark = time.perf_counter()
            progress(0.85, "gathering the raw ping archive")
            writers = {
                number: archive.ArchiveWriter(Path(stage_dir) / f"file_{number}.parquet")
                for number in range(len(fresh))
            }
            try:
                for file_number, piece in written:
                    for group in range(pq.ParquetFile(piece).num_row_groups):
                        frame = pq.ParquetFile(piece).read_row_group(group).to_pandas()
                        for name in (DEVICE_ID, "unit_id", "officer_id", "device_kind"):
                            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
                        writers[file_number].write(frame)
                    Path(piece).unlink()
                progress(0.9, "writing to the store")
                counts = pd.DataFrame(
                    {
                        "file": range(len(fresh)),
                        "rows": [sum(s.rows for s in stats if s.file == n) for n in range(len(fresh))],
                    }
                )
                read_rejects = (
                    pd.concat([s.rejects for s in stats], ignore_index=True)
                    if stats
                    else pd.DataFrame({c: pd.Series(dtype=object) for c in _REJECT_COLUMNS})
                )
                summaries = store_import(
                    engine,
                    files,
                    fresh,
                    hashes,
                    earlier,
                    counts,
                    read_rejects,
                    computed,
                    writers,
                    rewrite,
                    folder,
                    actor=actor,
                    shown=[str(p) for p in files],
                )
            finally:
                for writer in writers.values():
                    writer.discard()
        clock["archive and write"] = time.perf_counter() - mark
    finally:
        if own_client:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    return DaskImportRun(
        summary=import_summary(summaries, computed, rewrite),
        seconds=clock,
        pings=int(computed.used["used"].sum()) if len(computed.used) else 0,
        partitions=n_out,
    )


def default_partitions(parts: Sequence[ReadPart], workers: int) -> int:
    """Device partitions: two per worker thread at least, and one per :data:`beatmap.presence.GROUP_PINGS` rows
    (Parquet rows from the files' metadata; a CSV file's from its size, one per
    :data:`beatmap.pings.PARTITION_BYTES`), so a task holds about what one process credits at a time."""
    rows = sum(_rows(p) for p in parts)
    csv = sum(Path(p.path).stat().st_size for p in parts if p.row_group is None)
    wanted = np.ceil(rows / GROUP_PINGS) + np.ceil(csv / PARTITION_BYTES)
    return int(min(max(2 * workers, wanted), 4096))


def _rows(part: ReadPart) -> int:
    if part.row_group is None:
        return 0
    return int(pq.ParquetFile(part.path).metadata.row_group(part.row_group).num_rows)


def _hash(path: str) -> str:
    return file_hash(Path(path))


def start_client(scheduler: str | None = None) -> Any:
    """A Dask client: of the scheduler at ``scheduler``, else of a ``LocalCluster`` sized to this machine."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler)
    return Client(LocalCluster())
