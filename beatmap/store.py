"""The store: SQLAlchemy Core tables and the queries every view uses.

One SQL database holds beats, blocks, activity events, rejected rows and a log
of import batches.  SQLite (a file) is the default; any SQLAlchemy URL works,
and the SQL is kept portable so PostgreSQL serves a department server.

Times are stored in UTC and always come back time-zone aware.  Geometries are
stored as WKB in the analysis CRS, which the ``meta`` table records.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from beatmap.errors import StoreError
from beatmap.schema import BEAT_ID, BLOCK_ID, GEOMETRY

DEFAULT_DB = Path("data/beatmap.db")
ENV_VAR = "BEATMAP_DB"
#: SQLite allows 32766 bound parameters; stay well below for every backend.
_CHUNK = 900


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC that refuses naive input and returns aware values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if value.tzinfo is None:
            raise StoreError("refusing to store a time without a time zone; convert it to UTC first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))

beats_table = Table(
    "beats", metadata,
    Column(BEAT_ID, String(64), primary_key=True),
    Column("area_m2", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)

blocks_table = Table(
    "blocks", metadata,
    Column(BLOCK_ID, String(128), primary_key=True),
    Column(BEAT_ID, String(64), ForeignKey("beats.beat_id"), nullable=False, index=True),
    Column("area_m2", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)

batches = Table(
    "import_batches", metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("what", String(16), nullable=False),  # "areas" or "activity"
    Column("source", String(128), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),  # JSON: the counts printed to the user
)

events = Table(
    "events", metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(32), nullable=False, unique=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Column("row_number", Integer, nullable=True),
    Column("source", String(128), nullable=False),
    Column("source_id", String(128)),
    Column("occurred_at", UTCDateTime, nullable=False, index=True),
    Column("ended_at", UTCDateTime),
    Column("duration_min", Float),
    Column("kind", String(32), nullable=False, index=True),
    Column("subtype", String(128)),
    Column("officer_id", String(64)),
    Column("unit_id", String(64)),
    Column("self_initiated", Boolean),
    Column("notes", Text),
    Column("reported_beat", String(64)),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column(BLOCK_ID, String(128), index=True),
    Column(BEAT_ID, String(64), index=True),
    Column("snapped", Boolean, nullable=False, default=False),
    Column("distance_m", Float),
)

rejects_table = Table(
    "rejects", metadata,
    Column("reject_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(32), nullable=False, unique=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Column("source", String(128), nullable=False),
    Column("file_name", Text, nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),  # JSON object of the row's cells
)

area_notes = Table(
    "area_notes", metadata,
    Column("note_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Column("layer", String(16), nullable=False),
    Column("feature", Integer),
    Column("feature_id", String(128)),
    Column("action", String(16), nullable=False),
    Column("detail", Text, nullable=False),
)


audit_log = Table(
    "audit_log", metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(128), nullable=False),  # user name, or "cli:<os user>" for the command line
    Column("action", String(64), nullable=False, index=True),  # e.g. "import", "export", "visit.edit"
    Column("target", Text),  # what it acted on: a file, a beat, an event id
    Column("details", Text, nullable=False),  # JSON object
)

# The audit log is append-only in the database itself, not only in the code: these triggers refuse any
# UPDATE or DELETE (SQLite and PostgreSQL; created with the table and, for older stores, on open).
_AUDIT_GUARD_DDL = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION beatmap_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
        "CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION beatmap_audit_append_only()",
    ],
}


def _guard_audit_log(conn: Connection) -> None:
    for statement in _AUDIT_GUARD_DDL.get(conn.dialect.name, []):
        conn.exec_driver_sql(statement)


event.listen(audit_log, "after_create", lambda _table, conn, **_kw: _guard_audit_log(conn))

users_table = Table(
    "users", metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("email", String(256), unique=True),  # matches the single sign-on e-mail claim
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    Column("role", String(16), nullable=False),  # officer, supervisor, admin
    Column("all_beats", Boolean, nullable=False, default=False),
    Column("officer_id", String(64)),  # the officer_id of this person's activity records
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in", UTCDateTime),
)

# No foreign key to beats: loading areas again replaces every beat, and assignments outlive that.
user_beats = Table(
    "user_beats", metadata,
    Column("user_id", Integer, ForeignKey("users.user_id"), primary_key=True),
    Column(BEAT_ID, String(64), primary_key=True),
)


streets_table = Table(
    "streets", metadata,
    Column("segment_id", Integer, primary_key=True),  # 1..n in file order, after multi-lines are split
    Column("source_id", String(128)),  # the file's own id of the feature (street_id, OSM way id), if any
    Column("name", String(256)),
    # Bounds in the streets' CRS, to read only a beat's streets (not "xmin": PostgreSQL reserves it).
    Column("min_x", Float, nullable=False),
    Column("min_y", Float, nullable=False),
    Column("max_x", Float, nullable=False),
    Column("max_y", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)


def write_streets(conn: Connection, streets: gpd.GeoDataFrame) -> None:
    """Replace the street network (``source_id``, ``name``, LineStrings in a metric CRS)."""
    conn.execute(delete(streets_table))
    geoms = streets.geometry.to_numpy()
    bounds = shapely.bounds(geoms) if len(geoms) else []
    rows = [
        {"segment_id": i + 1, "source_id": sid, "name": name, "min_x": b[0], "min_y": b[1], "max_x": b[2],
         "max_y": b[3], "geom": shapely.to_wkb(g)}
        for i, (sid, name, g, b) in enumerate(zip(streets["source_id"], streets["name"], geoms, bounds, strict=True))
    ]
    for chunk in _chunks(rows, 5000):
        conn.execute(insert(streets_table), chunk)
    set_meta(conn, "streets_crs", CRS(streets.crs).to_wkt())


def read_streets(engine: Engine, *, bounds: tuple[float, float, float, float] | None = None) -> gpd.GeoDataFrame:
    """Street segments (``segment_id``, ``source_id``, ``name``, geometry) in the analysis CRS.

    ``bounds`` (xmin, ymin, xmax, ymax in the analysis CRS) keeps only the
    segments whose bounding box meets it.  Empty when no streets are loaded.
    """
    with engine.connect() as conn:
        wkt = get_meta(conn, "streets_crs")
        query = select(streets_table.c.segment_id, streets_table.c.source_id, streets_table.c.name,
                       streets_table.c.geom).order_by(streets_table.c.segment_id)
        crs = CRS.from_wkt(wkt) if wkt else analysis_crs(engine)
        if bounds is not None and crs is not None:
            target = analysis_crs(engine)
            if target is not None and not CRS(target).equals(crs):
                bounds = tuple(gpd.GeoSeries([shapely.box(*bounds)], crs=target).to_crs(crs).total_bounds)
            xmin, ymin, xmax, ymax = bounds
            query = query.where(streets_table.c.max_x >= xmin, streets_table.c.min_x <= xmax,
                                streets_table.c.max_y >= ymin, streets_table.c.min_y <= ymax)
        rows = conn.execute(query).all()
    frame = _geo_frame(rows, ["segment_id", "source_id", "name"], crs)
    target = analysis_crs(engine)
    return frame.to_crs(target) if target is not None and crs is not None and len(frame) else frame


def record_audit(conn: Connection, *, actor: str, action: str, target: str | None = None,
                 details: dict | None = None, at: datetime | None = None) -> None:
    """Append one entry to the audit log (inside the caller's transaction, so it commits with the act).

    ``at`` (aware) defaults to the clock.  There is no function to change or
    remove an entry, and the database refuses both.
    """
    conn.execute(insert(audit_log).values(at=at or datetime.now(UTC), actor=actor, action=action, target=target,
                                          details=json.dumps(details or {}, default=str)))


def store_url(db: str | os.PathLike | None = None) -> str:
    """The SQLAlchemy URL of the store: ``db``, else ``$BEATMAP_DB``, else ``data/beatmap.db``.

    A plain file path means a SQLite file.
    """
    value = str(db) if db is not None else os.environ.get(ENV_VAR) or str(DEFAULT_DB)
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser()}"


def open_store(db: str | os.PathLike | None = None, *, create: bool = True) -> Engine:
    """Open (and with ``create``, initialise) the store.

    Raises
    ------
    StoreError
        When the URL is malformed, the database cannot be reached, or (without
        ``create``) the store has not been initialised.
    """
    url = store_url(db)
    try:
        if url.startswith("sqlite:///"):
            path = Path(url.removeprefix("sqlite:///"))
            if not create and not path.exists():
                raise StoreError(f"no store at {path}; load data with `beatmap areas` and `beatmap import`, "
                                 "or build the demo city with `beatmap demo`.")
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        if create:
            metadata.create_all(engine)
            with engine.begin() as conn:
                _guard_audit_log(conn)
        else:
            with engine.connect() as conn:
                conn.execute(select(func.count()).select_from(meta))
    except ArgumentError as exc:
        raise StoreError(f"{url!r} is not a database URL; give a file path or e.g. postgresql+psycopg://host/db") from exc
    except OperationalError as exc:
        raise StoreError(f"cannot open the store at {_safe(url)}: {str(exc.orig).strip()}") from exc
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _safe(url: str) -> str:
    """A URL with any password hidden, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def get_meta(conn: Connection, key: str) -> str | None:
    """A value of the ``meta`` table, or None."""
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Set a value of the ``meta`` table."""
    if get_meta(conn, key) is None:
        conn.execute(insert(meta).values(key=key, value=value))
    else:
        conn.execute(update(meta).where(meta.c.key == key).values(value=value))


def bump_version(conn: Connection) -> None:
    """Mark the store as changed, so cached views recompute."""
    set_meta(conn, "version", str(int(get_meta(conn, "version") or 0) + 1))


def store_version(engine: Engine) -> int:
    """A counter that grows with every change to the store (a cache key)."""
    with engine.connect() as conn:
        return int(get_meta(conn, "version") or 0)


def analysis_crs(engine: Engine) -> CRS | None:
    """The CRS the beats and blocks are stored in, or None before any areas are loaded."""
    with engine.connect() as conn:
        wkt = get_meta(conn, "analysis_crs")
    return CRS.from_wkt(wkt) if wkt else None


def add_batch(conn: Connection, *, what: str, source: str, file_name: str, summary: dict) -> int:
    """Record an import batch and return its id."""
    result = conn.execute(insert(batches).values(
        what=what, source=source, file_name=file_name, imported_at=datetime.now(UTC), summary=json.dumps(summary),
    ))
    return int(result.inserted_primary_key[0])


def set_batch_summary(conn: Connection, batch_id: int, summary: dict) -> None:
    """Store the final counts of a batch."""
    conn.execute(update(batches).where(batches.c.batch_id == batch_id).values(summary=json.dumps(summary)))


def write_areas(conn: Connection, beats: gpd.GeoDataFrame, blocks: gpd.GeoDataFrame) -> None:
    """Replace all beats and blocks (inside the caller's transaction)."""
    conn.execute(delete(blocks_table))
    conn.execute(delete(beats_table))
    beat_rows = [
        {BEAT_ID: b, "area_m2": float(g.area), "geom": shapely.to_wkb(g)}
        for b, g in zip(beats[BEAT_ID], beats.geometry, strict=True)
    ]
    block_rows = [
        {BLOCK_ID: k, BEAT_ID: b, "area_m2": float(g.area), "geom": shapely.to_wkb(g)}
        for k, b, g in zip(blocks[BLOCK_ID], blocks[BEAT_ID], blocks.geometry, strict=True)
    ]
    conn.execute(insert(beats_table), beat_rows)
    for chunk in _chunks(block_rows, 5000):
        conn.execute(insert(blocks_table), chunk)
    set_meta(conn, "analysis_crs", CRS(beats.crs).to_wkt())


def write_area_notes(conn: Connection, batch_id: int, notes: pd.DataFrame) -> None:
    """Keep the per-feature notes of an areas load."""
    rows = [
        {"batch_id": batch_id, "layer": r.layer, "feature": None if pd.isna(r.feature) else int(r.feature),
         "feature_id": None if r.id is None or pd.isna(r.id) else str(r.id), "action": r.action, "detail": r.detail}
        for r in notes.itertuples(index=False)
    ]
    if rows:
        conn.execute(insert(area_notes), rows)


def _geo_frame(rows: list, columns: list[str], crs: CRS | None) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(rows, columns=[*columns, "geom"])
    geometry = shapely.from_wkb(frame.pop("geom").to_numpy()) if len(frame) else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs=crs, index=frame.index), crs=crs)


