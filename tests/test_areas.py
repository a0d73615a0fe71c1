"""Beats and blocks: reading, validation, repair, dissolving, grids, block -> beat."""

from __future__ import annotations

import zipfile

import geopandas as gpd
import pytest
import shapely

from beatmap.areas import blocks_from_grid, blocks_to_beats, prepare_areas, read_layer
from beatmap.errors import CRSError, InputError
from tests.conftest import CRS_CASES, X0, Y0, metric_frame, square, two_beats


@pytest.mark.parametrize("crs", CRS_CASES)
def test_grid_blocks_tessellate_each_beat(crs):
    beats, blocks, notes = prepare_areas(two_beats(crs), None, grid_m=150)
    assert set(notes["action"]) <= {"merged"}  # only thin edge pieces joined to a neighbour, if any
    assert beats.crs.is_projected and beats.crs.axis_info[0].unit_name == "metre"
    for beat_id, beat in zip(beats["beat_id"], beats.geometry, strict=True):
        mine = blocks[blocks["beat_id"] == beat_id]
        assert mine.geometry.area.sum() == pytest.approx(beat.area, rel=1e-9)
        assert shapely.union_all(mine.geometry.values).symmetric_difference(beat).area < 1e-3
    # Cells are at most 150 m square, or a cell and the thin edge pieces joined to it; a cell straddling the
    # A|B edge is one block on each side.
    assert (blocks.geometry.area <= 1.5 * 150 * 150).all() and (blocks.geometry.area >= 150 * 150 / 4).all()
    straddling = blocks["block_id"].str.split("_").str[1]
    assert (straddling.value_counts() <= 2).all() and (straddling.value_counts() == 2).any()
    assert blocks["block_id"].is_unique


def test_thin_edge_pieces_of_the_grid_join_their_neighbour():
    beat = gpd.GeoDataFrame({"beat_id": ["A"]}, geometry=[shapely.box(0, 0, 410, 410)], crs="EPSG:32616")
    whole = blocks_from_grid(beat, size_m=100, merge_under=0)
    assert len(whole) == 25 and whole.attrs["merged_pieces"] == 0  # 16 cells, 8 strips 10 m wide, 1 corner
    blocks = blocks_from_grid(beat, size_m=100)
    assert len(blocks) == 16 and blocks.attrs["merged_pieces"] == 9
    assert blocks.geometry.area.sum() == pytest.approx(410 * 410)
    assert blocks.geometry.area.min() == pytest.approx(100 * 100)
    assert (blocks.geom_type == "Polygon").all() and blocks["block_id"].is_unique
    corner = blocks.set_index("block_id").geometry["A_r3c3"]  # the top-right cell took both strips and the corner
    assert corner.area == pytest.approx(110 * 110)
    # A small piece touching no other piece along an edge stays a block of its own.
    island = gpd.GeoDataFrame(
        {"beat_id": ["A"]},
        geometry=[shapely.MultiPolygon([shapely.box(0, 0, 100, 100), shapely.box(250, 250, 260, 260)])],
        crs="EPSG:32616",
    )
    assert len(blocks_from_grid(island, size_m=100)) == 2


@pytest.mark.parametrize("crs", CRS_CASES)
def test_duplicate_ids_are_dissolved_and_reported(crs):
    layer = metric_frame(
        {"beat_id": ["A", "A", "B"], "geometry": [square(0, 0, 200), square(0, 200, 200), square(400, 0, 400)]}, crs
    )
    beats, _, notes = prepare_areas(layer, None, grid_m=200)
    assert list(beats["beat_id"]) == ["A", "B"]
    assert beats.geometry.iloc[0].area == pytest.approx(200 * 400, rel=1e-3)
    dissolved = notes[notes["action"] == "dissolved"]
    assert list(dissolved["id"]) == ["A"] and "features 1, 2" in dissolved["detail"].iloc[0]


