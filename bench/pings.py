"""GPS pings: beatmap import-pings against a plain geopandas read + sjoin, in one run; prints both sides.

    python bench/pings.py [--sizes 2000000,10000000] [--out bench/out/pings]

For each size, generates that many CSV pings (``ts, lat, lon, device_id``:
devices on foot and in cars moving over the real Chicago beats, a fix every
20 s) and times, each in a new process:

- ``beatmap import-pings`` end to end (read, assign, segment, credit,
  aggregate, store, and write the raw ping archive) into a store with the
  areas loaded beforehand (150 m grid blocks), with its peak memory (the
  child's maximum resident set);
- a plain script that only reads the same CSV with pandas and
  ``geopandas.sjoin``\\ s the points to the same blocks, with its peak memory.

Both sides' CPU seconds (user + system, the child's own) are printed beside the wall seconds, and the load
average (1 minute) before, between and after the two runs: the machine may be shared.

Then checks, on a sample of 200,000 pings, that the block index gives the
same block as the exact rule of :mod:`beatmap.assign`.  Targets: beatmap at
least 2x faster than the plain script; peak memory under 2 GB and within
1.5x between the smallest and the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import shapely

from beatmap import store
from beatmap.assign import assign_positions
from beatmap.crs import WGS84, transform_xy
from beatmap.index import block_index_for
from beatmap.tracks import TrackRules, locate

ROOT = Path(__file__).resolve().parents[1]
BEATS = ROOT.parent / "shared" / "realdata" / "chicago" / "police_beats.geojson"
GRID_M = 150
STEP_S = 20
PINGS_PER_DEVICE = 2000
PLAIN = """
import sys
import geopandas as gpd
import pandas as pd
blocks = gpd.read_parquet(sys.argv[2])
pings = pd.read_csv(sys.argv[1])
points = gpd.GeoDataFrame(pings, geometry=gpd.points_from_xy(pings["lon"], pings["lat"]), crs="EPSG:4326")
joined = gpd.sjoin(points.to_crs(blocks.crs), blocks[["block_id", "geometry"]], how="left", predicate="within")
print(joined["block_id"].notna().sum())
"""


def run_child(*args: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak resident memory (MB) of a new Python process running
    ``args``.

    The peak is the child's own high-water mark (``VmHWM``), read while it runs: the kernel's
    ``ru_maxrss`` of a child also counts the parent's memory at the fork (this script holds the generated
    pings), which made earlier figures too high.  The CPU seconds are the child's own (``wait4``), so a
    machine shared with other work can be compared run to run.
    """
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL)
    peak_kb = 0
    status_file = Path(f"/proc/{child.pid}/status")
    while True:
        pid, status, usage = os.wait4(child.pid, os.WNOHANG)
        if pid:
            break
        try:
            for line in status_file.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = max(peak_kb, int(line.split()[1]))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{args[:3]} failed with status {child.returncode}")
    return seconds, usage.ru_utime + usage.ru_stime, peak_kb / 1024


