"""The published index.html opened from disk in the system's Chromium with the network cut off."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from beatmap import snapshot as snap
from beatmap.settings import Settings
from tests.conftest import ROOT
from tests.public_helpers import A, B, publish_tiny_city
from tests.test_browser import ARGS, CHROMIUM, map_frame, serve_app

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui


@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    counts = {(A, 0, "foot_patrol"): 8, (A, 1, "foot_patrol"): 1, (B, 0, "enforcement"): 6}
    public = publish_tiny_city(tmp_path_factory.mktemp("public_browser"), counts, settings=Settings())
    return (public / snap.INDEX).as_uri()


@pytest.mark.parametrize("viewport", [{"width": 1200, "height": 900}, {"width": 375, "height": 740}],
                         ids=["desktop", "phone"])
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
        # 8 blocks drawn as interactive paths; the 2 beat outlines are drawn but not interactive.
        assert page.locator("path.leaflet-interactive").count() == 8
        assert page.locator(".leaflet-overlay-pane path").count() == 10
        assert page.locator("path[stroke-dasharray]").count() == 1  # the one block that is mostly enforcement
        assert page.get_by_role("heading", name="Beats").count() == 1
        page.get_by_text("Show all 8 blocks").click()
        assert page.locator("details table tbody tr").count() == 8
        assert page.get_by_text("fewer than 3").first.is_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the page scrolls sideways by {overflow}px at {viewport['width']}px wide"
        browser.close()
    assert attempted == [], f"the page tried to reach the network: {attempted}"
    assert errors == []


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
        # Search the per-block table offline: the table opens and only matching rows stay.
        rows = page.locator("#block-table tbody tr")
        page.fill("#block-search", "A_r1")
        assert page.locator("#block-table").get_attribute("open") is not None
        visible = [r for r in rows.all() if r.is_visible()]
        assert len(visible) == 2 and all("A_r1" in r.inner_text() for r in visible)
        assert page.locator("#block-found").inner_text() == "2 blocks"
        page.fill("#block-search", "")
        assert sum(r.is_visible() for r in rows.all()) == 8
        browser.close()


def test_public_dashboard_page_has_no_serious_accessibility_violations(page_url, tmp_path):
    folder = Path(urlparse(page_url).path).parent
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BEATMAP_PUBLIC_ONLY", "1")
        mp.setenv(snap.ENV_PUBLIC_DIR, str(folder))
        with serve_app(tmp_path / "never-opened.db") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_role("heading", name="Every block").wait_for(timeout=60_000)
            map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)
            page.get_by_text("Skip the map: go to the tables").wait_for()
            assert serious_violations(page) == []
            frame = map_frame(page)
            frame.add_script_tag(path=str(AXE))
            in_map = frame.evaluate("""async () => (await axe.run(document)).violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id)""")
            assert in_map == []
            browser.close()
    assert not (tmp_path / "never-opened.db").exists()
