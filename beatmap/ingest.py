"""Load areas and import activity into the store: the two ways data comes in.

Both run as one transaction: a failure half-way leaves the store as it was.
Both account for every input feature or row in the summary they return.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyproj import CRS
from sqlalchemy import Engine

from beatmap import audit, store
from beatmap import schema as S
from beatmap.activity import (
    ROW,
    Mapping,
    check_columns,
    parse_activity,
    read_activity_csv,
    read_mapping,
    reject_fingerprints,
)
from beatmap.activity_cache import add_activity_part, areas_batch
from beatmap.areas import prepare_areas, read_layer
from beatmap.assign import assign_points
from beatmap.crs import WGS84, parse_crs
from beatmap.errors import BeatmapError, CRSError, InputError
from beatmap.index import (
    block_index_for,
    build_block_index,
    remember_block_index,
    save_block_index,
)
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

    def __post_init__(self) -> None:
        if self.imported + self.duplicates + self.rejected != self.rows:
            raise AssertionError(f"import of {self.file} lost rows: {self}")

    def to_dict(self) -> dict[str, object]:
        """The counts, as the ``--json`` summary prints them."""
        return {"file": self.file, "source": self.source, "batch_id": self.batch_id, "rows": self.rows,
                "imported": self.imported, "duplicates": self.duplicates, "rejected": self.rejected,
                "snapped": self.snapped, "outside": self.outside, "ignored_columns": list(self.ignored_columns),
                "reject_reasons": self.reject_reasons}


@dataclass(frozen=True)
class AreasSummary:
    """What an areas load did: the layers kept and a note per feature not used as is."""

    beats: int
    blocks: int
    crs: str
    notes: pd.DataFrame
    events_reassigned: int


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
) -> AreasSummary:
    """Read, validate and store beats and blocks, replacing any loaded before.

    ``crs`` is the CRS the user states for files that have none.  Activity
    already in the store is assigned again to the new blocks.  ``actor``
    (who loads them) goes to the audit log with the load.
    """
    try:
        return _load_areas(engine, beats_path, settings=settings, beat_id_field=beat_id_field, crs=crs,
                           blocks_path=blocks_path, block_id_field=block_id_field, grid_m=grid_m, progress=progress,
                           actor=actor)
    except BeatmapError as exc:
        _audit_failure(engine, actor=actor, action="import.areas.failed",
                       target=f"{beats_path} + {blocks_path or f'grid {grid_m} m'}", error=exc)
        raise


def _load_areas(engine: Engine, beats_path: str | Path, *, settings: Settings, beat_id_field: str | None,
                crs: str | None, blocks_path: str | Path | None, block_id_field: str | None, grid_m: float | None,
                progress: Progress, actor: str) -> AreasSummary:
    progress(0.0, "reading beats")
    beats_layer = read_layer(beats_path, crs=crs)
    blocks_layer = read_layer(blocks_path, crs=crs) if blocks_path is not None else None
    progress(0.2, "checking and repairing polygons")
    beats, blocks, notes = prepare_areas(
        beats_layer, blocks_layer, beat_id_field=beat_id_field, block_id_field=block_id_field, grid_m=grid_m,
        analysis_crs=settings.analysis_crs, beats_source=str(beats_path), blocks_source=str(blocks_path),
    )
    return store_areas(engine, beats, blocks, notes, settings=settings, progress=progress, actor=actor,
                       source=str(beats_path), file_name=f"{beats_path} + {blocks_path or f'grid {grid_m} m'}")


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
) -> AreasSummary:
    """Write prepared layers (see :func:`beatmap.areas.prepare_areas`) and re-assign activity (audited as ``actor``)."""
    progress(0.4, "building the block index")
    # In the store's row order (sorted by id), so an import reading the blocks back finds this index by its key.
    blocks = blocks.sort_values(S.BLOCK_ID, kind="stable").reset_index(drop=True)
    index = (build_block_index(blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
             if not blocks.empty else None)
    progress(0.5, "writing beats and blocks")
    with store.transaction(engine) as conn:
        batch_id = store.add_batch(conn, what="areas", source=source, file_name=file_name,
                                   summary={"beats": len(beats), "blocks": len(blocks)})
        store.write_areas(conn, beats, blocks)
        store.write_area_notes(conn, batch_id, notes)
        if index is not None:
            save_block_index(conn, index)
        progress(0.7, "assigning stored activity to the new blocks")
        located = store.read_event_locations(conn)
        if len(located):
            assigned = assign_points(located, blocks, settings=settings, index=index)
            assigned["event_id"] = located["event_id"].to_numpy()
            store.update_assignments(conn, assigned)
        store.record_audit(conn, actor=actor, action="import.areas", target=file_name,
                           details={"batch_id": batch_id, "beats": len(beats), "blocks": len(blocks),
                                    "notes": len(notes), "events_reassigned": len(located)})
        store.bump_version(conn)
    if index is not None:
        remember_block_index(index)
    progress(1.0, "done")
    return AreasSummary(beats=len(beats), blocks=len(blocks), crs=CRS(beats.crs).name, notes=notes,
                        events_reassigned=len(located))


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

    Returns
    -------
    ImportSummary
    """
    try:
        return _import_activity(engine, Path(path), settings=settings, mapping_path=mapping_path, crs=crs,
                                source=source, now=now, progress=progress, actor=actor, beats=beats)
    except BeatmapError as exc:
        _audit_failure(engine, actor=actor, action="import.activity.failed", target=str(path), error=exc)
        raise


