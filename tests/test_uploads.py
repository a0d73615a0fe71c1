"""Uploads on the dashboard: which file is the layer, a shapefile that came whole, messages in the page's words."""

from __future__ import annotations

from beatmap.uploads import for_page, layer_upload


def test_a_shapefile_comes_whole_or_zipped():
    assert layer_upload(["beats.shp", "beats.shx", "beats.dbf", "beats.prj"]) == ("beats.shp", None)
    assert layer_upload(["beats.zip"]) == ("beats.zip", None)
    assert layer_upload(["beats.geojson"]) == ("beats.geojson", None)
    name, problem = layer_upload(["NOPD_Police_Districts.shp"])
    assert name is None and "without its .shx, .dbf, .prj" in problem and "or a zip" in problem
    assert "without its .prj" in layer_upload(["b.shp", "b.shx", "b.dbf"])[1]
    assert layer_upload([])[1] == "choose the file"
    assert "one layer" in layer_upload(["a.geojson", "b.geojson"])[1]


def test_messages_name_the_upload_and_the_page_fields():
    message = ("/tmp/tmpab12/beats/b.geojson: no field 'BEAT'; name the beat id field with --beat-id FIELD, or "
               "state it with --crs, for example --crs EPSG:3452; see `beatmap areas --help`")
    shown = for_page(message, {"/tmp/tmpab12/beats/b.geojson": "b.geojson"})
    assert "/tmp" not in shown and "--" not in shown and "`beatmap" not in shown
    assert shown.startswith("b.geojson: no field 'BEAT'; name the beat id field with the Beat id field")
    assert "EPSG:3452 in the CRS box" in shown
