"""Public map page: the latest published snapshot, read from its files and nothing else.

This page never opens the store: it reads only the folder ``beatmap publish``
writes (``$BEATMAP_PUBLIC_DIR`` or the ``public_dir`` setting), and shows a
snapshot only after it passes the public map checks.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pandas as pd
import streamlit as st

from beatmap import snapshot
from beatmap.errors import BeatmapError
from beatmap.publicmap import public_map
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
}


@st.cache_resource
def _settings(path: str | None) -> Settings:
    return read_settings(path)


@st.cache_data(show_spinner=False)
def _problems(folder: str, files: tuple, min_count: int, delay_days: int) -> list[str]:
    """The snapshot's rule violations (cached until any of its files changes)."""
    return snapshot.snapshot_violations(folder, min_count=min_count, delay_days=delay_days)


def _override(folder: Path) -> int | None:
    """The shorter delay a snapshot was published with (``--override-delay-days``), or None."""
    try:
        override = snapshot.read_manifest(folder).get("override")
        return int(override["delay_days"]) if isinstance(override, dict) and override["delay_days"] >= 0 else None
    except (BeatmapError, KeyError, TypeError, ValueError):
        return None  # the check reports an unreadable manifest


def _file_stamps(folder: Path) -> tuple:
    """Name, size and modification time of every file in the folder (the check's cache key)."""
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()))


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
problems = _problems(str(folder), _file_stamps(folder), settings.public_min_count, delay)
if problems:
    st.error("The published map does not pass the public map checks, so it is not shown. Please come back later.")
    st.stop()

try:
    manifest = snapshot.read_manifest(folder)
    features = snapshot.read_features(folder)
    beats = pd.DataFrame(snapshot.read_rows(folder, snapshot.BEATS_CSV))
    trend = pd.DataFrame(snapshot.read_rows(folder, snapshot.TREND_CSV))
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
show_map(public_map(features, level_text=manifest["rules"].get("levels"), tiles=settings.map_tiles), key="public-map")

st.subheader("Beats", anchor="beats")
shown_beats = beats.assign(coverage_pct=beats["coverage_pct"].map(lambda v: f"{v}%")) if len(beats) else beats
st.dataframe(shown_beats.rename(columns=BEAT_LABELS), hide_index=True, width="stretch")

st.subheader("Week by week")
st.markdown("Share of each beat's blocks with a foot patrol or community visit, rounded to the nearest 10%.")
if len(trend):
    weekly = trend.assign(
        coverage_pct=trend["coverage_pct"].map(lambda v: f"{v}%"),
        week=trend["week_start"].map(lambda d: f"Week of {d}"),
    )
    weekly = weekly.pivot(index="beat_id", columns="week", values="coverage_pct").rename_axis("Beat").reset_index()
    st.dataframe(weekly, hide_index=True, width="stretch")

st.subheader("Every block", anchor="blocks")
blocks = pd.DataFrame([f["properties"] for f in features.get("features", [])])
if len(blocks):
    query = st.text_input(
        "Find a block by street name or block", placeholder="e.g. Main St, or a block number", key="public-search"
    )
    words = [w for w in query.lower().split() if w]
    if words:
        text = blocks.astype(str).agg(" ".join, axis=1).str.lower()
        blocks = blocks[text.map(lambda t: all(w in t for w in words))]
        st.markdown(f"{len(blocks):,} block{'s' * (len(blocks) != 1)} found.")
    shown_blocks = blocks.assign(visit_level=blocks["visit_level"].str.capitalize()) if len(blocks) else blocks
    st.dataframe(
        shown_blocks[[c for c in BLOCK_LABELS if c in shown_blocks]].rename(columns=BLOCK_LABELS),
        hide_index=True,
        width="stretch",
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
