"""The mapping wizard's logic: guesses from first rows, the live time-format check, building, saving as TOML
(read back by the importer), and the preview of the first rows."""

from __future__ import annotations

import pandas as pd
import pytest

from beatmap import schema as S
from beatmap.activity import read_mapping
from beatmap.errors import InputError
from beatmap.mapping import (
    build_mapping,
    check_time_format,
    guess,
    mapping_toml,
    parse_points,
    preview,
    read_head,
)


def head_of(tmp_path, text: str) -> pd.DataFrame:
    path = tmp_path / "export.csv"
    path.write_text(text)
    return read_head(path)


def test_guesses_a_socrata_export(tmp_path):
    head = head_of(
        tmp_path,
        "incident_id,incident_datetime,incident_category,police_beat,latitude,longitude\n"
        "A1,2019-08-04T00:00:00.000,THEFT,1634,41.94,-87.74\n"
        "A2,2019-08-05T01:00:00.000,BATTERY,613,41.74,-87.64\n",
    )
    g = guess(head)
    assert g.columns == {
        S.OCCURRED_AT: "incident_datetime",
        S.LAT: "latitude",
        S.LON: "longitude",
        S.SOURCE_ID: "incident_id",
        S.SUBTYPE: "incident_category",
        S.REPORTED_BEAT: "police_beat",
    }
    assert g.time_format is None and g.coordinates == "latlon" and g.kind_column is None  # ISO: no format needed
    assert any("ISO 8601" in note for note in g.notes)


def test_guesses_a_cad_export_with_us_times_and_state_plane_xy(tmp_path):
    head = head_of(
        tmp_path,
        "NOPD_Item,TypeText,TimeCreate,MapX,MapY,SelfInitiated,Beat\n"
        "A1,AREA CHECK,1/1/2022 1:07,3668610,534016,Y,5Q02\n"
        "A2,THEFT,1/2/2022 13:15,3670000,535000,N,7L03\n",
    )
    g = guess(head)
    assert g.columns[S.OCCURRED_AT] == "TimeCreate" and g.time_format == "%m/%d/%Y %H:%M"
    assert (g.coordinates, g.x, g.y) == ("xy", "MapX", "MapY")
    assert g.columns[S.SOURCE_ID] == "NOPD_Item" and g.columns[S.SELF_INITIATED] == "SelfInitiated"


def test_time_format_check_reads_the_first_rows():
    values = pd.Series(["01/01/2012 12:00:00 AM", "2012-01-01T00:00:00.000", ""])
    check = check_time_format(values, "%m/%d/%Y %I:%M:%S %p")
    assert (check.read, check.total, check.bad_examples, check.ok) == (1, 2, ("2012-01-01T00:00:00.000",), False)
    assert check_time_format(values.iloc[1:], None).ok


def test_built_mapping_saved_as_toml_is_read_by_the_importer(tmp_path):
    mapping = build_mapping(
        name="cad",
        occurred_at="TimeCreate",
        time_format="%m/%d/%Y %H:%M",
        x="MapX",
        y="MapY",
        crs="EPSG:3452",
        placeholders=parse_points("37369000,3513814; 0,0"),
        reject_pileups=True,
        optional={S.SOURCE_ID: "NOPD_Item"},
        kind_column="TypeText",
        kind_values={"AREA CHECK": "foot_patrol", "THEFT": "enforcement", '"quoted" value': "other"},
        kind_default="enforcement",
        zero_pad=4,
    )
    path = tmp_path / "cad.toml"
    path.write_text(mapping_toml(mapping, comment="built on the Import page"))
    read = read_mapping(path)
    assert (read.name, read.time_format, read.x, read.y, read.xy_crs) == (
        "cad",
        "%m/%d/%Y %H:%M",
        "MapX",
        "MapY",
        "EPSG:3452",
    )
    assert read.placeholders == ((37369000.0, 3513814.0), (0.0, 0.0)) and read.reject_pileups
    assert read.columns == {S.OCCURRED_AT: "TimeCreate", S.SOURCE_ID: "NOPD_Item"} and read.beat_zero_pad == 4
    rules = {rule.kind: rule.values for rule in read.kind_rules}
    assert rules == {"foot_patrol": ("AREA CHECK",), "enforcement": ("THEFT",), "other": ('"quoted" value',)}
    assert read.kind_default == "enforcement"


def test_bad_choices_are_named():
    with pytest.raises(InputError, match="two numbers x,y"):
        parse_points("1,2; banana")
    with pytest.raises(InputError, match="kind"):
        build_mapping(name=None, occurred_at="t", time_format=None, lat="a", lon="b", kind_default="nap")


def test_preview_shows_points_and_the_rows_it_would_reject(tmp_path):
    head = head_of(
        tmp_path,
        "when,latitude,longitude,what\n2026-03-01T10:00,41.87,-87.63,x\n"
        "03/01/2026,41.87,-87.63,x\n2026-03-02T10:00,,,x\n",
    )
    mapping = build_mapping(
        name="t", occurred_at="when", time_format=None, lat="latitude", lon="longitude", kind_default="enforcement"
    )
    seen = preview(head, mapping, timezone="America/Chicago")
    assert seen.rows == 3 and len(seen.points) == 1
    assert list(seen.reasons.values()) == [1, 1] and any("time_format" in r for r in seen.reasons)
    with pytest.raises(InputError, match="no column 'nope'"):
        preview(head, {**mapping, "columns": {**mapping["columns"], "occurred_at": "nope"}}, timezone="UTC")
    with pytest.raises(InputError, match="CRS"):
        preview(
            head,
            build_mapping(
                name="t", occurred_at="when", time_format=None, x="latitude", y="longitude", kind_default="enforcement"
            ),
            timezone="UTC",
        )


def test_the_preview_says_when_it_shows_rows_as_windows_1252():
    text = "occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.8,-87.6,foot_patrol,José\n"
    head = read_head(text.encode("cp1252"), name="w.csv")
    assert head["notes"].tolist() == ["José"] and head.attrs["encoding"] == "cp1252"
    assert read_head(text.encode(), name="u.csv").attrs["encoding"] == "utf-8-sig"
