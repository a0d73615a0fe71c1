"""A store whose raw ping archive folder lost files (copied or restored without it): every operation that reads
or recomputes from the raw pings refuses before changing anything, says which files and how to get out, and
`beatmap gps-archive --forget-missing` is the way out when the files are lost for good."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
import sqlalchemy as sa

from beatmap import ping_archive, store
from beatmap.cli import main
from beatmap.errors import StoreError
from beatmap.imports import list_imports, undo_import
from beatmap.ingest import import_activity, load_areas
from beatmap.presence import import_pings
from beatmap.store import presence as presence_store
from tests.conftest import load_two_beats, store_db
from tests.test_presence import T0, _lat, _lon, ping_rows, write_pings

SOON = T0 + pd.Timedelta(days=1)


@pytest.fixture
def settings(settings):
    return replace(settings, retain_pings_days=3650)  # the March pings stay within retention whatever today is


def _state(engine) -> tuple:
    """What the refused operations must leave alone."""
    with engine.connect() as conn:
        events = conn.execute(sa.select(sa.func.count()).select_from(store.events)).scalar_one()
    seconds = int(presence_store.read_presence(engine)["seconds"].sum())
    blocks = store.read_blocks(engine)[["block_id", "beat_id"]].to_dict("records")
    return events, blocks, seconds, list_imports(engine)[["batch_id", "status"]].to_dict("records")


@pytest.fixture
def two_imports(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1", unit="U1")
    first = import_pings(engine, [write_pings(tmp_path / "a.csv", rows[:21])], settings=settings, now=SOON)
    second = import_pings(engine, [write_pings(tmp_path / "b.csv", rows[21:])], settings=settings, now=SOON)
    a, b = first.files[0].batch_id, second.files[0].batch_id
    lost = ping_archive.archive_dir(engine, settings) / ping_archive.archive_name(a)
    lost.unlink()  # the store was copied without this file
    return a, b, lost


def test_operations_on_the_raw_pings_refuse_while_an_archive_is_missing(engine, tmp_path, settings, two_imports):
    a, b, lost = two_imports
    assert ping_archive.missing_archives(engine, settings) == [(a, lost)]
    before = _state(engine)
    cad = tmp_path / "cad.csv"
    cad.write_text(
        "occurred_at,lat,lon,kind,unit_id,ended_at\n"
        f"{(T0 + pd.Timedelta(minutes=5)).isoformat()},{_lat(100, 100)},{_lon(100, 100)},enforcement,U1,"
        f"{(T0 + pd.Timedelta(minutes=15)).isoformat()}\n"
    )
    refused = [
        lambda: undo_import(engine, b, actor="test", settings=settings),
        lambda: import_pings(
            engine,
            [write_pings(tmp_path / "c.csv", ping_rows(0, 0, SOON, 5, device="r2"))],
            settings=settings,
            now=SOON,
        ),
        lambda: load_areas(engine, tmp_path / "beats.geojson", settings=settings, grid_m=100),
        lambda: import_activity(engine, cad, settings=settings, now=SOON),
    ]
    for attempt in refused:
        with pytest.raises(
            StoreError,
            match=rf"archive of import {a} \({lost.name}\) is missing; nothing was "
            r"changed.*gps-archive --forget-missing",
        ):
            attempt()
        assert _state(engine) == before
    # Undoing the import whose own archive is lost needs no raw pings of it: it goes.
    undo_import(engine, a, actor="test", settings=settings)
    assert [r["status"] for r in list_imports(engine).to_dict("records")] == ["live", "undone"]


def test_the_command_line_lists_the_missing_archive_and_forgets_it(engine, tmp_path, settings, two_imports):
    _a, b, _lost = two_imports
    path = tmp_path / "settings.toml"
    folder = f'ping_archive_dir = "{settings.ping_archive_dir}"\n' if settings.ping_archive_dir else ""
    path.write_text(f'[department]\ntimezone = "America/Chicago"\n[gps]\nretain_pings_days = 3650\n{folder}')
    db = store_db(tmp_path / "test.db")
    assert main(["--db", db, "--settings", str(path), "gps-archive"]) == 1
    assert main(["--db", db, "--settings", str(path), "gps-archive", "--forget-missing"]) == 0
    assert main(["--db", db, "--settings", str(path), "gps-archive"]) == 0
    assert ping_archive.missing_archives(engine, settings) == []
    assert [int(x) for x in ping_archive.archived_batches(engine)["batch_id"]] == [b]
    undo_import(engine, b, actor="test", settings=settings)
    # Import a's presence stays as b's import left it: its last fix keeps the 30 s to b's first fix, which a
    # recompute from a's raw pings would have taken away (600 s); that is what forgetting the archive means.
    assert int(presence_store.read_presence(engine)["seconds"].sum()) == 630


def test_a_sqlite_backup_carries_the_raw_ping_archive_and_a_restore_puts_it_back(tmp_path, settings):
    """The archive is a folder beside the database file: a backup without it would lose the raw pings."""
    from beatmap.store.backup import backup_store, restore_store

    settings = replace(settings, ping_archive_dir="")  # a SQLite file store keeps it beside the file
    db = tmp_path / "live.db"
    engine = store.open_store(str(db))
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1", unit="U1")
    import_pings(engine, [write_pings(tmp_path / "a.csv", rows)], settings=settings, now=SOON)
    result = backup_store(engine, tmp_path / "saved" / "backup.db")
    assert result.archive_files == 1
    assert sorted(p.name for p in (tmp_path / "saved" / "backup.db.pings").iterdir()) == ["batch_2.parquet"]
    engine.dispose()
    restored = tmp_path / "elsewhere" / "restored.db"
    restore_store(str(restored), tmp_path / "saved" / "backup.db")
    again = store.open_store(str(restored))
    assert ping_archive.missing_archives(again, settings) == []
    undo_import(again, 2, actor="test", settings=settings)  # reads the archive: it is there
    assert presence_store.read_presence(again).empty
    again.dispose()
