"""Accounts: who may sign in, with which role and beats.

Local accounts live in the store (tables ``users`` and ``user_beats``).
Passwords are hashed with Argon2id (argon2-cffi's RFC 9106 parameters); a
password is never stored, printed to a log or written to the audit log.  A
password nobody chose is generated with :mod:`secrets` and shown once.

Every change to an account and every sign-in attempt appends an entry to the
audit log in the same transaction as the change.  Changes made from the
dashboard pass the signed-in :class:`User` as ``actor`` and must be an
administrator's; the command line passes a text actor such as ``cli:alice``
(whoever can run it on the server can open the store anyway).

Roles
-----
``officer``
    Their beats' blocks and flags, route planning, their own visits.
``supervisor``
    Everything for their beats (or all beats): per-officer breakdowns,
    imports, exports, publishing.
``admin``
    Users, roles, beat assignments, the settings view and the audit log.
Anyone not signed in is ``public`` and sees the published public map only.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, case, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from beatmap import store
from beatmap.errors import AccessError, InputError
from beatmap.schema import ACCOUNT_ROLES, BEAT_ID, ID_MAX
from beatmap.sessions import end_sessions_of
from beatmap.settings import Settings

__all__ = [
    "ADMIN",
    "OFFICER",
    "PUBLIC",
    "ROLES",
    "SUPERVISOR",
    "UNKNOWN_ACCOUNT",
    "User",
    "add_user",
    "authenticate",
    "check_password",
    "create_first_admin",
    "disable_user",
    "enable_user",
    "generate_password",
    "get_user",
    "has_admin",
    "hash_password",
    "list_users",
    "record_sign_in",
    "record_sign_out",
    "require",
    "role_of",
    "session_expired",
    "set_beats",
    "set_password",
    "set_role",
    "still_signed_in",
    "user_from_claims",
    "verify_password",
]

OFFICER, SUPERVISOR, ADMIN = "officer", "supervisor", "admin"
#: The roles an account can have; anyone not signed in is :data:`PUBLIC`.
ROLES = ACCOUNT_ROLES
PUBLIC = "public"
#: The actor and target of a failed sign-in under a name no account has (the typed text is not kept).
UNKNOWN_ACCOUNT = "unknown account"
_ROLE_WORDS = {
    PUBLIC: "the public (not signed in)",
    OFFICER: "officers",
    SUPERVISOR: "supervisors",
    ADMIN: "administrators",
}

MIN_PASSWORD_LENGTH = 12
GENERATED_LENGTH = 20
# Letters and digits without the look-alikes 0/O, 1/l/I: 56 symbols, 20 of them is about 116 bits.
_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")
# Names are shown on pages and written to the audit log: a plain charset keeps them safe everywhere.
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{1,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class User:
    """A signed-in person as the access rules see them.

    Attributes
    ----------
    name : str
        The account name (lower case), or the e-mail of a single sign-on user
        known only from their claims.
    role : str
        ``officer``, ``supervisor`` or ``admin``.
    beats : tuple of str
        The beats assigned to the user (sorted).
    all_beats : bool
        True when the user is assigned every beat, present and future.
    officer_id : str or None
        The ``officer_id`` the user's activity records carry.
    """

    name: str
    role: str
    beats: tuple[str, ...] = ()
    all_beats: bool = False
    officer_id: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InputError(f"role {self.role!r} is not one of {', '.join(ROLES)}.")


def role_of(user: User | None) -> str:
    """The role of ``user``; :data:`PUBLIC` when nobody is signed in."""
    return PUBLIC if user is None else user.role


def require(user: User | None, *roles: str, what: str) -> User:
    """Return ``user`` when their role is one of ``roles``; raise otherwise.

    Parameters
    ----------
    user : User or None
        The signed-in user (None: not signed in).
    *roles : str
        The roles allowed.
    what : str
        What is being refused, for the message (e.g. ``"exports"``).

    Raises
    ------
    AccessError
        Naming what is refused, who may do it and who the user is.
    """
    if user is not None and user.role in roles:
        return user
    allowed = " and ".join(_ROLE_WORDS[r] for r in roles)
    who = "you are not signed in" if user is None else f"you are signed in as {user.name} ({user.role})"
    raise AccessError(f"Only {allowed} have access to {what}; {who}.")


# --- passwords ----------------------------------------------------------------------------------------------------


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # Argon2id with RFC 9106's low-memory parameters


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown names, so a wrong name costs the same time as a wrong password."""
    return _hasher().hash(generate_password())


