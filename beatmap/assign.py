"""Assign located activity to blocks: exact, deterministic, vectorised.

Rules, applied to every point in the analysis CRS (metres):

1. **On or in a block.**  The candidates are the blocks within
   ``edge_tolerance_m`` of the point (a point inside a block is at distance
   0; a point on a shared edge is at distance 0 from both blocks).
2. **In a street gap.**  A point with no candidate goes to the nearest block
   within ``snap_m`` and counts as *snapped*.
3. **Outside.**  Anything farther is outside the beats: kept, but on no block.

Ties among candidates are broken, in order, by: a block in the beat the
record reports (``reported_beat``), the smaller distance, the lower
``block_id``.  So a point on the line between two beats goes to the beat its
record names, and otherwise always to the same block.

With a :class:`beatmap.index.BlockIndex` of the blocks, most points answer
by an array look-up; only points near a block's edge or in a street gap go
through the exact rule above, and the answers are the same.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from beatmap import schema as S
from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.index import EXACT, BlockIndex, index_candidates
from beatmap.schema import BEAT_ID, BLOCK_ID
from beatmap.settings import Settings

#: Columns of the frame :func:`activity_to_blocks` returns.
ASSIGNMENT_COLUMNS = (BLOCK_ID, BEAT_ID, "snapped", "distance_m")


def activity_to_blocks(
    x: np.ndarray,
    y: np.ndarray,
    blocks: gpd.GeoDataFrame,
    *,
    reported_beat: np.ndarray | None = None,
    edge_tolerance_m: float = 1.0,
    snap_m: float = 15.0,
    index: BlockIndex | None = None,
) -> pd.DataFrame:
    """Assign points to blocks.

    Parameters
    ----------
    x, y : array of float
        Point coordinates in the blocks' (metric) CRS.
    blocks : GeoDataFrame
        ``block_id``, ``beat_id`` and polygons in a metric CRS.
    reported_beat : array of str or None, optional
        The beat each record names, used only to break ties.
    edge_tolerance_m, snap_m : float
        See the module docstring.
    index : BlockIndex, optional
        An index built from these very ``blocks`` (same rows, same order) with
        the same tolerance and snap distance; the answers do not change, only
        the time they take.

    Returns
    -------
    DataFrame
        One row per point, in input order: ``block_id`` and ``beat_id``
        (missing when outside), ``snapped`` (bool) and ``distance_m`` from the
        point to its block.

    Raises
    ------
    InputError
        When ``index`` was built for other blocks or other distances.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    reported = None if reported_beat is None else np.asarray(reported_beat, dtype=object)
    if index is None or not len(x) or blocks.empty:
        position, snapped, distance = assign_positions(
            x, y, blocks, reported_beat=reported, edge_tolerance_m=edge_tolerance_m, snap_m=snap_m
        )
        return assignment_frame(blocks, position, snapped, distance)
    if index.n_blocks != len(blocks) or index.edge_tolerance_m != edge_tolerance_m or index.snap_m != snap_m:
        raise InputError(
            f"the block index was built for {index.n_blocks:,} blocks with edge tolerance "
            f"{index.edge_tolerance_m} m and snap {index.snap_m} m, not for these {len(blocks):,} "
            f"blocks with {edge_tolerance_m} m and {snap_m} m; build it again with build_block_index."
        )
    position, snapped, distance = assign_positions_indexed(x, y, blocks, index, reported_beat=reported)
    return assignment_frame(blocks, position, snapped, distance)


