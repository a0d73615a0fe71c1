"""Imports as units a person can see and take back: list them, undo one, replace a feed with a corrected file.

Every activity import is a batch (see :mod:`beatmap.store.batches`).  Undo
removes exactly what a batch added; a record that a later live batch skipped
as a duplicate moves to that batch instead, so it is never lost.  Replace swaps
a feed's records for a corrected file in one transaction.  Both bump the store
version (cached views recompute) and write an audit entry.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from beatmap import store
from beatmap.errors import InputError
from beatmap.ingest import ImportSummary, Progress, import_activity, no_progress
from beatmap.ping_archive import require_archives
from beatmap.settings import Settings
from beatmap.store import presence as presence_store


@dataclass(frozen=True)
class UndoResult:
    """What undoing a batch did."""

    batch_id: int
    file_name: str
    source: str
    removed: int
    moved: int
    moved_to: tuple[int, ...]
    gps_note: str = ""  # presence computed again from the ping archive, or past retention (see beatmap.presence)

    def to_dict(self) -> dict[str, object]:
        """The counts, as ``--json`` prints them."""
        return {
            "batch_id": self.batch_id,
            "file_name": self.file_name,
            "source": self.source,
            "removed": self.removed,
            "moved": self.moved,
            "moved_to": list(self.moved_to),
            "gps_note": self.gps_note,
        }


def list_imports(engine: Engine, *, beat_ids: Collection[str] | None = None, limit: int | None = None) -> pd.DataFrame:
    """The activity and GPS ping imports, newest first: batch, feed, file name, time, who, counts and status.

    A ping import's feed is ``gps``; its "imported" are the pings it used.
    ``beat_ids`` keeps only imports holding records in those beats (a user
    limited to some beats; ping imports are city-wide, so they are left out).
    See :func:`beatmap.store.list_batches`.
    """
    return store.list_batches(engine, what=("activity", "pings"), beat_ids=beat_ids, limit=limit)


def undo_import(engine: Engine, batch_id: int, *, actor: str, settings: Settings | None = None) -> UndoResult:
    """Remove what an activity or ping import added, as one transaction, audited as ``actor``.

    Records a later live import skipped as duplicates move to it instead of
    going.  The batch stays listed as ``undone``, and its rejects leave the
    current listing.  With ``settings``, GPS presence the import's CAD calls
    (or pings) affected is computed again from the ping archive (see
    :mod:`beatmap.presence`); a ping import needs them.

    Raises
    ------
    InputError
        When the batch does not exist, is not an activity import, or was
        already undone or replaced.
    """
    from beatmap import presence

    with engine.connect() as conn:
        batch = store.get_batch(conn, batch_id)
    if batch is not None and batch["what"] == "pings":
        if settings is None:
            raise InputError("undoing a ping import needs the settings (its neighbours' presence is computed again).")
        recomputed = presence.undo_ping_import(engine, batch_id, settings=settings, actor=actor)
        return UndoResult(
            batch_id=batch_id,
            file_name=batch["file_name"],
            source=batch["source"],
            removed=0,
            moved=0,
            moved_to=(),
            gps_note=recomputed.message(),
        )
    calls = presence_store.calls_span(engine, [batch_id]) if settings is not None else None
    if calls is not None and settings is not None:  # its CAD calls' GPS presence is computed again
        require_archives(engine, settings, doing=f"undoing import {batch_id}")
    with store.transaction(engine) as conn:
        batch = store.get_batch(conn, batch_id)
        if batch is None:
            raise InputError(f"there is no import {batch_id}; list the imports to see their numbers.")
        if batch["what"] != "activity":
            raise InputError(
                f"import {batch_id} loaded {batch['what']}, not activity: only activity imports can be "
                "undone (load the areas again to change them)."
            )
        if batch["undone_at"] is not None:
            raise InputError(
                f"import {batch_id} ({batch['file_name']}) was already undone on "
                f"{batch['undone_at']:%Y-%m-%d %H:%M} UTC by {batch['undone_by']}."
            )
        retired = store.retire_batches(conn, [batch_id], actor=actor)
        result = UndoResult(
            batch_id=batch_id,
            file_name=batch["file_name"],
            source=batch["source"],
            removed=retired.removed,
            moved=retired.moved,
            moved_to=retired.moved_to,
        )
        store.record_audit(conn, actor=actor, action="import.undo", target=batch["file_name"], details=result.to_dict())
        store.bump_version(conn)
    if calls is not None and settings is not None:
        note = presence.after_calls_changed(
            engine, [batch_id], settings=settings, reason=f"undo of import {batch_id}", span=calls
        ).message()
        result = UndoResult(**{**result.__dict__, "gps_note": note})
    return result


def replace_import(
    engine: Engine,
    path: str | Path,
    *,
    feed: str,
    settings: Settings,
    mapping_path: str | Path | None = None,
    crs: str | None = None,
    actor: str = "library",
    progress: Progress | None = None,
    file_name: str | None = None,
) -> ImportSummary:
    """Swap every record of ``feed`` for those of a corrected file, as one transaction.

    See :func:`beatmap.ingest.import_activity` (``replace_feed=True``): a file
    that would save nothing leaves the feed as it was.
    """
    return import_activity(
        engine,
        path,
        settings=settings,
        mapping_path=mapping_path,
        crs=crs,
        source=feed,
        actor=actor,
        file_name=file_name,
        replace_feed=True,
        progress=progress if progress is not None else no_progress,
    )


def format_imports(table: pd.DataFrame) -> str:
    """The import list as text, one line per import; nothing is cut (the file name comes last)."""
    if table.empty:
        return "no imports yet"
    feed_w = max(4, *(len(s) for s in table["source"]))
    who_w = max(3, *(len(s) for s in table["imported_by"]))
    header = (
        f"{'batch':>5}  {'when (UTC)':16}  {'feed':{feed_w}}  {'rows':>9} {'imported':>9} {'dupl.':>9} "
        f"{'rejected':>9}  {'who':{who_w}}  {'status':6}  file"
    )
    lines = [header]
    for r in table.itertuples(index=False):
        when = pd.Timestamp(r.imported_at).strftime("%Y-%m-%d %H:%M")
        holds = f" (holds {r.records_now:,})" if r.status == "live" and r.records_now != r.imported else ""
        lines.append(
            f"{r.batch_id:>5}  {when:16}  {r.source:{feed_w}}  {r.rows:>9,} {r.imported:>9,} {r.duplicates:>9,} "
            f"{r.rejected:>9,}  {r.imported_by:{who_w}}  {r.status:6}  {r.file_name}{holds}"
        )
    return "\n".join(lines)


def format_undo(result: UndoResult) -> str:
    """What an undo did, in words."""
    text = (
        f"undid import {result.batch_id} ({result.file_name}, feed {result.source}): removed {result.removed:,} records"
    )
    if result.moved:
        text += (
            f"; kept {result.moved:,} that import(s) {', '.join(map(str, result.moved_to))} had skipped as "
            "duplicates (they now belong to those imports)"
        )
    if result.gps_note:
        text += f". {result.gps_note}"
    return text
