"""Publishing the public map from the demo city: nothing personal, nothing fine-grained, nothing recent leaks."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shutil
from datetime import date, timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from beatmap import snapshot as snap
from beatmap import store
from beatmap.cli import main
from beatmap.demo import build_demo
from beatmap.errors import BeatmapError, InputError
from beatmap.publish import check_published, check_snapshot, publish_snapshot
from beatmap.render import display_frame
from beatmap.settings import Settings
from tests.conftest import store_db
from tests.public_helpers import A, publish_tiny_city

AS_OF = date(2026, 10, 20)  # inside the demo's year of data, so later events exist and must be held back
DATA_START, DATA_END = date(2026, 6, 1), date(2026, 8, 30)  # the latest 13-week period over by Oct 12
LABEL = snap.withheld_label(3)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo city in a temporary store, and its snapshot published as of AS_OF."""
    tmp = tmp_path_factory.mktemp("publish")
    settings = Settings()
    engine = store.open_store(store_db(tmp / "demo.db"))
    build_demo(engine, settings=settings, seed=7, directory=tmp / "demo", gps_weeks=0)  # publishing reads no GPS
    manifest = publish_snapshot(engine, tmp / "public", settings=settings, as_of=AS_OF, actor="test:supervisor")
    activity = pd.read_csv(tmp / "demo" / "activity.csv", dtype=str)
    return {
        "engine": engine,
        "settings": settings,
        "dir": tmp / "public",
        "manifest": manifest,
        "activity": activity,
        "tmp": tmp,
    }


def files_of(folder) -> list:
    """Every file of a snapshot, the on-demand files in ``beats/`` included."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def page_data(page: str) -> dict:
    """The page's own data: the beats' outlines and how to draw them."""
    return json.loads(re.search(r'<script type="application/json" id="beatmap-data">(.*?)</script>', page).group(1))


def beat_collections(folder) -> list[dict]:
    """The per-beat files' block collections, in beat order."""
    return [
        snap.script_data(p.read_text(), p.relative_to(folder).as_posix())[1]
        for p in sorted((folder / "beats").iterdir())
    ]


def coordinates(value) -> list[tuple[float, float]]:
    if isinstance(value[0], int | float):
        return [(value[0], value[1])]
    return [c for item in value for c in coordinates(item)]


