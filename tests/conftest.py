"""Shared fixtures: tiny hand-built areas in three CRSs, a temporary store, the real data folder, and the
AppTest seams (the app signed in as a user, the map component patched).

Stores are SQLite files unless ``$BEATMAP_TEST_DB`` names a PostgreSQL database
(a SQLAlchemy URL): then :func:`store_db` gives every test store a schema of its
own there, dropped at the end of the session.  An unreachable server fails the
run; it never skips.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pytest
import shapely
import sqlalchemy as sa
from sqlalchemy import Engine

from beatmap import store
from beatmap.ingest import ImportSummary, import_activity, load_areas
from beatmap.settings import Settings

if TYPE_CHECKING:
    from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
REALDATA = ROOT.parent / "shared" / "realdata"
#: The dashboard's entry point, for AppTest.
APP = str(ROOT / "app.py")
#: The clock the tests' imports of March 2026 activity run at.
IMPORT_NOW = pd.Timestamp("2026-04-01", tz="UTC")

#: The database the store tests run on: empty for SQLite files, else a PostgreSQL URL.
TEST_DB = os.environ.get("BEATMAP_TEST_DB", "")
_schemas: list[str] = []
_admin: list[Engine] = []


def on_postgres() -> bool:
    """True when this run's stores live on PostgreSQL."""
    return TEST_DB.startswith("postgresql")


def store_db(path: Path) -> str:
    """Where a test's store lives: the SQLite file ``path``, or on PostgreSQL a schema named after ``path``.

    The same path always gives the same store, so a test can open it again.
    """
    if not on_postgres():
        return str(path)
    schema = "t_" + hashlib.sha1(str(path).encode()).hexdigest()[:20]
    if not _admin:
        _admin.append(sa.create_engine(TEST_DB, isolation_level="AUTOCOMMIT"))
    try:
        with _admin[0].connect() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    except sa.exc.OperationalError as exc:
        pytest.fail(f"BEATMAP_TEST_DB={TEST_DB} is not reachable: {exc}")
    if schema not in _schemas:
        _schemas.append(schema)
    return (
        sa.make_url(TEST_DB)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session", autouse=True)
def _drop_test_schemas() -> Iterator[None]:
    yield
    if _admin:
        with _admin[0].connect() as conn:
            for schema in _schemas:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        _admin[0].dispose()


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


def two_beats(crs: str = "EPSG:4326", *, ids: Sequence[str] = ("A", "B")) -> gpd.GeoDataFrame:
    """The two-beat test city: beats ``ids[0]`` (0..400 m) and ``ids[1]`` (400..800 m), 400 m tall."""
    return metric_frame({"beat_id": list(ids), "geometry": [square(0, 0, 400), square(400, 0, 400)]}, crs)


def load_two_beats(
    engine: Engine, folder: Path, *, settings: Settings, ids: Sequence[str] = ("A", "B"), grid_m: float = 200
) -> Engine:
    """Write the two-beat city to ``folder/beats.geojson`` and load it into ``engine`` as ``grid_m`` grid blocks."""
    path = folder / "beats.geojson"
    two_beats(ids=ids).to_file(path)
    load_areas(engine, path, settings=settings, grid_m=grid_m)
    return engine


def import_rows(
    engine: Engine,
    folder: Path,
    rows: Sequence[str],
    *,
    settings: Settings,
    header: str = "occurred_at,lat,lon,kind",
    now: pd.Timestamp = IMPORT_NOW,
    name: str = "a.csv",
) -> ImportSummary:
    """Write ``header`` and the CSV ``rows`` to ``folder/name`` and import them into ``engine`` at ``now``."""
    path = folder / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return import_activity(engine, path, settings=settings, now=now)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never write the dashboard cache into the checkout's data/ folder."""
    monkeypatch.setenv("BEATMAP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # A PostgreSQL store keeps its raw ping archive in the configured folder (a SQLite store beside its file).
    return Settings(timezone="America/Chicago", ping_archive_dir=str(tmp_path / "pings") if on_postgres() else "")


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A new, empty store (SQLite, or PostgreSQL under ``$BEATMAP_TEST_DB``)."""
    opened = store.open_store(store_db(tmp_path / "test.db"))
    yield opened
    opened.dispose()


@pytest.fixture(scope="session")
def realdata() -> Path:
    """The real public files; absent folder skips locally, fails on CI."""
    if not REALDATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{REALDATA} is missing on CI; the real-data tests must run there")
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the checkout on CI)")
    return REALDATA


def app_as(name: str | None, *, signed_in_at: datetime | None = None) -> AppTest:
    """The whole app (AppTest) with ``name`` signed in, as beatmap.ui.auth keeps a local session (None: nobody)."""
    from streamlit.testing.v1 import AppTest

    from beatmap.ui import auth

    at = AppTest.from_file(APP, default_timeout=60)
    if name is not None:
        at.session_state[auth.SESSION_NAME] = name
        at.session_state[auth.SESSION_SIGNED_IN_AT] = signed_in_at or datetime.now(UTC)
    return at


@pytest.fixture
def maps(monkeypatch):
    """Patch the st_folium seam (opaque to AppTest): record the maps drawn as ``(key, map, layers)``, and answer
    with the pretend click in ``clicks[key]`` (none unless a test sets one).

    A map drawn with ``on_click`` gets the click as the browser gives it: once, through the callback, and
    then a new run (in the browser the callback runs before that run; here the run drawing the map ends).
    """
    drawn: list = []
    clicks: dict[str, dict] = {}

    def fake_show_map(m, *, key, height=560, layers=None, on_click=None):
        import streamlit as st

        drawn.append((key, m, layers or []))
        if on_click is not None and key in clicks:
            properties = (clicks.pop(key).get("last_active_drawing") or {}).get("properties") or {}
            on_click(properties)
            st.rerun()
        return clicks.get(key, {})

    import beatmap.ui.mapview

    monkeypatch.setattr(beatmap.ui.mapview, "show_map", fake_show_map)
    fake_show_map.clicks = clicks
    return drawn, clicks
