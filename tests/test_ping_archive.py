"""The raw ping archive: kept per import for retain_pings_days, presence computed again from it (a late CAD
file, a reload of the areas, an undo), duplicates across imports, the retention sweep, and streaming in groups."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from beatmap import ping_archive, presence
from beatmap.imports import replace_import, undo_import
from beatmap.presence import import_pings
from beatmap.store import presence as presence_store
from tests.conftest import import_rows, load_two_beats
from tests.test_presence import T0, _lat, _lon, ping_rows, write_pings

SOON = T0 + pd.Timedelta(days=1)  # "now" for the imports: the pings are well within retention


@pytest.fixture
def settings(settings):
    """Retention long enough that the test's March pings are kept whatever today's date (CAD imports, undos
    and area loads sweep by today's date)."""
    from dataclasses import replace

    return replace(settings, retain_pings_days=3650)


def _total(engine) -> int:
    return int(presence_store.read_presence(engine)["seconds"].sum())


def _by_purpose(engine) -> dict[str, int]:
    return presence_store.read_presence(engine).groupby("purpose")["seconds"].sum().to_dict()


def _cad(engine, tmp_path, settings, *, start_min: int, end_min: int, name: str = "cad.csv"):
    start, end = (T0 + pd.Timedelta(minutes=m) for m in (start_min, end_min))
    return import_rows(
        engine,
        tmp_path,
        [f"{start.isoformat()},{_lat(100, 100)},{_lon(100, 100)},enforcement,U1,{end.isoformat()}"],
        settings=settings,
        header="occurred_at,lat,lon,kind,unit_id,ended_at",
        name=name,
    )


def test_each_import_keeps_a_compact_archive_of_its_pings(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = [f"{r},5" for r in ping_rows(100, 100, T0, 20, device="r1", unit="U1")]
    rows[3] = rows[3][:-1] + "80"  # poor accuracy: rejected, but kept (flagged) for the quality figures
    path = tmp_path / "p.csv"
    path.write_text("\n".join(["ts,lat,lon,device_id,unit_id,accuracy_m", *rows]) + "\n")
    summary = import_pings(engine, [path], settings=settings, now=SOON)
    folder = ping_archive.archive_dir(engine, settings)
    kept = ping_archive.archived_batches(engine)
    assert kept["batch_id"].tolist() == [summary.files[0].batch_id]
    table = pq.read_table(folder / kept["archive"].iloc[0])
    assert table.num_rows == 41
    assert table.column("poor").to_pylist().count(True) == 1
    assert not list(folder.glob("*.partial")) and not list(folder.glob("staging-*"))


def test_a_cad_file_imported_after_its_pings_splits_their_presence(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    import_pings(
        engine,
        [write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 20, device="r1", unit="U1"))],
        settings=settings,
        now=SOON,
    )
    assert _by_purpose(engine) == {"non_enforcement": 1200}
    cad = _cad(engine, tmp_path, settings, start_min=10, end_min=20)
    assert _by_purpose(engine) == {"enforcement": 600, "non_enforcement": 600}
    assert any("computed again" in str(w["message"]) for w in cad.warnings)
    # Undoing the CAD import gives the time back to non-enforcement.
    undone = undo_import(engine, cad.batch_id, actor="test", settings=settings)
    assert "computed again" in undone.gps_note
    assert _by_purpose(engine) == {"non_enforcement": 1200}


def test_a_corrected_cad_file_gives_back_the_time_of_a_call_it_drops(engine, tmp_path, settings):
    """Replacing a CAD feed computes presence again where the replaced calls were, not only where the new
    file's calls are: a call the corrected file no longer holds stops counting as enforcement."""
    load_two_beats(engine, tmp_path, settings=settings)
    import_pings(
        engine,
        [write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 20, device="r1", unit="U1"))],
        settings=settings,
        now=SOON,
    )
    cad = _cad(engine, tmp_path, settings, start_min=10, end_min=20)
    assert _by_purpose(engine) == {"enforcement": 600, "non_enforcement": 600}
    later = T0 + pd.Timedelta(days=2)  # the corrected file's one call is two days after the pings
    fixed = tmp_path / "cad_fixed.csv"
    fixed.write_text(
        "occurred_at,lat,lon,kind,unit_id,ended_at\n"
        f"{later.isoformat()},{_lat(100, 100)},{_lon(100, 100)},enforcement,U1,"
        f"{(later + pd.Timedelta(minutes=10)).isoformat()}\n"
    )
    replaced = replace_import(engine, fixed, feed=cad.source, settings=settings)
    assert replaced.batch_id != cad.batch_id
    assert _by_purpose(engine) == {"non_enforcement": 1200}


