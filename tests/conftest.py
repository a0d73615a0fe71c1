"""Shared fixtures: tiny hand-built areas in three CRSs, a temporary store, the real data folder."""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from beatmap import store
from beatmap.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"

#: A degree CRS, a metre CRS and a US-feet state-plane CRS (Illinois East).
CRS_CASES = ["EPSG:4326", "EPSG:32616", "EPSG:3435"]

#: Origin of the hand-built test city, in EPSG:32616 metres (Chicago's Loop).
X0, Y0 = 447_000.0, 4_636_000.0


def square(x: float, y: float, size: float) -> shapely.Polygon:
    """A square in test-city metres with its lower-left corner at (X0 + x, Y0 + y)."""
    return shapely.box(X0 + x, Y0 + y, X0 + x + size, Y0 + y + size)


def metric_frame(records: dict, crs: str) -> gpd.GeoDataFrame:
    """A GeoDataFrame built in EPSG:32616 metres, then expressed in ``crs``."""
    return gpd.GeoDataFrame(records, crs="EPSG:32616").to_crs(crs)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never write the dashboard cache into the checkout's data/ folder."""
    monkeypatch.setenv("BEATMAP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def settings() -> Settings:
    return Settings(timezone="America/Chicago")


@pytest.fixture
def engine(tmp_path):
    return store.open_store(tmp_path / "test.db")


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real public files; absent folder skips locally, fails on CI."""
    if not REALDATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{REALDATA} is missing on CI; the real-data tests must run there")
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the checkout on CI)")
    return REALDATA
