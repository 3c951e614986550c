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

# Chart titles are drawn by the pages in Markdown above each chart (a Plotly title is one line and
# is cut off on a phone); ``layout.meta`` names each figure for tests.
WEEKLY_TITLE = "Successful deployments per week"
INCIDENTS_TITLE = "Incidents (bars) and deployments (triangles; red = failed)"
DEPLOYMENTS_TITLE = "Deployments over time; red: a failed deployment (see failed_because)"
RUNS_TITLE = "Collection runs"
BOTTOM_LEGEND = {"orientation": "h", "yanchor": "top", "y": -0.2, "title_text": ""}


def weekly_bars(frame: pd.DataFrame) -> go.Figure:
    data = plot_frame(frame.assign(target=frame["service"] + " · " + frame["environment"]))
    fig = px.bar(data, x="week", y="deployments", color="target", labels={"target": "service · env"})
    fig.update_layout(barmode="stack", height=400, legend=BOTTOM_LEGEND, margin={"t": 10}, meta="weekly")
    return fig


def lead_time_histogram(frame: pd.DataFrame) -> go.Figure:
    fig = px.histogram(plot_frame(frame), x="lead_hours", nbins=40, color="service",
                       labels={"lead_hours": "lead time (hours)", "service": ""})
    fig.update_layout(barmode="stack", height=340, margin={"t": 10},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.25})
    return fig


def trend_lines(frame: pd.DataFrame, y: str, title: str | None, y_label: str, *,
                percent: bool = False) -> go.Figure:
    """One line per group over the periods. ``title`` None: the page puts the title above the
    chart in Markdown, where a long title wraps instead of being cut off."""
    color = "group" if "group" in frame.columns and frame["group"].nunique() > 1 else None
    fig = px.line(plot_frame(frame), x="period_start", y=y, color=color, markers=True,
                  title=plot_text(title) if title else None,
                  labels={"period_start": "week", y: y_label, "group": ""})
    if percent:
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    fig.update_layout(height=320, legend={"orientation": "h", "yanchor": "top", "y": -0.25},
                      margin={"t": 40 if title else 10})
    return fig


PR_PHASES = ("coding", "pickup", "review", "deploy")
PR_PHASE_COLORS = {"coding": "#4c78a8", "pickup": "#f58518", "review": "#54a24b", "deploy": "#b279a2"}
PR_MIN_HEIGHT = 320


def pr_phase_bars(medians: pd.DataFrame) -> go.Figure:
    """Median hours per PR phase (the engine's pr_*_median_hours), one stacked bar per group.
    Every phase is in the legend (also one without a value in any group), and the chart keeps a
    readable height for a single group."""
    fig = go.Figure()
    medians = plot_frame(medians)
    for phase in PR_PHASES:
        values = [None if pd.isna(v) else float(v) for v in medians[phase]]
        fig.add_trace(go.Bar(y=list(medians["group"]), x=values, name=phase, orientation="h",
                             showlegend=True, legendrank=PR_PHASES.index(phase),
                             marker={"color": PR_PHASE_COLORS[phase]},
                             text=[f"{v:.1f} h" if v is not None else "" for v in values]))
    fig.update_layout(barmode="stack", height=max(PR_MIN_HEIGHT, 140 + 60 * len(medians)),
                      xaxis_title="median hours", showlegend=True,
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "traceorder": "normal"},
                      margin={"t": 50})
    return fig


