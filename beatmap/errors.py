"""Exceptions raised by beatmap.

Every error a user can cause derives from :class:`BeatmapError`; its message
names the file, row or feature, what is wrong and what to do.  The command line
and the dashboard turn these into a one-line message; anything else is a bug.
"""

from __future__ import annotations


class BeatmapError(Exception):
    """Base class of every error beatmap raises on purpose."""


class InputError(BeatmapError, ValueError):
    """An input file, mapping or argument cannot be used as given."""


class CRSError(InputError):
    """A coordinate reference system is missing, unknown or does not match."""


class StoreError(BeatmapError):
    """The store cannot be opened or is not in the state an operation needs."""


class AccessError(BeatmapError, PermissionError):
    """The user's role does not allow this change (e.g. editing another officer's visit)."""


def collect_problems(problems: list[str], *, header: str, limit: int = 20) -> str:
    """Join a list of problems into one message, capped at ``limit`` lines.

    Parameters
    ----------
    problems : list of str
        One sentence per problem, each naming its row or feature.
    header : str
        First line: the file and the overall verdict.
    limit : int
        How many problems to list before summarising the rest.
    """
    shown = problems[:limit]
    lines = [header, *(f"  - {p}" for p in shown)]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)
