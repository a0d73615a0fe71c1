"""import-pings: presence aggregates in the store, CAD calls from the store, importing twice, the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beatmap import store
from beatmap.cli import main
from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.ingest import import_activity
from beatmap.presence import import_pings, quality_table
from beatmap.store import presence as presence_store
from tests.conftest import X0, Y0, import_rows, load_two_beats, store_db

T0 = pd.Timestamp("2026-03-02 14:00", tz="UTC")


def ping_rows(
    x: float, y: float, start: pd.Timestamp, minutes: int, *, device: str, unit: str = "", step_s: int = 30
) -> list[str]:
    lon, lat = transform_xy(np.array([X0 + x]), np.array([Y0 + y]), "EPSG:32616", WGS84)
    times = pd.date_range(start, start + pd.Timedelta(minutes=minutes), freq=f"{step_s}s")
    return [f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{lat[0]},{lon[0]},{device},{unit}" for t in times]


def write_pings(path, rows: list[str]):
    path.write_text("\n".join(["ts,lat,lon,device_id,unit_id", *rows]) + "\n")
    return path


def test_import_stores_presence_and_a_second_import_changes_nothing(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    # A 20-minute stay in beat A (block around (100, 100)); unit U1 is on a call for its second half.
    import_rows(
        engine,
        tmp_path,
        [
            f"{(T0 + pd.Timedelta(minutes=10)).isoformat()},"
            f"{_lat(100, 100)},{_lon(100, 100)},enforcement,U1,"
            f"{(T0 + pd.Timedelta(minutes=20)).isoformat()}"
        ],
        settings=settings,
        header="occurred_at,lat,lon,kind,unit_id,ended_at",
        name="cad.csv",
    )
    path = write_pings(
        tmp_path / "p.csv", [*ping_rows(100, 100, T0, 20, device="r1", unit="U1"), "2026-03-02T14:05:00Z,,,r1,U1"]
    )
    summary = import_pings(engine, [path], settings=settings, chunk_rows=10)
    first = summary.files[0]
    assert (first.rows, first.used, first.duplicates, first.rejected) == (42, 41, 0, 1)
    assert summary.presence_seconds == 1200
    assert summary.enforcement_seconds == 600
    assert summary.track_visits == 1
    stored = presence_store.read_presence(engine)
    assert stored["seconds"].sum() == 1200
    assert stored.groupby("purpose")["seconds"].sum().to_dict() == {"enforcement": 600, "non_enforcement": 600}
    assert stored["block_id"].nunique() == 1
    visits = presence_store.read_track_visits(engine)
    assert visits["seconds"].tolist() == [600]
    rejects = store.read_rejects(engine, batch_id=first.batch_id)
    assert rejects["row_number"].tolist() == [42]

    again = import_pings(engine, [path], settings=settings)
    assert again.files[0].already_imported == f"batch {first.batch_id}"
    assert presence_store.read_presence(engine)["seconds"].sum() == 1200
    assert len(presence_store.read_track_visits(engine)) == 1


def test_files_of_one_import_are_one_track_and_each_is_its_own_batch(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1")
    a = write_pings(tmp_path / "a.csv", rows[:20])
    b = write_pings(tmp_path / "b.csv", rows[20:])
    summary = import_pings(engine, [b, a], settings=settings)
    assert [f.used for f in summary.files] == [21, 20]
    assert len({f.batch_id for f in summary.files}) == 2
    # The interval from a's last ping to b's first is credited: 20 minutes, not 19.5.
    assert presence_store.read_presence(engine)["seconds"].sum() == 1200
    quality = quality_table(engine, settings=settings)
    assert quality[["device_id", "day", "pings"]].values.tolist() == [["r1", "2026-03-02", 41]]
    assert quality["median_interval_s"].iloc[0] == pytest.approx(30)


def test_import_needs_areas(engine, tmp_path, settings):
    path = write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 1, device="r1"))
    with pytest.raises(InputError, match="load beats and blocks first"):
        import_pings(engine, [path], settings=settings)


def test_command_line_import_pings_and_gps_quality(tmp_path, settings, capsys):
    db = store_db(tmp_path / "cli.db")
    engine = store.open_store(db)
    load_two_beats(engine, tmp_path, settings=settings)
    engine.dispose()
    path = write_pings(
        tmp_path / "p.csv",
        ping_rows(100, 100, T0, 12, device="r1") + ping_rows(300, 100, T0 + pd.Timedelta(hours=3), 5, device="r1"),
    )
    config = tmp_path / "settings.toml"  # the raw ping archive's folder (a PostgreSQL store needs one named)
    config.write_text(f'[department]\ntimezone = "America/Chicago"\n[gps]\nping_archive_dir = "{tmp_path / "pa"}"\n')
    assert main(["--db", db, "--settings", str(config), "import-pings", str(path), "--json"]) == 0
    assert list((tmp_path / "pa").glob("batch_*.parquet"))
    out = json.loads(capsys.readouterr().out)
    assert out["files"][0]["used"] == 25 + 11
    assert out["presence_seconds"] == 720 + 300 + 300
    assert out["gap_seconds"] == 3 * 3600 - 720 - 300
    assert main(["--db", db, "--settings", str(config), "import-pings", str(path)]) == 0
    assert "already imported" in capsys.readouterr().out
    assert main(["--db", db, "gps-quality", "--out", str(tmp_path / "q.csv")]) == 0
    quality = pd.read_csv(tmp_path / "q.csv")
    assert quality["pings"].tolist() == [36]
    assert bool(quality["silent"].iloc[0]) is True  # three hours without a fix, over silent_minutes


def _lon(x: float, y: float) -> float:
    return float(transform_xy(np.array([X0 + x]), np.array([Y0 + y]), "EPSG:32616", WGS84)[0][0])


def _lat(x: float, y: float) -> float:
    return float(transform_xy(np.array([X0 + x]), np.array([Y0 + y]), "EPSG:32616", WGS84)[1][0])


def test_coverage_gains_presence_minutes_and_track_visits_count_as_visits(engine, tmp_path, settings):
    from beatmap.report import block_coverage, window_from_store

    load_two_beats(engine, tmp_path, settings=settings)
    # Officer o1 (unit U1) stays 20 minutes on the block at (100, 100), half of it on a call, and logs a visit
    # during the stay; radio r2 (officer o2) stays 15 minutes on the block at (300, 100); car c3 idles 10 minutes
    # on the block at (100, 300).
    call_end = (T0 + pd.Timedelta(minutes=10)).isoformat()
    import_rows(
        engine,
        tmp_path,
        [
            f"{T0.isoformat()},{_lat(100, 100)},{_lon(100, 100)},enforcement,U1,,{call_end}",
            f"{(T0 + pd.Timedelta(minutes=15)).isoformat()},{_lat(100, 100)},{_lon(100, 100)},foot_patrol,,o1,",
        ],
        settings=settings,
        header="occurred_at,lat,lon,kind,unit_id,officer_id,ended_at",
        name="log.csv",
    )
    rows = ping_rows(100, 100, T0, 20, device="r1", unit="U1") + ping_rows(300, 100, T0, 15, device="r2")
    rows += ping_rows(100, 300, T0, 10, device="c3")
    path = tmp_path / "p.csv"
    path.write_text("\n".join(["ts,lat,lon,device_id,unit_id", *rows]) + "\n")
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "device_id,unit_id,officer_id,from,to,device_kind\nr1,U1,o1,,,radio\nr2,U2,o2,,,radio\nc3,U3,,,,vehicle\n"
    )
    import_pings(engine, [path], settings=settings, roster_path=roster)
    window = window_from_store(engine, settings=settings)
    cov = block_coverage(engine, window=window, settings=settings).set_index("block_id")
    stay, walk, car = (
        cov.index[cov.geometry.contains(_point(x, y))][0] for x, y in ((100, 100), (300, 100), (100, 300))
    )
    assert cov.loc[stay, ["presence_minutes", "enforcement_minutes", "vehicle_minutes"]].tolist() == [10, 10, 0]
    assert cov.loc[car, ["presence_minutes", "enforcement_minutes", "vehicle_minutes"]].tolist() == [0, 0, 10]
    assert cov.loc[walk, "presence_minutes"] == 15
    # o1's stay holds a logged visit: one visit, not two.  o2's stay is a visit of its own: the block is not
    # flagged unvisited.
    assert cov.loc[stay, ["foot_patrols", "track_visits", "visits"]].tolist() == [1, 0, 1]
    assert cov.loc[walk, ["track_visits", "visits"]].tolist() == [1, 1]
    assert cov.loc[walk, "flag"] != "unvisited"
    assert cov.loc[car, "flag"] == "unvisited"
    # Twenty minutes of GPS in a window of days is poor coverage: the unvisited flag says so.
    assert "GPS data covers only 1 of the window's" in cov.loc[car, "flag_reason"]


def _point(x: float, y: float):
    import shapely

    return shapely.Point(X0 + x, Y0 + y)


def test_the_example_cad_and_avl_mappings_split_presence_by_purpose(engine, tmp_path, settings):
    from beatmap.activity import read_mapping
    from beatmap.pings import read_ping_mapping

    examples = Path(__file__).resolve().parents[1] / "examples"
    assert read_mapping(examples / "cad_unit_status.toml").columns["unit_id"] == "UnitID"
    assert read_ping_mapping(examples / "avl_pings.toml").device_kind == "vehicle"
    load_two_beats(engine, tmp_path, settings=settings)
    x, y = transform_xy(np.array([X0 + 100]), np.array([Y0 + 100]), "EPSG:32616", "EPSG:3435")
    cad = tmp_path / "units.csv"
    cad.write_text(
        "IncidentNumber,UnitID,PrimaryOfficer,Dispatched,Cleared,CallType,SelfInit,X,Y\n"
        f"I1,1A12,o5,03/02/2026 08:05:00,03/02/2026 08:10:00,DISTURBANCE,N,{x[0]},{y[0]}\n"
        f"I2,1A12,o5,03/02/2026 08:12:00,,FOOT PATROL,Y,{x[0]},{y[0]}\n"
    )
    import_activity(
        engine,
        cad,
        settings=settings,
        mapping_path=examples / "cad_unit_status.toml",
        now=pd.Timestamp("2026-04-01", tz="UTC"),
    )
    avl = tmp_path / "avl.csv"
    fixes = pd.date_range("2026-03-02 08:00", "2026-03-02 08:20", freq="10s")
    avl.write_text(
        "FixTime,VehicleID,UnitID,HDOP_m,Speed,X,Y\n"
        + "".join(f"{t:%Y-%m-%d %H:%M:%S},car-12,1A12,4,0,{x[0]},{y[0]}\n" for t in fixes)
    )
    summary = import_pings(engine, [avl], settings=settings, mapping_path=examples / "avl_pings.toml")
    assert summary.presence_seconds == 1200
    assert summary.vehicle_seconds == 1200
    # Only the dispatched call (08:05-08:10) is enforcement; the self-initiated foot patrol is not.
    assert summary.enforcement_seconds == 300


def test_quality_counts_fixes_rejected_for_poor_accuracy(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = [f"{r},5" for r in ping_rows(100, 100, T0, 4, device="r1")]  # 9 fixes, accuracy 5 m
    rows[3] = rows[3][:-1] + "80"  # one at 80 m, worse than max_accuracy_m
    path = tmp_path / "p.csv"
    path.write_text("\n".join(["ts,lat,lon,device_id,unit_id,accuracy_m", *rows]) + "\n")
    summary = import_pings(engine, [path], settings=settings)
    assert summary.files[0].rejected == 1
    quality = quality_table(engine, settings=settings)
    assert quality["pings"].tolist() == [8]
    assert quality["poor_accuracy_share"].iloc[0] == pytest.approx(1 / 9)
    assert bool(quality["silent"].iloc[0]) is False


def test_the_summary_counts_rejected_rows_per_reason_not_per_value(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 5, device="r1")
    stamp = (T0 + pd.Timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows += [f"{stamp},abc,-87.6,r2,", f"{stamp},41.8,xyz,r3,", f"{stamp},,,r4,"]
    summary = import_pings(engine, [write_pings(tmp_path / "p.csv", rows)], settings=settings)
    assert summary.files[0].rejected == 3
    assert summary.files[0].reject_reasons == {"bad coordinates": 3}


def test_a_ping_csv_with_no_utf8_is_read_as_windows_1252_and_says_so(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1", unit="Unité 7")  # 41 fixes
    path = tmp_path / "p.csv"
    path.write_bytes(("\n".join(["ts,lat,lon,device_id,unit_id", *rows]) + "\n").encode("cp1252"))
    summary = import_pings(engine, [path], settings=settings, chunk_rows=10)
    file = summary.files[0]
    assert (file.rows, file.used, file.duplicates, file.rejected) == (41, 41, 0, 0)
    assert [w["code"] for w in file.warnings] == ["encoding_guessed"]
    assert "Windows-1252" in str(file.warnings[0]["message"]) and file.warnings[0]["count"] == 41
    assert file.to_dict()["warnings"][0]["details"] == {"encoding": "cp1252"}
    assert presence_store.read_presence(engine)["unit_id"].unique().tolist() == ["Unité 7"]
    assert summary.presence_seconds == 1200


def test_a_ping_csv_mixing_utf8_with_another_encoding_is_refused(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1", unit="Unité 7")
    path = tmp_path / "p.csv"
    text = "\n".join(["ts,lat,lon,device_id,unit_id", *rows]) + "\n"
    half = len(text) // 2
    path.write_bytes(text[:half].encode("utf-8") + text[half:].encode("cp1252"))
    with pytest.raises(InputError, match="not UTF-8 while other lines are"):
        import_pings(engine, [path], settings=settings)
    assert presence_store.read_presence(engine).empty
    assert len(presence_store.ping_spans(engine)) == 0


def test_a_windows_1252_letter_far_into_a_ping_csv_restarts_its_reading_in_that_encoding(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 200, device="r1")  # 401 fixes, over 16 KB before the last one
    rows[-1] = rows[-1] + "Unité 7"
    path = tmp_path / "p.csv"
    path.write_bytes(("\n".join(["ts,lat,lon,device_id,unit_id", *rows]) + "\n").encode("cp1252"))
    assert path.read_bytes().index(b"\xe9") > 16_000  # beyond what the header's reading decodes
    summary = import_pings(engine, [path], settings=settings, chunk_rows=50)
    file = summary.files[0]
    assert (file.rows, file.used, file.duplicates, file.rejected) == (401, 401, 0, 0)
    assert [w["code"] for w in file.warnings] == ["encoding_guessed"]
    assert summary.presence_seconds == 200 * 60
