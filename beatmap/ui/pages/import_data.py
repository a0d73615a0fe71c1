"""Import: beats and blocks, then activity files read through a mapping built here step by step, then the imports
so far (with undo).  The guessing, checking and mapping logic is in :mod:`beatmap.mapping`; this page only asks
and shows."""

from __future__ import annotations

import tempfile
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import streamlit as st

from beatmap import access
from beatmap import schema as S
from beatmap.errors import BeatmapError
from beatmap.exclusions import parse_beat_list
from beatmap.export import csv_text
from beatmap.imports import format_undo
from beatmap.ingest import ImportFailedError
from beatmap.mapping import (
    build_mapping,
    check_time_format,
    guess,
    mapping_toml,
    parse_points,
    preview,
    read_head,
)
from beatmap.presence import format_ping_import
from beatmap.render import points_map
from beatmap.ui import auth, data, importview, mapview
from beatmap.ui.safe import md_escape
from beatmap.uploads import for_page, in_wizard_words, layer_upload

st.title("Import")
engine, settings = data.get_engine(), data.get_settings()
user = auth.current_user()  # imports are for supervisors, and are audited under their name
GIS_TYPES = ["geojson", "json", "zip", "gpkg", "parquet", "shp", "shx", "dbf", "prj", "cpg"]
NONE = "(none)"


def save_all(uploads: Sequence[Any], folder: Path) -> dict[str, str]:
    """Keep uploads as files under their own (sanitised) names; return temporary path -> upload name."""
    names = {}
    for upload in uploads:
        path = folder / Path(upload.name).name
        path.write_bytes(upload.getbuffer())
        names[str(path)] = upload.name
    return names


def progress_bar() -> tuple[Any, Callable[[float, str], None]]:
    """A progress bar and the callback that moves it; ``bar.empty()`` removes it when the work ends or fails."""
    bar = st.progress(0.0, text="Starting…")

    def moved(fraction: float, message: str) -> None:
        bar.progress(min(max(fraction, 0.0), 1.0), text=message)

    return bar, moved


if access.may_change_city(user):
    st.subheader("1. Beats and blocks")
    with st.form("areas"):
        beat_files = st.file_uploader(
            "Beat polygons",
            type=GIS_TYPES,
            accept_multiple_files=True,
            help="GeoJSON, GeoPackage, GeoParquet, a zipped shapefile, or a shapefile's .shp "
            "with its .shx, .dbf and .prj selected together.",
        )
        beat_id = st.text_input("Beat id field", placeholder="beat_id", help="Leave empty for a field named beat_id.")
        crs = st.text_input("CRS, only if the file has none", placeholder="EPSG:3435")
        use_grid = st.radio("Blocks", ["Square grid", "My block layer"], horizontal=True)
        grid_m = st.number_input("Grid cell size (m)", min_value=25, max_value=2000, value=150, step=25)
        block_files = st.file_uploader(
            "Block polygons (for 'My block layer')", type=GIS_TYPES, accept_multiple_files=True
        )
        block_id = st.text_input("Block id field", placeholder="block_id")
        left_out = st.text_input(
            "Beats to leave out of the analysis",
            placeholder="e.g. H1, H3, 99",
            help="Harbour beats or a catch-all beat nobody patrols on foot: their blocks are shown "
            "as not analysed, never flagged, and count in no coverage figure.",
        )
        areas_go = st.form_submit_button("Load beats and blocks", type="primary")
    if areas_go:
        beats_name, beats_problem = layer_upload([f.name for f in beat_files or []])
        blocks_name, blocks_problem = (
            layer_upload([f.name for f in block_files or []]) if use_grid == "My block layer" else (None, None)
        )
        if beats_problem or blocks_problem:
            st.error(f"Beat file: {beats_problem}." if beats_problem else f"Block file: {blocks_problem}.")
        else:
            bar, moved = progress_bar()
            with tempfile.TemporaryDirectory() as tmp:
                beats_dir, blocks_dir = Path(tmp) / "beats", Path(tmp) / "blocks"
                beats_dir.mkdir()
                blocks_dir.mkdir()
                names = {**save_all(beat_files, beats_dir), **save_all(block_files or [], blocks_dir)}
                try:
                    loaded = access.load_areas_as(
                        engine,
                        user,
                        beats_dir / Path(str(beats_name)).name,
                        settings=settings,
                        beat_id_field=beat_id or None,
                        crs=crs or None,
                        blocks_path=blocks_dir / Path(blocks_name).name if blocks_name is not None else None,
                        block_id_field=block_id or None,
                        grid_m=float(grid_m) if use_grid == "Square grid" else None,
                        progress=moved,
                        exclude_beats=parse_beat_list(left_out),
                    )
                except BeatmapError as exc:
                    bar.empty()
                    st.error(md_escape(for_page(str(exc), names)))
                else:
                    bar.empty()
                    st.success(
                        f"Loaded {loaded.beats:,} beats and {loaded.blocks:,} blocks (analysis CRS {loaded.crs})."
                    )
                    if loaded.excluded_beats:
                        st.info(
                            f"Not analysed: beats {md_escape(', '.join(loaded.excluded_beats))} "
                            f"({loaded.excluded_blocks:,} blocks)."
                        )
                    if not loaded.notes.empty:
                        n = len(loaded.notes)
                        st.warning(f"{n} feature{' needed' if n == 1 else 's needed'} attention:")
                        notes = loaded.notes.assign(detail=loaded.notes["detail"].map(lambda t: for_page(t, names)))
                        st.dataframe(
                            notes.rename(
                                columns={
                                    "layer": "Layer",
                                    "feature": "Feature",
                                    "id": "Id",
                                    "action": "What was done",
                                    "detail": "Why",
                                }
                            ),
                            hide_index=True,
                            width="stretch",
                        )
