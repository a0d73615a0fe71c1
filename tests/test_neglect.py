"""Neglected areas: grouping adjacent flagged blocks of a beat, totals, the majority flag, names, the store."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from beatmap.errors import InputError
from beatmap.metrics import Window
from beatmap.neglect import AREA_COLUMNS, area_block_ids, areas_text, neglected_areas, neglected_areas_from_store
from beatmap.settings import Settings
from tests.conftest import import_rows, load_two_beats

CRS = "EPSG:32616"


def city(flags: dict[str, str], *, columns: int = 6, rows: int = 6) -> gpd.GeoDataFrame:
    """100 m blocks ``r<row>c<col>``; beat W is columns 0-2, beat E the rest; ``flags`` by block id."""
    cells = [(r, c) for r in range(rows) for c in range(columns)]
    ids = [f"r{r}c{c}" for r, c in cells]
    frame = gpd.GeoDataFrame(
        {
            "block_id": ids,
            "beat_id": ["W" if c < 3 else "E" for _, c in cells],
            "flag": [flags.get(b) for b in ids],
            "visits": [0 if b in flags else 20 for b in ids],
            "enforcement": [5 if flags.get(b) == "enforcement_only" else 1 for b in ids],
        },
        geometry=[shapely.box(c * 100, r * 100, c * 100 + 100, r * 100 + 100) for r, c in cells],
        crs=CRS,
    )
    frame.loc[frame["flag"] == "rarely_visited", "visits"] = 2
    return frame


def test_adjacent_flagged_blocks_of_a_beat_form_one_area_and_never_cross_the_beat_edge():
    # r5c1, r5c2 and r4c2 in beat W touch; r4c3 touches r4c2 but lies in beat E; r0c0 is alone.
    cov = city(
        {
            "r5c1": "unvisited",
            "r5c2": "enforcement_only",
            "r4c2": "enforcement_only",
            "r4c3": "unvisited",
            "r3c3": "rarely_visited",
            "r0c0": "unvisited",
        }
    )
    areas = neglected_areas(cov)
    assert list(areas.columns) == [*AREA_COLUMNS, "geometry"]
    assert areas["block_ids"].tolist() == ["r4c2 r5c1 r5c2", "r3c3 r4c3"]
    assert areas["area_id"].tolist() == ["W-1", "E-1"]
    west = areas.iloc[0]
    assert west["blocks"] == 3 and west["flag"] == "enforcement_only"
    assert west["flags"] == "2 enforcement only, 1 unvisited"
    assert west["visits"] == 0 and west["enforcement"] == 11 and west["area_ha"] == 3.0
    assert west.geometry.area == pytest.approx(30_000)
    # A tie goes to the first of enforcement only, unvisited, rarely visited.
    assert areas.iloc[1]["flag"] == "unvisited" and areas.iloc[1]["visits"] == 2
    assert len(neglected_areas(cov, min_blocks=1)) == 3


def test_blocks_across_a_street_are_adjacent_but_not_blocks_a_block_apart():
    cov = city({"r0c0": "unvisited", "r0c2": "unvisited"})
    cov.geometry = cov.geometry.scale(0.85, 0.85)  # 15 m streets between the blocks
    assert neglected_areas(cov).empty
    cov = city({"r0c0": "unvisited", "r0c1": "unvisited"})
    cov.geometry = cov.geometry.scale(0.85, 0.85)
    areas = neglected_areas(cov)
    assert areas["block_ids"].tolist() == ["r0c0 r0c1"]
    assert areas.geometry.iloc[0].geom_type == "Polygon"  # joined across the street between them


def test_an_area_is_named_by_its_longest_streets_else_by_where_it_lies_in_the_beat():
    corner = city({"r5c0": "unvisited", "r4c0": "unvisited"})  # beat W is 300 m wide, 600 m tall
    assert neglected_areas(corner)["name"].tolist() == ["2 blocks north-west of beat W"]
    cov = city({"r5c0": "unvisited", "r5c1": "unvisited", "r4c0": "unvisited"})
    assert neglected_areas(cov)["name"].tolist() == ["3 blocks north of beat W"]
    cov_mid = city({"r2c1": "unvisited", "r3c1": "unvisited"})
    assert neglected_areas(cov_mid)["name"].tolist() == ["2 blocks in the middle of beat W"]
    streets = gpd.GeoDataFrame(
        {"name": ["W Madison St", "S Kedzie Ave", "Far Rd", None]},
        geometry=[
            shapely.LineString([(0, 500), (600, 500)]),
            shapely.LineString([(200, 0), (200, 600)]),
            shapely.LineString([(0, 50), (600, 50)]),
            shapely.LineString([(0, 550), (600, 550)]),
        ],
        crs=CRS,
    )
    assert neglected_areas(cov, streets=streets)["name"].tolist() == ["3 blocks around W Madison St and S Kedzie Ave"]
    assert neglected_areas(cov, streets=streets.iloc[[0, 3]])["name"].tolist() == ["3 blocks along W Madison St"]


def test_coverage_without_polygons_takes_them_from_the_blocks_or_is_refused():
    cov = city({"r0c0": "unvisited", "r0c1": "unvisited"})
    plain = pd.DataFrame(cov.drop(columns="geometry"))
    assert neglected_areas(plain, blocks=cov[["block_id", "geometry"]])["block_ids"].tolist() == ["r0c0 r0c1"]
    with pytest.raises(InputError, match="polygons"):
        neglected_areas(plain)
    streets = gpd.GeoDataFrame({"name": ["A St"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs="EPSG:4326")
    with pytest.raises(InputError, match="analysis CRS"):
        neglected_areas(cov, streets=streets)


def test_no_flag_no_area_and_unknown_area_ids_are_named():
    areas = neglected_areas(city({}))
    assert areas.empty and list(areas.columns) == [*AREA_COLUMNS, "geometry"]
    areas = neglected_areas(city({"r0c0": "unvisited", "r0c1": "unvisited"}))
    assert area_block_ids(areas, "W-1") == ["r0c0", "r0c1"]
    with pytest.raises(InputError, match=r"no such neglected area; areas: W-1"):
        area_block_ids(areas, "W-7")
    window = Window(pd.Timestamp("2026-01-01").date(), pd.Timestamp("2026-03-31").date(), "America/Chicago")
    assert "1 neglected area(s) from 2026-01-01 to 2026-03-31" in areas_text(areas, window)
    assert "0 visits, 2 enforcement events" in areas_text(areas, window)


def test_areas_from_the_store_follow_the_flags(engine, tmp_path):
    settings = Settings()
    load_two_beats(engine, tmp_path, settings=settings, grid_m=100)
    # Beat A's blocks all get visits except a corner pair; beat B gets none (every block unvisited).
    from beatmap import store

    blocks = store.read_blocks(engine)
    a = blocks[blocks["beat_id"] == "A"].reset_index(drop=True)
    corner = a.geometry.bounds.sort_values(["minx", "miny"]).index[:2]
    rows = []
    for i, geom in enumerate(a.geometry):
        if i in corner:
            continue
        inside = gpd.GeoSeries([geom.representative_point()], crs=blocks.crs).to_crs("EPSG:4326").iloc[0]
        lat, lon = round(inside.y, 7), round(inside.x, 7)
        rows += [f"2026-03-{d:02d}T10:00,{lat},{lon},foot_patrol" for d in range(1, 21)]
    import_rows(engine, tmp_path, rows, settings=settings)
    window = Window(pd.Timestamp("2026-01-01").date(), pd.Timestamp("2026-03-31").date(), "America/Chicago")
    areas = neglected_areas_from_store(engine, window=window, settings=settings)
    by_beat = areas.set_index("beat_id")
    assert by_beat.loc["B", "blocks"] == (blocks["beat_id"] == "B").sum()
    assert sorted(by_beat.loc["A", "block_ids"].split()) == sorted(a.loc[corner, "block_id"])
    assert set(areas["flag"]) == {"unvisited"}
