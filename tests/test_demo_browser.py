"""The demo city in a real browser (the system's Chromium): its first map, streets and beat labels, the public map
it publishes on first run, and publishing again from the Publish page."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

from beatmap import accounts, store
from beatmap.demo import build_demo
from beatmap.publish import check_snapshot, publish_history
from beatmap.settings import Settings
from tests.test_browser import ARGS, CHROMIUM, PASSWORD, map_frame, serve_app, sign_in

pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    """`streamlit run app.py` over a fresh demo store, its first public snapshot published, and a supervisor."""
    tmp = tmp_path_factory.mktemp("demo-browser")
    engine = store.open_store(tmp / "demo.db")
    build_demo(engine, settings=Settings(), directory=tmp / "demo", public_dir=tmp / "public", gps_weeks=1)
    accounts.add_user(engine, "chief", role="supervisor", all_beats=True, password=PASSWORD, actor="test")
    engine.dispose()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BEATMAP_PUBLIC_DIR", str(tmp / "public"))
        with serve_app(tmp / "demo.db") as url:
            yield url, tmp


@pytest.fixture
def browser():
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def test_first_run_shows_the_public_map_then_the_city_with_streets_and_beat_labels(demo_app, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(demo_app[0], wait_until="domcontentloaded")
    # Not signed in: the public map the demo published, not a command to run.
    frame = map_frame(page)
    frame.wait_for_selector("path.leaflet-interactive", timeout=60_000)
    assert frame.locator("path.leaflet-interactive").count() == 8  # the city view: its beats (blocks on choosing one)
    assert frame.locator(".bm-beat-label").count() == 8
    assert page.get_by_text("beatmap publish").count() == 0
    sign_in(page, "chief")
    page.get_by_role("heading", name="Coverage").wait_for(timeout=60_000)
    frame = map_frame(page)
    frame.wait_for_selector(".bm-beat-label", timeout=60_000)
    assert sorted(frame.locator(".bm-beat-label").all_inner_texts()) == [f"B0{i}" for i in range(1, 9)]
    frame.wait_for_selector(".leaflet-bm-streets-pane path", timeout=60_000)  # the major streets at city zoom
    frame.wait_for_selector(".bm-street-label", timeout=60_000)  # with their names
    hosts = {r.split("/")[2].split(":")[0] for r in requests if r.startswith("http")}
    assert hosts <= {"127.0.0.1", "localhost"}, hosts  # nothing fetched from elsewhere
    page.close()


def test_a_supervisor_publishes_from_the_publish_page(demo_app, browser):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(demo_app[0], wait_until="domcontentloaded")
    sign_in(page, "chief")
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Publish").click()
    page.get_by_role("heading", name="Publish the public map").wait_for(timeout=60_000)
    map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=60_000)  # the preview
    assert page.get_by_text("Nothing to warn about").is_visible()
    engine = store.open_store(demo_app[1] / "demo.db")
    assert list(publish_history(engine)["by"]) == ["demo"]  # the demo's first snapshot
    page.get_by_role("button", name="Publish now").click()
    page.get_by_text("Published: data from").wait_for(timeout=60_000)
    assert list(publish_history(engine)["by"]) == ["chief", "demo"]
    assert check_snapshot(demo_app[1] / "public", settings=Settings()) == []
    page.close()


TOOLTIP_OF = """id => { const m = Object.values(window).find(v => v instanceof L.Map); let path = null;
    m.eachLayer(l => { if (l.feature && l.feature.properties.block_id === id && l._path) path = l._path; });
    if (!path) return null;
    const r = path.getBoundingClientRect();
    const at = {bubbles: true, clientX: r.x + r.width / 2, clientY: r.y + r.height / 2};
    path.dispatchEvent(new MouseEvent('mouseover', at));
    const tip = document.querySelector('.leaflet-tooltip'), text = tip ? tip.innerText : '';
    path.dispatchEvent(new MouseEvent('mouseout', at));
    return text; }"""


def test_a_blocks_tooltip_names_the_landmark_on_or_beside_it(demo_app, browser):
    from beatmap.naming import landmarks_by_block
    from beatmap.settings import read_settings

    engine = store.open_store(demo_app[1] / "demo.db")
    named = landmarks_by_block(store.read_blocks(engine), read_settings(None).landmarks)  # the app's settings
    engine.dispose()
    by_school = sorted(b for b, n in named.items() if b.startswith("B01-") and n == "Lincoln School")
    assert by_school  # the demo's Lincoln School stands beside blocks of B01
    nothing = next(f"B01-{i:03d}" for i in range(1, 99) if f"B01-{i:03d}" not in named)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(demo_app[0], wait_until="domcontentloaded")
    sign_in(page, "chief")
    page.get_by_role("heading", name="Coverage").wait_for(timeout=60_000)
    page.get_by_role("combobox", name="Beat").click()
    page.get_by_role("option", name="B01", exact=True).click()
    page.get_by_text("Colour blocks by").wait_for(timeout=60_000)
    deadline, school, plain = 60, None, None
    while deadline and (school is None or plain is None):  # the beat's map replaces the city's
        page.wait_for_timeout(500)
        deadline -= 1
        try:
            frame = map_frame(page)
            school, plain = frame.evaluate(TOOLTIP_OF, by_school[0]), frame.evaluate(TOOLTIP_OF, nothing)
        except Exception:  # a frame replaced while we looked
            continue
    assert school is not None and "Landmark" in school and "Lincoln School" in school, school
    assert plain is not None and "Landmark" not in plain and nothing in plain  # no empty row elsewhere
    page.close()
