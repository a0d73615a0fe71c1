"""beatmap dashboard: `streamlit run app.py` (the store is $BEATMAP_DB or data/beatmap.db).

Who is signed in decides which pages exist (:func:`beatmap.access.pages_for`):
a page the user may not open is not in the navigation, so its URL leads
nowhere either.  Not signed in, the only page is the public map.

With BEATMAP_PUBLIC_ONLY=1 the app serves only the public map, read from published snapshot files;
it never opens the store.
"""

import os

import streamlit as st

st.set_page_config(page_title="beatmap", page_icon="🗺️", layout="wide")

PUBLIC_PAGE = "beatmap/ui/pages/public.py"

if os.environ.get("BEATMAP_PUBLIC_ONLY") == "1":
    st.navigation([st.Page(PUBLIC_PAGE, title="Public map", default=True)]).run()
    st.stop()

from beatmap.access import pages_for  # noqa: E402  (after the public-only switch: that mode needs neither)
from beatmap.errors import StoreError  # noqa: E402
from beatmap.ui import auth, data  # noqa: E402

# Page key (as in beatmap.access.PAGES) -> file, title, icon.
PAGES = {
    "coverage": ("beatmap/ui/pages/coverage.py", "Coverage", ":material/map:"),
    "route": ("beatmap/ui/pages/route.py", "Walking route", ":material/directions_walk:"),
    "log_visit": ("beatmap/ui/pages/log_visit.py", "Log a visit", ":material/edit_note:"),
    "heatmap": ("beatmap/ui/pages/heatmap.py", "Heat map", ":material/local_fire_department:"),
    "import": ("beatmap/ui/pages/import_data.py", "Import", ":material/upload_file:"),
    "publish": ("beatmap/ui/pages/publish.py", "Publish", ":material/campaign:"),
    "users": ("beatmap/ui/pages/admin_users.py", "Users", ":material/group:"),
    "audit": ("beatmap/ui/pages/admin_audit.py", "Audit log", ":material/policy:"),
    "settings": ("beatmap/ui/pages/admin_settings.py", "Settings", ":material/settings:"),
    "public": (PUBLIC_PAGE, "Public map", ":material/public:"),
}
try:
    engine = data.get_engine()
except StoreError as exc:  # e.g. a store whose schema is behind: the message names the command to run
    st.error(f"The dashboard cannot open its store: {exc}")
    st.stop()
settings = data.get_settings()
user = auth.resolve_user(engine, settings)
allowed = [PAGES[name] for name in pages_for(user)]
pages = [st.Page(path, title=title, icon=icon, default=i == 0) for i, (path, title, icon) in enumerate(allowed)]
navigation = st.navigation(pages)
if auth.take_landing():  # just signed in or out: open the first page of the new set
    st.switch_page(pages[0])
auth.sidebar(engine, settings, user)
if user is None:  # on a phone the sidebar starts closed: say where the sign-in is
    st.caption("Police staff: sign in from the side menu (**»** at the top left).")
navigation.run()
