"""Walk through the Import page's mapping wizard in Chromium, as an analyst would, and time each step.

    python bench/wizard_walkthrough.py [--realdata ../shared/realdata] [--out walkthrough/] [--grid-m 400]

The file is a Socrata-style export made from New Orleans' real calls for service (the subset in
``realdata/new_orleans``): ISO 8601 times (``2022-01-01T01:07:00.000``) and WGS84 ``latitude``/``longitude``
columns split from the ``Location`` point, under the dataset's API column names; its 200-odd unlocated
calls keep their ``0, 0`` stand-in.  The beats are the eight NOPD districts (a lone ``.shp``, read here
with the CRS its README gives, written as GeoJSON as a GIS colleague would hand them over).

A fresh store with one supervisor; ``streamlit run app.py`` on a free port; then, in the browser: sign in,
load the districts on the Import page (step 1, a square grid), upload the export (step 2), read the
wizard's guesses and preview (the ``0,0`` stand-in is recognised unasked), import, and open the Coverage
page.  No TOML file is written by hand, and no field of the wizard is typed in.  Prints the time of each
step and the total; saves a screenshot after each step in ``--out``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from beatmap import accounts, store  # noqa: E402
from beatmap.areas import read_layer  # noqa: E402

PASSWORD = "walkthrough password 1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def socrata_export(realdata: Path, out: Path) -> int:
    """Write New Orleans' calls as a Socrata API export (ISO times, lat/lon columns) to ``out``; return the rows."""
    raw = pd.read_csv(
        realdata / "new_orleans" / "nopd_calls_for_service_2022_subset.csv", dtype=str, keep_default_na=False
    )
    when = pd.to_datetime(raw["TimeCreate"], format="%m/%d/%Y %H:%M")
    point = raw["Location"].str.extract(r"POINT \((?P<lon>[-\d.]+) (?P<lat>[-\d.]+)\)")
    export = pd.DataFrame(
        {
            "type_": raw["Type"],
            "typetext": raw["TypeText"],
            "priority": raw["Priority"],
            "timecreate": when.dt.strftime("%Y-%m-%dT%H:%M:%S.000"),
            "selfinitiated": raw["SelfInitiated"],
            "beat": raw["Beat"],
            "block_address": raw["BLOCK_ADDRESS"],
            "zip": raw["Zip"],
            "policedistrict": raw["PoliceDistrict"],
            "latitude": point["lat"],
            "longitude": point["lon"],
        }
    )
    export.to_csv(out, index=False)
    return len(export)


def districts(realdata: Path, out: Path) -> None:
    """The eight NOPD districts (a lone .shp in Louisiana South feet) as GeoJSON."""
    read_layer(realdata / "new_orleans" / "NOPD_Police_Districts.shp", crs="EPSG:3452").to_file(out)


@contextmanager
def served(db: Path) -> Iterator[str]:
    """`streamlit run app.py` over the store ``db`` on a free local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
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
        env={**os.environ, "BEATMAP_DB": str(db), "BEATMAP_CACHE": str(db.parent / "cache")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1):
                break
        except OSError:
            time.sleep(0.3)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=ROOT.parent / "shared" / "realdata")
    parser.add_argument("--out", type=Path, default=Path("walkthrough"))
    parser.add_argument("--grid-m", type=int, default=400)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, float]] = []

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        export, beats = folder / "nola_calls_2022.csv", folder / "nopd_districts.geojson"
        rows = socrata_export(args.realdata, export)
        districts(args.realdata, beats)
        engine = store.open_store(folder / "walk.db")
        accounts.add_user(engine, "chief", role="admin", actor="walkthrough")
        accounts.add_user(engine, "analyst", role="supervisor", all_beats=True, password=PASSWORD, actor="walkthrough")
        engine.dispose()
        with served(folder / "walk.db") as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 4200})
            clock = time.perf_counter()
            last = clock

            def step(name: str) -> None:
                nonlocal last
                now = time.perf_counter()
                steps.append((name, now - last))
                page.screenshot(path=str(args.out / f"{len(steps):02d}.png"), full_page=True)
                print(f"{len(steps):2d}. {name}: {now - last:.1f} s", flush=True)
                last = now

            page.goto(url, wait_until="domcontentloaded")
            side = page.locator('[data-testid="stSidebar"]')
            side.get_by_role("textbox", name="Name", exact=True).fill("analyst")
            side.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
            side.get_by_role("button", name="Sign in").click()
            side.get_by_text("Signed in as analyst").wait_for(timeout=60_000)
            step("sign in")

            page.get_by_role("link", name="Import").click()
            page.get_by_text("1. Beats and blocks").wait_for(timeout=60_000)
            uploads = page.locator('[data-testid="stFileUploader"]')
            uploads.nth(0).locator("input[type=file]").set_input_files(str(beats))
            page.get_by_role("spinbutton", name="Grid cell size (m)").fill(str(args.grid_m))
            page.get_by_role("button", name="Load beats and blocks").click()
            page.get_by_text("Loaded 8 beats", exact=False).wait_for(timeout=300_000)
            step("load the districts (step 1)")

            uploads.nth(2).locator("input[type=file]").set_input_files(str(export))
            page.get_by_text("'timecreate' reads as ISO 8601", exact=False).wait_for(timeout=60_000)
            page.get_by_text("The format reads all", exact=False).wait_for(timeout=60_000)

            # The 0,0 stand-in of the unlocated calls is recognised without being told: the preview says so.
            page.get_by_text("placeholder coordinates", exact=False).first.wait_for(timeout=60_000)
            page.get_by_role("button", name="Save this mapping (TOML) for the next import").wait_for(timeout=60_000)
            step("upload the export; read the wizard's guesses and preview")
            page.get_by_role("button", name="Import activity").click()
            done = page.get_by_text(re.compile(r"^(Imported [\d,]+ records|Nothing was imported)"))
            done.first.wait_for(timeout=300_000)
            summary = done.first.inner_text()
            step("import")

            page.get_by_role("link", name="Coverage").click()
            page.wait_for_selector("iframe[title='streamlit_folium.st_folium']", state="attached", timeout=120_000)
            page.wait_for_timeout(3000)
            step("open the Coverage page")
            body = page.locator("body").inner_text()
            browser.close()

    total = sum(seconds for _, seconds in steps)
    print(f"\n{rows:,} rows; {summary}")
    print(f"total {total:.1f} s in {len(steps)} steps; screenshots in {args.out}")
    print("temporary path on a page" if "/tmp" in body else "no temporary path on the last page")


if __name__ == "__main__":
    main()
