"""Coverage: the city's beats, then one beat's blocks, with flags, trends, officers and exports."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from beatmap import access, basemap, naming
from beatmap import schema as S
from beatmap.exclusions import left_out, with_not_analysed
from beatmap.export import csv_text, geojson_text
from beatmap.metrics import coverage_by_beat, visits_by_hour_and_weekday, weekly_trend
from beatmap.neglect import neglected_areas
from beatmap.presence import PRESENCE_WORDS
from beatmap.render import (
    FLAG_WORDS,
    MEASURES,
    NOT_ANALYSED,
    area_outlines,
    base_map,
    beat_summary_html,
    choropleth,
    display_frame,
    measure_colours,
    not_analysed,
    outlines,
    standalone_html,
)
from beatmap.ui import auth, components, data, mapview
from beatmap.ui.filters import sidebar_filters
from beatmap.ui.safe import md_escape

CITY = "Whole city"
VENDOR = "static/vendor/leaflet"

st.title("Coverage")
engine, settings = data.get_engine(), data.get_settings()
user = auth.current_user()  # the access functions below show only what this user may see
if not data.has_areas(engine):
    st.info(
        "No beats or blocks are loaded yet. A supervisor loads the beat and block maps, then the activity, on "
        "the **Import** page."
    )
    st.stop()

url, v = str(engine.url), data.version(engine)
chosen_filters = sidebar_filters(settings, data.default_window(engine, url, v))
if chosen_filters is None:
    st.stop()
filters = chosen_filters  # narrowed for the callables below, which run at a click
blocks = data.blocks(engine, url, v)
street_names = data.street_names(engine, url, v)
activity = filters.apply(data.activity(engine, url, v, settings.timezone))
cov = data.block_coverage(engine, user, filters, settings)  # cached per filters: a beat view reuses it
assert user is not None  # block_coverage_for refuses the public
# The user's beats left out of the analysis: shown, as not analysed, in every table, map and export.
left_blocks = left_out(access.restrict_to_beats(user, blocks), settings.excluded_beats)[[S.BLOCK_ID, S.BEAT_ID]]
left_beats = list(dict.fromkeys(left_blocks[S.BEAT_ID]))
NOT_ANALYSED_NOTE = (
    "Not analysed: this beat is left out of the analysis (in the settings, or when the beats were loaded). "
    "Its blocks are never flagged and count in no coverage figure."
)
if cov.empty and not left_beats:
    st.info("No beat is assigned to you yet; ask an administrator to assign your beats.")
    st.stop()
before = data.block_coverage(engine, user, filters, settings, previous=True)
before_label = f"{filters.window.previous().start} to {filters.window.previous().end}"
beats = coverage_by_beat(cov)


def pick_beat(properties: dict) -> None:
    """A click on the city map (before the next run): that run shows the beat."""
    if properties.get(S.BEAT_ID) is not None:
        st.session_state.update(f_beat=str(properties[S.BEAT_ID]), f_block=None)


def pick_block(properties: dict) -> None:
    """A click on a beat's map (before the next run): that run selects the block."""
    if properties.get(S.BLOCK_ID) is not None:
        st.session_state.update(f_block=str(properties[S.BLOCK_ID]))


# Which beat: the list, a click on the city map, or a row of the flagged table.
choices = [*beats[S.BEAT_ID], *left_beats]
options = [CITY, *choices] if len(beats) else choices  # every beat of the user left out: only their own views
if st.session_state.get("f_beat") not in options:
    # Someone with one beat opens on it: a city view of one beat is one square to tap.
    one = len(choices) == 1 and not user.all_beats
    st.session_state["f_beat"] = choices[0] if one or not len(beats) else CITY
st.session_state["_w_f_beat"] = st.session_state["f_beat"]
everywhere = CITY if user.all_beats else "All my beats"
beat = st.selectbox(
    "Beat",
    options,
    key="_w_f_beat",
    format_func=lambda b: everywhere if b == CITY else f"{b} (not analysed)" if b in left_beats else b,
    on_change=lambda: st.session_state.update(f_beat=st.session_state["_w_f_beat"], f_block=None),
    help="Pick a beat here, or click it on the city map.",
)

