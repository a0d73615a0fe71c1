"""Log a visit from a phone: tap the block, say what it was, save; see this week's visits and the flagged blocks."""

from __future__ import annotations

import uuid
from datetime import datetime

import streamlit as st

from beatmap import basemap
from beatmap import schema as S
from beatmap.access import delete_visit_as, edit_visit_as, log_visit_as
from beatmap.errors import BeatmapError
from beatmap.render import FLAG_WORDS, route_map
from beatmap.ui import auth, data, mapview, officer
from beatmap.ui.safe import md_escape
from beatmap.visits import block_at, own_visits, week_start

KINDS = {"Community visit": S.COMMUNITY_VISIT, "Foot patrol": S.FOOT_PATROL}
TOKEN, POINT, LAST_TAP, SAVED = "visit-token", "visit-point", "visit-last-tap", "visit-saved"

st.title("Log a visit")
user = auth.require_page("log_visit")  # visits are logged on the user's own beats, under their officer id
assert user is not None  # the page is for officers and supervisors: require_page stopped it for the public
engine, settings = data.get_engine(), data.get_settings()
if not data.has_areas(engine):
    st.info("No beats or blocks are loaded yet. A supervisor loads them on the **Import** page.")
    st.stop()
url, v = str(engine.url), data.version(engine)
officer_id = officer.officer_id(user)

beat = officer.choose_beat(engine, url, v, user)
outline, blocks = officer.beat_outline(engine, url, v, beat), officer.beat_coverage(engine, url, v, beat)
if beat in settings.excluded_beats:
    st.caption(
        f"Beat {md_escape(beat)} is left out of the analysis (grey): a visit is saved, but counts in no coverage "
        "figure."
    )
point = st.session_state.get(POINT)
tap = mapview.show_tap_map(
    basemap.add_streets(
        route_map(
            data.with_landmarks(blocks, data.block_landmarks(engine, settings)),
            outline,
            marker=point,
            tiles=settings.map_tiles,
        ),
        data.street_lines(engine, url, v, beat),
    ),
    key=f"visit-map-{beat}",
    height=380,
)
if tap is not None and tap != st.session_state.get(LAST_TAP):  # a new tap: a new visit to log
    st.session_state[LAST_TAP] = st.session_state[POINT] = point = tap
    # One random id per placed visit: a second tap on Save (or a resend) finds it already saved.
    st.session_state[TOKEN] = uuid.uuid4().hex

found = None
if point is None:
    st.info("Tap the block you visited.")
else:
    try:
        found = block_at(
            engine,
            lat=point[0],
            lon=point[1],
            settings=settings,
            beat_id=beat,
            blocks=officer.beat_blocks(engine, url, v, beat),
            index=officer.tap_index(engine, url, v),
            index_blocks=data.block_polygons(engine, url, v),
        )
    except BeatmapError as exc:
        st.error(md_escape(exc))
    if found is None:
        st.warning(
            f"That place is outside beat {md_escape(beat)}; tap inside the block you visited, or choose its beat."
        )
    else:
        moved = f" (moved {found.distance_m:.0f} m from the street onto it)" if found.snapped else ""
        st.success(f"Block **{md_escape(found.block_id)}**, beat {md_escape(found.beat_id)}{moved}")

now = datetime.now(settings.zone)
with st.form("visit"):
    kind = st.radio("What", list(KINDS), horizontal=True)
    subtype = st.selectbox("Type", ["—", *settings.visit_subtypes])
    day, clock = st.columns(2)
    when_day = day.date_input("Day", value=now.date(), max_value=now.date())
    when_time = clock.time_input("Time", value=now.time().replace(second=0, microsecond=0), step=300)
    duration = st.number_input("Minutes on the block (optional)", min_value=0, max_value=1440, value=0, step=5)
    note = st.text_area("Note (optional)", max_chars=2000)
    saved = st.form_submit_button("Save", type="primary", disabled=found is None, width="stretch")