def test_past_retention_only_aggregates_remain_and_a_late_cad_file_says_so(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    import_pings(
        engine,
        [write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 20, device="r1", unit="U1"))],
        settings=settings,
        now=SOON,
    )
    folder = ping_archive.archive_dir(engine, settings)
    assert len(list(folder.glob("batch_*.parquet"))) == 1
    later = T0 + pd.Timedelta(days=settings.retain_pings_days + 1)  # sweeping as of a day past retention
    swept = ping_archive.sweep_archive(engine, settings, now=later.to_pydatetime())
    assert len(swept) == 1
    assert not list(folder.glob("batch_*.parquet"))
    assert ping_archive.archived_batches(engine).empty
    cad = _cad(engine, tmp_path, settings, start_min=10, end_min=20)
    notes = " ".join(str(w["message"]) for w in cad.warnings)
    assert "past retain_pings_days" in notes and "cannot change" in notes
    assert _by_purpose(engine) == {"non_enforcement": 1200}


def test_a_later_import_is_ordered_with_the_archive_and_its_repeats_are_duplicates(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1")  # 41 fixes, 30 s apart
    first = import_pings(engine, [write_pings(tmp_path / "a.csv", rows[:21])], settings=settings, now=SOON)
    assert _total(engine) == 600  # the last fix of a.csv has no next fix yet
    # b.csv repeats a.csv's last five fixes, then goes on.
    second = import_pings(engine, [write_pings(tmp_path / "b.csv", rows[16:])], settings=settings, now=SOON)
    b = second.files[0]
    assert (b.rows, b.used, b.duplicates, b.rejected) == (25, 20, 5, 0)
    assert second.recomputed_batches == (first.files[0].batch_id,)
    # One track: a.csv's last fix is now credited the 30 s to b.csv's first.
    assert _total(engine) == 1200
    # Undo b.csv: a.csv's presence goes back to what it was, and b.csv can be imported again.
    undone = undo_import(engine, b.batch_id, actor="test", settings=settings)
    assert "computed again" in undone.gps_note
    assert _total(engine) == 600
    assert len(ping_archive.archived_batches(engine)) == 1
    again = import_pings(engine, [tmp_path / "b.csv"], settings=settings, now=SOON)
    assert again.files[0].already_imported is None and again.files[0].used == 20
    assert _total(engine) == 1200


def test_a_jump_between_archived_fixes_of_an_earlier_import_is_rejected(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 20, device="r1")  # 41 fixes, 30 s apart, standing on one block
    import_pings(engine, [write_pings(tmp_path / "a.csv", rows[:21])], settings=settings, now=SOON)
    # b.csv goes on after a.csv, and holds one fix 5 km away 10 s after an archived fix and 20 s before the next:
    # alone in its file it has no neighbour, but a.csv's archived fixes around it make it an impossible jump.
    spike = ping_rows(5000, 5000, T0 + pd.Timedelta(minutes=5, seconds=10), 0, device="r1")
    second = import_pings(engine, [write_pings(tmp_path / "b.csv", [*spike, *rows[21:]])], settings=settings, now=SOON)
    b = second.files[0]
    assert (b.rows, b.used, b.duplicates, b.rejected) == (21, 20, 0, 1)
    assert list(b.reject_reasons) == ["impossible jump"]
    # The spike credits nothing: the track is the 20 minutes on one block.
    assert _total(engine) == 1200
    assert presence_store.read_presence(engine)["block_id"].nunique() == 1


def test_a_recompute_keeps_a_foot_stay_whole_across_the_edge_of_its_window(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    rows = ping_rows(100, 100, T0, 90, device="r1")  # 90 minutes standing on one block, a fix every 30 s
    first = import_pings(engine, [write_pings(tmp_path / "a.csv", rows[:121])], settings=settings, now=SOON)
    import_pings(engine, [write_pings(tmp_path / "b.csv", rows[121:])], settings=settings, now=SOON)
    visits = presence_store.read_track_visits(engine)
    assert visits["seconds"].tolist() == [5400]  # one stay, begun in a.csv's pings
    # A recompute of a.csv's first minutes (as a late CAD file there makes) reads b.csv's fixes for context only
    # around a.csv's time: the stay must still be whole, not cut where that context ended.
    done = presence.recompute_presence(
        engine,
        settings=settings,
        start=T0.to_pydatetime(),
        end=(T0 + pd.Timedelta(minutes=2)).to_pydatetime(),
        now=SOON,
    )
    assert done.recomputed == (first.files[0].batch_id,)
    assert presence_store.read_track_visits(engine)["seconds"].tolist() == [5400]
    assert _total(engine) == 5400


def test_a_reload_of_the_areas_credits_the_archived_pings_to_the_new_blocks(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings, grid_m=200)
    import_pings(
        engine, [write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 20, device="r1"))], settings=settings, now=SOON
    )
    before = set(presence_store.read_presence(engine)["block_id"])
    load_two_beats(engine, tmp_path, settings=settings, grid_m=50)
    from beatmap import store

    blocks = set(store.read_blocks(engine)["block_id"])
    after = presence_store.read_presence(engine)
    assert set(after["block_id"]) <= blocks
    assert set(after["block_id"]) != before
    assert int(after["seconds"].sum()) == 1200


