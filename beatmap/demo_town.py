"""Geometry of the demo town: organic streets, a diagonal avenue, a river, a park, beats and landmarks.

The town is what ``beatmap demo`` loads.  Its plan is fixed (so its landmarks sit at the same places
for every seed, and the shipped settings can list them); the seed moves the streets: their spacing,
a gentle curve and a few metres of jitter at every corner.

- Streets: north-south avenues and east-west streets on an irregular grid that bends slowly, and
  Grand Ave running diagonally from the south-west to the north-east.
- The Fox River meanders west to east through the south of the town, crossed by a few bridges;
  Riverside Park lies on its north bank.  Neither has blocks; both are drawn on the base map.
- Blocks are the faces between streets (and the river bank or the park edge where they meet them);
  slivers cut by the diagonal are joined to a neighbour of their beat.
- Eight beats follow major streets, the diagonal and the river; a beat is the union of its blocks.

Everything here is in the metric CRS :data:`METRIC_CRS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import Transformer

__all__ = ["LANDMARKS", "METRIC_CRS", "OUTPUT_CRS", "Town", "make_town"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METRIC_CRS = "EPSG:32616"  # UTM zone 16N, the zone of the town centre
OUTPUT_CRS = "EPSG:4326"
CENTRE_LON_LAT = (-88.1, 41.6)

#: The town's landmarks, (latitude, longitude); the shipped settings list the same.
LANDMARKS: dict[str, tuple[float, float]] = {
    "District station": (41.5996, -88.0998),
    "Lincoln School": (41.6055, -88.1170),
    "Public Library": (41.6020, -88.0950),
    "Washington School": (41.6085, -88.0870),
    "Roosevelt School": (41.5925, -88.0905),
    "Riverside Park": (41.5970, -88.1025),
}

# Plan, metres from the centre (x east, y north).
_HALF_WIDTH, _HALF_HEIGHT = 1750.0, 1350.0
_SPACING = (120.0, 205.0)
_BEND_M = (22.0, 16.0)  # amplitude of the slow bend of avenues (x) and streets (y)
_BEND_WAVELENGTH_M = (2900.0, 2300.0)
_JITTER_SD, _JITTER_MAX = 4.0, 9.0
_RIVER_Y, _RIVER_AMPLITUDE, _RIVER_WAVELENGTH, _RIVER_HALF_WIDTH = -700.0, 150.0, 2700.0, 35.0
_BRIDGE_EVERY = 3  # every third avenue crosses the river
_PARK_X = (-420.0, 120.0)
_PARK_NORTH = -260.0
_DIAGONAL = ((-1750.0, -470.0), (1750.0, 1330.0))
_SPLIT_X = (-620.0, 560.0)  # the avenues nearest these divide the north of the town into three columns
_SPLIT_Y_WEST, _SPLIT_Y_EAST = 320.0, 420.0  # the streets nearest these divide the west and east columns
_SPLIT_X_SOUTH = 0.0  # the avenue nearest this divides the south bank
_SLIVER_M2 = 2500.0

_STREET_WORDS = (
    "Oak", "Maple", "Elm", "Cedar", "Pine", "Walnut", "Hickory", "Chestnut", "Willow", "Birch", "Ash", "Linden",
    "Poplar", "Sycamore", "Cherry", "Locust", "Spruce", "Juniper", "Hawthorn", "Magnolia", "Prairie", "Meadow",
    "Orchard", "Clover", "Aspen", "Laurel", "Dogwood", "Redbud", "Buckeye", "Beech",
)  # fmt: skip
#: Beat names, north-west to south-east (ids B01..B08 in the same order).
BEAT_NAMES = (
    "Lincoln Park",
    "Northgate",
    "Washington Heights",
    "Grand Crossing",
    "Old Town",
    "Eastfield",
    "West Bank",
    "Mill Flats",
)


@dataclass(frozen=True)
class Town:
    """The demo town's layers, metric CRS.

    Attributes
    ----------
    blocks : ndarray of Polygon
        Ordered by beat, then north to south and west to east.
    block_beat : ndarray of int
        Each block's beat (0..7).
    beats : ndarray of Polygon
        The union of each beat's blocks.
    streets : ndarray of LineString
        Street segments between intersections.
    street_names : list of str
        One per street segment.
    main_street : str
        The street the officers of :attr:`main_street_beat` walk.
    main_street_beat : int
        The beat where officers walk one main street and never the side streets.
    calls_only_beat : int
        The beat with an area that sees police only on calls.
    river, park : Polygon
        The Fox River (within the town) and Riverside Park.
    """

    blocks: np.ndarray
    block_beat: IntArray
    beats: np.ndarray
    streets: np.ndarray
    street_names: list[str]
    main_street: str
    main_street_beat: int
    calls_only_beat: int
    river: shapely.Polygon
    park: shapely.Polygon


def centre_xy() -> tuple[float, float]:
    """The town centre in the metric CRS."""
    x, y = Transformer.from_crs(OUTPUT_CRS, METRIC_CRS, always_xy=True).transform(*CENTRE_LON_LAT)
    return float(x), float(y)


def _positions(rng: np.random.Generator, half: float) -> FloatArray:
    """Irregularly spaced grid lines from ``-half`` to ``half``."""
    gaps = rng.uniform(*_SPACING, size=int(2 * half / _SPACING[0]) + 2)
    lines = np.concatenate([[0.0], np.cumsum(gaps)])
    lines = lines[lines < 2 * half - _SPACING[0] / 2]
    lines = np.append(lines, 2 * half) if lines[-1] < 2 * half else lines
    return lines - half


def _river_y(x: FloatArray | float) -> FloatArray:
    return np.asarray(
        _RIVER_Y + _RIVER_AMPLITUDE * np.sin(2 * np.pi * (np.asarray(x) + _HALF_WIDTH) / _RIVER_WAVELENGTH)
    )


def _grid(rng: np.random.Generator) -> FloatArray:
    """Street corners, shape (rows, cols, 2), row 0 north, relative to the centre."""
    xs = _positions(rng, _HALF_WIDTH)
    ys = _positions(rng, _HALF_HEIGHT)[::-1]
    gx, gy = np.meshgrid(xs, ys)
    phase = rng.uniform(0, 2 * np.pi, size=2)
    bend_x = _BEND_M[0] * np.sin(2 * np.pi * gy / _BEND_WAVELENGTH_M[0] + phase[0])
    bend_y = _BEND_M[1] * np.sin(2 * np.pi * gx / _BEND_WAVELENGTH_M[1] + phase[1])
    jitter = np.clip(rng.normal(0.0, _JITTER_SD, size=(*gx.shape, 2)), -_JITTER_MAX, _JITTER_MAX)
    inner = np.ones(gx.shape, dtype=bool)
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    grid = np.stack([gx + bend_x, gy + bend_y], axis=-1)
    grid[inner] += jitter[inner]
    # The town's edge streets are straight.
    grid[0, :, 1], grid[-1, :, 1] = _HALF_HEIGHT, -_HALF_HEIGHT
    grid[:, 0, 0], grid[:, -1, 0] = -_HALF_WIDTH, _HALF_WIDTH
    return np.round(grid, 2)


def _nearest(values: FloatArray, target: float) -> int:
    return int(np.argmin(np.abs(values - target)))


def make_town(rng: np.random.Generator) -> Town:
    """Lay out the demo town with the given random generator."""
    grid = _grid(rng)
    n_rows, n_cols = grid.shape[0], grid.shape[1]
    outline = shapely.Polygon(np.concatenate([grid[0, :], grid[1:, -1], grid[-1, -2::-1], grid[-2:0:-1, 0]]))
    river_x = np.linspace(-_HALF_WIDTH - 50, _HALF_WIDTH + 50, 200)
    river_line = shapely.LineString(np.column_stack([river_x, _river_y(river_x)]))
    river = shapely.intersection(shapely.buffer(river_line, _RIVER_HALF_WIDTH), outline)
    north_bank = shapely.Polygon(
        np.concatenate(
            [[[-_HALF_WIDTH - 60, _HALF_HEIGHT + 60]], river_line.coords, [[_HALF_WIDTH + 60, _HALF_HEIGHT + 60]]]
        )
    )
    park = shapely.difference(
        shapely.intersection(shapely.box(_PARK_X[0], -_HALF_HEIGHT, _PARK_X[1], _PARK_NORTH), north_bank), river
    )
    park = shapely.Polygon(park.exterior) if park.geom_type == "Polygon" else max(park.geoms, key=lambda g: g.area)

    # Named street lines, before cutting.
    words = [_STREET_WORDS[i] for i in rng.permutation(len(_STREET_WORDS))]
    lines: list[shapely.LineString] = []
    names: list[str] = []
    bridges: list[bool] = []
    main_row = _nearest(grid[:, 2, 1], 0.5 * (_river_y(-1300.0).item() + _SPLIT_Y_WEST))
    for c in range(n_cols):
        lines.append(shapely.LineString(grid[:, c]))
        names.append(f"{_ordinal(c + 1)} Ave")
        bridges.append(c % _BRIDGE_EVERY == 1 or c in (0, n_cols - 1))
    for r in range(n_rows):
        lines.append(shapely.LineString(grid[r, :]))
        names.append("Main St" if r == main_row else f"{words[r % len(words)]} St")
        bridges.append(False)
    diagonal = shapely.intersection(shapely.LineString(_DIAGONAL), outline)
    lines.append(diagonal)
    names.append("Grand Ave")
    bridges.append(False)

    # Cut streets at the river (except bridges) and out of the park, then split at intersections.
    cut = []
    for line, bridge in zip(lines, bridges, strict=True):
        piece = line if bridge else shapely.difference(line, river)
        cut.append(shapely.difference(piece, park))
    noded = shapely.get_parts(shapely.union_all(cut))
    noded = noded[shapely.length(noded) > 0.5]
    named = np.array([names[_owner(piece, cut)] for piece in noded], dtype=object)

    edges = shapely.union_all([*cut, shapely.boundary(river), shapely.boundary(park), outline.exterior])
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(edges)))
    inside = shapely.point_on_surface(faces)
    keep = ~(shapely.contains(river, inside) | shapely.contains(park, inside)) & shapely.contains(outline, inside)
    faces = faces[keep & (shapely.area(faces) > 1.0)]

    beat = _beat_of(shapely.point_on_surface(faces), grid)
    faces, beat = _join_slivers(faces, beat)
    centres = shapely.get_coordinates(shapely.centroid(faces))
    order = np.lexsort((np.round(centres[:, 0], 1), -np.round(centres[:, 1], 1), beat))
    faces, beat = faces[order], beat[order]
    beats = np.array([shapely.union_all(faces[beat == b]) for b in range(len(BEAT_NAMES))], dtype=object)

    cx, cy = centre_xy()
    shift = (cx, cy)
    return Town(
        blocks=shapely.transform(faces, lambda xy: xy + shift),
        block_beat=beat.astype(np.int64),
        beats=shapely.transform(beats, lambda xy: xy + shift),
        streets=shapely.transform(noded, lambda xy: xy + shift),
        street_names=[str(n) for n in named],
        main_street="Grand Ave",
        main_street_beat=4,
        calls_only_beat=7,
        river=shapely.transform(river, lambda xy: xy + shift),
        park=shapely.transform(park, lambda xy: xy + shift),
    )


def _owner(piece: shapely.Geometry, lines: list[shapely.Geometry]) -> int:
    """The named line a noded piece came from (the one its midpoint lies on)."""
    mid = shapely.line_interpolate_point(piece, 0.5, normalized=True)
    distance = shapely.distance(mid, np.array(lines, dtype=object))
    return int(np.argmin(distance))


def _side_of_polyline(points: FloatArray, line: FloatArray, *, along: int) -> FloatArray:
    """Signed offset of points from a monotonic polyline: across minus the line's value at ``along``."""
    across = 1 - along
    order = np.argsort(line[:, along])
    return points[:, across] - np.interp(points[:, along], line[order, along], line[order, across])


