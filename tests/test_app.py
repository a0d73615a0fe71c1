"""The dashboard under streamlit's AppTest: pages render, filters change numbers, clicks select, empty states."""

from __future__ import annotations

import re
import sqlite3

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from beatmap import accounts, store
from beatmap.audit import read_audit
from beatmap.ui.safe import md_escape
from tests.conftest import app_as, import_rows, load_two_beats

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui


def open_app_store(db, monkeypatch, settings, *, ids, rows, header="occurred_at,lat,lon,kind"):
    """A store at ``db`` with the two beats ``ids`` (200 m grid blocks), the activity ``rows`` and the all-beats
    supervisor "sgt"; the app pointed at it, with a private cache."""
    engine = load_two_beats(store.open_store(db), db.parent, settings=settings, ids=ids)
    import_rows(engine, db.parent, rows, settings=settings, header=header)
    accounts.add_user(engine, "sgt", role="supervisor", all_beats=True, actor="test")
    monkeypatch.setenv("BEATMAP_DB", str(db))
    monkeypatch.setenv("BEATMAP_CACHE", str(db.parent / "cache"))
    return db


@pytest.fixture
def small_store(tmp_path, monkeypatch, settings):
    """Beats A (visited) and B (enforcement only at one block), 200 m grid blocks."""
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol,O{d % 2}" for d in range(1, 21)]
    rows += [f"2026-03-{d:02d}T22:00,41.87689,-87.63150,enforcement," for d in range(1, 6)]
    return open_app_store(
        tmp_path / "app.db",
        monkeypatch,
        settings,
        ids=("A", "B"),
        rows=rows,
        header="occurred_at,lat,lon,kind,officer_id",
    )


def run_app() -> AppTest:
    at = app_as("sgt")
    at.run()
    assert not at.exception, at.exception
    return at


def base_of(m) -> str:
    """A map's page without folium's random names: what tells streamlit-folium to keep or replace its frame."""
    return re.sub(r"_[a-z0-9]+", "", m.get_root().render())


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_city_view_shows_beats_and_figures(small_store, maps):
    drawn, _ = maps
    at = run_app()
    assert at.title[0].value == "Coverage"
    assert metric(at, "Coverage") == "12%" and metric(at, "Enforcement only") == "1"
    key, m, layers = drawn[-1]
    assert key == "map-coverage" and [layer.layer_name for layer in layers] == ["Beats", "Streets"]
    html = m.get_root().render()
    assert "/app/static/vendor/leaflet/leaflet.js" in html and "cdn" not in html.lower()
    geojson = next(iter(layers[0]._children.values()))
    features = geojson.data["features"]
    assert [f["properties"]["beat_id"] for f in features] == ["A", "B"]
    # Only what the view needs reaches the browser: no officer or note fields.
    assert set(features[0]["properties"]) == {"beat_id", "coverage_pct", "flagged", "visits", "_fill"}


def test_clicking_a_beat_opens_its_blocks(small_store, maps):
    drawn, clicks = maps
    clicks["map-coverage"] = {"last_active_drawing": {"properties": {"beat_id": "B"}}}
    at = run_app()
    assert at.selectbox[0].value == "B"
    (city_key, city, city_layers), (key, beat, layers) = drawn[0], drawn[-1]
    assert city_key == key == "map-coverage"
    # The same map under both views (its frame stays in the browser); the view's own layers and fit change.
    assert base_of(city) == base_of(beat)
    fit = [c for c in layers[-1]._children.values() if c._name == "FitBounds"]
    city_fit = [c for c in city_layers[-1]._children.values() if c._name == "FitBounds"]
    (south, west), (north, east) = fit[0].box
    (city_south, city_west), (city_north, city_east) = city_fit[0].box
    assert city_south <= south < north <= city_north and city_west <= west < east <= city_east
    assert fit[0].box != city_fit[0].box
    assert metric(at, "Coverage") == "0%" and metric(at, "Enforcement only") == "1"


