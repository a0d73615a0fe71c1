"""The dashboard in a real browser (the system's Chromium driven by Playwright), fully offline."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from beatmap import accounts, store
from tests.conftest import ROOT, import_rows, load_two_beats

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: The password of the test accounts the served apps are signed in with (typed into the sign-in form).
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(tmp_path_factory):
    """`streamlit run app.py` on a free local port over a small store."""
    from beatmap.settings import Settings

    tmp = tmp_path_factory.mktemp("browser")
    settings = Settings()
    engine = load_two_beats(store.open_store(tmp / "b.db"), tmp, settings=settings)
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol" for d in range(1, 9)]
    import_rows(engine, tmp, rows, settings=settings)
    accounts.add_user(engine, "admin", role="admin", actor="test")
    accounts.add_user(engine, "sgt", role="supervisor", all_beats=True, password=PASSWORD, actor="test")
    with serve_app(tmp / "b.db") as url:
        yield url


@contextmanager
def serve_app(db: Path) -> Iterator[str]:
    """`streamlit run app.py` over the store ``db`` on a free local port; yields its URL."""
    port = free_port()
    env = {**os.environ, "BEATMAP_DB": str(db)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stderr.read().decode()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def watched_page(viewport: dict) -> Iterator[tuple]:
    """A page in the system's Chromium, and the list of the messages of every dialog a script opened on it
    (each dismissed); yields ``(page, dialogs)``."""
    dialogs: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport=viewport)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        yield page, dialogs
        browser.close()


def sign_in(page, name: str, password: str = PASSWORD) -> None:
    """Sign in with the sidebar form and wait until the app says who is signed in."""
    side = page.locator('[data-testid="stSidebar"]')
    side.get_by_role("textbox", name="Name", exact=True).fill(name)
    side.get_by_role("textbox", name="Password", exact=True).fill(password)
    side.get_by_role("button", name="Sign in").click()
    side.get_by_text(f"Signed in as {name}").wait_for(timeout=30_000)


def settled(page) -> None:
    """Wait until the page's script run has finished (Streamlit's running indicator is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


def open_tab(page, name: str) -> None:
    """Click the tab ``name`` once the page shows one such label (during a run, a view's old tabs can stay
    beside the new ones for a moment)."""
    label = page.get_by_text(name, exact=True)
    deadline = time.time() + 60
    while label.count() != 1 and time.time() < deadline:
        page.wait_for_timeout(200)
    label.click()


def metric_values(page) -> list[str]:
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()


def map_frame(page):
    return page.wait_for_selector(
        "iframe[title='streamlit_folium.st_folium']", state="attached", timeout=60_000
    ).content_frame()