def read_beats(engine: Engine) -> gpd.GeoDataFrame:
    """All beats (``beat_id``, ``area_m2``, geometry) in the analysis CRS, sorted by id."""
    crs = analysis_crs(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(beats_table).order_by(beats_table.c.beat_id)).all()
    return _geo_frame(rows, [BEAT_ID, "area_m2"], crs)


def read_blocks(engine: Engine, *, beat_id: str | None = None) -> gpd.GeoDataFrame:
    """Blocks (``block_id``, ``beat_id``, ``area_m2``, geometry) in the analysis CRS, sorted by id."""
    crs = analysis_crs(engine)
    query = select(blocks_table).order_by(blocks_table.c.block_id)
    if beat_id is not None:
        query = query.where(blocks_table.c.beat_id == beat_id)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return _geo_frame(rows, [BLOCK_ID, BEAT_ID, "area_m2"], crs)


def existing_fingerprints(conn: Connection, table: Table, fingerprints: Iterable[str]) -> set[str]:
    """Which of ``fingerprints`` the table already holds."""
    found: set[str] = set()
    for chunk in _chunks(list(fingerprints)):
        found.update(conn.execute(select(table.c.fingerprint).where(table.c.fingerprint.in_(chunk))).scalars())
    return found


_EVENT_FIELDS = ("fingerprint", "row_number", "source", "source_id", "occurred_at", "ended_at", "duration_min",
                 "kind", "subtype", "officer_id", "unit_id", "self_initiated", "notes", "reported_beat", "lat", "lon",
                 BLOCK_ID, BEAT_ID, "snapped", "distance_m")


