"""Where a walk starts and ends: ``LAT,LON`` text, the settings' named landmarks, and how far is too far."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

from beatmap.crs import WGS84, transform_xy
from beatmap.errors import InputError
from beatmap.settings import Settings

#: A start or end farther than this from the beat is refused (metres).
MAX_START_DISTANCE_M = 1_000.0


def parse_lat_lon(text: str, *, what: str = "--start") -> tuple[float, float]:
    """Read ``"LAT,LON"`` (decimal degrees) as a ``(lat, lon)`` pair.

    Raises
    ------
    InputError
        When the text is not two numbers or they are out of range.
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError as exc:
        raise InputError(f"{what} {text!r}: give latitude and longitude in degrees, e.g. 41.6012,-88.0995.") from exc
    check_lat_lon((lat, lon), what=what)
    return lat, lon


def start_point(text: str, *, settings: Settings, what: str = "--start") -> tuple[float, float]:
    """A start or end given as ``"LAT,LON"`` or as the name of a landmark of the settings."""
    named = {name.casefold(): point for name, point in settings.landmarks.items()}
    if str(text).strip().casefold() in named:
        return named[str(text).strip().casefold()]
    if "," not in str(text) and settings.landmarks:
        raise InputError(
            f"{what} {text!r}: not a landmark of the settings ({', '.join(settings.landmarks)}); give "
            "one of those or latitude and longitude, e.g. 41.6012,-88.0995."
        )
    return parse_lat_lon(text, what=what)


def landmarks_near(beat: gpd.GeoDataFrame, settings: Settings) -> dict[str, tuple[float, float]]:
    """The settings' landmarks a walk on ``beat`` (one polygon, metric CRS) can start from, nearest first.

    Those within :data:`MAX_START_DISTANCE_M` of the beat, the distance a route accepts.
    """
    if not settings.landmarks:
        return {}
    names = list(settings.landmarks)
    lat, lon = (np.array([settings.landmarks[n][i] for n in names], dtype=float) for i in (0, 1))
    x, y = transform_xy(lon, lat, WGS84, CRS(beat.crs))
    away = shapely.distance(beat.geometry.iloc[0], shapely.points(x, y))
    return {
        names[i]: settings.landmarks[names[i]]
        for i in np.argsort(away, kind="stable")
        if away[i] <= MAX_START_DISTANCE_M
    }


def check_lat_lon(point: tuple[float, float], *, what: str) -> None:
    """Refuse a ``(lat, lon)`` pair out of range, naming ``what`` it is."""
    lat, lon = point
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        raise InputError(
            f"{what} {lat},{lon}: latitude must be within ±90 and longitude within ±180 degrees (latitude first)."
        )
