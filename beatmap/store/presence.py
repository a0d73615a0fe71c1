"""GPS presence in the store: aggregates, ping files, device-day quality and track visits.

Only aggregates are kept: no table holds a ping (the raw pings of the last
``retain_pings_days`` are in the archive files of :mod:`beatmap.ping_archive`).
Views read these tables.
"""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection

from beatmap.store.bind import Bind, connection
from beatmap.store.tables import (
    batches,
    device_days,
    events,
    ping_files,
    presence_devices,
    presence_table,
    track_visits,
)

PRESENCE_COLUMNS = ("block_id", "hour", "unit_id", "officer_id", "mode", "purpose", "seconds")
VISIT_COLUMNS = (
    "device_id",
    "unit_id",
    "officer_id",
    "block_id",
    "beat_id",
    "start",
    "end",
    "seconds",
    "enforcement_seconds",
)
#: Devices credited non-enforcement time per block and local week (its Monday; the public map's three-device rule).
BLOCK_DEVICE_COLUMNS = ("block_id", "week", "device_id")
DEVICE_DAY_COLUMNS = (
    "device_id",
    "day",
    "pings",
    "median_interval_s",
    "gap_minutes",
    "longest_silence_minutes",
    "outside_share",
    "poor_accuracy_share",
)


def known_ping_file(bind: Bind, content_hash: str) -> int | None:
    """The batch that imported a ping file with this content, or None."""
    with connection(bind) as conn:
        found = conn.execute(select(ping_files.c.batch_id).where(ping_files.c.content_hash == content_hash))
        value = found.scalar_one_or_none()
    return None if value is None else int(value)


def write_ping_file(
    conn: Connection,
    batch_id: int,
    *,
    content_hash: str,
    rows: int,
    used: int,
    duplicates: int,
    rejected: int,
    first_ping: datetime | None,
    last_ping: datetime | None,
    archive: str | None = None,
) -> None:
    """Record one imported ping file (inside the import's transaction), with its archive's file name."""
    conn.execute(
        insert(ping_files).values(
            batch_id=batch_id,
            content_hash=content_hash,
            rows=rows,
            used=used,
            duplicates=duplicates,
            rejected=rejected,
            first_ping=first_ping,
            last_ping=last_ping,
            archive=archive,
        )
    )


def _records(frame: pd.DataFrame, columns: tuple[str, ...], batch_id: int) -> list[dict]:
    out = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    records = out.to_dict("records")
    for record in records:
        record["batch_id"] = batch_id
        for key, value in record.items():
            if isinstance(value, pd.Timestamp):
                record[key] = value.to_pydatetime()
            elif hasattr(value, "item"):
                record[key] = value.item()
    return records


def write_presence(conn: Connection, batch_id: int | None, presence: pd.DataFrame) -> None:
    """Add a batch's presence rows (:data:`PRESENCE_COLUMNS`), as row tuples through the driver.

    With ``batch_id`` None, each row's ``batch_id`` column says its batch.

    A large import writes a row per block, hour, unit, officer, mode and
    purpose; tuples through ``executemany`` take a fraction of the time of
    per-row dictionaries.
    """
    if presence.empty:
        return
    names = "batch_id, block_id, hour, unit_id, officer_id, mode, purpose, seconds"
    marker = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO presence ({names}) VALUES ({', '.join([marker] * 8)})"
    for start in range(0, len(presence), 50_000):  # tuples for a slice at a time: memory stays small
        part = presence.iloc[start : start + 50_000]
        # Hours repeat: each distinct one is formatted once.
        codes, hours = pd.factorize(pd.to_datetime(part["hour"], utc=True))
        if conn.dialect.name == "sqlite":  # as SQLAlchemy's SQLite DateTime stores UTC times
            texts = np.asarray(hours.strftime("%Y-%m-%d %H:%M:%S.000000"), dtype=object)
        else:
            texts = np.asarray([t.to_pydatetime() for t in hours], dtype=object)
        hour_values = texts[codes].tolist()
        columns = [
            part[c].astype(object).where(part[c].notna(), None).tolist()
            for c in ("block_id", "unit_id", "officer_id", "mode", "purpose")
        ]
        seconds = part["seconds"].astype("int64").tolist()
        batches = [batch_id] * len(part) if batch_id is not None else part["batch_id"].astype("int64").tolist()
        rows = list(zip(batches, columns[0], hour_values, *columns[1:], seconds, strict=True))
        conn.exec_driver_sql(sql, rows)


def write_track_visits(conn: Connection, batch_id: int, visits: pd.DataFrame) -> None:
    """Add a batch's track visits (:data:`VISIT_COLUMNS`)."""
    if not visits.empty:
        conn.execute(insert(track_visits), _records(visits, VISIT_COLUMNS, batch_id))


def write_device_days(conn: Connection, batch_id: int, days: pd.DataFrame) -> None:
    """Add a batch's device-day quality figures (:data:`DEVICE_DAY_COLUMNS`)."""
    if not days.empty:
        conn.execute(insert(device_days), _records(days, DEVICE_DAY_COLUMNS, batch_id))


def write_block_devices(conn: Connection, batch_id: int | None, rows: pd.DataFrame) -> None:
    """Add devices per block and local week (:data:`BLOCK_DEVICE_COLUMNS`; distinct rows), as row tuples through
    the driver (a large import writes millions); with ``batch_id`` None, each row's ``batch_id`` says its batch."""
    if rows.empty:
        return
    marker = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO presence_devices (batch_id, block_id, week, device_id) VALUES ({', '.join([marker] * 4)})"
    for start in range(0, len(rows), 100_000):
        part = rows.iloc[start : start + 100_000]
        batches = [batch_id] * len(part) if batch_id is not None else part["batch_id"].astype("int64").tolist()
        columns = [part[c].astype(str).tolist() for c in BLOCK_DEVICE_COLUMNS]
        conn.exec_driver_sql(sql, list(zip(batches, *columns, strict=True)))


