"""Loading areas and importing activity through the store: counts, duplicates, transactions, time zones."""

from __future__ import annotations

import json
import textwrap

import geopandas as gpd
import pandas as pd
import pytest

from beatmap import store
from beatmap.errors import InputError, StoreError
from beatmap.ingest import import_activity, load_areas
from tests.conftest import load_two_beats, metric_frame, square

NOW = pd.Timestamp("2026-06-01", tz="UTC")
# Points (lat, lon) inside the test city's beat A (0..400 m east of X0) and far away.
INSIDE = "41.87596,-87.63631"
FAR = "40.0,-80.0"


@pytest.fixture
def loaded(engine, settings, tmp_path):
    return load_two_beats(engine, tmp_path, settings=settings, grid_m=100)


def csv(tmp_path, body: str, name: str = "activity.csv"):
    path = tmp_path / name
    path.write_text("occurred_at,lat,lon,kind,officer_id,notes\n" + textwrap.dedent(body).lstrip())
    return path


def test_import_accounts_for_every_row(loaded, settings, tmp_path):
    path = csv(tmp_path, f"""
        2026-03-01T10:00,{INSIDE},foot_patrol,O1,said hello
        2026-03-01T10:00,{INSIDE},foot_patrol,O1,said hello
        2026-03-01T11:00,{FAR},enforcement,O2,
        not-a-date,{INSIDE},foot_patrol,O1,
        2026-03-01T12:00,{INSIDE},nap,O1,
    """)
    summary = import_activity(loaded, path, settings=settings, now=NOW)
    assert (summary.rows, summary.imported, summary.duplicates, summary.rejected, summary.outside) == (5, 2, 1, 2, 1)
    assert summary.imported + summary.duplicates + summary.rejected == summary.rows
    counts = store.counts(loaded)
    assert counts["events"] == 2 and counts["rejects"] == 2

    again = import_activity(loaded, path, settings=settings, now=NOW)
    assert (again.imported, again.duplicates, again.rejected) == (0, 3, 2)
    assert store.counts(loaded)["events"] == 2 and store.counts(loaded)["rejects"] == 2

    rejects = store.read_rejects(loaded)
    assert rejects["row_number"].tolist() == [4, 5]
    assert json.loads(rejects["raw"].iloc[1])["kind"] == "nap"


def test_times_round_trip_aware_utc(loaded, settings, tmp_path):
    import_activity(loaded, csv(tmp_path, f"2026-07-04T21:15,{INSIDE},community_visit,O1,\n"), settings=settings,
                    now=pd.Timestamp("2026-08-01", tz="UTC"))
    events = store.read_events(loaded, columns=("occurred_at", "block_id", "beat_id"))
    assert events["occurred_at"].iloc[0] == pd.Timestamp("2026-07-05T02:15", tz="UTC")
    assert events["beat_id"].iloc[0] == "A"
    first, last = store.activity_span(loaded)
    assert first.tzinfo is not None and first == last


def test_failed_import_changes_nothing(loaded, settings, tmp_path, monkeypatch):
    path = csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\nbad,{INSIDE},foot_patrol,O1,\n")
    before = store.counts(loaded)

    def explode(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(store, "insert_rejects", explode)
    with pytest.raises(StoreError):
        import_activity(loaded, path, settings=settings, now=NOW)
    assert store.counts(loaded) == before


def test_unusable_file_changes_nothing(loaded, settings, tmp_path):
    before = store.counts(loaded)
    path = tmp_path / "wrong.csv"
    path.write_text("when,where\n2026-01-01,here\n")
    with pytest.raises(InputError, match="wrong.csv: missing column"):
        import_activity(loaded, path, settings=settings)
    assert store.counts(loaded) == before


def test_reloading_areas_reassigns_activity(loaded, settings, tmp_path):
    import_activity(loaded, csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\n"), settings=settings, now=NOW)
    moved = metric_frame({"beat_id": ["Z"], "geometry": [square(0, 0, 800)]}, "EPSG:4326")
    path = tmp_path / "new_beats.geojson"
    moved.to_file(path)
    summary = load_areas(loaded, path, settings=settings, grid_m=400)
    assert summary.events_reassigned == 1
    assert store.read_events(loaded, columns=("beat_id",))["beat_id"].tolist() == ["Z"]


def test_import_before_areas_keeps_points_unassigned(engine, settings, tmp_path):
    summary = import_activity(engine, csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\n"),
                              settings=settings, now=NOW)
    assert summary.imported == 1 and summary.outside == 1


def test_store_refuses_naive_times():
    with pytest.raises(StoreError, match="time zone"):
        store.UTCDateTime().process_bind_param(pd.Timestamp("2026-01-01").to_pydatetime(), None)


def test_store_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.store_url() == "sqlite:///data/beatmap.db"
    monkeypatch.setenv(store.ENV_VAR, "postgresql+psycopg://localhost/beatmap")
    assert store.store_url() == "postgresql+psycopg://localhost/beatmap"
    assert store.store_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"


def test_open_without_create_needs_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="beatmap demo"):
        store.open_store(tmp_path / "none.db", create=False)


def test_areas_round_trip_geometry(loaded):
    blocks = store.read_blocks(loaded)
    assert isinstance(blocks, gpd.GeoDataFrame) and len(blocks) == 32
    assert blocks.crs.is_projected and blocks.geometry.area.sum() == pytest.approx(800 * 400, rel=1e-6)
