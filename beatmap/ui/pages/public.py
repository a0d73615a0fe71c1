"""Public map page: the latest published snapshot, read from its files and nothing else.

This page never opens the store: it reads only the folder ``beatmap publish``
writes (``$BEATMAP_PUBLIC_DIR`` or the ``public_dir`` setting), and shows a
snapshot only after it passes the public map checks.  Like the snapshot's own
page it stays light at any city size: the first view draws the beats only, a
beat's blocks are drawn when it is chosen, and the block table lists the chosen
beat's blocks or the blocks a search finds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from beatmap import snapshot
from beatmap.errors import BeatmapError, InputError
from beatmap.publicmap import outline_problems, public_city_map, public_map
from beatmap.publicsite import page_data
from beatmap.settings import Settings, read_settings
from beatmap.ui.mapview import show_map
from beatmap.ui.safe import md_escape

BEAT_LABELS = {
    "beat_id": "Beat",
    "blocks": "Blocks",
    "blocks_visited": "Blocks visited",
    "coverage_pct": "Coverage",
    "blocks_visits_withheld": "Blocks with visits withheld",
    "visits_on_shown_blocks": "Visits on shown blocks",
    "enforcement_on_shown_blocks": "Enforcement on shown blocks",
    "blocks_mostly_enforcement": "Blocks mostly enforcement",
}
BLOCK_LABELS = {
    "block_id": "Block",
    "streets": "Where",
    "beat_id": "Beat",
    "visit_level": "Visit level",
    "visits": "Foot patrols and community visits",
    "enforcement": "Enforcement events",
    "presence": "Police presence",
    snapshot.PRESENCE_MINUTES: snapshot.PRESENCE_HEADING,  # only in snapshots that publish it
}


#: Search results listed at most (the count says how many matched).
SHOWN = 500
CITY = ""


@dataclass(frozen=True)
class _Snapshot:
    """A checked snapshot's data, read once per snapshot (shared, read-only)."""

    manifest: dict
    by_beat: dict[str, list[dict]]
    outlines: dict
    beats: pd.DataFrame
    trend: pd.DataFrame
    blocks: pd.DataFrame
    search_text: pd.Series
    streets: dict | None


@st.cache_resource
def _settings(path: str | None) -> Settings:
    return read_settings(path)


@st.cache_resource(show_spinner="Loading the map…", max_entries=2)
def _load(
    folder: str, files: tuple, min_count: int, delay_days: int, trend_min_blocks: int, presence_allowed: bool
) -> _Snapshot | list[str]:
    """The snapshot, read and checked once until any of its files changes: its rule violations, if any, else its
    data (``coverage.geojson`` is read once, for both).

    The beats' outlines are the ones the published page draws (read from its ``index.html``, not made
    again from the blocks), after a check that they are the outlines of the published blocks.

    Raises
    ------
    BeatmapError
        When the page's outlines do not fit the published blocks, or a file cannot be read.
    """
    try:
        collection = snapshot.read_features(folder)
    except BeatmapError:
        collection = None  # the check names the problem
    problems = snapshot.snapshot_violations(
        folder,
        min_count=min_count,
        delay_days=delay_days,
        trend_min_blocks=trend_min_blocks,
        features=collection,
        presence_allowed=presence_allowed,
    )
    if problems or collection is None:
        return problems
    features = collection.get("features", [])
    by_beat: dict[str, list[dict]] = {}
    for feature in features:
        by_beat.setdefault(str(feature["properties"].get("beat_id", "")), []).append(feature)
    outlines = page_data((Path(folder) / snapshot.INDEX).read_text(encoding="utf-8"))["outlines"]
    misfit = outline_problems(outlines, by_beat)
    if misfit:
        raise InputError(f"{Path(folder) / snapshot.INDEX}: {misfit[0]}")
    manifest = snapshot.read_manifest(folder)
    fields = snapshot.block_fields(snapshot.publishes_presence(manifest))
    blocks = pd.DataFrame([f["properties"] for f in features], columns=list(fields))
    if snapshot.PRESENCE_MINUTES in blocks:  # in words, with units (not on the colour scale)
        blocks[snapshot.PRESENCE_MINUTES] = blocks[snapshot.PRESENCE_MINUTES].map(snapshot.presence_text)
    return _Snapshot(
        manifest=manifest,
        by_beat=by_beat,
        outlines=outlines,
        beats=pd.DataFrame(snapshot.read_rows(folder, snapshot.BEATS_CSV)),
        trend=pd.DataFrame(snapshot.read_rows(folder, snapshot.TREND_CSV)),
        blocks=blocks,
        streets=snapshot.read_streets(folder),
        search_text=(  # column by column (a row-wise join took 2 s for a city of 30,000 blocks)
            blocks.iloc[:, 0]
            .astype(str)
            .str.cat([blocks[c].astype(str) for c in blocks.columns[1:]], sep=" ")
            .str.lower()
        ),
    )


def _override(folder: Path) -> int | None:
    """The shorter delay a snapshot was published with (``--override-delay-days``), or None."""
    try:
        override = snapshot.read_manifest(folder).get("override")
        return int(override["delay_days"]) if isinstance(override, dict) and override["delay_days"] >= 0 else None
    except (BeatmapError, KeyError, TypeError, ValueError):
        return None  # the check reports an unreadable manifest


