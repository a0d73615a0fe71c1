"""Consistent copies of the store, and putting one back.

SQLite: the online backup API copies a consistent snapshot while the dashboard
and imports go on (a plain file copy of a database in WAL mode can be torn).
PostgreSQL: ``pg_dump`` in its custom format, restored with ``pg_restore``;
where those programs are not installed, the README gives the procedure.
A backup restores into a store of the same kind of database.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select
from sqlalchemy.engine import make_url

from beatmap.errors import InputError, StoreError
from beatmap.store.engine import sqlite_path, store_url
from beatmap.store.tables import audit_log, beats_table, events, users_table

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PGDUMP_MAGIC = b"PGDMP"


@dataclass(frozen=True)
class BackupResult:
    """Where a backup went, and how big it is."""

    path: Path
    size_bytes: int
    kind: str  # "sqlite" or "pg_dump"
    archive_files: int = 0  # raw GPS ping archive files copied beside it (SQLite: ``<file>.pings``)


def archive_beside(database: Path) -> Path:
    """Where a SQLite store (or its backup) keeps its raw GPS ping archive by default: ``<file>.pings``."""
    return Path(f"{database}.pings")


def _copy_archive(source: Path, target: Path) -> int:
    """Copy the finished archive files (not an import's half-written ones) from ``source`` to ``target``."""
    files = sorted(source.glob("*.parquet")) if source.is_dir() else []
    if files:
        target.mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy2(file, target / file.name)
    return len(files)


def backup_store(engine: Engine, path: str | os.PathLike[str]) -> BackupResult:
    """Write a consistent copy of the store to ``path`` (which must not exist yet).

    A SQLite store's raw GPS ping archive (the ``<store>.pings`` folder) is copied to ``<path>.pings``.
    """
    target = Path(path)
    if target.exists():
        raise InputError(f"{target} already exists; choose a new file name (a backup never overwrites a file)")
    target.parent.mkdir(parents=True, exist_ok=True)
    url = engine.url.render_as_string(hide_password=False)
    source = sqlite_path(url)
    copied = 0
    if source is not None:
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        kind = "sqlite"
        # The raw pings are files beside the database, not in it: after the snapshot, so every file it names
        # (imports only add files after they commit) is there.
        copied = _copy_archive(archive_beside(Path(source)), archive_beside(target))
    else:
        _run_pg("pg_dump", ["--format=custom", "--no-owner", f"--file={target}", f"--dbname={_libpq(url)}"])
        kind = "pg_dump"
    return BackupResult(target, target.stat().st_size, kind, copied)


def is_empty_store(engine: Engine) -> bool:
    """True when the store holds no beats, events, accounts or audit entries (or no tables at all)."""
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        for table in (beats_table, events, users_table, audit_log):
            if table.name in tables and conn.execute(select(func.count()).select_from(table)).scalar_one():
                return False
    return True


def restore_store(db: str | os.PathLike[str] | None, path: str | os.PathLike[str], *, force: bool = False) -> None:
    """Replace the store at ``db`` with the backup at ``path``.

    Refuses a store that holds data unless ``force``.  The restored store may
    be at an older schema revision; ``beatmap db upgrade`` then brings it up.
    A SQLite backup's raw GPS ping archive (``<file>.pings``) comes back beside
    the store; on PostgreSQL the archive folder (``ping_archive_dir``) is
    backed up and restored with the department's file backups.
    """
    from beatmap.store.engine import connect

    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such backup file")
    head = source.read_bytes()[:16]
    url = store_url(db)
    target = sqlite_path(url)
    want = _SQLITE_MAGIC if target is not None else _PGDUMP_MAGIC
    if not head.startswith(want):
        kind = "a SQLite file" if target is not None else "a pg_dump custom-format file"
        raise InputError(f"{source} is not {kind}; a backup restores into a store of the same kind of database")
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)  # a store restored into a new folder
    engine = connect(url)
    try:
        if not force and not is_empty_store(engine):
            raise StoreError(
                f"the store at {engine.url.render_as_string(hide_password=True)} holds data; "
                "restoring would replace it: add --force (back it up first with `beatmap db backup`)"
            )
    finally:
        engine.dispose()
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(source) as src, sqlite3.connect(target, timeout=60) as dst:
            src.backup(dst)
        src.close()
        dst.close()
        kept = archive_beside(source)
        if kept.is_dir():  # the backup's raw pings replace the store's (they belong to the database just restored)
            shutil.rmtree(archive_beside(Path(target)), ignore_errors=True)
            _copy_archive(kept, archive_beside(Path(target)))
    else:
        _run_pg(
            "pg_restore",
            ["--clean", "--if-exists", "--no-owner", "--single-transaction", f"--dbname={_libpq(url)}", str(source)],
        )


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq reads it (no driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _run_pg(program: str, args: list[str]) -> None:
    exe = shutil.which(program)
    if exe is None:
        raise StoreError(
            f"{program} is not installed on this machine; install PostgreSQL's client programs "
            "(Debian: apt-get install postgresql-client) or follow the README's backup procedure"
        )
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise StoreError(f"{program} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}")
