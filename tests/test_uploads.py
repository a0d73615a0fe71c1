"""Uploads on the dashboard: which file is the layer, a shapefile that came whole, messages in the page's words."""

from __future__ import annotations

from beatmap.uploads import for_page, in_wizard_words, layer_upload


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
    message = (
        "/tmp/tmpab12/beats/b.geojson: no field 'BEAT'; name the beat id field with --beat-id FIELD, or "
        "state it with --crs, for example --crs EPSG:3452; see `beatmap areas --help`"
    )
    shown = for_page(message, {"/tmp/tmpab12/beats/b.geojson": "b.geojson"})
    assert "/tmp" not in shown and "--" not in shown and "`beatmap" not in shown
    assert shown.startswith("b.geojson: no field 'BEAT'; name the beat id field with the Beat id field")
    assert "EPSG:3452 in the CRS box" in shown


def test_messages_about_a_mapping_built_on_the_page_name_the_wizard_fields():
    import pandas as pd

    from beatmap.sanity import check_records
    from beatmap.timeformat import expected_text, time_hint

    records = pd.DataFrame(
        {
            "lat": [30.00973] * 60 + [29.95] * 40,
            "lon": [-90.0209] * 60 + [-90.07] * 40,
            "occurred_at": pd.Timestamp("2022-01-01", tz="UTC"),
            "block_id": "b1",
            "beat_id": "1",
            "reported_beat": "0001",
        }
    )
    said = {
        w.code: in_wizard_words(w.message)
        for w in check_records(
            records, beat_ids={"1"}, now=pd.Timestamp("2026-01-01", tz="UTC"), pileup_share=0.01, pileup_min=50
        )
    }
    assert said["pileup"].endswith(
        "add -90.0209,30.00973 to 'Placeholder points to reject' in the mapping above, "
        "or tick 'Reject points that hold many rows'."
    )
    assert "set 'Pad reported beats with zeros' (under 'More columns') in the mapping above" in said["unknown_beats"]
    iso = pd.Series(["2012-01-01T00:00:00.000"])
    assert in_wizard_words(time_hint(iso, "%m/%d/%Y")).endswith("empty the 'Time format' box to read ISO times")
    us = pd.Series(["01/31/2012 10:00:00 PM"])
    assert in_wizard_words(time_hint(us, None)).endswith("put '%m/%d/%Y %I:%M:%S %p' in the 'Time format' box")
    assert in_wizard_words(expected_text(None)).endswith("(the 'Time format' box is empty, so ISO is expected)")
    assert in_wizard_words(expected_text("%Y")).endswith("(the 'Time format' box)")
    for text in [*said.values(), in_wizard_words(time_hint(pd.Series(["garbage"]), "%Y"))]:
        assert "[coordinates]" not in text and "[reported_beat]" not in text and "time_format" not in text
        assert "zero_pad" not in text and "reject_pileups" not in text
