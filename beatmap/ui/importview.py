"""How the Import page shows an import's outcome: counts, reasons grouped with examples, warnings."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from beatmap.ingest import ImportSummary
from beatmap.ui.safe import md_escape


def _same(text: str) -> str:
    return text


def counts(summary: ImportSummary) -> None:
    """Rows read, imported, duplicates and rejected, with the located rows' fate in the help."""
    cols = st.columns(4)
    cols[0].metric("Rows read", f"{summary.rows:,}")
    cols[1].metric(
        "Imported",
        f"{summary.imported:,}",
        help=f"{summary.snapped:,} snapped to the nearest block; {summary.outside:,} outside every beat.",
    )
    cols[2].metric("Duplicates", f"{summary.duplicates:,}")
    cols[3].metric("Rejected", f"{summary.rejected:,}")
    ignored = md_escape(", ".join(summary.ignored_columns))
    st.caption(
        f"Snapped to the nearest block: {summary.snapped:,} · outside every beat: {summary.outside:,}"
        + (f" · ignored columns: {ignored}" if ignored else "")
    )


def reasons(summary: ImportSummary, say: Callable[[str], str] = _same) -> None:
    """Each reason for rejecting rows, with its count and up to three example rows in full words (``say``: the
    page's words for a library message)."""
    for reason, count in summary.reject_reasons.items():
        examples = summary.reject_examples.get(reason, [])
        lines = [f"**{count:,} row{'s' if count != 1 else ''}**: {md_escape(say(reason))}"]
        lines += [f"- row {e['row']}: {md_escape(say(str(e['reason'])))}" for e in examples]
        st.markdown("\n".join(lines))


def warnings(summary: ImportSummary, say: Callable[[str], str] = _same) -> None:
    """The sanity checks' warnings (pile-ups, outside the beats, reported beats, odd times), one box each."""
    for warning in summary.warnings:
        st.warning(md_escape(say(str(warning["message"]))))
