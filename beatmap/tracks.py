"""GPS tracks to presence: segments, foot or vehicle, seconds per block, purpose, track visits.

Pure functions on pings already read and projected (see :mod:`beatmap.pings`).
Every figure is a whole number of seconds, and every step is decided per ping
or per interval after the pings are ordered, so the aggregates do not depend
on the order or the chunks the pings came in.

The rules, in order:

1. **Order.**  Each device's pings are sorted by time; a second ping of a
   device at the same second is a duplicate and dropped.
2. **Segments.**  A device's track is cut where two pings are more than
   ``max_gap_s`` apart.  Each ping is credited ``min(Δt to its next ping,
   max_gap_s)``; anything beyond is *gap*, never presence.  A device's last
   ping has no next ping and is credited nothing.
3. **Foot or vehicle.**  For each ping, the *window speed* is the straight-line
   distance between the first and the last ping of its segment within
   ``mode_window_s / 2`` before and after it, over their time apart.  Net
   displacement over a window cancels GPS jitter (±10 m over two minutes is
   under 1 km/h).  A ping whose window speed is above ``vehicle_speed_kmh`` is
   *vehicle*; a slower stretch between two vehicle stretches of the segment,
   lasting at most ``stop_max_s``, stays vehicle (a red light, slow traffic);
   everything else is *foot* (an officer who parks and walks becomes foot
   after the stop).  Devices declared ``vehicle`` (car AVL) are always
   vehicle.  The interval from a ping to the next takes the ping's mode.
4. **Blocks.**  Each ping is assigned to a block by the block index and the
   exact rule of :mod:`beatmap.assign` (so a ping in the street snaps to the
   nearest block within ``snap_m``).  An interval whose two ends are on one
   block is credited to it.  An interval whose ends are on different blocks
   is credited along the straight line between them, in proportion to the
   line's length inside each block; the part of the line outside every block
   (the street) goes half to each end's block (to *outside* for an end that
   is outside the beats).  The interval that ends a segment (its next ping is
   more than ``max_gap_s`` later) is credited to its ping's block only.
5. **Purpose.**  A unit's time from dispatch to clear of a CAD call is
   *enforcement*; a call without a clear time lasts
   ``call_default_minutes``.  Everything else is *non-enforcement*.  Each
   interval's enforcement seconds are its exact overlap, in seconds, with its
   unit's calls; they and the rest are shared among the interval's blocks by
   largest remainders, so every interval's seconds add up exactly.
6. **Hour.**  An interval counts in the UTC hour its ping falls in (intervals
   are at most ``max_gap_s`` long).
7. **Track visits.**  A run of consecutive foot pings of one segment on one
   block whose non-enforcement seconds on that block reach
   ``visit_min_minutes`` is a track visit; shorter is a pass-through.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from beatmap.assign import assign_positions, block_tree
from beatmap.errors import InputError
from beatmap.index import EXACT, BlockIndex, index_lookup
from beatmap.schema import BEAT_ID, BLOCK_ID, OFFICER_ID, UNIT_ID
from beatmap.settings import Settings

FOOT = "foot"
VEHICLE = "vehicle"
MODES: tuple[str, ...] = (FOOT, VEHICLE)
ENFORCEMENT = "enforcement"
NON_ENFORCEMENT = "non_enforcement"
PURPOSES: tuple[str, ...] = (ENFORCEMENT, NON_ENFORCEMENT)
#: Device kinds a mapping or roster can declare; only ``vehicle`` decides the mode, the rest move by speed.
DEVICE_KINDS: tuple[str, ...] = ("vehicle", "radio", "phone", "bodycam")

DEVICE_ID = "device_id"
TS = "ts"
DEVICE_KIND = "device_kind"
#: Columns of the presence frame, in order: one row per block, UTC hour, unit, officer, mode and purpose.
PRESENCE_COLUMNS: tuple[str, ...] = (BLOCK_ID, "hour", UNIT_ID, OFFICER_ID, "mode", "purpose", "seconds")
#: Columns of the track visit frame.
VISIT_COLUMNS: tuple[str, ...] = (
    DEVICE_ID,
    UNIT_ID,
    OFFICER_ID,
    BLOCK_ID,
    BEAT_ID,
    "start",
    "end",
    "seconds",
    "enforcement_seconds",
)
#: Columns of the per-device summary.
DEVICE_COLUMNS: tuple[str, ...] = (DEVICE_ID, "pings", "segments", "credited_seconds", "gap_seconds", "outside_seconds")

# Keys made of (group, time) pairs: times are shifted to start at 0 and must stay below this.
_SPAN = np.int64(1) << 34


@dataclass(frozen=True)
class TrackRules:
    """The thresholds of the module docstring (from :class:`beatmap.settings.Settings`)."""

    max_gap_s: int = 300
    mode_window_s: int = 120
    vehicle_speed_kmh: float = 12.0
    stop_max_s: int = 300
    visit_min_minutes: float = 10.0
    call_default_minutes: float = 30.0
    edge_tolerance_m: float = 1.0
    snap_m: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TrackRules:
        """The rules a department's settings give."""
        return cls(
            max_gap_s=settings.max_gap_s,
            mode_window_s=settings.mode_window_s,
            vehicle_speed_kmh=settings.vehicle_speed_kmh,
            stop_max_s=settings.stop_max_s,
            visit_min_minutes=settings.visit_min_minutes,
            call_default_minutes=settings.call_default_minutes,
            edge_tolerance_m=settings.edge_tolerance_m,
            snap_m=settings.snap_m,
        )


