"""The ``beatmap`` command line.

Every command prints a short summary and exits 0; on a problem with the input
or the store it prints one line starting ``beatmap: error:`` and exits 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from beatmap import __version__, cli_accounts, cli_db
from beatmap.errors import BeatmapError, InputError
from beatmap.settings import ENV_VAR as SETTINGS_ENV_VAR
from beatmap.settings import Settings, read_settings, settings_path

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from beatmap.ingest import AreasSummary, ImportSummary

# Each command imports what it needs when it runs: `beatmap --help` and a quick command do not pay for
# geopandas, SQLAlchemy and SciPy (a second and a half together, against about 0.6 s for pandas alone).

EXIT_ERROR = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-03-01") from exc


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with every subcommand and its help."""
    parser = argparse.ArgumentParser(
        prog="beatmap",
        description="Measure non-enforcement police presence block by block, and flag neglected blocks.",
    )
    parser.add_argument("--version", action="version", version=f"beatmap {__version__}")
    parser.add_argument(
        "--db", help="store: a SQLite file path or SQLAlchemy URL (default $BEATMAP_DB or data/beatmap.db)"
    )
    parser.add_argument("--settings", help=f"settings TOML file (default ${SETTINGS_ENV_VAR} or data/settings.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    areas = sub.add_parser("areas", help="load beat and block polygons (replaces any loaded before)")
    areas.add_argument(
        "--beats",
        required=True,
        type=Path,
        help="beat polygons: GeoJSON, Shapefile (.shp or .zip), GeoPackage or GeoParquet",
    )
    areas.add_argument("--beat-id", help="field with the beat id (default: beat_id)")
    areas.add_argument("--crs", help="CRS of files that have none, e.g. EPSG:3452 (never guessed)")
    group = areas.add_mutually_exclusive_group(required=True)
    group.add_argument("--blocks", type=Path, help="block polygons (city or census blocks)")
    group.add_argument("--grid-m", type=float, help="no block layer: cut beats into square cells of this size (m)")
    areas.add_argument("--block-id", help="field with the block id (default: block_id)")
    areas.add_argument(
        "--exclude-beats",
        metavar="IDS",
        default="",
        help="beats left out of the analysis, e.g. H1,H3,99 (harbour beats, a catch-all): their "
        "blocks are never flagged and count in no figure (also: excluded_beats in the settings)",
    )

    imp = sub.add_parser("import", help="import an activity CSV (canonical columns, or any export with --mapping)")
    imp.add_argument("file", type=Path)
    imp.add_argument("--mapping", type=Path, help="TOML mapping for a foreign export (see examples/)")
    imp.add_argument("--crs", help="CRS of the x/y columns the mapping names, when the mapping does not say")
    imp.add_argument("--source", help="feed name; records with the same feed and source_id are one record")
    imp.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    pings = sub.add_parser("import-pings", help="import GPS ping files (CSV, Parquet, GPX) as presence per block")
    pings.add_argument("files", type=Path, nargs="+", metavar="FILE")
    pings.add_argument("--mapping", type=Path, help="TOML ping mapping for a foreign export (see examples/)")
    pings.add_argument("--roster", type=Path, help="device roster CSV: device_id, unit_id, officer_id, from, to")
    pings.add_argument("--crs", help="CRS of x/y columns (the mapping's, or columns named x and y)")
    pings.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    pings.add_argument(
        "--engine",
        choices=("single", "dask"),
        default="single",
        help="single: this process (default); dask: a Dask cluster (Parquet datasets and CSV parts)",
    )
    pings.add_argument(
        "--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://host:8786); default a local cluster"
    )
    pings.add_argument("--partitions", type=int, help="Dask partitions after the shuffle on device_id")

    gpsq = sub.add_parser("gps-quality", help="write GPS data quality per device and day (.csv)")
    gpsq.add_argument("--out", required=True, type=Path, help="CSV file to write")
    gpsa = sub.add_parser(
        "gps-archive",
        help="check that the raw ping archive (a folder beside the store) holds every import within retention",
    )
    gpsa.add_argument(
        "--forget-missing",
        action="store_true",
        help="treat imports whose archive file is lost for good as past retention (their presence stays as it is)",
    )

    imps = sub.add_parser(
        "imports", help="list the activity and GPS ping imports; undo one, or replace a feed with a corrected file"
    )
    imps.add_argument("--json", action="store_true", help="print as JSON")
    imps_sub = imps.add_subparsers(dest="imports_action", metavar="ACTION")
    undo = imps_sub.add_parser(
        "undo", help="remove exactly what one import added (records other imports skipped as duplicates are kept)"
    )
    undo.add_argument("batch", type=int, help="the import's batch number (see `beatmap imports`)")
    undo.add_argument("--json", action="store_true", help="print the result as one JSON object")
    swap = imps_sub.add_parser("replace", help="swap a feed's records for a corrected file, in one transaction")
    swap.add_argument("file", type=Path)
    swap.add_argument("--feed", required=True, help="the feed whose imports the file replaces")
    swap.add_argument("--mapping", type=Path, help="TOML mapping for a foreign export (see examples/)")
    swap.add_argument("--crs", help="CRS of the x/y columns the mapping names, when the mapping does not say")
    swap.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    rej = sub.add_parser(
        "rejects",
        help="write the rejected rows with their reasons (of live imports not "
        "superseded by a later import of the same file, or of one --batch)",
    )
    rej.add_argument("--out", required=True, type=Path, help="CSV file to write")
    rej.add_argument("--batch", type=int, help="only this import batch")

    for name, what in (("coverage", "one row per block"), ("beats", "one row per beat")):
        cmd = sub.add_parser(name, help=f"coverage and flags, {what} (.csv or .geojson)")
        cmd.add_argument("--from", dest="start", type=_date, help="first day (default: window_days before --to)")
        cmd.add_argument("--to", dest="end", type=_date, help="last day (default: last day of data)")
        if name == "coverage":
            cmd.add_argument("--beat", help="only this beat")
        cmd.add_argument("--out", required=True, type=Path, help="file to write: .csv or .geojson")

    demo = sub.add_parser("demo", help="build the demo city into a new, empty store (a store holding data is refused)")
    demo.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    demo.add_argument(
        "--dir",
        type=Path,
        default=Path("data/demo"),
        help="where to write the demo files and ground truth (default data/demo)",
    )
    demo.add_argument(
        "--gps-weeks",
        type=int,
        default=None,
        metavar="N",
        help="weeks of GPS pings from patrol cars and radios, ending on the demo's last day "
        "(default 8, about 1.8 million pings; 0 for none)",
    )

    streets = sub.add_parser("streets", help="load the street network for walking routes (replaces any loaded before)")
    streets.add_argument(
        "file",
        type=Path,
        help="street centrelines (GeoJSON, Shapefile, GeoPackage) or an OpenStreetMap extract (.osm, .osm.pbf)",
    )
    streets.add_argument("--crs", help="CRS of a file that has none, e.g. EPSG:3452 (never guessed)")
    streets.add_argument(
        "--features",
        type=Path,
        help="water and parks to draw on the maps: polygons with kind (water or park) and name",
    )

    route = sub.add_parser("route", help="plan a walking route through a beat's neglected blocks (GPX)")
    route.add_argument("--beat", required=True, help="the beat to walk")
    route.add_argument(
        "--start",
        required=True,
        metavar="LAT,LON",
        help="where the walk starts, e.g. 41.60,-88.10, or a landmark named in the settings",
    )
    route.add_argument("--minutes", required=True, type=float, help="time available, walking and stays together")
    route.add_argument("--dwell-min", type=float, help="minutes on each block (default: dwell_min in the settings)")
    route.add_argument("--end", metavar="LAT,LON", help="where the walk ends, as --start (default: back at the start)")
    route.add_argument("--seed", type=int, help="chooses among equally good routes (default: today's date)")
    route.add_argument("--out", required=True, type=Path, help="GPX file to write")
    route.add_argument("--card", type=Path, help="also write a printable card (HTML)")
    route.add_argument(
        "--area", metavar="ID", help="walk only this neglected area of the beat (see `beatmap neglected`)"
    )

    neglected = sub.add_parser(
        "neglected",
        help="list neglected areas (adjacent flagged blocks of a beat, named by "
        "their streets), or write them to .csv or .geojson",
    )
    neglected.add_argument("--from", dest="start", type=_date, help="first day (default: window_days before --to)")
    neglected.add_argument("--to", dest="end", type=_date, help="last day (default: last day of data)")
    neglected.add_argument("--beat", help="only this beat")
    neglected.add_argument("--out", type=Path, help="also write them: .csv (block ids listed) or .geojson (outlines)")

    sub.add_parser("info", help="what the store holds")
    cli_accounts.add_commands(sub, date_type=_date)
    cli_db.add_command(sub)

    pub = sub.add_parser(
        "publish", help="write the public map snapshot (aggregated, delayed, suppressed), or --check one"
    )
    where = pub.add_mutually_exclusive_group()
    where.add_argument(
        "--out", type=Path, help="folder to publish to; its contents are replaced (default: public_dir in the settings)"
    )
    where.add_argument(
        "--check",
        type=Path,
        metavar="DIR",
        help="verify a published snapshot against the rules; exit 1 on any violation",
    )
    pub.add_argument("--as-of", type=_date, help="publication date (default today; never later)")
    pub.add_argument(
        "--override-delay-days",
        type=int,
        metavar="N",
        help="publish with a shorter delay than the settings allow; needs --reason, goes to the audit log",
    )
    pub.add_argument("--reason", help="why the delay is overridden (audit log only, never published)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except BeatmapError as exc:
        print(f"beatmap: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("beatmap: interrupted; nothing was written by the step in progress.", file=sys.stderr)
        return 130


def _progress(fraction: float, message: str) -> None:
    if sys.stderr.isatty():
        print(
            f"\r[{'#' * int(fraction * 20):<20}] {message:<50}",
            end="" if fraction < 1 else "\n",
            file=sys.stderr,
            flush=True,
        )


def _run(args: argparse.Namespace) -> int:
    from beatmap import store
    from beatmap.audit import cli_actor, record

    settings = read_settings(settings_path(args.settings))
    if args.command == "demo":
        from beatmap.demo import build_demo
        from beatmap.report import read_activity
        from beatmap.snapshot import public_dir

        engine = store.open_store(args.db)
        result = build_demo(
            engine,
            seed=args.seed,
            directory=args.dir,
            settings=settings,
            progress=_progress,
            **({} if args.gps_weeks is None else {"gps_weeks": args.gps_weeks}),
            actor=cli_actor(),
            public_dir=public_dir(settings),
        )
        read_activity(engine, timezone=settings.timezone)  # the dashboard's start-up read, done now
        print(result)
        return 0
    if args.command == "publish":
        return _publish(args, settings)
    if args.command == cli_db.COMMAND:
        return cli_db.run(args, db=args.db)
    if args.command in cli_accounts.COMMANDS:
        return cli_accounts.run(args, db=args.db, settings=settings)
    engine = store.open_store(args.db, create=args.command in {"areas", "import"})
    # The store's commands (below) share these; `--help` and the commands above never import them.
    from beatmap import schema as S
    from beatmap.exclusions import NOT_ANALYSED, effective_settings, parse_beat_list
    from beatmap.export import write_table

    if args.command != "import-pings":  # a GPS import needs none of these (half a second of loading, scipy's too)
        from beatmap.ingest import import_activity, load_areas
        from beatmap.report import beat_coverage, block_coverage, read_activity, window_from_store

    if args.command != "areas":
        settings = effective_settings(settings, engine)  # with the beats left out when the areas were loaded
    if args.command == "areas":
        loaded = load_areas(
            engine,
            args.beats,
            settings=settings,
            beat_id_field=args.beat_id,
            crs=args.crs,
            blocks_path=args.blocks,
            block_id_field=args.block_id,
            grid_m=args.grid_m,
            progress=_progress,
            actor=cli_actor(),
            exclude_beats=parse_beat_list(args.exclude_beats),
        )
        print(format_areas(loaded))
    elif args.command == "import":
        summary = import_activity(
            engine,
            args.file,
            settings=settings,
            mapping_path=args.mapping,
            crs=args.crs,
            source=args.source,
            progress=_progress if not args.json else _quiet,
            actor=cli_actor(),
        )
        read_activity(engine, timezone=settings.timezone)  # the dashboard's start-up read, done now
        print(json.dumps(summary.to_dict()) if args.json else format_import(summary))
    elif args.command == "imports":
        return _imports(args, engine, settings)
    elif args.command == "import-pings":
        from beatmap.presence import format_ping_import, import_pings

        if args.engine == "dask":
            from beatmap.dask_import import import_pings_dask

            if args.partitions is not None and args.partitions < 1:
                raise InputError(f"--partitions {args.partitions}: give a whole number of at least 1.")
            run = import_pings_dask(
                engine,
                args.files,
                settings=settings,
                mapping_path=args.mapping,
                roster_path=args.roster,
                crs=args.crs,
                scheduler=args.scheduler,
                partitions=args.partitions,
                progress=_progress if not args.json else _quiet,
                actor=cli_actor(),
            )
            ping_summary = run.summary
            if not args.json:
                stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in run.seconds.items())
                print(f"dask: {run.pings:,} pings in {run.partitions:,} partitions; {stages}")
        else:
            if args.scheduler or args.partitions:
                raise InputError("--scheduler and --partitions go with --engine dask.")
            ping_summary = import_pings(
                engine,
                args.files,
                settings=settings,
                mapping_path=args.mapping,
                roster_path=args.roster,
                crs=args.crs,
                progress=_progress if not args.json else _quiet,
                actor=cli_actor(),
            )
        print(json.dumps(ping_summary.to_dict()) if args.json else format_ping_import(ping_summary))
    elif args.command == "gps-archive":
        from beatmap import ping_archive

        if args.forget_missing:
            forgotten = ping_archive.forget_missing(engine, settings, actor=cli_actor())
            print(
                f"forgot the lost archives of imports {', '.join(map(str, forgotten))}: their presence stays, and is "
                "no longer computed again"
                if forgotten
                else "no archive is missing; nothing changed"
            )
        else:
            missing = ping_archive.missing_archives(engine, settings)
            kept = ping_archive.archived_batches(engine)
            folder = ping_archive.archive_dir(engine, settings) if len(kept) else None
            where = f" in {folder}" if folder else ""
            print(f"{len(kept):,} ping import(s) keep their raw pings{where}; {len(missing):,} of the files missing")
            for batch, path in missing:
                print(f"  missing: import {batch} ({path})")
            if missing:
                print("put the folder back beside the store, or run `beatmap gps-archive --forget-missing`")
                return 1
    elif args.command == "gps-quality":
        from beatmap.export import write_table
        from beatmap.presence import quality_table

        quality = quality_table(engine, settings=settings)
        path = write_table(quality, args.out if args.out.suffix else args.out.with_suffix(".csv"))
        record(
            engine,
            actor=cli_actor(),
            action="export",
            target=str(path),
            details={"what": "gps quality", "rows": len(quality)},
        )
        print(f"wrote {len(quality):,} device-days to {path}")
    elif args.command == "rejects":
        rejects = (
            store.read_rejects(engine, batch_id=args.batch)
            if args.batch is not None
            else store.read_current_rejects(engine)
        )
        path = write_table(rejects, args.out if args.out.suffix else args.out.with_suffix(".csv"))
        record(
            engine,
            actor=cli_actor(),
            action="export",
            target=str(path),
            details={"what": "rejected rows", "rows": len(rejects)},
        )
        print(f"wrote {len(rejects):,} rejected rows to {path}")
    elif args.command in {"coverage", "beats"}:
        window = window_from_store(engine, settings=settings, start=args.start, end=args.end)
        if args.command == "coverage":
            table = block_coverage(engine, window=window, settings=settings, beat_id=args.beat, not_analysed=True)
        else:
            table = beat_coverage(engine, window=window, settings=settings)
        path = write_table(table, args.out)
        record(
            engine,
            actor=cli_actor(),
            action="export",
            target=str(path),
            details={"what": f"{args.command} table", "rows": len(table), "from": window.start, "to": window.end},
        )
        flagged = table["flag"].notna().sum() if "flag" in table else int(table["flagged"].sum())
        left = table[table["status"] == NOT_ANALYSED]
        print(
            f"wrote {len(table):,} rows to {path} for {window.start} to {window.end} ({window.days} days); "
            f"{flagged:,} flagged blocks"
            + (
                f"; {len(left):,} {'block' if args.command == 'coverage' else 'beat'}{'s' * (len(left) != 1)} "
                "not analysed "
                f"(beats {', '.join(dict.fromkeys(left[S.BEAT_ID]))}: status 'not analysed', no figures)"
                if len(left)
                else ""
            )
        )
    elif args.command == "streets":
        from beatmap.streets import load_map_features, load_streets, streets_text

        print(streets_text(load_streets(engine, args.file, crs=args.crs, actor=cli_actor())))
        if args.features is not None:
            count = load_map_features(engine, args.features, crs=args.crs, actor=cli_actor())
            print(f"  {count} map feature(s) (water, parks) from {args.features}, drawn under the blocks")
    elif args.command == "route":
        from beatmap.routing.landmarks import start_point
        from beatmap.routing.output import route_card_html, route_text, write_gpx
        from beatmap.routing.plan import route_from_store

        planned = route_from_store(
            engine,
            beat_id=args.beat,
            start=start_point(args.start, settings=settings),
            minutes=args.minutes,
            settings=settings,
            end=start_point(args.end, settings=settings, what="--end") if args.end else None,
            dwell_min=args.dwell_min,
            seed=args.seed,
            area_id=args.area,
        )
        path = write_gpx(planned, args.out)
        print(route_text(planned))
        print(f"wrote {path}")
        if args.card is not None:
            args.card.parent.mkdir(parents=True, exist_ok=True)
            from beatmap.naming import names_from_store
            from beatmap.streets import map_streets_from_store

            names = names_from_store(engine, beat_id=args.beat).dropna().to_dict()
            card = route_card_html(
                planned,
                stop_names=names,
                landmarks=settings.landmarks,
                streets=map_streets_from_store(engine, beat_id=args.beat, margin_m=400.0),
            )
            args.card.write_text(card, encoding="utf-8")
            print(f"wrote {args.card}")
    elif args.command == "neglected":
        from beatmap.neglect import areas_text, neglected_areas_from_store

        window = window_from_store(engine, settings=settings, start=args.start, end=args.end)
        areas = neglected_areas_from_store(engine, window=window, settings=settings, beat_id=args.beat)
        print(areas_text(areas, window))
        if args.out is not None:
            path = write_table(areas, args.out)
            record(
                engine,
                actor=cli_actor(),
                action="export",
                target=str(path),
                details={"what": "neglected areas", "rows": len(areas), "from": window.start, "to": window.end},
            )
            print(f"wrote {len(areas):,} areas to {path}")
    elif args.command == "info":
        print(format_info(engine))
    return 0


def _quiet(_fraction: float, _message: str) -> None:
    return None


def _archive_problems(args: argparse.Namespace, settings: Settings) -> list[str]:
    """A checked snapshot against every earlier publication in the store's audit log (when there is a store)."""
    from beatmap import store
    from beatmap.publish import archive_violations, published_periods
    from beatmap.snapshot import read_manifest

    try:
        engine = store.open_store(args.db, create=False)
        manifest = read_manifest(args.check)
    except BeatmapError:
        return []  # no store here (a public server) or no manifest (already reported)
    return [f"{args.check}: {p}" for p in archive_violations(manifest, published_periods(engine))]


def _imports(args: argparse.Namespace, engine: Engine, settings: Settings) -> int:
    """``beatmap imports`` (list), ``imports undo BATCH``, ``imports replace FILE --feed NAME``."""
    from beatmap.audit import cli_actor
    from beatmap.imports import format_imports, format_undo, list_imports, replace_import, undo_import
    from beatmap.report import read_activity

    if args.imports_action == "undo":
        result = undo_import(engine, args.batch, actor=cli_actor(), settings=settings)
        print(json.dumps(result.to_dict()) if args.json else format_undo(result))
    elif args.imports_action == "replace":
        summary = replace_import(
            engine,
            args.file,
            feed=args.feed,
            settings=settings,
            mapping_path=args.mapping,
            crs=args.crs,
            actor=cli_actor(),
            progress=_progress if not args.json else _quiet,
        )
        read_activity(engine, timezone=settings.timezone)  # the dashboard's start-up read, done now
        print(json.dumps(summary.to_dict()) if args.json else format_import(summary))
    else:
        table = list_imports(engine)
        print(table.to_json(orient="records", date_format="iso") if args.json else format_imports(table))
    return 0


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    """``beatmap publish``: build and publish the public snapshot, or ``--check`` one (exit 1 on a violation)."""
    from beatmap import store
    from beatmap.audit import cli_actor
    from beatmap.publish import check_published, publish_snapshot

    if args.check is not None:
        problems = check_published(args.check, settings=settings)
        problems += _archive_problems(args, settings)
        for problem in problems:
            print(problem)
        print(
            f"{args.check}: {len(problems)} violation(s) of the public map rules"
            if problems
            else f"{args.check}: keeps every public map rule"
        )
        return 1 if problems else 0
    out = args.out if args.out is not None else Path(settings.public_dir)
    engine = store.open_store(args.db, create=False)
    m = publish_snapshot(
        engine,
        out,
        settings=settings,
        as_of=args.as_of,
        actor=cli_actor(),
        override_delay_days=args.override_delay_days,
        override_reason=args.reason,
    )
    counts, rules = m["counts"], m["rules"]
    print(
        f"published the public map to {out}: data {m['data_start']} to {m['data_end']}, dated {m['as_of']} "
        f"(delay {rules['delay_days']} days)\n"
        f"  {counts['blocks']:,} blocks in {counts['beats']:,} beats; withheld as "
        f"'fewer than {rules['min_count']}': {counts['visits_withheld']:,} visit counts, "
        f"{counts['enforcement_withheld']:,} enforcement counts"
    )
    return 0


def format_import(s: ImportSummary) -> str:
    """The human summary of an import."""
    lines = [
        f"{s.file}: {s.rows:,} rows read" + (f" (import {s.batch_id})" if s.batch_id is not None else ""),
        f"  imported    {s.imported:,}  (snapped to the nearest block: {s.snapped:,}; "
        f"outside every beat: {s.outside:,})",
        f"  duplicates  {s.duplicates:,}  (already in the store or repeated in the file)",
        f"  rejected    {s.rejected:,}"
        + (f"  (see `beatmap rejects --batch {s.batch_id} --out rejects.csv`)" if s.rejected else ""),
    ]
    for reason, count in s.reject_reasons.items():
        lines.append(f"      {count:,} x {reason}")
        lines += [f"          e.g. row {e['row']}: {e['reason']}" for e in s.reject_examples.get(reason, [])]
    if s.ignored_columns:
        lines.append(f"  ignored columns: {', '.join(s.ignored_columns)}")
    for warning in s.warnings:
        lines.append(f"  warning: {warning['message']}")
    if s.replaced_batches:
        lines.append(
            f"  replaced import(s) {', '.join(map(str, s.replaced_batches))}: {s.records_removed:,} records removed"
        )
    if s.rejected > s.rejects_kept:
        lines.append(f"  kept the first {s.rejects_kept:,} rejected rows per reason; the counts above are complete")
    return "\n".join(lines)


def format_areas(s: AreasSummary) -> str:
    """The human summary of an areas load, with every feature note."""
    lines = [f"loaded {s.beats:,} beats and {s.blocks:,} blocks; analysis CRS {s.crs}"]
    if s.events_reassigned:
        lines.append(f"  assigned {s.events_reassigned:,} stored activity records to the new blocks")
    if s.excluded_beats:
        lines.append(
            f"  not analysed: beats {', '.join(s.excluded_beats)} ({s.excluded_blocks:,} blocks, "
            f"{s.excluded_blocks / max(s.blocks, 1):.0%} of all): never flagged, in no coverage figure"
        )
    for note in s.notes.itertuples(index=False):
        where = f"feature {note.feature}" if note.feature and note.feature == note.feature else "file"
        ident = f" (id {note.id})" if note.id is not None and note.id == note.id else ""
        lines.append(f"  {note.layer} {where}{ident}: {note.action}: {note.detail}")
    return "\n".join(lines)


def format_info(engine: Engine) -> str:
    """What the store holds: areas, activity, rejects and batches, and the street network."""
    from beatmap import store

    n = store.counts(engine)
    span = store.activity_span(engine)
    when = f"{span[0]:%Y-%m-%d} to {span[1]:%Y-%m-%d} (UTC)" if span else "no activity yet"
    loaded = store.latest_batch(engine, "streets") if n["streets"] else None
    if loaded is not None:
        streets = (
            f"  {n['streets']:,} street segments for walking routes, from {loaded['file_name']} "
            f"(loaded {loaded['imported_at']:%Y-%m-%d})"
        )
    elif n["streets"]:
        streets = f"  {n['streets']:,} street segments for walking routes"
    else:
        streets = (
            "  no street network loaded (routes are straight-line estimates); load one with `beatmap streets FILE`"
        )
    return (
        f"store {engine.url.render_as_string(hide_password=True)}\n"
        f"  {n['beats']:,} beats, {n['blocks']:,} blocks\n"
        f"  {n['events']:,} activity records, {when}\n"
        f"  {n['rejects']:,} rejected rows kept, {n['batches']:,} import batches\n"
        f"{streets}"
    )


def entry_point() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry_point()
