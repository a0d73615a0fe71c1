"""The block index: a saved look-up that answers most points without geometry.

A regular grid of top cells over the blocks in the analysis CRS; a top cell
near a block edge is cut into a tile of ``2**depth`` by ``2**depth`` fine
cells (refined as a quadtree while it is built, then flattened, so a point
finds its answer with two array reads).  Every cell holds one answer for
all the points in it:

- a block, when the cell lies wholly inside that block and farther than
  ``edge_tolerance_m`` from every other block (so the exact rule of
  :mod:`beatmap.assign` can only give that block, at distance 0);
- ``OUTSIDE``, when the cell is farther than ``snap_m`` (and the edge
  tolerance) from every block;
- a *line*, when the only block boundary within the tolerance of the cell is
  one straight line with one block on each side (or a block on one side and
  nothing on the other): a point answers by the side of the line it is on.
  Points within the tolerance of the line, when the two blocks are in
  different beats (the beat a record reports may then decide), points on
  the line, and points on a side with no block go through the exact rule;
- ``EXACT``, for the rest (cells holding a vertex, within the tolerance of
  several blocks, or in a street gap): those points go through the exact rule.

A fine cell that is neither (a block's corner, or the edges of several blocks
within the tolerance of it) is cut once more, into a sub-tile of
``2**sub_depth`` by ``2**sub_depth`` cells (refined the same way), so that
fewer of the points near a corner go through the exact rule; a point in such
a cell finds its sub-cell with one more array read.

Every line cell and exact cell keeps the blocks within reach
(``max(edge_tolerance_m, snap_m)``) of it: the exact rule then weighs each
of its points against those few blocks only (:func:`index_candidates`).
A fine cell of a larger line cell that lies wholly on one side of the line,
beyond the band the exact rule has to look at, answers that side's block.

Cells are tested slightly enlarged (by ``_MARGIN_M``) so that a point's cell,
found by floating-point division, always lies inside the tested box.

The index is built from blocks in a fixed row order (the store's, sorted by
``block_id``) and answers with those rows; its key (:func:`blocks_key`)
covers ids, beats, geometry, CRS and that order.  It is built when areas load
and kept in the store (:func:`save_block_index`); :func:`block_index_for`
gives the index of the blocks an import reads, from memory, the store, or
built again when missing.
"""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from beatmap import store
from beatmap.errors import InputError
from beatmap.schema import BEAT_ID, BLOCK_ID

#: A cell's answer: every point in it is outside the blocks.
OUTSIDE = -1
#: A cell's answer: its points go through the exact rule.
EXACT = -2
#: A top cell cut into a tile of fine cells, or a cell split while building (never an answer).
SPLIT = -3
#: Cell codes at or below this are lines: line ``FIRST_LINE - code``.
FIRST_LINE = -4
#: How much a cell is enlarged before its tests (metres): far above rounding, far below any tolerance.
_MARGIN_M = 1e-3
#: Points closer than this to a cell's line (metres) go through the exact rule: the exact rule's tie-break
#: rounds distances to a micrometre, and the side of the line is not trusted that close to it.
_ON_LINE_M = 1e-4
#: Depth of the quadtree under each top cell (a tile is ``2**_DEPTH`` cells a side).
_DEPTH = 4
#: Depth of the quadtree under a fine cell that is cut again (a sub-tile is ``2**_SUB_DEPTH`` cells a side).
_SUB_DEPTH = 1
#: The format of :func:`index_to_bytes`; an index saved in another format is rebuilt.
INDEX_FORMAT = "block-index-3"


