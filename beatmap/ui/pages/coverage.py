"""Coverage page: blocks coloured by flag for a window and beat, with the flagged blocks listed."""

from __future__ import annotations

import streamlit as st

from beatmap.errors import BeatmapError
from beatmap.render import coverage_map
from beatmap.ui import data
from beatmap.ui.mapview import show_map

ALL = "All beats"

st.title("Coverage")
engine = data.get_engine()
url = str(engine.url)
if not data.has_areas(engine):
    st.info("No beats or blocks are loaded yet. Build the demo city with `beatmap demo`, or load your own "
            "with `beatmap areas` and `beatmap import`, then reload this page.")
    st.stop()

v = data.version(engine)
window = data.default_window(engine, url, v)
left, right = st.columns([2, 1])
picked = left.date_input("Dates", value=(window.start, window.end), help="The window the counts and flags cover. "
                         "Default: the last 90 days of data.")
beat = right.selectbox("Beat", [ALL, *data.beat_ids(engine, url, v)])
if not isinstance(picked, tuple) or len(picked) != 2:
    st.info("Pick the last day of the range too.")
    st.stop()
start, end = picked

try:
    blocks = data.blocks_for(engine, url, v, start, end, None if beat == ALL else beat)
    beats = data.beats_for(engine, url, v, start, end)
except BeatmapError as exc:
    st.error(str(exc))
    st.stop()

shown_beats = beats if beat == ALL else beats[beats["beat_id"] == beat]
visited = int((blocks["visits"] > 0).sum())
a, b, c, d = st.columns(4)
a.metric("Blocks", f"{len(blocks):,}")
b.metric("Coverage", f"{100 * visited / max(len(blocks), 1):.0f}%", help="Blocks with at least one foot patrol "
         "or community visit in the window.")
c.metric("Flagged blocks", f"{int(blocks['flag'].notna().sum()):,}")
d.metric("Enforcement only", f"{int((blocks['flag'] == 'enforcement_only').sum()):,}")

if int(blocks["visits"].sum() + blocks["enforcement"].sum()) == 0:
    st.warning(f"No activity between {start} and {end} {'in the city' if beat == ALL else 'in beat ' + beat}. "
               "Widen the dates or import activity.")

show_map(coverage_map(blocks, shown_beats, tiles=data.get_settings().map_tiles), key=f"coverage-{beat}")

st.subheader("Flagged blocks")
flagged = data.as_table(blocks[blocks["flag"].notna()])
if flagged.empty:
    st.success("No block is flagged in this window.")
else:
    st.dataframe(
        flagged[["block_id", "beat_id", "flag", "visits", "enforcement", "days_visited", "last_visit",
                 "flag_reason"]].sort_values(["flag", "enforcement"], ascending=[True, False]),
        hide_index=True, width="stretch",
    )
