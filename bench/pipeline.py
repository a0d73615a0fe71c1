"""beatmap against plain geopandas, four comparisons in one run; prints both sides of each.

    python bench/pipeline.py [--records 1000000] [--points 10000000] [--out bench/out/pipeline]

1. Whole pipeline on ``--records`` generated records over the real Chicago
   beats (150 m grid; about 30% enforcement; officer ids, source ids, ISO
   times with offsets): ``beatmap areas`` + ``beatmap import`` + ``beatmap
   coverage``, each a new process, against ``bench/plain_pipeline.py`` in one
   process.  Both timed from process start.  Target: beatmap 2x faster.
2. Assignment of ``--points`` points over the demo generator's large city
   (about 25,000 blocks), the block index built beforehand, against
   ``geopandas.sjoin``; the result is checked against the exact rule on every
   point.  Target: 20x faster than sjoin.
3. Import throughput on the generated file (part of 1), for a new store and
   for the same file again.  Target: 100,000 rows a second each.
4. Start-up: ``beatmap --help`` against ``python -c "import pandas"``.
   Target: at most twice.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from beatmap.assign import activity_to_blocks
from beatmap.crs import WGS84, transform_xy
from beatmap.demo import make_demo_city
from beatmap.index import EXACT, build_block_index, index_lookup

ROOT = Path(__file__).resolve().parents[1]
BEATS = ROOT.parent / "shared" / "realdata" / "chicago" / "police_beats.geojson"
GRID_M = 150
SETTINGS = """[department]
timezone = "America/Chicago"
"""


def timed_run(*args: str) -> float:
    """Wall time of a new Python process running ``args``, from start to exit (its CPU time in ``CPU``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime))
    return wall


#: CPU seconds (user + system) of each process :func:`timed_run` ran, in order: on a shared machine the
#: wall time also counts the time other processes held the cores.
CPU: list[float] = []


