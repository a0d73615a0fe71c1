"""Activity in the store: import batches, events, rejected rows, and the reads the views use."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Table, func, insert, select, update
from sqlalchemy.engine import Connection

from beatmap.schema import BEAT_ID, BLOCK_ID
from beatmap.store.bind import Bind, connection
from beatmap.store.tables import batches, beats_table, blocks_table, events, rejects_table, streets_table

#: SQLite allows 32766 bound parameters; stay well below for every backend.
_CHUNK = 900


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def add_batch(
    conn: Connection,
    *,
    what: str,
    source: str,
    file_name: str,
    summary: dict,
    imported_by: str | None = None,
    content_hash: str | None = None,
) -> int:
    """Record an import batch (who imported it, the file's SHA-256) and return its id."""
    result = conn.execute(
        insert(batches).values(
            what=what,
            source=source,
            file_name=file_name,
            imported_at=datetime.now(UTC),
            summary=json.dumps(summary),
            imported_by=imported_by,
            content_hash=content_hash,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_batch_summary(conn: Connection, batch_id: int, summary: dict) -> None:
    """Store the final counts of a batch."""
    conn.execute(update(batches).where(batches.c.batch_id == batch_id).values(summary=json.dumps(summary)))


def existing_fingerprints(conn: Connection, table: Table, fingerprints: Iterable[str]) -> set[str]:
    """Which of ``fingerprints`` the table already holds.

    A few are looked up by the unique index; when they are a large share of
    the table (a big import, or the same file again), one read of the whole
    column is quicker than thousands of look-ups.
    """
    wanted = list(fingerprints)
    if not wanted:
        return set()
    held = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    if held == 0:
        return set()
    if len(wanted) * 4 >= held:
        column = conn.exec_driver_sql(f"SELECT fingerprint FROM {table.name}").scalars()
        return set(wanted).intersection(column)
    found: set[str] = set()
    for chunk in _chunks(wanted):
        found.update(conn.execute(select(table.c.fingerprint).where(table.c.fingerprint.in_(chunk))).scalars())
    return found


_EVENT_FIELDS = (
    "fingerprint",
    "row_number",
    "source",
    "source_id",
    "occurred_at",
    "ended_at",
    "duration_min",
    "kind",
    "subtype",
    "officer_id",
    "unit_id",
    "self_initiated",
    "notes",
    "reported_beat",
    "lat",
    "lon",
    BLOCK_ID,
    BEAT_ID,
    "snapped",
    "distance_m",
)


def insert_events(conn: Connection, batch_id: int, records: pd.DataFrame) -> set[str]:
    """Insert activity records (canonical columns plus assignment) for a batch; return the fingerprints written.

    A record whose fingerprint the store already holds is skipped, not an
    error: on PostgreSQL another import may have written it since the caller's
    duplicate check, and the caller counts it as a duplicate.  (On SQLite the
    write transaction began IMMEDIATE, so the check still holds.)

    The rows go in bulk through the driver: ``executemany`` on SQLite (SQLAlchemy's
    per-row parameter processing took most of an import's time: 7.3 of 10.4 s for
    82,000 rows), ``COPY`` into a staging table on PostgreSQL.  Times are written
    exactly as :class:`~beatmap.store.tables.UTCDateTime` writes them.
    """
    if records.empty:
        return set()
    frame = records.reindex(columns=list(_EVENT_FIELDS)).assign(batch_id=batch_id)
    columns = [*_EVENT_FIELDS, "batch_id"]
    postgres = conn.dialect.name == "postgresql"
    names = ", ".join(columns)
    if postgres:
        return _copy_events(conn, _event_rows(frame, columns, postgres=True), names)
    if len(frame) > 50_000:
        # The unique fingerprint index takes keys in random order: with SQLite's default 2 MB page cache a
        # large import rereads index pages for every row.  This connection keeps up to 256 MB instead.
        conn.exec_driver_sql("PRAGMA cache_size = -262144")
    sql = f"INSERT INTO events ({names}) VALUES ({', '.join(['?'] * len(columns))})"
    for start in range(0, len(frame), _ROWS_PER_WRITE):
        # Rows as tuples a slice at a time: the tuples of a whole big file would take more memory than its frame.
        conn.exec_driver_sql(sql, _event_rows(frame.iloc[start : start + _ROWS_PER_WRITE], columns, postgres=False))
    return set(frame["fingerprint"])


#: Rows turned into driver tuples and written at a time.
_ROWS_PER_WRITE = 20_000


def _event_rows(frame: pd.DataFrame, columns: list[str], *, postgres: bool) -> list[tuple[Any, ...]]:
    """The rows of ``frame`` as tuples of driver values (times as :class:`UTCDateTime` writes them)."""
    values = []
    for name in columns:
        column = frame[name]
        if name in ("occurred_at", "ended_at"):
            utc = pd.to_datetime(column, utc=True)
            if postgres:
                out = pd.Series(utc.dt.to_pydatetime(), index=column.index, dtype=object)
            else:
                out = utc.dt.strftime("%Y-%m-%d %H:%M:%S.%f").astype(object)
            values.append(out.where(utc.notna(), None).tolist())
        else:
            values.append(column.astype(object).where(column.notna(), None).tolist())
    return list(zip(*values, strict=True))


def _copy_events(conn: Connection, rows: list[tuple[Any, ...]], names: str) -> set[str]:
    """PostgreSQL: COPY the rows into a staging table, then move the new ones over; their fingerprints."""
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE events_stage ON COMMIT DROP AS SELECT {names} FROM events WITH NO DATA"
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    with cursor.copy(f"COPY events_stage ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    written = (
        conn.exec_driver_sql(
            f"INSERT INTO events ({names}) SELECT {names} FROM events_stage "
            "ON CONFLICT (fingerprint) DO NOTHING RETURNING fingerprint"
        )
        .scalars()
        .all()
    )
    conn.exec_driver_sql("DROP TABLE events_stage")
    return set(written)


def insert_rejects(conn: Connection, batch_id: int, rejects: pd.DataFrame, *, source: str, file_name: str) -> None:
    """Keep rejected rows with their reasons for a batch (each batch its own: a row rejected again by a later
    import is kept again, under that import, with its reason then).

    As row arrays through the driver, not per-row dicts: ``executemany`` on
    SQLite, ``COPY`` into a staging table on PostgreSQL.
    """
    if rejects.empty:
        return
    frame = pd.DataFrame(
        {
            "fingerprint": rejects["fingerprint"].to_numpy(dtype=object),
            "batch_id": batch_id,
            "source": source,
            "file_name": file_name,
            "row_number": rejects["row"].astype("int64").to_numpy(),
            "reason": rejects["reason"].to_numpy(dtype=object),
            "raw": [json.dumps(cells, ensure_ascii=False) for cells in rejects["raw"]],
            **{
                name: (rejects[name] if name in rejects else pd.Series(None, index=rejects.index)).to_numpy(
                    dtype=float if name in ("lat", "lon") else object
                )
                for name in ("lat", "lon", "reported_beat", BEAT_ID)
            },
        }
    )
    columns = list(frame.columns)
    rows = _driver_rows(frame, columns)
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        _copy_to_stage(conn, "rejects", columns, rows)
        conn.exec_driver_sql(f"INSERT INTO rejects ({names}) SELECT {names} FROM rejects_stage")
        conn.exec_driver_sql("DROP TABLE rejects_stage")
        return
    markers = ", ".join(["?"] * len(columns))
    sql = f"INSERT INTO rejects ({names}) VALUES ({markers})"
    for chunk in _chunks(rows, 20000):
        conn.exec_driver_sql(sql, chunk)


def read_reject_places(conn: Connection) -> pd.DataFrame:
    """``reject_id``, ``lat``, ``lon``, ``reported_beat`` of every kept rejected row (to place them again)."""
    rows = conn.exec_driver_sql("SELECT reject_id, lat, lon, reported_beat FROM rejects").all()
    frame = pd.DataFrame(rows, columns=["reject_id", "lat", "lon", "reported_beat"])
    return frame.astype({"lat": float, "lon": float})


def update_reject_beats(conn: Connection, places: pd.DataFrame) -> None:
    """Write ``beat_id`` of kept rejected rows by ``reject_id`` (after the areas changed).

    As :func:`update_assignments`: ``executemany`` on SQLite, ``COPY`` and one ``UPDATE … FROM`` on PostgreSQL.
    """
    if places.empty:
        return
    columns = [BEAT_ID, "reject_id"]
    rows = _driver_rows(places[columns], columns)
    if conn.dialect.name == "postgresql":
        _copy_to_stage(conn, "rejects", columns, rows)
        conn.exec_driver_sql(
            f"UPDATE rejects AS r SET {BEAT_ID} = s.{BEAT_ID} FROM rejects_stage AS s WHERE r.reject_id = s.reject_id"
        )
        conn.exec_driver_sql("DROP TABLE rejects_stage")
        return
    for chunk in _chunks(rows, 20000):
        conn.exec_driver_sql(f"UPDATE rejects SET {BEAT_ID} = ? WHERE reject_id = ?", chunk)


def read_event_locations(conn: Connection) -> pd.DataFrame:
    """``event_id``, ``lat``, ``lon``, ``reported_beat`` of every event (for re-assignment)."""
    rows = conn.exec_driver_sql("SELECT event_id, lat, lon, reported_beat FROM events").all()
    return pd.DataFrame(rows, columns=["event_id", "lat", "lon", "reported_beat"])


def update_assignments(conn: Connection, assignments: pd.DataFrame) -> None:
    """Write ``block_id``, ``beat_id``, ``snapped``, ``distance_m`` for events by ``event_id``.

    As row arrays through the driver: ``executemany`` on SQLite, ``COPY`` into
    a staging table and one ``UPDATE … FROM`` on PostgreSQL.
    """
    if assignments.empty:
        return
    columns = [BLOCK_ID, BEAT_ID, "snapped", "distance_m", "event_id"]
    frame = assignments[columns].copy()
    frame["snapped"] = frame["snapped"].astype(bool)
    rows = _driver_rows(frame, columns)
    if conn.dialect.name == "postgresql":
        _copy_to_stage(conn, "events", columns, rows)
        conn.exec_driver_sql(
            f"UPDATE events AS e SET {BLOCK_ID} = s.{BLOCK_ID}, {BEAT_ID} = s.{BEAT_ID}, snapped = s.snapped, "
            "distance_m = s.distance_m FROM events_stage AS s WHERE e.event_id = s.event_id"
        )
        conn.exec_driver_sql("DROP TABLE events_stage")
        return
    sql = f"UPDATE events SET {BLOCK_ID} = ?, {BEAT_ID} = ?, snapped = ?, distance_m = ? WHERE event_id = ?"
    for chunk in _chunks(rows, 20000):
        conn.exec_driver_sql(sql, chunk)


def _driver_rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The columns of ``frame`` (no times) as the driver's row tuples, None for missing values."""
    values = [frame[name].astype(object).where(frame[name].notna(), None).tolist() for name in columns]
    return list(zip(*values, strict=True))


def _copy_to_stage(conn: Connection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: ``COPY`` rows into ``<table>_stage``, a temporary table of ``table``'s ``columns``."""
    names = ", ".join(columns)
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE {table}_stage ON COMMIT DROP AS SELECT {names} FROM {table} WITH NO DATA"
    )
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(f"COPY {table}_stage ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


#: Columns :func:`read_events` returns by default (no notes, no free text).
EVENT_COLUMNS = (
    "event_id",
    "occurred_at",
    "kind",
    "subtype",
    "officer_id",
    BLOCK_ID,
    BEAT_ID,
    "snapped",
    "duration_min",
)


def read_events(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    beat_id: str | None = None,
    columns: Iterable[str] = EVENT_COLUMNS,
) -> pd.DataFrame:
    """Events with ``start <= occurred_at < end`` (UTC, aware), optionally in one beat.

    Returns
    -------
    DataFrame
        The requested columns; ``occurred_at`` as ``datetime64[ns, UTC]``.
    """
    cols = [events.c[c] for c in columns]
    query = select(*cols).order_by(events.c.event_id)
    if start is not None:
        query = query.where(events.c.occurred_at >= start)
    if end is not None:
        query = query.where(events.c.occurred_at < end)
    if beat_id is not None:
        query = query.where(events.c.beat_id == beat_id)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(columns))
    for name in ("occurred_at", "ended_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def activity_span(engine: Engine) -> tuple[datetime, datetime] | None:
    """First and last ``occurred_at`` in the store (UTC), or None when there is no activity."""
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(events.c.occurred_at), func.max(events.c.occurred_at))).one()
    if first is None:
        return None
    return first, last


def latest_times(engine: Engine, *, limit: int) -> pd.Series:
    """The ``occurred_at`` of the newest ``limit`` events (UTC, newest first), by the time index."""
    query = select(events.c.occurred_at).order_by(events.c.occurred_at.desc()).limit(limit)
    with engine.connect() as conn:
        values = [row[0] for row in conn.execute(query)]
    return pd.Series(pd.to_datetime(values, utc=True), name="occurred_at", dtype="datetime64[ns, UTC]")


def read_rejects(
    engine: Engine,
    *,
    batch_id: int | None = None,
    source: str | None = None,
    beat_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Rejected rows (of one batch or feed): ``batch_id``, ``source``, ``file_name``, ``row_number``, ``reason``,
    ``raw`` (JSON text).  With ``beat_ids``, only the rows placed in those beats (see
    :func:`beatmap.ingest.place_rejects`): a row with no beat is never among them."""
    query = select(
        rejects_table.c.batch_id,
        rejects_table.c.source,
        rejects_table.c.file_name,
        rejects_table.c.row_number,
        rejects_table.c.reason,
        rejects_table.c.raw,
    ).order_by(rejects_table.c.reject_id)
    if batch_id is not None:
        query = query.where(rejects_table.c.batch_id == batch_id)
    if source is not None:
        query = query.where(rejects_table.c.source == source)
    if beat_ids is not None:
        query = query.where(rejects_table.c[BEAT_ID].in_(sorted(set(beat_ids))))
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).all(), columns=["batch_id", "source", "file_name", "row_number", "reason", "raw"]
        )


def counts(bind: Bind) -> dict[str, int]:
    """How many beats, blocks, events, rejects, batches and street segments the store holds."""
    tables = {
        "beats": beats_table,
        "blocks": blocks_table,
        "events": events,
        "rejects": rejects_table,
        "batches": batches,
        "streets": streets_table,
    }
    with connection(bind) as conn:
        return {name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for name, t in tables.items()}


def latest_batch(engine: Engine, what: str) -> dict | None:
    """The last import batch of a kind (``"areas"``, ``"activity"``, ``"streets"``, ``"app"``), or None.

    Returns
    -------
    dict or None
        ``batch_id``, ``what``, ``source``, ``file_name``, ``imported_at``
        (UTC) and ``summary`` (the counts, as a dict).
    """
    query = select(batches).where(batches.c.what == what).order_by(batches.c.batch_id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else {**row, "summary": json.loads(row["summary"])}
