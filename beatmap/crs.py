"""Coordinate reference systems: checks, the analysis CRS, cached transformers.

beatmap analyses in a projected CRS in metres and displays in WGS84.  A CRS is
never guessed: a layer without one is refused unless the user states it.
"""

from __future__ import annotations

from functools import lru_cache

import geopandas as gpd
import numpy as np
from pyproj import CRS, Proj, Transformer
from pyproj.exceptions import CRSError as ProjCRSError

from beatmap.errors import CRSError

WGS84 = CRS.from_epsg(4326)


def parse_crs(value: object, *, what: str = "--crs") -> CRS:
    """Turn user input (``EPSG:3435``, ``3435``, WKT, PROJ string) into a CRS.

    Raises
    ------
    CRSError
        When pyproj does not recognise the value.
    """
    try:
        return CRS.from_user_input(value)
    except ProjCRSError as exc:
        raise CRSError(
            f"{what}: {value!r} is not a coordinate reference system pyproj knows; "
            "give an EPSG code such as EPSG:3435 or the WKT of the .prj file."
        ) from exc


def with_crs(gdf: gpd.GeoDataFrame, stated: CRS | str | None, *, source: str) -> gpd.GeoDataFrame:
    """Return ``gdf`` with a CRS: its own, or the one the user stated.

    A layer with no CRS needs ``stated``; a layer whose own CRS differs from
    ``stated`` is refused, naming both, rather than silently reprojected or
    overwritten.
    """
    own = gdf.crs
    stated_crs = parse_crs(stated) if stated is not None else None
    if own is None and stated_crs is None:
        raise CRSError(
            f"{source}: the file has no coordinate reference system (no .prj or CRS member). "
            "State it with --crs, for example --crs EPSG:3452 for NAD83 Louisiana South (US feet)."
        )
    if own is None:
        return gdf.set_crs(stated_crs)
    if stated_crs is not None and not CRS(own).equals(stated_crs, ignore_axis_order=True):
        raise CRSError(
            f"{source}: the file says its CRS is {label(CRS(own))} but --crs says {label(stated_crs)}. "
            "Drop --crs to use the file's own CRS, or fix the file's .prj."
        )
    return gdf


def metric_crs_for(gdf: gpd.GeoDataFrame, *, preferred: str | None = None) -> CRS:
    """Choose the analysis CRS for a layer: projected, in metres, true to scale where the layer lies.

    ``preferred`` (the settings' ``analysis_crs``) wins when given and must be
    projected in metres with little scale distortion over the layer.  Otherwise
    the layer's own CRS is kept when it is such a CRS, and the UTM zone of the
    layer's centre is used when it is geographic, in feet, or distorts scale
    (Web Mercator: at Chicago's latitude a "150 m" cell is 113 m on the ground).
    """
    if preferred:
        crs = parse_crs(preferred, what="analysis_crs in the settings")
        if not is_metric(crs):
            raise CRSError(
                f"analysis_crs {label(crs)} in the settings is not a projected CRS in metres; "
                "choose one in metres (for example a UTM zone) or remove the setting."
            )
        error = scale_error(crs, gdf)
        if error > MAX_SCALE_ERROR:
            raise CRSError(
                f"analysis_crs {label(crs)} in the settings distorts distances by up to {error:.0%} at these beats; "
                "choose a low-distortion CRS (the beats' UTM zone or state plane in metres) or remove the setting."
            )
        return crs
    own = CRS(gdf.crs)
    if is_metric(own) and scale_error(own, gdf) <= MAX_SCALE_ERROR:
        return own
    utm = gdf.estimate_utm_crs()
    if utm is None:
        raise CRSError("could not choose a UTM zone for the layer; set analysis_crs in the settings.")
    return utm


#: The largest scale error (|scale factor - 1|) an analysis CRS may have over the beats: UTM keeps under 0.1%
#: within its zone, Web Mercator is off by 34% at 42 degrees north.
MAX_SCALE_ERROR = 0.01


def scale_error(crs: CRS, gdf: gpd.GeoDataFrame) -> float:
    """The largest |scale factor - 1| of ``crs`` at the corners and centre of ``gdf``'s extent."""
    west, south, east, north = gdf.to_crs(WGS84).total_bounds
    lons = np.array([west, east, west, east, (west + east) / 2])
    lats = np.array([south, south, north, north, (south + north) / 2])
    factors = Proj(crs).get_factors(lons, lats)
    scales = np.concatenate([np.atleast_1d(factors.meridional_scale), np.atleast_1d(factors.parallel_scale)])
    return float(np.nanmax(np.abs(scales - 1.0)))


def is_metric(crs: CRS) -> bool:
    """True when ``crs`` is projected and its axes are in metres."""
    return bool(crs.is_projected) and all(
        (axis.unit_name or "").lower() in {"metre", "meter"} for axis in crs.axis_info
    )


@lru_cache(maxsize=64)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    return Transformer.from_crs(CRS.from_wkt(src_wkt), CRS.from_wkt(dst_wkt), always_xy=True)


def transformer(src: CRS, dst: CRS) -> Transformer:
    """A cached ``always_xy`` transformer from ``src`` to ``dst``."""
    return _transformer(CRS(src).to_wkt(), CRS(dst).to_wkt())


def transform_xy(x: np.ndarray, y: np.ndarray, src: CRS, dst: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Transform coordinate arrays (x = easting or longitude) from ``src`` to ``dst``."""
    tx, ty = transformer(src, dst).transform(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return np.asarray(tx, dtype=float), np.asarray(ty, dtype=float)


def label(crs: CRS) -> str:
    """``EPSG:3857 (WGS 84 / Pseudo-Mercator)``, or the name of a CRS without an EPSG code."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg} ({crs.name})" if epsg else crs.name
