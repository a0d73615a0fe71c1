"""The real public files in ../shared/realdata, read in place, with their quirks.

Each test prints what it found (run pytest with -s to see the figures).
"""

from __future__ import annotations

import pytest

from beatmap import store
from beatmap.areas import prepare_areas, read_layer
from beatmap.errors import CRSError
from beatmap.ingest import import_activity, load_areas
from beatmap.report import block_coverage, window_from_store
from tests.conftest import ROOT, store_db


def test_chicago_beats_dissolve_the_duplicate_beat(realdata):
    layer = read_layer(realdata / "chicago" / "police_beats.geojson")
    assert len(layer) == 277
    beats, blocks, notes = prepare_areas(layer, None, beat_id_field="BEAT_NUM", grid_m=500)
    assert len(beats) == 275 and beats["beat_id"].is_unique
    dissolved = notes[notes["action"] == "dissolved"]
    assert dissolved["id"].tolist() == ["3100"] and "3 features" in dissolved["detail"].iloc[0]
    assert blocks.groupby("beat_id").size().index.nunique() == 275
    print(f"\nChicago: 277 features -> {len(beats)} beats; {len(blocks):,} grid blocks of 500 m")


def test_chicago_districts_zipped_shapefile(realdata):
    beats, _, notes = prepare_areas(
        read_layer(realdata / "chicago" / "police_districts_shapefile.zip"), None, beat_id_field="DIST_NUM", grid_m=1000
    )
    layer = read_layer(realdata / "chicago" / "police_districts_shapefile.zip")
    assert len(layer) == 25
    # Some districts come as several polygons; each is dissolved and reported, none dropped.
    assert set(notes.loc[notes["layer"] == "beat", "action"]) <= {"dissolved"}
    assert set(notes.loc[notes["layer"] == "block", "action"]) <= {"merged"}  # thin grid pieces at the edges
    assert len(beats) == layer["DIST_NUM"].astype(int).nunique()
    assert set(beats["beat_id"]) == set(layer["DIST_NUM"].astype(int).astype(str))


@pytest.fixture(scope="module")
def chicago(realdata, tmp_path_factory):
    from beatmap.settings import Settings

    settings = Settings(timezone="America/Chicago")
    engine = store.open_store(store_db(tmp_path_factory.mktemp("chicago") / "store.db"))
    load_areas(
        engine, realdata / "chicago" / "police_beats.geojson", beat_id_field="BEAT_NUM", grid_m=250, settings=settings
    )
    summary = import_activity(
        engine,
        realdata / "chicago" / "crimes_2019_sample20k.csv",
        settings=settings,
        mapping_path=ROOT / "examples" / "chicago_crimes.toml",
    )
    return engine, settings, summary


def test_chicago_crimes_through_the_mapping(chicago):
    engine, _settings, summary = chicago
    assert summary.rows == 20_001
    assert summary.imported + summary.duplicates + summary.rejected == summary.rows
    assert summary.rejected >= 97  # 96 rows without coordinates and the x=y=0 sentinel
    assert any("placeholder" in reason for reason in summary.reject_reasons)
    events = store.read_events(engine, columns=("reported_beat", "beat_id", "kind"))
    located = events[events["beat_id"].notna()]
    in_reported = (located["beat_id"] == located["reported_beat"]).mean()
    print(
        f"\nChicago crimes: {summary.imported:,} imported, {summary.rejected} rejected, "
        f"{summary.outside} outside the beats; {in_reported:.2%} land in their reported beat"
    )
    # Points on beat boundaries go to the beat the record names (edge tie-break).
    assert in_reported > 0.97
    assert set(events["kind"]) == {"enforcement"}


def test_chicago_coverage_flags_enforcement_only_blocks(chicago):
    engine, settings, _ = chicago
    cov = block_coverage(engine, window=window_from_store(engine, settings=settings), settings=settings)
    enf_only = cov[cov["flag"] == "enforcement_only"]
    assert len(enf_only) > 0 and (enf_only["enforcement"] >= settings.enforcement_only_min).all()
    assert (cov["visits"] == 0).all()  # crimes only: nothing here is non-enforcement presence


