"""The demo city: deterministic, tessellated, points inside blocks, planted neglect, files."""

from __future__ import annotations

import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from beatmap.demo import DemoCity, make_demo_city, make_demo_town, write_demo_city

METRIC = "EPSG:32616"
SMALL = {"n_beats": 4, "blocks_per_beat": 16, "days": 120}
ACTIVITY_COLUMNS = [
    "occurred_at",
    "ended_at",
    "lat",
    "lon",
    "kind",
    "duration_min",
    "officer_id",
    "unit_id",
    "subtype",
    "source_id",
    "self_initiated",
    "notes",
]
VISIT_SUBTYPES = {"porch visit", "business check", "school", "youth activity", "community meeting", "event"}


@pytest.fixture(scope="module")
def city() -> DemoCity:
    return make_demo_city(3, **SMALL)


@pytest.fixture(scope="module")
def located(city: DemoCity) -> gpd.GeoDataFrame:
    """Activity points in metres, joined to the block each falls within."""
    points = gpd.GeoDataFrame(
        city.activity, geometry=gpd.points_from_xy(city.activity["lon"], city.activity["lat"]), crs="EPSG:4326"
    ).to_crs(METRIC)
    blocks = city.blocks.to_crs(METRIC)[["block_id", "geometry"]]
    return gpd.sjoin(points, blocks, predicate="within", how="left").drop(columns="index_right")


def non_enforcement(frame: pd.DataFrame) -> pd.Series:
    return frame["kind"].isin(["foot_patrol", "community_visit"])


def test_same_seed_gives_the_same_city_and_another_seed_does_not(city):
    again = make_demo_city(3, **SMALL)
    other = make_demo_city(4, **SMALL)
    for name in ("beats", "blocks", "streets", "activity", "truth"):
        pd.testing.assert_frame_equal(getattr(city, name), getattr(again, name))
    assert not city.activity.equals(other.activity)
    assert not city.blocks.geometry.geom_equals(other.blocks.geometry).all()


def test_dates_time_zone_and_crs(city):
    assert city.timezone == "America/Chicago"
    assert city.end == datetime.date(2026, 10, 31)
    assert city.start == city.end - datetime.timedelta(days=SMALL["days"] - 1)
    for layer in (city.beats, city.blocks, city.streets):
        assert layer.crs.to_epsg() == 4326
    lon, lat = city.blocks.union_all().centroid.coords[0]
    assert 41.4 < lat < 41.8 and -88.3 < lon < -87.9


def test_sizes_must_be_positive_whole_numbers():
    with pytest.raises(ValueError, match=r"n_beats=0.*days=-1"):
        make_demo_city(n_beats=0, days=-1)


def test_beats_are_near_equal_and_ids_are_unique(city):
    assert list(city.beats.columns) == ["beat_id", "name", "geometry"]
    assert city.beats["beat_id"].tolist() == ["B01", "B02", "B03", "B04"]
    assert city.beats["name"].is_unique
    assert (city.beats.geom_type == "Polygon").all() and city.beats.is_valid.all()
    areas = city.beats.to_crs(METRIC).area
    assert areas.max() / areas.min() < 2
    counts = city.blocks["beat_id"].value_counts()
    assert (counts == SMALL["blocks_per_beat"]).all()


def test_beats_tile_the_city_without_overlap(city):
    beats = city.beats.to_crs(METRIC)
    union = shapely.union_all(beats.geometry.values)
    assert union.geom_type == "Polygon"
    assert union.area == pytest.approx(beats.area.sum(), rel=1e-9)