def block_device_counts(bind: Bind, *, first_day: str, last_day: str) -> pd.Series:
    """Distinct devices credited non-enforcement time on each block in the local weeks that start from
    ``first_day`` to ``last_day`` (ISO dates, inclusive: a period of whole weeks from its Monday to its Sunday),
    across batches; blocks with none are left out."""
    t = presence_devices
    query = (
        select(t.c.block_id, func.count(func.distinct(t.c.device_id)))
        .where(t.c.week >= first_day, t.c.week <= last_day)
        .group_by(t.c.block_id)
    )
    with connection(bind) as conn:
        rows = conn.execute(query).all()
    return pd.Series({str(b): int(n) for b, n in rows}, dtype="int64", name="devices")


def read_presence(bind: Bind, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Presence seconds summed over batches, per block, hour, unit, officer, mode and purpose, in ``[start, end)``."""
    t = presence_table
    keys = [t.c.block_id, t.c.hour, t.c.unit_id, t.c.officer_id, t.c.mode, t.c.purpose]
    query = select(*keys, func.sum(t.c.seconds)).group_by(*keys)
    if start is not None:
        query = query.where(t.c.hour >= start)
    if end is not None:
        query = query.where(t.c.hour < end)
    with connection(bind) as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(PRESENCE_COLUMNS))
    frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
    frame["seconds"] = frame["seconds"].astype("int64")
    return frame


def read_track_visits(bind: Bind, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """Track visits starting in ``[start, end)``."""
    t = track_visits
    query = select(*[t.c[c] for c in VISIT_COLUMNS]).order_by(t.c.visit_id)
    if start is not None:
        query = query.where(t.c.start >= start)
    if end is not None:
        query = query.where(t.c.start < end)
    with connection(bind) as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(VISIT_COLUMNS))
    for name in ("start", "end"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def read_device_days(bind: Bind) -> pd.DataFrame:
    """Device-day quality figures of every batch."""
    query = select(*[device_days.c[c] for c in DEVICE_DAY_COLUMNS]).order_by(device_days.c.day, device_days.c.device_id)
    with connection(bind) as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=list(DEVICE_DAY_COLUMNS))


def delete_derived(conn: Connection, batch_ids: list[int]) -> None:
    """Remove the presence (and its devices), track visits and device-day figures of ping batches (before
    computing them again)."""
    if not batch_ids:
        return
    for table in (presence_table, track_visits, device_days, presence_devices):
        conn.execute(delete(table).where(table.c.batch_id.in_(batch_ids)))


def forget_ping_file(conn: Connection, batch_id: int) -> str | None:
    """Remove an undone batch's derived rows and its ping file record (so the file can be imported again).

    Returns the name of its archive file, if it had one.
    """
    t = ping_files
    row = conn.execute(
        select(t.c.archive, t.c.rows, t.c.used, t.c.duplicates, t.c.rejected).where(t.c.batch_id == batch_id)
    ).one_or_none()
    archive = None if row is None else row.archive
    if row is not None:  # the import list keeps showing what the undone import had read
        counts = {"rows": row.rows, "imported": row.used, "duplicates": row.duplicates, "rejected": row.rejected}
        summary = conn.execute(select(batches.c.summary).where(batches.c.batch_id == batch_id)).scalar_one_or_none()
        kept = {**json.loads(summary or "{}"), **counts}
        conn.execute(update(batches).where(batches.c.batch_id == batch_id).values(summary=json.dumps(kept)))
    delete_derived(conn, [batch_id])
    conn.execute(delete(ping_files).where(ping_files.c.batch_id == batch_id))
    return None if archive is None else str(archive)


def set_archive(conn: Connection, batch_id: int, archive: str | None) -> None:
    """Record a batch's archive file (or None once it is gone)."""
    conn.execute(update(ping_files).where(ping_files.c.batch_id == batch_id).values(archive=archive))


def ping_spans(bind: Bind) -> pd.DataFrame:
    """Every imported ping file: ``batch_id, first_ping, last_ping, archive`` (None once swept)."""
    t = ping_files
    with connection(bind) as conn:
        rows = conn.execute(select(t.c.batch_id, t.c.first_ping, t.c.last_ping, t.c.archive)).all()
    frame = pd.DataFrame(rows, columns=["batch_id", "first_ping", "last_ping", "archive"])
    for name in ("first_ping", "last_ping"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def calls_span(bind: Bind, batch_ids: list[int]) -> tuple[datetime, datetime] | None:
    """The times the CAD calls (enforcement with a unit) of activity batches cover: first dispatch, last clear."""
    e = events
    query = select(func.min(e.c.occurred_at), func.max(func.coalesce(e.c.ended_at, e.c.occurred_at))).where(
        e.c.batch_id.in_(batch_ids), e.c.kind == "enforcement", e.c.unit_id.is_not(None)
    )
    with connection(bind) as conn:
        first, last = conn.execute(query).one()
    if first is None:
        return None
    return _utc(first), _utc(last)


def _utc(value: datetime) -> datetime:
    stamp = pd.Timestamp(value)
    return (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")).to_pydatetime()
