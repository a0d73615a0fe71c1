"""Names shared by every module: activity kinds, flags and column names."""

from __future__ import annotations

FOOT_PATROL = "foot_patrol"
COMMUNITY_VISIT = "community_visit"
ENFORCEMENT = "enforcement"
OTHER = "other"

KINDS: tuple[str, ...] = (FOOT_PATROL, COMMUNITY_VISIT, ENFORCEMENT, OTHER)
#: Kinds that count as a non-enforcement visit.
NON_ENFORCEMENT: tuple[str, ...] = (FOOT_PATROL, COMMUNITY_VISIT)

ENFORCEMENT_ONLY = "enforcement_only"
UNVISITED = "unvisited"
RARELY_VISITED = "rarely_visited"
#: Flags in order of precedence: a block carries the first that applies.
FLAGS: tuple[str, ...] = (ENFORCEMENT_ONLY, UNVISITED, RARELY_VISITED)

# Canonical activity columns (the CSV contract).
OCCURRED_AT = "occurred_at"
ENDED_AT = "ended_at"
DURATION_MIN = "duration_min"
LAT = "lat"
LON = "lon"
KIND = "kind"
OFFICER_ID = "officer_id"
UNIT_ID = "unit_id"
SUBTYPE = "subtype"
SOURCE_ID = "source_id"
SELF_INITIATED = "self_initiated"
NOTES = "notes"
REPORTED_BEAT = "reported_beat"

REQUIRED_ACTIVITY_COLUMNS: tuple[str, ...] = (OCCURRED_AT, LAT, LON, KIND)
OPTIONAL_ACTIVITY_COLUMNS: tuple[str, ...] = (
    ENDED_AT,
    DURATION_MIN,
    OFFICER_ID,
    UNIT_ID,
    SUBTYPE,
    SOURCE_ID,
    SELF_INITIATED,
    NOTES,
    REPORTED_BEAT,
)
ACTIVITY_COLUMNS: tuple[str, ...] = REQUIRED_ACTIVITY_COLUMNS + OPTIONAL_ACTIVITY_COLUMNS

#: The longest id (beat, block, officer, unit, source id, feed, account name) beatmap keeps, on every database.
ID_MAX = 128
#: The longest free text (notes, subtypes) beatmap keeps, on every database.
TEXT_MAX = 4000

BEAT_ID = "beat_id"
BLOCK_ID = "block_id"
GEOMETRY = "geometry"

#: Columns of the per-block coverage table, in output order.
COVERAGE_COLUMNS: tuple[str, ...] = (
    BLOCK_ID,
    BEAT_ID,
    "foot_patrols",
    "community_visits",
    "visits",
    "enforcement",
    "days_visited",
    "last_visit",
    "officers",
    "enforcement_share",
    "flag",
    "flag_reason",
)

#: The roles an account can have (:data:`beatmap.accounts.ROLES`); here so the command line can offer them
#: without importing the accounts module.
ACCOUNT_ROLES = ("officer", "supervisor", "admin")

#: The ``status`` of a row of a coverage table: its beat is analysed, or left out of the analysis
#: (see :mod:`beatmap.exclusions`).
ANALYSED, NOT_ANALYSED = "analysed", "not analysed"