def map_with_shapes(page, count: int, timeout_s: float = 60.0):
    """The map frame once it shows ``count`` clickable shapes (the iframe is replaced when the view changes)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        for element in page.query_selector_all("iframe[title='streamlit_folium.st_folium']"):
            frame = element.content_frame()
            try:
                if frame is not None and frame.locator("path.leaflet-interactive").count() == count:
                    return frame
            except PlaywrightError:
                pass  # a frame detached while we looked: try the next one
        time.sleep(0.2)
    raise AssertionError(f"no map with {count} clickable shapes within {timeout_s} s")


def test_dashboard_in_a_real_browser_offline(served_app):
    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000})
        context.on("request", lambda r: requests.append(r.url))
        page = context.new_page()
        page.goto(served_app, wait_until="domcontentloaded")
        sign_in(page, "sgt")

        # City view: one clickable shape per beat.
        frame = map_frame(page)
        frame.wait_for_selector("path.leaflet-interactive", timeout=30_000)
        assert frame.locator("path.leaflet-interactive").count() == 2

        # Clicking a beat opens its blocks (4 clickable blocks, plus the beat's outline and its neglected area's
        # dashed outline: three adjacent flagged blocks). The click reaches the server at once (not after
        # streamlit-folium's 250 ms pause), and once: the component's own delayed send finds nothing new.
        page.evaluate("""() => { window.__sent = []; const send = WebSocket.prototype.send;
            WebSocket.prototype.send = function (d) {
                window.__sent.push(Date.now()); return send.call(this, d); }; }""")
        frame.evaluate("() => document.addEventListener('click', () => { window.__clickedAt = Date.now(); }, true)")
        frame.evaluate("() => { window.__sameFrame = true; }")  # gone if the frame (and Leaflet) loads again
        span = (
            "() => { const b = Object.values(window).find(v => v instanceof L.Map).getBounds(); "
            "return [b.getEast() - b.getWest(), b.getNorth() - b.getSouth()]; }"
        )
        city_span = frame.evaluate(span)
        frame.locator("path.leaflet-interactive").nth(0).click()
        clicked_at = frame.evaluate("() => window.__clickedAt")
        page.wait_for_timeout(700)
        sent = [t - clicked_at for t in page.evaluate("() => window.__sent") if t >= clicked_at]
        assert len([t for t in sent if t < 700]) == 1 and sent[0] < 200, sent
        page.get_by_text("Colour blocks by").wait_for(timeout=30_000)
        frame = map_with_shapes(page, 4)  # the beat's blocks replace the city's beats
        assert frame.evaluate("() => window.__sameFrame === true")  # in the same map frame: Leaflet not loaded again
        beat_span = frame.evaluate(span)
        assert beat_span[0] < city_span[0] or beat_span[1] < city_span[1]  # and the map moved in to the beat
        assert frame.locator(".leaflet-overlay-pane path").count() == 6
        assert frame.locator(".leaflet-overlay-pane path[stroke-dasharray='8 6']").count() == 1

        # Clicking a block selects it.
        frame.locator("path.leaflet-interactive").nth(3).click()
        page.get_by_text("Selected block").wait_for(timeout=30_000)

        # Only the chosen tab's chart is drawn; another tab's when it is chosen.
        settled(page)
        assert page.locator('[role="tabpanel"] .vega-embed').count() == 1
        page.get_by_role("tab", name="When visits happen").click()
        page.wait_for_function(
            "document.querySelectorAll('[role=\"tabpanel\"] .vega-embed').length == 1 && "
            "[...document.querySelectorAll('[role=\"tabpanel\"]')].some(p => "
            "!p.hidden && p.querySelector('.vega-embed') && /hour/i.test(p.innerText))",
            timeout=30_000,
        )

        # A filter change updates the figures: the end of the hours range down to the start.
        before = metric_values(page)
        slider = page.get_by_role("slider").nth(1)
        slider.focus()
        slider.press("Home")
        page.wait_for_function(
            "before => JSON.stringify([...document.querySelectorAll('[data-testid=\"stMetricValue\"]')]"
            ".map(e => e.innerText)) != before",
            arg=json.dumps(before, separators=(",", ":")),
            timeout=30_000,
        )
        assert metric_values(page) != before
        browser.close()
    outside = {urlparse(u).hostname for u in requests if u.startswith("http")} - {"127.0.0.1", "localhost"}
    assert outside == set(), f"requests left the app: {outside}"


def test_a_reload_keeps_you_signed_in_until_you_sign_out(served_app):
    from beatmap import sessions

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.goto(served_app, wait_until="domcontentloaded")
        sign_in(page, "sgt")
        side = page.locator('[data-testid="stSidebar"]')
        deadline = time.time() + 30
        while not [c for c in context.cookies() if c["name"] == sessions.COOKIE] and time.time() < deadline:
            page.wait_for_timeout(200)
        cookie = next(c for c in context.cookies() if c["name"] == sessions.COOKIE)
        assert cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain http here; Secure over https
        assert PASSWORD not in cookie["value"] and cookie["value"] not in page.url
        page.reload(wait_until="domcontentloaded")  # as a phone reloads a background tab
        side.get_by_text("Signed in as sgt").wait_for(timeout=60_000)
        assert "Sign in" not in side.get_by_role("button").all_inner_texts()
        side.get_by_role("button", name="Sign out").click()
        side.get_by_role("button", name="Sign in").wait_for(timeout=30_000)
        deadline = time.time() + 30
        while [c for c in context.cookies() if c["name"] == sessions.COOKIE] and time.time() < deadline:
            page.wait_for_timeout(200)
        page.reload(wait_until="domcontentloaded")
        side.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
        assert side.get_by_text("Signed in as").count() == 0
        # The old token opens nothing now, even if a copy of the cookie were sent again.
        context.add_cookies([{**cookie}])
        page.reload(wait_until="domcontentloaded")
        side.get_by_role("button", name="Sign in").wait_for(timeout=60_000)
        assert side.get_by_text("Signed in as").count() == 0


def shapes_in_file(browser, path: Path, *, framed: bool = False) -> tuple[int, int]:
    """Open a downloaded page from disk (no server) and count its map's drawn shapes: (clickable, all).

    ``framed``: the map sits in an ``iframe`` of the page (the one-page beat summary).
    """
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    frame = page.wait_for_selector("iframe", state="attached", timeout=30_000).content_frame() if framed else page
    with contextlib.suppress(PlaywrightError):  # no shape drawn: the counts below say so
        frame.wait_for_selector(".leaflet-overlay-pane path", state="attached", timeout=15_000)
    counts = (frame.locator("path.leaflet-interactive").count(), frame.locator(".leaflet-overlay-pane path").count())
    page.close()
    assert errors == [], f"{path.name}: script errors {errors}"
    return counts


def download(page, label: str, folder: Path) -> Path:
    """Click the download button ``label`` and save the file it gives in ``folder``."""
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name=label).click()
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_exported_maps_draw_their_shapes_offline(served_app, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(served_app, wait_until="domcontentloaded")
        sign_in(page, "sgt")

        # City level: the map file draws the two beats.
        map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)
        settled(page)  # a button clicked while the run still goes can be replaced before it answers
        open_tab(page, "Export")
        city = download(page, "Map (HTML, works offline)", tmp_path)
        assert city.name == "map-city.html"

        # One beat: its 4 blocks (clickable) and the outlines over them, in the map file and in the one-page summary.
        # (a new session: a click on the map after a download does not always reach the page)
        context.close()
        context = browser.new_context(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(served_app, wait_until="domcontentloaded")
        sign_in(page, "sgt")
        map_with_shapes(page, 2).locator("path.leaflet-interactive").nth(0).click()
        page.get_by_text("Colour blocks by").wait_for(timeout=30_000)
        frame, drawn = map_with_shapes(page, 4), -1
        while drawn != (drawn := frame.locator(".leaflet-overlay-pane path").count()):  # blocks, then outlines
            page.wait_for_timeout(700)
        assert drawn >= 5
        settled(page)
        open_tab(page, "Export")
        beat_map = download(page, "Map (HTML, works offline)", tmp_path)
        summary = download(page, "One-page beat summary (print-ready HTML)", tmp_path)
        context.close()

        offline = browser.new_context(offline=True)
        assert shapes_in_file(offline, city) == (2, 2)
        assert shapes_in_file(offline, beat_map) == (4, drawn)  # what the dashboard draws for the beat
        assert shapes_in_file(offline, summary, framed=True) == (4, drawn)
        browser.close()


def test_mapping_wizard_imports_a_socrata_export_without_toml(served_app, tmp_path):
    # A crime export the app has never seen: ISO times, latitude/longitude, its own column names; 60 of its
    # rows sit on one point (a geocoder's stand-in).
    export = tmp_path / "incidents.csv"
    export.write_text(
        "incident_id,incident_datetime,incident_category,latitude,longitude\n"
        + "".join(
            f"X{i},2026-03-{1 + i % 9:02d}T{i % 24:02d}:15:00.000,THEFT,41.8759{i % 10},-87.6363{i % 10}\n"
            for i in range(30)
        )
        + "".join(f"Y{i},2026-03-{1 + i % 9:02d}T{i % 24:02d}:45:00.000,THEFT,41.87612,-87.63420\n" for i in range(60))
    )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 2400})
        page.goto(served_app, wait_until="domcontentloaded")
        sign_in(page, "sgt")
        page.get_by_role("link", name="Import").click()
        page.get_by_text("2. Activity").wait_for(timeout=30_000)
        page.locator('[data-testid="stFileUploader"]').nth(2).locator("input[type=file]").set_input_files(str(export))
        page.get_by_text("'incident_datetime' reads as ISO 8601", exact=False).wait_for(timeout=30_000)
        page.get_by_text("The format reads all 90 times of the first rows.").wait_for(timeout=30_000)
        page.get_by_text("of the first 90 rows, 90 give a point and 0 would be rejected", exact=False).wait_for(
            timeout=30_000
        )
        # One feed box: the wizard's.
        assert page.get_by_role("textbox", name="Feed name for the import").count() == 0
        page.get_by_role("button", name="Import activity").click()
        page.get_by_text("Imported 90 records from incidents.csv", exact=False).wait_for(timeout=60_000)
        # The pile-up warning says what to do in the wizard, not in a mapping file.
        pile = page.get_by_text("60 records (66.7%) sit on one point", exact=False)
        pile.wait_for(timeout=30_000)
        assert "add -87.6342,41.87612 to 'Placeholder points to reject'" in pile.inner_text()
        body = page.locator("body").inner_text()
        browser.close()
    assert "/tmp" not in body and "--" not in body.replace("—", "")
    assert "[coordinates]" not in body and "reject_pileups" not in body and "time_format" not in body


def test_a_beat_left_out_is_not_analysed_in_every_exported_file(tmp_path):
    """Beat B left out when the areas were loaded: the block table, the city map, B's map and B's summary."""
    from beatmap.ingest import load_areas
    from beatmap.settings import Settings

    settings = Settings()
    engine = load_two_beats(store.open_store(tmp_path / "x.db"), tmp_path, settings=settings)
    load_areas(engine, tmp_path / "beats.geojson", settings=settings, grid_m=200, exclude_beats=("B",))
    rows = [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol" for d in range(1, 9)]
    rows += [f"2026-03-{d:02d}T22:00,41.87689,-87.63150,enforcement" for d in range(1, 6)]  # in B
    import_rows(engine, tmp_path, rows, settings=settings)
    accounts.add_user(engine, "admin", role="admin", actor="test")
    accounts.add_user(engine, "sgt", role="supervisor", all_beats=True, password=PASSWORD, actor="test")
    with serve_app(tmp_path / "x.db") as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        sign_in(page, "sgt")
        map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)
        settled(page)
        open_tab(page, "Export")
        table = download(page, "Block table (CSV)", tmp_path)
        city = download(page, "Map (HTML, works offline)", tmp_path)
        # B's own view: chosen in the beat list, where it says it is not analysed (a new session: a click after
        # a download does not always reach the page).
        context.close()
        context = browser.new_context(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        sign_in(page, "sgt")
        map_frame(page).wait_for_selector("path.leaflet-interactive", timeout=30_000)
        page.locator('[data-testid="stSelectbox"]').filter(has_text="Beat").first.click()
        page.get_by_role("option", name="B (not analysed)").click()
        page.get_by_text("Not analysed: this beat is left out of the analysis").wait_for(timeout=30_000)
        map_with_shapes(page, 4)
        settled(page)  # the city view's elements are gone once the run has finished
        open_tab(page, "Export")
        beat_table = download(page, "Block table (GeoJSON)", tmp_path)
        beat_map = download(page, "Map (HTML, works offline)", tmp_path)
        summary = download(page, "One-page beat summary (print-ready HTML)", tmp_path)
        context.close()

        offline = browser.new_context(offline=True)
        assert shapes_in_file(offline, city) == (2, 2)  # beat A, and beat B in grey
        assert shapes_in_file(offline, beat_map) == (4, 5)  # B's 4 blocks in grey (with a tooltip), its outline
        assert shapes_in_file(offline, summary, framed=True) == (4, 5)
        browser.close()
    blocks = pd.read_csv(table, keep_default_na=False)
    assert blocks.groupby("beat_id")["status"].agg(set).to_dict() == {"A": {"analysed"}, "B": {"not analysed"}}
    assert set(blocks.loc[blocks["beat_id"] == "B", "enforcement"]) == {""}  # its 5 enforcement events: no figure
    features = json.loads(beat_table.read_text())["features"]
    assert len(features) == 4 and {(f["properties"]["status"], f["properties"]["flag"]) for f in features} == {
        ("not analysed", None)
    }
    text = summary.read_text()
    assert text.count("Not analysed: this beat is left out of the analysis") == 2 and "No block is flagged" not in text
