"""Ping files: CSV, Parquet and GPX; mappings and rosters; every row accounted for; chunks and order do not matter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.pings import (
    PingMapping,
    project_pings,
    read_ping_mapping,
    read_pings,
    read_roster,
)
from beatmap.settings import Settings
from beatmap.tracks import TrackRules, credit_tracks
from tests.conftest import X0, Y0
from tests.track_helpers import PITCH, row_of_blocks

SETTINGS = Settings()
UTM = "EPSG:32616"


@pytest.fixture(scope="module")
def blocks():
    return row_of_blocks()


def lonlat(x: float, y: float) -> tuple[float, float]:
    lon, lat = transform_xy(np.array([X0 + x]), np.array([Y0 + y]), UTM, WGS84)
    return float(lon[0]), float(lat[0])


def write(path, header: str, rows: list[str]):
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_every_row_is_used_duplicate_or_rejected_with_its_reason(tmp_path):
    lon, lat = lonlat(50, 50)
    far_lon, far_lat = lonlat(50_000, 50)
    rows = [
        f"2026-03-02T14:00:00Z,{lat},{lon},r1,,,5,",  # 1 used
        f"2026-03-02T14:00:30Z,{lat},{lon},r1,o1,U1,5,1.2",  # 2 used
        f"2026-03-02T14:00:30Z,{lat},{lon},r1,,,5,",  # 3 duplicate of row 2
        f",{lat},{lon},r1,,,,",  # 4 no time
        f"yesterday,{lat},{lon},r1,,,,",  # 5 unreadable time
        f"2026-03-02T14:01:00Z,abc,{lon},r1,,,,",  # 6 bad coordinates
        "2026-03-02T14:01:30Z,0,0,r1,,,,",  # 7 placeholder
        f"2026-03-02T14:02:00Z,{lat},{lon},r1,,,80,",  # 8 accuracy worse than 50 m
        f"2026-03-02T14:02:30Z,{far_lat},{far_lon},r1,,,,",  # 9 50 km in 30 s
        f"2026-03-02T14:03:00Z,{lat},{lon},r1,,,,",  # 10 used
        f"2026-03-02T14:03:00Z,{lat},{lon},,,,,",  # 11 no device
        f"2026-03-02T14:03:00Z,95,{lon},r2,,,,",  # 12 latitude out of range
    ]
    path = write(tmp_path / "p.csv", "ts,lat,lon,device_id,officer_id,unit_id,accuracy_m,speed_mps", rows)
    read = read_pings([path], settings=SETTINGS, chunk_rows=4)
    assert read.pings["row"].tolist() == [1, 2, 10]
    reasons = dict(zip(read.rejects["row"], read.rejects["reason"], strict=True))
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 11, 12]
    assert reasons[3].startswith("duplicate")
    assert reasons[4] == "no time"
    assert "yesterday" in reasons[5]
    assert reasons[6].startswith("bad coordinates")
    assert "placeholder" in reasons[7]
    assert "accuracy" in reasons[8]
    assert "impossible jump" in reasons[9]
    assert reasons[11] == "no device_id"
    assert "range" in reasons[12]
    counts = read.counts.iloc[0]
    assert (counts["rows"], counts["used"], counts["duplicates"], counts["rejected"]) == (12, 3, 1, 8)
    assert read.pings["unit_id"].isna().tolist() == [True, False, True]
    assert read.pings["unit_id"].iloc[1] == "U1"
    assert read.pings["ts"].tolist()[:2] == [
        int(pd.Timestamp("2026-03-02 14:00", tz="UTC").timestamp()),
        int(pd.Timestamp("2026-03-02 14:00:30", tz="UTC").timestamp()),
    ]


def test_a_mapping_reads_xy_in_a_crs_local_times_and_declares_vehicles(tmp_path):
    mapping_path = tmp_path / "avl.toml"
    mapping_path.write_text("""
[source]
name = "avl"
timezone = "America/Chicago"
time_format = "%m/%d/%Y %H:%M:%S"
device_kind = "vehicle"

[columns]
ts = "FixTime"
device_id = "Car"

