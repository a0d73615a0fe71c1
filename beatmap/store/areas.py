"""Beats, blocks and streets in the store: geometries as WKB in the analysis CRS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.engine import Connection

from beatmap.schema import BEAT_ID, BLOCK_ID
from beatmap.store.bind import Bind, connection
from beatmap.store.meta import ANALYSIS_CRS, analysis_crs, get_meta, set_meta
from beatmap.store.tables import area_notes, beats_table, blocks_table, map_features_table, streets_table

#: Rows written per statement.
_CHUNK = 5000


def write_areas(conn: Connection, beats: gpd.GeoDataFrame, blocks: gpd.GeoDataFrame) -> None:
    """Replace all beats and blocks (inside the caller's transaction)."""
    conn.execute(delete(blocks_table))
    conn.execute(delete(beats_table))
    beat_rows = [
        {BEAT_ID: b, "area_m2": float(g.area), "geom": shapely.to_wkb(g)}
        for b, g in zip(beats[BEAT_ID], beats.geometry, strict=True)
    ]
    block_rows = [
        {BLOCK_ID: k, BEAT_ID: b, "area_m2": float(g.area), "geom": shapely.to_wkb(g)}
        for k, b, g in zip(blocks[BLOCK_ID], blocks[BEAT_ID], blocks.geometry, strict=True)
    ]
    conn.execute(insert(beats_table), beat_rows)
    for start in range(0, len(block_rows), _CHUNK):
        conn.execute(insert(blocks_table), block_rows[start : start + _CHUNK])
    set_meta(conn, ANALYSIS_CRS, CRS(beats.crs).to_wkt())


def write_area_notes(conn: Connection, batch_id: int, notes: pd.DataFrame) -> None:
    """Keep the per-feature notes of an areas load."""
    rows = [
        {
            "batch_id": batch_id,
            "layer": r.layer,
            "feature": None if pd.isna(r.feature) else int(r.feature),
            "feature_id": None if r.id is None or pd.isna(r.id) else str(r.id),
            "action": r.action,
            "detail": r.detail,
        }
        for r in notes.itertuples(index=False)
    ]
    if rows:
        conn.execute(insert(area_notes), rows)


def _geo_frame(rows: Sequence[Any], columns: list[str], crs: CRS | None) -> gpd.GeoDataFrame:
    # As plain tuples: a frame built from row objects inspects every row (most of the time for 30,000 blocks).
    frame = pd.DataFrame.from_records([tuple(r) for r in rows], columns=[*columns, "geom"])
    geometry = shapely.from_wkb(frame.pop("geom").to_numpy()) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=crs, index=frame.index), crs=crs)


def read_beats(bind: Bind) -> gpd.GeoDataFrame:
    """All beats (``beat_id``, ``area_m2``, geometry) in the analysis CRS, sorted by id."""
    crs = analysis_crs(bind)
    with connection(bind) as conn:
        rows = conn.execute(select(beats_table).order_by(beats_table.c.beat_id)).all()
    return _geo_frame(rows, [BEAT_ID, "area_m2"], crs)


def read_blocks(bind: Bind, *, beat_id: str | None = None) -> gpd.GeoDataFrame:
    """Blocks (``block_id``, ``beat_id``, ``area_m2``, geometry) in the analysis CRS, sorted by id.

    ``bind`` may be a connection, to read inside the caller's transaction.
    """
    crs = analysis_crs(bind)
    query = select(blocks_table).order_by(blocks_table.c.block_id)
    if beat_id is not None:
        query = query.where(blocks_table.c.beat_id == beat_id)
    with connection(bind) as conn:
        rows = conn.execute(query).all()
    return _geo_frame(rows, [BLOCK_ID, BEAT_ID, "area_m2"], crs)


def write_streets(conn: Connection, streets: gpd.GeoDataFrame) -> None:
    """Replace the street network (``source_id``, ``name``, LineStrings in a metric CRS)."""
    conn.execute(delete(streets_table))
    geoms = streets.geometry.to_numpy()
    bounds = shapely.bounds(geoms) if len(geoms) else []
    rows = [
        {
            "segment_id": i + 1,
            "source_id": sid,
            "name": name,
            "min_x": b[0],
            "min_y": b[1],
            "max_x": b[2],
            "max_y": b[3],
            "geom": shapely.to_wkb(g),
        }
        for i, (sid, name, g, b) in enumerate(zip(streets["source_id"], streets["name"], geoms, bounds, strict=True))
    ]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(streets_table), rows[start : start + _CHUNK])
    set_meta(conn, "streets_crs", CRS(streets.crs).to_wkt())


def write_map_features(conn: Connection, features: gpd.GeoDataFrame) -> None:
    """Replace the base map's water and parks (``kind``, ``name``, polygons in the analysis CRS)."""
    conn.execute(delete(map_features_table))
    rows = [
        {"feature_id": i + 1, "kind": kind, "name": name, "geom": shapely.to_wkb(g)}
        for i, (kind, name, g) in enumerate(zip(features["kind"], features["name"], features.geometry, strict=True))
    ]
    if rows:
        conn.execute(insert(map_features_table), rows)


def read_map_features(bind: Bind) -> gpd.GeoDataFrame:
    """The base map's water and parks (``kind``, ``name``, geometry) in the analysis CRS; empty when none."""
    crs = analysis_crs(bind)
    with connection(bind) as conn:
        rows = conn.execute(
            select(map_features_table.c.kind, map_features_table.c.name, map_features_table.c.geom).order_by(
                map_features_table.c.feature_id
            )
        ).all()
    return _geo_frame(rows, ["kind", "name"], crs)


def read_streets(engine: Engine, *, bounds: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    """Street segments (``segment_id``, ``source_id``, ``name``, geometry) in the analysis CRS.

    ``bounds`` (xmin, ymin, xmax, ymax in the analysis CRS) keeps only the
    segments whose bounding box meets it.  Empty when no streets are loaded.
    """
    with engine.connect() as conn:
        wkt = get_meta(conn, "streets_crs")
        query = select(
            streets_table.c.segment_id, streets_table.c.source_id, streets_table.c.name, streets_table.c.geom
        ).order_by(streets_table.c.segment_id)
        crs = CRS.from_wkt(wkt) if wkt else analysis_crs(engine)
        if bounds is not None and crs is not None:
            target = analysis_crs(engine)
            if target is not None and not CRS(target).equals(crs):
                bounds = tuple(gpd.GeoSeries([shapely.box(*bounds)], crs=target).to_crs(crs).total_bounds)
            xmin, ymin, xmax, ymax = bounds
            query = query.where(
                streets_table.c.max_x >= xmin,
                streets_table.c.min_x <= xmax,
                streets_table.c.max_y >= ymin,
                streets_table.c.min_y <= ymax,
            )
        rows = conn.execute(query).all()
    frame = _geo_frame(rows, ["segment_id", "source_id", "name"], crs)
    target = analysis_crs(engine)
    return frame.to_crs(target) if target is not None and crs is not None and len(frame) else frame
