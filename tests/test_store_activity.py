"""Activity in the store: events, rejects and assignment updates as arrays through the driver, on both databases."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from beatmap import store
from tests.conftest import store_db


@pytest.fixture
def url(tmp_path):
    """A fresh store: a SQLite file, or a PostgreSQL schema with $BEATMAP_TEST_DB."""
    return store_db(tmp_path / "s.db")


def records(n: int, *, first: int = 0) -> pd.DataFrame:
    at = pd.Timestamp("2026-03-01 10:00", tz="UTC") + pd.to_timedelta(range(n), unit="min")
    return pd.DataFrame(
        {
            "fingerprint": [f"fp{i:04d}" for i in range(first, first + n)],
            "row_number": range(1, n + 1),
            "source": "feed",
            "source_id": [None if i % 2 else f"s{i}" for i in range(n)],
            "occurred_at": at,
            "ended_at": [pd.NaT] * n,
            "duration_min": [None] * n,
            "kind": ["foot_patrol", "enforcement"] * (n // 2) + ["other"] * (n % 2),
            "subtype": None,
            "officer_id": "P1",
            "unit_id": None,
            "self_initiated": [True, None] * (n // 2) + [False] * (n % 2),
            "notes": None,
            "reported_beat": "A",
            "lat": 41.88,
            "lon": -87.63,
            "block_id": [f"b{i % 3}" for i in range(n)],
            "beat_id": "A",
            "snapped": [False] * n,
            "distance_m": 0.0,
        }
    )


def new_batch(engine) -> int:
    with store.transaction(engine) as conn:
        return store.add_batch(conn, what="activity", source="feed", file_name="f.csv", summary={})


def test_events_go_in_as_arrays_and_read_back_the_same(url):
    engine = store.open_store(url)
    batch = new_batch(engine)
    with store.transaction(engine) as conn:
        assert store.insert_events(conn, batch, records(5)) == set(records(5)["fingerprint"])
    back = store.read_events(engine, columns=("occurred_at", "kind", "block_id", "snapped", "duration_min"))
    assert back["occurred_at"].tolist() == records(5)["occurred_at"].tolist()
    assert back["kind"].tolist() == records(5)["kind"].tolist()
    assert back["block_id"].tolist() == ["b0", "b1", "b2", "b0", "b1"]
    assert not back["snapped"].any() and back["duration_min"].isna().all()
    engine.dispose()


def test_assignment_updates_by_event_id(url):
    engine = store.open_store(url)
    batch = new_batch(engine)
    with store.transaction(engine) as conn:
        store.insert_events(conn, batch, records(4))
        located = store.read_event_locations(conn)
        update = pd.DataFrame(
            {
                "event_id": located["event_id"],
                "block_id": ["x1", None, "x2", "x1"],
                "beat_id": ["B", None, "B", "B"],
                "snapped": [True, False, False, True],
                "distance_m": [3.5, None, 0.0, 1.25],
            }
        )
        store.update_assignments(conn, update)
    back = store.read_events(engine, columns=("event_id", "block_id", "beat_id", "snapped"))
    assert back["block_id"].fillna("-").tolist() == ["x1", "-", "x2", "x1"]
    assert back["beat_id"].fillna("-").tolist() == ["B", "-", "B", "B"]
    assert back["snapped"].astype(bool).tolist() == [True, False, False, True]
    engine.dispose()


def test_rejects_keep_row_reason_and_cells(url):
    engine = store.open_store(url)
    batch = new_batch(engine)
    rejects = pd.DataFrame(
        {
            "row": [3, 7],
            "reason": ["lat 'x' is not a number", "occurred_at is empty"],
            "raw": [{"lat": "x", "note": "caf\u00e9"}, {"occurred_at": ""}],
            "fingerprint": ["r1", "r2"],
        }
    )
    with store.transaction(engine) as conn:  # (each import keeps its own rejects: see tests/test_imports.py)
        store.insert_rejects(conn, batch, rejects, source="feed", file_name="f.csv")
    kept = store.read_rejects(engine)
    assert kept["row_number"].tolist() == [3, 7]
    assert kept["reason"].tolist() == rejects["reason"].tolist()
    assert json.loads(kept["raw"].iloc[0]) == {"lat": "x", "note": "caf\u00e9"}
    engine.dispose()


def test_nothing_to_write_writes_nothing(url):
    engine = store.open_store(url)
    batch = new_batch(engine)
    with store.transaction(engine) as conn:
        store.update_assignments(
            conn, pd.DataFrame(columns=["event_id", "block_id", "beat_id", "snapped", "distance_m"])
        )
        store.insert_rejects(
            conn, batch, pd.DataFrame(columns=["row", "reason", "raw", "fingerprint"]), source="feed", file_name="f.csv"
        )
    assert store.counts(engine)["rejects"] == 0
    engine.dispose()


def test_known_fingerprints_by_look_up_and_by_reading_the_column(url):
    engine = store.open_store(url)
    batch = new_batch(engine)
    with store.transaction(engine) as conn:
        assert store.existing_fingerprints(conn, store.events, ["fp0001"]) == set()
        store.insert_events(conn, batch, records(9))
        # One of nine: looked up; most of the table: the column read once.  Same answers.
        assert store.existing_fingerprints(conn, store.events, ["fp0001", "zz"][:1]) == {"fp0001"}
        assert store.existing_fingerprints(conn, store.events, ["nope"]) == set()
        many = [f"fp{i:04d}" for i in range(5, 15)]
        assert store.existing_fingerprints(conn, store.events, many) == {f"fp{i:04d}" for i in range(5, 9)}
    engine.dispose()