if saved and found is not None and point is not None:  # a block is found only for a placed point
    try:
        event_id = log_visit_as(
            engine,
            user,
            beat_id=beat,
            lat=point[0],
            lon=point[1],
            kind=KINDS[kind],
            subtype=None if subtype == "—" else subtype,
            occurred_at=datetime.combine(when_day, when_time, tzinfo=settings.zone),
            duration_min=float(duration) if duration else None,
            note=note or None,
            client_token=st.session_state[TOKEN],
            settings=settings,
        )
    except BeatmapError as exc:
        st.error(md_escape(exc))
    else:
        st.session_state.pop(POINT, None)  # the next visit starts with a new tap
        st.session_state[SAVED] = f"Saved visit {event_id} on block {md_escape(found.block_id)}."
        st.rerun()  # the map above was drawn before the save: draw it again with the new visit
if SAVED in st.session_state:
    st.success(st.session_state.pop(SAVED))

st.subheader("My visits this week")
mine = own_visits(engine, officer_id, week_start(now, settings=settings))
if mine.empty:
    st.caption("None yet this week.")
else:
    mine["occurred_at"] = mine["occurred_at"].dt.tz_convert(settings.timezone).dt.strftime("%a %H:%M")
    shown = mine.assign(
        kind=mine["kind"].map({v: k for k, v in KINDS.items()}).fillna(mine["kind"]),
        subtype=mine["subtype"].fillna("—"),
    )
    st.dataframe(
        shown[["event_id", "occurred_at", "kind", "subtype", S.BLOCK_ID, "duration_min"]].rename(
            columns={
                "event_id": "Visit",
                "occurred_at": "When",
                "kind": "What",
                "subtype": "Type",
                S.BLOCK_ID: "Block",
                "duration_min": "Minutes",
            }
        ),
        hide_index=True,
        width="stretch",
    )
    logged = mine[mine["source"] == "app"]
    if not logged.empty:
        with st.expander("Correct or delete a visit"):
            labels = {
                int(r.event_id): f"{r.event_id}: {r.occurred_at}, {r.kind}, block {r.block_id}"
                for r in logged.itertuples()
            }
            chosen = st.selectbox("Visit", list(labels), format_func=labels.__getitem__)
            assert chosen is not None  # the list of visits is not empty
            row = logged.set_index("event_id").loc[chosen]
            types = ["—", *settings.visit_subtypes]
            fixed_type = st.selectbox(
                "Type", types, key="fix-type", index=types.index(row["subtype"]) if row["subtype"] in types else 0
            )
            fixed_note = st.text_input("Note", value=row["notes"] or "", key="fix-note", max_chars=2000)
            change, remove = st.columns(2)
            try:
                if change.button("Save changes"):
                    edit_visit_as(
                        engine,
                        user,
                        chosen,
                        settings=settings,
                        subtype=None if fixed_type == "—" else fixed_type,
                        note=fixed_note or None,
                    )
                    st.rerun()
                if remove.button("Delete this visit"):
                    delete_visit_as(engine, user, chosen, settings=settings)
                    st.rerun()
            except BeatmapError as exc:
                st.error(md_escape(exc))

st.subheader(f"Flagged blocks in beat {md_escape(beat)}")
flagged = data.as_table(blocks[blocks["flag"].notna()])
if flagged.empty:
    st.caption("No block is flagged.")
else:
    names = data.street_names(engine, url, v)
    flagged = flagged.assign(
        flag=flagged["flag"].map(lambda f: FLAG_WORDS.get(f, f)),
        where=flagged[S.BLOCK_ID].map(names).fillna("") if len(names) else "",
    )
    st.dataframe(
        flagged[[S.BLOCK_ID, "where", "flag", "flag_reason"]].rename(
            columns={S.BLOCK_ID: "Block", "where": "Where", "flag": "Flag", "flag_reason": "Why"}
        ),
        hide_index=True,
        width="stretch",
    )
