"""Benchmark of the coverage core on demo cities; prints figures.

    python bench/coverage_core.py [--beats 300] [--blocks-per-beat 84] [--points 1000000]

1. Point-to-block assignment of N points over a city of about 25,000 blocks:
   beatmap's ``activity_to_blocks`` (edge tie-break, street-gap snapping) against
   the baseline a GIS analyst would write, ``geopandas.sjoin(predicate="within")``,
   on the same points, with the share of points both assign to the same block.
2. A full ``beatmap import`` of the default demo city's year of activity into a
   fresh SQLite store (rows per second).
3. Coverage and flags for every block of the large city over 90 days.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from beatmap import store
from beatmap.assign import activity_to_blocks
from beatmap.crs import WGS84, transform_xy
from beatmap.demo import make_demo_city, write_demo_city
from beatmap.ingest import import_activity, load_areas
from beatmap.metrics import Window, coverage_by_block, neighbour_pairs
from beatmap.settings import Settings


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beats", type=int, default=300)
    parser.add_argument("--blocks-per-beat", type=int, default=84)
    parser.add_argument("--points", type=int, default=1_000_000)
    args = parser.parse_args()

    city, seconds = timed(make_demo_city, 7, n_beats=args.beats, blocks_per_beat=args.blocks_per_beat)
    print(
        f"demo city: {len(city.beats)} beats, {len(city.blocks):,} blocks, {len(city.activity):,} events "
        f"(generated in {seconds:.1f} s)"
    )
    blocks = city.blocks.to_crs("EPSG:32616")
    sample = city.activity.sample(n=min(args.points, len(city.activity)), random_state=1)
    x, y = transform_xy(sample["lon"].to_numpy(), sample["lat"].to_numpy(), WGS84, blocks.crs)

    ours, t_ours = timed(activity_to_blocks, x, y, blocks)

    def plain_sjoin() -> gpd.GeoDataFrame:
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=blocks.crs)
        return gpd.sjoin(points, blocks[["block_id", "geometry"]], predicate="within", how="left")

    joined, t_sjoin = timed(plain_sjoin)
    baseline = joined[~joined.index.duplicated(keep="first")]["block_id"].to_numpy()
    agree = np.mean(ours["block_id"].to_numpy() == baseline)
    print(f"\nassignment of {len(x):,} points to {len(blocks):,} blocks")
    print(f"  beatmap activity_to_blocks  {t_ours:6.2f} s  {len(x) / t_ours:>12,.0f} points/s")
    print(f"  geopandas sjoin (within)    {t_sjoin:6.2f} s  {len(x) / t_sjoin:>12,.0f} points/s")
    print(f"  ratio beatmap / sjoin       {t_ours / t_sjoin:6.2f}")
    print(f"  same block as sjoin         {agree:.4%}")

    small = make_demo_city(7)
    settings = Settings(timezone=small.timezone)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_demo_city(small, Path(tmp))
        engine = store.open_store(Path(tmp) / "bench.db")
        load_areas(engine, paths["beats"], blocks_path=paths["blocks"], settings=settings)
        summary, t_import = timed(import_activity, engine, paths["activity"], settings=settings, source="bench")
        _, t_again = timed(import_activity, engine, paths["activity"], settings=settings, source="bench")
        engine.dispose()
    print(f"\nimport of the default demo year ({summary.rows:,} rows) into a new SQLite store")
    print(f"  first import                {t_import:6.2f} s  {summary.rows / t_import:>12,.0f} rows/s")
    print(f"  same file again (all dups)  {t_again:6.2f} s  {summary.rows / t_again:>12,.0f} rows/s")

    events = city.activity.assign(
        occurred_at=pd.to_datetime(city.activity["occurred_at"])
        .dt.tz_localize(city.timezone, ambiguous=True, nonexistent="shift_forward")
        .dt.tz_convert("UTC"),
        block_id=activity_to_blocks(
            *transform_xy(city.activity["lon"].to_numpy(), city.activity["lat"].to_numpy(), WGS84, blocks.crs), blocks
        )["block_id"].to_numpy(),
    )[["occurred_at", "kind", "officer_id", "block_id"]]
    window = Window(pd.Timestamp(city.end).date() - pd.Timedelta(days=89), city.end, city.timezone)
    pairs, t_pairs = timed(neighbour_pairs, city.blocks.to_crs("EPSG:32616"))
    cov, t_cov = timed(
        coverage_by_block,
        city.blocks[["block_id", "beat_id"]],
        events,
        window=window,
        settings=Settings(timezone=city.timezone),
        neighbours=pairs,
    )
    print(f"\ncoverage and flags for {len(cov):,} blocks over 90 days ({len(events):,} events in the year)")
    print(f"  neighbour_pairs (once per set of areas) {t_pairs:6.2f} s  ({len(pairs):,} pairs)")
    print(f"  coverage_by_block           {t_cov:6.2f} s  ({cov['flag'].notna().sum():,} flagged)")


if __name__ == "__main__":
    main()