[coordinates]
x = "E"
y = "N"
crs = "EPSG:32616"
reject = [[1, 1]]
""")
    mapping = read_ping_mapping(mapping_path)
    path = write(
        tmp_path / "avl.csv",
        "FixTime,Car,E,N",
        [f"03/02/2026 08:00:00,car-1,{X0 + 50},{Y0 + 50}", "03/02/2026 08:00:10,car-1,1,1"],
    )
    read = read_pings([path], settings=SETTINGS, mapping=mapping)
    assert read.pings["ts"].tolist() == [int(pd.Timestamp("2026-03-02 14:00", tz="UTC").timestamp())]
    assert read.pings["device_kind"].astype(str).tolist() == ["vehicle"]
    assert read.pings["lon"].iloc[0] == pytest.approx(lonlat(50, 50)[0])
    assert "placeholder" in read.rejects["reason"].iloc[0]
    bad = tmp_path / "bad.toml"
    bad.write_text('[source]\ndevice_kind = "horse"\n[colums]\nts = "t"\n')
    with pytest.raises(InputError, match=r"horse.*|colums"):
        read_ping_mapping(bad)


def test_a_missing_column_names_the_file_and_the_fix(tmp_path):
    path = write(tmp_path / "p.csv", "time,lat,lon,device_id", ["2026-03-02T14:00:00Z,41.8,-87.6,r1"])
    with pytest.raises(InputError, match=r"p\.csv: no column ts.*--mapping"):
        read_pings([path], settings=SETTINGS)


def test_a_roster_maps_devices_to_units_and_officers_over_time(tmp_path, blocks):
    roster_path = write(
        tmp_path / "roster.csv",
        "device_id,unit_id,officer_id,from,to",
        ["r1,U1,o1,2026-03-02 07:00,2026-03-02 08:00", "r1,U2,o2,2026-03-02 08:00,", "car-3,U2,,,"],
    )
    roster = read_roster(roster_path, timezone="America/Chicago")
    lon, lat = lonlat(50, 50)
    rows = [f"2026-03-02T13:{m:02d}:00Z,{lat},{lon},r1,," for m in range(50, 60)]
    rows += [f"2026-03-02T14:{m:02d}:00Z,{lat},{lon},r1,," for m in range(10)]
    rows += [f"2026-03-02T14:{m:02d}:00Z,{lat},{lon},r1,o9,U9" for m in range(10, 15)]  # the ping's own wins
    path = write(tmp_path / "p.csv", "ts,lat,lon,device_id,officer_id,unit_id", rows)
    read = read_pings([path], settings=SETTINGS, roster=roster)
    units = read.pings["unit_id"].astype(object).tolist()
    assert units == ["U1"] * 10 + ["U2"] * 10 + ["U9"] * 5
    credit = credit_tracks(project_pings(read.pings, blocks.crs), blocks, rules=TrackRules())
    by_officer = credit.presence.groupby("officer_id")["seconds"].sum().to_dict()
    assert by_officer == {"o1": 600, "o2": 600, "o9": 240}
    with pytest.raises(InputError, match=r"roster\.csv.*row 1"):
        read_roster(write(tmp_path / "roster.csv", "device_id,from,to", ["r1,soon,"]), timezone="UTC")


def gpx(name: str | None, points: list[tuple[str, float, float]]) -> str:
    pts = "\n".join(f'<trkpt lat="{lat}" lon="{lon}"><time>{t}</time></trkpt>' for t, lat, lon in points)
    title = f"<name>{name}</name>" if name else ""
    return (
        '<?xml version="1.0"?>\n<gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1">'
        f"<trk>{title}<trkseg>{pts}</trkseg></trk></gpx>"
    )


def test_a_gpx_file_takes_its_device_from_the_track_name_or_the_mapping(tmp_path, blocks):
    lon, lat = lonlat(50, 50)
    points = [(f"2026-03-02T14:{m:02d}:00Z", lat, lon) for m in range(13)] + [("", lat, lon)]
    path = tmp_path / "walk.gpx"
    path.write_text(gpx("radio-44", points))
    read = read_pings([path], settings=SETTINGS, chunk_rows=5)
    assert set(read.pings["device_id"].astype(str)) == {"radio-44"}
    assert read.rejects[["row", "reason"]].values.tolist() == [[14, "no time"]]
    credit = credit_tracks(project_pings(read.pings, blocks.crs), blocks, rules=TrackRules())
    assert credit.visits["block_id"].tolist() == ["b0"]
    assert int(credit.visits["seconds"].iloc[0]) == 720
    path.write_text(gpx(None, points[:3]))
    read = read_pings([path], settings=SETTINGS, mapping=PingMapping(device_id="phone-2"))
    assert set(read.pings["device_id"].astype(str)) == {"phone-2"}


def test_parquet_reads_like_csv(tmp_path):
    lon, lat = lonlat(50, 50)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-03-02 14:00", periods=5, freq="30s", tz="UTC"),
            "lat": lat,
            "lon": lon,
            "device_id": "r1",
            "accuracy_m": [5.0, 5.0, 99.0, 5.0, np.nan],
        }
    )
    frame.to_parquet(tmp_path / "p.parquet")
    frame.assign(ts=frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(tmp_path / "p.csv", index=False)
    from_parquet = read_pings([tmp_path / "p.parquet"], settings=SETTINGS, chunk_rows=2)
    from_csv = read_pings([tmp_path / "p.csv"], settings=SETTINGS)
    assert from_parquet.pings["ts"].tolist() == from_csv.pings["ts"].tolist()
    assert from_parquet.pings["row"].tolist() == [1, 2, 4, 5]
    assert from_parquet.rejects["row"].tolist() == [3]


def test_times_across_the_autumn_change(tmp_path, blocks):
    # Offsets make the repeated hour unambiguous: two hours of pings are two hours of presence.
    lon, lat = lonlat(50, 50)
    times = pd.date_range("2026-11-01 05:30", "2026-11-01 07:30", freq="60s", tz="UTC").tz_convert("America/Chicago")
    rows = [f"{t.isoformat()},{lat},{lon},r1" for t in times]
    path = write(tmp_path / "p.csv", "ts,lat,lon,device_id", rows)
    read = read_pings([path], settings=SETTINGS)
    assert len(read.pings) == len(times) == 121
    credit = credit_tracks(project_pings(read.pings, blocks.crs), blocks, rules=TrackRules())
    assert credit.presence["seconds"].sum() == 7200
    # Without offsets, the repeated local hour cannot be told apart: its second pass is counted as duplicates,
    # each with its row, rather than silently doubled.
    naive = write(
        tmp_path / "n.csv", "ts,lat,lon,device_id", [f"{t.strftime('%Y-%m-%d %H:%M:%S')},{lat},{lon},r1" for t in times]
    )
    read = read_pings([naive], settings=SETTINGS)
    counts = read.counts.iloc[0]
    assert counts["used"] + counts["duplicates"] + counts["rejected"] == 121
    # 07:00-07:30 UTC is 01:00-01:30 local the second time: 31 pings at local times already read.
    assert counts["duplicates"] == 31


def test_shuffled_rows_read_in_small_chunks_give_the_same_aggregates(tmp_path, blocks):
    rng = np.random.default_rng(12)
    frames = []
    for d in range(3):
        t = np.cumsum(rng.integers(5, 400, 120))
        x = np.cumsum(rng.normal(0, 15, 120)) + 60 + d * PITCH * 2
        y = np.clip(np.cumsum(rng.normal(0, 10, 120)) + 50, -20, 120)
        lon, lat = transform_xy(X0 + x, Y0 + y, UTM, WGS84)
        frames.append(
            pd.DataFrame(
                {
                    "ts": pd.to_datetime(1_772_460_000 + t, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lat": lat,
                    "lon": lon,
                    "device_id": f"d{d}",
                    "unit_id": f"U{d % 2}",
                }
            )
        )
    ordered = pd.concat(frames, ignore_index=True)
    ordered.to_csv(tmp_path / "sorted.csv", index=False)
    ordered.sample(frac=1, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False)
    calls = pd.DataFrame(
        {
            "unit_id": ["U0"],
            "occurred_at": [pd.Timestamp(1_772_470_000, unit="s", tz="UTC")],
            "ended_at": [pd.Timestamp(1_772_480_000, unit="s", tz="UTC")],
        }
    )
    results = []
    for name, chunk in (("sorted.csv", 100_000), ("shuffled.csv", 7)):
        read = read_pings([tmp_path / name], settings=SETTINGS, chunk_rows=chunk)
        assert read.counts["used"].iloc[0] == len(read.pings)
        results.append(credit_tracks(project_pings(read.pings, blocks.crs), blocks, rules=TrackRules(), calls=calls))
    pd.testing.assert_frame_equal(results[0].presence, results[1].presence)
    pd.testing.assert_frame_equal(results[0].devices, results[1].devices)
    assert results[0].presence["seconds"].sum() > 0