def incident_timeline(incidents: pd.DataFrame, deployments: pd.DataFrame,
                      window: tuple[Any, Any] | None = None) -> go.Figure:
    """Incidents as bars from creation to resolution (an open one to now), deployments as
    triangles. With ``window`` (since, until), bars are clipped to it and so is the axis."""
    fig = go.Figure()
    incidents, deployments = plot_frame(incidents), plot_frame(deployments)
    since = pd.Timestamp(window[0], tz="UTC") if window else None
    until = pd.Timestamp(window[1], tz="UTC") if window else None
    if len(deployments):
        fig.add_trace(go.Scatter(
            x=deployments["deployed_at"], y=deployments["service"], mode="markers", name="deployment",
            marker={"symbol": "triangle-up", "size": 9,
                    "color": ["#d62728" if s == "failed" else "#2ca02c" for s in deployments["outcome"]]},
            text=deployments["id"], hovertemplate="%{text}<br>%{x}<extra>deployment</extra>",
        ))
    for row in incidents.itertuples():
        start: Any = row.created_at
        end: Any = row.resolved_at if not pd.isna(row.resolved_at) else pd.Timestamp.now(tz="UTC")
        if until is not None and since is not None:
            start, end = max(pd.Timestamp(start), since), min(pd.Timestamp(end), until)
        fig.add_trace(go.Scatter(
            x=[start, end], y=[row.service, row.service], mode="lines",
            line={"width": 10, "color": "rgba(214,39,40,0.45)"}, showlegend=False,
            customdata=[[row.id, row.title, row.deployment_id if isinstance(row.deployment_id, str)
                          and row.deployment_id else "unattributed"]] * 2,
            hovertemplate="%{customdata[0]}: %{customdata[1]}<br>deployment %{customdata[2]}"
                          "<extra>incident</extra>",
        ))
    fig.update_layout(height=380, legend=BOTTOM_LEGEND, margin={"t": 10}, meta="incident-timeline")
    if since is not None and until is not None:
        fig.update_xaxes(range=[since, until])
    return fig


def maturity_timeline(monthly: pd.DataFrame, dora: pd.DataFrame | None) -> go.Figure:
    """Small charts on one time axis: the assessed level per month (steps), then the monthly
    median lead time (hours) and deployments per week, each on its own axis."""
    from plotly.subplots import make_subplots

    shown = None
    one = None
    if dora is not None and len(dora):
        groups = list(dict.fromkeys(dora["group"]))
        shown = next((g for g in groups if "production" in g), groups[0])
        one = dora[dora["group"] == shown]
    label = f" ({plot_text(shown)})" if shown else ""
    rows = 3 if one is not None else 1
    titles = ["GitOps maturity level", f"Median change lead time, hours{label}",
              f"Deployments per week{label}"][:rows]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.09, subplot_titles=titles)
    months = pd.to_datetime(monthly["period"] + "-01", utc=True)
    levels = [None if pd.isna(v) else float(v) for v in monthly["level"]]
    fig.add_trace(go.Scatter(x=months, y=levels, mode="lines+markers", line_shape="hv",
                             name="maturity level", line={"width": 4}), row=1, col=1)
    fig.update_yaxes(title_text="level", range=[-0.5, 3.5], dtick=1, row=1, col=1)
    if one is not None:
        fig.add_trace(go.Scatter(x=one["period_start"], y=one["lead_time_median_hours"],
                                 name="lead time median (h)", mode="lines+markers"), row=2, col=1)
        fig.update_yaxes(title_text="hours", rangemode="tozero", row=2, col=1)
        fig.add_trace(go.Bar(x=one["period_start"], y=one["deployments_per_week"],
                             name="deployments/week", marker={"color": "#4c78a8"}), row=3, col=1)
        fig.update_yaxes(title_text="per week", rangemode="tozero", row=3, col=1)
    fig.update_layout(height=220 * rows + 60, showlegend=False, margin={"t": 40})
    return fig


def deployment_timeline(frame: pd.DataFrame) -> go.Figure:
    fig = px.scatter(plot_frame(frame), x="deployed_at", y="service", color="outcome", symbol="environment",
                     hover_data=["id", "status", "failed_because", "changes"],
                     color_discrete_map={"ok": "#2ca02c", "failed": "#d62728"})
    fig.update_layout(height=340, legend=BOTTOM_LEGEND, margin={"t": 10}, meta="deployment-timeline")
    return fig


def collection_runs(frame: pd.DataFrame) -> go.Figure:
    fig = px.scatter(plot_frame(frame), x="started_at", y="source", color="status", size="rows_written",
                     size_max=18, hover_data=["target", "rows_written", "message"],
                     color_discrete_map={"ok": "#2ca02c", "failed": "#d62728"})
    fig.update_layout(height=300, legend=BOTTOM_LEGEND, margin={"t": 10}, meta="collection-runs")
    return fig
