"""The officers' pages under streamlit's AppTest: plan a walking route, log a visit."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import ClassVar

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from beatmap import accounts, store
from beatmap.accounts import User
from beatmap.ui import auth
from beatmap.ui.safe import md_escape
from tests.conftest import ROOT, app_as
from tests.street_city import build_store, lat_lon

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

ROUTE_PAGE = str(ROOT / "beatmap" / "ui" / "pages" / "route.py")
VISIT_PAGE = str(ROOT / "beatmap" / "ui" / "pages" / "log_visit.py")
#: Who the pages run for unless a test says otherwise: an officer of both beats, logging as O7.
OFFICER_AB = User("o7", "officer", ("A", "B"), officer_id="O7")


@pytest.fixture
def taps(monkeypatch):
    """Patch the tap-map seam: record the maps drawn, and answer with the place in ``taps.point``."""

    class Taps:
        point: tuple[float, float] | None = None
        maps: ClassVar[list] = []

    recorder = Taps()
    recorder.maps = []

    def fake_show_tap_map(m, *, key, height=480):
        recorder.maps.append(m)
        return recorder.point

    import beatmap.ui.mapview

    monkeypatch.setattr(beatmap.ui.mapview, "show_tap_map", fake_show_tap_map)
    return recorder


@pytest.fixture
def street_store(tmp_path, monkeypatch):
    db = build_store(tmp_path)
    monkeypatch.setenv("BEATMAP_DB", str(db))
    return db


def run(page: str, user: User | None = OFFICER_AB) -> AppTest:
    """Run a page on its own with ``user`` signed in, as app.py's sign-in leaves the session (None: nobody)."""
    at = AppTest.from_file(page, default_timeout=60)
    if user is not None:
        at.session_state[auth.USER] = user
    at.run()
    assert not at.exception, at.exception
    return at


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_route_page_plans_a_route_on_the_streets_with_gpx_and_card(street_store, taps):
    at = run(ROUTE_PAGE)
    assert at.title[0].value == "Walking route" and at.selectbox[0].options == ["A", "B"]
    assert len(taps.maps) == 1  # the beat's blocks, to tap a start on
    button(at, "Plan the route").click().run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    # Every block of beat A but the one walked daily (last visit on the window's last day: priority 0).
    assert sorted(table["Block"]) == ["A_r1c2", "A_r2c1", "A_r2c2"]
    assert not any("Seed" in c.value or "Priority" in c.value for c in at.caption)  # planner's figures, not shown
    assert table["Where"].str.startswith("Test St").all()  # every stop named by its street
    downloads = {d.label: d for d in at.get("download_button")}
    assert set(downloads) == {"Download GPX", "Printable card"}
    html = taps.maps[-1].get_root().render()
    assert "leaflet" in html and "cdn" not in html.lower() and "Walking route" in html


def test_route_page_says_when_the_time_is_too_short(street_store, taps):
    at = run(ROUTE_PAGE)
    at.number_input[0].set_value(10)
    at.number_input[1].set_value(15)
    button(at, "Plan the route").click().run()
    assert not at.exception
    assert "too short to visit any block" in at.error[0].value


def test_route_page_starts_where_the_map_was_tapped(street_store, taps):
    taps.point = lat_lon(600, 0)
    at = run(ROUTE_PAGE)
    at.selectbox[0].select("B").run()
    at.radio[0].set_value("Where I tap on the map").run()
    button(at, "Plan the route").click().run()
    assert not at.exception and not at.error
    route = at.session_state["route-B"]
    assert route.start == pytest.approx(lat_lon(600, 0)) and route.start_snap_m < 1
    assert route.stops and not route.straight_line


def test_route_page_without_streets_labels_the_straight_line_estimate(tmp_path, monkeypatch, taps):
    monkeypatch.setenv("BEATMAP_DB", str(build_store(tmp_path, streets=False)))
    at = run(ROUTE_PAGE)
    button(at, "Plan the route").click().run()
    assert not at.exception
    assert "straight-line estimates" in at.warning[0].value


def test_log_visit_page_asks_for_a_tap_first(street_store, taps):
    at = run(VISIT_PAGE)
    assert "Tap the block you visited" in at.info[0].value
    assert at.button[0].disabled  # Save waits for a place