@dataclass(frozen=True, eq=False)
class BlockIndex:
    """A built block index (see the module docstring); treat it as read-only.

    ``top`` holds the answer of each top cell (``ix * ny + iy``), or ``SPLIT``
    when it is cut into the tile ``tile_of[top cell]``; tile ``t`` holds its
    fine cells' answers in ``fine[t * side**2 : (t + 1) * side**2]``, fine cell
    ``(fx, fy)`` of the tile at ``fx * side + fy`` (``side = 2**depth``).  A
    fine cell whose answer is ``SPLIT`` is cut into a sub-tile: the ``s``-th
    of them in ``fine`` order (its position there is ``cut_cells[s]``) holds
    its sub-cells' answers in ``sub[s * sub_side**2 : (s + 1) * sub_side**2]``
    the same way (``sub_side = 2**sub_depth``).  An
    answer at or below ``FIRST_LINE`` is line ``FIRST_LINE - answer``: the
    points ``p`` with ``line_nx * (px - line_x) + line_ny * (py - line_y) > 0``
    are in block ``line_pos``, the others in ``line_neg`` (-1: no block);
    ``line_same_beat`` says whether both blocks are in one beat.
    """

    x0: float
    y0: float
    cell_m: float
    depth: int
    sub_depth: int
    nx: int
    ny: int
    edge_tolerance_m: float
    snap_m: float
    n_blocks: int
    blocks_key: str
    top: np.ndarray
    tile_of: np.ndarray
    fine: np.ndarray
    cut_cells: np.ndarray
    sub: np.ndarray
    line_x: np.ndarray
    line_y: np.ndarray
    line_nx: np.ndarray
    line_ny: np.ndarray
    line_pos: np.ndarray
    line_neg: np.ndarray
    line_same_beat: np.ndarray
    candidate_start: np.ndarray
    candidates: np.ndarray

    @property
    def top_cell_m(self) -> float:
        """Side of a top cell (``cell_m`` is the side of the finest one)."""
        return self.cell_m * 2**self.depth

    @property
    def n_cells(self) -> int:
        """Top cells, fine cells and sub-cells, together."""
        return len(self.top) + len(self.fine) + len(self.sub)


def blocks_key(blocks: gpd.GeoDataFrame) -> str:
    """The identity of a block layer: ids, beats, geometry and CRS in row order."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(blocks.crs.to_wkt() if blocks.crs is not None else "").encode())
    digest.update("\x1f".join(map(str, blocks[BLOCK_ID])).encode())
    digest.update("\x1f".join(map(str, blocks["beat_id"])).encode())
    for wkb in shapely.to_wkb(blocks.geometry.to_numpy()):
        digest.update(wkb)
    return digest.hexdigest()


class _Specials:
    """Lines and exact cells found while building (the cells whose answer is a code at or below FIRST_LINE)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, ...]] = []
        self.count = 0

    def add(
        self,
        cells: np.ndarray,
        left: np.ndarray,
        bottom: np.ndarray,
        right: np.ndarray,
        top: np.ndarray,
        *line: np.ndarray,
    ) -> np.ndarray:
        """Keep these cells' boxes and lines (NaN for none); their codes."""
        self.parts.append((left[cells], bottom[cells], right[cells], top[cells], *line))
        ids = self.count + np.arange(len(cells), dtype=np.int64)
        self.count += len(cells)
        return (FIRST_LINE - ids).astype(np.int32)

    def column(self, i: int, dtype: type) -> np.ndarray:
        return np.concatenate([p[i] for p in self.parts]).astype(dtype) if self.parts else np.zeros(0, dtype=dtype)


