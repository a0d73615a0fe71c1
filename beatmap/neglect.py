"""Neglected areas: adjacent flagged blocks of one beat, grouped, totalled and named by their streets.

A sergeant reads "9 blocks around W Madison St and S Kedzie Ave" more easily
than nine scattered block ids.  Flagged blocks of one beat that touch or face
each other across a street (:func:`beatmap.areas.block_neighbours`) form an
area; areas never cross a beat edge.  An area is named by the two named
streets that run longest through it or along its edge when a street layer is
loaded (``beatmap streets``), else by where it lies in its beat ("north-east
of beat 1121").  Its reason is the flag most of its blocks share.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sqlalchemy import Engine

from beatmap import schema as S
from beatmap import store
from beatmap.areas import NEIGHBOUR_GAP_M, block_neighbours
from beatmap.errors import InputError
from beatmap.metrics import Window
from beatmap.naming import area_street_name
from beatmap.report import block_coverage
from beatmap.settings import Settings

#: Columns of a neglected-areas table (and geometry, the outline, in the analysis CRS).
AREA_COLUMNS: tuple[str, ...] = (
    "area_id",
    S.BEAT_ID,
    "name",
    "blocks",
    "flag",
    "flags",
    "visits",
    "enforcement",
    "area_ha",
    "block_ids",
)
#: Fewest flagged blocks that make an area (a lone flagged block stays in the block table).
MIN_BLOCKS = 2
#: A street this close to an area runs along its edge (metres): half a wide street.
STREET_REACH_M = 20.0
_WORDS = {S.ENFORCEMENT_ONLY: "enforcement only", S.UNVISITED: "unvisited", S.RARELY_VISITED: "rarely visited"}
_DIRECTIONS = ("east", "north-east", "north", "north-west", "west", "south-west", "south", "south-east")


def neglected_areas(
    coverage: pd.DataFrame,
    *,
    blocks: gpd.GeoDataFrame | None = None,
    streets: gpd.GeoDataFrame | None = None,
    min_blocks: int = MIN_BLOCKS,
    gap_m: float = NEIGHBOUR_GAP_M,
) -> gpd.GeoDataFrame:
    """Group a coverage table's adjacent flagged blocks of one beat into neglected areas.

    Parameters
    ----------
    coverage : DataFrame
        A block coverage table (:func:`beatmap.metrics.coverage_by_block`):
        ``block_id``, ``beat_id``, ``flag``, ``visits``, ``enforcement``, with
        polygons in a metric CRS (:func:`beatmap.report.block_coverage`) or
        without them and ``blocks`` given.  All blocks of the beats, so an
        area can be placed in its beat.
    blocks : GeoDataFrame, optional
        ``block_id`` and polygons in a metric CRS, when ``coverage`` has none.
    streets : GeoDataFrame, optional
        Street segments with ``name``, in the same CRS; areas are named by them.
    min_blocks : int
        Fewest blocks of an area.
    gap_m : float
        Blocks at most this far apart are adjacent.

    Returns
    -------
    GeoDataFrame
        One row per area, largest first (then by beat and first block id):
        :data:`AREA_COLUMNS` and the outline.  ``area_id`` is ``<beat>-<n>``
        (n from 1 in that order within the beat); ``flag`` the flag most of
        its blocks share (ties: enforcement only, unvisited, rarely visited);
        ``flags`` the count of each, in words; ``block_ids`` space-separated.

    Raises
    ------
    InputError
        When the coverage has no polygons or a street layer is in another CRS.
    """
    table = pd.DataFrame(coverage.drop(columns="geometry", errors="ignore"))
    if blocks is not None:
        places = pd.Index(blocks[S.BLOCK_ID]).get_indexer(table[S.BLOCK_ID])
        table = table[places >= 0]
        geoms, crs = blocks.geometry.to_numpy()[places[places >= 0]], blocks.crs
    elif isinstance(coverage, gpd.GeoDataFrame) and coverage.crs is not None:
        geoms, crs = coverage.geometry.to_numpy(), coverage.crs
    else:
        raise InputError(
            "neglected areas need the blocks' polygons: give a coverage table with geometry "
            "(beatmap.report.block_coverage)."
        )
    if streets is not None and len(streets) and not streets.crs.equals(crs):
        raise InputError(
            f"the streets are in {streets.crs.name} but the blocks in {crs.name}; give both in the analysis CRS."
        )
    empty = gpd.GeoDataFrame({c: [] for c in AREA_COLUMNS}, geometry=gpd.GeoSeries([], crs=crs))
    is_flagged = table["flag"].notna().to_numpy()
    if not is_flagged.any():
        return empty
    flagged = table[is_flagged].reset_index(drop=True)
    shapes = geoms[is_flagged]
    left, right = block_neighbours(
        gpd.GeoDataFrame({S.BEAT_ID: flagged[S.BEAT_ID].to_numpy()}, geometry=shapes, crs=crs), gap_m=gap_m
    )
    graph = coo_matrix((np.ones(len(left)), (left, right)), shape=(len(flagged), len(flagged)))
    _, piece = connected_components(graph, directed=False)
    sizes = np.bincount(piece)
    keep = sizes[piece] >= min_blocks
    if not keep.any():
        return empty
    flagged, shapes, piece = flagged[keep].reset_index(drop=True), shapes[keep], piece[keep]
    # One pass over the kept blocks, ordered by area then block id: totals by bincount, ids by slicing.
    ids = flagged[S.BLOCK_ID].astype(str).to_numpy()
    order = np.lexsort((ids, piece))
    piece, ids, shapes, flagged = piece[order], ids[order], shapes[order], flagged.iloc[order].reset_index(drop=True)
    starts = np.flatnonzero(np.r_[True, piece[1:] != piece[:-1]])
    ends = np.r_[starts[1:], len(piece)]
    number = np.repeat(np.arange(len(starts)), ends - starts)
    code = pd.Index(S.FLAGS).get_indexer(flagged["flag"])
    counts = np.bincount(number * len(S.FLAGS) + code, minlength=len(starts) * len(S.FLAGS)).reshape(-1, len(S.FLAGS))
    half = gap_m / 2
    grown = shapely.buffer(shapes, half, join_style="mitre")
    outlines = shapely.buffer(
        np.array([shapely.union_all(grown[a:b]) for a, b in zip(starts, ends, strict=True)]), -half, join_style="mitre"
    )
    areas = gpd.GeoDataFrame(
        {
            S.BEAT_ID: flagged[S.BEAT_ID].to_numpy()[starts],
            "blocks": ends - starts,
            "flag": [S.FLAGS[int(np.argmax(row))] for row in counts],  # argmax: ties go to the first in S.FLAGS
            "flags": [", ".join(f"{n} {_WORDS[f]}" for f, n in zip(S.FLAGS, row, strict=True) if n) for row in counts],
            "visits": np.bincount(number, weights=flagged["visits"].to_numpy(dtype=float)).astype(int),
            "enforcement": np.bincount(number, weights=flagged["enforcement"].to_numpy(dtype=float)).astype(int),
            "area_ha": np.round(np.bincount(number, weights=shapely.area(shapes)) / 10_000, 2),
            "block_ids": [" ".join(ids[a:b]) for a, b in zip(starts, ends, strict=True)],
            "first": ids[starts],
        },
        geometry=list(outlines),
        crs=crs,
    )
    areas = areas.sort_values(["blocks", S.BEAT_ID, "first"], ascending=[False, True, True]).reset_index(drop=True)
    areas["area_id"] = areas[S.BEAT_ID].astype(str) + "-" + (areas.groupby(S.BEAT_ID).cumcount() + 1).astype(str)
    centres = _beat_centres(table[S.BEAT_ID].to_numpy(), geoms, set(areas[S.BEAT_ID]))
    areas["name"] = [
        f"{n} blocks "
        + (area_street_name(outline, streets, reach_m=STREET_REACH_M) or _direction_name(outline, beat, centres))
        for n, outline, beat in zip(areas["blocks"], areas.geometry, areas[S.BEAT_ID], strict=True)
    ]
    return areas[[*AREA_COLUMNS, "geometry"]]


def _beat_centres(beats: np.ndarray, geoms: np.ndarray, wanted: set) -> pd.DataFrame:
    """Area-weighted centre (x, y) and a typical half-width of the ``wanted`` beats, from their blocks' boxes."""
    mine = pd.Series(beats).isin(wanted).to_numpy()
    box = shapely.bounds(geoms[mine])
    area = shapely.area(geoms[mine])
    frame = pd.DataFrame(
        {
            S.BEAT_ID: beats[mine],
            "w": area,
            "x": (box[:, 0] + box[:, 2]) / 2 * area,
            "y": (box[:, 1] + box[:, 3]) / 2 * area,
        }
    )
    sums = frame.groupby(S.BEAT_ID).sum()
    return pd.DataFrame(
        {"x": sums["x"] / sums["w"], "y": sums["y"] / sums["w"], "radius": np.sqrt(sums["w"] / math.pi)}
    )