def test_broken_features_are_repaired_or_rejected_by_feature():
    ring = [(X0, Y0), (X0 + 300, Y0), (X0 + 300, Y0 + 300), (X0, Y0 + 300)]
    bowtie = shapely.Polygon([(X0 + 400, Y0), (X0 + 700, Y0 + 300), (X0 + 700, Y0), (X0 + 400, Y0 + 300)])
    layer = gpd.GeoDataFrame(
        {
            "beat_id": ["open", "bowtie", "dot", None, "empty"],
            "geometry": [shapely.LineString(ring), bowtie, shapely.Point(X0, Y0), square(0, 500, 100), None],
        },
        crs="EPSG:32616",
    )
    beats, _, notes = prepare_areas(layer, None, grid_m=100)
    assert sorted(beats["beat_id"]) == ["bowtie", "open"]
    by_feature = notes.set_index("feature")
    assert by_feature.loc[1, "action"] == "repaired" and "unclosed ring" in by_feature.loc[1, "detail"]
    assert by_feature.loc[2, "action"] == "repaired" and "Self-intersection" in by_feature.loc[2, "detail"]
    assert by_feature.loc[3, "action"] == "rejected" and "Point" in by_feature.loc[3, "detail"]
    assert by_feature.loc[4, "action"] == "rejected" and "no id" in by_feature.loc[4, "detail"]
    assert by_feature.loc[5, "action"] == "rejected" and "no geometry" in by_feature.loc[5, "detail"]
    assert beats.set_index("beat_id").loc["open"].geometry.area == pytest.approx(300 * 300)


def test_no_usable_feature_is_an_error():
    layer = gpd.GeoDataFrame({"beat_id": ["x"], "geometry": [shapely.Point(X0, Y0)]}, crs="EPSG:32616")
    with pytest.raises(InputError, match="none of its 1 features"):
        prepare_areas(layer, None, grid_m=100)


def test_missing_id_field_names_the_fields():
    layer = gpd.GeoDataFrame({"BEAT_NUM": ["1"], "geometry": [square(0, 0, 100)]}, crs="EPSG:32616")
    with pytest.raises(InputError, match=r"--beat-id FIELD \(fields in the file: BEAT_NUM\)"):
        prepare_areas(layer, None, grid_m=100)


@pytest.mark.parametrize("crs", CRS_CASES)
def test_user_blocks_go_to_the_beat_they_overlap_most(crs):
    beats = two_beats(crs)
    blocks = metric_frame(
        {
            "block_id": ["inside-a", "mostly-b", "outside"],
            "geometry": [square(10, 10, 100), square(370, 10, 100), square(2000, 2000, 50)],
        },
        crs,
    )
    _b, kept, notes = prepare_areas(beats, blocks)
    assert dict(zip(kept["block_id"], kept["beat_id"], strict=True)) == {"inside-a": "A", "mostly-b": "B"}
    assert notes[notes["action"] == "rejected"]["id"].tolist() == ["outside"]


def test_blocks_to_beats_tie_goes_to_lowest_beat_id():
    beats = metric_frame({"beat_id": ["B", "A"], "geometry": [square(100, 0, 100), square(0, 0, 100)]}, "EPSG:32616")
    blocks = metric_frame({"block_id": ["half"], "geometry": [square(50, 0, 100)]}, "EPSG:32616")
    assert blocks_to_beats(blocks, beats).tolist() == ["A"]


def test_grid_rejects_nonpositive_size():
    with pytest.raises(InputError, match="--grid-m"):
        blocks_from_grid(two_beats("EPSG:32616"), size_m=0)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".parquet", ".zip", ".shp"])
def test_read_layer_formats(tmp_path, suffix):
    beats = two_beats("EPSG:3435")
    path = tmp_path / f"beats{suffix}"
    if suffix == ".parquet":
        beats.to_parquet(path)
    elif suffix == ".zip":
        shp_dir = tmp_path / "shp"
        shp_dir.mkdir()
        beats.to_file(shp_dir / "beats.shp")
        with zipfile.ZipFile(path, "w") as zf:
            for part in shp_dir.iterdir():
                zf.write(part, part.name)
    else:
        beats.to_file(path)
    layer = read_layer(path)
    assert len(layer) == 2 and layer.crs.to_epsg() == 3435


