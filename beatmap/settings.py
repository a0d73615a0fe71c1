"""Department settings: a frozen dataclass read from a TOML file.

Every threshold the metrics, flags and public map use lives here, with a
documented default.  ``data/settings.toml`` is the file the command line and
the dashboard read unless told otherwise; a missing file means the defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from beatmap.errors import InputError

#: The rarely_visited rules (beatmap.flags); listed here so reading settings loads no statistics.
RULES: tuple[str, ...] = ("neighbours", "poisson", "empirical_bayes")

DEFAULT_SETTINGS_PATH = Path("data/settings.toml")
#: The environment variable naming the settings file, when no file is given (``--settings``).
ENV_VAR = "BEATMAP_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """Thresholds and rules for one department.

    Attributes
    ----------
    timezone : str
        The department's IANA time zone; dates and windows are in this zone.
    analysis_crs : str or None
        A projected CRS in metres for analysis; None chooses the beats' own
        CRS when it is in metres, else the UTM zone of the beats.
    window_days : int
        Length of the default metric window, ending on the last day of data.
    snap_m : float
        A located point outside every block goes to the nearest block within
        this distance (about half a wide street); beyond it the point counts
        as outside the beats.
    edge_tolerance_m : float
        A point this close to a block's edge counts as on the edge, so a
        reported beat can decide between neighbouring blocks.
    enforcement_only_min : int
        Enforcement events, with no non-enforcement visit, that make a block
        ``enforcement_only``.
    rarely_rule : str
        ``rarely_visited``: how a visited block is judged clearly below its
        beat's typical (median) block: ``"neighbours"`` (the Poisson test,
        plus low blocks joined to a flagged one), ``"poisson"`` (the test
        alone) or ``"empirical_bayes"`` (see :mod:`beatmap.flags`).
    rarely_fraction : float
        ``rarely_visited``: flagged when the block's visits are too few for a
        block visited at this fraction of its beat's median block ...
    rarely_confidence : float
        ... by a one-sided exact Poisson test at this confidence (a false
        alarm rate of ``1 - rarely_confidence`` for such a block).
    rarely_neighbour_gate : float
        ``neighbours`` rule: a block joined to a flagged block is flagged
        with weaker evidence, the test's probability below this.
    shifts : dict
        Named shifts as ``name -> (start_hour, end_hour)`` in local time; an
        end before the start wraps past midnight.
    public_min_count : int
        Public map: counts below this are suppressed.
    public_delay_days : int
        Public map: nothing newer than this many days is published.
    public_trend_min_blocks : int
        Public map: weekly shares are published only for beats of at least
        this many blocks (one block then moves a share by at most 5 points).
    publish_presence_minutes : bool
        Public map: also publish each block's GPS presence outside calls
        (foot and vehicle), rounded to 15 minutes and withheld where fewer
        than 3 devices were there in the period.  False by default: no such
        field at all.
    public_dir : str
        Public map: the folder a published snapshot is written to and the
        public page reads (``$BEATMAP_PUBLIC_DIR`` overrides it there).
    map_tiles : str
        ``"none"``, ``"openstreetmap"`` or a tile URL template of the
        department's own tile server.
    walking_speed_kmh : float
        Walking routes: an officer's walking pace (4.5 km/h is about 75 m a
        minute).
    dwell_min : float
        Walking routes: minutes spent on each block of the route.  Hot-spot
        research finds 10 to 15 minutes of presence works best (Koper).
    route_weight_enforcement_only, route_weight_unvisited, route_weight_rarely_visited : float
        Walking routes: a block's priority for its flag (an unflagged block
        gets only the days term).
    route_weight_per_day : float
        Walking routes: priority added per day since the block's last foot
        patrol or community visit ...
    route_days_cap : int
        ... counting at most this many days (a block never visited in the
        window counts the whole cap).
    route_time_limit_s : float
        Walking routes: the longest the route solver searches, in seconds
        (it usually stops sooner, after a fixed number of solutions).
    landmarks : dict
        Walking routes: named places a walk can start or end at, as
        ``name -> (lat, lon)`` (the station, a school); the route page offers
        those near the chosen beat, and ``beatmap route --start`` takes a name.
    visit_edit_hours : float
        Logged visits: an officer may correct or delete their own visit for
        this many hours after logging it; afterwards only a supervisor can.
    visit_subtypes : tuple of str
        Logged visits: the kinds of visit an officer can pick.
    visit_backdate_days : int
        Logged visits: how many days back a visit's time may be given (or
        moved by a correction); never on or before the last day of the latest
        published public map period, whatever this says.
    sign_in_max_failures : int
        Accounts: failed sign-ins in a row, from one client under one name,
        that lock that name for that client ...
    lockout_minutes : int
        ... for this many minutes.
    session_minutes : int
        Accounts: a dashboard session ends this long after signing in.
    sso_roles_claim : str
        Single sign-on: the claim holding the user's roles (``officer``,
        ``supervisor``, ``admin``) when the users table has no account with
        the user's e-mail.
    sso_beats_claim : str
        Single sign-on: the claim holding the beats of such a user.
    trusted_proxy_header : str
        Accounts: the request header that names the client behind a reverse
        proxy the department runs (e.g. ``X-Forwarded-For``, its first
        address); empty: the address the server sees.  Set it only behind such
        a proxy, as anyone can send the header.
    max_gap_s : int
        GPS tracks: a device's pings further apart than this (seconds) end a
        segment.  Each ping is credited the time to the next ping, at most
        this long; the rest counts as gap, never as presence.
    mode_window_s : int
        GPS tracks: foot or vehicle is decided from the straight-line speed
        between the first and the last ping within this many seconds around
        each ping (net displacement, so GPS jitter cancels out) ...
    vehicle_speed_kmh : float
        ... a ping whose window speed is above this is moving in a vehicle;
        any other is on foot ...
    stop_max_s : int
        ... except a slower stretch at most this long between two vehicle
        stretches (a red light, slow traffic), which stays vehicle.  Devices a
        mapping declares ``vehicle`` (car AVL) are always vehicle.
    visit_min_minutes : float
        GPS tracks: a stay on foot on one block of at least this many minutes
        outside calls is a track visit (Koper's dosage: 10, with 11 to 15 the
        target); shorter is a pass-through.
    call_default_minutes : float
        GPS tracks: a CAD call without a clear time lasts this long.
    max_accuracy_m : float
        GPS pings: a fix reporting an accuracy worse than this is rejected.
    max_speed_kmh : float
        GPS pings: a fix that would mean moving faster than this since the
        device's previous fix is rejected as an impossible jump.
    retain_pings_days : int
        GPS pings: days the raw pings are kept (as a compact archive per
        import) so that presence can be computed again; afterwards only the
        aggregates remain.
    ping_archive_dir : str
        GPS pings: the folder of the raw ping archive (see
        :mod:`beatmap.ping_archive`).  Empty: beside a SQLite store's file
        (``<store>.pings``); a PostgreSQL store must set it.
    silent_minutes : int
        GPS quality: a device silent for longer than this within a day on
        which it reported is listed as gone silent.
    show_officer_tracks : bool
        GPS tracks: whether any page may show an individual officer's track
        (default false; presence is shown per block and, to supervisors, per
        officer or unit).
    rejects_kept_per_reason : int
        Imports: the rejected rows kept in the store per reason and import
        (the counts per reason are always kept); a file of garbage no longer
        fills the store.
    pileup_share, pileup_min : float, int
        Imports: a point holding more than ``pileup_share`` of an import's
        located rows and at least ``pileup_min`` of them is a pile-up (a
        geocoder's city centre, a station address), reported as a warning.
    excluded_beats : tuple of str
        Beats left out of the analysis (harbour beats, a catch-all "99"):
        their blocks are shown as not analysed, never flagged, and left out
        of coverage figures.
    """

    timezone: str = "America/Chicago"
    analysis_crs: str | None = None
    window_days: int = 90
    snap_m: float = 15.0
    edge_tolerance_m: float = 1.0
    enforcement_only_min: int = 3
    rarely_rule: str = "neighbours"
    rarely_fraction: float = 0.75
    rarely_confidence: float = 0.98
    rarely_neighbour_gate: float = 0.1
    shifts: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"day": (7, 15), "evening": (15, 23), "night": (23, 7)}
    )
    public_min_count: int = 3
    public_delay_days: int = 7
    public_trend_min_blocks: int = 20
    publish_presence_minutes: bool = False
    public_dir: str = "data/public"
    map_tiles: str = "none"
    walking_speed_kmh: float = 4.5
    dwell_min: float = 10.0
    route_weight_enforcement_only: float = 3.0
    route_weight_unvisited: float = 2.5
    route_weight_rarely_visited: float = 2.0
    route_weight_per_day: float = 0.03
    route_days_cap: int = 30
    route_time_limit_s: float = 4.0
    landmarks: dict[str, tuple[float, float]] = field(default_factory=dict)
    visit_edit_hours: float = 24.0
    visit_subtypes: tuple[str, ...] = (
        "porch visit",
        "business check",
        "school",
        "youth activity",
        "community meeting",
        "event",
    )
    visit_backdate_days: int = 7
    sign_in_max_failures: int = 5
    lockout_minutes: int = 15
    session_minutes: int = 480
    sso_roles_claim: str = "roles"
    sso_beats_claim: str = "beats"
    trusted_proxy_header: str = ""
    max_gap_s: int = 300
    mode_window_s: int = 120
    vehicle_speed_kmh: float = 12.0
    stop_max_s: int = 300
    visit_min_minutes: float = 10.0
    call_default_minutes: float = 30.0
    max_accuracy_m: float = 50.0
    max_speed_kmh: float = 200.0
    retain_pings_days: int = 90
    ping_archive_dir: str = ""
    silent_minutes: int = 60
    show_officer_tracks: bool = False
    rejects_kept_per_reason: int = 1000
    pileup_share: float = 0.01
    pileup_min: int = 50
    excluded_beats: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise InputError("Settings are not valid:\n" + "\n".join(f"  - {p}" for p in problems))

    @property
    def zone(self) -> ZoneInfo:
        """The department's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


# Which TOML section each setting is written under.
_SECTIONS: dict[str, tuple[str, ...]] = {
    "department": ("timezone", "analysis_crs"),
    "coverage": ("window_days", "snap_m", "edge_tolerance_m"),
    "flags": ("enforcement_only_min", "rarely_rule", "rarely_fraction", "rarely_confidence", "rarely_neighbour_gate"),
    "public": (
        "public_min_count",
        "public_delay_days",
        "public_trend_min_blocks",
        "publish_presence_minutes",
        "public_dir",
    ),
    "map": ("map_tiles",),
    "routes": (
        "walking_speed_kmh",
        "dwell_min",
        "route_weight_enforcement_only",
        "route_weight_unvisited",
        "route_weight_rarely_visited",
        "route_weight_per_day",
        "route_days_cap",
        "route_time_limit_s",
    ),
    "visits": ("visit_edit_hours", "visit_subtypes", "visit_backdate_days"),
    "imports": ("rejects_kept_per_reason", "pileup_share", "pileup_min"),
    "analysis": ("excluded_beats",),
    "accounts": (
        "sign_in_max_failures",
        "lockout_minutes",
        "session_minutes",
        "sso_roles_claim",
        "sso_beats_claim",
        "trusted_proxy_header",
    ),
    "gps": (
        "max_gap_s",
        "mode_window_s",
        "vehicle_speed_kmh",
        "stop_max_s",
        "visit_min_minutes",
        "call_default_minutes",
        "max_accuracy_m",
        "max_speed_kmh",
        "retain_pings_days",
        "ping_archive_dir",
        "silent_minutes",
        "show_officer_tracks",
    ),
}

#: Sections that are tables of ``name = [a, b]`` (the setting of the same name).
_TABLES = ("shifts", "landmarks")


def _problems(s: Settings) -> list[str]:
    problems = []
    try:
        ZoneInfo(s.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {s.timezone!r} is not an IANA time zone such as 'America/Chicago'")
    if s.window_days < 1:
        problems.append("window_days must be at least 1")
    if s.snap_m < 0 or s.edge_tolerance_m < 0:
        problems.append("snap_m and edge_tolerance_m must not be negative")
    if s.enforcement_only_min < 1:
        problems.append("enforcement_only_min must be at least 1")
    if not 0 < s.rarely_fraction < 1:
        problems.append("rarely_fraction must be between 0 and 1")
    if not 0.5 <= s.rarely_confidence < 1:
        problems.append("rarely_confidence must be at least 0.5 and below 1")
    if s.rarely_rule not in RULES:
        problems.append(f"rarely_rule {s.rarely_rule!r} must be one of {', '.join(RULES)}")
    if not 0 < s.rarely_neighbour_gate < 1:
        problems.append(
            "rarely_neighbour_gate must be between 0 and 1 (0.2: a block joined to a flagged one "
            "needs weaker evidence of its own)"
        )
    for name, hours in s.shifts.items():
        if len(hours) != 2 or not all(isinstance(h, int) and 0 <= h <= 24 for h in hours):
            problems.append(f"shift {name!r} must be [start_hour, end_hour] with hours 0-24")
    if s.public_min_count < 3:
        problems.append("public_min_count can only be made stricter than 3")
    if s.public_delay_days < 7:
        problems.append("public_delay_days can only be made stricter than 7")
    if s.public_trend_min_blocks < 20:
        problems.append("public_trend_min_blocks can only be made stricter than 20")
    if not isinstance(s.public_dir, str) or not s.public_dir.strip():
        problems.append('public_dir must be a folder path such as "data/public"')
    if not 1 <= s.walking_speed_kmh <= 10:
        problems.append("walking_speed_kmh must be between 1 and 10 (a walk, not a drive)")
    if not 1 <= s.dwell_min <= 120:
        problems.append("dwell_min must be between 1 and 120 minutes (10 to 15 works best)")
    weights = (
        s.route_weight_enforcement_only,
        s.route_weight_unvisited,
        s.route_weight_rarely_visited,
        s.route_weight_per_day,
    )
    if any(w < 0 for w in weights):
        problems.append("route weights must not be negative")
    if s.route_days_cap < 1:
        problems.append("route_days_cap must be at least 1")
    if not 0.1 <= s.route_time_limit_s <= 60:
        problems.append("route_time_limit_s must be between 0.1 and 60 seconds")
    for name, point in s.landmarks.items():
        if (
            len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
            or not (-90 <= point[0] <= 90 and -180 <= point[1] <= 180)
        ):
            problems.append(f"landmark {name!r} must be [latitude, longitude] in degrees, e.g. [41.60, -88.10]")
    if s.visit_edit_hours < 0:
        problems.append("visit_edit_hours must not be negative")
    if not 0 <= s.visit_backdate_days <= 31:
        problems.append("visit_backdate_days must be between 0 and 31")
    if (
        isinstance(s.visit_subtypes, str)
        or not s.visit_subtypes
        or not all(isinstance(t, str) and t.strip() for t in s.visit_subtypes)
    ):
        problems.append('visit_subtypes must be a non-empty list of names such as ["porch visit", "school"]')
    if not 1 <= s.sign_in_max_failures <= 20:
        problems.append("sign_in_max_failures must be between 1 and 20")
    if not 1 <= s.lockout_minutes <= 1440:
        problems.append("lockout_minutes must be between 1 and 1440 (a day)")
    if not 5 <= s.session_minutes <= 1440:
        problems.append("session_minutes must be between 5 and 1440 (a day)")
    if not (isinstance(s.rejects_kept_per_reason, int) and s.rejects_kept_per_reason >= 1):
        problems.append("rejects_kept_per_reason must be a whole number of at least 1 (rows kept per reason)")
    if not (isinstance(s.pileup_share, int | float) and 0 < s.pileup_share <= 1):
        problems.append("pileup_share must be a share above 0 and at most 1, e.g. 0.01 for 1%")
    if not (isinstance(s.pileup_min, int) and s.pileup_min >= 2):
        problems.append("pileup_min must be a whole number of at least 2")
    if not all(isinstance(b, str) and b.strip() for b in s.excluded_beats):
        problems.append('excluded_beats must be a list of beat ids in quotes, e.g. ["H1", "99"]')
    if not s.sso_roles_claim.strip() or not s.sso_beats_claim.strip():
        problems.append('sso_roles_claim and sso_beats_claim must name claims, e.g. "roles" and "beats"')
    problems.extend(_gps_problems(s))
    return problems


def _gps_problems(s: Settings) -> list[str]:
    problems = []
    whole = ("max_gap_s", "mode_window_s", "stop_max_s", "retain_pings_days", "silent_minutes")
    for name in whole:
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name} must be a whole number of at least 1")
    if not 10 <= s.max_gap_s <= 3600:
        problems.append("max_gap_s must be between 10 and 3600 seconds (300 suits pings every 10-30 s)")
    if not 2 <= s.vehicle_speed_kmh <= 60:
        problems.append("vehicle_speed_kmh must be between 2 and 60 (a brisk walk is about 6)")
    if not 1 <= s.visit_min_minutes <= 120:
        problems.append("visit_min_minutes must be between 1 and 120 minutes (10 is the dosage threshold)")
    if not 1 <= s.call_default_minutes <= 24 * 60:
        problems.append("call_default_minutes must be between 1 and 1440")
    if s.max_accuracy_m <= 0 or s.max_speed_kmh <= 0:
        problems.append("max_accuracy_m and max_speed_kmh must be positive")
    if not isinstance(s.publish_presence_minutes, bool):
        problems.append("publish_presence_minutes must be true or false")
    if not isinstance(s.show_officer_tracks, bool):
        problems.append("show_officer_tracks must be true or false")
    if not isinstance(s.ping_archive_dir, str):
        problems.append('ping_archive_dir must be a folder in quotes, e.g. "/srv/beatmap/pings" (or "" beside SQLite)')
    return problems


def settings_path(given: str | Path | None = None) -> str | Path | None:
    """The settings file to read: the one ``given``, else ``$BEATMAP_SETTINGS``, else None (the default file)."""
    return given if given is not None else os.environ.get(ENV_VAR) or None


def read_settings(path: str | Path | None = None) -> Settings:
    """Read settings from a TOML file; defaults where a key is absent.

    Parameters
    ----------
    path : str or Path, optional
        The file; ``data/settings.toml`` when not given (pass
        :func:`settings_path` to honour ``$BEATMAP_SETTINGS``).  A missing
        default file means all defaults; a missing named file is an error.
    """
    explicit = path is not None
    path = Path(path) if path is not None else DEFAULT_SETTINGS_PATH
    if not path.exists():
        if explicit:
            raise InputError(f"{path}: settings file not found. Check the path given to --settings or in ${ENV_VAR}.")
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML file ({exc}). Fix the syntax and try again.") from exc
    values: dict[str, Any] = {}
    problems: list[str] = []
    for section, body in raw.items():
        if section in _TABLES:  # name = [a, b] tables
            if not isinstance(body, dict) or not all(isinstance(v, list) for v in body.values()):
                problems.append(f"[{section}] must hold lines of the form name = [a, b]")
            else:
                values[section] = {str(k): tuple(v) for k, v in body.items()}
            continue
        known = _SECTIONS.get(section)
        if known is None or not isinstance(body, dict):
            problems.append(f"unknown section [{section}]; known: {', '.join([*_SECTIONS, *_TABLES])}")
            continue
        for key, value in body.items():
            if key not in known:
                problems.append(f"unknown key {key!r} in [{section}]; known: {', '.join(known)}")
            else:
                values[key] = tuple(value) if isinstance(value, list) else value
    if problems:
        raise InputError(f"{path}: " + "; ".join(problems))
    try:
        return Settings(**values)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    except TypeError as exc:
        raise InputError(f"{path}: a setting has the wrong type ({exc}).") from exc
