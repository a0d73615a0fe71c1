"""A planned walking route and its stops (the value the planner returns and the outputs read)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

import pandas as pd


class Stop(NamedTuple):
    """One block on a route, in walking order."""

    number: int
    block_id: str
    lat: float
    lon: float
    arrival_min: float
    stay_min: float
    walk_m: float
    priority: float
    flag: str | None
    reason: str


@dataclass(frozen=True)
class Route:
    """A planned walking route.

    Attributes
    ----------
    beat_id : str or None
    stops : tuple of Stop
        In walking order; ``arrival_min`` counts from the start.
    start, end : tuple of float
        ``(lat, lon)`` as asked for.
    start_snap_m, end_snap_m : float
        Straight-line distance from the start and end to the street network
        (0 for a straight-line route).
    distance_m : float
        Total distance walked, snaps included.
    walk_min, total_min, budget_min, dwell_min : float
        Minutes walking, walking plus dwell (when the end is reached), the
        time available, and the stay on each block.
    priority : float
        Sum of the visited blocks' priorities.
    candidates : int
        Blocks that had a priority above 0.
    unreachable : tuple of str
        Candidate blocks on a piece of the street network the start is not on.
    too_far : tuple of str
        Candidate blocks that cannot be reached and left within the time even alone.
    path : tuple of (lat, lon)
        The line to walk, start to end, along the streets.
    seed : int
        The seed that chose among equally good routes.
    straight_line : bool
        True when no street network was available: distances and times are
        straight-line estimates, and real walks are longer.
    notes : tuple of str
        Plain sentences for the officer (snaps, straight lines, skipped blocks).
    area : str or None
        The neglected area the walk targets (its id and name), if any.
    """

    beat_id: str | None
    stops: tuple[Stop, ...]
    start: tuple[float, float]
    end: tuple[float, float]
    start_snap_m: float
    end_snap_m: float
    distance_m: float
    walk_min: float
    total_min: float
    budget_min: float
    dwell_min: float
    priority: float
    candidates: int
    unreachable: tuple[str, ...]
    too_far: tuple[str, ...]
    path: tuple[tuple[float, float], ...]
    seed: int
    straight_line: bool
    notes: tuple[str, ...]
    area: str | None = None

    def stops_frame(self) -> pd.DataFrame:
        """The stops as a table (one row per stop, the :class:`Stop` fields as columns)."""
        return pd.DataFrame(list(self.stops), columns=list(Stop._fields))


def default_seed(today: date) -> int:
    """The seed of the day, ``YYYYMMDD`` of the department's date (:func:`beatmap.clock.local_today`)."""
    return today.year * 10_000 + today.month * 100 + today.day