def test_custom_esri_wkt_prj_without_epsg_code(tmp_path):
    wkt = (
        'PROJCS["Dept_Custom_TM",GEOGCS["GCS_North_American_1983",DATUM["D_North_American_1983",'
        'SPHEROID["GRS_1980",6378137.0,298.257222101]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]],'
        'PROJECTION["Transverse_Mercator"],PARAMETER["False_Easting",500000.0],PARAMETER["False_Northing",0.0],'
        'PARAMETER["Central_Meridian",-87.7],PARAMETER["Scale_Factor",0.9999],PARAMETER["Latitude_Of_Origin",41.0],'
        'UNIT["Meter",1.0]]'
    )
    beats = two_beats("EPSG:4326").to_crs(wkt)
    path = tmp_path / "custom.shp"
    beats.to_file(path)
    path.with_suffix(".prj").write_text(wkt)
    layer = read_layer(path)
    assert layer.crs.to_epsg() is None
    out, _blocks, _ = prepare_areas(layer, None, grid_m=200)
    assert out.crs.equals(layer.crs) and out.geometry.iloc[0].area == pytest.approx(400 * 400, rel=1e-3)


def test_file_without_crs_is_refused_unless_stated(tmp_path):
    beats = two_beats("EPSG:3435")
    path = tmp_path / "nocrs.shp"
    beats.to_file(path)
    path.with_suffix(".prj").unlink()
    with pytest.raises(CRSError, match="--crs"):
        read_layer(path)
    assert read_layer(path, crs="EPSG:3435").crs.to_epsg() == 3435


def test_stated_crs_contradicting_the_file_is_refused(tmp_path):
    path = tmp_path / "beats.geojson"
    two_beats("EPSG:4326").to_file(path)
    with pytest.raises(CRSError, match=r"EPSG:4326.*EPSG:3435"):
        read_layer(path, crs="EPSG:3435")


