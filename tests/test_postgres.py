"""The same store on PostgreSQL (the department-server option): portable SQL, same results as SQLite."""

from __future__ import annotations

import os
import uuid

import pandas as pd
import pytest
import sqlalchemy as sa

from beatmap import store
from beatmap.ingest import import_activity, load_areas
from beatmap.report import block_coverage, window_from_store
from tests.conftest import two_beats

SERVER = os.environ.get("BEATMAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url():
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    admin = sa.create_engine(SERVER, isolation_level="AUTOCOMMIT")
    name = f"beatmap_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {SERVER} on CI: {exc}")
        pytest.skip(f"no PostgreSQL server at {SERVER}")
    yield sa.engine.make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_import_and_coverage_match_sqlite(pg_url, tmp_path, settings):
    two_beats().to_file(tmp_path / "beats.geojson")
    rows = ["occurred_at,lat,lon,kind,officer_id"]
    rows += [f"2026-03-{d:02d}T10:00,41.87596,-87.63631,foot_patrol,O{d % 3}" for d in range(1, 21)]
    rows += ["2026-03-05T22:00,41.87689,-87.63150,enforcement,", "bad,41.87,-87.63,foot_patrol,"]
    (tmp_path / "a.csv").write_text("\n".join(rows) + "\n")
    now = pd.Timestamp("2026-04-01", tz="UTC")
    results, tables = {}, {}
    for name, url in {"postgresql": pg_url, "sqlite": str(tmp_path / "s.db")}.items():
        engine = store.open_store(url)
        assert engine.dialect.name == name
        load_areas(engine, tmp_path / "beats.geojson", settings=settings, grid_m=200)
        first = import_activity(engine, tmp_path / "a.csv", settings=settings, now=now)
        again = import_activity(engine, tmp_path / "a.csv", settings=settings, now=now)
        cov = block_coverage(engine, window=window_from_store(engine, settings=settings), settings=settings)
        span = store.activity_span(engine)
        results[name] = (first.to_dict()["imported"], again.duplicates, store.counts(engine), span)
        tables[name] = pd.DataFrame(cov.drop(columns="geometry"))
        engine.dispose()
    assert results["postgresql"] == results["sqlite"]
    pd.testing.assert_frame_equal(tables["postgresql"], tables["sqlite"])
    assert results["postgresql"][0] == 21 and results["postgresql"][3][0].tzinfo is not None
    assert tables["sqlite"]["visits"].sum() == 20