def test_clicking_a_block_selects_it(small_store, maps):
    _, clicks = maps
    at = run_app()
    at.selectbox[0].select("B").run()
    flagged = at.dataframe[-1].value
    enforcement_only = flagged.loc[flagged["flag"] == "Enforcement only", "block_id"].iloc[0]
    clicks["map-coverage"] = {"last_active_drawing": {"properties": {"block_id": enforcement_only}}}
    at.run()
    assert not at.exception
    assert any(
        f"Selected block **{md_escape(enforcement_only)}" in i.value and "only to enforce" in i.value for i in at.info
    )
    assert enforcement_only in set(at.dataframe[-1].value["block_id"])


def test_filters_change_the_numbers_and_persist_across_pages(small_store, maps):
    at = run_app()
    before = metric(at, "Visits")
    kinds = at.sidebar.multiselect[-1]
    kinds.set_value(["enforcement"]).run()
    assert not at.exception
    assert before == "20" and metric(at, "Visits") == "0"
    at.switch_page("beatmap/ui/pages/heatmap.py").run()
    assert not at.exception
    assert at.sidebar.multiselect[-1].value == ["enforcement"]
    assert any("No foot patrols and community visits for these filters" in i.value for i in at.info)


def test_weekday_and_hour_filters(small_store, maps):
    at = run_app()
    at.sidebar.slider[0].set_value((0, 12)).run()  # visits are at 10:00, enforcement at 22:00
    assert metric(at, "Visits") == "20" and metric(at, "Enforcement only") == "0"
    at.sidebar.slider[0].set_value((0, 24)).run()
    at.sidebar.multiselect[1].set_value(["Sun"]).run()
    assert int(metric(at, "Visits")) < 20


