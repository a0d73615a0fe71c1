"""Public map rules: what a published snapshot may say about each block, beat and week.

The public map tells residents where police spend time outside enforcement, block
by block, without exposing a patrol routine, an officer or anyone's address.  The
functions here turn the store's block coverage into three whitelisted tables
(fields listed in :mod:`beatmap.snapshot`): blocks, beats and weekly trend.  The
two thresholds live in the settings (``public_min_count`` = 3 and
``public_delay_days`` = 7 by default) and can only be made stricter there.

Period
    A snapshot is dated ``as_of`` (today by default, never later) and publishes
    one period of a fixed calendar that no setting changes: back-to-back runs of
    :data:`~beatmap.snapshot.PERIOD_WEEKS` (13) Monday-to-Sunday weeks counted
    from :data:`PERIOD_EPOCH`.  It is the latest such period that ended at
    least ``public_delay_days`` full days before ``as_of``.  Fixed periods, not
    a window sliding with ``as_of`` or sized by ``window_days``: two snapshots
    either hold the same data or periods that do not overlap, so comparing
    archived snapshots cannot reveal what happened in a single week (with a
    sliding window, or periods of 7 days in one snapshot and 14 in the next,
    the difference is one week's count per block, small counts included).
    Publishing also refuses a period that overlaps an earlier publication's
    without equalling it (the audit log keeps every one).  The price is age:
    the data can be up to one period plus the delay old.

Weekly shares
    ``trend.csv`` gives, per beat and week, the share of its blocks visited,
    rounded to 10%.  In a small beat one block is a large share (in a beat of 4
    blocks, one block visited once a week shows as 30% in exactly those
    weeks), so weekly shares are published only for beats of at least
    ``public_trend_min_blocks`` (20) blocks, where one block moves the share by
    at most 5 points; smaller beats have no weekly rows.

Withheld counts
    A block's count of foot patrols and community visits, and its count of
    enforcement events, is published when it is 0 or at least
    ``public_min_count``; a count from 1 to ``public_min_count - 1`` is withheld
    and shown as "fewer than 3".  Zero is shown: an empty block says nothing
    about any person, and blocks police never walk are what the map is for.

No recovery by subtraction
    A withheld count is never added into any published figure.  A beat's totals
    add only the block counts that are shown (``visits_on_shown_blocks``,
    ``enforcement_on_shown_blocks``) and the beat row says how many blocks were
    withheld (``blocks_visits_withheld``); the weekly coverage counts only blocks
    whose period count is shown.  Every beat and weekly figure is computed from
    the published block rows alone, so a beat total minus its shown blocks is
    always zero, never a withheld count, and a withheld 1 or 2 publishes exactly
    the same files.  We chose this over complementary suppression (withholding
    a second block when a beat has only one): that hides counts residents need,
    and is easy to get wrong (two withheld blocks whose counts add up to 2 are
    both recovered as 1).

Visit level
    ``none`` (no foot patrol or community visit), ``low``, ``medium`` and
    ``high``.  The cut points are city-wide terciles of the shown visit counts
    (blocks with at least ``public_min_count`` visits; numpy's "lower" quantile
    at 1/3 and 2/3): ``low`` is 1 up to the first cut point, ``medium`` up to the
    second, ``high`` above it.  City-wide cut points keep colours comparable
    between beats, so a thinly patrolled beat looks thin.  A withheld block is
    always ``low``, so the level never tells 1 from 2.

Presence
    ``mostly enforcement`` where the enforcement count is shown and exceeds the
    visits; ``mostly foot patrols and visits`` where the visit count is shown
    and at least the enforcement; ``no police activity recorded`` where both
    are 0; otherwise ``too few to say``.  It depends on the published counts
    only, so it reveals nothing a withheld count hides.

GPS presence minutes (``publish_presence_minutes``, off by default)
    When the setting is on, each block also carries ``presence_minutes``: the
    GPS presence outside calls (non-enforcement, on foot and in a vehicle) in
    the same fixed period, in whole minutes rounded to the nearest
    :data:`~beatmap.snapshot.PRESENCE_STEP_MINUTES` (15).  A block where fewer
    than :data:`~beatmap.snapshot.PRESENCE_MIN_DEVICES` (3) distinct devices
    were credited such time in the period is withheld ("fewer than 3
    devices"); a block with none at all shows 0.  The same protections as the
    counts apply: the fixed period grid (two snapshots hold the same period or
    disjoint ones, so subtracting them isolates no week and no device), the
    delay, and no total: presence minutes are added into no beat or weekly
    figure, so no withheld value can be recovered by subtraction.  A shown
    figure always sums at least three devices, and the quarter-hour rounding
    is coarser than a single ten-minute stay, so even a republication of the
    same period after a late import moves a figure only when the late time is
    large.  Not on the colour scale (the visit levels stay the map's colours).

Weekly trend
    Per beat, for each week of the period, the share of the beat's blocks (only
    blocks whose period count is shown) with a foot patrol or community visit
    that week, rounded to the nearest 10%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import Engine

from beatmap import naming, report, store
from beatmap import schema as S
from beatmap.errors import InputError
from beatmap.metrics import Window
from beatmap.settings import Settings
from beatmap.snapshot import (
    BEAT_FIELDS,
    BLOCK_FIELDS,
    MOSTLY_ENFORCEMENT,
    MOSTLY_VISITS,
    NO_ACTIVITY,
    PERIOD_EPOCH,
    PERIOD_WEEKS,
    PRESENCE_MIN_DEVICES,
    PRESENCE_MINUTES,
    PRESENCE_STEP_MINUTES,
    PRESENCE_WITHHELD,
    TOO_FEW,
    TREND_FIELDS,
    withheld_label,
)
from beatmap.store import presence as presence_store
from beatmap.tracks import NON_ENFORCEMENT as NON_ENFORCEMENT_PURPOSE


@dataclass(frozen=True)
class PublicAggregates:
    """Everything a snapshot publishes, already under the rules.

    Attributes
    ----------
    blocks : GeoDataFrame
        :data:`~beatmap.snapshot.BLOCK_FIELDS` and block geometry (analysis CRS).
    beats : DataFrame
        :data:`~beatmap.snapshot.BEAT_FIELDS`, one row per beat.
    trend : DataFrame
        :data:`~beatmap.snapshot.TREND_FIELDS`, one row per beat and week.
    period : Window
        The dates the data covers.
    as_of : date
        The publication date.
    delay_days : int
        The delay the period was cut with.
    min_count : int
        Counts below this are withheld.
    level_cuts : tuple of int, or None
        Upper bounds of ``low`` and ``medium`` visits; None when no count is shown.
    """

    blocks: gpd.GeoDataFrame
    beats: pd.DataFrame
    trend: pd.DataFrame
    period: Window
    as_of: date
    delay_days: int
    min_count: int
    level_cuts: tuple[int, int] | None
    trend_min_blocks: int = 20

    def withheld(self, field: str) -> int:
        """How many blocks have ``field`` (``visits`` or ``enforcement``) withheld."""
        return int((self.blocks[field] == withheld_label(self.min_count)).sum())

    @property
    def presence(self) -> bool:
        """Whether the blocks carry GPS presence minutes (``publish_presence_minutes``)."""
        return PRESENCE_MINUTES in self.blocks.columns

    def presence_withheld(self) -> int:
        """How many blocks have their presence minutes withheld (fewer than three devices)."""
        return int((self.blocks[PRESENCE_MINUTES] == PRESENCE_WITHHELD).sum()) if self.presence else 0


def snapshot_period(as_of: date, *, delay_days: int, timezone: str) -> Window:
    """The fixed period a snapshot dated ``as_of`` publishes.

    Returns
    -------
    Window
        The latest of the back-to-back periods of ``PERIOD_WEEKS`` weeks
        from :data:`PERIOD_EPOCH` that ended at least ``delay_days`` full days
        before ``as_of``; it starts on a Monday and ends on a Sunday.
    """
    length = 7 * PERIOD_WEEKS
    latest = as_of - timedelta(days=delay_days + 1)  # the last day that may be published
    ended = ((latest - PERIOD_EPOCH).days + 1) // length  # whole periods over by then
    end = PERIOD_EPOCH + timedelta(days=ended * length - 1)
    return Window(end - timedelta(days=length - 1), end, timezone)


def withhold_counts(counts: pd.Series, *, min_count: int) -> pd.Series:
    """Counts as published: 0 and counts of at least ``min_count`` as numbers, the rest withheld.

    Returns
    -------
    Series
        Aligned to ``counts``; ``int`` or the label ``"fewer than <min_count>"``.
    """
    label = withheld_label(min_count)
    values = [int(c) if c == 0 or c >= min_count else label for c in counts.to_numpy()]
    return pd.Series(values, index=counts.index, dtype=object, name=counts.name)


def level_cuts(visits: pd.Series, *, min_count: int) -> tuple[int, int] | None:
    """Upper bounds of the ``low`` and ``medium`` visit levels: terciles of the shown counts.

    Returns None when no block has a shown visit count.
    """
    shown = visits[visits >= min_count].to_numpy()
    if len(shown) == 0:
        return None
    return (int(np.quantile(shown, 1 / 3, method="lower")), int(np.quantile(shown, 2 / 3, method="lower")))


def public_presence_minutes(
    block_ids: pd.Series,
    seconds: pd.Series,
    devices: pd.Series,
    *,
    step: int = PRESENCE_STEP_MINUTES,
    min_devices: int = PRESENCE_MIN_DEVICES,
) -> pd.Series:
    """Presence minutes as published, per block (see the module notes).

    Parameters
    ----------
    block_ids : Series
        The blocks, in the order of the result.
    seconds : Series
        Non-enforcement presence seconds in the period, by block id (missing: none).
    devices : Series
        Distinct devices credited such time in the period, by block id (missing: none).

    Returns
    -------
    Series
        Aligned to ``block_ids``: 0 where there was none, whole minutes rounded to the nearest ``step``
        (half up) where at least ``min_devices`` devices were there, else :data:`PRESENCE_WITHHELD`.
    """
    ids = block_ids.astype(str).to_numpy()
    secs = seconds.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    count = devices.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    rounded = step * ((secs + step * 30) // (step * 60))  # nearest step, half up, in whole integers
    values = [
        0 if s == 0 else (int(r) if d >= min_devices else PRESENCE_WITHHELD)
        for s, d, r in zip(secs, count, rounded, strict=True)
    ]
    return pd.Series(values, index=block_ids.index, dtype=object, name=PRESENCE_MINUTES)


def presence_from_store(engine: Engine, block_ids: pd.Series, *, period: Window) -> pd.Series:
    """:func:`public_presence_minutes` of the period from the stored aggregates: presence seconds outside calls
    (foot and vehicle) and the devices per block and local day (never the raw pings)."""
    first, after = period.utc_bounds()
    presence = presence_store.read_presence(engine, start=first, end=after)
    outside_calls = presence[presence["purpose"] == NON_ENFORCEMENT_PURPOSE]
    seconds = outside_calls.groupby(S.BLOCK_ID)["seconds"].sum()
    devices = presence_store.block_device_counts(
        engine, first_day=period.start.isoformat(), last_day=period.end.isoformat()
    )
    return public_presence_minutes(block_ids, seconds, devices)


def visit_levels(visits: pd.Series, *, min_count: int, cuts: tuple[int, int] | None) -> pd.Series:
    """``none``, ``low``, ``medium`` or ``high`` per block (see the module notes)."""
    low, medium = cuts if cuts is not None else (math.inf, math.inf)

    def level(v: int) -> str:
        if v == 0:
            return "none"
        if v < min_count or v <= low:
            return "low"
        return "medium" if v <= medium else "high"

    return pd.Series([level(v) for v in visits.to_numpy()], index=visits.index, dtype=object, name="visit_level")


def presence_category(visits: pd.Series, enforcement: pd.Series, *, min_count: int) -> pd.Series:
    """Whether police presence on a block is mostly enforcement, judged from shown counts only."""

    def category(v: int, e: int) -> str:
        if v == 0 and e == 0:
            return NO_ACTIVITY
        if e >= min_count and e > v:
            return MOSTLY_ENFORCEMENT
        if v >= min_count and v >= e:
            return MOSTLY_VISITS
        return TOO_FEW

    values = [category(v, e) for v, e in zip(visits.to_numpy(), enforcement.to_numpy(), strict=True)]
    return pd.Series(values, index=visits.index, dtype=object, name="presence")


def public_blocks(
    coverage: pd.DataFrame,
    *,
    min_count: int,
    cuts: tuple[int, int] | None,
    streets: pd.Series | None = None,
    presence_minutes: pd.Series | None = None,
) -> pd.DataFrame:
    """The published row of every block, from a coverage table (:func:`beatmap.report.block_coverage`).

    ``streets`` names blocks by their streets (block id -> text, :func:`beatmap.naming.names_from_store`);
    a block without a name gets an empty ``streets``.  ``presence_minutes`` (aligned to ``coverage``, as
    :func:`public_presence_minutes` makes it) adds that field after the others.

    Returns
    -------
    DataFrame
        :data:`~beatmap.snapshot.BLOCK_FIELDS` (plus the geometry when
        ``coverage`` has one), aligned to ``coverage``.
    """
    visits, enforcement = coverage["visits"].astype(int), coverage["enforcement"].astype(int)
    out = pd.DataFrame(
        {
            "block_id": coverage[S.BLOCK_ID].astype(str),
            "streets": (
                coverage[S.BLOCK_ID].map(streets)
                if streets is not None and len(streets)
                else pd.Series(None, index=coverage.index, dtype=object)
            ).map(lambda v: v if isinstance(v, str) else ""),
            "beat_id": coverage[S.BEAT_ID].astype(str),
            "visit_level": visit_levels(visits, min_count=min_count, cuts=cuts),
            "visits": withhold_counts(visits, min_count=min_count),
            "enforcement": withhold_counts(enforcement, min_count=min_count),
            "presence": presence_category(visits, enforcement, min_count=min_count),
        },
        index=coverage.index,
    )[list(BLOCK_FIELDS)]
    if presence_minutes is not None:
        out[PRESENCE_MINUTES] = presence_minutes.to_numpy()
    if isinstance(coverage, gpd.GeoDataFrame):
        return gpd.GeoDataFrame(out, geometry=coverage.geometry, crs=coverage.crs)
    return out


def _shown(published: pd.Series) -> pd.Series:
    """The shown counts of a published count column, 0 where withheld."""
    return published.map(lambda v: v if isinstance(v, int) else 0).astype(int)


def public_beats(blocks: pd.DataFrame) -> pd.DataFrame:
    """The published row of every beat, computed from the published block rows alone.

    Returns
    -------
    DataFrame
        :data:`~beatmap.snapshot.BEAT_FIELDS`, sorted by beat.
    """
    frame = pd.DataFrame(
        {
            "beat_id": blocks["beat_id"].to_numpy(),
            "visited": (blocks["visit_level"] != "none").to_numpy(),
            "withheld": blocks["visits"].map(lambda v: not isinstance(v, int)).to_numpy(),
            "visits": _shown(blocks["visits"]).to_numpy(),
            "enforcement": _shown(blocks["enforcement"]).to_numpy(),
            "mostly_enforcement": (blocks["presence"] == MOSTLY_ENFORCEMENT).to_numpy(),
        }
    )
    grouped = frame.groupby("beat_id", sort=True)
    out = pd.DataFrame(
        {
            "blocks": grouped.size(),
            "blocks_visited": grouped["visited"].sum(),
            "blocks_visits_withheld": grouped["withheld"].sum(),
            "visits_on_shown_blocks": grouped["visits"].sum(),
            "enforcement_on_shown_blocks": grouped["enforcement"].sum(),
            "blocks_mostly_enforcement": grouped["mostly_enforcement"].sum(),
        }
    ).astype(int)
    out["coverage_pct"] = (100 * out["blocks_visited"] / out["blocks"]).round().astype(int)
    return out.reset_index()[list(BEAT_FIELDS)]


def trend_weeks(period: Window) -> list[date]:
    """Mondays starting the whole weeks of the trend, oldest first (``period.end`` is a Sunday)."""
    n = period.days // 7
    return [period.end - timedelta(days=7 * k - 1) for k in range(n, 0, -1)]


def weekly_coverage(
    events: pd.DataFrame, blocks: pd.DataFrame, *, period: Window, min_blocks: int = 20
) -> pd.DataFrame:
    """Per beat and week, the share of its blocks visited that week, rounded to the nearest 10%.

    Parameters
    ----------
    events : DataFrame
        ``occurred_at`` (aware), ``kind`` and ``block_id``.
    blocks : DataFrame
        Published block rows (:func:`public_blocks`); only blocks whose visit
        count is shown and above zero are counted as visited.
    period : Window
        The snapshot's period; its end is a Sunday.
    min_blocks : int
        Only beats of at least this many blocks get weekly rows
        (``public_trend_min_blocks``): in a smaller beat one block moves the
        share by more than 5 points.

    Returns
    -------
    DataFrame
        :data:`~beatmap.snapshot.TREND_FIELDS`, by beat then week.
    """
    mondays = trend_weeks(period)
    counted = blocks.loc[blocks["visits"].map(lambda v: isinstance(v, int) and v > 0), "block_id"]
    beat_of = pd.Series(blocks["beat_id"].to_numpy(), index=blocks["block_id"].to_numpy())
    visits = events[events[S.KIND].isin(S.NON_ENFORCEMENT) & events[S.BLOCK_ID].isin(set(counted))]
    local_day = visits["occurred_at"].dt.tz_convert(period.timezone).dt.date
    weeks_back = local_day.map(lambda d: (period.end - d).days // 7)
    index = weeks_back.map(lambda k: len(mondays) - 1 - k if 0 <= k < len(mondays) else -1)
    seen = pd.DataFrame({"block_id": visits[S.BLOCK_ID].to_numpy(), "week": index.to_numpy()})
    seen = seen[seen["week"] >= 0].drop_duplicates()
    seen["beat_id"] = beat_of.reindex(seen["block_id"].to_numpy()).to_numpy()
    visited = seen.groupby(["beat_id", "week"]).size()
    sizes = blocks.groupby("beat_id").size()
    rows = []
    for beat_id, size in sizes.items():
        if size < min_blocks:
            continue
        for week, monday in enumerate(mondays):
            share = 100 * int(visited.get((beat_id, week), 0)) / size
            rows.append(
                {
                    "beat_id": beat_id,
                    "week_start": monday.isoformat(),
                    "week_end": (monday + timedelta(days=6)).isoformat(),
                    "coverage_pct": int(math.floor(share / 10 + 0.5) * 10),
                }
            )
    return pd.DataFrame(rows, columns=list(TREND_FIELDS))


def aggregates_from_store(
    engine: Engine,
    *,
    settings: Settings,
    as_of: date | None = None,
    delay_days: int | None = None,
) -> PublicAggregates:
    """Build everything a snapshot publishes from the store, under the public map rules.

    Parameters
    ----------
    engine : Engine
        The store.
    settings : Settings
        ``public_min_count``, ``public_delay_days``, ``public_trend_min_blocks``, ``timezone``.
    as_of : date, optional
        The publication date; today (department time) by default, never later.
    delay_days : int, optional
        The delay to apply; ``public_delay_days`` by default.  A shorter one is
        only for :func:`beatmap.publish.publish_snapshot` with a logged override.

    Raises
    ------
    InputError
        When ``as_of`` is in the future or ``delay_days`` is negative.
    StoreError
        When no beats or blocks are loaded.
    """
    today = datetime.now(settings.zone).date()
    as_of = as_of or today
    if as_of > today:
        raise InputError(
            f"--as-of {as_of} is later than today ({today}); a snapshot cannot be dated in the "
            "future (it would shorten the delay). Leave --as-of out to use today."
        )
    delay = settings.public_delay_days if delay_days is None else delay_days
    if delay < 0:
        raise InputError(f"a delay of {delay} days is not possible; give 0 or more days.")
    period = snapshot_period(as_of, delay_days=delay, timezone=settings.timezone)
    # Visits and flags from logged visits only; GPS presence is its own field (publish_presence_minutes).
    coverage = report.block_coverage(engine, window=period, settings=settings, gps=False)
    first, after = period.utc_bounds()
    events = store.read_events(engine, start=first, end=after, columns=("occurred_at", S.KIND, S.BLOCK_ID))
    min_count = settings.public_min_count
    cuts = level_cuts(coverage["visits"].astype(int), min_count=min_count)
    minutes = (
        presence_from_store(engine, coverage[S.BLOCK_ID], period=period) if settings.publish_presence_minutes else None
    )
    blocks = public_blocks(
        coverage, min_count=min_count, cuts=cuts, streets=naming.names_from_store(engine), presence_minutes=minutes
    )
    return PublicAggregates(
        blocks=blocks,
        beats=public_beats(blocks),
        trend=weekly_coverage(events, blocks, period=period, min_blocks=settings.public_trend_min_blocks),
        period=period,
        as_of=as_of,
        delay_days=delay,
        min_count=min_count,
        level_cuts=cuts,
        trend_min_blocks=settings.public_trend_min_blocks,
    )
