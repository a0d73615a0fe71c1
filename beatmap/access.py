"""Who sees what: the one place the access rules live.

The dashboard builds its page list from :func:`pages_for`, and every page
passes the signed-in user to the functions here, which enforce the same rules
again on the data: a page that reached the wrong person would still get
nothing it may not show.

- The public (not signed in) sees only the published public map.
- An officer sees the blocks and flags of their beats, plans routes and logs
  their own visits on their beats; no per-officer breakdown, no other
  officer's records, no exports or imports.
- A supervisor sees everything for their beats (or all beats): per-officer
  breakdowns, imports, exports, publishing.
- An administrator manages accounts, sees the settings and the audit log,
  and no coverage data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Engine

from beatmap import audit, ingest, store, visits
from beatmap import schema as S
from beatmap.accounts import ADMIN, OFFICER, PUBLIC, ROLES, SUPERVISOR, User, require, role_of
from beatmap.errors import AccessError
from beatmap.ingest import AreasSummary, ImportSummary, Progress
from beatmap.metrics import Window, coverage_by_block, coverage_by_officer
from beatmap.settings import Settings

if TYPE_CHECKING:
    from beatmap.imports import UndoResult
    from beatmap.presence import PingImportSummary
    from beatmap.privacy import PublicAggregates
    from beatmap.routing.route import Route
    from beatmap.streets import StreetsLoad

__all__ = [
    "NO_BEATS",
    "PAGES",
    "block_coverage_for",
    "check_beat",
    "delete_visit_as",
    "edit_visit_as",
    "export",
    "export_audit_log",
    "gps_officers_for",
    "gps_presence_for",
    "gps_quality_for",
    "heat_points",
    "import_activity_as",
    "import_history_for",
    "import_pings_as",
    "load_areas_as",
    "load_streets_as",
    "log_visit_as",
    "may_change_city",
    "may_export",
    "may_open",
    "may_see_officers",
    "may_see_tracks",
    "officer_breakdown",
    "officer_id_of",
    "pages_for",
    "plan_route_as",
    "preview_publication_as",
    "publish_as",
    "read_audit_for",
    "rejects_for",
    "require",
    "require_all_beats",
    "restrict_to_beats",
    "route_file",
    "undo_import_as",
    "visible_beats",
]

#: Every page of the dashboard and the roles that may open it, in menu order.
PAGES: dict[str, tuple[str, ...]] = {
    "coverage": (OFFICER, SUPERVISOR),
    "route": (OFFICER, SUPERVISOR),
    "log_visit": (OFFICER, SUPERVISOR),
    "heatmap": (SUPERVISOR,),
    "import": (SUPERVISOR,),
    "publish": (SUPERVISOR,),
    "users": (ADMIN,),
    "audit": (ADMIN,),
    "settings": (ADMIN,),
    "public": (PUBLIC, *ROLES),
}
_DATA_ROLES = (OFFICER, SUPERVISOR)
#: What an officer or supervisor with no beat assigned is told.
NO_BEATS = "No beat is assigned to you yet; ask an administrator to assign your beats."


def pages_for(user: User | None) -> tuple[str, ...]:
    """The pages ``user`` may open, in menu order (the public map alone when not signed in)."""
    return tuple(page for page, roles in PAGES.items() if role_of(user) in roles)


def may_open(user: User | None, page: str) -> bool:
    """True when ``user`` may open ``page`` (a key of :data:`PAGES`)."""
    return role_of(user) in PAGES[page]


def may_see_officers(user: User | None) -> bool:
    """True when ``user`` may see per-officer figures (supervisors)."""
    return role_of(user) == SUPERVISOR


def may_export(user: User | None) -> bool:
    """True when ``user`` may download exports (supervisors)."""
    return role_of(user) == SUPERVISOR


def visible_beats(user: User | None, all_beats: Iterable[str]) -> list[str]:
    """The beats of ``all_beats`` whose data ``user`` may see, in the given order.

    Raises
    ------
    AccessError
        For the public and administrators, who see no coverage data.
    """
    user = require(user, *_DATA_ROLES, what="coverage data")
    if user.all_beats:
        return list(dict.fromkeys(all_beats))
    mine = set(user.beats)
    return [b for b in dict.fromkeys(all_beats) if b in mine]


def check_beat(user: User | None, beat_id: str, *, what: str) -> str:
    """Return ``beat_id`` when ``user`` may work on it (one of their beats, or they have all beats).

    Parameters
    ----------
    user : User or None
        An officer or supervisor.
    beat_id : str
        The beat asked for.
    what : str
        What is being refused, for the message (e.g. ``"walking routes"``).

    Raises
    ------
    AccessError
        For the public and administrators, and for a beat not assigned to the
        user; the message names the user's beats.
    """
    user = require(user, *_DATA_ROLES, what=what)
    if user.all_beats or beat_id in user.beats:
        return beat_id
    if not user.beats:
        raise AccessError(NO_BEATS)
    raise AccessError(
        f"{what}: beat {beat_id!r} is not one of your beats ({', '.join(user.beats)}); choose one "
        "of yours, or ask an administrator to assign it."
    )


def officer_id_of(user: User) -> str:
    """The ``officer_id`` a user's own visits are logged under: their officer id, else their account name."""
    return user.officer_id or user.name


