"""Public map rules: the period, withheld counts, categories, and that nothing withheld can be recovered."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import pandas as pd
import pytest

from beatmap import snapshot as snap
from beatmap import store
from beatmap.errors import BeatmapError, InputError
from beatmap.metrics import Window
from beatmap.privacy import (
    aggregates_from_store,
    level_cuts,
    presence_category,
    public_beats,
    public_blocks,
    snapshot_period,
    visit_levels,
    weekly_coverage,
    withhold_counts,
)
from beatmap.publish import archive_violations, publish_snapshot, published_periods
from beatmap.settings import Settings
from beatmap.snapshot import PERIOD_EPOCH
from tests.public_helpers import (
    AS_OF,
    DATA_END,
    A,
    B,
    activity_rows,
    blocks_of,
    import_rows,
    publish_tiny_city,
    tiny_city,
)

LABEL = snap.withheld_label(3)


@pytest.mark.parametrize("as_of", [date(2026, 6, 1) + timedelta(days=k) for k in range(0, 120, 5)])
@pytest.mark.parametrize("delay_days", [7, 30])
def test_period_is_the_latest_fixed_period_a_full_delay_before_as_of(as_of, delay_days):
    period = snapshot_period(as_of, delay_days=delay_days, timezone="America/Chicago")
    assert period.start.weekday() == 0 and period.end.weekday() == 6 and period.days == 91  # 13 whole weeks
    assert (period.start - PERIOD_EPOCH).days % 91 == 0  # one of a fixed series
    assert (as_of - period.end).days - 1 >= delay_days  # whole days between the data and publication
    assert (as_of - (period.end + timedelta(days=91))).days - 1 < delay_days  # ...and it is the latest such


def test_snapshots_hold_the_same_period_or_periods_that_do_not_overlap():
    """So subtracting one archived snapshot from another never isolates a single week."""
    periods = sorted(
        {snapshot_period(date(2025, 1, 1) + timedelta(days=k), delay_days=7, timezone="UTC") for k in range(400)},
        key=lambda w: w.start,
    )
    assert len(periods) == 5
    assert all(b.start == a.end + timedelta(days=1) for a, b in itertools.pairwise(periods))


def test_rules_can_only_be_made_stricter():
    with pytest.raises(InputError, match="public_min_count"):
        Settings(public_min_count=2)
    with pytest.raises(InputError, match="public_delay_days"):
        Settings(public_delay_days=6)
    assert Settings(public_min_count=5, public_delay_days=14).public_min_count == 5


@pytest.mark.parametrize(
    ("min_count", "expected"),
    [
        (3, [0, LABEL, LABEL, 3, 10]),
        (5, [0, "fewer than 5", "fewer than 5", "fewer than 5", 10]),
    ],
)
def test_counts_below_the_minimum_are_withheld_and_zero_is_shown(min_count, expected):
    assert withhold_counts(pd.Series([0, 1, 2, 3, 10]), min_count=min_count).tolist() == expected


def test_presence_depends_only_on_the_published_counts():
    """Two blocks with the same published counts always get the same category (it leaks nothing)."""
    seen: dict[tuple, set] = {}
    for v, e in itertools.product(range(8), repeat=2):
        shown = tuple(withhold_counts(pd.Series([v, e]), min_count=3))
        category = presence_category(pd.Series([v]), pd.Series([e]), min_count=3).iloc[0]
        seen.setdefault(shown, set()).add(category)
    assert all(len(categories) == 1 for categories in seen.values()), seen
    assert seen[(0, 5)] == {snap.MOSTLY_ENFORCEMENT} and seen[(5, 0)] == {snap.MOSTLY_VISITS}
    assert seen[(LABEL, LABEL)] == {snap.TOO_FEW} and seen[(0, 0)] == {snap.NO_ACTIVITY}


def test_levels_use_city_terciles_of_shown_counts_and_never_tell_withheld_counts_apart():
    visits = pd.Series([0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50])
    cuts = level_cuts(visits, min_count=3)
    assert cuts == (5, 20)  # terciles of 3, 4, 5, 10, 20, 30, 40, 50 ("lower" quantiles)
    levels = visit_levels(visits, min_count=3, cuts=cuts).tolist()
    assert levels == ["none", "low", "low", "low", "low", "low", "medium", "medium", "high", "high", "high"]
    # A quiet city where 1 and 2 would be different terciles: both stay "low".
    quiet = pd.Series([1, 2, 3, 3, 3])
    assert visit_levels(quiet, min_count=3, cuts=level_cuts(quiet, min_count=3)).tolist()[:2] == ["low", "low"]
    assert visit_levels(pd.Series([0, 1, 2]), min_count=3, cuts=None).tolist() == ["none", "low", "low"]


def _coverage(visits: list[int], enforcement: list[int], beats: list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "block_id": [f"b{i}" for i in range(len(visits))],
            "beat_id": beats,
            "visits": visits,
            "enforcement": enforcement,
        }
    )


def test_beat_totals_add_only_shown_blocks():
    coverage = _coverage([1, 5, 7, 9, 0, 4], [0, 2, 3, 0, 6, 0], ["A", "A", "A", "A", "B", "B"])
    blocks = public_blocks(coverage, min_count=3, cuts=level_cuts(coverage["visits"], min_count=3))
    assert list(blocks.columns) == list(snap.BLOCK_FIELDS)
    beats = public_beats(blocks).set_index("beat_id")
    assert list(beats.reset_index().columns) == list(snap.BEAT_FIELDS)
    a = beats.loc["A"]
    assert a["visits_on_shown_blocks"] == 5 + 7 + 9  # the withheld 1 is in no total
    assert a["enforcement_on_shown_blocks"] == 3  # the withheld 2 is in no total
    assert a["blocks_visits_withheld"] == 1 and a["blocks_visited"] == 4 and a["coverage_pct"] == 100
    assert beats.loc["B", "blocks_mostly_enforcement"] == 1
    # Whatever the withheld counts are, every beat figure is the same.
    other = public_blocks(
        _coverage([2, 5, 7, 9, 0, 4], [0, 1, 3, 0, 6, 0], ["A"] * 4 + ["B"] * 2),
        min_count=3,
        cuts=level_cuts(pd.Series([2, 5, 7, 9, 0, 4]), min_count=3),
    )
    pd.testing.assert_frame_equal(public_beats(other), public_beats(blocks))


def test_weekly_coverage_counts_shown_blocks_in_whole_weeks_rounded_to_ten():
    period = Window(date(2026, 1, 5), date(2026, 3, 8), "UTC")  # 63 days: 9 whole weeks
    blocks = public_blocks(_coverage([4, 1, 0], [0, 0, 0], ["A"] * 3), min_count=3, cuts=None)
    events = pd.DataFrame(
        {
            "occurred_at": pd.to_datetime(["2026-03-02T10:00", "2026-03-03T10:00", "2026-03-04T10:00"], utc=True),
            "kind": ["foot_patrol", "community_visit", "foot_patrol"],
            "block_id": ["b0", "b0", "b1"],  # b1 is withheld: its visit is not counted
        }
    )
    trend = weekly_coverage(events, blocks, period=period, min_blocks=1)  # the arithmetic; small beats below
    assert list(trend.columns) == list(snap.TREND_FIELDS) and len(trend) == 9
    assert trend["week_start"].map(lambda d: date.fromisoformat(d).weekday()).eq(0).all()
    last = trend.iloc[-1]
    assert (last["week_start"], last["week_end"], last["coverage_pct"]) == ("2026-03-02", "2026-03-08", 30)
    assert trend["coverage_pct"].iloc[:-1].eq(0).all()


# --- through the store ----------------------------------------------------------------------------


def _tiny_snapshot(tmp_path, settings, counts, name):
    folder = tmp_path / name
    folder.mkdir()
    return publish_tiny_city(folder, counts, settings=settings)


@pytest.mark.parametrize("kind", ["foot_patrol", "enforcement"])
def test_one_small_block_in_a_beat_cannot_be_recovered_from_any_published_total(tmp_path, settings, kind):
    """Beat A has exactly one block with a small count; a 1 and a 2 there publish byte-identical data."""

    def counts(small: int):
        c = {
            (A, 0, kind): small,
            (A, 1, "foot_patrol"): 5,
            (A, 2, "foot_patrol"): 7,
            (A, 3, "foot_patrol"): 9,
            (B, 0, "foot_patrol"): 6,
            (B, 1, "enforcement"): 4,
        }
        if kind == "enforcement":
            c[(A, 0, "foot_patrol")] = 4
        return c

    one = _tiny_snapshot(tmp_path, settings, counts(1), "one")
    two = _tiny_snapshot(tmp_path, settings, counts(2), "two")
    for name in (
        snap.BLOCKS_CSV,
        snap.BEATS_CSV,
        snap.TREND_CSV,
        snap.GEOJSON,
        snap.ABOUT,
        snap.INDEX,
        snap.SEARCH,
        snap.beat_file(0),
        snap.beat_file(1),
    ):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name

    blocks = pd.DataFrame(snap.read_rows(one, snap.BLOCKS_CSV))
    beat_a = next(r for r in snap.read_rows(one, snap.BEATS_CSV) if r["beat_id"] == A)
    field = "visits" if kind == "foot_patrol" else "enforcement"
    total = "visits_on_shown_blocks" if kind == "foot_patrol" else "enforcement_on_shown_blocks"
    in_a = blocks[blocks["beat_id"] == A]
    assert (in_a[field] == LABEL).sum() == 1
    shown = in_a[field][in_a[field] != LABEL].astype(int).sum()
    assert int(beat_a[total]) - shown == 0  # subtraction reveals nothing
    assert snap.check_snapshot(one, settings=settings) == []


def test_events_newer_than_the_delay_are_not_published(tmp_path, settings):
    engine = tiny_city(tmp_path, settings=settings)
    a = blocks_of(engine, A)
    rows = activity_rows(engine, {(a[0], "foot_patrol"): 4}, first_day=DATA_END - timedelta(days=3), days=4)
    rows += activity_rows(engine, {(a[1], "foot_patrol"): 9}, first_day=DATA_END + timedelta(days=1), days=9)
    import_rows(engine, tmp_path, rows, settings=settings)
    agg = aggregates_from_store(engine, settings=settings, as_of=AS_OF)
    assert agg.period.end == DATA_END
    published = agg.blocks.set_index("block_id")["visits"]
    assert published[a[0]] == 4  # up to and including the last day of the data
    assert published[a[1]] == 0  # everything from the Monday after is held back
    assert agg.trend.empty  # beats of four blocks get no weekly shares (see the small-beat test)


def test_a_snapshot_cannot_be_dated_in_the_future(tmp_path, settings):
    engine = tiny_city(tmp_path, settings=settings)
    with pytest.raises(InputError, match="later than today"):
        aggregates_from_store(engine, settings=settings, as_of=date.today() + timedelta(days=3))


def test_a_city_without_activity_publishes_every_block_as_none(tmp_path, settings):
    engine = tiny_city(tmp_path, settings=settings)
    agg = aggregates_from_store(engine, settings=settings, as_of=AS_OF)
    assert set(agg.blocks["visit_level"]) == {"none"} and set(agg.blocks["presence"]) == {snap.NO_ACTIVITY}
    assert agg.level_cuts is None and agg.trend.empty  # beats of four blocks: no weekly shares


# --- differencing -----------------------------------------------------------------------------------------------


def test_snapshots_before_and_after_a_window_days_change_cannot_be_subtracted(tmp_path):
    """The attack: snapshots at window_days 7 and 14 (as of 2026-06-15 and 2026-06-22) used to publish one and two
    weeks, so the second minus the first gave each block's withheld weekly count. Now both publish the one period
    of the fixed calendar, byte for byte the same data."""
    engine = tiny_city(tmp_path, settings=Settings())
    a = blocks_of(engine, A)
    # Block a[0]: 5 visits in the week of June 1 and 1 in the week of June 8 (a withheld weekly count).
    rows = activity_rows(engine, {(a[0], "foot_patrol"): 5}, first_day=date(2026, 6, 1), days=5)
    rows += activity_rows(engine, {(a[0], "community_visit"): 1}, first_day=date(2026, 6, 9), days=1)
    import_rows(engine, tmp_path, rows, settings=Settings())
    folders = []
    for window_days, as_of in ((7, date(2026, 6, 15)), (14, date(2026, 6, 22))):
        settings = Settings(window_days=window_days)
        folder = tmp_path / f"public-{window_days}"
        manifest = publish_snapshot(engine, folder, settings=settings, as_of=as_of)
        assert (manifest["data_start"], manifest["data_end"]) == ("2026-03-02", "2026-05-31")
        assert snap.check_snapshot(folder, settings=settings) == []
        folders.append(folder)
    for name in (snap.BLOCKS_CSV, snap.BEATS_CSV, snap.TREND_CSV, snap.GEOJSON):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes(), name


def test_a_period_overlapping_an_earlier_publication_without_equalling_it_is_refused(tmp_path, settings):
    engine = tiny_city(tmp_path, settings=settings)
    first = publish_snapshot(engine, tmp_path / "public", settings=settings, as_of=AS_OF)
    assert archive_violations(first, published_periods(engine)) == []  # the same period again is fine
    later = {"data_start": "2026-06-01", "data_end": "2026-08-30"}  # the next period: no overlap
    assert archive_violations(later, published_periods(engine)) == []
    shifted = {"data_start": "2026-03-09", "data_end": "2026-06-07"}  # a week later: 12 weeks shared
    [problem] = archive_violations(shifted, published_periods(engine))
    assert "overlaps the period 2026-03-02 to 2026-05-31 published on 2026-06-10" in problem
    # An earlier publication of another calendar (a former beatmap, another rule) blocks the next overlapping one.
    with store.transaction(engine) as conn:
        store.record_audit(
            conn,
            actor="cli:old",
            action="publish",
            target="data/public",
            details={"as_of": "2026-06-20", "data_start": "2026-06-01", "data_end": "2026-06-14"},
        )
    with pytest.raises(BeatmapError, match="overlaps the period 2026-06-01 to 2026-06-14"):
        publish_snapshot(engine, tmp_path / "public", settings=settings, as_of=date(2026, 9, 10))
    assert snap.read_manifest(tmp_path / "public")["as_of"] == AS_OF.isoformat()  # the old snapshot stays


def test_small_beats_get_no_weekly_shares(tmp_path, settings):
    """In a beat of 4 blocks, one block visited once a week showed as 30% in exactly those weeks."""
    engine = tiny_city(tmp_path, settings=settings)
    a = blocks_of(engine, A)
    mondays = [date(2026, 3, 2) + timedelta(weeks=k) for k in range(0, 13, 2)]  # every other week
    rows = [
        r for monday in mondays for r in activity_rows(engine, {(a[0], "foot_patrol"): 1}, first_day=monday, days=1)
    ]
    import_rows(engine, tmp_path, rows, settings=settings)
    agg = aggregates_from_store(engine, settings=settings, as_of=AS_OF)
    exposed = weekly_coverage(
        store.read_events(engine, columns=("occurred_at", "kind", "block_id")),
        agg.blocks,
        period=agg.period,
        min_blocks=1,
    )
    visited_weeks = exposed.loc[(exposed["beat_id"] == A) & (exposed["coverage_pct"] > 0), "week_start"]
    assert visited_weeks.tolist() == [m.isoformat() for m in mondays]  # what a small beat's weekly rows gave away
    assert agg.trend.empty and settings.public_trend_min_blocks == 20
    folder = tmp_path / "public"
    publish_snapshot(engine, folder, settings=settings, as_of=AS_OF)
    assert snap.read_rows(folder, snap.TREND_CSV) == []
    # A snapshot whose trend holds a small beat fails the check (the manifest's hashes recomputed to match).
    trend = folder / snap.TREND_CSV
    trend.write_text(trend.read_text() + "A,2026-03-02,2026-03-08,30\n")
    manifest = json.loads((folder / snap.MANIFEST).read_text())
    manifest["files"][snap.TREND_CSV]["sha256"] = snap.sha256_of(trend)
    (folder / snap.MANIFEST).write_text(json.dumps(manifest))
    problems = snap.check_snapshot(folder, settings=settings)
    assert any("weekly shares of beat 'A', which has 4 blocks" in p for p in problems), problems
    with pytest.raises(InputError, match="public_trend_min_blocks"):
        Settings(public_trend_min_blocks=19)
