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

from beatmap.schema import BEAT_ID, BLOCK_ID

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
    out = pd.DataFrame({
        BLOCK_ID: pd.Series([None] * n, dtype=object),
        BEAT_ID: pd.Series([None] * n, dtype=object),
        "snapped": np.zeros(n, dtype=bool),
        "distance_m": np.full(n, np.nan),
    })
    if n == 0 or blocks.empty:
        return out
    geoms = blocks.geometry.to_numpy()
    block_ids = blocks[BLOCK_ID].to_numpy(dtype=object)
    beat_ids = blocks[BEAT_ID].to_numpy(dtype=object)
    reported = np.asarray(reported_beat, dtype=object) if reported_beat is not None else np.full(n, None, dtype=object)
    tree = shapely.STRtree(geoms)

    pi, bi = tree.query(points, predicate="dwithin", distance=edge_tolerance_m)
    _take_best(out, pi, bi, shapely.distance(points[pi], geoms[bi]), block_ids, beat_ids, reported)

    left = np.flatnonzero(out[BLOCK_ID].isna().to_numpy())
    if len(left) and snap_m > 0:
        (qi, bi2), dist = tree.query_nearest(points[left], max_distance=snap_m, return_distance=True, all_matches=True)
        _take_best(out, left[qi], bi2, dist, block_ids, beat_ids, reported)
        out.loc[left[np.unique(qi)], "snapped"] = True
    return out


def _take_best(
    out: pd.DataFrame,
    point_idx: np.ndarray,
    block_idx: np.ndarray,
    distance: np.ndarray,
    block_ids: np.ndarray,
    beat_ids: np.ndarray,
    reported: np.ndarray,
) -> None:
    """Write the winning candidate for each point into ``out`` (the tie-break rule)."""
    if len(point_idx) == 0:
        return
    cand = pd.DataFrame({
        "point": point_idx,
        "other_beat": beat_ids[block_idx] != reported[point_idx],
        "distance": np.round(distance, 6),
        BLOCK_ID: block_ids[block_idx],
        BEAT_ID: beat_ids[block_idx],
    })
    best = cand.sort_values(["point", "other_beat", "distance", BLOCK_ID], kind="stable").drop_duplicates("point")
    rows = best["point"].to_numpy()
    out.loc[rows, BLOCK_ID] = best[BLOCK_ID].to_numpy()
    out.loc[rows, BEAT_ID] = best[BEAT_ID].to_numpy()
    out.loc[rows, "distance_m"] = best["distance"].to_numpy()
