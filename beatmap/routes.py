"""Walking routes through a beat's neglected blocks: priorities, the planner, GPX and a printable card.

An officer has ``minutes`` to walk from a start point (and back, or to an
end point).  Each block of the beat has a priority from its flag and the days
since its last foot patrol or community visit (weights in the settings).
Choosing which blocks to visit and in what order, so that the priority
collected within the time is largest, is an orienteering (prize-collecting)
problem.  It is solved with OR-Tools' routing solver:

* one vehicle from a start depot to an end depot;
* every block is optional (``AddDisjunction``): leaving it out costs its
  priority.  The model writes this as a reward on the arc into the block
  plus an equal penalty for every block left out, which adds up to the same
  objective but lets guided local search (which works on arcs) trade one
  block for two better ones;
* a time dimension (walking time plus the dwell on each block as service
  time) capped at the budget;
* the distance walked is in the arc cost too, weighted so that a kilometre
  counts as 0.001 of priority: priority comes first, and among equally good
  routes the shorter wins;
* the cheapest-insertion first solution is improved by guided local search
  for 1,000 solutions (deterministic), or ``route_time_limit_s`` (settings)
  if that comes first.

``bench/routes.py`` measures it on the demo city against a greedy baseline
and, on small instances, against the exact optimum.

Routes are unpredictable by design, because a patrol that follows the same
path every day can be read.  A first search, which does not depend on the
seed, finds the best route it can.  A second search starts from that route with every walk's cost stretched by a random factor of up
to 25% drawn from the seed: that decides among blocks of equal priority and
among visiting orders that fit the time, and its route is kept only if it
covers exactly as much priority.  A round trip is also walked the other way
round on half the seeds.  So two seeds give routes of the same priority,
often through different blocks of equal priority or in a different order.  The default seed is the date
(``YYYYMMDD``), so each day differs; the same seed gives the same route again.

Walks follow the street network (:mod:`beatmap.streets`): the start and end
snap to the nearest network node (the distance is reported and walked in a
straight line), each block is reached at the network node nearest to it, and
on a network in pieces only the start's piece is used (the blocks on other
pieces are named as unreachable).  Without a street network the planner
says so and gives straight-line estimates, labelled as such.
"""

from __future__ import annotations

import html
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from ortools.constraint_solver import pywrapcp, routing_enums_pb2
from pyproj import CRS
from scipy.sparse.csgraph import dijkstra
from sqlalchemy import Engine

from beatmap import schema as S
from beatmap import store
from beatmap.clock import local_today
from beatmap.crs import WGS84, is_metric, transform_xy
from beatmap.errors import CRSError, InputError
from beatmap.metrics import Window
from beatmap.report import block_coverage, window_from_store
from beatmap.settings import Settings
from beatmap.streets import street_graph

#: A start or end farther than this from the beat is refused (metres).
MAX_START_DISTANCE_M = 1_000.0
#: Streets this far around the beat are used too, so a walk may cut outside the beat briefly (metres).
STREET_MARGIN_M = 500.0
#: Priorities are compared to this resolution.
PRIORITY_DECIMALS = 3
#: Solver objective units (metres walked) per 0.001 of priority: a kilometre of walking weighs as much as
#: 0.001 of priority, so priority comes first and the distance only chooses among equally good routes.
_PRIORITY_UNIT = 1_000
#: The seed stretches each walk's cost by up to this fraction (a tie-break among equally good routes).
_SEED_STRETCH = 0.25
#: Guided local search's penalty strength.  The default (0.1) suits pure distance objectives; with the
#: priorities in the arc costs the search needs stronger penalties to leave the first good route it finds
#: (measured on the demo city against exact optima: 1 miss in 132 instances at 100, up to 27% gaps at 0.1).
_GLS_LAMBDA = 100.0
#: The first search stops after this many solutions (bench/routes.py: at most 2.5 s for 300 candidate
#: blocks, within the time limit's share; 1,000 gave 0.9% less priority and missed one route by 22%,
#: 2,500 no more priority than 1,500) ...
_SOLUTION_LIMIT = 1_500
#: ... and the seed's search, which starts from its route, after this many.
_SEED_SOLUTION_LIMIT = 300
#: Priority totals closer than this are the same (priorities carry PRIORITY_DECIMALS decimals).
_SAME_PRIORITY = 1e-6
_GPX_NS = "http://www.topografix.com/GPX/1/1"


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

    def stops_frame(self) -> pd.DataFrame:
        """The stops as a table (one row per stop, the :class:`Stop` fields as columns)."""
        return pd.DataFrame(list(self.stops), columns=list(Stop._fields))


