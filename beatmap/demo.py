"""Fictional demo city: beats, blocks, streets and a year of police activity.

The demo city stands in for a department's data wherever real data is not at hand: the dashboard
demo, tests and benchmarks. It is built from a seed alone (nothing is downloaded) and carries a
ground truth of planted neglected blocks, so coverage metrics and flags can be checked against it.

The city sits on the Illinois prairie around 41.6 N, 88.1 W. Its street grid has irregular spacing
and slightly jittered intersections; blocks are the quadrilaterals between street centrelines, so
they tessellate the beats exactly, and beat edges are streets too.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import math
import pathlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import geopandas
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import Engine

from beatmap import accounts, store
from beatmap.demo_town import BEAT_NAMES, LANDMARKS, Town, centre_xy, make_town
from beatmap.errors import BeatmapError, InputError, StoreError
from beatmap.ingest import Progress, import_activity, load_areas
from beatmap.settings import Settings

__all__ = ["DemoCity", "build_demo", "make_demo_city", "make_demo_town", "write_demo_city"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
#: Places events on blocks: metric x and y of a point inside each given block.
Placer = Callable[[np.random.Generator, IntArray], tuple[FloatArray, FloatArray]]

_TIMEZONE = "America/Chicago"
#: Weeks of GPS pings ``beatmap demo`` imports (about 1.8 million pings; see the README).
DEMO_GPS_WEEKS = 8
_METRIC_CRS = "EPSG:32616"  # UTM zone 16N, the zone of the city centre
_OUTPUT_CRS = "EPSG:4326"
_CENTRE_LON_LAT = (-88.1, 41.6)

# Street grid, metres.
_SPACING_RANGE = (80.0, 200.0)
_JITTER_SD = 3.0
_JITTER_MAX = 8.0
# Event points lie this far inside a block edge, metres.
_DEPTH_RANGE = (3.0, 15.0)

_KINDS = ("foot_patrol", "community_visit", "enforcement", "other")
_FOOT, _VISIT, _ENFORCEMENT, _OTHER = range(4)
_SHIFT_START_HOURS = (7, 15, 23)  # day, evening, night; each shift lasts eight hours
_SHIFT_SECONDS = 8 * 3600

# Expected events per beat and day, by kind. Foot patrols and visits are then scaled per beat so
# that the beat's median block gets _TYPICAL_SHARE of these events' mean per block.
_FOOT_PER_DAY = 11.0
_VISIT_PER_DAY = 5.5
_TYPICAL_SHARE = 0.85
_TYPICAL_NOISE = (0.95, 1.05)
_ENFORCEMENT_PER_DAY = (6.0, 10.0)
_OTHER_PER_DAY = 3.0 / 7.0
# Share of a day's events on each shift (rows: kind; columns: day, evening, night).
_SHIFT_SHARES = np.array([[0.45, 0.40, 0.15], [0.55, 0.40, 0.05], [0.25, 0.40, 0.35], [0.70, 0.30, 0.00]])
# Weekday factors Monday..Sunday by kind; each row averages 1.
_WEEKDAY_FACTORS = np.array(
    [
        [1.15] * 5 + [0.625] * 2,
        [1.20] * 5 + [0.50] * 2,
        [0.95] * 5 + [1.125] * 2,
        [1.30] * 5 + [0.25] * 2,
    ]
)
# Seasonal amplitude by kind (peak in mid July; more walking in summer).
_SEASON_AMPLITUDE = np.array([0.12, 0.08, 0.10, 0.0])
_SEASON_PEAK_DAY = 196

# Land use of a block and what it attracts.
_LAND_USES = ("residential", "commercial", "school", "park", "church")
_LAND_USE_SHARES = (0.80, 0.10, 0.03, 0.04, 0.03)
_FOOT_FACTOR = np.array([1.0, 1.6, 1.2, 1.3, 1.0])
_VISIT_FACTOR = np.array([1.0, 3.0, 6.0, 3.0, 3.0])
_ENFORCEMENT_FACTOR = np.array([1.0, 1.8, 0.6, 1.2, 0.5])
_HOT_SPOT_SHARE = 0.08
_HOT_SPOT_FACTOR = 4.0

# Every subtype in one table; a code is an index into it, -1 means empty.
_SUBTYPES = (
    "porch visit",
    "business check",
    "school",
    "youth activity",
    "community meeting",
    "event",
    "call for service",
    "traffic stop",
    "citation",
    "arrest",
    "court",
    "training",
    "report writing",
    "vehicle maintenance",
)
_VISIT_SUBTYPES = np.arange(0, 6)
_ENFORCEMENT_SUBTYPES = np.arange(6, 10)
_OTHER_SUBTYPES = np.arange(10, 14)
# Community visit subtype probabilities (rows: _LAND_USES; columns: _VISIT_SUBTYPES).
_VISIT_SUBTYPE_P = np.array(
    [
        [0.70, 0.02, 0.00, 0.08, 0.12, 0.08],
        [0.05, 0.80, 0.00, 0.03, 0.05, 0.07],
        [0.00, 0.00, 0.70, 0.22, 0.05, 0.03],
        [0.10, 0.00, 0.00, 0.45, 0.10, 0.35],
        [0.15, 0.00, 0.00, 0.15, 0.45, 0.25],
    ]
)
_ENFORCEMENT_SUBTYPE_P = np.array([0.55, 0.22, 0.13, 0.10])
_OTHER_SUBTYPE_P = np.array([0.35, 0.35, 0.20, 0.10])
# Probability that an event was self-initiated, by subtype code (foot patrols: _FOOT_SELF_P).
_SELF_INITIATED_P = np.array([0.90, 0.90, 0.50, 0.60, 0.20, 0.30, 0.00, 1.00, 0.85, 0.25, 0.0, 0.0, 0.0, 0.0])
_FOOT_SELF_P = 0.95
# Duration ranges in minutes by subtype code (enforcement and other).
_DURATION_RANGES = {
    6: (15, 90),
    7: (8, 30),
    8: (5, 20),
    9: (45, 180),
    10: (60, 240),
    11: (120, 480),
    12: (30, 120),
    13: (30, 90),
}
_ENFORCEMENT_DURATION_MISSING = 0.25
_NOTE_SHARE = 0.01  # of all events, all on community visits

_NOTES = {
    "porch visit": (
        "Talked with block club president about the streetlight",
        "Resident asked about speeding on the side street",
        "Checked in on an elderly resident at a neighbour's request",
        "Neighbours asked for more evening walk-throughs",
        "Handed out non-emergency number cards",
    ),
    "business check": (
        "Owner reported loitering near the back lot",
        "Manager asked about after-hours patrols",
        "New shop opening next week, introduced myself",
    ),
    "school": (
        "Spoke with the principal about dismissal traffic",
        "Crossing guard asked for help at the corner",
        "Read-aloud visit with second graders",
    ),
    "youth activity": (
        "Pickup basketball with teens after school",
        "Helped with a bike safety check",
        "Youth league asked about a scrimmage with officers",
    ),
    "community meeting": (
        "Block club meeting, about 20 residents",
        "Residents raised dumping on the vacant lot",
        "Beat meeting: parking and noise concerns",
    ),
    "event": (
        "Block party, stopped by for an hour",
        "Back-to-school giveaway at the park",
        "Cleanup day at the corner lot",
    ),
}

# Planted neglect.
_PLANTED = ("enforcement_only", "unvisited", "rarely_visited")
_PLANTED_SHARE = 0.10
_FLOOR_TARGET = 0.85  # non-planted blocks get at least this share of the beat's median visit rate
# (at 0.6 the rarely_visited rule, which separates 25% from 75% of typical, rightly flagged some of them)
_FLOOR_ACCEPT = 0.8
_FLOOR_ROUNDS = 30
_PREFERENCE_MIN = 0.25
_ENFORCEMENT_ONLY_FACTOR = (2.0, 3.0)  # times the beat's median enforcement weight
_ENFORCEMENT_ONLY_MIN_PER_90 = 15.0
# Rarely visited blocks get one visit every this many days, give or take _CADENCE_JITTER: one or
# two visits in every 90-day window (about 4% of a typical block at the default size).
_RARE_PERIOD_DAYS = (58.0, 78.0)
_CADENCE_JITTER = 0.15
_UNVISITED_GAP_DAYS = (100.0, 220.0)  # shortest gap keeps 90-day windows to one enforcement

_STREET_WORDS = (
    "Oak",
    "Maple",
    "Elm",
    "Cedar",
    "Pine",
    "Walnut",
    "Hickory",
    "Chestnut",
    "Willow",
    "Birch",
    "Ash",
    "Linden",
    "Poplar",
    "Sycamore",
    "Cherry",
    "Locust",
    "Spruce",
    "Juniper",
    "Hawthorn",
    "Magnolia",
    "Prairie",
    "Meadow",
    "Orchard",
    "Harvest",
    "Clover",
    "Sumac",
    "Aspen",
    "Laurel",
    "Dogwood",
    "Redbud",
    "Buckeye",
    "Cottonwood",
    "Beech",
    "Holly",
    "Larch",
    "Alder",
    "Hazel",
    "Bluestem",
    "Foxtail",
    "Milkweed",
    "Goldenrod",
    "Sunflower",
    "Thistle",
    "Yarrow",
    "Aster",
    "Primrose",
    "Ironwood",
    "Catalpa",
    "Mulberry",
    "Tamarack",
)
_STREET_SUFFIXES = ("St", "Dr", "Rd", "Blvd", "Pl", "Ln", "Ter", "Ct")
_BEAT_PREFIXES = (
    "Mill",
    "Cedar",
    "Fox",
    "Oak",
    "Elm",
    "River",
    "Stone",
    "Maple",
    "Willow",
    "Brook",
    "Pine",
    "Ash",
    "Birch",
    "Clay",
    "Hickory",
    "Prairie",
    "Lake",
    "Spring",
    "Meadow",
    "Ridge",
)
_BEAT_SUFFIXES = (
    "brook",
    " Park",
    " Heights",
    "field",
    " Hollow",
    "wood",
    "ton",
    " Flats",
    " Grove",
    " Crossing",
    " Commons",
    "dale",
    " Point",
    " Gardens",
    " Village",
)


@dataclass(frozen=True)
class DemoCity:
    """A generated demo city with its activity and planted ground truth.

    Attributes
    ----------
    beats : geopandas.GeoDataFrame
        Columns ``beat_id``, ``name``, ``geometry`` (Polygon), CRS EPSG:4326.
    blocks : geopandas.GeoDataFrame
        Columns ``block_id`` (unique), ``beat_id``, ``geometry`` (Polygon), CRS EPSG:4326.
        The blocks of a beat tessellate it.
    streets : geopandas.GeoDataFrame
        Columns ``street_id``, ``name``, ``geometry`` (LineString centreline segment),
        CRS EPSG:4326.
    activity : pandas.DataFrame
        One row per event in the canonical activity columns; ``occurred_at`` is local wall-clock
        time in `timezone` as ``YYYY-MM-DDTHH:MM:SS`` text.
    truth : pandas.DataFrame
        Planted neglected blocks: ``block_id``, ``beat_id``, ``planted`` (``enforcement_only``,
        ``unvisited`` or ``rarely_visited``).
    timezone : str
        IANA time zone of the activity's local times.
    start : datetime.date
        First day of activity.
    end : datetime.date
        Last day of activity (inclusive).
    features : geopandas.GeoDataFrame or None
        Map features without blocks (``kind`` ``water`` or ``park``, ``name``, ``geometry``),
        EPSG:4326; the demo town's river and park, None for the grid city.
    landmarks : dict of str to (float, float)
        Named places (latitude, longitude) where walking routes can start; empty for the grid city.
    """

    beats: geopandas.GeoDataFrame
    blocks: geopandas.GeoDataFrame
    streets: geopandas.GeoDataFrame
    activity: pd.DataFrame
    truth: pd.DataFrame
    timezone: str
    start: datetime.date
    end: datetime.date
    features: geopandas.GeoDataFrame | None = None
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)


def make_demo_city(
    seed: int = 7,
    *,
    n_beats: int = 8,
    blocks_per_beat: int = 36,
    days: int = 365,
    end: datetime.date = datetime.date(2026, 10, 31),
) -> DemoCity:
    """Generate a fictional city with beats, blocks, streets, activity and planted neglect.

    Parameters
    ----------
    seed : int
        Seed of the random generator; the same seed gives identical frames.
    n_beats : int
        Number of beats, laid out in a near-square grid.
    blocks_per_beat : int
        Approximate number of blocks in each beat.
    days : int
        Number of days of activity.
    end : datetime.date
        Last day of activity (inclusive).

    Returns
    -------
    DemoCity
        The city. Each beat has about 15 to 20 foot patrols and community visits and 6 to 10
        enforcement events a day; at the default size its median block gets about 35 foot
        patrols and community visits in 90 days. About 10% of each beat's blocks are planted as
        neglected for the whole period (listed in ``truth``): ``enforcement_only`` blocks get
        no foot patrol or visit and at least twice the typical enforcement, ``unvisited`` blocks
        get no foot patrol or visit and at most one enforcement event in any 90 days,
        ``rarely_visited`` blocks get one or two foot patrols or visits in every 90 days. Every
        other block gets at least about half the visit rate of its beat's median block.

    Raises
    ------
    InputError
        If `n_beats`, `blocks_per_beat` or `days` is below 1.
    """
    _check_sizes(n_beats=n_beats, blocks_per_beat=blocks_per_beat, days=days)
    rng = np.random.default_rng(seed)
    start = end - datetime.timedelta(days=days - 1)

    block_cols, row_counts, row_heights = _beat_layout(n_beats, blocks_per_beat)
    vertices = _street_vertices(rng, n_cols=block_cols * max(row_counts), n_rows=sum(row_heights))
    boxes = _beat_boxes(row_counts, row_heights, n_cols=vertices.shape[1] - 1)
    corners, block_beat, block_offsets = _block_corners(vertices, boxes)

    beats = _beats_frame(rng, vertices, boxes)
    blocks = _blocks_frame(corners, block_beat, beats["beat_id"].to_numpy(), block_offsets)
    streets = _streets_frame(rng, vertices)

    planted = _plant_neglect(rng, block_offsets)
    truth = pd.DataFrame(
        {
            "block_id": blocks["block_id"].to_numpy()[planted >= 0],
            "beat_id": blocks["beat_id"].to_numpy()[planted >= 0],
            "planted": np.asarray(_PLANTED, dtype=object)[planted[planted >= 0]],
        }
    ).astype("str")

    events = _simulate_events(rng, corners.mean(axis=1), block_beat, block_offsets, planted, start, days)

    def place(generator: np.random.Generator, block: IntArray) -> tuple[FloatArray, FloatArray]:
        return _points_in_blocks(generator, corners, block)

    activity = _activity_frame(rng, events, place, beats["beat_id"].to_numpy(), start, end)
    return DemoCity(
        beats=beats,
        blocks=blocks,
        streets=streets,
        activity=activity,
        truth=truth,
        timezone=_TIMEZONE,
        start=start,
        end=end,
    )


def make_demo_town(
    seed: int = 7,
    *,
    days: int = 365,
    end: datetime.date = datetime.date(2026, 10, 31),
) -> DemoCity:
    """Generate the demo town ``beatmap demo`` loads: a city with a story to tell at first sight.

    The plan is :mod:`beatmap.demo_town`'s (curving streets, the diagonal Grand Ave, the Fox River
    and Riverside Park, eight beats following streets and the river, named streets and landmarks);
    the seed moves the streets and draws the activity, as :func:`make_demo_city` does. The beats
    differ on purpose (the planted ground truth lists every neglected block):

    - Lincoln Park and Grand Crossing (downtown, the station and the library) are well covered on
      foot: about 4% of their blocks are neglected.
    - In Old Town officers walk Grand Ave and never the side streets: every block that does not
      front Grand Ave is planted ``unvisited``.
    - In Mill Flats, an area in the south-east corner of the town sees police only on calls: a
      cluster of ``enforcement_only`` blocks.
    - The other beats are ordinary: about 10% of their blocks neglected, as in the grid city.

    Raises
    ------
    InputError
        If `days` is below 1.
    """
    _check_sizes(days=days)
    rng = np.random.default_rng(seed)
    start = end - datetime.timedelta(days=days - 1)
    town = make_town(rng)
    n_beats = len(BEAT_NAMES)
    block_offsets = np.concatenate([[0], np.cumsum(np.bincount(town.block_beat, minlength=n_beats))]).astype(np.int64)
    beats = geopandas.GeoDataFrame(
        {
            "beat_id": pd.array([f"B{i + 1:02d}" for i in range(n_beats)], dtype="str"),
            "name": pd.array(list(BEAT_NAMES), dtype="str"),
        },
        geometry=list(town.beats),
        crs=_METRIC_CRS,
    ).to_crs(_OUTPUT_CRS)
    beat_ids = beats["beat_id"].to_numpy()
    blocks = _polygon_blocks_frame(town.blocks, town.block_beat, beat_ids, block_offsets)
    streets = _named_streets_frame(town.streets, town.street_names)

    planted = _plant_story(rng, town, block_offsets)
    truth = pd.DataFrame(
        {
            "block_id": blocks["block_id"].to_numpy()[planted >= 0],
            "beat_id": blocks["beat_id"].to_numpy()[planted >= 0],
            "planted": np.asarray(_PLANTED, dtype=object)[planted[planted >= 0]],
        }
    ).astype("str")
    centres = shapely.get_coordinates(shapely.centroid(town.blocks))
    events = _simulate_events(rng, centres, town.block_beat, block_offsets, planted, start, days)
    activity = _activity_frame(rng, events, _ring_placer(town.blocks), beat_ids, start, end)
    features = geopandas.GeoDataFrame(
        {
            "kind": pd.array(["water", "park"], dtype="str"),
            "name": pd.array(["Fox River", "Riverside Park"], dtype="str"),
        },
        geometry=[town.river, town.park],
        crs=_METRIC_CRS,
    ).to_crs(_OUTPUT_CRS)
    return DemoCity(
        beats=beats,
        blocks=blocks,
        streets=streets,
        activity=activity,
        truth=truth,
        timezone=_TIMEZONE,
        start=start,
        end=end,
        features=features,
        landmarks=dict(LANDMARKS),
    )


def write_demo_city(city: DemoCity, directory: pathlib.Path) -> dict[str, pathlib.Path]:
    """Write a demo city's layers and activity to files.

    Parameters
    ----------
    city : DemoCity
        The city to write.
    directory : pathlib.Path
        Folder to write into; created if missing. Existing files of the same names are replaced.

    Returns
    -------
    dict of str to pathlib.Path
        Paths written, keyed ``beats``, ``blocks``, ``streets`` (GeoJSON, EPSG:4326),
        ``activity`` (``activity.csv``) and ``ground_truth`` (``ground_truth.csv``); and
        ``features`` (``features.geojson``: the river and the park) when the city has them.
    """
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "beats": directory / "beats.geojson",
        "blocks": directory / "blocks.geojson",
        "streets": directory / "streets.geojson",
        "activity": directory / "activity.csv",
        "ground_truth": directory / "ground_truth.csv",
    }
    if city.features is not None:
        paths["features"] = directory / "features.geojson"
    for key in ("beats", "blocks", "streets", "features"):
        if key in paths:
            paths[key].unlink(missing_ok=True)
            getattr(city, key).to_file(paths[key], driver="GeoJSON")
    city.activity.to_csv(paths["activity"], index=False)
    city.truth.to_csv(paths["ground_truth"], index=False)
    return paths


def build_demo(
    engine: Engine,
    *,
    settings: Settings,
    seed: int = 7,
    directory: pathlib.Path = pathlib.Path("data/demo"),
    progress: Progress | None = None,
    actor: str = "demo",
    public_dir: pathlib.Path | None = None,
    gps_weeks: int = DEMO_GPS_WEEKS,
) -> str:
    """Generate the demo city, write its files to ``directory`` and load them into an empty store.

    The files go through the same loaders as a department's own (``beatmap areas`` and
    ``beatmap import``).  ``ground_truth.csv`` beside them lists the planted neglected blocks.
    One dashboard account per role is added (see :func:`_demo_accounts`), with generated
    passwords that appear in the summary only.  ``actor`` is who builds it, for the audit log.
    Given ``public_dir``, the demo's first public snapshot is published there (dated the demo's
    last day plus the public delay, so its period is full of data), and the public page has a
    map at once; when it cannot be published (Leaflet not installed, a folder in the way), the
    summary says why and the demo is built all the same.

    GPS pings of the last ``gps_weeks`` weeks (patrol cars and officers' radios every 30 s, see
    :mod:`beatmap.demo_gps`) are written beside the other files as Parquet with ping mappings and
    imported with :func:`beatmap.presence.import_pings`, after the activity (whose CAD calls carry
    unit ids), so presence is split by purpose.  ``gps_weeks=0`` leaves GPS out.

    Returns
    -------
    str
        A summary for the user, with the demo accounts' passwords (shown once).

    Raises
    ------
    StoreError
        When the store already holds beats or activity (the demo never mixes with real data).
    """
    report = progress or (lambda _f, _m: None)
    held = store.counts(engine)
    if held["beats"] or held["events"]:
        raise StoreError(
            f"the store {engine.url.render_as_string(hide_password=True)} already holds data "
            f"({held['beats']} beats, {held['events']} activity records); build the demo into a new one, "
            "e.g. `beatmap --db data/demo.db demo`, or delete the file first."
        )
    report(0.0, "generating the demo city")
    city = make_demo_town(seed)
    paths = write_demo_city(city, directory)
    demo_settings = dataclasses.replace(
        settings, timezone=city.timezone, landmarks={**city.landmarks, **settings.landmarks}
    )
    report(0.2, "loading beats and blocks")
    areas = load_areas(engine, paths["beats"], blocks_path=paths["blocks"], settings=demo_settings, actor=actor)
    report(0.4, "importing a year of activity")
    summary = import_activity(engine, paths["activity"], settings=demo_settings, source="demo", actor=actor)
    report(0.55, "loading the street network")
    from beatmap.streets import load_map_features, load_streets  # only the demo build needs them here

    load_streets(engine, paths["streets"], actor=actor)
    load_map_features(engine, paths["features"], actor=actor)
    gps_text = ""
    if gps_weeks > 0:
        gps_text = _demo_gps(
            engine, city, directory, settings=demo_settings, weeks=gps_weeks, seed=seed, actor=actor, report=report
        )
    report(0.9, "adding the demo accounts")
    accounts_text = _demo_accounts(engine, actor=actor)
    published = ""
    if public_dir is not None:
        report(0.95, "publishing the first public snapshot")
        published = "\n" + _publish_first(engine, public_dir, settings=demo_settings, last_day=city.end, actor=actor)
    report(1.0, "done")
    return (
        f"demo city (seed {seed}): {areas.beats} beats, {areas.blocks} blocks, "
        f"{summary.imported:,} activity records from {city.start} to {city.end}\n"
        f"  files and the planted ground truth ({len(city.truth)} neglected blocks) are in {directory}/\n"
        + gps_text
        + accounts_text
        + published
    )


def _demo_gps(
    engine: Engine,
    city: DemoCity,
    directory: pathlib.Path,
    *,
    settings: Settings,
    weeks: int,
    seed: int,
    actor: str,
    report: Progress,
) -> str:
    """Write and import the demo's GPS pings; the summary line."""
    from beatmap.demo_gps import write_demo_gps  # only the demo build needs them
    from beatmap.presence import import_pings

    report(0.6, f"writing {weeks} weeks of GPS pings")
    files = write_demo_gps(
        city.blocks,
        city.activity,
        city.truth,
        timezone=city.timezone,
        end=city.end,
        weeks=weeks,
        directory=directory,
        seed=seed,
        metric_crs=_METRIC_CRS,
        max_gap_s=settings.max_gap_s,
    )
    archive_note = ""
    if engine.dialect.name != "sqlite" and not settings.ping_archive_dir:
        # A PostgreSQL store keeps the raw ping archive in a folder of the settings; the demo's is beside its files.
        folder = (directory / "ping_archive").resolve()
        settings = dataclasses.replace(settings, ping_archive_dir=str(folder))
        archive_note = f"  (raw pings archived in {folder}; set ping_archive_dir to it under [gps] to recompute)\n"
    totals = {"rows": 0, "presence": 0, "enforcement": 0, "vehicle": 0}
    for i, (path, mapping) in enumerate(((files.radios, files.radios_mapping), (files.cars, files.cars_mapping))):

        def step(fraction: float, message: str, done: int = i) -> None:
            report(0.62 + 0.11 * (done + fraction), message)

        summary = import_pings(engine, [path], settings=settings, mapping_path=mapping, actor=actor, progress=step)
        totals["rows"] += sum(f.rows for f in summary.files)
        totals["presence"] += summary.presence_seconds
        totals["enforcement"] += summary.enforcement_seconds
        totals["vehicle"] += summary.vehicle_seconds
    hours = totals["presence"] / 3600
    share = totals["enforcement"] / max(totals["presence"], 1)
    return (
        f"  GPS: {totals['rows']:,} pings from patrol cars and radios over the last {weeks} weeks, "
        f"{hours:,.0f} hours of presence ({share:.0%} during calls)\n" + archive_note
    )


