"""beatmap dashboard: `streamlit run app.py` (the store is $BEATMAP_DB or data/beatmap.db)."""

import streamlit as st

st.set_page_config(page_title="beatmap", page_icon="🗺️", layout="wide")
page = st.navigation([st.Page("beatmap/ui/pages/coverage.py", title="Coverage", default=True)])
page.run()
