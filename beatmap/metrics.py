"""Coverage metrics and flags per block and per beat.

Pure functions: frames in, frames out, aligned to the input blocks.  The
window is a range of local dates (inclusive) in the department's time zone.

Flags (one per block, first that applies):

``enforcement_only``
    At least ``enforcement_only_min`` enforcement events and no foot patrol or
    community visit in the window.
``unvisited``
    No foot patrol or community visit in the window.
``rarely_visited``
    Visited, but clearly less than the beat's typical block (the median of
    the beat's block visit counts, robust to the neglected blocks
    themselves), by the rule the settings name (``rarely_rule``; see
    :mod:`beatmap.flags`).  The default, ``neighbours``: a block is flagged
    when ``P(X <= visits | rate = rarely_fraction x typical) < 1 -
    rarely_confidence`` (exact one-sided Poisson test), or when that
    probability is below ``rarely_neighbour_gate`` and the block is joined
    through such low neighbours of its beat to a block flagged by the test.
    With small numbers the test cannot reject, so noise in quiet beats is
    never flagged: where the typical block has 5 visits, even 1 visit is not
    "clearly below" (0 is ``unvisited`` anyway).  ``bench/flags.py``
    measures how often each rule finds planted neglect and how often it is
    wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from beatmap import flags as F
from beatmap import schema as S
from beatmap.clock import day_start
from beatmap.errors import InputError
from beatmap.settings import Settings


@dataclass(frozen=True)
class Window:
    """A metric window: local dates ``start`` to ``end`` inclusive, in ``timezone``."""

    start: date
    end: date
    timezone: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise InputError(f"the window ends ({self.end}) before it starts ({self.start}); swap --from and --to.")

    @property
    def days(self) -> int:
        """Length in days."""
        return (self.end - self.start).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """``[start, end)`` as aware UTC datetimes: the start of ``start`` to the start of the day after ``end``.

        A day starts at its first valid instant (see :func:`beatmap.clock.day_start`).
        """
        return day_start(self.start, self.timezone), day_start(self.end + timedelta(days=1), self.timezone)

    def previous(self) -> Window:
        """The window of the same length just before this one."""
        return Window(self.start - timedelta(days=self.days), self.start - timedelta(days=1), self.timezone)


#: A day can end the default window only when it holds at least this share of a typical day's
#: activity (the median over the days with activity): one visit logged today does not move the window.
RECORDED_DAY_SHARE = 0.25


def recorded_end(day_counts: pd.Series) -> date | None:
    """The last day of recorded activity: the latest day with at least RECORDED_DAY_SHARE of a typical day's count.

    Parameters
    ----------
    day_counts : Series
        Events per local day (index: dates), for the days before the last activity (the
        ``window_days`` up to it are enough); days without activity may be left out.

    Returns
    -------
    date or None
        None without any activity.  A department that logs a few visits a day has a typical day
        of a few visits, so its window follows each day; a store whose files end on 31 October
        keeps its window on 31 October after one visit is logged on 1 December, until the new
        days are the typical ones.
    """
    counts = day_counts[day_counts > 0]
    if counts.empty:
        return None
    typical = float(np.median(counts.to_numpy(dtype=float)))
    full = counts[counts >= RECORDED_DAY_SHARE * typical]
    return max(full.index)


def default_window(
    last_activity: datetime | None,
    *,
    settings: Settings,
    start: date | None = None,
    end: date | None = None,
    first_activity: datetime | None = None,
    day_counts: pd.Series | None = None,
) -> Window:
    """The window to use: as given, else the last ``window_days`` days of recorded activity.

    Without activity in the store the window ends today.  Given ``day_counts`` (events per local
    day up to the last activity), a default end is the last day of *recorded* activity
    (:func:`recorded_end`), so a few visits logged after the data do not move the whole window
    onto days without data.  Given ``first_activity``, a default start is never before the first
    day of data (a window half before the data would show a trend of zeros and changes against
    nothing).
    """
    zone = settings.zone
    if end is None and day_counts is not None:
        end = recorded_end(day_counts)
    if end is None:
        end = last_activity.astimezone(zone).date() if last_activity is not None else datetime.now(zone).date()
    if start is None:
        start = end - timedelta(days=settings.window_days - 1)
        if first_activity is not None:
            start = min(end, max(start, first_activity.astimezone(zone).date()))
    return Window(start, end, settings.timezone)


def local_activity(events: pd.DataFrame, *, timezone: str) -> pd.DataFrame:
    """Events on blocks as local-time codes: the frame every metric reads.

    Parameters
    ----------
    events : DataFrame
        ``occurred_at`` (aware), ``kind``, ``block_id`` and optionally
        ``officer_id``; events on no block are dropped.
    timezone : str
        The department's zone: days, hours and weekdays are local to it.

    Returns
    -------
    DataFrame
        ``block_id``, ``kind`` and ``officer_id`` (categoricals), ``day``
        (local midnight, ``datetime64[s]``), ``hour`` (0-23) and ``weekday``
        (0 = Monday), in the input's order and index.
    """
    ev = events[events[S.BLOCK_ID].notna()]
    local = ev["occurred_at"].dt.tz_convert(timezone)
    officer = ev[S.OFFICER_ID] if S.OFFICER_ID in ev else pd.Series(None, index=ev.index, dtype=object)
    return pd.DataFrame(
        {
            S.BLOCK_ID: ev[S.BLOCK_ID].astype("category"),
            S.KIND: pd.Categorical(ev[S.KIND], categories=list(S.KINDS)),
            S.OFFICER_ID: officer.astype("category"),
            "day": local.dt.tz_localize(None).dt.floor("D").astype("datetime64[s]"),
            "hour": local.dt.hour.astype("int8"),
            "weekday": local.dt.day_of_week.astype("int8"),
        },
        index=ev.index,
    )


def in_window(activity: pd.DataFrame, window: Window) -> pd.Series:
    """Mask of the activity rows whose local day lies in ``window``."""
    return (activity["day"] >= pd.Timestamp(window.start)) & (activity["day"] <= pd.Timestamp(window.end))


def window_rows(activity: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The activity rows whose local day lies in ``window``.

    A frame sorted by day (as :func:`beatmap.report.read_activity` returns
    it) is cut by binary search, a slice of the rows without copying them;
    any other frame by a mask.
    """
    day = activity["day"]
    if not day.is_monotonic_increasing:
        return activity[in_window(activity, window)]
    values = day.to_numpy()
    first, after = np.searchsorted(
        values,
        np.array([pd.Timestamp(window.start), pd.Timestamp(window.end) + pd.Timedelta(days=1)], dtype=values.dtype),
    )
    return activity.iloc[first:after]


