"""Dashboard benchmark on a city of a real department's size; prints figures.

    python bench/dashboard.py [--beats 300] [--blocks-per-beat 84] [--store DIR]
    python bench/dashboard.py --city chicago [--records 1000000]

Builds a demo city (default 300 beats, 25,200 blocks, a year of activity), or
with ``--city chicago`` Chicago's real beats cut into 150 m blocks (29,720) with
``--records`` generated records (``bench/pipeline.py``'s generator), into a
SQLite store (kept in --store DIR, default bench/out/, and reused when it is
already there), then prints:

1. map payload bytes of the city view (beats only) and of the largest beat
   view, against the naive city view that sends every block;
2. time to first render of the dashboard in a real browser (the system's
   Chromium): from pressing "Sign in" to the city map's shapes drawn;
3. time to rerun after a filter change: from the key press on the hours
   filter to the new figures on screen;
4. time to a beat view: from a click on the first beat of the city map to its
   blocks drawn.

Targets (issues 3 and 16): payload under 2 MB for any view, first render under
3 s, rerun after a filter change under 1 s, a beat view under 1.5 s (medians).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.pipeline's record generator

from beatmap import schema as S
from beatmap import store
from beatmap.accounts import add_user, set_password
from beatmap.demo import make_demo_city, write_demo_city
from beatmap.errors import BeatmapError
from beatmap.ingest import import_activity, load_areas
from beatmap.metrics import coverage_by_beat, coverage_by_block
from beatmap.render import base_map, choropleth, display_frame, measure_colours, outlines
from beatmap.report import read_activity, window_from_store
from beatmap.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
BENCH_USER, BENCH_PASSWORD = "bench-supervisor", "bench-only-password-2f9c"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def upgrade(db: Path) -> None:
    """Bring a kept store to this beatmap's schema (`beatmap db upgrade`; nothing to do when it is current)."""
    done = subprocess.run(
        [sys.executable, "-m", "beatmap", "--db", str(db), "db", "upgrade"], capture_output=True, text=True, check=False
    )
    print((done.stdout or done.stderr).strip().splitlines()[-1] if (done.stdout or done.stderr).strip() else "")
    if done.returncode:
        raise SystemExit(f"`beatmap --db {db} db upgrade` failed: {done.stderr.strip()}")


