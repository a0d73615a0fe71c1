"""Naming blocks by their streets, on hand-built streets with known names."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from beatmap import naming, store
from beatmap.errors import CRSError
from beatmap.settings import Settings
from beatmap.streets import load_streets
from tests.conftest import X0, Y0, load_two_beats

CRS = "EPSG:32616"


def box(x0: float, y0: float, x1: float, y1: float) -> shapely.Polygon:
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def line(*points: tuple[float, float]) -> shapely.LineString:
    return shapely.LineString([(X0 + x, Y0 + y) for x, y in points])


@pytest.fixture
def streets() -> gpd.GeoDataFrame:
    """Main St east-west at y=0; 1st, 2nd, 3rd Ave north-south at x=0, 120, 240; an unnamed lane at y=70."""
    return gpd.GeoDataFrame(
        {"name": ["Main St", "Main St", "1st Ave", "2nd Ave", "3rd Ave", None]},
        geometry=[
            line((0, 0), (120, 0)),
            line((120, 0), (240, 0)),
            line((0, -80), (0, 80)),
            line((120, -80), (120, 80)),
            line((240, -80), (240, 80)),
            line((0, 70), (240, 70)),
        ],
        crs=CRS,
    )


def test_a_block_is_named_by_its_main_street_between_the_cross_streets(streets):
    blocks = gpd.GeoDataFrame(geometry=[box(5, 5, 115, 60), box(125, 5, 235, 60)], crs=CRS, index=[10, 11])
    names = naming.block_street_names(blocks, streets)
    assert names.index.tolist() == [10, 11] and names.name == "street_name"
    # West to east along the main street; the unnamed lane names nothing.
    assert names.tolist() == ["Main St between 1st Ave and 2nd Ave", "Main St between 2nd Ave and 3rd Ave"]


def test_blocks_on_both_sides_of_a_street_get_their_side(streets):
    blocks = gpd.GeoDataFrame(geometry=[box(5, 5, 115, 60), box(5, -60, 115, -5)], crs=CRS)
    assert naming.block_street_names(blocks, streets).tolist() == [
        "Main St between 1st Ave and 2nd Ave, north side",
        "Main St between 1st Ave and 2nd Ave, south side",
    ]


def test_one_cross_street_none_and_out_of_reach(streets):
    blocks = gpd.GeoDataFrame(geometry=[box(125, 5, 235, 40), box(500, 500, 550, 550)], crs=CRS)
    only_main = streets[streets["name"].isin(["Main St"])]
    no_third = streets[streets["name"].ne("3rd Ave")]
    assert naming.block_street_names(blocks, no_third).tolist() == ["Main St at 2nd Ave", None]
    assert naming.block_street_names(blocks.iloc[:1], only_main).tolist() == ["Main St"]


def test_a_north_south_block_reads_south_to_north():
    streets = gpd.GeoDataFrame(
        {"name": ["Oak Ave", "A St", "B St"]},
        geometry=[line((0, 0), (0, 300)), line((-50, 20), (50, 20)), line((-50, 280), (50, 280))],
        crs=CRS,
    )
    blocks = gpd.GeoDataFrame(geometry=[box(5, 25, 40, 275)], crs=CRS)
    assert naming.block_street_names(blocks, streets).tolist() == ["Oak Ave between A St and B St"]


def test_no_streets_or_no_names_give_no_names(streets):
    blocks = gpd.GeoDataFrame(geometry=[box(5, 5, 115, 60)], crs=CRS)
    assert naming.block_street_names(blocks, streets.iloc[:0]).isna().all()
    unnamed = streets.assign(name=None)
    assert naming.block_street_names(blocks, unnamed).isna().all()


@pytest.mark.parametrize("other", ["EPSG:4326", "EPSG:3435"])
def test_layers_in_other_crss_are_refused(streets, other):
    blocks = gpd.GeoDataFrame(geometry=[box(5, 5, 115, 60)], crs=CRS)
    with pytest.raises(CRSError, match="one metric CRS"):
        naming.block_street_names(blocks.to_crs(other), streets.to_crs(other))
    with pytest.raises(CRSError, match="Reproject"):
        naming.block_street_names(blocks, streets.to_crs(other))


def test_block_label_falls_back_to_the_id():
    assert naming.block_label("B7", "Main St at 1st Ave") == "Main St at 1st Ave (block B7)"
    assert naming.block_label("B7", None) == "B7" and naming.block_label("B7", float("nan")) == "B7"


def test_names_from_store(engine, tmp_path):
    from tests.street_city import street_grid

    engine = load_two_beats(engine, tmp_path, settings=Settings())
    assert naming.names_from_store(engine).empty  # no streets loaded yet
    grid = street_grid()
    grid["name"] = [f"Street {i}" for i in range(len(grid))]
    grid.to_file(tmp_path / "streets.geojson")
    load_streets(engine, tmp_path / "streets.geojson")
    names = naming.names_from_store(engine)
    blocks = store.read_blocks(engine)
    assert sorted(names.index) == sorted(blocks["block_id"]) and names.notna().all()
    one_beat = naming.names_from_store(engine, beat_id="A")
    assert set(one_beat.index) == set(blocks.loc[blocks["beat_id"] == "A", "block_id"])
    assert pd.Series(one_beat).equals(names.loc[one_beat.index])


def test_a_landmark_names_the_blocks_it_stands_on_or_beside_nearest_first():
    from beatmap.crs import WGS84, transform_xy

    blocks = gpd.GeoDataFrame(
        {"block_id": ["west", "east", "far"]},
        geometry=[box(0, 0, 100, 100), box(120, 0, 220, 100), box(1000, 0, 1100, 100)],
        crs=CRS,
    )

    def lat_lon(x: float, y: float) -> tuple[float, float]:
        lon, lat = transform_xy([X0 + x], [Y0 + y], CRS, WGS84)
        return float(lat[0]), float(lon[0])

    landmarks = {
        "School": lat_lon(50, 50),  # inside the west block
        "Library": lat_lon(112, 50),  # in the street: 12 m from the west block, 8 m from the east one
        "Station": lat_lon(600, 50),
    }  # 380 m from any block: names none
    found = naming.landmarks_by_block(blocks, landmarks)
    assert found.to_dict() == {"east": "Library", "west": "School · Library"}
    assert found.name == naming.LANDMARK
    assert naming.landmarks_by_block(blocks, {}).empty
    assert naming.landmarks_by_block(blocks, landmarks, reach_m=5).to_dict() == {"west": "School"}