# The page keeps one layout in every view (notes, figures, then the map), so the map's frame stays when the
# view changes: a beat's blocks replace the city's beats in it, and nothing loads Leaflet again.
notes, head = st.container(), st.container()
left, right = st.columns([4, 1])
all_shapes = data.beat_shapes(engine, url, v)
home = base_map(data.bounds(all_shapes[all_shapes[S.BEAT_ID].isin(choices)]), tiles=settings.map_tiles)
MAP_KEY = "map-coverage"

if cov.empty:
    pass  # every beat of the user is left out: the beat's view says so
elif int(cov["visits"].sum() + cov["enforcement"].sum()) == 0:
    notes.warning(
        f"No activity matches the filters between {filters.window.start} and {filters.window.end}. "
        "Widen the dates or the filters in the sidebar, or import activity on the Import page."
    )
elif int(cov["visits"].sum()) == 0:
    notes.info(
        f"No foot patrol or community visit is recorded between {filters.window.start} and "
        f"{filters.window.end}, only enforcement: coverage is 0% and every block counts as unvisited or "
        "enforcement only. Import the foot-patrol or visit log on the Import page, or check the Activity "
        "filter in the sidebar."
    )

if beat == CITY:
    shown, shown_before = cov, before
    with head:
        figures = components.key_figures(cov, before, before_label=before_label)
    shapes = all_shapes[all_shapes[S.BEAT_ID].isin(beats[S.BEAT_ID])]
    left_shapes = all_shapes[all_shapes[S.BEAT_ID].isin(left_beats)]
    light = shapes.merge(beats[[S.BEAT_ID, "coverage_pct", "flagged", "visits"]], on=S.BEAT_ID, how="left")
    colours, entries = measure_colours(light["coverage_pct"], "coverage_pct")

    def map_layers() -> list:
        """The view's layers, new objects on each call (st_folium renames the ones it draws)."""
        return [
            choropleth(
                light,
                colours,
                name="Beats",
                id_field=S.BEAT_ID,
                tooltip_fields=[S.BEAT_ID, "coverage_pct", "flagged", "visits"],
                aliases=["Beat", "Coverage %", "Flagged blocks", "Visits"],
            ),
            *([not_analysed(left_shapes)] if len(left_shapes) else []),
        ]

    streets_etc = basemap.base_layer(
        data.street_lines(engine, url, v, None), bounds=data.bounds(shapes), labels=basemap.beat_label_points(shapes)
    )
    with left:
        mapview.show_map(home, key=MAP_KEY, layers=[*map_layers(), streets_etc], on_click=pick_beat)
    with right:
        components.legend(
            "Coverage: share of the beat's blocks with a foot patrol or community visit",
            [(c, f"{t} %") for c, t in entries]
            + ([(NOT_ANALYSED, "Not analysed (left out)")] if len(left_shapes) else []),
        )
        st.caption("Click a beat to see its blocks.")
    st.subheader("Beats")
    st.dataframe(
        with_not_analysed(beats.sort_values("coverage_pct"), pd.DataFrame({S.BEAT_ID: left_beats}), ids=[S.BEAT_ID]),
        hide_index=True,
        width="stretch",
        column_config={
            **components.COLUMN_LABELS,
            "coverage_pct": st.column_config.ProgressColumn("Coverage %", min_value=0, max_value=100, format="%.0f%%"),
            "gini": st.column_config.NumberColumn("Unevenness", format="%.2f"),
            "status": "Status",
        },
    )
