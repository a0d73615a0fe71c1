"""Imports as units: list, undo (keeping what later imports skipped), replace, rejects per batch, bounded rejects,
the command line, and the schema migration that carries them."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic import command

from beatmap import store
from beatmap.audit import read_audit
from beatmap.cli import main
from beatmap.errors import InputError
from beatmap.imports import list_imports, replace_import, undo_import
from beatmap.ingest import ImportFailedError, import_activity
from beatmap.settings import Settings
from beatmap.store import migrate
from tests.conftest import load_two_beats, on_postgres, store_db

NOW = pd.Timestamp("2026-06-01", tz="UTC")
INSIDE = "41.87596,-87.63631"
HEADER = "occurred_at,lat,lon,kind,source_id"


def write(tmp_path, name: str, rows: list[str]):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    return path


def row(day: int, ident: str, kind: str = "foot_patrol") -> str:
    return f"2026-03-{day:02d}T10:00,{INSIDE},{kind},{ident}"


@pytest.fixture
def loaded(engine, settings, tmp_path):
    return load_two_beats(engine, tmp_path, settings=settings, grid_m=100)


def imp(engine, path, settings, **kwargs):
    return import_activity(engine, path, settings=settings, now=NOW, source=kwargs.pop("source", "cad"), **kwargs)


def source_ids(engine) -> dict[str, int]:
    """source_id -> batch_id of every stored event."""
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(store.events.c.source_id, store.events.c.batch_id)).all())


def test_undo_removes_exactly_what_the_import_added(loaded, settings, tmp_path):
    first = imp(loaded, write(tmp_path, "jan.csv", [row(1, "a"), row(2, "b")]), settings)
    second = imp(loaded, write(tmp_path, "feb.csv", [row(3, "c"), row(4, "d", kind="nap")]), settings, actor="sgt")
    version = store.store_version(loaded)
    result = undo_import(loaded, second.batch_id, actor="lt")
    assert (result.removed, result.moved) == (1, 0)
    assert source_ids(loaded) == {"a": first.batch_id, "b": first.batch_id}
    assert store.store_version(loaded) > version  # cached views recompute
    listed = list_imports(loaded).set_index("batch_id")
    assert listed.loc[second.batch_id, "status"] == "undone" and listed.loc[first.batch_id, "status"] == "live"
    assert listed.loc[second.batch_id, "imported_by"] == "sgt" and listed.loc[second.batch_id, "file_name"] == str(
        tmp_path / "feb.csv"
    )
    assert store.read_current_rejects(loaded).empty  # the undone import's rejects are no longer to act on
    assert len(store.read_rejects(loaded, batch_id=second.batch_id)) == 1  # but its own listing keeps them
    entry = read_audit(loaded).iloc[0]
    assert entry["action"] == "import.undo" and entry["actor"] == "lt"
    with pytest.raises(InputError, match="already undone"):
        undo_import(loaded, second.batch_id, actor="lt")
    with pytest.raises(InputError, match="there is no import 99"):
        undo_import(loaded, 99, actor="lt")
    areas_batch = int(store.latest_batch(loaded, "areas")["batch_id"])
    with pytest.raises(InputError, match="only activity imports can be undone"):
        undo_import(loaded, areas_batch, actor="lt")


def test_undo_never_loses_records_a_later_import_skipped(loaded, settings, tmp_path):
    first = imp(loaded, write(tmp_path, "jan.csv", [row(1, "a"), row(2, "b")]), settings)
    second = imp(loaded, write(tmp_path, "overlap.csv", [row(2, "b"), row(3, "c")]), settings)
    third = imp(loaded, write(tmp_path, "again.csv", [row(2, "b")]), settings)
    assert (second.duplicates, third.duplicates) == (1, 1)
    result = undo_import(loaded, first.batch_id, actor="lt")
    assert (result.removed, result.moved, result.moved_to) == (1, 1, (second.batch_id,))
    assert source_ids(loaded) == {"b": second.batch_id, "c": second.batch_id}
    # Undoing the import that now holds "b" hands it on to the next one that skipped it.
    result = undo_import(loaded, second.batch_id, actor="lt")
    assert (result.removed, result.moved) == (1, 1)
    assert source_ids(loaded) == {"b": third.batch_id}
    undo_import(loaded, third.batch_id, actor="lt")
    assert source_ids(loaded) == {}


def test_replace_swaps_a_feed_in_one_transaction(loaded, settings, tmp_path):
    other = imp(loaded, write(tmp_path, "log.csv", [row(5, "x")]), settings, source="log")
    bad = imp(loaded, write(tmp_path, "v1.csv", [row(1, "a"), row(2, "b"), "2012-99-99,1,2,nap,z"]), settings)
    with pytest.raises(ImportFailedError):  # a corrected file that saves nothing leaves the feed as it was
        replace_import(loaded, write(tmp_path, "junk.csv", ["junk,1,2,nap,q"]), feed="cad", settings=settings)
    assert source_ids(loaded) == {"x": other.batch_id, "a": bad.batch_id, "b": bad.batch_id}
    good = replace_import(
        loaded, write(tmp_path, "v2.csv", [row(1, "a"), row(3, "c")]), feed="cad", settings=settings, actor="sgt"
    )
    assert good.replaced_batches == (bad.batch_id,) and good.records_removed == 2 and good.duplicates == 0
    assert source_ids(loaded) == {"x": other.batch_id, "a": good.batch_id, "c": good.batch_id}
    listed = list_imports(loaded).set_index("batch_id")
    assert listed.loc[bad.batch_id, "status"] == "replaced"
    assert store.read_current_rejects(loaded).empty  # the replaced import's rejects are superseded
    assert read_audit(loaded).iloc[0]["action"] == "import.replace"
    with pytest.raises(InputError, match="no import to replace"):
        replace_import(loaded, write(tmp_path, "v3.csv", [row(1, "a")]), feed="nope", settings=settings)


def test_rejects_belong_to_their_batch(loaded, settings, tmp_path):
    mapping = tmp_path / "us.toml"
    mapping.write_text('[source]\ntime_format = "%m/%d/%Y %I:%M %p"\n')
    rows = [row(1, "a"), row(2, "b"), row(3, "c", kind="nap"), f"03/05/2026 10:00 AM,{INSIDE},foot_patrol,d"]
    first = imp(loaded, write(tmp_path, "crimes.csv", rows), settings, mapping_path=mapping)
    assert (first.imported, first.rejected) == (1, 3)
    # The corrected import of the same file gives its own rejects, with their own reasons, and supersedes the first's.
    fixed = imp(loaded, write(tmp_path, "crimes.csv", rows), settings)
    own = store.read_rejects(loaded, batch_id=fixed.batch_id)
    assert own["row_number"].tolist() == [3, 4] and own["reason"].iloc[0].startswith("kind 'nap'")
    assert len(store.read_rejects(loaded, batch_id=first.batch_id)) == 3  # the first keeps its own
    assert set(store.read_current_rejects(loaded)["batch_id"]) == {fixed.batch_id}
    # Next month's file of the same feed keeps its own rejects, and the earlier unresolved ones stay listed.
    april = imp(loaded, write(tmp_path, "april.csv", [row(20, "q"), row(21, "r", kind="nope")]), settings)
    assert set(store.read_current_rejects(loaded)["batch_id"]) == {fixed.batch_id, april.batch_id}
    # The same file once more supersedes the rejects of the earlier imports of that content.
    again = imp(loaded, write(tmp_path, "crimes.csv", rows), settings)
    current = store.read_current_rejects(loaded)
    assert set(current["batch_id"]) == {again.batch_id, april.batch_id}
    assert current[current["batch_id"] == again.batch_id]["row_number"].tolist() == [3, 4]


def test_stored_rejects_are_bounded_per_reason(loaded, tmp_path):
    settings = Settings(timezone="America/Chicago", rejects_kept_per_reason=2)
    rows = [row(1, "a")] + [f"garbage-{i},{INSIDE},foot_patrol,g{i}" for i in range(7)] + [row(2, "n", kind="nap")]
    summary = imp(loaded, write(tmp_path, "big.csv", rows), settings)
    assert summary.rejected == 8 and summary.rejects_kept == 3
    assert list(summary.reject_reasons.values()) == [7, 1]  # the counts stay complete
    kept = store.read_rejects(loaded, batch_id=summary.batch_id)
    assert kept["row_number"].tolist() == [2, 3, 9]


def test_imports_on_the_command_line(loaded, tmp_path, capsys):
    db = store_db(tmp_path / "test.db")
    path = write(tmp_path, "jan.csv", [row(1, "a"), row(2, "b", kind="nap")])
    assert main(["--db", db, "import", str(path), "--source", "cad"]) == 0
    out = capsys.readouterr().out
    assert "(import 2)" in out and "rejects --batch 2" in out
    assert main(["--db", db, "imports"]) == 0
    listing = capsys.readouterr().out
    assert "jan.csv" in listing and "cad" in listing and "live" in listing
    fixed = write(tmp_path, "jan-fixed.csv", [row(1, "a"), row(2, "b")])
    assert main(["--db", db, "imports", "replace", str(fixed), "--feed", "cad", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["replaced_batches"] == [2] and summary["imported"] == 2 and summary["records_removed"] == 1
    assert main(["--db", db, "rejects", "--batch", "2", "--out", str(tmp_path / "r.csv")]) == 0
    assert pd.read_csv(tmp_path / "r.csv")["row_number"].tolist() == [2]
    capsys.readouterr()
    assert main(["--db", db, "imports", "undo", str(summary["batch_id"])]) == 0
    assert "removed 2 records" in capsys.readouterr().out
    assert main(["--db", db, "imports", "undo", "2"]) == 2
    assert "already undone" in capsys.readouterr().err
    assert main(["--db", db, "imports", "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["undone", "replaced"]


def test_migration_from_0002_keeps_rejects_and_matches_a_new_store(tmp_path):
    where = store_db(tmp_path / "old.db")
    old = sa.create_engine(where if on_postgres() else f"sqlite:///{where}")
    with old.begin() as conn:
        command.upgrade(migrate.config(conn), "0002")
        conn.execute(
            sa.text(
                "INSERT INTO import_batches (what, source, file_name, imported_at, summary) "
                "VALUES ('activity', 'cad', 'a.csv', '2026-01-01 00:00:00', '{}')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO rejects (fingerprint, batch_id, source, file_name, row_number, reason, raw) "
                "VALUES ('f', 1, 'cad', 'a.csv', 1, 'why', '{}')"
            )
        )
    assert migrate.upgrade(old) == ("0002", migrate.head())
    new = store.open_store(store_db(tmp_path / "new.db"))

    def shape(engine) -> dict:
        inspector = sa.inspect(engine)
        return {
            t: (
                sorted((c["name"], type(c["type"]).__name__, c["nullable"]) for c in inspector.get_columns(t)),
                sorted((tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(t)),
                sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(t)),
            )
            for t in inspector.get_table_names()
            if t != "alembic_version"
        }

    assert shape(old) == shape(new)
    with old.begin() as conn:  # the same row may now be rejected by another batch
        conn.execute(
            sa.text(
                "INSERT INTO rejects (fingerprint, batch_id, source, file_name, row_number, reason, raw) "
                "VALUES ('f', 1, 'cad', 'a.csv', 1, 'why', '{}')"
            )
        )
        assert conn.execute(sa.text("SELECT count(*) FROM rejects")).scalar_one() == 2


def test_rejects_kept_before_0010_have_no_beat_and_only_supervisors_of_all_beats_see_them(tmp_path):
    from beatmap import access
    from beatmap.accounts import SUPERVISOR, User

    where = store_db(tmp_path / "old.db")
    old = sa.create_engine(where if on_postgres() else f"sqlite:///{where}")
    with old.begin() as conn:
        command.upgrade(migrate.config(conn), "0008")
        conn.execute(
            sa.text(
                "INSERT INTO import_batches (what, source, file_name, imported_at, summary) "
                "VALUES ('activity', 'cad', 'a.csv', '2026-01-01 00:00:00', '{}')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO rejects (fingerprint, batch_id, source, file_name, row_number, reason, raw) "
                "VALUES ('f', 1, 'cad', 'a.csv', 1, 'why', '{\"notes\": \"on beat A\"}')"
            )
        )
    assert migrate.upgrade(old)[0] == "0008"
    kept = store.read_rejects(old)
    assert len(kept) == 1
    assert access.rejects_for(old, User("sgt", SUPERVISOR, ("A",))).empty
    assert len(access.rejects_for(old, User("lt", SUPERVISOR, all_beats=True))) == 1
    assert access.import_history_for(old, User("sgt", SUPERVISOR, ("A",))).empty


def test_the_import_list_cuts_no_file_or_feed_name():
    from beatmap.imports import format_imports

    long_name = "exports/2026/district-07/calls_for_service_" + "x" * 40 + ".csv"
    table = pd.DataFrame(
        [
            {
                "batch_id": 12,
                "imported_at": pd.Timestamp("2026-11-30 08:00", tz="UTC"),
                "source": "a-very-long-feed-name-from-cad",
                "file_name": long_name,
                "rows": 1_200_000,
                "imported": 1_100_000,
                "duplicates": 50_000,
                "rejected": 50_000,
                "imported_by": "dashboard:lieutenant",
                "status": "live",
                "records_now": 1_100_000,
            }
        ]
    )
    text = format_imports(table)
    assert long_name in text and "a-very-long-feed-name-from-cad" in text and "dashboard:lieutenant" in text
    assert "1,200,000" in text and "1,100,000" in text


def test_ping_imports_are_listed_with_their_counts_and_stay_listed_once_undone(engine, settings, tmp_path):
    from dataclasses import replace

    from beatmap.imports import format_imports
    from beatmap.presence import import_pings
    from tests.test_presence import T0, ping_rows, write_pings

    settings = replace(settings, retain_pings_days=3650)  # the March pings stay within retention
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1")  # 41 fixes
    rows[5] = rows[4]  # a duplicate (same device and second)
    rows[7] = "not a time" + rows[7][rows[7].index(",") :]  # no time: rejected
    path = write_pings(tmp_path / "radio.csv", rows)
    done = import_pings(engine, [path], settings=settings, now=T0 + pd.Timedelta(days=1)).files[0]
    listed = list_imports(engine)
    ping = listed[listed["what"] == "pings"].iloc[0]
    assert ping["batch_id"] == done.batch_id and ping["source"] == "gps" and ping["file_name"].endswith("radio.csv")
    assert (ping["rows"], ping["imported"], ping["duplicates"], ping["rejected"]) == (41, 39, 1, 1)
    assert (ping["records_now"], ping["status"], ping["imported_by"]) == (39, "live", "library")
    assert set(listed["what"]) == {"pings"}  # loading the areas is not an import of records
    assert "gps" in format_imports(listed) and "radio.csv" in format_imports(listed)
    undo_import(engine, done.batch_id, actor="test", settings=settings)
    ping = list_imports(engine).iloc[0]
    assert (ping["rows"], ping["imported"], ping["duplicates"], ping["rejected"]) == (41, 39, 1, 1)
    assert (ping["records_now"], ping["status"]) == (0, "undone")
