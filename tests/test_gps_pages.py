"""GPS on the dashboard (AppTest): block presence for anyone who sees the beat, per-officer GPS and data quality
for supervisors only, the heat map weighted by GPS minutes, and no individual track anywhere by default."""

from __future__ import annotations

import pandas as pd
import pytest

from beatmap import access, accounts, store
from beatmap.errors import AccessError
from beatmap.metrics import Window
from beatmap.presence import import_pings
from tests.conftest import app_as, import_rows, load_two_beats

pytestmark = pytest.mark.ui

PASSWORD = "correct horse battery staple"
IN_A = (41.87596, -87.63631)  # a point of beat A (as the role tests use)


@pytest.fixture(autouse=True)
def no_maps(maps):
    """streamlit-folium is opaque to AppTest; the seam records the maps drawn."""


@pytest.fixture
def gps_city(tmp_path, monkeypatch, settings):
    db = tmp_path / "gps.db"
    engine = load_two_beats(store.open_store(db), tmp_path, settings=settings)
    rows = [f"2026-03-{d:02d}T10:00,{IN_A[0]},{IN_A[1]},foot_patrol,O1" for d in range(1, 21)]
    import_rows(engine, tmp_path, rows, settings=settings, header="occurred_at,lat,lon,kind,officer_id")
    times = pd.date_range("2026-03-10 15:00", "2026-03-10 15:30", freq="30s", tz="UTC")
    pings = tmp_path / "pings.csv"
    pings.write_text(
        "ts,lat,lon,device_id,unit_id,officer_id\n"
        + "".join(f"{t:%Y-%m-%dT%H:%M:%SZ},{IN_A[0]},{IN_A[1]},radio-9,U7,O7\n" for t in times)
    )
    import_pings(engine, [pings], settings=settings)
    for name, role, beats, every in (
        ("lt", "supervisor", [], True),
        ("sgt", "supervisor", ["A"], False),
        ("ofc", "officer", ["A"], False),
    ):
        accounts.add_user(
            engine,
            name,
            role=role,
            beats=beats,
            all_beats=every,
            officer_id="O1" if role == "officer" else None,
            password=PASSWORD,
            actor="test",
        )
    monkeypatch.setenv("BEATMAP_DB", str(db))
    return engine


def frames(at) -> list[pd.DataFrame]:
    return [df.value for df in at.dataframe]


def test_an_officer_can_colour_blocks_by_gps_minutes_but_sees_no_officer_or_device_figures(gps_city):
    at = app_as("ofc").run()
    at.selectbox[0].select("A").run()
    assert not at.exception
    measure = next(r for r in at.selectbox if r.label == "Colour blocks by")
    assert "GPS minutes on foot, not on a call" in measure.options
    measure.set_value("presence_minutes").run()
    assert not at.exception
    assert not any(e.label == "GPS data quality" for e in at.expander)
    for frame in frames(at):
        assert not {"officer_id", "unit_id", "device_id"} & set(frame.columns)


def test_a_sergeant_sees_gps_per_officer_and_the_data_quality(gps_city):
    at = app_as("sgt").run()
    at.selectbox[0].select("A").run()
    assert not at.exception
    at.session_state["f_beat_tab"] = "Officers"  # the beat view draws the chosen tab only
    at.run()
    assert not at.exception
    officers = [f for f in at.tabs[2].dataframe if "presence_minutes" in f.value.columns]
    assert officers and officers[0].value.set_index("officer_id").loc["O7", "presence_minutes"] == 30.0
    quality = next(e for e in at.expander if e.label == "GPS data quality")
    tables = [df.value for df in quality.dataframe]
    hours = next(t for t in tables if "gps_hours" in t.columns)
    assert hours.set_index("beat_id").loc["A", "gps_hours"] == 1
    days = next(t for t in tables if "pings" in t.columns)
    assert days[["device_id", "day", "pings"]].values.tolist() == [["radio-9", "2026-03-10", 61]]


def test_the_heat_map_can_weigh_blocks_by_gps_minutes(gps_city, maps):
    drawn, _ = maps
    at = app_as("lt").run()
    at.switch_page("beatmap/ui/pages/heatmap.py").run()
    assert not at.exception
    at.radio(key="heat_weight").set_value("gps").run()
    assert not at.exception
    assert any(key == "heat-presence_minutes" for key, _, _ in drawn)


def test_per_officer_gps_tracks_and_quality_are_for_supervisors_only(gps_city, settings):
    officer = accounts.get_user(gps_city, "ofc")
    sergeant = accounts.get_user(gps_city, "sgt")
    blocks = store.read_blocks(gps_city)
    window = Window(pd.Timestamp("2026-03-01").date(), pd.Timestamp("2026-03-20").date(), settings.timezone)
    with pytest.raises(AccessError):
        access.gps_officers_for(gps_city, officer, blocks, window=window)
    with pytest.raises(AccessError):
        access.gps_quality_for(gps_city, officer, blocks, window=window, settings=settings)
    assert len(access.gps_officers_for(gps_city, sergeant, blocks, window=window)) == 1
    assert access.gps_presence_for(gps_city, officer, blocks, window=window)["presence_minutes"].sum() == 30.0
    # No page shows an individual's track unless the settings allow it (default false), and then supervisors only.
    assert not access.may_see_tracks(sergeant, settings)
    from dataclasses import replace

    allowed = replace(settings, show_officer_tracks=True)
    assert access.may_see_tracks(sergeant, allowed) and not access.may_see_tracks(officer, allowed)


def test_the_import_page_offers_gps_pings_to_supervisors_of_all_beats_only(gps_city, tmp_path, settings):
    lieutenant = app_as("lt").run()
    lieutenant.switch_page("beatmap/ui/pages/import_data.py").run()
    assert not lieutenant.exception
    assert "4. GPS pings" in [h.value for h in lieutenant.subheader]
    assert any(b.label == "Import pings" for b in lieutenant.button)
    # The imports so far list the GPS import (feed gps) beside the activity one, for a supervisor of all beats.
    listed = next(f for f in frames(lieutenant) if "records_now" in f.columns)
    gps = listed[listed["source"] == "gps"]
    assert gps["file_name"].str.endswith("pings.csv").tolist() == [True]
    assert gps[["rows", "imported", "records_now"]].iloc[0].tolist() == [61, 61, 61]
    sergeant = app_as("sgt").run()
    sergeant.switch_page("beatmap/ui/pages/import_data.py").run()
    assert not any(b.label == "Import pings" for b in sergeant.button)
    # A ping import is city-wide: a supervisor of some beats does not see it among the imports on their beats.
    assert all((f["source"] != "gps").all() for f in frames(sergeant) if "records_now" in f.columns)
    # The library call behind the form: a supervisor of every beat, recorded under the upload's own name.
    pings = tmp_path / "upload-copy.csv"
    pings.write_text(
        "ts,lat,lon,device_id\n"
        + "".join(f"2026-03-11T15:{m:02d}:00Z,{IN_A[0]},{IN_A[1]},radio-3\n" for m in range(0, 20))
    )
    with pytest.raises(AccessError):
        access.import_pings_as(gps_city, accounts.get_user(gps_city, "sgt"), [pings], settings=settings)
    summary = access.import_pings_as(
        gps_city, accounts.get_user(gps_city, "lt"), [pings], settings=settings, file_names=["radios.csv"]
    )
    assert summary.files[0].file == "radios.csv" and summary.files[0].used == 20
    history = store.list_batches(gps_city, what="pings")
    assert history["file_name"].tolist()[0] == "radios.csv"  # newest first
