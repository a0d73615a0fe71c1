"""The public-only deployment: it shows the published snapshot and has no path to the store."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy
from streamlit.testing.v1 import AppTest

import beatmap.store
import beatmap.ui.mapview
from beatmap import snapshot as snap
from beatmap.publish import publish_snapshot
from beatmap.settings import Settings
from tests.conftest import ROOT
from tests.public_helpers import AS_OF, DATA_END, PRESENCE_STAYS, A, B, city_with_stays, publish_tiny_city

#: Dashboard tests run once, on SQLite (the library and store tests run on both databases).
pytestmark = pytest.mark.ui

APP = str(ROOT / "app.py")
PAGE = ROOT / "beatmap" / "ui" / "pages" / "public.py"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A snapshot of the tiny city, published as of AS_OF."""
    counts = {(A, 0, "foot_patrol"): 8, (A, 1, "community_visit"): 1, (B, 0, "enforcement"): 5}
    return publish_tiny_city(tmp_path_factory.mktemp("public_app"), counts, settings=Settings())


@pytest.fixture
def public_only(monkeypatch, tmp_path):
    """BEATMAP_PUBLIC_ONLY=1, every way to the store made to fail, and the map seam recorded."""
    opened: list[str] = []
    drawn: list = []

    def no_store(*args, **kwargs):
        opened.append("open_store")
        raise RuntimeError("the public page must never open the store")

    def no_engine(*args, **kwargs):
        opened.append("create_engine")
        raise RuntimeError("the public page must never create a database engine")

    def fake_show_map(m, *, key, height=560, layers=None, on_click=None):
        drawn.append(m)
        return {}

    monkeypatch.setenv("BEATMAP_PUBLIC_ONLY", "1")
    monkeypatch.setenv("BEATMAP_DB", str(tmp_path / "must-not-exist.db"))
    monkeypatch.setattr(beatmap.store, "open_store", no_store)
    monkeypatch.setattr(sqlalchemy, "create_engine", no_engine)
    monkeypatch.setattr(beatmap.ui.mapview, "show_map", fake_show_map)
    return {"opened": opened, "drawn": drawn, "db": tmp_path / "must-not-exist.db"}


def run_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def test_public_only_app_shows_the_snapshot_without_the_store(published, public_only, monkeypatch):
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(published))
    at = run_app()
    assert at.title[0].value == "Police presence outside enforcement"
    assert any(DATA_END.isoformat() in m.value and "last 7 days" in m.value for m in at.markdown)
    # The first view is the city: the beats' outlines shaded by coverage, with no block in it.
    assert len(public_only["drawn"]) == 1
    city = public_only["drawn"][0].get_root().render()
    assert "/app/static/vendor/leaflet/leaflet.js" in city and '"beat_id": "A"' in city
    assert "fewer than 3" not in city and "block_id" not in city
    beats = at.dataframe[0].value
    assert list(beats["Beat"]) == [A, B] and "Visits on shown blocks" in beats.columns
    assert any("What the map does not show" in m.value for m in at.markdown)
    assert public_only["opened"] == [] and not public_only["db"].exists()
    assert at.error == [] and at.info == []
    # Words and percent signs, not column names; the skip link goes past the map to the tables.
    assert all(str(v).endswith("%") for v in beats["Coverage"]) and "beat_id" not in beats.columns
    # The tiny city's beats have 4 blocks, under public_trend_min_blocks: no weekly rows, so no weekly table.
    assert snap.read_rows(published, snap.TREND_CSV) == []
    assert len(at.dataframe) == 1 and any("Choose a beat to list its blocks" in m.value for m in at.markdown)
    assert any("(#beats)" in m.value and "Skip the map" in m.value for m in at.markdown)
    # Choosing a beat draws its blocks (and only its blocks) and lists them.
    at.selectbox(key="public-beat").select(A).run()
    assert not at.exception and len(public_only["drawn"]) == 2
    beat_map = public_only["drawn"][1].get_root().render()
    assert "fewer than 3" in beat_map and "A_r1" in beat_map and '"beat_id": "B"' not in beat_map
    listed = at.dataframe[-1].value
    assert sorted(listed["Block"]) == sorted(
        f["properties"]["block_id"]
        for f in snap.read_features(published)["features"]
        if f["properties"]["beat_id"] == A
    )
    assert {"Where", "Visit level", "Police presence"} <= set(listed.columns)


