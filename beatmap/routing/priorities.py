"""How much each block needs a visit, and why: the flag's weight plus the days since the last visit."""

from __future__ import annotations

import pandas as pd

from beatmap import schema as S
from beatmap.metrics import Window
from beatmap.settings import Settings

#: Priorities are compared to this resolution.
PRIORITY_DECIMALS = 3


def block_priorities(coverage: pd.DataFrame, *, window: Window, settings: Settings) -> pd.DataFrame:
    """How much each block needs a visit, and why.

    ``priority = weight of the block's flag + route_weight_per_day x
    min(days since its last foot patrol or community visit, route_days_cap)``;
    a block with no visit in the window counts the whole cap.  Days count to
    the window's last day.

    Parameters
    ----------
    coverage : DataFrame
        A block coverage table (:func:`beatmap.report.block_coverage`).
    window : Window
        The window the coverage was computed over.
    settings : Settings

    Returns
    -------
    DataFrame
        ``priority`` (rounded to 0.001), ``days_since`` (None when never
        visited in the window) and ``reason``, aligned to ``coverage``.
    """
    weights = {
        S.ENFORCEMENT_ONLY: settings.route_weight_enforcement_only,
        S.UNVISITED: settings.route_weight_unvisited,
        S.RARELY_VISITED: settings.route_weight_rarely_visited,
    }
    last = pd.to_datetime(coverage["last_visit"], errors="coerce")
    days = (pd.Timestamp(window.end) - last).dt.days
    counted = days.clip(lower=0, upper=settings.route_days_cap).fillna(settings.route_days_cap)
    flag_weight = coverage["flag"].map(weights).astype(float).fillna(0.0)
    priority = (flag_weight + settings.route_weight_per_day * counted).round(PRIORITY_DECIMALS)
    reasons = [
        _reason(flag, d, visits, enforcement, window)
        for flag, d, visits, enforcement in zip(
            coverage["flag"], days, coverage["visits"], coverage["enforcement"], strict=True
        )
    ]
    return pd.DataFrame(
        {"priority": priority, "days_since": days.astype("Int64"), "reason": reasons}, index=coverage.index
    )


def _reason(flag: str | None, days: float, visits: int, enforcement: int, window: Window) -> str:
    since = (
        f"no foot patrol or community visit in {window.days} days"
        if pd.isna(days)
        else f"last foot patrol or visit {int(days)} day{'' if days == 1 else 's'} ago"
    )
    if flag == S.ENFORCEMENT_ONLY:
        return f"enforcement only: {enforcement} enforcement events and {since}"
    if flag == S.UNVISITED:
        return f"unvisited: {since}"
    if flag == S.RARELY_VISITED:
        return f"rarely visited: {visits} visit{'' if visits == 1 else 's'} in {window.days} days, {since}"
    return since
