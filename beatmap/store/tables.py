"""The store's tables: SQLAlchemy Core definitions of the schema at the newest migration.

A new store is created from these definitions and stamped at the newest
revision; an existing store reaches the same schema through the migrations in
``beatmap/store/migrations`` (a test compares the two on SQLite and PostgreSQL).

Text columns are ``TEXT`` on every database; lengths are checked by the code
(:data:`beatmap.schema.ID_MAX`, :data:`beatmap.schema.TEXT_MAX`) so SQLite and
PostgreSQL accept the same rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

from beatmap.errors import StoreError
from beatmap.schema import BEAT_ID, BLOCK_ID


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC that refuses naive input and returns aware values."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None or value is pd.NaT:
            return None
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        if value.tzinfo is None:
            raise StoreError("refusing to store a time without a time zone; convert it to UTC first")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

meta = Table("meta", metadata, Column("key", Text, primary_key=True), Column("value", Text, nullable=False))

beats_table = Table(
    "beats",
    metadata,
    Column(BEAT_ID, Text, primary_key=True),
    Column("area_m2", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)

blocks_table = Table(
    "blocks",
    metadata,
    Column(BLOCK_ID, Text, primary_key=True),
    Column(BEAT_ID, Text, ForeignKey("beats.beat_id"), nullable=False, index=True),
    Column("area_m2", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)

batches = Table(
    "import_batches",
    metadata,
    Column("batch_id", Integer, primary_key=True, autoincrement=True),
    Column("what", Text, nullable=False),  # "areas", "activity", "streets", "app"
    Column("source", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("summary", Text, nullable=False),  # JSON: the counts printed to the user
    Column("imported_by", Text),  # account name, or "cli:<os user>"
    Column("content_hash", Text),  # SHA-256 of the file: the same file imported again supersedes this batch's rejects
    Column("superseded_by", Integer),  # the batch whose rejects replace this one's (same file again, or a replace)
    Column("undone_at", UTCDateTime),  # set when the batch was undone or replaced: its records are gone
    Column("undone_by", Text),
    sqlite_autoincrement=True,
)

events = Table(
    "events",
    metadata,
    # AUTOINCREMENT on SQLite: an id is never handed out twice, even after the newest row is deleted.
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", Text, nullable=False, unique=True),
    # Indexed: the dashboard's cache reads one batch's rows (an index in insertion order costs little).
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False, index=True),
    Column("row_number", Integer, nullable=True),
    Column("source", Text, nullable=False),
    Column("source_id", Text),
    Column("occurred_at", UTCDateTime, nullable=False, index=True),
    Column("ended_at", UTCDateTime),
    Column("duration_min", Float),
    Column("kind", Text, nullable=False),  # no index: no query selects by kind
    Column("subtype", Text),
    Column("officer_id", Text),
    Column("unit_id", Text),
    Column("self_initiated", Boolean),
    Column("notes", Text),
    Column("reported_beat", Text),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column(BLOCK_ID, Text),  # no index: no query selects by block
    Column(BEAT_ID, Text, index=True),  # one beat's coverage
    Column("snapped", Boolean, nullable=False, default=False),
    Column("distance_m", Float),
    sqlite_autoincrement=True,
)

rejects_table = Table(
    "rejects",
    metadata,
    Column("reject_id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", Text, nullable=False, index=True),  # the same row in several batches: one row per batch
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False, index=True),
    Column("source", Text, nullable=False),
    Column("file_name", Text, nullable=False),
    Column("row_number", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", Text, nullable=False),  # JSON object of the row's cells
    Column("lat", Float),  # the row's point (WGS84), when its coordinates could be read
    Column("lon", Float),
    Column("reported_beat", Text),  # the beat the row names
    # The beat of its point, else the one it reports; NULL (neither): shown to supervisors of all beats only.
    Column(BEAT_ID, Text, index=True),
    sqlite_autoincrement=True,
)

# Records a batch did not add because the store already held them (a later import of an overlapping file):
# undoing the batch that added them moves them to the earliest such batch instead of losing them.
skipped_duplicates = Table(
    "skipped_duplicates",
    metadata,
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), primary_key=True),
    Column("event_id", Integer, ForeignKey("events.event_id"), primary_key=True, index=True),
)

area_notes = Table(
    "area_notes",
    metadata,
    Column("note_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False),
    Column("layer", Text, nullable=False),
    Column("feature", Integer),
    Column("feature_id", Text),
    Column("action", Text, nullable=False),
    Column("detail", Text, nullable=False),
    sqlite_autoincrement=True,
)

# The block index of the loaded areas (beatmap.index), keyed by their identity (beatmap.index.blocks_key).
block_index_table = Table(
    "block_index",
    metadata,
    Column("areas_key", Text, primary_key=True),
    Column("format", Text, nullable=False),
    Column("edge_tolerance_m", Float, nullable=False),
    Column("snap_m", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),  # NumPy .npz bytes (beatmap.index.index_to_bytes)
)

# GPS presence (beatmap.tracks): whole seconds per block, UTC hour, unit, officer, mode and purpose, per import batch.
presence_table = Table(
    "presence",
    metadata,
    Column("presence_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False, index=True),
    Column(BLOCK_ID, Text),  # missing: time outside every block
    Column("hour", UTCDateTime, nullable=False, index=True),  # start of the UTC hour
    Column("unit_id", Text),
    Column("officer_id", Text),
    Column("mode", Text, nullable=False),  # foot, vehicle
    Column("purpose", Text, nullable=False),  # enforcement, non_enforcement
    Column("seconds", BigInteger, nullable=False),
    sqlite_autoincrement=True,
)

# Which devices were credited non-enforcement time on a block in a local week (Monday to Sunday, as the public
# map's periods), per import batch: the public map's three-device rule counts distinct devices from it
# (presence rows keep units and officers, not devices).  Weeks, not days: a device back on its beat every day
# is one row a week, not seven.
presence_devices = Table(
    "presence_devices",
    metadata,
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), primary_key=True),
    Column(BLOCK_ID, Text, primary_key=True),
    Column("week", Text, primary_key=True),  # the local week's Monday, ISO
    Column("device_id", Text, primary_key=True),
)

# One row per ping file imported: its content hash makes a second import of the same file change nothing.
ping_files = Table(
    "ping_files",
    metadata,
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), primary_key=True),
    Column("content_hash", Text, nullable=False, unique=True),
    Column("rows", Integer, nullable=False),
    Column("used", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("first_ping", UTCDateTime),
    Column("last_ping", UTCDateTime),
    Column("archive", Text),  # the Parquet archive of its pings (see beatmap.ping_archive); NULL once swept
)

# GPS data quality per device and local day (so "not visited" can be told from "no data").
device_days = Table(
    "device_days",
    metadata,
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), primary_key=True),
    Column("device_id", Text, primary_key=True),
    Column("day", Text, primary_key=True),  # local date, ISO
    Column("pings", Integer, nullable=False),
    Column("median_interval_s", Float),
    Column("gap_minutes", Float, nullable=False),
    Column("longest_silence_minutes", Float, nullable=False),
    Column("outside_share", Float, nullable=False),  # of credited time, outside every block
    Column("poor_accuracy_share", Float, nullable=False),  # of the day's rows, rejected for accuracy
)

# Stays on foot found in tracks (beatmap.tracks): supervisors only.
track_visits = Table(
    "track_visits",
    metadata,
    Column("visit_id", Integer, primary_key=True, autoincrement=True),
    Column("batch_id", Integer, ForeignKey("import_batches.batch_id"), nullable=False, index=True),
    Column("device_id", Text, nullable=False),
    Column("unit_id", Text),
    Column("officer_id", Text),
    Column(BLOCK_ID, Text, nullable=False),
    Column(BEAT_ID, Text),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Column("seconds", Integer, nullable=False),
    Column("enforcement_seconds", Integer, nullable=False),
    sqlite_autoincrement=True,
)

# Append-only: triggers (see :mod:`beatmap.store.triggers`) refuse UPDATE and DELETE in the database itself.
audit_log = Table(
    "audit_log",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", Text, nullable=False),  # account name, or "cli:<os user>" for the command line
    Column("action", Text, nullable=False, index=True),  # e.g. "import", "export", "visit.edit"
    Column("target", Text),  # what it acted on: a file, a beat, an event id
    Column("details", Text, nullable=False),  # JSON object
    # SHA-256 over the entry and the previous entry's hash (tamper evidence; see beatmap.store.audit.entry_hash).
    Column("entry_hash", Text),
    sqlite_autoincrement=True,
)

users_table = Table(
    "users",
    metadata,
    Column("user_id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("email", Text, unique=True),  # matches the single sign-on e-mail claim
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    Column("role", Text, nullable=False),  # officer, supervisor, admin
    Column("all_beats", Boolean, nullable=False, default=False),
    # The officer_id of this person's activity records: one account per officer, so no account can act as another.
    Column("officer_id", Text),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_sign_in", UTCDateTime),
    UniqueConstraint("officer_id", name="uq_users_officer_id"),
    sqlite_autoincrement=True,
)

# Failed sign-ins per typed name and client: a lockout holds for one client only, so an attacker in one place
# cannot lock an officer out everywhere; unknown names count too, so a lockout tells nothing about which names
# exist.  ``name_key`` is a keyed hash of the typed name (it may be a password typed into the wrong box).
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("name_key", Text, primary_key=True),
    Column("client", Text, primary_key=True),  # the address the server saw, or the trusted proxy header's
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UTCDateTime),
)

# No foreign key to beats: loading areas again replaces every beat, and assignments outlive that.
user_beats = Table(
    "user_beats",
    metadata,
    Column("user_id", Integer, ForeignKey("users.user_id"), primary_key=True),
    Column(BEAT_ID, Text, primary_key=True),
)

#: Signed-in sessions that outlive a page reload.  The browser holds a random token in a cookie; the store keeps
#: only its SHA-256.  Deleting a row ends the session (signing out, a new password, a disabled account).
sessions_table = Table(
    "sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.user_id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
)

streets_table = Table(
    "streets",
    metadata,
    Column("segment_id", Integer, primary_key=True),  # 1..n in file order, after multi-lines are split
    Column("source_id", Text),  # the file's own id of the feature (street_id, OSM way id), if any
    Column("name", Text),
    # Bounds in the streets' CRS, to read only a beat's streets (not "xmin": PostgreSQL reserves it).
    Column("min_x", Float, nullable=False),
    Column("min_y", Float, nullable=False),
    Column("max_x", Float, nullable=False),
    Column("max_y", Float, nullable=False),
    Column("geom", LargeBinary, nullable=False),
)

#: Water and parks drawn on the base map (beatmap.streets.load_map_features), polygons in the analysis CRS.
map_features_table = Table(
    "map_features",
    metadata,
    Column("feature_id", Integer, primary_key=True),  # 1..n in file order
    Column("kind", Text, nullable=False),  # water, park
    Column("name", Text),
    Column("geom", LargeBinary, nullable=False),
)


def now_utc() -> datetime:
    """The clock, aware, in UTC (one place, so stores and tests agree)."""
    return datetime.now(UTC)
