"""The published index.html opened from disk in the system's Chromium with the network cut off."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

from beatmap import snapshot as snap
from beatmap.settings import Settings
from tests.public_helpers import A, B, publish_tiny_city
from tests.test_browser import ARGS, CHROMIUM

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
