"""Small pieces of page the dashboard repeats: key figures, legends, charts, empty states."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from beatmap import schema as S
from beatmap.metrics import gini
from beatmap.render import legend_block


#: Headers of the coverage tables, in words (st.dataframe's column_config; the frames keep their names).
COLUMN_LABELS = {
    S.BEAT_ID: "Beat", S.BLOCK_ID: "Block", "blocks": "Blocks", "blocks_visited": "Blocks visited",
    "visits": "Visits", "enforcement": "Enforcement", S.ENFORCEMENT_ONLY: "Enforcement only",
    S.UNVISITED: "Unvisited", S.RARELY_VISITED: "Rarely visited", "flagged": "Flagged", "flag": "Flag",
    "days_visited": "Days visited", "last_visit": "Last visit", "street_name": "Where",
    "flag_reason": "Why flagged", "enforcement_share": "Enforcement share", "officers": "Officers",
}


def key_figures(now: pd.DataFrame, before: pd.DataFrame) -> list[tuple[str, str]]:
    """Coverage, flags and evenness of some blocks, with the change against the previous period.

    ``now`` and ``before`` are block coverage tables of the same blocks.
    Returns the figures as (label, value) pairs, and draws them.
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
    cols = st.columns(5)
    cols[0].metric("Coverage", f"{a['coverage']:.0f}%", f"{a['coverage'] - b['coverage']:+.0f} pts",
                   help="Blocks with at least one foot patrol or community visit; change against the previous "
                        "period of the same length.")
    cols[1].metric("Visits", f"{a['visits']:,}", f"{a['visits'] - b['visits']:+,}",
                   help="Foot patrols and community visits.")
    cols[2].metric("Flagged blocks", f"{a['flagged']:,}", f"{a['flagged'] - b['flagged']:+,}", delta_color="inverse")
    cols[3].metric("Enforcement only", f"{a[S.ENFORCEMENT_ONLY]:,}",
                   f"{a[S.ENFORCEMENT_ONLY] - b[S.ENFORCEMENT_ONLY]:+,}", delta_color="inverse",
                   help="Blocks where police came only to enforce.")
    evenness = "—" if pd.isna(a["gini"]) else f"{a['gini']:.2f}"
    cols[4].metric("Unevenness (Gini)", evenness,
                   None if pd.isna(a["gini"]) or pd.isna(b["gini"]) else f"{a['gini'] - b['gini']:+.2f}",
                   delta_color="inverse",
                   help="How unevenly visits are spread over the blocks: 0 = every block alike, 1 = all on one.")
    st.caption(f"Unvisited: {a[S.UNVISITED]:,} · rarely visited: {a[S.RARELY_VISITED]:,} blocks.")
    return [("Coverage", f"{a['coverage']:.0f}%"), ("Visits", f"{a['visits']:,}"),
            ("Flagged blocks", f"{a['flagged']:,}"), ("Enforcement only", f"{a[S.ENFORCEMENT_ONLY]:,}"),
            ("Unvisited", f"{a[S.UNVISITED]:,}"), ("Rarely visited", f"{a[S.RARELY_VISITED]:,}"),
            ("Unevenness (Gini)", evenness)]


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
    counts = alt.Chart(long, height=200).mark_line(point=True).encode(
        x=alt.X("week:T", title=None), y=alt.Y("count:Q", title="Events per week"),
        color=alt.Color("what:N", title=None, scale=alt.Scale(domain=["visits", "enforcement"],
                                                              range=["#009E73", "#D55E00"])),
        tooltip=["week:T", "what:N", "count:Q"])
    coverage = alt.Chart(trend, height=120).mark_area(line=True, opacity=0.3, color="#0072B2").encode(
        x=alt.X("week:T", title="Week starting"),
        y=alt.Y("coverage_pct:Q", title="Coverage %", scale=alt.Scale(domain=[0, 100])),
        tooltip=["week:T", "coverage_pct:Q"])
    st.altair_chart(alt.vconcat(counts, coverage), width="stretch")


def hour_weekday_chart(grid: pd.DataFrame) -> None:
    """When visits happen: weekday by local hour."""
    if not grid.to_numpy().sum():
        st.info("No foot patrol or community visit in this period.")
        return
    long = grid.rename_axis("weekday").reset_index().melt(id_vars="weekday", var_name="hour", value_name="visits")
    chart = alt.Chart(long).mark_rect().encode(
        x=alt.X("hour:O", title="Hour of day"), y=alt.Y("weekday:N", sort=list(grid.index), title=None),
        color=alt.Color("visits:Q", scale=alt.Scale(scheme="viridis")), tooltip=["weekday", "hour", "visits"])
    st.altair_chart(chart, width="stretch")
