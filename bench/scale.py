"""City scale: import-pings single-process and on a local Dask cluster (1 and 2 workers), with a projection.

    PYTHONPATH=. .venv/bin/python bench/scale.py [--pings 100000000] [--parts 0] [--workers 1,2]
                                                 [--out bench/out/scale] [--no-single] [--data DIR]

Generates ``--pings`` GPS fixes as a Parquet dataset (``--parts`` files, each
a slice of time of the whole fleet, rows shuffled within a file; row groups of
500,000) over the real Chicago beats (150 m grid blocks): a fleet of up to 900
devices, half cars (11 m/s) and half on foot (1.4 m/s), a fix every 10 s from
local noon, so every track runs across local midnight and across files.  Then
imports it, each run in a new process on a copy of the same store:

- single-process (``beatmap.presence.import_pings``), which streams the files
  through staging files and credits groups of at most 500,000 fixes;
- ``--engine dask`` on a ``LocalCluster`` of 1 and of 2 worker processes (one
  thread each).

Prints for each: wall seconds, pings per second, peak memory (the process's,
and for Dask each worker's), the seconds of each stage, and whether the stored
aggregates equal the single-process ones.  Then, from the measured worker
seconds per ping, projects a year of a 900-vehicle fleet at 10 s (about 2.84
billion fixes) on 8, 32 and 128 workers, assuming the work divides evenly
(it is per device: 900 devices keep 128 workers busy) and workers as fast as
the cores measured.
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
import pyarrow.parquet as pq

from beatmap.crs import WGS84, transform_xy

ROOT = Path(__file__).resolve().parents[1]
BEATS = ROOT.parent / "shared" / "realdata" / "chicago" / "police_beats.geojson"
GRID_M = 150
STEP_S = 10
FLEET = 900
YEAR_PINGS = FLEET * 365 * 86_400 // STEP_S
ROW_GROUP = 500_000

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from beatmap import store
from beatmap.settings import read_settings
engine_name, db, settings_path, out = sys.argv[1:5]
files = sorted(str(p) for p in Path(sys.argv[5]).glob("*.parquet"))
settings = read_settings(settings_path)
engine = store.open_store(db)
marks = []
def high_water_mb():  # this process's own peak so far (VmHWM)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def progress(fraction, message):
    marks.append((time.perf_counter(), fraction, message, high_water_mb()))
start = time.perf_counter()
result = {"engine": engine_name}
if engine_name == "single":
    from beatmap.presence import import_pings
    summary = import_pings(engine, files, settings=settings, progress=progress)
    # Progress: "reading N file(s)", "read FILE: ROWS rows" per chunk, "credited device group K of N", "storing".
    reads = [t for t, f, m, _ in marks if m.startswith("read ")]
    t_read = [t for t, f, m, _ in marks if m.startswith("reading")][0]
    t_store = [t for t, f, m, _ in marks if m.startswith("storing")][0]
    t_done = marks[-1][0]
    # The high-water mark at the end of each stage: where the peak was reached.
    result["peak_mb_by_stage"] = {
        "read and stage": round(max([h for t, f, m, h in marks if m.startswith("read")], default=0)),
        "credit and archive": round(max([h for t, f, m, h in marks if m.startswith("credited")], default=0)),
        "write": round(marks[-1][3]),
    }
    stages = {"setup, sweep and hash": t_read - start, "read and stage": (reads[-1] if reads else t_read) - t_read,
              "credit and archive": t_store - (reads[-1] if reads else t_read), "write": t_done - t_store}
    result["stages"] = {k: round(v, 1) for k, v in stages.items()}
else:
    import distributed
    from beatmap.dask_import import import_pings_dask
    workers = int(engine_name.split("-")[1])
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       dashboard_address=None, memory_limit="6GiB")
    client = distributed.Client(cluster)
    with distributed.get_task_stream(client) as stream:
        run = import_pings_dask(engine, [sys.argv[5]], settings=settings, client=client, progress=progress)
    summary = run.summary
    busy = {}
    for task in stream.data:
        key = task["key"][0] if isinstance(task["key"], tuple) else task["key"]
        prefix = ("read and shuffle" if key.startswith("stage_part") else "credit" if key.startswith("credit_partition")
                  else "combine" if key.startswith("_combine") else "hash" if key.startswith("_hash") else "other")
        for part in task["startstops"]:
            if part["action"] == "compute":
                busy[prefix] = busy.get(prefix, 0.0) + part["stop"] - part["start"]
    result["stages"] = {k: round(v, 1) for k, v in run.seconds.items()}
    result["worker_busy_s"] = {k: round(v, 1) for k, v in sorted(busy.items())}
    peaks = client.run(high_water_mb)
    result["worker_peak_mb"] = sorted(round(v) for v in peaks.values())
    result["partitions"] = run.partitions
    # The client's high-water mark when each stage began (the peak of the stages before it).
    result["client_peak_mb_at"] = {m.split(" ")[0]: round(h) for t, f, m, h in marks}
    client.close()
    cluster.close()
result["seconds"] = round(time.perf_counter() - start, 1)
result["used"] = sum(f.used for f in summary.files)
result["rows"] = sum(f.rows for f in summary.files)
result["client_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
Path(out).write_text(json.dumps(result))
"""


