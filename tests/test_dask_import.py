"""The Dask engine of import-pings gives exactly the single-process answers, and its tasks send aggregates only."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import distributed
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beatmap import ping_archive as archive
from beatmap import presence, store
from beatmap.cli import main
from beatmap.crs import WGS84, transform_xy
from beatmap.dask_import import (
    CreditTask,
    credit_partition,
    import_pings_dask,
    input_files,
    read_parts,
    stage_part,
)
from beatmap.errors import InputError
from beatmap.index import block_index_for
from beatmap.pings import PingMapping
from beatmap.presence import import_pings
from beatmap.settings import Settings
from beatmap.store import presence as presence_store
from beatmap.tracks import TrackRules
from tests.conftest import X0, Y0, import_rows, load_two_beats, store_db

#: 23:40 local time (America/Chicago, UTC-6 in early March): tracks here run across local midnight.
T0 = pd.Timestamp("2026-03-03 05:40", tz="UTC")


@pytest.fixture(scope="module")
def client():
    """A small local cluster in this process (threads), shared by the tests of this file."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _lonlat(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return transform_xy(X0 + np.asarray(x, dtype=float), Y0 + np.asarray(y, dtype=float), "EPSG:32616", WGS84)


def _track(device: str, start: pd.Timestamp, xs: np.ndarray, ys: np.ndarray, step_s: int, unit: str = "") -> list:
    lon, lat = _lonlat(xs, ys)
    times = start + pd.to_timedelta(np.arange(len(xs)) * step_s, unit="s")
    return [(t.strftime("%Y-%m-%dT%H:%M:%SZ"), a, o, device, unit) for t, a, o in zip(times, lat, lon, strict=True)]


def hand_made_rows() -> list[tuple]:
    """Tracks with known shapes: a foot stay across midnight, a car, a gap, a duplicate, a jump, bad rows."""
    rng = np.random.default_rng(7)
    rows: list[tuple] = []
    # r1 stays 40 minutes on one block across local midnight (jitter ±10 m), then walks east through others.
    stay = 80
    rows += _track("r1", T0, 100 + rng.uniform(-10, 10, stay), 100 + rng.uniform(-10, 10, stay), 30, unit="U1")
    walk = np.linspace(100, 700, 300)
    rows += _track("r1", T0 + pd.Timedelta(seconds=30 * stay), walk, np.full(300, 300.0), 30, unit="U1")
    # c7: a car at 40 km/h back and forth, with a one-hour gap just after midnight, in vehicle mode.
    car = np.abs((np.arange(200) * 111) % 1600 - 800)
    rows += _track("c7", T0 + pd.Timedelta(minutes=5), car, np.full(200, 50.0), 10, unit="U2")
    rows += _track("c7", T0 + pd.Timedelta(minutes=5 + 33 + 60), car[::-1], np.full(200, 250.0), 10, unit="U2")
    # r2: a walker whose pings arrive in two files, with a duplicate and an impossible jump.
    rows += _track("r2", T0 - pd.Timedelta(hours=1), np.linspace(50, 350, 240), np.full(240, 150.0), 30)
    rows.append(rows[-5])  # duplicate
    lon, lat = _lonlat(np.array([90_000.0]), np.array([150.0]))
    rows.append(((T0 + pd.Timedelta(seconds=15)).strftime("%Y-%m-%dT%H:%M:%SZ"), lat[0], lon[0], "r2", ""))  # jump
    rows.append(("", 41.0, -88.0, "r2", ""))  # no time
    rows.append(("2026-03-03T06:00:00Z", "", "", "r2", ""))  # bad coordinates
    return rows


def write_csv(path: Path, rows: list[tuple]) -> Path:
    frame = pd.DataFrame(rows, columns=["ts", "lat", "lon", "device_id", "unit_id"])
    frame.to_csv(path, index=False)
    return path


def own(settings: Settings, tmp_path: Path, name: str) -> Settings:
    """The settings of one of the two stores: on PostgreSQL each keeps its ping archive in its own folder."""
    if not settings.ping_archive_dir:
        return settings
    return replace(settings, ping_archive_dir=str(tmp_path / name / "pings"))