def build_store(folder: Path, *, beats: int, blocks_per_beat: int) -> Path:
    """The big city's store, built once and reused (upgraded to this beatmap's schema first)."""
    db = folder / f"city-{beats}x{blocks_per_beat}.db"
    if db.exists():
        print(f"reusing {db}")
        upgrade(db)
        return db
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    city = make_demo_city(7, n_beats=beats, blocks_per_beat=blocks_per_beat)
    paths = write_demo_city(city, folder / "files")
    settings = Settings(timezone=city.timezone)
    engine = store.open_store(folder / "building.db")
    load_areas(engine, paths["beats"], blocks_path=paths["blocks"], settings=settings)
    summary = import_activity(engine, paths["activity"], settings=settings, source="bench")
    engine.dispose()
    (folder / "building.db").rename(db)
    print(
        f"built {db}: {beats} beats, {len(city.blocks):,} blocks, {summary.imported:,} events "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return db


def build_chicago_store(folder: Path, *, records: int) -> Path:
    """Chicago's real beats cut into 150 m blocks (29,720) and ``records`` generated records, built once (a kept
    store is upgraded to this beatmap's schema first)."""
    db = folder / f"chicago-{records}.db"
    if db.exists():
        print(f"reusing {db}")
        upgrade(db)
        return db
    from bench.pipeline import BEATS, GRID_M, make_records  # the pipeline benchmark's generator

    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    csv = folder / f"chicago_{records}.csv"
    if not csv.exists():
        make_records(records, csv)
    settings = Settings(timezone="America/Chicago")
    (folder / "building.db").unlink(missing_ok=True)
    engine = store.open_store(folder / "building.db")
    areas = load_areas(engine, BEATS, beat_id_field="BEAT_NUM", grid_m=GRID_M, settings=settings)
    summary = import_activity(engine, csv, settings=settings, source="bench")
    engine.dispose()
    (folder / "building.db").rename(db)
    print(
        f"built {db}: Chicago's beats, {areas.blocks:,} blocks of {GRID_M} m, {summary.imported:,} events "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return db


def bench_account(engine) -> None:
    """A supervisor account for the browser runs (the dashboard needs a sign-in)."""
    for name, role in (("bench-admin", "admin"), (BENCH_USER, "supervisor")):  # no admin: the app asks for one
        try:
            add_user(engine, name, role=role, all_beats=True, password=BENCH_PASSWORD, actor="bench")
        except BeatmapError:
            set_password(engine, name, BENCH_PASSWORD, actor="bench")


def payloads(engine, settings: Settings) -> dict[str, int]:
    """Bytes of the page the map component receives, per view (map + layers, as the page builds them)."""
    window = window_from_store(engine, settings=settings)
    blocks = store.read_blocks(engine)
    cov = coverage_by_block(blocks, read_activity(engine, timezone=settings.timezone), window=window, settings=settings)
    beats = coverage_by_beat(cov)

    def size(light, values, measure, id_field, fields, extra=()) -> int:
        colours, _ = measure_colours(light[measure], measure)
        m = base_map(light.total_bounds)
        choropleth(light, colours, name="x", id_field=id_field, tooltip_fields=fields, aliases=fields).add_to(m)
        for layer in extra:
            layer.add_to(m)
        return len(m.get_root().render().encode())

    beat_light = display_frame(store.read_beats(engine), [S.BEAT_ID], tolerance_m=10.0).merge(
        beats[[S.BEAT_ID, "coverage_pct", "flagged", "visits"]], on=S.BEAT_ID
    )
    out = {
        "city view (beats)": size(
            beat_light, beats, "coverage_pct", S.BEAT_ID, [S.BEAT_ID, "coverage_pct", "flagged", "visits"]
        )
    }
    largest = blocks.groupby(S.BEAT_ID).size().idxmax()
    mine = blocks[blocks[S.BEAT_ID] == largest]
    light = display_frame(mine, [S.BLOCK_ID], tolerance_m=2.0).merge(
        cov[[S.BLOCK_ID, "flag", "visits", "enforcement", "flag_reason"]], on=S.BLOCK_ID
    )
    light["flag_reason"] = light["flag_reason"].fillna("")
    out[f"beat view (largest, {len(mine)} blocks)"] = size(
        light,
        None,
        "flag",
        S.BLOCK_ID,
        [S.BLOCK_ID, "visits", "enforcement", "flag_reason"],
        extra=[outlines(beat_light[beat_light[S.BEAT_ID] == largest][[S.BEAT_ID, "geometry"]])],
    )
    every = display_frame(blocks, [S.BLOCK_ID], tolerance_m=2.0).merge(
        cov[[S.BLOCK_ID, "flag", "visits", "enforcement", "flag_reason"]], on=S.BLOCK_ID
    )
    every["flag_reason"] = every["flag_reason"].fillna("")
    out[f"naive city view (all {len(blocks):,} blocks)"] = size(
        every, None, "flag", S.BLOCK_ID, [S.BLOCK_ID, "visits", "enforcement", "flag_reason"]
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CpuClock:
    """CPU seconds (user + system) used by the dashboard's server process and by the browser (every other process
    this benchmark started: Playwright's driver and Chromium's processes), since the last reading."""

    def __init__(self, server_pid: int) -> None:
        self.server = psutil.Process(server_pid)
        self.seen: dict[int, float] = {}
        self.read()

    def _used(self) -> dict[int, float]:
        used = {}
        for proc in psutil.Process(os.getpid()).children(recursive=True):
            try:
                times = proc.cpu_times()
                used[proc.pid] = times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue  # ended while we looked
        return used

    def read(self) -> tuple[float, float]:
        """(server, browser) CPU seconds since the previous reading."""
        used = self._used()
        delta = {pid: value - self.seen.get(pid, 0.0) for pid, value in used.items()}
        self.seen = used
        server = delta.pop(self.server.pid, 0.0)
        return server, sum(delta.values())


def metric_values(page) -> list[str]:
    return page.locator('[data-testid="stMetricValue"]').all_inner_texts()


def idle(page) -> None:
    """Wait until the script run that drew the page has finished (no 'Running' indicator)."""
    page.wait_for_timeout(300)
    page.wait_for_function("!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)


def beat_view_frame(page, city_shapes: int, timeout_s: float = 120.0):
    """The map frame once it shows a beat's blocks (a map whose clickable shapes are not the city's beats)."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        for element in page.query_selector_all("iframe[title='streamlit_folium.st_folium']"):
            try:
                frame = element.content_frame()
                count = frame.locator("path.leaflet-interactive").count() if frame else 0
            except PlaywrightError:
                continue  # replaced while we looked
            if count and count != city_shapes:
                return frame
        time.sleep(0.02)
    raise TimeoutError(f"no beat view within {timeout_s} s")


def browser_times(
    db: Path, *, runs: int = 3, settings_path: Path | None = None
) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, float]]]]:
    """Sign-in to the city map, a filter change and a beat view, measured in Chromium against `streamlit run
    app.py`: wall seconds per step, and (server, browser) CPU seconds per step (:class:`CpuClock`)."""
    port = free_port()
    env = {**os.environ, "BEATMAP_DB": str(db)}
    if settings_path is not None:
        env["BEATMAP_SETTINGS"] = str(settings_path)
    server = subprocess.Popen(
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
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    times: dict[str, list[float]] = {"first": [], "rerun": [], "beat": []}
    cpu: dict[str, list[tuple[float, float]]] = {"first": [], "rerun": [], "beat": []}
    clock = CpuClock(server.pid)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            for i in range(runs + 1):  # the first visit warms the server's caches and is not counted
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.goto(url, wait_until="domcontentloaded")
                side = page.locator('[data-testid="stSidebar"]')
                side.get_by_role("textbox", name="Name", exact=True).fill(BENCH_USER)
                side.get_by_role("textbox", name="Password", exact=True).fill(BENCH_PASSWORD)
                clock.read()
                t0 = time.perf_counter()
                side.get_by_role("button", name="Sign in").click()
                frame = page.wait_for_selector(
                    "iframe[title='streamlit_folium.st_folium']", state="attached", timeout=300_000
                ).content_frame()
                frame.wait_for_selector("path.leaflet-interactive", timeout=300_000)
                t_first = time.perf_counter() - t0
                c_first = clock.read()
                idle(page)
                city_shapes = frame.locator("path.leaflet-interactive").count()
                values = metric_values(page)
                slider = page.get_by_role("slider").nth(1)  # the end of the hours range: 24 -> 23
                slider.focus()
                clock.read()
                t0 = time.perf_counter()
                slider.press("ArrowLeft")
                while metric_values(page) == values:
                    if time.perf_counter() - t0 > 120:
                        raise TimeoutError("the figures did not change within 120 s of the filter change")
                    time.sleep(0.02)
                t_rerun = time.perf_counter() - t0
                c_rerun = clock.read()
                idle(page)
                clock.read()
                t0 = time.perf_counter()
                frame.locator("path.leaflet-interactive").nth(0).click(force=True)  # the first beat on the map
                beat_view_frame(page, city_shapes)
                t_beat = time.perf_counter() - t0
                c_beat = clock.read()
                if i:
                    for key, value, used in (
                        ("first", t_first, c_first),
                        ("rerun", t_rerun, c_rerun),
                        ("beat", t_beat, c_beat),
                    ):
                        times[key].append(value)
                        cpu[key].append(used)
                print(
                    f"  visit {i}{' (warm-up)' if not i else ''}: sign-in {t_first:.2f} s "
                    f"(CPU server {c_first[0]:.2f} s, browser {c_first[1]:.2f} s), filter {t_rerun:.2f} s "
                    f"({c_rerun[0]:.2f}, {c_rerun[1]:.2f}), beat view {t_beat:.2f} s "
                    f"({c_beat[0]:.2f}, {c_beat[1]:.2f}); "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                page.close()
            browser.close()
        return times, cpu
    finally:
        server.terminate()
        server.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--city",
        choices=["demo", "chicago"],
        default="demo",
        help="demo: the generated large city; chicago: Chicago's real beats at 150 m",
    )
    parser.add_argument("--beats", type=int, default=300)
    parser.add_argument("--blocks-per-beat", type=int, default=84)
    parser.add_argument("--records", type=int, default=1_000_000, help="generated records (--city chicago)")
    parser.add_argument("--store", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--build-only", action="store_true", help="build the store and stop")
    args = parser.parse_args()
    if args.city == "chicago":
        db = build_chicago_store(args.store, records=args.records)
    else:
        db = build_store(args.store, beats=args.beats, blocks_per_beat=args.blocks_per_beat)
    if args.build_only:
        return
    engine = store.open_store(db)
    settings = Settings(timezone="America/Chicago")  # both cities are on Chicago time
    settings_path = None
    t0 = time.perf_counter()
    read_activity(engine, timezone=settings.timezone)  # what `beatmap import` does after an import
    print(f"activity cache ready in {time.perf_counter() - t0:.1f} s")
    bench_account(engine)
    print("\nmap payload (bytes the map component receives); target < 2,000,000")
    for view, size in payloads(engine, settings).items():
        print(f"  {view:<40} {size:>12,}")
    print(
        f"\nin Chromium, {args.runs} runs after one warm-up visit (median, min-max); load before: "
        f"{os.getloadavg()[0]:.1f}"
    )
    times, cpu = browser_times(db, runs=args.runs, settings_path=settings_path)
    for key, label, target in (
        ("first", "sign-in -> city map drawn", 3.0),
        ("rerun", "a filter change", 1.0),
        ("beat", "a beat view (click -> blocks drawn)", 1.5),
    ):
        values = times[key]
        server = statistics.median(c[0] for c in cpu[key])
        browser = statistics.median(c[1] for c in cpu[key])
        print(
            f"  {label:<40} {statistics.median(values):5.2f} s  ({min(values):.2f}-{max(values):.2f}); "
            f"target < {target:g} s; CPU (median) server {server:.2f} s, browser {browser:.2f} s"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