def insert_events(conn: Connection, batch_id: int, records: pd.DataFrame) -> None:
    """Insert activity records (canonical columns plus assignment) for a batch.

    A bulk path through the driver's own ``executemany``: SQLAlchemy's per-row
    parameter processing took most of an import's time (measured: 7.3 of 10.4 s
    for 82,000 rows).  Times are written exactly as :class:`UTCDateTime` writes them.
    """
    frame = records.reindex(columns=list(_EVENT_FIELDS)).assign(batch_id=batch_id)
    columns = [*_EVENT_FIELDS, "batch_id"]
    values = []
    for name in columns:
        column = frame[name]
        if name in ("occurred_at", "ended_at"):
            utc = pd.to_datetime(column, utc=True)
            if conn.dialect.name == "sqlite":
                out = utc.dt.strftime("%Y-%m-%d %H:%M:%S.%f").astype(object)
            else:
                out = pd.Series(utc.dt.to_pydatetime(), index=column.index, dtype=object)
            values.append(out.where(utc.notna(), None).tolist())
        else:
            values.append(column.astype(object).where(column.notna(), None).tolist())
    rows = list(zip(*values, strict=True))
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join([marker] * len(columns))})"
    for chunk in _chunks(rows, 20000):
        conn.exec_driver_sql(sql, chunk)


