"""Name blocks by their streets: "W Mission St between N 1st St and N 2nd St".

A block is named by the street that runs longest along it (its *main*
street) and the two streets that cross the main street at the block's ends.
A block seen from two main streets of equal length takes the name first in
alphabetical order, so names are deterministic.  Where two blocks would get
the same name (the blocks on both sides of one street between the same
corners), the side is added ("north side").

The functions are pure (frames in, a Series out) so any view can name blocks:
the dashboard's tooltips and tables, exports, route stops and cards, and
neglected areas.  Blocks with no named street within reach get no name
(``None``): callers show the block id then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from beatmap import schema as S
from beatmap.crs import WGS84, transform_xy
from beatmap.errors import CRSError

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = [
    "LANDMARK",
    "LANDMARK_REACH_M",
    "REACH_M",
    "block_label",
    "block_street_names",
    "landmarks_by_block",
    "names_from_store",
]

#: A street counts for a block when it passes within this many metres of the block's edge
#: (centrelines run mid-street, some metres from the block polygons of a parcel-based layer).
REACH_M = 15.0
#: A cross street meets the main street when they come within this many metres of each other.
_MEET_M = 2.0
#: The column name of the names in frames and tables.
NAME = "street_name"


def block_street_names(
    blocks: gpd.GeoDataFrame,
    streets: gpd.GeoDataFrame,
    *,
    reach_m: float = REACH_M,
) -> pd.Series:
    """Each block's name in words, from the named streets around it.

    Parameters
    ----------
    blocks : GeoDataFrame
        Block polygons in a metric CRS (metres).
    streets : GeoDataFrame
        Street lines with a ``name`` column, in the same CRS.
    reach_m : float
        How far from a block's edge a street still borders it, in metres.

    Returns
    -------
    Series
        ``street_name`` aligned to ``blocks.index``: "Main St between A St
        and B St", "Main St at A St" (one cross street), "Main St" (none),
        with ", north side" (or south, east, west) where two blocks would
        otherwise share the name; ``None`` where no named street is in reach.

    Raises
    ------
    CRSError
        When the two layers are not in the same metric CRS.
    """
    result = pd.Series([None] * len(blocks), index=blocks.index, dtype=object, name=NAME)
    if blocks.empty or streets is None or streets.empty or "name" not in streets:
        return result
    _check_crs(blocks, streets)
    named = streets[streets["name"].notna() & streets["name"].astype(str).str.strip().ne("")]
    if named.empty:
        return result
    shapes = blocks.geometry.to_numpy()
    names = named["name"].astype(str).str.strip().to_numpy()
    # Streets as straight two-point segments, so a segment's stretch near a block is clipped with arithmetic
    # (an overlay per pair is many times slower at city scale).
    parts, part_of = shapely.get_parts(named.geometry.to_numpy(), return_index=True)
    coords, vertex_of = shapely.get_coordinates(parts, return_index=True)
    same = vertex_of[:-1] == vertex_of[1:]
    starts, ends = coords[:-1][same], coords[1:][same]
    segment_names = names[part_of[vertex_of[:-1][same]]]
    reach = shapely.buffer(shapes, reach_m, quad_segs=2)
    segments = shapely.linestrings(np.stack([starts, ends], axis=1))
    block_i, segment_i = shapely.STRtree(segments).query(reach, predicate="intersects")
    if len(block_i) == 0:
        return result
    # A street's length near a block is measured inside the block's reach box: it ranks the streets of a block
    # as the buffered outline would.
    a, b = _clip(starts[segment_i], ends[segment_i], shapely.bounds(reach[block_i]))
    length = np.hypot(*(b - a).T)
    keep = length > 0
    found = pd.DataFrame(
        {
            "block": block_i[keep],
            "name": segment_names[segment_i[keep]],
            "length": length[keep],
            "piece": shapely.linestrings(np.stack([a[keep], b[keep]], axis=1)),
        }
    )
    totals = found.groupby(["block", "name"], as_index=False)["length"].sum()
    totals = totals.sort_values(["block", "length", "name"], ascending=[True, False, True], kind="stable")
    main = totals.drop_duplicates("block").set_index("block")["name"]
    found["main"] = found["name"].to_numpy() == main.reindex(found["block"]).to_numpy()
    texts = _texts(found, main, shapes)
    result.iloc[texts.index.to_numpy()] = texts.to_numpy()
    return result


def _clip(starts: np.ndarray, ends: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The part of each segment inside its box (Liang-Barsky), as new end points; empty parts start where they end.

    ``starts`` and ``ends`` are (n, 2) arrays, ``boxes`` (n, 4) of xmin, ymin, xmax, ymax.
    """
    d = ends - starts
    p = np.stack([-d[:, 0], d[:, 0], -d[:, 1], d[:, 1]], axis=1)
    q = np.stack(
        [
            starts[:, 0] - boxes[:, 0],
            boxes[:, 2] - starts[:, 0],
            starts[:, 1] - boxes[:, 1],
            boxes[:, 3] - starts[:, 1],
        ],
        axis=1,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        r = q / p
    t0 = np.max(np.where(p < 0, r, 0.0), axis=1)
    t1 = np.min(np.where(p > 0, r, 1.0), axis=1)
    outside = ((p == 0) & (q < 0)).any(axis=1) | (t0 > t1)
    t0 = np.clip(t0, 0.0, 1.0)
    t1 = np.where(outside, t0, np.clip(t1, 0.0, 1.0))
    return starts + t0[:, None] * d, starts + t1[:, None] * d


def _check_crs(blocks: gpd.GeoDataFrame, streets: gpd.GeoDataFrame) -> None:
    a, b = blocks.crs, streets.crs
    metres = a is not None and CRS(a).is_projected and CRS(a).axis_info[0].unit_name == "metre"
    if not metres or b is None or not CRS(a).equals(CRS(b)):
        raise CRSError(
            f"naming blocks by their streets needs both layers in one metric CRS; the blocks are in "
            f"{a and CRS(a).name}, the streets in {b and CRS(b).name}. Reproject both to the analysis "
            "CRS (as the store keeps them) first."
        )


def _texts(found: pd.DataFrame, main: pd.Series, shapes: np.ndarray) -> pd.Series:
    """The name of every block that has a main street: main, cross streets ordered along it, side if shared."""
    mains = found[found["main"]]
    # The main street's direction in each block: from the first to the last point of its pieces, pointing east
    # (or north when it runs north-south), so cross streets read west to east or south to north.
    coords, which = shapely.get_coordinates(mains["piece"].to_numpy(), return_index=True)
    block_of = mains["block"].to_numpy()[which]
    ends = pd.DataFrame({"block": block_of, "x": coords[:, 0], "y": coords[:, 1]})
    first, last = ends.groupby("block").first(), ends.groupby("block").last()
    dx, dy = (last["x"] - first["x"]).to_numpy(), (last["y"] - first["y"]).to_numpy()
    flip = (dx < 0) | ((np.abs(dx) < 1e-9) & (dy < 0))
    dx, dy = np.where(flip, -dx, dx), np.where(flip, -dy, dy)
    norm = np.hypot(dx, dy)
    norm[norm == 0] = 1.0
    direction = pd.DataFrame({"dx": dx / norm, "dy": dy / norm}, index=first.index)

    centre = ends.groupby("block")[["x", "y"]].mean()  # the middle of the main street's stretch
    others = found[~found["main"]].reset_index(drop=True)
    pairs = (
        others[["block", "piece"]].reset_index().merge(mains[["block", "piece"]], on="block", suffixes=("", "_main"))
    )
    meets = shapely.dwithin(pairs["piece"].to_numpy(), pairs["piece_main"].to_numpy(), _MEET_M)
    crossing = others.loc[np.unique(pairs["index"].to_numpy()[meets])]
    where = shapely.get_coordinates(shapely.centroid(crossing["piece"].to_numpy()))
    d = direction.reindex(crossing["block"])
    crossing = crossing.assign(pos=where[:, 0] * d["dx"].to_numpy() + where[:, 1] * d["dy"].to_numpy())
    spans = crossing.groupby(["block", "name"], as_index=False)["pos"].mean().sort_values(["block", "pos", "name"])
    west = spans.drop_duplicates("block", keep="first").set_index("block")["name"]
    east = spans.drop_duplicates("block", keep="last").set_index("block")["name"]

    blocks = main.index.to_numpy()
    texts = []
    for b, street in zip(blocks, main.to_numpy(), strict=True):
        a, z = west.get(b), east.get(b)
        if a is None:
            texts.append(street)
        elif a == z:
            texts.append(f"{street} at {a}")
        else:
            texts.append(f"{street} between {a} and {z}")
    named = pd.Series(texts, index=blocks, dtype=object)
    shared = named.duplicated(keep=False)
    if shared.any():
        named[shared] = [
            f"{text}, {_side(shapes[b], centre.loc[b].to_numpy(), direction.loc[b])}"
            for b, text in named[shared].items()
        ]
    return named


def _side(shape: shapely.Geometry, on_street: np.ndarray, direction: pd.Series) -> str:
    """Which side of its main street (``on_street``: a point of it) a block lies on, in compass words."""
    inside = shapely.get_coordinates(shapely.point_on_surface(shape))[0]
    rx, ry = inside - on_street
    across = direction["dx"] * ry - direction["dy"] * rx  # > 0: left of the direction of travel
    # Left of an eastward street is north; left of a northward street is west.
    if abs(direction["dx"]) >= abs(direction["dy"]):
        return "north side" if across > 0 else "south side"
    return "west side" if across > 0 else "east side"


def area_street_name(outline: shapely.Geometry, streets: gpd.GeoDataFrame | None, *, reach_m: float) -> str | None:
    """An area's name from its streets: "around A and B", the two named streets with the most length in the
    area or within ``reach_m`` of it ("along A" with one); None without any named street there."""
    if streets is None or len(streets) == 0:
        return None
    reach = outline.buffer(reach_m)
    near = streets.iloc[streets.sindex.query(reach, predicate="intersects")]
    near = near[near["name"].notna() & (near["name"].astype(str).str.strip() != "")]
    if near.empty:
        return None
    length = pd.Series(
        shapely.length(shapely.intersection(near.geometry.to_numpy(), reach)),
        index=near["name"].astype(str).str.strip().to_numpy(),
    )
    ranked = length.groupby(level=0).sum().sort_index().sort_values(ascending=False, kind="stable")
    names = list(ranked.index[:2])
    return "along " + names[0] if len(names) == 1 else f"around {names[0]} and {names[1]}"


def names_from_store(engine: Engine, *, beat_id: str | None = None) -> pd.Series:
    """Street names of the store's blocks (of one beat, or all), indexed by ``block_id``.

    The whole city is named either way, so a block has the same name in every view (whether two blocks
    share a name, and so carry their side, is a city-wide question).  Empty when no streets are loaded;
    ``None`` for a block with no named street in reach.
    """
    from beatmap import store  # here, not at the top: the public page imports this module and never the store

    blocks = store.read_blocks(engine)
    streets = store.read_streets(engine) if not blocks.empty else None
    if blocks.empty or streets is None or streets.empty:
        return pd.Series(dtype=object, name=NAME)
    names = pd.Series(
        block_street_names(blocks, streets).to_numpy(), index=blocks[S.BLOCK_ID].to_numpy(), dtype=object, name=NAME
    )
    if beat_id is not None:
        names = names[(blocks[S.BEAT_ID] == beat_id).to_numpy()]
    return names


#: A landmark names a block it stands on or beside: within this many metres of the block's edge (a school
#: across the street from a block names it too; one set back in its grounds still reaches the blocks around).
LANDMARK_REACH_M = 40.0
#: The column name of the landmark names in frames and tooltips.
LANDMARK = "landmark"


def landmarks_by_block(
    blocks: gpd.GeoDataFrame, landmarks: dict[str, tuple[float, float]], *, reach_m: float = LANDMARK_REACH_M
) -> pd.Series:
    """The landmarks (the settings' names and ``(lat, lon)`` points) on or beside each block, as text.

    Parameters
    ----------
    blocks : GeoDataFrame
        ``block_id`` and polygons in a metric CRS.
    landmarks : dict
        Name -> (latitude, longitude), as in the settings.
    reach_m : float
        How far from a block's edge a landmark still names it.

    Returns
    -------
    Series
        Indexed by ``block_id``: the names of the landmarks within reach, nearest first, joined by
        " · "; only blocks with a landmark in reach are in it.
    """
    if not landmarks or blocks.empty:
        return pd.Series(dtype=object, name=LANDMARK)
    names = list(landmarks)
    lat = np.array([landmarks[n][0] for n in names], dtype=float)
    lon = np.array([landmarks[n][1] for n in names], dtype=float)
    x, y = transform_xy(lon, lat, WGS84, CRS(blocks.crs))
    points = shapely.points(x, y)
    shapes = blocks.geometry.to_numpy()
    tree = shapely.STRtree(shapes)
    point_at, block_at = tree.query(points, predicate="dwithin", distance=reach_m)
    if not len(point_at):
        return pd.Series(dtype=object, name=LANDMARK)
    away = shapely.distance(shapes[block_at], points[point_at])
    found = pd.DataFrame(
        {S.BLOCK_ID: blocks[S.BLOCK_ID].to_numpy()[block_at], "name": np.array(names)[point_at], "away": away}
    ).sort_values([S.BLOCK_ID, "away", "name"], kind="stable")
    text = found.groupby(S.BLOCK_ID, sort=True)["name"].agg(" · ".join)
    return text.rename(LANDMARK)


def block_label(block_id: object, street_name: object) -> str:
    """How a person reads a block: its street name with the id in brackets, or the id alone."""
    if isinstance(street_name, str) and street_name:
        return f"{street_name} (block {block_id})"
    return str(block_id)