def make_pings(n: int, path: Path, *, seed: int = 12) -> None:
    """``n`` pings of ``n / PINGS_PER_DEVICE`` devices, half on foot (1.4 m/s) and half in cars (11 m/s)."""
    rng = np.random.default_rng(seed)
    beats = gpd.read_file(BEATS).to_crs(32616)
    xmin, ymin, xmax, ymax = beats.total_bounds
    devices = max(n // PINGS_PER_DEVICE, 1)
    per = np.full(devices, n // devices)
    per[: n - per.sum()] += 1
    speed = np.where(np.arange(devices) % 2 == 0, 1.4, 11.0)
    device = np.repeat(np.arange(devices), per)
    first = np.r_[0, np.cumsum(per)[:-1]]
    step = np.arange(n) - np.repeat(first, per)
    heading = np.cumsum(rng.normal(0, 0.3, n))
    dx = np.cos(heading) * np.repeat(speed, per) * STEP_S
    dy = np.sin(heading) * np.repeat(speed, per) * STEP_S
    dx[first], dy[first] = 0, 0
    x0 = rng.uniform(xmin + 3000, xmax - 3000, devices)
    y0 = rng.uniform(ymin + 3000, ymax - 3000, devices)
    x = np.repeat(x0, per) + _cumsum_by(dx, first, per) + rng.normal(0, 5, n)
    y = np.repeat(y0, per) + _cumsum_by(dy, first, per) + rng.normal(0, 5, n)
    lon, lat = transform_xy(x, y, "EPSG:32616", WGS84)
    start = pd.Timestamp("2026-03-02 12:00", tz="UTC").value // 10**9
    ts = start + step * STEP_S + rng.integers(0, 3600, devices)[device]
    order = rng.permutation(n)  # files are not sorted
    table = pa.table(
        {
            "ts": pa.array((ts[order] * 10**9).astype("datetime64[ns]"), type=pa.timestamp("s", tz="UTC")),
            "lat": lat[order].round(6),
            "lon": lon[order].round(6),
            "device_id": pa.array(np.char.add("dev-", device[order].astype(str))),
        }
    )
    pacsv.write_csv(table, path)


def _cumsum_by(values: np.ndarray, first: np.ndarray, per: np.ndarray) -> np.ndarray:
    total = np.cumsum(values)
    return total - np.repeat(total[first] - values[first], per)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000000,10000000")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "pings")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    out = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (out / "settings.toml").write_text('[department]\ntimezone = "America/Chicago"\n')
    base = out / "areas.db"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "beatmap",
            "--db",
            str(base),
            "--settings",
            str(out / "settings.toml"),
            "areas",
            "--beats",
            str(BEATS),
            "--beat-id",
            "BEAT_NUM",
            "--grid-m",
            str(GRID_M),
        ],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    engine = store.open_store(str(base))
    blocks = store.read_blocks(engine)
    blocks[["block_id", "beat_id", "geometry"]].to_parquet(out / "blocks.parquet")
    print(f"areas: {len(blocks):,} blocks ({GRID_M} m grid over the Chicago beats)")
    rows = []
    for n in sizes:
        csv = out / f"pings_{n}.csv"
        make_pings(n, csv)
        db = out / f"store_{n}.db"
        shutil.copy(base, db)
        load_before = os.getloadavg()[0]
        beat_s, beat_cpu, beat_mb = run_child(
            "-m",
            "beatmap",
            "--db",
            str(db),
            "--settings",
            str(out / "settings.toml"),
            "import-pings",
            str(csv),
            "--json",
        )
        load_between = os.getloadavg()[0]
        plain_s, plain_cpu, plain_mb = run_child("-c", PLAIN, str(csv), str(out / "blocks.parquet"))
        rows.append(
            {
                "pings": n,
                "beatmap_s": round(beat_s, 1),
                "beatmap_cpu_s": round(beat_cpu, 1),
                "plain_s": round(plain_s, 1),
                "plain_cpu_s": round(plain_cpu, 1),
                "speed-up": round(plain_s / beat_s, 2),
                "cpu speed-up": round(plain_cpu / beat_cpu, 2),
                "beatmap_peak_mb": round(beat_mb),
                "plain_peak_mb": round(plain_mb),
                "pings_per_s": round(n / beat_s),
                "load": f"{load_before:.1f}/{load_between:.1f}/{os.getloadavg()[0]:.1f}",
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        csv.unlink()
        db.unlink()
        shutil.rmtree(out / f"store_{n}.db.pings", ignore_errors=True)  # the raw ping archive beside the store
    table = pd.DataFrame(rows)
    print(table.to_string(index=False))
    if len(rows) > 1:
        print(
            f"memory growth {sizes[0]:,} -> {sizes[-1]:,} pings: "
            f"{rows[-1]['beatmap_peak_mb'] / rows[0]['beatmap_peak_mb']:.2f}x (target at most 1.5x)"
        )

    rng = np.random.default_rng(5)
    xmin, ymin, xmax, ymax = blocks.total_bounds
    x, y = rng.uniform(xmin, xmax, 200_000), rng.uniform(ymin, ymax, 200_000)
    rules = TrackRules()
    index = block_index_for(engine, blocks, edge_tolerance_m=rules.edge_tolerance_m, snap_m=rules.snap_m)
    fast = locate(x, y, blocks, rules, index)
    exact = assign_positions(x, y, blocks, edge_tolerance_m=rules.edge_tolerance_m, snap_m=rules.snap_m)[0]
    print(
        f"exactness: {int((fast == exact).sum()):,} of {len(x):,} sample points get the same block as the "
        f"exact rule ({int(shapely.contains_xy(shapely.union_all(blocks.geometry.to_numpy()), x, y).sum()):,} "
        "inside a block)"
    )


if __name__ == "__main__":
    main()
