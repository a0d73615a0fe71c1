"""A row of street blocks for the GPS track tests."""

from __future__ import annotations

import geopandas as gpd

from beatmap.areas import prepare_areas
from tests.conftest import metric_frame, square

#: Blocks b0..b7: 100 m squares with 20 m streets between them, in a row along x; beats A (b0-b3) and B (b4-b7).
PITCH = 120


def row_of_blocks() -> gpd.GeoDataFrame:
    """The eight blocks (EPSG:32616), prepared as the store keeps them."""
    beats = metric_frame(
        {"beat_id": ["A", "B"], "geometry": [square(-10, -10, 480), square(470, -10, 480)]}, "EPSG:32616"
    )
    blocks = metric_frame(
        {"block_id": [f"b{k}" for k in range(8)], "geometry": [square(k * PITCH, 0, 100) for k in range(8)]},
        "EPSG:32616",
    )
    return prepare_areas(beats, blocks)[1]