def assign_positions_indexed(
    x: np.ndarray,
    y: np.ndarray,
    blocks: gpd.GeoDataFrame,
    index: BlockIndex,
    *,
    reported_beat: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`assign_positions` by way of ``index`` (built from these ``blocks``, with its distances).

    Most points answer by look-up; the points the index leaves are weighed
    against the few blocks their cell keeps (pairs of arrays, no tree), and
    only points with no cell (a missing coordinate) go through the whole rule.
    """
    position, pair_point, pair_block = index_candidates(index, x, y)
    snapped = np.zeros(len(x), dtype=bool)
    distance = np.where(position >= 0, 0.0, np.nan)
    if len(pair_point):
        ranks = _BlockRanks(blocks)
        # Pairs come grouped by point, in point order.
        starts = np.r_[True, pair_point[1:] != pair_point[:-1]]
        points = pair_point[starts]
        geometry = shapely.points(x[points], y[points])[np.cumsum(starts) - 1]
        dist = _pair_distances(geometry, ranks.geoms[pair_block], pair_point, index.edge_tolerance_m)
        best, near, gap, moved = _best_pairs(
            pair_point,
            pair_block,
            dist,
            ranks,
            reported_beat=reported_beat,
            edge_tolerance_m=index.edge_tolerance_m,
            snap_m=index.snap_m,
        )
        position[points] = -1
        position[best] = near
        distance[best] = gap
        snapped[best] = moved
    rest = np.flatnonzero(position == EXACT)
    if len(rest):
        position[rest], snapped[rest], distance[rest] = assign_positions(
            x[rest],
            y[rest],
            blocks,
            reported_beat=None if reported_beat is None else reported_beat[rest],
            edge_tolerance_m=index.edge_tolerance_m,
            snap_m=index.snap_m,
        )
    return position, snapped, distance


def _pair_distances(points: np.ndarray, geoms: np.ndarray, pi: np.ndarray, edge_tolerance_m: float) -> np.ndarray:
    """Distance of each (point, block) pair, as :func:`shapely.distance` gives it, where the rule reads it.

    The rule reads the distance of a block within the tolerance, and of every
    block of a point with none within it (snapping).  A point in or on a block
    is at 0 (found by the quick prepared test); the others are measured.
    Pairs the rule does not read get a distance above the tolerance (inf).
    """
    shapely.prepare(geoms)
    dist = np.full(len(points), np.inf)
    inside = shapely.intersects(points, geoms)
    dist[inside] = 0.0
    rest = np.flatnonzero(~inside)
    near = rest[shapely.dwithin(points[rest], geoms[rest], edge_tolerance_m)]
    has_within = np.zeros(int(pi.max()) + 1, dtype=bool)
    has_within[pi[inside]] = True
    has_within[pi[near]] = True
    measure = np.union1d(near, np.flatnonzero(~has_within[pi] & ~inside))
    dist[measure] = shapely.distance(points[measure], geoms[measure])
    return dist


class _BlockRanks:
    """What the tie-break reads of the blocks: polygons, beats, and each block's rank by id."""

    def __init__(self, blocks: gpd.GeoDataFrame) -> None:
        self.geoms = blocks.geometry.to_numpy()
        block_ids = blocks[BLOCK_ID].to_numpy(dtype=object)
        self.id_rank = np.empty(len(block_ids), dtype=np.int64)
        self.id_rank[np.argsort(block_ids.astype(str), kind="stable")] = np.arange(len(block_ids))
        self.beat_ids = blocks[BEAT_ID].to_numpy(dtype=object)


def _best_pairs(
    pi: np.ndarray,
    bi: np.ndarray,
    dist: np.ndarray,
    ranks: _BlockRanks,
    *,
    reported_beat: np.ndarray | None,
    edge_tolerance_m: float,
    snap_m: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The exact rule on (point, block, distance) pairs that hold every block within reach of each point.

    Returns the points that get a block, the block, the distance and whether it was snapped.
    """
    n = int(pi.max()) + 1
    within = dist <= edge_tolerance_m
    has_within = np.zeros(n, dtype=bool)
    has_within[pi[within]] = True
    eligible = within
    if snap_m > 0:
        nearest = np.full(n, np.inf)
        np.minimum.at(nearest, pi, dist)
        eligible = within | (~has_within[pi] & (dist <= snap_m) & (dist == nearest[pi]))
    pi, bi, dist = pi[eligible], bi[eligible], dist[eligible]
    count = np.bincount(pi, minlength=n)
    one = count[pi] == 1
    many = np.flatnonzero(~one)
    chosen = np.flatnonzero(one)
    if len(many):
        mp, mb, md = pi[many], bi[many], dist[many]
        reported = np.full(len(mp), None, dtype=object) if reported_beat is None else np.asarray(reported_beat)[mp]
        # The tie-break rule: reported beat first, then distance, then the lower block id.
        other_beat = ranks.beat_ids[mb] != reported
        order = np.lexsort((ranks.id_rank[mb], np.round(md, 6), other_beat, mp))
        first = order[np.unique(mp[order], return_index=True)[1]]
        chosen = np.concatenate([chosen, many[first]])
    points = pi[chosen]
    return points, bi[chosen], dist[chosen], ~has_within[points]


def assign_positions(
    x: np.ndarray,
    y: np.ndarray,
    blocks: gpd.GeoDataFrame,
    *,
    reported_beat: np.ndarray | None = None,
    edge_tolerance_m: float = 1.0,
    snap_m: float = 15.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The exact rule of the module docstring, as arrays.

    Returns
    -------
    position : array of int64
        Row of ``blocks`` each point goes to, -1 when outside.
    snapped : array of bool
    distance : array of float
        Distance to the block (NaN when outside).
    """
    n = len(x)
    points = shapely.points(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    block_of = np.full(n, -1, dtype=np.int64)
    snapped = np.zeros(n, dtype=bool)
    distance = np.full(n, np.nan)
    if n and not blocks.empty:
        geoms = blocks.geometry.to_numpy()
        id_rank, beat_ids = _ranks_and_beats(blocks)
        reported = (
            np.asarray(reported_beat, dtype=object) if reported_beat is not None else np.full(n, None, dtype=object)
        )

        def take_best(pi: np.ndarray, bi: np.ndarray, dist: np.ndarray) -> None:
            # The tie-break rule: reported beat first, then distance, then the lower block id.
            other_beat = beat_ids[bi] != reported[pi]
            order = np.lexsort((id_rank[bi], np.round(dist, 6), other_beat, pi))
            first = order[np.unique(pi[order], return_index=True)[1]]
            block_of[pi[first]] = bi[first]
            distance[pi[first]] = dist[first]

        # Many points, fewer blocks: a tree of the points answers faster than a tree of the blocks.
        bi, pi = shapely.STRtree(points).query(geoms, predicate="dwithin", distance=edge_tolerance_m)
        take_best(pi, bi, shapely.distance(points[pi], geoms[bi]))
        left = np.flatnonzero(block_of < 0)
        if len(left) and snap_m > 0:
            (qi, bi), dist = block_tree(geoms).query_nearest(
                points[left], max_distance=snap_m, return_distance=True, all_matches=True
            )
            take_best(left[qi], bi, dist)
            snapped[left[np.unique(qi)]] = True
    return block_of, snapped, distance


#: The last blocks' tree, and their id ranks and beats: one import assigns many groups of points to the same
#: blocks (each took about 0.1 s to prepare for 30,000 blocks).
_TREE_CACHE: list[tuple[np.ndarray, shapely.STRtree]] = []
_RANK_CACHE: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []


def _same_geometries(a: np.ndarray, b: np.ndarray) -> bool:
    return a is b or (len(a) == len(b) and bool(np.all(a == b)))


def block_tree(geoms: np.ndarray) -> shapely.STRtree:
    """An STRtree of the block polygons, kept for the last polygons asked about."""
    for known, tree in _TREE_CACHE:
        if _same_geometries(known, geoms):
            return tree
    tree = shapely.STRtree(geoms)
    _TREE_CACHE[:] = [(geoms, tree)]
    return tree


def _ranks_and_beats(blocks: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The rank of each block's id in id order, and its beat (kept for the last blocks asked about)."""
    block_ids = blocks[BLOCK_ID].to_numpy(dtype=object)
    beat_ids = blocks[BEAT_ID].to_numpy(dtype=object)
    for known_ids, known_beats, id_rank, beats in _RANK_CACHE:
        if (
            len(known_ids) == len(block_ids)
            and bool(np.all(known_ids == block_ids))
            and bool(np.all(known_beats == beat_ids))
        ):
            return id_rank, beats
    id_rank = np.empty(len(block_ids), dtype=np.int64)
    id_rank[np.argsort(block_ids.astype(str), kind="stable")] = np.arange(len(block_ids))
    _RANK_CACHE[:] = [(block_ids, beat_ids, id_rank, beat_ids)]
    return id_rank, beat_ids


def assignment_frame(
    blocks: gpd.GeoDataFrame, position: np.ndarray, snapped: np.ndarray, distance: np.ndarray
) -> pd.DataFrame:
    """The frame :func:`activity_to_blocks` returns, from block rows (-1: outside) per point."""
    # One extra slot holding None, so that position -1 (outside) reads it.
    block_ids = np.concatenate([blocks[BLOCK_ID].to_numpy(dtype=object), np.array([None], dtype=object)])
    beat_ids = np.concatenate([blocks[BEAT_ID].to_numpy(dtype=object), np.array([None], dtype=object)])
    # Joined as separate columns: a frame built from a dict copies the two text columns into one block.
    return pd.concat(
        [
            pd.Series(block_ids[position], dtype=object, name=BLOCK_ID),
            pd.Series(beat_ids[position], dtype=object, name=BEAT_ID),
            pd.Series(np.asarray(snapped, dtype=bool), name="snapped"),
            pd.Series(np.asarray(distance, dtype=float), name="distance_m"),
        ],
        axis=1,
    )


def assign_points(
    records: pd.DataFrame, blocks: gpd.GeoDataFrame, *, settings: Settings, index: BlockIndex | None = None
) -> pd.DataFrame:
    """Assign records with ``lon``/``lat`` (and optional ``reported_beat``) to ``blocks``.

    Returns the frame of :func:`activity_to_blocks`, with ``records``' index;
    ``index`` (of these ``blocks``) only makes it faster.
    """
    if blocks.empty:
        nowhere = np.zeros(len(records))
        return activity_to_blocks(nowhere, nowhere, blocks).set_axis(records.index)
    x, y = transform_xy(records[S.LON].to_numpy(), records[S.LAT].to_numpy(), WGS84, CRS(blocks.crs))
    reported = records[S.REPORTED_BEAT].to_numpy(dtype=object) if S.REPORTED_BEAT in records else None
    out = activity_to_blocks(
        x,
        y,
        blocks,
        reported_beat=reported,
        edge_tolerance_m=settings.edge_tolerance_m,
        snap_m=settings.snap_m,
        index=index,
    )
    return out.set_axis(records.index)
