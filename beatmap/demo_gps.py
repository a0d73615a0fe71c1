"""GPS pings for the demo town: patrol cars and officers' radios over its last weeks.

Every beat has one patrol car per shift (unit ``<shift><beat>``, as on the demo's CAD calls), and
its AVL reports a fix every :data:`INTERVAL_S` seconds through the whole shift.  Between calls a car
cruises its beat from block to neighbouring block, but never through the blocks planted
``enforcement_only``: those see police only on calls.  On a call (the unit's enforcement events,
from dispatch to clear) the car drives to the call and parks there until it clears.  A car leaves a
call before its clear time, so every fix between the call and the car's way back counts as the call.

Officers' radios report on foot: through every foot patrol and community visit, a fix every
:data:`INTERVAL_S` seconds as the officer walks round the block, a few metres inside its edge.
After some of those walks (:data:`DWELL_SHARE`) the officer comes back to the same block later
and stands for 12 to 20 minutes (a porch stop, a chat at the school gate) without logging it:
only the radio shows the stay, so the demo's coverage has track visits (stays of at least
``visit_min_minutes`` on foot that no logged visit accounts for), all on blocks its walks reach.

The pings go to CSV files with a ping mapping each (cars are ``vehicle`` devices, radios are
classified by movement), for :func:`beatmap.presence.import_pings`.
"""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import dataclass

import geopandas
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer

__all__ = ["DWELL_SHARE", "INTERVAL_S", "GpsFiles", "write_demo_gps"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Seconds between two fixes of a device.
INTERVAL_S = 30
_SHIFT_START_HOURS = (7, 15, 23)
_SHIFT_S = 8 * 3600
_MOVE_P = 0.7  # chance that a cruising car is in the next block 30 s later
_CAR_JITTER_M = 3.0
_WALK_M_PER_S = 1.1
_WALK_DEPTH_M = (8.0, 4.0)
_RADIO_JITTER_M = 2.0
#: Share of walks after which the officer comes back for an unlogged stay on the same block.
DWELL_SHARE = 0.1
_DWELL_MINUTES = (12, 20)
_DWELL_WAIT_S = (5 * 60, 45 * 60)  # from the walk's last fix to the stay's first, besides max_gap_s


@dataclass(frozen=True)
class GpsFiles:
    """The demo's ping files, their mappings, and how many pings each holds."""

    cars: pathlib.Path
    cars_mapping: pathlib.Path
    radios: pathlib.Path
    radios_mapping: pathlib.Path
    car_pings: int
    radio_pings: int


def write_demo_gps(
    blocks: geopandas.GeoDataFrame,
    activity: pd.DataFrame,
    truth: pd.DataFrame,
    *,
    timezone: str,
    end: datetime.date,
    weeks: int,
    directory: pathlib.Path,
    seed: int,
    metric_crs: str,
    max_gap_s: int = 300,
) -> GpsFiles:
    """Write the cars' and radios' pings of the `weeks` weeks ending on `end`.

    Parameters
    ----------
    blocks : GeoDataFrame
        The demo's blocks (``block_id``, ``beat_id``), any CRS.
    activity : DataFrame
        The demo's activity (local ``occurred_at``/``ended_at`` text, ``kind``, ``duration_min``,
        ``unit_id``, ``officer_id``, ``lat``/``lon``).
    truth : DataFrame
        The planted blocks; cars cruise through none of the ``enforcement_only`` ones.
    timezone : str
        Zone of the activity's local times.
    end : datetime.date
        Last day of pings.
    weeks : int
    directory : path
    seed : int
    metric_crs : str
        A metric CRS for the town.
    max_gap_s : int
        The longest gap credited as presence (``max_gap_s`` of the settings): a radio is silent
        for longer than this between two walks.
    """
    rng = np.random.default_rng(seed)
    metric = blocks.to_crs(metric_crs).reset_index(drop=True)
    first = end - datetime.timedelta(days=7 * weeks - 1)
    begin = _instant(pd.Series([f"{first}T00:00:00"]), timezone)[0]
    finish = _instant(pd.Series([f"{end + datetime.timedelta(days=1)}T00:00:00"]), timezone)[0]
    events = activity.assign(start=_instant(activity["occurred_at"], timezone))
    events = events[(events["start"] >= begin) & (events["start"] < finish)].reset_index(drop=True)
    x, y = Transformer.from_crs("EPSG:4326", metric_crs, always_xy=True).transform(
        events["lon"].to_numpy(), events["lat"].to_numpy()
    )
    events["x"], events["y"] = x, y
    to_wgs84 = Transformer.from_crs(metric_crs, "EPSG:4326", always_xy=True)
    directory.mkdir(parents=True, exist_ok=True)

    calls_only = set(truth.loc[truth["planted"] == "enforcement_only", "block_id"])
    cars = _car_pings(rng, metric, events, calls_only, timezone=timezone, first=first, days=7 * weeks)
    planted = set(truth.loc[truth["planted"].fillna("") != "", "block_id"])
    radios = _radio_pings(rng, metric, events, max_gap_s=max_gap_s, no_stays=planted)
    files = {}
    for name, frame, kind in (("cars", cars, "vehicle"), ("radios", radios, "radio")):
        lon, lat = to_wgs84.transform(frame.pop("x").to_numpy(), frame.pop("y").to_numpy())
        frame.insert(1, "lat", np.round(lat, 6))
        frame.insert(2, "lon", np.round(lon, 6))
        path = directory / f"gps_{name}.parquet"
        frame.to_parquet(path, index=False)
        mapping = directory / f"gps_{name}.toml"
        mapping.write_text(
            f'# The demo\'s {name}: ts in seconds since 1970 (UTC).\n[source]\nname = "demo {name}"\n'
            f'time_format = "epoch"\ndevice_kind = "{kind}"\n'
        )
        files[name] = (path, mapping, len(frame))
    return GpsFiles(
        cars=files["cars"][0],
        cars_mapping=files["cars"][1],
        radios=files["radios"][0],
        radios_mapping=files["radios"][1],
        car_pings=files["cars"][2],
        radio_pings=files["radios"][2],
    )


def _instant(local: pd.Series, timezone: str) -> IntArray:
    """Seconds since 1970 of local wall-clock text (an ambiguous hour read as its first pass)."""
    stamps = pd.to_datetime(local).dt.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward")
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


def _neighbours(metric: geopandas.GeoDataFrame, allowed: np.ndarray, avoid: np.ndarray) -> list[list[int]]:
    """For every block, the allowed blocks of its beat it shares an edge with, reachable without crossing `avoid`."""
    geoms = metric.geometry.to_numpy()
    centres = shapely.centroid(geoms)
    left, right = metric.sindex.query(geoms, predicate="intersects")
    keep = (left != right) & allowed[left] & allowed[right]
    beats = metric["beat_id"].to_numpy()
    keep &= beats[left] == beats[right]
    left, right = left[keep], right[keep]
    shared = shapely.length(shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right])))
    left, right = left[shared > 10.0], right[shared > 10.0]
    if avoid.any():
        paths = shapely.linestrings(
            np.stack([shapely.get_coordinates(centres[left]), shapely.get_coordinates(centres[right])], axis=1)
        )
        blocked = np.zeros(left.size, dtype=bool)
        inner = shapely.buffer(geoms[avoid], -0.5)
        hit, _ = shapely.STRtree(inner).query(paths, predicate="intersects")
        blocked[hit] = True
        left, right = left[~blocked], right[~blocked]
    return [right[left == i].tolist() for i in range(len(metric))]


