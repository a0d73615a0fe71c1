"""Heat maps of presence: non-enforcement visits beside enforcement, from block totals."""

from __future__ import annotations

import streamlit as st

from beatmap import access
from beatmap import schema as S
from beatmap.presence import PRESENCE_WORDS
from beatmap.render import heat_map
from beatmap.ui import auth, data, mapview
from beatmap.ui.filters import sidebar_filters
from beatmap.ui.safe import md_escape

st.title("Presence heat map")
engine, settings = data.get_engine(), data.get_settings()
if not data.has_areas(engine):
    st.info("No beats or blocks are loaded yet. A supervisor loads them on the **Import** page.")
    st.stop()
url, v = str(engine.url), data.version(engine)
filters = sidebar_filters(settings, data.default_window(engine, url, v))
if filters is None:
    st.stop()
user = auth.current_user()
blocks = data.blocks(engine, url, v)
points = access.heat_points(
    user,
    blocks,
    filters.apply(data.activity(engine, url, v, settings.timezone)),
    window=filters.window,
    settings=settings,
)
if points.empty:
    mine = access.visible_beats(user, blocks[S.BEAT_ID].unique())
    mine_left_out = [b for b in mine if b in settings.excluded_beats]
    st.info(
        f"Your beats ({md_escape(', '.join(mine_left_out))}) are left out of the analysis: nothing to show."
        if mine_left_out
        else "No beat is assigned to you yet; ask an administrator to assign your beats."
    )
    st.stop()
shapes = data.beat_shapes(engine, url, v)
bounds = data.bounds(shapes[shapes[S.BEAT_ID].isin(access.visible_beats(user, blocks[S.BEAT_ID]))])
st.caption(
    "Each block counts once, at a point inside it, weighted by its total for the filters: the maps show "
    "where presence concentrates, never where any single event happened."
)
gps = access.gps_presence_for(engine, user, blocks, window=filters.window)  # aggregates, never pings
weights = {"logged": "Logged events"}
if len(gps):
    weights["gps"] = "GPS minutes"
    points = points.merge(gps, on=S.BLOCK_ID, how="left").fillna({c: 0.0 for c in PRESENCE_WORDS})
weight = st.radio("Weigh blocks by", list(weights), format_func=weights.get, horizontal=True, key="heat_weight")
left, right = st.columns(2)
if weight == "gps":
    maps = (
        (
            left,
            "presence_minutes",
            PRESENCE_WORDS["presence_minutes"],
            {0.2: "#c7e9c0", 0.6: "#41ab5d", 1.0: "#00441b"},
        ),
        (
            right,
            "enforcement_minutes",
            PRESENCE_WORDS["enforcement_minutes"],
            {0.2: "#fdd0a2", 0.6: "#f16913", 1.0: "#7f2704"},
        ),
    )
else:
    maps = (
        (left, "visits", "Foot patrols and community visits", {0.2: "#c7e9c0", 0.6: "#41ab5d", 1.0: "#00441b"}),
        (right, "enforcement", "Enforcement", {0.2: "#fdd0a2", 0.6: "#f16913", 1.0: "#7f2704"}),
    )
for column, what, title, gradient in maps:
    with column:
        st.subheader(title)
        total = round(float(points[what].sum()))
        if total == 0:
            st.info(f"No {title.lower()} for these filters.")
            continue
        st.caption(f"{total:,} in {int((points[what] > 0).sum()):,} blocks")
        mapview.show_map(
            heat_map(points.rename(columns={what: "weight"}), bounds, tiles=settings.map_tiles, gradient=gradient),
            key=f"heat-{what}",
            height=480,
        )
