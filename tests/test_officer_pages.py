"""The officers' pages under streamlit's AppTest: plan a walking route, log a visit."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from beatmap import store
from tests.conftest import ROOT
from tests.street_city import build_store, lat_lon

ROUTE_PAGE = str(ROOT / "beatmap" / "ui" / "pages" / "route.py")
VISIT_PAGE = str(ROOT / "beatmap" / "ui" / "pages" / "log_visit.py")


@pytest.fixture
def taps(monkeypatch):
    """Patch the tap-map seam: record the maps drawn, and answer with the place in ``taps.point``."""

    class Taps:
        point: tuple[float, float] | None = None
        maps: list = []

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


def run(page: str, **state) -> AppTest:
    at = AppTest.from_file(page, default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
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
    assert any("Seed" in c.value for c in at.caption)
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
    at = run(VISIT_PAGE, officer_id="O7")
    assert "Tap the block you visited" in at.info[0].value
    assert at.button[0].disabled  # Save waits for a place


def test_log_visit_page_saves_a_visit_once_on_the_tapped_block(street_store, taps):
    taps.point = lat_lon(250, 150)  # block A_r1c2 (x 200-400, y 0-200)
    at = run(VISIT_PAGE, officer_id="O7")
    assert "Block **A_r1c2**" in at.success[0].value
    at.selectbox[1].select("business check")
    at.text_area[0].input("Owner asked about the back lot")
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert any("Saved visit" in s.value for s in at.success)
    at.button[0].click().run()  # a second tap on Save: no second visit
    engine = store.open_store(street_store)
    with engine.connect() as conn:
        rows = conn.execute(select(store.events).where(store.events.c.source == "app")).mappings().all()
    assert len(rows) == 1
    assert (rows[0]["block_id"], rows[0]["officer_id"], rows[0]["subtype"]) == ("A_r1c2", "O7", "business check")
    mine = at.dataframe[0].value
    assert mine["Block"].tolist() == ["A_r1c2"]


def test_log_visit_page_lists_the_beats_flagged_blocks(street_store, taps):
    at = run(VISIT_PAGE, officer_id="O7")
    flagged = at.dataframe[-1].value
    assert "enforcement_only" in set(flagged["Flag"])


def test_log_visit_page_asks_for_an_officer_id_when_nobody_is_signed_in(street_store, taps):
    at = run(VISIT_PAGE)
    assert at.text_input[0].label == "Your officer id"
    assert any("Give your officer id" in c.value for c in at.caption)


def test_gpx_of_the_page_parses(street_store, taps):
    at = run(ROUTE_PAGE)
    button(at, "Plan the route").click().run()
    from beatmap.routes import route_to_gpx

    root = ET.fromstring(route_to_gpx(at.session_state["route-A"]))
    assert root.tag == "{http://www.topografix.com/GPX/1/1}gpx"


def test_log_visit_page_corrects_and_deletes_the_officers_own_visit(street_store, taps):
    taps.point = lat_lon(250, 150)
    at = run(VISIT_PAGE, officer_id="O7")
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
        actions = conn.execute(select(store.audit_log.c.action).where(store.audit_log.c.action.startswith("visit."))
                               .order_by(store.audit_log.c.audit_id))
        assert list(actions.scalars()) == ["visit.log", "visit.edit", "visit.delete"]