def test_blocks_tessellate_each_beat(city):
    blocks = city.blocks.to_crs(METRIC)
    assert list(city.blocks.columns) == ["block_id", "beat_id", "geometry"]
    assert city.blocks["block_id"].is_unique
    assert city.blocks["block_id"].str.fullmatch(r"B\d{2}-\d{3}").all()
    assert (blocks.geom_type == "Polygon").all() and blocks.is_valid.all()
    for beat_id, beat in zip(city.beats["beat_id"], city.beats.to_crs(METRIC).geometry, strict=True):
        mine = blocks[blocks["beat_id"] == beat_id]
        assert mine["block_id"].str.startswith(f"{beat_id}-").all()
        assert mine.area.sum() == pytest.approx(beat.area, rel=1e-9)
        assert shapely.union_all(mine.geometry.values).symmetric_difference(beat).area < 1e-6 * beat.area
    left, right = blocks.sindex.query(blocks.geometry, predicate="intersects")
    pairs = left < right
    shared = shapely.intersection(blocks.geometry.values[left[pairs]], blocks.geometry.values[right[pairs]])
    assert shapely.area(shared).max() < 1e-6


def test_blocks_vary_in_size_like_an_irregular_street_grid(city):
    areas = city.blocks.to_crs(METRIC).area
    assert areas.min() > 50 * 50 and areas.max() < 210 * 210
    assert areas.std() / areas.mean() > 0.15


def test_every_block_lies_in_exactly_one_beat(city):
    inside = city.blocks.to_crs(METRIC).copy()
    inside["geometry"] = inside.representative_point()
    joined = gpd.sjoin(inside, city.beats.to_crs(METRIC), predicate="within", how="left")
    assert joined.index.is_unique
    assert (joined["beat_id_left"] == joined["beat_id_right"]).all()


def test_streets_run_along_every_block_edge(city):
    streets = city.streets.to_crs(METRIC)
    assert list(city.streets.columns) == ["street_id", "name", "geometry"]
    assert city.streets["street_id"].is_unique
    assert (streets.geom_type == "LineString").all() and city.streets["name"].str.len().gt(0).all()
    network = shapely.union_all(streets.geometry.values)
    assert shapely.line_merge(network).geom_type in {"LineString", "MultiLineString"}
    edges = shapely.boundary(city.blocks.to_crs(METRIC).geometry.values)
    assert shapely.covers(network.buffer(0.01), edges).all()
    # One connected network: the street buffers merge into a single shape.
    assert shapely.union_all(streets.buffer(1).values).geom_type == "Polygon"


