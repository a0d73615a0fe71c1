"""The baseline of ``bench/pipeline.py``: the script a GIS analyst would write with geopandas.

    python bench/plain_pipeline.py BEATS.geojson BEAT_FIELD ACTIVITY.csv GRID_M OUT.csv

Builds a square grid cut by the beats (``shapely.box`` on arrays), reads the
activity CSV, keeps the last 90 days, projects and joins the points to the
blocks, counts per block and kind, sets the three flags and writes one row
per block.  No validation, no duplicate detection, no store.
"""

from __future__ import annotations

import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.special import pdtr

WINDOW_DAYS = 90
RARELY_FRACTION, RARELY_CONFIDENCE, ENFORCEMENT_ONLY_MIN = 0.25, 0.95, 3


def main(beats_path: str, beat_field: str, activity_path: str, grid_m: float, out_path: str) -> None:
    beats = gpd.read_file(beats_path)[[beat_field, "geometry"]].rename(columns={beat_field: "beat_id"})
    beats = beats.dissolve("beat_id").reset_index().to_crs(beats.estimate_utm_crs())
    xmin, ymin, xmax, ymax = beats.total_bounds
    gx, gy = np.meshgrid(np.arange(xmin, xmax, grid_m), np.arange(ymin, ymax, grid_m))
    cells = gpd.GeoDataFrame(
        geometry=shapely.box(gx.ravel(), gy.ravel(), gx.ravel() + grid_m, gy.ravel() + grid_m), crs=beats.crs
    )
    blocks = gpd.overlay(cells, beats, how="intersection", keep_geom_type=True)
    blocks["block_id"] = np.arange(len(blocks))

    activity = pd.read_csv(activity_path, engine="pyarrow")
    activity["occurred_at"] = pd.to_datetime(activity["occurred_at"], utc=True, format="ISO8601")
    end = activity["occurred_at"].max().normalize() + pd.Timedelta(days=1)
    activity = activity[activity["occurred_at"] >= end - pd.Timedelta(days=WINDOW_DAYS)]
    points = gpd.GeoDataFrame(
        activity[["kind"]], geometry=gpd.points_from_xy(activity["lon"], activity["lat"]), crs="EPSG:4326"
    ).to_crs(blocks.crs)
    joined = gpd.sjoin(points, blocks[["block_id", "geometry"]], predicate="within", how="inner")
    counts = joined.groupby(["block_id", "kind"]).size().unstack(fill_value=0)

    table = blocks[["block_id", "beat_id"]].join(counts, on="block_id")
    for kind in ("foot_patrol", "community_visit", "enforcement"):
        table[kind] = table[kind].fillna(0).astype(int) if kind in table else 0
    visits = table["foot_patrol"] + table["community_visit"]
    typical = visits.groupby(table["beat_id"]).transform("median")
    enforcement_only = (visits == 0) & (table["enforcement"] >= ENFORCEMENT_ONLY_MIN)
    unvisited = (visits == 0) & ~enforcement_only
    rarely = (visits > 0) & (pdtr(visits, (RARELY_FRACTION * typical).clip(lower=1e-12)) < 1 - RARELY_CONFIDENCE)
    table["flag"] = np.select(
        [enforcement_only, unvisited, rarely], ["enforcement_only", "unvisited", "rarely_visited"], default=""
    )
    table.to_csv(out_path, index=False)
    print(f"{len(table):,} blocks, {int((table['flag'] != '').sum()):,} flagged")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5])
