"""Import GPS ping files: read, assign, segment, credit, aggregate and store presence.

``beatmap import-pings FILE...`` runs :func:`import_pings`.  The files of one
import are read together (a device's pings are ordered across them), then
each file is written in a transaction of its own: its import batch, its
presence aggregates (an interval counts under the file of its first ping),
its track visits, its device-day quality figures and its rejected rows.  A
file whose content was imported before is skipped, so importing twice
changes nothing.

CAD calls come from the store: activity of kind ``enforcement`` with a
``unit_id`` (imported with ``beatmap import``), from ``occurred_at`` to
``ended_at``.  Raw pings are not kept.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from beatmap import store
from beatmap.crs import parse_crs
from beatmap.errors import InputError
from beatmap.index import block_index_for
from beatmap.pings import PingMapping, project_pings, read_ping_mapping, read_pings, read_roster
from beatmap.schema import ENFORCEMENT, KIND, UNIT_ID
from beatmap.settings import Settings
from beatmap.store import presence as presence_store
from beatmap.tracks import DEVICE_ID, TS, TrackCredit, TrackRules, credit_tracks, device_codes

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
        }


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
) -> PingImportSummary:
    """Import GPS ping files into the store's presence aggregates.

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

    Returns
    -------
    PingImportSummary
    """
    files = [Path(p) for p in paths]
    for path in files:
        if not path.exists():
            raise InputError(f"{path}: file not found. Check the path.")
    mapping = read_ping_mapping(mapping_path) if mapping_path is not None else PingMapping()
    if crs is not None:
        parse_crs(crs)
        mapping = PingMapping(**{**mapping.__dict__, "x": mapping.x or "x", "y": mapping.y or "y", "xy_crs": crs})
    roster = read_roster(roster_path, timezone=mapping.timezone or settings.timezone) if roster_path else None
    blocks = store.read_blocks(engine)
    if blocks.empty:
        raise InputError("no blocks in the store: load beats and blocks first (beatmap areas ...), then import pings.")
    hashes = [file_hash(p) for p in files]
    earlier = [presence_store.known_ping_file(engine, h) for h in hashes]
    fresh = [i for i, batch in enumerate(earlier) if batch is None and hashes[i] not in hashes[:i]]
    progress(0.05, f"reading {len(fresh)} file(s)")
    read = read_pings(
        [files[i] for i in fresh],
        settings=settings,
        mapping=mapping,
        roster=roster,
        progress=lambda f, m: progress(0.05 + 0.45 * f, m),
        **({"chunk_rows": chunk_rows} if chunk_rows else {}),
    )
    progress(0.5, f"crediting {len(read.pings):,} pings")
    index = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    calls = _calls(engine, read.pings, settings)
    credit = credit_tracks(
        project_pings(read.pings, blocks.crs),
        blocks,
        rules=TrackRules.from_settings(settings),
        calls=calls,
        index=index,
        extra_keys=("file",),
    )
    quality = device_day_quality(credit, read.rejects, settings=settings)
    summaries: list[PingFileSummary] = []
    for i, path in enumerate(files):
        if i not in fresh:
            prior = (
                f"batch {earlier[i]}" if earlier[i] is not None else f"{files[hashes.index(hashes[i])]} in this import"
            )
            summaries.append(
                PingFileSummary(
                    file=str(path), batch_id=None, rows=0, used=0, duplicates=0, rejected=0, already_imported=prior
                )
            )
            continue
        number = fresh.index(i)
        summaries.append(
            _write_file(
                engine, path, hashes[i], number, read.counts.iloc[number], credit, quality, read.rejects, actor=actor
            )
        )
        progress(0.5 + 0.5 * (number + 1) / max(len(fresh), 1), f"stored {path.name}")
    presence = credit.presence
    return PingImportSummary(
        files=tuple(summaries),
        presence_seconds=int(presence["seconds"].sum()),
        enforcement_seconds=int(presence.loc[presence["purpose"] == ENFORCEMENT, "seconds"].sum()),
        vehicle_seconds=int(presence.loc[presence["mode"] == "vehicle", "seconds"].sum()),
        outside_seconds=int(presence.loc[presence["block_id"].isna(), "seconds"].sum()),
        gap_seconds=int(credit.devices["gap_seconds"].sum()),
        track_visits=len(credit.visits),
        devices=len(credit.devices),
    )


def _calls(engine: Engine, pings: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The CAD calls (enforcement activity with a unit) that can overlap the pings."""
    if pings.empty:
        return pd.DataFrame(columns=[UNIT_ID, "occurred_at", "ended_at"])
    first = pd.Timestamp(int(pings[TS].min()), unit="s", tz="UTC") - timedelta(days=1)
    last = pd.Timestamp(int(pings[TS].max()) + 1, unit="s", tz="UTC")
    events = store.read_events(
        engine,
        start=first.to_pydatetime(),
        end=last.to_pydatetime(),
        columns=[UNIT_ID, "occurred_at", "ended_at", KIND],
    )
    return events[(events[KIND] == ENFORCEMENT) & events[UNIT_ID].notna()].reset_index(drop=True)


