"""The ``beatmap db`` commands: schema migrations, backups and restores of the store."""

from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "db"


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``db`` to the main parser's subcommands."""
    db = sub.add_parser("db", help="the store itself: upgrade its schema, show its revision, back up, restore")
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    up = actions.add_parser("upgrade", help="migrate the store's schema to this beatmap's (run after every update)")
    up.add_argument("--to", default="heads", metavar="REVISION", help="stop at this revision (default: the newest)")
    actions.add_parser("current", help="the store's schema revision, and whether it is the newest")
    actions.add_parser("history", help="every schema revision, oldest first")
    backup = actions.add_parser("backup", help="write a consistent copy of the store (safe while the dashboard runs)")
    backup.add_argument("file", type=Path, help="the backup file to write (must not exist)")
    restore = actions.add_parser("restore", help="replace the store with a backup")
    restore.add_argument("file", type=Path, help="a file written by `beatmap db backup`")
    restore.add_argument("--force", action="store_true", help="replace a store that holds data")


def run(args: argparse.Namespace, *, db: str | None) -> int:
    """Run one ``beatmap db`` action; return the exit status."""
    from beatmap.audit import cli_actor, record
    from beatmap.store import migrate
    from beatmap.store.backup import backup_store, restore_store
    from beatmap.store.engine import connect, safe_url, store_url

    url = store_url(db)
    where = safe_url(url)
    if args.db_command == "history":
        for step in migrate.history():
            print(f"{step.revision}  {step.doc.splitlines()[0] if step.doc else ''}")
        return 0
    if args.db_command == "restore":
        restore_store(url, args.file, force=args.force)
        engine = connect(url)
        with engine.connect() as conn:
            revision = migrate.current(conn)
        engine.dispose()
        upgrade = "" if revision == migrate.head() else "; its schema is older: run `beatmap db upgrade`"
        print(f"restored {args.file} into {where} (schema revision {revision}){upgrade}")
        return 0
    engine = connect(url)
    try:
        if args.db_command == "current":
            with engine.connect() as conn:
                revision = migrate.current(conn)
            state = (
                "empty: no store yet"
                if revision is None
                else "the newest"
                if revision == migrate.head()
                else f"behind {migrate.head()}: run `beatmap db upgrade`"
            )
            print(f"{where}: schema revision {revision or '-'} ({state})")
        elif args.db_command == "upgrade":
            before, after = migrate.upgrade(engine, args.to)
            if before == after:
                print(f"{where}: schema already at revision {after}; nothing to do")
            else:
                record(
                    engine, actor=cli_actor(), action="db.upgrade", target=where, details={"from": before, "to": after}
                )
                print(f"{where}: schema upgraded from {before or 'empty'} to {after}")
        elif args.db_command == "backup":
            result = backup_store(engine, args.file)
            with engine.connect() as conn:
                current = migrate.current(conn) == migrate.head()
            if current:  # a store behind the schema (backed up before its upgrade) cannot take this entry
                record(
                    engine,
                    actor=cli_actor(),
                    action="db.backup",
                    target=str(result.path),
                    details={"bytes": result.size_bytes, "kind": result.kind},
                )
            archive = (
                f", and its raw GPS ping archive ({result.archive_files:,} files) to {result.path}.pings"
                if result.archive_files
                else ""
            )
            print(f"backed up {where} to {result.path} ({result.size_bytes:,} bytes, {result.kind}){archive}")
    finally:
        engine.dispose()
    return 0
