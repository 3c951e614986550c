"""Widgets every page shares: the 'no data yet' notice, tables with CSV download (missing values
shown as "—", statuses coloured), short ids, and the "How this is computed" expander."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from analytics.reports import escape_cell
from analytics.reports import short_id as reports_short_id
from dashboards.safe_text import file_part, md

COLLECT_DEPLOYMENTS = "gitops-dora demo` or `gitops-dora collect git PATH --deploy-tags REGEX"
COLLECT_RECONCILERS = "gitops-dora collect argocd` or `gitops-dora collect flux"
COLLECT_PRS = "gitops-dora collect github OWNER/REPO` or `gitops-dora collect gitlab GROUP/PROJECT"
COLLECT_INCIDENTS = "gitops-dora import incidents.csv` or `gitops-dora collect github OWNER/REPO"

RATING_COLORS = {"elite": "green", "high": "blue", "medium": "orange", "low": "red"}
MISSING = "—"
# cell colours (text on a light tint) for status-like columns
STATUS_STYLES = {
    "good": "background-color: rgba(44, 160, 44, 0.18); color: #1a6b1a",
    "partial": "background-color: rgba(255, 165, 0, 0.20); color: #8a5300",
    "bad": "background-color: rgba(214, 39, 40, 0.16); color: #a11d1e",
    "neutral": "background-color: rgba(128, 128, 128, 0.14); color: #555555",
}


def no_data(what: str, command: str) -> None:
    """A page or section without data says what to collect; it is never blank. ``what`` is shown
    as plain text; ``command`` is the dashboard's own Markdown (commands in backticks)."""
    st.info(f"No {md(what)} yet — collect it with `{command}`.", icon=":material/info:")


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with formula-injection escaping, the same rule as `gitops-dora report`."""
    safe = frame.copy()
    for col in safe.columns:
        if safe[col].dtype == object or str(safe[col].dtype).startswith("str"):
            safe[col] = safe[col].map(lambda v: escape_cell(v) if isinstance(v, str) else v)
    return safe.to_csv(index=False).encode()


def table(
    frame: pd.DataFrame,
    *,
    key: str,
    file_name: str,
    column_config: dict[str, Any] | None = None,
    height: int | None = None,
    selectable: bool = False,
    colors: Mapping[str, Mapping[str, str]] | None = None,
) -> int | None:
    """A dataframe with its CSV download button (every table has one); with ``selectable``, the
    position of the row the user clicked (None when none is selected).

    Cells are drawn as text; a missing value shows as "—" (the CSV keeps it empty). ``colors``:
    per column, a cell value -> STATUS_STYLES key, to colour statuses. Link and image columns are
    refused: a URL in the data (an incident's, a pull request's, a repository's web address) is
    shown for copying, never opened or fetched."""
    for name, spec in (column_config or {}).items():
        kind = (spec.get("type_config") or {}).get("type") if isinstance(spec, dict) else None
        if kind in ("link", "image"):
            raise ValueError(f"column {name!r}: {kind} columns would turn data into links or fetches")
    stem, dot, ext = file_name.rpartition(".")
    file_name = f"{file_part(stem)}.{file_part(ext)}" if dot else file_part(file_name)
    shown: Any = frame
    if colors:
        styles = {col: {value: STATUS_STYLES[kind] for value, kind in by_value.items()}
                  for col, by_value in colors.items() if col in frame.columns}
        shown = frame.style
        for col, by_value in styles.items():
            shown = shown.map(lambda v, m=by_value: m.get(v, ""), subset=[col])
    event = st.dataframe(shown, hide_index=True, column_config=column_config, key=f"df-{key}",
                         height=height if height is not None else "auto", placeholder=MISSING,
                         on_select="rerun" if selectable else "ignore", selection_mode="single-row")
    st.download_button(
        "Download CSV", csv_bytes(frame), file_name=file_name, mime="text/csv", key=f"csv-{key}",
        icon=":material/download:",
    )
    rows = getattr(getattr(event, "selection", None), "rows", None) if selectable else None
    return int(rows[0]) if rows else None


def is_missing(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def text_or_dash(value: Any) -> str:
    """Any value as text, "—" when missing (never "None")."""
    return MISSING if is_missing(value) or value == "" else str(value)


def short_id(value: Any) -> str:
    """A deployment (or other) id short enough to read in a table (see
    :func:`analytics.reports.short_id`, which the CLI tables use too); "—" when missing. The full
    id stays in the table's ``id`` column and in the drill-down."""
    return reports_short_id(text_or_dash(value))


def with_short_ids(frame: pd.DataFrame, column: str, short: str) -> pd.DataFrame:
    """``frame`` with a readable ``short`` column (short_id) where ``column`` was, and the full
    ``column`` moved to the end (for copying, and for the drill-down)."""
    if column not in frame.columns:
        return frame
    out = frame.copy()
    position = list(out.columns).index(column)
    full = out.pop(column)
    out.insert(position, short, full.map(short_id))
    out[column] = full
    return out


def how_computed(page: str) -> None:
    """The page's "How this is computed" expander: the one-sentence definitions it relies on and a
    link to each docs section (opened on the Definitions page)."""
    from dashboards.definitions import METRICS, PAGE_DOCS, help_text, slug

    with st.expander("How this is computed", icon=":material/help:"):
        sections = {m.section: m for m in METRICS}
        for link in PAGE_DOCS[page]:
            metric = sections.get(link.section)
            if metric is not None:
                st.markdown(f"**{metric.title}**: {help_text(metric)}")
            st.page_link("screens/definitions.py", label=f"docs/{link.doc}: {link.section}",
                         icon=":material/menu_book:",
                         query_params={"doc": link.doc.removesuffix(".md"), "section": slug(link.section)})