def make_records(n: int, path: Path, *, seed: int = 11) -> None:
    """``n`` activity records over the Chicago beats: a year to 2026-03-31, times with their offsets."""
    rng = np.random.default_rng(seed)
    beats = gpd.read_file(BEATS)[["BEAT_NUM", "geometry"]].dissolve("BEAT_NUM").reset_index()
    utm = beats.estimate_utm_crs()
    beats = beats.to_crs(utm)
    area = shapely.union_all(beats.geometry.to_numpy())
    shapely.prepare(area)
    xmin, ymin, xmax, ymax = area.bounds
    xs, ys = [], []
    while sum(len(v) for v in xs) < n:
        x, y = rng.uniform(xmin, xmax, n), rng.uniform(ymin, ymax, n)
        inside = shapely.contains_xy(area, x, y)
        xs.append(x[inside])
        ys.append(y[inside])
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    hit, beat_row = shapely.STRtree(beats.geometry.to_numpy()).query(shapely.points(x, y), predicate="intersects")
    reported = np.full(n, "", dtype=object)
    reported[hit[::-1]] = beats["BEAT_NUM"].to_numpy(dtype=object)[beat_row[::-1]]
    lon, lat = transform_xy(x, y, utm, WGS84)
    end = pd.Timestamp("2026-04-01", tz="UTC")
    utc = end - pd.to_timedelta(rng.uniform(0, 365 * 86400, n).round(), unit="s")
    local = pd.Series(utc).dt.tz_convert("America/Chicago").dt.strftime("%Y-%m-%dT%H:%M:%S%z")
    kind = rng.choice(np.array(["foot_patrol", "community_visit", "enforcement", "other"]), n, p=[0.4, 0.2, 0.3, 0.1])
    frame = pd.DataFrame(
        {
            "occurred_at": local.str[:-2] + ":" + local.str[-2:],
            "lat": lat.round(6),
            "lon": lon.round(6),
            "kind": kind,
            "officer_id": pd.Series(rng.integers(1000, 1600, n)).map("P{}".format),
            "source_id": [f"CAD-{i:08d}" for i in range(n)],
            "reported_beat": reported,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def pipeline(records: int, out: Path) -> None:
    csv = out / f"chicago_{records}.csv"
    if not csv.exists():
        make_records(records, csv)
    settings = out / "settings.toml"
    settings.write_text(SETTINGS, encoding="utf-8")
    db = out / "pipeline.db"
    db.unlink(missing_ok=True)
    shutil.rmtree(out / "cache", ignore_errors=True)
    base = ["-m", "beatmap", "--db", str(db), "--settings", str(settings)]
    t_areas = timed_run(*base, "areas", "--beats", str(BEATS), "--beat-id", "BEAT_NUM", "--grid-m", str(GRID_M))
    t_import = timed_run(*base, "import", str(csv), "--source", "bench")
    t_coverage = timed_run(*base, "coverage", "--out", str(out / "coverage_beatmap.csv"))
    t_again = timed_run(*base, "import", str(csv), "--source", "bench")
    t_plain = timed_run(
        str(ROOT / "bench" / "plain_pipeline.py"),
        str(BEATS),
        "BEAT_NUM",
        str(csv),
        str(GRID_M),
        str(out / "coverage_plain.csv"),
    )
    cpu = CPU[-5:]  # areas, import, coverage, import again, plain
    ours = t_areas + t_import + t_coverage
    print(f"1. whole pipeline, {records:,} records over the Chicago beats ({GRID_M} m grid); wall (CPU) seconds")
    print(
        f"   beatmap areas {t_areas:.1f} ({cpu[0]:.1f}) + import {t_import:.1f} ({cpu[1]:.1f}) + coverage "
        f"{t_coverage:.1f} ({cpu[2]:.1f}) = {ours:.1f} ({sum(cpu[:3]):.1f})"
    )
    print(f"   plain geopandas script            {t_plain:6.1f} ({cpu[4]:.1f})")
    print(f"   speed-up (target >= 2x)           {t_plain / ours:6.2f}x wall, {cpu[4] / sum(cpu[:3]):.2f}x CPU")
    print(f"3. import throughput, {records:,} rows (each a new process, cache rebuild included); wall (CPU)")
    print(
        f"   new store           {t_import:6.1f} s ({cpu[1]:.1f})  {records / t_import:>10,.0f} rows/s "
        f"({records / cpu[1]:,.0f} per CPU second; target >= 100,000)"
    )
    print(
        f"   same file again     {t_again:6.1f} s ({cpu[3]:.1f})  {records / t_again:>10,.0f} rows/s "
        f"({records / cpu[3]:,.0f} per CPU second; target >= 100,000)"
    )


def assignment(n_points: int) -> None:
    city = make_demo_city(7, n_beats=300, blocks_per_beat=84)
    blocks = city.blocks.to_crs("EPSG:32616").sort_values("block_id").reset_index(drop=True)
    rng = np.random.default_rng(5)
    pick = rng.integers(0, len(city.activity), n_points)
    x, y = transform_xy(city.activity["lon"].to_numpy()[pick], city.activity["lat"].to_numpy()[pick], WGS84, blocks.crs)
    x, y = x + rng.normal(0, 3, n_points), y + rng.normal(0, 3, n_points)  # distinct points, some in the streets
    start = time.perf_counter()
    index = build_block_index(blocks, edge_tolerance_m=1.0, snap_m=15.0)
    t_build = time.perf_counter() - start

    start, cpu = time.perf_counter(), time.process_time()
    ours = activity_to_blocks(x, y, blocks, index=index)
    t_ours, c_ours = time.perf_counter() - start, time.process_time() - cpu

    start, cpu = time.perf_counter(), time.process_time()
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=blocks.crs)
    joined = gpd.sjoin(points, blocks[["block_id", "geometry"]], predicate="within", how="left")
    t_sjoin, c_sjoin = time.perf_counter() - start, time.process_time() - cpu

    identical = True
    for first in range(0, n_points, 1_000_000):
        part = slice(first, first + 1_000_000)
        exact = activity_to_blocks(x[part], y[part], blocks)
        identical &= exact.equals(ours.iloc[part].reset_index(drop=True))
    plain = joined[~joined.index.duplicated(keep="first")]["block_id"].to_numpy(dtype=object)
    agree = np.mean(ours["block_id"].to_numpy(dtype=object) == plain)
    print(f"2. assignment of {n_points:,} points to {len(blocks):,} blocks (demo large city)")
    print(
        f"   block index built beforehand  {t_build:6.2f} s ({index.n_cells:,} cells, "
        f"{len(index.line_x):,} with a line or candidate blocks)"
    )
    print(f"   beatmap with the index        {t_ours:6.2f} s ({c_ours:.2f} CPU)  {n_points / t_ours:,.0f} points/s")
    print(f"   geopandas sjoin (within)      {t_sjoin:6.2f} s ({c_sjoin:.2f} CPU)  {n_points / t_sjoin:,.0f} points/s")
    print(f"   speed-up (target >= 20x)      {t_sjoin / t_ours:6.2f}x wall, {c_sjoin / c_ours:.2f}x CPU")
    print(
        f"   share of points weighed against their cell's candidate blocks: "
        f"{np.mean(index_lookup(index, x, y) == EXACT):.1%} (the rest: array look-up or the side of a line)"
    )
    print(f"   identical to the exact rule on every point: {identical}")
    print(f"   same block as sjoin           {agree:.4%} (sjoin has no edge tolerance or snapping)")


def startup(runs: int = 7) -> None:
    helps, pandas = [], []
    for _ in range(runs):  # interleaved, so both see the same load
        helps.append(timed_run("-m", "beatmap", "--help"))
        pandas.append(timed_run("-c", "import pandas"))
    h, p = statistics.median(helps), statistics.median(pandas)
    print(f"4. start-up, median of {runs} runs each")
    print(f"   beatmap --help                {h:6.2f} s")
    print(f'   python -c "import pandas"     {p:6.2f} s')
    print(f"   ratio (target <= 2)           {h / p:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "pipeline")
    parser.add_argument("--only", choices=["pipeline", "assignment", "startup"], help="run one comparison")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only in (None, "pipeline"):
        pipeline(args.records, args.out)
    if args.only in (None, "assignment"):
        assignment(args.points)
    if args.only in (None, "startup"):
        startup()


if __name__ == "__main__":
    main()