def default_seed(today: date) -> int:
    """The seed of the day, ``YYYYMMDD`` of the department's date (:func:`beatmap.clock.local_today`)."""
    return today.year * 10_000 + today.month * 100 + today.day


def parse_lat_lon(text: str, *, what: str = "--start") -> tuple[float, float]:
    """Read ``"LAT,LON"`` (decimal degrees) as a ``(lat, lon)`` pair.

    Raises
    ------
    InputError
        When the text is not two numbers or they are out of range.
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError as exc:
        raise InputError(f"{what} {text!r}: give latitude and longitude in degrees, e.g. 41.6012,-88.0995.") from exc
    _check_lat_lon((lat, lon), what=what)
    return lat, lon


def start_point(text: str, *, settings: Settings, what: str = "--start") -> tuple[float, float]:
    """A start or end given as ``"LAT,LON"`` or as the name of a landmark of the settings."""
    named = {name.casefold(): point for name, point in settings.landmarks.items()}
    if str(text).strip().casefold() in named:
        return named[str(text).strip().casefold()]
    if "," not in str(text) and settings.landmarks:
        raise InputError(f"{what} {text!r}: not a landmark of the settings ({', '.join(settings.landmarks)}); give "
                         "one of those or latitude and longitude, e.g. 41.6012,-88.0995.")
    return parse_lat_lon(text, what=what)


def landmarks_near(beat: gpd.GeoDataFrame, settings: Settings) -> dict[str, tuple[float, float]]:
    """The settings' landmarks a walk on ``beat`` (one polygon, metric CRS) can start from, nearest first.

    Those within :data:`MAX_START_DISTANCE_M` of the beat, the distance a route accepts.
    """
    if not settings.landmarks:
        return {}
    names = list(settings.landmarks)
    lat, lon = (np.array([settings.landmarks[n][i] for n in names], dtype=float) for i in (0, 1))
    x, y = transform_xy(lon, lat, WGS84, CRS(beat.crs))
    away = shapely.distance(beat.geometry.iloc[0], shapely.points(x, y))
    return {names[i]: settings.landmarks[names[i]] for i in np.argsort(away, kind="stable")
            if away[i] <= MAX_START_DISTANCE_M}


def _check_lat_lon(point: tuple[float, float], *, what: str) -> None:
    lat, lon = point
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(f"{what} {lat},{lon}: latitude must be within ±90 and longitude within ±180 degrees "
                         "(latitude first).")


# --- priorities -----------------------------------------------------------------------------------


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
    weights = {S.ENFORCEMENT_ONLY: settings.route_weight_enforcement_only,
               S.UNVISITED: settings.route_weight_unvisited,
               S.RARELY_VISITED: settings.route_weight_rarely_visited}
    last = pd.to_datetime(coverage["last_visit"], errors="coerce")
    days = (pd.Timestamp(window.end) - last).dt.days
    counted = days.clip(lower=0, upper=settings.route_days_cap).fillna(settings.route_days_cap)
    flag_weight = coverage["flag"].map(weights).astype(float).fillna(0.0)
    priority = (flag_weight + settings.route_weight_per_day * counted).round(PRIORITY_DECIMALS)
    reasons = [_reason(flag, d, visits, enforcement, window)
               for flag, d, visits, enforcement in zip(coverage["flag"], days, coverage["visits"],
                                                       coverage["enforcement"], strict=True)]
    return pd.DataFrame({"priority": priority, "days_since": days.astype("Int64"), "reason": reasons},
                        index=coverage.index)


def _reason(flag: str | None, days: float, visits: int, enforcement: int, window: Window) -> str:
    since = (f"no foot patrol or community visit in {window.days} days" if pd.isna(days)
             else f"last foot patrol or visit {int(days)} day{'' if days == 1 else 's'} ago")
    if flag == S.ENFORCEMENT_ONLY:
        return f"enforcement only: {enforcement} enforcement events and {since}"
    if flag == S.UNVISITED:
        return f"unvisited: {since}"
    if flag == S.RARELY_VISITED:
        return f"rarely visited: {visits} visit{'' if visits == 1 else 's'} in {window.days} days, {since}"
    return since


# --- planning ---------------------------------------------------------------------------------------


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
) -> Route:
    """Plan a walking route through one beat's blocks from the coverage and streets in the store.

    Every block of the beat with a priority above 0 (see
    :func:`block_priorities`) is a candidate; the streets of the beat and
    :data:`STREET_MARGIN_M` around it are walked.  See
    :func:`plan_walking_route` for the other parameters.

    Raises
    ------
    InputError
        When the beat is unknown, the start or end is more than
        :data:`MAX_START_DISTANCE_M` from the beat, or no block fits in the time.
    StoreError
        When no areas are loaded.
    """
    window = window or window_from_store(engine, settings=settings)
    coverage = block_coverage(engine, window=window, settings=settings, beat_id=beat_id)
    beat = store.read_beats(engine).set_index(S.BEAT_ID).geometry[beat_id]
    crs = CRS(coverage.crs)
    reach = beat
    for what, point in (("start", start), ("end", end)):
        if point is None:
            continue
        _check_lat_lon(point, what=what)
        xy = shapely.Point(*(float(v[0]) for v in transform_xy([point[1]], [point[0]], WGS84, crs)))
        away = beat.distance(xy)
        if away > MAX_START_DISTANCE_M:
            raise InputError(f"the {what} {point[0]},{point[1]} is {away / 1000:.1f} km from beat {beat_id}; give a "
                             f"point in the beat or within {MAX_START_DISTANCE_M:,.0f} m of it (latitude first).")
        reach = reach.union(xy)
    priorities = block_priorities(coverage, window=window, settings=settings)
    candidates = coverage.join(priorities)
    candidates = candidates[candidates["priority"] > 0]
    streets = store.read_streets(engine, bounds=reach.buffer(STREET_MARGIN_M).bounds)
    return plan_walking_route(candidates, streets if len(streets) else None, start=start, minutes=minutes,
                              settings=settings, end=end, dwell_min=dwell_min, seed=seed, beat_id=beat_id,
                              time_limit_s=time_limit_s)


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
    _check_lat_lon(start, what="start")
    _check_lat_lon(end, what="end")
    if not (math.isfinite(minutes) and minutes > 0):
        raise InputError(f"minutes {minutes!r}: give the time available as a positive number of minutes.")
    if not 0 < dwell <= 120:
        raise InputError(f"dwell {dwell:g} min: give the minutes on each block, between 1 and 120 "
                         "(10 to 15 works best).")
    where = f" in beat {beat_id}" if beat_id else ""
    if candidates.empty:
        raise InputError(f"no block{where} needs a visit: every block was visited recently and none is flagged.")
    crs = CRS(candidates.crs) if candidates.crs is not None else None
    if crs is None or not is_metric(crs):
        raise CRSError("the candidate blocks must be in a projected CRS in metres (the store's analysis CRS).")
    use_streets = streets is not None and len(streets) > 0
    if use_streets and not CRS(streets.crs).equals(crs):
        raise CRSError(f"the streets are in {CRS(streets.crs).name} but the blocks in {crs.name}; "
                       "give both in the analysis CRS.")

    ids = candidates[S.BLOCK_ID].astype(str).to_numpy()
    walk = walking_distances(candidates, streets if use_streets else None, start=start, end=end)
    notes = list(walk["notes"])
    reachable = ~walk["unreachable"]
    if not reachable.any():
        raise InputError(f"none of the {len(ids)} blocks{where} that need a visit can be reached on the street "
                         "network from the start: the start is on a piece of the network not joined to them. "
                         "Start from a street inside the beat.")

    speed = settings.walking_speed_kmh * 1000 / 60  # metres per minute
    budget = float(minutes)
    dist = walk["distance"]  # rows/cols: 0 start, 1 end, 2.. candidates
    base = dist[0, 1] / speed
    if base > budget:
        raise InputError(f"walking from the start to the end alone takes {base:.0f} minutes, more than the "
                         f"{budget:g} available. Give more time or an end closer to the start.")
    # In whole seconds, walking rounded up, as the solver counts.
    alone = (np.ceil(dist[0, 2:] / speed * 60) + np.ceil(dist[2:, 1] / speed * 60)) / 60 + dwell
    fits = reachable & (alone <= math.floor(budget * 60) / 60)
    if not fits.any():
        nearest = int(np.argmin(np.where(reachable, alone, np.inf)))
        raise InputError(
            f"{budget:g} minutes is too short to visit any block{where}: the nearest, {ids[nearest]}, needs about "
            f"{alone[nearest]:.0f} minutes ({alone[nearest] - dwell:.0f} walking and {dwell:g} on the block). "
            f"Give at least {math.ceil(alone[nearest] - 1e-9)} minutes, or a shorter dwell.")
    unreachable = tuple(ids[~reachable])
    too_far = tuple(ids[reachable & ~fits])
    if unreachable:
        notes.append(f"{len(unreachable)} block(s) are on streets not joined to the start's and were left out: "
                     f"{', '.join(unreachable[:10])}{' …' if len(unreachable) > 10 else ''}.")
    if too_far:
        notes.append(f"{len(too_far)} block(s) are too far to reach and leave within {budget:g} minutes.")
    if dwell < 10:
        notes.append(f"Stays of {dwell:g} minutes are short: hot-spot research finds 10 to 15 minutes of presence "
                     "per stop works best (Koper).")

    chosen = np.flatnonzero(fits)
    priority = candidates["priority"].to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    order = _solve_orienteering(
        dist[np.ix_([0, 1, *(chosen + 2)], [0, 1, *(chosen + 2)])] / speed * 60,
        dist[np.ix_([0, 1, *(chosen + 2)], [0, 1, *(chosen + 2)])],
        priority[chosen], dwell_s=dwell * 60, budget_s=budget * 60, rng=rng,
        time_limit_s=settings.route_time_limit_s if time_limit_s is None else time_limit_s,
    )
    if len(order) == 0:
        raise InputError(f"no block{where} fits in {budget:g} minutes with {dwell:g} minutes on each; "
                         "give more time or a shorter dwell.")
    visit = chosen[order]
    if rng.random() < 0.5 and tuple(start) == tuple(end):
        visit = visit[::-1]  # a round trip walked the other way is as good
    return _route(candidates, walk, visit, start=start, end=end, speed=speed, dwell=dwell, budget=budget,
                  seed=seed, beat_id=beat_id, notes=notes, unreachable=unreachable, too_far=too_far)


def walking_distances(
    candidates: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
) -> dict:
    """Walking distances between the start, the end and every candidate block.

    Parameters
    ----------
    candidates : GeoDataFrame
        Block polygons in a metric CRS.
    streets : GeoDataFrame or None
        Street centrelines in the same CRS; None for straight lines between
        block centres.
    start, end : tuple of float
        ``(lat, lon)``.

    Returns
    -------
    dict
        ``distance``: square array of metres over [start, end, candidates...]
        (1e12 for blocks off the start's piece of network); ``xy``: where each
        of those points is reached, in the CRS; ``unreachable``: bool per
        candidate; ``start_snap`` and ``end_snap`` (metres); ``straight_line``;
        ``path(i, j)``: the metric points walked from point i to point j;
        ``notes``: sentences for the officer.
    """
    points = _metric_points(start, end, CRS(candidates.crs))
    if streets is None or len(streets) == 0:
        return _straight_walk(candidates, points)
    return _network_walk(candidates, streets, points)


def _metric_points(start: tuple[float, float], end: tuple[float, float], crs: CRS) -> np.ndarray:
    """``[[x, y] of start, [x, y] of end]`` in ``crs`` from ``(lat, lon)`` pairs."""
    x, y = transform_xy([start[1], end[1]], [start[0], end[0]], WGS84, crs)
    return np.column_stack([x, y])


def _straight_walk(candidates: gpd.GeoDataFrame, points: np.ndarray) -> dict:
    """Straight-line distances between the start, the end and each block's inner point."""
    centres = shapely.get_coordinates(candidates.geometry.representative_point().to_numpy())
    xy = np.vstack([points, centres])
    distance = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return {
        "distance": distance, "xy": xy, "unreachable": np.zeros(len(candidates), dtype=bool),
        "start_snap": 0.0, "end_snap": 0.0, "straight_line": True, "path": lambda i, j: [xy[i], xy[j]],
        "notes": ["No street network is loaded: distances and times are straight-line estimates between block "
                  "centres, and real walks are longer. Load streets with `beatmap streets FILE`."],
    }


def _network_walk(candidates: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, points: np.ndarray) -> dict:
    """Walking distances on the street network between the start, the end and each block's nearest node."""
    graph = street_graph(streets)
    nodes = np.array(sorted(graph.nodes))
    node_xy = np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in nodes])
    tree = shapely.STRtree(shapely.points(node_xy))
    snapped, snap_m = tree.query_nearest(shapely.points(points), return_distance=True, all_matches=False)
    start_node, end_node = nodes[snapped[1][np.argsort(snapped[0])]]
    snap_m = snap_m[np.argsort(snapped[0])]
    block_node = _nearest_nodes(candidates, tree, nodes, node_xy)

    piece = nx.node_connected_component(graph, int(start_node))
    if int(end_node) not in piece:
        raise InputError("the end is on a piece of the street network not joined to the start's; "
                         "choose an end on streets the start can walk to.")
    unreachable = np.array([int(n) not in piece for n in block_node])
    targets = np.array([start_node, end_node, *block_node])
    sources, row_of = np.unique(targets, return_inverse=True)
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=list(nodes), weight="length", format="csr")
    position = {int(n): i for i, n in enumerate(nodes)}
    source_pos = np.array([position[int(n)] for n in sources])
    target_pos = np.array([position[int(n)] for n in targets])
    lengths, predecessors = dijkstra(adjacency, directed=False, indices=source_pos, return_predecessors=True)
    distance = lengths[row_of.ravel()][:, target_pos]
    distance[0, :] += snap_m[0]
    distance[:, 1] += snap_m[1]
    distance[~np.isfinite(distance)] = 1e12  # blocks off the start's piece: never chosen

    def path(i: int, j: int) -> list[np.ndarray]:
        row = predecessors[row_of.ravel()[i]]
        here, steps = target_pos[j], []
        while here >= 0:
            steps.append(node_xy[here])
            here = row[here]
        line = steps[::-1]
        if i == 0:
            line.insert(0, points[0])
        if j == 1:
            line.append(points[1])
        return line

    notes = []
    for what, metres in (("start", snap_m[0]), ("end", snap_m[1])):
        if metres > 1:
            notes.append(f"The {what} is {metres:.0f} m from the nearest street; that stretch is counted in a "
                         "straight line.")
    return {"distance": distance, "xy": np.vstack([points, node_xy[target_pos[2:]]]), "unreachable": unreachable,
            "start_snap": float(snap_m[0]), "end_snap": float(snap_m[1]), "straight_line": False, "path": path,
            "notes": notes}


