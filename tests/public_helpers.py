"""A tiny city for the public map tests: two beats of four 200 m blocks, and activity placed on named blocks."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from beatmap import store
from beatmap.presence import import_pings
from beatmap.publish import publish_snapshot
from beatmap.settings import Settings
from beatmap.streets import load_streets
from tests import conftest

#: Publication date of the tiny city's snapshots: they publish the period 2026-03-02 to 2026-05-31.
AS_OF = date(2026, 6, 10)
DATA_END = date(2026, 5, 31)
#: Blocks of the tiny city: beat A's four blocks, then beat B's.
A, B = "A", "B"


def tiny_city(folder: Path, *, settings: Settings) -> Engine:
    """A store with beats A and B (400 m squares) cut into four 200 m blocks each, and no activity."""
    return conftest.load_two_beats(
        store.open_store(conftest.store_db(folder / "tiny.db")), folder, settings=settings, ids=(A, B)
    )


def block_points(engine: Engine) -> pd.DataFrame:
    """``block_id``, ``beat_id``, ``lat``, ``lon`` (centroid) of every block, sorted by block id."""
    blocks = store.read_blocks(engine)
    centres = blocks.geometry.centroid.to_crs("EPSG:4326")
    return pd.DataFrame(
        {
            "block_id": blocks["block_id"],
            "beat_id": blocks["beat_id"],
            "lat": centres.y.round(7),
            "lon": centres.x.round(7),
        }
    )


def blocks_of(engine: Engine, beat_id: str) -> list[str]:
    """Block ids of one beat, sorted."""
    points = block_points(engine)
    return points.loc[points["beat_id"] == beat_id, "block_id"].tolist()


def activity_rows(
    engine: Engine, counts: dict[tuple[str, str], int], *, first_day: date = date(2026, 3, 2), days: int = 5
) -> list[str]:
    """CSV rows: ``counts[(block_id, kind)]`` events on that block, spread over ``days`` days from ``first_day``."""
    points = block_points(engine).set_index("block_id")
    rows = []
    for (block_id, kind), n in counts.items():
        lat, lon = points.at[block_id, "lat"], points.at[block_id, "lon"]
        for i in range(n):
            day = first_day + pd.Timedelta(days=i % days)
            rows.append(f"{day.isoformat()}T{9 + i // 60 % 10:02d}:{i % 60:02d},{lat},{lon},{kind}")
    return rows


def import_rows(engine: Engine, folder: Path, rows: list[str], *, settings: Settings, name: str = "a.csv") -> None:
    """Import canonical activity rows (``occurred_at,lat,lon,kind``) into the store, at a clock after every
    period the snapshots publish, and check that every row went in."""
    summary = conftest.import_rows(
        engine, folder, rows, settings=settings, name=name, now=pd.Timestamp("2026-11-01", tz="UTC")
    )
    assert summary.rejected == 0 and summary.imported == len(rows), summary


def publish_tiny_city(
    folder: Path, counts: dict[tuple[str, int, str], int], *, settings: Settings, streets: bool = False
) -> Path:
    """The tiny city with ``counts[(beat_id, i, kind)]`` events on the ``i``-th block of that beat (see
    :func:`activity_rows`), published as of AS_OF; returns the published folder, ``folder/public``.
    ``streets``: with a street on every block edge (:func:`named_streets`), loaded before publishing."""
    engine = tiny_city(folder, settings=settings)
    if streets:
        named_streets().to_file(folder / "streets.geojson")
        load_streets(engine, folder / "streets.geojson")
    blocks = {beat_id: blocks_of(engine, beat_id) for beat_id in (A, B)}
    rows = activity_rows(engine, {(blocks[beat_id][i], kind): n for (beat_id, i, kind), n in counts.items()})
    import_rows(engine, folder, rows, settings=settings)
    publish_snapshot(engine, folder / "public", settings=settings, as_of=AS_OF)
    engine.dispose()
    return folder / "public"


#: The tiny city's street names: east-west streets at y = 0, 200, 400 m; avenues at x = 0, 200, ... 800 m.
STREETS_EW = ("South St", "Middle St", "North St")
AVENUES = ("1st Ave", "2nd Ave", "3rd Ave", "4th Ave", "5th Ave")


def named_streets():
    """A street on every block edge of the tiny city (EPSG:4326), named by :data:`STREETS_EW` and :data:`AVENUES`."""
    from tests.street_city import XS, YS, street_grid

    grid = street_grid()
    names = [STREETS_EW[YS.index(y)] for y in YS for _ in XS[1:]] + [AVENUES[XS.index(x)] for x in XS for _ in YS[1:]]
    return grid.assign(name=names)


#: GPS stays of the presence tests: two devices on the first block of beat A (withheld), three on its second
#: (61 minutes, published as 60).
PRESENCE_STAYS: dict[int, list[tuple[str, int]]] = {
    0: [("r1", 20), ("r2", 20)],
    1: [("r1", 20), ("r2", 20), ("r3", 21)],
}


def stay_rows(lat: float, lon: float, start: pd.Timestamp, minutes: int, device: str) -> list[str]:
    times = pd.date_range(start, start + pd.Timedelta(minutes=minutes), freq="30s")
    return [f"{t.strftime('%Y-%m-%dT%H:%M:%SZ')},{lat},{lon},{device}" for t in times]


def city_with_stays(folder: Path, settings, stays: dict[int, list[tuple[str, int]]]):
    """The tiny city with GPS stays on foot inside the period AS_OF publishes: ``stays[i]`` lists (device, minutes)
    on the i-th block (by block id); returns the store and :func:`block_points`."""
    engine = tiny_city(folder, settings=settings)
    points = block_points(engine).reset_index(drop=True)
    rows = []
    day = pd.Timestamp("2026-03-10 15:00", tz="UTC")
    for i, devices in stays.items():
        lat, lon = points.at[i, "lat"], points.at[i, "lon"]
        for k, (device, minutes) in enumerate(devices):
            # Each stay its own afternoon, so devices never overlap in time.
            rows += stay_rows(lat, lon, day + pd.Timedelta(days=10 * i + k), minutes, device)
    path = folder / "pings.csv"
    path.write_text("\n".join(["ts,lat,lon,device_id", *rows]) + "\n")
    import_pings(engine, [path], settings=settings)
    return engine, points


def publish_large_city(folder: Path, *, beats: int = 300, per_beat: int = 84, seed: int = 3) -> Path:
    """A snapshot of a city of ``beats`` x ``per_beat`` blocks (25,200 by default: San Jose's size), written
    from generated aggregates through the publishing code (no store: a store this size takes minutes)."""
    import geopandas as gpd
    import numpy as np
    import shapely

    from beatmap.privacy import (
        PublicAggregates,
        level_cuts,
        public_beats,
        public_blocks,
        snapshot_period,
        weekly_coverage,
    )
    from beatmap.publish import DEFAULT_LEAFLET_DIR, write_snapshot

    rng = np.random.default_rng(seed)
    settings = Settings()
    side, block = 12, 90.0  # beats on a square grid; 90 m blocks, per_beat of them in a row-major patch
    rows = max(1, int(np.ceil(np.sqrt(per_beat))))
    records, streets = [], []
    for b in range(beats):
        bx, by = (b % side) * rows * block, (b // side) * rows * block
        for i in range(per_beat):
            r, c = divmod(i, rows)
            x, y = 440_000 + bx + c * block, 4_630_000 + by + r * block
            records.append((f"B{b:03d}-{i:03d}", f"B{b:03d}", shapely.box(x, y, x + block - 12, y + block - 12)))
            street_row = (by // block) + r
            streets.append(
                f"W {street_row + 1} St between N {int(bx // block) + c + 1} Ave and N {int(bx // block) + c + 2} Ave"
            )
    n = len(records)
    visits = rng.choice([0, 0, 1, 2, 3, 5, 8, 13, 21], n)
    enforcement = rng.choice([0, 0, 0, 1, 4, 9], n)
    coverage = gpd.GeoDataFrame(
        {
            "block_id": [r[0] for r in records],
            "beat_id": [r[1] for r in records],
            "visits": visits,
            "enforcement": enforcement,
        },
        geometry=[r[2] for r in records],
        crs="EPSG:32616",
    )
    period = snapshot_period(AS_OF, delay_days=settings.public_delay_days, timezone=settings.timezone)
    cuts = level_cuts(coverage["visits"].astype(int), min_count=settings.public_min_count)
    blocks = public_blocks(
        coverage, min_count=settings.public_min_count, cuts=cuts, streets=pd.Series(streets, index=coverage["block_id"])
    )
    days = pd.date_range(period.start, period.end, freq="D", tz=settings.timezone)
    visited = np.repeat(np.arange(n), visits)
    events = pd.DataFrame(
        {
            "occurred_at": days[rng.integers(0, len(days), len(visited))] + pd.Timedelta(hours=10),
            "kind": "foot_patrol",
            "block_id": coverage["block_id"].to_numpy()[visited],
        }
    )
    aggregates = PublicAggregates(
        blocks=blocks,
        beats=public_beats(blocks),
        trend=weekly_coverage(events, blocks, period=period),
        period=period,
        as_of=AS_OF,
        delay_days=settings.public_delay_days,
        min_count=settings.public_min_count,
        level_cuts=cuts,
    )
    out = folder / "large"
    out.mkdir(parents=True)
    write_snapshot(aggregates, out, settings=settings, leaflet_dir=DEFAULT_LEAFLET_DIR)
    return out
