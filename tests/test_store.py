"""The store itself: migrations from the store of 9107492, identity and counters, ids, databases, backups."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import threading
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from beatmap import accounts, store, visits
from beatmap.errors import AccessError, StoreError
from beatmap.report import read_activity
from beatmap.settings import Settings
from beatmap.store import migrate
from beatmap.store.backup import backup_store, restore_store
from beatmap.store.engine import connect
from tests.conftest import ROOT, import_rows, load_two_beats, store_db

#: The last commit before migrations: its stores have no alembic_version table.
BEFORE_MIGRATIONS = "9107492"

_OLD_VISIT = """
import sys
from datetime import UTC, datetime
from beatmap import store, visits
from beatmap.settings import Settings
engine = store.open_store(sys.argv[1])
blocks = store.read_blocks(engine)
point = blocks.geometry.iloc[0].representative_point()
import geopandas as gpd
lonlat = gpd.GeoSeries([point], crs=blocks.crs).to_crs(4326).iloc[0]
visits.log_visit(engine, officer_id="O101", lat=lonlat.y, lon=lonlat.x, kind="community_visit",
                 client_token="old-visit-1", settings=Settings(), now=datetime(2026, 10, 30, 15, tzinfo=UTC))
"""


@pytest.fixture(scope="module")
def old_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The beatmap of commit 9107492, unpacked from this repository's history."""
    folder = tmp_path_factory.mktemp("before_migrations")
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BEFORE_MIGRATIONS, "beatmap"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder


def _old(old_code: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(old_code)}
    subprocess.run([sys.executable, *args], cwd=old_code, env=env, check=True, capture_output=True, timeout=300)


def _snapshot(engine: sa.Engine) -> dict[str, object]:
    with engine.connect() as conn:

        def rows(sql: str) -> list[tuple]:
            return [tuple(r) for r in conn.exec_driver_sql(sql).all()]

        return {
            "events": rows(
                "SELECT event_id, fingerprint, occurred_at, kind, block_id, officer_id FROM events ORDER BY event_id"
            ),
            "users": rows("SELECT name, role, officer_id, password_hash, all_beats FROM users ORDER BY name"),
            "user_beats": rows("SELECT user_id, beat_id FROM user_beats ORDER BY user_id, beat_id"),
            "audit": rows("SELECT audit_id, at, actor, action, target, details FROM audit_log ORDER BY audit_id"),
            "blocks": rows("SELECT block_id, beat_id, area_m2 FROM blocks ORDER BY block_id"),
        }


def test_a_store_made_before_migrations_is_refused_then_upgrades_with_nothing_lost(old_code, tmp_path):
    url = store_db(tmp_path / "old.db")
    _old(old_code, "-m", "beatmap", "--db", url, "demo", "--seed", "5", "--dir", str(tmp_path / "demo"))
    _old(old_code, "-c", _OLD_VISIT, url)
    raw = connect(url)
    before = _snapshot(raw)
    assert len(before["events"]) > 1000 and len(before["users"]) == 5
    assert any(a[3] == "visit.log" for a in before["audit"])

    with pytest.raises(StoreError, match=r"behind .* run `beatmap db upgrade`"):
        store.open_store(url)
    assert migrate.upgrade(raw) == ("0001", migrate.head())
    after = _snapshot(raw)
    assert after == before
    engine = store.open_store(url)
    assert len(store.store_identity(engine)) == 36
    with raw.connect() as conn:  # the append-only guard survived the rebuild of the table
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), conn.begin():
            conn.exec_driver_sql("DELETE FROM audit_log")
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
    chain = store.verify_audit_chain(engine)  # 0004 chained the old entries, oldest first
    assert chain.first_bad is None and chain.entries == len(before["audit"]) and chain.last_hash
    with raw.connect() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"), conn.begin():
        conn.exec_driver_sql(
            "INSERT INTO audit_log (audit_id, at, actor, action, details) VALUES (1, CURRENT_TIMESTAMP, 'x', 'x', '{}')"
        )
    assert migrate.upgrade(raw) == (migrate.head(), migrate.head())  # a second upgrade changes nothing
    raw.dispose()
    engine.dispose()


def test_a_new_store_is_at_the_newest_revision_and_matches_the_tables(engine):
    with engine.connect() as conn:
        assert migrate.current(conn) == migrate.head()
        assert compare_metadata(MigrationContext.configure(conn), store.metadata) == []
    assert [r.revision for r in migrate.history()][:2] == ["0001", "0002"]


def test_cli_db_commands(tmp_path, capsys):
    from beatmap.cli import main

    db = store_db(tmp_path / "cli.db")
    assert main(["--db", db, "db", "current"]) == 0
    assert "empty" in capsys.readouterr().out
    assert main(["--db", db, "db", "upgrade"]) == 0
    assert f"to {migrate.head()}" in capsys.readouterr().out
    assert main(["--db", db, "db", "current"]) == 0
    assert "(the newest)" in capsys.readouterr().out
    assert main(["--db", db, "db", "history"]) == 0
    assert capsys.readouterr().out.startswith("0001  Baseline")