@dataclass(frozen=True)
class TrackCredit:
    """What :func:`credit_tracks` finds.

    Attributes
    ----------
    presence : DataFrame
        :data:`PRESENCE_COLUMNS`; ``block_id`` is missing for time outside
        every block, ``hour`` is the start of the UTC hour (tz-aware),
        ``seconds`` an integer.
    visits : DataFrame
        :data:`VISIT_COLUMNS`: one row per track visit.
    devices : DataFrame
        :data:`DEVICE_COLUMNS`: per device, its pings, segments, credited and
        gap seconds and seconds outside every block.
    pings : DataFrame
        The pings in track order with what each was given: ``segment``,
        ``credit_s``, ``gap_s``, ``speed_kmh``, ``mode`` and ``block``
        (row of the blocks, -1 outside).  For tests and quality figures; no
        page shows it.
    block_devices : DataFrame
        The extra keys, ``block_id``, ``hour`` (start of the UTC hour,
        tz-aware) and ``device_id``: once for each device credited
        non-enforcement time on a block in an hour (the public map counts
        distinct devices per block from it).
    """

    presence: pd.DataFrame
    visits: pd.DataFrame
    devices: pd.DataFrame
    pings: pd.DataFrame
    block_devices: pd.DataFrame | None = None


def order_pings(pings: pd.DataFrame) -> pd.DataFrame:
    """Sort pings by device and time and drop repeated (device, second) pairs, keeping the first.

    Parameters
    ----------
    pings : DataFrame
        ``device_id``, ``ts`` (integer seconds since 1970, UTC) and any other
        columns.

    Returns
    -------
    DataFrame
        A new frame with a fresh index.
    """
    missing = [c for c in (DEVICE_ID, TS, "x", "y") if c not in pings.columns]
    if missing:
        raise InputError(f"pings lack the column(s) {', '.join(missing)}; read them with beatmap.pings first.")
    codes = device_codes(pings[DEVICE_ID])
    ts = pings[TS].to_numpy(dtype=np.int64)
    order = np.lexsort((ts, codes))
    codes, ts = codes[order], ts[order]
    repeat = np.zeros(len(order), dtype=bool)
    repeat[1:] = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])
    return pings.iloc[order[~repeat]].reset_index(drop=True)


def device_codes(devices: pd.Series) -> np.ndarray:
    """An integer per device, equal for equal ids: sorted by id, so the order of the pings does not matter."""
    return device_codes_and_ids(devices)[0]


