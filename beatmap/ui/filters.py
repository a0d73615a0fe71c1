"""The filters every dashboard page shares, kept in the session so they survive page changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import streamlit as st

from beatmap import schema as S
from beatmap.metrics import Window, activity_mask, shift_hours, window_rows
from beatmap.settings import Settings

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
KIND_LABELS = {
    S.FOOT_PATROL: "Foot patrol",
    S.COMMUNITY_VISIT: "Community visit",
    S.ENFORCEMENT: "Enforcement",
    S.OTHER: "Other",
}


@dataclass(frozen=True)
class Filters:
    """What the user chose: a window and which activity counts."""

    window: Window
    kinds: tuple[str, ...]
    weekdays: tuple[int, ...]
    hours: tuple[int, ...]

    def apply(self, activity: pd.DataFrame) -> pd.DataFrame:
        """The activity rows these filters keep, in the window and the period of the same length before it.

        Cutting the dates first keeps every later step (both periods' counts, the charts) on a fraction
        of the year.
        """
        span = Window(self.window.previous().start, self.window.end, self.window.timezone)
        rows = window_rows(activity, span)
        if len(self.kinds) == len(S.KINDS) and len(self.weekdays) == 7 and len(self.hours) == 24:
            return rows
        return rows[activity_mask(rows, kinds=self.kinds, weekdays=self.weekdays, hours=self.hours).to_numpy()]

    def describe(self) -> str:
        """The filters in a short sentence, for exports and captions."""
        parts = [f"{self.window.start} to {self.window.end}"]
        if len(self.kinds) < len(S.KINDS):
            parts.append(", ".join(KIND_LABELS[k] for k in self.kinds))
        if len(self.weekdays) < 7:
            parts.append(", ".join(WEEKDAYS[d] for d in self.weekdays))
        if len(self.hours) < 24:
            parts.append(f"{len(self.hours)} hours of the day")
        return "; ".join(parts)


def _persistent(name: str, default: object) -> str:
    """Seed a widget from its saved value; return the widget key."""
    if name not in st.session_state:
        st.session_state[name] = default
    st.session_state[f"_w_{name}"] = st.session_state[name]
    return f"_w_{name}"


def _save(name: str) -> None:
    st.session_state[name] = st.session_state[f"_w_{name}"]


def sidebar_filters(settings: Settings, default_window: tuple[date, date]) -> Filters | None:
    """Draw the filters in the sidebar; None while the date range is half picked."""
    side = st.sidebar
    side.header("Filters")
    picked = side.date_input(
        "Dates",
        key=_persistent("f_dates", default_window),
        on_change=_save,
        args=("f_dates",),
        help=(
            f"The window the counts and flags cover. Default: the last {settings.window_days} days of recorded "
            "activity, ending on the last day with a usual day's activity: a few visits logged since then do not "
            "move it (pick a later end date to include them)."
        ),
    )
    shifts = list(settings.shifts)
    chosen_shifts = side.multiselect(
        "Shifts",
        shifts,
        key=_persistent("f_shifts", shifts),
        on_change=_save,
        args=("f_shifts",),
        help="Named shifts from the settings file, in local time.",
    )
    hour_range = side.slider(
        "Hours",
        0,
        24,
        key=_persistent("f_hours", (0, 24)),
        on_change=_save,
        args=("f_hours",),
        help="Local hours of the day, from the first to before the last.",
    )
    days = side.multiselect(
        "Days of the week",
        list(WEEKDAYS),
        key=_persistent("f_days", list(WEEKDAYS)),
        on_change=_save,
        args=("f_days",),
    )
    kinds = side.multiselect(
        "Activity",
        list(S.KINDS),
        format_func=KIND_LABELS.__getitem__,
        key=_persistent("f_kinds", list(S.KINDS)),
        on_change=_save,
        args=("f_kinds",),
        help="Which kinds of activity count. Flags need enforcement and visits both counted.",
    )
    if st.sidebar.button("Reset filters"):
        for name in ("f_dates", "f_shifts", "f_hours", "f_days", "f_kinds"):
            st.session_state.pop(name, None)
        st.rerun()
    if not isinstance(picked, tuple | list) or len(picked) != 2:
        st.info("Pick the last day of the date range too.")
        return None
    hours = set(shift_hours(settings.shifts, chosen_shifts)) & set(range(hour_range[0], hour_range[1]))
    return Filters(
        window=Window(picked[0], picked[1], settings.timezone),
        kinds=tuple(kinds),
        weekdays=tuple(WEEKDAYS.index(d) for d in days),
        hours=tuple(sorted(hours)),
    )
