"""Small pieces of page the dashboard repeats: key figures, legends, charts, empty states."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from beatmap import schema as S
from beatmap.metrics import gini
from beatmap.render import legend_block

#: Headers of the coverage tables, in words (st.dataframe's column_config; the frames keep their names).
COLUMN_LABELS = {
    S.BEAT_ID: "Beat",
    S.BLOCK_ID: "Block",
    "blocks": "Blocks",
    "blocks_visited": "Blocks visited",
    "visits": "Visits",
    "enforcement": "Enforcement",
    S.ENFORCEMENT_ONLY: "Enforcement only",
    S.UNVISITED: "Unvisited",
    S.RARELY_VISITED: "Rarely visited",
    "flagged": "Flagged",
    "flag": "Flag",
    "days_visited": "Days visited",
    "last_visit": "Last visit",
    "street_name": "Where",
    "flag_reason": "Why flagged",
    S.OFFICER_ID: "Officer",
    "enforcement_share": "Enforcement share",
    "officers": "Officers",
}


def _change(value: float, *, fmt: str, worse_when_up: bool = False) -> dict:
    """``st.metric`` delta arguments: the change, coloured by whether it is better or worse; grey when it shows as 0."""
    text = format(value, fmt)
    if float(text.replace(",", "")) == 0:
        return {"delta": "no change", "delta_color": "off", "delta_arrow": "off"}
    return {"delta": text, "delta_color": "inverse" if worse_when_up else "normal"}


#: Width of one key figure, in pixels: five fit across a desktop page, two or three across a phone.
FIGURE_WIDTH = 150


def key_figures(now: pd.DataFrame, before: pd.DataFrame, *, before_label: str | None = None) -> list[tuple[str, str]]:
    """Coverage, flags and evenness of some blocks, with the change against the previous period.

    ``now`` and ``before`` are block coverage tables of the same blocks.  When the previous
    period holds no activity at all, no change is shown and a line says why (``before_label``
    names that period).  Returns the figures as (label, value) pairs, and draws them.
    """

    def summary(cov: pd.DataFrame) -> dict[str, float]:
        return {
            "coverage": 100 * float((cov["visits"] > 0).mean()) if len(cov) else 0.0,
            "flagged": int(cov["flag"].notna().sum()),
            **{flag: int((cov["flag"] == flag).sum()) for flag in S.FLAGS},
            "gini": gini(cov["visits"]),
            "visits": int(cov["visits"].sum()),
        }

    a, b = summary(now), summary(before)
    compare = bool(len(before)) and int(before["visits"].sum() + before["enforcement"].sum()) > 0
    none: dict = {"delta": None}

    def change(key: str, fmt: str, *, worse_when_up: bool = False) -> dict:
        if not compare or pd.isna(a[key]) or pd.isna(b[key]):
            return none
        return _change(a[key] - b[key], fmt=fmt, worse_when_up=worse_when_up)

    # One row that wraps (columns would stack one figure per line on a phone, pushing the map off the first
    # screen): five across on a desktop, two or three to a line on a phone.
    row = st.container(horizontal=True, wrap=True, gap="small")
    cols = [row] * 5
    coverage_change = change("coverage", "+.0f")
    if coverage_change.get("delta") not in (None, "no change"):
        coverage_change["delta"] += " pts"
    cols[0].metric(
        "Coverage",
        f"{a['coverage']:.0f}%",
        **coverage_change,
        help="Blocks with at least one foot patrol or community visit; change against the previous "
        "period of the same length.",
        width=FIGURE_WIDTH,
    )
    cols[1].metric(
        "Visits",
        f"{a['visits']:,}",
        **change("visits", "+,"),
        help="Foot patrols and community visits.",
        width=FIGURE_WIDTH,
    )
    cols[2].metric(
        "Flagged blocks", f"{a['flagged']:,}", **change("flagged", "+,", worse_when_up=True), width=FIGURE_WIDTH
    )
    cols[3].metric(
        "Enforcement only",
        f"{a[S.ENFORCEMENT_ONLY]:,}",
        **change(S.ENFORCEMENT_ONLY, "+,", worse_when_up=True),
        help="Blocks where police came only to enforce.",
        width=FIGURE_WIDTH,
    )
    evenness = "—" if pd.isna(a["gini"]) else f"{a['gini']:.2f}"
    cols[4].metric(
        "Unevenness (Gini)",
        evenness,
        **change("gini", "+.2f", worse_when_up=True),
        help="How unevenly visits are spread over the blocks: 0 = every block alike, 1 = all on one. "
        "A dash: no visit to spread.",
        width=FIGURE_WIDTH,
    )
    if not compare:
        st.caption(
            f"No change is shown: the previous period{f' ({before_label})' if before_label else ''} "
            "holds no activity to compare with."
        )
    st.caption(f"Unvisited: {a[S.UNVISITED]:,} · rarely visited: {a[S.RARELY_VISITED]:,} blocks.")
    return [
        ("Coverage", f"{a['coverage']:.0f}%"),
        ("Visits", f"{a['visits']:,}"),
        ("Flagged blocks", f"{a['flagged']:,}"),
        ("Enforcement only", f"{a[S.ENFORCEMENT_ONLY]:,}"),
        ("Unvisited", f"{a[S.UNVISITED]:,}"),
        ("Rarely visited", f"{a[S.RARELY_VISITED]:,}"),
        ("Unevenness (Gini)", evenness),
    ]


def legend(title: str, entries: list[tuple[str, str]]) -> None:
    """A legend in words beside a map."""
    st.html(legend_block(title, entries))


def trend_chart(trend: pd.DataFrame) -> None:
    """Weekly visits and enforcement (bars) with coverage percent (line)."""
    if trend.empty or not (trend["visits"].sum() + trend["enforcement"].sum()):
        st.info("No activity in this period to chart.")
        return
    trend = trend[trend["days"] == 7]  # a few days at the period's ends would read as a dip
    if trend.empty:
        st.info("The period holds no full week (Monday to Sunday) to chart.")
        return
    long = trend.melt(id_vars="week", value_vars=["visits", "enforcement"], var_name="what", value_name="count")
    counts = (
        alt.Chart(long, height=200)
        .mark_line(point=True)
        .encode(
            x=alt.X("week:T", title=None),
            y=alt.Y("count:Q", title="Events per week"),
            color=alt.Color(
                "what:N", title=None, scale=alt.Scale(domain=["visits", "enforcement"], range=["#009E73", "#D55E00"])
            ),
            tooltip=["week:T", "what:N", "count:Q"],
        )
    )
    coverage = (
        alt.Chart(trend, height=120)
        .mark_area(line=True, opacity=0.3, color="#0072B2")
        .encode(
            x=alt.X("week:T", title="Week starting"),
            y=alt.Y("coverage_pct:Q", title="Coverage %", scale=alt.Scale(domain=[0, 100])),
            tooltip=["week:T", "coverage_pct:Q"],
        )
    )
    st.altair_chart(alt.vconcat(counts, coverage), width="stretch")


def hour_weekday_chart(grid: pd.DataFrame) -> None:
    """When visits happen: weekday by local hour."""
    if not grid.to_numpy().sum():
        st.info("No foot patrol or community visit in this period.")
        return
    long = grid.rename_axis("weekday").reset_index().melt(id_vars="weekday", var_name="hour", value_name="visits")
    chart = (
        alt.Chart(long)
        .mark_rect()
        .encode(
            x=alt.X("hour:O", title="Hour of day"),
            y=alt.Y("weekday:N", sort=list(grid.index), title=None),
            color=alt.Color("visits:Q", scale=alt.Scale(scheme="viridis")),
            tooltip=["weekday", "hour", "visits"],
        )
    )
    st.altair_chart(chart, width="stretch")


#: Column titles of the GPS tables.
GPS_LABELS: dict[str, Any] = {
    S.BEAT_ID: "Beat",
    S.OFFICER_ID: "Officer",
    S.UNIT_ID: "Unit",
    "device_id": "Device",
    "day": "Day",
    "blocks": "Blocks",
    "presence_minutes": st.column_config.NumberColumn("Minutes on foot (not on calls)", format="%.1f"),
    "vehicle_minutes": st.column_config.NumberColumn("Minutes in a vehicle (not on calls)", format="%.1f"),
    "enforcement_minutes": st.column_config.NumberColumn("Minutes on calls", format="%.1f"),
    "window_hours": "Hours in the window",
    "gps_hours": "Hours with usable GPS",
    "gps_share": st.column_config.ProgressColumn("Share", min_value=0, max_value=1, format="percent"),
    "pings": "Fixes",
    "median_interval_s": st.column_config.NumberColumn("Median interval (s)", format="%.0f"),
    "gap_minutes": st.column_config.NumberColumn("Gap minutes", format="%.0f"),
    "longest_silence_minutes": st.column_config.NumberColumn("Longest silence (min)", format="%.0f"),
    "outside_share": st.column_config.NumberColumn("Outside every beat", format="percent"),
    "poor_accuracy_share": st.column_config.NumberColumn("Poor accuracy", format="percent"),
    "silent": "Went silent",
}


def gps_quality(hours: pd.DataFrame, days: pd.DataFrame, *, silent_minutes: int) -> None:
    """GPS data quality: usable GPS hours per beat, silent devices and the device-day figures."""
    st.caption(
        "GPS tells where officers spent time, to show which blocks get presence outside calls; it is not for "
        "discipline. A block with few GPS hours in its beat may be missing data rather than unvisited."
    )
    st.markdown("**Hours with usable GPS per beat**")
    st.dataframe(hours, hide_index=True, width="stretch", column_config=GPS_LABELS)
    silent = days[days["silent"]] if len(days) else days
    st.markdown(f"**Devices silent for more than {silent_minutes} minutes on a day they reported**")
    if silent.empty:
        st.caption("None.")
    else:
        st.dataframe(
            silent[["device_id", "day", "longest_silence_minutes"]],
            hide_index=True,
            width="stretch",
            column_config=GPS_LABELS,
        )
    st.markdown("**Per device and day**")
    st.dataframe(days, hide_index=True, width="stretch", column_config=GPS_LABELS)
