"""Overview: the five DORA metrics with ratings and change since the previous window, and maturity."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import charts, maturity_data, state
from dashboards.components import COLLECT_DEPLOYMENTS, no_data, rating_badge
from dashboards.metrics_source import (
    MetricsUnavailable,
    groups_of,
    metrics,
    rating_of,
    request_for,
)
from dashboards.queries import deployment_count, weekly_deployments
from dashboards.safe_text import md
from dashboards.tiles import TILES, delta_text, what_changed

st.title("Overview")
f = state.current()
db = state.database()
scope = " · ".join(md(x) for x in (f.team, f.service, f.environment) if x) or "all services"
st.caption(f"Window {f.since.isoformat()} to {f.until.isoformat()} (exclusive, UTC) · {scope} · "
           f"compared with the previous {f.days} days")


def _production_first(group: dict[str, Any]) -> tuple[int, str]:
    env = str(group.get("environment") or "")
    return (0 if env.lower() in ("production", "prod") else 1, env)


def _tiles(group: dict[str, Any], year: int | None) -> None:
    delta = group.get("delta") or {}
    for col, tile in zip(st.columns(len(TILES)), TILES, strict=True):
        with col:
            st.metric(
                tile.title,
                tile.fmt(group.get(tile.field)),
                delta=delta_text(tile, delta.get(tile.field)),
                delta_color="inverse" if tile.lower_is_better else "normal",
                border=True,
                height=130,
                help=f"`{tile.field}` in `gitops-dora metrics --format json`",
            )
            rating = next((r for k in tile.rating_keys if (r := rating_of(group, k))), None)
            rating_badge(rating, year)
    st.markdown(f"**What changed:** {what_changed(group, group.get('previous'), f.days)}")
    counts = (f"{group.get('deployments', 0)} deployments on {group.get('deployment_days', 0)} days, "
              f"{group.get('changes', 0)} changes")
    if group.get("excluded_negative_lead_times"):
        counts += f", {group['excluded_negative_lead_times']} negative lead times excluded"
    if group.get("baseline_deployments"):
        counts += f", {group['baseline_deployments']} baseline deployment(s) without lead times"
    st.caption(counts)


if deployment_count(db) == 0:
    no_data("deployments", COLLECT_DEPLOYMENTS)
else:
    payload: dict[str, Any] | None
    try:
        payload = metrics(db, request_for(f, compare_previous=True))
    except MetricsUnavailable as exc:
        st.warning(f"DORA metrics are not available: {md(exc)}")
        payload = None
    if payload is not None:
        groups = sorted((g for g in groups_of(payload) if g.get("deployments")), key=_production_first)
        year = f.benchmark or payload.get("benchmark")
        if not year:
            years = state.benchmark_years()
            year = years[0] if years else None
        if not groups:
            no_data("deployments in this window (pick an earlier window?)", COLLECT_DEPLOYMENTS)
        for group in groups:
            st.subheader(f"Environment: {md(group.get('environment'))}")
            _tiles(group, int(year) if year else None)
        weekly = weekly_deployments(db, f)
        if groups and weekly is not None and len(weekly):
            st.plotly_chart(charts.weekly_bars(weekly), key="overview-weekly")

st.subheader("GitOps maturity")
maturity_data.level_badge(db, f)