def build_block_index(
    blocks: gpd.GeoDataFrame,
    *,
    edge_tolerance_m: float,
    snap_m: float,
    cell_m: float | None = None,
) -> BlockIndex:
    """Build the block index of ``blocks`` (polygons in a metric CRS).

    Parameters
    ----------
    blocks : GeoDataFrame
        ``block_id``, ``beat_id`` and polygons, in the row order the index
        will answer with.
    edge_tolerance_m, snap_m : float
        The assignment's distances (see :mod:`beatmap.assign`).
    cell_m : float, optional
        Side of the finest cell.  Default: a 16th of the median block's side,
        between 0.5 and 20 m.

    Returns
    -------
    BlockIndex
    """
    if blocks.empty:
        raise InputError("cannot index an empty block layer; load beats and blocks first.")
    geoms = blocks.geometry.to_numpy()
    if cell_m is None:
        side = float(np.sqrt(np.median(shapely.area(geoms))))
        cell_m = float(np.clip(side / 2**_DEPTH, 0.5, 20.0))
    reach = max(edge_tolerance_m, snap_m if snap_m > 0 else 0.0)
    top = cell_m * 2**_DEPTH
    xmin, ymin, xmax, ymax = shapely.total_bounds(geoms)
    x0, y0 = xmin - reach - top, ymin - reach - top
    nx = int(np.ceil((xmax + reach + top - x0) / top))
    ny = int(np.ceil((ymax + reach + top - y0) / top))
    tree = shapely.STRtree(geoms)
    shapely.prepare(geoms)
    edges, owner = _edges(geoms)
    edge_tree = shapely.STRtree(edges)
    lines = _Specials()

    # The cells of one level: their coordinates at that level's size, and their answers once known.
    cx, cy = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"))
    top_value = np.full(nx * ny, SPLIT, dtype=np.int32)
    leaves: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
    # Below the fine cells: the leaves of each cut fine cell's quadtree, with the number of that fine cell (in
    # the order it was cut) as ``root``.
    sub_leaves: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    root = np.zeros(0, dtype=np.int64)
    cut_x, cut_y = root, root
    for level in range(_DEPTH + _SUB_DEPTH + 1):
        size = top / 2**level
        value = _classify(
            tree,
            geoms,
            edge_tree,
            edges,
            owner,
            x0 + cx * size,
            y0 + cy * size,
            size,
            reach=reach,
            edge_tolerance_m=edge_tolerance_m,
            last=level == _DEPTH + _SUB_DEPTH,
            lines=lines,
        )
        split = value == SPLIT
        if level == 0:
            top_value[:] = value
        elif level < _DEPTH:
            leaves.append((level, cx[~split], cy[~split], value[~split]))
        elif level == _DEPTH:
            leaves.append((level, cx, cy, value))  # the cut fine cells keep SPLIT
        else:
            sub_leaves.append((level, root[~split], cx[~split], cy[~split], value[~split]))
        parents = np.flatnonzero(split)
        if level == _DEPTH:
            cut_x, cut_y = cx[parents], cy[parents]
            root = np.repeat(np.arange(len(parents), dtype=np.int64), 4)
        elif level > _DEPTH:
            root = np.repeat(root[parents], 4)
        cx = (2 * cx[parents][:, None] + np.array([0, 1, 0, 1])).ravel()
        cy = (2 * cy[parents][:, None] + np.array([0, 0, 1, 1])).ravel()
        if not len(parents):
            break
    beats = blocks[BEAT_ID].to_numpy(dtype=object)
    pos = lines.column(8, np.int32)
    neg = lines.column(9, np.int32)
    same = (pos >= 0) & (neg >= 0) & (beats[np.maximum(pos, 0)] == beats[np.maximum(neg, 0)])
    tile_of, fine = _tiles(top_value, leaves, ny)
    cut_cells, sub = _sub_tiles(tile_of, ny, cut_x, cut_y, sub_leaves)
    line_x, line_y, line_nx, line_ny = (lines.column(i, np.float64) for i in (4, 5, 6, 7))
    band = np.where(same, _ON_LINE_M, edge_tolerance_m + _ON_LINE_M)
    _settle_sides(fine, tile_of, ny, x0, y0, cell_m, (line_x, line_y, line_nx, line_ny, pos, neg, band))
    # The blocks the exact rule can give each special cell's points.  A line with a block on each side: those
    # two (every point of the cell is in one of them, so none snaps, and no other block is within the
    # tolerance).  Any other cell: the blocks within reach of it.
    two = (pos >= 0) & (neg >= 0)
    others = np.flatnonzero(~two)
    boxes = shapely.box(*(lines.column(i, np.float64)[others] for i in range(4)))
    near_cell, near_block = tree.query(boxes, predicate="dwithin", distance=reach) if len(boxes) else ([], [])
    paired = np.flatnonzero(two)
    cell = np.concatenate([others[np.asarray(near_cell, dtype=np.int64)], paired, paired])
    block = np.concatenate([np.asarray(near_block, dtype=np.int64), pos[paired], neg[paired]])
    order = np.lexsort((block, cell))
    candidates = np.asarray(block[order], dtype=np.int32)
    start = np.searchsorted(np.asarray(cell[order]), np.arange(lines.count + 1)).astype(np.int64)
    return BlockIndex(
        x0=float(x0),
        y0=float(y0),
        cell_m=float(cell_m),
        depth=_DEPTH,
        sub_depth=_SUB_DEPTH,
        nx=nx,
        ny=ny,
        edge_tolerance_m=float(edge_tolerance_m),
        snap_m=float(snap_m),
        n_blocks=len(blocks),
        blocks_key=blocks_key(blocks),
        top=top_value,
        tile_of=tile_of,
        fine=fine,
        cut_cells=cut_cells,
        sub=sub,
        line_x=line_x,
        line_y=line_y,
        line_nx=line_nx,
        line_ny=line_ny,
        line_pos=pos,
        line_neg=neg,
        line_same_beat=np.asarray(same, dtype=bool),
        candidate_start=start,
        candidates=candidates,
    )