def two_stores(tmp_path: Path, settings) -> tuple:
    engines = []
    for name in ("one", "dask"):
        folder = tmp_path / name
        folder.mkdir()
        engine = store.open_store(store_db(folder / "test.db"))
        load_two_beats(engine, folder, settings=settings)
        # Unit U1 is on a call from 23:50 local to 00:10; U2 on one without a clear time (default length).
        lon, lat = _lonlat(np.array([100.0]), np.array([100.0]))
        import_rows(
            engine,
            folder,
            [
                f"{(T0 + pd.Timedelta(minutes=10)).isoformat()},{lat[0]},{lon[0]},enforcement,U1,"
                f"{(T0 + pd.Timedelta(minutes=30)).isoformat()}",
                f"{(T0 + pd.Timedelta(minutes=20)).isoformat()},{lat[0]},{lon[0]},enforcement,U2,",
            ],
            settings=settings,
            header="occurred_at,lat,lon,kind,unit_id,ended_at",
            name="cad.csv",
        )
        engines.append(engine)
    return engines[0], engines[1]


def stored(engine) -> dict[str, pd.DataFrame]:
    """Everything an import-pings writes, in an order that does not depend on the engine."""
    presence = presence_store.read_presence(engine)
    visits = presence_store.read_track_visits(engine)
    days = presence_store.read_device_days(engine)
    rejects = store.read_rejects(engine, source="gps")
    return {
        "presence": presence.sort_values(list(presence.columns)).reset_index(drop=True),
        "visits": visits.sort_values(list(visits.columns)).reset_index(drop=True),
        "days": days.sort_values(list(days.columns)).reset_index(drop=True),  # a total order: batches share device-days
        "rejects": rejects[["file_name", "row_number", "reason"]]
        .sort_values(["file_name", "row_number"])
        .reset_index(drop=True),
    }


def assert_same(one, dask) -> None:
    a, b = stored(one), stored(dask)
    for name in a:
        pd.testing.assert_frame_equal(a[name], b[name], check_dtype=False, obj=name)


def _counts(summary) -> list:
    return [{k: v for k, v in f.to_dict().items() if k != "batch_id"} for f in summary.files]


