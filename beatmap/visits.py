"""Visits logged by officers from a phone: log, correct, delete, list.

A logged visit is an ordinary activity event (source ``"app"``), assigned to
a block by the same rules as an import (:func:`beatmap.assign.assign_points`)
and counted by every metric at once.  Each is saved in its own transaction
with an audit entry and a store version bump, so views update at once.

Rules:

* **Double submits** (a phone resending the same form) create no second
  visit: each form carries a ``client_token``, and a visit's fingerprint is
  the one an import from feed ``"app"`` with ``source_id = client_token``
  would have; a second submit returns the first visit's id.
* **Corrections**: an officer may edit or delete their own visit for
  ``visit_edit_hours`` (settings, default 24 h) after logging it; after that,
  and for anyone else's visit, only a supervisor can.  Given the beats the
  person works on (``beats``), neither may touch a visit on another beat or
  move one there.  Imported records are corrected at their source and
  imported again, not here.
* **Audit**: every log, edit and delete is in the audit log (actor, action
  ``visit.log`` / ``visit.edit`` / ``visit.delete``, the event id, and the
  values before and after).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import SupportsFloat, SupportsIndex

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from beatmap import schema as S
from beatmap import store
from beatmap.activity import id_fingerprint
from beatmap.assign import assign_points
from beatmap.clock import day_start
from beatmap.crs import WGS84, transform_xy
from beatmap.errors import AccessError, InputError, StoreError
from beatmap.index import OUTSIDE, BlockIndex, index_lookup
from beatmap.settings import Settings

#: The feed name of visits logged in the app.
APP_SOURCE = "app"
ROLES = ("officer", "supervisor")
#: Longest note kept, in characters.
MAX_NOTE = S.TEXT_MAX
#: A visit may be logged this far ahead of the server clock (phones' clocks drift).
_CLOCK_SKEW = timedelta(minutes=5)
_UNCHANGED = object()
#: Fields of a visit the audit log records before and after a change.
_AUDITED = (
    "officer_id",
    "occurred_at",
    "kind",
    "subtype",
    "duration_min",
    "notes",
    "lat",
    "lon",
    S.BLOCK_ID,
    S.BEAT_ID,
)


def app_fingerprint(client_token: str) -> str:
    """The events fingerprint of a visit logged with ``client_token`` (as if imported from feed "app")."""
    return id_fingerprint(APP_SOURCE, client_token)


@dataclass(frozen=True)
class BlockHit:
    """The block a point is assigned to (see :func:`block_at`).

    Attributes
    ----------
    block_id, beat_id : str
        The block and its beat.
    snapped : bool
        True when the point was moved from a street gap onto the block.
    distance_m : float
        How far it was moved, in metres (0 inside the block).
    """

    block_id: str
    beat_id: str
    snapped: bool
    distance_m: float


def block_at(
    engine: Engine | Connection,
    *,
    lat: float,
    lon: float,
    settings: Settings,
    beat_id: str | None = None,
    blocks: gpd.GeoDataFrame | None = None,
    index: BlockIndex | None = None,
    index_blocks: gpd.GeoDataFrame | None = None,
) -> BlockHit | None:
    """The block a point is assigned to, as a logged visit there would be.

    Parameters
    ----------
    engine : Engine or Connection
        The store (beats and blocks loaded), or a connection to read inside its transaction.
    lat, lon : float
        The point, in WGS84 degrees.
    settings : Settings
        ``snap_m`` and ``edge_tolerance_m``.
    beat_id : str, optional
        The beat the visit is on.  Only its blocks are searched, read with
        :func:`beatmap.store.read_blocks` (or taken from ``blocks``): a point
        on the beat's edge goes to this beat, and a point in a street gap
        snaps to its nearest block within ``snap_m``, unless the point lies
        inside another beat.  Default: every block, as an import assigns.
    blocks : GeoDataFrame, optional
        The blocks to search (``block_id``, ``beat_id``, polygons in the
        analysis CRS), e.g. a page's cached frame of the beat's blocks,
        instead of reading them from the store.
    index, index_blocks : BlockIndex and GeoDataFrame, optional
        The block index of every block of the store and those blocks (in the
        store's order, as :func:`beatmap.index.block_index_for` takes them):
        a point deep inside a block, or far from every block, is answered by
        look-up; the others by the rule over ``blocks``.  The answer is the same.

    Returns
    -------
    BlockHit or None
        ``block_id``, ``beat_id``, ``snapped`` (moved from a street gap) and
        ``distance_m``; None when the point is farther than ``snap_m`` from
        every block (of the beat, when ``beat_id`` is given) or inside
        another beat.

    Raises
    ------
    InputError
        When the point is not in degrees, or ``beat_id`` is not a beat of the store.
    StoreError
        When no beats or blocks are loaded.
    """
    _check_point(lat, lon)
    if index is not None and index_blocks is not None:
        x, y = transform_xy(np.array([float(lon)]), np.array([float(lat)]), WGS84, CRS(index_blocks.crs))
        answer = int(index_lookup(index, x, y)[0])
        if answer == OUTSIDE:
            return None
        if answer >= 0:  # inside that block, farther than the edge tolerance from any other block
            beat = str(index_blocks[S.BEAT_ID].iat[answer])
            if beat_id is not None and beat != beat_id:
                return None  # inside another beat's block: the beat's own blocks could only snap to it
            return BlockHit(
                block_id=str(index_blocks[S.BLOCK_ID].iat[answer]), beat_id=beat, snapped=False, distance_m=0.0
            )
    if blocks is None:
        blocks = store.read_blocks(engine, beat_id=beat_id)
    elif beat_id is not None:
        blocks = blocks[blocks[S.BEAT_ID] == beat_id]
    if blocks.empty:
        if beat_id is None or store.counts(engine)["blocks"] == 0:
            raise StoreError("no beats or blocks are loaded yet; load them with `beatmap areas` or `beatmap demo`.")
        raise InputError(f"beat {beat_id!r}: no such beat (or it has no blocks); choose one of the beats loaded.")
    point = pd.DataFrame({S.LAT: [lat], S.LON: [lon]})
    if beat_id is not None:  # on the beat's edge, the beat's own block wins the tie, as for an import naming it
        point[S.REPORTED_BEAT] = beat_id
    found = assign_points(point, blocks, settings=settings).iloc[0]
    if pd.isna(found[S.BLOCK_ID]):
        return None
    if (
        beat_id is not None
        and found["snapped"]
        and _in_another_beat(engine, blocks.crs, lat=lat, lon=lon, beat_id=beat_id, settings=settings)
    ):
        return None
    return BlockHit(
        block_id=str(found[S.BLOCK_ID]),
        beat_id=str(found[S.BEAT_ID]),
        snapped=bool(found["snapped"]),
        distance_m=float(found["distance_m"]),
    )


def _in_another_beat(
    engine: Engine | Connection, crs: object, *, lat: float, lon: float, beat_id: str, settings: Settings
) -> bool:
    """True when a point lies inside a beat other than ``beat_id`` and not on ``beat_id``'s edge.

    Such a point is in the other beat, not in a street gap of this one: it is not snapped onto this beat.
    """
    beats = store.read_beats(engine)
    x, y = transform_xy(np.array([lon]), np.array([lat]), WGS84, CRS(crs))
    here = shapely.Point(float(x[0]), float(y[0]))
    mine = beats[S.BEAT_ID] == beat_id
    if shapely.dwithin(beats.geometry[mine].to_numpy(), here, settings.edge_tolerance_m).any():
        return False
    return bool(shapely.contains(beats.geometry[~mine].to_numpy(), here).any())


def log_visit(
    engine: Engine,
    *,
    officer_id: str,
    lat: float,
    lon: float,
    kind: str,
    client_token: str,
    settings: Settings,
    subtype: str | None = None,
    occurred_at: datetime | None = None,
    duration_min: float | None = None,
    note: str | None = None,
    beat_id: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
) -> int:
    """Save a foot patrol or community visit logged by an officer; return its event id.

    Parameters
    ----------
    engine : Engine
        The store (beats and blocks loaded).
    officer_id : str
        Who logs it (the signed-in officer).
    lat, lon : float
        Where, in WGS84 degrees; assigned (snapped) to a block.
    kind : str
        ``"foot_patrol"`` or ``"community_visit"``.
    client_token : str
        A random id the form was created with; submitting it again returns
        the same visit.
    settings : Settings
        ``visit_subtypes``, the snap distance and the time zone.
    subtype : str, optional
        One of ``settings.visit_subtypes``.
    occurred_at : datetime, optional
        When (time-zone aware); default now.
    duration_min : float, optional
        Minutes on the block (0 to 24 h).
    note : str, optional
        Free text (at most :data:`MAX_NOTE` characters).
    beat_id : str, optional
        The beat the visit is on: the point is assigned among its blocks only
        (see :func:`block_at`).  Default: among every block, as an import.
        Which beats an officer may log on is checked by
        :func:`beatmap.access.log_visit_as`.
    actor : str, optional
        The account that logs the visit, for the audit log (default ``officer_id``).
    now : datetime, optional
        The clock (tests).

    Raises
    ------
    InputError
        When a value is not valid, or the point is on no block (of the beat);
        the message says which and how to fix it.
    """
    now = _now(now)
    when = now if occurred_at is None else occurred_at
    values = _checked(
        officer_id=officer_id,
        lat=lat,
        lon=lon,
        kind=kind,
        subtype=subtype,
        occurred_at=when,
        duration_min=duration_min,
        note=note,
        settings=settings,
        now=now,
    )
    check_backdating(engine, values["occurred_at"], settings=settings, now=now)
    token = str(client_token or "").strip()
    if not token or len(token) > 128:
        raise InputError(
            "client_token: give the form's random id (1 to 128 characters), so a double submit is recognised."
        )
    fingerprint = app_fingerprint(token)
    existing = _event_id_of(engine, fingerprint)
    if existing is not None:
        return existing
    values.update(_assignment(engine, lat=lat, lon=lon, settings=settings, beat_id=beat_id))
    record = {**values, "fingerprint": fingerprint, "source": APP_SOURCE, "source_id": token, "self_initiated": True}
    try:
        with store.transaction(engine) as conn:
            batch_id = _app_batch(conn, when=now, settings=settings)
            result = conn.execute(store.events.insert().values(batch_id=batch_id, **record))
            inserted = result.inserted_primary_key
            assert inserted is not None  # an INSERT of one row always has its primary key
            event_id = int(inserted[0])
            store.record_audit(
                conn,
                actor=actor or values["officer_id"],
                action="visit.log",
                target=str(event_id),
                details={"after": _audited(values)},
                at=now,
            )
            store.bump_version(conn)
    except StoreError as exc:
        if isinstance(exc.__cause__, IntegrityError):  # the same form saved at the same moment
            existing = _event_id_of(engine, fingerprint)
            if existing is not None:
                return existing
        raise
    return event_id


def edit_visit(
    engine: Engine,
    event_id: int,
    *,
    actor: str,
    role: str,
    settings: Settings,
    officer_id: str | None = None,
    kind: str | object = _UNCHANGED,
    subtype: str | object | None = _UNCHANGED,
    occurred_at: datetime | object = _UNCHANGED,
    duration_min: float | object | None = _UNCHANGED,
    note: str | object | None = _UNCHANGED,
    lat: float | object = _UNCHANGED,
    lon: float | object = _UNCHANGED,
    beats: Collection[str] | None = None,
    now: datetime | None = None,
) -> dict:
    """Correct a logged visit; fields not given stay as they are (give None to clear an optional one).

    A new place is assigned to its block again.  ``actor`` is the account
    that makes the change (the audit log names it); ``officer_id`` is that
    person's officer id (default ``actor``): an officer may change only visits
    logged under it.  ``beats`` are the beats ``actor`` works on (None: every
    beat): a visit on another beat, or a new place on another beat, is refused.

    Returns
    -------
    dict
        The visit's values after the change.

    Raises
    ------
    AccessError
        When ``role`` may not change this visit (see the module docstring).
    InputError
        When the visit does not exist, was imported rather than logged, or a
        new value is not valid.
    """
    now = _now(now)
    with store.transaction(engine) as conn:
        before = _permitted(
            conn,
            event_id,
            officer_id=officer_id or actor,
            role=role,
            settings=settings,
            now=now,
            verb="edit",
            beats=beats,
        )
        asked = {
            "kind": kind,
            "subtype": subtype,
            "occurred_at": occurred_at,
            "duration_min": duration_min,
            "note": note,
            "lat": lat,
            "lon": lon,
        }
        merged = {
            key: before["notes" if key == "note" else key] if value is _UNCHANGED else value
            for key, value in asked.items()
        }
        values = _checked(officer_id=before["officer_id"], settings=settings, now=now, **merged)
        if occurred_at is not _UNCHANGED and _differs(before.get("occurred_at"), values["occurred_at"]):
            check_backdating(conn, values["occurred_at"], settings=settings, now=now)
        if lat is not _UNCHANGED or lon is not _UNCHANGED:
            values.update(_assignment(conn, lat=values["lat"], lon=values["lon"], settings=settings))
            if beats is not None and values[S.BEAT_ID] not in beats:
                raise AccessError(
                    f"the new place of visit {event_id} is on beat {values[S.BEAT_ID]}, not one of "
                    "yours; a visit can only be moved within your beats."
                )
        changed = {k: v for k, v in values.items() if _differs(before.get(k), v)}
        if changed:
            conn.execute(update(store.events).where(store.events.c.event_id == event_id).values(**changed))
            store.record_audit(
                conn,
                actor=actor,
                action="visit.edit",
                target=str(event_id),
                details={
                    "role": role,
                    "before": _audited({k: before.get(k) for k in changed}),
                    "after": _audited(changed),
                },
                at=now,
            )
            store.bump_version(conn)
    return {**before, **changed}


def delete_visit(
    engine: Engine,
    event_id: int,
    *,
    actor: str,
    role: str,
    settings: Settings,
    officer_id: str | None = None,
    beats: Collection[str] | None = None,
    now: datetime | None = None,
) -> None:
    """Delete a logged visit (the audit log keeps what it was); the arguments as in :func:`edit_visit`.

    Raises
    ------
    AccessError
        When ``role`` may not change this visit.
    InputError
        When the visit does not exist or was imported rather than logged.
    """
    now = _now(now)
    with store.transaction(engine) as conn:
        before = _permitted(
            conn,
            event_id,
            officer_id=officer_id or actor,
            role=role,
            settings=settings,
            now=now,
            verb="delete",
            beats=beats,
        )
        conn.execute(delete(store.events).where(store.events.c.event_id == event_id))
        store.record_audit(
            conn,
            actor=actor,
            action="visit.delete",
            target=str(event_id),
            details={"role": role, "before": _audited(before)},
            at=now,
        )
        store.bump_version(conn)


def own_visits(engine: Engine, officer_id: str, since: datetime) -> pd.DataFrame:
    """An officer's foot patrols and community visits since a moment, newest first ("my visits this week").

    Returns
    -------
    DataFrame
        ``event_id``, ``occurred_at`` (UTC), ``kind``, ``subtype``,
        ``block_id``, ``beat_id``, ``duration_min``, ``notes``, ``source``
        (``"app"`` for visits logged in the app).
    """
    if since.tzinfo is None:
        raise InputError("since: give an aware time (with its time zone).")
    columns = ["event_id", "occurred_at", "kind", "subtype", S.BLOCK_ID, S.BEAT_ID, "duration_min", "notes", "source"]
    ev = store.events
    query = (
        select(*(ev.c[c] for c in columns))
        .where(and_(ev.c.officer_id == officer_id, ev.c.occurred_at >= since, ev.c.kind.in_(list(S.NON_ENFORCEMENT))))
        .order_by(ev.c.occurred_at.desc(), ev.c.event_id.desc())
    )
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=columns)
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    return frame


def week_start(now: datetime, *, settings: Settings) -> datetime:
    """The start of the Monday of ``now``'s week (its first valid instant), as an aware UTC time."""
    local = now.astimezone(settings.zone)
    monday: date = local.date() - timedelta(days=local.weekday())
    return day_start(monday, settings.timezone)


# --- helpers ----------------------------------------------------------------------------------------


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InputError("now: give an aware time (with its time zone).")
    return now


def _as_float(value: object) -> float:
    """``float(value)`` of a value not checked yet; raises TypeError or ValueError as :func:`float` does."""
    if isinstance(value, str | bytes | bytearray | SupportsFloat | SupportsIndex):
        return float(value)
    raise TypeError(f"float() argument must be a string or a real number, not {type(value).__name__!r}")


def _check_point(lat: object, lon: object) -> None:
    try:
        ok = -90 <= _as_float(lat) <= 90 and -180 <= _as_float(lon) <= 180
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InputError(
            f"place {lat},{lon}: give latitude (±90) and longitude (±180) in degrees; tap the map to place the visit."
        )


def published_until(connectable: Engine | Connection) -> date | None:
    """The last day of the latest published public map period (from the audit log), or None."""
    log = store.audit_log
    query = select(log.c.details).where(log.c.action == "publish").order_by(log.c.audit_id.desc()).limit(1)
    if isinstance(connectable, Engine):
        with connectable.connect() as conn:
            details = conn.execute(query).scalar_one_or_none()
    else:
        details = connectable.execute(query).scalar_one_or_none()
    end = json.loads(details).get("data_end") if details else None
    return date.fromisoformat(end) if end else None


def check_backdating(
    connectable: Engine | Connection, occurred_at: datetime, *, settings: Settings, now: datetime
) -> None:
    """Refuse a visit time more than ``settings.visit_backdate_days`` back, or inside a published period.

    A visit dated back far enough would change counts the public map has
    already published (and the figures of past meetings), so it is refused.

    Raises
    ------
    InputError
        Naming the earliest day allowed.
    """
    zone = settings.zone
    day = occurred_at.astimezone(zone).date()
    earliest = (now.astimezone(zone) - timedelta(days=settings.visit_backdate_days)).date()
    published = published_until(connectable)
    if published is not None and published + timedelta(days=1) > earliest:
        earliest = published + timedelta(days=1)
    if day < earliest:
        why = (
            f"the public map has published up to {published}"
            if published is not None and earliest == published + timedelta(days=1)
            else f"visits can be dated back at most {settings.visit_backdate_days} days (visit_backdate_days)"
        )
        raise InputError(
            f"The visit was not saved: its day {day} is before {earliest}, as {why}. Give the day "
            "it happened if it is later, or ask a supervisor to add it to the department's records."
        )


def _checked(
    *,
    officer_id: object,
    lat: object,
    lon: object,
    kind: object,
    subtype: object,
    occurred_at: object,
    duration_min: object,
    note: object,
    settings: Settings,
    now: datetime,
) -> dict:
    """The event columns of a visit, after checking every value; all problems in one message."""
    problems = []
    officer = str(officer_id or "").strip()
    if not officer or len(officer) > S.ID_MAX:
        problems.append(f"officer: sign in (or give your officer id, 1 to {S.ID_MAX} characters)")
    try:
        _check_point(lat, lon)
    except InputError as exc:
        problems.append(str(exc))
    if kind not in S.NON_ENFORCEMENT:
        problems.append(f"kind {kind!r}: choose {' or '.join(S.NON_ENFORCEMENT)}")
    if subtype is not None and subtype not in settings.visit_subtypes:
        problems.append(f"type {subtype!r}: choose one of {', '.join(settings.visit_subtypes)}")
    if not isinstance(occurred_at, datetime) or occurred_at.tzinfo is None:
        problems.append("time: give the time of the visit with its time zone")
    elif occurred_at > now + _CLOCK_SKEW:
        local = occurred_at.astimezone(settings.zone)
        problems.append(f"time {local:%Y-%m-%d %H:%M} is in the future; give when the visit happened")
    if duration_min is not None:
        try:
            minutes = _as_float(duration_min)
        except (TypeError, ValueError):
            minutes = float("nan")
        if not 0 < minutes <= 24 * 60:
            problems.append(f"duration {duration_min!r}: give minutes between 1 and 1440, or leave it empty")
    text = None if note is None else str(note).strip() or None
    if text is not None and len(text) > MAX_NOTE:
        problems.append(f"note: {len(text)} characters; keep it under {MAX_NOTE}")
    if problems:
        raise InputError("The visit was not saved:\n" + "\n".join(f"  - {p}" for p in problems))
    assert isinstance(occurred_at, datetime)  # checked above: a problem otherwise
    return {
        "officer_id": officer,
        "lat": _as_float(lat),
        "lon": _as_float(lon),
        "kind": kind,
        "subtype": subtype,
        "occurred_at": occurred_at.astimezone(UTC),
        "duration_min": None if duration_min is None else _as_float(duration_min),
        "notes": text,
    }


def _assignment(
    engine: Engine | Connection, *, lat: float, lon: float, settings: Settings, beat_id: str | None = None
) -> dict:
    """Block, beat, snapped and distance of a visit's place; refused when it is on no block (of the beat)."""
    found = block_at(engine, lat=lat, lon=lon, settings=settings, beat_id=beat_id)
    if found is None and beat_id is not None:
        raise InputError(
            f"place {lat:.6f},{lon:.6f} is outside beat {beat_id} (not on or within "
            f"{settings.snap_m:g} m of one of its blocks); place the visit on the block you visited, "
            "or choose that block's beat."
        )
    if found is None:
        raise InputError(
            f"place {lat:.6f},{lon:.6f} is not on any block of the beats (nothing within "
            f"{settings.snap_m:g} m); place the visit on the block you visited."
        )
    return asdict(found)


def _event_id_of(engine: Engine, fingerprint: str) -> int | None:
    with engine.connect() as conn:
        found = conn.execute(select(store.events.c.event_id).where(store.events.c.fingerprint == fingerprint))
        value = found.scalar_one_or_none()
    return None if value is None else int(value)


def _app_batch(conn: Connection, *, when: datetime, settings: Settings) -> int:
    """The import batch of the app's visits of a local day (one per day, created on first use)."""
    label = f"app visits {when.astimezone(settings.zone):%Y-%m-%d}"
    b = store.batches
    found = (
        conn.execute(
            select(b.c.batch_id).where(and_(b.c.what == APP_SOURCE, b.c.file_name == label)).order_by(b.c.batch_id)
        )
        .scalars()
        .first()
    )
    if found is not None:
        return int(found)
    return store.add_batch(
        conn, what=APP_SOURCE, source=APP_SOURCE, file_name=label, summary={"note": "visits logged in the app"}
    )


def _permitted(
    conn: Connection,
    event_id: int,
    *,
    officer_id: str,
    role: str,
    settings: Settings,
    now: datetime,
    verb: str,
    beats: Collection[str] | None,
) -> dict:
    """The visit's row, after checking that the person with ``officer_id`` in ``role``, working on ``beats``,
    may change it."""
    if role not in ROLES:
        raise InputError(f"role {role!r}: give one of {', '.join(ROLES)}.")
    row = conn.execute(select(store.events).where(store.events.c.event_id == event_id)).mappings().first()
    if row is None:
        raise InputError(f"visit {event_id} does not exist (it may have been deleted).")
    if row["source"] != APP_SOURCE:
        raise InputError(
            f"record {event_id} was imported from {row['source']!r}, not logged in the app; "
            "correct it in that system and import it again."
        )
    if beats is not None and row[S.BEAT_ID] not in beats:
        raise AccessError(
            f"visit {event_id} is on beat {row[S.BEAT_ID]}, not one of yours; a supervisor of that beat can {verb} it."
        )
    if role == "supervisor":
        return dict(row)
    if row["officer_id"] != officer_id:
        raise AccessError(f"visit {event_id} was logged by another officer; only a supervisor can {verb} it.")
    logged = (
        conn.execute(
            select(store.audit_log.c.at).where(
                and_(store.audit_log.c.action == "visit.log", store.audit_log.c.target == str(event_id))
            )
        )
        .scalars()
        .first()
    )
    limit = timedelta(hours=settings.visit_edit_hours)
    if logged is None or now - logged > limit:
        raise AccessError(
            f"visit {event_id} was logged more than {settings.visit_edit_hours:g} hours ago; "
            f"ask a supervisor to {verb} it."
        )
    return dict(row)


def _differs(old: object, new: object) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return not np.isclose(old, new)
    return old != new


def _audited(values: dict) -> dict:
    """The audited fields of a visit as JSON-safe values."""
    return {
        k: (v.isoformat() if isinstance(v, datetime) else v)
        for k, v in values.items()
        if k in _AUDITED and json.dumps(v, default=str) is not None
    }
