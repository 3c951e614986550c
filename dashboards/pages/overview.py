"""Overview: the five DORA metrics with ratings and change since the previous window, and maturity."""

from __future__ import annotations

import streamlit as st

from dashboards import maturity_data, state
from dashboards.components import COLLECT_DEPLOYMENTS, no_data, rating_badge
from dashboards.metrics_source import MetricsUnavailable, metrics, rating_of, request_for, single_group
from dashboards.queries import deployment_count
from dashboards.tiles import TILES, delta_text, what_changed

st.title("Overview")
f = state.current()
db = state.database()
scope = " · ".join(x for x in (f.team, f.service, f.environment) if x) or "all services and environments"
st.caption(f"{f.since.isoformat()} to {f.until.isoformat()} (exclusive), {scope}")

if deployment_count(db) == 0:
    no_data("deployments", COLLECT_DEPLOYMENTS)
    st.stop()

try:
    payload = metrics(db, request_for(f))
    previous_payload = metrics(db, request_for(f.previous()))
except MetricsUnavailable as exc:
    st.warning(f"DORA metrics are not available: {exc}")
    st.stop()

group = single_group(payload, f)
previous = single_group(previous_payload, f.previous())
if group is None or not group.get("deployments"):
    no_data("deployments in this window", "gitops-dora collect git PATH --deploy-tags REGEX")
    st.stop()

year = f.benchmark or payload.get("benchmark") or payload.get("benchmark_year")
columns = st.columns(len(TILES))
for col, tile in zip(columns, TILES, strict=True):
    with col:
        value = group.get(tile.field)
        st.metric(
            tile.title,
            tile.fmt(value),
            delta=delta_text(tile, value, previous.get(tile.field) if previous else None),
            delta_color="inverse" if tile.lower_is_better else "normal",
            border=True,
            help=f"`{tile.field}` in `gitops-dora metrics --format json`",
        )
        rating = next((r for k in tile.rating_keys if (r := rating_of(group, k))), None)
        rating_badge(rating, int(year) if year else None)

st.markdown(f"**What changed:** {what_changed(group, previous, f.days)}")

counts = (
    f"{group.get('deployments', 0)} deployments on {group.get('deployment_days', 0)} days, "
    f"{group.get('changes', 0)} changes"
)
excluded = group.get("excluded_negative_lead_times")
if excluded:
    counts += f", {excluded} negative lead times excluded"
st.caption(counts)

st.subheader("GitOps maturity")
maturity_data.level_badge(db, f)