def test_date_range_without_activity_says_so(small_store, maps):
    at = run_app()
    at.sidebar.date_input[0].set_value((pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-01-31").date())).run()
    assert not at.exception
    assert any("No activity matches the filters between 2025-01-01 and 2025-01-31" in w.value for w in at.warning)


def test_enforcement_without_visits_says_what_is_missing(small_store, maps):
    at = run_app()
    assert not any("only enforcement" in i.value for i in at.info)  # visits are there
    at.sidebar.multiselect[2].set_value(["enforcement"]).run()  # Activity: enforcement only
    assert metric(at, "Visits") == "0"
    assert any(
        "No foot patrol or community visit is recorded between" in i.value and "only enforcement" in i.value
        for i in at.info
    )
    assert not any("No activity matches" in w.value for w in at.warning)


def test_beat_view_charts_officers_and_measures(small_store, maps):
    _drawn, _ = maps
    at = run_app()
    at.selectbox[0].select("A").run()
    for measure in ["visits", "days_visited", "enforcement_share", "days_since_visit", "flag"]:
        next(s for s in at.selectbox if s.label == "Colour blocks by").set_value(measure).run()
        assert not at.exception, measure
    charts = [[c.type for c in tab.children.values()] for tab in at.tabs]
    assert charts == [["vega_lite_chart"], [], []]  # the first tab's chart only: the others when chosen
    at.session_state["f_beat_tab"] = "When visits happen"
    at.run()
    assert not at.exception and [[c.type for c in tab.children.values()] for tab in at.tabs] == [
        [],
        ["vega_lite_chart"],
        [],
    ]
    at.session_state["f_beat_tab"] = "Officers"
    at.run()
    officers = at.tabs[2].dataframe[0].value
    assert set(officers["officer_id"]) == {"O0", "O1"} and officers["visits"].sum() == 20


def test_heat_map_page_draws_both_maps(small_store, maps):
    drawn, _ = maps
    at = app_as("sgt")
    at.switch_page("beatmap/ui/pages/heatmap.py").run()
    assert not at.exception
    keys = [k for k, _, _ in drawn]
    assert keys[-2:] == ["heat-visits", "heat-enforcement"]
    html = drawn[-1][1].get_root().render()
    assert "/app/static/vendor/leaflet.heat/leaflet-heat.js" in html and "cdn" not in html.lower()


def test_import_page_asks_for_files(small_store, maps):
    at = app_as("sgt")
    at.switch_page("beatmap/ui/pages/import_data.py").run()
    assert not at.exception
    next(b for b in at.button if b.label == "Import activity").click().run()
    assert any("Choose the activity file" in e.value for e in at.error)


def test_import_page_lists_imports_and_a_supervisor_undoes_one(small_store, maps):
    at = app_as("sgt")
    at.switch_page("beatmap/ui/pages/import_data.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert table["status"].tolist() == ["live"] and table["file_name"].str.endswith("a.csv").all()
    undo = next(b for b in at.button if b.label == "Undo import")
    undo.click().run()
    assert any("Tick the box" in e.value for e in at.error)  # nothing happens without the confirmation
    assert store.counts(store.open_store(small_store))["events"] == 25
    at.checkbox[0].check()
    next(b for b in at.button if b.label == "Undo import").click().run()
    assert not at.exception and any("removed 25 records" in s.value for s in at.success)
    engine = store.open_store(small_store)
    assert store.counts(engine)["events"] == 0
    assert read_audit(engine).iloc[0][["action", "actor"]].tolist() == ["import.undo", "sgt"]


def test_excluded_beat_is_shown_as_not_analysed_and_never_flagged(small_store, maps, tmp_path, monkeypatch):
    settings = tmp_path / "s.toml"
    settings.write_text('[analysis]\nexcluded_beats = ["B"]\n')
    monkeypatch.setenv("BEATMAP_SETTINGS", str(settings))
    drawn, _ = maps
    at = run_app()
    _, _, layers = drawn[-1]
    assert [layer.layer_name for layer in layers] == ["Beats", "Not analysed", "Streets"]
    assert metric(at, "Enforcement only") == "0"  # beat B's enforcement-only block is not analysed
    beats = next(d.value for d in at.dataframe if "coverage_pct" in d.value.columns)
    # B is listed, as not analysed, with no figure.
    assert beats[["beat_id", "status"]].values.tolist() == [["A", "analysed"], ["B", "not analysed"]]
    assert beats.set_index("beat_id").loc["B", ["blocks", "coverage_pct", "flagged"]].isna().all()
    not_analysed = next(iter(layers[1]._children.values())).data["features"]
    assert [(f["properties"]["beat_id"], f["properties"]["_status"]) for f in not_analysed] == [
        ("B", "not analysed (left out of the analysis)")
    ]
    # B can be opened: its blocks, grey and not analysed; no figure, no flag.
    assert at.selectbox[0].options[-1] == "B (not analysed)"
    at.selectbox[0].select("B").run()
    assert not at.exception
    key, _, layers = drawn[-1]
    assert key == "map-coverage" and [layer.layer_name for layer in layers] == ["Not analysed", "Beats", "Streets"]
    blocks = next(iter(layers[0]._children.values())).data["features"]
    assert len(blocks) == 4 and {f["properties"]["_status"] for f in blocks} == {
        "not analysed (left out of the analysis)"
    }
    assert any("Not analysed: this beat is left out of the analysis" in i.value for i in at.info)
    assert not at.metric and any("No block is flagged" in s.value for s in at.success)
    labels = [d.label for d in at.get("download_button")]
    assert "Block table (CSV)" in labels and "One-page beat summary (print-ready HTML)" in labels


def test_empty_store_suggests_the_next_step(tmp_path, monkeypatch, maps):
    monkeypatch.setenv("BEATMAP_DB", str(tmp_path / "empty.db"))
    accounts.add_user(store.open_store(tmp_path / "empty.db"), "sgt", role="supervisor", all_beats=True, actor="test")
    at = run_app()
    assert "the **Import** page" in at.info[0].value and maps[0] == []


#: A beat id that is markup, with a literal entity: it must reach the browser raw and show only as text.
HOSTILE = "<img src=x onerror=alert(1)> &amp; A&1"


@pytest.fixture
def hostile_store(tmp_path, monkeypatch, settings):
    """Beats HOSTILE (foot patrols at one block, so the others are flagged) and B, 200 m grid blocks."""
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol" for d in range(1, 9)]
    return open_app_store(tmp_path / "hostile.db", monkeypatch, settings, ids=(HOSTILE, "B"), rows=rows)


def map_page(m, layers) -> str:
    """The page the map component gets: the map with the view's layers on it."""
    for layer in layers:
        layer.add_to(m)
    return m.get_root().render()


def shapes_of(layer) -> list[dict]:
    """The GeoJSON features of a layer (a feature group holding one GeoJson)."""
    return next(iter(layer._children.values())).data["features"]


def assert_only_as_text(page: str, text: str) -> None:
    """``text`` is in the page only as JSON data (never as markup, never HTML-escaped) and shown with textContent."""
    as_json = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    assert as_json in page
    assert page.count("onerror=alert(1)") == page.count("\\u003cimg src=x onerror=alert(1)\\u003e")
    assert "<img" not in page and "&lt;img" not in page and "&amp;" not in page
    assert ".textContent = " in page and "innerHTML" not in page  # the tooltip never reads values as HTML


def test_a_hostile_id_stays_raw_on_the_map_shows_as_text_and_selects_by_click(hostile_store, maps):
    from beatmap.render import TextTooltip

    drawn, clicks = maps
    at = run_app()
    key, m, layers = drawn[-1]
    assert key == "map-coverage"
    assert HOSTILE in [f["properties"]["beat_id"] for f in shapes_of(layers[0])]  # raw: it joins and compares
    assert any(isinstance(c, TextTooltip) for c in next(iter(layers[0]._children.values()))._children.values())
    assert_only_as_text(map_page(m, layers), HOSTILE)

    # A click returns the raw id (streamlit-folium sends the layer's own properties): it opens the beat.
    clicks["map-coverage"] = {"last_active_drawing": {"properties": {"beat_id": HOSTILE}}}
    at.run()
    assert not at.exception and at.selectbox[0].value == HOSTILE
    key, m, layers = drawn[-1]
    assert key == "map-coverage"
    assert [f["properties"]["beat_id"] for f in shapes_of(layers[1])] == [HOSTILE]  # the beat's outline is found
    blocks = [f["properties"]["block_id"] for f in shapes_of(layers[0])]
    assert len(blocks) == 4 and all(b.startswith(HOSTILE) for b in blocks)
    assert_only_as_text(map_page(m, layers), blocks[0])

    # Clicking a block (raw id) selects it: the note names it and the map outlines it.
    flagged = at.dataframe[-1].value
    block = flagged["block_id"].iloc[0]
    clicks["map-coverage"] = {"last_active_drawing": {"properties": {"block_id": block}}}
    at.run()
    assert not at.exception and at.session_state["f_block"] == block
    assert any(i.value.startswith(f"Selected block **{md_escape(block)}**") for i in at.info)
    assert outlined(drawn) == block

    # A row of the flagged table selects its block too (the table holds raw ids, as the map does).
    other = flagged["block_id"].iloc[1]
    at.session_state[f"flagged-{HOSTILE}-{block}"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception and at.session_state["f_block"] == other
    assert any(i.value.startswith(f"Selected block **{md_escape(other)}**") for i in at.info)
    assert outlined(drawn) == other


def outlined(drawn) -> str:
    """The one block the last beat map outlines thickly (the selected one)."""
    geojson = next(iter(drawn[-1][2][0]._children.values()))
    thick = [f["properties"]["block_id"] for f in geojson.data["features"] if geojson.style_function(f)["weight"] == 4]
    assert len(thick) == 1, thick
    return thick[0]


def test_a_store_behind_the_schema_is_refused_with_the_command_to_run(tmp_path, monkeypatch):
    db = tmp_path / "behind.db"
    store.open_store(db).dispose()
    with sqlite3.connect(db) as conn:  # as a store made by an older beatmap would be
        conn.execute("UPDATE alembic_version SET version_num = '0001'")
    conn.close()
    monkeypatch.setenv("BEATMAP_DB", str(db))
    at = app_as(None)
    at.run()
    assert not at.exception
    assert any("beatmap db upgrade" in e.value for e in at.error)


def test_neglected_areas_are_listed_outlined_and_exported(small_store, maps):
    drawn, _ = maps
    at = run_app()
    assert any(h.value == "Neglected areas" for h in at.subheader)
    areas = next(d.value for d in at.dataframe if "area_id" in d.value.columns)
    assert areas["area_id"].tolist() == ["B-1", "A-1"]  # B's four blocks, then A's three
    assert areas.set_index("area_id").at["B-1", "flags"] == "1 enforcement only, 3 unvisited"
    at.selectbox[0].select("B").run()
    assert not at.exception
    key, _, layers = drawn[-1]
    assert key == "map-coverage" and len(layers) == 4
    outline = next(iter(layers[2]._children.values()))
    assert [f["properties"]["area_id"] for f in outline.data["features"]] == ["B-1"]
    assert any("Dashed outlines: neglected areas" in c.value for c in at.caption)
    labels = [d.label for d in at.get("download_button")]
    assert "Neglected areas (CSV)" in labels and "Neglected areas (GeoJSON)" in labels


def test_the_default_window_starts_with_the_data_and_an_empty_previous_period_shows_no_change(small_store, maps):
    at = run_app()
    start, end = at.sidebar.date_input[0].value
    assert (str(start), str(end)) == ("2026-03-01", "2026-03-20")  # not 90 days back, before the first record
    deltas = {m.label: m.delta for m in at.metric}
    assert all(not d for d in deltas.values()), deltas  # nothing to compare with: no change shown, no red
    assert any("No change is shown" in c.value and "holds no activity" in c.value for c in at.caption)


def test_an_unchanged_figure_is_grey_and_says_so(small_store, maps):
    at = run_app()
    at.sidebar.date_input[0].set_value((pd.Timestamp("2026-03-11").date(), pd.Timestamp("2026-03-20").date())).run()
    assert not at.exception
    deltas = {m.label: m.delta for m in at.metric}
    # March 1-10 had the 5 enforcement events and 10 visits; March 11-20 the other 10 visits, on the same block.
    assert deltas["Visits"] == "no change" and deltas["Enforcement only"] == "-1"
    assert not any("No change is shown" in c.value for c in at.caption)


def test_users_whose_beats_are_all_left_out_see_them_as_not_analysed(small_store, maps, tmp_path, monkeypatch):
    settings = tmp_path / "s.toml"
    settings.write_text('[analysis]\nexcluded_beats = ["B"]\n')
    monkeypatch.setenv("BEATMAP_SETTINGS", str(settings))
    engine = store.open_store(small_store)
    accounts.add_user(engine, "ofc", role="officer", beats=["B"], officer_id="O1", actor="test")
    accounts.add_user(engine, "sgt_b", role="supervisor", beats=["B"], actor="test")
    drawn, _ = maps
    for name in ("ofc", "sgt_b"):
        at = app_as(name).run()  # Coverage: beat B's own view, the only one
        assert not at.exception, at.exception
        assert at.selectbox[0].options == ["B (not analysed)"]
        assert any("Not analysed: this beat is left out" in i.value for i in at.info)
        assert drawn[-1][0] == "map-coverage" and drawn[-1][2][0].layer_name == "Not analysed"
        assert not any("No activity matches" in w.value for w in at.warning)
        at.switch_page("beatmap/ui/pages/route.py").run()
        assert not at.exception, at.exception
        assert any("Beat B is left out of the analysis" in i.value and "no route" in i.value for i in at.info)
        at.switch_page("beatmap/ui/pages/log_visit.py").run()
        assert not at.exception, at.exception
        assert any("Beat B is left out of the analysis (grey)" in c.value for c in at.caption)


def test_block_coverage_is_counted_once_per_filters_and_reused_by_a_beat_view(small_store, maps, monkeypatch):
    """Opening a beat reruns the page; the coverage of the same filters is not counted again, a new filter is."""
    from beatmap import access

    calls: list[str] = []
    counted = access.block_coverage_for

    def counting(user, blocks, activity, *, window, settings, neighbours=None):
        calls.append(f"{window.start}..{window.end}")
        return counted(user, blocks, activity, window=window, settings=settings, neighbours=neighbours)

    monkeypatch.setattr(access, "block_coverage_for", counting)
    at = run_app()
    assert len(calls) == 2  # the window and the period before it
    at.selectbox[0].select("B").run()
    assert not at.exception and len(calls) == 2 and metric(at, "Coverage") == "0%"
    at.selectbox[0].select("A").run()
    covered = metric(at, "Coverage")
    assert len(calls) == 2 and covered != "0%"
    hours = next(s for s in at.slider if s.label == "Hours")
    hours.set_range(0, 12).run()  # the morning only: counted again (the visits are at 10:00, so A is unchanged)
    assert len(calls) == 4 and metric(at, "Coverage") == covered and metric(at, "Enforcement only") == "0"