def test_new_orleans_calls_reject_placeholders_and_reproject(realdata, tmp_path):
    from beatmap.settings import Settings

    settings = Settings(timezone="America/Chicago")
    engine = store.open_store(store_db(tmp_path / "nola.db"))
    load_areas(
        engine, realdata / "new_orleans" / "NOPD_Police_Districts.shp", crs="EPSG:3452", grid_m=500, settings=settings
    )
    summary = import_activity(
        engine,
        realdata / "new_orleans" / "nopd_calls_for_service_2022_subset.csv",
        settings=settings,
        mapping_path=ROOT / "examples" / "nopd_calls_for_service.toml",
    )
    rejects = store.read_rejects(engine)
    placeholders = rejects["reason"].str.contains("placeholder").sum()
    print(
        f"\nNew Orleans calls: {summary.rows:,} rows, {summary.imported:,} imported, {summary.rejected} rejected "
        f"({placeholders} placeholder points), {summary.outside} outside the districts, {summary.snapped} snapped"
    )
    assert summary.rows == 6_528
    assert summary.imported + summary.duplicates + summary.rejected == summary.rows
    assert placeholders == 202  # 201 at the CAD's stand-in point, 1 at 0,0
    events = store.read_events(engine, columns=("kind", "beat_id"))
    assert (events["beat_id"].notna().mean()) > 0.97  # state-plane feet reprojected onto the districts
    assert {"enforcement", "foot_patrol"} <= set(events["kind"])


def test_new_orleans_districts_without_prj_or_dbf(realdata):
    shp = realdata / "new_orleans" / "NOPD_Police_Districts.shp"
    with pytest.raises(CRSError, match="--crs"):
        read_layer(shp)
    beats, _, notes = prepare_areas(read_layer(shp, crs="EPSG:3452"), None, grid_m=1000)
    assert len(beats) == 8 and beats["beat_id"].tolist() == [str(i) for i in range(1, 9)]
    assert notes.loc[notes["layer"] == "beat", "action"].tolist() == ["numbered"]
    # New Orleans is about 900 km^2 with its water; the districts are several hundred km^2 of it.
    assert 200e6 < beats.geometry.area.sum() < 1200e6


def test_houston_hand_traced_beats_report_every_problem(realdata):
    layer = read_layer(realdata / "houston" / "hpd_beats_hand_traced.geojson")
    beats, _, notes = prepare_areas(layer, None, beat_id_field="name", grid_m=1000)
    repaired = notes[notes["action"] == "repaired"]
    rejected = notes[notes["action"] == "rejected"]
    closed = repaired["detail"].str.contains("unclosed ring").sum()
    self_intersections = repaired["detail"].str.contains("invalid").sum()
    print(
        f"\nHouston: 101 features -> {len(beats)} beats; {closed} rings closed, {self_intersections} invalid "
        f"polygons repaired, {len(rejected)} rejected, {len(notes[notes['action'] == 'dissolved'])} dissolved"
    )
    assert closed == 18 and self_intersections >= 4
    # Nothing silently dropped: every feature is a beat, or named in a note.
    noted = set(notes["feature"].dropna().astype(int))
    names = layer["name"].str.strip()
    assert set(names) == set(beats["beat_id"]) | set(rejected["id"])
    assert noted >= set(rejected["feature"].astype(int))


def chicago_shapes(realdata, folder, rows: int = 3000) -> dict:
    """The real Chicago crimes file in the three shapes the dataset comes in, made from its first ``rows`` rows.

    - ``portal``: the portal's CSV download (``ID``, ``Date`` as ``01/01/2019 12:00:00 AM``, ``X Coordinate``, beat
      zero-padded);
    - ``api``: the API's CSV (lowercase names, ``date`` as ``2019-01-01T00:00:00.000``);
    - ``no_id``: an extract without the id column, ISO times.
    """
    import pandas as pd

    real = pd.read_csv(realdata / "chicago" / "crimes_2019_sample20k.csv", dtype=str, keep_default_na=False, nrows=rows)
    when = pd.to_datetime(real["date"])
    portal = real.rename(
        columns={
            "id": "ID",
            "case_number": "Case Number",
            "date": "Date",
            "primary_type": "Primary Type",
            "beat": "Beat",
            "x_coordinate": "X Coordinate",
            "y_coordinate": "Y Coordinate",
            "latitude": "Latitude",
            "longitude": "Longitude",
        }
    )
    portal["Date"] = when.dt.strftime("%m/%d/%Y %I:%M:%S %p")
    portal["Beat"] = portal["Beat"].str.zfill(4)
    api = real.assign(date=when.dt.strftime("%Y-%m-%dT%H:%M:%S.000"))
    no_id = api.drop(columns=["id"])
    paths = {}
    for name, frame in {"portal": portal, "api": api, "no_id": no_id}.items():
        paths[name] = folder / f"crimes_{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


