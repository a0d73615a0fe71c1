"""Planning a walking route: the blocks that need a visit, the time available, the streets, the solver.

An officer has ``minutes`` to walk from a start point (and back, or to an
end point).  Each block of the beat has a priority from its flag and the
days since its last foot patrol or community visit
(:mod:`beatmap.routing.priorities`); the solver (:mod:`beatmap.routing.solver`)
chooses which blocks to visit and in what order so that the priority
collected within the time is largest.  A route can also target one
neglected area (:mod:`beatmap.neglect`): only its blocks are candidates.

Routes are unpredictable by design, because a patrol that follows the same
path every day can be read: the seed chooses among equally good routes, and
a round trip is walked the other way round on half the seeds.  The default
seed is the date (``YYYYMMDD``), so each day differs; the same seed gives
the same route again.  Without a street network the planner says so and
gives straight-line estimates, labelled as such.

``bench/routes.py`` measures it on the demo city against a greedy baseline
and, on small instances, against the exact optimum.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS
from sqlalchemy import Engine

from beatmap import schema as S
from beatmap import store
from beatmap.clock import local_today
from beatmap.crs import WGS84, is_metric, transform_xy
from beatmap.errors import CRSError, InputError
from beatmap.metrics import Window
from beatmap.neglect import area_block_ids, neglected_areas
from beatmap.report import block_coverage, window_from_store
from beatmap.routing.landmarks import MAX_START_DISTANCE_M, check_lat_lon
from beatmap.routing.network import WalkingDistances, walking_distances
from beatmap.routing.priorities import PRIORITY_DECIMALS, block_priorities
from beatmap.routing.route import Route, Stop, default_seed
from beatmap.routing.solver import solve_orienteering
from beatmap.settings import Settings

#: Streets this far around the beat are used too, so a walk may cut outside the beat briefly (metres).
STREET_MARGIN_M = 500.0


def route_from_store(
    engine: Engine,
    *,
    beat_id: str,
    start: tuple[float, float],
    minutes: float,
    settings: Settings,
    end: tuple[float, float] | None = None,
    dwell_min: float | None = None,
    seed: int | None = None,
    window: Window | None = None,
    time_limit_s: float | None = None,
    area_id: str | None = None,
) -> Route:
    """Plan a walking route through one beat's blocks from the coverage and streets in the store.

    Every block of the beat with a priority above 0 (see
    :func:`block_priorities`) is a candidate, or with ``area_id`` every
    block of that neglected area of the beat
    (:func:`beatmap.neglect.neglected_areas`, over the same window); the
    streets of the beat and :data:`STREET_MARGIN_M` around it are walked.
    See :func:`plan_walking_route` for the other parameters.

    Raises
    ------
    InputError
        When the beat or area is unknown, the beat is left out of the analysis
        (``settings.excluded_beats``), the start or end is more than
        :data:`MAX_START_DISTANCE_M` from the beat, or no block fits in the time.
    StoreError
        When no areas are loaded.
    """
    if beat_id in settings.excluded_beats:
        raise InputError(
            f"beat {beat_id} is left out of the analysis (excluded_beats in the settings, or when the areas were "
            "loaded): its blocks are not analysed or flagged, so no route is planned there."
        )
    window = window or window_from_store(engine, settings=settings)
    coverage = block_coverage(engine, window=window, settings=settings, beat_id=beat_id)
    beat = store.read_beats(engine).set_index(S.BEAT_ID).geometry[beat_id]
    crs = CRS(coverage.crs)
    reach = beat
    for what, point in (("start", start), ("end", end)):
        if point is None:
            continue
        check_lat_lon(point, what=what)
        xy = shapely.Point(*(float(v[0]) for v in transform_xy(np.array([point[1]]), np.array([point[0]]), WGS84, crs)))
        away = beat.distance(xy)
        if away > MAX_START_DISTANCE_M:
            raise InputError(
                f"the {what} {point[0]},{point[1]} is {away / 1000:.1f} km from beat {beat_id}; give a "
                f"point in the beat or within {MAX_START_DISTANCE_M:,.0f} m of it (latitude first)."
            )
        reach = reach.union(xy)
    priorities = block_priorities(coverage, window=window, settings=settings)
    candidates = coverage.join(priorities)
    candidates = candidates[candidates["priority"] > 0]
    streets = store.read_streets(engine, bounds=reach.buffer(STREET_MARGIN_M).bounds)
    area = None
    if area_id is not None:
        areas = neglected_areas(coverage, streets=streets if len(streets) else None)
        candidates = candidates[candidates[S.BLOCK_ID].isin(area_block_ids(areas, area_id))]
        area = f"{area_id}, {areas.set_index('area_id').at[str(area_id), 'name']}"
    route = plan_walking_route(
        candidates,
        streets if len(streets) else None,
        start=start,
        minutes=minutes,
        settings=settings,
        end=end,
        dwell_min=dwell_min,
        seed=seed,
        beat_id=beat_id,
        time_limit_s=time_limit_s,
    )
    if area is None:
        return route
    left = len(candidates) - len(route.stops)
    note = f"This walk covers neglected area {area}" + (
        f"; {left} of its blocks do not fit in the time." if left else ": every one of its blocks."
    )
    return dataclasses.replace(route, area=area, notes=(note, *route.notes))


def plan_walking_route(
    candidates: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None,
    *,
    start: tuple[float, float],
    minutes: float,
    settings: Settings,
    end: tuple[float, float] | None = None,
    dwell_min: float | None = None,
    seed: int | None = None,
    beat_id: str | None = None,
    time_limit_s: float | None = None,
) -> Route:
    """Choose and order the blocks to visit within a time budget, walking on the streets.

    Parameters
    ----------
    candidates : GeoDataFrame
        ``block_id``, ``priority`` (> 0) and block polygons in a metric CRS;
        optionally ``flag`` and ``reason``.
    streets : GeoDataFrame or None
        Street centrelines in the same CRS; None (or empty) for straight-line
        estimates.
    start : tuple of float
        ``(lat, lon)`` where the walk starts.
    minutes : float
        Time available, walking and dwell together.
    settings : Settings
        Walking speed, default dwell and the solver's time limit.
    end : tuple of float, optional
        ``(lat, lon)`` where the walk ends; default: back at the start.
    dwell_min : float, optional
        Minutes on each block (default ``settings.dwell_min``).
    seed : int, optional
        Chooses among equally good routes; default :func:`default_seed`.
    beat_id : str, optional
        Shown on the route.
    time_limit_s : float, optional
        Solver search time (default ``settings.route_time_limit_s``).

    Returns
    -------
    Route

    Raises
    ------
    InputError
        When no block can be visited within the time (the message says how
        long the nearest needs), no candidate is given or reachable, or the
        end is not connected to the start.
    CRSError
        When the candidates are not in a metric CRS, or the streets in another.
    """
    dwell = float(settings.dwell_min if dwell_min is None else dwell_min)
    seed = default_seed(local_today(settings.timezone)) if seed is None else int(seed)
    end = start if end is None else end
    check_lat_lon(start, what="start")
    check_lat_lon(end, what="end")
    if not (math.isfinite(minutes) and minutes > 0):
        raise InputError(f"minutes {minutes!r}: give the time available as a positive number of minutes.")
    if not 0 < dwell <= 120:
        raise InputError(
            f"dwell {dwell:g} min: give the minutes on each block, between 1 and 120 (10 to 15 works best)."
        )
    where = f" in beat {beat_id}" if beat_id else ""
    if candidates.empty:
        raise InputError(f"no block{where} needs a visit: every block was visited recently and none is flagged.")
    crs = CRS(candidates.crs) if candidates.crs is not None else None
    if crs is None or not is_metric(crs):
        raise CRSError("the candidate blocks must be in a projected CRS in metres (the store's analysis CRS).")
    use_streets = streets is not None and len(streets) > 0
    if streets is not None and use_streets and not CRS(streets.crs).equals(crs):
        raise CRSError(
            f"the streets are in {CRS(streets.crs).name} but the blocks in {crs.name}; give both in the analysis CRS."
        )

    ids = candidates[S.BLOCK_ID].astype(str).to_numpy()
    walk = walking_distances(candidates, streets if use_streets else None, start=start, end=end)
    notes = list(walk.notes)
    reachable = ~walk.unreachable
    if not reachable.any():
        raise InputError(
            f"none of the {len(ids)} blocks{where} that need a visit can be reached on the street "
            "network from the start: the start is on a piece of the network not joined to them. "
            "Start from a street inside the beat."
        )

    speed = settings.walking_speed_kmh * 1000 / 60  # metres per minute
    budget = float(minutes)
    dist = walk.distance  # rows/cols: 0 start, 1 end, 2.. candidates
    base = dist[0, 1] / speed
    if base > budget:
        raise InputError(
            f"walking from the start to the end alone takes {base:.0f} minutes, more than the "
            f"{budget:g} available. Give more time or an end closer to the start."
        )
    # In whole seconds, walking rounded up, as the solver counts.
    alone = (np.ceil(dist[0, 2:] / speed * 60) + np.ceil(dist[2:, 1] / speed * 60)) / 60 + dwell
    fits = reachable & (alone <= math.floor(budget * 60) / 60)
    if not fits.any():
        nearest = int(np.argmin(np.where(reachable, alone, np.inf)))
        raise InputError(
            f"{budget:g} minutes is too short to visit any block{where}: the nearest, {ids[nearest]}, needs about "
            f"{alone[nearest]:.0f} minutes ({alone[nearest] - dwell:.0f} walking and {dwell:g} on the block). "
            f"Give at least {math.ceil(alone[nearest] - 1e-9)} minutes, or a shorter dwell."
        )
    unreachable = tuple(ids[~reachable])
    too_far = tuple(ids[reachable & ~fits])
    if unreachable:
        notes.append(
            f"{len(unreachable)} block(s) are on streets not joined to the start's and were left out: "
            f"{', '.join(unreachable[:10])}{' …' if len(unreachable) > 10 else ''}."
        )
    if too_far:
        notes.append(f"{len(too_far)} block(s) are too far to reach and leave within {budget:g} minutes.")
    if dwell < 10:
        notes.append(
            f"Stays of {dwell:g} minutes are short: hot-spot research finds 10 to 15 minutes of presence "
            "per stop works best (Koper)."
        )

    chosen = np.flatnonzero(fits)
    priority = candidates["priority"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    order = solve_orienteering(
        dist[np.ix_([0, 1, *(chosen + 2)], [0, 1, *(chosen + 2)])] / speed * 60,
        dist[np.ix_([0, 1, *(chosen + 2)], [0, 1, *(chosen + 2)])],
        priority[chosen],
        dwell_s=dwell * 60,
        budget_s=budget * 60,
        rng=rng,
        time_limit_s=settings.route_time_limit_s if time_limit_s is None else time_limit_s,
    )
    if len(order) == 0:
        raise InputError(
            f"no block{where} fits in {budget:g} minutes with {dwell:g} minutes on each; "
            "give more time or a shorter dwell."
        )
    visit = chosen[order]
    if rng.random() < 0.5 and tuple(start) == tuple(end):
        visit = visit[::-1]  # a round trip walked the other way is as good
    return _route(
        candidates,
        walk,
        visit,
        start=start,
        end=end,
        speed=speed,
        dwell=dwell,
        budget=budget,
        seed=seed,
        beat_id=beat_id,
        notes=notes,
        unreachable=unreachable,
        too_far=too_far,
    )


def _route(
    candidates: gpd.GeoDataFrame,
    walk: WalkingDistances,
    visit: np.ndarray,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
    speed: float,
    dwell: float,
    budget: float,
    seed: int,
    beat_id: str | None,
    notes: list[str],
    unreachable: tuple[str, ...],
    too_far: tuple[str, ...],
) -> Route:
    """Assemble the :class:`Route` of a visiting order: arrival times, path in WGS84, stop details."""
    crs = CRS(candidates.crs)
    sequence = [0, *(visit + 2), 1]
    legs = [walk.distance[a, b] for a, b in itertools.pairwise(sequence)]
    line: list[np.ndarray] = []
    for a, b in itertools.pairwise(sequence):
        piece = walk.path(a, b)
        line.extend(piece if not line else piece[1:])
    xy = np.array(line)
    lon, lat = transform_xy(xy[:, 0], xy[:, 1], crs, WGS84)
    stop_xy = walk.xy[visit + 2] if len(visit) else np.empty((0, 2))
    stop_lon, stop_lat = transform_xy(stop_xy[:, 0], stop_xy[:, 1], crs, WGS84)
    flags = candidates["flag"].to_numpy(dtype=object) if "flag" in candidates else np.full(len(candidates), None)
    reasons = candidates["reason"].to_numpy(dtype=object) if "reason" in candidates else np.full(len(candidates), "")
    ids = candidates[S.BLOCK_ID].astype(str).to_numpy()
    priority = candidates["priority"].to_numpy(dtype=float)
    stops, clock = [], 0.0
    for number, (k, leg) in enumerate(zip(visit, legs, strict=False), start=1):
        clock += leg / speed
        flag = flags[k] if isinstance(flags[k], str) else None
        stops.append(
            Stop(
                number,
                ids[k],
                round(float(stop_lat[number - 1]), 6),
                round(float(stop_lon[number - 1]), 6),
                round(clock, 1),
                dwell,
                round(float(leg), 1),
                float(priority[k]),
                flag,
                str(reasons[k] or ""),
            )
        )
        clock += dwell
    distance = float(sum(legs))
    walk_min = distance / speed
    return Route(
        beat_id=beat_id,
        stops=tuple(stops),
        start=(start[0], start[1]),
        end=(end[0], end[1]),
        start_snap_m=round(walk.start_snap, 1),
        end_snap_m=round(walk.end_snap, 1),
        distance_m=round(distance, 1),
        walk_min=round(walk_min, 1),
        total_min=round(walk_min + dwell * len(stops), 1),
        budget_min=budget,
        dwell_min=dwell,
        priority=round(float(priority[visit].sum()), PRIORITY_DECIMALS),
        candidates=len(candidates),
        unreachable=unreachable,
        too_far=too_far,
        path=tuple(zip(np.round(lat, 6).tolist(), np.round(lon, 6).tolist(), strict=True)),
        seed=seed,
        straight_line=walk.straight_line,
        notes=tuple(notes),
    )
