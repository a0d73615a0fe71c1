"""The audit log: who did what, when; append-only.

Entries are written by the act they record, in its own transaction
(:func:`beatmap.store.record_audit`), or by :func:`record` for an act that has
no transaction of its own (an export).  This module only adds and reads:
nothing in beatmap changes or removes an entry, and the store's triggers refuse
both.  Details never hold a password.

Actions
-------
``sign_in``, ``sign_in.failure``, ``sign_in.lockout``, ``sign_in.refused``,
``sign_out``; ``user.add``, ``user.password``, ``user.disable``,
``user.enable``, ``user.role``, ``user.beats``; ``import.areas``,
``import.activity`` and their refusals ``import.areas.failed``,
``import.activity.failed``; ``export``, ``audit.export``; ``route.download``; ``publish``,
``publish.override``; ``visit.*`` (logged visits).
"""

from __future__ import annotations

import getpass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, func, or_, select

from beatmap import store
from beatmap.errors import InputError
from beatmap.export import csv_text
from beatmap.store.audit import ChainCheck

__all__ = ["AUDIT_COLUMNS", "ChainCheck", "audit_csv", "cli_actor", "read_audit", "record", "verify_audit_chain"]

AUDIT_COLUMNS = ("audit_id", "at", "actor", "action", "target", "details")


def cli_actor() -> str:
    """The audit actor of a command-line act: ``cli:<os user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "cli:unknown"


def record(engine: Engine, *, actor: str, action: str, target: str | None = None, details: dict | None = None) -> None:
    """Append one entry in a transaction of its own (for acts that write nothing else)."""
    with store.transaction(engine) as conn:
        store.record_audit(conn, actor=actor, action=action, target=target, details=details)


def verify_audit_chain(engine: Engine) -> ChainCheck:
    """Check the audit log's hash chain (:func:`beatmap.store.audit.verify_audit_chain`): the first entry that
    does not match, or none."""
    return store.verify_audit_chain(engine)


def read_audit(
    engine: Engine,
    *,
    start: date | None = None,
    end: date | None = None,
    actor: str | None = None,
    action: str | None = None,
    timezone: str = "UTC",
    limit: int | None = None,
) -> pd.DataFrame:
    """Audit entries, newest first.

    Parameters
    ----------
    engine : Engine
        The store.
    start, end : date, optional
        First and last day (inclusive), local to ``timezone``.
    actor : str, optional
        Only this actor (exact).
    action : str, optional
        Only this action and its sub-actions: ``sign_in`` also matches
        ``sign_in.failure``.
    timezone : str
        The zone of the days, and of the ``at`` column returned.
    limit : int, optional
        At most this many entries (the newest).

    Returns
    -------
    DataFrame
        :data:`AUDIT_COLUMNS`; ``at`` aware in ``timezone``; ``details`` as JSON text.
    """
    if start is not None and end is not None and end < start:
        raise InputError(f"the audit period ends ({end}) before it starts ({start}).")
    log = store.audit_log
    zone = ZoneInfo(timezone)
    query = select(*(log.c[c] for c in AUDIT_COLUMNS)).order_by(log.c.audit_id.desc())
    if start is not None:
        query = query.where(log.c.at >= datetime.combine(start, time(), zone))
    if end is not None:
        query = query.where(log.c.at < datetime.combine(end + timedelta(days=1), time(), zone))
    if actor:
        query = query.where(log.c.actor == actor)
    if action:
        # A prefix compared as text, not LIKE: SQLite's LIKE ignores case and PostgreSQL's does not.
        prefix = f"{action}."
        query = query.where(or_(log.c.action == action, func.substr(log.c.action, 1, len(prefix)) == prefix))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        frame = pd.DataFrame(conn.execute(query).all(), columns=list(AUDIT_COLUMNS))
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(timezone)
    return frame


def audit_csv(frame: pd.DataFrame) -> str:
    """Audit entries as CSV text, cells a spreadsheet would run as formulas neutralised."""
    out = frame.assign(at=frame["at"].map(lambda t: t.isoformat())) if len(frame) else frame
    return csv_text(out)
