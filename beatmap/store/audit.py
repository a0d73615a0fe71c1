"""Appending to the audit log (the only write it allows), and checking its hash chain.

Each entry carries ``entry_hash``: SHA-256 over the previous entry's hash and
the entry's own time, actor, action, target and details.  The database's
triggers refuse UPDATE, DELETE and an INSERT over an existing id; someone who
holds the database file can still drop them, and the chain is the evidence:
:func:`verify_audit_chain` names the first entry that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.engine import Connection

from beatmap.store.tables import audit_log

#: PostgreSQL advisory lock key that serialises appends, so two transactions never chain to the same entry.
_CHAIN_LOCK = 0x61756469  # "audi"


def entry_hash(previous: str | None, *, at: datetime, actor: str, action: str, target: str | None, details: str) -> str:
    """The chained hash of one entry: SHA-256 (hex) over the previous hash and the entry's fields.

    ``details`` is the JSON text as stored; ``at`` is taken in UTC to the
    microsecond.  The first entry (or the first one after entries written
    before the chain existed) chains to ``previous=None``.
    """
    moment = at.to_pydatetime() if isinstance(at, pd.Timestamp) else at  # stored to the microsecond
    when = moment.astimezone(UTC).isoformat(timespec="microseconds")
    payload = json.dumps(
        [previous or "", when, actor, action, target, details], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record_audit(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append one entry to the audit log (inside the caller's transaction, so it commits with the act).

    ``at`` (aware) defaults to the clock.  There is no function to change or
    remove an entry, and the database refuses both.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CHAIN_LOCK})
    when = at or datetime.now(UTC)
    body = json.dumps(details or {}, default=str)
    previous = conn.execute(select(audit_log.c.entry_hash).order_by(audit_log.c.audit_id.desc()).limit(1)).scalar()
    digest = entry_hash(previous, at=when, actor=actor, action=action, target=target, details=body)
    conn.execute(
        insert(audit_log).values(at=when, actor=actor, action=action, target=target, details=body, entry_hash=digest)
    )


@dataclass(frozen=True)
class ChainCheck:
    """What :func:`verify_audit_chain` found.

    Attributes
    ----------
    entries : int
        Entries read.
    first_bad : int or None
        ``audit_id`` of the first entry whose hash does not match (None: all match).
    reason : str
        Why it does not match (empty when all match).
    last_hash : str or None
        The newest entry's hash: write it down somewhere else, and a later
        check can show that nothing before it was rewritten.
    """

    entries: int
    first_bad: int | None
    reason: str
    last_hash: str | None


def verify_audit_chain(engine: Engine) -> ChainCheck:
    """Recompute every entry's hash in order and report the first that does not match its stored one.

    An entry changed in place, removed (the next one then chains to a hash
    that is not its predecessor's), or inserted between others breaks the
    chain from there on.
    """
    query = select(
        audit_log.c.audit_id,
        audit_log.c.at,
        audit_log.c.actor,
        audit_log.c.action,
        audit_log.c.target,
        audit_log.c.details,
        audit_log.c.entry_hash,
    ).order_by(audit_log.c.audit_id)
    previous: str | None = None
    count = 0
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            count += 1
            problem = _mismatch(row, previous)
            if problem:
                return ChainCheck(entries=count, first_bad=int(row["audit_id"]), reason=problem, last_hash=None)
            previous = row["entry_hash"]
    return ChainCheck(entries=count, first_bad=None, reason="", last_hash=previous)


def _mismatch(row: Mapping[Any, Any], previous: str | None) -> str:
    if row["entry_hash"] is None:
        return "it has no hash (written outside beatmap, or the chain was removed)"
    expected = entry_hash(
        previous, at=row["at"], actor=row["actor"], action=row["action"], target=row["target"], details=row["details"]
    )
    if expected != row["entry_hash"]:
        return (
            "its hash does not match its content and the entry before it: it was changed, or an entry before "
            "it was removed or inserted"
        )
    return ""