def insert_rejects(conn: Connection, batch_id: int, rejects: pd.DataFrame, *, source: str, file_name: str) -> None:
    """Keep rejected rows with their reasons for a batch."""
    rows = [
        {"fingerprint": r.fingerprint, "batch_id": batch_id, "source": source, "file_name": file_name,
         "row_number": int(r.row), "reason": r.reason, "raw": json.dumps(r.raw, ensure_ascii=False)}
        for r in rejects.itertuples(index=False)
    ]
    for chunk in _chunks(rows, 10000):
        conn.execute(insert(rejects_table), chunk)


def read_event_locations(conn: Connection) -> pd.DataFrame:
    """``event_id``, ``lat``, ``lon``, ``reported_beat`` of every event (for re-assignment)."""
    query = select(events.c.event_id, events.c.lat, events.c.lon, events.c.reported_beat)
    return pd.DataFrame(conn.execute(query).all(), columns=["event_id", "lat", "lon", "reported_beat"])


def update_assignments(conn: Connection, assignments: pd.DataFrame) -> None:
    """Write ``block_id``, ``beat_id``, ``snapped``, ``distance_m`` for events by ``event_id``."""
    frame = assignments.astype(object).where(assignments.notna(), None)
    rows = [
        {"eid": r["event_id"], "b": r[BLOCK_ID], "t": r[BEAT_ID], "s": bool(r["snapped"]), "d": r["distance_m"]}
        for r in frame.to_dict(orient="records")
    ]
    statement = (
        update(events).where(events.c.event_id == bindparam("eid"))
        .values({BLOCK_ID: bindparam("b"), BEAT_ID: bindparam("t"), "snapped": bindparam("s"),
                 "distance_m": bindparam("d")})
    )
    for chunk in _chunks(rows, 10000):
        conn.execute(statement, chunk)


