"""Several processes on one store at once: imports, officers saving visits, dashboard reads, a killed import.

Separate OS processes, not threads (each has its own connections, as the
dashboard's users and a nightly import do).  Runs on SQLite and, under
``$BEATMAP_TEST_DB``, on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from beatmap import store
from beatmap.report import read_activity
from beatmap.settings import Settings
from tests.conftest import ROOT, X0, Y0, load_two_beats, store_db

SETTINGS = Settings(timezone="America/Chicago")


def write_activity(path: Path, rows: int, *, seed: int) -> Path:
    """A CSV of ``rows`` distinct records spread over the two-beat test city in March 2026."""
    from pyproj import Transformer

    rng = np.random.default_rng(seed)
    to_wgs84 = Transformer.from_crs("EPSG:32616", "EPSG:4326", always_xy=True)
    lon, lat = to_wgs84.transform(X0 + rng.uniform(5, 795, rows), Y0 + rng.uniform(5, 395, rows))
    minutes = rng.integers(0, 30 * 24 * 60, rows)
    kinds = rng.choice(["foot_patrol", "community_visit", "enforcement"], rows)
    with path.open("w") as f:
        f.write("occurred_at,lat,lon,kind,source_id\n")
        for i in range(rows):
            m = int(minutes[i])
            f.write(
                f"2026-03-{1 + m // 1440:02d}T{m % 1440 // 60:02d}:{m % 60:02d},{lat[i]:.6f},{lon[i]:.6f},"
                f"{kinds[i]},s{seed}-{i}\n"
            )
    return path


def start(role: str, url: str, *args: object, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.concurrent_worker", role, url, *map(str, args), str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish(proc: subprocess.Popen[bytes], out: Path) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr.decode()[-3000:]
    result = json.loads(out.read_text())
    result["output"] = (stdout + stderr).decode()
    return result


def event_count(engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(store.events)).scalar_one())


def test_imports_visits_and_reads_at_once(tmp_path):
    url = store_db(tmp_path / "busy.db")
    engine = load_two_beats(store.open_store(url), tmp_path, settings=SETTINGS)
    files = [write_activity(tmp_path / f"feed{i}.csv", 25_000, seed=i) for i in range(4)]
    same = write_activity(tmp_path / "same.csv", 25_000, seed=99)
    procs = []
    for i, path in enumerate([*files, same, same]):
        procs.append(
            ("import", start("import", url, path, out=tmp_path / f"import{i}.json"), tmp_path / f"import{i}.json")
        )
    for officer in ("O1", "O2"):
        out = tmp_path / f"visits-{officer}.json"
        procs.append(("visits", start("visits", url, officer, 40, out=out), out))
    procs.append(("reads", start("reads", url, 8, out=tmp_path / "reads.json"), tmp_path / "reads.json"))
    results = [(role, finish(proc, out)) for role, proc, out in procs]

    everything = "\n".join(r["output"] + json.dumps(r["errors"]) for _, r in results)
    assert "locked" not in everything.lower() and "Traceback" not in everything
    assert all(not r["errors"] for _, r in results)
    imports = [r for role, r in results if role == "import"]
    # They overlapped: every import started before any had ended.
    assert max(r["started"] for r in imports) < min(r["ended"] for r in imports)
    visit_runs = [r for role, r in results if role == "visits"]
    assert all(r["saved"] == 40 for r in visit_runs)
    assert max(r["started"] for r in visit_runs) < min(r["ended"] for r in imports)
    assert next(r for role, r in results if role == "reads")["reads"] > 0
    # The two imports of one file: one imported it, the other counted it as duplicates.
    twins = sorted((r["summary"]["imported"], r["summary"]["duplicates"]) for r in imports[4:])
    assert twins == [(0, 25_000), (25_000, 0)]
    assert all(r["summary"]["imported"] == 25_000 for r in imports[:4])
    assert event_count(engine) == 5 * 25_000 + 2 * 40
    # The dashboard's cache, warmed by each import as it finished, holds every event.
    assert len(read_activity(engine, timezone=SETTINGS.timezone)) == 5 * 25_000 + 2 * 40
    engine.dispose()


@pytest.mark.parametrize("when", ["while writing", "after commit, during the cache"])
def test_an_import_killed_at_any_point_leaves_nothing_half_done(tmp_path, when):
    url = store_db(tmp_path / "killed.db")
    engine = load_two_beats(store.open_store(url), tmp_path, settings=SETTINGS)
    path = write_activity(tmp_path / "big.csv", 150_000, seed=5)
    before = store.counts(engine)
    proc = start("import", url, path, out=tmp_path / "killed.json")
    deadline = time.time() + 300
    if when == "while writing":
        # Kill once the import's transaction holds rows that are not committed: its batch is invisible to us.
        time.sleep(1.0)
        while time.time() < deadline and proc.poll() is None and store.counts(engine)["batches"] == before["batches"]:
            time.sleep(0.05)
            if _writing(engine, url):
                break
    else:
        while time.time() < deadline and proc.poll() is None and store.counts(engine)["batches"] == before["batches"]:
            time.sleep(0.01)
    assert proc.poll() is None, "the import finished before it could be killed; make the file bigger"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = store.counts(engine)
    if when == "while writing":
        assert after == before  # nothing of it
    else:
        assert after["events"] == before["events"] + 150_000 and after["batches"] == before["batches"] + 1
    # Whatever the kill left in the cache folder, the dashboard reads the store's truth.
    assert len(read_activity(engine, timezone=SETTINGS.timezone)) == after["events"]
    engine.dispose()


def _writing(engine, url: str) -> bool:
    """True once another connection is inside a write transaction (SQLite: the write lock is held)."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            # A transaction id is assigned at a transaction's first write.
            return bool(
                conn.exec_driver_sql(
                    "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL "
                    "AND pid <> pg_backend_pid() AND datname = current_database()"
                ).scalar()
            )
    import sqlite3

    probe = sqlite3.connect(str(engine.url.database), timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.rollback()
        return False
    except sqlite3.OperationalError:  # "database is locked": the import holds the write lock
        return True
    finally:
        probe.close()
