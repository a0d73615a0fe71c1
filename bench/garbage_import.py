"""Benchmark: what a file of garbage rows costs the store and the memory, with rejects kept per reason.

    python bench/garbage_import.py [--rows 500000] [--kept 1000]

Writes ``--rows`` rows that all fail (unreadable times, unknown kinds) plus one good row, imports them
into a fresh SQLite store over the two-beat test city, and prints the store's size before and after, the
rejected rows kept, the peak memory of the process and the time.  Run it twice with a different
``--kept`` to compare: the figures of one machine, in one run each.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beatmap import store
from beatmap.ingest import import_activity, load_areas
from beatmap.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--kept", type=int, default=1000, help="rejects_kept_per_reason")
    args = parser.parse_args()
    settings = Settings(timezone="America/Chicago", rejects_kept_per_reason=args.kept)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        beats = gpd.GeoDataFrame(
            {"beat_id": ["A", "B"]},
            geometry=[shapely.box(447000, 4636000, 447400, 4636400), shapely.box(447400, 4636000, 447800, 4636400)],
            crs="EPSG:32616",
        )
        beats.to_file(folder / "beats.geojson")
        engine = store.open_store(folder / "s.db")
        load_areas(engine, folder / "beats.geojson", settings=settings, grid_m=200)
        path = folder / "garbage.csv"
        with path.open("w") as fh:
            fh.write("occurred_at,lat,lon,kind,notes\n2026-03-01T10:00,41.87596,-87.63631,foot_patrol,ok\n")
            for i in range(args.rows):
                fh.write(f"garbage-{i},41.87596,-87.63631,{'nap' if i % 2 else 'foot_patrol'},junk text {i}\n")
        before = (folder / "s.db").stat().st_size
        start = time.perf_counter()
        summary = import_activity(engine, path, settings=settings)
        seconds = time.perf_counter() - start
        after = (folder / "s.db").stat().st_size
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"rows {summary.rows:,}: imported {summary.imported:,}, rejected {summary.rejected:,} "
            f"in {len(summary.reject_reasons)} reasons; kept {summary.rejects_kept:,} rejected rows "
            f"(rejects_kept_per_reason = {args.kept:,})"
        )
        print(
            f"file {path.stat().st_size / 1e6:.1f} MB; store {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB; "
            f"peak memory {peak_mb:,.0f} MB; {seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
