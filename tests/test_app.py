"""The dashboard under streamlit's AppTest: it renders, filters change numbers, empty states show."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from beatmap import store
from beatmap.ingest import import_activity, load_areas
from tests.conftest import ROOT, metric_frame, square

APP = str(ROOT / "app.py")


@pytest.fixture
def maps(monkeypatch):
    """Patch the st_folium seam: record the maps the page draws."""
    drawn = []

    def fake_show_map(m, *, key, height=560):
        drawn.append(m)
        return {}

    import beatmap.ui.mapview

    monkeypatch.setattr(beatmap.ui.mapview, "show_map", fake_show_map)
    return drawn


@pytest.fixture
def demo_store(tmp_path, monkeypatch, settings):
    db = tmp_path / "app.db"
    engine = store.open_store(db)
    beats = metric_frame({"beat_id": ["A", "B"], "geometry": [square(0, 0, 400), square(400, 0, 400)]}, "EPSG:4326")
    beats.to_file(tmp_path / "beats.geojson")
    load_areas(engine, tmp_path / "beats.geojson", settings=settings, grid_m=200)
    rows = ["occurred_at,lat,lon,kind"]
    rows += [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol" for d in range(1, 21)]
    rows += [f"2026-03-{d:02d}T22:00,41.87689,-87.63150,enforcement" for d in range(1, 6)]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    import_activity(engine, tmp_path / "a.csv", settings=settings, now=pd.Timestamp("2026-04-01", tz="UTC"))
    monkeypatch.setenv("BEATMAP_DB", str(db))
    return db


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_coverage_page_renders_map_metrics_and_flags(demo_store, maps):
    at = run_app()
    assert at.title[0].value == "Coverage"
    assert metric(at, "Blocks") == "8" and metric(at, "Coverage") == "12%"
    assert len(maps) == 1
    html = maps[0].get_root().render()
    assert "/app/static/vendor/leaflet/leaflet.js" in html and "cdn" not in html.lower()
    table = at.dataframe[0].value
    assert "enforcement_only" in set(table["flag"])


def test_beat_filter_changes_the_numbers(demo_store, maps):
    at = run_app()
    at.selectbox[0].select("B").run()
    assert not at.exception
    assert metric(at, "Blocks") == "4" and metric(at, "Coverage") == "0%"
    assert metric(at, "Enforcement only") == "1"


def test_date_range_without_activity_says_so(demo_store, maps):
    at = run_app()
    at.date_input[0].set_value((pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-01-31").date())).run()
    assert not at.exception
    assert any("No activity between 2025-01-01 and 2025-01-31" in w.value for w in at.warning)


def test_empty_store_suggests_the_next_step(tmp_path, monkeypatch, maps):
    monkeypatch.setenv("BEATMAP_DB", str(tmp_path / "empty.db"))
    at = run_app()
    assert "beatmap demo" in at.info[0].value and maps == []
