"""GPS presence minutes on the public map: the three-device rule, rounding, off by default, the check rules."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from beatmap import snapshot as snap
from beatmap import store
from beatmap.privacy import aggregates_from_store, public_presence_minutes
from beatmap.publicsite import page_data
from beatmap.publish import check_published, publish_snapshot
from beatmap.store import presence as presence_store
from tests.public_helpers import AS_OF, DATA_END, PRESENCE_STAYS, city_with_stays

WITHHELD = snap.PRESENCE_WITHHELD


# --- the rule itself ------------------------------------------------------------------------------


def test_fewer_than_three_devices_is_withheld_three_are_shown_and_none_is_zero():
    ids = pd.Series(["a", "b", "c", "d"])
    seconds = pd.Series({"a": 3600, "b": 3600, "c": 3600})
    devices = pd.Series({"a": 2, "b": 3, "c": 1})
    assert public_presence_minutes(ids, seconds, devices).tolist() == [WITHHELD, 60, WITHHELD, 0]


@pytest.mark.parametrize(
    ("seconds", "published"),
    [(1, 0), (7 * 60 + 29, 0), (7 * 60 + 30, 15), (22 * 60 + 29, 15), (22 * 60 + 30, 30), (100 * 60, 105)],
)
def test_minutes_are_rounded_to_the_nearest_quarter_hour(seconds, published):
    ids = pd.Series(["a"])
    assert public_presence_minutes(ids, pd.Series({"a": seconds}), pd.Series({"a": 5})).tolist() == [published]


def test_presence_in_words():
    assert snap.presence_text(45) == "about 45 minutes of police presence outside calls"
    assert snap.presence_text("150") == "about 150 minutes (3 hours) of police presence outside calls"
    assert snap.presence_text(0) == "under 8 minutes of police presence outside calls"
    assert snap.presence_text(WITHHELD) == "withheld (fewer than 3 patrol devices)"


# --- through the store ----------------------------------------------------------------------------


def test_devices_per_block_are_stored_with_the_presence_and_go_with_an_undo(engine, tmp_path, settings):
    engine, points = city_with_stays(tmp_path, settings, {0: [("r1", 20), ("r2", 20)], 1: [("r1", 20)]})
    counts = presence_store.block_device_counts(engine, first_day="2026-03-01", last_day="2026-05-31")
    assert counts.to_dict() == {points.at[0, "block_id"]: 2, points.at[1, "block_id"]: 1}
    # Outside the days asked for: none.
    assert presence_store.block_device_counts(engine, first_day="2026-06-01", last_day="2026-06-30").empty
    with store.transaction(engine) as conn:
        presence_store.delete_derived(conn, [int(b) for b in presence_store.ping_spans(engine)["batch_id"]])
    assert presence_store.block_device_counts(engine, first_day="2026-03-01", last_day="2026-05-31").empty
    engine.dispose()


def test_the_three_device_rule_and_rounding_through_the_store(tmp_path, settings):
    on = replace(settings, publish_presence_minutes=True)
    stays = {
        0: [("r1", 20), ("r2", 20)],  # two devices: withheld
        1: [("r1", 20), ("r2", 20), ("r3", 21)],  # three: 61 minutes, shown as 60
    }
    engine, points = city_with_stays(tmp_path, on, stays)
    aggregates = aggregates_from_store(engine, settings=on, as_of=AS_OF)
    assert aggregates.period.end == DATA_END
    published = aggregates.blocks.set_index("block_id")[snap.PRESENCE_MINUTES]
    assert published[points.at[0, "block_id"]] == WITHHELD
    assert published[points.at[1, "block_id"]] == 60
    assert (published.drop([points.at[0, "block_id"], points.at[1, "block_id"]]) == 0).all()
    # Not added into any beat figure.
    assert list(aggregates.beats.columns) == list(snap.BEAT_FIELDS)
    engine.dispose()


def test_off_by_default_the_snapshot_has_no_presence_field_at_all(tmp_path, settings):
    assert settings.publish_presence_minutes is False
    engine, _ = city_with_stays(tmp_path, settings, {1: [("r1", 20), ("r2", 20), ("r3", 20)]})
    out = tmp_path / "public"
    manifest = publish_snapshot(engine, out, settings=settings, as_of=AS_OF)
    engine.dispose()
    assert snap.PRESENCE_MINUTES not in manifest["rules"] and "presence_withheld" not in manifest["counts"]
    for name in (snap.GEOJSON, snap.BLOCKS_CSV, snap.SEARCH, snap.ABOUT, snap.beat_file(0)):
        assert "presence_minutes" not in (out / name).read_text(encoding="utf-8"), name
        assert "outside calls" not in (out / name).read_text(encoding="utf-8"), name
    page = (out / snap.INDEX).read_text(encoding="utf-8")
    assert page_data(page)["fields"] == list(snap.BLOCK_FIELDS)
    assert snap.PRESENCE_HEADING not in page


@pytest.fixture
def published(tmp_path, settings):
    on = replace(settings, publish_presence_minutes=True)
    engine, points = city_with_stays(tmp_path, on, PRESENCE_STAYS)
    out = tmp_path / "public"
    manifest = publish_snapshot(engine, out, settings=on, as_of=AS_OF)
    engine.dispose()
    return {"dir": out, "settings": on, "manifest": manifest, "points": points}


def test_a_published_snapshot_carries_the_field_and_passes_its_checks(published):
    out, on, manifest = published["dir"], published["settings"], published["manifest"]
    assert manifest["rules"][snap.PRESENCE_MINUTES]["min_devices"] == 3
    assert manifest["rules"][snap.PRESENCE_MINUTES]["step_minutes"] == 15
    assert manifest["counts"]["presence_withheld"] == 1
    rows = {r["block_id"]: r for r in snap.read_rows(out, snap.BLOCKS_CSV)}
    points = published["points"]
    assert rows[points.at[0, "block_id"]][snap.PRESENCE_MINUTES] == WITHHELD
    assert rows[points.at[1, "block_id"]][snap.PRESENCE_MINUTES] == "60"
    assert check_published(out, settings=on) == []
    assert "rounded to 15 minutes" in (out / snap.ABOUT).read_text(encoding="utf-8")
    page = (out / snap.INDEX).read_text(encoding="utf-8")
    assert snap.PRESENCE_HEADING in page
    # The settings of the site that shows it must allow it too.
    refused = check_published(out, settings=replace(on, publish_presence_minutes=False))
    assert any("publish_presence_minutes is false" in p for p in refused)


def _tamper(folder: Path, edit) -> None:
    """Edit coverage.geojson and recompute its checksum in the manifest (as a careful tamperer would)."""
    path = folder / snap.GEOJSON
    collection = json.loads(path.read_text(encoding="utf-8"))
    edit(collection["features"])
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    manifest = json.loads((folder / snap.MANIFEST).read_text(encoding="utf-8"))
    manifest["files"][snap.GEOJSON] = {"sha256": snap.sha256_of(path), "bytes": path.stat().st_size}
    (folder / snap.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def test_the_check_refuses_a_value_on_a_withheld_block(published):
    out, on = published["dir"], published["settings"]

    def reveal(features):
        withheld = next(f for f in features if f["properties"][snap.PRESENCE_MINUTES] == WITHHELD)
        withheld["properties"][snap.PRESENCE_MINUTES] = 45

    _tamper(out, reveal)
    problems = snap.check_snapshot(out, settings=on)
    assert any("a withheld block must carry no value" in p for p in problems), problems


def test_the_check_refuses_an_unrounded_value(published):
    out, on = published["dir"], published["settings"]

    def unround(features):
        shown = next(f for f in features if f["properties"][snap.PRESENCE_MINUTES] == 60)
        shown["properties"][snap.PRESENCE_MINUTES] = 61

    _tamper(out, unround)
    problems = snap.check_snapshot(out, settings=on)
    assert any("rounded to 15" in p and "61" in p for p in problems), problems


def test_the_check_refuses_a_withheld_label_that_carries_a_value(published):
    out, on = published["dir"], published["settings"]

    def label(features):
        withheld = next(f for f in features if f["properties"][snap.PRESENCE_MINUTES] == WITHHELD)
        withheld["properties"][snap.PRESENCE_MINUTES] = f"{WITHHELD} (40)"

    _tamper(out, label)
    assert any("must be whole minutes" in p for p in snap.check_snapshot(out, settings=on))


def test_the_check_refuses_looser_rules_and_a_field_naming_a_device(published):
    out, on = published["dir"], published["settings"]
    manifest = json.loads((out / snap.MANIFEST).read_text(encoding="utf-8"))
    manifest["rules"][snap.PRESENCE_MINUTES].update(step_minutes=5, min_devices=2)
    (out / snap.MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    problems = snap.check_snapshot(out, settings=on)
    assert any("multiple of 15" in p for p in problems) and any("at least 3" in p for p in problems)

    def name_device(features):
        features[0]["properties"]["device_id"] = "r1"

    _tamper(out, name_device)
    assert any("'device_id'" in p for p in snap.check_snapshot(out, settings=on))


def test_the_period_and_delay_are_those_of_the_visits(published):
    manifest = published["manifest"]
    end = pd.Timestamp(manifest["data_end"]).date()
    assert end == DATA_END and AS_OF - end > timedelta(days=7)
