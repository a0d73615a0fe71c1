"""Settings: what the dashboard runs with, read-only (administrators)."""

from __future__ import annotations

import dataclasses
import os

import pandas as pd
import streamlit as st

from beatmap.settings import DEFAULT_SETTINGS_PATH
from beatmap.ui import auth, data

st.title("Settings")
auth.require_page("settings")
engine, settings = data.get_engine(), data.get_settings()
source = os.environ.get("BEATMAP_SETTINGS") or str(DEFAULT_SETTINGS_PATH)
st.caption(
    "Read-only here: change the settings file on the server and restart the dashboard. "
    "Accounts and sign-in rules are in its [accounts] section."
)
st.text(
    f"Settings file: {source}\nStore: {engine.url.render_as_string(hide_password=True)}\n"
    f"Single sign-on: {'configured' if auth.sso_configured() else 'not configured'}"
)
rows = [{"setting": f.name, "value": str(getattr(settings, f.name))} for f in dataclasses.fields(settings)]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
