"""Load areas and import activity into the store: the two ways data comes in.

Both run as one transaction: a failure half-way leaves the store as it was.
Both account for every input feature or row in the summary they return.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as replace_fields
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyproj import CRS
from sqlalchemy import Engine

from beatmap import audit, store
from beatmap import schema as S
from beatmap.activity import (
    ROW,
    CarefulReadNeededError,
    Mapping,
    check_columns,
    encoding_note,
    parse_activity,
    read_activity_chunks,
    read_mapping,
    reject_fingerprints,
    resolve_columns,
)
from beatmap.activity_cache import add_activity_part, areas_batch
from beatmap.areas import prepare_areas, read_layer
from beatmap.assign import assign_points
from beatmap.crs import WGS84, parse_crs
from beatmap.errors import BeatmapError, CRSError, InputError
from beatmap.exclusions import check_known, store_exclusions
from beatmap.index import (
    BlockIndex,
    block_index_for,
    build_block_index,
    remember_block_index,
    save_block_index,
)
from beatmap.sanity import at_points, check_records, pileups
from beatmap.settings import Settings

#: ``progress(fraction, message)``: called as long work advances (fraction 0..1).
Progress = Callable[[float, str], None]


def no_progress(_fraction: float, _message: str) -> None:
    return None


@dataclass(frozen=True)
class ImportSummary:
    """What an activity import did with every row it read.

    ``imported + duplicates + rejected == rows`` always holds.  ``snapped``
    and ``outside`` are among ``imported``: located in a street gap and moved
    to the nearest block, or farther than the snap distance from every block.
    ``reject_reasons`` counts the rejected rows per reason (the reason without
    the row's values), most common first; ``reject_examples`` gives up to
    three rows per reason as ``{"row": n, "reason": words with the value}``.
    ``rejects_kept`` is how many rejected rows the store keeps (the first
    ``rejects_kept_per_reason`` of each reason).  A replace names the batches
    it replaced and the records it removed with them.  ``warnings`` are
    the sanity checks of :mod:`beatmap.sanity` on the records added (each
    ``code``, ``message``, ``count``, ``details``), after the reader's own:
    ``encoding_guessed`` (a file with no UTF-8 at all, read as Windows-1252)
    and ``column_left_out`` (an optional column the mapping lists but the
    file lacks).
    """

    file: str
    source: str
    batch_id: int | None
    rows: int
    imported: int
    duplicates: int
    rejected: int
    snapped: int
    outside: int
    ignored_columns: tuple[str, ...] = ()
    reject_reasons: dict[str, int] = field(default_factory=dict)
    reject_examples: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    rejects_kept: int = 0
    replaced_batches: tuple[int, ...] = ()
    records_removed: int = 0
    warnings: tuple[dict[str, object], ...] = ()

    def __post_init__(self) -> None:
        if self.imported + self.duplicates + self.rejected != self.rows:
            raise AssertionError(f"import of {self.file} lost rows: {self}")

    def to_dict(self) -> dict[str, object]:
        """The counts, as the ``--json`` summary prints them."""
        return {
            "file": self.file,
            "source": self.source,
            "batch_id": self.batch_id,
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "snapped": self.snapped,
            "outside": self.outside,
            "ignored_columns": list(self.ignored_columns),
            "reject_reasons": self.reject_reasons,
            "reject_examples": self.reject_examples,
            "rejects_kept": self.rejects_kept,
            "replaced_batches": list(self.replaced_batches),
            "records_removed": self.records_removed,
            "warnings": list(self.warnings),
        }


class ImportFailedError(InputError):
    """An import that saved nothing: every row was rejected, or every located row fell outside the beats.

    ``summary`` holds the counts and the grouped reasons with examples (``batch_id`` is None).
    """

    def __init__(self, message: str, summary: ImportSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class AreasSummary:
    """What an areas load did: the layers kept and a note per feature not used as is."""

    beats: int
    blocks: int
    crs: str
    notes: pd.DataFrame
    events_reassigned: int
    excluded_beats: tuple[str, ...] = ()
    excluded_blocks: int = 0


def load_areas(
    engine: Engine,
    beats_path: str | Path,
    *,
    settings: Settings,
    beat_id_field: str | None = None,
    crs: str | None = None,
    blocks_path: str | Path | None = None,
    block_id_field: str | None = None,
    grid_m: float | None = None,
    progress: Progress = no_progress,
    actor: str = "library",
    exclude_beats: Sequence[str] = (),
) -> AreasSummary:
    """Read, validate and store beats and blocks, replacing any loaded before.

    ``crs`` is the CRS the user states for files that have none.  Activity
    already in the store is assigned again to the new blocks.  ``actor``
    (who loads them) goes to the audit log with the load.  ``exclude_beats``
    (ids of the layer) are left out of the analysis until the next load (see
    :mod:`beatmap.exclusions`).
    """
    from beatmap.ping_archive import require_archives

    try:
        # The GPS presence is credited again to the new blocks from the raw pings: check they are all there first.
        require_archives(engine, settings, doing="loading the areas again")
        loaded = _load_areas(
            engine,
            beats_path,
            settings=settings,
            beat_id_field=beat_id_field,
            crs=crs,
            blocks_path=blocks_path,
            block_id_field=block_id_field,
            grid_m=grid_m,
            progress=progress,
            actor=actor,
            exclude_beats=exclude_beats,
        )
    except BeatmapError as exc:
        _audit_failure(
            engine,
            actor=actor,
            action="import.areas.failed",
            target=f"{beats_path} + {blocks_path or f'grid {grid_m} m'}",
            error=exc,
        )
        raise
    from beatmap.presence import recompute_presence

    recompute_presence(engine, settings=settings, reason="areas loaded again", actor=actor)
    return loaded


def _load_areas(
    engine: Engine,
    beats_path: str | Path,
    *,
    settings: Settings,
    beat_id_field: str | None,
    crs: str | None,
    blocks_path: str | Path | None,
    block_id_field: str | None,
    grid_m: float | None,
    progress: Progress,
    actor: str,
    exclude_beats: Sequence[str],
) -> AreasSummary:
    progress(0.0, "reading beats")
    beats_layer = read_layer(beats_path, crs=crs)
    blocks_layer = read_layer(blocks_path, crs=crs) if blocks_path is not None else None
    progress(0.2, "checking and repairing polygons")
    beats, blocks, notes = prepare_areas(
        beats_layer,
        blocks_layer,
        beat_id_field=beat_id_field,
        block_id_field=block_id_field,
        grid_m=grid_m,
        analysis_crs=settings.analysis_crs,
        beats_source=str(beats_path),
        blocks_source=str(blocks_path),
    )
    excluded = check_known(exclude_beats, set(beats[S.BEAT_ID]), where="--exclude-beats")
    return store_areas(
        engine,
        beats,
        blocks,
        notes,
        settings=settings,
        progress=progress,
        actor=actor,
        exclude_beats=excluded,
        source=str(beats_path),
        file_name=f"{beats_path} + {blocks_path or f'grid {grid_m} m'}",
    )


def store_areas(
    engine: Engine,
    beats: gpd.GeoDataFrame,
    blocks: gpd.GeoDataFrame,
    notes: pd.DataFrame,
    *,
    settings: Settings,
    source: str,
    file_name: str,
    progress: Progress = no_progress,
    actor: str = "library",
    exclude_beats: Sequence[str] = (),
) -> AreasSummary:
    """Write prepared layers (see :func:`beatmap.areas.prepare_areas`) and re-assign activity (audited as ``actor``)."""
    progress(0.4, "building the block index")
    # In the store's row order (sorted by id), so an import reading the blocks back finds this index by its key.
    blocks = blocks.sort_values(S.BLOCK_ID, kind="stable").reset_index(drop=True)
    index = (
        build_block_index(blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
        if not blocks.empty
        else None
    )
    progress(0.5, "writing beats and blocks")
    with store.transaction(engine) as conn:
        batch_id = store.add_batch(
            conn, what="areas", source=source, file_name=file_name, summary={"beats": len(beats), "blocks": len(blocks)}
        )
        store.write_areas(conn, beats, blocks)
        store.write_area_notes(conn, batch_id, notes)
        if index is not None:
            save_block_index(conn, index)
        store_exclusions(conn, exclude_beats)
        progress(0.7, "assigning stored activity to the new blocks")
        located = store.read_event_locations(conn)
        if len(located):
            assigned = assign_points(located, blocks, settings=settings, index=index)
            assigned["event_id"] = located["event_id"].to_numpy()
            store.update_assignments(conn, assigned)
        places = store.read_reject_places(conn)
        if len(places):  # kept rejected rows are shown by the beat they fall in: the new beats now
            store.update_reject_beats(conn, place_rejects(places, blocks, settings=settings, index=index))
        store.record_audit(
            conn,
            actor=actor,
            action="import.areas",
            target=file_name,
            details={
                "batch_id": batch_id,
                "beats": len(beats),
                "blocks": len(blocks),
                "excluded_beats": list(exclude_beats),
                "notes": len(notes),
                "events_reassigned": len(located),
            },
        )
        store.bump_version(conn)
    if index is not None:
        remember_block_index(index)
    progress(1.0, "done")
    return AreasSummary(
        beats=len(beats),
        blocks=len(blocks),
        crs=CRS(beats.crs).name,
        notes=notes,
        events_reassigned=len(located),
        excluded_beats=tuple(exclude_beats),
        excluded_blocks=int(blocks[S.BEAT_ID].isin(list(exclude_beats)).sum()),
    )


def import_activity(
    engine: Engine,
    path: str | Path,
    *,
    settings: Settings,
    mapping_path: str | Path | None = None,
    crs: str | None = None,
    source: str | None = None,
    now: pd.Timestamp | None = None,
    progress: Progress = no_progress,
    actor: str = "library",
    beats: Collection[str] | None = None,
    file_name: str | None = None,
    replace_feed: bool = False,
) -> ImportSummary:
    """Import an activity CSV into the store, as one transaction.

    Parameters
    ----------
    engine : Engine
        The store.
    path : str or Path
        The CSV file.
    settings : Settings
        Time zone of times without offset, snap distance, edge tolerance.
    mapping_path : str or Path, optional
        A mapping file for a foreign export (see ``examples/``).
    crs : str, optional
        CRS of the x/y columns the mapping names, when the mapping has none.
    source : str, optional
        Name of the feed; records with a ``source_id`` are the same record when
        feed and id match.  Default: the mapping's name, else the file's name.
    now : Timestamp, optional
        Reference for rejecting future times (default: the clock).
    progress : callable, optional
        ``progress(fraction, message)``.
    actor : str
        Who imports, for the audit log (``cli:<os user>``, a dashboard user).
    beats : collection of str, optional
        The only beats the importer may add records to (a supervisor of some
        beats).  A new record on another beat, or outside every beat, is
        rejected with that reason.  None: every beat.
    file_name : str, optional
        The name to store and show for the file (an upload's own name), in
        place of ``path`` (a temporary copy); messages name it too.
    replace_feed : bool
        Swap the feed's records for this file's in the same transaction:
        every live batch of the feed ``source`` is retired first (records a
        batch of another feed skipped as duplicates are kept), and their
        rejects are superseded by this import's.

    Returns
    -------
    ImportSummary

    Raises
    ------
    ImportFailedError
        When every row is rejected, or every new located row falls outside
        the beats: nothing is saved, and the message gives the most common
        reason with example rows.
    """
    path = Path(path)
    shown = file_name or str(path)
    from beatmap.ping_archive import require_archives

    try:
        # CAD calls change the GPS presence of the pings they overlap, computed again from the raw pings.
        require_archives(engine, settings, doing=f"importing {shown}")
        replaced_calls = None
        if replace_feed and source:
            from beatmap.presence import feed_calls_span  # GPS code loads only when a feed is replaced

            replaced_calls = feed_calls_span(engine, source)
        summary = _import_activity(
            engine,
            path,
            settings=settings,
            mapping_path=mapping_path,
            crs=crs,
            source=source,
            now=now,
            progress=progress,
            actor=actor,
            file_name=shown,
            replace=replace_feed,
            beats=beats,
        )
    except BeatmapError as exc:
        _audit_failure(engine, actor=actor, action="import.activity.failed", target=shown, error=exc)
        if file_name is None or isinstance(exc, ImportFailedError) or not isinstance(exc, InputError):
            raise
        raise type(exc)(str(exc).replace(str(path), file_name)) from exc  # name the upload, never its copy
    return _gps_after_calls(engine, summary, settings=settings, replaced=replaced_calls)


def _gps_after_calls(
    engine: Engine,
    summary: ImportSummary,
    *,
    settings: Settings,
    replaced: tuple[datetime, datetime] | None = None,
) -> ImportSummary:
    """Compute GPS presence again where the import's CAD calls fall, and where the calls it replaced fell
    (see :mod:`beatmap.presence`); say so."""
    from beatmap.presence import after_calls_changed

    if summary.batch_id is None:
        return summary
    note = after_calls_changed(
        engine,
        [summary.batch_id],
        settings=settings,
        reason=f"CAD calls of import {summary.batch_id}",
        replaced=replaced,
    ).message()
    if not note:
        return summary
    warning = {"code": "gps_presence", "message": note, "count": 0, "details": {}}
    return replace_fields(summary, warnings=(*summary.warnings, warning))


def _audit_failure(engine: Engine, *, actor: str, action: str, target: str, error: BeatmapError) -> None:
    """Record a refused import (nothing was written) in the audit log, with the first line of the reason."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    audit.record(
        engine,
        actor=actor,
        action=action,
        target=target,
        details={"error": type(error).__name__, "reason": reason[:500]},
    )


def _import_activity(
    engine: Engine,
    path: Path,
    *,
    settings: Settings,
    mapping_path: str | Path | None,
    crs: str | None,
    source: str | None,
    now: pd.Timestamp | None,
    progress: Progress,
    actor: str,
    file_name: str,
    replace: bool,
    beats: Collection[str] | None,
) -> ImportSummary:
    """:func:`import_activity` once the file's shown name is settled."""
    mapping = read_mapping(mapping_path) if mapping_path is not None else Mapping()
    mapping = _with_xy_crs(mapping, crs, mapping_path=mapping_path)
    source = source or mapping.name or Path(file_name).stem
    progress(0.05, "reading the file")
    area_bounds = _area_bounds(store.read_beats(engine))
    parse = functools.partial(
        _parse_file,
        path,
        mapping,
        settings=settings,
        source=source,
        now=now,
        area_bounds=area_bounds,
        file_name=file_name,
        progress=progress,
    )
    try:
        parsed = parse(careful=False)
    except CarefulReadNeededError:  # a malformed row deep in the file: read it all again, carefully
        parsed = parse(careful=True)
    mapping, column_notes, ignored, records, rejects = (
        parsed.mapping,
        parsed.column_notes,
        parsed.ignored,
        parsed.records,
        parsed.rejects,
    )
    guessed = parsed.guessed
    if mapping.reject_pileups:
        records = _reject_pileups(path, records, rejects, settings=settings, careful=parsed.careful)
    kept = rejects.kept(settings.rejects_kept_per_reason)
    kept["fingerprint"] = reject_fingerprints(kept, source=source)
    in_file_duplicate = records["fingerprint"].duplicated(keep="first")

    content_hash = file_digest(path)
    progress(0.5, "assigning points to blocks")
    # One transaction from the duplicate check to the last write: two imports of one file at once give one
    # import and one count of duplicates, and the blocks assigned to are the ones stored when it commits.
    with store.transaction(engine) as conn:
        retired, replaced = store.Retired(0, 0, ()), []
        if replace:
            replaced = store.live_batch_ids(conn, source=source)
            if not replaced:
                raise InputError(
                    f"{file_name}: feed {source!r} has no import to replace; import the file as a new "
                    "feed instead, or name the feed it corrects."
                )
            retired = store.retire_batches(conn, replaced, actor=actor)
        known = store.event_ids_by_fingerprint(conn, records["fingerprint"])
        duplicate = in_file_duplicate | records["fingerprint"].isin(known)
        new = records[~duplicate].copy()
        blocks = store.read_blocks(conn)
        index = (
            block_index_for(conn, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
            if not blocks.empty
            else None
        )
        new = new.join(assign_points(new, blocks, settings=settings, index=index))
        refused = 0  # rows on beats that are not the importer's become rejects, with the reason
        if beats is not None:
            new, moved = _keep_to_beats(
                new,
                path,
                beats=beats,
                source=source,
                per_reason=settings.rejects_kept_per_reason,
                careful=parsed.careful,
            )
            rejects.add(moved)
            kept = pd.concat([kept, moved.head(settings.rejects_kept_per_reason)], ignore_index=True)
            refused = len(moved)
        kept = place_rejects(kept, blocks, settings=settings, index=index)
        new["row_number"] = new.index
        outside = int(new[S.BLOCK_ID].isna().sum())
        warnings = check_records(
            new,
            beat_ids=set(blocks[S.BEAT_ID]) if not blocks.empty else set(),
            now=now if now is not None else pd.Timestamp.now(tz="UTC"),
            pileup_share=settings.pileup_share,
            pileup_min=settings.pileup_min,
        )
        summary = ImportSummary(
            file=file_name,
            source=source,
            batch_id=None,
            rows=parsed.rows,
            imported=len(new),
            duplicates=int(duplicate.sum()),
            rejected=rejects.total,
            snapped=int(new["snapped"].sum()),
            outside=outside,
            ignored_columns=tuple(ignored),
            reject_reasons=rejects.counts(),
            reject_examples=rejects.examples(),
            rejects_kept=len(kept),
            replaced_batches=tuple(replaced),
            records_removed=retired.removed,
            warnings=(
                *(
                    [
                        {
                            "code": "encoding_guessed",
                            "message": guessed,
                            "count": parsed.rows,
                            "details": {"encoding": "cp1252"},
                        }
                    ]
                    if guessed
                    else []
                ),
                *({"code": "column_left_out", "message": note, "count": 0, "details": {}} for note in column_notes),
                *(w.to_dict() for w in warnings),
            ),
        )
        _fail_if_nothing_usable(summary, new, areas_loaded=not blocks.empty)
        batch_id = store.add_batch(
            conn,
            what="activity",
            source=source,
            file_name=file_name,
            summary={},
            imported_by=actor,
            content_hash=content_hash,
        )
        earlier = replaced or store.same_file_batches(conn, source=source, content_hash=content_hash, before=batch_id)
        store.supersede_rejects(conn, by_batch=batch_id, batch_ids=earlier)
        progress(0.7, f"writing {len(new):,} records")
        written = store.insert_events(conn, batch_id, new)
        if len(written) < len(new):  # written by another import since the check (PostgreSQL): duplicates too
            new = new[new["fingerprint"].isin(written)]
        skipped = records.loc[duplicate, "fingerprint"].map(known).dropna()
        store.record_skipped(conn, batch_id, skipped.astype(int))
        store.insert_rejects(conn, batch_id, kept, source=source, file_name=file_name)
        summary = replace_fields(
            summary,
            batch_id=batch_id,
            imported=len(new),
            duplicates=len(records) - len(new) - refused,
            rejected=rejects.total,
            snapped=int(new["snapped"].sum()),
            outside=int(new[S.BLOCK_ID].isna().sum()),
            reject_reasons=rejects.counts(),
            reject_examples=rejects.examples(),
            rejects_kept=len(kept),
        )
        # The beats the import touched (records added, rejected rows kept): whose import history lists it.
        touched = {str(b) for b in pd.concat([new[S.BEAT_ID], kept[S.BEAT_ID]]).dropna().unique()}
        store.set_batch_summary(conn, batch_id, {**summary.to_dict(), "beats": sorted(touched)})
        details = {k: v for k, v in summary.to_dict().items() if k not in ("file", "reject_examples")}
        store.record_audit(
            conn,
            actor=actor,
            action="import.replace" if replace else "import.activity",
            target=file_name,
            details=details,
        )
        areas = areas_batch(conn)
        store.bump_version(conn)
    # The dashboard's cache gets this batch's part from the rows just written, none read back.
    add_activity_part(engine, batch_id, new, timezone=settings.timezone, areas_batch=areas)
    progress(1.0, "done")
    return summary


def _keep_to_beats(
    new: pd.DataFrame, path: Path, *, beats: Collection[str], source: str, per_reason: int, careful: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off the new records that fall outside ``beats``: the records kept, and the moved rows as rejects
    (with the reason; the cells of the first ``per_reason``, read again from the file)."""
    allowed = sorted(set(beats))
    outside = ~new[S.BEAT_ID].isin(allowed)
    if not outside.any():
        return new, _no_rejects()
    yours = ", ".join(allowed) or "none"
    beat = new.loc[outside, S.BEAT_ID]
    on_other = (
        "on beat '"
        + beat.fillna("").astype(str)
        + (f"', not one of your beats ({yours}); a supervisor of that beat or of all beats imports it")
    )
    reason = on_other.where(
        beat.notna(), f"outside every beat; your beats are {yours}: a supervisor of all beats imports such rows"
    )
    rows = new.index[outside]
    moved = pd.DataFrame(
        {
            ROW: rows,
            "reason": reason.to_numpy(),
            "raw": _cells_of(path, rows, first=per_reason, careful=careful),
            **{c: new.loc[outside, c].to_numpy() for c in (S.LAT, S.LON, S.REPORTED_BEAT, S.BEAT_ID)},
        }
    )
    moved["group"] = "on a beat that is not one of the importer's"
    moved["fingerprint"] = reject_fingerprints(moved, source=source)
    return new[~outside].copy(), moved


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame({ROW: pd.Series(dtype="int64"), "reason": [], "group": [], "raw": []})


def _cells_of(path: Path, rows: pd.Index, *, first: int, careful: bool) -> list[dict[str, object] | None]:
    """The cells of the first ``first`` of ``rows`` (row numbers, ascending) as dicts, None for the others:
    the file is read again in pieces rather than kept whole."""
    wanted = set(rows[:first].tolist())
    found: dict[int, dict[str, object]] = {}
    if wanted:
        for raw in read_activity_chunks(path, careful=careful):
            hit = raw.index[raw.index.isin(list(wanted))]
            if len(hit):
                found.update(zip(hit.tolist(), raw.loc[hit].to_dict(orient="records"), strict=True))
            if len(found) == len(wanted):
                break
    return [found.get(int(r)) for r in rows]


@dataclass(frozen=True)
class _ParsedFile:
    """A file read and checked piece by piece: its records in full, its rejects bounded."""

    mapping: Mapping
    column_notes: list[str]
    ignored: list[str]
    rows: int
    records: pd.DataFrame
    rejects: RejectTally
    careful: bool
    guessed: str | None


def _parse_file(
    path: Path,
    mapping: Mapping,
    *,
    settings: Settings,
    source: str,
    now: pd.Timestamp | None,
    area_bounds: tuple[float, float, float, float] | None,
    file_name: str,
    progress: Progress,
    careful: bool,
) -> _ParsedFile:
    """Read ``path`` in pieces (:func:`beatmap.activity.read_activity_chunks`) and check every row.

    Only the usable records are kept whole; the raw cells of a piece are
    dropped once it is checked, and the rejects are counted per reason with
    the first rows of each (:class:`RejectTally`).
    """
    tally = RejectTally(max(settings.rejects_kept_per_reason, 3))
    parts: list[pd.DataFrame] = []
    notes: list[str] = []
    ignored: list[str] = []
    rows = 0
    guessed = None
    for raw in read_activity_chunks(path, careful=careful):
        if not rows:
            guessed = encoding_note(raw, file=file_name)
            mapping, notes = resolve_columns(mapping, list(raw.columns))
            ignored = check_columns(raw, mapping, source=file_name)
        records, rejects = parse_activity(
            raw,
            mapping,
            timezone=settings.timezone,
            source=source,
            now=now,
            area_bounds=area_bounds,
            raw_per_reason=settings.rejects_kept_per_reason,
        )
        parts.append(records)
        tally.add(rejects)
        rows += len(raw)
        progress(0.2, f"checked {rows:,} rows")
    return _ParsedFile(
        mapping=mapping,
        column_notes=notes,
        ignored=ignored,
        rows=rows,
        records=pd.concat(parts) if len(parts) > 1 else parts[0],
        rejects=tally,
        careful=careful,
        guessed=guessed,
    )


class RejectTally:
    """Rejected rows, bounded: the count of each reason (``group``) and the first ``keep`` rows of each.

    Rows are added in file order (piece by piece); the counts and examples are
    those :func:`reason_counts` and :func:`reason_examples` give on all the
    rows, and :meth:`kept` the rows the store keeps.
    """

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.total = 0
        self._counts: dict[str, int] = {}
        self._first: dict[str, int] = {}
        self.head = _no_rejects()

    def add(self, rejects: pd.DataFrame) -> None:
        """Count ``rejects`` (``row``, ``reason``, ``group``, ``raw``) and keep the first of each reason."""
        if rejects.empty:
            return
        self.total += len(rejects)
        for group, count in rejects["group"].value_counts(sort=False).items():
            self._counts[str(group)] = self._counts.get(str(group), 0) + int(count)
        for group, row in rejects.groupby("group", sort=False)[ROW].min().items():
            self._first[str(group)] = min(self._first.get(str(group), int(row)), int(row))
        both = pd.concat([self.head, rejects], ignore_index=True) if len(self.head) else rejects
        both = both.sort_values(ROW, kind="stable")
        self.head = both.groupby("group", sort=False).head(self.keep).reset_index(drop=True)

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason, most common first (as :func:`reason_counts`)."""
        order = sorted(self._counts, key=lambda g: (-self._counts[g], self._first[g]))
        return {g: self._counts[g] for g in order}

    def examples(self, per_reason: int = 3) -> dict[str, list[dict[str, object]]]:
        """The first ``per_reason`` rows of each reason (as :func:`reason_examples`)."""
        return reason_examples(self.head, per_reason=per_reason)

    def kept(self, per_reason: int) -> pd.DataFrame:
        """The first ``per_reason`` rejected rows of each reason, in file order: the ones the store keeps."""
        return self.head.groupby("group", sort=False).head(per_reason).copy()


def place_rejects(
    rejects: pd.DataFrame, blocks: gpd.GeoDataFrame, *, settings: Settings, index: BlockIndex | None = None
) -> pd.DataFrame:
    """``rejects`` with ``beat_id``: where each rejected row is, so it is shown to that beat's supervisors.

    The beat of the row's point among ``blocks`` (as a record there would be
    assigned), else the beat the row reports; missing when it has neither (such
    a row is shown only to supervisors of all beats).  A ``beat_id`` already
    given (a row refused for being on another's beat) is kept.
    """
    out = rejects.copy()
    for column in (S.LAT, S.LON, S.REPORTED_BEAT, S.BEAT_ID):
        if column not in out:
            out[column] = None
    out[[S.LAT, S.LON]] = out[[S.LAT, S.LON]].astype(float)
    beat = out[S.BEAT_ID].astype(object)
    todo = beat.isna() & out[S.LAT].notna() & out[S.LON].notna()
    if todo.any() and not blocks.empty:
        beat[todo] = assign_points(out[todo], blocks, settings=settings, index=index)[S.BEAT_ID].astype(object)
    reported = out[S.REPORTED_BEAT].astype(object)
    out[S.BEAT_ID] = beat.where(beat.notna(), reported.where(reported.notna() & (reported != ""), None))
    return out


def _area_bounds(beats: gpd.GeoDataFrame, *, margin_deg: float = 0.1) -> tuple[float, float, float, float] | None:
    """The beats' extent in WGS84, widened by about 10 km, or None before any are loaded."""
    if beats.empty:
        return None
    west, south, east, north = beats.to_crs(WGS84).total_bounds
    return west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg


def _with_xy_crs(mapping: Mapping, crs: str | None, *, mapping_path: str | Path | None) -> Mapping:
    """Settle the CRS of the coordinates: the mapping's, or the one stated with ``--crs``."""
    if crs is None:
        if mapping.x and not mapping.xy_crs:
            raise CRSError(
                f"{mapping_path}: the mapping reads x/y columns but does not say their CRS; "
                'add crs = "EPSG:..." under [coordinates] or give --crs.'
            )
        return mapping
    stated = parse_crs(crs)
    if not mapping.x:
        if not stated.equals(WGS84, ignore_axis_order=True):
            raise InputError(
                "--crs applies to x/y columns named in a mapping's [coordinates]; lat/lon columns "
                "are WGS84 longitude/latitude by definition. Drop --crs or use a mapping with x/y."
            )
        return mapping
    if mapping.xy_crs and not parse_crs(mapping.xy_crs).equals(stated, ignore_axis_order=True):
        raise CRSError(
            f"{mapping_path}: the mapping says x/y are in {mapping.xy_crs} but --crs says {crs}; drop one of them."
        )
    return replace_fields(mapping, xy_crs=crs)


def _reject_pileups(
    path: Path, records: pd.DataFrame, rejects: RejectTally, *, settings: Settings, careful: bool
) -> pd.DataFrame:
    """Move the records on pile-up points (see :func:`beatmap.sanity.pileups`) to the rejects; the rest."""
    piles = pileups(records, share=settings.pileup_share, minimum=settings.pileup_min)
    hit = at_points(records, piles)
    if not hit.any():
        return records
    moved = records[hit]
    rounded = moved[S.LAT].round(5).astype(str) + "," + moved[S.LON].round(5).astype(str)
    size = rounded.map(rounded.value_counts())
    why = "a pile-up point (reject_pileups in the mapping): the geocoder's stand-in, not where it happened"
    reason = "point " + rounded + " holds " + size.astype(str) + " rows: " + why
    extra = pd.DataFrame(
        {
            ROW: moved.index,
            "reason": reason.to_numpy(),
            "group": f"point … holds many rows: {why}",
            "raw": _cells_of(path, moved.index, first=settings.rejects_kept_per_reason, careful=careful),
            **{c: moved[c].to_numpy() for c in (S.LAT, S.LON, S.REPORTED_BEAT)},
        }
    )
    rejects.add(extra)
    return records[~hit]


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in pieces (the same file imported again is recognised by it)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def reason_counts(rejects: pd.DataFrame) -> dict[str, int]:
    """Rejected rows per reason (``group``: the reason without the row's values), most common first."""
    if rejects.empty:
        return {}
    return {str(k): int(v) for k, v in rejects["group"].value_counts(sort=True).items()}


def reason_examples(rejects: pd.DataFrame, *, per_reason: int = 3) -> dict[str, list[dict[str, object]]]:
    """The first ``per_reason`` rows of each reason: ``{"row": n, "reason": the row's own words}``."""
    if rejects.empty:
        return {}
    firsts = rejects.groupby("group", sort=False).head(per_reason)
    out: dict[str, list[dict[str, object]]] = {}
    for group, row, reason in zip(firsts["group"], firsts[ROW], firsts["reason"], strict=True):
        out.setdefault(str(group), []).append({"row": int(row), "reason": str(reason)})
    return out


def _fail_if_nothing_usable(summary: ImportSummary, new: pd.DataFrame, *, areas_loaded: bool) -> None:
    """Raise :class:`ImportFailedError` when the import would save nothing a person can use.

    Before any areas are loaded every point is "outside": that is no failure (they are assigned when areas come).
    """
    guessed = "".join(f" {w['message']}" for w in summary.warnings if w["code"] == "encoding_guessed")
    if summary.rows and summary.rejected == summary.rows:
        group, count = next(iter(summary.reject_reasons.items()))
        examples = "; ".join(f"row {e['row']}: {e['reason']}" for e in summary.reject_examples[group])
        others = len(summary.reject_reasons) - 1
        raise ImportFailedError(
            f"{summary.file}: all {summary.rows:,} rows were rejected, so nothing was imported. Most common reason "
            f"({count:,} rows): {group}. For example {examples}."
            + (f" ({others} other reason(s) too.)" if others else "")
            + guessed,
            summary,
        )
    if areas_loaded and summary.imported and summary.duplicates == 0 and summary.outside == summary.imported:
        examples = "; ".join(
            f"row {r} at {lat:.5f},{lon:.5f}"
            for r, lat, lon in zip(new["row_number"].head(3), new[S.LAT].head(3), new[S.LON].head(3), strict=True)
        )
        raise ImportFailedError(
            f"{summary.file}: every one of the {summary.imported:,} located rows falls outside every beat, so "
            f"nothing was imported. For example {examples} (latitude,longitude). Check that the file is of this "
            "city's area, that latitude and longitude are not swapped, and, for x/y columns, their CRS." + guessed,
            summary,
        )
