"""Import batches as units: list them, retire them (undo, replace), supersede their rejects, keep skipped duplicates.

A batch is "live" until it is undone or replaced (``undone_at``).  Its
rejected rows are "current" while the batch is live and no later import of the
same file, or a replace, superseded them (``superseded_by``).  When a batch
skipped a record as a duplicate of a stored one, :data:`skipped_duplicates`
says so, and retiring the batch that added the record moves it to the earliest
live batch that skipped it, so no record another batch brought is ever lost.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from sqlalchemy import Engine, and_, delete, exists, func, select, update
from sqlalchemy.engine import Connection

from beatmap.schema import BEAT_ID
from beatmap.store.tables import batches, events, ping_files, rejects_table, skipped_duplicates

#: Columns of :func:`list_batches`.
BATCH_COLUMNS = (
    "batch_id",
    "what",
    "source",
    "file_name",
    "imported_at",
    "imported_by",
    "rows",
    "imported",
    "duplicates",
    "rejected",
    "outside",
    "records_now",
    "status",
)


def _chunks(items: Sequence, size: int = 900) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Retired:
    """What retiring batches did: records removed, and records moved to a batch that had skipped them."""

    removed: int
    moved: int
    moved_to: tuple[int, ...]


def event_ids_by_fingerprint(conn: Connection, fingerprints: Iterable[str]) -> dict[str, int]:
    """The stored events' ids for those of ``fingerprints`` the store holds.

    Through the driver (SQLAlchemy compiling an ``IN`` of 900 literals per
    query took longer than the look-ups): one array parameter on PostgreSQL,
    large chunks of markers on SQLite.
    """
    keys = list(dict.fromkeys(fingerprints))
    found: dict[str, int] = {}
    if not keys:
        return found
    if conn.dialect.name == "postgresql":
        query = "SELECT fingerprint, event_id FROM events WHERE fingerprint = ANY(%(keys)s)"
        found.update(conn.exec_driver_sql(query, {"keys": keys}).all())
        return found
    for chunk in _chunks(keys, 10_000):
        query = f"SELECT fingerprint, event_id FROM events WHERE fingerprint IN ({', '.join(['?'] * len(chunk))})"
        found.update(conn.exec_driver_sql(query, tuple(chunk)).all())
    return found


def record_skipped(conn: Connection, batch_id: int, event_ids: Iterable[int]) -> None:
    """Note that ``batch_id`` skipped these stored events as duplicates."""
    rows = [(batch_id, int(e)) for e in sorted(set(event_ids))]
    marker = "%s" if conn.dialect.name == "postgresql" else "?"
    sql = f"INSERT INTO skipped_duplicates (batch_id, event_id) VALUES ({marker}, {marker})"
    for chunk in _chunks(rows, 10000):  # as tuples through the driver: per-row dicts cost more than the writes
        conn.exec_driver_sql(sql, list(chunk))


def get_batch(conn: Connection, batch_id: int) -> dict | None:
    """One batch's row (``summary`` as a dict), or None."""
    row = conn.execute(select(batches).where(batches.c.batch_id == batch_id)).mappings().first()
    return None if row is None else {**row, "summary": json.loads(row["summary"] or "{}")}


def live_batch_ids(conn: Connection, *, source: str, what: str = "activity") -> list[int]:
    """The live (not undone) batches of one feed, oldest first."""
    query = (
        select(batches.c.batch_id)
        .where(batches.c.what == what, batches.c.source == source, batches.c.undone_at.is_(None))
        .order_by(batches.c.batch_id)
    )
    return [int(b) for b in conn.execute(query).scalars()]


def supersede_rejects(conn: Connection, *, by_batch: int, batch_ids: Collection[int]) -> None:
    """Mark the rejects of ``batch_ids`` as replaced by those of ``by_batch`` (left out of current listings)."""
    if batch_ids:
        conn.execute(
            update(batches)
            .where(
                batches.c.batch_id.in_(list(batch_ids)),
                batches.c.batch_id != by_batch,
                batches.c.superseded_by.is_(None),
            )
            .values(superseded_by=by_batch)
        )


def same_file_batches(conn: Connection, *, source: str, content_hash: str, before: int) -> list[int]:
    """Earlier live batches of the feed that imported a file with the same content."""
    query = select(batches.c.batch_id).where(
        batches.c.what == "activity",
        batches.c.source == source,
        batches.c.content_hash == content_hash,
        batches.c.batch_id < before,
        batches.c.undone_at.is_(None),
    )
    return [int(b) for b in conn.execute(query).scalars()]


def retire_batches(
    conn: Connection, batch_ids: Collection[int], *, actor: str, superseded_by: int | None = None
) -> Retired:
    """Remove what the batches added, keeping any record a live batch outside them skipped as a duplicate.

    Such a record moves to the earliest of those batches (which becomes the
    one that brought it).  The batches are marked undone (by ``actor``, now)
    and, with ``superseded_by``, their rejects superseded.  Runs inside the
    caller's transaction.
    """
    retiring = sorted({int(b) for b in batch_ids})
    if not retiring:
        return Retired(0, 0, ())
    ours = select(events.c.event_id).where(events.c.batch_id.in_(retiring))
    takers = (
        select(skipped_duplicates.c.event_id, func.min(skipped_duplicates.c.batch_id).label("taker"))
        .join(batches, batches.c.batch_id == skipped_duplicates.c.batch_id)
        .where(
            skipped_duplicates.c.event_id.in_(ours),
            batches.c.undone_at.is_(None),
            skipped_duplicates.c.batch_id.notin_(retiring),
        )
        .group_by(skipped_duplicates.c.event_id)
    )
    moves = conn.execute(takers).all()
    for event_id, taker in moves:
        conn.execute(update(events).where(events.c.event_id == event_id).values(batch_id=taker, row_number=None))
        conn.execute(
            delete(skipped_duplicates).where(
                skipped_duplicates.c.event_id == event_id, skipped_duplicates.c.batch_id == taker
            )
        )
    conn.execute(delete(skipped_duplicates).where(skipped_duplicates.c.batch_id.in_(retiring)))
    conn.execute(delete(skipped_duplicates).where(skipped_duplicates.c.event_id.in_(ours)))
    removed = conn.execute(delete(events).where(events.c.batch_id.in_(retiring))).rowcount
    values: dict[str, object] = {"undone_at": datetime.now(UTC), "undone_by": actor}
    conn.execute(update(batches).where(batches.c.batch_id.in_(retiring)).values(**values))
    if superseded_by is not None:
        supersede_rejects(conn, by_batch=superseded_by, batch_ids=retiring)
    return Retired(removed=int(removed or 0), moved=len(moves), moved_to=tuple(sorted({int(t) for _, t in moves})))


