"""Beats and blocks: read GIS files, validate and repair polygons, build grids.

Every feature of an input layer is accounted for: used as is, repaired (with
what was done), dissolved into another feature with the same id, or rejected
with the reason.  Those notes are returned beside the layer, one row per
feature that was not used as is.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from beatmap.crs import is_metric, label, metric_crs_for, scale_error, with_crs
from beatmap.errors import InputError
from beatmap.schema import BEAT_ID, BLOCK_ID, GEOMETRY, ID_MAX

#: Columns of the per-feature notes returned by the cleaning functions.
NOTE_COLUMNS = ("layer", "feature", "id", "action", "detail")

_POLYGONAL = ("Polygon", "MultiPolygon")
_READABLE = "GeoJSON, Shapefile (.shp with its .dbf/.shx, or zipped), GeoPackage or GeoParquet"
#: The suffixes of :data:`_READABLE`: formats whose stored text beatmap can check for NUL bytes; and
#: OpenStreetMap extracts (``.osm``, ``.osm.pbf``), read for streets only, which hold names, not ids.
_SUFFIXES = {".geojson", ".json", ".shp", ".dbf", ".zip", ".gpkg", ".parquet", ".geoparquet", ".osm", ".pbf"}
#: What a zipped layer may hold, checked in the archive as for a plain file.
_ZIPPED = (".dbf", ".gpkg", (".geojson", ".json"))


def read_layer(path: str | Path, *, crs: CRS | str | None = None, layer: str | None = None) -> gpd.GeoDataFrame:
    """Read a polygon layer from a GIS file, with its CRS checked.

    Parameters
    ----------
    path : str or Path
        GeoJSON, Shapefile (plain, zipped, or a lone ``.shp`` without its
        ``.shx``/``.dbf``), GeoPackage or GeoParquet.
    crs : CRS or str, optional
        The CRS the user states; required when the file has none, refused
        when it contradicts the file's own.
    layer : str, optional
        Layer name inside a multi-layer file (GeoPackage).

    Returns
    -------
    GeoDataFrame
        One row per feature in file order, index 0..n-1.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found. Check the path.")
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the file itself ({_READABLE}).")
    if path.suffix.lower() not in _SUFFIXES:
        raise InputError(
            f"{path}: not a layer format beatmap reads ({_READABLE}; other formats cannot be checked for the NUL "
            f"bytes GIS readers cut ids at). Convert it, for example `ogr2ogr -f GPKG layer.gpkg {path.name}`."
        )
    if path.suffix.lower() in {".geojson", ".json"}:
        _refuse_nul(path)
    # A zip is looked into first, so one holding no layer or several says what it holds.
    cut = _cut_at_nul(path, layer) if path.suffix.lower() == ".zip" else None
    try:
        if path.suffix.lower() in {".parquet", ".geoparquet"}:
            gdf = gpd.read_parquet(path)
        elif path.suffix.lower() == ".shp" and not _sidecar(path, ".shx"):
            gdf = _read_lone_shp(path)
        else:
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError, OSError) as exc:
        raise InputError(f"{path}: cannot be read as a GIS file ({_first_line(exc)}). Give {_READABLE}.") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputError(f"{path}: has no geometry column. Give {_READABLE}.")
    if len(gdf) == 0:
        raise InputError(f"{path}: has no features. Check that this is the right file.")
    gdf = with_crs(gdf, crs, source=str(path)).reset_index(drop=True)
    gdf.attrs[NUL_FEATURES] = _cut_at_nul(path, layer) if cut is None else cut
    return gdf


#: ``attrs`` key of a layer read by :func:`read_layer`: ``{field: [feature numbers]}`` of the text values the
#: GIS reader cut at a NUL byte (GeoPackage and Shapefile; a GeoJSON file with a NUL is refused as a whole).
NUL_FEATURES = "nul_features"


