"""An officer plans a walking route in a real browser (the system's Chromium) and downloads the GPX, offline."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from beatmap import accounts, store
from beatmap.render import FLAG_STYLE
from tests.street_city import build_store
from tests.test_browser import ARGS, CHROMIUM, PASSWORD, map_frame, serve_app, sign_in

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

GPX = "{http://www.topografix.com/GPX/1/1}"


@pytest.fixture(scope="module")
def officer_app(tmp_path_factory):
    """`streamlit run app.py` over the street city, with an officer of beat A."""
    tmp = tmp_path_factory.mktemp("route-browser")
    db = build_store(tmp)
    engine = store.open_store(db)
    accounts.add_user(engine, "admin", role="admin", actor="test")  # the app asks for a first admin otherwise
    accounts.add_user(engine, "walker", role="officer", beats=["A"], officer_id="O7", password=PASSWORD, actor="test")
    with serve_app(db) as url:
        yield url


def test_officer_plans_a_route_and_downloads_the_gpx(officer_app, tmp_path):
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.goto(officer_app, wait_until="domcontentloaded")
        sign_in(page, "walker")
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Walking route").click()
        page.get_by_role("heading", name="Walking route").wait_for(timeout=30_000)
        map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)  # the beat's blocks

        page.get_by_role("button", name="Plan the route").click()
        download_button = page.get_by_role("button", name="Download GPX")
        download_button.wait_for(timeout=60_000)
        frame = map_frame(page)
        frame.wait_for_selector(".leaflet-marker-icon", timeout=30_000)  # the numbered stops
        # One badge per place; blocks reached at the same corner share one ("2, 3").
        badges = frame.locator(".leaflet-marker-icon:not(.bm-street-label):not(.bm-beat-label)")  # not the names
        stops = sum(len(text.split(",")) for text in badges.all_inner_texts())
        with page.expect_download(timeout=30_000) as info:
            download_button.click()
        download = info.value
        assert download.suggested_filename.endswith(".gpx")
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        browser.close()

    root = ET.parse(saved).getroot()
    assert root.tag == f"{GPX}gpx" and root.get("version") == "1.1"
    names = [w.findtext(f"{GPX}name") for w in root.findall(f"{GPX}wpt")]
    assert names[0] == "Start" and names[1].startswith("1. Test St") and "(block A_" in names[1]
    assert len(names) == stops + 1
    assert len(root.find(f"{GPX}rte").findall(f"{GPX}rtept")) >= 2
    outside = {urlparse(u).hostname for u in requests if u.startswith("http")} - {"127.0.0.1", "localhost"}
    assert outside == set(), f"requests left the app: {outside}"


def test_the_printable_card_has_a_map_of_the_walk_and_street_names(officer_app, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(officer_app, wait_until="domcontentloaded")
        sign_in(page, "walker")
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Walking route").click()
        page.get_by_role("button", name="Plan the route").click()
        card_button = page.get_by_role("button", name="Printable card")
        card_button.wait_for(timeout=60_000)
        assert page.get_by_text("Seed 2").count() == 0 and page.get_by_text("Priority covered").count() == 0
        with page.expect_download(timeout=30_000) as info:
            card_button.click()
        saved = tmp_path / "card.html"
        info.value.save_as(saved)
        card = context.new_page()
        card.goto(saved.as_uri())
        walk = card.locator("svg.walk")
        assert walk.is_visible() and walk.bounding_box()["width"] > 300
        assert card.locator("svg.walk polyline[stroke='#0072B2']").count() == 1  # the walk
        stops = card.locator("tbody tr").count()
        assert stops >= 1 and card.locator("svg.walk circle[fill='#0072B2']").count() == stops
        assert card.locator("svg.walk text", has_text="Test St").count() >= 1  # streets named on the map
        assert card.locator("tbody tr td:nth-child(2)").first.inner_text().startswith("Test St")
        text = card.locator("body").inner_text().lower()
        assert "seed" not in text and "priority" not in text
        browser.close()


def test_phone_log_visit_legend_folded_and_the_map_shows_the_saved_visit(officer_app):
    from tests.street_city import lat_lon

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page.goto(officer_app, wait_until="domcontentloaded")
        open_side_menu(page)
        sign_in(page, "walker")
        open_side_menu(page)
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Log a visit").click()
        page.get_by_role("heading", name="Log a visit").wait_for(timeout=30_000)
        if page.get_by_test_id("stSidebarCollapseButton").is_visible():
            page.get_by_test_id("stSidebarCollapseButton").click()  # the menu covers the page on a phone
        page.wait_for_timeout(500)
        frame = map_frame(page)
        frame.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        legend = frame.locator("details.bm-legend")
        assert legend.evaluate("d => d.open") is False  # folded: the map's bottom rows stay in sight
        lat, lon = lat_lon(300, 100)  # block A_r1c2: never visited
        point = frame.evaluate(f"""() => {{ const m = Object.values(window).find(v => v instanceof L.Map);
            const p = m.latLngToContainerPoint([{lat}, {lon}]); const r = m.getContainer().getBoundingClientRect();
            return [p.x, p.y, p.x + r.left, p.y + r.top]; }}""")
        unvisited = frame.evaluate(FILL_AT, point)
        assert unvisited == FLAG_STYLE["unvisited"][0]
        frame.locator(".leaflet-container").click(position={"x": point[0], "y": point[1]})
        page.get_by_text("Block A_r1c2").first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Save").click()
        page.get_by_text("Saved visit").wait_for(timeout=30_000)
        frame = map_frame(page)
        frame.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        deadline = 40
        while frame.evaluate(FILL_AT, point) == unvisited and deadline:
            page.wait_for_timeout(500)
            frame = map_frame(page)
            deadline -= 1
        assert frame.evaluate(FILL_AT, point) == FLAG_STYLE[None][0]  # redrawn: the block shows the new visit
        browser.close()


def side_menu_open(page) -> bool:
    """True when the side menu is on screen (on a phone, a closed one sits off the left edge)."""
    side = page.locator('[data-testid="stSidebarUserContent"]')
    box = side.bounding_box() if side.count() else None
    return bool(box and box["x"] + box["width"] > 0 and side.is_visible())


def test_signing_in_on_a_phone_closes_the_side_menu_and_not_on_a_desktop(officer_app):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(officer_app, wait_until="domcontentloaded")
        open_side_menu(phone)  # the sign-in form is in the side menu, which covers the page on a phone
        assert side_menu_open(phone)
        sign_in(phone, "walker")
        phone.get_by_test_id("stExpandSidebarButton").wait_for(timeout=30_000)  # the menu's » is back
        phone.wait_for_timeout(500)  # the menu's closing slide
        assert not side_menu_open(phone)
        phone.get_by_role("heading", name="Coverage").wait_for(timeout=30_000)
        assert phone.get_by_role("heading", name="Coverage").bounding_box()["x"] >= 0  # the page is in sight
        phone.reload(wait_until="domcontentloaded")  # still signed in (the cookie), and the menu stays closed
        phone.get_by_role("heading", name="Coverage").wait_for(timeout=60_000)
        phone.wait_for_timeout(500)
        assert not side_menu_open(phone)
        desktop = browser.new_page(viewport={"width": 1200, "height": 900})
        desktop.goto(officer_app, wait_until="domcontentloaded")
        sign_in(desktop, "walker")
        desktop.get_by_role("heading", name="Coverage").wait_for(timeout=30_000)
        desktop.wait_for_timeout(500)
        assert side_menu_open(desktop)  # beside the page: the filters stay at hand
        browser.close()


def open_side_menu(page) -> None:
    """Open the side menu on a phone, where it starts closed (the » at the top left), unless it is open."""
    page.get_by_test_id("stHeading").first.wait_for(timeout=60_000)  # the app has drawn its page
    page.wait_for_timeout(500)
    side = page.locator('[data-testid="stSidebarUserContent"]')
    if side.is_visible() and side.bounding_box()["x"] >= 0:
        return
    page.get_by_test_id("stExpandSidebarButton").click()
    page.wait_for_timeout(500)


#: The fill colour of the block drawn at a point of the map frame.
FILL_AT = """(p) => { const e = document.elementFromPoint(p[2], p[3]);
    return e && e.tagName === 'path' ? e.getAttribute('fill') : null; }"""
