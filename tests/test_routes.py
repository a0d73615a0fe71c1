"""Walking routes: street networks, the planner on hand-built streets with known best answers, GPX, the card."""

from __future__ import annotations

import dataclasses
import itertools
import xml.etree.ElementTree as ET
from datetime import date

import geopandas as gpd
import networkx as nx
import pandas as pd
import pytest
import shapely

from beatmap import store
from beatmap.errors import AccessError, CRSError, InputError, StoreError
from beatmap.metrics import Window
from beatmap.routing.landmarks import parse_lat_lon
from beatmap.routing.output import route_card_html, route_text, route_to_gpx, write_gpx
from beatmap.routing.plan import plan_walking_route, route_from_store
from beatmap.routing.priorities import block_priorities
from beatmap.routing.route import default_seed
from beatmap.settings import Settings
from beatmap.streets import load_streets, street_graph, streets_from_file
from tests.conftest import CRS_CASES, X0, Y0, metric_frame
from tests.street_city import build_store, lat_lon, street_grid

GPX = "{http://www.topografix.com/GPX/1/1}"
START = lat_lon(0, 0)


@pytest.fixture
def fast() -> Settings:
    """Default walking speed (75 m a minute) and dwell (10 min); a short solver time for tests."""
    return Settings(route_time_limit_s=0.3)


def main_street(*, length: int = 1000) -> gpd.GeoDataFrame:
    """One street along y = 0 from x = 0 with a vertex every 100 m (test-city metres, EPSG:32616)."""
    line = shapely.LineString([(X0 + x, Y0) for x in range(0, length + 1, 100)])
    return gpd.GeoDataFrame({"source_id": ["main"], "name": ["Main St"]}, geometry=[line], crs="EPSG:32616")


def blocks_at(**priority_at_x: tuple[float, float]) -> gpd.GeoDataFrame:
    """50 m blocks just north of Main St: ``name=(x, priority)``; each is reached at the vertex at its x."""
    names = list(priority_at_x)
    return gpd.GeoDataFrame(
        {
            "block_id": names,
            "priority": [priority_at_x[n][1] for n in names],
            "flag": None,
            "reason": [f"test block {n}" for n in names],
        },
        geometry=[shapely.box(X0 + x, Y0 + 5, X0 + x + 50, Y0 + 55) for x, _ in priority_at_x.values()],
        crs="EPSG:32616",
    )


def order(route) -> list[str]:
    return [s.block_id for s in route.stops]


# --- street networks --------------------------------------------------------------------------------


def test_graph_joins_segments_at_shared_endpoints_and_keeps_lengths():
    streets = street_grid().to_crs("EPSG:32616")
    graph = street_graph(streets)
    assert graph.number_of_nodes() == 15 and graph.number_of_edges() == len(streets) == 22
    assert nx.is_connected(graph)
    assert sum(d["length"] for *_, d in graph.edges(data=True)) == pytest.approx(22 * 200)


def test_crossing_lines_without_a_shared_vertex_stay_apart():
    bridge = shapely.LineString([(X0 + 50, Y0 - 50), (X0 + 50, Y0 + 50)])  # over Main St, no shared vertex
    streets = pd.concat(
        [main_street(), gpd.GeoDataFrame({"source_id": ["b"], "name": ["Bridge"]}, geometry=[bridge], crs="EPSG:32616")]
    )
    assert nx.number_connected_components(street_graph(streets)) == 2


OSM_XML = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6" generator="hand">
  <node id="1" lat="41.8760" lon="-87.6360"/>
  <node id="2" lat="41.8760" lon="-87.6350"/>
  <node id="3" lat="41.8770" lon="-87.6350"/>
  <node id="4" lat="41.8770" lon="-87.6360"/>
  <node id="5" lat="41.8765" lon="-87.6340"/>
  <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><tag k="highway" v="residential"/><tag k="name" v="Oak St"/></way>
  <way id="11"><nd ref="2"/><nd ref="5"/><tag k="highway" v="footway"/></way>
  <way id="12"><nd ref="3"/><nd ref="4"/><tag k="highway" v="motorway"/></way>
  <way id="13"><nd ref="4"/><nd ref="1"/><tag k="highway" v="service"/><tag k="access" v="private"/></way>
  <way id="14"><nd ref="1"/><nd ref="3"/><tag k="waterway" v="stream"/></way>
  <way id="15"><nd ref="4"/><nd ref="5"/><tag k="highway" v="path"/><tag k="foot" v="no"/></way>