def device_codes_and_ids(devices: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """:func:`device_codes` and the device id (text) of each code."""
    if isinstance(devices.dtype, pd.CategoricalDtype):
        categories = np.asarray(devices.cat.categories.astype(str), dtype=object)
        by_id = np.argsort(categories, kind="stable")
        rank = np.argsort(by_id)
        codes = devices.cat.codes.to_numpy()
        if (codes < 0).any():
            raise InputError("a ping has no device_id; read pings with beatmap.pings, which rejects those rows.")
        return rank[codes].astype(np.int64), categories[by_id]
    codes, ids = pd.factorize(devices.astype(str), sort=True)
    return codes.astype(np.int64), np.asarray(ids, dtype=object)


def segment_pings(device: np.ndarray, ts: np.ndarray, max_gap_s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments and credit of ordered pings.

    Parameters
    ----------
    device : array of int
        Device code of each ping; pings sorted by device, then time.
    ts : array of int64
        Seconds since 1970 (UTC), strictly increasing within a device.
    max_gap_s : int

    Returns
    -------
    segment : array of int64
        Segment number of each ping (0, 1, ... over all devices).
    credit : array of int64
        Seconds credited to each ping: ``min(Δt to next, max_gap_s)``, 0 for
        a device's last ping.
    gap : array of int64
        Seconds beyond ``max_gap_s`` before the next ping.
    """
    n = len(ts)
    ts = np.asarray(ts, dtype=np.int64)
    has_next = np.zeros(n, dtype=bool)
    dt = np.zeros(n, dtype=np.int64)
    if n > 1:
        has_next[:-1] = device[1:] == device[:-1]
        dt[:-1] = np.where(has_next[:-1], ts[1:] - ts[:-1], 0)
    if (dt[has_next] <= 0).any():
        raise InputError("pings are not in order by device and time (or repeat a second); order them first.")
    credit = np.minimum(dt, max_gap_s)
    gap = dt - credit
    starts = np.ones(n, dtype=bool)
    if n > 1:
        starts[1:] = ~has_next[:-1] | (gap[:-1] > 0)
    return np.cumsum(starts) - 1, credit, gap


def window_speed_kmh(segment: np.ndarray, ts: np.ndarray, x: np.ndarray, y: np.ndarray, window_s: int) -> np.ndarray:
    """Net speed around each ping: first to last ping of its segment within ``window_s / 2`` each side."""
    n = len(ts)
    if not n:
        return np.zeros(0)
    rel = np.asarray(ts, dtype=np.int64) - int(np.min(ts))
    if rel.max() + window_s >= _SPAN:
        raise InputError("pings span more than 500 years; check the time column.")
    key = np.asarray(segment, dtype=np.int64) * _SPAN + rel
    half = window_s // 2
    first = np.searchsorted(key, key - half, side="left")
    last = np.searchsorted(key, key + half, side="right") - 1
    seconds = (rel[last] - rel[first]).astype(float)
    metres = np.hypot(x[last] - x[first], y[last] - y[first])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seconds > 0, metres / seconds * 3.6, 0.0)


def travel_modes(
    segment: np.ndarray, ts: np.ndarray, speed_kmh: np.ndarray, vehicle_device: np.ndarray, rules: TrackRules
) -> np.ndarray:
    """Foot or vehicle per ping (rule 3 of the module docstring), as an array of bool: True is vehicle."""
    n = len(ts)
    fast = (np.asarray(speed_kmh) > rules.vehicle_speed_kmh) | np.asarray(vehicle_device, dtype=bool)
    if not n:
        return fast
    ts = np.asarray(ts, dtype=np.int64)
    change = np.ones(n, dtype=bool)
    change[1:] = (segment[1:] != segment[:-1]) | (fast[1:] != fast[:-1])
    run = np.cumsum(change) - 1
    run_start = np.flatnonzero(change)
    run_end = np.append(run_start[1:], n) - 1
    run_fast = fast[run_start]
    run_segment = segment[run_start]
    # A slow run lasts from its first ping to the first ping after it (or its last ping, at the segment's end).
    after = np.minimum(run_end + 1, n - 1)
    same_after = (run_end + 1 < n) & (segment[after] == run_segment)
    run_seconds = np.where(same_after, ts[after], ts[run_end]) - ts[run_start]
    prev_fast = np.zeros(len(run_start), dtype=bool)
    next_fast = np.zeros(len(run_start), dtype=bool)
    prev_fast[1:] = run_fast[:-1] & (run_segment[:-1] == run_segment[1:])
    next_fast[:-1] = run_fast[1:] & (run_segment[1:] == run_segment[:-1])
    stop = ~run_fast & prev_fast & next_fast & (run_seconds <= rules.stop_max_s)
    return (run_fast | stop)[run]


def locate(
    x: np.ndarray, y: np.ndarray, blocks: gpd.GeoDataFrame, rules: TrackRules, index: BlockIndex | None = None
) -> np.ndarray:
    """Row of ``blocks`` each point is on (-1: outside), by the index where given, else the exact rule."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if index is None or blocks.empty or not len(x):
        return assign_positions(x, y, blocks, edge_tolerance_m=rules.edge_tolerance_m, snap_m=rules.snap_m)[0]
    if (
        index.n_blocks != len(blocks)
        or index.edge_tolerance_m != rules.edge_tolerance_m
        or index.snap_m != rules.snap_m
    ):
        raise InputError("the block index was built for other blocks or distances; build it again.")
    position = index_lookup(index, x, y)
    exact = np.flatnonzero(position == EXACT)
    if len(exact):
        position[exact] = assign_positions(
            x[exact], y[exact], blocks, edge_tolerance_m=rules.edge_tolerance_m, snap_m=rules.snap_m
        )[0]
    return position


def line_pieces(
    x0: np.ndarray,
    y0: np.ndarray,
    x1: np.ndarray,
    y1: np.ndarray,
    b0: np.ndarray,
    b1: np.ndarray,
    blocks: gpd.GeoDataFrame,
    index: BlockIndex | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shares of straight lines among blocks (rule 4): ``(line, block row or -1, length weight)`` triples.

    The part of each line inside a block is weighted by its length; the part
    outside every block goes half to each end's block ``b0`` / ``b1``.  A line
    of no length goes half to each end.

    Vectorised, without a polygon intersection per line: each line is cut
    where it crosses a block edge (segment against segment, in numpy), and
    the piece between two cuts lies in the one block that holds its middle
    (found by the block index where given, checked against the polygon).
    """
    n = len(x0)
    if not n:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    x0, y0, x1, y1 = (np.asarray(v, dtype=float) for v in (x0, y0, x1, y1))
    geoms = blocks.geometry.to_numpy()
    start, end, edge_tree = _edge_tree(geoms)
    li, ei = edge_tree.query(
        shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    )
    dx, dy = (x1 - x0)[li], (y1 - y0)[li]
    ex, ey = (end[:, 0] - start[:, 0])[ei], (end[:, 1] - start[:, 1])[ei]
    wx, wy = start[ei, 0] - x0[li], start[ei, 1] - y0[li]
    den = dx * ey - dy * ex
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (wx * ey - wy * ex) / den
        u = (wx * dy - wy * dx) / den
    cut = (den != 0) & (t > 0) & (t < 1) & (u >= 0) & (u <= 1)
    cut_line = np.concatenate([np.arange(n), np.arange(n), li[cut]])
    cut_t = np.concatenate([np.zeros(n), np.ones(n), t[cut]])
    order = np.lexsort((cut_t, cut_line))
    cut_line, cut_t = cut_line[order], cut_t[order]
    same = cut_line[1:] == cut_line[:-1]
    piece_line, t0, t1 = cut_line[:-1][same], cut_t[:-1][same], cut_t[1:][same]
    total = np.hypot(x1 - x0, y1 - y0)
    length = (t1 - t0) * total[piece_line]
    keep = length > 0
    piece_line, length = piece_line[keep], length[keep]
    middle = (t0[keep] + t1[keep]) / 2
    mx = x0[piece_line] + middle * (x1 - x0)[piece_line]
    my = y0[piece_line] + middle * (y1 - y0)[piece_line]
    holder = _holding_block(mx, my, geoms, index)
    inside = holder >= 0
    li, bi, inside_length = piece_line[inside], holder[inside], length[inside]
    covered = np.bincount(li, weights=inside_length, minlength=n)
    street = np.clip(total - covered, 0.0, None)
    street = np.where(total > 0, street, 1.0)
    line = np.concatenate([li, np.arange(n), np.arange(n)])
    block = np.concatenate([bi, b0, b1]).astype(np.int64)
    weight = np.concatenate([inside_length, street / 2, street / 2])
    return line, block, weight


#: The blocks' edges and their tree, kept for the last blocks seen (an import credits many groups of pings
#: against the same blocks; building them took about 0.2 s each time for 30,000 blocks).
_EDGE_CACHE: list[tuple[np.ndarray, tuple[np.ndarray, np.ndarray, shapely.STRtree]]] = []


def _edge_tree(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, shapely.STRtree]:
    """Start and end points of the blocks' edges and an STRtree of their boxes, cached for the same polygons."""
    for known, value in _EDGE_CACHE:
        if known is geoms or (len(known) == len(geoms) and bool(np.all(known == geoms))):
            return value
    start, end = _block_edges(geoms)
    tree = shapely.STRtree(
        shapely.box(
            np.minimum(start[:, 0], end[:, 0]),
            np.minimum(start[:, 1], end[:, 1]),
            np.maximum(start[:, 0], end[:, 0]),
            np.maximum(start[:, 1], end[:, 1]),
        )
    )
    _EDGE_CACHE[:] = [(geoms, (start, end, tree))]
    return start, end, tree


def _block_edges(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of every edge of every polygon ring (outer and holes) of the blocks."""
    rings = shapely.get_rings(shapely.get_parts(geoms))
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    return coords[:-1][same], coords[1:][same]


def _holding_block(x: np.ndarray, y: np.ndarray, geoms: np.ndarray, index: BlockIndex | None) -> np.ndarray:
    """Row of the block whose polygon holds each point (-1: none): the index's answer where the polygon
    confirms it, else a search of the polygons."""
    found = np.full(len(x), -1, dtype=np.int64)
    if not len(x):
        return found
    unsure = np.ones(len(x), dtype=bool)
    if index is not None and index.n_blocks == len(geoms):
        guess = index_lookup(index, x, y)
        hit = np.flatnonzero(guess >= 0)
        ok = shapely.intersects_xy(geoms[guess[hit]], x[hit], y[hit])
        found[hit[ok]] = guess[hit[ok]]
        unsure[hit[ok]] = False
    rest = np.flatnonzero(unsure)
    if len(rest):
        points, rows = block_tree(geoms).query(shapely.points(x[rest], y[rest]), predicate="intersects")
        found[rest[points]] = rows
    return found


def apportion(owner: np.ndarray, weight: np.ndarray, total: np.ndarray) -> np.ndarray:
    """Whole seconds for each piece: ``total[owner]`` shared by ``weight`` with largest remainders.

    Pieces of an owner whose weights are all zero share its total equally.
    Ties go to the earlier piece, so the answer depends only on the pieces.
    """
    owner = np.asarray(owner, dtype=np.int64)
    weight = np.asarray(weight, dtype=float)
    total = np.asarray(total, dtype=np.int64)
    if not len(owner):
        return np.zeros(0, dtype=np.int64)
    n_owner = len(total)
    wsum = np.bincount(owner, weights=weight, minlength=n_owner)
    count = np.bincount(owner, minlength=n_owner)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(wsum[owner] > 0, total[owner] * weight / wsum[owner], total[owner] / count[owner])
    base = np.floor(share).astype(np.int64)
    deficit = total - np.bincount(owner, weights=base, minlength=n_owner).astype(np.int64)
    order = np.lexsort((np.arange(len(owner)), -(share - base), owner))
    sorted_owner = owner[order]
    first = np.searchsorted(sorted_owner, sorted_owner, side="left")
    rank = np.arange(len(owner)) - first
    base[order] += (rank < deficit[sorted_owner]).astype(np.int64)
    return base


def call_windows(calls: pd.DataFrame | None, rules: TrackRules) -> pd.DataFrame:
    """CAD calls as ``unit_id, start, end`` in integer seconds, ``end`` defaulting to start + ``call_default_minutes``.

    Parameters
    ----------
    calls : DataFrame or None
        ``unit_id``, ``occurred_at`` (dispatch, or creation) and optional
        ``ended_at`` (clear), as tz-aware times.  Rows without a unit cannot
        be matched to pings and are left out.
    """
    if calls is None or calls.empty:
        return pd.DataFrame(
            {UNIT_ID: pd.Series(dtype=object), "start": pd.Series(dtype=np.int64), "end": pd.Series(dtype=np.int64)}
        )
    unit = calls[UNIT_ID].astype(object)
    start = _seconds(calls["occurred_at"])
    default_end = start + round(rules.call_default_minutes * 60)
    if "ended_at" in calls.columns:
        ended = _seconds(calls["ended_at"], allow_missing=True)
        end = np.where(ended > start, ended, np.where(ended < 0, default_end, start))
    else:
        end = default_end
    out = pd.DataFrame({UNIT_ID: unit.to_numpy(), "start": start, "end": end})
    return out[out[UNIT_ID].notna() & (out[UNIT_ID].astype(str).str.strip() != "")].reset_index(drop=True)


def _seconds(times: pd.Series, *, allow_missing: bool = False) -> np.ndarray:
    """Tz-aware times (or integer seconds) as int64 seconds since 1970; missing as -1 when allowed."""
    if pd.api.types.is_integer_dtype(times):
        return times.to_numpy(dtype=np.int64)
    stamps = pd.to_datetime(times, utc=True)
    missing = stamps.isna().to_numpy()
    if missing.any() and not allow_missing:
        raise InputError("a CAD call has no dispatch time; import calls through beatmap import first.")
    values = ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=float, na_value=-1)
    return np.where(missing, -1, values).astype(np.int64)


def enforcement_overlap(unit: np.ndarray, start: np.ndarray, length: np.ndarray, calls: pd.DataFrame) -> np.ndarray:
    """Seconds of each interval ``[start, start + length)`` during a call of its unit (overlapping calls once)."""
    n = len(start)
    out = np.zeros(n, dtype=np.int64)
    if not n or calls.empty:
        return out
    codes, units = pd.factorize(pd.Series(calls[UNIT_ID].astype(str).to_numpy()), sort=True)
    base = int(min(calls["start"].min(), np.min(start))) - 1
    c_start = codes * _SPAN + (calls["start"].to_numpy(dtype=np.int64) - base)
    c_end = codes * _SPAN + (calls["end"].to_numpy(dtype=np.int64) - base)
    order = np.argsort(c_start, kind="stable")
    c_start, c_end = c_start[order], c_end[order]
    # Merge overlapping calls of a unit (their keys never overlap another unit's).
    reach = np.maximum.accumulate(c_end)
    new = np.ones(len(c_start), dtype=bool)
    new[1:] = c_start[1:] > reach[:-1]
    m_start = c_start[new]
    m_end = np.maximum.reduceat(c_end, np.flatnonzero(new)) if len(c_end) else c_end
    before = np.concatenate([[0], np.cumsum(m_end - m_start)])

    def covered_until(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(m_start, t, side="right") - 1
        inside = np.where(k >= 0, np.minimum(t, m_end[np.maximum(k, 0)]) - m_start[np.maximum(k, 0)], 0)
        return np.where(k >= 0, before[np.maximum(k, 0)] + inside, 0)

    unit_text = pd.Series(unit, dtype=object)
    known = unit_text.notna().to_numpy()
    code = units.get_indexer(unit_text.astype(str).to_numpy())
    usable = known & (code >= 0) & (length > 0)
    if usable.any():
        s = code[usable] * _SPAN + (start[usable] - base)
        out[usable] = covered_until(s + length[usable]) - covered_until(s)
    return out


def credit_tracks(
    pings: pd.DataFrame,
    blocks: gpd.GeoDataFrame,
    *,
    rules: TrackRules,
    calls: pd.DataFrame | None = None,
    index: BlockIndex | None = None,
    extra_keys: tuple[str, ...] = (),
) -> TrackCredit:
    """Presence per block, hour, unit, officer, mode and purpose from GPS pings.

    Parameters
    ----------
    pings : DataFrame
        ``device_id``, ``ts`` (integer seconds since 1970, UTC), ``x``, ``y``
        in the blocks' metric CRS, and optional ``unit_id``, ``officer_id``
        and ``device_kind``.  Any order.
    blocks : GeoDataFrame
        ``block_id``, ``beat_id`` and polygons (as the store reads them).
    rules : TrackRules
    calls : DataFrame, optional
        CAD calls (see :func:`call_windows`).
    index : BlockIndex, optional
        The block index of ``blocks``; the answers are the same without it.
    extra_keys : tuple of str
        Columns of ``pings`` (such as the file a ping came from) that the
        presence rows and the visits also keep apart; an interval counts
        under its first ping's value.

    Returns
    -------
    TrackCredit
    """
    ordered = order_pings(pings)
    n = len(ordered)
    codes = device_codes(ordered[DEVICE_ID])
    ts = ordered[TS].to_numpy(dtype=np.int64)
    x = ordered["x"].to_numpy(dtype=float)
    y = ordered["y"].to_numpy(dtype=float)
    segment, credit, gap = segment_pings(codes, ts, rules.max_gap_s)
    speed = window_speed_kmh(segment, ts, x, y, rules.mode_window_s)
    declared = (
        ordered[DEVICE_KIND].astype(str).str.lower().to_numpy() == VEHICLE
        if DEVICE_KIND in ordered.columns
        else np.zeros(n, dtype=bool)
    )
    vehicle = travel_modes(segment, ts, speed, declared, rules)
    block = locate(x, y, blocks, rules, index)
    unit = _optional(ordered, UNIT_ID)
    officer = _optional(ordered, OFFICER_ID)

    # Intervals: every ping with credit.  Joined ones end at the next ping of the segment.
    interval = np.flatnonzero(credit > 0)
    joined = np.zeros(n, dtype=bool)
    joined[interval] = gap[interval] == 0
    nxt = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    end_block = np.where(joined, block[nxt], block)
    crossing = interval[block[interval] != end_block[interval]]
    single = interval[block[interval] == end_block[interval]]
    li, lb, lw = line_pieces(
        x[crossing],
        y[crossing],
        x[nxt[crossing]],
        y[nxt[crossing]],
        block[crossing],
        end_block[crossing],
        blocks,
        index,
    )
    piece_ping = np.concatenate([single, crossing[li]])
    piece_block = np.concatenate([block[single], lb])
    piece_weight = np.concatenate([np.ones(len(single)), lw])
    # Merge pieces of one interval on one block (the street shares land on the end blocks).
    piece_ping, piece_block, piece_weight = _merge_pieces(piece_ping, piece_block, piece_weight)

    windows = call_windows(calls, rules)
    enforcement = np.zeros(n, dtype=np.int64)
    enforcement[interval] = enforcement_overlap(unit[interval], ts[interval], credit[interval], windows)
    owner = np.searchsorted(interval, piece_ping)
    enf_seconds = apportion(owner, piece_weight, enforcement[interval])
    non_seconds = apportion(owner, piece_weight, credit[interval] - enforcement[interval])

    presence = _aggregate(
        ordered, blocks, piece_ping, piece_block, enf_seconds, non_seconds, ts, vehicle, unit, officer, extra_keys
    )
    track = ordered.assign(
        segment=segment, credit_s=credit, gap_s=gap, speed_kmh=speed, mode=np.where(vehicle, VEHICLE, FOOT), block=block
    )
    visits = _track_visits(track, blocks, piece_ping, piece_block, enf_seconds, non_seconds, rules, extra_keys)
    devices = _device_summary(track, piece_ping, piece_block, enf_seconds + non_seconds)
    block_devices = _block_devices(ordered, blocks, piece_ping, piece_block, non_seconds, ts, codes, extra_keys)
    return TrackCredit(presence=presence, visits=visits, devices=devices, pings=track, block_devices=block_devices)


def _block_devices(
    ordered: pd.DataFrame,
    blocks: gpd.GeoDataFrame,
    piece_ping: np.ndarray,
    piece_block: np.ndarray,
    non_seconds: np.ndarray,
    ts: np.ndarray,
    codes: np.ndarray,
    extra_keys: tuple[str, ...],
) -> pd.DataFrame:
    """Each (extra keys, block, UTC hour, device) with non-enforcement seconds, once; blocks only, not outside."""
    keep = (non_seconds > 0) & (piece_block >= 0)
    p, b = piece_ping[keep], piece_block[keep]
    extra = {key: _sorted_codes(ordered[key].to_numpy()) for key in extra_keys}
    frame = pd.DataFrame(
        {**{key: c[p] for key, (c, _) in extra.items()}, "block": b, "hour": ts[p] // 3600, "device": codes[p]}
    ).drop_duplicates()
    device_ids = ordered[DEVICE_ID].to_numpy(dtype=object)
    first_of = np.zeros(int(codes.max(initial=-1)) + 1, dtype=np.int64)
    first_of[codes[::-1]] = np.arange(len(codes))[::-1]  # a row of each device code
    return pd.DataFrame(
        {
            **{key: values[frame[key].to_numpy()] for key, (_, values) in extra.items()},
            BLOCK_ID: blocks[BLOCK_ID].to_numpy(dtype=object)[frame["block"].to_numpy()],
            "hour": pd.to_datetime(frame["hour"].to_numpy(dtype=np.int64) * 3600, unit="s", utc=True),
            DEVICE_ID: device_ids[first_of[frame["device"].to_numpy()]],
        }
    )


def _optional(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), None).to_numpy(dtype=object)


def _merge_pieces(ping: np.ndarray, block: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not len(ping):
        return ping.astype(np.int64), block.astype(np.int64), weight
    order = np.lexsort((block, ping))
    ping, block, weight = ping[order], block[order], weight[order]
    new = np.ones(len(ping), dtype=bool)
    new[1:] = (ping[1:] != ping[:-1]) | (block[1:] != block[:-1])
    starts = np.flatnonzero(new)
    return ping[starts], block[starts], np.add.reduceat(weight, starts)


def _aggregate(
    ordered: pd.DataFrame,
    blocks: gpd.GeoDataFrame,
    piece_ping: np.ndarray,
    piece_block: np.ndarray,
    enf_seconds: np.ndarray,
    non_seconds: np.ndarray,
    ts: np.ndarray,
    vehicle: np.ndarray,
    unit: np.ndarray,
    officer: np.ndarray,
    extra_keys: tuple[str, ...],
) -> pd.DataFrame:
    # Grouped on integer codes (in the order of the values, missing last), then decoded: text keys are slow.
    block_code, block_values = _sorted_codes(
        np.concatenate([blocks[BLOCK_ID].to_numpy(dtype=object), np.array([None], dtype=object)])
    )
    unit_code, unit_values = _sorted_codes(unit)
    officer_code, officer_values = _sorted_codes(officer)
    extra = {key: _sorted_codes(ordered[key].to_numpy()) for key in extra_keys}
    parts = []
    for purpose, seconds in ((0, enf_seconds), (1, non_seconds)):
        keep = seconds > 0
        p = piece_ping[keep]
        parts.append(
            pd.DataFrame(
                {
                    **{key: codes[p] for key, (codes, _) in extra.items()},
                    BLOCK_ID: block_code[piece_block[keep]],
                    "hour": ts[p] // 3600,
                    UNIT_ID: unit_code[p],
                    OFFICER_ID: officer_code[p],
                    "mode": vehicle[p].astype(np.int8),
                    "purpose": np.int8(purpose),
                    "seconds": seconds[keep],
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    keys = [*extra_keys, BLOCK_ID, "hour", UNIT_ID, OFFICER_ID, "mode", "purpose"]
    out = sum_by_codes(frame, keys, "seconds")
    decoded = pd.DataFrame(
        {
            **{key: values[out[key].to_numpy()] for key, (_, values) in extra.items()},
            BLOCK_ID: block_values[out[BLOCK_ID].to_numpy()],
            "hour": pd.to_datetime(out["hour"].to_numpy(dtype=np.int64) * 3600, unit="s", utc=True),
            UNIT_ID: unit_values[out[UNIT_ID].to_numpy()],
            OFFICER_ID: officer_values[out[OFFICER_ID].to_numpy()],
            "mode": np.where(out["mode"].to_numpy() == 1, VEHICLE, FOOT).astype(object),
            "purpose": np.where(out["purpose"].to_numpy() == 0, ENFORCEMENT, NON_ENFORCEMENT).astype(object),
            "seconds": out["seconds"].to_numpy(dtype=np.int64),
        }
    )
    return decoded[[*extra_keys, *PRESENCE_COLUMNS]]


def sum_by_codes(frame: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """``frame.groupby(keys, sort=True)[value].sum().reset_index()`` for non-negative integer key columns: the keys
    packed into one int64 (mixed radix, so it sorts as the keys do), then one sort and a sum per run."""
    columns = [frame[k].to_numpy(dtype=np.int64) for k in keys]
    if not len(frame):
        return frame.groupby(keys, sort=True)[value].sum().reset_index()
    lows = [int(c.min()) for c in columns]
    sizes = [int(c.max()) - lo + 1 for c, lo in zip(columns, lows, strict=True)]
    if min(lows) < 0 or int(np.prod([float(z) for z in sizes])) >= 1 << 62:
        return frame.groupby(keys, sort=True)[value].sum().reset_index()
    packed = np.zeros(len(frame), dtype=np.int64)
    for column, lo, size in zip(columns, lows, sizes, strict=True):
        packed = packed * size + (column - lo)
    order = np.argsort(packed, kind="stable")
    packed = packed[order]
    starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]])
    total = np.add.reduceat(frame[value].to_numpy(dtype=np.int64)[order], starts)
    unique = packed[starts]
    decoded = {}
    for key, lo, size in zip(keys[::-1], lows[::-1], sizes[::-1], strict=True):
        unique, part = np.divmod(unique, size)
        decoded[key] = part + lo
    return pd.DataFrame({**{k: decoded[k] for k in keys}, value: total})


def _sorted_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes of values in sorted order, missing values last; and the values of the codes."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    codes = np.where(codes < 0, len(uniques), codes).astype(np.int64)
    return codes, np.concatenate([np.asarray(uniques, dtype=object), np.array([None], dtype=object)])


def _track_visits(
    track: pd.DataFrame,
    blocks: gpd.GeoDataFrame,
    piece_ping: np.ndarray,
    piece_block: np.ndarray,
    enf_seconds: np.ndarray,
    non_seconds: np.ndarray,
    rules: TrackRules,
    extra_keys: tuple[str, ...],
) -> pd.DataFrame:
    n = len(track)
    block = track["block"].to_numpy()
    foot = track["mode"].to_numpy() == FOOT
    segment = track["segment"].to_numpy()
    change = np.ones(n, dtype=bool)
    if n > 1:
        change[1:] = (segment[1:] != segment[:-1]) | (block[1:] != block[:-1]) | (foot[1:] != foot[:-1])
    # Seconds each ping's interval credits to the ping's own block.
    own = piece_block == block[piece_ping]
    non_own = np.bincount(piece_ping[own], weights=non_seconds[own], minlength=n).astype(np.int64)
    enf_own = np.bincount(piece_ping[own], weights=enf_seconds[own], minlength=n).astype(np.int64)
    starts = np.flatnonzero(change)
    if not n:
        return pd.DataFrame({c: [] for c in (*extra_keys, *VISIT_COLUMNS)})
    run_non = np.add.reduceat(non_own, starts)
    run_enf = np.add.reduceat(enf_own, starts)
    ends = np.append(starts[1:], n) - 1
    ts = track[TS].to_numpy(dtype=np.int64)
    credit = track["credit_s"].to_numpy(dtype=np.int64)
    hit = foot[starts] & (block[starts] >= 0) & (run_non >= rules.visit_min_minutes * 60)
    s, e = starts[hit], ends[hit]
    rows = track.iloc[s]
    beat_ids = blocks[BEAT_ID].to_numpy(dtype=object)
    block_ids = blocks[BLOCK_ID].to_numpy(dtype=object)
    out = pd.DataFrame(
        {
            DEVICE_ID: rows[DEVICE_ID].to_numpy(),
            UNIT_ID: _optional(rows, UNIT_ID),
            OFFICER_ID: _optional(rows, OFFICER_ID),
            BLOCK_ID: block_ids[block[s]],
            BEAT_ID: beat_ids[block[s]],
            "start": pd.to_datetime(ts[s], unit="s", utc=True),
            "end": pd.to_datetime(ts[e] + credit[e], unit="s", utc=True),
            "seconds": run_non[hit],
            "enforcement_seconds": run_enf[hit],
            **{key: rows[key].to_numpy() for key in extra_keys},
        }
    )
    out[DEVICE_ID] = out[DEVICE_ID].astype(str)
    return out[[*extra_keys, *VISIT_COLUMNS]].sort_values([DEVICE_ID, "start"], kind="stable").reset_index(drop=True)


def _device_summary(
    track: pd.DataFrame, piece_ping: np.ndarray, piece_block: np.ndarray, seconds: np.ndarray
) -> pd.DataFrame:
    outside = np.bincount(piece_ping[piece_block < 0], weights=seconds[piece_block < 0], minlength=len(track)).astype(
        np.int64
    )
    frame = track.assign(outside_s=outside)
    grouped = frame.groupby(DEVICE_ID, sort=False, observed=True)
    out = pd.DataFrame(
        {
            "pings": grouped.size(),
            "segments": grouped["segment"].nunique(),
            "credited_seconds": grouped["credit_s"].sum(),
            "gap_seconds": grouped["gap_s"].sum(),
            "outside_seconds": grouped["outside_s"].sum(),
        }
    ).reset_index()
    out[DEVICE_ID] = out[DEVICE_ID].astype(str)
    out = out.sort_values(DEVICE_ID).reset_index(drop=True)
    return out[list(DEVICE_COLUMNS)].astype({c: np.int64 for c in DEVICE_COLUMNS[1:]})


def local_hours(presence: pd.DataFrame, zone: str) -> pd.Series:
    """The local wall-clock hour of each presence row's UTC hour (two UTC hours share one in the autumn)."""
    return presence["hour"].dt.tz_convert(zone).dt.hour
