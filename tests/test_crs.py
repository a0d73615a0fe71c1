"""CRS checks and the choice of the analysis CRS."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely
from pyproj import CRS

from beatmap.crs import is_metric, metric_crs_for, parse_crs, transform_xy
from beatmap.errors import CRSError


@pytest.mark.parametrize(
    ("crs", "expected"),
    [
        ("EPSG:4326", "EPSG:32616"),  # degrees: the UTM zone of the data
        ("EPSG:3435", "EPSG:32616"),  # US feet: the UTM zone, not feet
        ("EPSG:26971", "EPSG:26971"),  # Illinois East in metres: the department's own
    ],
)
def test_metric_crs_choice(crs, expected):
    layer = gpd.GeoDataFrame(geometry=[shapely.box(-87.7, 41.8, -87.6, 41.9)], crs="EPSG:4326").to_crs(crs)
    assert metric_crs_for(layer) == CRS(expected)


def test_preferred_crs_must_be_metric():
    layer = gpd.GeoDataFrame(geometry=[shapely.box(-87.7, 41.8, -87.6, 41.9)], crs="EPSG:4326")
    assert metric_crs_for(layer, preferred="EPSG:26971") == CRS("EPSG:26971")
    with pytest.raises(CRSError, match="not a projected CRS in metres"):
        metric_crs_for(layer, preferred="EPSG:3435")


def test_parse_crs_errors_name_the_fix():
    with pytest.raises(CRSError, match="EPSG code"):
        parse_crs("not-a-crs")


def test_is_metric():
    assert is_metric(CRS("EPSG:32616")) and not is_metric(CRS("EPSG:3435")) and not is_metric(CRS("EPSG:4326"))


def test_transform_is_lon_lat_order():
    x, y = transform_xy([-87.63], [41.88], CRS("EPSG:4326"), CRS("EPSG:32616"))
    assert 440_000 < x[0] < 450_000 and 4_630_000 < y[0] < 4_640_000
