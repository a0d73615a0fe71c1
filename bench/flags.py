"""How often the ``rarely_visited`` rules find planted neglect, and how often they cry wolf.

Run: ``.venv/bin/python bench/flags.py [--replicates 4] [--seed 1] [--realdata ../shared/realdata]``

Ground truth is planted over real beats nobody here drew: Chicago's 275
police beats cut into a 150 m grid (29,720 blocks) and Houston's hand-traced
beats (repaired by beatmap's loader) in a 250 m grid.  Enforcement counts are
the real 2019 Chicago crimes on their blocks (Houston: none published, so
Poisson with mean 2).  Visits are drawn, because no department publishes foot
patrols.

The planting is fixed here, before any rule is compared, and not tuned to one:

* each beat's *typical* rate (visits per block in a 90-day window): a quarter
  of the beats are quiet (uniform 2-5), a third middling (log-uniform 8-32),
  the rest busy (log-uniform 32-96);
* overdispersion between blocks: each block's rate is multiplied by a gamma
  draw of mean 1 and coefficient of variation 0.3 (main streets and side
  streets);
* overdispersion between days: visits come in clumps (a block-day's rate is
  a gamma draw of shape 0.5), so a block's 90-day count is a negative
  binomial, not a Poisson;
* neglect: in about half the beats a round zone 300-600 m across (its centre
  anywhere in the beat, so it cuts blocks in part and may cross a beat
  edge), and in every beat two single blocks away from it; each at a depth
  drawn from 0%, 10%, 25%, 50% and 75% of the surrounding rate.  A block
  partly in a zone gets the depth in proportion to its area inside.  75% is
  the control: a block there should not be flagged.

Truth per block: its *relative rate* = block effect x planted depth.  A flag
(any of ``enforcement_only``, ``unvisited``, ``rarely_visited``) is a hit on a
planted block; at 0% depth ``unvisited`` and ``enforcement_only`` count too.

Printed per rule and band of typical (quiet <= 5, middling 8-32, busy >= 32):

* recall of single planted blocks by depth;
* recall per zone block (blocks mostly inside a zone, by depth) and per zone
  (share of zones with at least 95% of their mostly-inside blocks flagged);
* false alarms: the share flagged among unplanted blocks at a normal rate
  (relative rate >= 0.75, no zone touching them), and among single blocks
  planted at 75%;
* precision of flagged area: the share of the flagged blocks' area that lies
  in neglected ground (a zone or a single block planted at 50% or deeper).

An operating curve of the default rule over its confidence follows.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from beatmap.areas import block_neighbours, prepare_areas, read_layer
from beatmap.assign import activity_to_blocks
from beatmap.crs import WGS84, transform_xy
from beatmap.flags import (
    rarely_by_empirical_bayes,
    rarely_by_neighbours,
    rarely_by_poisson,
    typical_visits,
)

DEPTHS = (0.0, 0.10, 0.25, 0.50, 0.75)
BLOCK_CV = 0.3
DAY_SHAPE = 0.5
WINDOW_DAYS = 90
ENFORCEMENT_ONLY_MIN = 3
BANDS = {"quiet <=5": (0, 5.5), "middling 8-32": (5.5, 32), "busy >=32": (32, 1e9)}


@dataclass(frozen=True)
class Rule:
    """One rule and its parameters, as the settings would give them."""

    name: str
    method: str
    fraction: float
    confidence: float
    gate: float = 0.0

    def flag(self, visits: np.ndarray, beats: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        typical = typical_visits(visits, beats)
        if self.method == "poisson":
            return rarely_by_poisson(visits, typical, fraction=self.fraction, confidence=self.confidence)[0]
        if self.method == "neighbours":
            return rarely_by_neighbours(
                visits, typical, pairs, fraction=self.fraction, confidence=self.confidence, gate=self.gate
            )[0]
        return rarely_by_empirical_bayes(visits, typical, beats, fraction=self.fraction, confidence=self.confidence)[0]


#: The default of the settings (rarely_rule, rarely_fraction, rarely_confidence, rarely_neighbour_gate).
CHOSEN = Rule("neighbours, 75% of typical, 98%, gate 0.1 (the default)", "neighbours", 0.75, 0.98, 0.1)
RULES = (
    Rule("before: poisson, 25% of typical, 95%", "poisson", 0.25, 0.95),
    Rule("poisson, 50% of typical, 95%", "poisson", 0.50, 0.95),
    Rule("poisson, 75% of typical, 99%", "poisson", 0.75, 0.99),
    Rule("empirical Bayes, 75% of typical, 99%", "empirical_bayes", 0.75, 0.99),
    Rule("neighbours, 75% of typical, 99%, gate 0.3", "neighbours", 0.75, 0.99, 0.3),
    CHOSEN,
)


@dataclass
class City:
    """Real beats cut into grid blocks, with real (or stand-in) enforcement per block."""

    name: str
    blocks: gpd.GeoDataFrame
    pairs: tuple[np.ndarray, np.ndarray]
    enforcement: np.ndarray | None


def load_cities(root: Path) -> list[City]:
    cities = []
    layer = read_layer(root / "chicago" / "police_beats.geojson")
    _, blocks, _ = prepare_areas(layer, None, beat_id_field="BEAT_NUM", grid_m=150)
    crimes = pd.read_csv(root / "chicago" / "crimes_2019_sample20k.csv", usecols=["latitude", "longitude"]).dropna()
    x, y = transform_xy(crimes["longitude"].to_numpy(), crimes["latitude"].to_numpy(), WGS84, blocks.crs)
    placed = activity_to_blocks(x, y, blocks)
    at = pd.Index(blocks["block_id"]).get_indexer(placed["block_id"].dropna())
    cities.append(City("Chicago, 150 m", blocks, block_neighbours(blocks), np.bincount(at, minlength=len(blocks))))
    layer = read_layer(root / "houston" / "hpd_beats_hand_traced.geojson")
    _, blocks, _ = prepare_areas(layer, None, beat_id_field="name", grid_m=250)
    cities.append(City("Houston, 250 m", blocks, block_neighbours(blocks), None))
    return cities


@dataclass
class Planting:
    """One replicate's truth and counts over a city."""

    typical: np.ndarray  # the beat's planted typical rate, per block
    relative: np.ndarray  # block effect x depth
    single_depth: np.ndarray  # NaN unless the block is a planted single block
    zone: np.ndarray  # the zone a block lies mostly inside (-1: none)
    zone_depth: np.ndarray  # per zone
    in_zone: np.ndarray  # share of the block's area inside a zone
    neglected_area: np.ndarray  # area of the block in neglected ground (depth <= 50%)
    visits: np.ndarray
    enforcement: np.ndarray