def _nearest_nodes(candidates: gpd.GeoDataFrame, tree: shapely.STRtree, nodes: np.ndarray,
                   node_xy: np.ndarray) -> np.ndarray:
    """The network node nearest to each block; ties go to the node nearest the block's centre, then the lower id."""
    blocks = candidates.geometry.to_numpy()
    pairs = tree.query_nearest(blocks, all_matches=True)
    centres = shapely.get_coordinates(shapely.centroid(blocks))
    frame = pd.DataFrame({"block": pairs[0], "node": pairs[1]})
    frame["to_centre"] = np.hypot(*(node_xy[frame["node"]] - centres[frame["block"]]).T)
    best = frame.sort_values(["block", "to_centre", "node"]).drop_duplicates("block")
    return nodes[best.sort_values("block")["node"].to_numpy()]


def _solve_orienteering(
    travel_s: np.ndarray,
    distance_m: np.ndarray,
    priority: np.ndarray,
    *,
    dwell_s: float,
    budget_s: float,
    rng: np.random.Generator,
    time_limit_s: float,
) -> np.ndarray:
    """Which candidates to visit, in order (indices into ``priority``), with OR-Tools' routing solver.

    ``travel_s`` and ``distance_m`` are square over [start, end, candidates...].  Two searches: the
    first, on the true distances, does not depend on the seed and finds the best route it can; the
    second starts from it with the distances stretched by the seed's draw, and its route is kept
    only if it covers exactly as much priority.  So every seed's route is as good as every other's,
    and the seed decides only among equally good routes (a better route a seed's search stumbles
    on is not taken: other seeds would not find it).
    """
    common = {"travel_s": travel_s, "priority": priority, "dwell_s": dwell_s, "budget_s": budget_s}
    best = _search(distance_m=distance_m, initial=None, solutions=_SOLUTION_LIMIT,
                   time_limit_s=0.75 * time_limit_s, **common)
    stretch = 1 + _SEED_STRETCH * rng.random(distance_m.shape)
    seeded = _search(distance_m=distance_m * stretch, initial=best, solutions=_SEED_SOLUTION_LIMIT,
                     time_limit_s=0.25 * time_limit_s, **common)
    return seeded if abs(priority[seeded].sum() - priority[best].sum()) <= _SAME_PRIORITY else best


