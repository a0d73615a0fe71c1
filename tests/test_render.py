"""Map shapes carry raw ids; tooltips show every value as text, never as markup (in Python and in Chromium)."""

from __future__ import annotations

import os

import pytest
from shapely.geometry import mapping

from beatmap.publicmap import public_map
from beatmap.render import TextTooltip, base_map, choropleth, coverage_map, display_frame
from tests.conftest import ROOT, metric_frame, square

#: Markup and a literal entity: a page that escaped it twice, or unescaped it, would show something else.
HOSTILE = "<img src=x onerror=alert(1)> &amp; A&1"
AS_JSON = HOSTILE.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def blocks_frame():
    return metric_frame(
        {
            "block_id": [HOSTILE, "B1"],
            "beat_id": [HOSTILE, HOSTILE],
            "visits": [3, 0],
            "enforcement": [0, 2],
            "flag": [None, "enforcement_only"],
            "flag_reason": ["", "<b>only</b> enforcement"],
            "geometry": [square(0, 0, 200), square(200, 0, 200)],
        },
        "EPSG:32616",
    )


def tooltips(m) -> list:
    found, stack = [], [m]
    while stack:
        element = stack.pop()
        found += [element] if isinstance(element, TextTooltip) else []
        stack += list(element._children.values())
    return found


def assert_raw_in_data_only(page: str) -> None:
    """The id is in the page only as JSON data: not as markup, not HTML-escaped (so never shown as ``&lt;``)."""
    assert AS_JSON in page
    assert page.count("onerror=alert(1)") == page.count("\\u003cimg src=x onerror=alert(1)\\u003e")
    assert "<img" not in page and "&lt;" not in page and "&amp;" not in page


def test_display_frame_keeps_raw_text():
    light = display_frame(blocks_frame(), ["block_id", "flag", "flag_reason"])
    assert list(light["block_id"]) == [HOSTILE, "B1"]
    assert list(light["flag"]) == ["", "enforcement_only"]  # missing text is "", as before
    assert list(light["flag_reason"]) == ["", "<b>only</b> enforcement"]


def test_choropleth_joins_highlights_and_shows_raw_ids_as_text():
    light = display_frame(blocks_frame(), ["block_id"]).merge(
        blocks_frame()[["block_id", "visits", "flag_reason"]], on="block_id"
    )
    layer = choropleth(
        light,
        ["#000000", "#ffffff"],
        name="Blocks",
        highlight=HOSTILE,
        tooltip_fields=["block_id", "visits", "flag_reason"],
        aliases=["Block", "Visits", "Why"],
    )
    geojson = next(iter(layer._children.values()))
    assert [f["properties"]["block_id"] for f in geojson.data["features"]] == [HOSTILE, "B1"]
    assert [geojson.style_function(f)["weight"] for f in geojson.data["features"]] == [4, 0.6]
    m = base_map(light.total_bounds)
    layer.add_to(m)
    assert len(tooltips(m)) == 1
    page = m.get_root().render()
    assert_raw_in_data_only(page)
    assert "innerHTML" not in page and ".textContent = " in page


def test_every_map_builder_uses_the_text_tooltip():
    blocks, beats = blocks_frame(), metric_frame({"beat_id": [HOSTILE], "geometry": [square(0, 0, 400)]}, "EPSG:32616")
    m = coverage_map(blocks, beats)
    assert len(tooltips(m)) == 1
    assert_raw_in_data_only(m.get_root().render())
    light = display_frame(blocks, ["block_id", "beat_id"])
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "geometry": mapping(g),
                "properties": {
                    "block_id": b,
                    "beat_id": beat,
                    "visit_level": "low",
                    "visits": "3",
                    "enforcement": "0",
                    "presence": "mostly visits",
                },
            }
            for g, b, beat in zip(light.geometry, light["block_id"], light["beat_id"], strict=True)
        ],
    }
    m = public_map(collection)
    assert len(tooltips(m)) == 1
    geojsons = [c for c in m._children.values() if c.__class__.__name__ == "GeoJson"]
    assert [f["properties"]["block_id"] for f in geojsons[0].data["features"]] == [HOSTILE, "B1"]
    assert [f["properties"]["beat_id"] for f in geojsons[1].data["features"]] == [HOSTILE]
    assert_raw_in_data_only(m.get_root().render())


@pytest.mark.parametrize("builder", ["choropleth", "public"])
def test_the_tooltip_shows_the_id_as_text_in_a_real_browser(builder, tmp_path):
    from beatmap.render import standalone_html
    from tests.test_browser import CHROMIUM, watched_page

    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    light = display_frame(blocks_frame(), ["block_id", "flag_reason"])
    if builder == "choropleth":
        m = base_map(light.total_bounds)
        choropleth(
            light,
            ["#000000", "#ffffff"],
            name="Blocks",
            tooltip_fields=["block_id", "flag_reason"],
            aliases=["Block", "Why"],
        ).add_to(m)
    else:
        m = public_map(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "geometry": mapping(g),
                        "properties": {
                            "block_id": b,
                            "beat_id": HOSTILE,
                            "visit_level": "low",
                            "visits": "3",
                            "enforcement": "0",
                            "presence": r,
                        },
                    }
                    for g, b, r in zip(light.geometry, light["block_id"], light["flag_reason"], strict=True)
                ],
            }
        )
    page_html = standalone_html(m, vendor_dir=ROOT / "static" / "vendor" / "leaflet")
    with watched_page({"width": 900, "height": 700}) as (page, dialogs):
        page.set_content(page_html, wait_until="load")
        shapes = page.locator("path.leaflet-interactive")
        shapes.first.wait_for(timeout=30_000)
        for i, (block, reason) in enumerate([(HOSTILE, ""), ("B1", "<b>only</b> enforcement")]):
            shapes.nth(i).hover()
            cells = page.locator(".leaflet-tooltip td")
            cells.first.wait_for(timeout=30_000)
            texts = cells.all_inner_texts()
            assert texts[0] == block and (reason in texts if builder == "choropleth" else HOSTILE in texts)
            assert page.locator(".leaflet-tooltip td *, img").count() == 0  # text only: no <b>, no <img>
            page.mouse.move(0, 0)
            page.locator(".leaflet-tooltip").wait_for(state="detached", timeout=30_000)
    assert dialogs == [], f"a script ran: {dialogs}"


@pytest.mark.parametrize(("width", "shown"), [(1200, True), (375, False)], ids=["desktop", "phone"])
def test_the_flag_legend_folds_away_on_a_phone_width_map(width, shown):
    from beatmap.render import coverage_map, standalone_html
    from tests.test_browser import CHROMIUM, watched_page

    assert os.path.exists(CHROMIUM), "install chromium with the system package manager (make browser)"
    blocks = blocks_frame()
    beats = blocks.dissolve("beat_id").reset_index()[["beat_id", "geometry"]]
    page_html = standalone_html(coverage_map(blocks, beats), vendor_dir=ROOT / "static" / "vendor" / "leaflet")
    with watched_page({"width": width, "height": 700}) as (page, _):
        page.set_content(page_html, wait_until="load")
        legend = page.locator("details.bm-legend")
        assert legend.evaluate("d => d.open") is shown
        assert legend.locator("summary").inner_text() == "Colours"
        legend.locator("summary").click()  # a tap opens (or folds) it
        assert legend.evaluate("d => d.open") is not shown
        assert legend.get_by_text("Enforcement only").is_visible() is not shown