def list_batches(
    engine: Engine,
    *,
    what: str | Collection[str] | None = "activity",
    beat_ids: Collection[str] | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Import batches, newest first, with their counts: one row per batch (columns :data:`BATCH_COLUMNS`).

    ``status`` is ``live``, ``undone`` or ``replaced``; ``records_now`` is how
    many records the batch holds today (fewer than ``imported`` after an undo
    of it, more when records moved to it).  With ``beat_ids``, only batches
    that touched those beats (for a user limited to some beats): that hold a
    record or a kept rejected row there now, or that added records or kept
    rejected rows there when imported (the beats in their summary; an undone
    import holds no record any more).
    """
    held = select(func.count()).where(events.c.batch_id == batches.c.batch_id).scalar_subquery()
    pings = [ping_files.c[k].label(f"ping_{k}") for k in ("rows", "used", "duplicates", "rejected")]
    query = (
        select(batches, held.label("records_now"), *pings)
        .select_from(batches.outerjoin(ping_files, ping_files.c.batch_id == batches.c.batch_id))
        .order_by(batches.c.batch_id.desc())
    )
    if isinstance(what, str):
        query = query.where(batches.c.what == what)
    elif what is not None:
        query = query.where(batches.c.what.in_(sorted(what)))
    wanted = sorted(set(beat_ids)) if beat_ids is not None else None
    if wanted is not None:
        holds = (
            exists().where(and_(events.c.batch_id == batches.c.batch_id, events.c[BEAT_ID].in_(wanted)))
            | exists().where(and_(rejects_table.c.batch_id == batches.c.batch_id, rejects_table.c[BEAT_ID].in_(wanted)))
        ).label("holds")
        query = query.add_columns(holds)
    elif limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out: list[dict[str, object]] = []
    for row in rows:
        summary = json.loads(row["summary"] or "{}")
        if wanted is not None:
            if not (row["holds"] or set(summary.get("beats", ())) & set(wanted)):
                continue
            if limit is not None and len(out) >= limit:
                break
        status = "live" if row["undone_at"] is None else ("replaced" if row["superseded_by"] else "undone")
        if row["what"] == "pings":
            # A ping import's counts are its file's (kept until an undo forgets the file); it holds no records,
            # its pings are presence: "records now" counts the pings it credits while live.
            counts = {"rows": row["ping_rows"], "imported": row["ping_used"], "duplicates": row["ping_duplicates"]}
            counts["rejected"] = row["ping_rejected"]
            summary = {**{k: v for k, v in counts.items() if v is not None}, **summary}
            held_now = int(summary.get("imported", 0) or 0) if status == "live" else 0
        else:
            held_now = int(row["records_now"])
        out.append(
            {
                "batch_id": row["batch_id"],
                "what": row["what"],
                "source": row["source"],
                "file_name": row["file_name"],
                "imported_at": row["imported_at"],
                "imported_by": row["imported_by"] or "",
                **{k: int(summary.get(k, 0) or 0) for k in ("rows", "imported", "duplicates", "rejected", "outside")},
                "records_now": held_now,
                "status": status,
            }
        )
    return pd.DataFrame(out, columns=list(BATCH_COLUMNS))


def read_current_rejects(
    engine: Engine, *, source: str | None = None, beat_ids: Collection[str] | None = None
) -> pd.DataFrame:
    """The rejected rows still to act on: of live batches whose rejects no later import superseded.

    A row rejected by several such batches (an overlapping next export) is
    listed once, under the newest.  Columns as :func:`beatmap.store.read_rejects`;
    with ``beat_ids``, only the rows placed in those beats.
    """
    newest = (
        select(func.max(rejects_table.c.reject_id))
        .join(batches, batches.c.batch_id == rejects_table.c.batch_id)
        .where(batches.c.undone_at.is_(None), batches.c.superseded_by.is_(None))
        .group_by(rejects_table.c.fingerprint)
    )
    if source is not None:
        newest = newest.where(rejects_table.c.source == source)
    query = (
        select(
            rejects_table.c.batch_id,
            rejects_table.c.source,
            rejects_table.c.file_name,
            rejects_table.c.row_number,
            rejects_table.c.reason,
            rejects_table.c.raw,
        )
        .where(rejects_table.c.reject_id.in_(newest))
        .order_by(rejects_table.c.reject_id)
    )
    if beat_ids is not None:
        query = query.where(rejects_table.c[BEAT_ID].in_(sorted(set(beat_ids))))
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).all(), columns=["batch_id", "source", "file_name", "row_number", "reason", "raw"]
        )