def _publish_first(
    engine: Engine, public_dir: pathlib.Path, *, settings: Settings, last_day: datetime.date, actor: str
) -> str:
    """Publish the demo's first public snapshot; the summary line (why not, when it cannot be)."""
    from beatmap.publish import publish_snapshot  # only the demo build publishes from here

    today = datetime.datetime.now(settings.zone).date()
    as_of = min(today, last_day + datetime.timedelta(days=settings.public_delay_days))
    try:
        manifest = publish_snapshot(engine, public_dir, settings=settings, as_of=as_of, actor=actor)
    except BeatmapError as exc:
        return f"  the public map was not published: {exc}"
    return (
        f"  public map published to {public_dir}/ (data from {manifest['data_start']} to "
        f"{manifest['data_end']}); publish again from the Publish page"
    )


def _demo_accounts(engine: Engine, *, actor: str) -> str:
    """One dashboard account per role, with generated passwords; the lines of the summary that list them.

    ``admin``; ``lieutenant`` (supervisor of every beat); ``sergeant`` (supervisor of the first two
    beats); ``officer-<beat>`` for each of the first two beats, carrying the officer id that logged
    the most activity there.  An account name already in the store is left as it is.
    """
    beats = store.read_beats(engine)["beat_id"].tolist()[:2]
    events = store.read_events(engine, columns=("officer_id", "beat_id"))
    events = events[events["beat_id"].isin(beats) & events["officer_id"].notna()]
    busiest = events.groupby("beat_id")["officer_id"].agg(lambda ids: ids.value_counts().index[0])
    plan = [
        ("admin", accounts.ADMIN, [], False, None),
        ("lieutenant", accounts.SUPERVISOR, [], True, None),
        ("sergeant", accounts.SUPERVISOR, beats, False, None),
    ]
    plan += [(f"officer-{b.lower()}", accounts.OFFICER, [b], False, busiest.get(b)) for b in beats]
    existing = set(accounts.list_users(engine)["name"])
    lines = [
        "  demo accounts for the dashboard (passwords shown only now; change one with `beatmap users passwd NAME`):"
    ]
    for name, role, their_beats, every, officer_id in plan:
        if name in existing:
            lines.append(f"    {name:<14} already exists, left as it is")
            continue
        user, password = accounts.add_user(
            engine, name, role=role, actor=actor, beats=their_beats, all_beats=every, officer_id=officer_id
        )
        listed = f", beat{'s' * (len(their_beats) > 1)} {', '.join(their_beats)}"
        scope = "" if role == accounts.ADMIN else ", all beats" if every else listed
        who = f" (officer id {user.officer_id})" if role == accounts.OFFICER else ""
        lines.append(f"    {name:<14} {password}   {role}{scope}{who}")
    return "\n".join(lines)


