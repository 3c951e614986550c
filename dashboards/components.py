"""Widgets every page shares: the 'no data yet' notice, tables with CSV download, rating badges."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from analytics.reports import escape_cell
from dashboards.safe_text import file_part, md

COLLECT_DEPLOYMENTS = "gitops-dora demo` or `gitops-dora collect git PATH --deploy-tags REGEX"
COLLECT_RECONCILERS = "gitops-dora collect argocd` or `gitops-dora collect flux"
COLLECT_PRS = "gitops-dora collect github OWNER/REPO` or `gitops-dora collect gitlab GROUP/PROJECT"
COLLECT_INCIDENTS = "gitops-dora import incidents.csv` or `gitops-dora collect github OWNER/REPO"

RATING_COLORS = {"elite": "green", "high": "blue", "medium": "orange", "low": "red"}


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
) -> int | None:
    """A dataframe with its CSV download button (every table has one); with ``selectable``, the
    position of the row the user clicked (None when none is selected).

    Cells are drawn as text. Link and image columns are refused: a URL in the data (an incident's,
    a pull request's, a repository's web address) is shown for copying, never opened or fetched."""
    for name, spec in (column_config or {}).items():
        kind = (spec.get("type_config") or {}).get("type") if isinstance(spec, dict) else None
        if kind in ("link", "image"):
            raise ValueError(f"column {name!r}: {kind} columns would turn data into links or fetches")
    stem, dot, ext = file_name.rpartition(".")
    file_name = f"{file_part(stem)}.{file_part(ext)}" if dot else file_part(file_name)
    event = st.dataframe(frame, hide_index=True, column_config=column_config, key=f"df-{key}",
                         height=height if height is not None else "auto",
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


def fmt_hours(value: Any) -> str:
    if is_missing(value):
        return "—"
    hours = float(value)
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} d"


def fmt_rate(value: Any) -> str:
    return "—" if is_missing(value) else f"{float(value) * 100:.1f}%"


def fmt_per_week(value: Any) -> str:
    return "—" if is_missing(value) else f"{float(value):.2f}/wk"


def rating_badge(rating: str | None, year: int | None) -> None:
    if not rating:
        st.badge("not rated", color="gray")
        return
    label = f"{rating.capitalize()} ({year})" if year else rating.capitalize()
    st.badge(label, color=RATING_COLORS.get(rating.lower(), "gray"))  # type: ignore[arg-type]