def _search(
    *,
    travel_s: np.ndarray,
    distance_m: np.ndarray,
    priority: np.ndarray,
    dwell_s: float,
    budget_s: float,
    initial: np.ndarray | None,
    solutions: int,
    time_limit_s: float,
) -> np.ndarray:
    """One OR-Tools search (see the module docstring for the model), from ``initial`` when given.

    A block's priority is a reward on the arc into it (``top - reward``) and leaving it out costs
    ``top``: for every route that adds up to ``candidates x top - priority collected + distance``,
    the same objective as a penalty of the block's own priority for leaving it out, but guided
    local search (which penalises arcs) then trades one block for two others instead of cycling
    around the first route it found.
    """
    n = len(priority)
    manager = pywrapcp.RoutingIndexManager(n + 2, 1, [0], [1])
    routing = pywrapcp.RoutingModel(manager)
    service = np.r_[0, 0, np.full(n, dwell_s)]
    # Round walking times up, so a route the solver accepts is never longer than the budget.
    time_matrix = np.ceil(travel_s + service[:, None]).astype(np.int64)
    time_matrix[:, 0] = 0  # nothing returns to the start depot
    routing.AddDimension(routing.RegisterTransitMatrix(time_matrix.tolist()), 0, int(math.floor(budget_s)), True,
                         "time")
    reward = np.rint(priority * 10 ** PRIORITY_DECIMALS).astype(np.int64) * _PRIORITY_UNIT
    top = int(reward.max())
    cost = np.rint(distance_m).astype(np.int64) + np.r_[0, 0, top - reward][None, :]
    cost[:, 0] = 0
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(cost.tolist()))
    for k in range(n):
        routing.AddDisjunction([manager.NodeToIndex(k + 2)], top)
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.guided_local_search_lambda_coefficient = _GLS_LAMBDA
    # A count of solutions, not the clock, ends the search, so the same seed gives the same route on any
    # machine; the time limit only caps it on a very large beat or a slow machine.
    params.solution_limit = solutions
    params.time_limit.FromMilliseconds(max(1, int(time_limit_s * 1000)))
    if initial is None:
        solution = routing.SolveWithParameters(params)
    else:
        routing.CloseModelWithParameters(params)
        start = routing.ReadAssignmentFromRoutes([[manager.NodeToIndex(int(k) + 2) for k in initial]], True)
        if start is None:  # cannot happen for a route the same model accepted; keep it as it is
            return initial
        solution = routing.SolveFromAssignmentWithParameters(start, params)
    if solution is None:
        return np.array([], dtype=np.int64) if initial is None else initial
    order = []
    index = solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(index):
        order.append(manager.IndexToNode(index) - 2)
        index = solution.Value(routing.NextVar(index))
    return np.array(order, dtype=np.int64)