def _edges(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every straight edge of every block's rings, as two-point lines, and the block row of each."""
    rings, ring_block = shapely.get_rings(geoms, return_index=True)
    coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
    same_ring = coord_ring[1:] == coord_ring[:-1]
    start = np.flatnonzero(same_ring)
    segments = shapely.linestrings(np.stack([coords[start], coords[start + 1]], axis=1))
    return segments, ring_block[coord_ring[start]]


def _tiles(
    top_value: np.ndarray, leaves: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], ny: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flatten the quadtree: a tile of fine cells per split top cell, each leaf painted over its fine cells."""
    side = 2**_DEPTH
    split = np.flatnonzero(top_value == SPLIT)
    tile_of = np.full(len(top_value), -1, dtype=np.int32)
    tile_of[split] = np.arange(len(split), dtype=np.int32)
    fine = np.full(len(split) * side * side, EXACT, dtype=np.int32)
    for level, cx, cy, value in leaves:
        span = 2 ** (_DEPTH - level)  # fine cells a side of a leaf of this level
        tile = tile_of[(cx >> level) * ny + (cy >> level)].astype(np.int64)
        fx0 = (cx * span) & (side - 1)
        fy0 = (cy * span) & (side - 1)
        dx, dy = (a.ravel() for a in np.meshgrid(np.arange(span), np.arange(span), indexing="ij"))
        where = tile[:, None] * side * side + (fx0[:, None] + dx) * side + (fy0[:, None] + dy)
        fine[where.ravel()] = np.repeat(value, span * span)
    return tile_of, fine


def _fine_positions(tile_of: np.ndarray, ny: int, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Where fine cells (their coordinates on the grid of fine cells) are in ``fine``."""
    side = 2**_DEPTH
    tile = tile_of[(fx >> _DEPTH) * ny + (fy >> _DEPTH)].astype(np.int64)
    return tile * side * side + (fx & (side - 1)) * side + (fy & (side - 1))


def _sub_tiles(
    tile_of: np.ndarray,
    ny: int,
    cut_x: np.ndarray,
    cut_y: np.ndarray,
    sub_leaves: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """The cut fine cells' positions in ``fine`` (sorted) and their sub-tiles, each leaf painted over its sub-cells.

    ``cut_x``, ``cut_y``: the cut fine cells in the order they were cut (the ``root`` of the leaves).
    """
    side = 2**_SUB_DEPTH
    where = _fine_positions(tile_of, ny, cut_x, cut_y)
    order = np.argsort(where, kind="stable")
    cut_cells = where[order]
    tile_of_root = np.empty(len(where), dtype=np.int64)
    tile_of_root[order] = np.arange(len(where), dtype=np.int64)
    sub = np.full(len(where) * side * side, EXACT, dtype=np.int32)
    for level, root, cx, cy, value in sub_leaves:
        span = 2 ** (_DEPTH + _SUB_DEPTH - level)  # sub-cells a side of a leaf of this level
        sx0 = (cx * span) & (side - 1)
        sy0 = (cy * span) & (side - 1)
        dx, dy = (a.ravel() for a in np.meshgrid(np.arange(span), np.arange(span), indexing="ij"))
        at = tile_of_root[root][:, None] * side * side + (sx0[:, None] + dx) * side + (sy0[:, None] + dy)
        sub[at.ravel()] = np.repeat(value, span * span)
    return cut_cells, sub


def _settle_sides(
    fine: np.ndarray,
    tile_of: np.ndarray,
    ny: int,
    x0: float,
    y0: float,
    cell_m: float,
    line: tuple[np.ndarray, ...],
) -> None:
    """Give the fine cells of a larger line cell that lie wholly on one side of it, beyond the band where the
    exact rule has to look, that side's block (in place): fewer points then test the side of a line."""
    lx, ly, lnx, lny, pos, neg, band = line
    side = 2**_DEPTH
    where = np.flatnonzero(fine <= FIRST_LINE)
    k = FIRST_LINE - fine[where].astype(np.int64)
    has_line = np.isfinite(lnx[k])
    where, k = where[has_line], k[has_line]
    tops = np.flatnonzero(tile_of >= 0)[where >> (2 * _DEPTH)]
    gx = (tops // ny) * side + ((where >> _DEPTH) & (side - 1))
    gy = (tops % ny) * side + (where & (side - 1))
    half = cell_m / 2 + _MARGIN_M
    centre = lnx[k] * (x0 + (gx + 0.5) * cell_m - lx[k]) + lny[k] * (y0 + (gy + 0.5) * cell_m - ly[k])
    spread = (np.abs(lnx[k]) + np.abs(lny[k])) * half
    to_pos = (centre - spread > band[k]) & (pos[k] >= 0)
    to_neg = (centre + spread < -band[k]) & (neg[k] >= 0)
    fine[where[to_pos]] = pos[k[to_pos]]
    fine[where[to_neg]] = neg[k[to_neg]]


def _classify(
    tree: shapely.STRtree,
    geoms: np.ndarray,
    edge_tree: shapely.STRtree,
    edges: np.ndarray,
    owner: np.ndarray,
    left: np.ndarray,
    bottom: np.ndarray,
    size: float,
    *,
    reach: float,
    edge_tolerance_m: float,
    last: bool,
    lines: _Specials,
) -> np.ndarray:
    """The answer of each cell (``SPLIT`` for the cells to cut in four); new lines go to ``lines``."""
    n = len(left)
    right, top = left + size + _MARGIN_M, bottom + size + _MARGIN_M
    left, bottom = left - _MARGIN_M, bottom - _MARGIN_M
    value = np.full(n, OUTSIDE, dtype=np.int32)
    # Bounding-box queries only (no distance computed): a box enlarged by a distance meets every block's
    # bounding box within that distance, so a cell meeting none is surely that far from every block.
    near_cell, _ = tree.query(_diagonals(left - reach, bottom - reach, right + reach, top + reach))
    near = np.flatnonzero(np.bincount(near_cell, minlength=n))
    value[near] = EXACT
    cell, block = tree.query(
        _diagonals(
            left[near] - edge_tolerance_m,
            bottom[near] - edge_tolerance_m,
            right[near] + edge_tolerance_m,
            top[near] + edge_tolerance_m,
        )
    )
    touching = np.bincount(cell, minlength=len(near))
    single = np.flatnonzero(touching == 1)
    # The one block that may lie within the tolerance of each such cell.
    nearest = np.full(len(near), -1, dtype=np.int64)
    nearest[cell] = block
    only = nearest[single]
    cells = near[single]
    inside = shapely.covers(geoms[only], shapely.box(left[cells], bottom[cells], right[cells], top[cells]))
    value[cells[inside]] = only[inside]
    # Cells near an edge: a line when one straight boundary crosses them, else split (or exact at the last
    # level); cells in a street gap (no block within the tolerance) stay exact.
    edge = near[touching >= 1]
    edge = edge[value[edge] == EXACT]
    if len(edge):
        t = edge_tolerance_m
        ok, line = _lines(
            geoms, edge_tree, edges, owner, left[edge] - t, bottom[edge] - t, right[edge] + t, top[edge] + t
        )
        found = edge[ok]
        value[found] = lines.add(found, left, bottom, right, top, *(a[ok] for a in line))
        edge = edge[~ok]
    if not last:
        value[edge] = SPLIT
    # The cells left to the exact rule keep the blocks within reach of them, to check only those.
    rest = np.flatnonzero(value == EXACT)
    if len(rest):
        nan = np.full(len(rest), np.nan)
        none = np.full(len(rest), -1, dtype=np.int64)
        value[rest] = lines.add(rest, left, bottom, right, top, nan, nan, nan, nan, none, none)
    return value


def _lines(
    geoms: np.ndarray,
    edge_tree: shapely.STRtree,
    edges: np.ndarray,
    owner: np.ndarray,
    left: np.ndarray,
    bottom: np.ndarray,
    right: np.ndarray,
    top: np.ndarray,
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """Which boxes one straight boundary crosses (see the module docstring), and their lines.

    Returns a mask of the boxes, and for each box a point on its line, the
    line's unit normal and the blocks on its positive and negative side
    (meaningful where the mask is set).

    A box qualifies when every block edge meeting it lies on one line, those
    edges belong to at most two blocks, and a point well inside each half of
    the box lies in one of those blocks (or in none, for one half at most).
    """
    n = len(left)
    boxes = shapely.box(left, bottom, right, top)
    box_i, edge_i = edge_tree.query(boxes, predicate="intersects")
    zero, none = np.zeros(n), np.full(n, -1, dtype=np.int64)
    if not len(box_i):
        return np.zeros(n, dtype=bool), (zero, zero, zero, zero, none, none)
    order = np.argsort(box_i, kind="stable")
    box_i, edge_i = box_i[order], edge_i[order]
    first = np.r_[0, np.flatnonzero(np.diff(box_i)) + 1]
    box_of = box_i[first]
    # The line of each box's first edge: a point on it and its unit normal.
    ex, ey = _edge_points(edges[edge_i])
    ax, ay, bx, by = ex[first, 0], ey[first, 0], ex[first, 1], ey[first, 1]
    length = np.hypot(bx - ax, by - ay)
    good = length > 0
    nx_ = np.where(good, -(by - ay) / np.where(good, length, 1.0), 0.0)
    ny_ = np.where(good, (bx - ax) / np.where(good, length, 1.0), 0.0)
    group = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(box_i)]))
    # Every edge meeting the box lies on that line, and belongs to one of at most two blocks.
    off = np.maximum(
        np.abs(nx_[group] * (ex[:, 0] - ax[group]) + ny_[group] * (ey[:, 0] - ay[group])),
        np.abs(nx_[group] * (ex[:, 1] - ax[group]) + ny_[group] * (ey[:, 1] - ay[group])),
    )
    straight = np.logical_and.reduceat(off <= 1e-7, first) & good
    owners = owner[edge_i]
    block_a = owners[first]
    other = np.where(owners != block_a[group], owners, -1)
    block_b = np.maximum.reduceat(other, first)
    third = np.logical_or.reduceat((other >= 0) & (other != block_b[group]), first)
    ok = straight & ~third
    # A point well inside each half of the box: near the corner farthest from the line on that side.
    bl, bb, br, bt = left[box_of], bottom[box_of], right[box_of], top[box_of]
    corner_x = np.stack([bl, br, bl, br], axis=1)
    corner_y = np.stack([bb, bb, bt, bt], axis=1)
    side = nx_[:, None] * (corner_x - ax[:, None]) + ny_[:, None] * (corner_y - ay[:, None])
    diagonal = np.hypot(br - bl, bt - bb)
    hi, lo = np.argmax(side, axis=1), np.argmin(side, axis=1)
    rows = np.arange(len(first))
    ok &= (side[rows, hi] > 0.05 * diagonal) & (side[rows, lo] < -0.05 * diagonal)
    cx_, cy_ = (bl + br) / 2, (bb + bt) / 2
    px = corner_x[rows, hi] + 0.01 * (cx_ - corner_x[rows, hi])
    py = corner_y[rows, hi] + 0.01 * (cy_ - corner_y[rows, hi])
    qx = corner_x[rows, lo] + 0.01 * (cx_ - corner_x[rows, lo])
    qy = corner_y[rows, lo] + 0.01 * (cy_ - corner_y[rows, lo])
    b_safe = np.maximum(block_b, 0)
    has_b = block_b >= 0
    pa = shapely.contains_xy(geoms[block_a], px, py)
    pb = has_b & shapely.contains_xy(geoms[b_safe], px, py)
    qa = shapely.contains_xy(geoms[block_a], qx, qy)
    qb = has_b & shapely.contains_xy(geoms[b_safe], qx, qy)
    pos = np.where(pa, block_a, np.where(pb, block_b, -1))
    neg = np.where(qa, block_a, np.where(qb, block_b, -1))
    # Each half in one block at most, the halves in different blocks, a block on one side at least, and
    # every block meeting the box on one of the sides.
    ok &= ~(pa & pb) & ~(qa & qb) & (pos != neg) & (pos >= 0)
    ok &= ((pos == block_a) | (neg == block_a)) & (~has_b | (pos == block_b) | (neg == block_b))
    mask = np.zeros(n, dtype=bool)
    mask[box_of] = ok
    out: list[np.ndarray] = []
    for values, blank in ((ax, zero), (ay, zero), (nx_, zero), (ny_, zero), (pos, none), (neg, none)):
        full = blank.copy()
        full[box_of] = values
        out.append(full)
    return mask, tuple(out)


def _edge_points(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The x and y of both ends of two-point lines, as ``(n, 2)`` arrays."""
    coords = shapely.get_coordinates(segments).reshape(-1, 2, 2)
    return coords[:, :, 0], coords[:, :, 1]


def _diagonals(left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Lines from corner to corner: the same bounding boxes as the cells, several times faster to make."""
    return shapely.linestrings(np.stack([np.stack([left, bottom], axis=1), np.stack([right, top], axis=1)], axis=1))


def index_cells(index: BlockIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The answer of each point's cell: a block row, ``OUTSIDE``, ``EXACT`` or special (``<= FIRST_LINE``).

    Points off the grid are ``OUTSIDE``; points with a missing coordinate ``EXACT``.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    depth = index.depth
    side = 2**depth
    scale = 1.0 / index.cell_m
    ux = x - index.x0
    ux *= scale
    uy = y - index.y0
    uy *= scale
    width, height = index.nx * side, index.ny * side
    # Four reductions settle the usual case (every point on the grid; NaN fails each comparison).
    if len(x) and ux.min() >= 0 and uy.min() >= 0 and ux.max() < width and uy.max() < height:
        active = None
    else:
        with np.errstate(invalid="ignore"):
            in_grid = (ux >= 0) & (ux < width) & (uy >= 0) & (uy < height)
        active = np.flatnonzero(in_grid)
        ux, uy = ux[active], uy[active]
    # Truncation is the floor here: every coordinate left is at least 0.
    ix = ux.astype(np.int32)
    iy = uy.astype(np.int32)
    cell = ix >> depth
    cell *= np.int32(index.ny)
    cell += iy >> depth
    value = index.top[cell]
    split = np.flatnonzero(value == SPLIT)
    fine = index.tile_of[cell[split]].astype(np.int64) << (2 * depth)
    fine += (ix[split] & (side - 1)) << depth
    fine += iy[split] & (side - 1)
    answer = index.fine[fine]
    cut = np.flatnonzero(answer == SPLIT) if len(index.cut_cells) else np.zeros(0, dtype=np.int64)
    if len(cut):
        # The sub-cell: the point's place within its fine cell, in sub-cells (the cells are tested enlarged, so
        # rounding here cannot put a point in a sub-cell that does not hold it).
        sub_depth = index.sub_depth
        sub_side = 2**sub_depth
        at = split[cut]
        sx = np.minimum(((ux[at] - ix[at]) * sub_side).astype(np.int32), sub_side - 1)
        sy = np.minimum(((uy[at] - iy[at]) * sub_side).astype(np.int32), sub_side - 1)
        where = np.searchsorted(index.cut_cells, fine[cut]) << (2 * sub_depth)
        where += (sx << sub_depth) + sy
        answer[cut] = index.sub[where]
    value[split] = answer
    if active is None:
        return value
    out = np.where(np.isfinite(x) & np.isfinite(y), OUTSIDE, EXACT).astype(np.int32)
    out[active] = value
    return out


def index_lookup(index: BlockIndex, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The answer for each point: a block row, ``OUTSIDE`` or ``EXACT``.

    Parameters
    ----------
    index : BlockIndex
    x, y : array of float
        Points in the index's CRS.

    Returns
    -------
    array of int64
    """
    return index_candidates(index, x, y)[0]


def index_candidates(index: BlockIndex, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The answer for each point, and the blocks the exact rule has to weigh for the points it leaves.

    Returns
    -------
    answer : array of int64
        A block row, ``OUTSIDE`` or ``EXACT`` per point.
    point, block : arrays of int64
        Pairs: for each ``EXACT`` point of a cell that keeps its candidates,
        every block within ``max(edge_tolerance_m, snap_m)`` of its cell
        (grouped by point, in point order).  An ``EXACT`` point in no pair
        (a missing coordinate) needs the whole exact rule.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    out = index_cells(index, x, y).astype(np.int64)
    special = np.flatnonzero(out <= FIRST_LINE)
    no_pairs = np.zeros(0, dtype=np.int64)
    if not len(special):
        return out, no_pairs, no_pairs
    k = FIRST_LINE - out[special]
    with np.errstate(invalid="ignore"):
        s = index.line_nx[k] * (x[special] - index.line_x[k]) + index.line_ny[k] * (y[special] - index.line_y[k])
        answer = np.where(s > 0, index.line_pos[k], index.line_neg[k]).astype(np.int64)
        # Exact: a cell with no line; too near the line to trust its side; within the tolerance of both blocks
        # when the beat a record reports could choose; on a side with no block (a street gap or outside).
        exact = ~(np.abs(s) > _ON_LINE_M)
        exact |= (np.abs(s) <= index.edge_tolerance_m + _ON_LINE_M) & ~index.line_same_beat[k]
    exact |= answer < 0
    answer[exact] = EXACT
    out[special] = answer
    points, k = special[exact], k[exact]
    first, count = index.candidate_start[k], index.candidate_start[k + 1] - index.candidate_start[k]
    out[points[count == 0]] = OUTSIDE
    pair_point = np.repeat(points, count)
    ends = np.cumsum(count)
    offset = np.arange(len(pair_point), dtype=np.int64) - np.repeat(ends - count, count)
    pair_block = index.candidates[np.repeat(first, count) + offset].astype(np.int64)
    return out, pair_point, pair_block


_ARRAYS = (
    "top",
    "tile_of",
    "fine",
    "cut_cells",
    "sub",
    "line_x",
    "line_y",
    "line_nx",
    "line_ny",
    "line_pos",
    "line_neg",
    "line_same_beat",
    "candidate_start",
    "candidates",
)


def index_to_bytes(index: BlockIndex) -> bytes:
    """The index as bytes (NumPy ``.npz``, not compressed: a few MB for a city, and quick), for the store."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        format=np.array(INDEX_FORMAT),
        blocks_key=np.array(index.blocks_key),
        numbers=np.array([index.x0, index.y0, index.cell_m, index.edge_tolerance_m, index.snap_m]),
        sizes=np.array([index.depth, index.sub_depth, index.nx, index.ny, index.n_blocks]),
        **{name: getattr(index, name) for name in _ARRAYS},
    )
    return buffer.getvalue()


def index_from_bytes(data: bytes) -> BlockIndex | None:
    """An index saved by :func:`index_to_bytes`, or None when it is in an older format."""
    with np.load(io.BytesIO(data), allow_pickle=False) as saved:
        if str(saved["format"]) != INDEX_FORMAT:
            return None
        x0, y0, cell_m, tolerance, snap = (float(v) for v in saved["numbers"])
        depth, sub_depth, nx, ny, n_blocks = (int(v) for v in saved["sizes"])
        return BlockIndex(
            x0=x0,
            y0=y0,
            cell_m=cell_m,
            depth=depth,
            sub_depth=sub_depth,
            nx=nx,
            ny=ny,
            edge_tolerance_m=tolerance,
            snap_m=snap,
            n_blocks=n_blocks,
            blocks_key=str(saved["blocks_key"]),
            **{name: saved[name] for name in _ARRAYS},
        )


#: Indexes built or read in this process, newest last: (areas key, tolerance, snap) -> index.
_LOADED: OrderedDict[tuple[str, float, float], BlockIndex] = OrderedDict()
_LOADED_MAX = 2


def block_index_for(
    bind: Engine | Connection, blocks: gpd.GeoDataFrame, *, edge_tolerance_m: float, snap_m: float
) -> BlockIndex:
    """The index of ``blocks`` (as :func:`beatmap.store.read_blocks` returns them): from memory, else from the
    store, else built now and kept in the store.

    ``bind`` is the store, or a connection in a write transaction (an import's):
    an index built then is kept with that transaction.  Indexes are kept in
    memory per process (the two last areas), so a dashboard or a second import
    in one process does not read one again.
    """
    key = (blocks_key(blocks), float(edge_tolerance_m), float(snap_m))
    index = _LOADED.get(key)
    if index is None:
        data = store.read_block_index(bind, key[0], fmt=INDEX_FORMAT, edge_tolerance_m=key[1], snap_m=key[2])
        index = index_from_bytes(data) if data is not None else None
        if index is None or index.n_blocks != len(blocks):
            index = build_block_index(blocks, edge_tolerance_m=edge_tolerance_m, snap_m=snap_m)
            if isinstance(bind, Connection):
                save_block_index(bind, index)
            else:
                with store.transaction(bind) as conn:
                    save_block_index(conn, index)
    remember_block_index(index)
    return index


def save_block_index(conn: Connection, index: BlockIndex) -> None:
    """Keep ``index`` in the store (inside the caller's transaction), replacing the one kept before."""
    store.write_block_index(
        conn,
        index.blocks_key,
        index_to_bytes(index),
        fmt=INDEX_FORMAT,
        edge_tolerance_m=index.edge_tolerance_m,
        snap_m=index.snap_m,
    )


def remember_block_index(index: BlockIndex) -> None:
    """Keep ``index`` in this process's memory for :func:`block_index_for`."""
    key = (index.blocks_key, index.edge_tolerance_m, index.snap_m)
    _LOADED[key] = index
    _LOADED.move_to_end(key)
    while len(_LOADED) > _LOADED_MAX:
        _LOADED.popitem(last=False)


def forget_block_indexes() -> None:
    """Drop the indexes kept in this process's memory (the store keeps its own)."""
    _LOADED.clear()
