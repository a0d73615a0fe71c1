"""Publish: a preview of the public map, warnings, the publish button, and the publications so far (supervisors)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from beatmap import access, snapshot
from beatmap.errors import BeatmapError
from beatmap.publicmap import OUTLINE_TOLERANCE_DEG, beat_outlines, public_city_map, public_map
from beatmap.publish import block_features, level_text, publish_history, publish_warnings
from beatmap.ui import auth, data, mapview
from beatmap.ui.safe import md_escape

st.title("Publish the public map")
user = auth.require_page("publish")
engine, settings = data.get_engine(), data.get_settings()
if not data.has_areas(engine):
    st.info("No beats or blocks are loaded yet. Load them on the **Import** page first.")
    st.stop()
st.caption(
    "Residents see only what is published: block-level counts for a fixed, delayed period, counts under "
    f"{settings.public_min_count} withheld, no officer and no time of day. Below is exactly what publishing "
    "now would show."
)

try:
    aggregates = access.preview_publication_as(engine, user, settings=settings)
except BeatmapError as exc:
    st.error(str(exc))
    st.stop()

p = aggregates.period
blocks, beats = aggregates.blocks, aggregates.beats
st.subheader("Preview")
st.markdown(
    f"Data from **{p.start:%B %-d, %Y}** to **{p.end:%B %-d, %Y}** ({p.days} days), dated "
    f"{aggregates.as_of:%B %-d, %Y}: {len(blocks):,} blocks in {len(beats):,} beats."
)
warnings = publish_warnings(aggregates)
for warning in warnings:
    st.warning(warning)
if not warnings:
    st.success("Nothing to warn about: the period holds activity and most counts are shown.")
# As the public map shows it: the city's beats first (light at any size), a beat's blocks when chosen, on the
# base map that publishing puts in the snapshot (the store's streets, water and parks).
features = block_features(aggregates)["features"]
url, v = str(engine.url), data.version(engine)
base = data.street_lines(engine, url, v, None)
preview_beat = st.selectbox(
    "Preview", ["", *sorted(beats["beat_id"].astype(str))], format_func=lambda b: f"Beat {b}" if b else "Whole city"
)
if preview_beat:
    preview = public_map(
        {"type": "FeatureCollection", "features": [f for f in features if f["properties"]["beat_id"] == preview_beat]},
        level_text=level_text(aggregates.level_cuts),
        tiles=settings.map_tiles,
        streets=base,
    )
else:
    preview = public_city_map(
        beat_outlines(features, tolerance_deg=OUTLINE_TOLERANCE_DEG),
        dict(zip(beats["beat_id"].astype(str), beats["coverage_pct"].astype(int), strict=True)),
        tiles=settings.map_tiles,
        streets=base,
    )
mapview.show_map(preview, key=f"publish-preview-{preview_beat}", height=420)
st.dataframe(
    beats.assign(coverage_pct=beats["coverage_pct"].map(lambda v: f"{v}%")).rename(
        columns={
            "beat_id": "Beat",
            "blocks": "Blocks",
            "blocks_visited": "Blocks visited",
            "coverage_pct": "Coverage",
            "blocks_visits_withheld": "Blocks with visits withheld",
            "visits_on_shown_blocks": "Visits on shown blocks",
            "enforcement_on_shown_blocks": "Enforcement on shown blocks",
            "blocks_mostly_enforcement": "Blocks mostly enforcement",
        }
    ),
    hide_index=True,
    width="stretch",
)

out = snapshot.public_dir(settings)
st.subheader("Publish")
st.caption(f"Publishing replaces the public map in {md_escape(out)} and is recorded in the audit log.")
confirm = st.checkbox(
    "I have read the warnings above", value=not warnings, key="publish-confirm", disabled=not warnings
)
if st.button("Publish now", type="primary", disabled=not confirm):
    try:
        with st.spinner("Publishing…"):
            manifest = access.publish_as(engine, user, out, settings=settings)
    except BeatmapError as exc:  # the library names the folder as the command line's --out; here it is a setting
        st.error(md_escape(str(exc).replace(f"--out {out}", f"The public folder {out} (public_dir in the settings)")))
    else:
        st.success(
            f"Published: data from {manifest['data_start']} to {manifest['data_end']}, "
            f"{manifest['counts']['blocks']:,} blocks. The public page shows it now."
        )

st.subheader("Published so far")
history = publish_history(engine, timezone=settings.timezone)
if history.empty:
    st.info("Nothing has been published yet.")
else:
    shown = history.assign(
        published_at=history["published_at"].dt.strftime("%Y-%m-%d %H:%M"),
        shorter_delay=history["shorter_delay"].map({True: "yes", False: ""}),
    )
    st.dataframe(
        pd.DataFrame(shown).rename(
            columns={
                "published_at": "Published",
                "by": "By",
                "data_start": "Data from",
                "data_end": "Data to",
                "dated": "Dated",
                "blocks": "Blocks",
                "folder": "Folder",
                "shorter_delay": "Shorter delay",
            }
        ),
        hide_index=True,
        width="stretch",
    )