</osm>
"""


def test_openstreetmap_xml_keeps_walkable_ways_joined_at_shared_nodes(tmp_path):
    path = tmp_path / "tiny.osm"
    path.write_text(OSM_XML)
    streets, summary = streets_from_file(path)
    assert sorted(streets["source_id"]) == ["10", "11"] and "Oak St" in set(streets["name"])
    assert (summary["features"], summary["kept"], summary["not_walkable"], summary["rejected"]) == (6, 2, 4, 0)
    assert summary["reasons"] == {
        "highway=motorway is not for walking": 1,
        "access=private": 1,
        "no highway tag (not a street or path)": 1,
        "foot=no": 1,
    }
    graph = street_graph(streets.to_crs("EPSG:32616"))
    # The footway starts at node 2, in the middle of way 10: they are joined there.
    assert nx.is_connected(graph) and graph.number_of_nodes() == 4


def write_osm_pbf(path) -> None:
    """A tiny OpenStreetMap extract as .osm.pbf (pyosmium): Oak St, a footway off its middle, a motorway."""
    import osmium
    from osmium.osm.mutable import Node, Way

    corners = {1: (0, 0), 2: (200, 0), 3: (400, 0), 4: (200, 200), 5: (400, 200)}  # test-city metres
    with osmium.SimpleWriter(str(path)) as writer:
        for node_id, (x, y) in corners.items():
            lat, lon = lat_lon(x, y)
            writer.add_node(Node(id=node_id, location=(lon, lat)))
        writer.add_way(Way(id=10, nodes=[1, 2, 3], tags={"highway": "residential", "name": "Oak St"}))
        writer.add_way(Way(id=11, nodes=[2, 4], tags={"highway": "footway"}))
        writer.add_way(Way(id=12, nodes=[4, 5], tags={"highway": "motorway", "name": "Skyway"}))


def test_openstreetmap_pbf_keeps_walkable_ways_and_leaves_out_the_motorway(tmp_path):
    path = tmp_path / "tiny.osm.pbf"
    write_osm_pbf(path)
    assert path.read_bytes()[4:15] == b"\n\tOSMHeader"  # a real PBF file, not XML with a .pbf name
    streets, summary = streets_from_file(path)
    assert sorted(streets["source_id"]) == ["10", "11"] and "Skyway" not in set(streets["name"])
    assert (
        summary["features"],
        summary["kept"],
        summary["segments"],
        summary["not_walkable"],
        summary["rejected"],
    ) == (3, 2, 2, 1, 0)
    assert summary["reasons"] == {"highway=motorway is not for walking": 1}
    assert streets.crs.to_epsg() == 4326
    graph = street_graph(streets.to_crs("EPSG:32616"))
    assert nx.is_connected(graph) and graph.number_of_nodes() == 4  # the footway joins Oak St at node 2
    assert sum(d["length"] for *_, d in graph.edges(data=True)) == pytest.approx(600, abs=0.5)


def test_command_line_loads_an_osm_pbf_extract(tmp_path, capsys):
    from beatmap.cli import main

    db = build_store(tmp_path, streets=False)
    write_osm_pbf(tmp_path / "city.osm.pbf")
    assert main(["--db", str(db), "streets", str(tmp_path / "city.osm.pbf")]) == 0
    out = capsys.readouterr().out
    assert "3 features read" in out and "kept         2  (2 segments, 2 touching a beat)" in out
    assert "1 x highway=motorway is not for walking" in out
    assert sorted(store.read_streets(store.open_store(db))["source_id"]) == ["10", "11"]
    assert main(["--db", str(db), "info"]) == 0
    assert f"2 street segments for walking routes, from {tmp_path / 'city.osm.pbf'}" in capsys.readouterr().out


def test_openstreetmap_is_wgs84_and_a_contradicting_crs_is_refused(tmp_path):
    path = tmp_path / "tiny.osm"
    path.write_text(OSM_XML)
    with pytest.raises(CRSError, match="--crs"):
        streets_from_file(path, crs="EPSG:3435")


def test_a_layer_of_polygons_is_not_a_street_network(tmp_path):
    path = tmp_path / "blocks.geojson"
    metric_frame({"geometry": [shapely.box(X0, Y0, X0 + 10, Y0 + 10)]}, "EPSG:4326").to_file(path)
    with pytest.raises(InputError, match="none of its 1 features is a walkable street line"):
        streets_from_file(path)


def test_streets_need_the_beats_first(engine, tmp_path):
    street_grid().to_file(tmp_path / "s.geojson")
    with pytest.raises(StoreError, match="load beats and blocks before streets"):
        load_streets(engine, tmp_path / "s.geojson")


def test_streets_of_another_city_are_refused(tmp_path):
    db = build_store(tmp_path, streets=False)
    far = street_grid()
    far["geometry"] = far.geometry.translate(xoff=2.0)  # two degrees east
    far.to_file(tmp_path / "far.geojson")
    with pytest.raises(InputError, match="none of its 22 street segments touches a beat"):
        load_streets(store.open_store(db), tmp_path / "far.geojson")


@pytest.mark.parametrize("crs", CRS_CASES)
def test_streets_in_any_crs_give_the_same_walk(tmp_path, crs, fast):
    db = build_store(tmp_path, streets=False)
    engine = store.open_store(db)
    street_grid().to_crs(crs).to_file(tmp_path / "streets.gpkg")
    summary = load_streets(engine, tmp_path / "streets.gpkg")
    assert summary.segments == summary.in_beats == 22
    route = route_from_store(engine, beat_id="A", start=lat_lon(0, 0), minutes=60, settings=fast, seed=3)
    assert not route.straight_line and len(route.stops) == 3
    # The three blocks meet at the corner 283 m from the start: 400 m there along the streets, the last block
    # reached 200 m on, and 200 m back, whatever the CRS the streets came in.
    assert route.distance_m == pytest.approx(800, abs=0.5)
    assert [round(s.walk_m) for s in route.stops] == [400, 0, 200]


# --- the planner on hand-built streets --------------------------------------------------------------


def test_a_far_high_priority_block_beats_two_near_low_ones(fast):
    # 40 minutes: the block 900 m away (12 min each way + 10 on it = 34) or the two near ones (priority 2).
    blocks = blocks_at(P=(100, 1.0), Q=(200, 1.0), R=(900, 5.0))
    route = plan_walking_route(blocks, main_street(), start=START, minutes=40, settings=fast, seed=1)
    assert order(route) == ["R"] and route.priority == 5
    assert route.distance_m == pytest.approx(1800, abs=1) and route.walk_min == pytest.approx(24, abs=0.1)
    assert route.stops[0].arrival_min == pytest.approx(12, abs=0.1) and route.total_min == pytest.approx(34, abs=0.1)


def test_a_known_best_route_with_an_end_point(fast):
    # One way to x = 1000 in 45 minutes: 13.3 min walking leaves room for 3 stays; the best three are A, C, D.
    blocks = blocks_at(A=(100, 2.0), B=(300, 0.5), C=(500, 2.0), D=(800, 3.0), E=(600, 1.0))
    route = plan_walking_route(
        blocks, main_street(), start=START, end=lat_lon(1000, 0), minutes=45, settings=fast, seed=1
    )
    assert order(route) == ["A", "C", "D"] and route.priority == 7
    assert route.distance_m == pytest.approx(1000, abs=1)
    assert [round(s.arrival_min, 1) for s in route.stops] == [1.3, 16.7, 30.7]
    assert route.path[0] == pytest.approx(START, abs=1e-6) and route.path[-1] == pytest.approx(
        lat_lon(1000, 0), abs=1e-6
    )


def test_the_planner_matches_brute_force_on_a_small_grid(fast):
    streets = street_grid().to_crs("EPSG:32616")
    cells = [(x, y) for x in (0, 200, 400, 600) for y in (0, 200)]
    priorities = [1.0, 2.5, 0.5, 3.0, 2.0, 1.5, 3.0, 0.8]
    blocks = gpd.GeoDataFrame(
        {"block_id": [f"c{i}" for i in range(8)], "priority": priorities},
        geometry=[shapely.box(X0 + x + 20, Y0 + y + 20, X0 + x + 180, Y0 + y + 180) for x, y in cells],
        crs="EPSG:32616",
    )
    route = plan_walking_route(blocks, streets, start=lat_lon(400, 200), minutes=50, settings=fast, seed=2)
    from beatmap.routing.network import walking_distances

    walk = walking_distances(blocks, streets, start=lat_lon(400, 200), end=lat_lon(400, 200))
    best = 0.0
    for size in range(1, 6):
        for combo in itertools.permutations(range(8), size):
            legs = [0, *(k + 2 for k in combo), 1]
            minutes = sum(walk.distance[a, b] for a, b in itertools.pairwise(legs)) / 75 + 10 * size
            if minutes <= 50:
                best = max(best, sum(priorities[k] for k in combo))
    assert route.priority == pytest.approx(best)


def test_a_budget_too_short_for_any_block_says_how_long_is_needed(fast):
    blocks = blocks_at(P=(300, 1.0))
    with pytest.raises(
        InputError,
        match=r"12 minutes is too short to visit any block: the nearest, P, needs about "
        r"18 minutes \(8 walking and 10 on the block\)",
    ):
        plan_walking_route(blocks, main_street(), start=START, minutes=12, settings=fast)


def test_a_start_off_the_network_is_snapped_and_the_distance_said(fast):
    blocks = blocks_at(P=(100, 1.0))
    route = plan_walking_route(blocks, main_street(), start=lat_lon(0, -60), minutes=30, settings=fast, seed=1)
    assert route.start_snap_m == pytest.approx(60, abs=0.5)
    assert any("60 m from the nearest street" in n for n in route.notes)
    assert route.distance_m == pytest.approx(2 * (60 + 100), abs=1)
    assert route.path[0] == pytest.approx(lat_lon(0, -60), abs=1e-6)


def test_a_disconnected_network_plans_on_the_starts_piece_and_names_the_rest(fast):
    island = gpd.GeoDataFrame(
        {"source_id": ["i"], "name": ["Island Rd"]},
        geometry=[shapely.LineString([(X0, Y0 + 600), (X0 + 300, Y0 + 600)])],
        crs="EPSG:32616",
    )
    streets = pd.concat([main_street(), island], ignore_index=True)
    blocks = pd.concat(
        [
            blocks_at(P=(100, 1.0)),
            gpd.GeoDataFrame(
                {"block_id": ["far"], "priority": [9.0], "flag": None, "reason": ["x"]},
                geometry=[shapely.box(X0 + 100, Y0 + 610, X0 + 150, Y0 + 660)],
                crs="EPSG:32616",
            ),
        ],
        ignore_index=True,
    )
    route = plan_walking_route(blocks, streets, start=START, minutes=60, settings=fast, seed=1)
    assert order(route) == ["P"] and route.unreachable == ("far",)
    assert any("not joined to the start's" in n and "far" in n for n in route.notes)
    with pytest.raises(InputError, match="not joined to the start's"):
        plan_walking_route(blocks, streets, start=START, end=lat_lon(0, 600), minutes=60, settings=fast)
    with pytest.raises(InputError, match="none of the 1 blocks"):
        plan_walking_route(blocks.iloc[1:], streets, start=START, minutes=60, settings=fast)


def test_without_streets_the_route_is_a_labelled_straight_line_estimate(fast):
    blocks = blocks_at(P=(100, 1.0), R=(900, 5.0))
    route = plan_walking_route(blocks, None, start=START, minutes=60, settings=fast, seed=1)
    assert route.straight_line and route.start_snap_m == 0
    assert any("straight-line estimates" in n for n in route.notes)
    assert set(order(route)) == {"P", "R"}
    assert "STRAIGHT-LINE ESTIMATE" in route_text(route)
    assert "Straight-line estimate" in route_card_html(route)
    assert "straight-line estimate" in route_to_gpx(route)


def test_seeds_change_the_route_but_not_its_priority(fast):
    # 50 minutes: R (900 m) and one of the equally good P and Q fit; which one, and the direction, is the seed's.
    blocks = blocks_at(P=(100, 1.0), Q=(200, 1.0), R=(900, 5.0))
    routes = [
        plan_walking_route(blocks, main_street(), start=START, minutes=50, settings=fast, seed=s) for s in range(8)
    ]
    assert {r.priority for r in routes} == {6.0}
    assert len({tuple(order(r)) for r in routes}) > 1
    assert [r.seed for r in routes] == list(range(8))
    again = plan_walking_route(blocks, main_street(), start=START, minutes=50, settings=fast, seed=5)
    assert order(again) == order(routes[5])


def test_the_default_seed_is_the_date():
    assert default_seed(date(2026, 3, 9)) == 20260309


def test_a_short_dwell_is_allowed_with_a_note(fast):
    route = plan_walking_route(
        blocks_at(P=(100, 1.0)), main_street(), start=START, minutes=10, dwell_min=5, settings=fast, seed=1
    )
    assert route.stops[0].stay_min == 5 and any("Koper" in n for n in route.notes)


@pytest.mark.parametrize("text", ["41.8", "north,west", "91,0", "41.8,-200"])
def test_bad_coordinates_are_refused(text):
    with pytest.raises(InputError, match="--start"):
        parse_lat_lon(text)


# --- priorities ---------------------------------------------------------------------------------------


def test_priorities_weigh_the_flag_and_the_days_since_the_last_visit():
    window = Window(date(2026, 3, 1), date(2026, 3, 30), "America/Chicago")
    coverage = pd.DataFrame(
        {
            "flag": ["enforcement_only", "unvisited", "rarely_visited", None, None],
            "last_visit": [None, None, date(2026, 3, 10), date(2026, 3, 25), date(2026, 3, 30)],
            "visits": [0, 0, 1, 9, 12],
            "enforcement": [5, 0, 0, 0, 0],
        },
        index=[10, 11, 12, 13, 14],
    )
    pri = block_priorities(coverage, window=window, settings=Settings())
    assert pri.index.tolist() == [10, 11, 12, 13, 14]
    assert pri["priority"].tolist() == pytest.approx([3.9, 3.4, 2.6, 0.15, 0.0])
    assert pri["reason"][10].startswith("enforcement only: 5 enforcement events")
    assert pri["reason"][12] == "rarely visited: 1 visit in 30 days, last foot patrol or visit 20 days ago"
    heavier = Settings(route_weight_unvisited=5.0, route_weight_per_day=0.0)
    assert block_priorities(coverage, window=window, settings=heavier)["priority"][11] == 5.0


# --- from the store -----------------------------------------------------------------------------------


def test_route_from_store_refuses_an_unknown_beat_and_a_far_start(tmp_path, fast):
    engine = store.open_store(build_store(tmp_path))
    with pytest.raises(InputError, match="no such beat"):
        route_from_store(engine, beat_id="Z", start=START, minutes=60, settings=fast)
    with pytest.raises(InputError, match=r"the start .* is 2\.\d km from beat A"):
        route_from_store(engine, beat_id="A", start=lat_lon(0, 2500), minutes=60, settings=fast)


def test_a_user_plans_routes_on_their_own_beats_only(tmp_path, fast):
    from beatmap.access import NO_BEATS, plan_route_as
    from beatmap.accounts import User

    engine = store.open_store(build_store(tmp_path))
    officer = User("ofc-a", "officer", ("A",), officer_id="O1")
    route = plan_route_as(engine, officer, beat_id="A", start=START, minutes=60, settings=fast, seed=1)
    assert route.beat_id == "A" and route.stops
    with pytest.raises(AccessError, match=r"beat 'B' is not one of your beats \(A\)"):
        plan_route_as(engine, officer, beat_id="B", start=lat_lon(600, 0), minutes=60, settings=fast)
    with pytest.raises(AccessError, match=NO_BEATS):
        plan_route_as(engine, User("rookie", "officer"), beat_id="A", start=START, minutes=60, settings=fast)
    for nobody in (None, User("boss", "admin")):
        with pytest.raises(AccessError, match="Only officers and supervisors have access to walking routes"):
            plan_route_as(engine, nobody, beat_id="A", start=START, minutes=60, settings=fast)
    lieutenant = User("lt", "supervisor", all_beats=True)
    assert (
        plan_route_as(engine, lieutenant, beat_id="B", start=lat_lon(600, 0), minutes=60, settings=fast, seed=1).beat_id
        == "B"
    )


def test_route_from_store_walks_the_neglected_blocks(tmp_path, fast):
    engine = store.open_store(build_store(tmp_path))
    route = route_from_store(engine, beat_id="A", start=lat_lon(0, 0), minutes=60, settings=fast, seed=1)
    assert route.beat_id == "A" and not route.straight_line
    assert "A_r1c1" not in order(route)  # walked every day of the window
    first = next(s for s in route.stops if s.flag == "enforcement_only")
    assert first.reason.startswith("enforcement only: 5 enforcement events")


# --- output -------------------------------------------------------------------------------------------


def test_gpx_is_valid_gpx_1_1_with_numbered_waypoints_and_the_route(tmp_path, fast):
    blocks = blocks_at(A=(100, 2.0), C=(500, 2.0), D=(800, 3.0))
    route = plan_walking_route(
        blocks, main_street(), start=START, end=lat_lon(1000, 0), minutes=45, settings=fast, seed=1
    )
    path = write_gpx(route, tmp_path / "walk.gpx")
    root = ET.parse(path).getroot()
    assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1" and root.get("creator") == "beatmap"
    assert [c.tag.removeprefix(GPX) for c in root][:2] == ["metadata", "wpt"]
    waypoints = root.findall(f"{GPX}wpt")
    names = [w.findtext(f"{GPX}name") for w in waypoints]
    assert names == ["Start", "1. A", "2. C", "3. D", "End"]
    for w in waypoints:
        assert [c.tag.removeprefix(GPX) for c in w] == ["name", "desc", "sym", "type"]  # the schema's order
        assert -90 <= float(w.get("lat")) <= 90 and -180 <= float(w.get("lon")) <= 180
    points = root.find(f"{GPX}rte").findall(f"{GPX}rtept")
    assert len(points) == len(route.path) and float(points[0].get("lat")) == pytest.approx(START[0], abs=1e-6)
    assert f"seed {route.seed}" in root.find(f"{GPX}metadata").findtext(f"{GPX}desc")
    with pytest.raises(InputError, match=r"\.gpx"):
        write_gpx(route, tmp_path / "walk.txt")


def test_the_card_escapes_what_it_prints(fast):
    blocks = blocks_at(P=(100, 1.0))
    blocks["block_id"] = ["<b>P</b>"]
    route = plan_walking_route(blocks, main_street(), start=START, minutes=30, settings=fast, seed=1)
    card = route_card_html(route)
    assert "&lt;b&gt;P&lt;/b&gt;" in card and "<b>P</b>" not in card
    assert "seed" not in card.lower() and "priority" not in card.lower() and card.startswith("<!DOCTYPE html>")


def test_the_card_names_stops_by_street_starts_at_the_landmark_and_draws_the_walk(fast):
    route = plan_walking_route(blocks_at(P=(100, 1.0)), main_street(), start=START, minutes=30, settings=fast, seed=1)
    streets = {
        "lines": {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"name": "<i>Main</i> St", "major": 1},
                    "geometry": {"type": "LineString", "coordinates": [[lon, lat] for lat, lon in route.path]},
                }
            ],
        },
        "labels": [[*route.path[0], "<i>Main</i> St", 1, 0]],
    }
    card = route_card_html(
        route,
        stop_names={"P": "Main St between <1st> and 2nd"},
        landmarks={"Lincoln School": route.start, "Far away": (0.0, 0.0)},
        streets=streets,
    )
    assert "Main St between &lt;1st&gt; and 2nd" in card and "block P" in card
    assert "Start and end: Lincoln School." in card and f"{route.start[0]:.5f}" not in card
    assert card.count("<svg") == 1 and card.count('fill="#0072B2"') == len(route.stops)  # one badge per stop
    assert "&lt;i&gt;Main&lt;/i&gt; St" in card and "<i>" not in card
    plain = route_card_html(route)  # no names, no landmark: block ids and coordinates
    assert f"{route.start[0]:.5f}, {route.start[1]:.5f}" in plain and ">P<" in plain


def test_gpx_names_waypoints_by_street(fast):
    route = plan_walking_route(blocks_at(P=(100, 1.0)), main_street(), start=START, minutes=30, settings=fast, seed=1)
    gpx = route_to_gpx(route, stop_names={"P": "Main St at 1st Ave"})
    assert "<name>1. Main St at 1st Ave (block P)</name>" in gpx


def test_route_is_frozen(fast):
    route = plan_walking_route(blocks_at(P=(100, 1.0)), main_street(), start=START, minutes=30, settings=fast, seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.seed = 2


# --- command line -------------------------------------------------------------------------------------


def test_command_line_loads_streets_and_writes_a_route(tmp_path, capsys):
    from beatmap.cli import main

    db = build_store(tmp_path, streets=False)
    street_grid().to_file(tmp_path / "streets.geojson")
    assert main(["--db", str(db), "streets", str(tmp_path / "streets.geojson")]) == 0
    assert "22 features read" in capsys.readouterr().out
    start = ",".join(str(v) for v in lat_lon(0, 0))
    args = [
        "--db",
        str(db),
        "route",
        "--beat",
        "A",
        "--start",
        start,
        "--minutes",
        "60",
        "--seed",
        "4",
        "--out",
        str(tmp_path / "walk.gpx"),
        "--card",
        str(tmp_path / "walk.html"),
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "Walking route, beat A" in out and "seed 4" in out and "STRAIGHT-LINE" not in out
    assert ET.parse(tmp_path / "walk.gpx").getroot().tag == f"{GPX}gpx"
    card = (tmp_path / "walk.html").read_text()
    assert "seed" not in card.lower() and "<td>Test St, " in card and "<svg" in card
    assert main([*args[:8], "5", *args[9:]]) == 2
    assert "beatmap: error: 5 minutes is too short to visit any block in beat A" in capsys.readouterr().err


def test_the_route_map_numbers_the_stops_and_shares_a_badge_at_one_corner(tmp_path, fast):
    from beatmap.render import route_map
    from beatmap.report import block_coverage, window_from_store

    engine = store.open_store(build_store(tmp_path))
    route = route_from_store(engine, beat_id="A", start=lat_lon(0, 0), minutes=60, settings=fast, seed=3)
    blocks = block_coverage(engine, window=window_from_store(engine, settings=fast), settings=fast, beat_id="A")
    beat = store.read_beats(engine).query("beat_id == 'A'")
    page = route_map(blocks, beat, route).get_root().render()
    assert [round(s.walk_m) for s in route.stops] == [400, 0, 200]  # stops 1 and 2 at the same corner
    assert "\\u003e1, 2\\u003c/div" in page and "\\u003e3\\u003c/div" in page  # the badges, JSON-escaped
    assert "/app/static/vendor/leaflet/leaflet.js" in page and "cdn" not in page.lower()


def test_landmarks_near_the_beat_are_offered_nearest_first_and_named_on_the_command_line(tmp_path, capsys):
    from beatmap.cli import main
    from beatmap.routing.landmarks import landmarks_near, start_point

    db = build_store(tmp_path)
    places = {"Far school": lat_lon(-900, 0), "Station": lat_lon(100, 100), "Other city": lat_lon(50_000, 0)}
    settings = Settings(landmarks=places)
    beat = store.read_beats(store.open_store(db)).query("beat_id == 'A'")
    assert list(landmarks_near(beat, settings)) == ["Station", "Far school"]  # within 1 km, nearest first
    assert start_point("station", settings=settings) == places["Station"]
    assert start_point("41.6,-88.1", settings=settings) == (41.6, -88.1)
    with pytest.raises(InputError, match="'Statoin': not a landmark of the settings \\(Far school, Station, Other"):
        start_point("Statoin", settings=settings)
    toml = tmp_path / "s.toml"
    toml.write_text("[landmarks]\n" + "".join(f'"{n}" = [{p[0]}, {p[1]}]\n' for n, p in places.items()))
    args = [
        "--db",
        str(db),
        "--settings",
        str(toml),
        "route",
        "--beat",
        "A",
        "--minutes",
        "60",
        "--out",
        str(tmp_path / "walk.gpx"),
    ]
    assert main([*args, "--start", "Station"]) == 0
    assert f"{places['Station'][0]:.5f}" in (tmp_path / "walk.gpx").read_text()
    assert main([*args, "--start", "Other city"]) == 2
    assert "km from beat A" in capsys.readouterr().err


def test_a_seeds_route_is_kept_only_when_it_covers_exactly_as_much_priority(monkeypatch):
    """The seed chooses among equally good routes only; a better route one seed stumbles on is not taken."""
    import numpy as np

    from beatmap.routing import solver

    priority = np.array([2.0, 2.0, 3.0, 1.0])
    answers: list[np.ndarray] = []
    monkeypatch.setattr(solver, "_search", lambda **kw: answers.pop(0))
    square = np.ones((6, 6))

    def solve(first, seeded):
        answers[:] = [np.array(first), np.array(seeded)]
        return solver.solve_orienteering(
            square, square, priority, dwell_s=1, budget_s=10, rng=np.random.default_rng(1), time_limit_s=1
        ).tolist()

    assert solve([0, 2], [2, 1]) == [2, 1]  # the same 5.0 through another block: the seed's
    assert solve([0, 2], [0, 1, 2]) == [0, 2]  # 7.0 > 5.0: not every seed would find it
    assert solve([0, 2], [0]) == [0, 2]  # 2.0 < 5.0


def test_a_route_can_target_one_neglected_area(tmp_path, fast):
    from beatmap.neglect import neglected_areas_from_store

    engine = store.open_store(build_store(tmp_path))
    window = Window(pd.Timestamp("2026-01-01").date(), pd.Timestamp("2026-03-31").date(), "America/Chicago")
    areas = neglected_areas_from_store(engine, window=window, settings=fast, beat_id="A").set_index("area_id")
    assert list(areas.index) == ["A-1"] and areas.at["A-1", "name"] == "3 blocks along Test St"
    area_blocks = set(areas.at["A-1", "block_ids"].split())
    route = route_from_store(
        engine, beat_id="A", start=START, minutes=60, settings=fast, seed=1, area_id="A-1", window=window
    )
    assert route.stops and {s.block_id for s in route.stops} <= area_blocks
    assert route.area == "A-1, 3 blocks along Test St"
    assert route.notes[0].startswith("This walk covers neglected area A-1, 3 blocks along Test St")
    assert "area A-1, 3 blocks along Test St" in route_card_html(route)
    short = route_from_store(
        engine, beat_id="A", start=START, minutes=25, settings=fast, seed=1, area_id="A-1", window=window
    )
    left = len(area_blocks) - len(short.stops)
    assert left > 0 and f"{left} of its blocks do not fit in the time" in short.notes[0]
    with pytest.raises(InputError, match="--area 'A-9': no such neglected area; areas: A-1"):
        route_from_store(engine, beat_id="A", start=START, minutes=60, settings=fast, area_id="A-9", window=window)