def analysed_blocks(blocks: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """The blocks whose beat is analysed: those of ``settings.excluded_beats`` are left out."""
    if not settings.excluded_beats:
        return blocks
    return blocks[~blocks[S.BEAT_ID].isin(list(settings.excluded_beats))]


def coverage_by_block(
    blocks: pd.DataFrame,
    activity: pd.DataFrame,
    *,
    window: Window,
    settings: Settings,
    neighbours: pd.DataFrame | None = None,
    track_visits: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Coverage and flag of every block over a window.

    Parameters
    ----------
    blocks : DataFrame
        ``block_id`` and ``beat_id``; the result is aligned to its index.
        With polygons (a GeoDataFrame in a metric CRS) and no
        ``neighbours``, the neighbours are found from them.
    activity : DataFrame
        A :func:`local_activity` frame (already filtered by any other
        criterion, e.g. shift or kind); rows outside the window are ignored.
        A raw events frame (``occurred_at``, ``kind``, ``block_id``, optional
        ``officer_id``) is converted first.
    window : Window
    settings : Settings
    neighbours : DataFrame, optional
        ``block_id`` and ``neighbour_id``: blocks of one beat that touch or
        face each other (:func:`neighbour_pairs`), for the ``neighbours``
        rule.  Pairs naming a block not in ``blocks`` are ignored.  Without
        them (and without polygons) each block stands alone, as in the
        ``poisson`` rule.
    track_visits : DataFrame, optional
        Stays on foot found in GPS tracks (``block_id``), already cut to the
        window and without those a logged visit counts already (see
        :func:`unmatched_track_visits`).  When given, the result gains a
        ``track_visits`` column and they count as visits, for ``visits``
        and for the flags.

    Returns
    -------
    DataFrame
        The columns of :data:`beatmap.schema.COVERAGE_COLUMNS`: counts per
        kind, ``visits`` (foot patrols + community visits), ``days_visited``,
        ``last_visit`` (local date), ``officers`` (distinct, non-enforcement),
        ``enforcement_share``, ``flag`` (None when not flagged) and
        ``flag_reason``.  Blocks of excluded beats
        (``settings.excluded_beats``) are left out: never flagged, in no figure.
    """
    blocks = analysed_blocks(blocks, settings)
    if "day" not in activity:
        activity = local_activity(activity, timezone=window.timezone)
    ev = window_rows(activity, window)
    ids = blocks[S.BLOCK_ID].to_numpy()
    n = len(ids)
    # Work on integer codes: the block's row in ``blocks`` (-1 when not listed) and the kind's position.
    categories = ev[S.BLOCK_ID].cat.categories if isinstance(ev[S.BLOCK_ID].dtype, pd.CategoricalDtype) else None
    if categories is not None:
        row = pd.Index(ids).get_indexer(categories)[ev[S.BLOCK_ID].cat.codes.to_numpy()]
        row[ev[S.BLOCK_ID].cat.codes.to_numpy() < 0] = -1
    else:
        row = pd.Index(ids).get_indexer(ev[S.BLOCK_ID])
    kinds = ev[S.KIND]
    if isinstance(kinds.dtype, pd.CategoricalDtype):  # map category codes, not every row's text
        kind = pd.Index(S.KINDS).get_indexer(kinds.cat.categories)[kinds.cat.codes.to_numpy()]
    else:
        kind = pd.Index(S.KINDS).get_indexer(kinds.astype(object))
    day = ev["day"].to_numpy().astype("datetime64[D]").astype(np.int64)
    listed = row >= 0
    if listed.all():  # the usual case: skip copying every column
        listed = slice(None)
    else:
        row, kind, day = row[listed], kind[listed], day[listed]
    counts = np.bincount(row * len(S.KINDS) + kind, minlength=n * len(S.KINDS)).reshape(n, len(S.KINDS))

    visit = _lookup(len(S.KINDS), [S.KINDS.index(k) for k in S.NON_ENFORCEMENT])[kind]
    visit_rows, visit_days = row[visit], day[visit]
    span = int(visit_days.max() - visit_days.min() + 1) if len(visit_days) else 1
    pairs = _distinct(visit_rows * span + (visit_days - (visit_days.min() if len(visit_days) else 0)))
    days_visited = np.bincount(pairs // span, minlength=n)
    last = np.full(n, -1, dtype=np.int64)
    if len(pairs):  # pairs are sorted by block, then day: the last pair of each block is its last visit
        block_of_pair = pairs // span
        ends = np.flatnonzero(np.r_[block_of_pair[1:] != block_of_pair[:-1], True])
        last[block_of_pair[ends]] = pairs[ends] % span + visit_days.min()
    officers = np.zeros(n, dtype=np.int64)
    if S.OFFICER_ID in ev:
        officer = ev[S.OFFICER_ID]
        if not isinstance(officer.dtype, pd.CategoricalDtype):
            officer = officer.astype("category")
        officer = officer.cat.codes.to_numpy()[listed][visit]
        known = officer >= 0
        pairs_o = _distinct(visit_rows[known] * (int(officer.max(initial=0)) + 1) + officer[known])
        officers = np.bincount(pairs_o // (int(officer.max(initial=0)) + 1), minlength=n)

    out = pd.DataFrame({S.BLOCK_ID: ids, S.BEAT_ID: blocks[S.BEAT_ID].to_numpy()}, index=blocks.index)
    out["foot_patrols"] = counts[:, S.KINDS.index(S.FOOT_PATROL)]
    out["community_visits"] = counts[:, S.KINDS.index(S.COMMUNITY_VISIT)]
    out["visits"] = out["foot_patrols"] + out["community_visits"]
    if track_visits is not None:
        found = pd.Index(ids).get_indexer(track_visits[S.BLOCK_ID].astype(object))
        out["track_visits"] = np.bincount(found[found >= 0], minlength=n)
        out["visits"] += out["track_visits"]
    out["enforcement"] = counts[:, S.KINDS.index(S.ENFORCEMENT)]
    out["days_visited"] = days_visited
    out["last_visit"] = pd.Series(last.astype("datetime64[D]"), index=out.index).dt.date.where(last >= 0, None)
    out["officers"] = officers
    total = out["visits"] + out["enforcement"]
    out["enforcement_share"] = (out["enforcement"] / total.where(total > 0)).round(3)
    if neighbours is None and settings.rarely_rule == "neighbours" and "geometry" in blocks.columns:
        neighbours = neighbour_pairs(blocks)
    flag, reason = _flags(out, window=window, settings=settings, neighbours=neighbours)
    out["flag"] = flag
    out["flag_reason"] = reason
    return out[[*S.COVERAGE_COLUMNS, *(["track_visits"] if track_visits is not None else [])]]


def unmatched_track_visits(track_visits: pd.DataFrame, logged: pd.DataFrame) -> pd.DataFrame:
    """Track visits not already counted as a logged visit.

    A logged foot patrol or community visit by the same officer on the same
    block between the stay's start and end makes the stay and the log one
    visit, counted once (as the logged one).

    Parameters
    ----------
    track_visits : DataFrame
        ``officer_id, block_id, start, end`` (UTC).
    logged : DataFrame
        Events: ``occurred_at`` (UTC), ``kind``, ``officer_id``, ``block_id``.
    """
    if track_visits.empty or logged.empty or S.OFFICER_ID not in logged:
        return track_visits
    visits = logged[logged[S.KIND].isin(S.NON_ENFORCEMENT) & logged[S.OFFICER_ID].notna()]
    candidates = track_visits.reset_index().merge(
        visits[[S.OFFICER_ID, S.BLOCK_ID, S.OCCURRED_AT]], on=[S.OFFICER_ID, S.BLOCK_ID], how="inner"
    )
    during = candidates[
        (candidates[S.OCCURRED_AT] >= candidates["start"]) & (candidates[S.OCCURRED_AT] <= candidates["end"])
    ]
    return track_visits.drop(index=during["index"].unique())


def neighbour_pairs(blocks: pd.DataFrame) -> pd.DataFrame:
    """Blocks of one beat that touch or face each other across a street, as ``block_id``, ``neighbour_id``.

    Each pair once (see :func:`beatmap.areas.block_neighbours`); computed
    once per set of areas and passed to :func:`coverage_by_block`.

    Parameters
    ----------
    blocks : GeoDataFrame
        ``block_id``, ``beat_id`` and polygons in a metric CRS.
    """
    from beatmap.areas import block_neighbours  # geometry work: loaded only when neighbours are needed

    left, right = block_neighbours(blocks)
    ids = blocks[S.BLOCK_ID].to_numpy()
    return pd.DataFrame({S.BLOCK_ID: ids[left], "neighbour_id": ids[right]})


def _lookup(size: int, members: Sequence[int]) -> np.ndarray:
    """A table answering "is this small integer code one of ``members``?" by indexing (faster than np.isin)."""
    table = np.zeros(size, dtype=bool)
    table[list(members)] = True
    return table


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of an integer array, sorted (a plain sort: faster here than np.unique's hashing)."""
    keys = np.sort(keys)
    return keys[np.r_[True, keys[1:] != keys[:-1]]] if len(keys) else keys


def _flags(
    cov: pd.DataFrame, *, window: Window, settings: Settings, neighbours: pd.DataFrame | None
) -> tuple[pd.Series, pd.Series]:
    """The flag of each block and a sentence a sergeant can read, with the numbers."""
    period = f"from {window.start:%b %d, %Y} to {window.end:%b %d, %Y}"
    visits, enforcement = cov["visits"], cov["enforcement"]
    count, beats = visits.to_numpy(), cov[S.BEAT_ID].to_numpy()
    typical = F.typical_visits(count, beats)
    fraction, confidence = settings.rarely_fraction, settings.rarely_confidence
    if settings.rarely_rule == "empirical_bayes":
        rarely, p_value = F.rarely_by_empirical_bayes(count, typical, beats, fraction=fraction, confidence=confidence)
        alone = rarely
    else:
        pairs = _positions(cov[S.BLOCK_ID], neighbours) if settings.rarely_rule == "neighbours" else None
        alone, p_value = F.rarely_by_poisson(count, typical, fraction=fraction, confidence=confidence)
        rarely = (
            alone
            if pairs is None
            else F.rarely_by_neighbours(
                count, typical, pairs, fraction=fraction, confidence=confidence, gate=settings.rarely_neighbour_gate
            )[0]
        )

    enforcement_only = (visits == 0) & (enforcement >= settings.enforcement_only_min)
    unvisited = (visits == 0) & ~enforcement_only
    flag = pd.Series(None, index=cov.index, dtype=object)
    flag[rarely] = S.RARELY_VISITED
    flag[unvisited] = S.UNVISITED
    flag[enforcement_only] = S.ENFORCEMENT_ONLY
    reason = pd.Series("", index=cov.index, dtype=object)
    shown = flag.notna().to_numpy()
    reason[shown] = [
        _reason(f, int(e), int(v), beat, t, p, bool(a), period=period, settings=settings)
        for f, e, v, beat, t, p, a in zip(
            flag[shown],
            enforcement[shown],
            visits[shown],
            beats[shown],
            typical[shown],
            p_value[shown],
            alone[shown],
            strict=True,
        )
    ]
    return flag, reason


def _positions(ids: pd.Series, neighbours: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Neighbour pairs as positions in ``ids`` (pairs naming a block not there dropped); None without pairs."""
    if neighbours is None:
        return None
    index = pd.Index(ids)
    left, right = index.get_indexer(neighbours[S.BLOCK_ID]), index.get_indexer(neighbours["neighbour_id"])
    keep = (left >= 0) & (right >= 0)
    return left[keep], right[keep]


def _reason(
    flag: str,
    n_enf: int,
    n_vis: int,
    beat: str,
    typical: float,
    p: float,
    alone: bool,
    *,
    period: str,
    settings: Settings,
) -> str:
    """The plain sentence behind a flag, with its numbers."""
    if flag == S.ENFORCEMENT_ONLY:
        return (
            f"Police came only to enforce: {_plural(n_enf, 'enforcement event')} "
            f"and no foot patrol or community visit {period}."
        )
    if flag == S.UNVISITED:
        extra = f" ({_plural(n_enf, 'enforcement event')})" if n_enf else ""
        return f"No foot patrol or community visit {period}{extra}."
    visited = "1 foot patrol or community visit" if n_vis == 1 else f"{n_vis} foot patrols or community visits"
    share = f"{settings.rarely_fraction:.0%} of typical"
    if settings.rarely_rule == "empirical_bayes":
        why = (
            f"its rate is below {share} with {settings.rarely_confidence:.1%} probability "
            f"(empirical Bayes, p = {p:.3f})"
        )
    elif alone:
        why = f"too few even for a block visited at {share} (Poisson test, p = {p:.3f})"
    else:
        why = (
            f"few for a block visited at {share} (Poisson test, p = {p:.3f}), and next to neighbouring blocks "
            "flagged as rarely visited"
        )
    return f"Only {visited} {period}, while the typical block in beat {beat} had {typical:g}; {why}."


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def gini(values: pd.Series | np.ndarray) -> float:
    """Gini coefficient of non-negative values: 0 even, towards 1 concentrated; NaN when all are 0."""
    x = np.sort(np.asarray(values, dtype=float))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return float("nan")
    ranks = np.arange(1, n + 1)
    return float(2 * np.sum(ranks * x) / (n * total) - (n + 1) / n)


def coverage_by_beat(block_coverage: pd.DataFrame) -> pd.DataFrame:
    """Per-beat summary of a block coverage table.

    Returns
    -------
    DataFrame
        One row per beat: ``beat_id``, ``blocks``, ``blocks_visited`` (with a
        non-enforcement visit), ``coverage_pct``, ``visits``, ``enforcement``,
        a count per flag, ``flagged`` and ``gini`` (evenness of visits across
        the beat's blocks: 0 = even, 1 = all on one block).
    """
    cov = block_coverage
    parts = pd.DataFrame(
        {
            S.BEAT_ID: cov[S.BEAT_ID],
            "blocks": 1,
            "blocks_visited": (cov["visits"] > 0).astype(int),
            "visits": cov["visits"],
            "enforcement": cov["enforcement"],
            **{name: (cov["flag"] == name).astype(int) for name in S.FLAGS},
        }
    )
    out = parts.groupby(S.BEAT_ID, sort=True).sum()
    out["coverage_pct"] = (100 * out["blocks_visited"] / out["blocks"]).round(1)
    out["flagged"] = out[list(S.FLAGS)].sum(axis=1)
    out["gini"] = cov.groupby(S.BEAT_ID, sort=True)["visits"].agg(gini).round(3)
    out = out.reset_index()
    return out[
        [S.BEAT_ID, "blocks", "blocks_visited", "coverage_pct", "visits", "enforcement", *S.FLAGS, "flagged", "gini"]
    ]


def shift_hours(shifts: dict[str, tuple[int, int]], names: list[str] | tuple[str, ...]) -> tuple[int, ...]:
    """The local hours (0-23) covered by the named shifts; an end before the start wraps past midnight."""
    hours: set[int] = set()
    for name in names:
        start, end = shifts[name]
        span = range(start, end) if start < end else [*range(start, 24), *range(0, end)]
        hours.update(h % 24 for h in span)
    return tuple(sorted(hours))


def activity_mask(
    activity: pd.DataFrame,
    *,
    kinds: tuple[str, ...] | list[str] = S.KINDS,
    weekdays: tuple[int, ...] | list[int] = tuple(range(7)),
    hours: tuple[int, ...] | list[int] = tuple(range(24)),
) -> pd.Series:
    """Mask of activity rows of the given kinds, local weekdays (0 = Monday) and local hours."""
    kind = activity[S.KIND]
    if isinstance(kind.dtype, pd.CategoricalDtype):  # a table over the category codes, not every row's text
        chosen = np.r_[kind.cat.categories.isin(list(kinds)), False]  # code -1 (missing) lands on the False
        mask = chosen[kind.cat.codes.to_numpy()]
    else:
        mask = kind.isin(list(kinds)).to_numpy()
    if len(weekdays) < 7:
        mask &= _lookup(7, weekdays)[activity["weekday"].to_numpy()]
    if len(hours) < 24:
        mask &= _lookup(24, hours)[activity["hour"].to_numpy()]
    return pd.Series(mask, index=activity.index)


def weekly_trend(activity: pd.DataFrame, block_ids: pd.Series | list[str], *, window: Window) -> pd.DataFrame:
    """Week by week over ``window`` for a set of blocks (a beat, or the city).

    Returns
    -------
    DataFrame
        ``week`` (Monday), ``days`` (of that week inside the window: fewer
        than 7 at its ends), ``visits``, ``enforcement`` and ``coverage_pct``
        (share of the blocks with a non-enforcement visit that week; missing
        for a partial week, whose few days would read as a dip in coverage).
    """
    ids = pd.Index(block_ids)
    ev = window_rows(activity, window)
    ev = ev[ev[S.BLOCK_ID].isin(ids)]
    week = ev["day"] - pd.to_timedelta(ev["weekday"].astype(int), unit="D")
    visit = ev[S.KIND].isin(S.NON_ENFORCEMENT)
    first = pd.Timestamp(window.start) - pd.Timedelta(days=pd.Timestamp(window.start).weekday())
    weeks = pd.date_range(first, pd.Timestamp(window.end), freq="7D").astype("datetime64[s]")
    out = (
        pd.DataFrame(
            {
                "visits": visit.groupby(week).sum(),
                "enforcement": (ev[S.KIND] == S.ENFORCEMENT).groupby(week).sum(),
                "blocks": ev[visit].groupby(week[visit])[S.BLOCK_ID].nunique(),
            }
        )
        .reindex(weeks, fill_value=0)
        .fillna(0)
    )
    start, after = pd.Timestamp(window.start), pd.Timestamp(window.end) + pd.Timedelta(days=1)
    week_end = weeks + pd.Timedelta(days=7)
    days = (week_end.where(week_end < after, after) - weeks.where(weeks > start, start)).days
    out.insert(0, "days", days.to_numpy())
    out["coverage_pct"] = (100 * out["blocks"] / max(len(ids), 1)).round(1).where(out["days"] == 7)
    return out.drop(columns="blocks").rename_axis("week").reset_index().astype({"visits": int, "enforcement": int})


def visits_by_hour_and_weekday(activity: pd.DataFrame, *, window: Window) -> pd.DataFrame:
    """Non-enforcement visits in ``window`` as a 7 x 24 table: weekday (Mon..Sun) by local hour."""
    ev = window_rows(activity, window)
    ev = ev[ev[S.KIND].isin(S.NON_ENFORCEMENT)]
    table = ev.groupby(["weekday", "hour"]).size().unstack(fill_value=0)
    table = table.reindex(index=range(7), columns=range(24), fill_value=0)
    table.index = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    return table


def coverage_by_officer(activity: pd.DataFrame, *, window: Window) -> pd.DataFrame:
    """Per officer, non-enforcement presence in ``window``: blocks visited, visits, days on foot.

    Officer-level data: for supervisors only.
    """
    ev = window_rows(activity, window)
    ev = ev[ev[S.KIND].isin(S.NON_ENFORCEMENT) & ev[S.OFFICER_ID].notna()]
    grouped = ev.groupby(S.OFFICER_ID, observed=True)
    out = pd.DataFrame(
        {
            "blocks_visited": grouped[S.BLOCK_ID].nunique(),
            "visits": grouped.size(),
            "days": grouped["day"].nunique(),
        }
    ).sort_values(["visits", "blocks_visited"], ascending=False)
    out.index = out.index.astype(str)
    return out.rename_axis(S.OFFICER_ID).reset_index()