def test_shuffled_input_in_small_chunks_and_device_groups_gives_the_same_aggregates(tmp_path, settings, monkeypatch):
    import numpy as np

    from beatmap import store
    from tests.conftest import store_db

    rng = np.random.default_rng(4)
    rows = []
    for d in range(6):
        start = T0 + pd.Timedelta(seconds=int(rng.integers(0, 600)))
        rows += ping_rows(60 + 40 * d, 100, start, 30, device=f"d{d}", unit=f"U{d % 2}", step_s=20)
    results = []
    for name, chunk, group, parts in (("sorted", 100_000, 10**9, 1), ("shuffled", 7, 150, 5)):
        monkeypatch.setattr(presence, "GROUP_PINGS", group)
        engine = store.open_store(store_db(tmp_path / f"{name}.db"))
        load_two_beats(engine, tmp_path, settings=settings)
        _cad(engine, tmp_path, settings, start_min=5, end_min=15, name=f"cad_{name}.csv")
        lines = rows if name == "sorted" else [rows[i] for i in rng.permutation(len(rows))]
        path = write_pings(tmp_path / f"{name}.csv", lines)
        summary = import_pings(engine, [path], settings=settings, chunk_rows=chunk, partitions=parts, now=SOON)
        frame = (
            presence_store.read_presence(engine)
            .sort_values(["block_id", "hour", "unit_id", "mode", "purpose"])
            .reset_index(drop=True)
        )
        results.append(
            (
                summary.presence_seconds,
                summary.enforcement_seconds,
                frame,
                presence_store.read_track_visits(engine)[["device_id", "block_id", "seconds"]]
                .sort_values(["device_id", "block_id"])
                .reset_index(drop=True),
            )
        )
        engine.dispose()
    assert results[0][0] == results[1][0] > 0
    assert results[0][1] == results[1][1] > 0
    pd.testing.assert_frame_equal(results[0][2], results[1][2])
    pd.testing.assert_frame_equal(results[0][3], results[1][3])


