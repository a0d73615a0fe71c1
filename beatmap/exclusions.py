"""Beats left out of the analysis: harbour beats, a catch-all "99", beats nobody patrols on foot.

Two sources, joined: the ``excluded_beats`` setting, and the list given when
the areas were loaded (``beatmap areas --exclude-beats``), kept in the store.
An excluded beat's blocks are not analysed: never flagged, and left out of
every coverage figure (see :func:`beatmap.metrics.analysed_blocks`).  Every
table and map that lists blocks or beats still shows them, as "not analysed"
(:func:`with_not_analysed`), so a reader sees they were left out, not lost.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import replace

import geopandas as gpd
import pandas as pd
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from beatmap import schema as S
from beatmap import store
from beatmap.errors import InputError
from beatmap.settings import Settings

#: The ``meta`` key of the list given with the areas.
META_KEY = "excluded_beats"

#: The ``status`` of a row of a coverage table: its beat is analysed, or left out of the analysis.
ANALYSED, NOT_ANALYSED = S.ANALYSED, S.NOT_ANALYSED


def parse_beat_list(text: str) -> tuple[str, ...]:
    """``"H1, H3,99"`` -> ``("H1", "H3", "99")`` (blanks dropped, order kept, no repeats)."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def check_known(excluded: Iterable[str], beat_ids: Collection[str], *, where: str) -> tuple[str, ...]:
    """The excluded beats, after checking that each is a beat of the layer.

    Raises
    ------
    InputError
        Naming the unknown ids and some known ones.
    """
    excluded = tuple(excluded)
    unknown = [b for b in excluded if b not in beat_ids]
    if unknown:
        known = ", ".join(sorted(beat_ids)[:20])
        raise InputError(
            f"{where}: no beat {', '.join(map(repr, unknown))} in the beat layer; its beats include "
            f"{known}. Give beat ids exactly as the layer has them."
        )
    return excluded


def store_exclusions(conn: Connection, excluded: Iterable[str]) -> None:
    """Keep the list given with the areas (replacing the one before), inside the caller's transaction."""
    store.set_meta(conn, META_KEY, json.dumps(list(excluded)))


def stored_exclusions(engine: Engine) -> tuple[str, ...]:
    """The list given with the areas, or ``()``."""
    with engine.connect() as conn:
        value = store.get_meta(conn, META_KEY)
    return tuple(json.loads(value)) if value else ()


def effective_settings(settings: Settings, engine: Engine) -> Settings:
    """``settings`` with the store's excluded beats joined to the setting's."""
    stored = stored_exclusions(engine)
    if not stored:
        return settings
    return replace(settings, excluded_beats=tuple(dict.fromkeys((*settings.excluded_beats, *stored))))


def left_out(frame: pd.DataFrame, excluded: Iterable[str]) -> pd.DataFrame:
    """The rows of ``frame`` (blocks or beats, with ``beat_id``) whose beat is in ``excluded``."""
    return frame[frame[S.BEAT_ID].isin(list(excluded))]


def with_not_analysed(
    table: pd.DataFrame, not_analysed: pd.DataFrame, *, ids: Iterable[str] = (S.BLOCK_ID, S.BEAT_ID)
) -> pd.DataFrame:
    """A coverage table (of blocks or beats) with a row for each block or beat left out of the analysis.

    Parameters
    ----------
    table : DataFrame or GeoDataFrame
        Rows of analysed blocks (or beats): their ``status`` is ``analysed``.
    not_analysed : DataFrame or GeoDataFrame
        The blocks (or beats) of excluded beats, with the ``ids`` columns
        (and polygons when ``table`` has them).
    ids : iterable of str
        The columns the added rows keep; every other column is empty for them.

    Returns
    -------
    DataFrame or GeoDataFrame
        ``table`` with a ``status`` column, then one row per row of
        ``not_analysed`` with ``status`` ``not analysed``: no flag, an empty
        ``flag_reason`` and no figures (count columns become nullable
        integers, so a CSV shows an empty cell rather than 0).
    """
    out = table.assign(status=ANALYSED)
    if not_analysed.empty:
        return out
    keep = [c for c in ids if c in table.columns]
    extra = pd.DataFrame({c: not_analysed[c].to_numpy() for c in keep})
    extra["status"] = NOT_ANALYSED
    if "flag_reason" in out:
        extra["flag_reason"] = ""
    for name in out.columns:
        if pd.api.types.is_integer_dtype(out[name]) and not pd.api.types.is_bool_dtype(out[name]):
            out[name] = out[name].astype("Int64")
    if isinstance(table, gpd.GeoDataFrame) and isinstance(not_analysed, gpd.GeoDataFrame):
        geometry = not_analysed.geometry.to_crs(table.crs) if table.crs is not None else not_analysed.geometry
        extra[table.geometry.name] = geometry.to_numpy()
        joined = pd.concat([pd.DataFrame(out), extra], ignore_index=True)
        return gpd.GeoDataFrame(joined, geometry=table.geometry.name, crs=table.crs)
    return pd.concat([out, extra], ignore_index=True)
