"""The published index.html opened from disk in the system's Chromium with the network cut off."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from beatmap import snapshot as snap
from beatmap.publish import publish_snapshot
from beatmap.settings import Settings
from tests.conftest import ROOT
from tests.public_helpers import AS_OF, AVENUES, PRESENCE_STAYS, STREETS_EW, A, B, city_with_stays, publish_tiny_city
from tests.test_browser import ARGS, CHROMIUM, map_frame, map_with_shapes, serve_app

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    counts = {(A, 0, "foot_patrol"): 8, (A, 1, "foot_patrol"): 1, (B, 0, "enforcement"): 6}
    public = publish_tiny_city(tmp_path_factory.mktemp("public_browser"), counts, settings=Settings())
    return (public / snap.INDEX).as_uri()


def drawn_paths(page) -> int:
    return page.locator("path.leaflet-interactive").count()


@pytest.mark.parametrize(
    "viewport", [{"width": 1200, "height": 900}, {"width": 375, "height": 740}], ids=["desktop", "phone"]
)
def test_snapshot_page_draws_the_map_from_disk_with_no_network(page_url, viewport):
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    attempted: list[str] = []
    errors: list[str] = []

    def block_network(route):
        url = route.request.url
        if url.startswith(("http://", "https://")):
            attempted.append(url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport=viewport)
        context.route("**/*", block_network)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(page_url, wait_until="load")
        page.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        # The city view: the two beats, labelled, and no block yet.
        assert drawn_paths(page) == 2
        assert page.locator(".bm-beat-label").all_inner_texts() == [A, B]
        assert page.locator("#block-table tbody tr").count() == 0
        # Choosing beat B loads its blocks from beats/…js (a script, so it works from disk): 4 blocks drawn over
        # the beats, the one mostly enforcement with a dashed edge, and the beat's blocks as a table.
        page.select_option("#beat-select", label=B)
        page.wait_for_function("document.querySelectorAll('#block-table tbody tr').length === 4")
        assert drawn_paths(page) == 2 + 4
        assert page.locator("path[stroke-dasharray]").count() == 1
        assert page.locator("#beat-status").inner_text() == "Beat B: 4 blocks"
        # A click on beat A in the list, then back to the whole city.
        page.select_option("#beat-select", label=A)
        page.wait_for_function("document.getElementById('beat-status').textContent === 'Beat A: 4 blocks'")
        assert page.get_by_text("fewer than 3").first.is_visible()
        page.select_option("#beat-select", label="Whole city")
        assert drawn_paths(page) == 2 and page.locator("#block-table tbody tr").count() == 0
        assert page.get_by_role("heading", name="Beats").count() == 1
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {viewport['width']}px wide"
        browser.close()
    assert attempted == [], f"the page tried to reach the network: {attempted}"
    assert errors == []


def test_a_click_on_a_beat_opens_it(page_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_url, wait_until="load")
        page.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        page.locator("path.leaflet-interactive").nth(1).click(force=True)  # beat B (beats in the order of ids)
        page.wait_for_function("document.getElementById('beat-status').textContent === 'Beat B: 4 blocks'")
        assert page.locator("#beat-select").input_value() == "1"
        browser.close()


@contextmanager
def public_dashboard(folder: Path, db: Path) -> Iterator[tuple]:
    """The public-only dashboard over the snapshot ``folder`` (never opening the store ``db``), in Chromium at
    1200 x 900: yields the browser and the page, opened."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BEATMAP_PUBLIC_ONLY", "1")
        mp.setenv(snap.ENV_PUBLIC_DIR, str(folder))
        with serve_app(db) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url, wait_until="domcontentloaded")
            yield browser, page


AXE = ROOT / "static" / "vendor" / "axe-core" / "axe.min.js"


def serious_violations(page) -> list:
    """axe-core's serious and critical violations on the page (axe is vendored from npm by `make vendor`)."""
    assert AXE.exists(), "install axe-core with `make vendor` (npm)"
    page.add_script_tag(path=str(AXE))
    return page.evaluate("""async () => (await axe.run(document)).violations
        .filter(v => v.impact === 'serious' || v.impact === 'critical')
        .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.html.slice(0, 120))}))""")


def test_snapshot_search_table_skip_link_and_accessibility(page_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(page_url, wait_until="load")
        page.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        assert serious_violations(page) == []
        # The first Tab reaches the skip link, which jumps past the map to the tables.
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("location.hash") == "#tables"
        # Search every block offline (search.js is loaded at the first search): only matching rows are listed.
        rows = page.locator("#block-table tbody tr")
        page.fill("#block-search", "A_r1")
        page.wait_for_function("document.getElementById('block-found').textContent === '2 blocks'")
        assert rows.count() == 2 and all("A_r1" in r.inner_text() for r in rows.all())
        page.fill("#block-search", "_r2 b")
        page.wait_for_function("document.getElementById('block-caption').textContent === 'Blocks found: _r2 b'")
        assert page.locator("#block-found").inner_text() == "2 blocks"
        assert sorted(r.inner_text().split("\t")[0] for r in rows.all()) == ["B_r2c3", "B_r2c4"]
        page.fill("#block-search", "")
        page.wait_for_function("document.getElementById('block-found').textContent === ''")
        assert rows.count() == 0
        page.select_option("#beat-select", label=A)
        page.wait_for_function("document.querySelectorAll('#block-table tbody tr').length === 4")
        assert serious_violations(page) == []  # with a beat's blocks and their table
        browser.close()


def test_public_dashboard_page_has_no_serious_accessibility_violations(page_url, tmp_path):
    folder = Path(urlparse(page_url).path).parent
    with public_dashboard(folder, tmp_path / "never-opened.db") as (browser, page):
        page.get_by_role("heading", name="Every block").wait_for(timeout=60_000)
        map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)  # the city's beats
        page.get_by_text("Skip the map: go to the tables").wait_for()
        assert serious_violations(page) == []
        frame = map_frame(page)
        frame.add_script_tag(path=str(AXE))
        in_map = frame.evaluate("""async () => (await axe.run(document)).violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)""")
        assert in_map == []
        browser.close()
    assert not (tmp_path / "never-opened.db").exists()