def _beat_of(points: np.ndarray, grid: FloatArray) -> IntArray:
    """The beat (0..7) of each point, by the major streets, the diagonal and the river."""
    xy = shapely.get_coordinates(points)
    mid_row = grid.shape[0] // 2
    west_col = _nearest(grid[mid_row, :, 0], _SPLIT_X[0])
    east_col = _nearest(grid[mid_row, :, 0], _SPLIT_X[1])
    south_col = _nearest(grid[-1, :, 0], _SPLIT_X_SOUTH)
    west_row = _nearest(grid[:, 1, 1], _SPLIT_Y_WEST)
    east_row = _nearest(grid[:, -2, 1], _SPLIT_Y_EAST)
    is_west = _side_of_polyline(xy, grid[:, west_col], along=1) < 0
    is_east = _side_of_polyline(xy, grid[:, east_col], along=1) > 0
    south_west = _side_of_polyline(xy, grid[:, south_col], along=1) < 0
    north_of_river = xy[:, 1] > _river_y(xy[:, 0])
    (x0, y0), (x1, y1) = _DIAGONAL
    above_diagonal = (x1 - x0) * (xy[:, 1] - y0) - (y1 - y0) * (xy[:, 0] - x0) > 0
    north_west = _side_of_polyline(xy, grid[west_row, :], along=0) > 0
    north_east = _side_of_polyline(xy, grid[east_row, :], along=0) > 0
    beat = np.where(
        ~north_of_river,
        np.where(south_west, 6, 7),
        np.where(
            is_west,
            np.where(north_west, 0, 4),
            np.where(is_east, np.where(north_east, 2, 5), np.where(above_diagonal, 1, 3)),
        ),
    )
    return beat.astype(np.int64)


def _join_slivers(faces: np.ndarray, beat: IntArray) -> tuple[np.ndarray, IntArray]:
    """Join faces smaller than a block to the neighbour of the same beat they share most edge with."""
    faces = faces.copy()
    alive = np.ones(faces.size, dtype=bool)
    for i in np.argsort(shapely.area(faces)):
        if shapely.area(faces[i]) >= _SLIVER_M2:
            break
        near = np.flatnonzero(alive & (beat == beat[i]) & shapely.intersects(faces, faces[i]))
        near = near[near != i]
        if near.size == 0:
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(faces[near]), shapely.boundary(faces[i])))
        if shared.max() <= 1.0:
            continue
        j = near[int(np.argmax(shared))]
        faces[j] = shapely.union(faces[j], faces[i])
        alive[i] = False
    return faces[alive], beat[alive]


def _ordinal(number: int) -> str:
    """English ordinal of a positive number: 1st, 2nd, 3rd, 11th, 22nd."""
    if number % 100 in (11, 12, 13):
        return f"{number}th"
    return f"{number}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(number % 10, 'th') }"
