"""Audit log: who did what and when, filtered and downloaded (administrators); read-only."""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from beatmap import access
from beatmap.errors import BeatmapError
from beatmap.ui import auth, data
from beatmap.ui.safe import md_escape

#: Action families offered in the filter (an action matches its family and sub-actions).
ACTIONS = {
    "": "Everything",
    "sign_in": "Sign-ins, failures and lockouts",
    "sign_out": "Sign-outs",
    "user": "Account changes",
    "import": "Imports (and refused imports)",
    "export": "Exports",
    "route": "Walking route downloads",
    "audit": "Audit log downloads",
    "publish": "Publications",
    "visit": "Visit corrections and deletions",
}
SHOWN = 5000

st.title("Audit log")
user = auth.require_page("audit")
engine, settings = data.get_engine(), data.get_settings()
st.caption(
    "Every sign-in, account change, import, export, publication and visit correction, newest first. "
    "Entries are never changed or removed: the store itself refuses it."
)

left, middle, right = st.columns([2, 2, 3])
today = date.today()
days = left.date_input("Days", (today - timedelta(days=30), today), key="audit_days")
actor = middle.text_input("Who", key="audit_actor", placeholder="an account name, or cli:<user>")
action = right.selectbox("What", list(ACTIONS), format_func=ACTIONS.__getitem__, key="audit_action")
if not isinstance(days, tuple | list) or len(days) != 2:
    st.info("Pick the last day of the range too.")
    st.stop()
try:
    entries = access.read_audit_for(
        engine,
        user,
        start=days[0],
        end=days[1],
        actor=actor.strip() or None,
        action=action or None,
        timezone=settings.timezone,
        limit=SHOWN,
    )
except BeatmapError as exc:
    st.error(md_escape(exc))
    st.stop()

st.caption(
    f"{len(entries):,} entries"
    + (f" (the newest {SHOWN:,}; narrow the filters for older ones)" if len(entries) == SHOWN else "")
    + f"; times in {settings.timezone}."
)
st.dataframe(
    entries,
    hide_index=True,
    width="stretch",
    column_config={
        "audit_id": st.column_config.NumberColumn("#", format="%d"),
        "at": st.column_config.DatetimeColumn("When", format="YYYY-MM-DD HH:mm:ss"),
        "details": st.column_config.TextColumn("Details", width="large"),
    },
)
file_name = f"audit-{days[0]}-{days[1]}.csv"
who = auth.at_click(engine, settings)  # checked again when clicked
st.download_button(
    "Download these entries (CSV)",
    lambda: access.export_audit_log(engine, who(), entries, file_name=file_name),
    file_name=file_name,
    mime="text/csv",
    on_click="ignore",
    disabled=entries.empty,
)