#: Columns :func:`read_events` returns by default (no notes, no free text).
EVENT_COLUMNS = ("event_id", "occurred_at", "kind", "subtype", "officer_id", BLOCK_ID, BEAT_ID, "snapped",
                 "duration_min")


def read_events(
    engine: Engine,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    beat_id: str | None = None,
    columns: Iterable[str] = EVENT_COLUMNS,
) -> pd.DataFrame:
    """Events with ``start <= occurred_at < end`` (UTC, aware), optionally in one beat.

    Returns
    -------
    DataFrame
        The requested columns; ``occurred_at`` as ``datetime64[ns, UTC]``.
    """
    cols = [events.c[c] for c in columns]
    query = select(*cols).order_by(events.c.event_id)
    if start is not None:
        query = query.where(events.c.occurred_at >= start)
    if end is not None:
        query = query.where(events.c.occurred_at < end)
    if beat_id is not None:
        query = query.where(events.c.beat_id == beat_id)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(columns))
    for name in ("occurred_at", "ended_at"):
        if name in frame:
            frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def activity_span(engine: Engine) -> tuple[datetime, datetime] | None:
    """First and last ``occurred_at`` in the store (UTC), or None when there is no activity."""
    with engine.connect() as conn:
        first, last = conn.execute(select(func.min(events.c.occurred_at), func.max(events.c.occurred_at))).one()
    if first is None:
        return None
    return first, last


def read_rejects(engine: Engine, *, batch_id: int | None = None, source: str | None = None) -> pd.DataFrame:
    """Rejected rows (of one batch or feed): ``batch_id``, ``source``, ``file_name``, ``row_number``, ``reason``,
    ``raw`` (JSON text)."""
    query = select(rejects_table.c.batch_id, rejects_table.c.source, rejects_table.c.file_name,
                   rejects_table.c.row_number, rejects_table.c.reason, rejects_table.c.raw).order_by(
        rejects_table.c.reject_id)
    if batch_id is not None:
        query = query.where(rejects_table.c.batch_id == batch_id)
    if source is not None:
        query = query.where(rejects_table.c.source == source)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(),
                            columns=["batch_id", "source", "file_name", "row_number", "reason", "raw"])


def counts(engine: Engine) -> dict[str, int]:
    """How many beats, blocks, events, rejects, batches and street segments the store holds."""
    tables = {"beats": beats_table, "blocks": blocks_table, "events": events, "rejects": rejects_table,
              "batches": batches, "streets": streets_table}
    with engine.connect() as conn:
        return {name: int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for name, t in tables.items()}


def latest_batch(engine: Engine, what: str) -> dict | None:
    """The last import batch of a kind (``"areas"``, ``"activity"``, ``"streets"``, ``"app"``), or None.

    Returns
    -------
    dict or None
        ``batch_id``, ``what``, ``source``, ``file_name``, ``imported_at``
        (UTC) and ``summary`` (the counts, as a dict).
    """
    query = select(batches).where(batches.c.what == what).order_by(batches.c.batch_id.desc()).limit(1)
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return None if row is None else {**row, "summary": json.loads(row["summary"])}


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction: all or nothing; driver errors become :class:`StoreError`."""
    try:
        with engine.begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        raise StoreError(f"the store refused the change, nothing was written: {exc.__class__.__name__}: "
                         f"{str(exc).splitlines()[0]}") from exc