def generate_password(length: int = GENERATED_LENGTH, *, name: str = "") -> str:
    """A random password from :mod:`secrets`: letters and digits without look-alikes.

    Drawn again in the rare case it contains ``name`` (the account's), which
    :func:`check_password` would refuse.
    """
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        if not name or name.lower() not in password.lower():
            return password


def check_password(password: str, *, name: str) -> None:
    """Refuse a password that is too short or repeats the account name.

    Raises
    ------
    InputError
        Saying what to change.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters "
            "(a few unrelated words work well), or leave it empty to generate one."
        )
    if name and name.lower() in password.lower():
        raise InputError("the password must not contain the account name.")


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (salted; the only form a password is kept in)."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- reading accounts ---------------------------------------------------------------------------------------------

_U = store.users_table


def _normal_name(name: str) -> str:
    clean = str(name).strip().lower()
    if not _NAME.match(clean):
        raise InputError(
            f"account name {name!r} is not valid: use 2 to 64 letters, digits, '.', '_', '-' or '@', "
            "starting with a letter or digit."
        )
    return clean


def _user_from_row(conn: Connection, row: Mapping) -> User:
    beats = (
        conn.execute(
            select(store.user_beats.c[BEAT_ID])
            .where(store.user_beats.c.user_id == row["user_id"])
            .order_by(store.user_beats.c[BEAT_ID])
        )
        .scalars()
        .all()
    )
    return User(
        name=row["name"],
        role=row["role"],
        beats=tuple(beats),
        all_beats=bool(row["all_beats"]),
        officer_id=row["officer_id"],
    )


def _row(conn: Connection, name: str) -> Mapping | None:
    return conn.execute(select(_U).where(_U.c.name == name)).mappings().one_or_none()


def _existing(conn: Connection, name: str) -> Mapping:
    row = _row(conn, _normal_name(name))
    if row is None:
        raise InputError(f"no account named {name!r}; see the names with `beatmap users list`.")
    return row


def get_user(engine: Engine, name: str) -> User | None:
    """The enabled account ``name`` as a :class:`User`; None when unknown or disabled."""
    try:
        clean = _normal_name(name)
    except InputError:
        return None
    with engine.connect() as conn:
        row = _row(conn, clean)
        return _user_from_row(conn, row) if row is not None and not row["disabled"] else None


def has_admin(engine: Engine) -> bool:
    """True when at least one enabled administrator account exists."""
    with engine.connect() as conn:
        return _count_admins(conn) > 0


def _count_admins(conn: Connection) -> int:
    query = select(func.count()).select_from(_U).where(_U.c.role == ADMIN, _U.c.disabled.is_(False))
    return int(conn.execute(query).scalar_one())


def list_users(engine: Engine) -> pd.DataFrame:
    """Every account, without its password hash.

    Returns
    -------
    DataFrame
        ``name``, ``role``, ``beats`` (comma-separated, or ``all``),
        ``officer_id``, ``email``, ``disabled``, ``failed_attempts``,
        ``locked_until``, ``created_at``, ``last_sign_in`` (UTC), sorted by name.
    """
    columns = [
        "name",
        "role",
        "beats",
        "officer_id",
        "email",
        "disabled",
        "failed_attempts",
        "locked_until",
        "created_at",
        "last_sign_in",
    ]
    with engine.connect() as conn:
        rows = conn.execute(select(_U).order_by(_U.c.name)).mappings().all()
        records = []
        for row in rows:
            user = _user_from_row(conn, row)
            records.append(
                {
                    **{c: row[c] for c in columns if c in row},
                    "beats": "all" if user.all_beats else ", ".join(user.beats),
                }
            )
    return pd.DataFrame(records, columns=columns)


# --- changing accounts --------------------------------------------------------------------------------------------


def _acting(actor: User | str) -> str:
    """The audit name of whoever makes an account change; a dashboard user must be an administrator."""
    if isinstance(actor, User):
        return require(actor, ADMIN, what="account management").name
    if not str(actor).strip():
        raise InputError("an account change needs an actor for the audit log, e.g. 'cli:alice'.")
    return str(actor)


def _clean_beats(conn: Connection, beats: Iterable[str]) -> list[str]:
    """Beat ids, checked against the loaded beats (any ids are accepted before areas are loaded)."""
    wanted = sorted({str(b).strip() for b in beats if str(b).strip()})
    known = set(conn.execute(select(store.beats_table.c[BEAT_ID])).scalars())
    unknown = [b for b in wanted if known and b not in known]
    if unknown:
        shown = ", ".join(sorted(known)[:20])
        raise InputError(f"no beat {', '.join(map(repr, unknown))} in the store; beats are {shown}.")
    return wanted


def _clean_email(email: str | None) -> str | None:
    if email is None or not str(email).strip():
        return None
    clean = str(email).strip().lower()
    if not _EMAIL.match(clean):
        raise InputError(f"{email!r} is not an e-mail address.")
    return clean


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}.")
    return role


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise InputError("`now` must be time-zone aware (UTC).")
    return now


def add_user(
    engine: Engine,
    name: str,
    *,
    role: str,
    actor: User | str,
    beats: Iterable[str] = (),
    all_beats: bool = False,
    password: str | None = None,
    officer_id: str | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> tuple[User, str | None]:
    """Create an account.

    Parameters
    ----------
    engine : Engine
        The store.
    name : str
        2 to 64 letters, digits, ``.``, ``_``, ``-`` or ``@`` (kept in lower case).
    role : str
        ``officer``, ``supervisor`` or ``admin``.
    actor : User or str
        Who creates it: an administrator signed in to the dashboard, or
        ``cli:<os user>``.
    beats : iterable of str
        Assigned beats (must be loaded beats once areas are loaded).
    all_beats : bool
        Assign every beat, present and future.
    password : str, optional
        At least 12 characters; None generates one.
    officer_id : str, optional
        The ``officer_id`` of the person's activity records; officers default
        to the account name.
    email : str, optional
        For single sign-on: the e-mail claim that maps to this account.
    now : datetime, optional
        Creation time (aware); the clock by default.

    Returns
    -------
    (User, str or None)
        The account, and the generated password (None when one was given).
        Show a generated password once; it cannot be read back.

    Raises
    ------
    InputError
        For a bad name, role, beat, e-mail or password, or a name or e-mail in use.
    AccessError
        When ``actor`` is a dashboard user who is not an administrator.
    """
    who = _acting(actor)
    clean, role = _normal_name(name), _check_role(role)
    secret = password or generate_password(name=clean)
    generated = None if password else secret
    check_password(secret, name=clean)
    mail = _clean_email(email)
    officer = (officer_id or "").strip() or (clean if role == OFFICER else None)
    if officer is not None and (len(officer) > ID_MAX or "\x00" in officer):
        raise InputError(
            f"officer id of {len(officer)} characters: give the id the person's activity records "
            f"carry, at most {ID_MAX} characters."
        )
    with store.transaction(engine) as conn:
        if _row(conn, clean) is not None:
            raise InputError(f"an account named {clean!r} already exists; change it with `beatmap users` commands.")
        if mail and conn.execute(select(_U.c.name).where(_U.c.email == mail)).first():
            raise InputError(f"another account already has the e-mail {mail!r}.")
        if officer is not None:
            holder = conn.execute(select(_U.c.name).where(_U.c.officer_id == officer)).scalar_one_or_none()
            if holder is not None:
                raise InputError(
                    f"the account {holder!r} already has officer id {officer!r}; one account per "
                    "officer, so that nobody can change another person's visits."
                )
        wanted = _clean_beats(conn, beats)
        inserted = conn.execute(
            insert(_U).values(
                name=clean,
                email=mail,
                password_hash=hash_password(secret),
                role=role,
                all_beats=bool(all_beats),
                officer_id=officer,
                disabled=False,
                failed_attempts=0,
                created_at=_now(now),
            )
        ).inserted_primary_key
        assert inserted is not None  # an INSERT of one row always has its primary key
        user_id = inserted[0]
        if wanted:
            conn.execute(insert(store.user_beats), [{"user_id": user_id, BEAT_ID: b} for b in wanted])
        store.record_audit(
            conn,
            actor=who,
            action="user.add",
            target=clean,
            at=_now(now),
            details={
                "role": role,
                "beats": "all" if all_beats else wanted,
                "officer_id": officer,
                "email": mail,
                "password": "generated" if generated else "chosen",
            },
        )
        row = _row(conn, clean)
        assert row is not None  # inserted above, in this transaction
        user = _user_from_row(conn, row)
    return user, generated


def create_first_admin(engine: Engine, name: str, *, password: str, now: datetime | None = None) -> User:
    """Create the first administrator, only while no enabled administrator exists (first-run setup).

    Raises
    ------
    AccessError
        When an administrator already exists: from then on only an
        administrator adds accounts.
    InputError
        For a bad name or password, or no password (none is generated here).
    """
    if not password:  # a generated one would never be shown in the first-run form
        raise InputError(
            "type a password for the first administrator (at least 12 characters; a few unrelated words work well)."
        )
    with engine.connect() as conn:
        if _count_admins(conn):
            raise AccessError("an administrator already exists; ask them for an account.")
    user, _ = add_user(engine, name, role=ADMIN, actor="setup:first-admin", password=password, now=now)
    return user


def set_password(
    engine: Engine, name: str, password: str | None = None, *, actor: User | str, now: datetime | None = None
) -> str | None:
    """Set a new password (generated when None) and lift any lockout.

    Returns
    -------
    str or None
        The generated password, to show once; None when one was given.
    """
    who = _acting(actor)
    with store.transaction(engine) as conn:
        row = _existing(conn, name)
        secret = password or generate_password(name=row["name"])
        generated = None if password else secret
        check_password(secret, name=row["name"])
        conn.execute(
            update(_U)
            .where(_U.c.user_id == row["user_id"])
            .values(password_hash=hash_password(secret), failed_attempts=0, locked_until=None)
        )
        end_sessions_of(conn, row["user_id"])  # a new password ends every session begun with the old one
        conn.execute(
            delete(store.sign_in_failures).where(  # lifts the lockouts of every client
                store.sign_in_failures.c.name_key == _name_key(conn, row["name"])
            )
        )
        store.record_audit(
            conn,
            actor=who,
            action="user.password",
            target=row["name"],
            at=_now(now),
            details={"password": "generated" if generated else "chosen"},
        )
    return generated


def _set_disabled(engine: Engine, name: str, disabled: bool, *, actor: User | str) -> None:
    who = _acting(actor)
    with store.transaction(engine) as conn:
        row = _existing(conn, name)
        if disabled and row["role"] == ADMIN and not row["disabled"] and _count_admins(conn) == 1:
            raise InputError(f"{row['name']} is the last administrator; add another administrator first.")
        conn.execute(update(_U).where(_U.c.user_id == row["user_id"]).values(disabled=disabled))
        if disabled:
            end_sessions_of(conn, row["user_id"])
        store.record_audit(conn, actor=who, action="user.disable" if disabled else "user.enable", target=row["name"])


def disable_user(engine: Engine, name: str, *, actor: User | str) -> None:
    """Disable an account: it can no longer sign in, and its open sessions end on their next page load."""
    _set_disabled(engine, name, True, actor=actor)


def enable_user(engine: Engine, name: str, *, actor: User | str) -> None:
    """Enable a disabled account again."""
    _set_disabled(engine, name, False, actor=actor)


def set_role(engine: Engine, name: str, role: str, *, actor: User | str) -> None:
    """Change an account's role (the last administrator keeps theirs)."""
    who, role = _acting(actor), _check_role(role)
    with store.transaction(engine) as conn:
        row = _existing(conn, name)
        if row["role"] == ADMIN and role != ADMIN and not row["disabled"] and _count_admins(conn) == 1:
            raise InputError(f"{row['name']} is the last administrator; add another administrator first.")
        conn.execute(update(_U).where(_U.c.user_id == row["user_id"]).values(role=role))
        store.record_audit(
            conn, actor=who, action="user.role", target=row["name"], details={"from": row["role"], "to": role}
        )