def block_flag(m, block_id: str) -> str | None:
    """The flag a drawn map gives a block (from its GeoJSON layer), or None when the block is not drawn."""
    for child in m._children.values():
        data = getattr(child, "data", None)
        if isinstance(data, dict):
            for feature in data.get("features", []):
                if feature["properties"].get("block_id") == block_id:
                    return feature["properties"].get("flag")
    return None


def test_log_visit_page_saves_a_visit_once_on_the_tapped_block(street_store, taps):
    taps.point = lat_lon(250, 150)  # block A_r1c2 (x 200-400, y 0-200)
    at = run(VISIT_PAGE)
    assert f"Block **{md_escape('A_r1c2')}**" in at.success[0].value
    at.selectbox[1].select("business check")
    at.text_area[0].input("Owner asked about the back lot")
    assert block_flag(taps.maps[-1], "A_r1c2") == "unvisited"
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("Saved visit" in s.value for s in at.success)
    # The page draws the map again after the save: the block shows the new visit.
    assert block_flag(taps.maps[-1], "A_r1c2") == ""
    assert at.button[0].disabled  # Save waits for the next tap: no second visit from a second press
    engine = store.open_store(street_store)
    with engine.connect() as conn:
        rows = conn.execute(select(store.events).where(store.events.c.source == "app")).mappings().all()
    assert len(rows) == 1
    assert (rows[0]["block_id"], rows[0]["officer_id"], rows[0]["subtype"]) == ("A_r1c2", "O7", "business check")
    mine = at.dataframe[0].value
    assert mine["Block"].tolist() == ["A_r1c2"]
    assert (mine["What"].tolist(), mine["Type"].tolist()) == (["Community visit"], ["business check"])


def test_log_visit_page_lists_the_beats_flagged_blocks(street_store, taps):
    at = run(VISIT_PAGE)
    flagged = at.dataframe[-1].value
    assert "Enforcement only" in set(flagged["Flag"]) and flagged["Where"].str.startswith("Test St").all()


@pytest.mark.parametrize("page", [ROUTE_PAGE, VISIT_PAGE])
def test_the_officer_pages_show_nothing_when_nobody_is_signed_in(street_store, taps, page):
    at = run(page, user=None)
    assert "This page is not available to you" in at.error[0].value
    assert not at.selectbox and not at.button and not taps.maps


def test_gpx_of_the_page_parses(street_store, taps):
    at = run(ROUTE_PAGE)
    button(at, "Plan the route").click().run()
    from beatmap.routing.output import route_to_gpx

    root = ET.fromstring(route_to_gpx(at.session_state["route-A"]))
    assert root.tag == "{http://www.topografix.com/GPX/1/1}gpx"


def test_log_visit_page_corrects_and_deletes_the_officers_own_visit(street_store, taps):
    taps.point = lat_lon(250, 150)
    at = run(VISIT_PAGE)
    at.button[0].click().run()  # save with the defaults: a community visit, now
    assert any("Saved visit" in s.value for s in at.success)
    at.selectbox(key="fix-type").select("school")
    next(b for b in at.button if b.label == "Save changes").click().run()
    assert not at.exception and not at.error
    engine = store.open_store(street_store)

    def app_rows():
        with engine.connect() as conn:
            return conn.execute(select(store.events).where(store.events.c.source == "app")).mappings().all()

    assert app_rows()[0]["subtype"] == "school"
    next(b for b in at.button if b.label == "Delete this visit").click().run()
    assert not at.exception and not at.error
    assert app_rows() == []
    with engine.connect() as conn:
        actions = conn.execute(
            select(store.audit_log.c.action)
            .where(store.audit_log.c.action.startswith("visit."))
            .order_by(store.audit_log.c.audit_id)
        )
        assert list(actions.scalars()) == ["visit.log", "visit.edit", "visit.delete"]


# --- beats: each user plans and logs on their own beats only -------------------------------------------------

PASSWORD = "correct horse battery staple"
#: name -> role, beats, all beats, officer id
ACCOUNTS = {
    "ofc-a": ("officer", ["A"], False, "O1"),
    "sgt-b": ("supervisor", ["B"], False, None),
    "lt": ("supervisor", [], True, None),
    "rookie": ("officer", [], False, "O9"),
}


