"""The offline street base map: streets prepared for a page, and the layers' scripts."""

from __future__ import annotations

import json

import folium
import geopandas as gpd
import pandas as pd
import pytest
import shapely

from beatmap import basemap
from beatmap.settings import Settings
from beatmap.streets import load_streets, map_streets_from_store
from tests.conftest import X0, Y0, load_two_beats

CRS = "EPSG:32616"


def grid(n: int = 10, *, long_name: str = "Long Ave") -> gpd.GeoDataFrame:
    """One long street (3 km) and ``n`` short side streets (100 m), each of a few segments."""
    lines = [shapely.LineString([(X0 + x, Y0), (X0 + x + 500, Y0)]) for x in range(0, 3000, 500)]
    names = [long_name] * len(lines)
    for i in range(n):
        lines += [shapely.LineString([(X0 + 200 * i, Y0 + y), (X0 + 200 * i, Y0 + y + 50)]) for y in (0, 50)]
        names += [f"Side {i} St"] * 2
    return gpd.GeoDataFrame({"name": names}, geometry=lines, crs=CRS)


def test_streets_are_joined_per_name_and_the_longest_are_major():
    prepared = basemap.streets_for_map(grid())
    features = prepared["lines"]["features"]
    assert len(features) == 11 and prepared["dropped"] == 0
    major = [f["properties"]["name"] for f in features if f["properties"]["major"]]
    assert major[0] == "Long Ave" and len(major) == 3  # a fifth of 11 names, rounded up; the longest first
    assert features[0]["geometry"]["type"] == "LineString"  # six segments merged into one line
    lon, lat = features[0]["geometry"]["coordinates"][0]
    assert -89 < lon < -87 and 41 < lat < 42 and round(lon, 5) == lon  # WGS84, about 1 m