def _direction_name(outline: shapely.Geometry, beat: str, centres: pd.DataFrame) -> str:
    """Where the area lies in its beat: "north-east of beat 1121", or "in the middle of beat 1121"."""
    centre = centres.loc[beat]
    point = outline.centroid
    dx, dy = point.x - centre["x"], point.y - centre["y"]
    if math.hypot(dx, dy) < 0.25 * centre["radius"]:
        return f"in the middle of beat {beat}"
    sector = round(math.degrees(math.atan2(dy, dx)) / 45) % 8
    return f"{_DIRECTIONS[sector]} of beat {beat}"


def neglected_areas_from_store(
    engine: Engine,
    *,
    window: Window,
    settings: Settings,
    beat_id: str | None = None,
) -> gpd.GeoDataFrame:
    """The neglected areas of one beat (or all) over ``window``, named by the loaded streets if any.

    Raises
    ------
    StoreError
        When no areas are loaded; InputError when ``beat_id`` is unknown.
    """
    coverage = block_coverage(engine, window=window, settings=settings, beat_id=beat_id)
    return areas_of_coverage(engine, coverage)


def areas_of_coverage(engine: Engine, coverage: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """:func:`neglected_areas` of a coverage table already computed, with the store's streets around it."""
    flagged = coverage[coverage["flag"].notna()]
    streets = None
    if len(flagged):
        bounds = tuple(shapely.buffer(shapely.box(*flagged.total_bounds), STREET_REACH_M).bounds)
        streets = store.read_streets(engine, bounds=bounds)
    return neglected_areas(coverage, streets=streets if streets is not None and len(streets) else None)


def area_block_ids(areas: pd.DataFrame, area_id: str) -> list[str]:
    """The block ids of one area of a neglected-areas table.

    Raises
    ------
    InputError
        When no area has that id (the message lists some that do).
    """
    match = areas[areas["area_id"].astype(str) == str(area_id)]
    if match.empty:
        known = ", ".join(areas["area_id"].astype(str).head(10)) or "none in this window"
        raise InputError(
            f"--area {area_id!r}: no such neglected area; areas: {known}. List them with `beatmap neglected`."
        )
    return str(match["block_ids"].iloc[0]).split(" ")


def areas_text(areas: pd.DataFrame, window: Window) -> str:
    """The areas as plain text for a terminal, one line each."""
    period = f"{window.start:%Y-%m-%d} to {window.end:%Y-%m-%d}"
    if areas.empty:
        return f"no neglected area (two or more adjacent flagged blocks of a beat) from {period}"
    lines = [f"{len(areas)} neglected area(s) from {period}:"]
    lines += [
        f"  {a.area_id:<10} {a.name}: {a.flags}; {_count(a.visits, 'visit')}, "
        f"{_count(a.enforcement, 'enforcement event')}, {a.area_ha:g} ha"
        for a in areas.itertuples(index=False)
    ]
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")