# --- checks -------------------------------------------------------------------------------------


def _check_sizes(**sizes: int) -> None:
    """Raise InputError naming every size argument that is not a whole number of at least 1."""
    bad = [f"{name}={value!r}" for name, value in sizes.items() if int(value) != value or value < 1]
    if bad:
        raise InputError(f"make_demo_city needs whole numbers of at least 1; got {', '.join(bad)}")


# --- geometry -----------------------------------------------------------------------------------


def _beat_layout(n_beats: int, blocks_per_beat: int) -> tuple[int, list[int], list[int]]:
    """Block columns per beat, beats per beat row and block rows per beat row.

    Beat rows hold equal numbers of beats where possible; rows with fewer beats are shorter, so
    every beat has close to `blocks_per_beat` blocks and the city is close to square.
    """
    block_cols, block_rows = _beat_shape(blocks_per_beat)

    def cost(n_rows: int) -> float:
        counts, heights = _beat_rows(n_beats, n_rows, block_rows)
        aspect = max(counts) * block_cols / sum(heights)
        return abs(math.log(aspect)) + (0.75 if n_beats % n_rows else 0.0)

    counts, heights = _beat_rows(n_beats, min(range(1, n_beats + 1), key=cost), block_rows)
    return block_cols, counts, heights


def _beat_shape(blocks_per_beat: int) -> tuple[int, int]:
    """Columns and rows of blocks in a beat: closest to `blocks_per_beat`, then most square."""

    def cost(cols: int) -> tuple[bool, int, float, int]:
        rows = max(1, round(blocks_per_beat / cols))
        stretched = max(cols, rows) > 2 * min(cols, rows)
        return (stretched, abs(cols * rows - blocks_per_beat), abs(math.log(cols / rows)), -cols)

    cols = min(range(1, blocks_per_beat + 1), key=cost)
    return cols, max(1, round(blocks_per_beat / cols))