def set_beats(engine: Engine, name: str, beats: Iterable[str], *, all_beats: bool = False, actor: User | str) -> None:
    """Replace an account's beats (or assign every beat with ``all_beats``)."""
    who = _acting(actor)
    with store.transaction(engine) as conn:
        row = _existing(conn, name)
        wanted = _clean_beats(conn, beats)
        before = _user_from_row(conn, row)
        conn.execute(delete(store.user_beats).where(store.user_beats.c.user_id == row["user_id"]))
        if wanted:
            conn.execute(insert(store.user_beats), [{"user_id": row["user_id"], BEAT_ID: b} for b in wanted])
        conn.execute(update(_U).where(_U.c.user_id == row["user_id"]).values(all_beats=bool(all_beats)))
        store.record_audit(
            conn,
            actor=who,
            action="user.beats",
            target=row["name"],
            details={"from": "all" if before.all_beats else list(before.beats), "to": "all" if all_beats else wanted},
        )


# --- signing in ---------------------------------------------------------------------------------------------------


def authenticate(
    engine: Engine, name: str, password: str, *, now: datetime, settings: Settings, client: str = "local"
) -> User:
    """Check a name and password; count failures and lock the name for that client after too many.

    After ``settings.sign_in_max_failures`` failures in a row from one
    ``client`` (the address the server saw) under one name, that name is
    locked for that client for ``settings.lockout_minutes``: someone guessing
    from one place cannot lock an officer out everywhere.  Unknown names are
    counted and locked the same way, with the same answers and the same work
    (a password hash is checked either way), so the answers tell nothing about
    which names exist.  A success or a new password resets the count.  Every
    attempt is in the audit log (never the password; an unknown name only by
    its length).

    Returns
    -------
    User
        The signed-in user.

    Raises
    ------
    AccessError
        "wrong name or password" (the same for an unknown name), "account
        locked until HH:MM after N failed attempts" (department time), or a
        disabled account.
    """
    now = _now(now)
    try:
        clean = _normal_name(name)
    except InputError:
        clean = None
    with store.transaction(engine) as conn:
        row = _row(conn, clean) if clean else None
        key = _name_key(conn, clean or str(name).strip().lower())
        outcome = _attempt(
            conn, row, str(name), password, key=key, client=str(client)[:128] or "unknown", now=now, settings=settings
        )
    if isinstance(outcome, str):
        raise AccessError(outcome)
    return outcome


