"""Import: beats and blocks, and activity files with a mapping, with a summary of every row."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from beatmap import access, store
from beatmap.errors import BeatmapError
from beatmap.imports import format_undo, list_imports
from beatmap.ingest import ImportFailedError
from beatmap.export import csv_text
from beatmap.ui import auth, data, importview
from beatmap.ui.safe import md_escape

st.title("Import")
engine, settings = data.get_engine(), data.get_settings()
user = auth.current_user()  # imports are for supervisors, and are audited under their name
GIS_TYPES = ["geojson", "json", "zip", "gpkg", "parquet", "shp"]


def saved(upload, folder: Path) -> Path:
    """Keep an upload as a file under its own (sanitised) name, for the loaders and their messages."""
    path = folder / Path(upload.name).name
    path.write_bytes(upload.getbuffer())
    return path


def progress_bar():
    bar = st.progress(0.0, text="Starting…")
    return lambda fraction, message: bar.progress(min(max(fraction, 0.0), 1.0), text=message)


st.subheader("1. Beats and blocks")
with st.form("areas"):
    beats_file = st.file_uploader("Beat polygons", type=GIS_TYPES,
                                  help="GeoJSON, zipped Shapefile, GeoPackage or GeoParquet.")
    beat_id = st.text_input("Beat id field", placeholder="beat_id", help="Leave empty for a field named beat_id.")
    crs = st.text_input("CRS, only if the file has none", placeholder="EPSG:3435")
    use_grid = st.radio("Blocks", ["Square grid", "My block layer"], horizontal=True)
    grid_m = st.number_input("Grid cell size (m)", min_value=25, max_value=2000, value=150, step=25)
    blocks_file = st.file_uploader("Block polygons (for 'My block layer')", type=GIS_TYPES)
    block_id = st.text_input("Block id field", placeholder="block_id")
    areas_go = st.form_submit_button("Load beats and blocks", type="primary")
if areas_go:
    if beats_file is None or (use_grid == "My block layer" and blocks_file is None):
        st.error("Choose the beat file (and the block file when using your own blocks).")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                summary = access.load_areas_as(
                    engine, user, saved(beats_file, Path(tmp)), settings=settings, beat_id_field=beat_id or None,
                    crs=crs or None, blocks_path=saved(blocks_file, Path(tmp)) if use_grid != "Square grid" else None,
                    block_id_field=block_id or None, grid_m=float(grid_m) if use_grid == "Square grid" else None,
                    progress=progress_bar())
            except BeatmapError as exc:
                st.error(md_escape(exc))
            else:
                st.success(f"Loaded {summary.beats:,} beats and {summary.blocks:,} blocks "
                           f"(analysis CRS {summary.crs}).")
                if not summary.notes.empty:
                    n = len(summary.notes)
                    st.warning(f"{n} feature{' needed' if n == 1 else 's needed'} attention:")
                    st.dataframe(summary.notes.rename(columns={
                        "layer": "Layer", "feature": "Feature", "id": "Id", "action": "What was done",
                        "detail": "Why"}), hide_index=True, width="stretch")

st.subheader("2. Activity")
with st.form("activity"):
    activity_file = st.file_uploader("Activity CSV", type=["csv", "txt"],
                                     help="Canonical columns occurred_at, lat, lon, kind; or any export with a "
                                          "mapping file (see examples/ in the project).")
    mapping_file = st.file_uploader("Mapping file (TOML), for a foreign export", type=["toml"])
    source = st.text_input("Feed name", placeholder="e.g. cad, foot-patrol-log",
                           help="Records with the same feed and source_id are one record.")
    activity_go = st.form_submit_button("Import activity", type="primary")
if activity_go:
    if activity_file is None:
        st.error("Choose the activity file.")
    elif not data.has_areas(engine):
        st.error("Load beats and blocks first (step 1), so every point can be given its block.")
    else:
        bar = st.progress(0.0, text="Starting…")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                summary = access.import_activity_as(
                    engine, user, saved(activity_file, Path(tmp)), settings=settings,
                    mapping_path=saved(mapping_file, Path(tmp)) if mapping_file else None,
                    source=source or None, file_name=Path(activity_file.name).name,
                    progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m))
            except ImportFailedError as exc:
                bar.empty()
                st.error(f"Nothing was imported from {md_escape(exc.summary.file)}: "
                         + ("every row was rejected." if exc.summary.rejected == exc.summary.rows else
                            "every located row falls outside every beat. Check that the file is of this city's "
                            "area and that latitude and longitude are not swapped."))
                importview.counts(exc.summary)
                importview.reasons(exc.summary)
            except BeatmapError as exc:
                bar.empty()
                st.error(md_escape(exc))
            else:
                bar.empty()
                st.success(f"Imported {summary.imported:,} records from {md_escape(summary.file)} "
                           f"(import {summary.batch_id}).")
                importview.counts(summary)
                importview.warnings(summary)
                if summary.rejected:
                    importview.reasons(summary)
                    rejects = store.read_rejects(engine, batch_id=summary.batch_id)
                    name = f"rejects-{Path(activity_file.name).stem}.csv"
                    st.download_button(
                        f"Download the rejected rows of this import ({summary.rejected:,}, CSV)",
                        lambda: access.export(engine, user, lambda: csv_text(rejects), file_name=name,
                                              rows=len(rejects), what="rejected rows"),
                        file_name=name, mime="text/csv", on_click="ignore")

st.subheader("3. Imports so far")
imports = list_imports(engine, limit=200)
if imports.empty:
    st.caption("No activity was imported yet.")
else:
    st.dataframe(imports.drop(columns=["what"]), hide_index=True, width="stretch", column_config={
        "batch_id": "Import", "source": "Feed", "file_name": "File", "imported_at": "When (UTC)",
        "imported_by": "Who", "rows": "Rows", "imported": "Imported", "duplicates": "Duplicates",
        "rejected": "Rejected", "outside": "Outside the beats", "records_now": "Records now", "status": "Status"})
    live = imports[imports["status"] == "live"]
    if not live.empty:
        with st.form("undo"):
            labels = {int(r.batch_id): f"{r.batch_id}: {r.file_name} ({r.source}, {r.records_now:,} records)"
                      for r in live.itertuples(index=False)}
            batch = st.selectbox("Undo an import", list(labels), format_func=labels.get,
                                 help="Removes exactly the records this import added. Records a later import "
                                      "skipped as duplicates stay, and belong to that import from then on.")
            sure = st.checkbox("Yes, remove this import's records")
            undo_go = st.form_submit_button("Undo import")
        if undo_go:
            if not sure:
                st.error("Tick the box to confirm: undoing removes the import's records from every view.")
            else:
                try:
                    undone = access.undo_import_as(engine, user, int(batch))
                except BeatmapError as exc:
                    st.error(md_escape(exc))
                else:
                    text = format_undo(undone)
                    st.success(md_escape(text[:1].upper() + text[1:]))