def _route(candidates: gpd.GeoDataFrame, walk: dict, visit: np.ndarray, *, start: tuple[float, float],
           end: tuple[float, float], speed: float, dwell: float, budget: float, seed: int, beat_id: str | None,
           notes: list[str], unreachable: tuple[str, ...], too_far: tuple[str, ...]) -> Route:
    """Assemble the :class:`Route` of a visiting order: arrival times, path in WGS84, stop details."""
    crs = CRS(candidates.crs)
    sequence = [0, *(visit + 2), 1]
    legs = [walk["distance"][a, b] for a, b in zip(sequence[:-1], sequence[1:], strict=True)]
    line: list[np.ndarray] = []
    for a, b in zip(sequence[:-1], sequence[1:], strict=True):
        piece = walk["path"](a, b)
        line.extend(piece if not line else piece[1:])
    xy = np.array(line)
    lon, lat = transform_xy(xy[:, 0], xy[:, 1], crs, WGS84)
    stop_xy = walk["xy"][visit + 2] if len(visit) else np.empty((0, 2))
    stop_lon, stop_lat = transform_xy(stop_xy[:, 0], stop_xy[:, 1], crs, WGS84)
    flags = candidates["flag"].to_numpy(dtype=object) if "flag" in candidates else np.full(len(candidates), None)
    reasons = candidates["reason"].to_numpy(dtype=object) if "reason" in candidates else np.full(len(candidates), "")
    ids = candidates[S.BLOCK_ID].astype(str).to_numpy()
    priority = candidates["priority"].to_numpy(dtype=float)
    stops, clock = [], 0.0
    for number, (k, leg) in enumerate(zip(visit, legs, strict=False), start=1):
        clock += leg / speed
        flag = flags[k] if isinstance(flags[k], str) else None
        stops.append(Stop(number, ids[k], round(float(stop_lat[number - 1]), 6),
                          round(float(stop_lon[number - 1]), 6), round(clock, 1), dwell, round(float(leg), 1),
                          float(priority[k]), flag, str(reasons[k] or "")))
        clock += dwell
    distance = float(sum(legs))
    walk_min = distance / speed
    return Route(
        beat_id=beat_id, stops=tuple(stops), start=tuple(start), end=tuple(end),
        start_snap_m=round(walk["start_snap"], 1), end_snap_m=round(walk["end_snap"], 1),
        distance_m=round(distance, 1), walk_min=round(walk_min, 1), total_min=round(walk_min + dwell * len(stops), 1),
        budget_min=budget, dwell_min=dwell, priority=round(float(priority[visit].sum()), PRIORITY_DECIMALS),
        candidates=len(candidates), unreachable=unreachable, too_far=too_far,
        path=tuple(zip(np.round(lat, 6).tolist(), np.round(lon, 6).tolist(), strict=True)), seed=seed,
        straight_line=walk["straight_line"], notes=tuple(notes),
    )


