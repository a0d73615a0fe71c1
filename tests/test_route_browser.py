"""An officer plans a walking route in a real browser (the system's Chromium) and downloads the GPX, offline."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

import pytest
from playwright.sync_api import sync_playwright

from beatmap import accounts, store
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
    assert names[0] == "Start" and names[1].startswith("1. A_") and len(names) == stops + 1
    assert len(root.find(f"{GPX}rte").findall(f"{GPX}rtept")) >= 2
    outside = {urlparse(u).hostname for u in requests if u.startswith("http")} - {"127.0.0.1", "localhost"}
    assert outside == set(), f"requests left the app: {outside}"
