"""Presence sums past their memory bound are spilled to files and summed a partition at a time, to the same rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from beatmap import presence
from beatmap.presence import PresenceSum, spill_partition
from beatmap.tracks import PRESENCE_COLUMNS

KEYS = ["key", *(c for c in PRESENCE_COLUMNS if c != "seconds")]


def random_presence(rows: int, seed: int) -> pd.DataFrame:
    """Presence rows whose keys repeat (within the frame and across frames), with missing blocks, units and officers."""
    rng = np.random.default_rng(seed)
    blocks = np.array([f"b{i:03d}" for i in range(40)] + [None], dtype=object)
    units = np.array(["U1", "U2", None], dtype=object)
    return pd.DataFrame(
        {
            "key": rng.choice([-1, -2, 5], rows),
            "block_id": blocks[rng.integers(0, len(blocks), rows)],
            "hour": pd.to_datetime(1_772_000_000 // 3600 * 3600 + 3600 * rng.integers(0, 30, rows), unit="s", utc=True),
            "unit_id": units[rng.integers(0, 3, rows)],
            "officer_id": units[rng.integers(0, 3, rows)],
            "mode": rng.choice(["foot", "vehicle"], rows),
            "purpose": rng.choice(["enforcement", "non_enforcement"], rows),
            "seconds": rng.integers(1, 600, rows),
        }
    )


def expected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    whole = pd.concat(frames, ignore_index=True)
    return whole.groupby(KEYS, dropna=False, as_index=False)["seconds"].sum()


def ordered(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.astype({"key": np.int64, "seconds": np.int64, "mode": str, "purpose": str})
    for name in ("block_id", "unit_id", "officer_id"):
        out[name] = out[name].astype(object).where(out[name].notna(), "<none>")
    return out.sort_values(KEYS).reset_index(drop=True)[[*KEYS, "seconds"]]


def test_a_sum_past_its_bound_spills_and_gives_the_rows_of_a_sum_held_in_memory(tmp_path, monkeypatch):
    frames = [random_presence(3_000, seed) for seed in range(6)]
    held = PresenceSum(None)
    for frame in frames:
        held.add(frame)
    monkeypatch.setattr(presence, "SPILL_ROWS", 200)
    blocks = pd.CategoricalDtype(sorted(f"b{i:03d}" for i in range(40)))
    spilled = PresenceSum(tmp_path / "spill", block_ids=blocks)
    for frame in frames:
        spilled.add(frame)
    assert list((tmp_path / "spill").glob("p*.arrow"))  # it did spill
    in_memory = list(held.pieces())
    pieces = list(spilled.pieces())
    assert len(in_memory) == 1 and len(pieces) == presence.SPILL_PARTITIONS  # 40 x 30 block-hours fill every one
    want = ordered(expected(frames))
    pd.testing.assert_frame_equal(ordered(in_memory[0]), want)
    pd.testing.assert_frame_equal(ordered(pd.concat(pieces, ignore_index=True)), want)  # no key in two pieces
    assert spilled.totals() == held.totals()
    own = want[want["key"] < 0]
    assert held.totals() == {
        "presence": int(own["seconds"].sum()),
        "enforcement": int(own.loc[own["purpose"] == "enforcement", "seconds"].sum()),
        "vehicle": int(own.loc[own["mode"] == "vehicle", "seconds"].sum()),
        "outside": int(own.loc[own["block_id"] == "<none>", "seconds"].sum()),
    }


def test_sums_of_several_tasks_share_a_spill_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(presence, "SPILL_ROWS", 100)
    frames = [random_presence(2_000, seed) for seed in range(10, 14)]
    for frame in frames[:3]:  # three tasks spill on their own
        task = PresenceSum(tmp_path)
        task.add(frame)
        assert task.held().empty
    client = PresenceSum(tmp_path)
    client.add(frames[3].iloc[:50])  # and the client holds a few rows under the bound
    client.add(frames[3].iloc[50:90])
    assert len(client.held()) <= 90
    pieces = list(client.pieces())
    pd.testing.assert_frame_equal(
        ordered(pd.concat(pieces, ignore_index=True)), ordered(expected([*frames[:3], frames[3].iloc[:90]]))
    )


def test_a_block_and_hour_spill_to_one_partition_however_the_block_is_stored():
    frame = random_presence(5_000, 3)
    blocks = pd.CategoricalDtype(sorted(f"b{i:03d}" for i in range(40)))
    as_text = spill_partition(frame, 64)
    as_categories = spill_partition(frame.astype({"block_id": blocks}), 64)
    np.testing.assert_array_equal(as_text, as_categories)
    in_nanoseconds = frame.assign(hour=frame["hour"].dt.as_unit("ns"))  # as read back from a file, perhaps
    np.testing.assert_array_equal(as_text, spill_partition(in_nanoseconds, 64))
    assert len(np.unique(as_text)) > 32  # spread over the partitions
    keyed = pd.DataFrame({"block": frame["block_id"].fillna(""), "hour": frame["hour"], "part": as_text})
    assert (keyed.groupby(["block", "hour"])["part"].nunique() == 1).all()