def _attempt(
    conn: Connection,
    row: Mapping | None,
    name: str,
    password: str,
    *,
    key: str,
    client: str,
    now: datetime,
    settings: Settings,
) -> User | str:
    """One sign-in attempt inside a transaction: the user, or the message to show (audited either way).

    Known and unknown names take the same steps: the lock of (name, client) is
    read, a password hash is checked, and a failure is counted for (name, client).
    """
    wrong = "wrong name or password."

    # An unknown name may be a password typed into the wrong box: only its length is kept, never the text.
    who = row["name"] if row else UNKNOWN_ACCOUNT
    about_name = {"name_length": len(name)} if row is None else {}

    def audit(action: str, **details: object) -> None:
        store.record_audit(
            conn, actor=who, action=action, target=who, details={**details, **about_name, "client": client}, at=now
        )

    throttle = store.sign_in_failures
    here = (throttle.c.name_key == key) & (throttle.c.client == client)
    locked_until = conn.execute(select(throttle.c.locked_until).where(here)).scalar()
    if locked_until is not None and now < locked_until:
        audit("sign_in.refused", reason="locked", locked_until=locked_until.isoformat())
        return _locked_message(locked_until, settings=settings)
    matches = verify_password(row["password_hash"] if row is not None else _dummy_hash(), password)
    if row is None or not matches:
        failures = _count_client_failure(conn, key, client, now=now)
        if row is not None:
            _count_failure(conn, row["user_id"], now=now)  # the account's own count, shown to administrators
        if failures >= settings.sign_in_max_failures:
            until = now + timedelta(minutes=settings.lockout_minutes)
            conn.execute(update(throttle).where(here).values(locked_until=until))
            audit("sign_in.lockout", failed_attempts=failures, locked_until=until.isoformat())
            return _locked_message(until, settings=settings)
        audit("sign_in.failure", reason="unknown name" if row is None else "wrong password", failed_attempts=failures)
        return wrong
    if row["disabled"]:
        audit("sign_in.refused", reason="disabled")
        return f"the account {row['name']} is disabled; ask an administrator."
    conn.execute(delete(throttle).where(here))
    values: dict[str, object] = {"failed_attempts": 0, "locked_until": None, "last_sign_in": now}
    if _hasher().check_needs_rehash(row["password_hash"]):
        values["password_hash"] = hash_password(password)
    conn.execute(update(_U).where(_U.c.user_id == row["user_id"]).values(**values))
    audit("sign_in", method="password")
    return _user_from_row(conn, row)