def plant(city: City, rng: np.random.Generator) -> Planting:
    blocks = city.blocks
    n = len(blocks)
    beats = blocks["beat_id"].to_numpy()
    beat_ids = np.unique(beats)
    kind = rng.random(len(beat_ids))
    level = np.where(
        kind < 0.25,
        rng.uniform(2, 5, len(beat_ids)),
        np.where(
            kind < 0.58,
            np.exp(rng.uniform(np.log(8), np.log(32), len(beat_ids))),
            np.exp(rng.uniform(np.log(32), np.log(96), len(beat_ids))),
        ),
    )
    typical = pd.Series(level, index=beat_ids).reindex(beats).to_numpy()
    effect = rng.gamma(1 / BLOCK_CV**2, BLOCK_CV**2, n)
    depth = np.ones(n)
    areas = blocks.geometry.area.to_numpy()
    centres = shapely.get_coordinates(blocks.geometry.representative_point().to_numpy())
    tree = shapely.STRtree(blocks.geometry.to_numpy())

    zone_circles: list[tuple[float, float, float]] = []
    zone_depth: list[float] = []
    zone = np.full(n, -1)
    in_zone = np.zeros(n)
    neglected = np.zeros(n)
    for beat in beat_ids:
        if rng.random() >= 0.5:
            continue
        members = np.flatnonzero(beats == beat)
        cx, cy = centres[rng.choice(members)] + rng.uniform(-75, 75, 2)
        radius = rng.uniform(150, 300)
        if any(np.hypot(cx - x, cy - y) < radius + r + 300 for x, y, r in zone_circles):
            continue
        circle = shapely.Point(cx, cy).buffer(radius, 32)
        hit = tree.query(circle, predicate="intersects")
        share = np.clip(shapely.area(shapely.intersection(blocks.geometry.to_numpy()[hit], circle)) / areas[hit], 0, 1)
        d = DEPTHS[rng.integers(len(DEPTHS))]
        number = len(zone_circles)
        zone_circles.append((cx, cy, radius))
        zone_depth.append(d)
        depth[hit] = 1 - (1 - d) * share
        in_zone[hit] = share
        zone[hit[share > 0.5]] = number
        if d <= 0.5:
            neglected[hit] = share * areas[hit]

    single_depth = np.full(n, np.nan)
    zx, zy, zr = (
        (np.array([c[i] for c in zone_circles]) for i in range(3))
        if zone_circles
        else (np.empty(0), np.empty(0), np.empty(0))
    )
    far_from_zones = np.all(np.hypot(centres[:, :1] - zx, centres[:, 1:] - zy) > zr + 450, axis=1) & (in_zone == 0)
    taken: list[int] = []
    for beat in beat_ids:
        members = np.flatnonzero((beats == beat) & far_from_zones)
        rng.shuffle(members)
        chosen = 0
        for i in members:
            if chosen == 2:
                break
            if taken and np.min(np.hypot(*(centres[taken] - centres[i]).T)) < 450:
                continue
            d = DEPTHS[rng.integers(len(DEPTHS))]
            single_depth[i], depth[i] = d, d
            if d <= 0.5:
                neglected[i] = areas[i]
            taken.append(i)
            chosen += 1

    rate = typical * effect * depth
    clumped = rng.gamma(WINDOW_DAYS * DAY_SHAPE, 1 / (WINDOW_DAYS * DAY_SHAPE), n)
    visits = rng.poisson(rate * clumped)
    enforcement = city.enforcement if city.enforcement is not None else rng.poisson(2.0, n)
    return Planting(
        typical, effect * depth, single_depth, zone, np.array(zone_depth), in_zone, neglected, visits, enforcement
    )