elif beat in left_beats:
    notes.info(NOT_ANALYSED_NOTE)
    shown, shown_before = cov.iloc[:0], before.iloc[:0]
    left_blocks = left_blocks[left_blocks[S.BEAT_ID] == beat]
    figures = [("Status", "Not analysed")]
    shapes = data.block_shapes(engine, url, v, beat)
    beat_outline = all_shapes[all_shapes[S.BEAT_ID] == beat]

    def map_layers() -> list:
        """The view's layers, new objects on each call (st_folium renames the ones it draws)."""
        return [not_analysed(shapes, id_field=S.BLOCK_ID, alias="Block"), outlines(beat_outline)]

    streets_etc = basemap.base_layer(data.street_lines(engine, url, v, beat), bounds=data.bounds(shapes))
    with left:
        mapview.show_map(home, key=MAP_KEY, layers=[*map_layers(), streets_etc], on_click=pick_block)
    with right:
        components.legend("Blocks", [(NOT_ANALYSED, "Not analysed (left out)")])
else:
    left_blocks = left_blocks.iloc[:0]
    in_beat = cov[S.BEAT_ID] == beat
    shown, shown_before = cov[in_beat], before[before[S.BEAT_ID] == beat]
    with head:
        figures = components.key_figures(shown, shown_before, before_label=before_label)
    gps = access.gps_presence_for(engine, user, blocks, window=filters.window)  # aggregates, never pings
    gps = gps[gps[S.BLOCK_ID].isin(shown[S.BLOCK_ID])]
    measures = {**MEASURES, **(PRESENCE_WORDS if len(gps) else {})}
    if st.session_state.get("f_measure") not in measures:
        st.session_state.pop("f_measure", None)
    # A list, not radio buttons: on a phone eight options stacked one per line pushed the map off the screen.
    measure: str = head.selectbox(
        "Colour blocks by", list(measures), format_func=lambda m: measures[m], key="f_measure"
    )
    shapes = data.block_shapes(engine, url, v, beat)
    values = shown.merge(gps, on=S.BLOCK_ID, how="left").fillna({c: 0.0 for c in PRESENCE_WORDS})
    values = values.assign(
        days_since_visit=(
            (filters.window.end - shown["last_visit"]).map(lambda d: d.days if d == d and d is not None else None)
            if shown["last_visit"].notna().any()
            else None
        )
    )
    light = shapes.merge(
        values[
            [
                S.BLOCK_ID,
                "flag",
                "visits",
                "enforcement",
                "days_visited",
                "enforcement_share",
                "days_since_visit",
                "flag_reason",
                *(c for c in PRESENCE_WORDS if c in values.columns),
            ]
        ],
        on=S.BLOCK_ID,
        how="left",
    )
    light["flag_reason"] = light["flag_reason"].fillna("")
    light = data.with_landmarks(data.with_street_names(light, street_names), data.block_landmarks(engine, settings))
    colours, entries = measure_colours(light[measure], measure)
    areas = neglected_areas(shown, blocks=data.block_polygons(engine, url, v), streets=data.streets(engine, url, v))
    selected = st.session_state.get("f_block")
    beat_outline = all_shapes[all_shapes[S.BEAT_ID] == beat]

    def map_layers() -> list:
        """The view's layers, new objects on each call (st_folium renames the ones it draws)."""
        return [
            choropleth(
                light.drop(columns=["days_since_visit", "enforcement_share", *PRESENCE_WORDS], errors="ignore"),
                colours,
                name="Blocks",
                highlight=selected or None,
                tooltip_fields=[naming.NAME, naming.LANDMARK, S.BLOCK_ID, "visits", "enforcement", "flag_reason"],
                aliases=["Where", "Landmark", "Block", "Visits", "Enforcement", "Why flagged"],
                optional=[naming.LANDMARK],
            ),
            outlines(beat_outline),
            *([area_outlines(display_frame(areas, ["area_id"], tolerance_m=0))] if len(areas) else []),
        ]

    streets_etc = basemap.base_layer(data.street_lines(engine, url, v, beat), bounds=data.bounds(shapes))
    with left:
        mapview.show_map(home, key=MAP_KEY, layers=[*map_layers(), streets_etc], on_click=pick_block)
    with right:
        components.legend(measures[measure], entries)
        if len(areas):
            st.caption("Dashed outlines: neglected areas (listed below the map).")
        st.caption("Click a block to select it.")
    if selected in set(shown[S.BLOCK_ID]):
        row = shown.set_index(S.BLOCK_ID).loc[selected]
        last = (
            row["last_visit"] if row["last_visit"] is not None and row["last_visit"] == row["last_visit"] else "never"
        )
        st.info(
            f"Selected block **{md_escape(naming.block_label(selected, street_names.get(selected)))}**: "
            f"{row['visits']} foot patrols and community visits, "
            f"{row['enforcement']} enforcement events, last visit {last}. "
            + md_escape(row["flag_reason"] or "Not flagged.")
        )

    officers_shown = access.may_see_officers(user)  # per-officer figures: supervisors only
    # Only the chosen tab is worked out and drawn (switching tabs reruns the page): each chart costs the
    # browser more than its tab's click does.
    trend_tab, when_tab, *officer_tab = st.tabs(
        ["Trend", "When visits happen", *(["Officers"] * officers_shown)], key="f_beat_tab", on_change="rerun"
    )
    beat_activity = activity[activity[S.BLOCK_ID].isin(shown[S.BLOCK_ID])]
    if trend_tab.open:
        with trend_tab:
            components.trend_chart(weekly_trend(activity, shown[S.BLOCK_ID], window=filters.window))
    if when_tab.open:
        with when_tab:
            components.hour_weekday_chart(visits_by_hour_and_weekday(beat_activity, window=filters.window))
    for tab in officer_tab:
        if not tab.open:
            continue
        with tab:
            officers = access.officer_breakdown(user, beat_activity, blocks, window=filters.window)
            if officers.empty:
                st.info("No officer logged a foot patrol or community visit here in this period.")
            else:
                st.dataframe(
                    officers,
                    hide_index=True,
                    width="stretch",
                    column_config={**components.COLUMN_LABELS, "days": "Days on foot or visiting"},
                )
            in_beat_blocks = blocks[blocks[S.BEAT_ID] == beat]
            gps_officers = access.gps_officers_for(engine, user, in_beat_blocks, window=filters.window)
            if len(gps_officers):
                st.markdown("**GPS presence per officer and unit** (totals from the aggregates; no track is shown)")
                st.dataframe(gps_officers, hide_index=True, width="stretch", column_config=components.GPS_LABELS)

