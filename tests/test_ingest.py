"""Loading areas and importing activity through the store: counts, duplicates, transactions, time zones."""

from __future__ import annotations

import json
import textwrap

import geopandas as gpd
import pandas as pd
import pytest

from beatmap import store
from beatmap.errors import InputError, StoreError
from beatmap.ingest import ImportFailedError, import_activity, load_areas
from tests.conftest import load_two_beats, metric_frame, square, store_db

NOW = pd.Timestamp("2026-06-01", tz="UTC")
# Points (lat, lon) inside the test city's beat A (0..400 m east of X0) and far away.
INSIDE = "41.87596,-87.63631"
FAR = "40.0,-80.0"


@pytest.fixture
def loaded(engine, settings, tmp_path):
    return load_two_beats(engine, tmp_path, settings=settings, grid_m=100)


def csv(tmp_path, body: str, name: str = "activity.csv"):
    path = tmp_path / name
    path.write_text("occurred_at,lat,lon,kind,officer_id,notes\n" + textwrap.dedent(body).lstrip())
    return path


def test_import_accounts_for_every_row(loaded, settings, tmp_path):
    path = csv(
        tmp_path,
        f"""
        2026-03-01T10:00,{INSIDE},foot_patrol,O1,said hello
        2026-03-01T10:00,{INSIDE},foot_patrol,O1,said hello
        2026-03-01T11:00,{FAR},enforcement,O2,
        not-a-date,{INSIDE},foot_patrol,O1,
        2026-03-01T12:00,{INSIDE},nap,O1,
    """,
    )
    summary = import_activity(loaded, path, settings=settings, now=NOW)
    assert (summary.rows, summary.imported, summary.duplicates, summary.rejected, summary.outside) == (5, 2, 1, 2, 1)
    assert summary.imported + summary.duplicates + summary.rejected == summary.rows
    counts = store.counts(loaded)
    assert counts["events"] == 2 and counts["rejects"] == 2

    again = import_activity(loaded, path, settings=settings, now=NOW)
    assert (again.imported, again.duplicates, again.rejected) == (0, 3, 2)
    assert store.counts(loaded)["events"] == 2
    # The same file again: its rejects are its own, and they supersede the first import's.
    assert len(store.read_rejects(loaded, batch_id=again.batch_id)) == 2
    rejects = store.read_current_rejects(loaded)
    assert rejects["row_number"].tolist() == [4, 5] and set(rejects["batch_id"]) == {again.batch_id}
    assert json.loads(rejects["raw"].iloc[1])["kind"] == "nap"


def test_times_round_trip_aware_utc(loaded, settings, tmp_path):
    import_activity(
        loaded,
        csv(tmp_path, f"2026-07-04T21:15,{INSIDE},community_visit,O1,\n"),
        settings=settings,
        now=pd.Timestamp("2026-08-01", tz="UTC"),
    )
    events = store.read_events(loaded, columns=("occurred_at", "block_id", "beat_id"))
    assert events["occurred_at"].iloc[0] == pd.Timestamp("2026-07-05T02:15", tz="UTC")
    assert events["beat_id"].iloc[0] == "A"
    first, last = store.activity_span(loaded)
    assert first.tzinfo is not None and first == last


def test_failed_import_changes_nothing(loaded, settings, tmp_path, monkeypatch):
    path = csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\nbad,{INSIDE},foot_patrol,O1,\n")
    before = store.counts(loaded)

    def explode(*args, **kwargs):
        raise StoreError("disk full")

    monkeypatch.setattr(store, "insert_rejects", explode)
    with pytest.raises(StoreError):
        import_activity(loaded, path, settings=settings, now=NOW)
    assert store.counts(loaded) == before


def test_unusable_file_changes_nothing(loaded, settings, tmp_path):
    before = store.counts(loaded)
    path = tmp_path / "wrong.csv"
    path.write_text("when,where\n2026-01-01,here\n")
    with pytest.raises(InputError, match=r"wrong\.csv: missing column"):
        import_activity(loaded, path, settings=settings)
    assert store.counts(loaded) == before


