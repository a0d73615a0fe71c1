"""Streets and their names drawn offline in a real browser (the system's Chromium), on the demo's streets and on
an OpenStreetMap extract written here."""

from __future__ import annotations

import os

import folium
import geopandas as gpd
import pytest
from playwright.sync_api import sync_playwright

from beatmap import basemap
from beatmap.demo import make_demo_city
from beatmap.publish import DEFAULT_LEAFLET_DIR
from beatmap.render import base_map, display_frame, standalone_html
from beatmap.streets import streets_from_file
from tests.test_browser import ARGS, CHROMIUM
from tests.test_routes import OSM_XML

pytestmark = pytest.mark.ui

METRIC = "EPSG:32616"


def page_with_streets(streets: gpd.GeoDataFrame, beats: gpd.GeoDataFrame | None, path) -> str:
    """A standalone map page (Leaflet inlined) of ``streets`` (metric CRS), with beat labels; its file URL."""
    prepared = basemap.streets_for_map(streets)
    bounds = streets.to_crs(4326).total_bounds
    m = base_map(bounds)
    if beats is not None:
        folium.GeoJson(
            display_frame(beats, ["beat_id"]).to_json(),
            style_function=lambda f: {"fillColor": "#3B528B", "fillOpacity": 0.7, "color": "#fff", "weight": 1},
        ).add_to(m)
        basemap.BeatLabels(basemap.beat_label_points(beats)).add_to(m)
    basemap.add_streets(m, prepared)
    path.write_text(standalone_html(m, vendor_dir=DEFAULT_LEAFLET_DIR))
    return path.as_uri()


def drawn(page) -> tuple[int, set[str], set[str]]:
    """Street lines drawn, street names shown, beat labels shown."""
    lines = page.locator(".leaflet-bm-streets-pane path").count()
    names = set(page.locator(".bm-street-label").all_inner_texts())
    beats = set(page.locator(".bm-beat-label").all_inner_texts())
    return lines, names, beats


def set_zoom(page, zoom: int) -> None:
    page.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
                               m.setZoom({zoom}, {{animate: false}}); }}""")
    page.wait_for_timeout(300)


@pytest.fixture(scope="module")
def browser():
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def test_demo_streets_major_at_city_zoom_all_closer_in(browser, tmp_path):
    city = make_demo_city(3, n_beats=4, blocks_per_beat=30, days=7)
    streets, beats = city.streets.to_crs(METRIC), city.beats.to_crs(METRIC)
    url = page_with_streets(streets, beats, tmp_path / "demo.html")
    page = browser.new_page(viewport={"width": 1000, "height": 700})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(url)
    page.wait_for_selector(".bm-beat-label")
    set_zoom(page, 14)
    city_lines, city_names, beat_labels = drawn(page)
    assert beat_labels == set(city.beats["beat_id"])
    n_major = sum(f["properties"]["major"] for f in basemap.streets_for_map(streets)["lines"]["features"])
    assert 0 < city_lines == n_major  # only the major streets at city zoom
    assert city_names and city_names <= set(city.streets["name"])
    set_zoom(page, 17)
    close_lines, close_names, _ = drawn(page)
    assert close_lines == len(set(city.streets["name"])) > city_lines  # every street closer in
    assert close_names == set(city.streets["name"]) > city_names  # and every name
    # Names take no taps: what is under them gets the click.
    assert page.evaluate("getComputedStyle(document.querySelector('.leaflet-bm-labels-pane')).pointerEvents") == "none"
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # nothing fetched from a network
    page.close()


def test_an_openstreetmap_extract_is_drawn_with_its_names(browser, tmp_path):
    (tmp_path / "tiny.osm").write_text(OSM_XML)
    streets, _ = streets_from_file(tmp_path / "tiny.osm")
    url = page_with_streets(streets.to_crs(METRIC), None, tmp_path / "osm.html")
    page = browser.new_page(viewport={"width": 800, "height": 600})
    page.goto(url)
    set_zoom(page, 18)
    lines, names, _ = drawn(page)
    assert lines == 2 and names == {"Oak St"}  # Oak St and the unnamed footway; the motorway is not for walking
    page.close()


def test_beat_labels_of_a_city_of_many_beats_appear_two_zoom_levels_in_also_in_a_swapped_group(browser, tmp_path):
    """Up to 40 beats every id is written at city zoom; more would cover the map, so they appear from two zoom
    levels in, on a map or in a feature group (the dashboard swaps those into a map frame that stays)."""
    for n_beats, in_group in ((48, False), (48, True), (12, True)):
        city = make_demo_city(3, n_beats=n_beats, blocks_per_beat=4, days=7)
        beats = city.beats.to_crs(METRIC)
        bounds = [float(v) for v in beats.to_crs(4326).total_bounds]
        m = base_map(bounds)
        group = basemap.base_layer(None, bounds=bounds, labels=basemap.beat_label_points(beats)) if in_group else None
        if group is not None:
            group.add_to(m)
        else:
            basemap.BeatLabels(basemap.beat_label_points(beats)).add_to(m)
        path = tmp_path / f"labels-{n_beats}-{in_group}.html"
        path.write_text(standalone_html(m, vendor_dir=DEFAULT_LEAFLET_DIR))
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.goto(path.as_uri())
        page.wait_for_selector(".leaflet-container")
        page.wait_for_timeout(300)
        city_zoom = page.evaluate("() => Object.values(window).find(v => v instanceof L.Map).getZoom()")
        at_city_zoom = page.locator(".bm-beat-label").count()
        set_zoom(page, city_zoom + 2)
        closer = set(page.locator(".bm-beat-label").all_inner_texts())
        if n_beats > 40:
            assert at_city_zoom == 0 and closer and closer <= set(city.beats["beat_id"]), (n_beats, in_group)
        else:
            assert at_city_zoom == n_beats, (n_beats, in_group)
        set_zoom(page, city_zoom)
        assert page.locator(".bm-beat-label").count() == (0 if n_beats > 40 else n_beats)
        page.close()
