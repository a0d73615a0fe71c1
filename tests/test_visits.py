"""Visits logged from a phone: saved at once on the right block, double submits, corrections, audit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer
from sqlalchemy import select

from beatmap import store
from beatmap.access import NO_BEATS, log_visit_as
from beatmap.accounts import User
from beatmap.errors import AccessError, InputError
from beatmap.metrics import Window
from beatmap.report import block_coverage
from beatmap.settings import Settings
from beatmap.visits import BlockHit, block_at, delete_visit, edit_visit, log_visit, own_visits, week_start
from tests.conftest import X0, Y0, load_two_beats

#: The edit window counts from when a visit was logged (the real clock), so these tests run on it.
NOW = datetime.now(UTC).replace(microsecond=0)
TO_WGS84 = Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True)


def lat_lon(x: float, y: float) -> tuple[float, float]:
    """WGS84 (lat, lon) of a point in test-city metres."""
    lon, lat = TO_WGS84.transform(X0 + x, Y0 + y)
    return lat, lon


@pytest.fixture
def areas(engine, settings, tmp_path):
    """Beats A (0-400 m) and B (400-800 m), cut into 200 m cells."""
    return load_two_beats(engine, tmp_path, settings=settings)


def log(engine, settings, *, token="t1", officer="O7", x=50.0, y=50.0, when=NOW - timedelta(hours=1), now=NOW, **extra):
    lat, lon = lat_lon(x, y)
    return log_visit(
        engine,
        officer_id=officer,
        lat=lat,
        lon=lon,
        kind=extra.pop("kind", "community_visit"),
        subtype=extra.pop("subtype", "porch visit"),
        occurred_at=when,
        client_token=token,
        settings=settings,
        now=now,
        **extra,
    )


def event(engine, event_id):
    with engine.connect() as conn:
        return conn.execute(select(store.events).where(store.events.c.event_id == event_id)).mappings().first()


def audit(engine):
    with engine.connect() as conn:
        rows = (
            conn.execute(
                select(store.audit_log)
                .where(store.audit_log.c.action.startswith("visit."))
                .order_by(store.audit_log.c.audit_id)
            )
            .mappings()
            .all()
        )
    return [dict(r, details=json.loads(r["details"])) for r in rows]


def test_a_visit_is_saved_on_its_block_and_counts_at_once(areas, settings):
    version = store.store_version(areas)
    event_id = log(areas, settings, x=250, y=120, duration_min=15, note="Talked with the block club")
    row = event(areas, event_id)
    assert (row["block_id"], row["beat_id"], row["source"], row["kind"]) == (
        block_at(areas, lat=row["lat"], lon=row["lon"], settings=settings).block_id,
        "A",
        "app",
        "community_visit",
    )
    assert row["subtype"] == "porch visit" and row["duration_min"] == 15 and row["officer_id"] == "O7"
    assert row["occurred_at"] == NOW - timedelta(hours=1)
    assert store.store_version(areas) == version + 1
    window = Window(NOW.date() - timedelta(days=6), NOW.date(), settings.timezone)
    cov = block_coverage(areas, window=window, settings=settings, beat_id="A").set_index("block_id")
    assert cov.loc[row["block_id"], "community_visits"] == 1


def test_a_tap_in_a_street_gap_snaps_to_the_nearest_block(areas, settings):
    found = block_at(areas, lat=lat_lon(200, -5)[0], lon=lat_lon(200, -5)[1], settings=settings)
    assert found.snapped and found.distance_m == pytest.approx(5, abs=0.1)
    event_id = log(areas, settings, x=200, y=-5)
    assert event(areas, event_id)["snapped"]


def at(x: float, y: float) -> dict:
    lat, lon = lat_lon(x, y)
    return {"lat": lat, "lon": lon}


def test_a_beats_visit_is_placed_among_that_beats_blocks_only(areas, settings, monkeypatch):
    asked = []
    read_blocks = store.read_blocks
    monkeypatch.setattr(
        store, "read_blocks", lambda engine, beat_id=None: asked.append(beat_id) or read_blocks(engine, beat_id=beat_id)
    )
    inside = block_at(areas, **at(250, 150), settings=settings, beat_id="A")
    assert (inside.block_id, inside.snapped) == ("A_r1c2", False)
    assert asked == ["A"]  # one beat's blocks, not the whole city's
    # On the edge between the beats: the chosen beat's block (every block, as an import: the lower id).
    assert block_at(areas, **at(400, 100), settings=settings, beat_id="B").block_id == "B_r1c3"
    assert block_at(areas, **at(400, 100), settings=settings, beat_id="A").block_id == "A_r1c2"
    assert block_at(areas, **at(400, 100), settings=settings).block_id == "A_r1c2"
    # In the street gap south of beat A: snapped onto A, but too far from every block of B.
    south = block_at(areas, **at(200, -5), settings=settings, beat_id="A")
    assert south.snapped and south.distance_m == pytest.approx(5, abs=0.1)
    assert block_at(areas, **at(200, -5), settings=settings, beat_id="B") is None
    # 5 m inside beat B is in beat B, not a street gap of A, though A's block is within snap_m.
    assert block_at(areas, **at(405, 100), settings=settings, beat_id="A") is None
    assert block_at(areas, **at(405, 100), settings=settings, beat_id="B").block_id == "B_r1c3"
    with pytest.raises(InputError, match="beat 'Z': no such beat"):
        block_at(areas, **at(250, 150), settings=settings, beat_id="Z")


def test_block_at_takes_a_cached_frame_instead_of_reading_the_store(areas, settings, monkeypatch):
    beat_a = store.read_blocks(areas, beat_id="A")

    def no_store_read(*args, **kwargs):
        raise AssertionError("block_at read the blocks from the store")

    monkeypatch.setattr(store, "read_blocks", no_store_read)
    found = block_at(areas, **at(250, 150), settings=settings, beat_id="A", blocks=beat_a)
    assert found == BlockHit(block_id="A_r1c2", beat_id="A", snapped=False, distance_m=0.0)
    assert block_at(areas, **at(650, 150), settings=settings, beat_id="A", blocks=beat_a) is None


OFFICER_A = User("ofc-a", "officer", ("A",), officer_id="O1")


def log_as(engine, settings, user, *, beat_id="A", x=250.0, y=150.0, token="t1"):
    return log_visit_as(
        engine,
        user,
        beat_id=beat_id,
        **at(x, y),
        kind="community_visit",
        client_token=token,
        settings=settings,
        occurred_at=NOW - timedelta(hours=1),
        now=NOW,
    )


def test_a_visit_is_logged_on_the_users_beat_under_their_officer_id(areas, settings):
    row = event(areas, log_as(areas, settings, OFFICER_A))
    assert (row["officer_id"], row["beat_id"], row["block_id"]) == ("O1", "A", "A_r1c2")
    sergeant = User("sgt", "supervisor", all_beats=True)  # no officer id: the account name
    row = event(areas, log_as(areas, settings, sergeant, beat_id="B", x=650, token="t2"))
    assert (row["officer_id"], row["beat_id"]) == ("sgt", "B")


@pytest.mark.parametrize(
    "user, beat_id, x, error, message",
    [
        (OFFICER_A, "B", 650, AccessError, r"beat 'B' is not one of your beats \(A\)"),
        (User("rookie", "officer"), "A", 250, AccessError, NO_BEATS),
        (User("boss", "admin"), "A", 250, AccessError, "Only officers and supervisors"),
        (None, "A", 250, AccessError, "you are not signed in"),
        (OFFICER_A, "A", 650, InputError, "is outside beat A"),  # a place in beat B, logged as on beat A
    ],
)
def test_a_visit_off_the_users_beats_is_refused(areas, settings, user, beat_id, x, error, message):
    with pytest.raises(error, match=message):
        log_as(areas, settings, user, beat_id=beat_id, x=x)
    assert store.counts(areas)["events"] == 0 and audit(areas) == []


def test_a_place_on_no_block_is_refused(areas, settings):
    with pytest.raises(InputError, match="not on any block"):
        log(areas, settings, x=100, y=-300)
    assert store.counts(areas)["events"] == 0


def test_a_double_submit_creates_no_second_visit(areas, settings):
    first = log(areas, settings, token="form-123")
    again = log(areas, settings, token="form-123")
    other = log(areas, settings, token="form-456")
    assert first == again != other
    assert store.counts(areas)["events"] == 2
    assert [a["action"] for a in audit(areas)] == ["visit.log", "visit.log"]


def test_invalid_values_are_all_named_and_nothing_is_saved(areas, settings):
    with pytest.raises(InputError) as err:
        log(areas, settings, kind="enforcement", subtype="arrest", when=NOW + timedelta(hours=2), duration_min=-3)
    message = str(err.value)
    for part in ("kind 'enforcement'", "type 'arrest'", "in the future", "duration -3"):
        assert part in message
    assert store.counts(areas)["events"] == 0


def test_a_naive_time_is_refused(areas, settings):
    with pytest.raises(InputError, match="time zone"):
        log(areas, settings, when=datetime(2026, 3, 10, 9, 0))


def test_an_officer_corrects_their_own_visit_within_the_window(areas, settings):
    event_id = log(areas, settings)
    after = edit_visit(
        areas,
        event_id,
        actor="O7",
        role="officer",
        settings=settings,
        subtype="school",
        lat=lat_lon(650, 300)[0],
        lon=lat_lon(650, 300)[1],
        now=NOW + timedelta(hours=3),
    )
    row = event(areas, event_id)
    assert row["subtype"] == "school" and row["beat_id"] == "B" and after["beat_id"] == "B"
    entry = audit(areas)[-1]
    assert (entry["action"], entry["actor"], entry["target"]) == ("visit.edit", "O7", str(event_id))
    assert entry["details"]["before"]["subtype"] == "porch visit" and entry["details"]["after"]["subtype"] == "school"
    assert entry["details"]["before"]["beat_id"] == "A" and entry["details"]["after"]["beat_id"] == "B"


def test_after_the_window_only_a_supervisor_can_change_it(areas, settings):
    event_id = log(areas, settings)
    late = NOW + timedelta(hours=settings.visit_edit_hours + 1)
    with pytest.raises(AccessError, match="ask a supervisor") as err:
        edit_visit(areas, event_id, actor="O7", role="officer", settings=settings, note="late fix", now=late)
    assert isinstance(err.value, PermissionError)
    with pytest.raises(AccessError):
        delete_visit(areas, event_id, actor="O7", role="officer", settings=settings, now=late)
    edit_visit(areas, event_id, actor="Sgt Diaz", role="supervisor", settings=settings, note="late fix", now=late)
    assert event(areas, event_id)["notes"] == "late fix"
    assert audit(areas)[-1]["details"]["role"] == "supervisor"


def test_an_officer_cannot_change_another_officers_visit(areas, settings):
    event_id = log(areas, settings, officer="O7")
    with pytest.raises(AccessError, match="another officer"):
        edit_visit(areas, event_id, actor="O8", role="officer", settings=settings, note="x", now=NOW)
    with pytest.raises(InputError, match="role"):
        delete_visit(areas, event_id, actor="O8", role="chief", settings=settings, now=NOW)


def test_delete_keeps_the_visit_in_the_audit_log(areas, settings):
    event_id = log(areas, settings, note="wrong block")
    version = store.store_version(areas)
    delete_visit(areas, event_id, actor="O7", role="officer", settings=settings, now=NOW)
    assert event(areas, event_id) is None and store.store_version(areas) == version + 1
    entry = audit(areas)[-1]
    assert entry["action"] == "visit.delete" and entry["details"]["before"]["notes"] == "wrong block"
    with pytest.raises(InputError, match="does not exist"):
        delete_visit(areas, event_id, actor="O7", role="supervisor", settings=settings, now=NOW)


def test_imported_records_are_not_edited_here(areas, settings, tmp_path):
    from beatmap.ingest import import_activity

    lat, lon = lat_lon(50, 50)
    rows = f"occurred_at,lat,lon,kind,officer_id\n2026-03-09T10:00,{lat},{lon},foot_patrol,O7\n"
    (tmp_path / "a.csv").write_text(rows)
    import_activity(areas, tmp_path / "a.csv", settings=settings, now=pd.Timestamp(NOW))
    with pytest.raises(InputError, match="imported from"):
        edit_visit(areas, 1, actor="O7", role="supervisor", settings=settings, note="x", now=NOW)


def test_own_visits_lists_this_weeks_visits_newest_first(areas, settings):
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # a Tuesday
    log(areas, settings, token="a", when=datetime(2026, 3, 9, 14, tzinfo=UTC), now=now)  # Monday 09:00 Chicago
    log(
        areas,
        settings,
        token="b",
        when=datetime(2026, 3, 10, 14, tzinfo=UTC),
        now=now,
        kind="foot_patrol",
        subtype=None,
    )
    log(areas, settings, token="c", when=datetime(2026, 3, 7, 14, tzinfo=UTC), now=now)  # the Saturday before
    log(areas, settings, token="d", officer="O8", when=datetime(2026, 3, 10, 14, tzinfo=UTC), now=now)
    since = week_start(now, settings=settings)
    assert since == datetime(2026, 3, 9, 5, tzinfo=UTC)  # Monday midnight in Chicago (CDT from Mar 8)
    mine = own_visits(areas, "O7", since)
    assert mine["kind"].tolist() == ["foot_patrol", "community_visit"]
    assert (mine["source"] == "app").all() and mine["occurred_at"].dt.tz is not None


def test_a_supervisor_changes_visits_on_their_own_beats_only(areas, settings):
    from beatmap.access import delete_visit_as, edit_visit_as

    on_a = log_as(areas, settings, OFFICER_A)
    sergeant_b = User("sgt-b", "supervisor", beats=("B",))
    later = NOW + timedelta(hours=settings.visit_edit_hours + 1)  # past the officer's own window
    with pytest.raises(AccessError, match=f"visit {on_a} is on beat A, not one of yours"):
        edit_visit_as(areas, sergeant_b, on_a, settings=settings, note="not mine", now=later)
    with pytest.raises(AccessError, match="not one of yours"):
        delete_visit_as(areas, sergeant_b, on_a, settings=settings, now=later)
    sergeant_a = User("sgt-a", "supervisor", beats=("A",))
    edit_visit_as(areas, sergeant_a, on_a, settings=settings, note="checked", now=later)
    assert event(areas, on_a)["notes"] == "checked" and audit(areas)[-1]["actor"] == "sgt-a"
    # Nor can a visit be moved onto a beat the person does not work on, by an officer or a supervisor.
    for who in (OFFICER_A, sergeant_a):
        with pytest.raises(AccessError, match="on beat B, not one of yours"):
            edit_visit_as(areas, who, on_a, settings=settings, **at(650, 150), now=NOW)
    assert event(areas, on_a)["beat_id"] == "A"
    delete_visit_as(areas, sergeant_a, on_a, settings=settings, now=later)
    assert event(areas, on_a) is None


def test_week_start_in_a_zone_without_that_midnight():
    settings = Settings(timezone="America/Santiago")
    start = week_start(datetime(2026, 9, 9, 15, tzinfo=UTC), settings=settings)  # the Monday is 2026-09-07
    assert start == datetime(2026, 9, 7, 3, tzinfo=UTC)
    assert week_start(datetime(2026, 9, 6, 15, tzinfo=UTC), settings=settings) < start  # a Sunday: the week before


def test_visit_changes_are_audited_under_the_account_that_made_them(areas, settings):
    from beatmap.access import delete_visit_as, edit_visit_as

    officer = User(name="jdoe", role="officer", beats=("A",), officer_id="O7")
    sergeant = User(name="sgt.smith", role="supervisor", beats=("A",), officer_id="S1")
    first, second = log(areas, settings, token="a1"), log(areas, settings, token="a2", x=60)
    edit_visit_as(areas, officer, first, settings=settings, note="porch", now=NOW)
    edit_visit_as(areas, sergeant, first, settings=settings, note="checked", now=NOW)
    delete_visit_as(areas, sergeant, second, settings=settings, now=NOW)
    actions = [(e["action"], e["actor"]) for e in audit(areas) if e["action"] != "visit.log"]
    assert actions == [("visit.edit", "jdoe"), ("visit.edit", "sgt.smith"), ("visit.delete", "sgt.smith")]


def test_a_visit_cannot_be_dated_back_beyond_the_setting_or_into_a_published_period(areas, settings):
    with pytest.raises(InputError, match="at most 7 days"):
        log(areas, settings, token="old", when=NOW - timedelta(days=300))
    with pytest.raises(InputError, match="at most 7 days"):
        log(areas, settings, token="old2", when=NOW - timedelta(days=8, hours=12))
    assert log(areas, settings, token="recent", when=NOW - timedelta(days=6)) > 0
    wider = Settings(timezone=settings.timezone, visit_backdate_days=14)
    assert log(areas, wider, token="ten", when=NOW - timedelta(days=10)) > 0
    # A publication that covers up to three days ago closes those days, whatever the setting says.
    published = (NOW - timedelta(days=3)).astimezone(settings.zone).date()
    store_audit(areas, "publish", {"data_end": published.isoformat()})
    with pytest.raises(InputError, match=f"published up to {published}"):
        log(areas, wider, token="in-period", when=NOW - timedelta(days=4))
    event_id = log(areas, settings, token="after", when=NOW - timedelta(days=1))
    with pytest.raises(InputError, match="published up to"):
        edit_visit(
            areas, event_id, actor="O7", role="officer", settings=settings, occurred_at=NOW - timedelta(days=5), now=NOW
        )
    edited = edit_visit(areas, event_id, actor="O7", role="officer", settings=settings, note="ok", now=NOW)
    assert edited["notes"] == "ok"  # a correction that keeps the time is not backdating
    assert len([e for e in audit(areas) if e["action"] == "visit.log"]) == 3


def store_audit(engine, action: str, details: dict) -> None:
    with store.transaction(engine) as conn:
        store.record_audit(conn, actor="cli:test", action=action, target="data/public", details=details)


def test_a_tap_answered_by_the_block_index_is_the_one_the_rule_gives(areas, settings):
    from beatmap.index import block_index_for, index_lookup

    layer = store.read_blocks(areas)
    index = block_index_for(areas, layer, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    rng = np.random.default_rng(4)
    # Inside blocks, on and near the edges between blocks and beats, in the gaps round the city, far away.
    xs = np.concatenate([rng.uniform(-40, 840, 150), 400 + rng.uniform(-2, 2, 40), rng.choice([200.0, 600.0], 20)])
    ys = np.concatenate([rng.uniform(-40, 440, 150), rng.uniform(0, 400, 40), rng.uniform(-3, 3, 20) + 200])
    looked_up = 0
    for x, y in zip(xs, ys, strict=True):
        for beat in (None, "A", "B"):
            point = dict(zip(("lat", "lon"), lat_lon(x, y), strict=True))
            fast = block_at(areas, **point, settings=settings, beat_id=beat, index=index, index_blocks=layer)
            assert fast == block_at(areas, **point, settings=settings, beat_id=beat), (x, y, beat)
        looked_up += int(index_lookup(index, np.array([X0 + x]), np.array([Y0 + y]))[0] >= 0)
    assert looked_up > 100  # most of these taps never reach the geometry
