"""The raw ping archive: one compact Parquet file per ping import batch, kept for ``retain_pings_days``.

Within retention the archive is what presence is computed again from (a CAD
file imported after its pings, a reload of the areas, an undo), and what a
new import's pings are ordered and checked for duplicates against.  Past
retention the retention sweep deletes the file and only the aggregates
remain.  No page reads the archive.

Where it lives: for a SQLite store, the folder ``<store>.pings`` beside the
database file (``data/beatmap.db`` keeps ``data/beatmap.db.pings/``); for a
PostgreSQL store, the ``ping_archive_dir`` setting (``[gps]``), which must
be a folder every machine that imports or recomputes can write.

An archive holds the used pings of the batch (after duplicates, jumps and
the roster) as ``device_id, ts, lon, lat, unit_id, officer_id,
device_kind`` plus ``poor``: fixes rejected for poor accuracy are kept too
(flagged, never credited) so the device-day quality figures can be computed
again.  Rows are grouped by device partition (see :func:`partition_of`), so
a computation can read one group of devices at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, select, update

from beatmap.errors import InputError, StoreError
from beatmap.schema import LAT, LON, OFFICER_ID, UNIT_ID
from beatmap.settings import Settings
from beatmap.store.audit import record_audit
from beatmap.store.bind import connection
from beatmap.store.engine import transaction
from beatmap.store.tables import ping_files
from beatmap.tracks import DEVICE_ID, DEVICE_KIND, TS

#: Columns of an archive file.
ARCHIVE_COLUMNS: tuple[str, ...] = (DEVICE_ID, TS, LON, LAT, UNIT_ID, OFFICER_ID, DEVICE_KIND, "poor")
_SCHEMA = pa.schema(
    [
        (DEVICE_ID, pa.dictionary(pa.int32(), pa.string())),
        (TS, pa.int64()),
        (LON, pa.float64()),
        (LAT, pa.float64()),
        (UNIT_ID, pa.dictionary(pa.int32(), pa.string())),
        (OFFICER_ID, pa.dictionary(pa.int32(), pa.string())),
        (DEVICE_KIND, pa.dictionary(pa.int32(), pa.string())),
        ("poor", pa.bool_()),
    ]
)


def archive_dir(engine: Engine, settings: Settings) -> Path:
    """The store's ping archive folder (created when missing).

    Raises
    ------
    InputError
        For a PostgreSQL store without ``ping_archive_dir`` in the settings.
    """
    if settings.ping_archive_dir:
        folder = Path(settings.ping_archive_dir).expanduser()
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        folder = Path(f"{engine.url.database}.pings")
    else:
        raise InputError(
            "a PostgreSQL store keeps the raw ping archive in a folder: set ping_archive_dir under [gps] in the "
            "settings file (a folder every machine that imports pings can write), then import again."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def partition_of(devices: pd.Series | np.ndarray, partitions: int) -> np.ndarray:
    """The partition (0 .. ``partitions - 1``) of each device id: a fixed hash, the same in every process."""
    values = np.asarray(pd.Series(devices).astype(str).to_numpy(), dtype=object)
    if partitions <= 1 or not len(values):
        return np.zeros(len(values), dtype=np.int64)
    return (pd.util.hash_array(values) % np.uint64(partitions)).astype(np.int64)


def archive_name(batch_id: int) -> str:
    """The archive file name of a batch."""
    return f"batch_{batch_id}.parquet"


class ArchiveWriter:
    """Writes one batch's archive, a group of devices at a time, to a temporary file until :meth:`publish`."""

    #: Tables waiting to be written at most: the encoding and compression run in a thread of their own (Arrow
    #: releases the interpreter's lock there) while the caller credits the next group.
    PENDING = 2

    def __init__(self, partial: Path) -> None:
        self.partial = partial
        self._writer: pq.ParquetWriter | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []

    def write(self, pings: pd.DataFrame) -> None:
        """Add pings (:data:`ARCHIVE_COLUMNS`; ``poor`` optional), as the caller orders them (by device and time)."""
        if pings.empty:
            return
        frame = pings.assign(poor=pings["poor"] if "poor" in pings.columns else False)
        arrays = []
        for name in ARCHIVE_COLUMNS:
            values = frame[name]
            if name in (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND) and isinstance(values.dtype, pd.CategoricalDtype):
                codes = values.cat.codes.to_numpy().astype(np.int32)
                categories = pa.array(np.asarray(values.cat.categories, dtype=object), type=pa.string())
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0), categories))
            elif name in (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND):
                text = values.astype(object).where(values.notna(), None).to_numpy(dtype=object)
                arrays.append(pa.array(text, type=pa.string()).dictionary_encode())
            else:
                arrays.append(pa.array(values.to_numpy(), type=_SCHEMA.field(name).type))
        table = pa.Table.from_arrays(arrays, schema=_SCHEMA)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, _SCHEMA, compression="zstd")
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ping-archive")
        assert self._thread is not None
        while len(self._pending) >= self.PENDING:
            self._pending.pop(0).result()
        self._pending.append(self._thread.submit(self._writer.write_table, table, row_group_size=1 << 20))

    def _drain(self) -> None:
        """Wait for the tables in flight (raising what writing one raised) and stop the thread."""
        try:
            while self._pending:
                self._pending.pop(0).result()
        finally:
            self._pending.clear()
            if self._thread is not None:
                self._thread.shutdown(wait=True)
                self._thread = None

    def close(self) -> bool:
        """Finish the file; False when nothing was written."""
        if self._writer is None:
            return False
        try:
            self._drain()
        finally:
            self._writer.close()
            self._writer = None
        return True

    def publish(self, target: Path) -> None:
        """Move the finished file to its final name (after the store's transaction committed)."""
        if self.partial.exists():
            self.partial.replace(target)

    def discard(self) -> None:
        """Drop the file (the import failed)."""
        if self._writer is not None:
            with contextlib.suppress(Exception):  # the file is dropped: what went wrong writing it no longer matters
                self._drain()
            self._writer.close()
            self._writer = None
        self.partial.unlink(missing_ok=True)