def device_day_quality(credit: TrackCredit, rejects: pd.DataFrame, *, settings: Settings) -> pd.DataFrame:
    """Per file, device and local day: pings, median interval, gap and longest silence, outside and poor accuracy.

    Returns
    -------
    DataFrame
        ``file, device_id, day, pings, median_interval_s, gap_minutes,
        longest_silence_minutes, outside_share, poor_accuracy_share``.
    """
    track = credit.pings
    if track.empty:
        return pd.DataFrame(columns=list(_QUALITY_COLUMNS))
    zone = settings.zone
    ts = track[TS].to_numpy(dtype=np.int64)
    local = pd.DatetimeIndex(pd.to_datetime(ts, unit="s", utc=True)).tz_convert(zone).tz_localize(None)
    day = local.to_numpy().astype("datetime64[D]").astype(np.int64)  # days since 1970, local
    device = device_codes(track[DEVICE_ID])
    interval = np.full(len(ts), np.nan)
    same = np.zeros(len(ts), dtype=bool)
    same[1:] = (device[1:] == device[:-1]) & (day[1:] == day[:-1])
    interval[1:] = np.where(same[1:], ts[1:] - ts[:-1], np.nan)
    outside = (track["block"].to_numpy() < 0) * track["credit_s"].to_numpy()
    frame = pd.DataFrame(
        {
            "file": track["file"].to_numpy(),
            DEVICE_ID: track[DEVICE_ID].to_numpy(),
            "day": day,
            "interval": interval,
            "gap": track["gap_s"].to_numpy(),
            "credit": track["credit_s"],
            "outside": outside,
        }
    )
    grouped = frame.groupby(["file", DEVICE_ID, "day"], sort=True, observed=True)
    out = grouped.agg(
        pings=("interval", "size"),
        median_interval_s=("interval", "median"),
        gap=("gap", "sum"),
        silence=("interval", "max"),
        credit=("credit", "sum"),
        outside=("outside", "sum"),
    ).reset_index()
    out["day"] = pd.to_datetime(out["day"].to_numpy().astype("datetime64[D]")).strftime("%Y-%m-%d")
    out[DEVICE_ID] = out[DEVICE_ID].astype(str)
    out["gap_minutes"] = out["gap"] / 60
    out["longest_silence_minutes"] = out["silence"].fillna(0) / 60
    out["outside_share"] = np.where(out["credit"] > 0, out["outside"] / out["credit"].where(out["credit"] > 0, 1), 0.0)
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
    return out[list(_QUALITY_COLUMNS)]


def silent_devices(days: pd.DataFrame, *, silent_minutes: int) -> pd.DataFrame:
    """Device-days on which a device that reported went silent for longer than ``silent_minutes``."""
    return days[days["longest_silence_minutes"] > silent_minutes].reset_index(drop=True)


def _write_file(
    engine: Engine,
    path: Path,
    content_hash: str,
    number: int,
    counts: pd.Series,
    credit: TrackCredit,
    quality: pd.DataFrame,
    rejects: pd.DataFrame,
    *,
    actor: str,
) -> PingFileSummary:
    presence = credit.presence[credit.presence["file"] == number]
    visits = credit.visits[credit.visits["file"] == number]
    days = quality[quality["file"] == number]
    file_rejects = rejects[rejects["file"] == number]
    used_ts = credit.pings.loc[credit.pings["file"] == number, TS]
    reasons = (
        file_rejects["reason"].str.split(r" [\('\"]|: |,", regex=True).str[0].value_counts().to_dict()
        if not file_rejects.empty
        else {}
    )
    summary = PingFileSummary(
        file=str(path),
        batch_id=None,
        rows=int(counts["rows"]),
        used=int(counts["used"]),
        duplicates=int(counts["duplicates"]),
        rejected=int(counts["rejected"]),
        reject_reasons={str(k): int(v) for k, v in reasons.items()},
    )
    with store.transaction(engine) as conn:
        batch_id = store.add_batch(conn, what="pings", source="gps", file_name=str(path), summary={})
        presence_store.write_ping_file(
            conn,
            batch_id,
            content_hash=content_hash,
            rows=summary.rows,
            used=summary.used,
            duplicates=summary.duplicates,
            rejected=summary.rejected,
            first_ping=pd.Timestamp(int(used_ts.min()), unit="s", tz="UTC").to_pydatetime() if len(used_ts) else None,
            last_ping=pd.Timestamp(int(used_ts.max()), unit="s", tz="UTC").to_pydatetime() if len(used_ts) else None,
        )
        presence_store.write_presence(conn, batch_id, presence)
        presence_store.write_track_visits(conn, batch_id, visits)
        presence_store.write_device_days(conn, batch_id, days)
        if not file_rejects.empty:
            fingerprints = [
                hashlib.blake2b(f"pings\x1f{content_hash}\x1f{row}".encode(), digest_size=16).hexdigest()
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
                file_name=str(path),
            )
        result = PingFileSummary(**{**summary.__dict__, "batch_id": batch_id})
        store.set_batch_summary(conn, batch_id, result.to_dict())
        store.record_audit(
            conn,
            actor=actor,
            action="import.pings",
            target=str(path),
            details={k: v for k, v in result.to_dict().items() if k != "file"},
        )
        store.bump_version(conn)
    return result


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
    minutes = summary.presence_seconds / 60
    lines.append(
        f"{summary.devices:,} devices, {minutes:,.0f} minutes of presence "
        f"({summary.enforcement_seconds / 60:,.0f} on calls, {summary.vehicle_seconds / 60:,.0f} in a "
        f"vehicle, {summary.outside_seconds / 60:,.0f} outside every block), "
        f"{summary.gap_seconds / 60:,.0f} minutes of gap, {summary.track_visits:,} track visits"
    )
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
