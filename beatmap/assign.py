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
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from beatmap import schema as S
from beatmap.crs import WGS84, transform_xy
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

    Returns
    -------
    DataFrame
        One row per point, in input order: ``block_id`` and ``beat_id``
        (missing when outside), ``snapped`` (bool) and ``distance_m`` from the
        point to its block.
    """
    n = len(x)
    points = shapely.points(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    block_of = np.full(n, -1, dtype=np.int64)
    snapped = np.zeros(n, dtype=bool)
    distance = np.full(n, np.nan)
    if n and not blocks.empty:
        geoms = blocks.geometry.to_numpy()
        block_ids = blocks[BLOCK_ID].to_numpy(dtype=object)
        id_rank = np.empty(len(block_ids), dtype=np.int64)
        id_rank[np.argsort(block_ids.astype(str), kind="stable")] = np.arange(len(block_ids))
        beat_ids = blocks[BEAT_ID].to_numpy(dtype=object)
        reported = (np.asarray(reported_beat, dtype=object) if reported_beat is not None
                    else np.full(n, None, dtype=object))

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
            (qi, bi), dist = shapely.STRtree(geoms).query_nearest(
                points[left], max_distance=snap_m, return_distance=True, all_matches=True)
            take_best(left[qi], bi, dist)
            snapped[left[np.unique(qi)]] = True
    found = block_of >= 0
    out = pd.DataFrame({
        BLOCK_ID: pd.Series([None] * n, dtype=object),
        BEAT_ID: pd.Series([None] * n, dtype=object),
        "snapped": snapped,
        "distance_m": distance,
    })
    if found.any():
        out.loc[found, BLOCK_ID] = blocks[BLOCK_ID].to_numpy(dtype=object)[block_of[found]]
        out.loc[found, BEAT_ID] = blocks[BEAT_ID].to_numpy(dtype=object)[block_of[found]]
    return out


def assign_points(records: pd.DataFrame, blocks: gpd.GeoDataFrame, *, settings: Settings) -> pd.DataFrame:
    """Assign records with ``lon``/``lat`` (and optional ``reported_beat``) to ``blocks``.

    Returns the frame of :func:`activity_to_blocks`, with ``records``' index.
    """
    if blocks.empty:
        nowhere = np.zeros(len(records))
        return activity_to_blocks(nowhere, nowhere, blocks).set_axis(records.index)
    x, y = transform_xy(records[S.LON].to_numpy(), records[S.LAT].to_numpy(), WGS84, CRS(blocks.crs))
    reported = records[S.REPORTED_BEAT].to_numpy(dtype=object) if S.REPORTED_BEAT in records else None
    out = activity_to_blocks(x, y, blocks, reported_beat=reported, edge_tolerance_m=settings.edge_tolerance_m,
                             snap_m=settings.snap_m)
    return out.set_axis(records.index)