def test_hand_made_tracks_give_the_same_aggregates_on_both_engines(tmp_path, settings, client):
    one, dask = two_stores(tmp_path, settings)
    rows = hand_made_rows()
    order = np.random.default_rng(3).permutation(len(rows))
    shuffled = [rows[i] for i in order]
    a = write_csv(tmp_path / "a.csv", shuffled[: len(rows) // 2])
    b = write_csv(tmp_path / "b.csv", shuffled[len(rows) // 2 :])
    single = import_pings(one, [a, b], settings=own(settings, tmp_path, "one"), chunk_rows=100)
    run = import_pings_dask(dask, [a, b], settings=own(settings, tmp_path, "dask"), client=client, partitions=4)
    assert single.presence_seconds > 3600 and single.track_visits >= 1 and single.enforcement_seconds > 0
    assert single.vehicle_seconds > 0 and single.gap_seconds >= 3000
    assert sum(f.duplicates for f in single.files) == 1
    assert run.summary.to_dict() | {"files": _counts(run.summary)} == single.to_dict() | {"files": _counts(single)}
    assert_same(one, dask)
    # The stay runs across local midnight: one visit, not two.
    visits = presence_store.read_track_visits(dask)
    midnight = pd.Timestamp("2026-03-03 06:00", tz="UTC")
    across = visits[(visits["device_id"] == "r1") & (visits["start"] < midnight) & (visits["end"] > midnight)]
    assert len(across) == 1
    assert across["seconds"].iloc[0] + across["enforcement_seconds"].iloc[0] >= 30 * 60

    again = import_pings_dask(dask, [a, b], settings=own(settings, tmp_path, "dask"), client=client)
    assert [f.already_imported for f in again.summary.files] == [f"batch {f.batch_id}" for f in run.summary.files]
    assert_same(one, dask)


def generated_pings(n_devices: int, pings_each: int, seed: int = 11) -> pd.DataFrame:
    """Random walkers and cars over the two-beat city for a few days, with duplicates and junk, shuffled."""
    rng = np.random.default_rng(seed)
    frames = []
    for d in range(n_devices):
        car = d % 3 == 0
        step = 10 if car else 30
        gaps = rng.random(pings_each) < 0.002  # some gaps of up to two hours
        dt = np.where(gaps, rng.integers(300, 7200, pings_each), step + rng.integers(-2, 3, pings_each))
        ts = T0 - pd.Timedelta(hours=30) + pd.to_timedelta(np.cumsum(np.maximum(dt, 1)), unit="s")
        speed = 11.0 if car else 1.3
        heading = np.cumsum(rng.normal(0, 0.3, pings_each))
        x = np.cumsum(np.cos(heading) * speed * step)
        y = np.cumsum(np.sin(heading) * speed * step)
        x = np.abs((x + d * 37) % 1600 - 800) + rng.normal(0, 5, pings_each)
        y = np.abs((y + d * 53) % 800 - 400) + rng.normal(0, 5, pings_each)
        lon, lat = _lonlat(x, y)
        frames.append(
            pd.DataFrame(
                {
                    "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "lat": lat,
                    "lon": lon,
                    "device_id": f"dev{d:03d}",
                    "unit_id": f"U{d % 4 + 1}",
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    extra = frame.sample(200, random_state=seed)  # duplicates
    frame = pd.concat([frame, extra], ignore_index=True)
    frame["lat"] = frame["lat"].astype(object)
    frame.loc[frame.sample(50, random_state=seed + 1).index, "lat"] = ""  # bad coordinates
    return frame.sample(frac=1.0, random_state=seed + 2).reset_index(drop=True)


def test_a_generated_dataset_in_many_partitions_gives_the_same_aggregates(tmp_path, settings, client):
    one, dask = two_stores(tmp_path, settings)
    frame = generated_pings(n_devices=24, pings_each=10_000)
    assert len(frame) > 200_000
    # A Parquet dataset of two files (several row groups each) and a partitioned CSV of three parts.
    data = tmp_path / "data"
    data.mkdir()
    parts = np.array_split(np.arange(len(frame)), 5)
    for k in range(2):
        table = pa.Table.from_pandas(frame.iloc[parts[k]].astype(str), preserve_index=False)
        pq.write_table(table, data / f"part-{k}.parquet", row_group_size=20_000)
    for k in range(2, 5):
        frame.iloc[parts[k]].to_csv(data / f"part-{k}.csv", index=False)
    files = input_files([data])
    assert len(files) == 5 and len(read_parts(files)) >= 8
    single = import_pings(one, files, settings=own(settings, tmp_path, "one"))
    run = import_pings_dask(dask, [data], settings=own(settings, tmp_path, "dask"), client=client, partitions=6)
    assert run.partitions == 6
    assert single.presence_seconds > 0 and single.track_visits > 0 and single.vehicle_seconds > 0
    assert run.summary.to_dict() | {"files": _counts(run.summary)} == single.to_dict() | {"files": _counts(single)}
    assert_same(one, dask)


def test_a_credit_task_returns_aggregate_rows_only(tmp_path, settings):
    engine = store.open_store(store_db(tmp_path / "test.db"))
    load_two_beats(engine, tmp_path, settings=settings)
    frame = generated_pings(n_devices=4, pings_each=5_000)
    path = write_csv(tmp_path / "p.csv", list(frame.itertuples(index=False, name=None)))
    part = read_parts([path])[0]
    staging = tmp_path / "staging"
    stats = stage_part(part, 0, str(staging), 2, PingMapping(), settings.timezone, settings.max_accuracy_m)
    assert stats.rows == len(frame) and len(stats.rejects) == 50 and stats.part_rows.sum() == len(frame) - 50
    # The read task's answer holds no ping columns: its pings went to the staging files.
    assert set(stats.rejects.columns) == {"file", "row", "reason", "device_id", "ts"}
    blocks = store.read_blocks(engine)
    index = block_index_for(engine, blocks, edge_tolerance_m=settings.edge_tolerance_m, snap_m=settings.snap_m)
    empty = pd.DataFrame({"batch_id": [], "archive": [], "first_ping": [], "last_ping": [], "used": []})
    task = CreditTask(
        folder=str(staging),
        archive_folder=str(tmp_path),
        reads=1,
        partitions=2,
        rules=TrackRules.from_settings(settings),
        settings=settings,
        rewrite=empty,
        context=empty,
        lo=0,
        hi=2**40,
    )
    used = rejected = 0
    for partition in (0, 1):
        result, written = credit_partition(partition, blocks, index, None, None, task)
        ping_columns = {"lat", "lon", "x", "y", "row", "accuracy_m", "speed_mps", "ts"}
        for name in ("presence", "visits", "days", "devices", "used"):
            table = getattr(result, name)
            assert not ping_columns & set(table.columns), name
        assert result.archive == []
        assert len(result.presence) + len(result.visits) + len(result.days) < stats.part_rows[partition] / 5
        assert [f for f, _ in written] == [0] and all(Path(p).exists() for _, p in written)
        used += int(result.used["used"].sum())
        rejected += len(result.rejects)
        assert set(result.rejects["reason"].str.split(":").str[0]) <= {
            "duplicate",
            "impossible jump (faster than max_speed_kmh, 120 km/h)",
        }
    assert used + rejected == stats.part_rows.sum()


def test_the_dask_engine_names_files_it_cannot_read(tmp_path):
    gpx = tmp_path / "walk.gpx"
    gpx.write_text("<gpx/>")
    with pytest.raises(InputError, match=r"walk\.gpx.*Parquet and CSV"):
        input_files([gpx])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty: no \.parquet or \.csv files"):
        input_files([empty])


def test_command_line_import_pings_on_a_scheduler_matches_the_single_engine(tmp_path, settings, client, capsys):
    one, dask = two_stores(tmp_path, settings)
    rows = hand_made_rows()
    path = write_csv(tmp_path / "p.csv", rows)
    # The roster puts r2 in unit U1 (on a call from 23:50 local) until 00:05 local, with an officer.
    roster = tmp_path / "roster.csv"
    roster.write_text("device_id,unit_id,officer_id,from,to\nr2,U1,O-17,2026-03-02 20:00,2026-03-03 00:05\n")
    urls = [str(e.url.render_as_string(hide_password=False)) for e in (one, dask)]
    configs = []
    for name in ("one", "dask"):  # each store's own settings (on PostgreSQL, its own ping archive folder)
        config = tmp_path / f"{name}.toml"
        folder = own(settings, tmp_path, name).ping_archive_dir
        config.write_text(
            '[department]\ntimezone = "America/Chicago"\n'
            + (f'[gps]\nping_archive_dir = "{folder}"\n' if folder else "")
        )
        configs.append(str(config))
    one.dispose()
    dask.dispose()
    given = [str(path), "--roster", str(roster), "--json"]
    assert main(["--db", urls[0], "--settings", configs[0], "import-pings", *given]) == 0
    single = json.loads(capsys.readouterr().out)
    address = client.scheduler.address
    assert (
        main(
            [
                "--db",
                urls[1],
                "--settings",
                configs[1],
                "import-pings",
                *given,
                "--engine",
                "dask",
                "--scheduler",
                address,
            ]
        )
        == 0
    )
    on_dask = json.loads(capsys.readouterr().out)
    for summary in (single, on_dask):
        summary["files"][0].pop("batch_id")
    assert on_dask == single
    assert single["files"][0]["duplicates"] == 1 and single["files"][0]["rejected"] == 3
    assert_same(store.open_store(urls[0]), store.open_store(urls[1]))
    officers = presence_store.read_presence(store.open_store(urls[1]))
    assert officers.loc[officers["officer_id"] == "O-17", "seconds"].sum() > 0
    assert main(["--db", urls[0], "--settings", configs[0], "import-pings", str(path), "--scheduler", address]) == 2
    assert "--engine dask" in capsys.readouterr().err
    assert (
        main(
            [
                "--db",
                urls[1],
                "--settings",
                configs[1],
                "import-pings",
                str(path),
                "--engine",
                "dask",
                "--partitions",
                "0",
            ]
        )
        == 2
    )
    assert "--partitions 0" in capsys.readouterr().err
    again = [
        "--db",
        urls[1],
        "--settings",
        configs[1],
        "import-pings",
        str(path),
        "--engine",
        "dask",
        "--scheduler",
        address,
    ]
    assert main(again) == 0
    assert "already imported" in capsys.readouterr().out


def test_the_block_index_is_scattered_to_the_workers_once(tmp_path, settings, client, monkeypatch):
    from beatmap.index import BlockIndex

    _, dask = two_stores(tmp_path, settings)
    path = write_csv(tmp_path / "p.csv", hand_made_rows())
    scattered: list = []
    real = client.scatter

    def spy(data, **kwargs):
        scattered.append((data, kwargs))
        return real(data, **kwargs)

    monkeypatch.setattr(client, "scatter", spy)
    run = import_pings_dask(dask, [path], settings=own(settings, tmp_path, "dask"), client=client, partitions=3)
    assert run.summary.presence_seconds > 0
    indexes = [(obj, kw) for data, kw in scattered for obj in data if isinstance(obj, BlockIndex)]
    assert len(indexes) == 1 and indexes[0][1].get("broadcast") is True


def test_a_call_open_at_the_first_parsed_ping_is_counted_as_one_process_counts_it(tmp_path, settings, client):
    # Device z's only two fixes, three days early, are impossible jumps: the first parsed fix is not used.
    # Unit U3's call was dispatched two days early and is open until after r3's walk: both engines read the
    # calls from the span of the parsed fixes, so both count it alike.
    one, dask = two_stores(tmp_path, settings)
    lon, lat = _lonlat(np.array([100.0]), np.array([100.0]))
    for engine, folder in ((one, "one"), (dask, "dask")):
        import_rows(
            engine,
            tmp_path / folder,
            [
                f"{(T0 - pd.Timedelta(days=2)).isoformat()},{lat[0]},{lon[0]},enforcement,U3,"
                f"{(T0 + pd.Timedelta(hours=1)).isoformat()}"
            ],
            settings=settings,
            header="occurred_at,lat,lon,kind,unit_id,ended_at",
            name="long_call.csv",
        )
    early = T0 - pd.Timedelta(days=3)
    rows = [
        *_track("z", early, np.array([100.0, 90_000.0]), np.array([100.0, 100.0]), 10),
        *_track("r3", T0, np.linspace(100, 300, 40), np.full(40, 100.0), 30, unit="U3"),
    ]
    path = write_csv(tmp_path / "p.csv", rows)
    single = import_pings(one, [path], settings=own(settings, tmp_path, "one"))
    run = import_pings_dask(dask, [path], settings=own(settings, tmp_path, "dask"), client=client, partitions=2)
    assert single.files[0].rejected == 2
    assert run.summary.to_dict() | {"files": _counts(run.summary)} == single.to_dict() | {"files": _counts(single)}
    assert_same(one, dask)


def archives(engine, settings: Settings) -> list[pd.DataFrame]:
    """Every kept raw ping archive of the store, in batch order, rows in an order that does not depend on the engine."""
    folder = archive.archive_dir(engine, settings)
    out = []
    for name in archive.archived_batches(engine)["archive"]:
        frame = archive.read_archive(folder / name)
        out.append(frame.sort_values(["device_id", "ts", "poor"]).reset_index(drop=True))
    return out


def test_a_later_import_archives_finds_earlier_duplicates_and_recomputes_as_one_process_does(
    tmp_path, settings, client
):
    one, dask = two_stores(tmp_path, settings)
    s_one, s_dask = own(settings, tmp_path, "one"), own(settings, tmp_path, "dask")
    frame = generated_pings(n_devices=6, pings_each=3_000)
    first, later = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :]
    # The later file overlaps the first in time and repeats 300 of its fixes; some fixes have poor accuracy.
    later = pd.concat([later, first.sample(300, random_state=5)], ignore_index=True).assign(accuracy_m="8")
    later.loc[later.sample(40, random_state=6).index, "accuracy_m"] = "900"
    a, b = tmp_path / "first.csv", tmp_path / "later.csv"
    first.to_csv(a, index=False)
    later.to_csv(b, index=False)
    now = T0 + pd.Timedelta(days=2)
    for path in (a, b):
        single = import_pings(one, [path], settings=s_one, now=now)
        run = import_pings_dask(dask, [path], settings=s_dask, client=client, partitions=3, now=now)
        assert run.summary.to_dict() | {"files": _counts(run.summary)} == single.to_dict() | {"files": _counts(single)}
        assert_same(one, dask)
    assert single.recomputed_batches and single.files[0].duplicates >= 300
    assert single.files[0].reject_reasons.get("accuracy worse than max_accuracy_m") == 40
    kept_one, kept_dask = archives(one, s_one), archives(dask, s_dask)
    assert len(kept_one) == len(kept_dask) == 2
    for x, y in zip(kept_one, kept_dask, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert int(kept_one[1]["poor"].sum()) == 40
    # Past retention the next import on either engine sweeps both archives; the aggregates stay.
    c = tmp_path / "c.csv"
    pd.DataFrame([("2027-01-01T00:00:00Z", 41.0, -88.0, "late", "")], columns=first.columns).to_csv(c, index=False)
    far = T0 + pd.Timedelta(days=400)
    import_pings(one, [c], settings=s_one, now=far)
    import_pings_dask(dask, [c], settings=s_dask, client=client, now=far)
    assert len(archives(one, s_one)) == len(archives(dask, s_dask)) == 1
    assert_same(one, dask)


def test_presence_spilled_past_a_tiny_bound_is_stored_as_when_held_in_memory(tmp_path, settings, client, monkeypatch):
    """Both engines, with their presence sums spilled to files past a bound of 100 rows, store what they store
    with every row held in memory: an import, then a second one whose fixes overlap it (recomputed with it)."""
    frame = generated_pings(n_devices=12, pings_each=3_000, seed=5)
    early = frame["ts"] < frame["ts"].sort_values().iloc[len(frame) // 2]
    first = write_csv(tmp_path / "first.csv", list(frame[early].itertuples(index=False, name=None)))
    second = write_csv(tmp_path / "second.csv", list(frame[~early].itertuples(index=False, name=None)))
    spills = []
    spill = presence.PresenceSum.spill

    def counted(self) -> None:
        if self._pending:  # by engine: the single one runs in this thread, the Dask tasks in the workers' threads
            spills.append("single" if threading.current_thread() is threading.main_thread() else "dask")
        spill(self)

    monkeypatch.setattr(presence.PresenceSum, "spill", counted)
    runs = {}
    default = presence.SPILL_ROWS
    for bound in (default, 100):
        monkeypatch.setattr(presence, "SPILL_ROWS", bound)
        monkeypatch.setattr(presence, "GROUP_PINGS", 3_000)  # several groups of devices in one process
        folder = tmp_path / f"bound_{bound}"
        folder.mkdir()
        one, dask = two_stores(folder, settings)
        spills.clear()
        for path in (first, second):
            single = import_pings(one, [path], settings=own(settings, folder, "one"), now=T0)
            run = import_pings_dask(
                dask, [path], settings=own(settings, folder, "dask"), client=client, partitions=5, now=T0
            )
            assert run.summary.to_dict() | {"files": _counts(run.summary)} == single.to_dict() | {
                "files": _counts(single)
            }
        assert single.recomputed_batches  # the second import computed the first again
        runs[bound] = (one, dask, {engine: spills.count(engine) for engine in ("single", "dask")})
        assert_same(one, dask)
    assert runs[default][2] == {"single": 0, "dask": 0}
    assert min(runs[100][2].values()) >= 3  # each engine spilled several times
    assert_same(runs[default][0], runs[100][0])
    assert_same(runs[default][0], runs[100][1])
    assert len(presence_store.read_presence(runs[100][0])) > 1_000