def test_reloading_areas_reassigns_activity(loaded, settings, tmp_path):
    import_activity(loaded, csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\n"), settings=settings, now=NOW)
    moved = metric_frame({"beat_id": ["Z"], "geometry": [square(0, 0, 800)]}, "EPSG:4326")
    path = tmp_path / "new_beats.geojson"
    moved.to_file(path)
    summary = load_areas(loaded, path, settings=settings, grid_m=400)
    assert summary.events_reassigned == 1
    assert store.read_events(loaded, columns=("beat_id",))["beat_id"].tolist() == ["Z"]


def test_import_before_areas_keeps_points_unassigned(engine, settings, tmp_path):
    summary = import_activity(
        engine, csv(tmp_path, f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,\n"), settings=settings, now=NOW
    )
    assert summary.imported == 1 and summary.outside == 1


def test_store_refuses_naive_times():
    with pytest.raises(StoreError, match="time zone"):
        store.UTCDateTime().process_bind_param(pd.Timestamp("2026-01-01").to_pydatetime(), None)


def test_store_url_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.store_url() == "sqlite:///data/beatmap.db"
    monkeypatch.setenv(store.ENV_VAR, "postgresql+psycopg://localhost/beatmap")
    assert store.store_url() == "postgresql+psycopg://localhost/beatmap"
    assert store.store_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"


def test_open_without_create_needs_an_existing_store(tmp_path):
    with pytest.raises(StoreError, match="beatmap demo"):
        store.open_store(tmp_path / "none.db", create=False)


def test_areas_round_trip_geometry(loaded):
    blocks = store.read_blocks(loaded)
    assert isinstance(blocks, gpd.GeoDataFrame) and len(blocks) == 32
    assert blocks.crs.is_projected and blocks.geometry.area.sum() == pytest.approx(800 * 400, rel=1e-6)


def test_all_rejected_saves_nothing_and_names_the_reason(loaded, settings, tmp_path):
    before = store.counts(loaded)
    rows = "".join(f"03/{d:02d}/2026 10:00:00 AM,{INSIDE},foot_patrol,O1,\n" for d in range(1, 6))
    with pytest.raises(ImportFailedError) as caught:
        import_activity(
            loaded, csv(tmp_path, rows + f"2026-03-09T10:00,{INSIDE},nap,O1,\n"), settings=settings, now=NOW
        )
    message = str(caught.value)
    assert "all 6 rows were rejected" in message and "nothing was imported" in message
    assert "(5 rows)" in message and "'03/01/2026 10:00:00 AM'" in message  # the most common reason, with a value
    assert "set time_format = '%m/%d/%Y %I:%M:%S %p'" in message  # what to do
    assert "1 other reason" in message
    assert caught.value.summary.reject_reasons[next(iter(caught.value.summary.reject_reasons))] == 5
    assert store.counts(loaded) == before


def test_all_outside_the_beats_saves_nothing(loaded, settings, tmp_path):
    before = store.counts(loaded)
    north = "41.95,-87.63631"  # 8 km north of the test city
    with pytest.raises(ImportFailedError, match="every one of the 2 located rows falls outside every beat"):
        import_activity(
            loaded,
            csv(tmp_path, f"2026-03-01T10:00,{north},foot_patrol,O1,\n2026-03-02T10:00,{north},foot_patrol,O1,\n"),
            settings=settings,
            now=NOW,
        )
    assert store.counts(loaded) == before
    # One row inside is enough to import (and the outside one is counted).
    summary = import_activity(
        loaded,
        csv(tmp_path, f"2026-03-01T10:00,{north},foot_patrol,O1,\n2026-03-02T10:00,{INSIDE},foot_patrol,O1,\n"),
        settings=settings,
        now=NOW,
    )
    assert (summary.imported, summary.outside) == (2, 1)


def test_reasons_give_the_value_and_the_fix_grouped_with_examples(loaded, settings, tmp_path):
    mapping = tmp_path / "m.toml"
    mapping.write_text('[source]\ntime_format = "%m/%d/%Y %I:%M:%S %p"\n')
    rows = "".join(f"2012-01-{d:02d}T00:00:00.000,{INSIDE},foot_patrol,O1,\n" for d in range(1, 6))
    rows += f"01/09/2012 10:00:00 AM,{INSIDE},foot_patrol,O1,\n01/09/2012 11:00:00 AM,{INSIDE},,O1,\n"
    summary = import_activity(
        loaded, csv(tmp_path, rows), settings=settings, mapping_path=mapping, now=NOW, file_name="crimes.csv"
    )
    assert (summary.imported, summary.rejected, summary.file) == (1, 6, "crimes.csv")
    (time_reason, n_time), (kind_reason, n_kind) = summary.reject_reasons.items()
    assert (n_time, n_kind) == (5, 1)
    assert "'%m/%d/%Y %I:%M:%S %p'" in time_reason and "remove time_format to read ISO times" in time_reason
    examples = summary.reject_examples[time_reason]
    assert [e["row"] for e in examples] == [1, 2, 3]
    assert examples[0]["reason"].startswith("occurred_at '2012-01-01T00:00:00.000' is not in the format")
    assert summary.reject_examples[kind_reason][0]["reason"].startswith("kind '' is not one of")
    stored = store.read_rejects(loaded, batch_id=summary.batch_id)
    assert stored["reason"].str.endswith("remove time_format to read ISO times").sum() == 5  # never cut
    assert set(stored["file_name"]) == {"crimes.csv"}


def test_a_windows_1252_file_is_imported_with_the_guess_reported(loaded, settings, tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes(
        f"occurred_at,lat,lon,kind,officer_id,notes\n2026-03-01T10:00,{INSIDE},foot_patrol,O1,José\n".encode("cp1252")
    )
    summary = import_activity(loaded, path, settings=settings, now=NOW, file_name="upload.csv")
    assert store.read_events(loaded, columns=("notes",))["notes"].tolist() == ["José"]
    guessed = [w for w in summary.warnings if w["code"] == "encoding_guessed"]
    assert len(guessed) == 1 and "upload.csv: read as Windows-1252 (no UTF-8 found)" in str(guessed[0]["message"])
    assert guessed[0] in summary.to_dict()["warnings"]  # --json prints it
    # A UTF-8 file gets no such warning.
    path.write_bytes(
        f"occurred_at,lat,lon,kind,officer_id,notes\n2026-03-02T10:00,{INSIDE},foot_patrol,O1,José\n".encode()
    )
    again = import_activity(loaded, path, settings=settings, now=NOW)
    assert not [w for w in again.warnings if w["code"] == "encoding_guessed"]


def test_a_refused_windows_1252_import_still_names_the_guess(loaded, settings, tmp_path):
    path = tmp_path / "windows.csv"
    path.write_bytes(
        f"occurred_at,lat,lon,kind,officer_id,notes\nnot-a-date,{INSIDE},foot_patrol,O1,José\n".encode("cp1252")
    )
    with pytest.raises(ImportFailedError, match=r"read as Windows-1252 \(no UTF-8 found\)") as failed:
        import_activity(loaded, path, settings=settings, now=NOW)
    assert failed.value.summary.warnings[0]["code"] == "encoding_guessed"


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_a_file_read_in_many_pieces_gives_the_same_import(loaded, settings, tmp_path, monkeypatch, encoding):
    from dataclasses import replace

    from beatmap import activity

    # 600 rows: good ones, a duplicate of row 1 far down the file, garbage of two reasons, a row in another beat.
    lines = []
    for i in range(600):
        if i % 7 == 3:
            lines.append(f"garbage-{i},{INSIDE},foot_patrol,O1,é {i}")
        elif i % 11 == 5:
            lines.append(f"2026-03-01T10:{i % 60:02d},{INSIDE},nap,O1,n{i}")
        elif i == 590:
            lines.append(f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,row 1")
        else:
            lines.append(f"2026-03-{1 + i % 28:02d}T{i % 24:02d}:00,{INSIDE},foot_patrol,O{i % 5},row {i + 1}")
    lines[0] = f"2026-03-01T10:00,{INSIDE},foot_patrol,O1,row 1"
    path = tmp_path / "big.csv"
    path.write_bytes(("occurred_at,lat,lon,kind,officer_id,notes\n" + "\n".join(lines) + "\n").encode(encoding))
    few = replace(settings, rejects_kept_per_reason=5)

    whole = import_activity(loaded, path, settings=few, now=NOW)
    other = store.open_store(store_db(tmp_path / "pieces.db"))
    (tmp_path / "second").mkdir()
    load_two_beats(other, tmp_path / "second", settings=settings, grid_m=100)
    monkeypatch.setattr(activity, "CHUNK_BYTES", 1024)  # about 20 rows a piece
    monkeypatch.setattr(activity, "CHUNK_ROWS", 23)
    pieces = import_activity(other, path, settings=few, now=NOW)

    assert len(list(activity.read_activity_chunks(path))) > 10
    for summary in (whole, pieces):
        assert summary.rows == 600 and summary.imported + summary.duplicates + summary.rejected == 600
        assert summary.duplicates == 1  # row 591 repeats row 1, many pieces later
    assert (pieces.imported, pieces.rejected, pieces.reject_reasons) == (
        whole.imported,
        whole.rejected,
        whole.reject_reasons,
    )
    assert pieces.reject_examples == whole.reject_examples
    # Rejects kept: the first five of each reason, with their cells.
    kept = store.read_rejects(other, batch_id=pieces.batch_id)
    assert len(kept) == 5 * len(pieces.reject_reasons) == pieces.rejects_kept
    firsts = kept.sort_values("row_number")["row_number"].tolist()
    assert firsts[:3] == [4, 6, 11]
    assert all(json.loads(raw)["lat"] for raw in kept["raw"])
    other.dispose()