def test_activity_has_the_canonical_columns_and_values(city):
    act = city.activity
    assert list(act.columns) == ACTIVITY_COLUMNS
    assert set(act["kind"]) == {"foot_patrol", "community_visit", "enforcement", "other"}
    assert act["occurred_at"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    days = pd.to_datetime(act["occurred_at"]).dt.date
    assert days.min() == city.start and days.max() == city.end
    assert act["source_id"].is_unique and act["source_id"].str.fullmatch(r"DEMO-\d{6,}").all()
    assert act["officer_id"].str.fullmatch(r"O\d+").all()
    assert act["unit_id"].str.fullmatch(r"[123]B\d{2}").all()
    assert set(act["self_initiated"]) == {"Y", "N"}
    decimals = act["lat"].astype(str).str.split(".").str[1].str.len()
    assert decimals.max() >= 6
    foot, visit = act["kind"] == "foot_patrol", act["kind"] == "community_visit"
    assert act.loc[foot, "subtype"].isna().all()
    assert set(act.loc[visit, "subtype"]) <= VISIT_SUBTYPES
    assert {"call for service", "traffic stop"} <= set(act.loc[act["kind"] == "enforcement", "subtype"])
    assert act.loc[foot, "duration_min"].between(10, 45).all()
    assert act.loc[visit, "duration_min"].between(5, 60).all()


def test_activity_rates_match_a_working_beat(city):
    act = city.activity
    per_beat_day = act["kind"].value_counts() / (SMALL["n_beats"] * SMALL["days"])
    assert 12 <= per_beat_day["foot_patrol"] + per_beat_day["community_visit"] <= 25
    assert 5 <= per_beat_day["enforcement"] <= 11
    assert 0.1 <= per_beat_day["other"] <= 1
    hours = pd.to_datetime(act["occurred_at"]).dt.hour
    night = (hours >= 23) | (hours < 7)
    assert night[act["kind"] == "enforcement"].mean() > night[act["kind"] == "foot_patrol"].mean()
    officers = act.groupby(act["unit_id"].str[1:])["officer_id"].nunique()
    assert officers.between(3, 5).all()


def test_notes_are_rare_and_only_on_community_visits(city):
    noted = city.activity[city.activity["notes"].notna()]
    assert 0.003 < len(noted) / len(city.activity) < 0.02
    assert (noted["kind"] == "community_visit").all()


def test_every_activity_point_falls_well_inside_one_block(city, located):
    assert located.index.is_unique and located["block_id"].notna().all()
    blocks = city.blocks.to_crs(METRIC).set_index("block_id").geometry
    edges = shapely.boundary(blocks.loc[located["block_id"]].values)
    distance = shapely.distance(located.geometry.values, edges)
    assert distance.min() > 2 and distance.max() < 18


def test_truth_plants_about_a_tenth_of_each_beat(city):
    truth = city.truth
    assert list(truth.columns) == ["block_id", "beat_id", "planted"]
    assert set(truth["planted"]) == {"enforcement_only", "unvisited", "rarely_visited"}
    assert truth["block_id"].is_unique and truth["block_id"].isin(city.blocks["block_id"]).all()
    beats = city.blocks.set_index("block_id")["beat_id"]
    assert (beats.loc[truth["block_id"]].to_numpy() == truth["beat_id"].to_numpy()).all()
    share = truth.groupby("beat_id").size() / city.blocks.groupby("beat_id").size()
    assert share.between(0.05, 0.2).all()


def test_planted_blocks_look_neglected_and_others_do_not(city, located):
    planted = city.truth.set_index("block_id")["planted"]
    visits = located[non_enforcement(located)].groupby("block_id").size()
    visits = visits.reindex(city.blocks["block_id"], fill_value=0)
    enforcement = located[located["kind"] == "enforcement"].groupby("block_id").size()
    enforcement = enforcement.reindex(city.blocks["block_id"], fill_value=0)
    quiet = planted.index[planted.isin(["enforcement_only", "unvisited"])]
    assert (visits.loc[quiet] == 0).all()
    only = planted.index[planted == "enforcement_only"]
    assert (enforcement.loc[only] >= 3).all()
    unvisited = planted.index[planted == "unvisited"]
    assert (enforcement.loc[unvisited] <= 2).all()
    rare = planted.index[planted == "rarely_visited"]
    ordinary = visits.drop(planted.index)
    assert (visits.loc[rare] >= 1).all() and (visits.loc[rare] < 0.15 * ordinary.median()).all()
    beat = city.blocks.set_index("block_id")["beat_id"]
    typical = ordinary.groupby(beat.loc[ordinary.index]).transform("median")
    assert (ordinary >= 0.25 * typical).all()


def test_write_demo_city_writes_readable_files(city, tmp_path):
    paths = write_demo_city(city, tmp_path / "demo")
    assert set(paths) == {"beats", "blocks", "streets", "activity", "ground_truth"}
    assert {p.name for p in paths.values()} == {
        "beats.geojson",
        "blocks.geojson",
        "streets.geojson",
        "activity.csv",
        "ground_truth.csv",
    }
    for key in ("beats", "blocks", "streets"):
        layer = gpd.read_file(paths[key])
        assert layer.crs.to_epsg() == 4326
        assert list(layer.columns) == list(getattr(city, key).columns)
        assert layer.geometry.geom_equals_exact(getattr(city, key).geometry, tolerance=1e-9).all()
    activity = pd.read_csv(paths["activity"], dtype=str, keep_default_na=False)
    assert list(activity.columns) == ACTIVITY_COLUMNS and len(activity) == len(city.activity)
    assert (activity["occurred_at"] == city.activity["occurred_at"]).all()
    assert np.allclose(activity["lat"].astype(float), city.activity["lat"], rtol=0, atol=1e-9)
    truth = pd.read_csv(paths["ground_truth"], dtype=str)
    pd.testing.assert_frame_equal(truth, city.truth, check_dtype=False)
    again = write_demo_city(city, tmp_path / "demo")
    assert len(gpd.read_file(again["blocks"])) == len(city.blocks)


def test_blocks_per_beat_is_approximate_and_layout_is_near_square():
    odd = make_demo_city(1, n_beats=7, blocks_per_beat=10, days=3)
    assert len(odd.beats) == 7
    counts = odd.blocks["beat_id"].value_counts()
    assert counts.min() >= 8 and counts.max() <= 14
    minx, miny, maxx, maxy = odd.beats.to_crs(METRIC).total_bounds
    assert 0.5 < (maxx - minx) / (maxy - miny) < 2


# --- the demo town (what `beatmap demo` loads) -------------------------------------------------


@pytest.fixture(scope="module")
def town() -> DemoCity:
    return make_demo_town(5, days=120)


def test_town_is_deterministic_and_the_seed_moves_its_streets(town):
    again, other = make_demo_town(5, days=120), make_demo_town(6, days=120)
    for name in ("beats", "blocks", "streets", "activity", "truth", "features"):
        pd.testing.assert_frame_equal(getattr(town, name), getattr(again, name))
    assert not town.streets.geometry.geom_equals(other.streets.geometry.reindex(town.streets.index)).all()


def test_town_blocks_are_irregular_and_tessellate_beats_that_follow_streets(town):
    blocks, beats = town.blocks.to_crs(METRIC), town.beats.to_crs(METRIC)
    assert town.beats["beat_id"].tolist() == [f"B0{i}" for i in range(1, 9)] and town.beats["name"].is_unique
    assert (beats.geom_type == "Polygon").all() and beats.is_valid.all() and blocks.is_valid.all()
    assert city_blocks_tessellate(blocks, beats)
    corners = shapely.get_num_coordinates(shapely.get_exterior_ring(blocks.geometry.values)) - 1
    assert (corners != 4).mean() > 0.1  # cut by the diagonal, the river, the park: not all quadrilaterals
    areas = blocks.area
    assert areas.min() >= 2500 and areas.std() / areas.mean() > 0.25
    left, right = blocks.sindex.query(blocks.geometry, predicate="intersects")
    pairs = left < right
    shared = shapely.intersection(blocks.geometry.values[left[pairs]], blocks.geometry.values[right[pairs]])
    assert shapely.area(shared).max() < 1e-6


def city_blocks_tessellate(blocks: gpd.GeoDataFrame, beats: gpd.GeoDataFrame) -> bool:
    for beat_id, beat in zip(beats["beat_id"], beats.geometry, strict=True):
        mine = blocks[blocks["beat_id"] == beat_id]
        if not mine["block_id"].str.startswith(f"{beat_id}-").all():
            return False
        if shapely.union_all(mine.geometry.values).symmetric_difference(beat).area > 1e-6 * beat.area:
            return False
    return True


def test_the_river_and_the_park_have_no_blocks_and_streets_bound_every_other_edge(town):
    features = town.features.to_crs(METRIC)
    assert list(town.features.columns) == ["kind", "name", "geometry"] and town.features.crs.to_epsg() == 4326
    assert set(features["kind"]) == {"water", "park"}
    blocks = town.blocks.to_crs(METRIC)
    for shape in features.geometry:
        assert shape.area > 100_000
        assert shapely.area(shapely.intersection(blocks.geometry.values, shape)).max() < 1.0
    streets = town.streets.to_crs(METRIC)
    assert (streets.geom_type == "LineString").all() and town.streets["street_id"].is_unique
    assert town.streets["name"].str.len().gt(0).all()
    network = shapely.union_all(streets.geometry.values).buffer(0.05)
    not_street = shapely.union_all(features.geometry.values).buffer(0.5)
    edges = shapely.difference(shapely.boundary(blocks.geometry.values), not_street)
    assert shapely.covers(network, edges).all()
    # Grand Ave runs diagonally; a few avenues bridge the river.
    grand = streets[town.streets["name"] == "Grand Ave"]
    minx, miny, maxx, maxy = shapely.union_all(grand.geometry.values).bounds
    assert maxx - minx > 2500 and maxy - miny > 1000
    water = features.loc[features["kind"] == "water", "geometry"].iloc[0]
    bridges = shapely.length(shapely.intersection(streets.geometry.values, water)) > 20
    assert 3 <= bridges.sum() <= 12 and len(streets) - bridges.sum() > 500


def test_town_landmarks_are_the_shipped_ones_and_lie_in_the_town(town):
    assert set(town.landmarks) >= {"District station", "Lincoln School", "Public Library", "Riverside Park"}
    points = gpd.GeoSeries(
        gpd.points_from_xy([lon for _, lon in town.landmarks.values()], [lat for lat, _ in town.landmarks.values()]),
        index=list(town.landmarks),
        crs="EPSG:4326",
    ).to_crs(METRIC)
    blocks = shapely.union_all(town.blocks.to_crs(METRIC).geometry.values)
    park = town.features.to_crs(METRIC).set_index("name").geometry["Riverside Park"]
    assert park.contains(points["Riverside Park"])
    assert (points.drop("Riverside Park").distance(blocks) < 30).all()


def test_town_tells_its_story_in_the_activity(town):
    blocks = town.blocks.to_crs(METRIC).set_index("block_id")
    truth = town.truth.set_index("block_id")["planted"]
    act = town.activity
    points = gpd.GeoDataFrame(act, geometry=gpd.points_from_xy(act["lon"], act["lat"]), crs="EPSG:4326").to_crs(METRIC)
    located = gpd.sjoin(points, blocks[["geometry"]].reset_index(), predicate="within")
    assert len(located) == len(act)  # every event in a block
    visits = located[non_enforcement(located)].groupby("block_id").size().reindex(blocks.index, fill_value=0)
    share = (visits > 0).groupby(blocks["beat_id"]).mean()
    # Well covered on foot, ordinary, and the beat walked only on Grand Ave.
    assert share["B01"] > 0.9 and share["B04"] > 0.9 and share["B05"] < 0.5
    grand = shapely.union_all(town.streets.to_crs(METRIC).loc[town.streets["name"] == "Grand Ave"].geometry.values)
    b05 = blocks[blocks["beat_id"] == "B05"]
    fronting = b05.geometry.boundary.intersection(grand.buffer(1.0)).length > 20  # along it, not a corner
    assert (visits[b05.index[~fronting]] == 0).all() and (visits[b05.index[fronting]] > 0).mean() > 0.9
    # An area that sees police only on calls: a cluster of enforcement-only blocks in B08.
    only = truth.index[(truth == "enforcement_only") & truth.index.str.startswith("B08")]
    area = max(shapely.get_parts(shapely.union_all(blocks.geometry[only].buffer(1).values)), key=shapely.area)
    assert blocks.geometry[only].representative_point().within(area).sum() >= 10  # one area, not scattered blocks
    enforcement = located[located["kind"] == "enforcement"].groupby("block_id").size()
    assert (visits[only] == 0).all() and (enforcement.reindex(only, fill_value=0) >= 3).all()
    # CAD calls carry units and clear times.
    calls = act[act["kind"] == "enforcement"]
    assert calls["unit_id"].notna().all() and calls["ended_at"].notna().mean() > 0.6
    cleared = calls[calls["ended_at"].notna()]
    assert (pd.to_datetime(cleared["ended_at"]) >= pd.to_datetime(cleared["occurred_at"])).all()
