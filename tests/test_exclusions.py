"""Beats left out of the analysis: listed as not analysed in every table, with no figure and no flag."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
from shapely.geometry import box

from beatmap.exclusions import ANALYSED, NOT_ANALYSED, left_out, parse_beat_list, with_not_analysed
from beatmap.export import csv_text, geojson_text


def test_parse_beat_list_keeps_order_without_blanks_or_repeats():
    assert parse_beat_list(" H1, H3,,99 ,H1") == ("H1", "H3", "99")


def test_rows_left_out_are_listed_as_not_analysed_with_empty_figures():
    table = pd.DataFrame(
        {
            "block_id": ["a1", "a2"],
            "beat_id": ["A", "A"],
            "visits": [3, 0],
            "enforcement_share": [0.0, 1.0],
            "flag": [None, "unvisited"],
            "flag_reason": ["", "No visit."],
        }
    )
    blocks = pd.DataFrame({"block_id": ["a1", "a2", "b1", "b2"], "beat_id": ["A", "A", "B", "B"]})
    out = with_not_analysed(table, left_out(blocks, ["B"]))
    assert out["status"].tolist() == [ANALYSED, ANALYSED, NOT_ANALYSED, NOT_ANALYSED]
    assert out["block_id"].tolist() == ["a1", "a2", "b1", "b2"]
    b = out[out["beat_id"] == "B"]
    assert b["visits"].isna().all() and b["flag"].isna().all() and b["flag_reason"].tolist() == ["", ""]
    assert out["visits"].dtype == "Int64"  # a count stays a whole number beside the empty cells
    lines = csv_text(out).splitlines()
    assert lines[1] == "a1,A,3,0.0,,,analysed" and lines[3] == "b1,B,,,,,not analysed"


def test_nothing_left_out_only_adds_the_status():
    table = pd.DataFrame({"block_id": ["a1"], "beat_id": ["A"], "visits": [2]})
    out = with_not_analysed(table, table.iloc[:0])
    assert out["status"].tolist() == [ANALYSED] and out["visits"].dtype == table["visits"].dtype


def test_polygons_of_the_rows_left_out_are_kept_in_the_table_crs():
    table = gpd.GeoDataFrame(
        {"block_id": ["a1"], "beat_id": ["A"], "visits": [1]}, geometry=[box(0, 0, 100, 100)], crs="EPSG:32616"
    )
    left = gpd.GeoDataFrame(
        {"block_id": ["b1"], "beat_id": ["B"]}, geometry=[box(100, 0, 200, 100)], crs="EPSG:32616"
    ).to_crs("EPSG:4326")
    out = with_not_analysed(table, left)
    assert isinstance(out, gpd.GeoDataFrame) and out.crs == table.crs
    assert abs(out.geometry.iloc[1].bounds[0] - 100) < 0.01
    features = json.loads(geojson_text(out))["features"]
    assert [(f["properties"]["status"], f["properties"]["visits"]) for f in features] == [
        ("analysed", 1),
        ("not analysed", None),
    ]


def test_the_beat_summary_of_a_beat_left_out_says_it_is_not_analysed():
    from beatmap.render import beat_summary_html

    note = "Not analysed: this beat is left out of the analysis."
    empty = pd.DataFrame(columns=["block_id", "flag", "visits", "enforcement", "last_visit", "flag_reason"])
    page = beat_summary_html("99", "March 2026", [("Status", "Not analysed")], empty, note=note)
    assert page.count(note) == 2  # under the title, and in place of the list of blocks
    assert "No block is flagged in this period." not in page
    assert note not in beat_summary_html("A", "March 2026", [], empty)


def test_blocks_left_out_on_the_map_say_so_in_their_tooltip():
    from beatmap.render import TextTooltip, not_analysed

    blocks = gpd.GeoDataFrame(
        {"block_id": ["b1"], "beat_id": ["B"]}, geometry=[box(0, 0, 0.001, 0.001)], crs="EPSG:4326"
    )
    layer = not_analysed(blocks, id_field="block_id", alias="Block")
    drawn = next(iter(layer._children.values()))
    assert drawn.data["features"][0]["properties"] == {
        "block_id": "b1",
        "beat_id": "B",
        "_status": "not analysed (left out of the analysis)",
    }
    tip = next(c for c in drawn._children.values() if isinstance(c, TextTooltip))
    assert tip.fields == ["block_id", "_status"] and tip.aliases == ["Block", "Status"]


def test_a_beat_map_draws_blocks_left_out_in_grey():
    import folium

    from beatmap.render import NOT_ANALYSED as GREY
    from beatmap.render import route_map

    blocks = gpd.GeoDataFrame(
        {
            "block_id": ["b1", "a1"],
            "beat_id": ["B", "A"],
            "flag": [None, "unvisited"],
            "flag_reason": ["", "No visit."],
            "status": [NOT_ANALYSED, ANALYSED],
        },
        geometry=[box(0, 0, 100, 100), box(100, 0, 200, 100)],
        crs="EPSG:32616",
    )
    beat = gpd.GeoDataFrame({"beat_id": ["B"]}, geometry=[box(0, 0, 200, 100)], crs="EPSG:32616")
    m = route_map(blocks, beat)
    layer = next(c for c in m._children.values() if isinstance(c, folium.GeoJson) and c.layer_name == "Blocks")
    fills = {f["properties"]["block_id"]: layer.style_function(f)["fillColor"] for f in layer.data["features"]}
    assert fills["b1"] == GREY and fills["a1"] != GREY
    reasons = {f["properties"]["block_id"]: f["properties"]["flag_reason"] for f in layer.data["features"]}
    assert reasons == {"b1": "Not analysed (left out of the analysis)", "a1": "No visit."}