def _count_failure(conn: Connection, user_id: int, *, now: datetime) -> int:
    """Add one failed attempt in a single statement and return the count.

    Reading the count and writing it back lost attempts made at the same time;
    the database adds instead.  A lock that has run out starts the count again.
    """
    expired = _U.c.locked_until.is_not(None) & (_U.c.locked_until <= now)
    statement = (
        update(_U)
        .where(_U.c.user_id == user_id)
        .values(
            failed_attempts=case((expired, 1), else_=_U.c.failed_attempts + 1),
            locked_until=case((expired, None), else_=_U.c.locked_until),
        )
        .returning(_U.c.failed_attempts)
    )
    return int(conn.execute(statement).scalar_one())


def _name_key(conn: Connection, name: str) -> str:
    """The key failed sign-ins are counted under: a hash of the typed name keyed with the store's identity."""
    salt = store.get_meta(conn, "store_id") or ""
    return hashlib.sha256(f"{salt}\x1f{name}".encode()).hexdigest()


def _count_client_failure(conn: Connection, key: str, client: str, *, now: datetime) -> int:
    """Add one failed attempt for (name, client) in a single statement and return the count (a run-out lock
    starts it again)."""
    throttle = store.sign_in_failures
    expired = throttle.c.locked_until.is_not(None) & (throttle.c.locked_until <= now)
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    inserting = dialect_insert(throttle).values(name_key=key, client=client, failed_attempts=1, locked_until=None)
    statement = inserting.on_conflict_do_update(
        index_elements=["name_key", "client"],
        set_={
            "failed_attempts": case((expired, 1), else_=throttle.c.failed_attempts + 1),
            "locked_until": case((expired, None), else_=throttle.c.locked_until),
        },
    ).returning(throttle.c.failed_attempts)
    return int(conn.execute(statement).scalar_one())