def _cut_at_nul(path: Path, layer: str | None) -> dict[str, list[int]]:
    """The features (numbered 1, 2, ... in file order) per text field whose stored value holds a NUL byte.

    GDAL reads text up to the first NUL, so ``B01<NUL>x`` and ``B01<NUL>y`` both
    come back as ``B01``: the layer as read cannot show it, the file can.
    """
    suffix = path.suffix.lower()
    try:
        if suffix == ".gpkg":
            return _gpkg_nul_features(path, layer)
        if suffix == ".shp" and _sidecar(path, ".dbf"):
            dbf = path.with_suffix(".dbf") if path.with_suffix(".dbf").exists() else path.with_suffix(".DBF")
            return _dbf_nul_features(dbf.read_bytes())
        if suffix == ".dbf":
            return _dbf_nul_features(path.read_bytes())
        if suffix == ".zip":
            return _zipped_nul_features(path, layer)
    except (sqlite3.Error, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot be checked for NUL bytes ({_first_line(exc)}). Give {_READABLE}.") from exc
    return {}


def _zipped_nul_features(path: Path, layer: str | None) -> dict[str, list[int]]:
    """As :func:`_cut_at_nul`, for a layer in a zip: its one ``.dbf``, GeoPackage or GeoJSON is checked as a
    plain file would be; a zip holding none of them (or several layers) is refused."""
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if not n.startswith("__MACOSX")]
        kinds = [[n for n in names if n.lower().endswith(ends)] for ends in _ZIPPED]
        members = next((kind for kind in kinds if kind), [])  # a Shapefile first, as the GIS reader takes it
        if len(members) != 1:
            found = ", ".join(members) if members else "none"
            raise InputError(
                f"{path}: a zipped layer must hold exactly one Shapefile, GeoPackage or GeoJSON (found: {found}). "
                "Zip one layer, or unzip the file and give the layer itself."
            )
        member = members[0]
        if member.lower().endswith(".dbf"):
            return _dbf_nul_features(archive.read(member))
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / Path(member).name
            with archive.open(member) as src, copy.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            if copy.suffix.lower() == ".gpkg":
                return _gpkg_nul_features(copy, layer)
            try:
                _refuse_nul(copy)
            except InputError as exc:
                raise InputError(str(exc).replace(str(copy), f"{path} ({member})")) from None
    return {}


def _gpkg_nul_features(path: Path, layer: str | None) -> dict[str, list[int]]:
    """Per text column of the GeoPackage's layer (the first one unless named), the features with a NUL before
    other text (NUL padding after the value cuts nothing and is not counted)."""
    table = layer or str(pyogrio.list_layers(path)[0][0])
    found: dict[str, list[int]] = {}
    with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        columns = conn.execute("SELECT name, type FROM pragma_table_info(?)", (table,)).fetchall()
        quoted = '"' + table.replace('"', '""') + '"'
        for name, kind in columns:
            if not str(kind).upper().startswith(("TEXT", "VARCHAR", "CHAR")):
                continue
            column = '"' + str(name).replace('"', '""') + '"'
            rows = conn.execute(
                f"SELECT n, v FROM (SELECT row_number() OVER (ORDER BY rowid) AS n, CAST({column} AS BLOB) AS v "
                f"FROM {quoted}) WHERE instr(v, X'00') > 0"
            ).fetchall()
            hits = [int(n) for n, value in rows if b"\x00" in bytes(value).rstrip(b"\x00 ")]
            if hits:
                found[str(name)] = hits
    return found