def restrict_to_beats(user: User | None, frame: pd.DataFrame, *, column: str = S.BEAT_ID) -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` is a beat ``user`` may see."""
    return frame[frame[column].isin(visible_beats(user, frame[column].dropna().unique()))]


def _activity_on(activity: pd.DataFrame, blocks: pd.DataFrame) -> pd.DataFrame:
    return activity[activity[S.BLOCK_ID].isin(blocks[S.BLOCK_ID])]


def block_coverage_for(
    user: User | None,
    blocks: pd.DataFrame,
    activity: pd.DataFrame,
    *,
    window: Window,
    settings: Settings,
    neighbours: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`beatmap.metrics.coverage_by_block` of the blocks of the user's beats.

    Parameters
    ----------
    user : User or None
        An officer or supervisor.
    blocks : DataFrame
        ``block_id`` and ``beat_id`` of every block.
    activity : DataFrame
        A :func:`beatmap.metrics.local_activity` frame.
    neighbours : DataFrame, optional
        Neighbouring blocks (:func:`beatmap.metrics.neighbour_pairs`), for
        the ``neighbours`` flag rule.

    Returns
    -------
    DataFrame
        One row per visible block; without the ``officers`` column unless
        the user is a supervisor.
    """
    mine = restrict_to_beats(user, blocks)
    # coverage_by_block counts only the blocks it is given, so other beats' activity never enters.
    cov = coverage_by_block(mine, activity, window=window, settings=settings, neighbours=neighbours)
    return cov if may_see_officers(user) else cov.drop(columns="officers")


def officer_breakdown(
    user: User | None, activity: pd.DataFrame, blocks: pd.DataFrame, *, window: Window
) -> pd.DataFrame:
    """Per-officer presence (:func:`beatmap.metrics.coverage_by_officer`) on the user's beats; supervisors only."""
    require(user, SUPERVISOR, what="per-officer figures")
    return coverage_by_officer(_activity_on(activity, restrict_to_beats(user, blocks)), window=window)


def may_see_tracks(user: User | None, settings: Settings) -> bool:
    """Whether ``user`` may see an individual officer's GPS track: a supervisor, and only with
    ``show_officer_tracks = true`` in the settings (default false: GPS is shown per block, and per officer as
    totals to supervisors)."""
    return may_see_officers(user) and bool(settings.show_officer_tracks)


def gps_presence_for(engine: Engine, user: User | None, blocks: pd.DataFrame, *, window: Window) -> pd.DataFrame:
    """GPS minutes per block of the user's beats (:func:`beatmap.presence.presence_by_block`), from aggregates."""
    from beatmap.presence import presence_by_block

    mine = restrict_to_beats(require(user, *_DATA_ROLES, what="coverage data"), blocks)
    first, after = window.utc_bounds()
    found = presence_by_block(engine, start=first, end=after)
    return found[found[S.BLOCK_ID].isin(mine[S.BLOCK_ID])].reset_index(drop=True)


def gps_officers_for(engine: Engine, user: User | None, blocks: pd.DataFrame, *, window: Window) -> pd.DataFrame:
    """GPS minutes per officer and unit on the user's beats (totals, never a track); supervisors only."""
    from beatmap.presence import presence_by_officer

    who = require(user, SUPERVISOR, what="per-officer GPS presence")
    first, after = window.utc_bounds()
    mine = restrict_to_beats(who, blocks)
    return presence_by_officer(engine, start=first, end=after, block_ids=list(mine[S.BLOCK_ID]))


def gps_quality_for(
    engine: Engine, user: User | None, blocks: pd.DataFrame, *, window: Window, settings: Settings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GPS data quality for supervisors: usable GPS hours per beat of theirs, and the device-day figures
    (with ``silent``) of the window, so "not visited" can be told from "no data"."""
    from beatmap.presence import gps_hours_by_beat, quality_in_window

    who = require(user, SUPERVISOR, what="GPS data quality")
    first, after = window.utc_bounds()
    hours = gps_hours_by_beat(engine, start=first, end=after, blocks=restrict_to_beats(who, blocks))
    return hours, quality_in_window(engine, settings=settings, start=first, end=after)


def heat_points(
    user: User | None,
    blocks: pd.DataFrame,
    activity: pd.DataFrame,
    *,
    window: Window,
    settings: Settings,
) -> pd.DataFrame:
    """One point per visible block (``block_id``, ``lat``, ``lon``) with its ``visits`` and ``enforcement``.

    For the heat maps: supervisors only.  ``blocks`` needs ``lat`` and ``lon``
    of a point inside each block.
    """
    require(user, SUPERVISOR, what="the heat maps")
    cov = block_coverage_for(user, blocks, activity, window=window, settings=settings)
    points = blocks.loc[cov.index, [S.BLOCK_ID, "lat", "lon"]]
    return points.assign(visits=cov["visits"].to_numpy(), enforcement=cov["enforcement"].to_numpy())


def plan_route_as(
    engine: Engine,
    user: User | None,
    *,
    beat_id: str,
    start: tuple[float, float],
    minutes: float,
    settings: Settings,
    end: tuple[float, float] | None = None,
    dwell_min: float | None = None,
    seed: int | None = None,
    area_id: str | None = None,
) -> Route:
    """:func:`beatmap.routing.plan.route_from_store` for an officer or supervisor, on one of their beats.

    ``area_id`` targets one neglected area of the beat (:mod:`beatmap.neglect`).

    Raises
    ------
    AccessError
        When ``user`` may not plan routes, or ``beat_id`` is not one of their beats.
    """
    from beatmap.routing.plan import route_from_store  # the solver loads only when a route is planned

    check_beat(user, beat_id, what="walking routes")
    return route_from_store(
        engine,
        beat_id=beat_id,
        start=start,
        minutes=minutes,
        settings=settings,
        end=end,
        dwell_min=dwell_min,
        seed=seed,
        area_id=area_id,
    )


def log_visit_as(
    engine: Engine,
    user: User | None,
    *,
    beat_id: str,
    lat: float,
    lon: float,
    kind: str,
    client_token: str,
    settings: Settings,
    subtype: str | None = None,
    occurred_at: datetime | None = None,
    duration_min: float | None = None,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """:func:`beatmap.visits.log_visit` for an officer or supervisor, on one of their beats, under their id.

    The visit is logged under :func:`officer_id_of` the user, and its place
    is assigned among the blocks of ``beat_id`` only (a place outside the
    beat is refused).

    Raises
    ------
    AccessError
        When ``user`` may not log visits, or ``beat_id`` is not one of their beats.
    InputError
        As :func:`beatmap.visits.log_visit`.
    """
    user = require(user, *_DATA_ROLES, what="logging visits")
    check_beat(user, beat_id, what="logging visits")
    return visits.log_visit(
        engine,
        officer_id=officer_id_of(user),
        lat=lat,
        lon=lon,
        kind=kind,
        client_token=client_token,
        settings=settings,
        subtype=subtype,
        occurred_at=occurred_at,
        duration_min=duration_min,
        note=note,
        beat_id=beat_id,
        actor=user.name,
        now=now,
    )


def edit_visit_as(
    engine: Engine,
    user: User | None,
    event_id: int,
    *,
    settings: Settings,
    now: datetime | None = None,
    **changes: object,
) -> dict:
    """:func:`beatmap.visits.edit_visit` by a signed-in officer or supervisor, within their beats.

    ``changes`` are the fields to correct (``kind``, ``subtype``, ``note``, ...).
    An officer changes their own recent visits; a supervisor any visit logged
    in the app on their beats.

    Raises
    ------
    AccessError
        When ``user`` may not change this visit, or it is (or would move) outside their beats.
    """
    user = require(user, *_DATA_ROLES, what="correcting visits")
    return visits.edit_visit(
        engine,
        event_id,
        actor=user.name,
        officer_id=officer_id_of(user),
        role=user.role,
        settings=settings,
        beats=_beats_of(user),
        now=now,
        **changes,
    )


def delete_visit_as(
    engine: Engine, user: User | None, event_id: int, *, settings: Settings, now: datetime | None = None
) -> None:
    """:func:`beatmap.visits.delete_visit` by a signed-in officer or supervisor, within their beats."""
    user = require(user, *_DATA_ROLES, what="deleting visits")
    visits.delete_visit(
        engine,
        event_id,
        actor=user.name,
        officer_id=officer_id_of(user),
        role=user.role,
        settings=settings,
        beats=_beats_of(user),
        now=now,
    )


def _beats_of(user: User) -> tuple[str, ...] | None:
    """The beats ``user`` works on; None for every beat."""
    return None if user.all_beats else tuple(user.beats)


def export(engine: Engine, user: User | None, build: Callable[[], str], *, file_name: str, rows: int, what: str) -> str:
    """Build an export's text for a supervisor and record it in the audit log.

    Parameters
    ----------
    engine : Engine
        The store (for the audit log).
    user : User or None
        Who downloads it: a supervisor.
    build : callable
        Makes the file's text (only after the check passed).
    file_name, rows, what : str, int, str
        The file offered, how many rows it holds and what it shows (for the log).
    """
    user = require(user, SUPERVISOR, what="exports")
    text = build()
    audit.record(engine, actor=user.name, action="export", target=file_name, details={"what": what, "rows": rows})
    return text


def route_file(
    engine: Engine, user: User | None, build: Callable[[], str], *, beat_id: str, file_name: str, what: str
) -> str:
    """Make a walking route's file (GPX or card) for someone who may plan routes on ``beat_id``; audited.

    The route names the blocks to walk and when: who took one away is in the
    audit log (``route.download``).
    """
    check_beat(user, beat_id, what="walking routes")
    who = require(user, *_DATA_ROLES, what="walking routes")
    text = build()
    audit.record(
        engine, actor=who.name, action="route.download", target=file_name, details={"what": what, "beat_id": beat_id}
    )
    return text


def import_activity_as(
    engine: Engine,
    user: User | None,
    path: str | Path,
    *,
    settings: Settings,
    mapping_path: str | Path | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    file_name: str | None = None,
) -> ImportSummary:
    """:func:`beatmap.ingest.import_activity` for a supervisor, audited under their name.

    A supervisor of some beats adds records to their beats only: a row that
    falls on another beat, or outside every beat, is rejected with that
    reason (and counted among the rejects).  ``file_name`` is the upload's own
    name, stored and shown in place of its temporary copy ``path``.
    """
    who = require(user, SUPERVISOR, what="imports")
    return ingest.import_activity(
        engine,
        path,
        settings=settings,
        mapping_path=mapping_path,
        source=source,
        progress=progress or ingest.no_progress,
        actor=who.name,
        beats=_beats_of(who),
        file_name=file_name,
    )


def undo_import_as(engine: Engine, user: User | None, batch_id: int, *, settings: Settings | None = None) -> UndoResult:
    """:func:`beatmap.imports.undo_import` for a supervisor of every beat, audited under their name.

    Undoing removes records on any beat, so a supervisor of some beats may not.
    """
    from beatmap.imports import undo_import

    who = require_all_beats(user, what="undoing imports")
    return undo_import(engine, batch_id, actor=who.name, settings=settings)


def import_pings_as(
    engine: Engine,
    user: User | None,
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    mapping_path: str | Path | None = None,
    roster_path: str | Path | None = None,
    progress: Progress | None = None,
    file_names: Sequence[str] | None = None,
) -> PingImportSummary:
    """:func:`beatmap.presence.import_pings` for a supervisor of every beat (a device crosses beats, and its
    fixes can change presence computed before on any beat), audited under their name."""
    from beatmap.presence import import_pings

    who = require_all_beats(user, what="importing GPS pings")
    return import_pings(
        engine,
        paths,
        settings=settings,
        mapping_path=mapping_path,
        roster_path=roster_path,
        actor=who.name,
        file_names=file_names,
        progress=progress if progress is not None else ingest.no_progress,
    )


def load_areas_as(
    engine: Engine,
    user: User | None,
    beats_path: str | Path,
    *,
    settings: Settings,
    beat_id_field: str | None = None,
    crs: str | None = None,
    blocks_path: str | Path | None = None,
    block_id_field: str | None = None,
    grid_m: float | None = None,
    progress: Progress | None = None,
    exclude_beats: tuple[str, ...] = (),
) -> AreasSummary:
    """:func:`beatmap.ingest.load_areas` for a supervisor of all beats, audited under their name.

    Raises
    ------
    AccessError
        For anyone else: beats and blocks are the whole city's.
    """
    who = require_all_beats(user, what="loading beats and blocks")
    return ingest.load_areas(
        engine,
        beats_path,
        settings=settings,
        beat_id_field=beat_id_field,
        crs=crs,
        blocks_path=blocks_path,
        block_id_field=block_id_field,
        grid_m=grid_m,
        progress=progress or ingest.no_progress,
        actor=who.name,
        exclude_beats=exclude_beats,
    )


def preview_publication_as(engine: Engine, user: User | None, *, settings: Settings) -> PublicAggregates:
    """What publishing now would make public (:func:`beatmap.privacy.aggregates_from_store`), for a supervisor.

    Only public figures come back (the same a resident would see), so a supervisor of some beats may look.
    """
    from beatmap.privacy import aggregates_from_store

    require(user, SUPERVISOR, what="publishing")
    return aggregates_from_store(engine, settings=settings)


def publish_as(engine: Engine, user: User | None, out_dir: str | Path, *, settings: Settings) -> dict:
    """:func:`beatmap.publish.publish_snapshot` for a supervisor of every beat, audited under their name.

    Raises
    ------
    AccessError
        For anyone but a supervisor, and for a supervisor of some beats only: the public map covers every beat.
    """
    from beatmap.publish import publish_snapshot

    supervisor = require(user, SUPERVISOR, what="publishing")
    if not supervisor.all_beats:
        raise AccessError(
            "publishing: the public map covers every beat, and you supervise "
            f"{', '.join(supervisor.beats) or 'no beat'}; ask a supervisor of all beats to publish."
        )
    return publish_snapshot(engine, out_dir, settings=settings, actor=supervisor.name)


def may_change_city(user: User | None) -> bool:
    """True when ``user`` may load areas or streets and publish: a supervisor of all beats."""
    return role_of(user) == SUPERVISOR and user is not None and user.all_beats


def require_all_beats(user: User | None, *, what: str) -> User:
    """Return ``user`` when they are a supervisor of all beats; raise otherwise.

    Loading beats, blocks or streets and publishing act on the whole city, so a
    supervisor of some beats may not do them.
    """
    who = require(user, SUPERVISOR, what=what)
    if not who.all_beats:
        raise AccessError(
            f"Only a supervisor of all beats has access to {what}: it changes every beat, and your "
            f"beats are {', '.join(who.beats) or 'none'}. Ask a supervisor of all beats."
        )
    return who


def load_streets_as(engine: Engine, user: User | None, path: str | Path, *, crs: str | None = None) -> StreetsLoad:
    """:func:`beatmap.streets.load_streets` for a supervisor of all beats, audited under their name."""
    from beatmap.streets import load_streets

    who = require_all_beats(user, what="loading the street network")
    return load_streets(engine, path, crs=crs, actor=who.name)


def rejects_for(
    engine: Engine,
    user: User | None,
    *,
    source: str | None = None,
    batch_id: int | None = None,
) -> pd.DataFrame:
    """:func:`beatmap.store.read_rejects` as ``user`` may see them (supervisors).

    A supervisor of all beats sees every rejected row.  A supervisor of some
    beats sees the rows placed in their beats (the beat of the row's point,
    else the beat it reports; see :func:`beatmap.ingest.place_rejects`),
    whoever imported them; a row with no location and no reported beat, or
    rejected before rows were placed, is shown only to supervisors of all
    beats (it may hold any beat's officer ids and notes).
    """
    who = require(user, SUPERVISOR, what="rejected rows")
    return store.read_rejects(engine, source=source, batch_id=batch_id, beat_ids=_beats_of(who))


def import_history_for(engine: Engine, user: User | None, *, limit: int | None = None) -> pd.DataFrame:
    """The activity imports ``user`` may see: all for a supervisor of all beats, else those that touched their beats.

    An import touched a beat when it added records there or kept rejected rows
    placed there (see :func:`beatmap.store.list_batches`), whoever imported it.

    Returns
    -------
    DataFrame
        As :func:`beatmap.imports.list_imports` (``batch_id``, ``source``, ``file_name``, ``imported_at`` (UTC),
        who, counts and status), newest first.
    """
    from beatmap.imports import list_imports

    who = require(user, SUPERVISOR, what="import histories")
    return list_imports(engine, beat_ids=_beats_of(who), limit=limit).reset_index(drop=True)


def read_audit_for(
    engine: Engine,
    user: User | None,
    *,
    start: date | None = None,
    end: date | None = None,
    actor: str | None = None,
    action: str | None = None,
    timezone: str = "UTC",
    limit: int | None = None,
) -> pd.DataFrame:
    """:func:`beatmap.audit.read_audit` for an administrator."""
    require(user, ADMIN, what="the audit log")
    return audit.read_audit(engine, start=start, end=end, actor=actor, action=action, timezone=timezone, limit=limit)


def export_audit_log(engine: Engine, user: User | None, entries: pd.DataFrame, *, file_name: str) -> str:
    """Audit entries as CSV for an administrator; the download itself is audited."""
    user = require(user, ADMIN, what="the audit log")
    text = audit.audit_csv(entries)
    audit.record(engine, actor=user.name, action="audit.export", target=file_name, details={"rows": len(entries)})
    return text