def _locked_message(until: datetime, *, settings: Settings) -> str:
    local = until.astimezone(settings.zone)
    return (
        f"account locked until {local:%H:%M} after {settings.sign_in_max_failures} failed attempts; "
        "try again then, or ask an administrator to reset the password."
    )


def session_expired(signed_in_at: datetime, *, now: datetime, settings: Settings) -> bool:
    """True once ``settings.session_minutes`` have passed since signing in."""
    return now - signed_in_at >= timedelta(minutes=settings.session_minutes)


def password_changed_since(engine: Engine, name: str, since: datetime) -> bool:
    """True when ``name``'s password was set after ``since`` (a session begun before then should end)."""
    log = store.audit_log
    query = select(log.c.audit_id).where(log.c.action == "user.password", log.c.target == name, log.c.at > since)
    with engine.connect() as conn:
        return conn.execute(query.limit(1)).first() is not None


def still_signed_in(
    engine: Engine, user: User | None, *, signed_in_at: datetime | None, now: datetime, settings: Settings
) -> User | None:
    """``user`` as they are now, or None when what they were given may no longer be used.

    For acts that run later than the page that offered them (a download
    button's file is made when it is clicked): None when the session has
    ended (``session_minutes`` after ``signed_in_at``), or the account was
    disabled, its password set again, or its role or beats changed since.  A
    single sign-on user without an account here keeps their claims until the
    session ends.
    """
    if user is None or signed_in_at is None or session_expired(signed_in_at, now=now, settings=settings):
        return None
    with engine.connect() as conn:
        row = _row(conn, user.name)
        if row is None:  # a single sign-on identity known only from its claims
            return user
        current = None if row["disabled"] else _user_from_row(conn, row)
    if current != user or password_changed_since(engine, user.name, signed_in_at):
        return None
    return current