def _audit_failure(engine: Engine, *, actor: str, action: str, target: str, error: BeatmapError) -> None:
    """Record a refused import (nothing was written) in the audit log, with the first line of the reason."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    audit.record(engine, actor=actor, action=action, target=target,
                 details={"error": type(error).__name__, "reason": reason[:500]})


def _import_activity(engine: Engine, path: Path, *, settings: Settings, mapping_path: str | Path | None,
                     crs: str | None, source: str | None, now: pd.Timestamp | None, progress: Progress, actor: str,
                     beats: Collection[str] | None) -> ImportSummary:
    mapping = read_mapping(mapping_path) if mapping_path is not None else Mapping()
    mapping = _with_xy_crs(mapping, crs, mapping_path=mapping_path)
    source = source or mapping.name or path.stem
    progress(0.05, "reading the file")
    raw = read_activity_csv(path)
    ignored = check_columns(raw, mapping, source=str(path))
    progress(0.2, f"checking {len(raw):,} rows")
    records, rejects = parse_activity(raw, mapping, timezone=settings.timezone, source=source, now=now,
                                      area_bounds=_area_bounds(store.read_beats(engine)))
    rejects["fingerprint"] = reject_fingerprints(rejects, source=source)
    in_file_duplicate = records["fingerprint"].duplicated(keep="first")

    progress(0.5, "assigning points to blocks")
    # One transaction from the duplicate check to the last write: two imports of one file at once give one
    # import and one count of duplicates, and the blocks assigned to are the ones stored when it commits.
    with store.transaction(engine) as conn:
        known = store.existing_fingerprints(conn, store.events, records["fingerprint"])
        duplicate = in_file_duplicate | records["fingerprint"].isin(known)
        new = records[~duplicate].copy()
        blocks = store.read_blocks(conn)
        index = (block_index_for(conn, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
                 if not blocks.empty else None)
        new = new.join(assign_points(new, blocks, settings=settings, index=index))
        refused = 0  # rows on beats that are not the importer's (counted among the rejects)
        if beats is not None:
            new, rejects, refused = _keep_to_beats(new, rejects, raw, beats=beats, source=source)
        new["row_number"] = new.index
        batch_id = store.add_batch(conn, what="activity", source=source, file_name=str(path), summary={})
        progress(0.7, f"writing {len(new):,} records")
        written = store.insert_events(conn, batch_id, new)
        if len(written) < len(new):  # written by another import since the check (PostgreSQL): duplicates too
            new = new[new["fingerprint"].isin(written)]
        known_rejects = store.existing_fingerprints(conn, store.rejects_table, rejects["fingerprint"])
        store.insert_rejects(conn, batch_id, rejects[~rejects["fingerprint"].isin(known_rejects)],
                             source=source, file_name=str(path))
        summary = ImportSummary(
            file=str(path), source=source, batch_id=batch_id, rows=len(raw), imported=len(new),
            duplicates=len(records) - len(new) - refused, rejected=len(rejects),
            snapped=int(new["snapped"].sum()), outside=int(new[S.BLOCK_ID].isna().sum()),
            ignored_columns=tuple(ignored),
            reject_reasons=_reason_counts(rejects),
        )
        store.set_batch_summary(conn, batch_id, summary.to_dict())
        store.record_audit(conn, actor=actor, action="import.activity", target=str(path),
                           details={k: v for k, v in summary.to_dict().items() if k != "file"})
        areas = areas_batch(conn)
        store.bump_version(conn)
    # The dashboard's cache gets this batch's part from the rows just written, none read back.
    add_activity_part(engine, batch_id, new, timezone=settings.timezone, areas_batch=areas)
    progress(1.0, "done")
    return summary


def _keep_to_beats(new: pd.DataFrame, rejects: pd.DataFrame, raw: pd.DataFrame, *, beats: Collection[str],
                   source: str) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Move the new records that fall outside ``beats`` to the rejects, with the reason; and how many moved."""
    allowed = sorted(set(beats))
    outside = ~new[S.BEAT_ID].isin(allowed)
    if not outside.any():
        return new, rejects, 0
    yours = ", ".join(allowed) or "none"
    beat = new.loc[outside, S.BEAT_ID]
    on_other = "on beat '" + beat.fillna("").astype(str) + (f"', not one of your beats ({yours}); a supervisor "
                                                            "of that beat or of all beats imports it")
    reason = on_other.where(beat.notna(), f"outside every beat; your beats are {yours}: a supervisor of all beats "
                                          "imports such rows")
    moved = pd.DataFrame({ROW: new.index[outside], "reason": reason.to_numpy(),
                          "raw": raw.loc[new.index[outside]].to_dict(orient="records")})
    moved["fingerprint"] = reject_fingerprints(moved, source=source)
    return new[~outside].copy(), pd.concat([rejects, moved], ignore_index=True), int(outside.sum())


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
            raise CRSError(f"{mapping_path}: the mapping reads x/y columns but does not say their CRS; "
                           "add crs = \"EPSG:...\" under [coordinates] or give --crs.")
        return mapping
    stated = parse_crs(crs)
    if not mapping.x:
        if not stated.equals(WGS84, ignore_axis_order=True):
            raise InputError("--crs applies to x/y columns named in a mapping's [coordinates]; lat/lon columns "
                             "are WGS84 longitude/latitude by definition. Drop --crs or use a mapping with x/y.")
        return mapping
    if mapping.xy_crs and not parse_crs(mapping.xy_crs).equals(stated, ignore_axis_order=True):
        raise CRSError(f"{mapping_path}: the mapping says x/y are in {mapping.xy_crs} but --crs says {crs}; "
                       "drop one of them.")
    return replace(mapping, xy_crs=crs)


def _reason_counts(rejects: pd.DataFrame, *, top: int = 10) -> dict[str, int]:
    """The most common reasons, with the quoted values taken out so like groups with like."""
    if rejects.empty:
        return {}
    general = rejects["reason"].str.replace(r"'[^']*'", "…", regex=True).str.replace(
        r"coordinates [^ ]+ ", "coordinates … ", regex=True)
    return {str(k): int(v) for k, v in general.value_counts().head(top).items()}