def _beat_rows(n_beats: int, n_rows: int, block_rows: int) -> tuple[list[int], list[int]]:
    """Beats in each of `n_rows` beat rows, and each row's height in blocks."""
    per_row, extra = divmod(n_beats, n_rows)
    counts = [per_row + 1] * extra + [per_row] * (n_rows - extra)
    heights = [max(1, round(block_rows * count / max(counts))) for count in counts]
    return counts, heights


def _street_vertices(rng: np.random.Generator, *, n_cols: int, n_rows: int) -> FloatArray:
    """Street intersections in the metric CRS, shape (n_rows + 1, n_cols + 1, 2), row 0 north."""
    dx = rng.uniform(*_SPACING_RANGE, size=n_cols)
    dy = rng.uniform(*_SPACING_RANGE, size=n_rows)
    xs = np.concatenate([[0.0], np.cumsum(dx)])
    ys = -np.concatenate([[0.0], np.cumsum(dy)])
    to_metric = Transformer.from_crs(_OUTPUT_CRS, _METRIC_CRS, always_xy=True)
    cx, cy = to_metric.transform(*_CENTRE_LON_LAT)
    grid = np.empty((n_rows + 1, n_cols + 1, 2))
    grid[..., 0] = xs[None, :] - xs[-1] / 2 + cx
    grid[..., 1] = ys[:, None] - ys[-1] / 2 + cy
    jitter = np.clip(rng.normal(0.0, _JITTER_SD, size=grid.shape), -_JITTER_MAX, _JITTER_MAX)
    return np.round(grid + jitter, 2)


def _beat_boxes(row_counts: list[int], row_heights: list[int], *, n_cols: int) -> IntArray:
    """Each beat's span of grid rows and columns, shape (n_beats, 4): row0, row1, col0, col1."""
    boxes = []
    row0 = 0
    for count, height in zip(row_counts, row_heights, strict=True):
        bounds = np.round(np.linspace(0, n_cols, count + 1)).astype(np.int64)
        for col0, col1 in itertools.pairwise(bounds):
            boxes.append((row0, row0 + height, col0, col1))
        row0 += height
    return np.array(boxes, dtype=np.int64)


