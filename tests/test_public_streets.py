"""The public snapshot's base map: streets published in ``streets.js``, checked, drawn by both public pages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import shapely
from shapely.geometry import shape

from beatmap import snapshot as snap
from beatmap.basemap import clip_streets
from beatmap.publicmap import public_city_map, public_map
from beatmap.publicsite import page_data
from beatmap.publish import check_published
from beatmap.settings import Settings
from tests.public_helpers import AVENUES, STREETS_EW, A, B, publish_tiny_city

COUNTS = {(A, 0, "foot_patrol"): 8, (B, 1, "enforcement"): 6}


@pytest.fixture(scope="module")
def with_streets(tmp_path_factory) -> Path:
    return publish_tiny_city(tmp_path_factory.mktemp("streets"), COUNTS, settings=Settings(), streets=True)


@pytest.fixture(scope="module")
def without_streets(tmp_path_factory) -> Path:
    return publish_tiny_city(tmp_path_factory.mktemp("no_streets"), COUNTS, settings=Settings())


def test_publishing_puts_the_store_streets_in_the_snapshot_and_its_check_passes(with_streets):
    manifest = snap.read_manifest(with_streets)
    assert snap.STREETS in manifest["files"]
    assert check_published(with_streets, settings=Settings()) == []
    streets = snap.read_streets(with_streets)
    assert streets is not None
    assert {f["properties"]["name"] for f in streets["lines"]["features"]} == {*STREETS_EW, *AVENUES}
    assert {label[2] for label in streets["labels"]} == {*STREETS_EW, *AVENUES}
    page = page_data((with_streets / snap.INDEX).read_text(encoding="utf-8"))
    assert page["streets"]["file"] == snap.STREETS


def test_without_a_street_layer_the_snapshot_has_no_base_map(without_streets):
    assert not (without_streets / snap.STREETS).exists()
    assert snap.STREETS not in snap.read_manifest(without_streets)["files"]
    assert snap.read_streets(without_streets) is None
    assert page_data((without_streets / snap.INDEX).read_text(encoding="utf-8"))["streets"] is None
    assert check_published(without_streets, settings=Settings()) == []


def _tampered(source: Path, target: Path, change) -> Path:
    """A copy of the snapshot whose base map ``change`` edited, with its checksum recomputed in the manifest
    (as someone who edits a published folder with care would)."""
    shutil.copytree(source, target)
    data = snap.read_streets(target)
    changed = change(data)
    text = changed if isinstance(changed, str) else snap.streets_file(data)
    (target / snap.STREETS).write_text(text, encoding="utf-8")
    manifest = snap.read_manifest(target)
    manifest["files"][snap.STREETS]["sha256"] = snap.sha256_of(target / snap.STREETS)
    (target / snap.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    return target


def _officer_field(data):
    data["lines"]["features"][0]["properties"]["officer"] = "O101"


def _moved_name(data):
    data["labels"][0][0] = round(data["labels"][0][0] + 0.002, 5)  # about 220 m north of its street


def _unknown_name(data):
    data["labels"].append([*data["labels"][0][:2], "Home of O101", 0, 0])


def _point(data):
    data["lines"]["features"].append(
        {
            "type": "Feature",
            "properties": {"name": "x", "major": 0},
            "geometry": {"type": "Point", "coordinates": [0, 0]},
        }
    )


def _area_kind(data):
    ring = [[-87.6, 41.8], [-87.6, 41.801], [-87.599, 41.801], [-87.6, 41.8]]
    data["areas"]["features"].append(
        {
            "type": "Feature",
            "properties": {"kind": "home", "name": ""},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }
    )


def _fine_coordinate(data):
    data["lines"]["features"][0]["geometry"]["coordinates"][0][0] += 0.0000012


def _time_of_day(data):
    for feature in data["lines"]["features"][:1]:
        feature["properties"]["name"] = "Stop 2026-05-01T10:00"


def _extra_member(data):
    return snap.STREETS_CALL + json.dumps({**data, "events": []}) + ");\n"


def _too_large(data):
    data["lines"]["features"][0]["properties"]["name"] = "x" * (snap.FIRST_VIEW_BYTES + 1)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_officer_field, "a base map's may only be name, major"),
        (_moved_name, "is not on a street of that name"),
        (_unknown_name, "'Home of O101'"),
        (_point, "geometry is 'Point'"),
        (_area_kind, "kind 'home' is not water or a park"),
        (_fine_coordinate, "finer than the block layer's 5 decimal places"),
        (_time_of_day, "holds a time of day"),
        (_extra_member, "not the base map publishing writes"),
        (_too_large, "the first view (index.html and streets.js) is"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_the_check_refuses_a_base_map_that_holds_anything_but_public_geography(with_streets, tmp_path, change, words):
    folder = _tampered(with_streets, tmp_path / "public", change)
    problems = snap.check_snapshot(folder, settings=Settings())
    assert any(words in p and snap.STREETS in p for p in problems), problems


def test_a_base_map_removed_with_its_manifest_entry_is_found_by_the_page_it_leaves(with_streets, tmp_path):
    folder = tmp_path / "public"
    shutil.copytree(with_streets, folder)
    (folder / snap.STREETS).unlink()
    manifest = snap.read_manifest(folder)
    del manifest["files"][snap.STREETS]
    (folder / snap.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert snap.check_snapshot(folder, settings=Settings()) == []  # a snapshot may have no base map ...
    problems = check_published(folder, settings=Settings())  # ... but this page was made with one
    assert any("index.html" in p and "differs from the page its data makes" in p for p in problems), problems


def test_a_beat_view_carries_the_streets_around_its_beat_only(with_streets):
    streets = snap.read_streets(with_streets)
    beat_a = [f for f in snap.read_features(with_streets)["features"] if f["properties"]["beat_id"] == A]
    west, south, east, north = shapely.total_bounds([shape(f["geometry"]) for f in beat_a])
    clipped = clip_streets(streets, (west - 1e-4, south - 1e-4, east + 1e-4, north + 1e-4))
    names = {f["properties"]["name"] for f in clipped["lines"]["features"]}
    assert names == {*STREETS_EW, "1st Ave", "2nd Ave", "3rd Ave"}  # beat A spans x 0-400 m; 4th and 5th are east
    assert {label[2] for label in clipped["labels"]} <= names
    page = public_map({"type": "FeatureCollection", "features": beat_a}, streets=streets).get_root().render()
    assert "bmStreets(" in page and "3rd Ave" in page and "5th Ave" not in page
    outlines = page_data((with_streets / snap.INDEX).read_text(encoding="utf-8"))["outlines"]
    city = public_city_map(outlines, {A: 25, B: 0}, streets=streets).get_root().render()
    assert "5th Ave" in city and "1st Ave" in city
    assert "bmStreets(" not in public_city_map(outlines, {A: 25, B: 0}).get_root().render()