def _car_pings(
    rng: np.random.Generator,
    metric: geopandas.GeoDataFrame,
    events: pd.DataFrame,
    calls_only: set[str],
    *,
    timezone: str,
    first: datetime.date,
    days: int,
) -> pd.DataFrame:
    """Every patrol car's fixes through every shift of the period."""
    avoid = metric["block_id"].isin(calls_only).to_numpy()
    neighbours = _neighbours(metric, ~avoid, avoid)
    centres = shapely.get_coordinates(shapely.centroid(metric.geometry.to_numpy()))
    beat_of = metric["beat_id"].to_numpy()
    calls = events[(events["kind"] == "enforcement") & events["unit_id"].notna()].copy()
    ended = _instant(calls["ended_at"].fillna(calls["occurred_at"]), timezone)
    calls["end"] = np.where(calls["ended_at"].notna(), ended, calls["start"] + 30 * 60)
    by_unit = {unit: group.sort_values("start") for unit, group in calls.groupby("unit_id")}

    dates = pd.date_range(first - datetime.timedelta(days=1), periods=days + 1, freq="D")
    parts_ts, parts_xy, parts_unit = [], [], []
    for beat_id in sorted(set(beat_of)):
        mine = np.flatnonzero((beat_of == beat_id) & ~avoid)
        home = int(rng.choice(mine))
        for shift, hour in enumerate(_SHIFT_START_HOURS):
            unit = f"{shift + 1}{beat_id}"
            starts = _instant(pd.Series((dates + pd.Timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%S")), timezone)
            windows = _merged_windows(by_unit.get(unit))
            for start in starts:
                ts = start + INTERVAL_S * np.arange(_SHIFT_S // INTERVAL_S)
                xy, home = _cruise(rng, ts, home, neighbours, windows, mine, centres)
                parts_ts.append(ts)
                parts_xy.append(xy)
                parts_unit.append(np.full(ts.size, unit, dtype=object))
    ts = np.concatenate(parts_ts)
    xy = np.concatenate(parts_xy)
    units = np.concatenate(parts_unit)
    begin = _instant(pd.Series([f"{first}T00:00:00"]), timezone)[0]
    inside = ts >= begin
    jitter = np.clip(rng.normal(0, _CAR_JITTER_M / 2, size=xy.shape), -_CAR_JITTER_M, _CAR_JITTER_M)
    return pd.DataFrame(
        {
            "ts": ts[inside],
            "x": (xy[:, 0] + jitter[:, 0])[inside],
            "y": (xy[:, 1] + jitter[:, 1])[inside],
            "device_id": pd.Series("CAR-" + units[inside]),
            "unit_id": units[inside],
        }
    )


def _merged_windows(calls: pd.DataFrame | None) -> list[tuple[int, int, list[tuple[int, float, float]]]]:
    """A unit's calls merged where they overlap: (start, end, [(call start, x, y), ...])."""
    if calls is None or calls.empty:
        return []
    windows: list[tuple[int, int, list[tuple[int, float, float]]]] = []
    for start, end, x, y in calls[["start", "end", "x", "y"]].itertuples(index=False, name=None):
        if windows and start <= windows[-1][1]:
            s0, e0, stops = windows[-1]
            windows[-1] = (s0, max(e0, int(end)), [*stops, (int(start), float(x), float(y))])
        else:
            windows.append((int(start), int(end), [(int(start), float(x), float(y))]))
    return windows


def _cruise(
    rng: np.random.Generator,
    ts: IntArray,
    home: int,
    neighbours: list[list[int]],
    windows: list[tuple[int, int, list[tuple[int, float, float]]]],
    mine: IntArray,
    centres: FloatArray,
) -> tuple[FloatArray, int]:
    """One car's positions at `ts`: cruising between calls, parked at each call, back after it."""
    n = ts.size
    starts = np.array([w[0] for w in windows], dtype=np.int64)
    ends = np.array([w[1] for w in windows], dtype=np.int64)
    which = np.searchsorted(starts, ts, side="right") - 1
    on_call = (which >= 0) & (ts <= ends[np.maximum(which, 0)] if ends.size else np.zeros(n, dtype=bool))
    run_id = np.where(on_call, which, -1)
    cuts = np.flatnonzero(np.diff(run_id)) + 1
    bounds = np.concatenate([[0], cuts, [n]])
    block = np.empty(n, dtype=np.int64)
    xy = np.empty((n, 2))
    moves = (rng.random(n) < _MOVE_P).tolist()
    picks = rng.random(n).tolist()
    current = home
    for first, stop in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if run_id[first] < 0:
            for k in range(first, stop):
                options = neighbours[current]
                if moves[k] and options:
                    current = options[int(picks[k] * len(options))]
                block[k] = current
            xy[first:stop] = centres[block[first:stop]]
            continue
        # The first fix of a call is still on the way; the last is back in the beat (see the module docstring).
        stops = windows[run_id[first]][2]
        xy[first] = centres[current]
        if stop - first > 1:
            stop_starts = np.array([s[0] for s in stops], dtype=np.int64)
            stop_xy = np.array([s[1:] for s in stops], dtype=float)
            at = np.maximum(np.searchsorted(stop_starts, ts[first + 1 : stop - 1], side="right") - 1, 0)
            xy[first + 1 : stop - 1] = stop_xy[at]
            current = int(mine[np.argmin(np.hypot(*(centres[mine] - stop_xy[-1]).T))])
            xy[stop - 1] = centres[current]
    return xy, current


def _radio_pings(
    rng: np.random.Generator,
    metric: geopandas.GeoDataFrame,
    events: pd.DataFrame,
    *,
    max_gap_s: int,
    no_stays: set[str],
) -> pd.DataFrame:
    """Radios' fixes through every foot patrol and community visit (a walk round the block), and the
    unlogged stays after some walks, never on a block of `no_stays` (the planted neglected ones)."""
    walks = events[events["kind"].isin(["foot_patrol", "community_visit"]) & events["officer_id"].notna()]
    walks = walks[walks["duration_min"].notna()].reset_index(drop=True)
    geoms = metric.geometry.to_numpy()
    located = shapely.STRtree(geoms).query(shapely.points(walks["x"], walks["y"]), predicate="within")
    block = np.full(len(walks), -1, dtype=np.int64)
    block[located[0]] = located[1]
    walks, block = walks[block >= 0].reset_index(drop=True), block[block >= 0]
    inner = shapely.buffer(geoms, -_WALK_DEPTH_M[0])
    thin = shapely.get_type_id(inner) != 3  # empty, or cut in two: walk nearer the edge
    inner[thin] = shapely.buffer(geoms[thin], -_WALK_DEPTH_M[1])
    rings = shapely.get_exterior_ring(
        np.array([max(shapely.get_parts(g), key=shapely.area) for g in inner], dtype=object)
    )
    count = (walks["duration_min"].to_numpy(dtype=float) * 60 // INTERVAL_S).astype(np.int64)
    # A radio is silent between walks for longer than a gap that counts as presence, so no
    # straight line from one walk to the next is credited to the blocks between them.
    order = np.lexsort((walks["start"].to_numpy(), walks["officer_id"].to_numpy(dtype=str)))
    officer_sorted = walks["officer_id"].to_numpy(dtype=str)[order]
    start_sorted = walks["start"].to_numpy()[order]
    next_start = np.append(start_sorted[1:], np.iinfo(np.int64).max // 2)
    next_start[np.append(officer_sorted[1:] != officer_sorted[:-1], True)] = np.iinfo(np.int64).max // 2
    room = (next_start - start_sorted - max_gap_s - INTERVAL_S) // INTERVAL_S
    count[order] = np.minimum(count[order], np.maximum(room, 0))
    after = np.empty(len(walks), dtype=np.int64)  # the officer's next walk
    after[order] = next_start
    kept = count >= 2
    walks, block, count, after = walks[kept].reset_index(drop=True), block[kept], count[kept], after[kept]
    owner = np.repeat(np.arange(len(walks)), count)
    step = np.arange(owner.size) - np.repeat(np.cumsum(count) - count, count)
    ring = rings[block][owner]
    length = shapely.length(ring)
    begin = shapely.line_locate_point(rings[block], shapely.points(walks["x"], walks["y"]))
    offset = begin[owner]
    along = np.mod(offset + step * INTERVAL_S * _WALK_M_PER_S, length)
    points = shapely.get_coordinates(shapely.line_interpolate_point(ring, along))
    jitter = np.clip(rng.normal(0, _RADIO_JITTER_M, size=points.shape), -2 * _RADIO_JITTER_M, 2 * _RADIO_JITTER_M)
    ts = walks["start"].to_numpy()[owner] + step * INTERVAL_S
    # Unlogged stays (drawn after the walks, which stay as they were): after some walks, silent for longer
    # than max_gap_s, then standing still where the walk began, ending more than max_gap_s before the
    # officer's next walk.
    dwell = rng.integers(_DWELL_MINUTES[0], _DWELL_MINUTES[1] + 1, size=len(walks)) * 60 // INTERVAL_S
    wait = max_gap_s + INTERVAL_S + rng.integers(_DWELL_WAIT_S[0], _DWELL_WAIT_S[1] + 1, size=len(walks))
    dwell_start = walks["start"].to_numpy() + count * INTERVAL_S + wait
    fits = dwell_start + dwell * INTERVAL_S + max_gap_s + INTERVAL_S < after
    allowed = ~metric["block_id"].isin(no_stays).to_numpy()[block]
    dwell = np.where((rng.random(len(walks)) < DWELL_SHARE) & fits & allowed, dwell, 0)
    stay = np.repeat(np.arange(len(walks)), dwell)
    stay_step = np.arange(stay.size) - np.repeat(np.cumsum(dwell) - dwell, dwell)
    spot = shapely.get_coordinates(shapely.line_interpolate_point(rings[block], begin))[stay]
    spot_jitter = np.clip(rng.normal(0, _RADIO_JITTER_M, size=spot.shape), -2 * _RADIO_JITTER_M, 2 * _RADIO_JITTER_M)
    officer = walks["officer_id"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "ts": np.concatenate([ts, dwell_start[stay] + stay_step * INTERVAL_S]),
            "x": np.concatenate([points[:, 0] + jitter[:, 0], spot[:, 0] + spot_jitter[:, 0]]),
            "y": np.concatenate([points[:, 1] + jitter[:, 1], spot[:, 1] + spot_jitter[:, 1]]),
            "device_id": pd.Series("RADIO-" + np.concatenate([officer[owner], officer[stay]])),
            "officer_id": np.concatenate([officer[owner], officer[stay]]),
        }
    )
