"""Stability: CFR, recovery time and rework trends, incidents against deployments, why each failed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, state
from dashboards.components import (
    COLLECT_DEPLOYMENTS,
    COLLECT_INCIDENTS,
    how_computed,
    no_data,
    table,
    with_short_ids,
)
from dashboards.definitions import BY_KEY
from dashboards.metrics_source import MetricsUnavailable, metrics, request_for, trend_frame
from dashboards.queries import deployment_list, failed_deployments, incident_timeline
from dashboards.safe_text import md
from dashboards.tiles import ROLLING_WEEKS

st.title("Stability")
f = state.current()
db = state.database()
how_computed("stability")

# (field shown, title, axis label, percent); the two rates are pooled over rolling 4 weeks
TRENDS = (
    ("change_failure_rate", f"Change failure rate, rolling {ROLLING_WEEKS} weeks", "rate", True),
    ("failed_deployment_recovery_median_hours", "Failed deployment recovery time, weekly median",
     "hours", False),
    ("rework_rate", f"Rework rate, rolling {ROLLING_WEEKS} weeks", "rate", True),
)
COUNTS = ["failed_deployments", "rework_deployments", "deployment_attempts"]


def rolling(trend: pd.DataFrame) -> pd.DataFrame:
    """The weekly rates replaced by the pooled rate of each week and the 3 before it (failed or
    rework deployments over attempts): a handful of deployments a week no longer swings 0-100%."""
    out = trend.copy()
    for field in ("change_failure_rate", "rework_rate"):
        metric = BY_KEY[field]
        assert metric.numerator and metric.denominator
        num = out.groupby("group")[metric.numerator].transform(
            lambda s: s.fillna(0).rolling(ROLLING_WEEKS, min_periods=1).sum())
        den = out.groupby("group")[metric.denominator].transform(
            lambda s: s.fillna(0).rolling(ROLLING_WEEKS, min_periods=1).sum())
        out[field] = (num / den).where(den > 0)
    return out


try:
    fields = [t[0] for t in TRENDS] + COUNTS
    trend = trend_frame(metrics(db, request_for(f, trend="week")), fields)
except MetricsUnavailable as exc:
    st.warning(f"Stability trends unavailable: {md(exc)}")
    trend = None
if trend is not None:
    if trend.empty:
        no_data("deployments in this window", COLLECT_DEPLOYMENTS)
    else:
        trend = rolling(trend)
        cols = st.columns(len(TRENDS))
        for col, (field, title, unit, percent) in zip(cols, TRENDS, strict=True):
            with col:
                st.markdown(f"**{title}**")
                if trend[field].notna().any():
                    st.plotly_chart(charts.trend_lines(trend, field, None, unit, percent=percent),
                                    key=f"trend-{field}")
                else:
                    no_data(title.split(",")[0].lower() + " values", COLLECT_INCIDENTS)
        st.caption(f"Change failure and rework rates: the failed (rework) deployments of each week and "
                   f"the {ROLLING_WEEKS - 1} before it over their deployment attempts (fewer weeks at the "
                   "start of the window). Recovery: the median of the failed deployments of that week.")

st.subheader("Incident timeline")
incidents = incident_timeline(db, f)
if incidents is None or incidents.empty:
    no_data("incidents in this window", COLLECT_INCIDENTS)
else:
    deployments = deployment_list(db, f)
    st.markdown(f"**{charts.INCIDENTS_TITLE}**")
    st.plotly_chart(charts.incident_timeline(incidents, deployments if deployments is not None else
                                             incidents.iloc[0:0], window=(f.since, f.until)),
                    key="incident-timeline")
    st.caption("Incidents created in the window; a bar ends at the resolution, or at the window's end "
               "(or now) while the incident is open.")
    table(with_short_ids(incidents, "deployment_id", "deployment"), key="incidents",
          file_name="incidents.csv")

st.subheader("Why each failed deployment is failed")
failed = failed_deployments(db, f)
if failed is None:
    no_data("failure signals", COLLECT_INCIDENTS)
elif failed.empty:
    st.success("No deployment in this window is marked failed.")
else:
    st.caption("One row per signal: incident attributed, reverted by a later deployment, "
               "rollout failed in the reconciler, or rolled back.")
    table(with_short_ids(failed, "deployment_id", "deployment"), key="failed",
          file_name="failed-deployments.csv")