def user_from_claims(engine: Engine, claims: Mapping, *, settings: Settings) -> User | None:
    """The beatmap user of a single sign-on identity, or None when it has no role here.

    An enabled account whose ``email`` matches the ``email`` claim decides
    (its role and beats; a disabled one refuses).  Otherwise the
    ``settings.sso_roles_claim`` claim gives the role (the first of admin,
    supervisor, officer it lists) and ``settings.sso_beats_claim`` the beats;
    a supervisor without a beats claim sees every beat.
    """
    try:
        email = _clean_email(str(claims.get("email") or ""))
    except InputError:  # a provider that sends something else in the e-mail claim: no e-mail match
        email = None
    if email:
        with engine.connect() as conn:
            row = conn.execute(select(_U).where(_U.c.email == email)).mappings().one_or_none()
            if row is not None:
                return None if row["disabled"] else _user_from_row(conn, row)
    roles = [r.lower() for r in _as_list(claims.get(settings.sso_roles_claim))]
    role = next((r for r in (ADMIN, SUPERVISOR, OFFICER) if r in roles), None)
    who = email or str(claims.get("sub") or "").strip()
    if role is None or not who:
        return None
    beats = tuple(sorted(set(_as_list(claims.get(settings.sso_beats_claim)))))
    return User(
        name=who,
        role=role,
        beats=beats,
        all_beats=role == SUPERVISOR and not beats,
        officer_id=str(claims.get("officer_id") or who) if role != ADMIN else None,
    )


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v for v in re.split(r"[\s,]+", value.strip()) if v]
    if isinstance(value, Iterable):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]


def record_sign_in(engine: Engine, user: User, *, method: str, now: datetime | None = None) -> None:
    """Audit a sign-in that happened elsewhere (single sign-on)."""
    with store.transaction(engine) as conn:
        store.record_audit(
            conn,
            actor=user.name,
            action="sign_in",
            target=user.name,
            at=_now(now),
            details={"method": method, "role": user.role},
        )


def record_sign_out(engine: Engine, user: User, *, reason: str = "signed out", now: datetime | None = None) -> None:
    """Audit the end of a session (signed out, or expired)."""
    with store.transaction(engine) as conn:
        store.record_audit(
            conn, actor=user.name, action="sign_out", target=user.name, at=_now(now), details={"reason": reason}
        )
