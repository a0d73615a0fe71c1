"""The store: one SQL database behind everything (a SQLite file by default, PostgreSQL for a department server).

One concern a module:

- :mod:`~beatmap.store.tables`: the tables (SQLAlchemy Core) at the newest schema revision;
- :mod:`~beatmap.store.migrate` and ``migrations/``: schema versions (Alembic), checked on open;
- :mod:`~beatmap.store.engine`: the URL, connection settings, write transactions;
- :mod:`~beatmap.store.meta`: identity, version counter, analysis CRS;
- :mod:`~beatmap.store.areas`, :mod:`~beatmap.store.activity`, :mod:`~beatmap.store.audit`: reads and writes;
- :mod:`~beatmap.store.backup`: consistent copies and restores.

Times are stored in UTC and always come back time-zone aware.  Geometries are
stored as WKB in the analysis CRS, which the ``meta`` table records.
"""

from beatmap.schema import ID_MAX, TEXT_MAX
from beatmap.store.activity import (
    EVENT_COLUMNS,
    activity_span,
    add_batch,
    counts,
    existing_fingerprints,
    insert_events,
    insert_rejects,
    latest_batch,
    latest_times,
    read_event_locations,
    read_events,
    read_reject_places,
    read_rejects,
    set_batch_summary,
    update_assignments,
    update_reject_beats,
)
from beatmap.store.areas import (
    read_beats,
    read_blocks,
    read_map_features,
    read_streets,
    write_area_notes,
    write_areas,
    write_map_features,
    write_streets,
)
from beatmap.store.audit import ChainCheck, entry_hash, record_audit, verify_audit_chain
from beatmap.store.batches import (
    Retired,
    event_ids_by_fingerprint,
    get_batch,
    list_batches,
    live_batch_ids,
    read_current_rejects,
    record_skipped,
    retire_batches,
    same_file_batches,
    supersede_rejects,
)
from beatmap.store.block_index import read_block_index, write_block_index
from beatmap.store.engine import DEFAULT_DB, ENV_VAR, open_store, store_url, transaction
from beatmap.store.meta import (
    analysis_crs,
    bump_version,
    cache_key,
    get_meta,
    set_meta,
    store_identity,
    store_version,
)
from beatmap.store.tables import (
    UTCDateTime,
    area_notes,
    audit_log,
    batches,
    beats_table,
    block_index_table,
    blocks_table,
    events,
    map_features_table,
    meta,
    metadata,
    rejects_table,
    sessions_table,
    sign_in_failures,
    skipped_duplicates,
    streets_table,
    user_beats,
    users_table,
)

__all__ = [
    "DEFAULT_DB",
    "ENV_VAR",
    "EVENT_COLUMNS",
    "ID_MAX",
    "TEXT_MAX",
    "ChainCheck",
    "Retired",
    "UTCDateTime",
    "activity_span",
    "add_batch",
    "analysis_crs",
    "area_notes",
    "audit_log",
    "batches",
    "beats_table",
    "block_index_table",
    "blocks_table",
    "bump_version",
    "cache_key",
    "counts",
    "entry_hash",
    "event_ids_by_fingerprint",
    "events",
    "existing_fingerprints",
    "get_batch",
    "get_meta",
    "insert_events",
    "insert_rejects",
    "latest_batch",
    "latest_times",
    "list_batches",
    "live_batch_ids",
    "map_features_table",
    "meta",
    "metadata",
    "open_store",
    "read_beats",
    "read_block_index",
    "read_blocks",
    "read_current_rejects",
    "read_event_locations",
    "read_events",
    "read_map_features",
    "read_reject_places",
    "read_rejects",
    "read_streets",
    "record_audit",
    "record_skipped",
    "rejects_table",
    "retire_batches",
    "same_file_batches",
    "sessions_table",
    "set_batch_summary",
    "set_meta",
    "sign_in_failures",
    "skipped_duplicates",
    "store_identity",
    "store_url",
    "store_version",
    "streets_table",
    "supersede_rejects",
    "transaction",
    "update_assignments",
    "update_reject_beats",
    "user_beats",
    "users_table",
    "verify_audit_chain",
    "write_area_notes",
    "write_areas",
    "write_block_index",
    "write_map_features",
    "write_streets",
]
