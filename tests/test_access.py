"""Who sees what: page sets per role, and the data functions refusing or narrowing for the wrong role."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import select

from beatmap import access, store
from beatmap.accounts import ADMIN, OFFICER, SUPERVISOR, User
from beatmap.errors import AccessError, InputError
from beatmap.metrics import Window
from beatmap.report import read_activity
from beatmap.settings import Settings
from tests.conftest import import_rows, load_two_beats

OFFICER_A = User("ofc", OFFICER, ("A",), officer_id="O1")
SERGEANT_A = User("sgt", SUPERVISOR, ("A",))
SERGEANT_B = User("sgt-b", SUPERVISOR, ("B",))
LIEUTENANT = User("lt", SUPERVISOR, all_beats=True)
ADMINISTRATOR = User("boss", ADMIN)
WINDOW = Window(date(2026, 3, 1), date(2026, 3, 31), "America/Chicago")


@pytest.fixture
def city(engine, tmp_path, settings):
    """Beats A and B (grid blocks); visits by O1 and O2 in A, by O3 in B; enforcement in B."""
    load_two_beats(engine, tmp_path, settings=settings)
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol,O{1 + d % 2}" for d in range(1, 11)]
    rows += [f"2026-03-{d:02d}T11:00,41.87689,-87.63150,community_visit,O3" for d in range(1, 4)]
    rows += [f"2026-03-{d:02d}T22:00,41.87689,-87.63150,enforcement," for d in range(1, 6)]
    import_rows(engine, tmp_path, rows, settings=settings, header="occurred_at,lat,lon,kind,officer_id")
    blocks = store.read_blocks(engine)
    inside = blocks.geometry.representative_point().to_crs("EPSG:4326")
    frame = pd.DataFrame(
        {"block_id": blocks["block_id"], "beat_id": blocks["beat_id"], "lat": inside.y, "lon": inside.x}
    )
    return engine, frame, read_activity(engine, timezone=settings.timezone)


def test_page_sets_per_role():
    assert access.pages_for(None) == ("public",)
    assert access.pages_for(OFFICER_A) == ("coverage", "route", "log_visit", "public")
    assert access.pages_for(SERGEANT_A) == ("coverage", "route", "log_visit", "heatmap", "import", "publish", "public")
    assert access.pages_for(ADMINISTRATOR) == ("users", "audit", "settings", "public")
    assert not access.may_open(OFFICER_A, "heatmap") and not access.may_open(ADMINISTRATOR, "coverage")
    assert all(access.may_open(u, "public") for u in (None, OFFICER_A, SERGEANT_A, ADMINISTRATOR))


def test_visible_beats():
    every = ["A", "B", "C"]
    assert access.visible_beats(OFFICER_A, every) == ["A"]
    assert access.visible_beats(User("x", SUPERVISOR, ("C", "A")), every) == ["A", "C"]
    assert access.visible_beats(LIEUTENANT, every) == every
    assert access.visible_beats(User("new", OFFICER), every) == []
    for nobody in (None, ADMINISTRATOR):
        with pytest.raises(AccessError, match="coverage data"):
            access.visible_beats(nobody, every)


def test_block_coverage_is_narrowed_to_the_users_beats(city, settings):
    _, blocks, activity = city
    officer = access.block_coverage_for(OFFICER_A, blocks, activity, window=WINDOW, settings=settings)
    assert set(officer["beat_id"]) == {"A"} and "officers" not in officer.columns
    assert officer["visits"].sum() == 10
    sergeant = access.block_coverage_for(SERGEANT_A, blocks, activity, window=WINDOW, settings=settings)
    assert set(sergeant["beat_id"]) == {"A"} and sergeant["officers"].max() == 2
    everything = access.block_coverage_for(LIEUTENANT, blocks, activity, window=WINDOW, settings=settings)
    assert set(everything["beat_id"]) == {"A", "B"} and everything["enforcement"].sum() == 5
    for nobody in (None, ADMINISTRATOR):
        with pytest.raises(AccessError):
            access.block_coverage_for(nobody, blocks, activity, window=WINDOW, settings=settings)


def test_per_officer_breakdown_is_for_supervisors_of_the_beat(city):
    _, blocks, activity = city
    assert set(access.officer_breakdown(SERGEANT_A, activity, blocks, window=WINDOW)["officer_id"]) == {"O1", "O2"}
    assert set(access.officer_breakdown(LIEUTENANT, activity, blocks, window=WINDOW)["officer_id"]) == {
        "O1",
        "O2",
        "O3",
    }
    for refused in (OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError, match="per-officer figures"):
            access.officer_breakdown(refused, activity, blocks, window=WINDOW)


def test_heat_points_are_for_supervisors(city, settings):
    _, blocks, activity = city
    points = access.heat_points(SERGEANT_A, blocks, activity, window=WINDOW, settings=settings)
    assert set(points["block_id"]) == set(blocks.loc[blocks["beat_id"] == "A", "block_id"])
    assert {"lat", "lon", "visits", "enforcement"} <= set(points.columns)
    with pytest.raises(AccessError, match="heat maps"):
        access.heat_points(OFFICER_A, blocks, activity, window=WINDOW, settings=settings)


def audit_entries(engine, action):
    with engine.connect() as conn:
        rows = conn.execute(select(store.audit_log).where(store.audit_log.c.action == action)).mappings().all()
    return [dict(r) | {"details": json.loads(r["details"])} for r in rows]


def test_exports_refuse_officers_and_are_audited(city):
    engine, _, _ = city
    built: list[str] = []

    def build() -> str:
        built.append("built")
        return "block_id\n"

    for refused in (OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError, match="exports"):
            access.export(engine, refused, build, file_name="coverage.csv", rows=1, what="block table")
    assert built == [] and audit_entries(engine, "export") == []
    assert access.export(engine, SERGEANT_A, build, file_name="coverage.csv", rows=1, what="block table") == (
        "block_id\n"
    )
    [entry] = audit_entries(engine, "export")
    assert entry["actor"] == "sgt" and entry["target"] == "coverage.csv"
    assert entry["details"] == {"what": "block table", "rows": 1}


def test_imports_refuse_officers_and_are_audited_under_the_users_name(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "more.csv").write_text("occurred_at,lat,lon,kind\n2026-03-20T10:00,41.87596,-87.63631,foot_patrol\n")
    for refused in (OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError, match="imports"):
            access.import_activity_as(engine, refused, tmp_path / "more.csv", settings=settings)
        with pytest.raises(AccessError, match="loading beats and blocks"):
            access.load_areas_as(engine, refused, tmp_path / "beats.geojson", settings=settings, grid_m=200)
    assert store.counts(engine)["events"] == 18
    summary = access.import_activity_as(engine, SERGEANT_A, tmp_path / "more.csv", settings=settings)
    assert summary.imported == 1
    entry = audit_entries(engine, "import.activity")[-1]
    assert entry["actor"] == "sgt" and entry["target"].endswith("more.csv") and entry["details"]["imported"] == 1
    access.load_areas_as(engine, LIEUTENANT, tmp_path / "beats.geojson", settings=settings, grid_m=200)
    assert audit_entries(engine, "import.areas")[-1]["actor"] == "lt"


#: A point on beat A, one on beat B and one far outside both (about 2 km east).
ON_A, ON_B, NOWHERE = "41.87596,-87.63631", "41.87689,-87.63150", "41.87600,-87.61000"


def test_a_supervisor_of_some_beats_imports_onto_their_beats_only(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "fake.csv").write_text(
        "occurred_at,lat,lon,kind\n"
        + "".join(f"2026-03-2{d}T10:00,{where},foot_patrol\n" for d, where in enumerate((ON_A, ON_B, NOWHERE)))
    )
    before = store.read_events(engine, beat_id="B")
    summary = access.import_activity_as(engine, SERGEANT_A, tmp_path / "fake.csv", settings=settings)
    assert (summary.rows, summary.imported, summary.duplicates, summary.rejected) == (3, 1, 0, 2)
    assert len(store.read_events(engine, beat_id="B")) == len(before)  # nothing was added to beat B
    # The refused rows are shown by where they are: row 2 to beat B's supervisors, row 3 (no beat) to all beats'.
    assert access.rejects_for(engine, SERGEANT_A, batch_id=summary.batch_id).empty
    on_b = access.rejects_for(engine, SERGEANT_B, batch_id=summary.batch_id)
    assert on_b["row_number"].tolist() == [2] and "on beat 'B', not one of your beats (A)" in on_b["reason"].iloc[0]
    rejects = access.rejects_for(engine, LIEUTENANT, batch_id=summary.batch_id)
    assert rejects["row_number"].tolist() == [2, 3] and "outside every beat" in rejects["reason"].iloc[1]
    everything = access.import_activity_as(
        engine, LIEUTENANT, tmp_path / "fake.csv", settings=settings, source="lt-feed"
    )
    assert (everything.imported, everything.duplicates, everything.rejected) == (2, 1, 0)  # the A row is in


def test_areas_streets_and_publishing_need_a_supervisor_of_all_beats(city, tmp_path, settings):
    engine, _, _ = city
    version = store.store_version(engine)
    for refused in (SERGEANT_A, OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError):
            access.load_areas_as(engine, refused, tmp_path / "beats.geojson", settings=settings, grid_m=100)
        with pytest.raises(AccessError):
            access.load_streets_as(engine, refused, tmp_path / "streets.geojson")
        with pytest.raises(AccessError):
            access.publish_as(engine, refused, tmp_path / "public", settings=settings)
    with pytest.raises(AccessError, match=r"supervisor of all beats.*your beats are A"):
        access.load_areas_as(engine, SERGEANT_A, tmp_path / "beats.geojson", settings=settings, grid_m=100)
    assert store.store_version(engine) == version and not (tmp_path / "public").exists()
    assert audit_entries(engine, "import.areas")[-1]["actor"] != "sgt"
    assert not access.may_change_city(SERGEANT_A) and access.may_change_city(LIEUTENANT)
    manifest = access.publish_as(engine, LIEUTENANT, tmp_path / "public", settings=settings)
    assert manifest["rules"] and audit_entries(engine, "publish")[-1]["actor"] == "lt"


def test_rejects_are_shown_by_the_beat_they_fall_in_whoever_imported_them(city, tmp_path, settings):
    """The lieutenant's feed 'cad' has a rejected row on beat B with a note: beat B's supervisors see it, the
    sergeant of beat A (typing 'cad') does not; a row with no location is for supervisors of all beats only."""
    engine, _, _ = city
    (tmp_path / "cad.csv").write_text(
        "occurred_at,lat,lon,kind,notes\n"
        f"2026-03-20T10:00,{ON_B},walking,informant at 12 Elm St\n"
        "not a time,,,foot_patrol,\n"
        f"2026-03-20T11:00,{ON_B},foot_patrol,\n"
    )  # an import saves nothing if all fail
    (tmp_path / "mine.csv").write_text(
        f"occurred_at,lat,lon,kind\n2026-03-21T10:00,{ON_A},strolling\n2026-03-21T11:00,{ON_A},foot_patrol\n"
    )
    theirs = access.import_activity_as(engine, LIEUTENANT, tmp_path / "cad.csv", settings=settings, source="cad")
    mine = access.import_activity_as(engine, SERGEANT_A, tmp_path / "mine.csv", settings=settings, source="cad")
    assert theirs.rejected == 2 and mine.rejected == 1
    seen = access.rejects_for(engine, SERGEANT_A, source="cad")
    assert seen["batch_id"].tolist() == [mine.batch_id] and "informant" not in seen.to_csv()
    assert access.rejects_for(engine, SERGEANT_A, batch_id=theirs.batch_id).empty
    on_b = access.rejects_for(engine, SERGEANT_B, source="cad")  # imported by someone else, but on beat B
    assert on_b["batch_id"].tolist() == [theirs.batch_id] and "informant" in on_b["raw"].iloc[0]
    assert len(access.rejects_for(engine, LIEUTENANT, source="cad")) == 3  # with the row that has no location
    assert access.rejects_for(engine, User("sgt-ab", SUPERVISOR, ("A", "B")), source="cad")["row_number"].tolist() == [
        1,
        1,
    ]  # beats A and B: every row but the one with no location
    for refused in (OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError):
            access.rejects_for(engine, refused)


def test_a_rejected_row_without_coordinates_goes_by_the_beat_it_reports(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "reported.csv").write_text(
        "occurred_at,lat,lon,kind,reported_beat,notes\n"
        "2026-03-20T10:00,,,foot_patrol,A,no point but beat A\n"  # no coordinates: the beat it reports
        f"2026-03-20T10:00,{ON_B},nap,A,on B but says A\n"  # a point: the point decides
        "2026-03-20T10:00,0,0,foot_patrol,,placeholder and no beat\n"  # neither: all beats only
        f"2026-03-20T11:00,{ON_A},foot_patrol,A,\n"
    )
    summary = access.import_activity_as(engine, LIEUTENANT, tmp_path / "reported.csv", settings=settings)
    assert summary.rejected == 3
    assert access.rejects_for(engine, SERGEANT_A, batch_id=summary.batch_id)["row_number"].tolist() == [1]
    assert access.rejects_for(engine, SERGEANT_B, batch_id=summary.batch_id)["row_number"].tolist() == [2]
    assert access.rejects_for(engine, LIEUTENANT, batch_id=summary.batch_id)["row_number"].tolist() == [1, 2, 3]


def test_rejects_follow_the_beats_when_the_areas_are_loaded_again(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "cad.csv").write_text(
        f"occurred_at,lat,lon,kind\n2026-03-20T10:00,{ON_B},walking\n2026-03-20T11:00,{ON_A},foot_patrol\n"
    )
    summary = access.import_activity_as(engine, LIEUTENANT, tmp_path / "cad.csv", settings=settings)
    assert access.rejects_for(engine, SERGEANT_B, batch_id=summary.batch_id)["row_number"].tolist() == [1]
    load_two_beats(engine, tmp_path, settings=settings, ids=("A", "B2"))  # beat B is now B2
    assert access.rejects_for(engine, SERGEANT_B, batch_id=summary.batch_id).empty
    assert len(access.rejects_for(engine, User("sgt-b2", SUPERVISOR, ("B2",)), batch_id=summary.batch_id)) == 1


def test_import_history_lists_the_imports_that_touched_the_users_beats(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "b.csv").write_text(f"occurred_at,lat,lon,kind\n2026-03-20T10:00,{ON_B},foot_patrol\n")
    (tmp_path / "a.csv").write_text(f"occurred_at,lat,lon,kind\n2026-03-21T10:00,{ON_A},foot_patrol\n")
    (tmp_path / "rejected-on-a.csv").write_text(
        f"occurred_at,lat,lon,kind\n2026-03-22T10:00,{ON_A},nap\n2026-03-22T10:00,{ON_B},foot_patrol\n"
    )
    on_b = access.import_activity_as(engine, LIEUTENANT, tmp_path / "b.csv", settings=settings, source="b")
    on_a = access.import_activity_as(engine, LIEUTENANT, tmp_path / "a.csv", settings=settings, source="a")
    rejected_on_a = access.import_activity_as(
        engine, SERGEANT_B, tmp_path / "rejected-on-a.csv", settings=settings, source="r"
    )
    history = {u: access.import_history_for(engine, u)["batch_id"].tolist() for u in (SERGEANT_A, SERGEANT_B)}
    assert on_a.batch_id in history[SERGEANT_A] and rejected_on_a.batch_id in history[SERGEANT_A]
    assert on_b.batch_id not in history[SERGEANT_A]  # imported by someone else on another beat
    assert on_b.batch_id in history[SERGEANT_B] and on_a.batch_id not in history[SERGEANT_B]
    access.undo_import_as(engine, LIEUTENANT, on_b.batch_id)  # its records are gone; it still touched beat B
    assert on_b.batch_id in access.import_history_for(engine, SERGEANT_B)["batch_id"].tolist()
    assert on_b.batch_id not in access.import_history_for(engine, SERGEANT_A)["batch_id"].tolist()
    every = access.import_history_for(engine, LIEUTENANT)["batch_id"].tolist()
    assert {on_a.batch_id, on_b.batch_id, rejected_on_a.batch_id} <= set(every)
    assert access.import_history_for(engine, SERGEANT_A, limit=1)["batch_id"].tolist() == [rejected_on_a.batch_id]
    for refused in (OFFICER_A, ADMINISTRATOR, None):
        with pytest.raises(AccessError):
            access.import_history_for(engine, refused)


def test_a_supervisor_of_some_beats_logs_visits_and_plans_routes_on_their_beats_only(city, settings):
    engine, _, _ = city
    with pytest.raises(AccessError, match="not one of your beats"):
        access.log_visit_as(
            engine,
            SERGEANT_A,
            beat_id="B",
            lat=41.87689,
            lon=-87.63150,
            kind="foot_patrol",
            client_token="t1",
            settings=settings,
        )
    with pytest.raises(AccessError, match="not one of your beats"):
        access.plan_route_as(
            engine, SERGEANT_A, beat_id="B", start=(41.87689, -87.63150), minutes=30, settings=settings
        )
    assert (
        access.log_visit_as(
            engine,
            SERGEANT_A,
            beat_id="A",
            lat=41.87596,
            lon=-87.63631,
            kind="foot_patrol",
            client_token="t2",
            settings=settings,
        )
        > 0
    )


def test_the_audit_log_is_for_administrators(city):
    engine, _, _ = city
    for refused in (OFFICER_A, SERGEANT_A, None):
        with pytest.raises(AccessError, match="audit log"):
            access.read_audit_for(engine, refused)
    entries = access.read_audit_for(engine, ADMINISTRATOR, action="import")
    assert set(entries["action"]) == {"import.areas", "import.activity"}
    text = access.export_audit_log(engine, ADMINISTRATOR, entries, file_name="audit.csv")
    assert text.splitlines()[0] == "audit_id,at,actor,action,target,details"
    assert audit_entries(engine, "audit.export")[0]["details"] == {"rows": len(entries)}
    with pytest.raises(AccessError):
        access.export_audit_log(engine, SERGEANT_A, entries, file_name="audit.csv")


def test_the_activity_frame_is_sorted_by_day_and_cached_per_store_version(city, settings, tmp_path):
    engine, _, activity = city
    assert activity["day"].is_monotonic_increasing and len(activity) == 18
    again = read_activity(engine, timezone=settings.timezone, cache_dir=tmp_path / "c")
    cached = list((tmp_path / "c").glob("activity-*/activity-v*.parquet"))
    assert len(cached) == 1 and cached[0].name == f"activity-v{store.store_version(engine)}.parquet"
    pd.testing.assert_frame_equal(read_activity(engine, timezone=settings.timezone, cache_dir=tmp_path / "c"), again)


@pytest.mark.parametrize("user", [None, OFFICER_A, ADMINISTRATOR, SERGEANT_A])
def test_only_a_supervisor_of_every_beat_publishes(engine, tmp_path, user):
    with pytest.raises(AccessError, match="publishing"):
        access.publish_as(engine, user, tmp_path / "public", settings=Settings())
    assert not (tmp_path / "public").exists()


@pytest.mark.parametrize("user", [None, OFFICER_A, ADMINISTRATOR])
def test_only_supervisors_preview_a_publication(engine, user):
    with pytest.raises(AccessError, match="publishing"):
        access.preview_publication_as(engine, user, settings=Settings())


def test_a_refused_import_is_audited(city, tmp_path, settings):
    engine, _, _ = city
    (tmp_path / "broken.csv").write_text("when,where\n1,2\n")
    with pytest.raises(InputError, match="missing column"):
        access.import_activity_as(engine, LIEUTENANT, tmp_path / "broken.csv", settings=settings)
    [entry] = audit_entries(engine, "import.activity.failed")
    assert entry["actor"] == "lt" and entry["target"].endswith("broken.csv")
    assert entry["details"]["error"] == "InputError" and "missing column" in entry["details"]["reason"]
    with pytest.raises(InputError):
        access.load_areas_as(engine, LIEUTENANT, tmp_path / "broken.csv", settings=settings, grid_m=200)
    assert audit_entries(engine, "import.areas.failed")[0]["actor"] == "lt"


def test_route_files_are_for_the_users_beats_and_audited(city):
    engine, _, _ = city
    made: list[str] = []

    def build() -> str:
        made.append("gpx")
        return "<gpx/>"

    for refused, beat in ((OFFICER_A, "B"), (ADMINISTRATOR, "A"), (None, "A")):
        with pytest.raises(AccessError):
            access.route_file(engine, refused, build, beat_id=beat, file_name="route.gpx", what="GPX")
    assert made == [] and audit_entries(engine, "route.download") == []
    assert access.route_file(engine, OFFICER_A, build, beat_id="A", file_name="route.gpx", what="GPX") == "<gpx/>"
    [entry] = audit_entries(engine, "route.download")
    assert entry["actor"] == "ofc" and entry["details"] == {"what": "GPX", "beat_id": "A"}
