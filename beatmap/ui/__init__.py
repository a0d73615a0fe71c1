"""The Streamlit dashboard: the only part of beatmap that imports streamlit."""
