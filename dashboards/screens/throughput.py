"""Throughput: deployments per week, lead time distribution and trend, PR lead time breakdown."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, state
from dashboards.charts import PR_PHASES
from dashboards.components import (
    COLLECT_DEPLOYMENTS,
    COLLECT_PRS,
    how_computed,
    no_data,
    table,
    with_short_ids,
)
from dashboards.metrics_source import (
    MetricsUnavailable,
    group_label,
    groups_of,
    metrics,
    request_for,
    trend_frame,
)
from dashboards.queries import lead_time_distribution, pr_breakdown, weekly_deployments
from dashboards.safe_text import md

st.title("Throughput")
f = state.current()
db = state.database()
how_computed("throughput")

weekly = weekly_deployments(db, f)
if weekly is None or weekly.empty:
    no_data("deployments in this window", COLLECT_DEPLOYMENTS)
else:
    st.markdown(f"**{charts.WEEKLY_TITLE}**")
    st.plotly_chart(charts.weekly_bars(weekly), key="weekly")
    with st.expander("Deployments per week (table)"):
        table(weekly, key="weekly", file_name="deployments-per-week.csv")

st.subheader("Change lead time")
left, right = st.columns(2)
with left:
    dist = lead_time_distribution(db, f)
    if dist is None or dist.empty:
        no_data("change lead times in this window",
                "gitops-dora collect git PATH --deploy-tags REGEX` (commits shipped by deployments")
    else:
        st.markdown("**Change lead time distribution**")
        st.plotly_chart(charts.lead_time_histogram(dist), key="lead-hist")
with right:
    try:
        trend = trend_frame(metrics(db, request_for(f, group_by=("environment",), trend="week")),
                            ["lead_time_median_hours", "lead_time_p90_hours", "deployments_per_week"])
    except MetricsUnavailable as exc:
        st.warning(f"Lead time trend unavailable: {md(exc)}")
        trend = None
    if trend is not None and trend["lead_time_median_hours"].notna().any():
        st.markdown("**Median change lead time per week**")
        st.plotly_chart(charts.trend_lines(trend, "lead_time_median_hours", None, "hours"), key="lead-trend")
    elif trend is not None:
        no_data("lead time trend", "gitops-dora collect git PATH --deploy-tags REGEX")
if dist is not None and not dist.empty:
    with st.expander("Change lead times (table)"):
        table(with_short_ids(dist, "deployment_id", "deployment"), key="lead",
              file_name="change-lead-times.csv")

st.subheader("PR lead time breakdown")
try:
    groups = groups_of(metrics(db, request_for(f)))
except MetricsUnavailable as exc:
    st.warning(f"PR breakdown unavailable: {md(exc)}")
    groups = []
phase_rows = [
    {"group": group_label(g), "prs_deployed": g.get("prs_deployed"),
     **{phase: g.get(f"pr_{phase}_median_hours") for phase in PR_PHASES},
     "changes_with_pr": g.get("changes_with_pr"), "changes_without_pr": g.get("changes_without_pr")}
    for g in groups if g.get("prs_deployed")
]
if not phase_rows:
    no_data("merged pull requests shipped in this window", COLLECT_PRS)
else:
    medians = pd.DataFrame(phase_rows)
    st.markdown("**Median hours per phase**")
    st.plotly_chart(charts.pr_phase_bars(medians), key="pr-phases")
    st.caption("coding = first commit → PR opened, pickup → first review, review → merged, "
               "deploy → deployed; medians over the PRs shipped in the window (`metrics` fields "
               "`pr_*_median_hours`). Changes without a PR count for lead time but not here.")
    hours = {phase: st.column_config.NumberColumn(f"{phase} (median h)", format="%.1f")
             for phase in PR_PHASES}
    table(medians, key="pr-medians", file_name="pr-phase-medians.csv", column_config=hours)
    prs = pr_breakdown(db, f)
    if prs is not None:
        with st.expander(f"The {len(prs)} deployed pull requests"):
            table(with_short_ids(prs, "deployment_id", "deployment"), key="prs", file_name="pr-breakdown.csv")
