"""Street networks: read centreline files and OpenStreetMap extracts, store them, build a walking graph.

A street network comes from the department's own centreline layer (GeoJSON,
Shapefile, GeoPackage, GeoParquet) or from an OpenStreetMap extract
(``.osm`` XML or ``.osm.pbf``, read by GDAL's OSM driver through pyogrio).
Nothing is downloaded.  Every feature is accounted for: kept, dropped as not
walkable (OSM tags), or rejected as unusable geometry.

The graph has a node at every vertex of every segment; vertices that round
to the same centimetre are one node.  So centreline segments that share an
endpoint are joined, and OSM ways that share a node are joined where they
share it (a bridge over a street, without a shared node, stays apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import Engine

from beatmap import store
from beatmap.areas import read_layer
from beatmap.basemap import streets_for_map
from beatmap.errors import InputError, StoreError

#: Vertices are merged into one node when they round to the same coordinates at this precision (metres).
NODE_PRECISION_M = 0.01

#: ``highway`` values that are not for walking (the osmnx "walk" network filter: motorways and their
#: links, cycleways, bus guideways, raceways, platforms, and roads not built or no longer there).
_NOT_WALKABLE_HIGHWAY = re.compile(
    r"abandoned|bus_guideway|construction|cycleway|motor|^no$|planned|platform|proposed|raceway|razed"
)
_OSM_SUFFIXES = (".osm", ".osm.pbf", ".pbf")
_ID_FIELDS = ("street_id", "segment_id", "osm_id", "id")
_HSTORE_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"=>"((?:[^"\\]|\\.)*)"')


def is_osm_file(path: str | Path) -> bool:
    """True for an OpenStreetMap extract (``.osm`` XML or ``.osm.pbf``), by its name."""
    return str(path).lower().endswith(_OSM_SUFFIXES)


def streets_from_file(path: str | Path, *, crs: CRS | str | None = None) -> tuple[gpd.GeoDataFrame, dict]:
    """Read street centrelines from a GIS file or an OpenStreetMap extract.

    Parameters
    ----------
    path : str or Path
        A line layer (GeoJSON, Shapefile, GeoPackage, GeoParquet) or an OSM
        extract (``.osm``, ``.osm.pbf``), whose ``lines`` layer is read.
    crs : CRS or str, optional
        The CRS of a file that has none; refused when it contradicts the
        file's own (an OSM extract is always WGS84).

    Returns
    -------
    streets : GeoDataFrame
        ``source_id`` (the file's id field, if any), ``name`` and one
        LineString per row (multi-lines are split), in the file's CRS.
    summary : dict
        ``features`` read, ``kept`` features, ``segments`` written,
        ``not_walkable`` (features dropped by their OSM tags, with ``reasons``
        counted) and ``rejected`` (feature numbers with the reason).
        ``kept + not_walkable + rejected == features``.

    Raises
    ------
    InputError
        When the file cannot be read, or no feature is a usable walkable line.
    """
    path = Path(path)
    layer = read_layer(path, crs=crs, layer="lines" if is_osm_file(path) else None)
    n = len(layer)
    tags = _tags(layer)
    why_not = _not_walkable(tags) if "highway" in tags else pd.Series(None, index=layer.index, dtype=object)
    geoms = layer.geometry.to_numpy()
    kinds = shapely.get_type_id(geoms)
    linear = np.isin(kinds, [1, 5]) & ~shapely.is_empty(geoms)  # LineString, MultiLineString
    rejected = {
        int(i) + 1: "not a line (points and polygons are not streets)"
        if kinds[i] >= 0 and not linear[i]
        else "empty geometry"
        for i in np.flatnonzero(~linear)
    }
    keep = linear & why_not.isna().to_numpy()
    ids = _ids(layer)
    names = layer["name"].astype(object) if "name" in layer else pd.Series(None, index=layer.index, dtype=object)
    kept = gpd.GeoDataFrame(
        {"source_id": ids[keep].to_numpy(), "name": names[keep].where(names[keep].notna(), None).to_numpy()},
        geometry=list(geoms[keep]),
        crs=layer.crs,
    )
    streets = kept.explode(index_parts=False, ignore_index=True)
    parts = streets.geometry.to_numpy()
    streets = streets[~shapely.is_empty(parts) & (shapely.length(parts) > 0)].reset_index(drop=True)
    not_walkable = why_not[linear & why_not.notna().to_numpy()]
    summary = {
        "file": str(path),
        "features": n,
        "kept": int(keep.sum()),
        "segments": len(streets),
        "not_walkable": len(not_walkable),
        "reasons": {str(k): int(v) for k, v in not_walkable.value_counts().items()},
        "rejected": len(rejected),
        "rejected_features": rejected,
    }
    if streets.empty:
        raise InputError(
            f"{path}: none of its {n:,} features is a walkable street line "
            f"({summary['not_walkable']:,} not walkable, {len(rejected):,} not lines). "
            "Give a street centreline layer or an OpenStreetMap extract with highway ways."
        )
    return streets, summary


def _tags(layer: gpd.GeoDataFrame) -> pd.DataFrame:
    """OSM tags that decide walkability: the ``highway`` column and keys packed in ``other_tags``."""
    tags = pd.DataFrame(index=layer.index)
    if "highway" in layer:
        tags["highway"] = layer["highway"]
    packed = layer["other_tags"] if "other_tags" in layer else pd.Series(None, index=layer.index, dtype=object)
    parsed = packed.map(lambda text: dict(_HSTORE_PAIR.findall(text)) if isinstance(text, str) else {})
    for key in ("foot", "access", "service", "area"):
        tags[key] = layer[key] if key in layer else parsed.map(lambda d, key=key: d.get(key))
    return tags


def _not_walkable(tags: pd.DataFrame) -> pd.Series:
    """Why each way is not for walking (None when it is): no highway, its highway class, or its access tags."""
    highway = tags["highway"].astype(object)
    reason = pd.Series(None, index=tags.index, dtype=object)
    reason[highway.isna()] = "no highway tag (not a street or path)"
    bad_class = highway.notna() & highway.astype(str).str.contains(_NOT_WALKABLE_HIGHWAY)
    reason[bad_class & reason.isna()] = "highway=" + highway[bad_class].astype(str) + " is not for walking"
    for key, value in (("foot", "no"), ("access", "private"), ("service", "private"), ("area", "yes")):
        hit = tags[key].astype(str).eq(value) & reason.isna()
        if key == "access":
            hit &= ~tags["foot"].astype(str).isin(["yes", "designated", "permissive"])
        reason[hit] = f"{key}={value}"
    return reason


def _ids(layer: gpd.GeoDataFrame) -> pd.Series:
    """The feature ids of the layer's first id-like field, as text; None without one."""
    for name in _ID_FIELDS:
        if name in layer:
            values = layer[name]
            return values.map(lambda v: None if v is None or v != v else str(v)).astype(object)
    return pd.Series(None, index=layer.index, dtype=object)


@dataclass(frozen=True)
class StreetsLoad:
    """What :func:`load_streets` stored: the summary of :func:`streets_from_file`, ``in_beats`` and ``batch_id``.

    Attributes
    ----------
    file : str
        The file read.
    features, kept, segments, not_walkable, rejected : int
        Features read, features kept, segments written, features dropped by
        their OSM tags and features refused; ``kept + not_walkable + rejected
        == features``.
    reasons : dict of str to int
        The features not walkable, counted by reason.
    rejected_features : dict of int to str
        The reason each refused feature (numbered from 1) was refused.
    in_beats : int
        Segments that touch a beat.
    batch_id : int
        The load's batch in the store.
    """

    file: str
    features: int
    kept: int
    segments: int
    not_walkable: int
    reasons: dict[str, int]
    rejected: int
    rejected_features: dict[int, str]
    in_beats: int
    batch_id: int


def load_streets(
    engine: Engine, path: str | Path, *, crs: CRS | str | None = None, actor: str = "library"
) -> StreetsLoad:
    """Read a street network and store it in the analysis CRS, replacing any loaded before.

    Beats and blocks must be loaded first: the streets are stored in their
    CRS, and a network that does not reach the beats (a wrong file or CRS) is
    refused.  The load is audited (``import.streets``) as ``actor``.

    Returns
    -------
    StreetsLoad
        The summary of :func:`streets_from_file`, plus ``in_beats`` (segments
        that touch a beat) and ``batch_id``.

    Raises
    ------
    StoreError
        When no beats are loaded.
    InputError
        When the file cannot be used, or none of its streets touches a beat.
    """
    target = store.analysis_crs(engine)
    if target is None:
        raise StoreError(
            "load beats and blocks before streets (`beatmap areas` or `beatmap demo`): streets are "
            "stored in the beats' metric CRS and checked against them."
        )
    streets, summary = streets_from_file(path, crs=crs)
    streets = streets.to_crs(target)
    beats = store.read_beats(engine)
    # Within a metre: a street on a beat's edge, reprojected, may miss it by a hair.
    touching = shapely.dwithin(streets.geometry.to_numpy(), shapely.union_all(beats.geometry.to_numpy()), 1.0)
    summary["in_beats"] = int(touching.sum())
    if summary["in_beats"] == 0:
        west, south, east, north = streets.to_crs(4326).total_bounds
        raise InputError(
            f"{path}: none of its {len(streets):,} street segments touches a beat (the streets span "
            f"longitude {west:.4f} to {east:.4f}, latitude {south:.4f} to {north:.4f}). "
            "Check that it is the right city, and its CRS (--crs)."
        )
    with store.transaction(engine) as conn:
        batch_id = store.add_batch(
            conn,
            what="streets",
            source=Path(path).name,
            file_name=str(path),
            summary={k: v for k, v in summary.items() if k != "rejected_features"},
        )
        store.write_streets(conn, streets)
        store.record_audit(
            conn,
            actor=actor,
            action="import.streets",
            target=str(path),
            details={k: summary[k] for k in ("segments", "not_walkable", "rejected", "in_beats")},
        )
        store.bump_version(conn)
    return StreetsLoad(
        file=summary["file"],
        features=summary["features"],
        kept=summary["kept"],
        segments=summary["segments"],
        not_walkable=summary["not_walkable"],
        reasons=summary["reasons"],
        rejected=summary["rejected"],
        rejected_features=summary["rejected_features"],
        in_beats=summary["in_beats"],
        batch_id=batch_id,
    )


#: Kinds of map features a department can load (drawn on the base map, see :mod:`beatmap.basemap`).
MAP_FEATURE_KINDS = ("water", "park")


def load_map_features(engine: Engine, path: str | Path, *, crs: CRS | str | None = None, actor: str = "library") -> int:
    """Store water and parks (polygons with ``kind`` and ``name``) for the base map, replacing any loaded before.

    They are drawn under the blocks on every map that has streets; they hold no blocks and count
    for nothing.  Audited as ``import.map_features``.  Returns how many were stored.

    Raises
    ------
    StoreError
        When no beats are loaded.
    InputError
        Naming the file and every feature without a known ``kind`` or with a geometry that is not
        a polygon; nothing is stored then.
    """
    target = store.analysis_crs(engine)
    if target is None:
        raise StoreError("load beats and blocks before map features (`beatmap areas` or `beatmap demo`).")
    layer = read_layer(path, crs=crs)
    kind = (
        layer["kind"].astype("string").str.strip().str.lower()
        if "kind" in layer
        else pd.Series(pd.NA, index=layer.index)
    )
    bad_kind = ~kind.isin(MAP_FEATURE_KINDS).fillna(False).to_numpy(dtype=bool)
    polygons = np.isin(layer.geom_type.to_numpy(dtype=object), ["Polygon", "MultiPolygon"]) & layer.is_valid.to_numpy()
    problems = [
        f"feature {i + 1}: "
        + ("kind must be one of " + ", ".join(MAP_FEATURE_KINDS) if bad_kind[i] else "not a valid polygon")
        for i in np.flatnonzero(bad_kind | ~polygons)
    ]
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise InputError(
            f"{path}: {shown}. Give each feature a kind (water or park) and a polygon; nothing was stored."
        )
    names = layer["name"].astype("string").str.strip() if "name" in layer else pd.Series(pd.NA, index=layer.index)
    frame = gpd.GeoDataFrame(
        {"kind": kind.astype(object), "name": names.astype(object).where(names.notna(), None)},
        geometry=layer.geometry.to_numpy(),
        crs=layer.crs,
    ).to_crs(target)
    with store.transaction(engine) as conn:
        store.write_map_features(conn, frame)
        store.record_audit(
            conn, actor=actor, action="import.map_features", target=str(path), details={"features": len(frame)}
        )
        store.bump_version(conn)
    return len(frame)


def map_streets_from_store(engine: Engine, *, beat_id: str | None = None, margin_m: float = 150.0) -> dict:
    """The store's streets prepared for a map (:func:`beatmap.basemap.streets_for_map`): the city's, or around one beat.

    With the store's water and parks (:func:`load_map_features`).  Empty (no lines) when no
    streets are loaded.
    """
    bounds = None
    if beat_id is not None:
        blocks = store.read_blocks(engine, beat_id=beat_id)
        if not blocks.empty:
            west, south, east, north = blocks.total_bounds
            bounds = (west - margin_m, south - margin_m, east + margin_m, north + margin_m)
    streets = store.read_streets(engine, bounds=bounds)
    features = store.read_map_features(engine)
    if bounds is not None and not streets.empty:
        streets = streets.clip(shapely.box(*bounds))
    if bounds is not None and not features.empty:
        features = features.clip(shapely.box(*bounds))
    return streets_for_map(streets, features=features)


def street_graph(streets: gpd.GeoDataFrame) -> nx.Graph:
    """The walking graph of a street network.

    Parameters
    ----------
    streets : GeoDataFrame
        LineStrings in a metric CRS.

    Returns
    -------
    networkx.Graph
        Nodes ``0..n-1`` with ``x`` and ``y`` (metres), one per distinct
        vertex (rounded to :data:`NODE_PRECISION_M`); edges between
        consecutive vertices with ``length`` in metres (the shortest when two
        segments join the same vertices).  ``graph["crs"]`` is the CRS.
    """
    graph = nx.Graph(crs=streets.crs)
    lines = shapely.get_parts(streets.geometry.to_numpy()) if len(streets) else np.array([], dtype=object)
    coords, line_of = shapely.get_coordinates(lines, return_index=True)
    if len(coords) == 0:
        return graph
    keys = np.round(coords / NODE_PRECISION_M).astype(np.int64)
    unique, node_of = np.unique(keys, axis=0, return_inverse=True)
    node_of = node_of.ravel()
    xy = unique * NODE_PRECISION_M
    same_line = line_of[:-1] == line_of[1:]
    u, v = node_of[:-1][same_line], node_of[1:][same_line]
    length = np.hypot(*(coords[1:][same_line] - coords[:-1][same_line]).T)
    edges = pd.DataFrame({"u": np.minimum(u, v), "v": np.maximum(u, v), "length": length})
    edges = edges[edges["u"] != edges["v"]].groupby(["u", "v"], as_index=False)["length"].min()
    graph.add_nodes_from((int(i), {"x": float(x), "y": float(y)}) for i, (x, y) in enumerate(xy))
    graph.add_weighted_edges_from(edges.itertuples(index=False, name=None), weight="length")
    return graph


def streets_text(summary: StreetsLoad) -> str:
    """A :func:`load_streets` summary as plain text: every feature accounted for."""
    lines = [
        f"{summary.file}: {summary.features:,} features read",
        f"  kept         {summary.kept:,}  ({summary.segments:,} segments, {summary.in_beats:,} touching a beat)",
        f"  not walkable {summary.not_walkable:,}",
    ]
    lines += [f"      {count:,} x {reason}" for reason, count in summary.reasons.items()]
    lines.append(f"  rejected     {summary.rejected:,}")
    rejected = list(summary.rejected_features.items())
    lines += [f"      feature {feature}: {reason}" for feature, reason in rejected[:20]]
    if len(rejected) > 20:
        lines.append(f"      ... and {len(rejected) - 20:,} more")
    return "\n".join(lines)
