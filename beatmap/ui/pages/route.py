"""Walking route: the beat's neglected blocks in the time an officer has, on the streets, as GPX or a card."""

from __future__ import annotations

import streamlit as st

from beatmap import basemap
from beatmap.access import plan_route_as, route_file
from beatmap.clock import local_today
from beatmap.errors import BeatmapError
from beatmap.neglect import neglected_areas
from beatmap.render import route_map
from beatmap.routing.landmarks import landmarks_near
from beatmap.routing.output import route_card_html, route_to_gpx
from beatmap.routing.route import Route, default_seed
from beatmap.streets import map_streets_from_store
from beatmap.ui import auth, data, mapview, officer
from beatmap.ui.safe import md_escape

TAPPED, CENTRE = "Where I tap on the map", "Beat centre"

st.title("Walking route")
user = auth.require_page("route")  # routes are planned on the user's own beats only
engine, settings = data.get_engine(), data.get_settings()
if not data.has_areas(engine):
    st.info("No beats or blocks are loaded yet. A supervisor loads them on the **Import** page.")
    st.stop()
url, v = str(engine.url), data.version(engine)

beat = officer.choose_beat(engine, url, v, user)
if beat in settings.excluded_beats:
    st.info(
        f"Beat {md_escape(beat)} is left out of the analysis: its blocks are not analysed or flagged, so no route "
        "is planned there. Choose another beat."
    )
    st.stop()
outline, blocks = officer.beat_outline(engine, url, v, beat), officer.beat_coverage(engine, url, v, beat)
areas = neglected_areas(blocks, streets=data.streets(engine, url, v))
names = dict(zip(areas["area_id"], areas["name"], strict=True))
area = st.selectbox(
    "Cover",
    [None, *names],
    format_func=lambda a: "The whole beat" if a is None else f"{a}: {names[a]}",
    help="A neglected area: adjacent flagged blocks, listed on the Coverage page.",
)
left, middle, right = st.columns(3)
minutes = left.number_input("Minutes available", min_value=10, max_value=480, value=60, step=5)
dwell = middle.number_input(
    "Minutes on each block",
    min_value=1,
    max_value=60,
    value=int(settings.dwell_min),
    help="10 to 15 minutes of presence per stop works best (Koper).",
)
seed = right.number_input(
    "Seed",
    min_value=0,
    value=default_seed(local_today(settings.timezone)),
    step=1,
    help="Chooses among equally good routes; today's date by default, so each day differs.",
)
places = landmarks_near(outline, settings)  # the station and other named places near this beat (settings)
where = st.radio(
    "Start", [*places, CENTRE, TAPPED], horizontal=True, help="The walk ends where it starts, where the car is parked."
)
tapped = st.session_state.get(f"route-start-{beat}")
if where in places:
    start = places[where]
else:
    start = officer.beat_centre(outline) if where == CENTRE or tapped is None else tapped
if where == TAPPED and tapped is None:
    st.caption("Tap the map where you start; the beat centre is used until you do.")

key = f"route-{beat}" + (f"-{area}" if area else "")
if st.button("Plan the route", type="primary"):
    try:
        with st.spinner("Planning…"):
            st.session_state[key] = plan_route_as(
                engine,
                user,
                beat_id=beat,
                start=start,
                minutes=float(minutes),
                settings=settings,
                dwell_min=float(dwell),
                seed=int(seed),
                area_id=area,
            )
    except BeatmapError as exc:
        st.session_state.pop(key, None)
        st.error(md_escape(exc))
route: Route | None = st.session_state.get(key)

streets = data.street_lines(engine, url, v, beat)
stop_names = data.street_names(engine, url, v).dropna().to_dict()
walk_map = route_map(
    data.with_landmarks(blocks, data.block_landmarks(engine, settings)),
    outline,
    route,
    marker=start,
    tiles=settings.map_tiles,
)
tap = mapview.show_tap_map(basemap.add_streets(walk_map, streets), key=f"map-{key}")
if tap is not None and tap != tapped:
    st.session_state[f"route-start-{beat}"] = tap
    if where == TAPPED:
        st.rerun()

if route is not None:
    planned = route  # a Route, for the files made at a click below
    if route.straight_line:
        st.warning("No street network is loaded: these are straight-line estimates, and real walks are longer.")
    st.subheader(
        f"{len(route.stops)} stops, {route.distance_m / 1000:.1f} km, about {route.total_min:.0f} of "
        f"{route.budget_min:g} minutes"
    )
    stops = route.stops_frame()
    stops.insert(1, "where", [stop_names.get(block, "") for block in stops["block_id"]])
    st.dataframe(
        stops[["number", "where", "block_id", "arrival_min", "stay_min", "reason"]].rename(
            columns={
                "number": "#",
                "where": "Where",
                "block_id": "Block",
                "arrival_min": "Arrive (min)",
                "stay_min": "Stay (min)",
                "reason": "Why this block",
            }
        ),
        hide_index=True,
        width="stretch",
    )
    for note in route.notes:
        st.caption(note)
    a, b = st.columns(2)
    who = auth.at_click(engine, settings)  # the files are made, checked and audited when clicked
    gpx_name, card_name = f"route-{beat}-{route.seed}.gpx", f"route-{beat}-{route.seed}.html"

    def card() -> str:
        around = map_streets_from_store(engine, beat_id=beat, margin_m=400.0)
        return route_card_html(planned, stop_names=stop_names, landmarks=settings.landmarks, streets=around)

    a.download_button(
        "Download GPX",
        lambda: route_file(
            engine,
            who(),
            lambda: route_to_gpx(planned, stop_names=stop_names),
            beat_id=beat,
            file_name=gpx_name,
            what="GPX",
        ),
        file_name=gpx_name,
        mime="application/gpx+xml",
        on_click="ignore",
    )
    b.download_button(
        "Printable card",
        lambda: route_file(engine, who(), card, beat_id=beat, file_name=card_name, what="card"),
        file_name=card_name,
        mime="text/html",
        on_click="ignore",
    )
