"""Date-and-time formats of activity exports: which one a column is in, and what to tell a person who got it wrong.

Exports write times in a handful of ways (ISO 8601, US month-first with AM/PM,
day-first).  :func:`guess_time_format` finds the one that reads a sample of
values; :func:`time_hint` says what to change when values do not fit the
format a mapping gives.  The guesses are offered, never applied silently.
"""

from __future__ import annotations

import pandas as pd

#: The ``time_format`` value that means "ISO 8601" (a mapping without ``time_format``).
ISO = "ISO8601"

#: Formats tried, in order, when guessing (ISO first: it is unambiguous).
COMMON_FORMATS: tuple[str, ...] = (
    ISO,
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %I:%M:%S %p",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S",
)


def parses(values: pd.Series, fmt: str | None) -> pd.Series:
    """Boolean mask: which non-blank values read as a date and time in ``fmt`` (None or ``ISO8601``: ISO 8601)."""
    text = values.astype(str).str.strip()
    out = pd.to_datetime(text, format=fmt or ISO, errors="coerce", utc=True)
    return out.notna() & (text != "")


def guess_time_format(values: pd.Series, *, sample: int = 200, share: float = 0.9) -> str | None:
    """The first of :data:`COMMON_FORMATS` that reads at least ``share`` of a sample of the non-blank values.

    Returns ``None`` for ISO 8601 only as :data:`ISO`; ``None`` means no
    common format fits (the user must give one).
    """
    text = values.astype(str).str.strip()
    text = text[text != ""].head(sample)
    if text.empty:
        return None
    for fmt in COMMON_FORMATS:
        if parses(text, fmt).mean() >= share:
            return fmt
    return None


def expected_text(fmt: str | tuple[str, ...] | None) -> str:
    """What a time should look like, in words: the format(s) given, or ISO 8601 when none is."""
    if isinstance(fmt, tuple):
        return f"in any of the formats {', '.join(map(repr, fmt))} (time_format)"
    if fmt is None:
        return "an ISO 8601 date and time such as 2026-03-01T14:30 (no time_format is given, so ISO is expected)"
    if fmt == ISO:
        return "an ISO 8601 date and time such as 2026-03-01T14:30"
    return f"in the format {fmt!r} (time_format)"


def time_hint(bad_values: pd.Series, fmt: str | tuple[str, ...] | None) -> str:
    """What to change when ``bad_values`` do not read in ``fmt``: the fix, in one clause.

    Looks at the values that failed: ISO times under a ``time_format`` ask for
    the format to be removed; values in another common format name it.
    """
    guessed = guess_time_format(bad_values, share=0.5)
    given = fmt if isinstance(fmt, tuple) else (fmt or ISO,)
    if guessed == ISO and ISO not in given:
        return (
            "these are ISO times: remove time_format to read ISO times"
            if len(given) == 1
            else f"these are ISO times: add {ISO!r} to the time_format list"
        )
    if guessed is not None and guessed not in given:
        return f"the values look like {guessed!r}: set time_format = {guessed!r} under [source]"
    return "correct the value, or set time_format under [source] to the format the column uses"