def make_dataset(n: int, folder: Path, parts: int, *, seed: int = 21) -> int:
    """``n`` fixes of a fleet as ``parts`` Parquet files (each a slice of time, rows shuffled); the fleet size."""
    rng = np.random.default_rng(seed)
    beats = gpd.read_file(BEATS).to_crs(32616)
    xmin, ymin, xmax, ymax = beats.total_bounds
    devices = int(np.clip(n // 8_640, 1, FLEET))
    per_device = n // devices
    speed = np.where(np.arange(devices) % 2 == 0, 11.0, 1.4)
    x = rng.uniform(xmin + 3000, xmax - 3000, devices)
    y = rng.uniform(ymin + 3000, ymax - 3000, devices)
    heading = rng.uniform(0, 2 * np.pi, devices)
    start = pd.Timestamp("2026-03-02 18:00", tz="UTC").value // 10**9  # local noon in Chicago
    offsets = rng.integers(0, STEP_S, devices)
    bounds = np.linspace(0, per_device, parts + 1).astype(int)
    names = np.char.add("car-", np.arange(devices).astype(str))
    names = np.where(speed < 5, np.char.add("radio-", np.arange(devices).astype(str)), names)
    for k in range(parts):
        steps = bounds[k + 1] - bounds[k]
        turn = rng.normal(0, 0.3, (steps, devices))
        angles = heading + np.cumsum(turn, axis=0)
        xs = x + np.cumsum(np.cos(angles) * speed * STEP_S, axis=0)
        ys = y + np.cumsum(np.sin(angles) * speed * STEP_S, axis=0)
        # Bounce off the edges of the city.
        xs = _reflect(xs, xmin, xmax)
        ys = _reflect(ys, ymin, ymax)
        heading, x, y = angles[-1], xs[-1], ys[-1]
        ts = start + (bounds[k] + np.arange(steps))[:, None] * STEP_S + offsets[None, :]
        lon, lat = transform_xy(
            (xs + rng.normal(0, 5, xs.shape)).ravel(), (ys + rng.normal(0, 5, ys.shape)).ravel(), "EPSG:32616", WGS84
        )
        order = rng.permutation(steps * devices)
        table = pa.table(
            {
                "ts": pa.array(ts.ravel()[order], type=pa.int64()).cast(pa.timestamp("s", tz="UTC")),
                "lat": lat[order].round(6),
                "lon": lon[order].round(6),
                "device_id": pa.array(np.broadcast_to(names, (steps, devices)).ravel()[order]),
            }
        )
        pq.write_table(table, folder / f"part-{k:04d}.parquet", row_group_size=ROW_GROUP)
    return devices


def _reflect(values: np.ndarray, low: float, high: float) -> np.ndarray:
    span = high - low
    folded = (values - low) % (2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def run(engine: str, db: Path, settings: Path, data: Path, out: Path) -> dict:
    """One import in a new process; its figures, with the process's wall time and peak memory."""
    report = out / f"{engine}.json"
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, engine, str(db), str(settings), str(report), str(data)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    _, status, usage = os.wait4(child.pid, 0)
    if status != 0:
        raise SystemExit(f"{engine} import failed with status {status}")
    result = json.loads(report.read_text())
    result["wall_s"] = round(time.perf_counter() - started, 1)
    result["process_peak_mb"] = round(usage.ru_maxrss / 1024)
    return result


def stored(db: Path) -> dict[str, pd.DataFrame]:
    from beatmap import store
    from beatmap.store import presence as presence_store

    engine = store.open_store(str(db))
    presence = presence_store.read_presence(engine)
    visits = presence_store.read_track_visits(engine)
    days = presence_store.read_device_days(engine)
    engine.dispose()
    return {
        "presence": presence.sort_values(list(presence.columns)).reset_index(drop=True),
        "visits": visits.sort_values(list(visits.columns)).reset_index(drop=True),
        "days": days.sort_values(list(days.columns)).reset_index(drop=True),  # a total order: batches share device-days
    }


def same(a: dict[str, pd.DataFrame], b: dict[str, pd.DataFrame]) -> bool:
    try:
        for name in a:
            pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False)
    except AssertionError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=100_000_000)
    parser.add_argument("--parts", type=int, default=0, help="Parquet files (default: one per 5M fixes, at least 4)")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "scale")
    parser.add_argument("--no-single", action="store_true", help="skip the single-process import")
    parser.add_argument(
        "--data",
        type=Path,
        help="import this dataset (a folder of Parquet files an earlier run generated) instead of generating one",
    )
    args = parser.parse_args()
    out = args.out
    if args.data and args.data.resolve().is_relative_to(out.resolve()):
        parser.error(f"--data {args.data} lies inside --out {out}, which each run empties; give another --out")
    if args.data and not any(args.data.glob("*.parquet")):
        parser.error(f"--data {args.data}: no Parquet files there; give the pings folder of an earlier run")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    settings = out / "settings.toml"
    settings.write_text('[department]\ntimezone = "America/Chicago"\n')
    base = out / "areas.db"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "beatmap", "--db", str(base), "--settings", str(settings), "areas", "--beats",
         str(BEATS), "--beat-id", "BEAT_NUM", "--grid-m", str(GRID_M)],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    print(f"areas and block index: {time.perf_counter() - started:.0f} s", flush=True)
    if args.data:
        data = args.data.resolve()
        files = sorted(data.glob("*.parquet"))
        rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        size = sum(f.stat().st_size for f in files)
        print(f"data: {rows:,} fixes in {len(files)} Parquet files ({size / 1e6:,.0f} MB), from {data}", flush=True)
    else:
        data = out / "pings"
        data.mkdir()
        parts = args.parts or max(4, args.pings // 5_000_000)
        started = time.perf_counter()
        devices = make_dataset(args.pings, data, parts)
        size = sum(p.stat().st_size for p in data.iterdir())
        print(
            f"data: {args.pings:,} fixes of {devices} devices in {parts} Parquet files ({size / 1e6:,.0f} MB), "
            f"generated in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    engines = ([] if args.no_single else ["single"]) + [f"dask-{w}" for w in args.workers.split(",") if w]
    results, tables = [], {}
    for engine in engines:
        db = out / f"{engine}.db"
        shutil.copy(base, db)
        result = run(engine, db, settings, data, out)
        result["pings_per_s"] = round(result["used"] / result["wall_s"])
        tables[engine] = stored(db)
        result["same_as_first"] = same(tables[engines[0]], tables[engine])
        results.append(result)
        print(json.dumps(result), flush=True)
    dask_runs = [r for r in results if r["engine"].startswith("dask")]
    if dask_runs:
        best = dask_runs[-1]
        workers = int(best["engine"].split("-")[1])
        per_ping = best["wall_s"] * workers / best["used"]
        busy = sum(best["worker_busy_s"].values()) / best["used"]
        print(
            f"\nmeasured on {best['engine']}: {per_ping * 1e6:.1f} worker-microseconds per fix (wall x workers), "
            f"{busy * 1e6:.1f} of them busy in tasks"
        )
        print(f"projection: a year of {FLEET} vehicles at {STEP_S} s = {YEAR_PINGS:,} fixes")
        for w in (8, 32, 128):
            hours = YEAR_PINGS * per_ping / w / 3600
            print(f"  {w:>3} workers: {hours:,.1f} h  ({YEAR_PINGS / w / 1e6:,.0f} M fixes per worker)")


if __name__ == "__main__":
    main()
