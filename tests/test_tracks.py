"""GPS tracks: hand-made tracks with known answers, with and without ±10 m jitter, and property tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beatmap.index import build_block_index
from beatmap.tracks import (
    ENFORCEMENT,
    FOOT,
    NON_ENFORCEMENT,
    VEHICLE,
    TrackRules,
    apportion,
    credit_tracks,
    local_hours,
    segment_pings,
)
from tests.conftest import X0, Y0
from tests.track_helpers import row_of_blocks

RULES = TrackRules()
T0 = int(pd.Timestamp("2026-03-02 14:00", tz="UTC").timestamp())


@pytest.fixture(scope="module")
def blocks():
    return row_of_blocks()


def track(
    points: list[tuple[int, float, float]], *, device: str = "r1", jitter: float = 0.0, seed: int = 0, **extra: object
) -> pd.DataFrame:
    """Pings ``(seconds after T0, x, y)`` in test-city metres, with uniform jitter of ±``jitter`` metres."""
    rng = np.random.default_rng(seed)
    t, x, y = (np.array(v, dtype=float) for v in zip(*points, strict=True))
    frame = pd.DataFrame(
        {
            "device_id": device,
            "ts": (T0 + t).astype(np.int64),
            "x": X0 + x + rng.uniform(-jitter, jitter, len(t)),
            "y": Y0 + y + rng.uniform(-jitter, jitter, len(t)),
        }
    )
    for key, value in extra.items():
        frame[key] = value
    return frame


def stay(start: int, end: int, x: float, y: float = 50.0, step: int = 20) -> list[tuple[int, float, float]]:
    return [(t, x, y) for t in range(start, end + 1, step)]


def line(start: int, x0: float, speed_mps: float, n: int, step: int, y: float = 50.0) -> list[tuple[int, float, float]]:
    """``n`` pings every ``step`` seconds from ``start`` moving along x at ``speed_mps`` from ``x0``."""
    return [(start + k * step, x0 + k * step * speed_mps, y) for k in range(n)]


def seconds_by(credit, *keys: str) -> dict:
    grouped = credit.presence.groupby(list(keys), dropna=False)["seconds"].sum()
    return {k: int(v) for k, v in grouped.items()}


@pytest.mark.parametrize("jitter", [0.0, 10.0])
def test_a_twelve_minute_stay_then_passing_through_three_blocks(blocks, jitter):
    # 12 minutes at the centre of b0, then walking east at 2 m/s (7.2 km/h), 40 m a ping: every ping lies inside
    # a block, 10, 50 or 90 m into it, so each crossing is 10 m in each block and 20 m of street.
    pings = track(stay(0, 720, 50) + line(740, 90, 2.0, 10, 20), jitter=jitter, seed=1)
    credit = credit_tracks(pings, blocks, rules=RULES)
    per_block = seconds_by(credit, "block_id")
    assert sum(per_block.values()) == 920
    assert set(credit.presence["mode"]) == {FOOT}
    if jitter == 0:
        assert per_block == {"b0": 750, "b1": 60, "b2": 60, "b3": 50}
    else:
        for block_id, expected in {"b0": 750, "b1": 60, "b2": 60, "b3": 50}.items():
            assert abs(per_block.get(block_id, 0) - expected) <= 20, block_id
        assert set(per_block) <= {"b0", "b1", "b2", "b3"}
    visits = credit.visits
    assert visits["block_id"].tolist() == ["b0"]
    assert visits["beat_id"].tolist() == ["A"]
    assert abs(int(visits["seconds"].iloc[0]) - 750) <= 20
    assert visits["start"].iloc[0] == pd.Timestamp(T0, unit="s", tz="UTC")


@pytest.mark.parametrize("jitter", [0.0, 10.0])
def test_a_car_at_40_kmh_is_vehicle_and_spread_over_the_blocks_it_crossed(blocks, jitter):
    speed = 40 / 3.6
    pings = track(line(0, 5, speed, 9, 10), jitter=jitter, seed=2)  # 5 m to about 894 m
    credit = credit_tracks(pings, blocks, rules=RULES)
    assert set(credit.pings["mode"]) == {VEHICLE}
    per_block = seconds_by(credit, "block_id")
    assert sum(per_block.values()) == 80
    assert set(per_block) == {f"b{k}" for k in range(8)}
    # Each inner block holds 100 m of road (9 s at 40 km/h); a street crossed between two pings goes to the blocks
    # of those pings, so a block gets 0 to 2 streets of 20 m more: 9 to 12.6 s, plus a second of rounding.
    slack = 2.5 if jitter else 1.0
    for k in range(1, 7):
        assert 100 / speed - slack <= per_block[f"b{k}"] <= 140 / speed + slack
    assert credit.visits.empty


def test_a_car_stopped_at_a_light_stays_vehicle(blocks):
    speed = 40 / 3.6
    drive = line(0, 5, speed, 10, 10)
    x_stop = drive[-1][1]
    stopped = [(90 + k * 10, x_stop, 50.0) for k in range(1, 7)]  # 60 s at the light
    onward = line(160, x_stop, speed, 10, 10)[1:]
    pings = track(drive + stopped + onward, jitter=10.0, seed=3)
    credit = credit_tracks(pings, blocks, rules=RULES)
    assert set(credit.pings["mode"]) == {VEHICLE}
    assert credit.visits.empty


def test_an_officer_who_parks_and_walks_becomes_foot_after_the_stop(blocks):
    speed = 40 / 3.6
    x_park = 530.0  # the centre of b4
    drive = line(0, x_park - 5 * 10 * speed, speed, 6, 10)
    parked = [(50 + k * 10, x_park, 50.0) for k in range(1, 4)]
    # Then 20 minutes on foot at 5 km/h (28 m a ping) round a 35 m circle about the centre of b4.
    angle = np.arange(1, 61) * (5 / 3.6 * 20 / 35)
    walk = [(80 + 20 * k, x_park + 35 * np.sin(a), 50 + 35 * np.cos(a)) for k, a in enumerate(angle, start=1)]
    pings = track(drive + parked + walk, jitter=10.0, seed=4)
    credit = credit_tracks(pings, blocks, rules=RULES)
    modes = credit.pings["mode"].tolist()
    assert modes[:5] == [VEHICLE] * 5
    assert modes[len(drive) + len(parked) :] == [FOOT] * len(walk)
    assert credit.visits["block_id"].tolist() == ["b4"]
    assert credit.visits["beat_id"].tolist() == ["B"]


@pytest.mark.parametrize("jitter", [0.0, 10.0])
def test_a_walk_at_5_kmh_is_foot_and_declared_vehicles_are_always_vehicle(blocks, jitter):
    walk = line(0, 10, 5 / 3.6, 40, 30)
    radio = credit_tracks(track(walk, jitter=jitter, seed=5), blocks, rules=RULES)
    assert set(radio.pings["mode"]) == {FOOT}
    avl = credit_tracks(track(walk, jitter=jitter, seed=5, device_kind="vehicle"), blocks, rules=RULES)
    assert set(avl.pings["mode"]) == {VEHICLE}
    assert avl.visits.empty
    assert radio.presence["seconds"].sum() == avl.presence["seconds"].sum() == 39 * 30


def test_a_one_hour_gap_is_gap_not_presence(blocks):
    pings = track(stay(0, 600, 50) + stay(4200, 4800, 50), jitter=10.0, seed=6)
    credit = credit_tracks(pings, blocks, rules=RULES)
    device = credit.devices.iloc[0]
    assert device["segments"] == 2
    assert device["credited_seconds"] == 600 + RULES.max_gap_s + 600
    assert device["gap_seconds"] == 3600 - RULES.max_gap_s
    assert credit.presence["seconds"].sum() == 1500
    # Two stays of 10 (and 15) minutes: the gap does not join them into one visit of an hour and more.
    assert credit.visits["seconds"].max() < 3600


def test_a_cad_call_covering_half_a_stay(blocks):
    pings = track(stay(0, 1200, 50), jitter=10.0, seed=7, unit_id="U1", officer_id="o1")
    calls = pd.DataFrame(
        {
            "unit_id": ["U1", "U2"],
            "occurred_at": pd.to_datetime([T0 + 600, T0], unit="s", utc=True),
            "ended_at": pd.to_datetime([T0 + 1200, T0 + 1200], unit="s", utc=True),
        }
    )
    credit = credit_tracks(pings, blocks, rules=RULES, calls=calls)
    assert seconds_by(credit, "purpose") == {ENFORCEMENT: 600, NON_ENFORCEMENT: 600}
    assert seconds_by(credit, "block_id", "unit_id", "officer_id") == {("b0", "U1", "o1"): 1200}
    visit = credit.visits.iloc[0]
    assert (visit["seconds"], visit["enforcement_seconds"]) == (600, 600)
    # A call with no clear time lasts call_default_minutes; overlapping calls of a unit count once.
    open_calls = pd.DataFrame(
        {
            "unit_id": ["U1", "U1"],
            "occurred_at": pd.to_datetime([T0 + 600, T0 + 700], unit="s", utc=True),
            "ended_at": pd.to_datetime([None, T0 + 800], unit="s", utc=True),
        }
    )
    rules = TrackRules(call_default_minutes=5)
    credit = credit_tracks(pings, blocks, rules=rules, calls=open_calls)
    assert seconds_by(credit, "purpose") == {ENFORCEMENT: 300, NON_ENFORCEMENT: 900}
    assert credit.visits["seconds"].tolist() == [900]


def test_two_devices_of_one_unit_both_count_during_its_call(blocks):
    radio = track(stay(0, 900, 50), device="radio-7", unit_id="U7", officer_id="o7", device_kind="radio")
    car = track(stay(0, 900, 170), device="car-7", unit_id="U7", device_kind="vehicle")
    calls = pd.DataFrame(
        {
            "unit_id": ["U7"],
            "occurred_at": pd.to_datetime([T0 + 300], unit="s", utc=True),
            "ended_at": pd.to_datetime([T0 + 600], unit="s", utc=True),
        }
    )
    credit = credit_tracks(pd.concat([radio, car]), blocks, rules=RULES, calls=calls)
    assert seconds_by(credit, "block_id", "mode", "purpose") == {
        ("b0", FOOT, ENFORCEMENT): 300,
        ("b0", FOOT, NON_ENFORCEMENT): 600,
        ("b1", VEHICLE, ENFORCEMENT): 300,
        ("b1", VEHICLE, NON_ENFORCEMENT): 600,
    }
    assert credit.devices["device_id"].tolist() == ["car-7", "radio-7"]
    assert credit.visits["device_id"].tolist() == ["radio-7"]


def test_a_track_across_the_autumn_time_change(blocks):
    # Chicago falls back at 07:00 UTC on 1 November 2026: 01:00-02:00 local happens twice.
    start = int(pd.Timestamp("2026-11-01 05:30", tz="UTC").timestamp())
    pings = track([(t, 50.0, 50.0) for t in range(start - T0, start - T0 + 7200 + 1, 60)])
    credit = credit_tracks(pings, blocks, rules=RULES)
    by_hour = seconds_by(credit, "hour")
    assert by_hour == {
        pd.Timestamp("2026-11-01 05:00", tz="UTC"): 1800,
        pd.Timestamp("2026-11-01 06:00", tz="UTC"): 3600,
        pd.Timestamp("2026-11-01 07:00", tz="UTC"): 1800,
    }
    local = credit.presence.assign(local=local_hours(credit.presence, "America/Chicago"))
    assert local.groupby("local")["seconds"].sum().to_dict() == {0: 1800, 1: 5400}


def test_time_outside_every_block_is_reported(blocks):
    pings = track(stay(0, 600, 50, y=400))
    credit = credit_tracks(pings, blocks, rules=RULES)
    assert credit.presence["block_id"].isna().all()
    assert credit.devices["outside_seconds"].tolist() == [600]
    assert credit.visits.empty


def test_the_block_index_gives_the_same_answers(blocks):
    pings = track(stay(0, 720, 50) + line(740, 90, 2.0, 10, 20) + line(1000, 5, 40 / 3.6, 9, 10), jitter=10.0)
    index = build_block_index(blocks, edge_tolerance_m=RULES.edge_tolerance_m, snap_m=RULES.snap_m)
    pd.testing.assert_frame_equal(
        credit_tracks(pings, blocks, rules=RULES).presence,
        credit_tracks(pings, blocks, rules=RULES, index=index).presence,
    )


def test_apportion_keeps_totals_exact():
    owner = np.array([0, 0, 0, 1, 1, 2])
    weight = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 5.0])
    out = apportion(owner, weight, np.array([10, 3, 7]))
    assert out.tolist() == [4, 3, 3, 2, 1, 7]


@st.composite
def random_tracks(draw):
    n_devices = draw(st.integers(1, 3))
    frames = []
    for d in range(n_devices):
        steps = draw(st.lists(st.integers(1, 900), min_size=1, max_size=40))
        ts = T0 + np.cumsum([0, *steps])
        xs = draw(st.lists(st.floats(-50, 1000), min_size=len(ts), max_size=len(ts)))
        ys = draw(st.lists(st.floats(-50, 150), min_size=len(ts), max_size=len(ts)))
        frames.append(
            pd.DataFrame(
                {
                    "device_id": f"d{d}",
                    "ts": ts.astype(np.int64),
                    "x": X0 + np.array(xs),
                    "y": Y0 + np.array(ys),
                    "unit_id": f"U{d % 2}",
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=40, deadline=None)
@given(pings=random_tracks(), seed=st.integers(0, 2**16))
def test_credited_seconds_are_the_sum_of_capped_intervals_in_any_order(blocks, pings, seed):
    calls = pd.DataFrame(
        {
            "unit_id": ["U0", "U1"],
            "occurred_at": pd.to_datetime([T0 + 500, T0 + 2000], unit="s", utc=True),
            "ended_at": pd.to_datetime([T0 + 4000, None], unit="s", utc=True),
        }
    )
    credit = credit_tracks(pings, blocks, rules=RULES, calls=calls)
    expected = sum(
        int(np.minimum(np.diff(np.sort(g["ts"].to_numpy())), RULES.max_gap_s).sum())
        for _, g in pings.groupby("device_id")
    )
    assert int(credit.presence["seconds"].sum()) == expected
    assert int(credit.devices["credited_seconds"].sum()) == expected
    assert (credit.presence["seconds"] > 0).all()
    shuffled = pings.sample(frac=1, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(credit.presence, credit_tracks(shuffled, blocks, rules=RULES, calls=calls).presence)


def test_segments_cut_where_the_gap_exceeds_the_limit():
    device = np.array([0, 0, 0, 1, 1])
    ts = np.array([0, 100, 500, 0, 10])
    segment, credit, gap = segment_pings(device, ts, 300)
    assert segment.tolist() == [0, 0, 1, 2, 2]
    assert credit.tolist() == [100, 300, 0, 10, 0]
    assert gap.tolist() == [0, 100, 0, 0, 0]