def read_archive(
    path: Path,
    *,
    partitions: int = 1,
    chosen: Iterable[int] | None = None,
    start: int | None = None,
    end: int | None = None,
) -> pd.DataFrame:
    """Pings of an archive: of the devices in the ``chosen`` partitions, with ``start <= ts < end``.

    Read a row group at a time, so memory follows what is kept.
    """
    keep_parts = None if chosen is None else np.asarray(sorted(set(chosen)), dtype=np.int64)
    frames = []
    reader = pq.ParquetFile(path)
    for group in range(reader.num_row_groups):
        table = reader.read_row_group(group)
        device = table.column(DEVICE_ID).combine_chunks()
        mask = np.ones(len(table), dtype=bool)
        if keep_parts is not None and partitions > 1:
            dictionary = device.dictionary.to_numpy(zero_copy_only=False)
            part = partition_of(dictionary, partitions)
            mask &= np.isin(part, keep_parts)[device.indices.to_numpy(zero_copy_only=False)]
        ts = table.column(TS).to_numpy()
        if start is not None:
            mask &= ts >= start
        if end is not None:
            mask &= ts < end
        if mask.any():
            frames.append(table.filter(pa.array(mask)).to_pandas())
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in ARCHIVE_COLUMNS}).astype(
            {TS: np.int64, LON: float, LAT: float, "poor": bool}
        )
    out = pd.concat(frames, ignore_index=True)
    for name in (DEVICE_ID, UNIT_ID, OFFICER_ID, DEVICE_KIND):
        out[name] = out[name].astype(object).where(out[name].notna(), None)
    return out


def retention_start(settings: Settings, now: datetime | None = None) -> pd.Timestamp:
    """The oldest ping time still kept raw: ``retain_pings_days`` before now."""
    moment = pd.Timestamp(now if now is not None else datetime.now().astimezone())
    if moment.tzinfo is None:
        moment = moment.tz_localize("UTC")
    return moment.tz_convert("UTC") - timedelta(days=settings.retain_pings_days)