if beat == CITY or beat in left_beats:
    areas = neglected_areas(shown, blocks=data.block_polygons(engine, url, v), streets=data.streets(engine, url, v))
# Neglected areas: adjacent flagged blocks of a beat, named by their streets.
st.subheader("Neglected areas")
if areas.empty:
    st.caption("No two adjacent blocks of a beat are flagged together.")
else:
    st.dataframe(
        data.as_table(areas).drop(columns=["block_ids"]),
        hide_index=True,
        width="stretch",
        column_config={
            **components.COLUMN_LABELS,
            "area_id": "Area",
            "name": "Where",
            "blocks": "Blocks",
            "flags": "Flags",
            "area_ha": st.column_config.NumberColumn("Hectares", format="%.1f"),
        },
    )
    st.caption("Plan a walk through one on the **Walking route** page.")

# The flagged blocks: sortable; a row selects its block on the map.
st.subheader("Flagged blocks")
flagged = data.as_table(shown[shown["flag"].notna()]).sort_values(["flag", "enforcement"], ascending=[True, False])
flagged = data.with_street_names(flagged, street_names)
flagged["flag"] = flagged["flag"].map(lambda f: FLAG_WORDS.get(f, f))
flagged = flagged[
    [S.BLOCK_ID, naming.NAME, S.BEAT_ID, "flag", "visits", "enforcement", "days_visited", "last_visit", "flag_reason"]
].reset_index(drop=True)
if flagged.empty:
    st.success("No block is flagged for these filters.")
