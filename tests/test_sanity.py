"""Sanity checks of an import: pile-ups, outside the beats, reported beats, odd times; warnings, not rejects."""

from __future__ import annotations

import json

import pandas as pd

from beatmap import schema as S
from beatmap import store
from beatmap.cli import main
from beatmap.ingest import import_activity
from beatmap.sanity import check_records, pileups
from beatmap.settings import Settings
from tests.conftest import load_two_beats, store_db

NOW = pd.Timestamp("2026-06-01", tz="UTC")
CENTRE = (41.87596, -87.63631)  # inside beat A of the test city


def spread(n: int) -> list[tuple[float, float]]:
    """``n`` distinct points inside beat A, each about 3 m from the next."""
    return [(41.8752 + 0.00003 * (i % 40), -87.6370 + 0.00003 * (i // 40)) for i in range(n)]


def frame(points, *, beat="A", reported=None, times=None) -> pd.DataFrame:
    n = len(points)
    return pd.DataFrame(
        {
            S.LAT: [p[0] for p in points],
            S.LON: [p[1] for p in points],
            S.BLOCK_ID: ["A_1"] * n,
            S.BEAT_ID: [beat] * n,
            S.REPORTED_BEAT: reported if reported is not None else [None] * n,
            S.OCCURRED_AT: times if times is not None else [pd.Timestamp("2026-03-01", tz="UTC")] * n,
        }
    )


def codes(warnings) -> list[str]:
    return [w.code for w in warnings]


def test_pileup_needs_both_the_share_and_the_count():
    points = [CENTRE] * 60 + spread(940)
    assert pileups(frame(points), share=0.01, minimum=50)["rows"].tolist() == [60]
    assert pileups(frame(points), share=0.01, minimum=61).empty  # too few rows
    assert pileups(frame(points), share=0.07, minimum=50).empty  # too small a share
    warnings = check_records(frame(points), beat_ids={"A", "B"}, now=NOW, pileup_share=0.01, pileup_min=50)
    assert codes(warnings) == ["pileup"]
    assert "60 records (6.0%) sit on one point, 41.87596,-87.63631" in warnings[0].message


def test_reported_beats_that_differ_or_are_unknown():
    reported = ["A"] * 6 + ["B"] * 3 + ["Z9"]
    warnings = check_records(
        frame(spread(10), reported=reported), beat_ids={"A", "B"}, now=NOW, pileup_share=0.01, pileup_min=50
    )
    assert codes(warnings) == ["beat_mismatch", "unknown_beats"]
    assert warnings[0].count == 3 and "(30.0%)" in warnings[0].message
    assert warnings[1].count == 1 and "Z9 (1)" in warnings[1].message


def test_outside_and_odd_times():
    points = frame(spread(200))
    points.loc[:9, [S.BLOCK_ID, S.BEAT_ID]] = None
    times = (
        [pd.Timestamp("2026-03-01", tz="UTC")] * 197
        + [pd.Timestamp("2019-01-01", tz="UTC")]
        + [NOW + pd.Timedelta(hours=3)] * 2
    )
    points[S.OCCURRED_AT] = times
    warnings = check_records(points, beat_ids={"A"}, now=NOW, pileup_share=0.01, pileup_min=50)
    assert codes(warnings) == ["outside", "future", "far_past"]
    assert "10 of 200 records (5.0%) fall outside every beat" in warnings[0].message
    assert warnings[1].count == 2 and warnings[2].count == 1 and "2019-01-01" in warnings[2].message
    assert check_records(frame(spread(200)), beat_ids={"A"}, now=NOW, pileup_share=0.01, pileup_min=50) == []


def write_pileup_file(tmp_path):
    """60 arrests on one point (distinct times) and 940 foot patrols spread over beat A."""
    lines = ["occurred_at,lat,lon,kind"]
    lines += [f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:00,{CENTRE[0]},{CENTRE[1]},enforcement" for i in range(60)]
    lines += [f"2026-03-02T10:00,{lat:.5f},{lon:.5f},foot_patrol" for lat, lon in spread(940)]
    path = tmp_path / "arrests.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_import_warns_of_a_pileup_and_a_mapping_rejects_it(tmp_path, capsys):
    settings = Settings(timezone="America/Chicago")
    path = write_pileup_file(tmp_path)
    db = store_db(tmp_path / "cli.db")
    load_two_beats(store.open_store(db), tmp_path, settings=settings, grid_m=100)
    capsys.readouterr()
    assert main(["--db", db, "import", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["imported"] == 1000 and [w["code"] for w in summary["warnings"]] == ["pileup"]
    assert summary["warnings"][0]["count"] == 60
    human = store_db(tmp_path / "human.db")
    load_two_beats(store.open_store(human), tmp_path, settings=settings, grid_m=100)
    assert main(["--db", human, "import", str(path)]) == 0
    assert "warning: 60 records (6.0%) sit on one point" in capsys.readouterr().out
    mapping = tmp_path / "pile.toml"
    mapping.write_text("[coordinates]\nreject_pileups = true\n")
    other = load_two_beats(store.open_store(store_db(tmp_path / "other.db")), tmp_path, settings=settings, grid_m=100)
    summary = import_activity(other, path, settings=settings, mapping_path=mapping, now=NOW)
    assert (summary.imported, summary.rejected) == (940, 60) and summary.warnings == ()
    (reason,) = summary.reject_reasons
    assert "pile-up point" in reason
    assert summary.reject_examples[reason][0]["reason"].startswith("point 41.87596,-87.63631 holds 60 rows")