@pytest.fixture(scope="module")
def chicago_coarse(realdata, tmp_path_factory):
    """Chicago's beats with 1 km grid blocks, and a folder for derived files."""
    from beatmap.settings import Settings

    folder = tmp_path_factory.mktemp("chicago_shapes")
    settings = Settings(timezone="America/Chicago")
    engine = store.open_store(store_db(folder / "store.db"))
    load_areas(
        engine, realdata / "chicago" / "police_beats.geojson", beat_id_field="BEAT_NUM", grid_m=1000, settings=settings
    )
    return engine, settings, folder


def test_chicago_mapping_imports_every_shape_of_the_export(realdata, chicago_coarse):
    engine, settings, folder = chicago_coarse
    paths = chicago_shapes(realdata, folder)
    mapping = ROOT / "examples" / "chicago_crimes.toml"
    portal = import_activity(engine, paths["portal"], settings=settings, mapping_path=mapping)
    assert portal.rows == 3000 and portal.imported > 2900 and portal.rejected < 100
    assert not [r for r in portal.reject_reasons if "occurred_at" in r]  # every time read
    beats = {w["code"] for w in portal.warnings}
    assert "unknown_beats" not in beats  # zero-padded beats match the layer
    # The API's CSV is the same records (same ids): all duplicates, with the same rejects.
    api = import_activity(engine, paths["api"], settings=settings, mapping_path=mapping)
    assert (api.imported, api.duplicates, api.rejected) == (0, portal.imported, portal.rejected)
    # An extract without ids: read, records matched by content, and the missing id said.
    no_id = import_activity(engine, paths["no_id"], settings=settings, mapping_path=mapping)
    assert no_id.imported + no_id.duplicates == portal.imported and no_id.rejected == portal.rejected
    assert any(w["code"] == "column_left_out" and "source_id" in w["message"] for w in no_id.warnings)
    print(
        f"\nChicago shapes: portal {portal.imported:,} imported / {portal.rejected} rejected; API all duplicates; "
        f"no-id extract {no_id.imported:,} imported, {no_id.duplicates:,} duplicates"
    )


def test_socrata_mapping_reads_iso_times_and_lat_lon(realdata, tmp_path):
    from beatmap.settings import Settings

    settings = Settings(timezone="America/Chicago")
    engine = store.open_store(store_db(tmp_path / "store.db"))
    load_areas(
        engine, realdata / "chicago" / "police_beats.geojson", beat_id_field="BEAT_NUM", grid_m=1000, settings=settings
    )
    api = chicago_shapes(realdata, tmp_path, rows=2000)["api"]
    summary = import_activity(engine, api, settings=settings, mapping_path=ROOT / "examples" / "socrata_crimes.toml")
    assert summary.rows == 2000 and summary.imported > 1900
    assert summary.source == "socrata-crimes"
    assert all("coordinates" in r or "location is blank" in r for r in summary.reject_reasons)
    events = store.read_events(engine, columns=("occurred_at", "beat_id", "kind"))
    assert events["occurred_at"].dt.year.eq(2019).all() and set(events["kind"]) == {"enforcement"}
    assert events["beat_id"].notna().mean() > 0.99
    # Chicago writes beat 0111 as 111: without zero_pad the import says the beats look unknown, and how to fix it.
    unknown = next(w for w in summary.warnings if w["code"] == "unknown_beats")
    assert "zero_pad" in unknown["message"]
    print(
        f"\nSocrata mapping on Chicago's API shape: {summary.imported:,} imported, {summary.rejected} rejected; "
        f"warnings {[w['code'] for w in summary.warnings]}"
    )
