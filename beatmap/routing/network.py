"""Walking distances between a start, an end and blocks: on the street network, or in straight lines.

The start and end snap to the nearest network node (the distance is reported and walked in a straight
line), each block is reached at the network node nearest to it, and on a network in pieces only the
start's piece is used (the blocks on other pieces are named as unreachable).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse.csgraph import dijkstra

from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.streets import street_graph


@dataclass(frozen=True)
class WalkingDistances:
    """Walking distances between the start, the end and candidate blocks.

    Attributes
    ----------
    distance : ndarray
        Square array of metres over [start, end, candidates...] (1e12 for blocks
        off the start's piece of network).
    xy : ndarray
        Where each of those points is reached, in the candidates' CRS.
    unreachable : ndarray
        Bool per candidate: off the start's piece of network.
    start_snap, end_snap : float
        Metres from the start and the end to the nearest network node.
    straight_line : bool
        True when distances are straight lines between block centres.
    path : callable
        ``path(i, j)``: the metric points walked from point i to point j.
    notes : list of str
        Sentences for the officer.
    """

    distance: np.ndarray
    xy: np.ndarray
    unreachable: np.ndarray
    start_snap: float
    end_snap: float
    straight_line: bool
    path: Callable[[int, int], list[np.ndarray]]
    notes: list[str]


def walking_distances(
    candidates: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame | None,
    *,
    start: tuple[float, float],
    end: tuple[float, float],
) -> WalkingDistances:
    """Walking distances between the start, the end and every candidate block.

    Parameters
    ----------
    candidates : GeoDataFrame
        Block polygons in a metric CRS.
    streets : GeoDataFrame or None
        Street centrelines in the same CRS; None for straight lines between
        block centres.
    start, end : tuple of float
        ``(lat, lon)``.

    Returns
    -------
    WalkingDistances
        The distance matrix over [start, end, candidates...], where each point
        is reached, which blocks are unreachable, the snap distances, the
        walked paths and notes for the officer.
    """
    points = _metric_points(start, end, CRS(candidates.crs))
    if streets is None or len(streets) == 0:
        return _straight_walk(candidates, points)
    return _network_walk(candidates, streets, points)


def _metric_points(start: tuple[float, float], end: tuple[float, float], crs: CRS) -> np.ndarray:
    """``[[x, y] of start, [x, y] of end]`` in ``crs`` from ``(lat, lon)`` pairs."""
    x, y = transform_xy(np.array([start[1], end[1]]), np.array([start[0], end[0]]), WGS84, crs)
    return np.column_stack([x, y])


def _straight_walk(candidates: gpd.GeoDataFrame, points: np.ndarray) -> WalkingDistances:
    """Straight-line distances between the start, the end and each block's inner point."""
    centres = shapely.get_coordinates(candidates.geometry.representative_point().to_numpy())
    xy = np.vstack([points, centres])
    distance = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    return WalkingDistances(
        distance=distance,
        xy=xy,
        unreachable=np.zeros(len(candidates), dtype=bool),
        start_snap=0.0,
        end_snap=0.0,
        straight_line=True,
        path=lambda i, j: [xy[i], xy[j]],
        notes=[
            "No street network is loaded: distances and times are straight-line estimates between block "
            "centres, and real walks are longer. Load streets with `beatmap streets FILE`."
        ],
    )


def _network_walk(candidates: gpd.GeoDataFrame, streets: gpd.GeoDataFrame, points: np.ndarray) -> WalkingDistances:
    """Walking distances on the street network between the start, the end and each block's nearest node."""
    graph = street_graph(streets)
    nodes = np.array(sorted(graph.nodes))
    node_xy = np.array([[graph.nodes[n]["x"], graph.nodes[n]["y"]] for n in nodes])
    tree = shapely.STRtree(shapely.points(node_xy))
    snapped, snap_m = tree.query_nearest(shapely.points(points), return_distance=True, all_matches=False)
    start_node, end_node = nodes[snapped[1][np.argsort(snapped[0])]]
    snap_m = snap_m[np.argsort(snapped[0])]
    block_node = _nearest_nodes(candidates, tree, nodes, node_xy)

    piece = nx.node_connected_component(graph, int(start_node))
    if int(end_node) not in piece:
        raise InputError(
            "the end is on a piece of the street network not joined to the start's; "
            "choose an end on streets the start can walk to."
        )
    unreachable = np.array([int(n) not in piece for n in block_node])
    targets = np.array([start_node, end_node, *block_node])
    sources, row_of = np.unique(targets, return_inverse=True)
    adjacency = nx.to_scipy_sparse_array(graph, nodelist=list(nodes), weight="length", format="csr")
    position = {int(n): i for i, n in enumerate(nodes)}
    source_pos = np.array([position[int(n)] for n in sources])
    target_pos = np.array([position[int(n)] for n in targets])
    lengths, predecessors = dijkstra(adjacency, directed=False, indices=source_pos, return_predecessors=True)
    distance = lengths[row_of.ravel()][:, target_pos]
    distance[0, :] += snap_m[0]
    distance[:, 1] += snap_m[1]
    distance[~np.isfinite(distance)] = 1e12  # blocks off the start's piece: never chosen

    def path(i: int, j: int) -> list[np.ndarray]:
        row = predecessors[row_of.ravel()[i]]
        here, steps = target_pos[j], []
        while here >= 0:
            steps.append(node_xy[here])
            here = row[here]
        line = steps[::-1]
        if i == 0:
            line.insert(0, points[0])
        if j == 1:
            line.append(points[1])
        return line

    notes: list[str] = []
    for what, metres in (("start", snap_m[0]), ("end", snap_m[1])):
        if metres > 1:
            notes.append(
                f"The {what} is {metres:.0f} m from the nearest street; that stretch is counted in a straight line."
            )
    return WalkingDistances(
        distance=distance,
        xy=np.vstack([points, node_xy[target_pos[2:]]]),
        unreachable=unreachable,
        start_snap=float(snap_m[0]),
        end_snap=float(snap_m[1]),
        straight_line=False,
        path=path,
        notes=notes,
    )


def _nearest_nodes(
    candidates: gpd.GeoDataFrame, tree: shapely.STRtree, nodes: np.ndarray, node_xy: np.ndarray
) -> np.ndarray:
    """The network node nearest to each block; ties go to the node nearest the block's centre, then the lower id."""
    blocks = candidates.geometry.to_numpy()
    pairs = tree.query_nearest(blocks, all_matches=True)
    centres = shapely.get_coordinates(shapely.centroid(blocks))
    frame = pd.DataFrame({"block": pairs[0], "node": pairs[1]})
    frame["to_centre"] = np.hypot(*(node_xy[frame["node"]] - centres[frame["block"]]).T)
    best = frame.sort_values(["block", "to_centre", "node"]).drop_duplicates("block")
    return nodes[best.sort_values("block")["node"].to_numpy()]