def test_each_store_has_its_own_identity_and_the_dashboard_cache_follows_it(tmp_path, settings):
    """Re-creating a store at the same path (delete it, build again) must not serve the old one's events."""
    path = tmp_path / "same.db"
    cache = tmp_path / "cache"
    first = load_two_beats(store.open_store(path), tmp_path, settings=settings)
    import_rows(first, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    assert len(read_activity(first, timezone=settings.timezone, cache_dir=cache)) == 1
    old_identity, old_version = store.cache_key(first)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    second = load_two_beats(store.open_store(path), tmp_path, settings=settings)
    rows = [f"2026-03-0{d}T10:00,41.87596,-87.63631,foot_patrol" for d in range(2, 5)]
    import_rows(second, tmp_path, rows, settings=settings, name="b.csv")
    identity, version = store.cache_key(second)
    assert version == old_version and identity != old_identity  # the counter alone could not tell them apart
    assert len(read_activity(second, timezone=settings.timezone, cache_dir=cache)) == 3
    assert len(read_activity(first, timezone=settings.timezone, cache_dir=cache)) == 3  # the same file, now


def test_a_damaged_cache_file_is_rebuilt(engine, tmp_path, settings):
    load_two_beats(engine, tmp_path, settings=settings)
    import_rows(engine, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    cache = tmp_path / "cache"
    assert len(read_activity(engine, timezone=settings.timezone, cache_dir=cache)) == 1
    files = list(cache.glob("activity-*/*.parquet"))  # the whole frame and the batch's part
    assert len(files) == 2
    for file in files:
        file.write_bytes(file.read_bytes()[:100])  # what a process killed while writing it used to leave
    assert len(read_activity(engine, timezone=settings.timezone, cache_dir=cache)) == 1
    assert not list(cache.glob("**/*.partial"))


def test_concurrent_version_bumps_all_count(engine):
    start = store.store_version(engine)
    barrier = threading.Barrier(8)

    def bump() -> None:
        barrier.wait()
        for _ in range(10):
            with store.transaction(engine) as conn:
                store.bump_version(conn)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.store_version(engine) == start + 80


def test_concurrent_wrong_passwords_all_count(engine):
    settings = Settings(sign_in_max_failures=20)
    accounts.add_user(engine, "ofc", role="officer", actor="cli:test", password="correct horse battery 1")
    now = datetime.now(UTC)
    barrier = threading.Barrier(6)

    def wrong() -> None:
        barrier.wait()
        for _ in range(3):
            with pytest.raises(AccessError):
                accounts.authenticate(engine, "ofc", "not the password", now=now, settings=settings)

    threads = [threading.Thread(target=wrong) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        failed = conn.execute(sa.select(store.users_table.c.failed_attempts)).scalar_one()
    assert failed == 18


def test_an_event_id_is_never_handed_out_twice(engine, tmp_path):
    """Delete the newest visit and log another: a new id (the edit window is looked up by id in the audit log)."""
    settings = Settings(timezone="America/Chicago")
    load_two_beats(engine, tmp_path, settings=settings)
    now = datetime(2026, 3, 10, 15, tzinfo=UTC)
    kwargs = {"officer_id": "O1", "lat": 41.87596, "lon": -87.63631, "kind": "foot_patrol", "settings": settings}
    first = visits.log_visit(engine, client_token="t1", now=now, **kwargs)
    visits.delete_visit(engine, first, actor="O1", role="officer", settings=settings, now=now)
    second = visits.log_visit(engine, client_token="t2", now=now + timedelta(minutes=1), **kwargs)
    assert second != first
    # The officer's own five-minute-old visit stays theirs to correct.
    visits.edit_visit(
        engine, second, actor="O1", role="officer", settings=settings, note="porch", now=now + timedelta(minutes=5)
    )


def test_other_databases_are_refused(tmp_path):
    with pytest.raises(StoreError, match="does not support mysql"):
        connect("mysql+pymysql://root@127.0.0.1/test")


def test_backup_and_restore_round_trip_on_sqlite(tmp_path, settings):
    engine = load_two_beats(store.open_store(tmp_path / "live.db"), tmp_path, settings=settings)
    import_rows(engine, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    accounts.add_user(engine, "chief", role="admin", actor="cli:test", password="correct horse battery 1")
    with engine.connect() as conn:  # a reader holds a snapshot open while the backup runs
        conn.exec_driver_sql("SELECT COUNT(*) FROM events").all()
        result = backup_store(engine, tmp_path / "backup.db")
    assert result.kind == "sqlite" and result.size_bytes > 0
    before = _snapshot(engine)
    import_rows(
        engine, tmp_path, ["2026-03-03T10:00,41.87596,-87.63631,foot_patrol"], settings=settings, name="later.csv"
    )
    target = str(engine.url.database)
    with pytest.raises(StoreError, match=r"holds data; .* --force"):
        restore_store(target, tmp_path / "backup.db")
    restore_store(target, tmp_path / "backup.db", force=True)
    assert _snapshot(store.open_store(target)) == before
    fresh = tmp_path / "fresh.db"
    restore_store(str(fresh), tmp_path / "backup.db")  # an empty target needs no --force
    assert _snapshot(store.open_store(fresh)) == before
    with pytest.raises(Exception, match="already exists"):
        backup_store(engine, tmp_path / "backup.db")


def test_backup_and_restore_round_trip_on_postgresql(tmp_path, settings):
    """pg_dump and pg_restore between two databases of the test server (run in both passes of the suite)."""
    server = os.environ.get("BEATMAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    names = [f"beatmap_backup_{os.getpid()}_{i}" for i in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    urls = [sa.make_url(server).set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        engine = load_two_beats(store.open_store(urls[0]), tmp_path, settings=settings)
        import_rows(engine, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
        result = backup_store(engine, tmp_path / "pg.dump")
        assert result.kind == "pg_dump"
        before = _snapshot(engine)
        engine.dispose()
        restore_store(urls[1], tmp_path / "pg.dump")
        restored = store.open_store(urls[1])
        assert _snapshot(restored) == before
        restored.dispose()
        with pytest.raises(StoreError, match="holds data"):
            restore_store(urls[1], tmp_path / "pg.dump")
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_text_and_dates_compare_the_same_on_both_databases(engine, tmp_path, settings):
    """A long subtype imports everywhere or nowhere; a row over the limits is rejected with the reason."""
    load_two_beats(engine, tmp_path, settings=settings)
    header = "occurred_at,lat,lon,kind,subtype,officer_id"
    rows = [
        f"2026-03-02T10:00,41.87596,-87.63631,foot_patrol,{'s' * 200},O1",
        f"2026-03-03T10:00,41.87596,-87.63631,foot_patrol,{'s' * 4001},O1",
        f"2026-03-04T10:00,41.87596,-87.63631,foot_patrol,x,{'o' * 129}",
    ]
    summary = import_rows(engine, tmp_path, rows, settings=settings, header=header)
    assert (summary.imported, summary.rejected) == (1, 2)
    reasons = store.read_rejects(engine)["reason"].tolist()
    assert "subtype is 4001 characters long, over the 4,000" in reasons[0]
    assert "officer_id is 129 characters long, over the 128" in reasons[1]
    events = store.read_events(engine, start=datetime(2026, 3, 2, tzinfo=UTC), end=datetime(2026, 3, 3, tzinfo=UTC))
    assert len(events) == 1 and events["occurred_at"].iloc[0] == pd.Timestamp("2026-03-02T16:00", tz="UTC")


def test_imports_and_visit_corrections_read_the_blocks_inside_their_own_transaction(
    engine, tmp_path, settings, monkeypatch
):
    """Areas read outside the import's transaction (or by a second connection inside it) could be replaced
    between the read and the write."""
    from beatmap import ingest

    load_two_beats(engine, tmp_path, settings=settings)
    binds: list[str] = []
    original = store.read_blocks

    def spy(bind, **kwargs):
        binds.append(type(bind).__name__)
        return original(bind, **kwargs)

    monkeypatch.setattr(store, "read_blocks", spy)
    import_rows(engine, tmp_path, ["2026-03-02T10:00,41.87596,-87.63631,foot_patrol"], settings=settings)
    assert binds and set(binds) == {"Connection"}
    assert ingest.store is store  # the spy is the function the import called
    now = datetime.now(UTC)
    kwargs = {"officer_id": "O1", "kind": "foot_patrol", "settings": settings}
    visit = visits.log_visit(engine, lat=41.87596, lon=-87.63631, client_token="c1", now=now, **kwargs)
    binds.clear()
    visits.edit_visit(
        engine, visit, actor="O1", role="officer", settings=settings, lat=41.87689, lon=-87.63150, now=now
    )
    assert binds == ["Connection"]


def test_demo_help_says_it_needs_an_empty_store():
    from beatmap.cli import build_parser

    text = " ".join(build_parser().format_help().split())
    demo_help = text[text.index("demo build the demo city") :][:120]
    assert "empty store" in demo_help and "replaces" not in demo_help


def test_a_store_behind_the_schema_can_be_backed_up_before_its_upgrade(old_code, tmp_path):
    """`beatmap db backup` is the step before `beatmap db upgrade`: it must work on the old store."""
    from beatmap.cli import main

    db = tmp_path / "old.db"
    _old(old_code, "-c", "import sys; from beatmap import store; store.open_store(sys.argv[1])", str(db))
    assert main(["--db", str(db), "db", "backup", str(tmp_path / "before.db")]) == 0
    assert (tmp_path / "before.db").stat().st_size > 0
    assert main(["--db", str(db), "db", "upgrade"]) == 0