def copy_snapshot(demo, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(demo["dir"], target)
    return target


def test_snapshot_holds_every_file_with_its_hash(demo):
    names = {p.relative_to(demo["dir"]).as_posix() for p in files_of(demo["dir"])}
    beats = {r["beat_id"] for r in snap.read_rows(demo["dir"], snap.BEATS_CSV)}
    # The demo has a street layer, so its snapshot has the base map.
    assert names == {*snap.FILES, snap.STREETS, snap.MANIFEST, *(snap.beat_file(n) for n in range(len(beats)))}
    assert set(demo["manifest"]["files"]) == names - {snap.MANIFEST}
    for name, entry in demo["manifest"]["files"].items():
        assert entry["sha256"] == snap.sha256_of(demo["dir"] / name)
    assert check_snapshot(demo["dir"], settings=demo["settings"]) == []


def test_no_officer_unit_note_or_record_id_appears_in_any_file(demo):
    activity = demo["activity"]
    secrets = {*activity["officer_id"].dropna(), *activity["unit_id"].dropna(), *activity["notes"].dropna()}
    record_ids = set(activity["source_id"].dropna())
    assert len(secrets) > 70 and len(record_ids) > 80_000
    for path in files_of(demo["dir"]):
        raw = path.read_bytes()
        text = html.unescape(raw.decode("utf-8"))
        leaked = sorted(s for s in secrets if s.encode() in raw or s in text)
        assert leaked == [], f"{path.name} leaks {leaked[:5]}"
        tokens = set(re.findall(rb"[A-Za-z0-9_-]+", raw)) | set(re.findall(r"[A-Za-z0-9_-]+", text))
        assert not {t.encode() for t in record_ids} & tokens and not record_ids & tokens, path.name


def test_no_raw_event_coordinate_appears_in_any_file(demo):
    activity = demo["activity"]
    # Values at the block grid's precision may be block corners (public anyway); the geometry test covers those.
    raw_points = {v for v in {*activity["lat"], *activity["lon"]} if len(v.split(".")[1]) > 5}
    assert len(raw_points) > 1000
    for path in files_of(demo["dir"]):
        numbers = set(re.findall(r"-?\d+\.\d+", path.read_text(encoding="utf-8")))
        assert numbers & raw_points == set(), path.name


def test_geometry_is_the_simplified_block_layer_and_nothing_finer(demo):
    blocks = store.read_blocks(demo["engine"])
    light = display_frame(blocks, [], tolerance_m=2.0)
    vertices = {(round(x, 5), round(y, 5)) for g in light.geometry for x, y in shapely_coords(g)}
    collection = snap.read_features(demo["dir"])
    assert len(collection["features"]) == len(blocks)
    published = set()
    for feature in collection["features"]:
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        published |= set(map(tuple, coordinates(feature["geometry"]["coordinates"])))
    assert published <= vertices
    assert all(round(x, 5) == x and round(y, 5) == y for x, y in published)
    on_demand = {
        tuple(c)
        for fc in beat_collections(demo["dir"])
        for f in fc["features"]
        for c in coordinates(f["geometry"]["coordinates"])
    }
    assert on_demand == published  # each beat's file holds its blocks exactly as coverage.geojson does
    # The page itself holds only the beats' outlines (simplified for the city view): polygons on the same grid.
    outlines = page_data((demo["dir"] / snap.INDEX).read_text())["outlines"]["features"]
    assert len(outlines) == len(snap.read_rows(demo["dir"], snap.BEATS_CSV))
    assert {f["geometry"]["type"] for f in outlines} <= {"Polygon", "MultiPolygon"}
    assert all(list(f["properties"]) == ["beat_id"] for f in outlines)
    in_page = [c for f in outlines for c in coordinates(f["geometry"]["coordinates"])]
    assert in_page and all(round(x, 5) == x and round(y, 5) == y for x, y in in_page)


def shapely_coords(geometry):
    import shapely

    return shapely.get_coordinates(geometry).tolist()


def test_every_field_is_on_the_whitelist(demo):
    collection = snap.read_features(demo["dir"])
    assert set(collection) == {"type", "features"}
    assert all(list(f["properties"]) == list(snap.BLOCK_FIELDS) for f in collection["features"])
    for name, fields in (
        (snap.BLOCKS_CSV, snap.BLOCK_FIELDS),
        (snap.BEATS_CSV, snap.BEAT_FIELDS),
        (snap.TREND_CSV, snap.TREND_FIELDS),
    ):
        header = next(csv.reader(io.StringIO((demo["dir"] / name).read_text())))
        assert header == list(fields), name
    for fc in beat_collections(demo["dir"]):
        assert all(list(f["properties"]) == list(snap.BLOCK_FIELDS) for f in fc["features"])
    rows = snap.script_data((demo["dir"] / snap.SEARCH).read_text(), snap.SEARCH)
    assert len(rows) == len(collection["features"]) and all(len(r) == len(snap.BLOCK_FIELDS) for r in rows)


def test_no_count_below_the_threshold(demo):
    def ok(value) -> bool:
        return value == LABEL or int(value) == 0 or int(value) >= 3

    blocks = snap.read_rows(demo["dir"], snap.BLOCKS_CSV)
    assert all(ok(r["visits"]) and ok(r["enforcement"]) for r in blocks)
    assert any(r["visits"] == LABEL for r in blocks)  # the demo does have small counts, and they are withheld
    beats = snap.read_rows(demo["dir"], snap.BEATS_CSV)
    assert all(ok(r["visits_on_shown_blocks"]) and ok(r["enforcement_on_shown_blocks"]) for r in beats)
    features = snap.read_features(demo["dir"])["features"]
    assert all(ok(f["properties"]["visits"]) and ok(f["properties"]["enforcement"]) for f in features)


def test_counts_are_exactly_the_period_before_the_delay(demo):
    manifest = demo["manifest"]
    start, end = date.fromisoformat(manifest["data_start"]), date.fromisoformat(manifest["data_end"])
    assert (start, end) == (DATA_START, DATA_END) and (AS_OF - end).days - 1 >= 7 and end.weekday() == 6
    events = store.read_events(demo["engine"], columns=("occurred_at", "kind", "block_id"))
    day = events["occurred_at"].dt.tz_convert("America/Chicago").dt.date
    visits = events["kind"].isin(["foot_patrol", "community_visit"])

    def counts(last: date) -> pd.Series:
        return events[visits & (day >= start) & (day <= last)].groupby("block_id").size()

    expected, with_later = counts(end), counts(end + timedelta(days=7))
    assert (expected != with_later.reindex(expected.index)).any()  # later events exist and would change counts
    published = {r["block_id"]: r["visits"] for r in snap.read_rows(demo["dir"], snap.BLOCKS_CSV)}
    for block_id, value in published.items():
        n = int(expected.get(block_id, 0))
        assert value == (LABEL if 0 < n < 3 else str(n)), block_id
    trend = snap.read_rows(demo["dir"], snap.TREND_CSV)
    assert max(r["week_end"] for r in trend) == end.isoformat()
    assert all(date.fromisoformat(r["week_start"]) >= start for r in trend)
    for path in files_of(demo["dir"]):
        if path.name not in (snap.MANIFEST, snap.ABOUT):
            later = [d for d in re.findall(r"\d{4}-\d{2}-\d{2}", path.read_text()) if d > end.isoformat()]
            assert later == [], path.name


def test_publish_is_in_the_audit_log(demo):
    with demo["engine"].connect() as conn:
        rows = conn.execute(select(store.audit_log).where(store.audit_log.c.action == "publish")).all()
    assert len(rows) >= 1
    entry = rows[0]
    details = json.loads(entry.details)
    assert entry.actor == "test:supervisor" and details["as_of"] == AS_OF.isoformat()
    assert details["files"][snap.GEOJSON] == demo["manifest"]["files"][snap.GEOJSON]["sha256"]


def test_the_page_works_offline_on_a_phone_with_a_text_alternative(demo):
    page = (demo["dir"] / snap.INDEX).read_text()
    assert '<html lang="en">' in page and "<title>" in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "user-scalable=no" not in page
    assert not re.search(r"<script[^>]*\bsrc=|<link[^>]*\bhref=", page)  # Leaflet is inlined
    assert "cdn" not in page.lower()
    from beatmap.publicmap import ENFORCEMENT_EDGE, LEVEL_STYLE

    for colour in [*(style[0] for style in LEVEL_STYLE.values()), ENFORCEMENT_EDGE]:
        assert colour in page
    assert page.index('class="skip" href="#tables"') < page.index('id="map"') < page.index('id="tables"')
    assert 'id="block-search"' in page and "Where" in page
    assert page.count("<tr>") >= 8  # every beat as text; every block's row is in search.js and its beat's file
    blocks = len(store.read_blocks(demo["engine"]))
    assert len(snap.script_data((demo["dir"] / snap.SEARCH).read_text(), snap.SEARCH)) == blocks
    assert "About this map" in page and "fewer than 3" in page
    assert snap.about_from_manifest(demo["manifest"]).split("\n")[3].split(" (")[0] in page  # the notes


def test_about_text_says_what_the_map_shows_and_how(demo):
    about = snap.read_about(demo["dir"])
    for phrase in (
        "What the map does not show",
        "No officer",
        "fewer than 3",
        "7 days",
        "August 30, 2026",
        "never added into any total",
        "Monday to Sunday",
        "periods never overlap",
    ):
        assert phrase in about, phrase


@pytest.mark.parametrize(
    "tamper",
    [
        "officer_field",
        "count_of_one",
        "extra_file",
        "point",
        "later_week",
        "manifest_delay",
        "sliding_period",
        "cdn_script",
    ],
)
def test_check_catches_a_tampered_snapshot(demo, tmp_path, tamper, capsys):
    folder = copy_snapshot(demo, tmp_path)
    geojson, blocks_csv = folder / snap.GEOJSON, folder / snap.BLOCKS_CSV
    if tamper == "officer_field":
        data = json.loads(geojson.read_text())
        data["features"][0]["properties"]["officer_id"] = "O101"
        geojson.write_text(json.dumps(data))
    elif tamper == "count_of_one":
        rows = list(csv.DictReader(io.StringIO(blocks_csv.read_text())))
        rows[0]["visits"] = "1"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        blocks_csv.write_text(out.getvalue())
    elif tamper == "extra_file":
        (folder / "events.csv").write_text("occurred_at,lat,lon\n2026-10-01T10:00,41.6,-88.1\n")
    elif tamper == "point":
        data = json.loads(geojson.read_text())
        data["features"][0]["geometry"] = {"type": "Point", "coordinates": [-88.1012345, 41.6012345]}
        geojson.write_text(json.dumps(data))
    elif tamper == "later_week":
        trend = folder / snap.TREND_CSV
        trend.write_text(trend.read_text() + "B01,2026-08-31,2026-09-06,50\n")
    elif tamper == "manifest_delay":
        manifest = json.loads((folder / snap.MANIFEST).read_text())
        manifest["as_of"] = "2026-09-02"
        (folder / snap.MANIFEST).write_text(json.dumps(manifest))
    elif tamper == "sliding_period":
        manifest = json.loads((folder / snap.MANIFEST).read_text())
        manifest["data_start"] = "2026-06-08"
        (folder / snap.MANIFEST).write_text(json.dumps(manifest))
    elif tamper == "cdn_script":
        page = folder / snap.INDEX
        page.write_text(page.read_text().replace("<head>", '<head><script src="https://cdn.example/x.js"></script>'))
    problems = check_snapshot(folder, settings=demo["settings"])
    assert problems, tamper
    expected = {
        "officer_field": "officer",
        "count_of_one": "below 3",
        "extra_file": "events.csv",
        "point": "Point",
        "later_week": "outside the data",
        "manifest_delay": "full days",
        "sliding_period": "fixed periods",
        "cdn_script": "internet",
    }[tamper]
    assert any(expected in p for p in problems), problems
    assert main(["publish", "--check", str(folder)]) == 1
    out = capsys.readouterr().out
    assert "violation" in out and expected in out


@pytest.mark.parametrize("tamper", ["officer_field", "count_of_one", "fine_coordinate", "point", "other_blocks"])
def test_check_reads_every_beat_file_and_catches_an_edit_there_with_its_checksum_recomputed(demo, tmp_path, tamper):
    """A beat file identical to coverage.geojson's blocks of its beat is covered by that file's check; any
    edit makes it differ, and then it is checked in full, with the violation named in that file."""
    folder = copy_snapshot(demo, tmp_path)
    name = snap.beat_file(1)
    path = folder / name
    number, collection = snap.script_data(path.read_text(), name)
    feature = collection["features"][0]
    if tamper == "officer_field":
        feature["properties"]["officer_id"] = "O101"
    elif tamper == "count_of_one":
        feature["properties"]["visits"] = 1
    elif tamper == "fine_coordinate":
        feature["geometry"]["coordinates"][0][0] = [-88.1012345, 41.6012345]
    elif tamper == "point":
        feature["geometry"] = {"type": "Point", "coordinates": [-88.10123, 41.60123]}
    else:  # another beat's blocks, each one clean: nothing to report (what is shown is still published data)
        collection = json.loads(
            json.dumps(snap.script_data((folder / snap.beat_file(0)).read_text(), snap.beat_file(0))[1])
        )
    path.write_text(snap.BEAT_CALL + json.dumps([number, collection]) + ");\n")
    rehash(folder, name)
    problems = check_snapshot(folder, settings=demo["settings"])
    if tamper == "other_blocks":
        assert problems == []
        return
    expected = {
        "officer_field": "officer",
        "count_of_one": "below 3",
        "fine_coordinate": "finer than",
        "point": "Point",
    }[tamper]
    assert [p for p in problems if expected in p and str(path) in p], problems
    assert not [p for p in problems if str(folder / snap.GEOJSON) in p]  # coverage.geojson itself is clean


def test_check_of_a_clean_snapshot_exits_zero(demo, capsys):
    assert main(["publish", "--check", str(demo["dir"])]) == 0
    assert "keeps every public map rule" in capsys.readouterr().out


def test_cli_publishes_and_refuses_a_future_date(demo, tmp_path, capsys):
    db = store_db(demo["tmp"] / "demo.db")
    assert main(["--db", db, "publish", "--out", str(tmp_path / "pub"), "--as-of", "2026-10-27"]) == 0
    assert "data 2026-06-01 to 2026-08-30" in capsys.readouterr().out
    assert check_snapshot(tmp_path / "pub", settings=demo["settings"]) == []
    future = (date.today() + timedelta(days=2)).isoformat()
    assert main(["--db", db, "publish", "--out", str(tmp_path / "pub"), "--as-of", future]) == 2
    assert "later than today" in capsys.readouterr().err


def test_a_shorter_delay_needs_a_logged_reason_that_is_never_published(demo, tmp_path):
    engine, settings = demo["engine"], demo["settings"]
    early = date(2026, 9, 3)  # 3 days after a period ended
    with pytest.raises(InputError, match="--reason"):
        publish_snapshot(engine, tmp_path / "fast", settings=settings, as_of=early, override_delay_days=1)
    assert not (tmp_path / "fast").exists()
    reason = "Council hearing on foot patrol staffing"
    manifest = publish_snapshot(
        engine,
        tmp_path / "fast",
        settings=settings,
        as_of=early,
        actor="test:lt",
        override_delay_days=1,
        override_reason=reason,
    )
    assert manifest["override"] == {"delay_days": 1, "rule_delay_days": 7}
    assert manifest["data_end"] == "2026-08-30"  # the rules would still publish the period ending 2026-05-31
    assert "shorter delay (1 days)" in snap.read_about(tmp_path / "fast")
    for path in files_of(tmp_path / "fast"):
        assert reason not in path.read_text(), path.name
    with engine.connect() as conn:
        logged = conn.execute(select(store.audit_log).where(store.audit_log.c.action == "publish.override")).all()
    assert [json.loads(r.details)["reason"] for r in logged] == [reason] and logged[0].actor == "test:lt"
    problems = check_snapshot(tmp_path / "fast", settings=settings)
    assert any("full days" in p for p in problems)  # the rules still say it is too recent


def test_publishing_again_replaces_the_snapshot_but_never_another_folder(demo, tmp_path):
    engine, settings = demo["engine"], demo["settings"]
    out = tmp_path / "pub"
    publish_snapshot(engine, out, settings=settings, as_of=AS_OF)
    (out / "stale.txt").write_text("left over")
    publish_snapshot(engine, out, settings=settings, as_of=AS_OF + timedelta(days=7))
    assert not (out / "stale.txt").exists() and snap.read_manifest(out)["as_of"] == "2026-10-27"
    other = tmp_path / "documents"
    other.mkdir()
    (other / "budget.xlsx").write_text("keep me")
    with pytest.raises(InputError, match="holds no published snapshot"):
        publish_snapshot(engine, other, settings=settings, as_of=AS_OF)
    assert (other / "budget.xlsx").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left behind


def test_missing_leaflet_says_run_make_vendor(demo, tmp_path):
    with pytest.raises(BeatmapError, match="make vendor"):
        publish_snapshot(
            demo["engine"],
            tmp_path / "pub",
            settings=demo["settings"],
            as_of=AS_OF,
            leaflet_dir=tmp_path / "no-leaflet",
        )
    assert not (tmp_path / "pub").exists()


def test_the_level_scale_is_ordered_and_none_stands_apart():
    from beatmap.publicmap import ENFORCEMENT_EDGE, LEVEL_STYLE

    def lightness(colour: str) -> float:
        r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
        return 0.2126 * r + 0.7152 * g + 0.0722 * b  # relative luminance (sRGB weights, no gamma: order only)

    values = [lightness(LEVEL_STYLE[k][0]) for k in snap.LEVELS]
    assert values == sorted(values, reverse=True) and len(set(values)) == 4  # none lightest, high darkest
    assert values[0] - values[1] > 0.1  # "none" clearly apart from "low"
    assert ENFORCEMENT_EDGE not in {style[0] for style in LEVEL_STYLE.values()}  # a mark of its own


def test_levels_no_block_reaches_are_left_out_of_the_legend():
    from beatmap.publicmap import public_legend_html
    from beatmap.publish import level_text

    assert list(level_text(None)) == ["none", "low"] and list(level_text((5, 5))) == ["none", "low", "high"]
    assert "no block" not in " ".join(level_text((5, 5)).values())
    legend = public_legend_html(level_text((5, 5)))
    assert "Low: 1 to 5 visits" in legend and "Medium" not in legend and "High: more than 5 visits" in legend


def test_warnings_before_publishing(demo):
    import dataclasses

    from beatmap.privacy import aggregates_from_store
    from beatmap.publish import publish_warnings

    aggregates = aggregates_from_store(demo["engine"], settings=demo["settings"], as_of=AS_OF)
    assert publish_warnings(aggregates) == []  # a full period, most counts shown
    blocks = aggregates.blocks
    empty = dataclasses.replace(aggregates, blocks=blocks.assign(visits=0, enforcement=0))
    assert len(publish_warnings(empty)) == 1 and "holds no activity" in publish_warnings(empty)[0]
    no_visits = dataclasses.replace(aggregates, blocks=blocks.assign(visits=0))
    assert "No foot patrol or community visit" in publish_warnings(no_visits)[0]
    withheld = blocks.assign(visits=[LABEL if i % 4 else 5 for i in range(len(blocks))])
    warned = publish_warnings(dataclasses.replace(aggregates, blocks=withheld))
    hidden = len(blocks) - (len(blocks) + 3) // 4  # every block but each fourth
    assert len(warned) == 1 and f"{hidden:,} of {len(blocks):,} blocks" in warned[0]
    # GPS presence minutes published for a period without any GPS presence: every block would read 0.
    no_gps = dataclasses.replace(aggregates, blocks=blocks.assign(presence_minutes=0))
    assert no_gps.presence and len(publish_warnings(no_gps)) == 1
    assert "no GPS presence is stored" in publish_warnings(no_gps)[0]
    some_gps = dataclasses.replace(aggregates, blocks=blocks.assign(presence_minutes=[15] + [0] * (len(blocks) - 1)))
    assert publish_warnings(some_gps) == []


def test_publish_history_lists_each_publication_once(demo, tmp_path):
    from beatmap.publish import publish_history

    engine, settings = demo["engine"], demo["settings"]
    before = publish_history(engine)
    publish_snapshot(
        engine,
        tmp_path / "again",
        settings=settings,
        as_of=AS_OF,
        actor="test:lt",
        override_delay_days=3,
        override_reason="community meeting",
    )
    history = publish_history(engine, timezone="America/Chicago")
    assert len(history) == len(before) + 1
    newest = history.iloc[0]
    assert newest["by"] == "test:lt" and bool(newest["shorter_delay"])
    assert newest["blocks"] == len(store.read_blocks(engine))
    assert newest["folder"] == str((tmp_path / "again").resolve())
    assert str(newest["published_at"].tz) == "America/Chicago"
    assert history["shorter_delay"].sum() == before["shorter_delay"].sum() + 1


def test_an_edited_readme_with_its_checksum_recomputed_is_reported_and_never_shown(tmp_path, settings):
    folder = publish_tiny_city(tmp_path, {(A, 0, "foot_patrol"): 4}, settings=settings)
    manifest = snap.read_manifest(folder)
    assert snap.about_from_manifest(manifest) == snap.read_about(folder)  # the notes are made from the manifest
    readme = folder / snap.ABOUT
    readme.write_text(readme.read_text() + "\n[Report a crime here](http://evil.example)\n", encoding="utf-8")
    manifest["files"][snap.ABOUT]["sha256"] = snap.sha256_of(readme)
    (folder / snap.MANIFEST).write_text(json.dumps(manifest))
    assert snap.check_snapshot(folder, settings=settings) == []  # the checksums alone cannot tell
    [problem] = check_published(folder, settings=settings)
    assert "README.txt: differs from the notes its manifest gives" in problem
    assert "evil.example" not in snap.about_from_manifest(snap.read_manifest(folder))  # what the public page shows


def rehash(folder, *names) -> None:
    """Recompute the manifest's checksums of ``names``, as someone editing the snapshot would."""
    manifest = json.loads((folder / snap.MANIFEST).read_text())
    for name in names:
        manifest["files"][name] = {"sha256": snap.sha256_of(folder / name), "bytes": (folder / name).stat().st_size}
    (folder / snap.MANIFEST).write_text(json.dumps(manifest, indent=2))


def edit(path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "tamper",
    ["free_text", "inline_script", "table_cell", "readme", "beat_file_level", "coverage_csv_level", "search_row"],
)
def test_check_makes_the_page_and_notes_again_and_catches_an_edit_with_its_checksum_recomputed(
    demo, tmp_path, tamper, capsys
):
    folder = copy_snapshot(demo, tmp_path)
    assert check_published(folder, settings=demo["settings"]) == []  # a clean copy keeps every rule
    page, first_beat = folder / snap.INDEX, snap.beat_file(0)
    beat = snap.read_rows(folder, snap.BEATS_CSV)[0]
    if tamper == "free_text":
        edit(
            page,
            "nothing from the last 7 days is included.",
            "nothing from the last 7 days is included. Call 555-0100 to report your neighbours.",
        )
        name = snap.INDEX
    elif tamper == "inline_script":
        edit(page, "</body>", "<script>fetch('/x?'+document.cookie)</script></body>")
        name = snap.INDEX
    elif tamper == "table_cell":
        edit(
            page,
            f"<td>{beat['beat_id']}</td><td class=n>{beat['blocks']}</td><td class=n>{beat['coverage_pct']}%",
            f"<td>{beat['beat_id']}</td><td class=n>{beat['blocks']}</td><td class=n>100%",
        )
        name = snap.INDEX
    elif tamper == "readme":
        edit(folder / snap.ABOUT, "What the map does not show", "What the map does not show (it shows everything)")
        name = snap.ABOUT
    elif tamper == "beat_file_level":
        edit(folder / first_beat, '"visit_level":"none"', '"visit_level":"high"')
        name = first_beat
    elif tamper == "coverage_csv_level":
        edit(folder / snap.BLOCKS_CSV, ",none,0,", ",high,0,")
        name = snap.BLOCKS_CSV
    else:
        edit(folder / snap.SEARCH, '"none",0,', '"high",0,')
        name = snap.SEARCH
    rehash(folder, name)
    assert check_snapshot(folder, settings=demo["settings"]) == []  # the checksums and whitelists alone cannot tell
    problems = check_published(folder, settings=demo["settings"])
    assert len(problems) == 1 and problems[0].startswith(f"{folder / name}: differs from"), problems
    assert "edited after publishing" in problems[0] and "publish the snapshot again" in problems[0]
    assert main(["publish", "--check", str(folder)]) == 1
    assert name in capsys.readouterr().out


def test_the_page_is_the_same_whoever_builds_it_from_the_same_data(demo, tmp_path):
    """Publishing twice from the same store gives the same page and on-demand files, byte for byte."""
    again = tmp_path / "again"
    publish_snapshot(demo["engine"], again, settings=demo["settings"], as_of=AS_OF)
    for path in files_of(demo["dir"]):
        if path.name != snap.MANIFEST:
            assert (again / path.relative_to(demo["dir"])).read_bytes() == path.read_bytes(), path.name


def test_check_with_another_leaflet_reports_the_page(demo, tmp_path):
    """The page inlines Leaflet, so it is made again with the Leaflet the check is given (the project's by
    default): a snapshot published with another version is reported, with the fix."""
    from beatmap.publish import DEFAULT_LEAFLET_DIR

    other = tmp_path / "leaflet"
    shutil.copytree(DEFAULT_LEAFLET_DIR, other)
    (other / "leaflet.js").write_text((other / "leaflet.js").read_text() + "\n/* another version */\n")
    assert check_published(demo["dir"], settings=demo["settings"]) == []
    [problem] = check_published(demo["dir"], settings=demo["settings"], leaflet_dir=other)
    assert problem.startswith(f"{demo['dir'] / snap.INDEX}: differs from the page its data makes")
    assert "another Leaflet" in problem and "publish the snapshot again" in problem
