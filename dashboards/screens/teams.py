"""Teams: teams (or services) side by side, one row each: every DORA metric, its rating for the
chosen benchmark year and its weekly trend, sortable."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from dashboards import state
from dashboards.badges import badge, latest_year
from dashboards.components import COLLECT_DEPLOYMENTS, how_computed, is_missing, no_data, table
from dashboards.definitions import help_text
from dashboards.metrics_source import MetricsUnavailable, groups_of, metrics, request_for
from dashboards.safe_text import md
from dashboards.targets import current_config, target_status
from dashboards.tiles import TILES, fmt, sparkline

NO_TEAM = "(no team)"
BY_OPTIONS = {"team": "Teams", "service": "Services"}
# the table's numeric unit per metric kind: one unit per column, so sorting compares like with like
COLUMN_UNIT = {"per_week": ("/wk", 1.0), "hours": ("h", 1.0), "rate": ("%", 100.0)}
RATING_STYLE = {"elite": "good", "high": "good", "medium": "partial", "low": "bad"}
SHORT = {"deployment_frequency": "Deploys", "lead_time": "Lead time", "change_failure_rate": "CFR",
         "failed_deployment_recovery": "Recovery", "time_to_restore": "Restore", "rework_rate": "Rework"}

st.title("Teams")
f = state.current()
db = state.database()
year = f.benchmark or latest_year()
st.caption(f"Window {f.since.isoformat()} to {f.until.isoformat()} (exclusive, UTC) · ratings against "
           f"the DORA {year} report · trends per week (change failure and rework pooled over rolling "
           "4 weeks)")
how_computed("teams")
dora_config, config_problem = current_config()
if config_problem:
    st.warning(f"Targets not shown: {md(config_problem)}")
TARGETED = set(dora_config.targets.metrics())

linked = st.query_params.get("by")
if linked and linked not in BY_OPTIONS:
    st.warning(f"Ignored URL parameter: by={md(repr(linked))} is not team or service")
    linked = None
if "teams_by" not in st.session_state:
    st.session_state["teams_by"] = linked or "team"
by = st.segmented_control("Compare", list(BY_OPTIONS), format_func=BY_OPTIONS.__getitem__,
                          key="teams_by") or "team"
st.query_params["by"] = by


def _label(group: dict[str, Any]) -> str:
    value = group.get(by)
    return NO_TEAM if value is None else str(value)


def _rows(payload: dict[str, Any], trend: dict[str, Any] | None) -> pd.DataFrame:
    periods: dict[str, list[dict[str, Any]]] = {}
    for g in groups_of(trend or {}):
        periods.setdefault(_label(g), []).append(g)
    rows = []
    for g in groups_of(payload):
        if not (g.get("deployments") or g.get("deployment_attempts") or g.get("incidents")):
            continue
        name = _label(g)
        weeks = sorted(periods.get(name, []), key=lambda p: str(p.get("period_start")))
        row: dict[str, Any] = {by: name, "deployments": g.get("deployments")}
        for metric in TILES:
            value: Any = g.get(metric.field)
            factor = COLUMN_UNIT[metric.kind][1]
            row[metric.key] = None if is_missing(value) else float(value) * factor
            b = badge(metric, g, year, fmt(metric, value))
            row[f"{metric.key}_rating"] = b.label
            row[f"{metric.key}_trend"] = sparkline(metric, weeks)
            if metric.key == "deployment_frequency":  # the figure its rating is about
                row["deploy_days"] = g.get("deployment_days_per_week_median")
            if metric.field in TARGETED:
                goal = dora_config.targets_for(**{by: None if name == NO_TEAM else name}).get(metric.field)
                row[f"{metric.key}_target"] = None if goal is None else target_status(metric, value, goal)[1]
        rows.append(row)
    return pd.DataFrame(rows)


try:
    payload = metrics(db, request_for(f, group_by=(by,)))
    trend: dict[str, Any] | None = metrics(db, request_for(f, group_by=(by,), trend="week"))
except MetricsUnavailable as exc:
    st.warning(f"DORA metrics are not available: {md(exc)}")
    st.stop()
frame = _rows(payload, trend)
if frame.empty:
    no_data(f"deployments by {by} in this window", COLLECT_DEPLOYMENTS)
    st.stop()

sort_options = {by: by.capitalize(), **{m.key: m.title for m in TILES}, "deployments": "Deployments"}
left, right = st.columns([2, 1])
sort_key = left.selectbox("Sort by", list(sort_options), format_func=sort_options.__getitem__,
                          key="teams_sort")
best_first = right.toggle("Best first", value=True, key="teams_best_first",
                          help="For a metric: the best value on top (lowest lead time, highest frequency).")
if sort_key == by:
    frame = frame.sort_values(by, key=lambda s: s.str.lower(), ignore_index=True)
else:
    lower_better = next((m.lower_is_better for m in TILES if m.key == sort_key), False)
    ascending = lower_better == best_first
    frame = frame.sort_values(sort_key, ascending=ascending, na_position="last", ignore_index=True)

config: dict[str, Any] = {
    by: st.column_config.TextColumn(by.capitalize(), pinned=True),
    "deployments": st.column_config.NumberColumn("Deploys", help="Successful deployments in the window."),
}
order = [by, "deployments"]
for metric in TILES:
    unit, _ = COLUMN_UNIT[metric.kind]
    short = SHORT[metric.key]
    config[metric.key] = st.column_config.NumberColumn(
        f"{short} {unit}", help=f"{metric.title}. {help_text(metric)}",
        format="%.2f" if metric.kind == "per_week" else "%.1f")
    config[f"{metric.key}_rating"] = st.column_config.TextColumn(
        f"{short} rating", help=f"{metric.title}: its DORA {year} rating")
    finite = [v for trend_values in frame[f"{metric.key}_trend"] for v in trend_values if math.isfinite(v)]
    config[f"{metric.key}_trend"] = st.column_config.LineChartColumn(
        f"{short} trend", y_min=0, y_max=max(finite) if finite else None, width=120,
        help=f"{metric.title} per week over the window"
             + (", pooled over rolling 4 weeks" if metric.smoothed else ""))
    order += [metric.key, f"{metric.key}_rating", f"{metric.key}_trend"]
    if metric.field in TARGETED:
        config[f"{metric.key}_target"] = st.column_config.TextColumn(
            f"{short} target", help=f"{metric.title}: the config's target for this {by} (its own, "
                                    "else its team's, else the organisation's), met or missed by how much")
        order.append(f"{metric.key}_target")
    if metric.key == "deployment_frequency":
        config["deploy_days"] = st.column_config.NumberColumn(
            "Deploy days/wk", format="%.1f",
            help="What the deployment frequency rating is about: deployment days in the median week "
                 "(weeks without deployments count as 0), as the DORA survey asked.")
        order.append("deploy_days")
colors = {f"{m.key}_rating": {label: RATING_STYLE.get(label.split(" ")[0].lower(), "neutral")
                              for label in frame[f"{m.key}_rating"].unique()} for m in TILES}
table(frame[order], key="teams", file_name=f"dora-by-{by}.csv", column_config=config, colors=colors)
st.caption(f"{len(frame)} {BY_OPTIONS[by].lower()} · click a column header to sort by it too · "
           f"durations in hours, rates in percent · \"not rated by {year}\": the {year} report rates "
           "another measure (or, for rework, none)")