def _file_stamps(folder: Path) -> tuple:
    """Name, size and modification time of every file in the folder (the check's cache key)."""
    return tuple(
        sorted(
            (p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*")
            if p.is_file()
        )
    )


def _block_table(frame: pd.DataFrame) -> None:
    shown = frame.assign(visit_level=frame["visit_level"].astype(str).str.capitalize()) if len(frame) else frame
    st.dataframe(
        shown[[c for c in BLOCK_LABELS if c in shown]].rename(columns=BLOCK_LABELS), hide_index=True, width="stretch"
    )


st.title("Police presence outside enforcement")
try:
    settings = _settings(os.environ.get("BEATMAP_SETTINGS"))
except BeatmapError as exc:
    st.error(md_escape(exc))
    st.stop()

folder = snapshot.find_snapshot(snapshot.public_dir(settings))
if folder is None:
    st.info(
        "Nothing has been published yet. The department publishes this map from its records, delayed and "
        "block by block; please come back later."
    )
    st.stop()

override = _override(folder)  # published with a shorter delay, by a decision in the audit log: shown with a notice
delay = settings.public_delay_days if override is None else min(settings.public_delay_days, override)
stamps = _file_stamps(folder)
try:
    loaded = _load(
        str(folder),
        stamps,
        settings.public_min_count,
        delay,
        settings.public_trend_min_blocks,
        settings.publish_presence_minutes,
    )
    if isinstance(loaded, list):  # rule violations
        st.error("The published map does not pass the public map checks, so it is not shown. Please come back later.")
        st.stop()
    snap = loaded
    manifest = snap.manifest
    about = snapshot.about_from_manifest(manifest)  # made from the dates and rules, not read from README.txt
except BeatmapError as exc:
    st.error(md_escape(exc))
    st.stop()

# Dates and numbers are read as such (the check passed them), so no text of the files reaches the page as markup.
st.markdown(
    f"Foot patrols and community visits, block by block, from {date.fromisoformat(manifest['data_start'])} "
    f"to {date.fromisoformat(manifest['data_end'])}. Published {date.fromisoformat(manifest['as_of'])}; "
    f"nothing from the last {int(manifest['rules']['delay_days'])} days is included."
)
st.markdown("[Skip the map: go to the tables](#beats)")
if override is not None:
    st.warning(
        f"This snapshot was published with a shorter delay ({override} days) than the usual "
        f"{settings.public_delay_days} days, by a decision the department recorded."
    )

# Which beat: the list, or a click on the city map (its callback ran before this run; applied before the list).
beat_ids = sorted(snap.by_beat)
if st.session_state.get("public-picked") in beat_ids:
    st.session_state["public-beat"] = st.session_state.pop("public-picked")
beat = st.selectbox(
    "Beat",
    [CITY, *beat_ids],
    key="public-beat",
    format_func=lambda b: "Whole city" if b == CITY else b,
    help="The city map shows each beat by the share of its blocks visited; choose a beat (here or on the map) "
    "to see its blocks.",
)
if beat == CITY:
    coverage = {str(r["beat_id"]): int(r["coverage_pct"]) for r in snap.beats.to_dict("records")}
    show_map(
        public_city_map(snap.outlines, coverage, tiles=settings.map_tiles, streets=snap.streets),
        key="public-city",
        on_click=lambda properties: st.session_state.update({"public-picked": str(properties.get("beat_id"))}),
    )
else:
    collection = {"type": "FeatureCollection", "features": snap.by_beat[beat]}
    show_map(
        public_map(
            collection, level_text=manifest["rules"].get("levels"), tiles=settings.map_tiles, streets=snap.streets
        ),
        key=f"public-beat-{beat_ids.index(beat)}",
    )

beats = snap.beats
st.subheader("Beats", anchor="beats")
shown_beats = beats.assign(coverage_pct=beats["coverage_pct"].map(lambda v: f"{v}%")) if len(beats) else beats
st.dataframe(shown_beats.rename(columns=BEAT_LABELS), hide_index=True, width="stretch")

st.subheader("Week by week")
st.markdown("Share of each beat's blocks with a foot patrol or community visit, rounded to the nearest 10%.")
trend = snap.trend
if len(trend):
    weekly = trend.assign(
        coverage_pct=trend["coverage_pct"].map(lambda v: f"{v}%"),
        week=trend["week_start"].map(lambda d: f"Week of {d}"),
    )
    weekly = weekly.pivot(index="beat_id", columns="week", values="coverage_pct").rename_axis("Beat").reset_index()
    st.dataframe(weekly, hide_index=True, width="stretch")
else:
    st.markdown("No beat has enough blocks for weekly shares (a share of a small beat would show single blocks).")

st.subheader("Every block", anchor="blocks")
blocks = snap.blocks
query = st.text_input(
    "Find a block by street name or block", placeholder="e.g. Main St, or a block number", key="public-search"
)
words = [w for w in query.lower().split() if w]
if words:
    found = blocks[snap.search_text.map(lambda t: all(w in t for w in words))]
    more = f" (the first {SHOWN:,} are listed)" if len(found) > SHOWN else ""
    st.markdown(f"{len(found):,} block{'s' * (len(found) != 1)} found{more}.")
    _block_table(found.head(SHOWN))
elif beat != CITY:
    st.markdown(f"The {len(snap.by_beat[beat]):,} blocks of beat {md_escape(beat)}.")
    _block_table(blocks[blocks["beat_id"].astype(str) == beat])
else:
    st.markdown(
        f"All {len(blocks):,} blocks are in the Blocks download below. Choose a beat to list its blocks here, or "
        "find blocks by street name or block anywhere in the city."
    )

with st.expander("About this map", expanded=True):
    st.markdown(md_escape(about))  # the snapshot's text is shown as text: no link, image or HTML

left, right = st.columns(2)
left.download_button(
    "Blocks (CSV)", (Path(folder) / snapshot.BLOCKS_CSV).read_bytes(), file_name="coverage.csv", mime="text/csv"
)
right.download_button(
    "Beats (CSV)", (Path(folder) / snapshot.BEATS_CSV).read_bytes(), file_name="beats.csv", mime="text/csv"
)