def any_flag(rule: Rule, city: City, p: Planting) -> tuple[np.ndarray, np.ndarray]:
    """Every flag of each block under ``rule`` (all flags count as hits), and the rarely_visited ones alone."""
    rarely = rule.flag(p.visits, city.blocks["beat_id"].to_numpy(), city.pairs)
    return (p.visits == 0) | rarely, rarely & (p.visits > 0)


def evaluate(rule: Rule, city: City, plantings: list[Planting]) -> pd.DataFrame:
    """One row per band of typical: recall, false alarms and precision over the replicates."""
    areas = city.blocks.geometry.area.to_numpy()
    rows = []
    stats: dict[str, dict[str, list[float]]] = {band: {} for band in BANDS}

    def add(band: str, key: str, values: np.ndarray) -> None:
        stats[band].setdefault(key, []).extend(np.asarray(values, dtype=float).tolist())

    for p in plantings:
        flagged, rarely = any_flag(rule, city, p)
        for band, (low, high) in BANDS.items():
            in_band = (p.typical > low) & (p.typical <= high)
            for d in DEPTHS:
                single = in_band & (p.single_depth == d)
                add(band, f"single {d:.0%}", flagged[single])
                mostly = in_band & (p.zone >= 0)
                zone_blocks = mostly & (p.zone_depth[np.maximum(p.zone, 0)] == d)
                add(band, f"zone {d:.0%}", flagged[zone_blocks])
                if d <= 0.5:
                    zones = np.unique(p.zone[zone_blocks])
                    add(band, f"zones {d:.0%}", [flagged[p.zone == z].mean() >= 0.95 for z in zones])
            normal = in_band & (p.relative >= 0.75)
            add(band, "false alarm", flagged[normal])
            add(band, "rarely on normal", rarely[normal])
            add(band, "area flagged", [areas[in_band & flagged].sum()])
            add(band, "area hit", [areas[in_band & flagged & (p.relative <= 0.5)].sum()])
    for band, values in stats.items():
        row = {"band": band}
        for d in DEPTHS:
            row[f"single {d:.0%}"] = _mean(values.get(f"single {d:.0%}"))
        for d in DEPTHS:
            row[f"zone {d:.0%}"] = _mean(values.get(f"zone {d:.0%}"))
        row["zones all 95% (<=25%)"] = _mean([v for d in DEPTHS[:3] for v in values.get(f"zones {d:.0%}", [])])
        row["false alarm"] = _mean(values.get("false alarm"))
        row["rarely on normal"] = _mean(values.get("rarely on normal"))
        flagged_area = sum(values.get("area flagged", []))
        row["precision of area"] = sum(values.get("area hit", [])) / flagged_area if flagged_area else float("nan")
        rows.append(row)
    return pd.DataFrame(rows).set_index("band")


def _mean(values: list[float] | None) -> float:
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--realdata", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "realdata")
    args = parser.parse_args()
    started = time.perf_counter()
    cities = load_cities(args.realdata)
    rng = np.random.default_rng(args.seed)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    for city in cities:
        plantings = [plant(city, rng) for _ in range(args.replicates)]
        singles = sum(int(np.isfinite(p.single_depth).sum()) for p in plantings)
        zones = sum(len(p.zone_depth) for p in plantings)
        print(
            f"\n=== {city.name}: {city.blocks['beat_id'].nunique()} beats, {len(city.blocks):,} blocks, "
            f"{args.replicates} replicates: {singles:,} single blocks and {zones:,} zones planted ==="
        )
        for rule in RULES:
            table = evaluate(rule, city, plantings)
            print(f"\n--- {rule.name}")
            print(table.to_string(float_format=lambda v: f"{v:.3f}"))
        print(f"\n--- operating curve of the default rule over its confidence: {CHOSEN.name}")
        curve = []
        for confidence in (0.9, 0.95, 0.98, 0.99, 0.995, 0.999):
            rule = Rule(f"{confidence}", CHOSEN.method, CHOSEN.fraction, confidence, CHOSEN.gate)
            table = evaluate(rule, city, plantings)
            for band in ("middling 8-32", "busy >=32"):
                row = table.loc[band]
                curve.append(
                    {
                        "confidence": confidence,
                        "band": band,
                        "single <=25%": np.nanmean([row["single 0%"], row["single 10%"], row["single 25%"]]),
                        "single 25%": row["single 25%"],
                        "single 50%": row["single 50%"],
                        "zone blocks <=25%": np.nanmean([row["zone 0%"], row["zone 10%"], row["zone 25%"]]),
                        "false alarm": row["false alarm"],
                        "single 75% flagged": row["single 75%"],
                        "precision of area": row["precision of area"],
                    }
                )
        print(pd.DataFrame(curve).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