def sweep_archive(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[int]:
    """Delete the archives whose newest ping is older than the retention; the batches whose archive went.

    Also removes files an interrupted import left half-written.
    """
    folder = archive_dir(engine, settings)
    horizon = retention_start(settings, now).to_pydatetime()
    with transaction(engine) as conn:
        old = conn.execute(
            select(ping_files.c.batch_id, ping_files.c.archive).where(
                ping_files.c.archive.is_not(None), ping_files.c.last_ping < horizon
            )
        ).all()
        if old:
            conn.execute(update(ping_files).where(ping_files.c.batch_id.in_([b for b, _ in old])).values(archive=None))
    for _batch, name in old:
        (folder / name).unlink(missing_ok=True)
    for stale in folder.glob("*.partial"):
        if (datetime.now().timestamp() - stale.stat().st_mtime) > 86_400:
            stale.unlink(missing_ok=True)
    return [int(b) for b, _ in old]


def missing_archives(engine: Engine, settings: Settings, *, now: datetime | None = None) -> list[tuple[int, Path]]:
    """The ping imports within retention whose archive file the store names but the folder lacks.

    The archive lives in a folder beside the store, not in the database: a store copied or restored
    without that folder has lost its raw pings.
    """
    horizon = retention_start(settings, now).to_pydatetime()
    t = ping_files
    query = select(t.c.batch_id, t.c.archive).where(t.c.archive.is_not(None), t.c.last_ping >= horizon)
    with connection(engine) as conn:
        named = conn.execute(query.order_by(t.c.batch_id)).all()
    if not named:
        return []
    folder = archive_dir(engine, settings)
    return [(int(batch), folder / str(name)) for batch, name in named if not (folder / str(name)).is_file()]


def require_archives(
    engine: Engine, settings: Settings, *, doing: str, now: datetime | None = None, keep_going: Iterable[int] = ()
) -> None:
    """Refuse ``doing`` (which reads or recomputes from the raw pings) while an archive file is missing
    (other than those of the ``keep_going`` imports, which it does not need).

    Raises
    ------
    StoreError
        Naming the imports, the files and the two ways out; nothing has been changed.
    """
    unneeded = set(keep_going)
    missing = [(batch, path) for batch, path in missing_archives(engine, settings, now=now) if batch not in unneeded]
    if not missing:
        return
    shown = ", ".join(f"import {batch} ({path.name})" for batch, path in missing[:5])
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    raise StoreError(
        f"{doing} needs the raw GPS pings kept in {missing[0][1].parent}, but the archive of {shown}{more} is "
        "missing; nothing was changed. The folder is not inside the database: put it back beside the store (copy "
        "it with every backup or move of the store), then try again. If it is lost for good, `beatmap gps-archive "
        "--forget-missing` treats those imports as past retention (their presence stays; it is not computed again)."
    )


def forget_missing(engine: Engine, settings: Settings, *, actor: str, now: datetime | None = None) -> list[int]:
    """Mark the imports whose archive file is missing as having none (as past retention), audited as ``actor``;
    their batch ids."""
    missing = missing_archives(engine, settings, now=now)
    if missing:
        batches = [batch for batch, _ in missing]
        with transaction(engine) as conn:
            conn.execute(update(ping_files).where(ping_files.c.batch_id.in_(batches)).values(archive=None))
            record_audit(
                conn,
                actor=actor,
                action="gps.archive.forget_missing",
                target=str(missing[0][1].parent),
                details={"batches": batches, "files": [path.name for _, path in missing]},
            )
    return [batch for batch, _ in missing]


def archived_batches(engine: Engine) -> pd.DataFrame:
    """Ping batches whose archive is kept: ``batch_id, archive, first_ping, last_ping, used`` (seconds for times)."""
    t = ping_files
    query = select(t.c.batch_id, t.c.archive, t.c.first_ping, t.c.last_ping, t.c.used).where(t.c.archive.is_not(None))
    with connection(engine) as conn:
        rows = conn.execute(query.order_by(t.c.batch_id)).all()
    frame = pd.DataFrame(rows, columns=["batch_id", "archive", "first_ping", "last_ping", "used"])
    for name in ("first_ping", "last_ping"):
        stamps = pd.to_datetime(frame[name], utc=True)
        frame[name] = ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).astype(np.int64)
    return frame
