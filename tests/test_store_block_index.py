"""The saved block index: kept with the areas, found by their identity, rebuilt when missing; the migration."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command

from beatmap import index as block_index
from beatmap import store
from beatmap.index import (
    INDEX_FORMAT,
    block_index_for,
    blocks_key,
    forget_block_indexes,
    index_from_bytes,
)
from beatmap.store import migrate
from tests.conftest import import_rows, load_two_beats, store_db


@pytest.fixture
def url(tmp_path):
    """A fresh store: a SQLite file, or a PostgreSQL schema with $BEATMAP_TEST_DB."""
    return store_db(tmp_path / "s.db")


def kept_keys(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(store.block_index_table.c.areas_key)).scalars())


def test_areas_keep_their_index_and_an_import_uses_it(url, tmp_path, settings, monkeypatch):
    engine = store.open_store(url)
    load_two_beats(engine, tmp_path, settings=settings)
    blocks = store.read_blocks(engine)
    assert kept_keys(engine) == [blocks_key(blocks)]
    forget_block_indexes()

    def no_build(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the kept index should have been read, not built")

    monkeypatch.setattr(block_index, "build_block_index", no_build)
    found = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    assert found.blocks_key == blocks_key(blocks) and found.n_blocks == len(blocks)
    # A point on block A of the test city (an import whose every point is outside the beats now fails).
    summary = import_rows(engine, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    assert summary.imported == 1 and summary.outside == 0
    engine.dispose()


def test_a_missing_index_is_built_again_and_kept(url, tmp_path, settings):
    engine = store.open_store(url)
    load_two_beats(engine, tmp_path, settings=settings)
    with engine.begin() as conn:
        conn.execute(sa.delete(store.block_index_table))
    forget_block_indexes()
    blocks = store.read_blocks(engine)
    built = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    assert kept_keys(engine) == [built.blocks_key]
    data = store.read_block_index(
        engine, built.blocks_key, fmt=INDEX_FORMAT, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m
    )
    assert data is not None and index_from_bytes(data) is not None
    # Other distances are another index: none is kept for them.
    assert (
        store.read_block_index(engine, built.blocks_key, fmt=INDEX_FORMAT, edge_tolerance_m=2.0, snap_m=settings.snap_m)
        is None
    )
    engine.dispose()


def test_an_index_kept_in_the_previous_format_is_built_again(url, tmp_path, settings, monkeypatch):
    engine = store.open_store(url)
    load_two_beats(engine, tmp_path, settings=settings)
    blocks = store.read_blocks(engine)
    key = blocks_key(blocks)
    with engine.begin() as conn:  # as a store written before the sub-cells kept it
        store.write_block_index(
            conn,
            key,
            b"not this format",
            fmt="block-index-2",
            edge_tolerance_m=settings.edge_tolerance_m,
            snap_m=settings.snap_m,
        )
    forget_block_indexes()
    builds: list[int] = []
    build = block_index.build_block_index

    def counted(*args: object, **kwargs: object) -> block_index.BlockIndex:
        builds.append(1)
        return build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(block_index, "build_block_index", counted)
    found = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    assert builds == [1] and found.blocks_key == key and len(found.cut_cells) == len(found.sub) // 4**found.sub_depth
    with engine.connect() as conn:
        kept = conn.execute(sa.select(store.block_index_table.c.format)).scalars().all()
    assert kept == [INDEX_FORMAT]
    engine.dispose()


def test_loading_other_areas_replaces_the_kept_index(url, tmp_path, settings):
    engine = store.open_store(url)
    load_two_beats(engine, tmp_path, settings=settings)
    first = kept_keys(engine)
    load_two_beats(engine, tmp_path, settings=settings, grid_m=100)
    assert kept_keys(engine) != first and kept_keys(engine) == [blocks_key(store.read_blocks(engine))]
    engine.dispose()


def test_migration_adds_the_index_table_and_drops_unused_event_indexes(url):
    engine = sa.create_engine(store.store_url(url))
    with engine.begin() as conn:
        command.upgrade(migrate.config(conn), "0003")
    before = {ix["name"] for ix in sa.inspect(engine).get_indexes("events")}
    assert {"ix_events_kind", "ix_events_block_id"} <= before
    migrate.upgrade(engine)
    inspector = sa.inspect(engine)
    after = {ix["name"] for ix in inspector.get_indexes("events")}
    assert not {"ix_events_kind", "ix_events_block_id"} & after
    assert {"ix_events_occurred_at", "ix_events_beat_id", "ix_events_batch_id"} <= after
    assert {c["name"] for c in inspector.get_columns("block_index")} == {
        "areas_key",
        "format",
        "edge_tolerance_m",
        "snap_m",
        "data",
    }
    engine.dispose()
