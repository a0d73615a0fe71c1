"""Dashboard sessions that outlive a page reload: a random token, kept hashed in the store.

Phones reload background tabs; without this an officer would sign in again each time.  At sign-in
:func:`start_session` makes a random token (32 bytes from :mod:`secrets`), stores its SHA-256 with
the account and an expiry, and returns the token for the browser to keep in a cookie (SameSite=Strict,
Secure over HTTPS, never in a URL; the password is never kept).  A reload brings the cookie back, and
:func:`session_user` finds the account.  A session ends when it expires (``session_minutes``), on
sign-out (:func:`end_session`), and when the account's password is set or the account disabled
(:func:`end_sessions_of`, called by :mod:`beatmap.accounts`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert, select

from beatmap import store

__all__ = ["COOKIE", "end_session", "end_sessions_of", "session_user", "start_session"]

#: The cookie that carries the token.
COOKIE = "beatmap_session"
_S = store.sessions_table
_U = store.users_table


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(engine: Engine, name: str, *, minutes: int, now: datetime | None = None) -> str:
    """Open a session for account ``name`` lasting ``minutes``; return its token (for the cookie only).

    Expired sessions of every account are cleared on the way.
    """
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    with store.transaction(engine) as conn:
        user_id = conn.execute(select(_U.c.user_id).where(_U.c.name == name)).scalar_one()
        conn.execute(delete(_S).where(_S.c.expires_at <= now))
        conn.execute(
            insert(_S).values(
                token_hash=_hash(token), user_id=user_id, created_at=now, expires_at=now + timedelta(minutes=minutes)
            )
        )
    return token


def session_user(engine: Engine, token: str | None, *, now: datetime | None = None) -> tuple[str, datetime] | None:
    """The account name and sign-in time of the session ``token`` opens; None when unknown or expired.

    A disabled account's session is refused (and ended) here too.
    """
    if not token:
        return None
    now = now or datetime.now(UTC)
    with engine.connect() as conn:
        row = (
            conn.execute(
                select(_U.c.name, _U.c.disabled, _S.c.created_at, _S.c.expires_at)
                .join(_U, _U.c.user_id == _S.c.user_id)
                .where(_S.c.token_hash == _hash(token))
            )
            .mappings()
            .first()
        )
    if row is None:
        return None
    if row["expires_at"] <= now or row["disabled"]:
        end_session(engine, token)
        return None
    return row["name"], row["created_at"]


def end_session(engine: Engine, token: str | None) -> None:
    """End the session ``token`` opens (signing out); nothing when there is none."""
    if token:
        with store.transaction(engine) as conn:
            conn.execute(delete(_S).where(_S.c.token_hash == _hash(token)))


def end_sessions_of(conn: Connection, user_id: int) -> int:
    """End every session of an account, inside the caller's transaction; how many there were."""
    return conn.execute(delete(_S).where(_S.c.user_id == user_id)).rowcount or 0
