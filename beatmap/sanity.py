"""Does an import make sense?  Checks that warn without rejecting: pile-ups, points outside the beats,
reported beats that disagree or are unknown, times in the future or far before the rest.

Each check returns :class:`SanityWarning` objects with a sentence a person can act
on and the figures behind it; the import summary carries them to the command
line (``--json`` too) and the Import page.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass, field

import pandas as pd

from beatmap import schema as S

#: Decimal places a point is rounded to when looking for pile-ups (about 1 m).
PILEUP_DECIMALS = 5
#: A time this long before the first percentile of an import's times counts as far before the rest.
FAR_PAST = pd.Timedelta(days=365)


@dataclass(frozen=True)
class SanityWarning:
    """One thing about an import that looks wrong: ``code``, a sentence, and the figures."""

    code: str
    message: str
    count: int
    details: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """As the ``--json`` summary prints it."""
        return asdict(self)


def pileups(located: pd.DataFrame, *, share: float, minimum: int) -> pd.DataFrame:
    """Points holding more than ``share`` of the located rows and at least ``minimum`` of them.

    Returns ``lat``, ``lon`` (rounded), ``rows``, most rows first.
    """
    if located.empty:
        return pd.DataFrame({"lat": [], "lon": [], "rows": []})
    points = pd.DataFrame({"lat": located[S.LAT].round(PILEUP_DECIMALS), "lon": located[S.LON].round(PILEUP_DECIMALS)})
    counts = points.value_counts().rename("rows").reset_index()
    hit = (counts["rows"] > share * len(located)) & (counts["rows"] >= minimum)
    return counts[hit].reset_index(drop=True)


def at_points(located: pd.DataFrame, points: pd.DataFrame) -> pd.Series:
    """Boolean mask of the located rows that sit on one of ``points`` (as :func:`pileups` rounds them)."""
    if points.empty or located.empty:
        return pd.Series(False, index=located.index)
    keys = set(zip(points["lat"], points["lon"], strict=True))
    rounded = zip(located[S.LAT].round(PILEUP_DECIMALS), located[S.LON].round(PILEUP_DECIMALS), strict=True)
    return pd.Series([k in keys for k in rounded], index=located.index)


def check_records(
    records: pd.DataFrame,
    *,
    beat_ids: Collection[str],
    now: pd.Timestamp,
    pileup_share: float,
    pileup_min: int,
) -> list[SanityWarning]:
    """The warnings for an import's new records (assigned: ``block_id``, ``beat_id``; ``reported_beat`` optional).

    Parameters
    ----------
    records : DataFrame
        The records the import adds, with ``lat``, ``lon``, ``occurred_at`` and their assignment.
    beat_ids : collection of str
        The beats of the loaded layer (empty: no areas loaded, so no beat checks).
    now : Timestamp
        The clock: records after it are in the future.
    pileup_share, pileup_min : float, int
        See :class:`beatmap.settings.Settings`.
    """
    out: list[SanityWarning] = []
    n = len(records)
    if n == 0:
        return out
    piles = pileups(records, share=pileup_share, minimum=pileup_min)
    for p in piles.itertuples(index=False):
        rows = int(p.rows)
        out.append(
            SanityWarning(
                "pileup",
                f"{rows:,} records ({rows / n:.1%}) sit on one point, {p.lat:.5f},{p.lon:.5f}: often a geocoder's "
                "stand-in (a city centre) or a station address rather than where things happened. If so, reject the "
                f"point: add [{p.lon}, {p.lat}] to reject under [coordinates] in the mapping, or set "
                "reject_pileups = true there.",
                rows,
                {"lat": float(p.lat), "lon": float(p.lon)},
            )
        )
    if beat_ids:
        outside = int(records[S.BLOCK_ID].isna().sum())
        if outside:
            out.append(
                SanityWarning(
                    "outside",
                    f"{outside:,} of {n:,} records ({outside / n:.1%}) fall outside every beat: they count "
                    "nowhere. Check that the file covers this city's area, or load beats that cover them.",
                    outside,
                    {"share": outside / n},
                )
            )
        if S.REPORTED_BEAT in records:
            reported = records[S.REPORTED_BEAT]
            has = reported.notna() & records[S.BEAT_ID].notna()
            unknown = has & ~reported.isin(list(beat_ids))
            differs = has & ~unknown & (reported != records[S.BEAT_ID])
            if differs.any():
                count = int(differs.sum())
                out.append(
                    SanityWarning(
                        "beat_mismatch",
                        f"{count:,} of {int(has.sum()):,} records with a reported beat "
                        f"({count / has.sum():.1%}) fall in another beat than they report. The beat layer may be "
                        "older or newer than the records, or the points may be off.",
                        count,
                        {"share": count / int(has.sum())},
                    )
                )
            if unknown.any():
                names = reported[unknown].value_counts()
                shown = ", ".join(f"{b} ({c:,})" for b, c in names.head(8).items())
                out.append(
                    SanityWarning(
                        "unknown_beats",
                        f"{int(unknown.sum()):,} records report {len(names):,} beats the layer does not "
                        f"have, e.g. {shown}: an old numbering, or a beat layer of another year? (If the ids only lack "
                        "leading zeros, set zero_pad under [reported_beat] in the mapping.)",
                        int(unknown.sum()),
                        {"beats": [str(b) for b in names.index[:50]]},
                    )
                )
    times = records[S.OCCURRED_AT].dropna()
    if len(times):
        future = times > now
        if future.any():
            out.append(
                SanityWarning(
                    "future",
                    f"{int(future.sum()):,} records are dated after now (latest {times.max():%Y-%m-%d %H:%M} "
                    "UTC): a wrong time zone, or a wrong date format?",
                    int(future.sum()),
                    {"latest": str(times.max())},
                )
            )
        floor = times.quantile(0.01) - FAR_PAST
        early = times < floor
        if early.any():
            out.append(
                SanityWarning(
                    "far_past",
                    f"{int(early.sum()):,} records are dated more than a year before nearly all the others "
                    f"(earliest {times.min():%Y-%m-%d}): placeholder dates, or a day and month swapped?",
                    int(early.sum()),
                    {"earliest": str(times.min())},
                )
            )
    return out
