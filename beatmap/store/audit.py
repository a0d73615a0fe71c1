"""Appending to the audit log (the only write it allows)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from beatmap.store.tables import audit_log


def record_audit(conn: Connection, *, actor: str, action: str, target: str | None = None,
                 details: dict[str, Any] | None = None, at: datetime | None = None) -> None:
    """Append one entry to the audit log (inside the caller's transaction, so it commits with the act).

    ``at`` (aware) defaults to the clock.  There is no function to change or
    remove an entry, and the database refuses both.
    """
    conn.execute(insert(audit_log).values(at=at or datetime.now(UTC), actor=actor, action=action, target=target,
                                          details=json.dumps(details or {}, default=str)))