def test_a_postgresql_store_needs_a_configured_archive_folder():
    from sqlalchemy import create_engine

    from beatmap.errors import InputError
    from beatmap.settings import Settings

    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    with pytest.raises(InputError, match="ping_archive_dir"):
        ping_archive.archive_dir(engine, Settings(timezone="America/Chicago"))
    folder = ping_archive.archive_dir(
        engine, Settings(timezone="America/Chicago", ping_archive_dir=str(Path(__file__).parent / ".pa"))
    )
    assert folder.is_dir()
    folder.rmdir()


def test_a_cad_import_sweeps_first_so_pings_past_retention_today_are_left_alone(engine, tmp_path, settings):
    from dataclasses import replace

    ninety = replace(settings, retain_pings_days=90)  # T0 (March 2026) is more than 90 days before today
    load_two_beats(engine, tmp_path, settings=ninety)
    import_pings(
        engine,
        [write_pings(tmp_path / "p.csv", ping_rows(100, 100, T0, 20, device="r1", unit="U1"))],
        settings=ninety,
        now=SOON,
    )
    assert len(ping_archive.archived_batches(engine)) == 1
    cad = _cad(engine, tmp_path, ninety, start_min=10, end_min=20)
    assert "cannot change" in " ".join(str(w["message"]) for w in cad.warnings)
    assert ping_archive.archived_batches(engine).empty
    assert _by_purpose(engine) == {"non_enforcement": 1200}


def _root(values):
    """The array that owns the memory of ``values`` (a view's base, followed to the end)."""
    while getattr(values, "base", None) is not None and hasattr(values.base, "base"):
        values = values.base
    return values


def test_a_group_s_presence_rows_are_let_go_once_summed(tmp_path, settings, monkeypatch):
    """Crediting group by group holds one group's presence rows, not every group's until the end (an empty slice
    of a group's rows kept for later was a view of them all), and stores what one group stores."""
    import gc
    import weakref

    from beatmap import store
    from tests.conftest import store_db

    rows = []
    for d in range(8):
        rows += ping_rows(60 + 30 * d, 100, T0 + pd.Timedelta(seconds=7 * d), 40, device=f"d{d}", step_s=20)
    path = write_pings(tmp_path / "p.csv", rows)
    stored = []
    credit = presence.credit_group
    for name, group in (("one group", 10**9), ("groups", 150)):
        monkeypatch.setattr(presence, "GROUP_PINGS", group)
        alive: list[weakref.ref] = []
        held_at_end: list[int] = []

        def spy(*args, alive=alive, **kwargs):
            out = credit(*args, **kwargs)
            alive.append(weakref.ref(_root(out.presence["seconds"].to_numpy())))
            return out

        def progress(_fraction: float, message: str, alive=alive, held_at_end=held_at_end) -> None:
            if message.startswith("credited device group"):
                gc.collect()
                held_at_end[:] = [k for k, ref in enumerate(alive) if ref() is not None]

        monkeypatch.setattr(presence, "credit_group", spy)
        engine = store.open_store(store_db(tmp_path / f"{name}.db"))
        load_two_beats(engine, tmp_path, settings=settings)
        import_pings(engine, [path], settings=settings, partitions=8, progress=progress, now=SOON)
        if name == "groups":
            assert len(alive) >= 4  # several groups
            assert held_at_end == []  # when the last group was credited, no group's rows were held any more
        frame = presence_store.read_presence(engine)
        stored.append(frame.sort_values(list(frame.columns)).reset_index(drop=True))
        engine.dispose()
    assert int(stored[0]["seconds"].sum()) > 0
    pd.testing.assert_frame_equal(stored[0], stored[1])