def test_a_click_on_a_beat_of_the_city_map_opens_it(published, public_only, monkeypatch):
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(published))
    clicks = {"public-city": {"beat_id": B}}

    def clicked_once(m, *, key, height=560, layers=None, on_click=None):
        """The browser's click: the callback once, then a new run (see tests.conftest.maps)."""
        import streamlit as st

        public_only["drawn"].append(m)
        if on_click is not None and key in clicks:
            on_click(clicks.pop(key))
            st.rerun()
        return {}

    monkeypatch.setattr(beatmap.ui.mapview, "show_map", clicked_once)
    at = run_app()
    assert at.selectbox(key="public-beat").value == B
    assert "B_r1c3" in public_only["drawn"][-1].get_root().render()


def test_the_search_finds_blocks_anywhere_in_the_city(published, public_only, monkeypatch):
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(published))
    at = run_app()
    published_ids = [f["properties"]["block_id"] for f in snap.read_features(published)["features"]]
    wanted = published_ids[-1]
    at.text_input[0].input(wanted).run()
    found = at.dataframe[-1].value
    assert list(found["Block"]) == [wanted]
    assert any(m.value == "1 block found." for m in at.markdown)
    at.text_input[0].input("_r1").run()
    assert len(at.dataframe[-1].value) == 4  # two blocks of each beat, whichever beat is chosen
    at.text_input[0].input("no such street anywhere").run()
    assert at.dataframe[-1].value.empty


def test_nothing_published_yet_tells_residents_no_command(public_only, monkeypatch, tmp_path):
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(tmp_path / "public"))
    at = run_app()
    assert "nothing has been published yet" in at.info[0].value.lower()
    assert "beatmap" not in at.info[0].value and "`" not in at.info[0].value
    assert public_only["drawn"] == [] and public_only["opened"] == []


def test_a_tampered_snapshot_is_not_shown(published, public_only, monkeypatch, tmp_path):
    folder = tmp_path / "public"
    shutil.copytree(published, folder)
    data = json.loads((folder / snap.GEOJSON).read_text())
    data["features"][0]["properties"]["officer_id"] = "O101"
    (folder / snap.GEOJSON).write_text(json.dumps(data))
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(folder))
    at = run_app()
    assert "does not pass the public map checks" in at.error[0].value
    assert public_only["drawn"] == [] and at.dataframe == []


def test_the_latest_of_several_snapshots_is_found(published, tmp_path):
    for name, as_of in (("2026-03", "2026-03-18"), ("2026-04", "2026-04-15")):
        shutil.copytree(published, tmp_path / name)
        manifest = json.loads((tmp_path / name / snap.MANIFEST).read_text())
        manifest["as_of"] = as_of
        (tmp_path / name / snap.MANIFEST).write_text(json.dumps(manifest))
    assert snap.find_snapshot(tmp_path) == tmp_path / "2026-04"
    assert snap.find_snapshot(published) == published
    assert snap.find_snapshot(tmp_path / "absent") is None


def test_public_page_imports_nothing_that_reaches_the_store():
    imported = []
    for node in ast.walk(ast.parse(PAGE.read_text())):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported += [f"{node.module}.{a.name}" for a in node.names]
    forbidden = (
        "beatmap.store",
        "beatmap.ui.data",
        "beatmap.report",
        "beatmap.privacy",
        "beatmap.publish.",
        "sqlalchemy",
    )
    assert [m for m in imported if m.startswith(forbidden) or m == "beatmap.publish"] == []
    modules = sorted(
        {
            m.rsplit(".", 1)[0] if m.startswith("beatmap.") and m.count(".") > 1 else m
            for m in imported
            if m.startswith("beatmap")
        }
    )
    code = (
        f"import sys, {', '.join(modules)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy' "
        "or m in ('beatmap.store', 'beatmap.ui.data', 'beatmap.report', 'beatmap.privacy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_snapshot_published_with_an_override_is_shown_with_its_notice(request, monkeypatch, tmp_path):
    """A shorter delay is a recorded decision (publish --override-delay-days): shown, and said."""
    from beatmap.publish import publish_snapshot
    from tests.public_helpers import AS_OF, tiny_city

    engine = tiny_city(tmp_path, settings=Settings())
    publish_snapshot(
        engine,
        tmp_path / "public",
        settings=Settings(),
        as_of=AS_OF + timedelta(days=91 - 7),
        override_delay_days=2,
        override_reason="council meeting tonight",
    )
    engine.dispose()
    public_only = request.getfixturevalue("public_only")  # from here on, nothing may reach the store
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(tmp_path / "public"))
    at = run_app()
    assert at.error == [] and len(public_only["drawn"]) == 1
    assert any("shorter delay (2 days)" in w.value for w in at.warning)
    assert "shorter delay (2 days)" in (tmp_path / "public" / snap.INDEX).read_text()  # the static page says it too


