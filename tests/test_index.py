"""The block index: the same answers as the exact rule on every point, by property test, and its bytes."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely import affinity

from beatmap.assign import activity_to_blocks
from beatmap.errors import InputError
from beatmap.index import (
    EXACT,
    FIRST_LINE,
    INDEX_FORMAT,
    OUTSIDE,
    SPLIT,
    BlockIndex,
    build_block_index,
    index_cells,
    index_from_bytes,
    index_lookup,
    index_to_bytes,
)
from tests.conftest import X0, Y0, square

TOLERANCE, SNAP = 1.0, 15.0


def city(cols: int, rows: int, size: float, gap: float, angle: float) -> gpd.GeoDataFrame:
    """``cols`` x ``rows`` square blocks of ``size`` m, ``gap`` m of street between columns (0: shared edges),
    the left half in beat A and the right half in beat B, turned by ``angle`` degrees about the origin."""
    geoms, ids, beats = [], [], []
    for c in range(cols):
        for r in range(rows):
            geoms.append(affinity.rotate(square(c * (size + gap), r * size, size), angle, origin=(X0, Y0)))
            ids.append(f"k{c:02d}{r:02d}")
            beats.append("A" if c < cols / 2 else "B")
    frame = gpd.GeoDataFrame({"block_id": ids, "beat_id": beats}, geometry=geoms, crs="EPSG:32616")
    return frame.sort_values("block_id").reset_index(drop=True)


def gap_points(
    cols: int, rows: int, size: float, gap: float, angle: float, rng: np.random.Generator, n: int
) -> np.ndarray:
    """Points in the street gaps between columns of :func:`city`: a gap of 12 m has every point within the
    snap distance of the blocks on both sides, a gap of 40 m points within it of one side only, or of none."""
    if gap <= 0 or cols < 2:
        return np.zeros((0, 2))
    c = rng.integers(0, cols - 1, n)
    x = X0 + (c + 1) * size + c * gap + rng.uniform(0, gap, n)
    y = Y0 + rng.uniform(-SNAP, rows * size + SNAP, n)
    turned = shapely.get_coordinates(
        affinity.rotate(shapely.multipoints(np.column_stack([x, y])), angle, origin=(X0, Y0))
    )
    return turned


def probe_points(blocks: gpd.GeoDataFrame, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points of every hard kind: vertices, on edges, just inside and outside edges, in gaps, far outside."""
    coords = shapely.get_coordinates(blocks.boundary.to_numpy())
    xmin, ymin, xmax, ymax = blocks.total_bounds
    vertices = coords[rng.integers(0, len(coords), n)]
    # Points along edges: between consecutive vertices of one ring, nudged by up to 2 m either way.
    start = rng.integers(0, len(coords) - 1, n)
    t = rng.uniform(0, 1, n)[:, None]
    along = coords[start] + t * (coords[start + 1] - coords[start])
    nudged = along + rng.uniform(-2 * TOLERANCE, 2 * TOLERANCE, (n, 2))
    near_tolerance = along + rng.choice([-1, 1], (n, 2)) * rng.uniform(0.9, 1.1, (n, 2)) * TOLERANCE / np.sqrt(2)
    uniform = np.column_stack([rng.uniform(xmin - 40, xmax + 40, n), rng.uniform(ymin - 40, ymax + 40, n)])
    points = np.concatenate([vertices, along, nudged, near_tolerance, uniform])
    return points[:, 0], points[:, 1]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cols=st.integers(1, 5),
    rows=st.integers(1, 4),
    size=st.sampled_from([12.0, 40.0, 93.7]),
    gap=st.sampled_from([0.0, 0.5, 1.5, 12.0, 40.0]),
    angle=st.sampled_from([0.0, 17.0, 45.0]),
    cell_m=st.sampled_from([None, 0.5, 3.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_index_gives_the_exact_answer_on_every_point(cols, rows, size, gap, angle, cell_m, seed):
    blocks = city(cols, rows, size, gap, angle)
    rng = np.random.default_rng(seed)
    x, y = probe_points(blocks, rng, 300)
    gaps = gap_points(cols, rows, size, gap, angle, rng, 300)
    x, y = np.concatenate([x, gaps[:, 0]]), np.concatenate([y, gaps[:, 1]])
    # Records that name a beat, often the neighbouring one: the tie-break must stay the same.
    reported = rng.choice(np.array(["A", "B", None], dtype=object), len(x))
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP, cell_m=cell_m)
    fast = activity_to_blocks(
        x, y, blocks, reported_beat=reported, index=index, edge_tolerance_m=TOLERANCE, snap_m=SNAP
    )
    exact = activity_to_blocks(x, y, blocks, reported_beat=reported, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    pd.testing.assert_frame_equal(fast, exact)


def test_a_point_within_the_tolerance_of_a_reported_neighbour_goes_to_it():
    blocks = city(2, 1, 100.0, 0.0, 0.0)  # k0000 in beat A, k0100 in beat B, sharing the edge x = 100
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    x = X0 + np.array([99.6, 99.6, 50.0])
    y = Y0 + np.array([50.0, 50.0, 50.0])
    assert index_lookup(index, x, y)[:2].tolist() == [EXACT, EXACT]
    out = activity_to_blocks(x, y, blocks, reported_beat=np.array(["B", None, "B"], dtype=object), index=index)
    assert out["block_id"].tolist() == ["k0100", "k0000", "k0000"]


def test_street_gap_points_snap_to_the_reported_beat_when_both_sides_are_near():
    # Columns k00.. (beat A) and k01.. (beat B) with a 12 m street between: its points are within the snap
    # distance of both; the nearest block wins, and the beat the record names breaks a tie of distance.
    blocks = city(2, 1, 100.0, 12.0, 0.0)
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    x = X0 + np.array([104.0, 104.0, 106.0, 106.0, 106.0, 108.0])
    y = Y0 + np.full(6, 50.0)
    reported = np.array([None, "B", "B", "A", None, "A"], dtype=object)
    out = activity_to_blocks(x, y, blocks, reported_beat=reported, index=index)
    assert out["block_id"].tolist() == ["k0000", "k0000", "k0100", "k0000", "k0000", "k0100"]
    assert out["snapped"].all()
    np.testing.assert_allclose(out["distance_m"], [4.0, 4.0, 6.0, 6.0, 6.0, 4.0])
    exact = activity_to_blocks(x, y, blocks, reported_beat=reported)
    pd.testing.assert_frame_equal(out, exact)


def test_a_gap_point_near_one_block_only_snaps_to_it_and_far_ones_are_outside():
    blocks = city(2, 1, 100.0, 40.0, 0.0)
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    x = X0 + np.array([110.0, 130.0, 120.0])
    y = Y0 + np.full(3, 50.0)
    out = activity_to_blocks(x, y, blocks, reported_beat=np.array(["B", "A", "B"], dtype=object), index=index)
    assert out["block_id"].tolist() == ["k0000", "k0100", None]
    assert out["snapped"].tolist() == [True, True, False]


def test_most_points_near_a_shared_edge_answer_without_geometry():
    # One straight edge between two blocks of one beat: points up to 3 m from it answer by its side.
    blocks = city(2, 1, 100.0, 0.0, 17.0)
    blocks["beat_id"] = "A"
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    rng = np.random.default_rng(9)
    along, off = rng.uniform(20, 80, 10_000), rng.uniform(-3, 3, 10_000)
    x, y = shapely.get_coordinates(
        affinity.rotate(shapely.multipoints(np.column_stack([X0 + 100 + off, Y0 + along])), 17.0, origin=(X0, Y0))
    ).T
    assert np.mean(index_lookup(index, x, y) == EXACT) < 0.01
    pd.testing.assert_frame_equal(activity_to_blocks(x, y, blocks, index=index), activity_to_blocks(x, y, blocks))


def test_cells_answer_inside_outside_and_exact():
    blocks = city(2, 2, 100.0, 20.0, 0.0)
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    rows = dict(zip(blocks["block_id"], range(len(blocks)), strict=True))
    x = X0 + np.array([50.0, 170.0, 110.0, -500.0, 100.0, np.nan])
    y = Y0 + np.array([50.0, 150.0, 50.0, 50.0, 50.0, 0.0])
    assert index_lookup(index, x, y).tolist() == [rows["k0000"], rows["k0101"], EXACT, OUTSIDE, EXACT, EXACT]


def test_most_of_a_block_answers_by_lookup():
    blocks = city(3, 3, 100.0, 10.0, 0.0)
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    rng = np.random.default_rng(3)
    x, y = X0 + rng.uniform(0, 100, 10_000), Y0 + rng.uniform(0, 100, 10_000)
    share_exact = np.mean(index_lookup(index, x, y) == EXACT)
    assert share_exact < 0.15


def test_bytes_round_trip_and_mismatched_blocks_are_refused():
    blocks = city(2, 2, 50.0, 5.0, 10.0)
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP)
    again = index_from_bytes(index_to_bytes(index))
    assert again is not None and again.blocks_key == index.blocks_key
    assert len(index.sub) and again.sub_depth == index.sub_depth
    for name in ("top", "tile_of", "fine", "cut_cells", "sub", "line_nx", "line_pos", "line_same_beat", "candidates"):
        np.testing.assert_array_equal(getattr(again, name), getattr(index, name))
    x, y = X0 + np.linspace(-30, 130, 200), Y0 + np.linspace(-30, 130, 200)
    np.testing.assert_array_equal(index_lookup(again, x, y), index_lookup(index, x, y))
    with pytest.raises(InputError, match="build it again"):
        activity_to_blocks(x, y, blocks.iloc[:3], index=index)
    with pytest.raises(InputError, match="snap"):
        activity_to_blocks(x, y, blocks, index=index, snap_m=5.0)


def test_an_empty_layer_cannot_be_indexed():
    with pytest.raises(InputError, match="load beats and blocks"):
        build_block_index(city(1, 1, 10.0, 0.0, 0.0).iloc[:0], edge_tolerance_m=1.0, snap_m=15.0)


def test_an_index_in_the_previous_format_is_refused():
    blocks = city(2, 2, 50.0, 5.0, 10.0)
    data = index_to_bytes(build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP))
    with np.load(io.BytesIO(data), allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    arrays["format"] = np.array("block-index-2")
    old = io.BytesIO()
    np.savez(old, **arrays)
    assert INDEX_FORMAT != "block-index-2"
    assert index_from_bytes(old.getvalue()) is None


def test_cells_holding_a_corner_are_cut_again_and_answer_as_the_exact_rule():
    # Four blocks of one beat meeting at a corner, turned: the fine cells around the corner are cut into
    # sub-cells, and the sub-cells away from the corner answer by look-up or by the side of a line.
    blocks = city(2, 2, 100.0, 0.0, 23.0)
    blocks["beat_id"] = "A"
    index = build_block_index(blocks, edge_tolerance_m=TOLERANCE, snap_m=SNAP, cell_m=8.0)
    assert len(index.cut_cells) and len(index.sub) == len(index.cut_cells) * 4**index.sub_depth
    rng = np.random.default_rng(12)
    corner = shapely.get_coordinates(affinity.rotate(shapely.Point(X0 + 100, Y0 + 100), 23.0, origin=(X0, Y0)))[0]
    x, y = corner[0] + rng.uniform(-12, 12, 20_000), corner[1] + rng.uniform(-12, 12, 20_000)
    cells = index_cells(index, x, y)
    # Every cut fine cell says so, and some of its sub-cells answer a block outright or by a line.
    assert (index.fine[index.cut_cells] == SPLIT).all()
    assert (index.sub >= 0).any() and (index.sub <= FIRST_LINE).any()
    share = np.mean(index_lookup(index, x, y) == EXACT)
    assert share < 0.8 * np.mean(_uncut_lookup(index, x, y) == EXACT)
    assert (cells != SPLIT).all()
    reported = rng.choice(np.array(["A", None], dtype=object), len(x))
    pd.testing.assert_frame_equal(
        activity_to_blocks(x, y, blocks, reported_beat=reported, index=index),
        activity_to_blocks(x, y, blocks, reported_beat=reported),
    )


def _uncut_lookup(index: BlockIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What the index would answer if its cut fine cells were not cut: exact for every point in them."""
    side = 2**index.depth
    ix = ((x - index.x0) / index.cell_m).astype(np.int64)
    iy = ((y - index.y0) / index.cell_m).astype(np.int64)
    tile = index.tile_of[(ix >> index.depth) * index.ny + (iy >> index.depth)].astype(np.int64)
    fine = (tile << (2 * index.depth)) + ((ix & (side - 1)) << index.depth) + (iy & (side - 1))
    answer = index_lookup(index, x, y)
    answer[(tile >= 0) & np.isin(fine, index.cut_cells)] = EXACT
    return answer
