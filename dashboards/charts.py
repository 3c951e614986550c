"""Plotly figures for the pages (kept apart so the pages read as layout).

Plotly reads a subset of HTML in every text it draws (``<a href>`` makes a link, ``<br>``, ``<b>``,
entities), so each figure starts from :func:`plot_frame` and passes any other data-derived text
through :func:`plot_text`; hover templates take data only through ``%{...}`` fields.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboards.safe_text import plot_frame, plot_text


def weekly_bars(frame: pd.DataFrame) -> go.Figure:
    data = plot_frame(frame.assign(target=frame["service"] + " · " + frame["environment"]))
    fig = px.bar(data, x="week", y="deployments", color="target", labels={"target": "service · env"},
                 title="Successful deployments per week")
    fig.update_layout(barmode="stack", legend_title_text="", height=380)
    return fig


def lead_time_histogram(frame: pd.DataFrame) -> go.Figure:
    fig = px.histogram(plot_frame(frame), x="lead_hours", nbins=40, color="service",
                       labels={"lead_hours": "lead time (hours)"}, title="Change lead time distribution")
    fig.update_layout(barmode="stack", height=360)
    return fig


def trend_lines(frame: pd.DataFrame, y: str, title: str, y_label: str, *, percent: bool = False) -> go.Figure:
    color = "group" if "group" in frame.columns and frame["group"].nunique() > 1 else None
    fig = px.line(plot_frame(frame), x="period_start", y=y, color=color, markers=True, title=title,
                  labels={"period_start": "period", y: y_label})
    if percent:
        fig.update_yaxes(tickformat=".0%")
    fig.update_layout(height=340)
    return fig


PR_PHASES = ("coding", "pickup", "review", "deploy")


def pr_phase_bars(medians: pd.DataFrame) -> go.Figure:
    """Median hours per PR phase (the engine's pr_*_median_hours), one stacked bar per group."""
    fig = go.Figure()
    medians = plot_frame(medians)
    for phase in PR_PHASES:
        fig.add_trace(go.Bar(y=medians["group"], x=medians[phase], name=phase, orientation="h",
                             text=[f"{v:.1f} h" if pd.notna(v) else "" for v in medians[phase]]))
    fig.update_layout(title="PR lead time breakdown (median hours per phase)", barmode="stack",
                      height=120 + 60 * len(medians), xaxis_title="hours")
    return fig


def incident_timeline(incidents: pd.DataFrame, deployments: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    incidents, deployments = plot_frame(incidents), plot_frame(deployments)
    if len(deployments):
        fig.add_trace(go.Scatter(
            x=deployments["deployed_at"], y=deployments["service"], mode="markers", name="deployment",
            marker={"symbol": "triangle-up", "size": 9,
                    "color": ["#d62728" if s == "failed" else "#2ca02c" for s in deployments["outcome"]]},
            text=deployments["id"], hovertemplate="%{text}<br>%{x}<extra>deployment</extra>",
        ))
    for row in incidents.itertuples():
        end: Any = row.resolved_at if not pd.isna(row.resolved_at) else pd.Timestamp.now(tz="UTC")
        fig.add_trace(go.Scatter(
            x=[row.created_at, end], y=[row.service, row.service], mode="lines",
            line={"width": 10, "color": "rgba(214,39,40,0.45)"}, showlegend=False,
            customdata=[[row.id, row.title, row.deployment_id if isinstance(row.deployment_id, str)
                          and row.deployment_id else "unattributed"]] * 2,
            hovertemplate="%{customdata[0]}: %{customdata[1]}<br>deployment %{customdata[2]}"
                          "<extra>incident</extra>",
        ))
    fig.update_layout(title="Incidents (bars) and deployments (triangles; red = failed)", height=380)
    return fig


def maturity_timeline(monthly: pd.DataFrame, dora: pd.DataFrame | None) -> go.Figure:
    """Assessed level per month (steps, left axis) over monthly DORA figures (right axis)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    months = pd.to_datetime(monthly["period"] + "-01", utc=True)
    fig.add_trace(go.Scatter(x=months, y=monthly["level"], mode="lines+markers", line_shape="hv",
                             name="maturity level", line={"width": 4}), secondary_y=False)
    if dora is not None and len(dora):
        groups = list(dict.fromkeys(dora["group"]))
        shown = next((g for g in groups if "production" in g), groups[0])
        one = dora[dora["group"] == shown]
        shown = plot_text(shown)
        fig.add_trace(go.Scatter(x=one["period_start"], y=one["lead_time_median_hours"],
                                 name=f"lead time median, h ({shown})", mode="lines", line={"dash": "dot"}),
                      secondary_y=True)
        fig.add_trace(go.Scatter(x=one["period_start"], y=one["deployments_per_week"],
                                 name=f"deployments/week ({shown})", mode="lines", line={"dash": "dash"}),
                      secondary_y=True)
    fig.update_yaxes(title_text="level", range=[-0.5, 3.5], dtick=1, secondary_y=False)
    fig.update_yaxes(title_text="DORA", secondary_y=True)
    fig.update_layout(title="GitOps maturity level per month over DORA trends", height=400)
    return fig


def deployment_timeline(frame: pd.DataFrame) -> go.Figure:
    fig = px.scatter(plot_frame(frame), x="deployed_at", y="service", color="outcome", symbol="environment",
                     hover_data=["id", "status", "failed_because", "changes"],
                     title="Deployments over time (red: a failed deployment, see failed_because)",
                     color_discrete_map={"ok": "#2ca02c", "failed": "#d62728"})
    fig.update_layout(height=300)
    return fig


def collection_runs(frame: pd.DataFrame) -> go.Figure:
    fig = px.scatter(plot_frame(frame), x="started_at", y="source", color="status", size="rows_written",
                     size_max=18, hover_data=["target", "rows_written", "message"],
                     title="Collection runs", color_discrete_map={"ok": "#2ca02c", "failed": "#d62728"})
    fig.update_layout(height=280)
    return fig