def _dbf_nul_features(data: bytes) -> dict[str, list[int]]:
    """Per text (``C``) field of a dBASE table, the records with a NUL before other text.

    NUL padding after the value (some writers pad with NULs, not spaces) cuts nothing and is not counted.
    """
    if len(data) < 32:
        raise ValueError("the .dbf table is too short to hold a header")
    count = int.from_bytes(data[4:8], "little")
    header = int.from_bytes(data[8:10], "little")
    width = int.from_bytes(data[10:12], "little")
    fields: list[tuple[str, str, int, int]] = []
    offset = 1  # each record starts with its deletion flag
    for at in range(32, header - 1, 32):
        if data[at] == 0x0D:
            break
        name = data[at : at + 11].split(b"\x00", 1)[0].decode("latin-1")
        fields.append((name, chr(data[at + 11]), offset, data[at + 16]))
        offset += data[at + 16]
    count = min(count, max(len(data) - header, 0) // width) if width else 0
    if not count:
        return {}
    records = np.frombuffer(data, dtype=np.uint8, count=count * width, offset=header).reshape(count, width)
    records = records[records[:, 0] != ord("*")]  # deleted records: the reader skips them, so they get no number
    found: dict[str, list[int]] = {}
    for name, kind, start, size in fields:
        if kind != "C" or size == 0:
            continue
        cells = records[:, start : start + size]
        nul = cells == 0
        text = ~nul & (cells != 0x20)
        positions = np.arange(size)
        first_nul = np.where(nul.any(axis=1), np.argmax(nul, axis=1), size)
        last_text = np.where(text.any(axis=1), (text * positions).max(axis=1), -1)
        hits = np.flatnonzero(last_text > first_nul) + 1
        if len(hits):
            found[name] = hits.tolist()
    return found


def _refuse_nul(path: Path) -> None:
    """Refuse a GeoJSON file holding a NUL character: GIS readers cut text at it, so ids merge without a word."""
    tail = b""
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            if re.search(rb"\x00|\\u0000", tail + chunk, flags=re.IGNORECASE):
                raise InputError(
                    f"{path}: holds a NUL character (\\u0000); the GIS reader cuts text at it, so ids "
                    "such as 'B01\\u0000x' and 'B01\\u0000y' would both become 'B01' and merge. "
                    "Remove it from the file and load again."
                )
            tail = chunk[-5:]


def _sidecar(path: Path, suffix: str) -> bool:
    return path.with_suffix(suffix).exists() or path.with_suffix(suffix.upper()).exists()


def _read_lone_shp(path: Path) -> gpd.GeoDataFrame:
    """Read a ``.shp`` that came without its index (``.shx``) and table (``.dbf``).

    GDAL can rebuild the index, but writes it beside the file; the copy in a
    temporary folder keeps a read-only source untouched.
    """
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name
        shutil.copyfile(path, copy)
        prj = path.with_suffix(".prj")
        if prj.exists():
            shutil.copyfile(prj, copy.with_suffix(".prj"))
        pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": "YES"})
        try:
            return gpd.read_file(copy, engine="pyogrio")
        finally:
            pyogrio.set_gdal_config_options({"SHAPE_RESTORE_SHX": None})


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def polygons_from_layer(
    gdf: gpd.GeoDataFrame,
    *,
    id_field: str | None,
    default_id_field: str,
    id_name: str,
    source: str,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Validate, repair and dissolve a polygon layer into one row per id.

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer as read, one row per feature.
    id_field : str, optional
        Field holding the id.  When not given, ``default_id_field`` is used if
        present; a layer with no attribute fields at all is numbered by
        feature (1, 2, ...), which the notes say.
    default_id_field : str
        ``beat_id`` or ``block_id``.
    id_name : str
        Column name of the id in the result (``beat_id`` or ``block_id``).
    source : str
        File name used in notes and messages.

    Returns
    -------
    layer : GeoDataFrame
        Columns ``id_name`` and ``geometry`` (Polygon or MultiPolygon), in the
        input CRS, sorted by id.
    notes : DataFrame
        One row per feature that was repaired, dissolved or rejected.

    Raises
    ------
    InputError
        When the id field is missing or no feature is usable.
    """
    layer_name = id_name.removesuffix("_id")
    notes: list[dict[str, object]] = []
    ids = _feature_ids(
        gdf, id_field=id_field, default_id_field=default_id_field, source=source, notes=notes, layer_name=layer_name
    )
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    kept_ids: list[str] = []
    kept_geoms: list[shapely.Geometry] = []
    for i, (fid, geom) in enumerate(zip(ids, geoms, strict=True)):
        feature = i + 1

        def note(action: str, detail: str, *, feature: int = feature, fid: object = fid) -> None:
            notes.append({"layer": layer_name, "feature": feature, "id": fid, "action": action, "detail": detail})

        if fid is None:
            note("rejected", "has no id; give it one in the file")
            continue
        polygon, problem = _as_polygonal(geom)
        if polygon is None:
            note("rejected", problem)
            continue
        if problem:
            note("repaired", problem)
        kept_ids.append(fid)
        kept_geoms.append(polygon)
    if not kept_ids:
        raise InputError(
            f"{source}: none of its {len(gdf)} features is a usable polygon "
            f"({notes[0]['detail'] if notes else 'no features'}). Check that this is a polygon layer."
        )
    layer = gpd.GeoDataFrame({id_name: kept_ids}, geometry=kept_geoms, crs=gdf.crs)
    layer, dissolved = _dissolve_duplicates(layer, id_name=id_name, feature_numbers=_feature_numbers(ids, notes))
    for fid, features in dissolved.items():
        notes.append(
            {
                "layer": layer_name,
                "feature": features[0],
                "id": fid,
                "action": "dissolved",
                "detail": f"{len(features)} features share this id (features {', '.join(map(str, features))}); "
                "merged into one",
            }
        )
    return layer, pd.DataFrame(notes, columns=list(NOTE_COLUMNS))


def _feature_ids(
    gdf: gpd.GeoDataFrame,
    *,
    id_field: str | None,
    default_id_field: str,
    source: str,
    notes: list[dict[str, object]],
    layer_name: str,
) -> list[str | None]:
    fields = [c for c in gdf.columns if c != gdf.geometry.name]
    field = id_field or (default_id_field if default_id_field in fields else None)
    if field is None:
        if fields:
            raise InputError(
                f"{source}: no {default_id_field!r} field; name the {layer_name} id field with "
                f"--{layer_name}-id FIELD (fields in the file: {', '.join(map(str, fields))})."
            )
        notes.append(
            {
                "layer": layer_name,
                "feature": 0,
                "id": None,
                "action": "numbered",
                "detail": f"the file has no attribute table; {layer_name}s are numbered by feature (1, 2, ...)",
            }
        )
        return [str(i + 1) for i in range(len(gdf))]
    if field not in fields:
        raise InputError(
            f"{source}: no field {field!r}; fields in the file: {', '.join(map(str, fields)) or 'none'}. "
            f"Give the right one with --{layer_name}-id."
        )
    ids = [_normalise_id(v) for v in gdf[field].tolist()]
    _refuse_bad_ids(
        ids, cut=gdf.attrs.get(NUL_FEATURES, {}).get(field, []), field=field, source=source, layer=layer_name
    )
    return ids


def _features(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    return f"feature {shown}" if len(numbers) == 1 else f"features {shown}" + (" ..." if len(numbers) > 5 else "")


def _refuse_bad_ids(ids: list[str | None], *, cut: list[int], field: str, source: str, layer: str) -> None:
    """Refuse ids holding a NUL (in the file, ``cut``, or in the values read) or longer than ``ID_MAX`` characters.

    A NUL cuts the id where a reader or database stops at it, so two beats
    could merge into one; an id over ``ID_MAX`` is not one the store keeps.
    """
    nul = sorted(set(cut) | {i + 1 for i, fid in enumerate(ids) if fid is not None and "\x00" in fid})
    if nul:
        example = ids[nul[0] - 1] or ""
        raise InputError(
            f"{source}: {layer} {_features(nul)} hold a NUL byte in the id field {field!r} (feature {nul[0]} reads "
            f"as {example.split(chr(0))[0]!r}); ids cut at it could merge two {layer}s into one. Remove the NUL "
            "from the ids in the file and load again."
        )
    long = [i + 1 for i, fid in enumerate(ids) if fid is not None and len(fid) > ID_MAX]
    if long:
        size = len(ids[long[0] - 1] or "")
        raise InputError(
            f"{source}: {layer} {_features(long)} have ids in {field!r} longer than the {ID_MAX} characters "
            f"beatmap keeps (feature {long[0]}: {size:,} characters). Check that --{layer}-id names the id "
            "field, or shorten the ids in the file, and load again."
        )


def _normalise_id(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _feature_numbers(ids: list[str | None], notes: list[dict[str, object]]) -> dict[str, list[int]]:
    rejected = {n["feature"] for n in notes if n["action"] == "rejected"}
    numbers: dict[str, list[int]] = {}
    for i, fid in enumerate(ids):
        if fid is not None and (i + 1) not in rejected:
            numbers.setdefault(fid, []).append(i + 1)
    return numbers


def _as_polygonal(geom: shapely.Geometry | None) -> tuple[shapely.Geometry | None, str]:
    """Return (polygonal geometry, what was done) or (None, why it cannot be used)."""
    if geom is None or shapely.is_empty(geom):
        return None, "has no geometry"
    kind = geom.geom_type
    done = ""
    if kind in ("LineString", "LinearRing", "MultiLineString"):
        lines = list(getattr(geom, "geoms", [geom]))
        rings = []
        for line in lines:
            coords = np.unique(np.asarray(line.coords)[:, :2], axis=0)
            if len(coords) < 3:
                return None, f"is a {kind} with fewer than 3 distinct points; it cannot enclose an area"
            rings.append(shapely.Polygon(np.asarray(line.coords)[:, :2]))
        geom = shapely.MultiPolygon(rings) if len(rings) > 1 else rings[0]
        done = f"was a {kind} (an unclosed ring); closed it into a polygon"
    elif kind == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in _POLYGONAL]
        if not parts:
            return None, "is a geometry collection with no polygon in it"
        geom = shapely.union_all(parts)
        done = "was a geometry collection; kept its polygons"
    elif kind not in _POLYGONAL:
        return None, f"is a {kind}, not an area; give polygons"
    geom = shapely.force_2d(geom)
    if not shapely.is_valid(geom):
        reason = shapely.is_valid_reason(geom)
        before = geom.area
        fixed = _polygonal_part(shapely.make_valid(geom))
        if fixed is None or fixed.area == 0:
            return None, f"is invalid ({reason}) and nothing usable is left after repair"
        change = (fixed.area - before) / before * 100 if before else 0.0
        geom = fixed
        done = "; ".join(filter(None, [done, f"was invalid ({reason}); repaired, area changed by {change:+.1f}%"]))
    if geom.area == 0:
        return None, "encloses no area"
    return geom, done


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry | None:
    if geom.geom_type in _POLYGONAL:
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if g.geom_type in _POLYGONAL]
    return shapely.union_all(parts) if parts else None


def _dissolve_duplicates(
    layer: gpd.GeoDataFrame, *, id_name: str, feature_numbers: dict[str, list[int]]
) -> tuple[gpd.GeoDataFrame, dict[str, list[int]]]:
    counts = layer[id_name].value_counts()
    duplicated = counts[counts > 1].index
    dissolved = {fid: feature_numbers[fid] for fid in sorted(duplicated)}
    if len(duplicated):
        merged = layer.dissolve(by=id_name, as_index=False)
        layer = merged[[id_name, GEOMETRY]]
    return layer.sort_values(id_name, kind="stable").reset_index(drop=True), dissolved


def to_metric(layer: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """Project a layer to the analysis CRS and re-validate (projection can bend rings)."""
    out = layer.to_crs(crs)
    invalid = ~out.geometry.is_valid
    if invalid.any():
        out.loc[invalid, GEOMETRY] = shapely.make_valid(out.geometry[invalid].values)
    return out


def blocks_from_grid(beats: gpd.GeoDataFrame, *, size_m: float, merge_under: float = 0.25) -> gpd.GeoDataFrame:
    """Cut beats into square grid cells of ``size_m`` metres, clipped to each beat.

    The grid is aligned across the city, so a cell straddling a beat edge
    becomes one block on each side: blocks tessellate every beat.  Pieces
    under 1 m\\ :sup:`2` (numerical slivers) are dropped.  An edge piece
    smaller than ``merge_under`` of a whole cell joins the neighbouring block
    of its beat it shares the longest edge with (an isolated piece stays a
    block of its own): a strip a few metres wide along a beat boundary is
    not a place to patrol, and would be flagged as never visited.

    Parameters
    ----------
    beats : GeoDataFrame
        ``beat_id`` and geometry, in a metric CRS.
    size_m : float
        Cell side in metres.
    merge_under : float
        Fraction of a whole cell under which an edge piece is merged (0: never).

    Returns
    -------
    GeoDataFrame
        ``block_id`` (``<beat>_r<row>c<col>``, the larger piece's when merged),
        ``beat_id``, geometry.  ``attrs["merged_pieces"]`` counts the pieces
        merged into a neighbour.
    """
    if not size_m > 0:
        raise InputError(f"--grid-m must be a positive number of metres, not {size_m}.")
    minx, miny, _, _ = beats.total_bounds
    x0, y0 = np.floor(minx / size_m) * size_m, np.floor(miny / size_m) * size_m
    frames, merged = [], 0
    for beat_id, geom in zip(beats[BEAT_ID], beats.geometry, strict=True):
        bx0, by0, bx1, by1 = geom.bounds
        cols = np.arange(np.floor((bx0 - x0) / size_m), np.ceil((bx1 - x0) / size_m)).astype(int)
        rows = np.arange(np.floor((by0 - y0) / size_m), np.ceil((by1 - y0) / size_m)).astype(int)
        cc, rr = (a.ravel() for a in np.meshgrid(cols, rows))
        cells = shapely.box(x0 + cc * size_m, y0 + rr * size_m, x0 + (cc + 1) * size_m, y0 + (rr + 1) * size_m)
        shapely.prepare(geom)
        hit = shapely.intersects(geom, cells)
        pieces = shapely.intersection(cells[hit], geom)
        pieces = np.array([_polygonal_part(p) for p in pieces], dtype=object)
        ok = np.array([p is not None and p.area >= 1.0 for p in pieces], dtype=bool)
        ids = np.array([f"{beat_id}_r{r}c{c}" for r, c in zip(rr[hit][ok], cc[hit][ok], strict=True)], dtype=object)
        kept = _merge_small_pieces(pieces[ok], min_area=merge_under * size_m**2)
        merged += int(ok.sum()) - len(kept)
        frames.append(pd.DataFrame({BLOCK_ID: ids[list(kept)], BEAT_ID: beat_id, GEOMETRY: list(kept.values())}))
    grid = pd.concat(frames, ignore_index=True)
    if grid.empty:
        raise InputError(f"--grid-m {size_m}: no grid cell overlaps the beats; check the size and the beats' CRS.")
    out = gpd.GeoDataFrame(grid, geometry=GEOMETRY, crs=beats.crs)
    out.attrs["merged_pieces"] = merged
    return out


def _merge_small_pieces(pieces: np.ndarray, *, min_area: float) -> dict[int, shapely.Geometry]:
    """Join each piece under ``min_area`` to the neighbour it shares the longest edge with, smallest first.

    Returns the pieces left, by their index in ``pieces`` (a merged piece's geometry grows; an isolated
    small piece stays as it is).
    """
    current = dict(enumerate(pieces))
    owner = list(range(len(pieces)))  # which remaining piece holds each original one
    tree = shapely.STRtree(pieces)
    for i in sorted(current, key=lambda k: current[k].area):
        if i not in current or current[i].area >= min_area:
            continue
        edge = current[i].boundary
        near = {owner[j] for j in tree.query(current[i])} - {i}
        shared = {j: edge.intersection(current[j]).length for j in near}
        best = max(shared, key=lambda j: (shared[j], -j), default=None)
        if best is None or shared[best] <= 0:
            continue  # touches nothing along an edge: stays a block of its own
        current[best] = shapely.union(current[best], current.pop(i))
        owner = [best if o == i else o for o in owner]
    return current


def blocks_to_beats(blocks: gpd.GeoDataFrame, beats: gpd.GeoDataFrame) -> pd.Series:
    """The beat each block belongs to: the one it overlaps most.

    Ties (equal overlap, to the square metre) go to the lowest beat id.
    Blocks that overlap no beat get a missing value.

    Returns
    -------
    Series
        ``beat_id`` aligned to ``blocks.index``.
    """
    tree = shapely.STRtree(beats.geometry.values)
    block_idx, beat_idx = tree.query(blocks.geometry.values, predicate="intersects")
    overlap = shapely.area(shapely.intersection(blocks.geometry.values[block_idx], beats.geometry.values[beat_idx]))
    pairs = pd.DataFrame(
        {
            "block": block_idx,
            BEAT_ID: beats[BEAT_ID].to_numpy()[beat_idx],
            "overlap": np.round(overlap),
        }
    )
    pairs = pairs[pairs["overlap"] > 0].sort_values(["block", "overlap", BEAT_ID], ascending=[True, False, True])
    best = pairs.drop_duplicates("block").set_index("block")[BEAT_ID]
    out = pd.Series(best.reindex(range(len(blocks))).to_numpy(), index=blocks.index, name=BEAT_ID, dtype=object)
    return out


def prepare_areas(
    beats_layer: gpd.GeoDataFrame,
    blocks_layer: gpd.GeoDataFrame | None,
    *,
    beat_id_field: str | None = None,
    block_id_field: str | None = None,
    grid_m: float | None = None,
    analysis_crs: str | None = None,
    beats_source: str = "beats",
    blocks_source: str = "blocks",
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
    """Turn raw beat and block layers into the analysis layers.

    Exactly one of ``blocks_layer`` and ``grid_m`` must be given.

    Returns
    -------
    beats : GeoDataFrame
        ``beat_id``, geometry, in the analysis CRS.
    blocks : GeoDataFrame
        ``block_id``, ``beat_id``, geometry, in the analysis CRS; every block
        in exactly one beat.
    notes : DataFrame
        Every feature that was repaired, dissolved, numbered or rejected.
    """
    if (blocks_layer is None) == (grid_m is None):
        raise InputError("give either a blocks file (--blocks FILE) or a grid size (--grid-m METRES), not both.")
    beats, beat_notes = polygons_from_layer(
        beats_layer, id_field=beat_id_field, default_id_field=BEAT_ID, id_name=BEAT_ID, source=beats_source
    )
    crs = metric_crs_for(beats, preferred=analysis_crs)
    notes = [beat_notes]
    own = CRS(beats.crs)
    if is_metric(own) and not own.equals(crs):
        notes.append(
            pd.DataFrame(
                {
                    "layer": ["beat"],
                    "feature": [None],
                    "id": [None],
                    "action": ["reprojected"],
                    "detail": [
                        f"{label(own)} distorts distances by up to {scale_error(own, beats):.0%} at these beats; "
                        f"analysed in {label(crs)} instead"
                    ],
                }
            )
        )
    beats = to_metric(beats, crs)
    if grid_m is not None:
        blocks = blocks_from_grid(beats, size_m=grid_m)
        if blocks.attrs["merged_pieces"]:
            notes.append(
                pd.DataFrame(
                    {
                        "layer": ["block"],
                        "feature": [None],
                        "id": [None],
                        "action": ["merged"],
                        "detail": [
                            f"{blocks.attrs['merged_pieces']:,} grid pieces under a quarter of a {grid_m:g} m cell, "
                            "along beat edges, joined the neighbouring block of their beat"
                        ],
                    }
                )
            )
    else:
        blocks, block_notes = polygons_from_layer(
            blocks_layer, id_field=block_id_field, default_id_field=BLOCK_ID, id_name=BLOCK_ID, source=blocks_source
        )
        blocks = to_metric(blocks, crs)
        blocks[BEAT_ID] = blocks_to_beats(blocks, beats)
        outside = blocks[BEAT_ID].isna()
        notes.append(block_notes)
        notes.append(
            pd.DataFrame(
                {
                    "layer": "block",
                    "feature": None,
                    "id": blocks.loc[outside, BLOCK_ID],
                    "action": "rejected",
                    "detail": "lies outside every beat",
                }
            )
        )
        blocks = blocks[~outside]
        if blocks.empty:
            raise InputError(f"{blocks_source}: no block overlaps any beat. Check that both files cover the same area.")
        blocks = blocks[[BLOCK_ID, BEAT_ID, GEOMETRY]].reset_index(drop=True)
    all_notes = (
        pd.concat([n for n in notes if not n.empty], ignore_index=True)
        if any(not n.empty for n in notes)
        else pd.DataFrame(columns=list(NOTE_COLUMNS))
    )
    return beats, blocks, all_notes


#: Blocks of one beat closer than this are neighbours (metres): wide enough to step over a street between
#: city blocks, narrow enough not to reach the next block but one.
NEIGHBOUR_GAP_M = 25.0


def block_neighbours(blocks: gpd.GeoDataFrame, *, gap_m: float = NEIGHBOUR_GAP_M) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of blocks of one beat that touch, or face each other across a street.

    Parameters
    ----------
    blocks : GeoDataFrame
        ``beat_id`` and polygons in a metric CRS.
    gap_m : float
        Blocks at most this far apart are neighbours (0: only touching ones).

    Returns
    -------
    tuple of two int arrays
        Positions ``(i, j)`` in ``blocks`` with ``i < j``, sorted; blocks of
        different beats are never neighbours.
    """
    geoms = blocks.geometry.to_numpy()
    if len(geoms) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # Boxes grown by the gap find the candidates; the exact distance is measured only on those of one beat.
    box = shapely.bounds(geoms)
    grown = shapely.box(box[:, 0] - gap_m, box[:, 1] - gap_m, box[:, 2] + gap_m, box[:, 3] + gap_m)
    left, right = shapely.STRtree(geoms).query(grown)
    beat = blocks[BEAT_ID].to_numpy()
    keep = (left < right) & (beat[left] == beat[right])
    left, right = left[keep], right[keep]
    near = shapely.dwithin(geoms[left], geoms[right], gap_m)
    left, right = left[near], right[near]
    order = np.lexsort((right, left))
    return left[order].astype(np.int64), right[order].astype(np.int64)
