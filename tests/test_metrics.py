"""Coverage per block and beat, flags and their reasons, Gini, windows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from beatmap.metrics import (
    Window,
    activity_mask,
    coverage_by_beat,
    coverage_by_block,
    coverage_by_officer,
    default_window,
    gini,
    local_activity,
    neighbour_pairs,
    recorded_end,
    shift_hours,
    visits_by_hour_and_weekday,
    weekly_trend,
    window_rows,
)
from beatmap.settings import Settings

WINDOW = Window(date(2026, 1, 1), date(2026, 3, 31), "America/Chicago")


def events_for(counts: dict[str, dict[str, int]], *, day: str = "2026-02-01T12:00") -> pd.DataFrame:
    rows = []
    for block, kinds in counts.items():
        for kind, n in kinds.items():
            for i in range(n):
                at = pd.Timestamp(day, tz="America/Chicago") + pd.Timedelta(days=i % 60)
                rows.append(
                    {"occurred_at": at.tz_convert("UTC"), "kind": kind, "block_id": block, "officer_id": f"O{i % 3}"}
                )
    return pd.DataFrame(rows)


def test_flags_and_reasons():
    typical = {f"t{i}": {"foot_patrol": 30, "enforcement": 2} for i in range(8)}
    counts = {
        **typical,
        "enf": {"enforcement": 5},
        "none": {"enforcement": 1},
        "rare": {"foot_patrol": 1, "community_visit": 1},
        "low-but-fine": {"foot_patrol": 18},
    }  # 60% of typical: within chance of 75%
    blocks = pd.DataFrame({"block_id": list(counts), "beat_id": "B1"})
    cov = coverage_by_block(blocks, events_for(counts), window=WINDOW, settings=Settings()).set_index("block_id")
    assert cov.loc["enf", "flag"] == "enforcement_only"
    assert "5 enforcement events and no foot patrol or community visit" in cov.loc["enf", "flag_reason"]
    assert cov.loc["none", "flag"] == "unvisited" and "(1 enforcement event)" in cov.loc["none", "flag_reason"]
    assert cov.loc["rare", "flag"] == "rarely_visited"
    assert "Only 2 foot patrols or community visits" in cov.loc["rare", "flag_reason"]
    assert "typical block in beat B1 had 30" in cov.loc["rare", "flag_reason"]
    assert pd.isna(cov.loc["low-but-fine", "flag"]) and pd.isna(cov.loc["t0", "flag"])
    assert cov.loc["t0", "enforcement_share"] == pytest.approx(2 / 32, abs=1e-3)
    assert cov.loc["t0", "officers"] == 3 and cov.loc["t0", "days_visited"] == 30
    assert cov.loc["t0", "last_visit"] == date(2026, 3, 2)
    assert cov.loc["none", "enforcement_share"] == 1.0


def test_small_numbers_are_not_flagged_as_rare():
    counts = {f"b{i}": {"foot_patrol": n} for i, n in enumerate([4, 3, 5, 4, 1, 2, 6])}
    blocks = pd.DataFrame({"block_id": list(counts), "beat_id": "quiet"})
    cov = coverage_by_block(blocks, events_for(counts), window=WINDOW, settings=Settings())
    assert cov["flag"].isna().all()


def test_events_outside_the_window_or_blocks_do_not_count():
    blocks = pd.DataFrame({"block_id": ["a"], "beat_id": "B"})
    ev = pd.DataFrame(
        {
            "occurred_at": pd.to_datetime(
                ["2025-12-31T23:00-06:00", "2026-04-01T00:30-05:00", "2026-03-31T23:30-05:00", "2026-02-01T12:00Z"],
                utc=True,
            ),
            "kind": ["foot_patrol", "foot_patrol", "foot_patrol", "foot_patrol"],
            "block_id": ["a", "a", "a", None],
        }
    )
    cov = coverage_by_block(blocks, ev, window=WINDOW, settings=Settings())
    assert cov["foot_patrols"].tolist() == [1]


def test_result_is_aligned_to_the_input_index():
    blocks = pd.DataFrame({"block_id": ["x", "y"], "beat_id": "B"}, index=[10, 20])
    cov = coverage_by_block(blocks, events_for({"y": {"foot_patrol": 2}}), window=WINDOW, settings=Settings())
    assert cov.index.tolist() == [10, 20] and cov["visits"].tolist() == [0, 2]


def test_beat_summary():
    counts = {"a": {"foot_patrol": 10}, "b": {"foot_patrol": 10}, "c": {"enforcement": 4}, "d": {}}
    blocks = pd.DataFrame({"block_id": list(counts), "beat_id": "B"})
    cov = coverage_by_block(blocks, events_for(counts), window=WINDOW, settings=Settings())
    beat = coverage_by_beat(cov).iloc[0]
    assert beat["blocks"] == 4 and beat["blocks_visited"] == 2 and beat["coverage_pct"] == 50.0
    assert beat["enforcement_only"] == 1 and beat["unvisited"] == 1 and beat["flagged"] == 2
    assert beat["gini"] == pytest.approx(0.5)


def test_gini():
    assert gini([5, 5, 5, 5]) == 0
    assert gini([0, 0, 0, 12]) == pytest.approx(0.75)
    assert np.isnan(gini([0, 0]))


def test_default_window_is_last_days_of_data():
    last = pd.Timestamp("2026-03-31T03:00Z").to_pydatetime()  # still March 30 in Chicago
    window = default_window(last, settings=Settings(window_days=90))
    assert (window.start, window.end, window.days) == (date(2025, 12, 31), date(2026, 3, 30), 90)
    assert window.previous().end == date(2025, 12, 30)


def test_default_window_starts_no_earlier_than_the_data():
    first = pd.Timestamp("2026-02-15T05:30Z").to_pydatetime()  # still February 14 in Chicago
    last = pd.Timestamp("2026-03-31T03:00Z").to_pydatetime()
    settings = Settings(window_days=90)
    window = default_window(last, settings=settings, first_activity=first)
    assert (window.start, window.end) == (date(2026, 2, 14), date(2026, 3, 30))
    long_ago = pd.Timestamp("2020-01-01T12:00Z").to_pydatetime()  # more data than the window: the last 90 days
    assert default_window(last, settings=settings, first_activity=long_ago).start == date(2025, 12, 31)
    chosen = default_window(last, settings=settings, first_activity=first, start=date(2026, 1, 1))
    assert chosen.start == date(2026, 1, 1)  # a start the user chose is kept


def test_window_bounds_are_local_midnights():
    first, after = Window(date(2026, 3, 1), date(2026, 3, 8), "America/Chicago").utc_bounds()
    assert first.isoformat() == "2026-03-01T06:00:00+00:00" and after.isoformat() == "2026-03-09T05:00:00+00:00"


def test_shift_hours_wrap_midnight():
    shifts = Settings().shifts
    assert shift_hours(shifts, ["night"]) == (0, 1, 2, 3, 4, 5, 6, 23)
    assert len(shift_hours(shifts, ["day", "evening", "night"])) == 24


def test_activity_filters_and_dashboard_tables():
    counts = {"a": {"foot_patrol": 14, "enforcement": 3}, "b": {"community_visit": 7}}
    activity = local_activity(events_for(counts), timezone="America/Chicago")
    assert activity_mask(activity, kinds=["enforcement"]).sum() == 3
    assert activity_mask(activity, hours=[12]).sum() == 24 and activity_mask(activity, hours=[13]).sum() == 0
    sundays = activity_mask(activity, weekdays=[6])
    assert 0 < sundays.sum() < 24 and (activity.loc[sundays, "day"].dt.day_of_week == 6).all()

    trend = weekly_trend(activity, ["a", "b", "c", "d"], window=WINDOW)
    assert trend["visits"].sum() == 21 and trend["enforcement"].sum() == 3
    assert trend["week"].dt.day_of_week.eq(0).all() and trend["coverage_pct"].max() == 50.0

    grid = visits_by_hour_and_weekday(activity, window=WINDOW)
    assert grid.shape == (7, 24) and grid[12].sum() == 21 and grid.drop(columns=12).to_numpy().sum() == 0

    officers = coverage_by_officer(activity, window=WINDOW)
    assert officers["visits"].sum() == 21 and set(officers["officer_id"]) == {"O0", "O1", "O2"}


def test_window_rows_cut_a_day_sorted_frame_by_slice_and_any_other_by_mask():
    counts = {"a": {"foot_patrol": 50, "enforcement": 20}, "b": {"community_visit": 40}}
    activity = local_activity(events_for(counts, day="2025-12-20T12:00"), timezone="America/Chicago")
    expected = activity[(activity["day"] >= "2026-01-01") & (activity["day"] <= "2026-01-31")]
    window = Window(date(2026, 1, 1), date(2026, 1, 31), "America/Chicago")
    shuffled = window_rows(activity, window)  # events_for repeats days per block: not sorted, so a mask
    ordered = activity.sort_values("day", kind="stable")
    sliced = window_rows(ordered, window)
    assert not activity["day"].is_monotonic_increasing and 0 < len(expected) < len(activity)
    assert sorted(shuffled.index) == sorted(expected.index) == sorted(sliced.index)
    assert sliced["day"].min() == pd.Timestamp("2026-01-01") and sliced["day"].max() == pd.Timestamp("2026-01-31")
    assert window_rows(ordered, Window(date(2027, 1, 1), date(2027, 1, 2), "America/Chicago")).empty


def test_activity_mask_counts_no_row_of_a_missing_kind():
    activity = pd.DataFrame(
        {
            "kind": pd.Categorical(["foot_patrol", None, "enforcement"], categories=["foot_patrol", "enforcement"]),
            "weekday": np.array([0, 1, 2], dtype="int8"),
            "hour": np.array([5, 6, 7], dtype="int8"),
        }
    )
    assert activity_mask(activity, kinds=["foot_patrol", "enforcement"]).tolist() == [True, False, True]
    assert activity_mask(activity, kinds=["enforcement"], hours=[7, 8]).tolist() == [False, False, True]
    assert activity_mask(activity, weekdays=[0, 1]).tolist() == [True, False, False]


@pytest.mark.parametrize("zone, day", [("America/Santiago", date(2026, 9, 6)), ("America/Havana", date(2026, 3, 8))])
def test_a_day_without_a_local_midnight_starts_at_its_first_valid_instant(zone, day):
    first, after = Window(day, day, zone).utc_bounds()
    assert first.tzinfo is not None and timedelta(hours=22) < after - first <= timedelta(hours=24)
    assert pd.Timestamp(first).tz_convert(zone).hour == 1  # the clocks jump from 00:00 to 01:00


def test_partial_weeks_at_the_ends_of_the_trend_have_no_coverage_figure():
    activity = local_activity(events_for({"a": {"foot_patrol": 14}}), timezone="America/Chicago")
    trend = weekly_trend(activity, ["a", "b"], window=WINDOW)
    assert trend["days"].iloc[0] == 4 and trend["days"].iloc[-1] == 2 and trend["days"].iloc[1:-1].eq(7).all()
    assert trend["coverage_pct"].iloc[[0, -1]].isna().all() and trend["coverage_pct"].iloc[1:-1].notna().all()


def grid_blocks(columns: int, rows: int, *, beat_of) -> gpd.GeoDataFrame:
    """100 m square blocks in a metric CRS, ``r<row>c<col>``, in the beat ``beat_of(row, col)`` names."""
    cells = [(r, c) for r in range(rows) for c in range(columns)]
    return gpd.GeoDataFrame(
        {
            "block_id": [f"r{r}c{c}" for r, c in cells],
            "beat_id": [beat_of(r, c) for r, c in cells],
        },
        geometry=[shapely.box(c * 100, r * 100, (c + 1) * 100, (r + 1) * 100) for r, c in cells],
        crs="EPSG:32616",
    )


def test_neighbours_rule_joins_low_blocks_of_a_beat_but_not_across_its_edge():
    # Two beats of 4 x 4 blocks side by side; typical 40.  r1c3 (beat A) is clearly low; r1c2 beside it and
    # r1c4 across the beat edge have 21 visits, low but not clearly so on their own.
    blocks = grid_blocks(8, 4, beat_of=lambda r, c: "A" if c < 4 else "B")
    counts = {b: {"foot_patrol": 40} for b in blocks["block_id"]}
    counts["r1c3"] = {"foot_patrol": 6}
    counts["r1c2"] = counts["r1c4"] = {"foot_patrol": 21}
    events = events_for(counts)
    cov = coverage_by_block(blocks, events, window=WINDOW, settings=Settings()).set_index("block_id")
    assert cov.loc["r1c3", "flag"] == "rarely_visited"
    assert "too few even for a block visited at 75% of typical" in cov.loc["r1c3", "flag_reason"]
    assert cov.loc["r1c2", "flag"] == "rarely_visited"
    assert "next to neighbouring blocks flagged" in cov.loc["r1c2", "flag_reason"]
    assert pd.isna(cov.loc["r1c4", "flag"])
    assert cov["flag"].notna().sum() == 2

    alone = coverage_by_block(blocks, events, window=WINDOW, settings=Settings(rarely_rule="poisson"))
    assert alone.set_index("block_id")["flag"].notna().sum() == 1
    # The same pairs given as a table (as the dashboard passes them) give the same flags.
    pairs = neighbour_pairs(blocks)
    assert not (pairs["block_id"].str[-1].astype(int).lt(4) != pairs["neighbour_id"].str[-1].astype(int).lt(4)).any()
    plain = coverage_by_block(
        pd.DataFrame(blocks[["block_id", "beat_id"]]), events, window=WINDOW, settings=Settings(), neighbours=pairs
    )
    assert plain["flag"].tolist() == cov["flag"].tolist()


def test_quiet_hand_made_beat_has_no_flag_with_its_neighbours():
    blocks = grid_blocks(4, 3, beat_of=lambda r, c: "quiet")
    visits = [4, 3, 5, 4, 1, 2, 6, 3, 5, 1, 2, 4]
    counts = {b: {"foot_patrol": n} for b, n in zip(blocks["block_id"], visits, strict=True)}
    for rule in ("neighbours", "poisson", "empirical_bayes"):
        cov = coverage_by_block(blocks, events_for(counts), window=WINDOW, settings=Settings(rarely_rule=rule))
        assert cov["flag"].isna().all(), rule


def test_empirical_bayes_reason_says_so():
    counts = {f"t{i}": {"foot_patrol": 40 + (i % 5) - 2} for i in range(12)}
    counts["low"] = {"foot_patrol": 5}
    blocks = pd.DataFrame({"block_id": list(counts), "beat_id": "B1"})
    cov = coverage_by_block(
        blocks, events_for(counts), window=WINDOW, settings=Settings(rarely_rule="empirical_bayes")
    ).set_index("block_id")
    assert cov["flag"].notna().sum() == 1 and cov.loc["low", "flag"] == "rarely_visited"
    assert "empirical Bayes" in cov.loc["low", "flag_reason"]


def test_one_visit_logged_after_the_data_does_not_move_the_default_window():
    settings = Settings(window_days=90)
    data = pd.Series(220, index=pd.date_range("2026-08-01", "2026-10-31").date)
    today = pd.Series({date(2026, 12, 1): 1})
    counts = pd.concat([data, today])
    last = datetime(2026, 12, 1, 15, tzinfo=UTC)
    window = default_window(last, settings=settings, day_counts=counts)
    assert (window.start, window.end) == (date(2026, 8, 3), date(2026, 10, 31))
    # Without the day counts the last event ends the window (what the old default did).
    assert default_window(last, settings=settings).end == date(2026, 12, 1)
    # Quieter weekends and a slow last day still end the window; an emptier day does not.
    days = pd.Series([200, 200, 200, 60, 30], index=pd.date_range("2026-10-28", "2026-11-01").date)
    assert recorded_end(days) == date(2026, 10, 31)  # 60 is over a quarter of the typical 200; 30 is not
    # When visits logged every day are the department's typical day, the window follows them.
    logged = pd.Series(4, index=pd.date_range("2026-09-01", "2026-12-01").date)
    assert default_window(last, settings=settings, day_counts=logged).end == date(2026, 12, 1)
    assert recorded_end(pd.Series(dtype=float)) is None


def test_the_store_default_window_ends_on_recorded_activity(engine, tmp_path):
    from beatmap.report import window_from_store
    from tests.conftest import load_two_beats

    settings = Settings(window_days=30)
    load_two_beats(engine, tmp_path, settings=settings)
    rows = [
        f"2026-10-{d:02d}T{h:02d}:00:00,41.8755,-87.6369,foot_patrol"
        for d in range(1, 32)
        for h in (8, 9, 10, 11, 13, 14, 15, 16)
    ]
    rows.append("2026-12-01T09:00:00,41.8755,-87.6369,community_visit")
    (tmp_path / "a.csv").write_text("occurred_at,lat,lon,kind\n" + "\n".join(rows) + "\n")
    from beatmap.ingest import import_activity

    import_activity(engine, tmp_path / "a.csv", settings=settings)
    window = window_from_store(engine, settings=settings)
    assert (window.start, window.end) == (date(2026, 10, 2), date(2026, 10, 31))
    assert window_from_store(engine, settings=settings, end=date(2026, 12, 1)).end == date(2026, 12, 1)