def test_the_notes_shown_are_made_from_the_manifest_not_read_from_readme(published, public_only, monkeypatch, tmp_path):
    folder = tmp_path / "public"
    shutil.copytree(published, folder)
    readme = folder / snap.ABOUT
    readme.write_text(readme.read_text() + "\n![x](http://evil.example/p.png)\n", encoding="utf-8")
    manifest = json.loads((folder / snap.MANIFEST).read_text())
    manifest["files"][snap.ABOUT]["sha256"] = snap.sha256_of(readme)
    (folder / snap.MANIFEST).write_text(json.dumps(manifest))
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(folder))
    at = run_app()
    assert any("What the map does not show" in m.value for m in at.markdown)
    assert not any("evil" in m.value for m in at.markdown)


def test_the_city_view_draws_the_published_pages_outlines_and_refuses_outlines_that_do_not_fit(
    published, public_only, monkeypatch, tmp_path
):
    """The first visit reads the beats' outlines from the published page instead of making them again; an
    outline edited there (its checksum recomputed) that no longer holds its beat's blocks is not shown."""
    from beatmap.publicmap import OUTLINE_TOLERANCE_DEG, beat_outlines
    from beatmap.publicsite import page_data

    page = (published / snap.INDEX).read_text(encoding="utf-8")
    outlines = page_data(page)["outlines"]
    assert outlines == beat_outlines(snap.read_features(published)["features"], tolerance_deg=OUTLINE_TOLERANCE_DEG)
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(published))
    run_app()
    city = public_only["drawn"][-1].get_root().render()
    first = json.dumps(outlines["features"][0]["geometry"]["coordinates"][0][0])
    assert first in city  # the page's own outline, drawn as published

    moved = tmp_path / "moved"
    shutil.copytree(published, moved)
    data = page_data(page)
    for ring in data["outlines"]["features"][0]["geometry"]["coordinates"]:
        for point in ring:
            point[1] = round(point[1] + 0.01, 5)  # beat A drawn about 1 km north of its blocks
    start = page.index('id="beatmap-data">') + len('id="beatmap-data">')
    end = page.index("</script>", start)
    (moved / snap.INDEX).write_text(
        page[:start] + json.dumps(data, separators=(",", ":")) + page[end:], encoding="utf-8"
    )
    manifest = json.loads((moved / snap.MANIFEST).read_text())
    manifest["files"][snap.INDEX]["sha256"] = snap.sha256_of(moved / snap.INDEX)
    (moved / snap.MANIFEST).write_text(json.dumps(manifest))
    drawn = len(public_only["drawn"])
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(moved))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert len(public_only["drawn"]) == drawn  # no map
    assert any(f"outline of beat {A} does not hold its published blocks" in e.value for e in at.error)


@pytest.fixture(scope="module")
def with_presence(tmp_path_factory):
    """The tiny city with GPS stays (PRESENCE_STAYS), published with presence minutes; the folder and blocks."""
    folder = tmp_path_factory.mktemp("public_presence")
    on = Settings(timezone="America/Chicago", publish_presence_minutes=True)
    engine, points = city_with_stays(folder, on, PRESENCE_STAYS)
    publish_snapshot(engine, folder / "public", settings=on, as_of=AS_OF)
    engine.dispose()
    return folder / "public", points


def test_gps_presence_minutes_are_listed_in_words_where_the_snapshot_publishes_them(
    with_presence, public_only, monkeypatch, tmp_path
):
    public, points = with_presence
    settings_file = tmp_path / "settings.toml"
    settings_file.write_text("[public]\npublish_presence_minutes = true\n")
    monkeypatch.setenv("BEATMAP_SETTINGS", str(settings_file))
    monkeypatch.setenv(snap.ENV_PUBLIC_DIR, str(public))
    at = run_app()
    assert at.error == []
    at.selectbox(key="public-beat").select(A).run()
    assert not at.exception
    listed = at.dataframe[-1].value.set_index("Block")[snap.PRESENCE_HEADING]
    assert listed[points.at[0, "block_id"]] == "withheld (fewer than 3 patrol devices)"
    assert listed[points.at[1, "block_id"]] == "about 60 minutes of police presence outside calls"
    # In the blocks' tooltips too; the colours stay the visit levels.
    beat_map = public_only["drawn"][-1].get_root().render()
    assert "about 60 minutes of police presence outside calls" in beat_map
    # A site whose settings do not allow presence minutes does not show such a snapshot.
    strict = tmp_path / "strict.toml"
    strict.write_text("[public]\npublish_presence_minutes = false\n")
    monkeypatch.setenv("BEATMAP_SETTINGS", str(strict))
    at = run_app()
    assert any("does not pass the public map checks" in e.value for e in at.error)