@pytest.mark.parametrize("content", [b"", b"not,a,gis\nfile,at,all\n", b"\x00\x01\x02binary"])
def test_unreadable_files_say_so(tmp_path, content):
    path = tmp_path / "beats.geojson"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"beats\.geojson"):
        read_layer(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_layer(tmp_path / "nope.geojson")


def test_web_mercator_beats_are_analysed_in_their_utm_zone_and_the_summary_says_so():
    beats = two_beats("EPSG:3857")
    out, blocks, notes = prepare_areas(beats, None, grid_m=200)
    assert out.crs.to_epsg() == 32616
    assert len(blocks) == 8 and blocks.area.round().eq(40_000).all()  # 200 m on the ground, not 151 m
    (detail,) = notes.loc[notes["action"] == "reprojected", "detail"]
    assert "EPSG:3857" in detail and "distorts distances by up to 3" in detail and "EPSG:32616" in detail


def test_a_distorting_analysis_crs_in_the_settings_is_refused():
    with pytest.raises(CRSError, match=r"distorts distances by up to .*choose a low-distortion CRS"):
        prepare_areas(two_beats(), None, grid_m=200, analysis_crs="EPSG:3857")


def test_block_neighbours_stay_within_a_beat_and_step_over_a_street():
    from beatmap.areas import block_neighbours

    # Three 100 m blocks in a row with 20 m streets between them, and a fourth across a beat edge.
    boxes = [shapely.box(x, 0, x + 100, 100) for x in (0, 120, 240, 360)]
    blocks = gpd.GeoDataFrame(
        {"block_id": ["a", "b", "c", "d"], "beat_id": ["1", "1", "1", "2"]}, geometry=boxes, crs="EPSG:32616"
    )
    left, right = block_neighbours(blocks)
    assert list(zip(left.tolist(), right.tolist(), strict=True)) == [(0, 1), (1, 2)]
    left, right = block_neighbours(blocks, gap_m=10)
    assert len(left) == 0


def test_a_nul_in_a_geojson_id_is_refused_instead_of_merging_two_beats(tmp_path):
    """GIS readers cut text at NUL: 'B01\\u0000x' and 'B01\\u0000y' would load as one beat 'B01'."""
    path = tmp_path / "nul.geojson"
    path.write_text(two_beats(ids=("B01\x00x", "B01\x00y")).to_json())
    assert "\\u0000" in path.read_text()
    with pytest.raises(InputError, match="NUL character"):
        read_layer(path)


def _with_nul(path, ids):
    """Put ``ids`` (which may hold NUL bytes) into the beat_id field of a GeoPackage or Shapefile written by GDAL.

    GDAL itself cuts text at NUL when writing, so the bytes are put in place afterwards, as another program would.
    """
    if path.suffix == ".gpkg":
        import sqlite3

        with sqlite3.connect(path) as conn:
            for fid, value in enumerate(ids, start=1):
                conn.execute("UPDATE nul SET beat_id = CAST(? AS TEXT) WHERE fid = ?", (value.encode(), fid))
        conn.close()
        return
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    header, width = int.from_bytes(data[8:10], "little"), int.from_bytes(data[10:12], "little")
    size = data[32 + 16]  # the first field (beat_id): its width
    for i, value in enumerate(ids):
        start = header + i * width + 1
        data[start : start + size] = value.encode().ljust(size, b" ")
    dbf.write_bytes(bytes(data))


@pytest.mark.parametrize("suffix", [".gpkg", ".shp"])
def test_a_nul_in_a_geopackage_or_shapefile_id_is_refused_naming_the_feature(tmp_path, suffix):
    """GDAL reads 'B01<NUL>x' and 'B01<NUL>y' as 'B01': the two beats would load as one without a word."""
    path = tmp_path / f"nul{suffix}"
    two_beats().to_file(path, **({"SPATIAL_INDEX": "NO"} if suffix == ".gpkg" else {}))  # no triggers to run
    _with_nul(path, ["B01\x00x", "B01\x00y"])
    layer = read_layer(path)
    assert layer["beat_id"].tolist() == ["B01", "B01"]  # what the reader gives: the cut is invisible here
    with pytest.raises(
        InputError,
        match=rf"nul{suffix}: beat features 1, 2 hold a NUL byte in the id field "
        r"'beat_id' \(feature 1 reads as 'B01'\).*Remove the NUL",
    ):
        prepare_areas(layer, None, grid_m=150, beats_source=str(path))
    _with_nul(path, ["B01", "B02\x00\x00"])  # NUL padding after the id cuts nothing: loads as B01, B02
    beats, _, _ = prepare_areas(read_layer(path), None, grid_m=150, beats_source=str(path))
    assert beats["beat_id"].tolist() == ["B01", "B02"]


def test_a_nul_in_a_zipped_shapefile_or_geoparquet_id_is_refused(tmp_path):
    shp = tmp_path / "nul.shp"
    two_beats().to_file(shp)
    _with_nul(shp, ["A", "B\x00x"])
    archive = tmp_path / "nul.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("nul.*"):
            if part != archive:
                zf.write(part, part.name)
    with pytest.raises(InputError, match=r"nul.zip: beat feature 2 hold"):
        prepare_areas(read_layer(archive), None, grid_m=150, beats_source=str(archive))
    parquet = tmp_path / "nul.parquet"
    two_beats(ids=("A", "B\x00x")).to_parquet(parquet)  # Parquet keeps the NUL: refused from the values read
    with pytest.raises(InputError, match=r"beat feature 2 hold a NUL byte"):
        prepare_areas(read_layer(parquet), None, grid_m=150, beats_source=str(parquet))


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson"])
def test_an_id_over_128_characters_is_refused_in_every_format(tmp_path, suffix):
    path = tmp_path / f"long{suffix}"
    two_beats(ids=("A", "B" * 129)).to_file(path)
    with pytest.raises(
        InputError,
        match=r"long\.\w+: beat feature 2 have ids in 'beat_id' longer than the 128 "
        r"characters beatmap keeps \(feature 2: 129 characters\)",
    ):
        prepare_areas(read_layer(path), None, grid_m=150, beats_source=str(path))
    blocks = tmp_path / f"blocks{suffix}"
    metric = two_beats("EPSG:32616").rename(columns={"beat_id": "block_id"})
    metric.assign(block_id=["b1", "x" * 200]).to_file(blocks)
    with pytest.raises(InputError, match=r"block feature 2 have ids in 'block_id' longer than the 128"):
        prepare_areas(two_beats(), read_layer(blocks), beats_source="b", blocks_source=str(blocks))


def test_a_shapefiles_deleted_records_are_not_counted_when_naming_a_nul_feature(tmp_path):
    path = tmp_path / "nul.shp"
    gpd.GeoDataFrame(
        {"beat_id": ["A", "B", "C"]}, geometry=[square(X0 + 400 * i, Y0, 400) for i in range(3)], crs="EPSG:32616"
    ).to_file(path)
    _with_nul(path, ["A", "B", "C\x00x"])
    dbf = path.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[int.from_bytes(data[8:10], "little")] = ord("*")  # the first record is deleted: the reader skips it
    dbf.write_bytes(bytes(data))
    assert read_layer(path)["beat_id"].tolist() == ["B", "C"]
    with pytest.raises(InputError, match=r"beat feature 2 hold a NUL byte"):
        prepare_areas(read_layer(path), None, grid_m=150, beats_source=str(path))


def test_a_nul_in_a_zipped_geopackage_or_geojson_id_is_refused(tmp_path):
    gpkg = tmp_path / "nul.gpkg"
    two_beats().to_file(gpkg, SPATIAL_INDEX="NO")  # no triggers to run
    _with_nul(gpkg, ["A", "B\x00x"])
    zipped = tmp_path / "gpkg.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.write(gpkg, "beats/nul.gpkg")
    with pytest.raises(InputError, match=r"gpkg.zip: beat feature 2 hold"):
        prepare_areas(read_layer(zipped), None, grid_m=150, beats_source=str(zipped))
    geojson = tmp_path / "clean.geojson"
    two_beats().to_file(geojson)
    text = geojson.read_text().replace('"B"', '"B\\u0000x"')
    zipped = tmp_path / "json.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("beats.geojson", text)
    with pytest.raises(InputError, match=r"json.zip \(beats.geojson\): holds a NUL"):
        read_layer(zipped)


def test_a_zip_holding_two_layers_or_none_is_refused_with_what_it_holds(tmp_path):
    for name in ("a", "b"):
        two_beats().to_file(tmp_path / f"{name}.gpkg")
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as zf:
        for name in ("a", "b"):
            zf.write(tmp_path / f"{name}.gpkg", f"{name}.gpkg")
    with pytest.raises(InputError, match=r"exactly one .*found: a.gpkg, b.gpkg"):
        read_layer(two)
    none = tmp_path / "none.zip"
    with zipfile.ZipFile(none, "w") as zf:
        zf.writestr("readme.txt", "beats")
    with pytest.raises(InputError, match=r"found: none"):
        read_layer(none)


@pytest.mark.parametrize("suffix", [".fgb", ".kml"])
def test_formats_whose_text_cannot_be_checked_are_refused_with_a_conversion(tmp_path, suffix):
    path = tmp_path / f"beats{suffix}"
    two_beats().to_file(path, driver="FlatGeobuf" if suffix == ".fgb" else "KML")
    with pytest.raises(InputError, match=rf"beats{suffix}: not a layer format beatmap reads .*ogr2ogr -f GPKG"):
        read_layer(path)
