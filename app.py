"""beatmap dashboard: `streamlit run app.py` (the store is $BEATMAP_DB or data/beatmap.db).

With BEATMAP_PUBLIC_ONLY=1 the app serves only the public map, read from published snapshot files;
it never opens the store.
"""

import os

import streamlit as st

st.set_page_config(page_title="beatmap", page_icon="🗺️", layout="wide")

if os.environ.get("BEATMAP_PUBLIC_ONLY") == "1":
    pages = [st.Page("beatmap/ui/pages/public.py", title="Public map", default=True)]
else:
    pages = [
        st.Page("beatmap/ui/pages/coverage.py", title="Coverage", icon=":material/map:", default=True),
        st.Page("beatmap/ui/pages/heatmap.py", title="Heat map", icon=":material/local_fire_department:"),
        st.Page("beatmap/ui/pages/import_data.py", title="Import", icon=":material/upload_file:"),
    ]
st.navigation(pages).run()
