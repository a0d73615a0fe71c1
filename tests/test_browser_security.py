"""Hostile text in a real browser: a beat named like an HTML image with an onerror handler, and script tags in a
file's columns, feed name and notes, all show as plain text and run nothing (Playwright, the system's Chromium)."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from beatmap import accounts, store
from beatmap.ingest import import_activity
from beatmap.settings import Settings
from tests.conftest import IMPORT_NOW, load_two_beats
from tests.test_browser import CHROMIUM, PASSWORD, serve_app, sign_in, watched_page

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

BEAT = "<img src=x onerror=alert(1)> &amp;"  # the entity must show as typed, not as "&"
NOTE = "<script>alert(2)</script>"
COLUMN = "<script>alert(3)</script>"
FEED = "<img src=y onerror=alert(4)>"


def map_with(page, shapes: int, *, timeout_s: float = 30.0):
    """The map frame showing ``shapes`` clickable shapes (a new map replaces the old frame: wait for it)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for frame in page.frames:
            if frame != page.main_frame and frame.locator("path.leaflet-interactive").count() == shapes:
                return frame
        page.wait_for_timeout(300)  # lets Playwright take in new frames (time.sleep would not)
    raise AssertionError(f"no map with {shapes} shapes appeared within {timeout_s} s")


@pytest.fixture(scope="module")
def hostile_app(tmp_path_factory):
    """A store whose beat (and so its grid blocks) is named like an HTML image with a script handler."""
    tmp = tmp_path_factory.mktemp("hostile")
    settings = Settings()
    engine = load_two_beats(store.open_store(tmp / "h.db"), tmp, settings=settings, ids=(BEAT, "B"))
    rows = pd.DataFrame(
        {
            "occurred_at": [f"2026-03-{d:02d}T10:00" for d in range(1, 9)],
            "lat": 41.87596,
            "lon": -87.63631,
            "kind": "foot_patrol",
            "notes": NOTE,
        }
    )
    rows.to_csv(tmp / "a.csv", index=False)
    import_activity(engine, tmp / "a.csv", settings=settings, now=IMPORT_NOW)
    upload = pd.DataFrame(
        {
            "occurred_at": ["2026-03-10T10:00", "not a time"],
            "lat": 41.87596,
            "lon": -87.63631,
            "kind": "community_visit",
            "notes": NOTE,
            COLUMN: "x",
        }
    )
    upload.to_csv(tmp / "upload.csv", index=False)
    accounts.add_user(engine, "admin", role="admin", actor="test")
    accounts.add_user(engine, "sgt", role="supervisor", all_beats=True, password=PASSWORD, actor="test")
    with serve_app(tmp / "h.db") as url:
        yield url, tmp / "upload.csv"


def test_hostile_names_render_as_text_and_run_nothing(hostile_app):
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    url, upload = hostile_app
    with watched_page({"width": 1300, "height": 1000}) as (page, dialogs):
        page.goto(url, wait_until="domcontentloaded")
        sign_in(page, "sgt")

        # The city map's tooltip shows the beat's name as text (no <img> element is made).
        frame = map_with(page, 2)
        beat_shape = frame.locator("path.leaflet-interactive").nth(0)
        beat_shape.hover()
        tooltip = frame.locator(".leaflet-tooltip")
        tooltip.wait_for(timeout=30_000)
        assert BEAT in tooltip.inner_text()
        assert frame.locator("img[src='x']").count() == 0

        # The beats table has it as text; clicking the beat opens its blocks (the picker shows its name), and a
        # block's id shows literally in the selection note.
        page.get_by_text(BEAT, exact=True).first.wait_for(state="attached", timeout=30_000)
        beat_shape.click()
        page.get_by_text("Colour blocks by").wait_for(timeout=30_000)
        assert page.locator('[data-testid="stSelectbox"] input').first.input_value() == BEAT
        frame = map_with(page, 4)
        frame.locator("path.leaflet-interactive").nth(0).click()
        selected = page.get_by_text("Selected block")
        selected.wait_for(timeout=30_000)
        assert f"Selected block {BEAT}_r" in selected.inner_text()
        assert page.locator("img[src='x']").count() == 0 and frame.locator("img[src='x']").count() == 0

        # An upload whose column name, feed name and notes carry script tags: the summary shows them as text.
        page.locator('[data-testid="stSidebarNav"]').get_by_text("Import").click()
        page.get_by_text("2. Activity").wait_for(timeout=30_000)
        page.locator('input[type="file"]').nth(2).set_input_files(str(upload))
        page.get_by_text("The first rows of upload.csv").wait_for(timeout=30_000)  # the mapping step is shown
        feed = page.get_by_role("textbox", name="Feed name", exact=True)  # the mapping built on the page names it
        feed.fill(FEED)
        feed.press("Enter")
        page.get_by_text("Preview", exact=False).first.wait_for(timeout=30_000)
        page.get_by_role("button", name="Import activity").click()
        ignored = page.get_by_text("ignored columns:")
        ignored.wait_for(timeout=60_000)
        assert COLUMN in ignored.inner_text()
        download = page.get_by_text("Download the rejected rows of feed")
        download.wait_for(timeout=30_000)
        assert download.inner_text() == f"Download the rejected rows of feed {FEED} kept for this import (CSV)"
        assert page.locator("img[src='y']").count() == 0
    assert dialogs == [], f"a script ran: {dialogs}"
