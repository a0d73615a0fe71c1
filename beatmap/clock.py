"""Local days in the department's time zone, and where they begin in UTC.

A day begins at its first valid instant: in zones whose clocks change at
midnight (America/Santiago, America/Havana) local midnight may not exist, or
may happen twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pandas as pd


def day_start(day: date, timezone: str) -> datetime:
    """The first instant of local ``day`` in ``timezone``, as an aware UTC datetime.

    A skipped midnight moves forward to the first valid minute; a repeated one
    is its first occurrence.
    """
    local = pd.Timestamp(day).tz_localize(timezone, nonexistent="shift_forward", ambiguous=True)
    return local.tz_convert(UTC).to_pydatetime()


def local_today(timezone: str, *, now: datetime | None = None) -> date:
    """Today's date in ``timezone`` (not the machine's)."""
    return (now or datetime.now(UTC)).astimezone(ZoneInfo(timezone)).date()