def _block_corners(vertices: FloatArray, boxes: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Corners of every block (SW, SE, NE, NW), each block's beat, and each beat's first block.

    Blocks are ordered by beat, then north to south and west to east within the beat.
    """
    corners, beat_of_block = [], []
    for beat, (row0, row1, col0, col1) in enumerate(boxes):
        row_grid, col_grid = np.meshgrid(np.arange(row0, row1), np.arange(col0, col1), indexing="ij")
        rows, cols = row_grid.ravel(), col_grid.ravel()
        corners.append(
            np.stack(
                [
                    vertices[rows + 1, cols],
                    vertices[rows + 1, cols + 1],
                    vertices[rows, cols + 1],
                    vertices[rows, cols],
                ],
                axis=1,
            )
        )
        beat_of_block.append(np.full(rows.size, beat, dtype=np.int64))
    sizes = [part.shape[0] for part in corners]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.concatenate(corners), np.concatenate(beat_of_block), offsets


def _beat_ring(vertices: FloatArray, box: IntArray) -> FloatArray:
    """Closed counter-clockwise ring of a beat through every grid vertex on its edge."""
    row0, row1, col0, col1 = (int(value) for value in box)
    south = vertices[row1, col0 : col1 + 1]
    east = vertices[np.arange(row1 - 1, row0 - 1, -1), col1]
    north = vertices[row0, np.arange(col1 - 1, col0 - 1, -1)]
    west = vertices[np.arange(row0 + 1, row1 + 1), col0]
    return np.concatenate([south, east, north, west])


def _beats_frame(rng: np.random.Generator, vertices: FloatArray, boxes: IntArray) -> geopandas.GeoDataFrame:
    """Beat polygons with ids and neighbourhood names, in EPSG:4326."""
    n_beats = len(boxes)
    width = max(2, len(str(n_beats)))
    names = [prefix + suffix for prefix in _BEAT_PREFIXES for suffix in _BEAT_SUFFIXES]
    order = rng.permutation(len(names))
    beat_names = [
        names[order[i % len(names)]] + ("" if i < len(names) else f" {i // len(names) + 1}") for i in range(n_beats)
    ]
    frame = geopandas.GeoDataFrame(
        {
            "beat_id": pd.array([f"B{i + 1:0{width}d}" for i in range(n_beats)], dtype="str"),
            "name": pd.array(beat_names, dtype="str"),
        },
        geometry=[shapely.Polygon(_beat_ring(vertices, box)) for box in boxes],
        crs=_METRIC_CRS,
    )
    return frame.to_crs(_OUTPUT_CRS)


def _blocks_frame(
    corners: FloatArray, block_beat: IntArray, beat_ids: np.ndarray, block_offsets: IntArray
) -> geopandas.GeoDataFrame:
    """Block polygons with ids ``<beat_id>-<nnn>`` numbered within their beat, in EPSG:4326."""
    number = np.arange(block_beat.size) - block_offsets[block_beat] + 1
    width = max(3, len(str(int(np.diff(block_offsets).max()))))
    block_ids = [f"{beat_ids[b]}-{n:0{width}d}" for b, n in zip(block_beat, number, strict=True)]
    rings = np.concatenate([corners, corners[:, :1]], axis=1)
    frame = geopandas.GeoDataFrame(
        {
            "block_id": pd.array(block_ids, dtype="str"),
            "beat_id": pd.array(beat_ids[block_beat], dtype="str"),
        },
        geometry=shapely.polygons(rings),
        crs=_METRIC_CRS,
    )
    return frame.to_crs(_OUTPUT_CRS)


def _ordinal(number: int) -> str:
    """English ordinal of a positive number: 1st, 2nd, 3rd, 11th, 22nd."""
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


def _street_names(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct made-up east-west street names such as "Oak St"."""
    words = [_STREET_WORDS[i] for i in rng.permutation(len(_STREET_WORDS))]
    per_round = len(words) * len(_STREET_SUFFIXES)
    names = []
    for i in range(count):
        suffix = _STREET_SUFFIXES[(i // len(words)) % len(_STREET_SUFFIXES)]
        repeat = "" if i < per_round else f" {i // per_round + 1}"
        names.append(f"{words[i % len(words)]} {suffix}{repeat}")
    return names


def _streets_frame(rng: np.random.Generator, vertices: FloatArray) -> geopandas.GeoDataFrame:
    """Street centreline segments between neighbouring intersections, in EPSG:4326.

    East-west streets carry made-up names, north-south streets are numbered avenues.
    """
    n_rows, n_cols = vertices.shape[0] - 1, vertices.shape[1] - 1
    east_west = np.stack([vertices[:, :-1], vertices[:, 1:]], axis=2).reshape(-1, 2, 2)
    north_south = np.stack([vertices[:-1, :], vertices[1:, :]], axis=2).reshape(-1, 2, 2)
    row_names = _street_names(rng, n_rows + 1)
    col_names = [f"{_ordinal(i + 1)} Ave" for i in range(n_cols + 1)]
    names = [row_names[j] for j in range(n_rows + 1) for _ in range(n_cols)]
    names += [col_names[i] for _ in range(n_rows) for i in range(n_cols + 1)]
    count = len(names)
    width = max(5, len(str(count)))
    frame = geopandas.GeoDataFrame(
        {
            "street_id": pd.array([f"S{i + 1:0{width}d}" for i in range(count)], dtype="str"),
            "name": pd.array(names, dtype="str"),
        },
        geometry=shapely.linestrings(np.concatenate([east_west, north_south])),
        crs=_METRIC_CRS,
    )
    return frame.to_crs(_OUTPUT_CRS)


# --- the demo town ------------------------------------------------------------------------------

# Share of blocks planted as neglected in a well covered beat, and in an ordinary one.
_WELL_COVERED_SHARE = 0.04
_WELL_COVERED_BEATS = (0, 3)
# Blocks in the area that sees police only on calls, nearest this point (metres from the centre).
_CALLS_ONLY_BLOCKS = 12
_CALLS_ONLY_NEAR = (1350.0, -1150.0)
# Event points lie at one of these depths inside their block's edge, metres.
_RING_DEPTHS = (4.0, 7.0, 10.0, 13.0)


def _plant_story(rng: np.random.Generator, town: Town, block_offsets: IntArray) -> IntArray:
    """Planted label per block of the town (see :func:`make_demo_town`): an index into _PLANTED, or -1."""
    planted = np.full(int(block_offsets[-1]), -1, dtype=np.int64)
    main = np.flatnonzero(np.asarray(town.street_names, dtype=object) == town.main_street)
    main_line = shapely.union_all(town.streets[main])
    fronting = shapely.dwithin(town.blocks, main_line, 1.0) & (
        shapely.length(shapely.intersection(shapely.boundary(town.blocks), shapely.buffer(main_line, 1.0))) > 20.0
    )
    centre = np.asarray(centre_xy()) + np.asarray(_CALLS_ONLY_NEAR)
    centres = shapely.get_coordinates(shapely.centroid(town.blocks))
    for beat, (first, stop) in enumerate(itertools.pairwise(block_offsets)):
        size = int(stop - first)
        if beat == town.main_street_beat:
            planted[first:stop][~fronting[first:stop]] = _PLANTED.index("unvisited")
            continue
        free = np.arange(size)
        if beat == town.calls_only_beat:
            near = np.argsort(np.hypot(*(centres[first:stop] - centre).T))[:_CALLS_ONLY_BLOCKS]
            planted[first + near] = _PLANTED.index("enforcement_only")
            free = np.setdiff1d(free, near)
        share = _WELL_COVERED_SHARE if beat in _WELL_COVERED_BEATS else _PLANTED_SHARE
        n_planted = round(share * size)
        chosen = rng.choice(free, size=n_planted, replace=False)
        labels = np.resize(rng.permutation(len(_PLANTED)), n_planted)
        planted[first + chosen] = rng.permutation(labels)
    return planted


def _ring_placer(polygons: np.ndarray) -> Placer:
    """Place events a few metres to about 13 m inside the edge of their (any-shaped) block."""
    rings = []
    for depth in _RING_DEPTHS:
        inner = shapely.buffer(polygons, -depth)
        parts = [max(shapely.get_parts(g), key=shapely.area) if not shapely.is_empty(g) else None for g in inner]
        rings.append([p.exterior if p is not None else None for p in parts])
    table = np.array(rings, dtype=object)
    for level in range(1, table.shape[0]):  # a block too thin for a depth uses the one before
        missing = np.array([ring is None for ring in table[level]])
        table[level, missing] = table[level - 1, missing]

    def place(rng: np.random.Generator, block: IntArray) -> tuple[FloatArray, FloatArray]:
        level = rng.integers(0, len(_RING_DEPTHS), size=block.size)
        points = shapely.line_interpolate_point(table[level, block], rng.random(block.size), normalized=True)
        xy = shapely.get_coordinates(points)
        return xy[:, 0], xy[:, 1]

    return place


def _polygon_blocks_frame(
    polygons: np.ndarray, block_beat: IntArray, beat_ids: np.ndarray, block_offsets: IntArray
) -> geopandas.GeoDataFrame:
    """Block polygons (metric, ordered by beat) with ids ``<beat_id>-<nnn>``, in EPSG:4326."""
    number = np.arange(block_beat.size) - block_offsets[block_beat] + 1
    width = max(3, len(str(int(np.diff(block_offsets).max()))))
    block_ids = [f"{beat_ids[b]}-{n:0{width}d}" for b, n in zip(block_beat, number, strict=True)]
    frame = geopandas.GeoDataFrame(
        {"block_id": pd.array(block_ids, dtype="str"), "beat_id": pd.array(beat_ids[block_beat], dtype="str")},
        geometry=list(polygons),
        crs=_METRIC_CRS,
    )
    return frame.to_crs(_OUTPUT_CRS)


def _named_streets_frame(lines: np.ndarray, names: list[str]) -> geopandas.GeoDataFrame:
    """Street segments (metric) with ids and names, in EPSG:4326."""
    width = max(5, len(str(len(names))))
    frame = geopandas.GeoDataFrame(
        {
            "street_id": pd.array([f"S{i + 1:0{width}d}" for i in range(len(names))], dtype="str"),
            "name": pd.array(names, dtype="str"),
        },
        geometry=list(lines),
        crs=_METRIC_CRS,
    )
    return frame.to_crs(_OUTPUT_CRS)


# --- who goes where -----------------------------------------------------------------------------


def _plant_neglect(rng: np.random.Generator, block_offsets: IntArray) -> IntArray:
    """Planted label per block: an index into _PLANTED, or -1 for an ordinary block."""
    planted = np.full(int(block_offsets[-1]), -1, dtype=np.int64)
    for first, stop in itertools.pairwise(block_offsets):
        size = int(stop - first)
        n_planted = round(_PLANTED_SHARE * size)
        chosen = rng.choice(size, size=n_planted, replace=False)
        labels = np.resize(rng.permutation(len(_PLANTED)), n_planted)
        planted[first + chosen] = rng.permutation(labels)
    return planted


def _block_profiles(rng: np.random.Generator, n_blocks: int) -> tuple[IntArray, FloatArray, FloatArray, FloatArray]:
    """Land use and foot patrol, community visit and enforcement attraction of every block."""
    land_use = rng.choice(len(_LAND_USES), size=n_blocks, p=_LAND_USE_SHARES)
    foot = rng.gamma(2.0, 1 / 2.0, size=n_blocks) * _FOOT_FACTOR[land_use]
    visit = rng.gamma(2.0, 1 / 2.0, size=n_blocks) * _VISIT_FACTOR[land_use]
    hot = np.where(rng.random(n_blocks) < _HOT_SPOT_SHARE, _HOT_SPOT_FACTOR, 1.0)
    enforcement = rng.gamma(1.5, 1 / 1.5, size=n_blocks) * _ENFORCEMENT_FACTOR[land_use] * hot
    return land_use, foot, visit, enforcement


def _duty_roster(rng: np.random.Generator, n_beats: int, n_days: int) -> tuple[IntArray, IntArray]:
    """Officers of every beat and who is on duty.

    Every beat has 3 to 5 officers, each on one home shift, every shift covered. Returns each
    officer's beat, and the officer on duty per beat, shift day and shift, shape
    (n_beats, n_days, 3); officers sharing a shift take turns day by day.
    """
    officer_beat: list[int] = []
    on_duty = np.empty((n_beats, n_days, 3), dtype=np.int64)
    for beat in range(n_beats):
        n_officers = int(rng.integers(3, 6))
        extra = rng.choice(3, size=n_officers - 3, p=[0.3, 0.4, 0.3])
        shifts = np.concatenate([[0, 1, 2], extra])
        first = len(officer_beat)
        officer_beat.extend([beat] * n_officers)
        for shift in range(3):
            members = first + np.flatnonzero(shifts == shift)
            on_duty[beat, :, shift] = members[rng.integers(0, members.size, size=n_days)]
    return np.array(officer_beat, dtype=np.int64), on_duty


def _expected_counts(rng: np.random.Generator, start: datetime.date, n_days: int, n_beats: int) -> FloatArray:
    """Expected events per beat, shift day (from the day before `start`), shift and kind."""
    dates = pd.date_range(start - datetime.timedelta(days=1), periods=n_days, freq="D")
    weekday = dates.day_of_week.to_numpy()
    day_of_year = dates.day_of_year.to_numpy()
    season = 1 + _SEASON_AMPLITUDE[None, :] * np.cos(2 * np.pi * (day_of_year[:, None] - _SEASON_PEAK_DAY) / 365.25)
    rates = np.stack(
        [
            np.full(n_beats, _FOOT_PER_DAY),
            np.full(n_beats, _VISIT_PER_DAY),
            rng.uniform(*_ENFORCEMENT_PER_DAY, size=n_beats),
            np.full(n_beats, _OTHER_PER_DAY),
        ],
        axis=1,
    )
    per_day = _WEEKDAY_FACTORS.T[weekday] * season  # (n_days, kind)
    return rates[:, None, None, :] * per_day[None, :, None, :] * _SHIFT_SHARES.T[None, None, :, :]


def _segment_weights(officer_beat: IntArray, block_offsets: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Layout of officer-by-block weights as one flat array.

    Returns each officer's first flat position, and the officer and block of every position.
    """
    sizes = np.diff(block_offsets)[officer_beat]
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    officer_of = np.repeat(np.arange(officer_beat.size), sizes)
    within = np.arange(officer_of.size) - starts[officer_of]
    block_of = block_offsets[officer_beat][officer_of] + within
    return starts, officer_of, block_of


def _officer_preferences(
    rng: np.random.Generator,
    centres: FloatArray,
    block_offsets: IntArray,
    officer_beat: IntArray,
    officer_of: IntArray,
    block_of: IntArray,
) -> FloatArray:
    """Officer-by-block preference weights: each officer favours blocks near a home spot."""
    sizes = np.diff(block_offsets)[officer_beat]
    home = centres[block_offsets[officer_beat] + rng.integers(0, sizes)]
    distance = np.hypot(*(centres[block_of] - home[officer_of]).T)
    preference = rng.gamma(1.2, 1 / 1.2, size=block_of.size) * (0.5 + np.exp(-distance / 400.0))
    return np.maximum(preference, _PREFERENCE_MIN)


def _visit_rates(
    weights: tuple[FloatArray, FloatArray],
    officer_counts: FloatArray,
    officer_of: IntArray,
    block_of: IntArray,
    n_blocks: int,
) -> FloatArray:
    """Expected foot patrols plus community visits of every block over the period."""
    total = np.zeros(n_blocks)
    for kind, weight in enumerate(weights):
        norm = np.bincount(officer_of, weights=weight, minlength=officer_counts.shape[0])
        share = weight / np.where(norm > 0, norm, 1.0)[officer_of]
        expected = share * officer_counts[officer_of, kind]
        total += np.bincount(block_of, weights=expected, minlength=n_blocks)
    return total


def _beat_medians(values: FloatArray, block_offsets: IntArray, include: BoolArray) -> FloatArray:
    """Median of `values` over the included blocks of each beat, repeated per block."""
    medians = np.empty(values.size)
    for first, stop in itertools.pairwise(block_offsets):
        chosen = values[first:stop][include[first:stop]]
        medians[first:stop] = np.median(chosen) if chosen.size else 0.0
    return medians


def _floor_visit_weights(
    weights: tuple[FloatArray, FloatArray],
    officer_counts: FloatArray,
    officer_of: IntArray,
    block_of: IntArray,
    block_offsets: IntArray,
    ordinary: BoolArray,
) -> tuple[tuple[FloatArray, FloatArray], FloatArray]:
    """Raise weights so that no ordinary block falls far below its beat's median visit rate.

    Returns the weights and the expected visits of every block over the period.
    """
    n_blocks = ordinary.size
    rates = _visit_rates(weights, officer_counts, officer_of, block_of, n_blocks)
    medians = _beat_medians(rates, block_offsets, ordinary)
    for _ in range(_FLOOR_ROUNDS):
        low = ordinary & (rates < _FLOOR_ACCEPT * medians)
        if not low.any():
            break
        factor = np.ones(n_blocks)
        factor[low] = _FLOOR_TARGET * medians[low] / rates[low]
        weights = (weights[0] * factor[block_of], weights[1] * factor[block_of])
        rates = _visit_rates(weights, officer_counts, officer_of, block_of, n_blocks)
        medians = _beat_medians(rates, block_offsets, ordinary)
    return weights, rates


def _typical_scale(
    rng: np.random.Generator, expected: FloatArray, rates: FloatArray, block_offsets: IntArray
) -> FloatArray:
    """Factor per beat that brings its median block to the typical visit count.

    The median is over all the beat's blocks, planted ones included, as a beat-level metric sees it.
    """
    per_block = expected[..., [_FOOT, _VISIT]].sum(axis=(1, 2, 3)) / np.diff(block_offsets)
    every_block = np.ones(rates.size, dtype=bool)
    medians = _beat_medians(rates, block_offsets, every_block)[block_offsets[:-1]]
    noise = rng.uniform(*_TYPICAL_NOISE, size=per_block.size)
    safe = np.where(medians > 0, medians, 1.0)
    return np.where(medians > 0, _TYPICAL_SHARE * per_block / safe, 1.0) * noise


def _draw_in_segments(rng: np.random.Generator, weights: FloatArray, starts: IntArray, segments: IntArray) -> IntArray:
    """Draw one flat position per requested segment, with probability proportional to weight.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator.
    weights : ndarray
        Non-negative weights laid out as consecutive segments; every segment has a positive total.
    starts : ndarray
        First position of every segment, increasing.
    segments : ndarray
        The segment of every draw.

    Returns
    -------
    ndarray
        Flat position of every draw; a position with zero weight is never drawn.
    """
    cumulative = np.cumsum(weights)
    before = np.concatenate([[0.0], cumulative])[starts]
    ends = np.append(starts[1:], weights.size) - 1
    totals = cumulative[ends] - before
    target = before[segments] + rng.random(segments.size) * totals[segments]
    positions = np.searchsorted(cumulative, target, side="right")
    return np.clip(positions, starts[segments], ends[segments])


def _cadence_days(
    rng: np.random.Generator, periods: FloatArray, first_max: FloatArray, n_days: int
) -> tuple[IntArray, FloatArray]:
    """Days of recurring events with jittered gaps, as (owner index, fractional day) pairs.

    Owner ``i`` has its first event uniformly in ``[0, first_max[i])`` and then one every
    ``periods[i]`` days, each gap off by at most the fraction _CADENCE_JITTER; days run from 0
    (the start of `start`) to `n_days`.
    """
    if periods.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0)
    longest = int(np.ceil(n_days / (periods.min() * (1 - _CADENCE_JITTER)))) + 1
    spread = rng.uniform(1 - _CADENCE_JITTER, 1 + _CADENCE_JITTER, size=(periods.size, longest))
    gaps = periods[:, None] * spread
    gaps[:, 0] = rng.uniform(0, first_max)
    times = np.cumsum(gaps, axis=1)
    owner, _ = np.nonzero(times < n_days)
    return owner, times[times < n_days]


def _simulate_events(
    rng: np.random.Generator,
    centres: FloatArray,
    block_beat: IntArray,
    block_offsets: IntArray,
    planted: IntArray,
    start: datetime.date,
    days: int,
) -> dict[str, IntArray]:
    """Every event's beat, shift day, shift, kind, officer, block and the block's land use.

    Shift day 0 is the day before `start` (its night shift runs into `start`).
    """
    n_blocks, n_beats, n_days = planted.size, block_offsets.size - 1, days + 1
    land_use, foot, visit, enforcement = _block_profiles(rng, n_blocks)
    officer_beat, on_duty = _duty_roster(rng, n_beats, n_days)
    expected = _expected_counts(rng, start, n_days, n_beats)
    starts, officer_of, block_of = _segment_weights(officer_beat, block_offsets)

    preference = _officer_preferences(rng, centres, block_offsets, officer_beat, officer_of, block_of)
    open_to_visits = planted[block_of] < 0
    weights = (
        preference * foot[block_of] * open_to_visits,
        np.sqrt(preference) * visit[block_of] * open_to_visits,
    )
    # bincount with weights gives floats; numpy's stubs say integers
    officer_counts = cast(
        FloatArray,
        np.stack(
            [
                np.bincount(on_duty.ravel(), weights=expected[..., kind].ravel(), minlength=officer_beat.size)
                for kind in (_FOOT, _VISIT)
            ],
            axis=1,
        ),
    )
    weights, rates = _floor_visit_weights(weights, officer_counts, officer_of, block_of, block_offsets, planted < 0)
    scale = _typical_scale(rng, expected, rates, block_offsets)
    expected[..., [_FOOT, _VISIT]] *= scale[:, None, None, None]
    enforcement = _plant_enforcement(rng, enforcement, planted, block_beat, block_offsets, expected)

    routine = _routine_events(rng, expected, on_duty, weights, starts, block_of, enforcement, block_offsets)
    rare = _rare_visits(rng, planted, block_beat, on_duty, days)
    unvisited = _unvisited_enforcement(rng, planted, block_beat, on_duty, days)
    events = {key: np.concatenate([routine[key], rare[key], unvisited[key]]) for key in routine}
    events["land_use"] = land_use[events["block"]]
    return events


def _routine_events(
    rng: np.random.Generator,
    expected: FloatArray,
    on_duty: IntArray,
    visit_weights: tuple[FloatArray, FloatArray],
    starts: IntArray,
    block_of: IntArray,
    enforcement: FloatArray,
    block_offsets: IntArray,
) -> dict[str, IntArray]:
    """Day-to-day events: Poisson counts per beat, shift day, shift and kind, placed on blocks.

    Foot patrols and visits go where the officer on duty prefers, enforcement to the beat's
    enforcement hot spots, other events anywhere in the beat.
    """
    counts = rng.poisson(expected)
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    beat, day, shift, kind = np.unravel_index(cells, counts.shape)
    officer = on_duty[beat, day, shift]
    block = np.empty(beat.size, dtype=np.int64)
    for which, weight in zip((_FOOT, _VISIT), visit_weights, strict=True):
        chosen = kind == which
        block[chosen] = block_of[_draw_in_segments(rng, weight, starts, officer[chosen])]
    chosen = kind == _ENFORCEMENT
    block[chosen] = _draw_in_segments(rng, enforcement, block_offsets[:-1], beat[chosen])
    chosen = kind == _OTHER
    sizes = np.diff(block_offsets)[beat[chosen]]
    block[chosen] = block_offsets[beat[chosen]] + rng.integers(0, sizes)
    return {"beat": beat, "day": day, "shift": shift, "kind": kind, "officer": officer, "block": block}


def _plant_enforcement(
    rng: np.random.Generator,
    enforcement: FloatArray,
    planted: IntArray,
    block_beat: IntArray,
    block_offsets: IntArray,
    expected: FloatArray,
) -> FloatArray:
    """Enforcement weights with planted blocks adjusted.

    Enforcement-only blocks get well above their beat's typical block; unvisited blocks get none
    from routine enforcement (their rare events come from :func:`_unvisited_enforcement`).
    """
    enforcement = enforcement.copy()
    only = planted == _PLANTED.index("enforcement_only")
    medians = _beat_medians(enforcement, block_offsets, planted < 0)
    factor = rng.uniform(*_ENFORCEMENT_ONLY_FACTOR, size=planted.size)
    enforcement[only] = np.maximum(enforcement[only], factor[only] * medians[only])
    enforcement[planted == _PLANTED.index("unvisited")] = 0.0
    per_90_days = expected[..., _ENFORCEMENT].sum(axis=(1, 2)) / expected.shape[1] * 90
    totals = np.bincount(block_beat, weights=enforcement)
    expected_only = enforcement / totals[block_beat] * per_90_days[block_beat]
    short = only & (expected_only < _ENFORCEMENT_ONLY_MIN_PER_90)
    enforcement[short] *= _ENFORCEMENT_ONLY_MIN_PER_90 / expected_only[short]
    return enforcement


def _rare_visits(
    rng: np.random.Generator,
    planted: IntArray,
    block_beat: IntArray,
    on_duty: IntArray,
    days: int,
) -> dict[str, IntArray]:
    """Occasional foot patrols and visits on rarely visited blocks, spread evenly over time."""
    blocks = np.flatnonzero(planted == _PLANTED.index("rarely_visited"))
    periods = rng.uniform(*_RARE_PERIOD_DAYS, size=blocks.size)
    owner, when = _cadence_days(rng, periods, periods, days)
    kind = np.where(rng.random(owner.size) < 0.65, _FOOT, _VISIT)
    shift_p = _SHIFT_SHARES[kind]
    shift = (rng.random(owner.size)[:, None] > np.cumsum(shift_p, axis=1)[:, :2]).sum(axis=1)
    return _cadence_events(blocks[owner], when, kind, shift, block_beat, on_duty)


def _unvisited_enforcement(
    rng: np.random.Generator,
    planted: IntArray,
    block_beat: IntArray,
    on_duty: IntArray,
    days: int,
) -> dict[str, IntArray]:
    """Enforcement on unvisited blocks, never two within 90 days."""
    blocks = np.flatnonzero(planted == _PLANTED.index("unvisited"))
    shortest, longest = _UNVISITED_GAP_DAYS
    periods = rng.uniform(shortest / (1 - _CADENCE_JITTER), longest, size=blocks.size)
    owner, when = _cadence_days(rng, periods, 1.5 * periods, days)
    kind = np.full(owner.size, _ENFORCEMENT)
    shift_p = np.cumsum(_SHIFT_SHARES[_ENFORCEMENT])[:2]
    shift = (rng.random(owner.size)[:, None] > shift_p[None, :]).sum(axis=1)
    return _cadence_events(blocks[owner], when, kind, shift, block_beat, on_duty)


def _cadence_events(
    block: IntArray,
    when: FloatArray,
    kind: IntArray,
    shift: IntArray,
    block_beat: IntArray,
    on_duty: IntArray,
) -> dict[str, IntArray]:
    """Event columns for scheduled events on given blocks and days (0 = `start`)."""
    beat = block_beat[block]
    day = when.astype(np.int64) + 1
    return {
        "beat": beat,
        "day": day,
        "shift": shift.astype(np.int64),
        "kind": kind.astype(np.int64),
        "officer": on_duty[beat, day, shift],
        "block": block,
    }


# --- event details ------------------------------------------------------------------------------


def _choose(rng: np.random.Generator, cumulative: FloatArray) -> IntArray:
    """Draw one index per row of a table of cumulative probabilities."""
    return (rng.random((cumulative.shape[0],))[:, None] >= cumulative[:, :-1]).sum(axis=1)


def _subtypes(rng: np.random.Generator, kind: IntArray, land_use: IntArray) -> IntArray:
    """Subtype code of every event (-1 for foot patrols)."""
    subtype = np.full(kind.size, -1, dtype=np.int64)
    visit = kind == _VISIT
    table = np.cumsum(_VISIT_SUBTYPE_P, axis=1)
    subtype[visit] = _VISIT_SUBTYPES[_choose(rng, table[land_use[visit]])]
    for which, codes, p in (
        (_ENFORCEMENT, _ENFORCEMENT_SUBTYPES, _ENFORCEMENT_SUBTYPE_P),
        (_OTHER, _OTHER_SUBTYPES, _OTHER_SUBTYPE_P),
    ):
        chosen = kind == which
        subtype[chosen] = codes[_choose(rng, np.broadcast_to(np.cumsum(p), (chosen.sum(), p.size)))]
    return subtype


def _durations(rng: np.random.Generator, kind: IntArray, subtype: IntArray) -> pd.arrays.IntegerArray:
    """Duration in whole minutes of every event; missing for some enforcement."""
    minutes = np.zeros(kind.size, dtype=np.int64)
    foot = kind == _FOOT
    minutes[foot] = rng.integers(10, 46, size=foot.sum())
    visit = kind == _VISIT
    minutes[visit] = np.clip(np.round(5 + rng.gamma(2.0, 8.0, size=visit.sum())), 5, 60)
    for code, (low, high) in _DURATION_RANGES.items():
        chosen = subtype == code
        minutes[chosen] = rng.integers(low, high + 1, size=chosen.sum())
    missing = (kind == _ENFORCEMENT) & (rng.random(kind.size) < _ENFORCEMENT_DURATION_MISSING)
    return pd.arrays.IntegerArray(minutes, missing)


def _notes(rng: np.random.Generator, subtype: IntArray) -> np.ndarray:
    """Short invented notes on about 1% of events, all community visits; None elsewhere."""
    notes = np.full(subtype.size, None, dtype=object)
    visits = np.flatnonzero(np.isin(subtype, _VISIT_SUBTYPES))
    if visits.size == 0:
        return notes
    share = min(1.0, _NOTE_SHARE * subtype.size / visits.size)
    noted = visits[rng.random(visits.size) < share]
    pick = rng.random(noted.size)
    for code in _VISIT_SUBTYPES:
        texts = _NOTES[_SUBTYPES[code]]
        chosen = subtype[noted] == code
        which = (pick[chosen] * len(texts)).astype(np.int64)
        notes[noted[chosen]] = np.asarray(texts, dtype=object)[which]
    return notes


def _points_in_blocks(rng: np.random.Generator, corners: FloatArray, block: IntArray) -> tuple[FloatArray, FloatArray]:
    """Metric coordinates of points a few metres to about 15 m inside an edge of their block."""
    sw, se, ne, nw = (corners[:, i] for i in range(4))
    width = (np.hypot(*(se - sw).T) + np.hypot(*(ne - nw).T)) / 2
    height = (np.hypot(*(nw - sw).T) + np.hypot(*(ne - se).T)) / 2
    w, h = width[block], height[block]
    n = block.size
    on_south_or_north = rng.random(n) < w / (w + h)
    far_side = rng.random(n) < 0.5
    depth = rng.uniform(*_DEPTH_RANGE, size=n)
    along = rng.random(n)
    margin = _DEPTH_RANGE[0]
    u = np.where(on_south_or_north, margin / w + along * (1 - 2 * margin / w), depth / w)
    v = np.where(on_south_or_north, depth / h, margin / h + along * (1 - 2 * margin / h))
    u = np.where(~on_south_or_north & far_side, 1 - u, u)
    v = np.where(on_south_or_north & far_side, 1 - v, v)
    # Bilinear map of the unit square onto the (convex) block quadrilateral.
    coords = []
    for axis in (0, 1):
        origin = sw[:, axis]
        east = se[:, axis] - sw[:, axis]
        north = nw[:, axis] - sw[:, axis]
        twist = ne[:, axis] - se[:, axis] - nw[:, axis] + sw[:, axis]
        coords.append(origin[block] + u * east[block] + v * north[block] + u * v * twist[block])
    return coords[0], coords[1]


def _event_times(
    rng: np.random.Generator, day: IntArray, shift: IntArray, start: datetime.date, n_days: int
) -> tuple[IntArray, npt.NDArray[np.datetime64]]:
    """Instant (UTC epoch seconds) and local wall-clock time of events at random in their shift.

    Shift day 0 is the day before `start`; shifts start at local 07:00, 15:00 and 23:00, and an
    event's instant is its shift start plus elapsed time, so local times across a daylight
    saving change are real clock readings.
    """
    dates = pd.date_range(start - datetime.timedelta(days=1), periods=n_days, freq="D")
    shift_starts = np.stack(
        [(dates + pd.Timedelta(hours=hour)).tz_localize(_TIMEZONE).as_unit("s").asi8 for hour in _SHIFT_START_HOURS],
        axis=1,
    )
    instant = shift_starts[day, shift] + rng.integers(0, _SHIFT_SECONDS - 600, size=day.size)
    local = pd.to_datetime(instant, unit="s", utc=True).tz_convert(_TIMEZONE).tz_localize(None)
    return instant, local.to_numpy().astype("datetime64[s]")


def _text(codes: IntArray, labels: tuple[str, ...] | list[str] | np.ndarray) -> pd.array:
    """String array of labels picked by code; code -1 gives a missing value."""
    table = np.asarray(labels, dtype=object)
    return pd.array(np.where(codes >= 0, table[np.maximum(codes, 0)], np.array(None)), dtype="str")


def _call_ends(
    instant: IntArray, local: npt.NDArray[np.datetime64], kind: IntArray, duration: pd.arrays.IntegerArray
) -> pd.array:
    """Local clear time of every enforcement event with a duration (CAD's clear); missing elsewhere.

    A call that clears in the repeated hour of the autumn change, earlier on the wall clock than
    its dispatch, has no clear time (as when CAD leaves it out), not a wrong one.
    """
    minutes = np.asarray(duration.fillna(0), dtype=np.int64)
    ends = pd.to_datetime(instant + minutes * 60, unit="s", utc=True).tz_convert(_TIMEZONE).tz_localize(None)
    end_local = ends.to_numpy().astype("datetime64[s]")
    known = (kind == _ENFORCEMENT) & ~np.asarray(duration.isna()) & (end_local >= local)
    text = np.datetime_as_string(end_local, unit="s")
    return pd.array(np.where(known, text, None), dtype="str")


def _activity_frame(
    rng: np.random.Generator,
    events: dict[str, IntArray],
    place: Placer,
    beat_ids: np.ndarray,
    start: datetime.date,
    end: datetime.date,
) -> pd.DataFrame:
    """Canonical activity rows, in time order, for the events between `start` and `end`."""
    n_days = (end - start).days + 2
    instant, local = _event_times(rng, events["day"], events["shift"], start, n_days)
    after_end = np.datetime64(end + datetime.timedelta(days=1), "s")
    inside = np.flatnonzero((local >= np.datetime64(start, "s")) & (local < after_end))
    order = inside[np.argsort(instant[inside], kind="stable")]
    kind, block, officer = events["kind"][order], events["block"][order], events["officer"][order]
    unit = events["beat"][order] * 3 + events["shift"][order]

    subtype = _subtypes(rng, kind, events["land_use"][order])
    duration = _durations(rng, kind, subtype)
    self_p = np.where(kind == _FOOT, _FOOT_SELF_P, _SELF_INITIATED_P[np.maximum(subtype, 0)])
    self_initiated = (rng.random(kind.size) < self_p).astype(np.int64)
    notes = _notes(rng, subtype)
    x, y = place(rng, block)
    lon, lat = Transformer.from_crs(_METRIC_CRS, _OUTPUT_CRS, always_xy=True).transform(x, y)

    width = max(6, len(str(kind.size)))
    source_id = "DEMO-" + pd.Series(np.arange(1, kind.size + 1)).astype("str").str.zfill(width)
    unit_ids = [f"{shift + 1}{beat}" for beat in beat_ids for shift in range(3)]
    officer_ids = [f"O{i + 101}" for i in range(int(officer.max(initial=0)) + 1)]
    return pd.DataFrame(
        {
            "occurred_at": pd.array(np.datetime_as_string(local[order], unit="s"), dtype="str"),
            "ended_at": _call_ends(instant[order], local[order], kind, duration),
            "lat": np.round(lat, 7),
            "lon": np.round(lon, 7),
            "kind": _text(kind, _KINDS),
            "duration_min": duration,
            "officer_id": _text(officer, officer_ids),
            "unit_id": _text(unit, unit_ids),
            "subtype": _text(subtype, _SUBTYPES),
            "source_id": source_id.array,
            "self_initiated": _text(self_initiated, ("N", "Y")),
            "notes": pd.array(notes, dtype="str"),
        }
    )
