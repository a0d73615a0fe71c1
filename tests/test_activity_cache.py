"""The dashboard's activity cache in parts: an import adds its part, visits and areas rebuild only theirs."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from pyproj import Transformer

from beatmap import store
from beatmap.activity_cache import read_activity
from beatmap.metrics import local_activity
from beatmap.visits import delete_visit, log_visit
from tests.conftest import ROOT, X0, Y0, import_rows, load_two_beats

TO_WGS84 = Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True)
NOW = datetime.now(UTC).replace(microsecond=0)


def row(x: float, y: float, when: str, kind: str = "foot_patrol", officer: str = "P1") -> str:
    lon, lat = TO_WGS84.transform(X0 + x, Y0 + y)
    return f"{when},{lat:.6f},{lon:.6f},{kind},{officer}"


HEADER = "occurred_at,lat,lon,kind,officer_id"


def from_store(engine, timezone: str) -> pd.DataFrame:
    """The frame built straight from every stored event, for comparison (rows in a canonical order)."""
    events = store.read_events(engine, columns=("occurred_at", "kind", "officer_id", "block_id"))
    return canonical(local_activity(events, timezone=timezone))


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype({c: object for c in ("block_id", "kind", "officer_id")})
    return out.sort_values(list(out.columns), kind="stable").reset_index(drop=True)


def parts(folder) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("activity-*/part-*.parquet")}


@pytest.fixture
def city(engine, settings, tmp_path):
    load_two_beats(engine, tmp_path, settings=settings)
    return engine


def test_the_frame_matches_the_store(city, settings, tmp_path):
    import_rows(
        city,
        tmp_path,
        [row(50, 50, "2026-03-01T10:00"), row(250, 50, "2026-03-02T10:00", "enforcement")],
        settings=settings,
        header=HEADER,
        name="one.csv",
    )
    frame = read_activity(city, timezone=settings.timezone)
    assert frame["day"].is_monotonic_increasing
    pd.testing.assert_frame_equal(canonical(frame), from_store(city, settings.timezone))
    assert len(frame) == 2


def test_parts_are_written_by_the_import_and_kept_until_what_they_hold_changes(city, settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BEATMAP_CACHE", str(cache))
    import_rows(city, tmp_path, [row(50, 50, "2026-03-01T10:00")], settings=settings, header=HEADER, name="a.csv")
    first = parts(cache)
    assert len(first) == 1  # written by the import itself, before anything read the frame
    import_rows(
        city,
        tmp_path,
        [row(450, 50, "2026-03-03T10:00", "community_visit")],
        settings=settings,
        header=HEADER,
        name="b.csv",
    )
    second = parts(cache)
    assert len(second) == 2 and all(second[name] == stamp for name, stamp in first.items())
    pd.testing.assert_frame_equal(
        canonical(read_activity(city, timezone=settings.timezone)), from_store(city, settings.timezone)
    )

    # A logged visit (then its deletion): its own part, the import parts untouched.
    lon, lat = TO_WGS84.transform(X0 + 60, Y0 + 60)
    visit = log_visit(
        city,
        officer_id="O7",
        lat=lat,
        lon=lon,
        kind="community_visit",
        client_token="t1",
        occurred_at=NOW - timedelta(hours=1),
        settings=settings,
        now=NOW,
    )
    frame = read_activity(city, timezone=settings.timezone)
    assert len(frame) == 3
    pd.testing.assert_frame_equal(canonical(frame), from_store(city, settings.timezone))
    assert all(parts(cache)[name] == stamp for name, stamp in second.items())
    delete_visit(city, visit, actor="sgt", role="supervisor", settings=settings, now=NOW)
    assert len(read_activity(city, timezone=settings.timezone)) == 2
    assert all(parts(cache)[name] == stamp for name, stamp in second.items())

    # Loading areas again makes every part old: all are rebuilt for the new blocks.
    load_two_beats(city, tmp_path, settings=settings, grid_m=100)
    frame = read_activity(city, timezone=settings.timezone)
    assert not set(parts(cache)) & set(second)
    pd.testing.assert_frame_equal(canonical(frame), from_store(city, settings.timezone))


def test_a_damaged_part_is_rebuilt_from_the_store(city, settings, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("BEATMAP_CACHE", str(cache))
    import_rows(city, tmp_path, [row(50, 50, "2026-03-01T10:00")], settings=settings, header=HEADER)
    (part,) = cache.glob("activity-*/part-*.parquet")
    part.write_bytes(part.read_bytes()[:20])
    frame = read_activity(city, timezone=settings.timezone)
    pd.testing.assert_frame_equal(canonical(frame), from_store(city, settings.timezone))
    assert len(frame) == 1


def test_two_imports_at_once_keep_both_parts(city, settings, tmp_path):
    cache = tmp_path / "cache"
    files = []
    for i, x in enumerate((50, 450)):
        path = tmp_path / f"f{i}.csv"
        path.write_text("\n".join([HEADER, *(row(x, 50 + k, f"2026-03-0{1 + i}T1{k}:00") for k in range(5))]) + "\n")
        files.append(path)
    env = {"BEATMAP_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
    db = city.url.render_as_string(hide_password=False)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "beatmap", "--db", db, "import", str(f)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for f in files
    ]
    for run in runs:
        assert run.wait(timeout=300) == 0, run.stderr.read() if run.stderr else ""
    assert len(parts(cache)) == 2
    frame = read_activity(city, timezone=settings.timezone, cache_dir=cache)
    assert len(frame) == 10
    pd.testing.assert_frame_equal(canonical(frame), from_store(city, settings.timezone))