@pytest.fixture
def staffed_store(street_store):
    """The street city with one account per kind of beat assignment."""
    engine = store.open_store(street_store)
    for name, (role, beats, every, officer_id) in ACCOUNTS.items():
        accounts.add_user(
            engine,
            name,
            role=role,
            beats=beats,
            all_beats=every,
            officer_id=officer_id,
            password=PASSWORD,
            actor="test",
        )
    engine.dispose()
    return street_store


def open_as(name: str, page: str) -> AppTest:
    """The whole app (sign-in, navigation) with ``name`` signed in, opened at ``page`` by its address."""
    at = app_as(name)
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page, title", [(ROUTE_PAGE, "Walking route"), (VISIT_PAGE, "Log a visit")])
@pytest.mark.parametrize("name, beats", [("ofc-a", ["A"]), ("sgt-b", ["B"]), ("lt", ["A", "B"])])
def test_the_beat_list_holds_the_users_beats_only(staffed_store, taps, page, title, name, beats):
    at = open_as(name, page)
    assert [t.value for t in at.title] == [title]
    assert at.selectbox[0].options == beats


@pytest.mark.parametrize("page", [ROUTE_PAGE, VISIT_PAGE])
def test_a_user_without_beats_is_told_so_and_gets_no_form(staffed_store, taps, page):
    at = open_as("rookie", page)
    assert [i.value for i in at.info] == ["No beat is assigned to you yet; ask an administrator to assign your beats."]
    assert not at.selectbox and not at.main.button and not taps.maps


def test_an_officer_of_one_beat_plans_there_and_logs_under_their_id(staffed_store, taps):
    at = open_as("ofc-a", ROUTE_PAGE)
    button(at, "Plan the route").click().run()
    assert not at.exception and not at.error
    assert at.session_state["route-A"].beat_id == "A"
    taps.point = lat_lon(250, 150)  # block A_r1c2
    at = open_as("ofc-a", VISIT_PAGE)
    assert any(c.value == "Officer O1" for c in at.caption)
    next(b for b in at.button if b.label == "Save").click().run()
    assert not at.exception and not at.error
    engine = store.open_store(staffed_store)
    with engine.connect() as conn:
        row = conn.execute(select(store.events).where(store.events.c.source == "app")).mappings().one()
    assert (row["officer_id"], row["beat_id"], row["block_id"]) == ("O1", "A", "A_r1c2")


def test_a_tap_outside_the_chosen_beat_is_not_placed(street_store, taps):
    taps.point = lat_lon(650, 150)  # well inside beat B
    at = run(VISIT_PAGE)  # beat A is chosen first
    assert at.selectbox[0].value == "A"
    assert "That place is outside beat A" in at.warning[0].value
    assert not at.success and next(b for b in at.button if b.label == "Save").disabled
    at.selectbox[0].select("B").run()
    assert f"Block **{md_escape('B_r1c4')}**, beat B" in at.success[0].value


def test_route_page_offers_the_landmarks_near_the_beat_and_starts_there(street_store, taps, tmp_path, monkeypatch):
    station, far = lat_lon(150, 50), lat_lon(40_000, 0)
    toml = tmp_path / "settings.toml"
    toml.write_text(f'[landmarks]\n"Station" = [{station[0]}, {station[1]}]\n"Airport" = [{far[0]}, {far[1]}]\n')
    monkeypatch.setenv("BEATMAP_SETTINGS", str(toml))
    at = run(ROUTE_PAGE)
    assert at.radio[0].options == ["Station", "Beat centre", "Where I tap on the map"]  # the airport is too far
    assert at.radio[0].value == "Station"
    button(at, "Plan the route").click().run()
    assert not at.exception and not at.error
    route = at.session_state["route-A"]
    assert route.start == pytest.approx(station) and route.end == route.start


def test_route_page_can_cover_one_neglected_area(street_store, taps):
    at = run(ROUTE_PAGE)
    cover = at.selectbox[1]
    assert cover.label == "Cover" and cover.options == ["The whole beat", "A-1: 3 blocks along Test St"]
    cover.select_index(1).run()
    button(at, "Plan the route").click().run()
    assert not at.exception and not at.error
    route = at.session_state["route-A-A-1"]
    assert route.area == "A-1, 3 blocks along Test St" and route.stops
    assert any("This walk covers neglected area A-1" in c.value for c in at.caption)