else:
    st.caption(
        "Beats and blocks are loaded by a supervisor of all beats, as they change every beat. You import "
        "activity for your beats; rows on other beats are rejected with the reason."
    )

st.subheader("2. Activity" if access.may_change_city(user) else "Activity")
activity_file = st.file_uploader(
    "Activity CSV",
    type=["csv", "txt"],
    key="activity_upload",
    help="Any export of calls, crimes, arrests or patrol logs, as CSV. After you choose "
    "it, say here which column holds what.",
)
mapping: dict | None = None
say: Callable[[str], str] = str  # library messages about a mapping built here name the wizard's fields
if activity_file is not None:
    try:
        head = read_head(activity_file.getvalue(), name=activity_file.name)
    except BeatmapError as exc:
        st.error(md_escape(exc))
        st.stop()
    st.caption(f"The first rows of {md_escape(activity_file.name)} ({len(head.columns)} columns):")
    st.dataframe(head.head(5), width="stretch")
    if head.attrs.get("encoding") == "cp1252":
        st.warning(
            "These rows are not UTF-8: shown as Windows-1252. Check accented names; the import reports how "
            "it read the whole file."
        )
    how = st.radio(
        "How to read it",
        ["Build a mapping here", "Use a saved mapping", "It has beatmap's own columns"],
        horizontal=True,
        key="map_how",
        help="beatmap's own columns are occurred_at, lat, lon and kind.",
    )
    columns = list(head.columns)
    if how == "Use a saved mapping":
        saved_here = st.session_state.get("built_mapping")
        upload = st.file_uploader("Mapping (TOML) saved from this page or written by hand", type=["toml"])
        if upload is not None:
            try:
                mapping = tomllib.loads(upload.getvalue().decode("utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                st.error(f"{md_escape(upload.name)} is not a TOML mapping: {md_escape(exc)}")
        elif saved_here:
            st.caption("Using the mapping built on this page earlier in this session.")
            mapping = saved_here
    elif how == "Build a mapping here":
        say = in_wizard_words
        g = guess(head)
        st.caption("Guessed from the first rows: " + md_escape("; ".join(g.notes)) + ". Change anything below.")

        def pick(
            label: str, guessed: str | None, key: str, *, optional: bool = False, help: str | None = None
        ) -> str | None:
            options = [NONE, *columns] if optional else columns
            index = options.index(guessed) if guessed in options else 0
            value = st.selectbox(label, options, index=index, key=key, help=help)
            return None if value == NONE else value

        left, right = st.columns(2)
        with left:
            feed = st.text_input(
                "Feed name",
                value=Path(activity_file.name).stem,
                key="map_feed",
                help="Records of one feed with the same id are one record.",
            )
            occurred = pick("Time column", g.columns.get(S.OCCURRED_AT), "map_time")
            fmt = st.text_input(
                "Time format",
                value=g.time_format or "",
                key="map_fmt",
                placeholder="empty: ISO 8601, like 2026-03-01T14:30",
                help="Codes as in %m/%d/%Y %I:%M:%S %p (month/day/year, 12-hour clock). "
                "Leave empty for ISO 8601 times.",
            )
            check = check_time_format(head[occurred], fmt or None)
            if check.ok:
                st.success(f"The format reads all {check.total:,} times of the first rows.")
            else:
                st.warning(
                    f"The format reads {check.read:,} of {check.total:,} times of the first rows; not: "
                    + md_escape(", ".join(check.bad_examples))
                )
        with right:
            where = st.radio(
                "Where it happened",
                ["Latitude/longitude", "Projected x/y"],
                horizontal=True,
                index=1 if g.coordinates == "xy" else 0,
                key="map_where",
            )
            lat = lon = x = y = xy_crs = None
            if where == "Latitude/longitude":
                lat = pick("Latitude column", g.columns.get(S.LAT), "map_lat")
                lon = pick("Longitude column", g.columns.get(S.LON), "map_lon")
            else:
                x = pick("x column", g.x, "map_x")
                y = pick("y column", g.y, "map_y")
                xy_crs = st.text_input(
                    "CRS of x/y",
                    key="map_crs",
                    placeholder="EPSG:3435",
                    help="The department's projection, e.g. EPSG:3435 (Illinois East, US feet).",
                )
            stand_ins = st.text_input(
                "Placeholder points to reject (longitude,latitude; …)"
                if where == "Latitude/longitude"
                else "Placeholder points to reject (x,y; x,y)",
                key="map_reject",
                placeholder="e.g. -90.0209,30.00973" if where == "Latitude/longitude" else "0,0; 37369000,3513814",
                help="A system's stand-in for 'no location', in the columns' own units (0,0 is always rejected).",
            )
            piles = st.checkbox(
                "Reject points that hold many rows (a geocoder's city centre, a station address)", key="map_piles"
            )
        with st.expander("More columns: id, type, reported beat, officer, unit"):
            optional = {
                name: pick(label, g.columns.get(name), f"map_{name}", optional=True)
                for name, label in (
                    (S.SOURCE_ID, "Record id"),
                    (S.SUBTYPE, "Type or offense"),
                    (S.REPORTED_BEAT, "Reported beat"),
                    (S.OFFICER_ID, "Officer"),
                    (S.UNIT_ID, "Unit"),
                    (S.SELF_INITIATED, "Self-initiated (Y/N)"),
                )
            }
            zero_pad = st.number_input(
                "Pad reported beats with zeros to this many characters (0: as they are)",
                min_value=0,
                max_value=8,
                value=0,
                key="map_pad",
            )
        kind_how = st.radio(
            "What kind of presence each row is",
            ["One kind for every row", "A column decides"],
            horizontal=True,
            index=1 if g.kind_column else 0,
            key="map_kind_how",
            help="Kinds: foot_patrol, community_visit, enforcement, other. A crime, arrest or "
            "call-for-service export is enforcement.",
        )
        kind_column = kind_default = None
        kind_values: dict[str, str] = {}
        if kind_how == "One kind for every row":
            kind_default = st.selectbox("Kind", list(S.KINDS), index=S.KINDS.index(S.ENFORCEMENT), key="map_kind")
        else:
            kind_column = pick("Column", g.kind_column, "map_kind_col")
            top = head[kind_column].str.strip().value_counts().head(30)
            st.caption("The kind of each value of the first rows (blank: the default below):")
            table = st.data_editor(
                pd.DataFrame(
                    {
                        "value": list(top.index),
                        "rows": list(top.values),
                        "kind": [v.lower() if v.lower() in S.KINDS else "" for v in top.index],
                    }
                ),
                column_config={"kind": st.column_config.SelectboxColumn("Kind", options=["", *S.KINDS])},
                disabled=["value", "rows"],
                hide_index=True,
                key="map_kind_table",
            )
            kind_values = {str(v): str(k) for v, k in zip(table["value"], table["kind"], strict=True) if k}
            rest = st.selectbox(
                "Kind of every other value",
                [NONE, *S.KINDS],
                key="map_kind_rest",
                help="(none): rows with other values are rejected, with their value named.",
            )
            kind_default = None if rest == NONE else rest
        try:
            mapping = build_mapping(
                name=feed or None,
                occurred_at=str(occurred),
                time_format=fmt or None,
                lat=lat,
                lon=lon,
                x=x,
                y=y,
                crs=xy_crs or None,
                placeholders=parse_points(stand_ins),
                reject_pileups=piles,
                optional={k: v for k, v in optional.items() if v},
                kind_column=kind_column,
                kind_default=kind_default,
                kind_values=kind_values or None,
                zero_pad=int(zero_pad) or None,
            )
        except BeatmapError as exc:
            st.error(md_escape(for_page(str(exc), {})))
        else:
            st.session_state["built_mapping"] = mapping
            st.download_button(
                "Save this mapping (TOML) for the next import",
                mapping_toml(
                    mapping,
                    comment=f"Mapping for {activity_file.name}, built on beatmap's Import page.\n"
                    "Use it again on this page, or: beatmap import FILE --mapping THIS_FILE",
                ),
                file_name=f"{feed or 'mapping'}.toml",
                mime="application/toml",
                on_click="ignore",
            )
    if mapping is not None:
        try:
            seen = preview(head, mapping, timezone=settings.timezone)
        except BeatmapError as exc:
            st.error("This mapping cannot read the file yet: " + md_escape(for_page(str(exc), {})))
            mapping = None
        else:
            st.markdown(
                f"**Preview**: of the first {seen.rows:,} rows, {len(seen.points):,} give a point and "
                f"{len(seen.rejects):,} would be rejected."
            )
            for reason, count in seen.reasons.items():
                st.caption(f"{count:,} rows: {md_escape(say(reason))}")
            outlines = (
                data.beat_shapes(engine, str(engine.url), data.version(engine))
                if data.has_areas(engine)
                else gpd.GeoDataFrame(geometry=[], crs="EPSG:4326")
            )
            mapview.show_map(points_map(seen.points, outlines, tiles=settings.map_tiles), key="map-preview", height=380)
source = (
    None  # a mapping built here names its feed above: one feed box, not two
    if activity_file is not None and how == "Build a mapping here"
    else st.text_input(
        "Feed name for the import",
        placeholder="e.g. cad, foot-patrol-log",
        key="import_feed",
        help="Empty: the mapping's feed name, or the file's name. Records with the same feed and id are one record.",
    )
)
activity_go = st.button("Import activity", type="primary")
if activity_go:
    if activity_file is None:
        st.error("Choose the activity file.")
    elif not data.has_areas(engine):
        st.error("Load beats and blocks first (step 1), so every point can be given its block.")
    elif how != "It has beatmap's own columns" and mapping is None:
        st.error("Finish the mapping above first (or choose 'It has beatmap's own columns').")
    else:
        bar, moved = progress_bar()
        with tempfile.TemporaryDirectory() as tmp:
            names = save_all([activity_file], Path(tmp))
            mapping_path = None
            if mapping is not None and how != "It has beatmap's own columns":
                mapping_path = Path(tmp) / "mapping.toml"
                mapping_path.write_text(mapping_toml(mapping), encoding="utf-8")
                names[str(mapping_path)] = "the mapping"
            try:
                summary = access.import_activity_as(
                    engine,
                    user,
                    Path(tmp) / Path(activity_file.name).name,
                    settings=settings,
                    mapping_path=mapping_path,
                    source=source or None,
                    file_name=activity_file.name,
                    progress=moved,
                )
            except ImportFailedError as exc:
                bar.empty()
                st.error(
                    f"Nothing was imported from {md_escape(exc.summary.file)}: "
                    + (
                        "every row was rejected."
                        if exc.summary.rejected == exc.summary.rows
                        else "every located row falls outside every beat. Check that the file is of this city's "
                        "area and that latitude and longitude are not swapped."
                    )
                )
                importview.counts(exc.summary)
                importview.warnings(exc.summary, say)
                importview.reasons(exc.summary, say)
            except BeatmapError as exc:
                bar.empty()
                st.error(md_escape(for_page(str(exc), names)))
            else:
                bar.empty()
                st.success(
                    f"Imported {summary.imported:,} records from {md_escape(summary.file)} (import {summary.batch_id})."
                )
                importview.counts(summary)
                importview.warnings(summary, say)
                if summary.rejected:
                    importview.reasons(summary, say)
                    rejects = access.rejects_for(engine, user, batch_id=summary.batch_id)
                    name = f"rejects-{Path(activity_file.name).stem}.csv"
                    who = auth.at_click(engine, settings)
                    st.download_button(
                        f"Download the rejected rows of feed {md_escape(summary.source)} kept for this import (CSV)",
                        lambda: access.export(
                            engine,
                            who(),
                            lambda: csv_text(rejects),
                            file_name=name,
                            rows=len(rejects),
                            what="rejected rows",
                        ),
                        file_name=name,
                        mime="text/csv",
                        on_click="ignore",
                    )
                    if not access.may_change_city(user):
                        st.caption(
                            f"The file holds the {len(rejects):,} rejected rows that fall on your beats. Rows on "
                            "other beats go to their supervisors; rows with no location and no reported beat, "
                            "to a supervisor of all beats."
                        )

st.subheader("3. Imports so far")
imports = access.import_history_for(engine, user, limit=200)
if not access.may_change_city(user):
    st.caption("The imports that added records, or kept rejected rows, on your beats, whoever imported them.")
if imports.empty:
    st.caption("Nothing was imported yet.")
else:
    st.dataframe(
        imports.drop(columns=["what"]),
        hide_index=True,
        width="stretch",
        column_config={
            "batch_id": "Import",
            "source": "Feed",
            "file_name": "File",
            "imported_at": "When (UTC)",
            "imported_by": "Who",
            "rows": "Rows",
            "imported": "Imported",
            "duplicates": "Duplicates",
            "rejected": "Rejected",
            "outside": "Outside the beats",
            "records_now": "Records now",
            "status": "Status",
        },
    )
    live = imports[imports["status"] == "live"]
    if not live.empty and access.may_change_city(user):  # undoing removes records on every beat
        with st.form("undo"):
            labels = {
                int(r.batch_id): f"{r.batch_id}: {r.file_name} ({r.source}, {r.records_now:,} "
                f"{'GPS pings' if r.what == 'pings' else 'records'})"
                for r in live.itertuples(index=False)
            }
            batch = st.selectbox(
                "Undo an import",
                list(labels),
                format_func=lambda b: labels[b],
                help="Removes exactly the records this import added. Records a later import "
                "skipped as duplicates stay, and belong to that import from then on. Undoing a GPS import "
                "removes its presence, and its neighbours in time are computed again from the raw pings.",
            )
            sure = st.checkbox("Yes, remove this import's records")
            undo_go = st.form_submit_button("Undo import")
        if undo_go:
            if not sure:
                st.error("Tick the box to confirm: undoing removes the import's records from every view.")
            else:
                try:
                    undone = access.undo_import_as(engine, user, int(batch or 0), settings=settings)
                except BeatmapError as exc:
                    st.error(md_escape(exc))
                else:
                    text = format_undo(undone)
                    st.success(md_escape(text[:1].upper() + text[1:]))

st.subheader("4. GPS pings")
if not access.may_change_city(user):
    st.caption("GPS pings are imported by a supervisor of every beat (a device's fixes cross beats).")
else:
    st.caption(
        "Car AVL, radio, phone or body-camera fixes (CSV, Parquet or GPX; columns ts, lat, lon, device_id, or a "
        "ping mapping) become presence minutes per block, on foot or in a vehicle, on calls or not. GPS shows "
        "where time goes, not how anyone works: see the README's GPS section."
    )
    with st.form("pings"):
        ping_files = st.file_uploader(
            "Ping files", type=["csv", "parquet", "gpx"], accept_multiple_files=True, key="ping_files"
        )
        ping_mapping = st.file_uploader("Ping mapping (TOML), if the columns differ", type=["toml"], key="ping_map")
        ping_roster = st.file_uploader("Device roster (CSV), optional", type=["csv"], key="ping_roster")
        pings_go = st.form_submit_button("Import pings")
    if pings_go and not ping_files:
        st.error("Choose the ping files first.")
    elif pings_go:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            names = save_all(ping_files, folder)
            extra = {}
            for key, upload in (("mapping_path", ping_mapping), ("roster_path", ping_roster)):
                if upload is not None:
                    saved = folder / f"{key}-{Path(upload.name).name}"
                    saved.write_bytes(upload.getbuffer())
                    extra[key] = saved
            bar, moved = progress_bar()
            try:
                ping_summary = access.import_pings_as(
                    engine,
                    user,
                    list(names),
                    settings=settings,
                    progress=moved,
                    file_names=list(names.values()),
                    **extra,
                )
            except BeatmapError as exc:
                bar.empty()
                text = str(exc)
                for temporary, shown in names.items():
                    text = text.replace(temporary, shown)
                st.error(md_escape(text))
            else:
                bar.empty()
                text = format_ping_import(ping_summary)
                for temporary, shown in names.items():
                    text = text.replace(temporary, shown)
                st.success(md_escape(text).replace("\n", "  \n"))
