"""Tooltips on a phone (390 px, touch) in a real browser (the system's Chromium): a tap opens a block's tooltip
inside the screen, even at its edge, and a tap elsewhere closes it."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import sync_playwright

from beatmap.demo import make_demo_town
from beatmap.publish import DEFAULT_LEAFLET_DIR
from beatmap.render import route_map, standalone_html
from tests.test_browser import ARGS, CHROMIUM

#: Browser tests run once, on SQLite.
pytestmark = pytest.mark.ui

METRIC = "EPSG:32616"
REASON = "No foot patrol or community visit in the window, and 14 enforcement events: seen only on calls " * 2


@pytest.fixture(scope="module")
def phone_map(tmp_path_factory):
    """The log-visit map of one demo beat (the route map), with long reasons, as a standalone page."""
    town = make_demo_town(3, days=7)
    blocks = town.blocks[town.blocks["beat_id"] == "B03"].to_crs(METRIC).copy()
    blocks["flag"] = "enforcement_only"
    blocks["flag_reason"] = REASON
    beat = town.beats[town.beats["beat_id"] == "B03"].to_crs(METRIC)
    path = tmp_path_factory.mktemp("tooltips") / "visit.html"
    path.write_text(standalone_html(route_map(blocks, beat), vendor_dir=DEFAULT_LEAFLET_DIR))
    return path.as_uri(), tuple(beat.to_crs(4326).total_bounds)


def document_element_at(page, point) -> str:
    """The class of the map element at a screen point that matters here: the map itself, a shape, or other."""
    return page.evaluate(
        """p => { const e = document.elementFromPoint(p[0], p[1]);
        const c = (e.getAttribute('class') || ''); return /leaflet-container/.test(c) ? 'leaflet-container'
        : /leaflet-interactive/.test(c) ? 'shape' : c; }""",
        point,
    )


def tooltip_box(page):
    tip = page.locator(".leaflet-tooltip")
    return tip.bounding_box() if tip.count() else None


def test_a_tap_opens_a_tooltip_that_fits_the_screen_and_a_tap_elsewhere_closes_it(phone_map):
    phone_map, _ = phone_map
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 700}, is_mobile=True, has_touch=True)
        page.goto(phone_map)
        page.wait_for_selector("path.leaflet-interactive")
        width = page.viewport_size["width"]
        # Zoomed in, blocks run off the screen; at each edge, the block whose centre (where its tooltip
        # opens) is nearest the edge: the tooltip is moved inside the screen.
        page.evaluate("""() => { const m = Object.values(window).find(v => v instanceof L.Map);
                                 m.setZoom(m.getZoom() + 2, {animate: false}); }""")
        page.wait_for_timeout(300)
        for edge in ("right", "left", "bottom", "top"):
            point = page.evaluate(
                """edge => { const m = Object.values(window).find(v => v instanceof L.Map);
                const box = m.getContainer().getBoundingClientRect(); let best = null;
                m.eachLayer(l => {
                    if (!l.feature || !l.getBounds || l.feature.properties.block_id === undefined) return;
                    const p = m.latLngToContainerPoint(l.getCenter());
                    if (p.x < 5 || p.y < 5 || p.x > box.width - 5 || p.y > box.height - 5) return;
                    const score = {right: p.x, left: -p.x, bottom: p.y, top: -p.y}[edge];
                    if (!best || score > best[2]) best = [p.x + box.left, p.y + box.top, score]; });
                return best; }""",
                edge,
            )
            page.wait_for_timeout(700)  # taps apart, as a person taps: two quick taps zoom in (a double tap)
            page.touchscreen.tap(point[0], point[1])
            page.wait_for_selector(".leaflet-tooltip", timeout=5_000)
            box = tooltip_box(page)
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (edge, box)
            assert box["y"] >= 0 and box["y"] + box["height"] <= page.viewport_size["height"], (edge, box)
            assert "seen only on calls" in page.locator(".leaflet-tooltip").inner_text()
        # Zoomed out, the open tooltip is placed again, still on the screen; a tap off the blocks closes it.
        page.evaluate("""() => { const m = Object.values(window).find(v => v instanceof L.Map);
                                 m.setZoom(m.getZoom() - 4, {animate: false}); }""")
        page.wait_for_timeout(300)
        box = tooltip_box(page)
        assert box is not None and box["x"] + box["width"] <= width
        empty = page.evaluate("""() => { const box = document.querySelector('.leaflet-container')
                .getBoundingClientRect();
            for (let y = box.top + 60; y < box.bottom - 60; y += 10) for (let x = box.left + 60; x < box.right - 20;
                x += 10) { const e = document.elementFromPoint(x, y);
                if (e && /leaflet-container/.test(e.getAttribute('class') || '')) return [x, y]; }
            return null; }""")  # a point of the bare map, off every block and control
        assert document_element_at(page, empty) == "leaflet-container"
        page.wait_for_timeout(700)
        page.touchscreen.tap(*empty)
        page.wait_for_timeout(300)
        assert page.locator(".leaflet-tooltip").count() == 0 or not page.locator(".leaflet-tooltip").is_visible()
        browser.close()