@pytest.fixture(scope="module")
def streets_folder(tmp_path_factory) -> Path:
    counts = {(A, 0, "foot_patrol"): 8, (B, 0, "enforcement"): 6}
    return publish_tiny_city(tmp_path_factory.mktemp("public_streets"), counts, settings=Settings(), streets=True)


def street_names(frame) -> set[str]:
    return set(frame.locator(".bm-street-label").all_inner_texts())


def test_snapshot_page_draws_its_streets_and_their_names_offline(streets_folder):
    attempted: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        context.route(
            "**/*",
            lambda route: (
                (attempted.append(route.request.url), route.abort())
                if route.request.url.startswith(("http://", "https://"))
                else route.continue_()
            ),
        )
        page = context.new_page()
        page.goto((streets_folder / snap.INDEX).as_uri(), wait_until="load")
        # streets.js is a script beside the page: the lines (one per street name) go in their own pane, over the beats.
        page.wait_for_function("document.querySelectorAll('.leaflet-bm-streets-pane path').length === 8")
        page.wait_for_function("document.querySelectorAll('.bm-street-label').length > 0")
        assert street_names(page) == {*STREETS_EW, *AVENUES}
        assert page.locator(".bm-beat-label").all_inner_texts() == [A, B]  # beat labels stay
        # The names take no clicks: a click on a beat still opens it.
        page.locator("path.leaflet-interactive").nth(1).click(force=True)
        page.wait_for_function("document.getElementById('beat-status').textContent === 'Beat B: 4 blocks'")
        assert page.locator(".leaflet-bm-streets-pane path").count() == 8
        assert serious_violations(page) == []
        browser.close()
    assert attempted == []


def test_public_dashboard_page_draws_the_snapshot_streets(streets_folder, tmp_path):
    with public_dashboard(streets_folder, tmp_path / "never-opened.db") as (browser, page):
        frame = map_frame(page)
        frame.wait_for_selector(".leaflet-bm-streets-pane path", timeout=60_000)
        frame.wait_for_function("document.querySelectorAll('.bm-street-label').length > 0")
        assert street_names(frame) == {*STREETS_EW, *AVENUES}
        # Beat A's view carries the streets around beat A, not the 4th and 5th Avenues east of it.
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Beat").first.click()
        page.get_by_role("option", name=A, exact=True).click()
        frame = map_with_shapes(page, 4)
        frame.wait_for_function("document.querySelectorAll('.bm-street-label').length > 0")
        assert street_names(frame) == {*STREETS_EW, "1st Ave", "2nd Ave", "3rd Ave"}
        browser.close()
    assert not (tmp_path / "never-opened.db").exists()


def test_presence_minutes_in_the_table_and_tooltips_in_words(tmp_path):
    """A snapshot published with presence minutes: its page lists them in words, per block, and in tooltips."""
    on = Settings(timezone="America/Chicago", publish_presence_minutes=True)
    engine, points = city_with_stays(tmp_path, on, PRESENCE_STAYS)
    publish_snapshot(engine, tmp_path / "public", settings=on, as_of=AS_OF)
    engine.dispose()
    shown = "about 60 minutes of police presence outside calls"
    withheld = "withheld (fewer than 3 patrol devices)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto((tmp_path / "public" / snap.INDEX).as_uri(), wait_until="load")
        page.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        headings = page.locator("#block-table thead th").all_inner_texts()
        assert headings[-1] == snap.PRESENCE_HEADING
        page.select_option("#beat-select", label=A)
        page.wait_for_function("document.querySelectorAll('#block-table tbody tr').length === 4")
        cells = {
            row.locator("td").first.inner_text(): row.locator("td").last.inner_text()
            for row in page.locator("#block-table tbody tr").all()
        }
        assert cells[points.at[0, "block_id"]] == withheld
        assert cells[points.at[1, "block_id"]] == shown
        # The tooltips of the beat's blocks say the same.
        tips = []
        for k in range(2, 6):  # the two beat outlines come first, then the four blocks
            page.locator("path.leaflet-interactive").nth(k).hover(force=True)
            tips.append(page.locator(".leaflet-tooltip").last.inner_text())
        assert any(shown in t for t in tips) and any(withheld in t for t in tips)
        # The search lists them in words too.
        page.fill("#block-search", points.at[1, "block_id"])
        page.wait_for_function("document.getElementById('block-found').textContent === '1 block'")
        assert page.locator("#block-table tbody tr td").last.inner_text() == shown
        assert serious_violations(page) == []
        browser.close()