def test_labels_repeat_along_long_streets_and_turn_with_them():
    labels = basemap.streets_for_map(grid())["labels"]
    long_labels = [label for label in labels if label[2] == "Long Ave"]
    assert len(long_labels) == int(3000 // basemap.LABEL_EVERY_M)
    assert all(label[4] == 0 for label in long_labels)  # east-west: level
    side = [label for label in labels if label[2] == "Side 3 St"]
    assert len(side) == 1 and abs(side[0][4]) == 90  # north-south: turned upright


def test_a_heavy_layer_keeps_the_major_streets_only():
    everything = basemap.streets_for_map(grid(40))
    size = len(json.dumps(everything["lines"]))
    light = basemap.streets_for_map(grid(40), max_bytes=size // 2)
    kept = {f["properties"]["name"] for f in light["lines"]["features"]}
    assert kept == {f["properties"]["name"] for f in everything["lines"]["features"] if f["properties"]["major"]}
    assert light["dropped"] == len(everything["lines"]["features"]) - len(kept)
    assert {label[2] for label in light["labels"]} <= kept


def test_no_streets_draw_nothing():
    empty = basemap.streets_for_map(grid().iloc[:0])
    assert empty["lines"]["features"] == [] and empty["labels"] == []
    m = folium.Map()
    basemap.add_streets(m, empty)
    assert "bm-streets" not in m.get_root().render()


def test_names_in_the_page_are_data_never_markup():
    streets = grid(1, long_name="</script><script>alert(1)</script>")
    m = folium.Map()
    basemap.add_streets(m, basemap.streets_for_map(streets))
    beats = gpd.GeoDataFrame({"beat_id": ["<b>7</b>"]}, geometry=[shapely.box(X0, Y0, X0 + 100, Y0 + 100)], crs=CRS)
    basemap.BeatLabels(basemap.beat_label_points(beats)).add_to(m)
    page = m.get_root().render()
    assert "<script>alert(1)" not in page and "<b>7</b>" not in page
    assert "textContent" in page and "keyboard: false" in page and "interactive: false" in page


@pytest.mark.parametrize("beat_id", [None, "A"])
def test_streets_from_store(engine, tmp_path, beat_id):
    from tests.street_city import street_grid

    engine = load_two_beats(engine, tmp_path, settings=Settings())
    assert map_streets_from_store(engine, beat_id=beat_id)["lines"]["features"] == []
    far = street_grid()
    far["name"] = "Far St"
    far["geometry"] = far.geometry.to_crs(CRS).translate(5000, 0).to_crs(4326)
    near = street_grid()
    gpd.GeoDataFrame(pd.concat([near, far], ignore_index=True), crs=4326).to_file(tmp_path / "streets.geojson")
    load_streets(engine, tmp_path / "streets.geojson")
    names = {f["properties"]["name"] for f in map_streets_from_store(engine, beat_id=beat_id)["lines"]["features"]}
    assert names == ({"Test St", "Far St"} if beat_id is None else {"Test St"})  # a beat's view: its streets only


def lake_and_park() -> gpd.GeoDataFrame:
    """A lake and a park beside the two-beat city, WGS84, as a department's file would hold them."""
    shapes = [shapely.box(X0 - 400, Y0, X0 - 100, Y0 + 300), shapely.box(X0 - 400, Y0 + 400, X0 - 100, Y0 + 700)]
    return gpd.GeoDataFrame(
        {"kind": ["water", "park"], "name": ["Mill Pond", "Oak <b>Park</b>"]}, geometry=shapes, crs=CRS
    ).to_crs(4326)


def test_water_and_parks_are_drawn_under_the_blocks_with_their_names():
    prepared = basemap.streets_for_map(grid(), features=lake_and_park().to_crs(CRS))
    areas = prepared["areas"]["features"]
    assert [(f["properties"]["kind"], f["properties"]["name"]) for f in areas] == [
        ("water", "Mill Pond"),
        ("park", "Oak <b>Park</b>"),
    ]
    lon, lat = areas[0]["geometry"]["coordinates"][0][0]
    assert -89 < lon < -87 and 41 < lat < 42
    m = folium.Map()
    basemap.add_streets(m, prepared)
    page = m.get_root().render()
    assert "bm-areas" in page and "350" in page  # a pane under Leaflet's overlays (400), where blocks are
    assert "Oak <b>Park</b>" not in page and "textContent = f.properties.name" in page
    # Water and parks alone (no streets) are drawn too.
    alone = basemap.streets_for_map(grid().iloc[:0], features=lake_and_park().to_crs(CRS))
    m = folium.Map()
    basemap.add_streets(m, alone)
    assert "bm-areas" in m.get_root().render()


def test_map_features_are_stored_read_back_and_clipped_to_a_beat(engine, tmp_path):
    from beatmap import store
    from beatmap.errors import InputError
    from beatmap.streets import load_map_features
    from tests.street_city import street_grid

    engine = load_two_beats(engine, tmp_path, settings=Settings())
    street_grid().to_file(tmp_path / "streets.geojson")
    load_streets(engine, tmp_path / "streets.geojson")
    bad = lake_and_park()
    bad.loc[1, "kind"] = "forest"
    bad.to_file(tmp_path / "bad.geojson")
    with pytest.raises(
        InputError, match=r"bad.geojson: feature 2: kind must be one of water, park.*nothing was stored"
    ):
        load_map_features(engine, tmp_path / "bad.geojson")
    assert store.read_map_features(engine).empty
    lake_and_park().to_file(tmp_path / "features.geojson")
    assert load_map_features(engine, tmp_path / "features.geojson", actor="test") == 2
    stored = store.read_map_features(engine)
    assert list(stored["kind"]) == ["water", "park"] and stored.crs == store.analysis_crs(engine)
    assert stored.geometry.area.sum() == pytest.approx(2 * 300 * 300, rel=1e-3)
    names = [f["properties"]["name"] for f in map_streets_from_store(engine)["areas"]["features"]]
    assert names == ["Mill Pond", "Oak <b>Park</b>"]
    assert load_map_features(engine, tmp_path / "features.geojson") == 2  # replaces, never adds
    assert len(store.read_map_features(engine)) == 2
