"""The command line: summaries, --json, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from beatmap.cli import build_parser, main
from tests.conftest import ROOT, store_db, two_beats


@pytest.fixture
def files(tmp_path):
    two_beats().to_file(tmp_path / "beats.geojson")
    (tmp_path / "activity.csv").write_text(
        "occurred_at,lat,lon,kind,officer_id,shoe_size\n"
        "2026-03-01T10:00,41.87596,-87.63631,foot_patrol,O1,9\n"
        "2026-03-02T10:00,41.87596,-87.63631,enforcement,O2,9\n"
        "2026-03-03T10:00,banana,-87.63631,foot_patrol,O1,9\n"
    )
    return tmp_path


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_areas_import_coverage_beats_rejects(files, capsys):
    db = store_db(files / "s.db")
    code, out, _ = run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")
    assert code == 0 and "loaded 2 beats and 32 blocks" in out
    code, out, _ = run(capsys, "--db", db, "import", str(files / "activity.csv"), "--json")
    summary = json.loads(out)
    assert code == 0 and {
        k: summary[k] for k in ("rows", "imported", "duplicates", "rejected", "snapped", "outside")
    } == {"rows": 3, "imported": 2, "duplicates": 0, "rejected": 1, "snapped": 0, "outside": 0}
    code, out, _ = run(capsys, "--db", db, "import", str(files / "activity.csv"))
    assert code == 0 and "duplicates  2" in out and "ignored columns: shoe_size" in out
    code, out, _ = run(capsys, "--db", db, "coverage", "--out", str(files / "cov.csv"))
    assert code == 0 and "wrote 32 rows" in out
    cov = pd.read_csv(files / "cov.csv")
    assert {
        "block_id",
        "beat_id",
        "foot_patrols",
        "community_visits",
        "enforcement",
        "days_visited",
        "last_visit",
        "enforcement_share",
        "flag",
        "flag_reason",
    } <= set(cov.columns)
    assert cov["foot_patrols"].sum() == 1 and cov["enforcement"].sum() == 1
    code, out, _ = run(capsys, "--db", db, "coverage", "--beat", "A", "--out", str(files / "cov.geojson"))
    assert code == 0 and "wrote 16 rows" in out
    code, out, _ = run(
        capsys, "--db", db, "beats", "--from", "2026-01-01", "--to", "2026-03-31", "--out", str(files / "beats.csv")
    )
    beats = pd.read_csv(files / "beats.csv")
    assert code == 0 and beats["beat_id"].tolist() == ["A", "B"] and beats["blocks_visited"].tolist() == [1, 0]
    code, out, _ = run(capsys, "--db", db, "rejects", "--out", str(files / "rejects.csv"))
    rejects = pd.read_csv(files / "rejects.csv")
    assert code == 0 and rejects["row_number"].tolist() == [3] and "banana" in rejects["reason"].iloc[0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["areas", "--beats", "missing.geojson", "--grid-m", "100"], "missing.geojson: file not found"),
        (["import", "activity.csv", "--mapping", "nope.toml"], "nope.toml: mapping file not found"),
        (["coverage", "--out", "x.csv", "--beat", "Q"], "no store at"),
        (["import", "activity.csv", "--crs", "EPSG:3435"], "--crs applies to x/y columns"),
        (["areas", "--beats", "activity.csv", "--grid-m", "100"], "activity.csv: not a layer format beatmap reads"),
    ],
)
def test_errors_are_one_line_and_exit_2(files, capsys, monkeypatch, args, message):
    monkeypatch.chdir(files)
    code, _out, err = run(capsys, "--db", store_db(files / "s.db"), *args)
    assert code == 2 and message in err and err.startswith("beatmap: error:") and "Traceback" not in err


def test_window_and_beat_errors(files, capsys):
    db = store_db(files / "s.db")
    run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")
    code, _, err = run(capsys, "--db", db, "coverage", "--from", "2026-05-01", "--to", "2026-04-01", "--out", "x.csv")
    assert code == 2 and "swap --from and --to" in err
    code, _, err = run(capsys, "--db", db, "coverage", "--beat", "Q", "--out", str(files / "x.csv"))
    assert code == 2 and "--beat 'Q': no such beat; beats include A, B" in err


def test_info_lists_the_street_network_or_how_to_load_one(files, capsys):
    from tests.street_city import street_grid

    db = store_db(files / "s.db")
    run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")
    code, out, _ = run(capsys, "--db", db, "info")
    assert code == 0 and "2 beats, 32 blocks" in out
    assert "no street network loaded (routes are straight-line estimates); load one with `beatmap streets FILE`" in out
    street_grid().to_file(files / "streets.geojson")
    assert run(capsys, "--db", db, "streets", str(files / "streets.geojson"))[0] == 0
    code, out, _ = run(capsys, "--db", db, "info")
    today = pd.Timestamp.now(tz="UTC")
    assert code == 0 and "no street network" not in out
    assert f"22 street segments for walking routes, from {files / 'streets.geojson'} (loaded " in out
    assert any(f"(loaded {day:%Y-%m-%d})" in out for day in (today, today - pd.Timedelta(days=1)))


def test_console_script_runs_as_module(files):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "beatmap",
            "--db",
            store_db(files / "s.db"),
            "areas",
            "--beats",
            str(files / "activity.csv"),
            "--grid-m",
            "100",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("beatmap: error:") and "Traceback" not in proc.stderr


def test_neglected_areas_are_listed_and_written_and_a_route_walks_one(tmp_path, capsys):
    import geopandas as gpd

    from tests.street_city import build_store

    db = build_store(tmp_path)
    window = ["--from", "2026-01-01", "--to", "2026-03-31"]
    code, out, _ = run(capsys, "--db", db, "neglected", *window, "--out", str(tmp_path / "areas.geojson"))
    assert code == 0 and "2 neglected area(s) from 2026-01-01 to 2026-03-31:" in out
    assert "A-1        3 blocks along Test St:" in out and f"wrote 2 areas to {tmp_path / 'areas.geojson'}" in out
    shapes = gpd.read_file(tmp_path / "areas.geojson")
    assert sorted(shapes["area_id"]) == ["A-1", "B-1"] and shapes.crs.to_epsg() == 4326
    code, out, _ = run(capsys, "--db", db, "neglected", *window, "--beat", "B", "--out", str(tmp_path / "b.csv"))
    table = pd.read_csv(tmp_path / "b.csv")
    assert code == 0 and table["area_id"].tolist() == ["B-1"] and len(table["block_ids"][0].split()) == 4
    code, out, err = run(
        capsys,
        "--db",
        db,
        "route",
        "--beat",
        "A",
        "--area",
        "A-1",
        "--start",
        "41.8759,-87.6363",
        "--minutes",
        "60",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "walk.gpx"),
    )
    assert code == 0, err
    assert "area A-1, 3 blocks along Test St" in out and "note: This walk covers neglected area A-1" in out


def test_help_imports_none_of_the_heavy_libraries():
    # Start-up time: building the parser (what `beatmap --help` does) must not import these.
    code = (
        "import sys; from beatmap.cli import build_parser; build_parser(); "
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'pandas', 'geopandas', 'shapely', 'sqlalchemy', 'scipy', 'pyproj', 'numpy', 'alembic', 'argon2'})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == ""


def test_help_names_the_store_default():
    from beatmap import store

    text = build_parser().format_help()
    assert f"${store.ENV_VAR}" in text and str(store.DEFAULT_DB) in text


def test_settings_variable_is_read_when_no_settings_file_is_given(files, capsys, monkeypatch):
    db = store_db(files / "s.db")
    assert run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")[0] == 0
    assert run(capsys, "--db", db, "import", str(files / "activity.csv"))[0] == 0
    short = files / "short.toml"
    short.write_text("[coverage]\nwindow_days = 1\n")
    monkeypatch.setenv("BEATMAP_SETTINGS", str(short))
    code, out, _ = run(capsys, "--db", db, "beats", "--out", str(files / "beats.csv"))
    assert code == 0 and "2026-03-02 to 2026-03-02" in out  # the variable's one-day window, not the default
    code, out, _ = run(
        capsys, "--db", db, "--settings", str(files / "none.toml"), "beats", "--out", str(files / "beats.csv")
    )
    assert code == 2  # --settings wins over the variable
    broken = files / "broken.toml"
    broken.write_text("[coverage]\nwindow_dayz = 3\n")
    monkeypatch.setenv("BEATMAP_SETTINGS", str(broken))
    code, _, err = run(capsys, "--db", db, "beats", "--out", str(files / "beats.csv"))
    assert code == 2 and "broken.toml" in err and "window_dayz" in err


def test_excluded_beats_are_not_analysed(files, capsys, monkeypatch):
    db = store_db(files / "s.db")
    code, _, err = run(
        capsys,
        "--db",
        db,
        "areas",
        "--beats",
        str(files / "beats.geojson"),
        "--grid-m",
        "100",
        "--exclude-beats",
        "B,Z9",
    )
    assert code == 2 and "no beat 'Z9'" in err and "A, B" in err
    code, out, _ = run(
        capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100", "--exclude-beats", "B"
    )
    assert code == 0 and "not analysed: beats B (16 blocks, 50% of all)" in out
    # Enforcement only in B: it would be flagged, but B is left out.
    (files / "b.csv").write_text(
        "occurred_at,lat,lon,kind\n2026-03-01T10:00,41.87596,-87.63631,foot_patrol\n"
        + "".join(f"2026-03-0{d}T10:00,41.87689,-87.63150,enforcement\n" for d in range(1, 4))
    )
    assert run(capsys, "--db", db, "import", str(files / "b.csv"))[0] == 0
    code, out, _ = run(
        capsys, "--db", db, "coverage", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(files / "cov.csv")
    )
    cov = pd.read_csv(files / "cov.csv", keep_default_na=False)
    # B's blocks are listed, as not analysed: no flag, no figure (empty cells, not 0).
    assert code == 0 and len(cov) == 32 and "16 blocks not analysed (beats B" in out
    assert set(cov.loc[cov["beat_id"] == "A", "status"]) == {"analysed"}
    left = cov[cov["beat_id"] == "B"]
    assert len(left) == 16 and set(left["status"]) == {"not analysed"}
    assert set(left["flag"]) == {""} and set(left["enforcement"]) == {""} and set(left["visits"]) == {""}
    assert cov.loc[cov["beat_id"] == "A", "visits"].astype(int).sum() == 1
    code, out, _ = run(
        capsys,
        "--db",
        db,
        "coverage",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--beat",
        "B",
        "--out",
        str(files / "cov_b.geojson"),
    )
    features = json.loads((files / "cov_b.geojson").read_text())["features"]
    assert code == 0 and len(features) == 16 and "0 flagged blocks; 16 blocks not analysed" in out
    assert {(f["properties"]["status"], f["properties"]["flag"], f["properties"]["enforcement"]) for f in features} == {
        ("not analysed", None, None)
    }
    assert all(f["geometry"]["type"] == "Polygon" for f in features)
    code, out, _ = run(
        capsys, "--db", db, "beats", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(files / "beats.csv")
    )
    beats = pd.read_csv(files / "beats.csv").set_index("beat_id")
    assert not beats.loc["B", "analysed"] and pd.isna(beats.loc["B", "flagged"])
    assert beats.loc["B", "status"] == "not analysed" and beats.loc["A", "status"] == "analysed"
    assert "1 beat not analysed (beats B" in out
    code, _, err = run(
        capsys,
        "--db",
        db,
        "route",
        "--beat",
        "B",
        "--start",
        "41.87689,-87.63150",
        "--minutes",
        "30",
        "--out",
        str(files / "b.gpx"),
    )
    assert code == 2 and "beat B is left out of the analysis" in err and "no route is planned there" in err
    assert beats.loc["A", "analysed"] and beats.loc["A", "blocks"] == 16
    # Loading the areas again without the option brings B back; the settings list leaves it out again.
    assert run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")[0] == 0
    run(capsys, "--db", db, "coverage", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(files / "c2.csv"))
    flagged = pd.read_csv(files / "c2.csv")
    assert (flagged["flag"] == "enforcement_only").sum() == 1
    (files / "s.toml").write_text('[analysis]\nexcluded_beats = ["B"]\n')
    run(
        capsys,
        "--db",
        db,
        "--settings",
        str(files / "s.toml"),
        "coverage",
        "--from",
        "2026-03-01",
        "--to",
        "2026-03-31",
        "--out",
        str(files / "c3.csv"),
    )
    c3 = pd.read_csv(files / "c3.csv")
    in_b = c3[c3["beat_id"] == "B"]
    assert set(c3.loc[c3["status"] == "analysed", "beat_id"]) == {"A"}
    assert len(in_b) == 16 and set(in_b["status"]) == {"not analysed"} and in_b["flag"].isna().all()


def test_import_reports_a_windows_1252_guess_in_text_and_json(files, capsys):
    db = store_db(files / "s.db")
    run(capsys, "--db", db, "areas", "--beats", str(files / "beats.geojson"), "--grid-m", "100")
    path = files / "windows.csv"
    path.write_bytes(
        "occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.87596,-87.63631,foot_patrol,José\n".encode("cp1252")
    )
    code, out, _ = run(capsys, "--db", db, "import", str(path))
    assert code == 0 and "warning: " + str(path) + ": read as Windows-1252 (no UTF-8 found)" in out
    path.write_bytes(
        "occurred_at,lat,lon,kind,notes\n2026-03-02T10:00,41.87596,-87.63631,foot_patrol,José\n".encode("cp1252")
    )
    code, out, _ = run(capsys, "--db", db, "import", str(path), "--json")
    warnings = json.loads(out)["warnings"]
    assert code == 0 and [w["code"] for w in warnings if w["code"] == "encoding_guessed"] == ["encoding_guessed"]
