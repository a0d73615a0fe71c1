"""Writing tables to CSV and GeoJSON: the one place every export (coverage, rejects, audit, public map) goes through.

Text a spreadsheet would run as a formula is neutralised in every CSV.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd

from beatmap.crs import WGS84
from beatmap.errors import InputError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_table(frame: gpd.GeoDataFrame | pd.DataFrame, path: str | Path) -> Path:
    """Write a table as ``.csv`` (no geometry) or ``.geojson`` (WGS84)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".geojson"}:
        raise InputError(f"--out {path}: give a file ending in .csv or .geojson.")
    if suffix == ".geojson" and not isinstance(frame, gpd.GeoDataFrame):
        raise InputError(f"--out {path}: this table has no geometry; write it as .csv.")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(geojson_text(frame) if suffix == ".geojson" else csv_text(frame), encoding="utf-8")
    return path


def csv_text(frame: pd.DataFrame) -> str:
    """A table as CSV text, without geometry; text a spreadsheet would run as a formula is neutralised."""
    table = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    # Text columns are object or (pandas 3) string dtype: both are checked.
    table = table.apply(
        lambda col: col.map(neutralise_cell) if col.dtype == object or pd.api.types.is_string_dtype(col) else col
    )
    return table.to_csv(index=False)


def geojson_text(frame: gpd.GeoDataFrame) -> str:
    """A table with geometry as GeoJSON text in WGS84 (dates as ISO text)."""
    out = frame.to_crs(WGS84)
    for name in out.columns:
        if name != out.geometry.name and out[name].dtype == object:
            out[name] = out[name].map(lambda v: v.isoformat() if isinstance(v, date) else v)
    return out.to_json(drop_id=True, na="null")


def neutralise_cell(value: object) -> object:
    """Prefix text that starts like a spreadsheet formula with a quote, so it is shown, not run."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
