"""Points to blocks: inside, on shared edges, in street gaps, outside; deterministic tie-breaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beatmap.areas import prepare_areas
from beatmap.assign import activity_to_blocks, assign_points
from beatmap.crs import WGS84, transform_xy
from tests.conftest import CRS_CASES, X0, Y0, metric_frame, square


def blocks_with_gap(crs: str):
    """Beat A = blocks a1 (0..100) and a2 (100..200); beat B = block b1 (220..320): a 20 m street gap."""
    beats = metric_frame({"beat_id": ["A", "B"], "geometry": [square(0, 0, 200), square(220, 0, 100)]}, crs)
    blocks = metric_frame(
        {"block_id": ["a1", "a2", "b1"], "geometry": [square(0, 0, 100), square(100, 0, 100), square(220, 0, 100)]}, crs
    )
    return prepare_areas(beats, blocks)[1]


def lonlat(xy: list[tuple[float, float]]) -> pd.DataFrame:
    x = np.array([X0 + p[0] for p in xy])
    y = np.array([Y0 + p[1] for p in xy])
    lon, lat = transform_xy(x, y, "EPSG:32616", WGS84)
    return pd.DataFrame({"lon": lon, "lat": lat})


@pytest.mark.parametrize("crs", CRS_CASES)
def test_points_inside_on_edges_in_gaps_and_outside(crs, settings):
    blocks = blocks_with_gap(crs)
    points = lonlat([(50, 50), (100, 50), (205, 50), (213, 50), (1000, 1000)])
    out = assign_points(points, blocks, settings=settings)
    assert out["block_id"].tolist() == ["a1", "a1", "a2", "b1", None]
    assert out["snapped"].tolist() == [False, False, True, True, False]
    assert out["beat_id"].tolist()[:4] == ["A", "A", "A", "B"]


def test_reported_beat_breaks_a_tie_on_a_beat_edge(settings):
    beats = metric_frame({"beat_id": ["A", "B"], "geometry": [square(0, 0, 100), square(100, 0, 100)]}, "EPSG:32616")
    _, blocks, _ = prepare_areas(beats, None, grid_m=100)
    # 0.3 m inside beat A (within the 1 m edge tolerance), with and without the record naming beat B.
    points = lonlat([(99.7, 50), (99.7, 50), (100.0, 50)])
    points["reported_beat"] = ["B", None, None]
    out = assign_points(points, blocks, settings=settings)
    assert out["beat_id"].tolist() == ["B", "A", "A"]


def test_assignment_is_independent_of_block_order():
    blocks = blocks_with_gap("EPSG:32616")
    x = X0 + np.array([100.0, 210.0, 50.0])
    y = Y0 + np.array([50.0, 50.0, 100.0])
    forward = activity_to_blocks(x, y, blocks)
    backward = activity_to_blocks(x, y, blocks.iloc[::-1].reset_index(drop=True))
    pd.testing.assert_frame_equal(forward, backward)
    # (210, 50) is exactly mid-gap: equal distance to a2 and b1, so the lower id wins.
    assert forward["block_id"].tolist() == ["a1", "a2", "a1"]


def test_snap_distance_is_respected():
    blocks = blocks_with_gap("EPSG:32616")
    out = activity_to_blocks(np.array([X0 + 205.0]), np.array([Y0 + 50.0]), blocks, snap_m=4.0)
    assert out["block_id"].isna().all() and not out["snapped"].any()
