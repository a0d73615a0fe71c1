"""A tiny city with streets for the officer pages: beats A and B, 200 m blocks, a street on every block edge."""

from __future__ import annotations

import itertools
from pathlib import Path

import geopandas as gpd
import shapely
from pyproj import Transformer

from beatmap import store
from beatmap.settings import Settings
from beatmap.streets import load_streets
from tests.conftest import X0, Y0, import_rows, load_two_beats, metric_frame, store_db

_TO_WGS84 = Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True)
#: Intersections every 200 m: x 0..800, y 0..400 (test-city metres).
XS, YS = (0, 200, 400, 600, 800), (0, 200, 400)


def lat_lon(x: float, y: float) -> tuple[float, float]:
    """WGS84 ``(lat, lon)`` of a point in test-city metres."""
    lon, lat = _TO_WGS84.transform(X0 + x, Y0 + y)
    return round(lat, 7), round(lon, 7)


def street_grid() -> gpd.GeoDataFrame:
    """One street segment per block edge, in EPSG:4326."""
    lines = [shapely.LineString([(X0 + a, Y0 + y), (X0 + b, Y0 + y)]) for y in YS for a, b in itertools.pairwise(XS)]
    lines += [shapely.LineString([(X0 + x, Y0 + a), (X0 + x, Y0 + b)]) for x in XS for a, b in itertools.pairwise(YS)]
    return metric_frame(
        {"street_id": [f"S{i}" for i in range(len(lines))], "name": ["Test St"] * len(lines), "geometry": lines},
        "EPSG:4326",
    )


def build_store(folder: Path, *, streets: bool = True) -> str:
    """A store in ``folder``: 8 blocks, some activity (one block enforcement-only), and the streets."""
    settings = Settings()
    db = store_db(folder / "officer.db")
    engine = load_two_beats(store.open_store(db), folder, settings=settings)
    visited, enforced = lat_lon(50, 50), lat_lon(250, 250)
    rows = [f"2026-03-{d:02d}T10:00,{visited[0]},{visited[1]},foot_patrol" for d in range(1, 21)]
    rows += [f"2026-03-{d:02d}T22:00,{enforced[0]},{enforced[1]},enforcement" for d in range(1, 6)]
    import_rows(engine, folder, rows, settings=settings, name="activity.csv")
    if streets:
        street_grid().to_file(folder / "streets.geojson")
        load_streets(engine, folder / "streets.geojson")
    engine.dispose()
    return db
