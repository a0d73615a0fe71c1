"""The block index: a saved look-up that answers most points without geometry.

A regular grid over the blocks in the analysis CRS, refined as a quadtree
near block edges.  Every cell holds one answer for all the points in it:

- a block, when the cell lies wholly inside that block and farther than
  ``edge_tolerance_m`` from every other block (so the exact rule of
  :mod:`beatmap.assign` can only give that block, at distance 0);
- ``OUTSIDE``, when the cell is farther than ``snap_m`` (and the edge
  tolerance) from every block;
- ``EXACT``, for the rest (cells on an edge, within the tolerance of a
  neighbour, or in a street gap): those points go through the exact rule.

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
from beatmap.schema import BLOCK_ID

#: A cell's answer: every point in it is outside the blocks.
OUTSIDE = -1
#: A cell's answer: its points go through the exact rule.
EXACT = -2
#: A node that is split into four children (never an answer).
SPLIT = -3
#: How much a cell is enlarged before its tests (metres): far above rounding, far below any tolerance.
_MARGIN_M = 1e-3
#: Depth of the quadtree under each top cell.
_DEPTH = 4
#: The format of :func:`index_to_bytes`; an index saved in another format is rebuilt.
INDEX_FORMAT = "block-index-1"


@dataclass(frozen=True, eq=False)
class BlockIndex:
    """A built block index (see the module docstring); treat it as read-only.

    Nodes ``0 .. nx * ny - 1`` are the top cells (``ix * ny + iy``); a node
    whose ``value`` is ``SPLIT`` has four children from ``child``, in the
    order (low x, low y), (high x, low y), (low x, high y), (high x, high y).
    """

    x0: float
    y0: float
    cell_m: float
    depth: int
    nx: int
    ny: int
    edge_tolerance_m: float
    snap_m: float
    n_blocks: int
    blocks_key: str
    value: np.ndarray
    child: np.ndarray

    @property
    def top_cell_m(self) -> float:
        """Side of a top cell (``cell_m`` is the side of the finest one)."""
        return self.cell_m * 2**self.depth


def blocks_key(blocks: gpd.GeoDataFrame) -> str:
    """The identity of a block layer: ids, beats, geometry and CRS in row order."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(blocks.crs.to_wkt() if blocks.crs is not None else "").encode())
    digest.update("\x1f".join(map(str, blocks[BLOCK_ID])).encode())
    digest.update("\x1f".join(map(str, blocks["beat_id"])).encode())
    for wkb in shapely.to_wkb(blocks.geometry.to_numpy()):
        digest.update(wkb)
    return digest.hexdigest()


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

    values: list[np.ndarray] = []
    children: list[np.ndarray] = []
    # The nodes of one level: their cell coordinates at that level's size, and their node ids.
    cx, cy = (a.ravel() for a in np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"))
    first_id = 0
    for level in range(_DEPTH + 1):
        size = top / 2**level
        value, split = _classify(
            tree,
            geoms,
            x0 + cx * size,
            y0 + cy * size,
            size,
            reach=reach,
            edge_tolerance_m=edge_tolerance_m,
            last=level == _DEPTH,
        )
        n = len(cx)
        child = np.full(n, -1, dtype=np.int32)
        parents = np.flatnonzero(split)
        next_first = first_id + n
        child[parents] = next_first + 4 * np.arange(len(parents), dtype=np.int32)
        values.append(value)
        children.append(child)
        # Children in the order (low x, low y), (high x, low y), (low x, high y), (high x, high y).
        cx = (2 * cx[parents][:, None] + np.array([0, 1, 0, 1])).ravel()
        cy = (2 * cy[parents][:, None] + np.array([0, 0, 1, 1])).ravel()
        first_id = next_first
        if not len(parents):
            break
    return BlockIndex(
        x0=float(x0),
        y0=float(y0),
        cell_m=float(cell_m),
        depth=_DEPTH,
        nx=nx,
        ny=ny,
        edge_tolerance_m=float(edge_tolerance_m),
        snap_m=float(snap_m),
        n_blocks=len(blocks),
        blocks_key=blocks_key(blocks),
        value=np.concatenate(values),
        child=np.concatenate(children),
    )


def _classify(
    tree: shapely.STRtree,
    geoms: np.ndarray,
    left: np.ndarray,
    bottom: np.ndarray,
    size: float,
    *,
    reach: float,
    edge_tolerance_m: float,
    last: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The answer of each cell, and which cells to split (SPLIT in the answer)."""
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
    # Cells near an edge get split; cells in a street gap (no block within the tolerance) stay exact.
    split = np.zeros(n, dtype=bool)
    if not last:
        edge = near[touching >= 1]
        edge = edge[value[edge] == EXACT]
        split[edge] = True
        value[edge] = SPLIT
    return value, split


def _diagonals(left: np.ndarray, bottom: np.ndarray, right: np.ndarray, top: np.ndarray) -> np.ndarray:
    """Lines from corner to corner: the same bounding boxes as the cells, several times faster to make."""
    return shapely.linestrings(np.stack([np.stack([left, bottom], axis=1), np.stack([right, top], axis=1)], axis=1))


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
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    out = np.full(len(x), OUTSIDE, dtype=np.int64)
    finite = np.isfinite(x) & np.isfinite(y)
    out[~finite] = EXACT
    with np.errstate(invalid="ignore"):
        fx = np.floor((x - index.x0) / index.cell_m)
        fy = np.floor((y - index.y0) / index.cell_m)
    limit_x, limit_y = index.nx * 2**index.depth, index.ny * 2**index.depth
    in_grid = finite & (fx >= 0) & (fx < limit_x) & (fy >= 0) & (fy < limit_y)
    active = np.flatnonzero(in_grid)
    ix = fx[active].astype(np.int64)
    iy = fy[active].astype(np.int64)
    node = (ix >> index.depth) * index.ny + (iy >> index.depth)
    for level in range(index.depth + 1):
        value = index.value[node]
        done = value != SPLIT
        out[active[done]] = value[done]
        if done.all():
            break
        keep = ~done
        active, ix, iy, node = active[keep], ix[keep], iy[keep], node[keep]
        shift = index.depth - 1 - level
        node = index.child[node] + ((ix >> shift) & 1) + 2 * ((iy >> shift) & 1)
    return out


def index_to_bytes(index: BlockIndex) -> bytes:
    """The index as bytes (NumPy ``.npz``, not compressed: a few MB for a city, and quick), for the store."""
    buffer = io.BytesIO()
    np.savez(
        buffer,
        format=np.array(INDEX_FORMAT),
        blocks_key=np.array(index.blocks_key),
        numbers=np.array([index.x0, index.y0, index.cell_m, index.edge_tolerance_m, index.snap_m]),
        sizes=np.array([index.depth, index.nx, index.ny, index.n_blocks]),
        value=index.value,
        child=index.child,
    )
    return buffer.getvalue()


def index_from_bytes(data: bytes) -> BlockIndex | None:
    """An index saved by :func:`index_to_bytes`, or None when it is in an older format."""
    with np.load(io.BytesIO(data), allow_pickle=False) as saved:
        if str(saved["format"]) != INDEX_FORMAT:
            return None
        x0, y0, cell_m, tolerance, snap = (float(v) for v in saved["numbers"])
        depth, nx, ny, n_blocks = (int(v) for v in saved["sizes"])
        return BlockIndex(
            x0=x0,
            y0=y0,
            cell_m=cell_m,
            depth=depth,
            nx=nx,
            ny=ny,
            edge_tolerance_m=tolerance,
            snap_m=snap,
            n_blocks=n_blocks,
            blocks_key=str(saved["blocks_key"]),
            value=saved["value"],
            child=saved["child"],
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
