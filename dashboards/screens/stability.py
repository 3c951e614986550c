"""Stability: CFR, recovery time and rework trends, incidents against deployments, why each failed."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, state
from dashboards.components import COLLECT_DEPLOYMENTS, COLLECT_INCIDENTS, no_data, table
from dashboards.metrics_source import MetricsUnavailable, metrics, request_for, trend_frame
from dashboards.queries import deployment_list, failed_deployments, incident_timeline
from dashboards.safe_text import md

st.title("Stability")
f = state.current()
db = state.database()

TRENDS = (
    ("change_failure_rate", "Change failure rate per week", "rate", True),
    ("failed_deployment_recovery_median_hours", "Failed deployment recovery (median) per week", "hours",
     False),
    ("rework_rate", "Rework rate per week", "rate", True),
)

try:
    trend = trend_frame(metrics(db, request_for(f, trend="week")), [t[0] for t in TRENDS])
except MetricsUnavailable as exc:
    st.warning(f"Stability trends unavailable: {md(exc)}")
    trend = None
if trend is not None:
    if trend.empty:
        no_data("deployments in this window", COLLECT_DEPLOYMENTS)
    else:
        cols = st.columns(len(TRENDS))
        for col, (field, title, unit, percent) in zip(cols, TRENDS, strict=True):
            with col:
                if trend[field].notna().any():
                    st.plotly_chart(charts.trend_lines(trend, field, title, unit, percent=percent),
                                    key=f"trend-{field}")
                else:
                    no_data(title.split(" per ")[0].lower() + " values", COLLECT_INCIDENTS)

st.subheader("Incident timeline")
incidents = incident_timeline(db, f)
if incidents is None or incidents.empty:
    no_data("incidents in this window", COLLECT_INCIDENTS)
else:
    deployments = deployment_list(db, f)
    st.plotly_chart(charts.incident_timeline(incidents, deployments if deployments is not None else
                                             incidents.iloc[0:0]), key="incident-timeline")
    table(incidents, key="incidents", file_name="incidents.csv")

st.subheader("Why each failed deployment is failed")
failed = failed_deployments(db, f)
if failed is None:
    no_data("failure signals", COLLECT_INCIDENTS)
elif failed.empty:
    st.success("No deployment in this window is marked failed.")
else:
    st.caption("One row per signal: incident attributed, reverted by a later deployment, "
               "rollout failed in the reconciler, or rolled back.")
    table(failed, key="failed", file_name="failed-deployments.csv")
