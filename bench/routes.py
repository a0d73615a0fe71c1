"""Benchmark of the walking-route planner on the demo city.

Run: ``.venv/bin/python bench/routes.py [--seed 11] [--sizes 110,210,315] [--time-limit 2]``

Builds demo cities whose beats have 110, 210 and 315 blocks (about 100, 200
and 300 candidate blocks) into temporary stores, with their streets, and
plans 60-minute walks:

* large instances: every block of a beat with a priority above 0 is a
  candidate; planning seconds (target < 5 s, store reads included) and the
  priority covered, against a greedy nearest-neighbour baseline (walk to
  the nearest block that still leaves time to finish; must never beat the
  planner) and, for reference, a greedy by priority per minute; the
  priority with seeds 2 and 3 (equally good routes) and how many of them
  repeat seed 1's stops;
* small instances: 8 or 9 candidate blocks drawn from a beat, so the exact
  optimum can be found by enumerating every visiting order; the gap to it
  (target within 5%).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beatmap import store
from beatmap.demo import make_demo_city, write_demo_city
from beatmap.ingest import import_activity, load_areas
from beatmap.report import block_coverage, window_from_store
from beatmap.routing.network import walking_distances
from beatmap.routing.plan import STREET_MARGIN_M, plan_walking_route, route_from_store
from beatmap.routing.priorities import block_priorities
from beatmap.settings import Settings
from beatmap.streets import load_streets

MINUTES = 60.0


def build_city(folder: Path, *, seed: int, settings: Settings, beats: int, blocks_per_beat: int) -> tuple:
    """A demo city of ``beats`` beats of ``blocks_per_beat`` blocks, with its streets, in a store in ``folder``."""
    folder.mkdir(parents=True)
    city = make_demo_city(seed, n_beats=beats, blocks_per_beat=blocks_per_beat, days=120)
    paths = write_demo_city(city, folder)
    engine = store.open_store(folder / "bench.db")
    load_areas(engine, paths["beats"], blocks_path=paths["blocks"], settings=settings)
    import_activity(engine, paths["activity"], settings=settings, source="demo")
    load_streets(engine, paths["streets"])
    return engine, city


def walk_minutes(distance: np.ndarray, *, speed: float) -> np.ndarray:
    """Walking minutes between points, in whole seconds rounded up, as the planner counts them."""
    return np.ceil(distance / speed * 60) / 60


def greedy(walk: np.ndarray, priority: np.ndarray, *, dwell: float, budget: float, by_ratio: bool) -> float:
    """Priority covered by a greedy walk over [start, end, candidates...] walking minutes.

    ``by_ratio=False``: the nearest block that still leaves time to finish next (ties: higher priority);
    ``by_ratio=True``: the highest priority per minute (walk + dwell) next.
    """
    here, clock, total = 0, 0.0, 0.0
    left = set(range(len(priority)))
    while True:
        best, best_key = None, None
        for k in left:
            reach = walk[here, k + 2]
            if clock + reach + dwell + walk[k + 2, 1] > budget:
                continue
            key = (-priority[k] / (reach + dwell), k) if by_ratio else (reach, -priority[k], k)
            if best_key is None or key < best_key:
                best, best_key = k, key
        if best is None:
            return round(total, 3)
        clock += walk[here, best + 2] + dwell
        total += priority[best]
        here = best + 2
        left.discard(best)


def exact(walk: np.ndarray, priority: np.ndarray, *, dwell: float, budget: float) -> float:
    """The best priority within the budget, by trying every visiting order (small instances only)."""
    n = len(priority)
    best = 0.0

    def extend(here: int, clock: float, total: float, used: int) -> None:
        nonlocal best
        best = max(best, total)
        for k in range(n):
            if used & (1 << k):
                continue
            arrive = clock + walk[here, k + 2] + dwell
            if arrive + walk[k + 2, 1] <= budget:
                extend(k + 2, arrive, total + priority[k], used | (1 << k))

    extend(0, 0.0, 0.0, 0)
    return round(best, 3)


def random_start(rng: np.random.Generator, beat: shapely.Geometry) -> tuple[float, float]:
    """A random (lat, lon) inside a beat given in EPSG:4326."""
    west, south, east, north = beat.bounds
    while True:
        lon, lat = rng.uniform(west, east), rng.uniform(south, north)
        if beat.contains(shapely.Point(lon, lat)):
            return float(lat), float(lon)


def large_rows(engine, city, *, rng, settings: Settings, starts: int, time_limit: float | None) -> list[dict]:
    """Every block with a priority above 0 as a candidate, from random starts: planner, seeds, greedy baselines."""
    speed, dwell = settings.walking_speed_kmh * 1000 / 60, settings.dwell_min
    window = window_from_store(engine, settings=settings)
    rows = []
    for beat_id, beat in zip(city.beats["beat_id"], city.beats.geometry, strict=True):
        coverage = block_coverage(engine, window=window, settings=settings, beat_id=beat_id)
        candidates = coverage.join(block_priorities(coverage, window=window, settings=settings))
        candidates = candidates[candidates["priority"] > 0]
        beat_m = store.read_beats(engine).set_index("beat_id").geometry[beat_id]
        streets = store.read_streets(engine, bounds=beat_m.buffer(STREET_MARGIN_M).bounds)
        for _ in range(starts):
            start = random_start(rng, beat)
            t = time.perf_counter()
            route = route_from_store(
                engine,
                beat_id=beat_id,
                start=start,
                minutes=MINUTES,
                settings=settings,
                seed=1,
                window=window,
                time_limit_s=time_limit,
            )
            seconds = time.perf_counter() - t
            others = [
                route_from_store(
                    engine,
                    beat_id=beat_id,
                    start=start,
                    minutes=MINUTES,
                    settings=settings,
                    seed=seed,
                    window=window,
                    time_limit_s=time_limit,
                )
                for seed in (2, 3)
            ]
            walk = walk_minutes(walking_distances(candidates, streets, start=start, end=start).distance, speed=speed)
            pri = candidates["priority"].to_numpy(dtype=float)
            rows.append(
                {
                    "instance": f"{beat_id} large",
                    "candidates": route.candidates,
                    "seconds": round(seconds, 2),
                    "stops": len(route.stops),
                    "planner": route.priority,
                    "seeds_2_3": "/".join(f"{r.priority:g}" for r in others),
                    "same_order": sum(r.stops == route.stops for r in others),
                    "greedy_nn": greedy(walk, pri, dwell=dwell, budget=MINUTES, by_ratio=False),
                    "greedy_ratio": greedy(walk, pri, dwell=dwell, budget=MINUTES, by_ratio=True),
                    "exact": None,
                }
            )
    return rows


def small_rows(engine, city, *, rng, settings: Settings, count: int, time_limit: float | None) -> list[dict]:
    """8 or 9 candidate blocks near a random start, so the exact optimum can be found by trying every order."""
    speed, dwell = settings.walking_speed_kmh * 1000 / 60, settings.dwell_min
    window = window_from_store(engine, settings=settings)
    rows = []
    for i in range(count):
        which = i % len(city.beats)
        beat_id, beat = city.beats["beat_id"].iloc[which], city.beats.geometry.iloc[which]
        coverage = block_coverage(engine, window=window, settings=settings, beat_id=beat_id)
        pool = coverage.join(block_priorities(coverage, window=window, settings=settings))
        pool = pool[pool["priority"] > 0]
        size = 8 + i % 2
        start = random_start(rng, beat)
        beat_m = store.read_beats(engine).set_index("beat_id").geometry[beat_id]
        streets = store.read_streets(engine, bounds=beat_m.buffer(STREET_MARGIN_M).bounds)
        # Blocks within about 600 m of the start, so that several fit in an hour and the order matters.
        start_m = walking_distances(pool.iloc[:1], None, start=start, end=start).xy[0]
        near = pool[pool.geometry.distance(shapely.Point(start_m)) < 600]
        candidates = near.sample(n=min(size, len(near)), random_state=int(rng.integers(1 << 31)))
        t = time.perf_counter()
        route = plan_walking_route(
            candidates,
            streets,
            start=start,
            minutes=MINUTES,
            settings=settings,
            seed=1,
            beat_id=beat_id,
            time_limit_s=time_limit,
        )
        seconds = time.perf_counter() - t
        walk = walk_minutes(walking_distances(candidates, streets, start=start, end=start).distance, speed=speed)
        pri = candidates["priority"].to_numpy(dtype=float)
        rows.append(
            {
                "instance": f"{beat_id} small",
                "candidates": len(candidates),
                "seconds": round(seconds, 2),
                "stops": len(route.stops),
                "planner": route.priority,
                "seeds_2_3": "",
                "same_order": None,
                "greedy_nn": greedy(walk, pri, dwell=dwell, budget=MINUTES, by_ratio=False),
                "greedy_ratio": greedy(walk, pri, dwell=dwell, budget=MINUTES, by_ratio=True),
                "exact": exact(walk, pri, dwell=dwell, budget=MINUTES),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=11, help="demo city seed")
    parser.add_argument("--time-limit", type=float, default=None, help="solver seconds (default: settings)")
    parser.add_argument(
        "--sizes",
        default="110,210,315",
        help="blocks per beat of the demo cities built, comma-separated (default: cities whose "
        "beats have about 100, 200 and 300 candidate blocks)",
    )
    parser.add_argument("--beats", type=int, default=3, help="beats per demo city")
    parser.add_argument("--starts", type=int, default=3, help="start points per beat")
    parser.add_argument("--small", type=int, default=10, help="small instances (on the first city)")
    args = parser.parse_args()
    settings = Settings()
    dwell = settings.dwell_min
    rng = np.random.default_rng(args.seed)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, size in enumerate(int(v) for v in args.sizes.split(",")):
            t0 = time.perf_counter()
            engine, city = build_city(
                Path(tmp) / str(size), seed=args.seed, settings=settings, beats=args.beats, blocks_per_beat=size
            )
            print(
                f"demo city seed {args.seed}: {len(city.beats)} beats, {len(city.blocks)} blocks, "
                f"{len(city.streets)} street segments, built in {time.perf_counter() - t0:.1f} s"
            )
            rows += large_rows(engine, city, rng=rng, settings=settings, starts=args.starts, time_limit=args.time_limit)
            if n == 0:
                rows += small_rows(
                    engine, city, rng=rng, settings=settings, count=args.small, time_limit=args.time_limit
                )
            engine.dispose()
    print()

    table = pd.DataFrame(rows)
    table["vs_greedy_nn"] = (table["planner"] - table["greedy_nn"]).round(3)
    table["gap_to_exact_pct"] = (100 * (table["exact"] - table["planner"]) / table["exact"]).round(2)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(f"{MINUTES:g}-minute walks, {dwell:g} min on each block, {settings.walking_speed_kmh:g} km/h\n")
        print(table.to_string(index=False))
    large, small = table[table["instance"].str.endswith("large")], table[table["instance"].str.endswith("small")]
    print("\nsummary")
    print(f"  planning seconds: max {table['seconds'].max():.2f}, mean {table['seconds'].mean():.2f} (target < 5)")
    print(
        f"  large: planner mean priority {large['planner'].mean():.2f} vs greedy nearest-neighbour "
        f"{large['greedy_nn'].mean():.2f} (+{100 * (large['planner'].mean() / large['greedy_nn'].mean() - 1):.1f}%)"
        f", greedy by priority per minute {large['greedy_ratio'].mean():.2f}"
    )
    print(
        f"  planner >= greedy nearest-neighbour on every instance: {bool((table['vs_greedy_nn'] >= 0).all())}; "
        f"planner >= greedy by priority per minute on {int((table['planner'] >= table['greedy_ratio']).sum())} "
        f"of {len(table)}"
    )
    spread = [max(abs(float(p) - r.planner) for p in r.seeds_2_3.split("/")) for r in large.itertuples()]
    print(
        f"  seeds 1, 2, 3 on each large instance: largest difference in priority {max(spread):.3f}; "
        f"{int(large['same_order'].sum())} of {2 * len(large)} other-seed routes repeat seed 1's stops"
    )
    print(
        f"  small: max gap to the exact optimum {small['gap_to_exact_pct'].max():.2f}% "
        f"(mean {small['gap_to_exact_pct'].mean():.2f}%, target within 5%)"
    )


if __name__ == "__main__":
    main()