else:
    selected = st.session_state.get("f_block")
    rows = flagged.index[flagged[S.BLOCK_ID] == selected].tolist()
    event = st.dataframe(
        flagged,
        hide_index=True,
        width="stretch",
        on_select="rerun",
        selection_mode="single-row",
        key=f"flagged-{beat}-{selected}",
        selection_default={"selection": {"rows": rows[:1]}},
        placeholder="",
        column_config={**components.COLUMN_LABELS, "flag_reason": st.column_config.TextColumn("Why", width="large")},
    )
    chosen = event.selection.rows
    if chosen and flagged.at[chosen[0], S.BLOCK_ID] != selected:
        row = flagged.loc[chosen[0]]
        st.session_state.update(f_block=row[S.BLOCK_ID], f_beat=row[S.BEAT_ID])
        st.rerun()

if access.may_see_officers(user):  # GPS data quality: supervisors only
    gps_hours, gps_days = access.gps_quality_for(engine, user, blocks, window=filters.window, settings=settings)
    if int(gps_hours["gps_hours"].sum()) or len(gps_days):
        with st.expander("GPS data quality"):
            components.gps_quality(gps_hours, gps_days, silent_minutes=settings.silent_minutes)

if not access.may_export(user):
    st.stop()  # exports are for supervisors; nothing follows but the export section
with st.expander("Export"):
    name = "city" if beat == CITY else f"beat-{beat}"
    table = data.with_street_names(with_not_analysed(shown.drop(columns=["officers"]), left_blocks), street_names)

    who = auth.at_click(engine, settings)  # the user as they are at the click: demoted or signed out gets nothing

    def audited(build: Callable[[], str], file_name: str, what: str, rows: int | None = None) -> Callable[[], str]:
        """The download's callable: checks the role and records the export when the file is made."""
        return lambda: access.export(
            engine, who(), build, file_name=file_name, rows=len(table) if rows is None else rows, what=what
        )

    st.download_button(
        "Block table (CSV)",
        audited(lambda: csv_text(table), f"coverage-{name}.csv", "block table"),
        file_name=f"coverage-{name}.csv",
        mime="text/csv",
        on_click="ignore",
    )

    def geojson() -> str:
        from beatmap import store

        geometry = store.read_blocks(engine, beat_id=None if beat == CITY else beat)[[S.BLOCK_ID, "geometry"]]
        return geojson_text(geometry.merge(table, on=S.BLOCK_ID))

    st.download_button(
        "Block table (GeoJSON)",
        audited(geojson, f"coverage-{name}.geojson", "block table"),
        file_name=f"coverage-{name}.geojson",
        mime="application/geo+json",
        on_click="ignore",
    )

    st.download_button(
        "Neglected areas (CSV)",
        audited(lambda: csv_text(areas), f"areas-{name}.csv", "neglected areas", len(areas)),
        file_name=f"areas-{name}.csv",
        mime="text/csv",
        on_click="ignore",
    )
    st.download_button(
        "Neglected areas (GeoJSON)",
        audited(lambda: geojson_text(areas), f"areas-{name}.geojson", "neglected areas", len(areas)),
        file_name=f"areas-{name}.geojson",
        mime="application/geo+json",
        on_click="ignore",
    )

    def map_page() -> str:
        m = base_map(data.bounds(shapes), tiles="none")
        for layer in map_layers():  # new layers: the drawn ones were renamed for the dashboard's map
            layer.add_to(m)
        return standalone_html(m, vendor_dir=VENDOR)

    st.download_button(
        "Map (HTML, works offline)",
        audited(map_page, f"map-{name}.html", "map"),
        file_name=f"map-{name}.html",
        mime="text/html",
        on_click="ignore",
    )
    if beat != CITY:
        st.download_button(
            "One-page beat summary (print-ready HTML)",
            audited(
                lambda: beat_summary_html(
                    beat,
                    filters.describe(),
                    figures,
                    flagged,
                    map_page(),
                    note=NOT_ANALYSED_NOTE if beat in left_beats else None,
                ),
                f"summary-{name}.html",
                "beat summary",
            ),
            file_name=f"summary-{name}.html",
            mime="text/html",
            on_click="ignore",
            help="Open it in a browser and print it for roll call or a community meeting.",
        )
