"""Beats left out of the analysis: harbour beats, a catch-all "99", beats nobody patrols on foot.

Two sources, joined: the ``excluded_beats`` setting, and the list given when
the areas were loaded (``beatmap areas --exclude-beats``), kept in the store.
An excluded beat's blocks are not analysed: never flagged, and left out of
every coverage figure (see :func:`beatmap.metrics.analysed_blocks`).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import replace

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from beatmap import store
from beatmap.errors import InputError
from beatmap.settings import Settings

#: The ``meta`` key of the list given with the areas.
META_KEY = "excluded_beats"


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