# --- output -----------------------------------------------------------------------------------------


def route_to_gpx(route: Route, *, created: datetime | None = None) -> str:
    """The route as a GPX 1.1 document: numbered waypoints for the stops and a route along the path.

    Parameters
    ----------
    route : Route
    created : datetime, optional
        The document's time (default: now, UTC).
    """
    ET.register_namespace("", _GPX_NS)
    q = lambda tag: f"{{{_GPX_NS}}}{tag}"  # noqa: E731 - a qualified-name helper

    root = ET.Element(q("gpx"), {"version": "1.1", "creator": "beatmap"})
    metadata = ET.SubElement(root, q("metadata"))
    ET.SubElement(metadata, q("name")).text = _title(route)
    ET.SubElement(metadata, q("desc")).text = _summary(route)
    ET.SubElement(metadata, q("time")).text = (created or datetime.now(UTC)).astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")

    def waypoint(lat: float, lon: float, name: str, desc: str, sym: str, kind: str) -> None:
        wpt = ET.SubElement(root, q("wpt"), {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
        ET.SubElement(wpt, q("name")).text = name
        ET.SubElement(wpt, q("desc")).text = desc
        ET.SubElement(wpt, q("sym")).text = sym
        ET.SubElement(wpt, q("type")).text = kind

    waypoint(*route.start, "Start", "Start of the walk", "Flag, Green", "start")
    for stop in route.stops:
        waypoint(stop.lat, stop.lon, f"{stop.number}. {stop.block_id}",
                 f"Arrive about {stop.arrival_min:.0f} min after the start, stay {stop.stay_min:g} min. "
                 f"Why: {stop.reason}", "Waypoint", stop.flag or "block")
    if route.end != route.start:
        waypoint(*route.end, "End", "End of the walk", "Flag, Red", "end")
    rte = ET.SubElement(root, q("rte"))
    ET.SubElement(rte, q("name")).text = _title(route)
    ET.SubElement(rte, q("desc")).text = _summary(route)
    for lat, lon in route.path:
        ET.SubElement(rte, q("rtept"), {"lat": f"{lat:.6f}", "lon": f"{lon:.6f}"})
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_gpx(route: Route, path: str | Path) -> Path:
    """Write the route as a GPX 1.1 file (the name must end in ``.gpx``)."""
    path = Path(path)
    if path.suffix.lower() != ".gpx":
        raise InputError(f"--out {path}: give a file ending in .gpx.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(route_to_gpx(route), encoding="utf-8")
    return path


def route_card_html(route: Route) -> str:
    """A printable one-page card of the route: the stops in order with the reasons, and the notes."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{s.number}</td><td>{e(s.block_id)}</td><td>+{s.arrival_min:.0f} min</td>"
        f"<td>{s.stay_min:g} min</td><td>{e(s.reason)}</td></tr>"
        for s in route.stops
    )
    notes = "".join(f"<li>{e(n)}</li>" for n in route.notes)
    warning = ('<p class="warn">Straight-line estimate: no street network was loaded, so real walks are longer.</p>'
               if route.straight_line else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(_title(route))}</title>
<style>
body {{ font: 12pt sans-serif; margin: 1.5cm; }} h1 {{ font-size: 16pt; margin: 0 0 4pt; }}
table {{ border-collapse: collapse; width: 100%; margin-top: 8pt; }}
td, th {{ border: 1px solid #999; padding: 4pt 6pt; text-align: left; vertical-align: top; }}
.warn {{ font-weight: bold; border: 2px solid #000; padding: 4pt; }} .meta {{ color: #333; }}
@media print {{ body {{ margin: 1cm; }} }}
</style></head>
<body>
<h1>{e(_title(route))}</h1>
<p class="meta">{e(_summary(route))}</p>
<p class="meta">Start {route.start[0]:.5f}, {route.start[1]:.5f}; end {route.end[0]:.5f}, {route.end[1]:.5f}.</p>
{warning}
<table><thead><tr><th>#</th><th>Block</th><th>Arrive</th><th>Stay</th><th>Why this block</th></tr></thead>
<tbody>{rows}</tbody></table>
<ul>{notes}</ul>
</body></html>
"""


def _title(route: Route) -> str:
    return f"Walking route{f', beat {route.beat_id}' if route.beat_id else ''}"


def _summary(route: Route) -> str:
    kind = "straight-line estimate" if route.straight_line else "on the streets"
    return (f"{len(route.stops)} stops, {route.distance_m / 1000:.1f} km {kind}, about {route.total_min:.0f} of "
            f"{route.budget_min:g} minutes ({route.walk_min:.0f} walking, {route.dwell_min:g} on each block); "
            f"priority {route.priority:g}; seed {route.seed}.")


def route_text(route: Route) -> str:
    """The route as plain text for a terminal: the summary, one line per stop, and the notes."""
    lines = [_title(route) + (" (STRAIGHT-LINE ESTIMATE)" if route.straight_line else ""), "  " + _summary(route)]
    lines += [f"  {s.number:>2}. +{s.arrival_min:>3.0f} min  {s.block_id:<14} {s.reason}" for s in route.stops]
    lines += [f"  note: {n}" for n in route.notes]
    return "\n".join(lines)
