"""Activity files: whole-file errors, row-by-row rejects with reasons, times, mappings."""

from __future__ import annotations

import textwrap

import pandas as pd
import pytest

from beatmap.activity import (
    Mapping,
    check_columns,
    encoding_note,
    parse_activity,
    read_activity_csv,
    read_mapping,
)
from beatmap.errors import InputError

NOW = pd.Timestamp("2026-06-01", tz="UTC")


def write(tmp_path, text: str, name: str = "activity.csv"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


CHICAGO = (-87.95, 41.6, -87.5, 42.05)


def parse(tmp_path, text: str, mapping: Mapping | None = None, tz: str = "America/Chicago"):
    mapping = mapping if mapping is not None else Mapping()
    raw = read_activity_csv(write(tmp_path, text))
    check_columns(raw, mapping, source="activity.csv")
    return parse_activity(raw, mapping, timezone=tz, source="test", now=NOW, area_bounds=CHICAGO)


def test_good_rows_become_utc_records(tmp_path):
    records, rejects = parse(
        tmp_path,
        """
        occurred_at,lat,lon,kind,officer_id,duration_min
        2026-03-02T14:30:00,41.88,-87.63,foot_patrol,O1,20
        2026-03-02T14:30:00-05:00,41.88,-87.63,Community Visit,O2,
        2026-03-02 09:00,41.88,-87.63,ENFORCEMENT,,
    """,
    )
    assert rejects.empty
    assert records["occurred_at"].tolist() == [
        pd.Timestamp("2026-03-02 20:30", tz="UTC"),
        pd.Timestamp("2026-03-02 19:30", tz="UTC"),
        pd.Timestamp("2026-03-02 15:00", tz="UTC"),
    ]
    assert records["kind"].tolist() == ["foot_patrol", "community_visit", "enforcement"]
    assert records.index.tolist() == [1, 2, 3]
    assert records["fingerprint"].is_unique


def test_bad_rows_are_rejected_with_row_and_reason(tmp_path):
    records, rejects = parse(
        tmp_path,
        """
        occurred_at,lat,lon,kind
        2026-03-02T14:30,41.88,-87.63,foot_patrol
        yesterday,41.88,-87.63,foot_patrol
        2026-03-02T14:30,forty,-87.63,foot_patrol
        2026-03-02T14:30,141.88,-87.63,foot_patrol
        2026-03-02T14:30,-87.63,41.88,foot_patrol
        2026-03-02T14:30,0,0,foot_patrol
        2026-03-02T14:30,41.88,-87.63,jogging
        2026-03-02T14:30,,,foot_patrol
        2030-01-01T00:00,41.88,-87.63,foot_patrol
        ,41.88,-87.63,foot_patrol
        2026-03-02T14:30,41.88,-187.63,community_visit
    """,
    )
    assert records.index.tolist() == [1]
    reasons = dict(zip(rejects["row"], rejects["reason"], strict=True))
    assert set(reasons) == set(range(2, 12))
    assert "occurred_at 'yesterday' is not an ISO 8601" in reasons[2]
    assert "lat 'forty' is not a number" in reasons[3]
    assert "out of range" in reasons[4] or "outside the range" in reasons[4]
    assert "swapped" in reasons[5]
    assert "placeholder" in reasons[6]
    assert "kind 'jogging' is not one of" in reasons[7]
    assert "no coordinates" in reasons[8]
    assert "in the future" in reasons[9]
    assert "occurred_at is empty" in reasons[10]
    assert "outside the range" in reasons[11]
    assert rejects["raw"].iloc[0]["occurred_at"] == "yesterday"


def test_every_problem_of_a_row_is_listed(tmp_path):
    _, rejects = parse(
        tmp_path,
        """
        occurred_at,lat,lon,kind
        soon,x,y,walk
    """,
    )
    reason = rejects["reason"].iloc[0]
    assert all(part in reason for part in ("occurred_at", "lat 'x'", "lon 'y'", "kind 'walk'"))


def test_daylight_saving_edges_are_deterministic(tmp_path):
    records, rejects = parse(
        tmp_path,
        """
        occurred_at,lat,lon,kind
        2025-11-02T01:30,41.88,-87.63,foot_patrol
        2025-03-09T02:30,41.88,-87.63,foot_patrol
    """,
    )
    assert rejects.empty
    # The repeated 01:30 is read as its first (CDT, UTC-5) occurrence; 02:30 in the spring gap moves to 03:00 CDT.
    assert records["occurred_at"].tolist() == [
        pd.Timestamp("2025-11-02 06:30", tz="UTC"),
        pd.Timestamp("2025-03-09 08:00", tz="UTC"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("occurred_at,lat,lon,kind\n", "no rows"),
        ("just one column\nvalue\n", "only one column"),
        ("\x00\x01PK binary", "not a text CSV"),
    ],
)
def test_unusable_files(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(InputError, match=message):
        read_activity_csv(path)


def test_missing_columns_are_named_with_the_fix(tmp_path):
    raw = read_activity_csv(write(tmp_path, "when,latitude,longitude,type\n2026-01-01,41,-87,x\n"))
    with pytest.raises(InputError, match=r"missing column\(s\) kind, lat, lon, occurred_at.*--mapping"):
        check_columns(raw, Mapping(), source="activity.csv")


def test_other_columns_are_ignored_and_listed(tmp_path):
    raw = read_activity_csv(write(tmp_path, "occurred_at,lat,lon,kind,shoe_size\n2026-01-01,41,-87,other,9\n"))
    assert check_columns(raw, Mapping(), source="a.csv") == ["shoe_size"]


def test_mapping_with_xy_rules_and_placeholders(tmp_path):
    mapping = read_mapping(
        write(
            tmp_path,
            """
        [source]
        name = "cad"
        time_format = "%m/%d/%Y %H:%M"
        [columns]
        occurred_at = "TimeCreate"
        reported_beat = "Beat"
        [coordinates]
        x = "MapX"
        y = "MapY"
        crs = "EPSG:3435"
        reject = [[37369000, 3513814]]
        [reported_beat]
        zero_pad = 4
        [kind]
        default = "enforcement"
        [[kind.rules]]
        column = "Type"
        equals = ["area check"]
        kind = "foot_patrol"
        [[kind.rules]]
        column = "Type"
        matches = "^COMMUNITY"
        kind = "community_visit"
    """,
            "m.toml",
        )
    )
    records, rejects = parse(
        tmp_path,
        """
        TimeCreate,MapX,MapY,Type,Beat
        1/2/2026 1:07,1176142,1903314,AREA CHECK,111
        1/2/2026 13:07,1176142,1903314,COMMUNITY MEETING,111
        1/2/2026 13:07,1176142,1903314,THEFT,111
        1/2/2026 13:07,37369000,3513814,THEFT,111
    """,
        mapping,
    )
    assert records["kind"].tolist() == ["foot_patrol", "community_visit", "enforcement"]
    assert records["reported_beat"].tolist() == ["0111"] * 3
    assert records["lat"].iloc[0] == pytest.approx(41.890, abs=1e-3)
    assert records["lon"].iloc[0] == pytest.approx(-87.6286, abs=1e-3)
    assert records["occurred_at"].iloc[0] == pd.Timestamp("2026-01-02 07:07", tz="UTC")
    assert rejects["row"].tolist() == [4] and "placeholder" in rejects["reason"].iloc[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[colums]\noccurred_at = 'x'\n", "unknown section"),
        ("[kind]\ndefault = 'patrol'\n", "default 'patrol' is not one of"),
        ("[coordinates]\nx = 'X'\n", "needs both x and y"),
        ("[coordinates]\nx = 'X'\ny = 'Y'\ncrs = 'EPSG:99999999'\n", "not a coordinate reference system"),
        ("[[kind.rules]]\ncolumn = 'T'\nkind = 'foot_patrol'\n", "equals"),
        ("[source]\ntimezone = 'Mars/Olympus'\n", "not an IANA zone"),
        ("this is = = not toml", "not a valid TOML"),
    ],
)
def test_bad_mappings_name_the_problem(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        read_mapping(write(tmp_path, text, "bad.toml"))


def test_day_first_dates_are_local_days_not_utc(tmp_path):
    """With time_format %d-%m-%Y the "-2026" is not a UTC offset: the date is a local day."""
    records, rejects = parse(
        tmp_path, "occurred_at,lat,lon,kind\n05-03-2026,41.88,-87.63,foot_patrol\n", Mapping(time_format="%d-%m-%Y")
    )
    assert rejects.empty
    assert records["occurred_at"].iloc[0] == pd.Timestamp("2026-03-05T06:00", tz="UTC")  # midnight in Chicago


def test_a_latin1_row_in_a_utf8_file_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"occurred_at,lat,lon,kind,notes\n"
        + "2026-03-01T10:00,41.8,-87.6,foot_patrol,José\n".encode()
        + "2026-03-02T10:00,41.8,-87.6,foot_patrol,Müller\n".encode("latin-1")
    )
    with pytest.raises(InputError, match=r"line 3 is not UTF-8 while other lines are.*Save the whole file as UTF-8"):
        read_activity_csv(path)
    path.write_bytes("occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.8,-87.6,foot_patrol,José\n".encode("cp1252"))
    assert read_activity_csv(path)["notes"].tolist() == ["José"]  # a whole Windows file is read as one
    path.write_bytes("occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.8,-87.6,foot_patrol,José\n".encode())
    assert read_activity_csv(path)["notes"].tolist() == ["José"]


def test_a_file_with_no_utf8_is_read_as_windows_1252_and_the_guess_is_reported(tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes("occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.8,-87.6,foot_patrol,José\n".encode("cp1252"))
    raw = read_activity_csv(path)
    note = encoding_note(raw, file="windows.csv")
    assert raw["notes"].tolist() == ["José"]
    assert note is not None and note.startswith("windows.csv: read as Windows-1252 (no UTF-8 found)")
    for text in ("José", "plain ASCII"):  # UTF-8 (and ASCII, which is UTF-8) is no guess: nothing to report
        path.write_bytes(f"occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.8,-87.6,foot_patrol,{text}\n".encode())
        assert encoding_note(read_activity_csv(path), file="windows.csv") is None


def test_a_repeated_header_is_refused_naming_the_column(tmp_path):
    path = tmp_path / "twice.csv"
    path.write_text("occurred_at,lat,lon,kind,kind\n2026-03-01T10:00,41.8,-87.6,foot_patrol,enforcement\n")
    with pytest.raises(InputError, match="names column\\(s\\) 'kind' more than once"):
        read_activity_csv(path)


def test_a_nul_byte_anywhere_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "nul.csv"
    rows = [f"2026-03-01T10:00,41.8,-87.6,foot_patrol,O{i}" for i in range(1, 600)]  # past the first 8 KB
    rows[500] = "2026-03-01T10:00,41.8,-87.6,foot_patrol,O1\x00x"
    path.write_text("occurred_at,lat,lon,kind,officer_id\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError, match="line 502 holds a NUL byte"):
        read_activity_csv(path)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8", "cp1252"])
def test_every_reader_gives_the_same_text_cells(tmp_path, encoding):
    # Quotes, a line break inside a cell, blank cells, a blank line, a BOM or a non-UTF-8 accent.
    text = (
        'occurred_at,lat,lon,kind,notes\r\n2026-03-01T10:00,41.88,-87.63,foot_patrol,"porch, then ""school"""\r\n'
        '\r\n2026-03-01T11:00,,-87.63,,"two\nlines"\r\n2026-03-01T12:00,41.88,-87.63,other,caf\u00e9\r\n'
    )
    path = tmp_path / "cells.csv"
    path.write_bytes(text.encode(encoding))
    raw = read_activity_csv(path)
    assert raw.index.tolist() == [1, 2, 3]
    assert raw["notes"].tolist() == ['porch, then "school"', "two\nlines", "caf\u00e9"]
    assert raw["lat"].tolist() == ["41.88", "", "41.88"] and raw["kind"].tolist()[1] == ""


def test_a_ragged_row_is_named_by_the_careful_reader(tmp_path):
    path = write(
        tmp_path,
        """\
        occurred_at,lat,lon,kind
        2026-03-01T10:00,41.88,-87.63,foot_patrol
        2026-03-01T11:00,41.88,-87.63,foot_patrol,extra,cells
        """,
    )
    with pytest.raises(InputError, match="well-formed CSV"):
        read_activity_csv(path)
